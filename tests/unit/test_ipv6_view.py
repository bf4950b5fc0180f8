"""harness/wire/ipv6.py, the project's one view of an IPv6 packet, against scapy and tshark.

hypothesis builds packets with scapy (any chain of Hop-by-Hop, Destination Options with
or without a Home Address option, a type 2 routing header, a Fragment header; UDP, TCP,
ICMPv6 or an IPv6-in-IPv6 tunnel inside), and the view must find what scapy put there:
the upper layer and where it starts, the Home Address, the routing header's address, the
tunnelled packet, and a checksum that verifies (scapy computes it with the Home Address
and the routing header's address in the pseudo-header, RFC 6275 §6.1.7). tshark, an
outside opinion, must see the same upper layer and checksum status on a batch of them.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import TCP, UDP
from scapy.layers.inet6 import (
    HAO,
    ICMPv6EchoRequest,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    PadN,
    RouterAlert,
)
from scapy.packet import Packet, Raw

from harness.wire import ipv6, tshark
from harness.wire.errors import Malformed

SRC, DST = "2001:db8:1::10", "2001:db8:2::20"
HOA, RH2_ADDR = "2001:db8:9::99", "2001:db8:9::1"

ext_kinds = st.lists(st.sampled_from(["hbh", "dst", "dst-hao", "rh2"]), max_size=4)
uppers = st.sampled_from(["udp", "tcp", "icmp", "tunnel-udp"])


def _ext(kind: str) -> Packet:
    if kind == "hbh":
        return IPv6ExtHdrHopByHop(options=[RouterAlert(), PadN(optdata=b"\0\0")])
    if kind == "dst":
        return IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\0" * 4)])
    if kind == "dst-hao":
        return IPv6ExtHdrDestOpt(options=[HAO(hoa=HOA)])
    return IPv6ExtHdrRouting(type=2, addresses=[RH2_ADDR], segleft=1)


def _upper(kind: str, data: bytes) -> Packet:
    if kind == "udp":
        return UDP(sport=4000, dport=5000) / Raw(data)
    if kind == "tcp":
        return TCP(sport=4000, dport=5000) / Raw(data)
    if kind == "icmp":
        return ICMPv6EchoRequest(data=data)
    return IPv6(src="2001:db8:3::3", dst="ff3e::1") / UDP(sport=1, dport=2) / Raw(data)


def build(exts: list[str], upper: str, data: bytes, fragment: bool = False) -> bytes:
    pkt: Packet = IPv6(src=SRC, dst=DST, hlim=33)
    for kind in exts:
        pkt = pkt / _ext(kind)
    if fragment:
        pkt = pkt / IPv6ExtHdrFragment(m=1, id=7)
    return bytes(pkt / _upper(upper, data))


@settings(max_examples=150, deadline=None)
@given(exts=ext_kinds, upper=uppers, data=st.binary(max_size=64))
def test_view_finds_what_scapy_built(exts: list[str], upper: str, data: bytes) -> None:
    raw = build(exts, upper, data)
    view = ipv6.parse(raw, strict=True)
    assert view is not None
    ref = IPv6(raw)
    top = {"udp": UDP, "tcp": TCP, "icmp": ICMPv6EchoRequest, "tunnel-udp": IPv6}[upper]
    layer = ref[top] if upper != "tunnel-udp" else ref.payload
    while upper == "tunnel-udp" and not isinstance(layer, IPv6):
        layer = layer.payload
    assert view.upper == {"udp": 17, "tcp": 6, "icmp": 58, "tunnel-udp": 41}[upper]
    assert view.payload == bytes(layer)
    assert view.offset == len(raw) - len(bytes(layer))
    assert (str(view.src), str(view.dst), view.hop_limit) == (SRC, DST, 33)
    assert (view.hoa is not None) == ("dst-hao" in exts)
    if view.hoa is not None:
        assert view.hoa == ipv6.parse(build(["dst-hao"], "udp", b"")).hoa  # type: ignore[union-attr]
    assert (view.rh2 is not None) == ("rh2" in exts)
    assert view.transport_checksum_ok(), "scapy's checksum does not verify in the view"
    inner = view.inner()
    if upper == "tunnel-udp":
        assert inner is not None and inner.upper == 17 and inner.transport_checksum_ok()
        assert inner.ports() == (1, 2)
    else:
        assert inner is None


@settings(max_examples=100, deadline=None)
@given(exts=ext_kinds, upper=st.sampled_from(["udp", "tcp", "icmp"]), data=st.binary(max_size=64))
def test_completing_a_zeroed_checksum_gives_scapys(
    exts: list[str], upper: str, data: bytes
) -> None:
    """What the lab's forwarder and the HA's tunnel do to offloaded packets."""
    good = build(exts, upper, data)
    view = ipv6.parse(good)
    assert view is not None
    at = view.offset + {"udp": 6, "tcp": 16, "icmp": 2}[upper]
    partial = good[:at] + b"\0\0" + good[at + 2 :]
    assert ipv6.complete_checksum(partial) == good
    assert ipv6.complete_checksum(good) == good


def test_fragments_are_left_alone_and_truncations_named() -> None:
    frag = build(["hbh"], "udp", b"abc", fragment=True)
    view = ipv6.parse(frag)
    assert view is not None and view.fragmented and view.upper == 17
    assert view.ports() is None and ipv6.complete_checksum(frag) == frag
    cut = build(["dst-hao"], "udp", b"")[:50]
    assert ipv6.parse(cut[:30]) is None
    with pytest.raises(Malformed, match="Payload Length"):
        ipv6.parse(cut, strict=True)
    bad_hao = bytearray(build(["dst-hao"], "udp", b""))
    at = bytes(bad_hao).index(bytes([ipv6.HOME_ADDRESS_OPTION, 16]))
    bad_hao[at + 1] = 12
    with pytest.raises(Malformed):
        ipv6.parse(bytes(bad_hao), strict=True)


def test_tshark_sees_the_same_upper_layer_and_checksums() -> None:
    if not tshark.available():
        pytest.skip("[not-run] tshark is missing | hint: apt-get install tshark")
    cases = [
        (exts, upper)
        for exts in (
            [],
            ["hbh"],
            ["dst-hao"],
            ["rh2"],
            ["hbh", "dst", "dst-hao"],
            ["dst-hao", "rh2"],
        )
        for upper in ("udp", "tcp", "icmp", "tunnel-udp")
    ]
    packets = [build(exts, upper, struct.pack("!I", i)) for i, (exts, upper) in enumerate(cases)]
    frames = tshark.dissect(packets, extra_args=["-o", "udp.check_checksum:TRUE"])
    for raw, frame, (exts, upper) in zip(packets, frames, cases, strict=True):
        view = ipv6.parse(raw)
        assert view is not None
        # the upper layer is the Next Header of the last header of the chain tshark walked
        nxt = [
            n
            for name in ("ipv6.nxt", "ipv6.hopopts.nxt", "ipv6.dstopts.nxt", "ipv6.routing.nxt")
            for n in frame.ints(name)
        ]
        assert view.upper in nxt, (exts, upper, nxt)
        if upper == "udp":
            assert frame.first("udp.checksum.status") == "1", (
                exts,
                frame.get("udp.checksum.status"),
            )
        if "dst-hao" in exts:
            assert HOA in frame.get("ipv6.opt.mipv6.home_address", []), frame.keys()


def test_hop_by_hop_options_of_an_mld_report() -> None:
    """The Router Alert the kernel puts before its MLD reports (RFC 3810 §5), Pads left out."""
    raw = build(["hbh"], "icmp", b"")
    view = ipv6.parse(raw)
    assert view is not None
    assert view.hop_by_hop_options() == [(ipv6.ROUTER_ALERT, b"\0\0")]
    plain = ipv6.parse(build(["dst-hao"], "udp", b""))
    assert plain is not None and plain.hop_by_hop_options() == []
