"""Predicates on captured packets read through the project's one IPv6 walker
(`harness.wire.ipv6`): IPv6-in-IPv6 tunnels, native datagrams and segments, the Mobility
Header messages of a home registration, and MLD. The interop suite and the handover machine
judge the wire with them; a predicate is a `conversation.Predicate` that says what it tests.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from harness.tester.conversation import Predicate, ipv6_bytes
from harness.wire import compact, ipv6
from harness.wire.ipv6 import Packet6

ETH_HLEN = 14
ETH_P_IPV6 = b"\x86\xdd"
MLD_QUERY, MLDV2_REPORT = 130, 143
ALTERNATE_COA = 3  # the Alternate Care-of Address option (RFC 6275 §6.2.5)
FLAG_H = 0x100  # in MobilityMessage.bu_flags (RFC 6275 §6.1.7: A 0x200, H 0x100)


def frame_packet6(data: bytes) -> Packet6 | None:
    """The IPv6 packet of an Ethernet frame (the lab's links carry no VLAN tags)."""
    if len(data) < ETH_HLEN + ipv6.HEADER_LEN or data[12:14] != ETH_P_IPV6:
        return None
    return ipv6.parse(data[ETH_HLEN:])


def packet6(pkt: Any) -> Packet6 | None:
    """The outermost IPv6 packet of a captured (scapy) packet, or None."""
    raw = ipv6_bytes(pkt)
    return ipv6.parse(raw) if raw is not None else None


def address(a: str) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address(a)


def tunnelled(
    outer_src: str, outer_dst: str, inner: Callable[[Packet6], bool], what: str
) -> Predicate:
    """An IPv6-in-IPv6 packet from `outer_src` to `outer_dst` whose inner packet passes
    `inner` (RFC 6275 §10.4.1, RFC 2473)."""
    a, b = address(outer_src), address(outer_dst)

    def test(pkt: Any) -> bool:
        p = packet6(pkt)
        if p is None or p.src != a or p.dst != b:
            return False
        q = p.inner()
        return q is not None and inner(q)

    return Predicate(test, f"{what} tunnelled from {a} to {b}")


def native(test_ip: Callable[[Packet6], bool], what: str) -> Predicate:
    def test(pkt: Any) -> bool:
        p = packet6(pkt)
        return p is not None and p.upper != ipv6.IPV6_IN_IPV6 and test_ip(p)

    return Predicate(test, f"{what} (not tunnelled)")


def udp_to(group: str, port: int | None = None) -> Callable[[Packet6], bool]:
    g = address(group)

    def test(p: Packet6) -> bool:
        ports = p.ports()
        return (
            p.upper == ipv6.UDP
            and p.dst == g
            and ports is not None
            and (port is None or ports[1] == port)
        )

    return test


def channel(group: str, source: str, port: int | None = None) -> Callable[[Packet6], bool]:
    """A datagram of the SSM channel (source, group) (RFC 4607), to `port`."""
    to_group, src = udp_to(group, port), address(source)
    return lambda p: to_group(p) and p.src == src


def tcp_between(src: str, dst: str) -> Callable[[Packet6], bool]:
    s, d = address(src), address(dst)
    return lambda p: p.upper == ipv6.TCP and p.src == s and p.dst == d


def with_hoa(test: Callable[[Packet6], bool], hoa: str) -> Callable[[Packet6], bool]:
    """`test`, and the packet carries the Home Address option `hoa` (RFC 6275 §6.3)."""
    packed = address(hoa).packed
    return lambda p: test(p) and p.hoa == packed


# ----------------------------------------------------------------------------- mobility


def mobility_header(pkt: Any) -> compact.MobilityMessage | None:
    """The Mobility Header message of a captured packet (compact codec), or None."""
    raw = ipv6_bytes(pkt)
    p = ipv6.parse(raw) if raw is not None else None
    if raw is None or p is None or p.upper != ipv6.MOBILITY:
        return None
    try:
        return compact.parse_packet(raw)
    except (compact.Malformed, ValueError):
        return None


def alternate_coa(msg: compact.MobilityMessage) -> str | None:
    """The Alternate Care-of Address option of a BU (RFC 6275 §6.2.5), if any."""
    for o in msg.options:
        if o.otype == ALTERNATE_COA and len(o.data) == 16:
            return str(ipaddress.IPv6Address(o.data))
    return None


def binding_update(
    ha: str, hoa: str, coa: str | None = None, *, deregistration: bool = False
) -> Predicate:
    """A BU to `ha` for home address `hoa` (from care-of address `coa`): a registration
    (lifetime > 0, H flag set, RFC 6275 §11.7.1) or a deregistration (lifetime 0)."""
    ha, hoa = str(address(ha)), str(address(hoa))
    coa = str(address(coa)) if coa is not None else None

    def test(pkt: Any) -> bool:
        msg = mobility_header(pkt)
        if msg is None or msg.mhtype != compact.MHType.BU or msg.dst != ha or msg.hoa != hoa:
            return False
        if coa is not None and (alternate_coa(msg) or msg.src) != coa:
            return False
        if deregistration:
            return msg.lifetime == 0
        return msg.lifetime > 0 and bool(msg.bu_flags & FLAG_H)

    kind = "deregistration" if deregistration else "home registration"
    return Predicate(
        test, f"a {kind} BU to {ha} for {hoa}" + (f" from care-of address {coa}" if coa else "")
    )


def binding_ack(ha: str, hoa: str, *, deregistration: bool = False) -> Predicate:
    """A BA from `ha` for `hoa` that accepts (status < 128) a registration (lifetime > 0)
    or a deregistration (lifetime 0)."""
    ha, hoa = str(address(ha)), str(address(hoa))

    def test(pkt: Any) -> bool:
        msg = mobility_header(pkt)
        return (
            msg is not None
            and msg.mhtype == compact.MHType.BA
            and msg.src == ha
            and (msg.rh2_hoa or msg.dst) == hoa
            and msg.ba_status < 128
            and (msg.lifetime == 0) == deregistration
        )

    kind = "a deregistration" if deregistration else "the binding"
    return Predicate(test, f"a BA from {ha} accepting {kind} of {hoa}")


def refused(pkt: Any) -> bool:
    """A BA that refuses a binding (status >= 128), or a Binding Error."""
    msg = mobility_header(pkt)
    return msg is not None and (
        msg.mhtype == compact.MHType.BE
        or (msg.mhtype == compact.MHType.BA and msg.ba_status >= 128)
    )


# ----------------------------------------------------------------------------- MLD


def mld_groups(p: Packet6) -> tuple[str, ...] | None:
    """The groups an MLDv2 Report asks to receive (RFC 3810 §5.2.12): records of EXCLUDE
    mode, and INCLUDE-mode or ALLOW records with sources; a leave (TO_IN {}, BLOCK) asks
    for nothing. None when `p` is no Report."""
    body = p.payload
    if p.upper != ipv6.ICMPV6 or len(body) < 8 or body[0] != MLDV2_REPORT:
        return None
    return tuple(
        r.maddr
        for r in compact.records_before_overrun(body)
        if r.rtype in (2, 4) or (r.rtype in (1, 3, 5) and r.sources)
    )


def general_query() -> Predicate:
    """An MLD General Query (RFC 3810 §5.1.10: Multicast Address ::) on the link."""

    def test(pkt: Any) -> bool:
        p = packet6(pkt)
        body = p.payload if p is not None else b""
        return (
            p is not None
            and p.upper == ipv6.ICMPV6
            and len(body) >= 24
            and body[0] == MLD_QUERY
            and body[8:24] == bytes(16)
        )

    return Predicate(test, "an MLD General Query")


def mac_of(frame: bytes) -> str:
    """The source hardware address of an Ethernet frame."""
    return ":".join(f"{b:02x}" for b in frame[6:12])


def report_naming(group: str, mac: str) -> Predicate:
    """An MLDv2 Report sent from `mac` that asks for `group` (see `mld_groups`)."""
    g = str(address(group))

    def test(pkt: Any) -> bool:
        raw = bytes(getattr(pkt, "original", None) or pkt)  # the frame as captured
        if mac_of(raw) != mac:
            return False
        p = frame_packet6(raw)
        groups = mld_groups(p) if p is not None else None
        return bool(groups) and g in (groups or ())

    return Predicate(test, f"MLDv2 Report from {mac} asking for {g}")
