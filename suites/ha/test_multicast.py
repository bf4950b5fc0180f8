"""Multicast service of the SUT home agent, judged on the wire: the Multicast State option
in the Binding Update and its echo (draft §4.1, INT-3, INT-6, INT-7), multicast data from a
real source tunnelled to the care-of addresses (draft §3, §6; RFC 6275 §10.4.2; INT-5,
OPEN-6), the HA as MLD querier through the tunnel (draft §6; RFC 6275 §10.4.3; INT-7,
OPEN-7) and its Router Advertisements (draft §3; RFC 6275 §7).

The tester is the mobile node on access link 2 (see conftest.py), with several care-of
addresses (harness/tester/home_agent.py). Two real sources send (harness/tester/sources.py):
the lab's source behind the core ("src", whose data reaches the HA only through its uplink
once the HA has joined the group there) and the local CDN host on the HA's own link ("cdn",
whose data reaches the HA's access interface whatever it joined). A negative verdict
("not tunnelled") is only given for a datagram that was seen arriving at the HA's
interface, so that "the HA never got it" cannot pass for "the HA did not forward it"; when
the lab does not deliver it, the verdict is inconclusive.
"""

from __future__ import annotations

import contextlib
import ipaddress
import time
from typing import Any

import pytest
from scapy.layers.inet import UDP
from scapy.layers.inet6 import ICMPv6ND_RA, ICMPv6NDOptPrefixInfo, MIP6OptAltCoA

from harness import verdicts
from harness.tester.conversation import ExpectationFailed, Link, Predicate, inbound, is_mh, to_dst
from harness.tester.fixtures import Captures
from harness.tester.home_agent import (
    HOME_LINK,
    LIFETIME,
    LIFETIME_UNIT,
    MARGIN,
    HomeAgentUnderTest,
    binding,
    deregister,
    expect_ba,
    register,
)
from harness.tester.mld_querier import check_general_query, query_to, tunnelled_mld
from harness.tester.multicast_state import (
    ALLOW,
    BLOCK,
    EXCLUDE,
    INCLUDE,
    IS_EX,
    IS_IN,
    TO_EX,
    TO_IN,
    Echo,
    echo_property,
    echoed,
    echoed_or_verbatim,
    link_local_of,
    split_state,
    state,
    with_pseudo_header,
)
from harness.tester.packets import packet6
from harness.tester.router_ads import ha_info, is_ra, ra
from harness.tester.sources import Wire, carries, ip6_layers, tunnelled_to
from harness.wire import ipv6
from harness.wire.mobility import MIP6OptMulticastState
from harness.wire.numbers import IGMPV3_REPORT, MLDV2_REPORT

SLACK = MARGIN  # the lab's delay added to the profile's timers (INT-15)

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
    "split-1": "ff0e::db8:6e",
    "split-2": "ff0e::db8:6f",
    "pseudo": "ff0e::db8:70",
    "reserved": "ff0e::db8:71",
    "expiry": "ff0e::db8:72",
    "position-first": "ff0e::db8:73",
    "position-later": "ff0e::db8:74",
}


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
    echo_property(home_agent, mn_link, MLDV2_REPORT)()


@pytest.mark.clause("DMM-V4-4", "DMM-V4-5", "RFC3376-1", "RFC3376-2")
def test_any_igmpv3_multicast_state_is_installed_and_echoed(
    home_agent: HomeAgentUnderTest, mn_link: Link
) -> None:
    """The IGMPv3 form of the option (draft §8, INT-8), for a dual-stack HA."""
    home_agent.sut.features.require("ipv4", "the SUT home agent")
    echo_property(home_agent, mn_link, IGMPV3_REPORT)()


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
            sent = state((rtype, group, tuple(map(str, sources))))
            ba = register(ha, mn_link, hoa, seq, sent)
            got = echoed_or_verbatim(ba, [sent])
            assert got == want, (
                f"after a record of type {rtype} with {[str(s) for s in sources]}: "
                f"the BA echoes {got}, RFC 3810 §7.4.2 gives {want}"
            )
    finally:
        deregister(ha, mn_link, hoa, seq + 1, ha.coa)


@pytest.mark.clause("DMM-HA-12", "DMM-HA-19")
@pytest.mark.interpretation("INT-3")
def test_state_split_over_several_options_is_merged(
    home_agent: HomeAgentUnderTest, wire: Wire
) -> None:
    """INT-3: listener state too large for one option comes in several Multicast State
    options of one BU; the HA installs them all. Here each option holds one group, and the
    data of the group in the second option reaches the CoA like that of the first."""
    ha, g1, g2 = home_agent, GROUPS["split-1"], GROUPS["split-2"]
    options = split_state((IS_EX, g1, ()), (IS_EX, g2, ()))
    with binding(ha, wire.mn, *options):
        wire.expect_tunnelled(wire.cdn, ha.coa, g2, "split-second")
        wire.expect_tunnelled(wire.cdn, ha.coa, g1, "split-first")


@pytest.mark.clause("RFC6275-OPT-1", "DMM-HA-12")
@pytest.mark.parametrize("position", ["first", "after-another-option"])
def test_multicast_state_option_is_taken_in_any_position(
    home_agent: HomeAgentUnderTest, wire: Wire, position: str
) -> None:
    """RFC 6275 §6.2: options other than the authorization data may come in any order. The
    Multicast State option is taken before and after an Alternate Care-of Address option
    (naming the BU's own source, so that it changes nothing): the group's data reaches the
    CoA either way."""
    ha = home_agent
    group = GROUPS["position-first" if position == "first" else "position-later"]
    option, alt = state((IS_EX, group, ())), MIP6OptAltCoA(acoa=ha.coa)
    options = (option, alt) if position == "first" else (alt, option)
    with binding(ha, wire.mn, *options):
        wire.expect_tunnelled(wire.cdn, ha.coa, group, f"position-{position}")


@pytest.mark.clause("RFC3810-5", "DMM-HA-12")
def test_option_checksum_with_the_mld_pseudo_header_is_accepted(
    home_agent: HomeAgentUnderTest, wire: Wire
) -> None:
    """INT-2: an MN that copies the MLDv2 Report its stack sent (from its link-local address
    to ff02::16) carries the checksum with the MLD pseudo-header (RFC 3810 §5.2.2); the HA
    accepts it as it accepts one without, and serves the group."""
    ha, group = home_agent, GROUPS["pseudo"]
    hoa = ha.fresh_hoa()
    option = with_pseudo_header(state((IS_EX, group, ())), link_local_of(hoa))
    register(ha, wire.mn, hoa, 1, option)
    try:
        wire.expect_tunnelled(wire.cdn, ha.coa, group, "pseudo-header")
    finally:
        deregister(ha, wire.mn, hoa, 2, ha.coa)


@pytest.mark.clause("RFC3810-8", "DMM-HA-12")
def test_reserved_fields_of_the_option_are_ignored(
    home_agent: HomeAgentUnderTest, mn_link: Link
) -> None:
    """RFC 3810 §5.2.1: the report's Reserved fields are ignored on reception: an option
    whose two Reserved fields are all ones is installed as without them (the BA echoes it)."""
    ha, group = home_agent, GROUPS["reserved"]
    g = ipaddress.ip_address(group)
    option = state((IS_EX, group, ()))
    option.reserved1, option.reserved2 = 0xFF, 0xFFFF
    with binding(ha, mn_link, option) as bound:
        got = echoed_or_verbatim(bound.ba, [option])
        assert got == {g: (EXCLUDE, frozenset())}, (
            f"an option with its Reserved fields set: the BA echoes {got}, not {group} "
            "(RFC 3810 §5.2.1: ignored on reception)"
        )


@pytest.mark.clause("RFC6275-HA-13", "DMM-HA-17")
def test_binding_and_its_multicast_state_end_with_its_lifetime(
    home_agent: HomeAgentUnderTest, wire: Wire
) -> None:
    """RFC 6275 §10.3.1: the binding cache entry is deleted when the lifetime the BA granted
    has passed; with it (draft §6) its multicast service ends. Once the lifetime and the
    reaction window (INT-15) are over, the group's data (which still reaches the HA) is not
    tunnelled, and a BU with a lower sequence number is a first registration again."""
    ha, group = home_agent, GROUPS["expiry"]
    coa = ha.other_coas[3]
    hoa = ha.fresh_hoa()
    ba = register(ha, wire.mn, hoa, 100, state((IS_EX, group, ())), coa=coa, lifetime=1)
    granted = ba.lifetime * LIFETIME_UNIT
    ends = time.time() + granted + ha.reaction_window
    try:
        wire.expect_tunnelled(wire.cdn, coa, group, "before-expiry")
        time.sleep(max(0.0, ends - time.time()))  # the deadline the BA itself set
        wire.expect_not_tunnelled(wire.cdn, coa, group, "after-expiry")
        again = register(ha, wire.mn, hoa, 10, coa=coa)  # would be 135 with an entry left
        assert again.seq == 10
    finally:
        deregister(ha, wire.mn, hoa, 11, coa)


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
            outer = packet6(pkt)
            inner = outer.inner() if outer is not None else None
            assert inner is not None
            assert inner.src == ipaddress.IPv6Address(source.address), (
                f"the tunnelled datagram's inner source is {inner.src}, not {source.address}"
            )
            assert inner.upper == ipv6.UDP and inner.transport_checksum_ok(), (
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
                    tunnelled_to(ha, coa, group, payload), within=wire.forward_within, since=mark
                )
        seen: dict[tuple[str, bytes], int] = {}

        def second_copy(pkt: Any) -> bool:
            ips = ip6_layers(pkt)
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
            during=wire.forward_within,
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
        payload = bytes(ip6_layers(pkt)[1].payload.payload)
        home_link.expect_none(
            carries(group, payload, tunnelled=False), during=wire.forward_within, since=mark
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
        ba = expect_ba(ha, wire.mn, coa, 1)
        assert ba.ba_status >= 128, "the HA accepted a BU it had to reject"
        assert not echoed(ba), "a rejected BU's BA echoes multicast state"
    # Answered or not, the rejected BU's group is not served (its data reaches the HA).
    wire.expect_not_tunnelled(wire.cdn, coa, group, "rejected")
    # A deregistration that carries the option (a home address without a binding).
    hoa = ha.fresh_hoa()
    wire.mn.send(ha.bu(hoa, 1, 0, (option,), coa=coa))
    with contextlib.suppress(ExpectationFailed):
        ba = expect_ba(ha, wire.mn, coa, 1)
        assert not echoed(ba), "a deregistration's BA echoes multicast state"
    # A binding that is served, then deregistered.
    hoa = ha.fresh_hoa()
    register(ha, wire.mn, hoa, 1, option, coa=coa)
    try:
        wire.expect_tunnelled(wire.cdn, coa, group, "while-bound")
    finally:
        wire.mn.send(ha.bu(hoa, 2, 0, coa=coa))
        expect_ba(ha, wire.mn, coa, 2, 0)
    wire.expect_not_tunnelled(wire.cdn, coa, group, "no-binding")


# --- The HA as MLD querier for its mobile nodes ------------------------------------------


@pytest.mark.clause("DMM-HA-10", "DMM-HA-18", "RFC6275-HA-12", "DMM-OPT-3", "RFC3810-7")
def test_general_queries_reach_the_coa_through_the_tunnel_at_the_query_interval(
    home_agent: HomeAgentUnderTest, mn_link: Link
) -> None:
    """Draft §6, RFC 6275 §10.4.3 (INT-7, OPEN-7): once a binding has multicast state the HA
    queries the MN as its MLD querier: MLDv2 General Queries inside the tunnel to the CoA,
    the first soon after the BA, then every Query Interval of the profile; each from a
    link-local source (RFC 3810 §5.1.14: any of the HA's)."""
    ha = home_agent
    interval = ha.timers.mld_query_interval
    coa = ha.other_coas[1]
    option = state((IS_EX, GROUPS["queried"], ()))
    with binding(ha, mn_link, option, coa=coa):
        queries = [mn_link.expect(query_to(ha, coa), within=interval + SLACK)]
        for _ in range(2):
            queries.append(mn_link.expect(query_to(ha, coa), within=1.5 * interval + SLACK))
    for pkt in queries:
        q = tunnelled_mld(pkt)
        assert q is not None
        check_general_query(q, interval)
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
        ba = mn_link.expect(
            inbound & to_dst(coa) & is_mh("BA", seq=seq, status=0), within=ha.answer_within
        )
        # A query the HA had under way when the BU arrived may still come; none after that.
        cleared = float(ba.time) + SLACK
        late = Predicate(lambda p: float(p.time) > cleared, f"sent {SLACK:g} s after the BA")
        mn_link.expect_none(query_to(ha, coa) & late, during=interval + 2 * SLACK)


# --- Router Advertisements of the home agent (RFC 6275 §7) --------------------------------


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
        is_ra & Predicate(lambda p: ra(p).H == 1 and ha_info(p) is not None, "H=1, HA option"),
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
        info = ha_info(p)
        return ra(p) is not None and info is not None and (ra(p).H != 1 or info.lifetime == 0)

    link.expect_none(
        Predicate(broken, "an RA whose HA Information option comes with H=0 or lifetime 0"),
        during=window,
        since=mark,
    )
    if not any(ha_info(p) is not None for p in link.packets(mark) if ra(p) is not None):
        verdicts.inconclusive(
            f"no RA with a Home Agent Information option on the HA's link in {window:g} s"
        )
