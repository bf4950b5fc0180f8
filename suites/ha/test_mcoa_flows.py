"""Multiple care-of addresses (RFC 5648 §6.2) and flow bindings (RFC 6089 §5.3) at the SUT
home agent (draft §6: the HA MUST support both, keep a flow binding list per MN and steer
packets by it), judged on the wire.

The tester is a multi-homed mobile node: one home address registered with several BIDs, each
on a care-of address of its own on the tester's interface (2001:db8:2::10..14, conftest.py);
real UDP from the correspondent to the home address shows which care-of address the HA sends
each flow to (harness/tester/flows.py), and a group's datagrams from the multicast source
behind the core which care-of address gets the group's data (OPEN-8). Deadlines: the HA's
reaction window (INT-15).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from harness import verdicts
from harness.tester.conversation import ExpectationFailed, Link
from harness.tester.flows import (
    BULK_FLAGS,
    PORT_BASE,
    Correspondent,
    MultiHomed,
    bid,
    dports,
    expected_coas,
    fid_content,
    flow,
    group_copies,
    group_copy_counts,
    multi_homed,
    summary,
    to_address,
    v4_dports,
)
from harness.tester.home_agent import HomeAgentUnderTest, expect_ba, expect_in_time
from harness.tester.multicast_state import IS_EX, state
from harness.tester.sources import PORT as MCAST_PORT
from harness.tester.sources import Wire, tunnelled_to
from harness.wire.mobility import FIDSubOptTrafficSelector

PROPERTY = settings(
    max_examples=4,
    deadline=None,
    derandomize=True,  # the same examples on every run (and in CI)
    database=None,
    suppress_health_check=list(HealthCheck),
)
NO_ROUTE = PORT_BASE + 900  # a port no flow of these tests selects


def mcoa(ha: HomeAgentUnderTest) -> None:
    ha.sut.features.require("mcoa", "the SUT home agent")


def flows(ha: HomeAgentUnderTest) -> None:
    mcoa(ha)
    ha.sut.features.require("flow_bindings", "the SUT home agent")


# --- RFC 5648 ------------------------------------------------------------------------------------


@pytest.mark.clause("DMM-HA-20", "RFC5648-9", "DMM-MIF-8", "DMM-INTRO-3")
def test_bulk_registration_is_acknowledged_per_bid(
    home_agent: HomeAgentUnderTest, mn_link: Link
) -> None:
    """A bulk BU (O set, three BID options with CoAs) gets BA status 0 with each BID option
    copied, Status 0 and its BID-PRI (RFC 6089 §5.3.5), in the BU's order."""
    mcoa(home_agent)
    pris = {3: 30, 1: 10, 2: 20}
    with multi_homed(home_agent, mn_link, pris) as mh:
        refresh = mh.send(*mh.keep())
    for got, what in ((mh.first, "the bulk BU"), (refresh, "a Length-4 refresh of the three")):
        assert got.status == 0, f"{what}: BA status {got.status}"
        assert [(b, s) for b, s, _ in got.bids] == [(3, 0), (1, 0), (2, 0)], (
            f"{what}: the BA's BID options are {got.bids}, expected BIDs 3, 1, 2 with Status 0"
        )
        assert [p for _, _, p in got.bids] == [30, 10, 20], f"BID-PRI not copied: {got.bids}"


@pytest.mark.clause("RFC5648-10", "RFC5648-7", "DMM-HA-20")
def test_a_bad_care_of_address_in_a_bid_option_is_reported_in_that_option(
    home_agent: HomeAgentUnderTest, mn_link: Link
) -> None:
    """A bulk BU whose second BID option names a multicast CoA: BA status 4 (MCOA
    NOTCOMPLETE), that option's Status 164 (MCOA MALFORMED), the other's 0, and the good BID
    is bound (packets reach its CoA); one BID option alone with :: gets BA status 164."""
    mcoa(home_agent)
    ha = home_agent
    with multi_homed(ha, mn_link, {1: 10}) as mh:
        got = mh.send(bid(1, 10, mh.coas[1]), bid(2, 5, "ff0e::1"), flags=BULK_FLAGS)
        assert got.status == 4, f"BA status {got.status}, expected 4 (MCOA NOTCOMPLETE)"
        assert got.bid_status() == {1: 0, 2: 164}, f"BID option statuses {got.bids}"
        with Correspondent(ha, mn_link) as cn:
            cn.check(mh, {NO_ROUTE: {mh.coas[1]}}, "notcomplete")
        alone = mh.send(bid(4, 5, "::"))
        assert alone.status == 164, f"one BID option with CoA ::: BA status {alone.status}"


@pytest.mark.clause("RFC5648-8", "DMM-HA-20")
def test_a_length_4_bid_option_refreshes_a_known_bid_only(
    home_agent: HomeAgentUnderTest, mn_link: Link
) -> None:
    """A Length-4 BID option for a bound BID refreshes it where it is (its CoA kept); one
    for a BID never registered gets Status 167 (MCOA UNKNOWN COA)."""
    mcoa(home_agent)
    with multi_homed(home_agent, mn_link, {1: 10, 2: 20}) as mh:
        unknown = mh.send(bid(9, 1))
        assert unknown.status == 167, f"a Length-4 option for unknown BID 9: BA {unknown.status}"
        kept = mh.send(*mh.keep())
        assert kept.status == 0 and kept.bid_status() == {1: 0, 2: 0}, f"refresh: {kept}"
        with Correspondent(home_agent, mn_link) as cn:
            cn.check(mh, {NO_ROUTE: {mh.coas[1]}}, "refreshed")


@pytest.mark.clause("RFC5648-5", "DMM-HA-20")
def test_a_bu_without_bid_option_replaces_every_binding(
    home_agent: HomeAgentUnderTest, mn_link: Link
) -> None:
    """After two BID bindings (and, with flow bindings, a flow that sends a port to the
    second), a BU without a BID option from a third care-of address leaves that one
    binding: every packet goes to it, none to the old CoAs. A deregistration without a BID
    option removes every binding: a refresh of BID 1 then gets 167."""
    mcoa(home_agent)
    ha = home_agent
    with multi_homed(ha, mn_link, {1: 10, 2: 20}) as mh, Correspondent(ha, mn_link) as cn:
        if ha.sut.features.claims("flow_bindings"):
            mh.send(*mh.keep(), flow(1, 1, [2], dports(PORT_BASE)))
        plain = ha.other_coas[2]
        mh.seq += 1
        mn_link.send(ha.bu(mh.hoa, mh.seq, 25, coa=plain))
        expect_ba(ha, mn_link, plain, mh.seq, 0)
        mh.coas[0] = plain  # the old CoAs stay in view: nothing may reach them
        cn.check(mh, {PORT_BASE: {plain}, NO_ROUTE: {plain}}, "replaced")
        mh.coas = {0: plain}
        mh.send(lifetime=0)
        gone = mh.send(bid(1, 10))
        assert gone.status == 167, f"BID 1 after a deregistration without BID: BA {gone.status}"


@pytest.mark.clause("DMM-HA-20", "DMM-HA-17")
def test_deregistering_one_bid_keeps_the_others(
    home_agent: HomeAgentUnderTest, mn_link: Link
) -> None:
    """A Lifetime-0 BU with BID 1's option removes BID 1 only: the packets that went to it
    (the lowest BID-PRI) go to BID 2's CoA; BID 7, never bound, gets 133 (RFC 5648 §6.2)."""
    mcoa(home_agent)
    ha = home_agent
    with multi_homed(ha, mn_link, {1: 10, 2: 20}) as mh, Correspondent(ha, mn_link) as cn:
        cn.check(mh, {NO_ROUTE: {mh.coas[1]}}, "both")
        gone = mh.send(bid(1, 10), lifetime=0)
        assert gone.status == 0, f"deregistration of BID 1: BA {gone.status}"
        unknown = mh.send(bid(7, 1), lifetime=0)
        assert unknown.status == 133, f"deregistration of unknown BID 7: BA {unknown.status}"
        cn.check(mh, {NO_ROUTE: {mh.coas[2]}}, "one-left")


@pytest.mark.clause("RFC6089-4", "DMM-HA-20")
def test_packets_no_flow_matches_go_to_the_lowest_bid_pri(
    home_agent: HomeAgentUnderTest, mn_link: Link
) -> None:
    """Whatever BID-PRI values the BIDs have, a packet for the home address without a flow
    binding goes to the CoA of the lowest BID-PRI (RFC 6089 §5.1.1)."""
    mcoa(home_agent)
    ha = home_agent

    @PROPERTY
    @given(pris=st.lists(st.integers(1, 127), min_size=2, max_size=4, unique=True))
    @example(pris=[20, 10])
    def check(pris: list[int]) -> None:
        with (
            multi_homed(ha, mn_link, dict(enumerate(pris, 1))) as mh,
            Correspondent(ha, mn_link) as cn,
        ):
            cn.check(mh, {NO_ROUTE: {mh.default_coa()}}, "default")

    check()


# --- RFC 6089 ------------------------------------------------------------------------------------

PORTS = range(PORT_BASE, PORT_BASE + 6)


@st.composite
def flow_sets(draw: st.DrawFn) -> list[Any]:
    """1..3 flows over BIDs 1..3: distinct FIDs and FID-PRIs, a destination-port range of
    PORTS each (overlaps allowed), one or two BIDs each."""
    n = draw(st.integers(1, 3))
    pris = draw(st.lists(st.integers(1, 500), min_size=n, max_size=n, unique=True))
    out = []
    for fid, pri in enumerate(pris, 1):
        a, b = sorted(draw(st.lists(st.sampled_from(PORTS), min_size=2, max_size=2)))
        bids = draw(st.lists(st.integers(1, 3), min_size=1, max_size=2, unique=True))
        out.append(flow(fid, pri, bids, dports(a, b if b != a else None)))
    return out


@pytest.mark.clause("DMM-HA-22", "DMM-HA-21", "RFC6089-11", "RFC6089-6", "DMM-HA-23")
def test_packets_follow_the_flow_bindings(home_agent: HomeAgentUnderTest, mn_link: Link) -> None:
    """Random flow binding lists (overlapping port ranges, one or two BIDs each) registered
    in the same BU as the BIDs (the BID options processed first, RFC 6089 §5.3.1): every
    Flow Identification option is answered Status 0, and a probe to each port arrives at
    exactly the CoAs of the first matching flow in FID-PRI order (a copy per BID), the
    others at the lowest BID-PRI's (RFC 6089 §5.3.6)."""
    flows(home_agent)
    ha = home_agent

    @PROPERTY
    @given(fset=flow_sets())
    @example(
        fset=[
            flow(1, 10, [3], dports(PORT_BASE, PORT_BASE + 3)),
            flow(2, 5, [1, 2], dports(PORT_BASE + 2)),
        ]
    )
    def check(fset: list[Any]) -> None:
        with multi_homed(ha, mn_link, {1: 20, 2: 10, 3: 30}, *fset) as mh:
            got = mh.first
            assert [s for _, s in got.fids] == [0] * len(fset), f"FID statuses {got.fids}"
            routes = {p: expected_coas(mh, fset, p) for p in (*PORTS, NO_ROUTE)}
            with Correspondent(ha, mn_link) as cn:
                cn.check(mh, routes, "flows")

    check()


@pytest.mark.clause("RFC6089-11", "DMM-HA-22", "DMM-HA-23")
def test_a_flow_is_modified_in_place_and_inactive_without_its_bids(
    home_agent: HomeAgentUnderTest, mn_link: Link
) -> None:
    """FID 1 (FID-PRI 5) sends a port to BIDs 1 and 2, FID 2 (FID-PRI 10) the same port to
    BID 3. A Flow Identification option for FID 1 with a new FID-PRI and no sub-option keeps
    its selector and BIDs but reorders it (RFC 6089 §5.3.2.2): the port goes to BID 3. With
    BID 3 deregistered FID 2 is inactive (§4.3): the port goes back to FID 1's BIDs. An IPv4
    selector never matches IPv6 packets (RFC 6088 §3.1)."""
    flows(home_agent)
    ha = home_agent
    port = PORT_BASE + 1
    first = flow(1, 5, [1, 2], dports(port))
    second = flow(2, 10, [3], dports(PORT_BASE, PORT_BASE + 2))
    v4 = flow(3, 1, [3], v4_dports(NO_ROUTE))
    with multi_homed(ha, mn_link, {1: 20, 2: 10, 3: 30}) as mh, Correspondent(ha, mn_link) as cn:
        got = mh.send(*mh.keep(), first, second, v4)
        assert [s for _, s in got.fids] == [0, 0, 0], f"FID statuses {got.fids}"
        both = {mh.coas[1], mh.coas[2]}
        cn.check(mh, {port: both, NO_ROUTE: {mh.coas[2]}}, "ordered")
        got = mh.send(*mh.keep(), flow(1, 50, None), summary(2, 3))
        assert got.fid_status(1) == 0, f"modification of FID 1: {got.fids}"
        cn.check(mh, {port: {mh.coas[3]}, PORT_BASE: {mh.coas[3]}}, "reordered")
        got = mh.send(bid(3, 30), summary(1, 2, 3), lifetime=0)
        assert got.status == 0, f"deregistration of BID 3: BA {got.status}"
        del mh.coas[3]
        cn.check(mh, {port: both, PORT_BASE: {mh.coas[2]}}, "inactive")


@pytest.mark.clause("RFC6089-10", "DMM-HA-23")
def test_flows_not_named_in_a_bu_are_removed(home_agent: HomeAgentUnderTest, mn_link: Link) -> None:
    """A flow refreshed by a Flow Summary option keeps its routing (RFC 6089 §5.3.3); after
    a BU that names it in neither option, its packets go to the lowest BID-PRI (§5.3.4)."""
    flows(home_agent)
    ha = home_agent
    with multi_homed(ha, mn_link, {1: 10, 2: 20}) as mh, Correspondent(ha, mn_link) as cn:
        got = mh.send(*mh.keep(), flow(4, 1, [2], dports(PORT_BASE)))
        assert got.fid_status(4) == 0, f"FID 4: {got.fids}"
        refreshed = mh.send(*mh.keep(), summary(4))
        assert refreshed.status == 0 and not refreshed.fids, f"refresh: {refreshed}"
        cn.check(mh, {PORT_BASE: {mh.coas[2]}}, "refreshed")
        mh.send(*mh.keep())
        cn.check(mh, {PORT_BASE: {mh.coas[1]}}, "removed")


@pytest.mark.clause("RFC6089-7", "RFC6089-8", "RFC6089-9", "DMM-HA-21", "RFC6089-3")
def test_flow_identification_options_get_their_status(
    home_agent: HomeAgentUnderTest, mn_link: Link
) -> None:
    """Each rejected Flow Identification option is copied into the BA (type 45, INT-12) with
    its Status: 130 for a new FID without a traffic selector, 131 for a BID not in the
    binding cache, 133 for a TS format the HA does not support; a Flow Summary FID that is
    not registered gets a FID option with 132. None of them changes the routing."""
    flows(home_agent)
    ha = home_agent
    unknown_format = FIDSubOptTrafficSelector(ts_format=200, selector=[])
    with multi_homed(ha, mn_link, {1: 10, 2: 20}) as mh, Correspondent(ha, mn_link) as cn:
        got = mh.send(
            *mh.keep(),
            flow(1, 1, [2]),
            flow(2, 2, [9], dports(PORT_BASE)),
            flow(3, 3, [2], unknown_format),
            summary(77),
        )
        assert got.status == 0, f"BA status {got.status}: a flow's failure is not the BU's"
        want = {1: 130, 2: 131, 3: 133, 77: 132}
        seen = {fid: got.fid_status(fid) for fid in want}
        assert seen == want, f"FID statuses {got.fids}, expected {sorted(want.items())}"
        cn.check(mh, {PORT_BASE: {mh.coas[1]}}, "rejected")


@pytest.mark.clause("RFC6089-12")
def test_the_ba_copies_each_flow_identification_option(
    home_agent: HomeAgentUnderTest, mn_link: Link
) -> None:
    """RFC 6089 §5.3.5: the BA holds a copy of each Flow Identification option of the BU,
    its sub-options (the binding reference, the traffic selector) with it, and the Status;
    accepted and refused flows alike."""
    flows(home_agent)
    ha = home_agent
    sent = [
        flow(1, 1, [2], dports(PORT_BASE)),
        flow(2, 2, [1, 2], dports(PORT_BASE + 1, PORT_BASE + 2)),
        flow(3, 3, [9], dports(PORT_BASE + 3)),  # BID 9 is not bound: refused, still copied
    ]
    with multi_homed(ha, mn_link, {1: 10, 2: 20}) as mh:
        got = mh.send(*mh.keep(), *sent)
        copies = {c[0]: c for c in got.fid_contents}
        for option in sent:
            want = fid_content(bytes(option))
            have = copies.get(want[0])
            assert have is not None, f"the BA holds no Flow Identification option for FID {want[0]}"
            assert have == want, (
                f"FID {want[0]}: the BA's copy has FID-PRI {have[1]} and sub-options "
                f"{[s.hex() for s in have[2]]}; the BU's had FID-PRI {want[1]} and "
                f"{[s.hex() for s in want[2]]}"
            )


@pytest.mark.clause("RFC6089-11", "DMM-HA-21")
@pytest.mark.interpretation("INT-19")
def test_a_second_flow_with_a_taken_fid_pri_is_refused(
    home_agent: HomeAgentUnderTest, mn_link: Link
) -> None:
    """Two flows of one MN may not share a FID-PRI (RFC 6089 §4.2): the list's order would
    be undefined. INT-19: the newcomer is refused with Status 129, the flow that held the
    FID-PRI keeps its routing."""
    flows(home_agent)
    ha = home_agent
    with multi_homed(ha, mn_link, {1: 10, 2: 20, 3: 30}) as mh, Correspondent(ha, mn_link) as cn:
        got = mh.send(*mh.keep(), flow(1, 7, [2], dports(PORT_BASE)))
        assert got.fid_status(1) == 0
        got = mh.send(*mh.keep(), summary(1), flow(2, 7, [3], dports(PORT_BASE)))
        status = got.fid_status(2)
        assert status == 129, f"FID 2 with FID 1's FID-PRI: Status {status}, expected 129"
        cn.check(mh, {PORT_BASE: {mh.coas[2]}}, "fid-pri")


# --- Multicast state and several care-of addresses (OPEN-8) -------------------------------------


@pytest.mark.clause("DMM-HA-19", "DMM-HA-16")
def test_multicast_of_a_bulk_registration_reaches_one_care_of_address(
    home_agent: HomeAgentUnderTest, wire: Wire
) -> None:
    """A bulk BU from BID 1's CoA registers BIDs 1 and 2 with a Multicast State option: the
    group's data is tunnelled to the MN (draft §6 MUST). OPEN-8 (proposed): the state is
    the binding's that sent the BU, so one copy, to BID 1's CoA; a SUT that serves it on
    BID 2, or on both, follows another reading of the open point: inconclusive."""
    mcoa(home_agent)
    ha, group = home_agent, "ff0e::db8:90"
    with multi_homed(ha, wire.mn, {1: 10, 2: 20}, state((IS_EX, group, ()))) as mh:
        mark = wire.mn.mark()
        payload = wire.reach_ha(wire.cdn, group, "open8")
        copy_to = {c: tunnelled_to(ha, c, group, payload) for c in mh.coas.values()}
        any_copy = copy_to[mh.coas[1]] | copy_to[mh.coas[2]]
        expect_in_time(wire.mn, any_copy, wire.forward_within, since=mark)
        try:
            wire.mn.expect_none(copy_to[mh.coas[2]], during=wire.forward_within, since=mark)
            wire.mn.expect(copy_to[mh.coas[1]], within=0, since=mark)
        except ExpectationFailed:
            verdicts.inconclusive(
                "OPEN-8: the group's data reached BID 2's CoA, not only the CoA that sent the "
                "BU (another reading of the open point)"
            )


@pytest.mark.clause("DMM-HA-22", "DMM-HA-16")
@pytest.mark.interpretation("OPEN-8")
def test_a_flow_binding_naming_the_group_steers_its_multicast_data(
    home_agent: HomeAgentUnderTest, wire: Wire
) -> None:
    """Three BIDs, the group's state sent from BID 1's CoA, data from the source behind the
    core. OPEN-8 (proposed): the data goes to the CoA whose BU holds the state (BID 1) until
    a flow binding whose traffic selector names the group as destination address (RFC 6088
    §3.2) sends it to that flow's BID (RFC 6089 §5.3.6 for every packet forwarded to the
    MN): BID 2's CoA, then BID 3's when the flow is moved there (§5.3.2.2), one copy and
    none elsewhere; back to BID 1's when a BU leaves the flow out (§5.3.4). Each BU carries
    the same state again. A SUT that serves the state on another binding before any flow
    follows another reading of the open point's first part: inconclusive."""
    flows(home_agent)
    ha, group = home_agent, "ff0e::db8:93"
    mstate = state((IS_EX, group, ()))
    with multi_homed(ha, wire.mn, {1: 10, 2: 20, 3: 30}, mstate) as mh:
        before = group_copies(wire, mh, group, "open8-state")
        if before != {mh.coas[1]}:
            verdicts.inconclusive(
                f"OPEN-8: before any flow binding the group's data reached {sorted(before)}, "
                f"not BID 1's CoA {mh.coas[1]} alone (another reading, or not served)"
            )
        steps = (
            ("flow", flow(1, 5, [2], to_address(group)), 2),
            ("moved", flow(1, 5, [3]), 3),
            ("removed", None, 1),
        )
        for tag, option, where in steps:
            got = mh.send(*mh.keep(), mstate, *(() if option is None else (option,)))
            assert got.status == 0 and got.fids == ([] if option is None else [(1, 0)]), (
                f"{tag}: BA {got}"
            )
            seen = group_copies(wire, mh, group, f"open8-{tag}")
            assert seen == {mh.coas[where]}, (
                f"{tag}: the group's data reached {sorted(seen) or 'no care-of address'}, "
                f"expected BID {where}'s {mh.coas[where]} alone"
            )


# --- Random sequences against the live HA -------------------------------------------------------

COA_OF = {1: 0, 2: 1, 3: 2, 4: 3}  # BID -> index of its care-of address among the tester's
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("bind"), st.integers(1, 4), st.integers(1, 127)),
        st.tuples(st.just("unbind"), st.integers(1, 4)),
        st.tuples(
            st.just("flow"),
            st.integers(1, 3),
            st.integers(1, 60),
            st.frozensets(st.integers(1, 4), min_size=1, max_size=2),
            st.sampled_from(PORTS),
            st.sampled_from(PORTS),
        ),
        st.tuples(st.just("drop"), st.integers(1, 3)),
    ),
    min_size=3,
    max_size=6,
)


@pytest.mark.clause("DMM-HA-22", "DMM-HA-23", "RFC6089-10", "RFC6089-11", "RFC6089-4")
def test_random_binding_and_flow_changes_keep_every_packet_on_its_binding(
    home_agent: HomeAgentUnderTest, mn_link: Link
) -> None:
    """Random sequences of BID registrations (a BID-PRI changed on the way), BID
    deregistrations, flows added or modified and flows dropped (by leaving them out of the
    next BU), each BU refreshing what it keeps: after every step a probe to each port
    arrives at exactly the CoAs the tester's own model of the lists names (RFC 6089 §4.3,
    §5.3.6: a flow whose BIDs are all gone is inactive until one comes back)."""
    flows(home_agent)
    ha = home_agent
    every_coa = (ha.coa, *ha.other_coas)

    @PROPERTY
    @given(ops=OPS)
    @example(
        ops=[
            ("bind", 2, 10),
            ("flow", 1, 5, frozenset({2}), PORT_BASE, PORT_BASE + 2),
            ("unbind", 2),
            ("bind", 2, 60),
            ("drop", 1),
        ]
    )
    def check(ops: list[tuple[Any, ...]]) -> None:
        with multi_homed(ha, mn_link, {1: 50}) as mh, Correspondent(ha, mn_link) as cn:
            table: dict[int, Any] = {}  # FID -> its Flow Identification option (the model)
            done: list[str] = []
            for op in ops:
                sent = _step(mh, table, op, every_coa)
                if sent is None:
                    continue
                done.append(repr(op))
                assert sent.status == 0, f"after {done}: BA status {sent.status}"
                assert all(s == 0 for _, s in sent.fids), f"after {done}: FIDs {sent.fids}"
                routes = {p: _route(mh, table, p) for p in (*PORTS, NO_ROUTE)}
                cn.check(mh, routes, f"step{len(done)}", watch=every_coa[:4])

    check()


def _step(mh: MultiHomed, table: dict[int, Any], op: tuple[Any, ...], coas: tuple[str, ...]) -> Any:
    """Carry `op` out with one BU (None when it does not apply now); its BA's answer."""
    kind = op[0]
    if kind == "bind":
        b, pri = op[1], op[2]
        mh.coas[b], mh.pris[b] = coas[COA_OF[b]], pri
        others = [bid(x, mh.pris[x]) for x in mh.coas if x != b]
        return mh.send(*others, bid(b, pri, mh.coas[b]), *_summary(table))
    if kind == "unbind":
        b = op[1]
        if b not in mh.coas or len(mh.coas) == 1:
            return None
        del mh.coas[b], mh.pris[b]
        return mh.send(bid(b, 1), *_summary(table), lifetime=0)
    if kind == "flow":
        fid, pri, wanted, a, z = op[1:]
        bids = sorted(b for b in wanted if b in mh.coas)
        if not bids or any(f.fid_pri == pri for k, f in table.items() if k != fid):
            return None  # RFC 6089 §4.2: FID-PRI unique per MN; BIDs must be bound
        lo, hi = sorted((a, z))
        table[fid] = flow(fid, pri, bids, dports(lo, hi if hi != lo else None))
        return mh.send(*mh.keep(), table[fid], *_summary(table, but=fid))
    fid = op[1]
    if fid not in table:
        return None
    del table[fid]
    return mh.send(*mh.keep(), *_summary(table))


def _summary(table: dict[int, Any], but: int | None = None) -> tuple[Any, ...]:
    fids = [f for f in sorted(table) if f != but]
    return (summary(*fids),) if fids else ()


def _route(mh: MultiHomed, table: dict[int, Any], port: int) -> set[str]:
    return expected_coas(mh, list(table.values()), port)


# Random sequences with multicast data (OPEN-8): BIDs, flows and the MN's groups change; the
# state is the sender's binding's (every BU carries the whole state again, INT-7 snapshot).
GROUPS = ("ff0e::db8:94", "ff0e::db8:95")
SELECTORS = {
    "group-a": lambda: to_address(GROUPS[0]),
    "group-b": lambda: to_address(GROUPS[1]),
    "data-port": lambda: dports(MCAST_PORT),
    "other-port": lambda: dports(NO_ROUTE),
}
MCAST_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("bind"), st.integers(1, 3), st.integers(1, 127)),
        st.tuples(st.just("unbind"), st.integers(1, 3)),
        st.tuples(
            st.just("flow"),
            st.integers(1, 2),
            st.integers(1, 60),
            st.frozensets(st.integers(1, 3), min_size=1, max_size=2),
            st.sampled_from(sorted(SELECTORS)),
        ),
        st.tuples(st.just("drop"), st.integers(1, 2)),
        st.tuples(st.just("join"), st.sampled_from(GROUPS)),
        st.tuples(st.just("leave"), st.sampled_from(GROUPS)),
    ),
    min_size=3,
    max_size=5,
)
MCAST_PROPERTY = settings(PROPERTY, max_examples=2)


@pytest.mark.clause("DMM-HA-22", "DMM-HA-16", "DMM-HA-23", "RFC6089-11")
@pytest.mark.interpretation("OPEN-8")
def test_random_changes_keep_every_group_datagram_on_its_binding(
    home_agent: HomeAgentUnderTest, wire: Wire
) -> None:
    """Random sequences of BID registrations and deregistrations, flows added, moved or
    dropped (selectors naming a group, the data's port, or another port) and groups joined
    or left, each BU carrying the MN's whole multicast state from its first CoA: after every
    step a datagram of each joined group from the source behind the core arrives exactly
    once at each CoA the tester's model names and at no other: the first matching flow's
    BIDs (OPEN-8, RFC 6089 §5.3.6), else the binding whose CoA sent the state."""
    flows(home_agent)
    ha = home_agent
    every_coa = (ha.coa, *ha.other_coas)[:3]

    @MCAST_PROPERTY
    @given(ops=MCAST_OPS)
    @example(
        ops=[
            ("bind", 2, 10),
            ("flow", 1, 5, frozenset({2}), "group-a"),
            ("join", GROUPS[1]),
            ("flow", 2, 3, frozenset({1, 2}), "data-port"),
            ("unbind", 1),
        ]
    )
    def check(ops: list[tuple[Any, ...]]) -> None:
        joined = {GROUPS[0]}
        with multi_homed(ha, wire.mn, {1: 50}, _mstate(joined)) as mh:
            table: dict[int, Any] = {}  # FID -> its Flow Identification option (the model)
            done: list[str] = []
            for op in ops:
                answers = _mcast_step(mh, table, joined, op, every_coa)
                if not answers:
                    continue
                done.append(repr(op))
                for got in answers:
                    assert got.status == 0, f"after {done}: BA status {got.status}"
                    assert all(s == 0 for _, s in got.fids), f"after {done}: FIDs {got.fids}"
                state_coa = {mh.coas[next(iter(mh.coas))]}
                for group in sorted(joined):
                    want = expected_coas(mh, list(table.values()), MCAST_PORT, group, state_coa)
                    seen = group_copy_counts(wire, every_coa, group, f"seq{len(done)}")
                    assert seen == dict.fromkeys(want, 1), (
                        f"after {done}: a datagram of {group} reached {seen} (CoA: copies), "
                        f"expected one copy at each of {sorted(want)}"
                    )

    check()


def _mstate(joined: set[str]) -> Any:
    return state(*((IS_EX, g, ()) for g in sorted(joined)))


def _mcast_step(
    mh: MultiHomed, table: dict[int, Any], joined: set[str], op: tuple[Any, ...], coas: Any
) -> list[Any]:
    """Carry `op` out; the answers of its BUs (none when it does not apply now). Every BU
    but a deregistration carries the whole state; after one, a refresh carries it again."""
    kind = op[0]
    if kind in ("join", "leave"):
        group = op[1]
        if (group in joined) == (kind == "join"):
            return []
        if kind == "join":
            joined.add(group)
        else:
            joined.discard(group)
        return [mh.send(*mh.keep(), _mstate(joined), *_summary(table))]
    if kind == "bind":
        b, pri = op[1], op[2]
        mh.coas[b], mh.pris[b] = coas[COA_OF[b]], pri
        others = [bid(x, mh.pris[x]) for x in mh.coas if x != b]
        return [mh.send(*others, bid(b, pri, mh.coas[b]), _mstate(joined), *_summary(table))]
    if kind == "unbind":
        b = op[1]
        if b not in mh.coas or len(mh.coas) == 1:
            return []
        del mh.coas[b], mh.pris[b]
        gone = mh.send(bid(b, 1), *_summary(table), lifetime=0)
        return [gone, mh.send(*mh.keep(), _mstate(joined), *_summary(table))]
    if kind == "flow":
        fid, pri, wanted, sel = op[1:]
        bids = sorted(b for b in wanted if b in mh.coas)
        if not bids or any(f.fid_pri == pri for k, f in table.items() if k != fid):
            return []  # RFC 6089 §4.2: FID-PRI unique per MN; BIDs must be bound
        table[fid] = flow(fid, pri, bids, SELECTORS[sel]())
        return [mh.send(*mh.keep(), table[fid], _mstate(joined), *_summary(table, but=fid))]
    fid = op[1]
    if fid not in table:
        return []
    del table[fid]
    return [mh.send(*mh.keep(), _mstate(joined), *_summary(table))]
