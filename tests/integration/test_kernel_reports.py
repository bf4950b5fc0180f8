"""The kernel's own MLDv2 and IGMPv3 reports, decoded whole: by the project's one parser
(compact.parse_report), by the scapy layers (harness.wire.mcast_reports), with tshark as the
oracle.

Two namespaces joined by a veth: in the host one, sockets join ASM groups, SSM groups with
several sources, EXCLUDE-mode groups with blocked sources and a dozen groups at once, for
IPv6 and IPv4; the other side captures (AF_PACKET) the state-change reports these joins
send, the current-state reports that answer its General Queries (RFC 3810 §6.2, RFC 3376
§5.2), and the state-change reports of leaving a source and the dozen groups: every record
type, reports of 15 and 16 records. Waits are on the capture socket with deadlines. Root (or
a user namespace) needed; not-run otherwise.
"""

from __future__ import annotations

import ipaddress
import os
import select
import socket
import struct
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from scapy.layers.igmp import IGMPv3_MQ
from scapy.layers.inet import IP, IPOption_Router_Alert
from scapy.layers.inet6 import ICMPv6MLQuery2, IPv6, IPv6ExtHdrHopByHop, RouterAlert

from harness.lab import netns, rtnl
from harness.verdicts import not_run
from harness.wire import compact
from harness.wire import tshark as ts
from harness.wire.mcast_reports import IGMPv3Report, MLDv2Report

ETH_P_ALL, ETH_P_IP, ETH_P_IPV6 = 0x0003, 0x0800, 0x86DD
ETH_P_ALL_NET = socket.htons(ETH_P_ALL)
PACKET_OUTGOING = 4
MCAST_JOIN_GROUP, MCAST_BLOCK_SOURCE, MCAST_JOIN_SOURCE_GROUP = 42, 43, 46  # linux/in.h
MCAST_LEAVE_SOURCE_GROUP = 47
IP_ADD_SOURCE_MEMBERSHIP, IP_DROP_SOURCE_MEMBERSHIP = 39, 40
IS_IN, IS_EX, TO_IN, BLOCK = 1, 2, 3, 6
HOST_V4, QUERIER_V4 = "10.99.0.2", "10.99.0.1"
DEADLINE = 8.0

V6 = {
    "asm": ("ff0e::db8:1", ()),
    "ssm": ("ff3e::8000:1", ("2001:db8::a", "2001:db8::b", "2001:db8::c")),
    "exclude": ("ff0e::db8:2", ("2001:db8::d", "2001:db8::e")),
}
V4 = {
    "asm": ("239.1.1.1", ()),
    "ssm": ("232.1.1.1", ("10.1.1.1", "10.1.1.2", "10.1.1.3")),
    "exclude": ("239.1.1.2", ("10.1.1.4", "10.1.1.5")),
}
DOZEN6 = tuple(f"ff0e::db8:1{i:02x}" for i in range(12))
DOZEN4 = tuple(f"239.2.2.{i}" for i in range(1, 13))


def _sockaddr(addr: str) -> bytes:
    """struct sockaddr_in(6) padded to struct sockaddr_storage."""
    ip = ipaddress.ip_address(addr)
    if ip.version == 6:
        return struct.pack("=HHI16sI", socket.AF_INET6, 0, 0, ip.packed, 0).ljust(128, b"\0")
    return struct.pack("=HH4s", socket.AF_INET, 0, ip.packed).ljust(128, b"\0")


def _group_req(ifindex: int, group: str, source: str | None = None) -> bytes:
    req = struct.pack("=I4x", ifindex) + _sockaddr(group)
    return req + (_sockaddr(source) if source else b"")


def _norm(address: str) -> str:
    return str(ipaddress.ip_address(address))


@pytest.fixture
def pair() -> Iterator[tuple[str, str]]:
    """(host, querier): two fresh namespaces, h0 <-> q0, IPv4 addresses, no DAD."""
    if netns.missing_privileges():
        not_run(f"needs namespaces: {netns.missing_privileges()}", hint=netns.PRIVILEGE_HINT)
    tag = f"dmmr-{os.getpid()}-{uuid.uuid4().hex[:6]}"  # reaped if this run is killed
    host, querier = f"{tag}h", f"{tag}q"
    made: list[str] = []
    try:
        for ns in (host, querier):
            netns.create(ns)
            made.append(ns)
        fd = os.open(netns.path(querier), os.O_RDONLY | os.O_CLOEXEC)
        try:
            with rtnl.Rtnl(host) as nl:
                nl.add(rtnl.new_veth(rtnl.End("h0"), rtnl.End("q0", fd, up=False)), "veth")
                nl.commit()
        finally:
            os.close(fd)
        for ns, ifname, v4 in ((host, "h0", HOST_V4), (querier, "q0", QUERIER_V4)):
            netns.run_in(ns, _configure, ifname)
            index = netns.if_nametoindex(ns, ifname)
            with rtnl.Rtnl(ns) as nl:
                nl.add(rtnl.addr(index, v4, 24), "IPv4 address")
                nl.add(rtnl.set_link(index, up=True), "link up")
                nl.commit()
        yield host, querier
    finally:
        for ns in made:
            netns.delete(ns)


def _configure(ifname: str) -> None:
    for key, value in (
        (f"net.ipv6.conf.{ifname}.accept_dad", 0),
        (f"net.ipv6.conf.{ifname}.force_mld_version", 2),
        (f"net.ipv4.conf.{ifname}.force_igmp_version", 3),
    ):
        netns.write_sysctl(key, value)


def _join_all(host: str, socks: dict[str, socket.socket]) -> None:
    """Every kind of membership, as applications ask for it (each on its own socket)."""
    index = netns.if_nametoindex(host, "h0")

    def sock(family: int, name: str = "") -> socket.socket:
        socks[name or str(len(socks))] = netns.socket_in(host, family, socket.SOCK_DGRAM)
        return socks[name or str(len(socks) - 1)]

    v6 = socket.IPPROTO_IPV6
    sock(socket.AF_INET6).setsockopt(v6, MCAST_JOIN_GROUP, _group_req(index, V6["asm"][0]))
    s = sock(socket.AF_INET6, "ssm6")
    for src in V6["ssm"][1]:
        s.setsockopt(v6, MCAST_JOIN_SOURCE_GROUP, _group_req(index, V6["ssm"][0], src))
    _exclude(sock(socket.AF_INET6), v6, index, *V6["exclude"])
    s = sock(socket.AF_INET6, "dozen6")
    for g in DOZEN6:
        s.setsockopt(v6, MCAST_JOIN_GROUP, _group_req(index, g))

    v4, me = socket.IPPROTO_IP, socket.inet_aton(HOST_V4)
    mreqn = struct.pack("=4s4si", socket.inet_aton(V4["asm"][0]), me, index)
    sock(socket.AF_INET).setsockopt(v4, socket.IP_ADD_MEMBERSHIP, mreqn)
    s = sock(socket.AF_INET, "ssm4")
    for src in V4["ssm"][1]:  # struct ip_mreq_source: group, interface, source
        mreq = socket.inet_aton(V4["ssm"][0]) + me + socket.inet_aton(src)
        s.setsockopt(v4, IP_ADD_SOURCE_MEMBERSHIP, mreq)
    _exclude(sock(socket.AF_INET), v4, index, *V4["exclude"])  # MCAST_* at IPPROTO_IP
    s = sock(socket.AF_INET, "dozen4")
    for g in DOZEN4:
        mreqn = struct.pack("=4s4si", socket.inet_aton(g), me, index)
        s.setsockopt(v4, socket.IP_ADD_MEMBERSHIP, mreqn)


def _exclude(
    sock: socket.socket, level: int, index: int, group: str, blocked: tuple[str, ...]
) -> None:
    """EXCLUDE mode: the group joined, then sources blocked (RFC 3678 §5.2, Linux's API)."""
    sock.setsockopt(level, MCAST_JOIN_GROUP, _group_req(index, group))
    for src in blocked:
        sock.setsockopt(level, MCAST_BLOCK_SOURCE, _group_req(index, group, src))


def _leave_some(host: str, socks: dict[str, socket.socket]) -> None:
    """One source of each SSM group dropped (a Block Old Sources record), the dozen groups
    left (Change To Include Mode records with no source)."""
    index = netns.if_nametoindex(host, "h0")
    group, sources = V6["ssm"]
    socks["ssm6"].setsockopt(
        socket.IPPROTO_IPV6, MCAST_LEAVE_SOURCE_GROUP, _group_req(index, group, sources[0])
    )
    group, sources = V4["ssm"]
    mreq = socket.inet_aton(group) + socket.inet_aton(HOST_V4) + socket.inet_aton(sources[0])
    socks["ssm4"].setsockopt(socket.IPPROTO_IP, IP_DROP_SOURCE_MEMBERSHIP, mreq)
    socks.pop("dozen6").close()
    socks.pop("dozen4").close()


def _left() -> set[tuple[int, str, frozenset[str]]]:
    """The State-Change records `_leave_some` must give (RFC 3810 §6.1, RFC 3376 §5.1)."""
    want = {(BLOCK, _norm(g["ssm"][0]), frozenset({g["ssm"][1][0]})) for g in (V6, V4)}
    return want | {(TO_IN, _norm(g), frozenset()) for g in DOZEN6 + DOZEN4}


def _general_queries() -> list[tuple[int, bytes, bytes]]:
    """(ethertype, destination MAC, packet): an MLDv2 and an IGMPv3 General Query asking
    for an answer within 0.1 s."""
    mld = (
        IPv6(src="fe80::1", dst="ff02::1", hlim=1)
        / IPv6ExtHdrHopByHop(options=[RouterAlert(value=0)])
        / ICMPv6MLQuery2(mrd=100)
    )
    igmp = IP(src=QUERIER_V4, dst="224.0.0.1", ttl=1, options=[IPOption_Router_Alert()]) / (
        IGMPv3_MQ(mrcode=1)
    )
    return [
        (ETH_P_IPV6, bytes.fromhex("333300000001"), bytes(mld)),
        (ETH_P_IP, bytes.fromhex("01005e000001"), bytes(igmp)),
    ]


@dataclass
class Capture:
    """The reports the querier side has received, and the records they carried."""

    packets: list[bytes] = field(default_factory=list)
    current: dict[str, tuple[int, frozenset[str]]] = field(default_factory=dict)
    changes: set[tuple[int, str, frozenset[str]]] = field(default_factory=set)

    def take(self, packet: bytes, queried: bool) -> None:
        found = compact.report_in_packet(packet)
        if found is None:
            return
        self.packets.append(packet)
        for r in compact.parse_report(found[0]).records:
            if r.rtype in (IS_IN, IS_EX) and queried:
                self.current[r.maddr] = (r.rtype, frozenset(r.sources))
            self.changes.add((r.rtype, r.maddr, frozenset(r.sources)))

    def missing_current(self, want: dict[str, tuple[int, frozenset[str]]]) -> object:
        return {g: w for g, w in want.items() if self.current.get(g) != w}


def _wanted() -> dict[str, tuple[int, frozenset[str]]]:
    """The Current-State records the memberships must give (RFC 3810 §5.2.12)."""
    want: dict[str, tuple[int, frozenset[str]]] = {}
    for groups in (V6, V4):
        want[groups["asm"][0]] = (IS_EX, frozenset())
        want[groups["ssm"][0]] = (IS_IN, frozenset(groups["ssm"][1]))
        want[groups["exclude"][0]] = (IS_EX, frozenset(groups["exclude"][1]))
    for g in DOZEN6 + DOZEN4:
        want[g] = (IS_EX, frozenset())
    return {_norm(g): w for g, w in want.items()}


class Querier:
    """The other end of the veth: captures what arrives (AF_PACKET), sends General Queries."""

    def __init__(self, ns: str) -> None:
        self.cap = netns.socket_in(ns, socket.AF_PACKET, socket.SOCK_DGRAM, ETH_P_ALL_NET)
        self.cap.bind(("q0", ETH_P_ALL))
        self.cap.setblocking(False)
        self.send = netns.socket_in(ns, socket.AF_PACKET, socket.SOCK_DGRAM, 0)
        self.seen = Capture()

    def close(self) -> None:
        self.cap.close()
        self.send.close()

    def until(self, missing: Callable[[], object], what: str, query: bool = False) -> None:
        """Take reports until `missing()` is empty, within DEADLINE; with `query`, a General
        Query of each family first and again each second (should one be lost)."""
        deadline, next_query = time.monotonic() + DEADLINE, time.monotonic()
        while missing():
            now = time.monotonic()
            if now > deadline:
                raise AssertionError(f"no {what} within {DEADLINE} s for {missing()}")
            if query and now >= next_query:
                for ethertype, mac, packet in _general_queries():
                    self.send.sendto(packet, ("q0", ethertype, 0, 0, mac))
                next_query = now + 1.0
            wake = min(next_query, deadline) if query else deadline
            select.select([self.cap], [], [], max(wake - now, 0))
            while True:
                try:
                    data, addr = self.cap.recvfrom(65535)
                except BlockingIOError:
                    break
                if addr[2] != PACKET_OUTGOING:
                    self.seen.take(data, queried=query)


def _capture_reports(host: str, querier_ns: str) -> Capture:
    """State-change reports of the joins, current-state reports answering the queries, and
    state-change reports of some leaves."""
    querier, socks = Querier(querier_ns), dict[str, socket.socket]()
    try:
        _join_all(host, socks)
        want = _wanted()
        querier.until(lambda: querier.seen.missing_current(want), "current-state report", True)
        _leave_some(host, socks)
        left = _left()
        querier.until(lambda: left - querier.seen.changes, "state-change report")
    finally:
        for s in socks.values():
            s.close()
        querier.close()
    return querier.seen


def _records(packet: bytes) -> list[tuple[int, str, tuple[str, ...], bytes]]:
    found = compact.report_in_packet(packet)
    assert found is not None
    state = compact.parse_report(*found)
    assert state.checksum_ok, f"checksum of {packet.hex()}"
    return [(r.rtype, r.maddr, r.sources, r.auxdata) for r in state.records]


def _scapy(packet: bytes) -> list[tuple[int, str, tuple[str, ...], bytes]]:
    layer = IPv6(packet)[MLDv2Report] if packet[0] >> 4 == 6 else IP(packet)[IGMPv3Report]
    return [
        (r.rtype, _norm(r.maddr), tuple(map(_norm, r.sources)), bytes(r.auxdata))
        for r in layer.records
    ]


def test_kernel_reports_are_decoded_whole(pair: tuple[str, str]) -> None:
    host, querier = pair
    cap = _capture_reports(host, querier)
    decoded = [_records(p) for p in cap.packets]
    for packet, records in zip(cap.packets, decoded, strict=True):
        assert _scapy(packet) == records, f"scapy and the parser differ on {packet.hex()}"
    for family in (6, 4):
        sizes = [len(r) for p, r in zip(cap.packets, decoded, strict=True) if p[0] >> 4 == family]
        assert sizes and max(sizes) >= 13, f"IPv{family}: no report of 13+ records ({sizes})"
    if not ts.available():
        not_run("tshark missing; apt-get install tshark (the parser and scapy agreed)")
    frames = ts.dissect(cap.packets, linktype=ts.LINKTYPE_RAW)
    for n, (packet, records, frame) in enumerate(zip(cap.packets, decoded, frames, strict=True)):
        ours = ts.ReportSummary.of([compact.McastRecord(*r) for r in records])
        assert ts.report_summary(frame, packet[0] >> 4) == ours, f"packet {n + 1}: {packet.hex()}"
        assert not ts.malformed(frame), (n + 1, ts.malformed(frame))
