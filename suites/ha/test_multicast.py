"""Multicast service of the SUT home agent, judged on the wire: the Multicast State option
in the Binding Update and its echo (draft §4.1, INT-3, INT-6, INT-7), multicast data from a
real source tunnelled to the care-of addresses (draft §3, §6; RFC 6275 §10.4.2; INT-5,
OPEN-6), the HA as MLD querier through the tunnel (draft §6; RFC 6275 §10.4.3; INT-7,
OPEN-7) and its Router Advertisements (draft §3; RFC 6275 §7).

The tester is the mobile node on access link 2 (see conftest.py), with several care-of
addresses. Two real sources send: the lab's source behind the core ("src", whose data
reaches the HA only through its uplink once the HA has joined the group there) and the
local CDN host on the HA's own link ("cdn", whose data reaches the HA's access interface
whatever it joined). A negative verdict ("not tunnelled") is only given for a datagram that
was seen arriving at the HA's interface, so that "the HA never got it" cannot pass for "the
HA did not forward it"; when the lab does not deliver it, the verdict is inconclusive.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from scapy.layers.inet import UDP
from scapy.layers.inet6 import (
    ICMPv6MLDMultAddrRec,
    ICMPv6MLReport2,
    ICMPv6ND_RA,
    ICMPv6NDOptHAInfo,
    ICMPv6NDOptPrefixInfo,
    IPerror6,
    IPv6,
    IPv6ExtHdrHopByHop,
    RouterAlert,
)
from scapy.packet import Packet

from harness import strategies, verdicts
from harness.config import WireConfig
from harness.lab.topology import Lab
from harness.netproto import icmp6
from harness.tester.conversation import (
    ExpectationFailed,
    Link,
    Predicate,
    from_src,
    inbound,
    ipv6_bytes,
    is_mh,
    mobility_message,
    to_dst,
)
from harness.tester.fixtures import Captures
from harness.wire import compact
from harness.wire.mobility import MIP6OptMulticastState, MldAddressRecord
from harness.wire.numbers import IGMPV3_REPORT, MLDV2_REPORT
from suites.ha.conftest import HOME_LINK, HomeAgentUnderTest

PORT = 5004
WITHIN = 2.0  # seconds for a BA (the first one may wait for neighbour discovery)
# From a datagram's arrival at the HA's interface to its copy at the CoA: the HA's own
# forwarding delay, which no profile timer governs; generous for a userspace data plane.
FORWARD_WITHIN = 0.5
# A source's datagrams until one reaches the HA: the core's MLD proxy starts forwarding a
# group only once the HA's join has reached it (the lab's proxy, not the SUT, sets this).
REACH_TRIES, REACH_EACH = 20, 0.2
SLACK = 0.25  # scheduling slack added to the profile's timers
LIFETIME = 25  # units of 4 s: longer than any test here

INCLUDE, EXCLUDE = "include", "exclude"
IS_IN, IS_EX, TO_IN, TO_EX, ALLOW, BLOCK = 1, 2, 3, 4, 5, 6

# Addresses no other test uses (each test has groups of its own, so that tests sharing a
# care-of address cannot see each other's data).
GROUPS = {
    "both-sources": "ff3e::8000:60",
    "native": "ff3e::8000:61",
    "include": "ff3e::8000:62",
    "exclude": "ff0e::db8:63",
    "subscribed": "ff0e::db8:64",
    "unsubscribed": "ff0e::db8:65",
    "two-mns": "ff0e::db8:66",
    "no-binding": "ff0e::db8:67",
    "report-kept": "ff3e::8000:68",
    "report-new": "ff0e::db8:69",
    "global": "ff0e::db8:6a",
    "link-local": "ff02::db8:6b",
    "queried": "ff0e::db8:6c",
    "changes": "ff3e::8000:6d",
}


# --- What the tester sees ----------------------------------------------------------------


def _ip6_layers(pkt: Any) -> list[Any]:
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
        for depth, ip in enumerate(_ip6_layers(pkt)):
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
        return self.mn.expect(
            tunnelled_to(self.ha, coa, group, payload), within=FORWARD_WITHIN, since=mark
        )

    def expect_not_tunnelled(self, source: Source, coa: str, group: str, tag: str) -> None:
        """A datagram from `source` to `group` reaches the HA, and no copy of it reaches
        `coa` (in a tunnel or not)."""
        mark = self.mn.mark()
        payload = self.reach_ha(source, group, tag)
        self.mn.expect_none(
            inbound & to_dst(coa) & carries(group, payload, tunnelled=True),
            during=FORWARD_WITHIN,
            since=mark,
        )


def _source(lab: Lab, node: str, address: object) -> Source:
    sock = lab.socket(node, socket.AF_INET6, socket.SOCK_DGRAM)
    ifindex = lab.ifindex(node, "eth0")
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 16)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
    return Source(node, str(address), sock, ifindex)


@pytest.fixture
def wire(home_agent: HomeAgentUnderTest, mn_link: Link, captures: Captures) -> Iterator[Wire]:
    lab = home_agent.lab
    ar = f"ar{HOME_LINK}"
    src = _source(lab, "src", lab.plan.mcast_source.host6)
    cdn = _source(lab, "cdn", lab.plan.cdn6)
    try:
        yield Wire(
            home_agent,
            mn_link,
            captures.watch_node(lab, ar, "up0"),
            captures.watch_node(lab, ar, "acc0"),
            src,
            cdn,
        )
    finally:
        src.sock.close()
        cdn.sock.close()


# --- Signalling helpers ------------------------------------------------------------------


def state(*records: tuple[int, str, tuple[str, ...]]) -> MIP6OptMulticastState:
    """A Multicast State option (MLDv2 form) of (record type, group, sources) records."""
    return MIP6OptMulticastState(
        records=[MldAddressRecord(rtype=t, maddr=g, sources=list(s)) for t, g, s in records]
    )


def _ba(link: Link, coa: str, seq: int, status: int | None = None) -> compact.MobilityMessage:
    pkt = link.expect(inbound & to_dst(coa) & is_mh("BA", seq=seq, status=status), within=WITHIN)
    msg = mobility_message(pkt)
    assert msg is not None
    return msg


def register(
    ha: HomeAgentUnderTest,
    link: Link,
    hoa: str,
    seq: int,
    *options: Packet,
    coa: str | None = None,
    lifetime: int = LIFETIME,
) -> compact.MobilityMessage:
    """Send a BU and return its BA, which must accept it (status 0)."""
    coa = coa or ha.coa
    link.send(ha.bu(hoa, seq, lifetime, options, coa=coa))
    return _ba(link, coa, seq, 0)


def deregister(ha: HomeAgentUnderTest, link: Link, hoa: str, seq: int, coa: str) -> None:
    """In a finally, so that the next test inherits no binding: a missing BA is let pass
    (the test has its verdict already), a refusal is the test's own mistake."""
    link.send(ha.bu(hoa, seq, 0, coa=coa))
    with contextlib.suppress(ExpectationFailed):
        ba = _ba(link, coa, seq)
        assert ba.ba_status == 0, f"the deregistration of {hoa} got status {ba.ba_status}"


@dataclass
class Bound:
    """A registered home address, and the last sequence number used for it."""

    hoa: str
    coa: str
    seq: int
    ba: compact.MobilityMessage

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def refresh(
        self, ha: HomeAgentUnderTest, link: Link, *options: Packet
    ) -> compact.MobilityMessage:
        return register(ha, link, self.hoa, self.next_seq(), *options, coa=self.coa)


@contextlib.contextmanager
def binding(
    ha: HomeAgentUnderTest, link: Link, *options: Packet, coa: str | None = None, seq: int = 1
) -> Iterator[Bound]:
    """A fresh home address registered with `options` for the duration."""
    hoa = ha.fresh_hoa()
    coa = coa or ha.coa
    bound = Bound(hoa, coa, seq, register(ha, link, hoa, seq, *options, coa=coa))
    try:
        yield bound
    finally:
        deregister(ha, link, hoa, bound.next_seq(), coa)


Echo = dict[ipaddress.IPv4Address | ipaddress.IPv6Address, tuple[str, frozenset[Any]]]


def echoed(ba: compact.MobilityMessage, family: int = MLDV2_REPORT) -> Echo | None:
    """The listener state a BA's Multicast State options list (INT-6), merged across split
    records (INT-3); None when the BA carries no option of that family."""
    wire = WireConfig.from_env()
    states = [
        compact.parse_multicast_state(o.data)
        for o in ba.options
        if compact.is_multicast_state(o, wire)
    ]
    states = [s for s in states if s.report_type == family]
    if not states:
        return None
    out: dict[Any, tuple[str, set[Any]]] = {}
    for s in states:
        assert s.checksum_ok, "a Multicast State option of the BA has a bad checksum (INT-2)"
        for r in s.records:
            assert r.rtype in (IS_IN, IS_EX), (
                f"the BA echoes a record of type {r.rtype}, not a Current-State record (INT-6)"
            )
            mode = INCLUDE if r.rtype == IS_IN else EXCLUDE
            group = ipaddress.ip_address(r.maddr)
            prev = out.setdefault(group, (mode, set()))
            assert prev[0] == mode, f"the BA echoes {group} in both filter modes"
            prev[1].update(ipaddress.ip_address(a) for a in r.sources)
    return {g: (m, frozenset(s)) for g, (m, s) in out.items()}


def _expected(records: list[Any]) -> Echo:
    """The state a fresh binding gets from one BU's records (INT-3 merge, INT-7 with RFC 3810
    §7.4.2 from the empty state INCLUDE {}); the model the echo is judged against."""
    merged: dict[tuple[int, Any], set[Any]] = {}
    for r in records:
        key = (int(r.rtype), ipaddress.ip_address(r.maddr))
        merged.setdefault(key, set()).update(ipaddress.ip_address(a) for a in r.sources or [])
    out: Echo = {}
    for (rtype, group), sources in merged.items():
        if rtype in (IS_EX, TO_EX):
            out[group] = (EXCLUDE, frozenset(sources))
        elif rtype in (IS_IN, TO_IN, ALLOW) and sources:
            out[group] = (INCLUDE, frozenset(sources))
        # BLOCK from INCLUDE {} and INCLUDE {} itself: not listening
    return out


# --- The Multicast State option and its echo ---------------------------------------------


def _one_type_per_group(option: MIP6OptMulticastState) -> bool:
    """INT-3 leaves a BU that gives one group records of several types unjudged."""
    types: dict[str, set[int]] = {}
    for r in option.records:
        types.setdefault(str(r.maddr), set()).add(int(r.rtype))
    return all(len(t) == 1 for t in types.values())


def _largest_mld_option() -> MIP6OptMulticastState:
    """One record with 14 sources: 8 + 20 + 14 x 16 = 252 octets, the most that fits (INT-3)."""
    sources = [f"2001:db8:c2::{i:x}" for i in range(0x100, 0x10E)]
    return state((TO_IN, "ff3e::8000:7f", tuple(sources)))


def _aux_data_option() -> MIP6OptMulticastState:
    """Records with auxiliary data between good ones (RFC 3810 §5.2.10: ignored)."""
    return MIP6OptMulticastState(
        records=[
            MldAddressRecord(rtype=IS_EX, maddr="ff0e::db8:7e", sources=[], auxdata=b"\x01" * 8),
            MldAddressRecord(rtype=IS_IN, maddr="ff3e::8000:7e", sources=["2001:db8:c2::10"]),
        ]
    )


def _echo_property(ha: HomeAgentUnderTest, link: Link, family: int) -> Callable[[], None]:
    """Any Multicast State option of `family` (all record types, source lists, aux data,
    sizes up to the option limit) in a BU to the live HA: BA status 0, and the echo lists
    exactly the state the records give (INT-6). Each example uses a fresh home address and
    is deregistered after."""

    @settings(
        max_examples=12,
        deadline=None,
        derandomize=True,  # the same examples on every run (and in CI)
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(option=strategies.multicast_state_option(6 if family == MLDV2_REPORT else 4))
    def check(option: MIP6OptMulticastState) -> None:
        assume(_one_type_per_group(option))
        hoa = ha.fresh_hoa()
        ba = register(ha, link, hoa, 1, option)
        try:
            got = echoed(ba, family)
            assert got is not None, "the BA carries no Multicast State option back (INT-6)"
            want = _expected(list(option.records))
            assert got == want, f"the BA echoes {got}, the records give {want}"
        finally:
            deregister(ha, link, hoa, 2, ha.coa)

    if family == MLDV2_REPORT:
        check = example(option=_largest_mld_option())(check)
        check = example(option=_aux_data_option())(check)
    return check


@pytest.mark.clause(
    "DMM-OPT-1",
    "DMM-OPT-5",
    "DMM-OPT-6",
    "DMM-HA-12",
    "RFC3810-1",
    "RFC3810-2",
    "RFC3810-4",
)
def test_any_mldv2_multicast_state_is_installed_and_echoed(
    home_agent: HomeAgentUnderTest, mn_link: Link
) -> None:
    _echo_property(home_agent, mn_link, MLDV2_REPORT)()


@pytest.mark.clause("DMM-V4-4", "DMM-V4-5", "RFC3376-1", "RFC3376-2")
def test_any_igmpv3_multicast_state_is_installed_and_echoed(
    home_agent: HomeAgentUnderTest, mn_link: Link
) -> None:
    """The IGMPv3 form of the option (draft §8, INT-8), for a dual-stack HA."""
    home_agent.sut.features.require("ipv4", "the SUT home agent")
    _echo_property(home_agent, mn_link, IGMPV3_REPORT)()


@pytest.mark.clause("RFC3810-6", "DMM-HA-12")
def test_state_change_records_apply_to_the_bindings_state(
    home_agent: HomeAgentUnderTest, mn_link: Link
) -> None:
    """INT-7: Filter-Mode-Change and Source-List-Change records (types 3-6) in refresh BUs
    change the binding's previous state as RFC 3810 §7.4.2 does for one listener; each BA
    echoes the resulting state."""
    ha, group = home_agent, GROUPS["changes"]
    g = ipaddress.ip_address(group)
    s1, s2, s3 = (ipaddress.ip_address(f"2001:db8:c2::{i}") for i in (0x21, 0x22, 0x23))
    steps: list[tuple[int, tuple[Any, ...], Echo]] = [
        (IS_IN, (s1,), {g: (INCLUDE, frozenset({s1}))}),
        (ALLOW, (s2,), {g: (INCLUDE, frozenset({s1, s2}))}),
        (BLOCK, (s1,), {g: (INCLUDE, frozenset({s2}))}),
        (TO_EX, (s3,), {g: (EXCLUDE, frozenset({s3}))}),
        (BLOCK, (s1,), {g: (EXCLUDE, frozenset({s1, s3}))}),
        (ALLOW, (s3,), {g: (EXCLUDE, frozenset({s1}))}),
        (TO_IN, (s2,), {g: (INCLUDE, frozenset({s2}))}),
        (TO_IN, (), {}),
    ]
    hoa = ha.fresh_hoa()
    seq = 10
    try:
        for rtype, sources, want in steps:
            seq += 1
            ba = register(ha, mn_link, hoa, seq, state((rtype, group, tuple(map(str, sources)))))
            got = echoed(ba)
            assert got == want, (
                f"after a record of type {rtype} with {[str(s) for s in sources]}: "
                f"the BA echoes {got}, RFC 3810 §7.4.2 gives {want}"
            )
    finally:
        deregister(ha, mn_link, hoa, seq + 1, ha.coa)


# --- Data from real sources --------------------------------------------------------------


@pytest.mark.clause("DMM-HA-19", "RFC6275-HA-11", "DMM-OVW-28", "DMM-OPT-3", "RFC6275-HA-9")
def test_subscribed_group_is_tunnelled_from_remote_and_local_sources(
    home_agent: HomeAgentUnderTest, wire: Wire
) -> None:
    """Draft §6: data for a group of the option reaches the CoA in the HA's tunnel (outer
    source the HA, outer destination the CoA, the source's datagram inside unchanged: its
    source address, and a UDP checksum that verifies, or the MN's stack drops it), from the
    source behind the core (which the HA must first join) and from the local source."""
    group = GROUPS["both-sources"]
    option = state((IS_IN, group, (wire.src.address, wire.cdn.address)))
    with binding(home_agent, wire.mn, option):
        for source in (wire.src, wire.cdn):
            pkt = wire.expect_tunnelled(source, home_agent.coa, group, f"both-{source.node}")
            raw = ipv6_bytes(pkt)
            assert raw is not None
            inner = raw[40:]  # the outer header is followed by the tunnelled packet
            src = ipaddress.IPv6Address(inner[8:24])
            assert src == ipaddress.IPv6Address(source.address), (
                f"the tunnelled datagram's inner source is {src}, not {source.address}"
            )
            end = 40 + struct.unpack_from("!H", inner, 4)[0]
            assert inner[6] == 17 and _checksum_ok(inner[8:24], inner[24:40], inner[40:end], 17), (
                f"the datagram from {source.node} arrives with an inner UDP checksum that does "
                "not verify (RFC 8200 §8.1): the mobile node's stack drops it"
            )


@pytest.mark.clause("DMM-HA-16", "DMM-HA-19")
def test_include_and_exclude_source_filters_are_honoured(
    home_agent: HomeAgentUnderTest, wire: Wire
) -> None:
    """INT-5: the records' source lists are the filter. INCLUDE {src}: src's datagrams are
    tunnelled, the local source's (which reach the HA all the same) are not. EXCLUDE {src}:
    the local source's are tunnelled, src's (which reach the HA, as it joined the group for
    all sources) are not."""
    ha, g_in, g_ex = home_agent, GROUPS["include"], GROUPS["exclude"]
    src = wire.src.address
    with (
        binding(ha, wire.mn, state((IS_IN, g_in, (src,)))),
        binding(ha, wire.mn, state((IS_EX, g_ex, (src,))), seq=5),
    ):
        wire.expect_tunnelled(wire.src, ha.coa, g_in, "inc-allowed")
        wire.expect_not_tunnelled(wire.cdn, ha.coa, g_in, "inc-other")
        wire.expect_tunnelled(wire.cdn, ha.coa, g_ex, "exc-other")
        wire.expect_not_tunnelled(wire.src, ha.coa, g_ex, "exc-excluded")


@pytest.mark.clause("DMM-HA-14", "DMM-HA-12")
def test_a_group_not_in_the_state_is_not_tunnelled(
    home_agent: HomeAgentUnderTest, wire: Wire
) -> None:
    """The groups served are the option's: a group it does not list is not tunnelled, though
    its data reaches the HA, while the listed group is."""
    ha, subscribed, other = home_agent, GROUPS["subscribed"], GROUPS["unsubscribed"]
    with binding(ha, wire.mn, state((IS_EX, subscribed, ()))):
        wire.expect_tunnelled(wire.cdn, ha.coa, subscribed, "listed")
        wire.expect_not_tunnelled(wire.cdn, ha.coa, other, "not-listed")


@pytest.mark.clause("RFC6275-HA-10")
def test_a_link_local_group_is_never_tunnelled(home_agent: HomeAgentUnderTest, wire: Wire) -> None:
    """RFC 6275 §10.4.2 (OPEN-6): a record for a link-local group (ff02::/16) does not make
    the HA tunnel that group's data, which the local source sends on the HA's link; the
    global group of the same option is tunnelled."""
    ha, glob, local = home_agent, GROUPS["global"], GROUPS["link-local"]
    with binding(ha, wire.mn, state((IS_EX, glob, ()), (IS_EX, local, ()))):
        wire.expect_tunnelled(wire.cdn, ha.coa, glob, "global")
        wire.expect_not_tunnelled(wire.cdn, ha.coa, local, "link-local")


@pytest.mark.clause("DMM-OVW-29")
def test_each_subscribed_mobile_node_gets_one_copy(
    home_agent: HomeAgentUnderTest, wire: Wire
) -> None:
    """Draft §3: two mobile nodes (two home addresses, two care-of addresses) subscribed to
    one group: every datagram reaches each CoA once, in its own tunnel."""
    ha, group = home_agent, GROUPS["two-mns"]
    coa1, coa2 = ha.coa, ha.other_coas[0]
    option = state((IS_EX, group, ()))
    with binding(ha, wire.mn, option, coa=coa1), binding(ha, wire.mn, option, coa=coa2):
        mark = wire.mn.mark()
        payloads = [wire.reach_ha(wire.cdn, group, f"copy-{n}") for n in range(3)]
        for payload in payloads:
            for coa in (coa1, coa2):
                wire.mn.expect(
                    tunnelled_to(ha, coa, group, payload), within=FORWARD_WITHIN, since=mark
                )
        seen: dict[tuple[str, bytes], int] = {}

        def second_copy(pkt: Any) -> bool:
            ips = _ip6_layers(pkt)
            if len(ips) < 2 or not isinstance(ips[1].payload, UDP):
                return False
            key = (str(ipaddress.ip_address(ips[0].dst)), bytes(ips[1].payload.payload))
            if ipaddress.ip_address(ips[1].dst) != ipaddress.ip_address(group):
                return False
            if key[1] not in payloads:
                return False
            seen[key] = seen.get(key, 0) + 1
            return seen[key] > 1

        wire.mn.expect_none(
            inbound & Predicate(second_copy, "a second copy of a datagram to one CoA"),
            during=FORWARD_WITHIN,
            since=mark,
        )


@pytest.mark.clause("DMM-OVW-30")
def test_data_for_the_mobile_node_is_not_sent_natively_on_the_home_link(
    home_agent: HomeAgentUnderTest, wire: Wire, captures: Captures
) -> None:
    """Draft §3: the MN's multicast state points to the tunnel; the group's data reaches
    the CoA through it, and the HA does not put it on its own access link for the MN."""
    ha, group = home_agent, GROUPS["native"]
    home_link = captures.watch_link(ha.lab, HOME_LINK)
    with binding(ha, wire.mn, state((IS_IN, group, (wire.src.address,)))):
        mark = home_link.mark()
        pkt = wire.expect_tunnelled(wire.src, ha.coa, group, "native")
        payload = bytes(_ip6_layers(pkt)[1].payload.payload)
        home_link.expect_none(
            carries(group, payload, tunnelled=False), during=FORWARD_WITHIN, since=mark
        )


@pytest.mark.clause("DMM-HA-17", "DMM-OVW-28")
def test_multicast_state_lives_only_with_a_binding(
    home_agent: HomeAgentUnderTest, wire: Wire
) -> None:
    """Draft §6 (INT-5, INT-6): a binding cache entry must exist for each CoA served. A
    Multicast State option in a rejected BU or in a deregistration installs nothing (no
    echo, no data), and deregistering a served binding stops its data."""
    ha, group = home_agent, GROUPS["no-binding"]
    coa = ha.other_coas[0]
    option = state((IS_EX, group, ()))
    # A rejected BU: a wrong authenticator (RFC 4285, status 146), else a foreign home address.
    if ha.keys is not None:
        hoa = ha.fresh_hoa()
        wrong = bytes(b ^ 0x5A for b in ha.keys.key)
        wire.mn.send(ha.bu(hoa, 1, LIFETIME, (option,), coa=coa, key=wrong))
    else:
        wire.mn.send(ha.bu("2001:db8:3::6c", 1, LIFETIME, (option,), coa=coa))
    with contextlib.suppress(ExpectationFailed):  # a discard installs nothing either
        ba = _ba(wire.mn, coa, 1)
        assert ba.ba_status >= 128, "the HA accepted a BU it had to reject"
        assert not echoed(ba), "a rejected BU's BA echoes multicast state"
    # A deregistration that carries the option (a home address without a binding).
    hoa = ha.fresh_hoa()
    wire.mn.send(ha.bu(hoa, 1, 0, (option,), coa=coa))
    with contextlib.suppress(ExpectationFailed):
        ba = _ba(wire.mn, coa, 1)
        assert not echoed(ba), "a deregistration's BA echoes multicast state"
    # A binding that is served, then deregistered.
    hoa = ha.fresh_hoa()
    register(ha, wire.mn, hoa, 1, option, coa=coa)
    try:
        wire.expect_tunnelled(wire.cdn, coa, group, "while-bound")
    finally:
        wire.mn.send(ha.bu(hoa, 2, 0, coa=coa))
        _ba(wire.mn, coa, 2, 0)
    wire.expect_not_tunnelled(wire.cdn, coa, group, "no-binding")


# --- Group management goes through the tunnel, and only the BU changes the state ----------


def _tunnelled_report(ha: HomeAgentUnderTest, records: list[Packet]) -> Packet:
    """An MLDv2 Report (RFC 3810 §5.2: link-local source, ff02::16, hop limit 1, Router
    Alert) tunnelled from the CoA to the HA, as RFC 6275 §11.3.4 lets an MN send it."""
    return (
        IPv6(src=ha.coa, dst=ha.address)
        / IPv6(src="fe80::db8:2:10", dst="ff02::16", hlim=1)
        / IPv6ExtHdrHopByHop(options=[RouterAlert(value=0)])
        / ICMPv6MLReport2(records=records)
    )


@pytest.mark.clause("DMM-HA-13", "DMM-HA-14")
def test_a_tunnelled_mld_report_changes_nothing(home_agent: HomeAgentUnderTest, wire: Wire) -> None:
    """Draft §6 (INT-7): the HA takes the MN's groups from the BU only. An MLD Report the MN
    tunnels to it, leaving the subscribed group and joining a new one, neither starts the
    new group's data (which reaches the HA from the local source) nor stops the old one's."""
    ha, kept, new = home_agent, GROUPS["report-kept"], GROUPS["report-new"]
    with binding(ha, wire.mn, state((IS_IN, kept, (wire.src.address,)))):
        wire.expect_tunnelled(wire.src, ha.coa, kept, "before-report")
        report = _tunnelled_report(
            ha,
            [
                ICMPv6MLDMultAddrRec(rtype=TO_IN, dst=kept, sources=[]),  # a leave
                ICMPv6MLDMultAddrRec(rtype=TO_EX, dst=new, sources=[]),  # a join
            ],
        )
        for _ in range(2):  # robustness: RFC 3810 sends state changes more than once
            wire.mn.send(report)
        wire.expect_not_tunnelled(wire.cdn, ha.coa, new, "joined-by-report")
        wire.expect_tunnelled(wire.src, ha.coa, kept, "left-by-report")


# --- The HA as MLD querier for its mobile nodes ------------------------------------------


def _access_link_local(ha: HomeAgentUnderTest) -> ipaddress.IPv6Address:
    """The link-local address of the HA's access interface (the lab's interface)."""
    lab, ar = ha.lab, f"ar{HOME_LINK}"
    addr, why = lab.run_in(ar, icmp6.link_local_address, lab.ifindex(ar, "acc0"))
    if addr is None:
        verdicts.inconclusive(f"the HA's access interface has no link-local address: {why}")
    return ipaddress.IPv6Address(addr)


def _checksum_ok(src: bytes, dst: bytes, msg: bytes, nh: int = 58) -> bool:
    """RFC 8200 §8.1: the upper-layer checksum of `msg` (its field included) verifies."""
    data = src + dst + struct.pack("!I3xB", len(msg), nh) + msg
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total == 0xFFFF


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


def tunnelled_mld(pkt: Any) -> Query | None:
    """The MLD Query in an IPv6-in-IPv6 packet (outer header, inner header, at most a
    Hop-by-Hop header, ICMPv6 type 130), or None."""
    raw = ipv6_bytes(pkt)
    if raw is None or len(raw) < 80 or raw[6] != 41:
        return None
    inner = raw[40:]
    nh, pos, alert = inner[6], 40, False
    if nh == 0 and len(inner) >= 48:
        end = pos + 8 * (inner[pos + 1] + 1)
        nh, opt = inner[pos], pos + 2
        while opt + 2 <= min(end, len(inner)):
            if inner[opt] == 0:
                opt += 1
                continue
            if inner[opt] == 5 and inner[opt + 1] == 2 and inner[opt + 2 : opt + 4] == b"\0\0":
                alert = True
            opt += 2 + inner[opt + 1]
        pos = end
    icmp = inner[pos : 40 + struct.unpack_from("!H", inner, 4)[0]]
    if nh != 58 or len(icmp) < 4 or icmp[0] != 130:
        return None
    return Query(
        ipaddress.IPv6Address(inner[8:24]),
        ipaddress.IPv6Address(inner[24:40]),
        inner[7],
        alert,
        icmp,
        _checksum_ok(inner[8:24], inner[24:40], icmp),
    )


def query_to(ha: HomeAgentUnderTest, coa: str) -> Predicate:
    return (
        inbound
        & from_src(ha.address)
        & to_dst(coa)
        & Predicate(lambda p: tunnelled_mld(p) is not None, "an MLD Query inside the tunnel")
    )


def _check_general_query(q: Query, link_local: ipaddress.IPv6Address, interval: float) -> None:
    """RFC 3810 §5.1: an MLDv2 General Query, from the HA's link-local address, to ff02::1,
    hop limit 1, with a Router Alert, a right checksum."""
    problems = []
    if len(q.icmp) < 28:
        problems.append(f"{len(q.icmp)} octets: an MLDv1 query, not MLDv2 (at least 28)")
    elif q.icmp[8:24] != bytes(16) or struct.unpack_from("!H", q.icmp, 26)[0] != 0:
        problems.append("not a General Query (a multicast address or sources are set)")
    if q.src != link_local:
        problems.append(f"source {q.src}, not the access interface's link-local {link_local}")
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


@pytest.mark.clause("DMM-HA-10", "DMM-HA-18", "RFC6275-HA-12", "DMM-OPT-3")
def test_general_queries_reach_the_coa_through_the_tunnel_at_the_query_interval(
    home_agent: HomeAgentUnderTest, mn_link: Link
) -> None:
    """Draft §6, RFC 6275 §10.4.3 (INT-7, OPEN-7): once a binding has multicast state the HA
    queries the MN as its MLD querier: MLDv2 General Queries inside the tunnel to the CoA,
    the first soon after the BA, then every Query Interval of the profile."""
    ha = home_agent
    interval = ha.timers.mld_query_interval
    coa = ha.other_coas[1]
    link_local = _access_link_local(ha)
    option = state((IS_EX, GROUPS["queried"], ()))
    with binding(ha, mn_link, option, coa=coa):
        queries = [mn_link.expect(query_to(ha, coa), within=interval + SLACK)]
        for _ in range(2):
            queries.append(mn_link.expect(query_to(ha, coa), within=1.5 * interval + SLACK))
    for pkt in queries:
        q = tunnelled_mld(pkt)
        assert q is not None
        _check_general_query(q, link_local, interval)
    gap = float(queries[2].time - queries[1].time)
    assert gap >= 0.5 * interval, (
        f"queries {gap:.3f} s apart, the Query Interval is {interval:g} s (RFC 3810 §9.2)"
    )


@pytest.mark.clause("DMM-HA-10", "RFC6275-HA-12")
def test_no_queries_to_a_binding_without_multicast_state(
    home_agent: HomeAgentUnderTest, mn_link: Link
) -> None:
    """INT-7: the HA is querier for the mobile nodes with multicast state. A binding without
    it gets no query for longer than a Query Interval; once a BU gives it state, it does;
    once a BU clears it (an option without records), it gets none again."""
    ha = home_agent
    interval = ha.timers.mld_query_interval
    coa = ha.other_coas[2]
    with binding(ha, mn_link, coa=coa) as bound:
        mn_link.expect_none(query_to(ha, coa), during=1.5 * interval + SLACK)
        bound.refresh(ha, mn_link, state((IS_EX, GROUPS["queried"], ())))
        mn_link.expect(query_to(ha, coa), within=interval + SLACK)
        seq = bound.next_seq()
        options = (MIP6OptMulticastState(records=[]),)
        mn_link.send(ha.bu(bound.hoa, seq, LIFETIME, options, coa=coa))
        ba = mn_link.expect(inbound & to_dst(coa) & is_mh("BA", seq=seq, status=0), within=WITHIN)
        # A query the HA had under way when the BU arrived may still come; none after that.
        cleared = float(ba.time) + SLACK
        late = Predicate(lambda p: float(p.time) > cleared, f"sent {SLACK:g} s after the BA")
        mn_link.expect_none(query_to(ha, coa) & late, during=interval + 2 * SLACK)


# --- Router Advertisements of the home agent (RFC 6275 §7) --------------------------------


def _ra(pkt: Any) -> Any:
    return pkt.getlayer(ICMPv6ND_RA)


def _ha_info(pkt: Any) -> Any:
    return pkt.getlayer(ICMPv6NDOptHAInfo)


is_ra = Predicate(lambda p: _ra(p) is not None, "a Router Advertisement")


@pytest.mark.clause("DMM-OVW-1", "DMM-INTRO-1")
def test_the_home_agent_advertises_itself_on_its_link(
    home_agent: HomeAgentUnderTest, captures: Captures
) -> None:
    """Draft §3, RFC 6275 §7.1, §7.2, §7.4: the HA's router sends RAs on its link with the H
    flag, the Home Agent Information option, and a Prefix Information option with the R flag
    whose prefix field is the HA's whole address (for the MN's home agent cache)."""
    ha = home_agent
    link = captures.watch_link(ha.lab, HOME_LINK)
    within = 2 * ha.timers.ra_max_interval + 1.0  # the next unsolicited RA, and then some
    pkt = link.expect(
        is_ra & Predicate(lambda p: _ra(p).H == 1 and _ha_info(p) is not None, "H=1, HA option"),
        within=within,
    )
    prefixes = [
        p
        for p in pkt[ICMPv6ND_RA].iterpayloads()
        if isinstance(p, ICMPv6NDOptPrefixInfo) and p.R == 1
    ]
    assert prefixes, "the HA's RA has no Prefix Information option with the R flag (§7.2)"
    mine = ipaddress.ip_address(ha.address)
    assert any(ipaddress.ip_address(p.prefix) == mine for p in prefixes), (
        f"no R-flag prefix carries the HA's address {ha.address}: "
        f"{[str(p.prefix) for p in prefixes]}"
    )


@pytest.mark.clause("RFC6275-RA-1", "RFC6275-RA-2")
def test_home_agent_information_option_rules(
    home_agent: HomeAgentUnderTest, captures: Captures
) -> None:
    """RFC 6275 §7.4: every RA on the HA's link that carries the Home Agent Information
    option has the H flag set, and the option's Home Agent Lifetime is not 0."""
    ha = home_agent
    link = captures.watch_link(ha.lab, HOME_LINK)
    mark = link.mark()
    window = 3 * ha.timers.ra_max_interval + SLACK

    def broken(p: Any) -> bool:
        info = _ha_info(p)
        return _ra(p) is not None and info is not None and (_ra(p).H != 1 or info.lifetime == 0)

    link.expect_none(
        Predicate(broken, "an RA whose HA Information option comes with H=0 or lifetime 0"),
        during=window,
        since=mark,
    )
    if not any(_ha_info(p) is not None for p in link.packets(mark) if _ra(p) is not None):
        verdicts.inconclusive(
            f"no RA with a Home Agent Information option on the HA's link in {window:g} s"
        )
