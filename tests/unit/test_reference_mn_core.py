"""The reference MN's sans-I/O core (harness/reference/mn_core.py): draft §3, §7 decisions."""

from __future__ import annotations

import ipaddress
import struct

import pytest

from harness.faults import Fault, Faults
from harness.reference import mn_core as m
from harness.reference.multicast import GroupState, ListenerState, Mode

A = ipaddress.IPv6Address
P = ipaddress.IPv6Network
IID = 0x100
G1, G2, SRC = A("ff3e::8000:1"), A("ff0e::db8:1"), A("2001:db8:c2::10")


def ra(link: int, ha: bool = True, lifetime: float = 3.0) -> m.RouterAdvert:
    prefix = P(f"2001:db8:{link}::/64")
    return m.RouterAdvert(
        iface="mn0",
        router=A(f"fe80::{link}"),
        prefix=prefix,
        ha_address=prefix[1] if ha else None,
        ha_lifetime=lifetime if ha else None,
    )


def addr(link: int) -> A:
    return P(f"2001:db8:{link}::/64")[IID]


def listening(*groups: A) -> ListenerState:
    return ListenerState({g: GroupState(Mode.EXCLUDE, frozenset()) for g in groups})


def of(actions: list[m.Action], kind: type) -> list:
    return [a for a in actions if isinstance(a, kind)]


@pytest.fixture
def core() -> m.MobileNodeCore:
    c = m.MobileNodeCore(m.MNConfig(bu_lifetime=100, time_scale=0.01, seed=1))
    c.add_interface("mn0", IID)
    c.router_advertisement(0.0, ra(1))
    return c


def test_first_link_gives_address_route_and_no_binding(core: m.MobileNodeCore) -> None:
    assert core.current_address("mn0") == addr(1)
    assert core.ha_cache[P("2001:db8:1::/64")].expires is None  # the home link's entry stays
    assert not core.bindings


def test_move_without_session_sends_nothing_and_forgets(core: m.MobileNodeCore) -> None:
    core.router_advertisement(0.1, ra(2))
    out = core.router_advertisement(0.2, ra(3))
    assert not of(out, m.SendBindingUpdate)
    assert m.RemoveAddress("mn0", addr(2)) in out
    assert P("2001:db8:2::/64") not in core.ha_cache  # draft §7: entry removed


def test_move_with_session_registers_with_previous_ha(core: m.MobileNodeCore) -> None:
    core.observed(0.0, {addr(1)}, ListenerState())
    out = core.router_advertisement(1.0, ra(2))
    [bu] = of(out, m.SendBindingUpdate)
    assert (bu.ha, bu.hoa, bu.coa) == (A("2001:db8:1::1"), addr(1), addr(2))
    assert bu.lifetime == 100
    assert m.HomeAddressToTunnel("mn0", addr(1)) in out
    assert not of(out, m.TunnelChanged)  # only the BA completes the registration (§3)
    acked = core.binding_ack(1.01, bu.ha, bu.hoa, bu.seq, 0, 100)
    assert of(acked, m.TunnelChanged) == [m.TunnelChanged(((addr(1), bu.ha, addr(2)),))]


def test_groups_go_to_the_ha_of_the_link_they_were_joined_on(core: m.MobileNodeCore) -> None:
    core.observed(0.0, {addr(1)}, listening(G1))
    [bu1] = of(core.router_advertisement(1.0, ra(2)), m.SendBindingUpdate)
    assert bu1.multicast is not None and set(bu1.multicast.groups) == {G1}
    out = core.binding_ack(1.01, bu1.ha, bu1.hoa, bu1.seq, 0, 100)
    [mirror] = of(out, m.MulticastOnTunnel)
    assert set(mirror.state.groups) == {G1}
    # a group joined on link 2 is native there: no BU to HA1 for it
    assert not of(core.observed(1.1, {addr(1)}, listening(G1, G2)), m.SendBindingUpdate)
    # leaving G1: HA1 gets the new (empty) state at once (INT-7)
    [bu2] = of(core.observed(1.2, {addr(1)}, listening(G2)), m.SendBindingUpdate)
    assert bu2.multicast is not None and not bu2.multicast.groups
    assert bu2.seq == (bu1.seq + 1) & 0xFFFF


def test_multicast_alone_keeps_a_binding(core: m.MobileNodeCore) -> None:
    core.observed(0.0, set(), listening(G1))
    [bu] = of(core.router_advertisement(1.0, ra(2)), m.SendBindingUpdate)
    assert bu.hoa == addr(1)


def test_refresh_before_expiry_and_retransmission(core: m.MobileNodeCore) -> None:
    core.observed(0.0, {addr(1)}, ListenerState())
    [bu] = of(core.router_advertisement(10.0, ra(2)), m.SendBindingUpdate)
    # no BA: retransmit after INITIAL_BINDACK_TIMEOUT (scaled), with a new number, then back off
    # (1 s x 0.01 is below the 0.25 s floor of MNConfig.min_timer; the back-off doubles it
    # up to MAX_BINDACK_TIMEOUT, 32 s x 0.01)
    [re1] = of(core.tick(10.0 + 0.251), m.SendBindingUpdate)
    assert not of(core.tick(10.0 + 0.251 + 0.31), m.SendBindingUpdate)
    [re2] = of(core.tick(10.0 + 0.251 + 0.321), m.SendBindingUpdate)
    assert re1.seq == bu.seq + 1 and re2.seq == bu.seq + 2
    core.binding_ack(10.8, re2.ha, re2.hoa, re2.seq, 0, 100)  # granted 400 s x 0.01 = 4 s
    assert not of(core.tick(12.7), m.SendBindingUpdate)
    [refresh] = of(core.tick(12.81), m.SendBindingUpdate)
    assert refresh.seq == re2.seq + 1 and refresh.lifetime == 100


def test_status_135_resends_after_the_ha_number(core: m.MobileNodeCore) -> None:
    core.observed(0.0, {addr(1)}, ListenerState())
    [bu] = of(core.router_advertisement(1.0, ra(2)), m.SendBindingUpdate)
    [again] = of(core.binding_ack(1.01, bu.ha, bu.hoa, 4000, 135, 0), m.SendBindingUpdate)
    assert again.seq == 4001  # RFC 6275 §11.7.3


def test_session_end_deregisters(core: m.MobileNodeCore) -> None:
    core.observed(0.0, {addr(1)}, ListenerState())
    [bu] = of(core.router_advertisement(1.0, ra(2)), m.SendBindingUpdate)
    core.binding_ack(1.01, bu.ha, bu.hoa, bu.seq, 0, 100)
    out = core.observed(2.0, set(), ListenerState())
    [dereg] = of(out, m.SendBindingUpdate)
    assert dereg.lifetime == 0 and dereg.multicast is None
    assert of(out, m.TunnelChanged) == [m.TunnelChanged(())]  # no data on a binding going away
    out = core.binding_ack(2.01, dereg.ha, dereg.hoa, dereg.seq, 0, 0)
    assert m.HomeAddressFromTunnel(addr(1)) in out
    assert not core.bindings


def test_second_move_updates_the_coa_and_expires_non_home_entries(
    core: m.MobileNodeCore,
) -> None:
    core.observed(0.0, {addr(1)}, ListenerState())
    [bu] = of(core.router_advertisement(1.0, ra(2, lifetime=3.0)), m.SendBindingUpdate)
    core.binding_ack(1.01, bu.ha, bu.hoa, bu.seq, 0, 100)
    out = core.router_advertisement(1.5, ra(3))
    [update] = of(out, m.SendBindingUpdate)  # link 2's address had no session: HA1 only
    assert (update.ha, update.hoa, update.coa) == (bu.ha, addr(1), addr(3))
    core.tick(10.0)
    assert P("2001:db8:3::/64") not in core.ha_cache  # expired after its lifetime
    assert P("2001:db8:1::/64") in core.ha_cache  # the home link's never does


def test_return_home_deregisters_and_announces_groups(core: m.MobileNodeCore) -> None:
    core.observed(0.0, {addr(1)}, listening(G1))
    [bu] = of(core.router_advertisement(1.0, ra(2)), m.SendBindingUpdate)
    core.binding_ack(1.01, bu.ha, bu.hoa, bu.seq, 0, 100)
    out = core.router_advertisement(2.0, ra(1))
    [dereg] = of(out, m.SendBindingUpdate)
    assert (dereg.lifetime, dereg.coa, dereg.hoa) == (0, addr(1), addr(1))
    assert of(out, m.AnnounceListening)[0].state.groups.keys() == {G1}
    kinds = [type(a) for a in out]
    # the home address leaves the tunnel device before it is put back on the interface
    assert kinds.index(m.HomeAddressFromTunnel) < kinds.index(m.AddAddress)


def test_no_home_agent_known_means_no_bu(core: m.MobileNodeCore) -> None:
    core.router_advertisement(0.5, ra(2, ha=False))  # link 2 advertises no HA
    core.observed(0.6, {addr(2)}, ListenerState())
    assert not of(core.router_advertisement(1.0, ra(3)), m.SendBindingUpdate)


def test_eui64() -> None:
    assert m.eui64_iid("02:dd:0c:00:01:00") == 0x00DD0CFFFE000100


def test_a_pending_deregistration_follows_the_mn(core: m.MobileNodeCore) -> None:
    core.observed(0.0, {addr(1)}, ListenerState())
    [bu] = of(core.router_advertisement(1.0, ra(2)), m.SendBindingUpdate)
    core.binding_ack(1.01, bu.ha, bu.hoa, bu.seq, 0, 100)
    [dereg] = of(core.observed(2.0, set(), ListenerState()), m.SendBindingUpdate)
    [again] = of(core.router_advertisement(2.01, ra(3)), m.SendBindingUpdate)  # no BA yet
    assert (again.lifetime, again.coa, again.hoa) == (0, addr(3), addr(1))
    assert again.seq == (dereg.seq + 1) & 0xFFFF


# ------------------------------------------------- issue 10: BA validation, retransmissions


def faulty(*faults: Fault) -> m.MobileNodeCore:
    c = m.MobileNodeCore(
        m.MNConfig(bu_lifetime=100, time_scale=0.01, seed=1, faults=Faults.of(*faults))
    )
    c.add_interface("mn0", IID)
    c.router_advertisement(0.0, ra(1))
    return c


def registering(c: m.MobileNodeCore) -> m.SendBindingUpdate:
    c.observed(0.0, {addr(1)}, ListenerState())
    [bu] = of(c.router_advertisement(1.0, ra(2)), m.SendBindingUpdate)
    return bu


def retransmissions(c: m.MobileNodeCore, until: float) -> list[tuple[float, int]]:
    """(time, seq) of every BU the core sends while nothing answers, ticked finely."""
    out, now = [], 1.0
    while now < until:
        now = round(now + 0.01, 2)
        out += [(now, bu.seq) for bu in of(c.tick(now), m.SendBindingUpdate)]
    return out


def test_a_ba_with_another_sequence_number_is_ignored(core: m.MobileNodeCore) -> None:
    bu = registering(core)
    out = core.binding_ack(1.01, bu.ha, bu.hoa, (bu.seq + 7) & 0xFFFF, 0, 100)
    assert not of(out, m.TunnelChanged)  # RFC 6275 §11.7.3: silently ignored
    assert core.bindings[bu.hoa].retransmit_at is not None
    faulty_core = faulty(Fault.MN_ACCEPT_ANY_BA_SEQ)
    bu = registering(faulty_core)
    out = faulty_core.binding_ack(1.01, bu.ha, bu.hoa, (bu.seq + 7) & 0xFFFF, 0, 100)
    assert of(out, m.TunnelChanged)


def test_retransmissions_back_off_with_new_numbers(core: m.MobileNodeCore) -> None:
    first = registering(core)
    sent = [(1.0, first.seq)] + retransmissions(core, 3.0)
    gaps = [round(b[0] - a[0], 2) for a, b in zip(sent, sent[1:], strict=False)]
    # doubled from the 0.25 s floor, capped at 32 x 0.01 (ticks of 10 ms)
    assert gaps[:3] == pytest.approx([0.25, 0.32, 0.32], abs=0.011)
    seqs = [s for _, s in sent]
    assert all((b - a) & 0xFFFF == 1 for a, b in zip(seqs, seqs[1:], strict=False))
    assert len({t for t, _ in sent}) == len(sent)  # one BU at a time


def test_faulty_retransmissions() -> None:
    flat = faulty(Fault.MN_NO_BACKOFF)
    registering(flat)
    times = [t for t, _ in retransmissions(flat, 2.0)]
    assert {round(b - a, 2) for a, b in zip(times, times[1:], strict=False)} == {0.25}
    same = faulty(Fault.MN_RETRANSMIT_SAME_SEQ)
    bu = registering(same)
    assert {s for _, s in retransmissions(same, 2.0)} == {bu.seq}


def test_return_home_without_deregistration_is_a_fault() -> None:
    c = faulty(Fault.MN_RETURN_HOME_SILENTLY)
    bu = registering(c)
    c.binding_ack(1.01, bu.ha, bu.hoa, bu.seq, 0, 100)
    out = c.router_advertisement(2.0, ra(1))
    assert not of(out, m.SendBindingUpdate)
    assert not c.bindings


def test_first_ha_only_registers_everything_at_the_home_ha() -> None:
    c = faulty(Fault.MN_FIRST_HA_ONLY)
    c.router_advertisement(0.5, ra(2))  # no session on link 1: no binding
    c.observed(1.0, {addr(2)}, ListenerState())
    [bu] = of(c.router_advertisement(1.5, ra(3)), m.SendBindingUpdate)
    assert bu.hoa == addr(2) and bu.ha == A("2001:db8:1::1")  # not link 2's 2001:db8:2::1


# ---------------------------------------------------------------- several interfaces (§7.1)


def _multi(*faults: Fault) -> tuple[m.MobileNodeCore, m.SendBindingUpdate, list[m.Action]]:
    """mn0 registered from link 2 (session of link 1), then mn1 comes up on link 3: the
    core, the first BU and what mn1's first RA made the core do."""
    flows = (m.FlowPolicy("mn1", 7001), m.FlowPolicy("mn0", 7002))
    c = m.MobileNodeCore(
        m.MNConfig(bu_lifetime=100, time_scale=0.01, seed=1, flows=flows, faults=Faults.of(*faults))
    )
    c.add_interface("mn0", IID)
    c.add_interface("mn1", IID + 1)
    c.router_advertisement(0.0, ra(1))
    c.observed(0.0, {addr(1)}, ListenerState())
    [first] = of(c.router_advertisement(1.0, ra(2)), m.SendBindingUpdate)
    c.binding_ack(1.01, first.ha, first.hoa, first.seq, 0, 100)
    second = m.RouterAdvert("mn1", A("fe80::3"), P("2001:db8:3::/64"), A("2001:db8:3::1"), 3.0)
    return c, first, c.router_advertisement(2.0, second)


def test_one_interface_sends_a_plain_bu() -> None:
    _c, first, _out = _multi()
    assert (first.bids, first.flows, first.overwrite) == ((), (), False)


def test_a_new_interface_is_registered_with_a_bid_per_care_of_address() -> None:
    _c, first, out = _multi()
    [bu] = of(out, m.SendBindingUpdate)
    mn1 = P("2001:db8:3::/64")[IID + 1]
    assert (bu.ha, bu.hoa, bu.coa) == (first.ha, addr(1), addr(2))
    assert bu.bids == (m.BidEntry(1, 1, addr(2)), m.BidEntry(2, 2, mn1))
    assert bu.overwrite  # RFC 5648 §5.9
    assert bu.flows == (m.FlowEntry(1, 1, (2,), 7001), m.FlowEntry(2, 2, (1,), 7002))


def test_every_bu_refreshes_the_flows_and_the_flows_once_fault_does_not() -> None:
    for faults, expected in (((), 2), ((Fault.MN_FLOWS_ONCE,), 0)):
        c, _first, out = _multi(*faults)
        [bu] = of(out, m.SendBindingUpdate)
        c.binding_ack(2.01, bu.ha, bu.hoa, bu.seq, 0, 100)
        refresh = of(c.tick(2.01 + 2.1), m.SendBindingUpdate)
        assert [len(r.flows) for r in refresh] == [expected]


def test_the_new_iface_unregistered_fault_sends_no_bid() -> None:
    _c, _first, out = _multi(Fault.MN_NEW_IFACE_UNREGISTERED)
    assert [bu.bids for bu in of(out, m.SendBindingUpdate)] == [()]


def test_a_flows_packets_leave_from_its_interfaces_care_of_address() -> None:
    from harness.reference import mn_packets

    c, _first, out = _multi()
    [bu] = of(out, m.SendBindingUpdate)
    acked = c.binding_ack(2.01, bu.ha, bu.hoa, bu.seq, 0, 100)
    [routes] = of(acked, m.FlowRoutes)
    mn1 = P("2001:db8:3::/64")[IID + 1]
    assert routes.routes == ((addr(1), 7001, bu.ha, mn1), (addr(1), 7002, bu.ha, addr(2)))
    flows = {(hoa, port): (ha, coa) for hoa, port, ha, coa in routes.routes}
    tunnel = {addr(1): (bu.ha, addr(2))}
    for port, coa in ((7001, mn1), (7003, addr(2))):
        udp = struct.pack("!HHHH", 40000, port, 8, 0)
        inner = mn_packets.ipv6_header(8, 17, str(addr(1)), "2001:db8:c1::10") + udp
        outer = mn_packets.reverse_tunnel(inner, tunnel, Faults(), flows)
        assert outer is not None and ipaddress.IPv6Address(outer[8:24]) == coa


def test_a_lost_interface_leaves_the_bindings() -> None:
    c, _first, out = _multi()
    [bu] = of(out, m.SendBindingUpdate)
    c.binding_ack(2.01, bu.ha, bu.hoa, bu.seq, 0, 100)
    lost = c.carrier(2.5, "mn1", False)
    [after] = of(lost, m.SendBindingUpdate)
    assert (after.bids, after.flows, after.lifetime) == ((), (), 100)  # a plain BU replaces all
    assert c.carrier(2.6, "mn0", False) == []  # the binding's own interface: as before


def test_an_added_interface_on_another_link_is_registered_with_its_new_care_of_address() -> None:
    """RFC 5648 §6.2: mn1 moves from link 3 to link 2, its carrier loss seen or not: the
    next BU with BIDs names BID 2 with mn1's new care-of address (Length 20)."""
    link2 = m.RouterAdvert("mn1", A("fe80::2"), P("2001:db8:2::/64"), A("2001:db8:2::1"), 3.0)
    mn1_old, mn1_new = P("2001:db8:3::/64")[IID + 1], P("2001:db8:2::/64")[IID + 1]
    for lose_carrier in (False, True):
        c, _first, out = _multi()
        [bu] = of(out, m.SendBindingUpdate)
        c.binding_ack(2.01, bu.ha, bu.hoa, bu.seq, 0, 100)
        if lose_carrier:
            c.carrier(2.5, "mn1", False)
        [moved] = [b for b in of(c.router_advertisement(3.0, link2), m.SendBindingUpdate)]
        assert moved.bids == (m.BidEntry(1, 1, addr(2)), m.BidEntry(2, 2, mn1_new))
        assert moved.coa == addr(2) and moved.overwrite
    c, _first, out = _multi(Fault.MN_MOVED_IFACE_OLD_COA)
    [bu] = of(out, m.SendBindingUpdate)
    c.binding_ack(2.01, bu.ha, bu.hoa, bu.seq, 0, 100)
    [moved] = of(c.router_advertisement(3.0, link2), m.SendBindingUpdate)
    assert moved.bids == (m.BidEntry(1, 1, addr(2)), m.BidEntry(2, 2, mn1_old))


def test_the_first_interface_lost_leaves_the_binding_on_the_other() -> None:
    """mn0, the binding's own interface, loses its link while mn1 is registered: a plain BU
    from mn1's care-of address (RFC 5648 §6.2: it replaces every binding); the fault keeps
    the binding where it was and sends nothing."""
    mn1 = P("2001:db8:3::/64")[IID + 1]
    c, _first, out = _multi()
    [bu] = of(out, m.SendBindingUpdate)
    c.binding_ack(2.01, bu.ha, bu.hoa, bu.seq, 0, 100)
    [after] = of(c.carrier(2.5, "mn0", False), m.SendBindingUpdate)
    assert (after.iface, after.coa, after.hoa, after.lifetime) == ("mn1", mn1, addr(1), 100)
    assert (after.bids, after.flows) == ((), ())
    c, _first, out = _multi(Fault.MN_LOST_FIRST_IFACE_KEPT)
    [bu] = of(out, m.SendBindingUpdate)
    c.binding_ack(2.01, bu.ha, bu.hoa, bu.seq, 0, 100)
    assert not of(c.carrier(2.5, "mn0", False), m.SendBindingUpdate)


def test_a_new_flow_policy_is_sent_at_once() -> None:
    c, _first, out = _multi()
    [bu] = of(out, m.SendBindingUpdate)
    c.binding_ack(2.01, bu.ha, bu.hoa, bu.seq, 0, 100)
    swapped = (m.FlowPolicy("mn0", 7001), m.FlowPolicy("mn1", 7002))
    [moved] = of(c.set_flows(2.1, swapped), m.SendBindingUpdate)
    assert moved.flows == (m.FlowEntry(1, 1, (1,), 7001), m.FlowEntry(2, 2, (2,), 7002))
    assert c.set_flows(2.2, swapped) == []  # the same policy: nothing to send


DATA_PLANE = A("2001:db8:1::d0")


@pytest.mark.parametrize(
    ("faults", "tunnel_end", "bu_to"),
    [
        ((), DATA_PLANE, "ha"),
        ((Fault.MN_IGNORES_DATA_PLANE,), "ha", "ha"),
        ((Fault.MN_BU_TO_DATA_PLANE,), DATA_PLANE, DATA_PLANE),
    ],
    ids=["reference", "ignores-data-plane", "bu-to-data-plane"],
)
def test_a_named_data_plane_ends_the_tunnel_and_bus_stay_with_the_control_plane(
    faults: tuple[Fault, ...], tunnel_end: object, bu_to: object
) -> None:
    """Draft §9: after a BA that names the HA's data plane function, the tunnel ends
    there; the refresh still goes to the control plane (DMM-CPDP-4, -7, -9)."""
    c = faulty(*faults)
    bu = registering(c)
    actions = c.binding_ack(1.5, bu.ha, bu.hoa, bu.seq, 0, 100, data_plane=DATA_PLANE)
    [changed] = of(actions, m.TunnelChanged)
    assert changed.routes == ((bu.hoa, bu.ha if tunnel_end == "ha" else tunnel_end, bu.coa),)
    [refresh] = of(c.tick(1.5 + 3.9), m.SendBindingUpdate)
    assert refresh.ha == (bu.ha if bu_to == "ha" else bu_to)
