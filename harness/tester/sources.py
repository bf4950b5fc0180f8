"""Real multicast sources for the HA suite, and the tester's view of where their data
goes: a UDP socket in a lab node (`Source`), the HA's two interfaces and the tester's own
(`Wire`), and predicates on the datagrams (native, or inside the HA's tunnel to a CoA).

A negative verdict ("not tunnelled") is only given for a datagram that was seen arriving at
the HA's interface, so that "the HA never got it" cannot pass for "the HA did not forward
it"; when the lab does not deliver it, the verdict is inconclusive.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any

from scapy.layers.inet import UDP
from scapy.layers.inet6 import IPerror6, IPv6

from harness import verdicts
from harness.lab.topology import Lab
from harness.tester.conversation import (
    ExpectationFailed,
    Link,
    Predicate,
    from_src,
    inbound,
    to_dst,
)
from harness.tester.home_agent import HomeAgentUnderTest, expect_in_time

PORT = 5004
# From a datagram's arrival at the HA's interface to its copy at the CoA: the HA's reaction
# window, from its profile's timers (HomeAgentUnderTest.reaction_window, INT-15).
# A source's datagrams until one reaches the HA: the core's MLD proxy starts forwarding a
# group only once the HA's join has reached it (the lab's proxy, not the SUT, sets this).
REACH_TRIES, REACH_EACH = 20, 0.2


def ip6_layers(pkt: Any) -> list[Any]:
    """The IPv6 headers of a packet, outermost first, up to an ICMP error's quotation."""
    out = []
    for layer in pkt.iterpayloads():
        if isinstance(layer, IPerror6):
            break
        if isinstance(layer, IPv6):
            out.append(layer)
    return out


def carries(group: str, payload: bytes, *, tunnelled: bool) -> Predicate:
    """A UDP datagram to [group]:PORT with exactly `payload`, inside an IPv6-in-IPv6 tunnel
    (tunnelled=True) or as it is (False)."""
    want = ipaddress.ip_address(group)

    def test(pkt: Any) -> bool:
        for depth, ip in enumerate(ip6_layers(pkt)):
            udp = ip.payload
            if (
                isinstance(udp, UDP)
                and ipaddress.ip_address(ip.dst) == want
                and udp.dport == PORT
                and bytes(udp.payload) == payload
            ):
                return tunnelled == (depth > 0)
        return False

    how = "tunnelled" if tunnelled else "native"
    return Predicate(test, f"{how} UDP to [{group}]:{PORT} carrying {payload!r}")


def tunnelled_to(ha: HomeAgentUnderTest, coa: str, group: str, payload: bytes) -> Predicate:
    """The datagram in the HA's tunnel to `coa` (RFC 6275 §10.4.2: outer source the HA,
    outer destination the care-of address)."""
    return inbound & from_src(ha.address) & to_dst(coa) & carries(group, payload, tunnelled=True)


@dataclass
class Source:
    """A real multicast sender: a UDP socket in a lab node."""

    node: str
    address: str
    sock: socket.socket
    ifindex: int

    def send(self, group: str, payload: bytes) -> None:
        # A group of link-local scope (ff02::/16) needs the link named by the scope id.
        scope = self.ifindex if (ipaddress.IPv6Address(group).packed[1] & 0xF) <= 2 else 0
        self.sock.sendto(payload, (group, PORT, 0, scope))


@dataclass
class Wire:
    """The tester's view: its own interface (the CoAs), and the HA's two interfaces (what
    reaches the HA from the core, and what is on its access link)."""

    ha: HomeAgentUnderTest
    mn: Link
    uplink: Link
    access: Link
    src: Source
    cdn: Source

    def watch_for(self, source: Source) -> Link:
        return self.uplink if source.node == "src" else self.access

    def reach_ha(self, source: Source, group: str, tag: str) -> bytes:
        """Send datagrams tagged `tag` from `source` to `group` until one is seen arriving
        at the HA's interface; its payload. Inconclusive if none does."""
        watch = self.watch_for(source)
        for i in range(REACH_TRIES):
            payload = f"{tag}-{i}".encode()
            source.send(group, payload)
            try:
                watch.expect(inbound & carries(group, payload, tunnelled=False), within=REACH_EACH)
                return payload
            except ExpectationFailed:
                continue
        verdicts.inconclusive(
            f"no datagram from {source.node} ({source.address}) to {group} reached the home "
            f"agent's {watch.iface} in {REACH_TRIES * REACH_EACH:g} s: the lab did not deliver"
        )

    def expect_tunnelled(self, source: Source, coa: str, group: str, tag: str) -> Any:
        """A datagram from `source` to `group` reaches the HA and then `coa` in its tunnel."""
        mark = self.mn.mark()
        payload = self.reach_ha(source, group, tag)
        return expect_in_time(
            self.mn, tunnelled_to(self.ha, coa, group, payload), self.forward_within, since=mark
        )

    @property
    def forward_within(self) -> float:
        return self.ha.reaction_window

    def expect_not_tunnelled(self, source: Source, coa: str, group: str, tag: str) -> None:
        """A datagram from `source` to `group` reaches the HA, and no copy of it reaches
        `coa` (in a tunnel or not)."""
        mark = self.mn.mark()
        payload = self.reach_ha(source, group, tag)
        self.mn.expect_none(
            inbound & to_dst(coa) & carries(group, payload, tunnelled=True),
            during=self.forward_within,
            since=mark,
        )


def open_source(lab: Lab, node: str, address: object) -> Source:
    sock = lab.socket(node, socket.AF_INET6, socket.SOCK_DGRAM)
    ifindex = lab.ifindex(node, "eth0")
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 16)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
    return Source(node, str(address), sock, ifindex)
