"""The lab's two multicast data paths forward alike: the kernel's MRT6 where the
kernel has it, the userspace forwarder everywhere.

Each test runs on both paths, each in a lab of its own; on a kernel without multicast
routing the kernel half ends not-run with the reason. What is judged is the wire: which
frames reach which link, with which hop limit, and that a UDP socket accepts them (so the
checksum a local sender left to offload was completed before forwarding).
"""

from __future__ import annotations

import ipaddress
import select
import socket
import struct
import time
from collections.abc import Iterator

import pytest

from harness.lab import datapath as datapaths
from harness.lab.fixtures import bring_up
from harness.lab.topology import Lab
from harness.netproto import sockopts
from harness.verdicts import not_run

PORT = 5600
SEND_HOPS = 16
ETH_IPV6 = 14  # the IPv6 header's offset in an Ethernet frame


@pytest.fixture(scope="module", params=[datapaths.USERSPACE, datapaths.KERNEL])
def path_lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    path = request.param
    if path == datapaths.KERNEL and (why := datapaths.kernel_support()["ipv6"]):
        not_run(f"no kernel multicast data path on this machine: {why}")
    lab = bring_up(Lab(datapath=path, mn_links=(1, 2)))
    try:
        assert lab.mcast_state()["core"]["datapath"] == path
        yield lab
    finally:
        lab.down()


def _join(sock: socket.socket, ifindex: int, group: str, source: str | None = None) -> None:
    g = ipaddress.IPv6Address(group)
    if source is None:
        sock.setsockopt(41, sockopts.MCAST_JOIN_GROUP, sockopts.group_req(ifindex, g))
    else:
        s = ipaddress.IPv6Address(source)
        sock.setsockopt(
            41, sockopts.MCAST_JOIN_SOURCE_GROUP, sockopts.group_source_req(ifindex, g, s)
        )


def _receiver(lab: Lab, node: str, ifname: str, group: str, source: str | None) -> socket.socket:
    rx = lab.socket(node)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    rx.bind(("::", PORT))
    _join(rx, lab.ifindex(node, ifname), group, source)
    return rx


def _sniffer(lab: Lab, node: str, ifname: str) -> socket.socket:
    s = lab.socket(node, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x86DD))
    s.bind((ifname, 0))
    return s


def _udp_frames(sniffer: socket.socket, group: str) -> list[tuple[int, bytes]]:
    """(hop limit, payload) of every UDP datagram to `group` the link carried so far."""
    g = ipaddress.IPv6Address(group).packed
    out = []
    while select.select([sniffer], [], [], 0)[0]:
        frame = sniffer.recv(4096)
        ip = frame[ETH_IPV6:]
        if len(ip) >= 48 and ip[6] == socket.IPPROTO_UDP and ip[24:40] == g:
            out.append((ip[7], ip[48:]))
    return out


def _stream(
    lab: Lab,
    node: str,
    ifname: str,
    group: str,
    rx: socket.socket,
    want: int,
    hops: int = SEND_HOPS,
) -> list[bytes]:
    """Send numbered datagrams from node until rx got `want` of them (deadline 5 s)."""
    with lab.socket(node) as tx:
        tx.setsockopt(41, socket.IPV6_MULTICAST_HOPS, hops)
        tx.setsockopt(41, socket.IPV6_MULTICAST_IF, lab.ifindex(node, ifname))
        got: list[bytes] = []
        deadline, n = time.monotonic() + 5.0, 0
        while time.monotonic() < deadline and len(got) < want:
            tx.sendto(struct.pack("!I", n), (group, PORT))
            n += 1
            while select.select([rx], [], [], 0.02)[0]:
                got.append(rx.recv(100))
        return got


def test_from_behind_the_core_two_hops(path_lab: Lab) -> None:
    """(S,G) from the source behind the core reaches a listener on link 1 through core and
    ar1, hop limit down by exactly two; link 2, where nobody listens, never carries it."""
    lab, p = path_lab, path_lab.plan
    group, source = "ff3e::8000:61", str(p.mcast_source.host6)
    with (
        _receiver(lab, "mn", "mn0", group, source) as rx,
        _sniffer(lab, "mn", "mn0") as link1,
        _sniffer(lab, "mn", "mn1") as link2,
    ):
        got = _stream(lab, "src", "eth0", group, rx, want=5)
        assert len(got) >= 5, f"{len(got)} datagrams reached the listener on link 1"
        seen1, seen2 = _udp_frames(link1, group), _udp_frames(link2, group)
    assert seen1 and {h for h, _ in seen1} == {SEND_HOPS - 2}
    payloads = [d for _, d in seen1]
    assert len(payloads) == len(set(payloads)), "a datagram was forwarded twice"
    assert not seen2, "a link without listeners carried the group"


def test_from_an_access_link_goes_up_and_over_never_back(path_lab: Lab) -> None:
    """A source on link 1 (the local CDN) for listeners on links 1 and 2: ar1 sends it
    upstream (RFC 4605 §4.1), the core down to ar2, 3 hops; link 1 carries only the
    original, although it has a listener (never back out of the arrival interface)."""
    lab, p = path_lab, path_lab.plan
    group, source = "ff3e::8000:62", str(p.cdn6)
    with (
        _receiver(lab, "mn", "mn1", group, source) as rx,
        _receiver(lab, "mn", "mn0", group, source),
        _sniffer(lab, "mn", "mn0") as link1,
        _sniffer(lab, "mn", "mn1") as link2,
    ):
        got = _stream(lab, "cdn", "eth0", group, rx, want=5)
        assert len(got) >= 5, f"{len(got)} datagrams reached the listener on link 2"
        seen1, seen2 = _udp_frames(link1, group), _udp_frames(link2, group)
    assert {h for h, _ in seen2} == {SEND_HOPS - 3}
    assert {h for h, _ in seen1} == {SEND_HOPS}, "link 1 got a forwarded copy back"
    assert len(seen1) == len({d for _, d in seen1})


def test_hop_limit_and_scope_end_forwarding(path_lab: Lab) -> None:
    """A hop limit that runs out at the core, and a link-local group, stay where they are."""
    lab, p = path_lab, path_lab.plan
    source = str(p.mcast_source.host6)
    short, local = "ff3e::8000:63", "ff12::8000:64"
    with _receiver(lab, "mn", "mn0", short, source) as rx, _sniffer(lab, "mn", "mn0") as link1:
        _join(rx, lab.ifindex("mn", "mn0"), local)
        # Hop limit 2: the core may forward (2 -> 1) but ar1 must not (RFC 8200 §3).
        assert not _stream(lab, "src", "eth0", short, rx, want=1, hops=2)
        assert not _stream(lab, "src", "eth0", local, rx, want=1)
        assert not _udp_frames(link1, short) and not _udp_frames(link1, local)


def test_forced_kernel_path_without_kernel_support_is_a_clear_stop() -> None:
    if datapaths.kernel_support()["ipv6"] is None:
        not_run("this kernel has multicast routing: nothing to refuse")
    with pytest.raises(datapaths.DatapathUnavailable, match="userspace"):
        datapaths.choose("kernel")
    assert datapaths.choose("auto") == datapaths.USERSPACE
    with pytest.raises(ValueError, match="auto, kernel, userspace"):
        datapaths.choose("fast")
