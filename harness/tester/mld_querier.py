"""The home agent as MLD querier for its mobile nodes (draft §6, RFC 6275 §10.4.3), from
the tester's side: the MLD Query found inside the HA's tunnel to a care-of address, read
through `harness.wire.ipv6`, and what RFC 3810 §5.1 asks of a General Query.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import Any

from harness.tester.conversation import Predicate, from_src, inbound, ipv6_bytes, to_dst
from harness.tester.home_agent import HomeAgentUnderTest
from harness.wire import ipv6
from harness.wire.ipv6 import Packet6

MLD_QUERY = 130
ROUTER_ALERT_MLD = b"\0\0"  # RFC 2711 Router Alert value 0: MLD


@dataclass(frozen=True)
class Query:
    """An MLD message found inside a tunnel from the HA, as the tester reads it."""

    src: ipaddress.IPv6Address
    dst: ipaddress.IPv6Address
    hop_limit: int
    router_alert: bool
    icmp: bytes
    checksum_ok: bool

    @property
    def max_response_delay(self) -> float:
        """RFC 3810 §5.1.3, seconds."""
        code = struct.unpack_from("!H", self.icmp, 4)[0]
        if code >= 0x8000:
            code = ((code & 0x0FFF) | 0x1000) << (((code >> 12) & 0x7) + 3)
        return code / 1000


def router_alert(p: Packet6) -> bool:
    """Does the packet's Hop-by-Hop Options header, if it comes first, carry a Router Alert
    for MLD (RFC 2711, RFC 3810 §5)?"""
    return (ipv6.ROUTER_ALERT, ROUTER_ALERT_MLD) in p.hop_by_hop_options()


def tunnelled_mld(pkt: Any) -> Query | None:
    """The MLD Query in an IPv6-in-IPv6 packet (ICMPv6 type 130 inside), or None."""
    raw = ipv6_bytes(pkt)
    outer = ipv6.parse(raw) if raw is not None else None
    inner = outer.inner() if outer is not None else None
    if inner is None:
        return None
    icmp = inner.payload
    if inner.upper != ipv6.ICMPV6 or len(icmp) < 4 or icmp[0] != MLD_QUERY:
        return None
    return Query(
        inner.src,
        inner.dst,
        inner.hop_limit,
        router_alert(inner),
        icmp,
        inner.transport_checksum_ok(),
    )


def query_to(ha: HomeAgentUnderTest, coa: str) -> Predicate:
    return (
        inbound
        & from_src(ha.address)
        & to_dst(coa)
        & Predicate(lambda p: tunnelled_mld(p) is not None, "an MLD Query inside the tunnel")
    )


def check_general_query(q: Query, interval: float) -> None:
    """RFC 3810 §5.1: an MLDv2 General Query, from a link-local address (§5.1.14: any of
    the HA's, which one is not judged), to ff02::1, hop limit 1, with a Router Alert, a
    right checksum."""
    problems = []
    if len(q.icmp) < 28:
        problems.append(f"{len(q.icmp)} octets: an MLDv1 query, not MLDv2 (at least 28)")
    elif q.icmp[8:24] != bytes(16) or struct.unpack_from("!H", q.icmp, 26)[0] != 0:
        problems.append("not a General Query (a multicast address or sources are set)")
    if not q.src.is_link_local:
        problems.append(f"source {q.src}, not a link-local address (RFC 3810 §5.1.14)")
    if q.dst != ipaddress.IPv6Address("ff02::1"):
        problems.append(f"destination {q.dst}, not ff02::1")
    if q.hop_limit != 1:
        problems.append(f"hop limit {q.hop_limit}, not 1")
    if not q.router_alert:
        problems.append("no Router Alert option (RFC 3810 §5)")
    if not q.checksum_ok:
        problems.append("bad ICMPv6 checksum")
    if len(q.icmp) >= 28 and q.max_response_delay > interval:
        problems.append(
            f"Maximum Response Delay {q.max_response_delay:g} s exceeds the Query Interval "
            f"{interval:g} s (RFC 3810 §9.3)"
        )
    assert not problems, "the tunnelled MLD Query is wrong: " + "; ".join(problems)
