"""A mobile node with a second interface (draft §7.1): its care-of addresses registered with
the home agent in use under Binding Identifiers (RFC 5648), and flows bound to interfaces
with Flow Identification options (RFC 6089), judged on the wire.

The SUT MN starts on access link 1, keeps a session while its first interface moves to link
2 (so the home agent of link 1 is in use), then the lab gives it a second interface on link
3 (harness/tester/multi_interface.py). The MN is told the flows to bind (`FLOWS`: one
correspondent port per interface) through its profile's {flows}. A real receiver's stream
is judged through the interfaces' changes too (DMM-OVW-31: the first lost, and back; a
group joined through the added interface, carried when it leaves its link, DMM-OVW-27).
Deadlines: INT-16. Not applicable unless the profile claims multi_interface (and mcoa,
flow_bindings where a test needs them).
"""

from __future__ import annotations

import pytest

from harness.tester.conversation import mobility_message
from harness.tester.fixtures import Captures
from harness.tester.mobile_node import (
    MobileNodeUnderTest,
    bu_any,
    bu_from_mn,
    in_time,
    multicast_state,
)
from harness.tester.multi_interface import (
    FLOW_PORTS,
    MOVED_FLOW_PORTS,
    SECOND_IFACE,
    SECOND_LINK,
    added_interface_moves_with_a_group,
    attach_second_interface,
    bids_of,
    care_of_address,
    first_interface_detached,
    first_interface_lost,
    flows_moved,
    flows_of,
    has_alt_coa,
    leaves_bid,
    new_session_of_the_flow,
    overwrite_flag,
    reach_natively,
    second_interface_back,
    second_interface_comes_up,
    second_interface_lost,
    second_interface_moves,
    stream_kept,
    stream_to_the_mn,
)
from harness.tester.world import MN_IFACE


@pytest.mark.clause("DMM-MIF-1", "DMM-MIF-2")
def test_a_new_interface_without_a_home_agent_in_use_is_used_natively(
    multi_mn: MobileNodeUnderTest, captures: Captures
) -> None:
    """No session has moved, so no home agent is in use: the new interface forms an address
    on its link and reaches the correspondent natively from it, and the MN sends no BU on
    either interface (draft §7.1 "No home agent is involved")."""
    second, address = attach_second_interface(multi_mn, captures)
    reach_natively(multi_mn, address)
    for link in (multi_mn.link, second):
        link.expect_none(
            bu_any(), multi_mn.deadlines.quiet, f"a BU after {SECOND_IFACE} came up, no HA in use"
        )


@pytest.mark.clause(
    "DMM-MIF-4",
    "DMM-MIF-5",
    "DMM-MIF-6",
    "DMM-MIF-7",
    "RFC6089-1",
    "RFC5648-1",
    "RFC5648-2",
    "RFC5648-3",
    "RFC5648-4",
    "RFC5648-11",
    "DMM-INTRO-3",
)
def test_a_new_interface_is_registered_under_a_bid_of_its_own(
    multi_mn: MobileNodeUnderTest,
) -> None:
    """The BU after the second interface comes up carries one BID option per care-of
    address (Length 20 with the address, RFC 5648 §4.3, §5.1), unique BIDs, BID-PRIs in
    1..127 (RFC 6089 §4.1), no Alternate Care-of Address option (§5.2) and O set (§5.9:
    the first registration of several bindings)."""
    mcoa(multi_mn)
    seen = second_interface_comes_up(multi_mn)
    bids = bids_of(seen.bu)
    assert all(b.length == 20 for b in bids), (
        f"BID option lengths {[b.length for b in bids]}: a new BID carries its IPv6 "
        "care-of address (Length 20)"
    )
    coas = {b.coa for b in bids}
    assert coas == set(seen.coa.values()), (
        f"the BID options name care-of addresses {sorted(map(str, coas))}, expected those of "
        f"both interfaces {sorted(seen.coa.values())}"
    )
    numbers = [b.bid for b in bids]
    assert len(set(numbers)) == len(numbers), f"BIDs not unique: {numbers}"
    pris = [b.bid_pri for b in bids]
    assert all(1 <= p <= 127 for p in pris), f"BID-PRI {pris}: 0 is reserved (RFC 6089 §4.1)"
    assert not has_alt_coa(seen.bu), "an Alternate Care-of Address option beside BID options"
    assert overwrite_flag(seen.bu), "O flag clear in the first BU of several bindings"


@pytest.mark.clause("RFC5648-12", "DMM-MIF-9")
def test_an_interface_that_loses_its_link_leaves_the_bindings(
    multi_mn: MobileNodeUnderTest,
) -> None:
    """Both interfaces registered, then the second loses its link: the MN's next BU to the
    home agent no longer keeps its care-of address (deregisters its BID, or replaces every
    binding without it) and binds no flow to it (RFC 5648 §4.2, §5.4, §6.2)."""
    flow_bindings(multi_mn)
    seen = second_interface_comes_up(multi_mn)
    after = second_interface_lost(multi_mn, seen)
    gone, bids = seen.coa[SECOND_IFACE], bids_of(after)
    gone_bid = next((b.bid for b in bids_of(seen.bu) if b.coa == gone), None)
    if after.lifetime == 0:
        assert bids and {b.bid for b in bids} == {gone_bid}, (
            f"a Lifetime-0 BU after {SECOND_IFACE} lost its link deregisters BIDs "
            f"{[b.bid for b in bids]}, expected only {gone_bid} (RFC 5648 §5.4)"
        )
        return
    assert all(b.coa != gone and b.bid != gone_bid for b in bids), (
        f"the BU after {SECOND_IFACE} lost its link still names its BID {gone_bid} or "
        f"care-of address {gone}: {bids}"
    )
    assert not bids or overwrite_flag(after), (
        f"the BU names BIDs {[b.bid for b in bids]} without O: BID {gone_bid} stays bound"
    )
    stale = [f for f in flows_of(after) if f.bids is not None and gone_bid in f.bids]
    assert not stale, f"flows still bound to the lost interface's BID {gone_bid}: {stale}"


@pytest.mark.clause("DMM-MIF-4", "DMM-MIF-6")
def test_an_interface_back_on_its_link_is_registered_again(multi_mn: MobileNodeUnderTest) -> None:
    """The second interface loses its link and comes back to it: the MN registers its
    care-of address again, under a BID no other care-of address of the BU has."""
    mcoa(multi_mn)
    seen = second_interface_comes_up(multi_mn)
    second_interface_lost(multi_mn, seen)
    again = second_interface_back(multi_mn)
    coas = [b.coa for b in bids_of(again)]
    assert seen.coa[SECOND_IFACE] in coas, (
        f"the BU after {SECOND_IFACE} came back names care-of addresses {coas}, not "
        f"{seen.coa[SECOND_IFACE]}"
    )
    numbers = [b.bid for b in bids_of(again)]
    assert len(set(numbers)) == len(numbers), f"BIDs not unique: {numbers}"


@pytest.mark.clause("DMM-MIF-4", "RFC5648-11", "RFC5648-2")
def test_an_added_interface_on_another_link_is_registered_with_its_new_care_of_address(
    multi_mn: MobileNodeUnderTest,
) -> None:
    """Both interfaces registered, then the second moves from link 3 to link 2: the MN
    registers the care-of address it forms there (draft §7.1 MUST, RFC 5648 §5.1: every
    care-of address mapped to a BID) in a BID option with that address (Length 20), names
    the old one in no BID option, and leaves no binding on the old one: the BID is the one
    the interface had (RFC 5648 §6.2 updates its care-of address), or the BU has O set, or
    a BU since the move removed the old BID (Lifetime 0 with it, a plain BU, O without it)."""
    mcoa(multi_mn)
    seen = second_interface_comes_up(multi_mn)
    old_coa = seen.coa[SECOND_IFACE]
    old_bid = next((b.bid for b in bids_of(seen.bu) if b.coa == old_coa), None)
    moved = second_interface_moves(multi_mn, seen)
    assert moved.coa in moved.formed, (
        f"the BU names {moved.coa} for the moved interface, not an address the MN formed on "
        f"{SECOND_IFACE} there ({moved.formed})"
    )
    bids = bids_of(moved.bu)
    new = next(b for b in bids if b.coa == moved.coa)
    assert new.length == 20, f"the BID option of the new care-of address has Length {new.length}"
    assert all(b.coa != old_coa for b in bids), (
        f"the BU after the move still names {SECOND_IFACE}'s old care-of address {old_coa}: {bids}"
    )
    numbers = [b.bid for b in bids]
    assert len(set(numbers)) == len(numbers), f"BIDs not unique: {numbers}"
    if old_bid is not None and new.bid != old_bid and not overwrite_flag(moved.bu):
        assert any(leaves_bid(m, old_bid) for m in moved.before), (
            f"the new care-of address is registered under BID {new.bid} without O, and no BU "
            f"since the move removed BID {old_bid} of the old one {old_coa}"
        )


@pytest.mark.clause("RFC5648-12", "DMM-MIF-4")
def test_the_first_interface_lost_leaves_the_binding_on_the_other(
    multi_mn: MobileNodeUnderTest, captures: Captures
) -> None:
    """Both interfaces registered, then the first loses its link while the second stays on
    link 3: within the registration deadline the MN sends a BU to the home agent on the
    second interface that leaves the first one's care-of address: a Lifetime-0 BU of its
    BID alone, or a BU that binds the second's care-of address and not the first's BID (a
    plain BU from it, or BID options with O set; RFC 5648 §5.4, §6.2), binding no flow to
    the lost BID."""
    mcoa(multi_mn)
    seen = second_interface_comes_up(multi_mn)
    after = first_interface_lost(multi_mn, seen, captures)
    gone, kept = seen.coa[MN_IFACE], seen.coa[SECOND_IFACE]
    gone_bid = next((b.bid for b in bids_of(seen.bu) if b.coa == gone), None)
    kept_bid = next((b.bid for b in bids_of(seen.bu) if b.coa == kept), None)
    bids = bids_of(after)
    if after.lifetime == 0:
        assert bids and {b.bid for b in bids} == {gone_bid}, (
            f"a Lifetime-0 BU after {MN_IFACE} lost its link deregisters BIDs "
            f"{[b.bid for b in bids]}, expected only {gone_bid} (RFC 5648 §5.4)"
        )
        return
    assert all(b.bid != gone_bid for b in bids), (
        f"the BU after {MN_IFACE} lost its link still names its BID {gone_bid}: {bids}"
    )
    if not bids:
        assert care_of_address(after) == kept, (
            f"the plain BU after {MN_IFACE} lost its link binds {care_of_address(after)}, "
            f"expected {SECOND_IFACE}'s care-of address {kept}"
        )
    else:
        assert overwrite_flag(after), (
            f"the BU names BIDs {[b.bid for b in bids]} without O: BID {gone_bid} stays bound"
        )
        assert any(b.bid == kept_bid or b.coa == kept for b in bids), (
            f"the BU binds BIDs {bids}, not {SECOND_IFACE}'s ({kept_bid}, {kept})"
        )
    stale = [f for f in flows_of(after) if f.bids is not None and gone_bid in f.bids]
    assert not stale, f"flows still bound to the lost interface's BID {gone_bid}: {stale}"


@pytest.mark.clause("DMM-OVW-31")
def test_an_application_keeps_its_stream_when_the_first_interface_is_lost(
    multi_mn: MobileNodeUnderTest, captures: Captures
) -> None:
    """A real receiver joined the group on link 1 and keeps it through the move to link 2
    (its binding with the home agent of link 1 carries the group, draft §3), the lab adds
    the second interface, then the first loses its link: once the MN's re-registration is
    due (its registration deadline and the HA's BA, from the profile's timers), the
    datagrams the source sends still reach the application, decapsulated from the HA's
    tunnel (draft §3: the group's state points to the tunnel, not to an air interface).
    Datagrams lost during the changeover are not judged."""
    mcoa(multi_mn)
    stream = stream_to_the_mn(multi_mn)
    seen = second_interface_comes_up(multi_mn)
    with first_interface_detached(multi_mn, seen, captures) as change:
        stream_kept(multi_mn, stream, change, change.at)


@pytest.mark.clause("DMM-OVW-31")
def test_an_application_keeps_its_stream_while_its_interfaces_come_and_go(
    multi_mn: MobileNodeUnderTest, captures: Captures
) -> None:
    """As above, then the first interface comes back to link 2: the stream is judged again
    once the MN's re-registration after each change is due (the interface added, the first
    lost, the first back), from the application and the HA's tunnel."""
    mcoa(multi_mn)
    stream = stream_to_the_mn(multi_mn)
    seen = second_interface_comes_up(multi_mn)
    with first_interface_detached(multi_mn, seen, captures) as change:
        stream_kept(multi_mn, stream, change, change.at)
    assert change.back_at is not None
    stream_kept(multi_mn, stream, change, change.back_at)


@pytest.mark.clause("DMM-OVW-27", "DMM-OVW-31")
def test_a_group_joined_through_an_added_interface_moves_with_it(
    multi_mn: MobileNodeUnderTest, captures: Captures
) -> None:
    """No home agent in use: the lab adds the second interface on link 3, an application
    joins the group through it and a session runs from its address there; then that
    interface moves to link 2. The MN registers the address with link 3's home agent, the
    BU's Multicast State carrying the group (draft §3: all ongoing subscriptions, an added
    interface's too; INT-14: the group belongs to the link it was joined on), and the
    application keeps its stream, decapsulated from the tunnel, once the registration is
    due."""
    moved = added_interface_moves_with_a_group(multi_mn, captures)
    group = moved.stream.group
    state = multicast_state(moved.bu)
    assert group in state, (
        f"the BU to {moved.change.ha} for {moved.hoa}, the address {SECOND_IFACE} had on link "
        f"{SECOND_LINK} where an application joined {group}, carries no record of it: {state}"
    )
    stream_kept(multi_mn, moved.stream, moved.change, moved.change.at)


@pytest.mark.clause("DMM-MIF-9", "RFC6089-2", "RFC6089-3", "RFC6089-5")
def test_flows_are_bound_to_their_interfaces_in_every_bu(multi_mn: MobileNodeUnderTest) -> None:
    """Each flow the MN was told to bind has a Flow Identification option (type 44) whose
    Binding Reference names the BID of its interface's care-of address and whose traffic
    selector is the correspondent's port as the source port of what the HA forwards
    (INT-20); FID-PRIs are distinct (RFC 6089 §4.2); and the next BU carries the flows again
    (§5.2: a flow left out is deleted)."""
    flow_bindings(multi_mn)
    seen = second_interface_comes_up(multi_mn)
    ha = multi_mn.ha_address(1)
    bid_of = {b.coa: b.bid for b in bids_of(seen.bu)}
    expected = {
        FLOW_PORTS[iface]: bid_of.get(seen.coa[iface]) for iface in (MN_IFACE, SECOND_IFACE)
    }
    _check_flows(seen.bu, expected, "the BU after the second interface came up")
    # the next BU (a refresh, RFC 6275 §11.7.1) must carry the flow bindings again
    lifetime = multi_mn.lifetime_seconds(seen.bu.lifetime)
    pkt = in_time(
        multi_mn.link,
        bu_from_mn(to=ha, hoa=str(multi_mn.home), lifetime_zero=False),
        lifetime + multi_mn.deadlines.ba,
        f"the next BU to {ha} (a refresh before the lifetime ends)",
    )
    nxt = mobility_message(pkt)
    assert nxt is not None
    _check_flows(nxt, expected, "the next BU")


@pytest.mark.clause("DMM-MIF-9", "RFC6089-2", "RFC6089-5")
def test_flows_moved_by_command_are_rebound_in_the_next_bu(
    multi_mn: MobileNodeUnderTest,
) -> None:
    """Both interfaces registered, then the MN is told to swap the interfaces of its two
    flows: its next BU binds each flow to its new interface's BID (draft §7.1 "move flows by
    sending BU with flow identification mobility option")."""
    flow_bindings(multi_mn)
    seen = second_interface_comes_up(multi_mn)
    moved = flows_moved(multi_mn, seen)
    bid_of = {b.coa: b.bid for b in bids_of(moved)}
    expected = {port: bid_of.get(seen.coa[iface]) for iface, port in MOVED_FLOW_PORTS.items()}
    _check_flows(moved, expected, "the BU after the flows were moved")


def mcoa(mn: MobileNodeUnderTest) -> None:
    mn.sut.features.require("mcoa", "the SUT mobile node")


def flow_bindings(mn: MobileNodeUnderTest) -> None:
    mcoa(mn)
    mn.sut.features.require("flow_bindings", "the SUT mobile node")


def _check_flows(bu: object, expected: dict[int, int | None], what: str) -> None:
    from harness.wire import compact

    assert isinstance(bu, compact.MobilityMessage)
    flows = flows_of(bu)
    by_port = {f.sports[0]: f for f in flows if f.sports is not None}
    for port, bid in expected.items():
        f = by_port.get(port)
        assert f is not None, (
            f"{what}: no Flow Identification option with a selector of source port "
            f"{port} (it has {flows})"
        )
        assert f.bids == (bid,), (
            f"{what}: the flow of port {port} names BIDs {f.bids}, expected ({bid},), the "
            "BID of its interface's care-of address"
        )
    pris = [f.fid_pri for f in flows]
    assert len(set(pris)) == len(pris), f"{what}: two flows share a FID-PRI: {pris}"
    fids = [f.fid for f in flows]
    assert len(set(fids)) == len(fids), f"{what}: two options with one FID: {fids}"


@pytest.mark.clause("DMM-MIF-3", "DMM-MIF-10", "DMM-MIF-9")
@pytest.mark.interpretation("INT-20")
def test_a_new_session_of_a_moved_flow_uses_the_home_address_on_its_interface(
    multi_mn: MobileNodeUnderTest, captures: Captures
) -> None:
    """Once both interfaces are registered, a new session whose flow is bound to the new
    interface uses the registered home address (draft §7.1 MUST), reverse-tunnelled to the
    home agent from the new interface's care-of address (the source address the
    interface's binding names, INT-20)."""
    flow_bindings(multi_mn)
    seen = second_interface_comes_up(multi_mn)
    got = new_session_of_the_flow(multi_mn, seen, captures)
    home, coa, ha = str(multi_mn.home), seen.coa[SECOND_IFACE], multi_mn.ha_address(1)
    assert got.inner_src == home, (
        f"the new session on {SECOND_IFACE} comes from {got.inner_src}, not the registered "
        f"home address {home}"
    )
    assert got.tunnelled and (got.outer_src, got.outer_dst) == (coa, ha), (
        f"the session's datagram leaves {SECOND_IFACE} from {got.outer_src} to "
        f"{got.outer_dst}, expected tunnelled from its care-of address {coa} to {ha}"
    )
