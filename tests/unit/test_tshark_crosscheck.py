"""Wireshark as a third, outside opinion on the encoders (docs/architecture.md, principle 2).

Every generated BU/BA must dissect with no malformed or warning marks, and where
Wireshark 4.0 knows an option its field values must equal ours. Known Wireshark 4.0
quirks (harness/wire/tshark.py) are allowed for explicitly, nothing more.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from scapy.layers.inet6 import MIP6OptMNID, MIP6OptMsgAuth
from scapy.packet import Packet

from harness import strategies as gen
from harness.wire import mobility, tshark
from harness.wire.mobility import (
    BindingAck,
    BindingUpdate,
    MIP6OptBindingIdentifier,
    MIP6OptDNSUpdate,
    MIP6OptIPv4AddressAck,
    MIP6OptIPv4CareOfAddress,
    MIP6OptIPv4HomeAddress,
    MIP6OptNATDetection,
)
from tests.unit.test_wire_properties import ba_packet, bu_packet, real_options

pytestmark = pytest.mark.skipif(
    not tshark.available(), reason="not-run: tshark missing (apt-get install tshark)"
)

# One tshark run per example, so few examples of many packets, and no shrinking (a failing
# batch already names the packet and field that disagree).
BATCH = settings(
    max_examples=4,
    phases=[Phase.explicit, Phase.generate],
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
BU_FLAG_FIELDS = ["o", "t", "f", "p", "r", "m", "k", "l", "h", "a"]  # LSB first, as in the layer
WS_BU_FLAG = {
    "a": "mip6.bu.a_flag",
    "h": "mip6.bu.h_flag",
    "l": "mip6.bu.l_flag",
    "k": "mip6.bu.k_flag",
    "m": "mip6.bu.m_flag",
    "r": "mip6.nemo.bu.r_flag",
    "p": "mip6.bu.p_flag",
    "f": "mip6.bu.f_flag",
    "t": "mip6.bu.t_flag",
    "o": "mip6.bu.b_flag",  # Wireshark names RFC 5648's bit after T "B"
}


def _hex(value: str) -> bytes:
    return bytes.fromhex(value.replace(":", ""))


def _ip(value: str) -> str:
    return str(ipaddress.ip_address(value))


def expected_fields(mh: Packet) -> dict[str, list[str]]:
    """What Wireshark should show for the options it knows, in order of appearance."""
    exp: dict[str, list[str]] = {}

    def add(name: str, value: object) -> None:
        exp.setdefault(name, []).append(str(value))

    for opt in real_options(mh):
        raw = bytes(opt)
        if isinstance(opt, MIP6OptBindingIdentifier):
            add("mip6.options.bi", raw.hex())
            add("mip6.bi.bid", opt.bid)
            add("mip6.bi.status", opt.status)
            add("mip6.bi.h_flag", int(opt.flags))
            if opt.coa is not None:
                family = ipaddress.ip_address(opt.coa).version
                add(f"mip6.bi.coa_ipv{family}", _ip(opt.coa))
        elif isinstance(opt, MIP6OptDNSUpdate):
            add("mip6.options.dnsu", raw.hex())
            add("mip6.dnsu.status", opt.status)
            add("mip6.dnsu.flag.r", int(opt.flags))
            # Wireshark 4.0 shows the MN identity two octets short (tshark.py notes).
            add("mip6.dnsu.mn_id", opt.mn_identity[:-2].hex())
        elif isinstance(opt, MIP6OptIPv4HomeAddress):
            add("mip6.options.ipv4ha", raw.hex())
            add("mip6.ipv4ha.preflen", opt.prefix_len)
            add("mip6.ipv4ha.p_flag", int(opt.flags))
            add("mip6.ipv4ha.ha", opt.address)
        elif isinstance(opt, MIP6OptIPv4AddressAck):
            add("mip6.options.ipv4aa", raw.hex())
            add("mip6.ipv4aa.sts", opt.status)
            add("mip6.ipv4ha.preflen", opt.prefix_len)
            add("mip6.ipv4ha.ha", opt.address)
        elif isinstance(opt, MIP6OptNATDetection):
            add("mip6.options.natd", raw.hex())
            add("mip6.natd.f_flag", int(opt.flags))
            add("mip6.natd.refresh_t", opt.refresh_time)
        elif isinstance(opt, MIP6OptIPv4CareOfAddress):
            add("mip6.options.ipv4coa", raw.hex())
            add("mip6.ipv4coa.addr", opt.address)
        elif isinstance(opt, MIP6OptMNID):
            add("mip6.options.mnid", raw.hex())
            add("mip6.mnid.subtype", opt.subtype)
        elif isinstance(opt, MIP6OptMsgAuth):
            add("mip6.options.auth", raw.hex())
            add("mip6.auth.subtype", opt.subtype)
            add("mip6.auth.mobility_spi", opt.mspi)
    return exp


def _normalise(name: str, values: list[str]) -> list[str]:
    if name.startswith("mip6.options."):
        return [_hex(v).hex() for v in values]
    if name == "mip6.dnsu.mn_id":
        return [_hex(v).hex() for v in values]
    if name.endswith(("coa_ipv6", "coa_ipv4", ".ha", ".addr")):
        return [_ip(v) for v in values]
    return values


def crosscheck(packets: list[Packet]) -> None:
    frames = tshark.dissect(packets)
    for n, (pkt, frame) in enumerate(zip(packets, frames, strict=True)):
        mh = pkt[BindingUpdate] if BindingUpdate in pkt else pkt[BindingAck]
        where = f"packet {n}: {mh!r}"
        assert tshark.malformed(frame) == [], where
        assert [str(e) for e in tshark.problems(frame)] == [], where
        # Expected values come from what was meant (the packet as built), not from our own
        # dissection of the bytes, so that an encoder bug cannot agree with itself.
        built = mh
        if isinstance(mh, BindingUpdate):
            assert frame.ints("mip6.bu.seqnr") == [built.seq], where
            assert frame.ints("mip6.bu.lifetime") == [built.mhtime], where
            for bit, letter in enumerate(BU_FLAG_FIELDS):
                assert frame.ints(WS_BU_FLAG[letter]) == [(int(built.flags) >> bit) & 1], (
                    f"{where}: flag {letter.upper()}"
                )
        else:
            assert frame.ints("mip6.ba.status") == [built.status], where
            assert frame.ints("mip6.ba.seqnr") == [built.seq], where
            assert frame.ints("mip6.ba.lifetime") == [built.mhtime], where
        for name, values in expected_fields(built).items():
            got = _normalise(name, frame.get(name, []))
            assert got == _normalise(name, values), f"{where}: {name}"


MESSAGES = st.lists(
    st.one_of(gen.binding_update().map(bu_packet), gen.binding_ack().map(ba_packet)),
    min_size=15,
    max_size=30,
)


@BATCH
@given(MESSAGES)
def test_wireshark_agrees_on_generated_messages(packets: list[Packet]) -> None:
    crosscheck(packets)


@contextmanager
def _bid_coa_reversed() -> Iterator[None]:
    cls = mobility._BIDCareOfAddressField
    old = cls.i2m
    cls.i2m = lambda self, pkt, x: old(self, pkt, x)[::-1]  # type: ignore[method-assign]
    try:
        yield
    finally:
        cls.i2m = old  # type: ignore[method-assign]


def test_crosscheck_catches_a_wrong_encoder() -> None:
    packets = [
        bu_packet(BindingUpdate(options=[MIP6OptBindingIdentifier(bid=7, coa="2001:db8:5::1")]))
    ]
    crosscheck(packets)
    with _bid_coa_reversed(), pytest.raises(AssertionError, match="coa_ipv6"):
        crosscheck(packets)


def test_crosscheck_catches_a_wrong_length() -> None:
    # A DNS Update option one octet longer than its data: Wireshark must object.
    bad = MIP6OptDNSUpdate(mn_identity=b"\x02mn\x07example\x03com\x00")
    bad.olen = len(bytes(bad)) - 1
    with pytest.raises(AssertionError):
        crosscheck([bu_packet(BindingUpdate(options=[bad]))])
