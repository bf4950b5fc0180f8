"""The reference HA's multiple care-of addresses (RFC 5648 §6.2) and flow bindings (RFC 6089
§5.3) in the sans-I/O core, the steering of packets among the bindings (ha_dataplane.steer),
and the RFC 6088 selectors against scapy's layers."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any, TypeVar

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import HAO, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment
from scapy.packet import Packet

from harness.faults import NO_FAULTS, Fault, Faults, Role
from harness.reference import ha_dataplane, ha_mcoa
from harness.reference.ha_core import HAConfig, HomeAgentCore, SendBindingAck, TunnelDown
from harness.tester.flows import bid, dports, flow, to_address, v4_dports
from harness.tester.multicast_state import IS_EX, state
from harness.wire import traffic_selector as ts
from harness.wire.mobility import (
    BindingUpdate,
    FIDSubOptTrafficSelector,
    IPv6BinaryTrafficSelector,
    MIP6OptBindingIdentifier,
    MIP6OptFlowSummary,
)

HA, HOA = "2001:db8:1::1", "2001:db8:1::10"
COAS = ("2001:db8:2::10", "2001:db8:2::11", "2001:db8:2::12")
CN = "2001:db8:c::1"
NOW = 1_800_000_000.0
T = TypeVar("T")


def core() -> HomeAgentCore:
    return HomeAgentCore(
        HAConfig(
            address=ipaddress.IPv6Address(HA),
            home_prefix=ipaddress.IPv6Network("2001:db8:1::/64"),
        )
    )


def bu(*options: Packet, seq: int = 1, lifetime: int = 25, flags: int = 0x300) -> bytes:
    return bytes(
        IPv6(src=COAS[0], dst=HA)
        / IPv6ExtHdrDestOpt(options=[HAO(hoa=HOA)])
        / BindingUpdate(seq=seq, mhtime=lifetime, flags=flags, options=list(options))
    )


def only(actions: Sequence[object], cls: type[T]) -> list[T]:
    return [a for a in actions if isinstance(a, cls)]


def ba(ha: HomeAgentCore, *options: Packet, **kw: int) -> SendBindingAck:
    (answer,) = only(ha.receive(bu(*options, **kw), NOW), SendBindingAck)
    return answer


def udp(dport: int, src: str = CN) -> bytes:
    return bytes(IPv6(src=src, dst=HOA) / UDP(sport=1234, dport=dport) / b"x")


def steered(ha: HomeAgentCore, packet: bytes, faults: Faults = NO_FAULTS) -> list[str]:
    node = ha.nodes[ipaddress.IPv6Address(HOA)]
    coas = ha_dataplane.steer(packet, node.bindings.values(), node.flows.values(), faults)
    return [str(c) for c in coas]


# RFC 5648 §6.2: a BU without a BID option would replace them all: refreshes carry them.
KEEP = (
    MIP6OptBindingIdentifier(bid=1, bid_pri=20),
    MIP6OptBindingIdentifier(bid=2, bid_pri=10),
    MIP6OptBindingIdentifier(bid=3, bid_pri=30),
)


def three(ha: HomeAgentCore) -> None:
    answer = ba(ha, bid(1, 20, COAS[0]), bid(2, 10, COAS[1]), bid(3, 30, COAS[2]), flags=0x301)
    assert answer.status == 0 and [(b.bid, b.status, b.bid_pri) for b in answer.bids] == [
        (1, 0, 20),
        (2, 0, 10),
        (3, 0, 30),
    ]


# --- RFC 5648 §6.2 ----------------------------------------------------------------------------


def test_bulk_registration_with_a_bad_care_of_address_is_not_complete() -> None:
    ha = core()
    answer = ba(ha, bid(1, 1, COAS[0]), bid(2, 2, "ff0e::1"), flags=0x301)
    assert answer.status == 4  # MCOA NOTCOMPLETE
    assert [(b.bid, b.status) for b in answer.bids] == [(1, 0), (2, 164)]
    assert sorted(b.bid for b in ha.bindings()) == [1]


def test_one_bid_option_answers_in_the_ba_status() -> None:
    ha = core()
    answer = ba(ha, bid(1, 1, "::"))
    assert answer.status == 164 and [b.status for b in answer.bids] == [0]
    assert ba(ha, bid(7, 1), seq=2).status == 167  # Length 4, unknown BID
    ba(ha, bid(1, 1, COAS[0]), seq=3)
    assert ba(ha, bid(8, 1), seq=4, lifetime=0).status == 133  # deregistration, unknown BID


def test_deregistering_one_bid_keeps_the_others_and_a_plain_bu_replaces_all() -> None:
    ha = core()
    three(ha)
    actions = ha.receive(bu(bid(2, 10), seq=2, lifetime=0), NOW)
    assert [t.bid for t in only(actions, TunnelDown)] == [2]
    assert sorted(b.bid for b in ha.bindings()) == [1, 3]
    assert ba(ha, bid(1, 20), seq=3).status == 0  # a Length-4 refresh keeps its CoA
    assert {b.bid: str(b.coa) for b in ha.bindings()}[1] == COAS[0]
    ba(ha, seq=4)
    assert [b.bid for b in ha.bindings()] == [0]
    assert ba(ha, bid(1, 1, COAS[0]), seq=5).status == 165  # O clear, a plain binding exists
    assert ba(ha, bid(1, 1, COAS[0]), seq=6, flags=0x301).status == 0
    assert [b.bid for b in ha.bindings()] == [1]


def test_unmatched_packets_go_to_the_lowest_bid_pri() -> None:
    ha = core()
    three(ha)
    assert steered(ha, udp(80)) == [COAS[1]]
    highest = Faults.parse(Role.HA, "default-highest-bid-pri")
    assert steered(ha, udp(80), highest) == [COAS[2]]


# --- RFC 6089 §5.3 ----------------------------------------------------------------------------


def test_flow_list_add_modify_refresh_remove() -> None:
    ha = core()
    three(ha)
    answer = ba(
        ha, *KEEP, flow(5, 10, [3], dports(5000, 5009)), flow(6, 20, [1, 3], dports(5005)), seq=2
    )
    assert [(f.fid, f.status) for f in answer.flows] == [(5, 0), (6, 0)]
    assert steered(ha, udp(5005)) == [COAS[2]]  # FID 5 first (FID-PRI 10)
    assert steered(ha, udp(5001)) == [COAS[2]] and steered(ha, udp(6000)) == [COAS[1]]
    # modify FID 5's priority only: FID 6 now wins the overlap, one copy per BID
    answer = ba(ha, *KEEP, flow(5, 30, None), MIP6OptFlowSummary(fids=[6]), seq=3)
    assert [(f.fid, f.status) for f in answer.flows] == [(5, 0)]
    assert steered(ha, udp(5005)) == [COAS[0], COAS[2]]
    assert steered(ha, udp(5005), Faults.parse(Role.HA, "flow-first-bid-only")) == [COAS[0]]
    assert steered(ha, udp(5005), Faults.parse(Role.HA, "flow-order-reversed")) == [COAS[2]]
    assert steered(ha, udp(5005), Faults.parse(Role.HA, "flows-ignored")) == [COAS[1]]
    # a refresh naming FID 6 alone removes FID 5 (§5.3.4); unknown FIDs get 132
    answer = ba(ha, *KEEP, MIP6OptFlowSummary(fids=[6, 9]), seq=4)
    assert [(f.fid, f.status) for f in answer.flows] == [(9, 132)]
    assert sorted(ha.nodes[ipaddress.IPv6Address(HOA)].flows) == [6]
    ba(ha, *KEEP, seq=5)  # no flow named: all removed
    assert not ha.nodes[ipaddress.IPv6Address(HOA)].flows


def test_flow_status_codes() -> None:
    ha = core()
    three(ha)
    raw = FIDSubOptTrafficSelector(ts_format=9, selector=[])
    answer = ba(
        ha,
        *KEEP,
        flow(1, 1, [1]),  # no selector: 130
        flow(2, 2, None, dports(1)),  # no binding reference: 130
        flow(3, 3, [9], dports(1)),  # BID not found: 131
        flow(4, 4, [1], raw),  # TS format not supported: 133
        flow(5, 5, [1], dports(1)),
        flow(5, 6, [1], dports(2)),  # the same FID twice: both rejected
        flow(6, 7, [1], dports(3)),
        flow(7, 7, [1], dports(4)),  # FID-PRI 7 taken by FID 6: 129 (INT-19)
        seq=2,
    )
    assert [(f.fid, f.status) for f in answer.flows] == [
        (1, 130),
        (2, 130),
        (3, 131),
        (4, 133),
        (5, 130),
        (5, 130),
        (6, 0),
        (7, 129),
    ]
    assert sorted(ha.nodes[ipaddress.IPv6Address(HOA)].flows) == [6]


def test_bid_options_are_processed_before_flows_and_flows_of_gone_bids_are_inactive() -> None:
    ha = core()
    answer = ba(ha, bid(4, 5, COAS[2]), flow(1, 1, [4], dports(7)), flags=0x301)
    assert [(f.fid, f.status) for f in answer.flows] == [(1, 0)]
    ba(ha, bid(5, 9, COAS[1]), MIP6OptFlowSummary(fids=[1]), seq=2)
    assert steered(ha, udp(7)) == [COAS[2]]
    ba(ha, bid(4, 5), MIP6OptFlowSummary(fids=[1]), seq=3, lifetime=0)
    assert sorted(ha.nodes[ipaddress.IPv6Address(HOA)].flows) == [1]  # kept, inactive
    assert steered(ha, udp(7)) == [COAS[1]]


def test_an_ipv4_selector_never_matches_ipv6_packets() -> None:
    ha = core()
    three(ha)
    v4 = v4_dports(53)
    assert [f.status for f in ba(ha, *KEEP, flow(1, 1, [3], v4), seq=2).flows] == [0]
    assert steered(ha, udp(53)) == [COAS[1]]
    packet = bytes(IP(src="192.0.2.1", dst="198.51.100.7") / UDP(dport=53))
    assert steered(ha, packet) == [COAS[2]]


# --- RFC 6088 selectors: the reference's reading against scapy's ------------------------------

ADDR6 = st.integers(0, 3).map(lambda n: f"2001:db8:c::{n}")
PORT = st.integers(1000, 1003)


def _order(value: Any) -> int:
    return int(ipaddress.ip_address(value)) if isinstance(value, str) else int(value)


@st.composite
def selectors6(draw: st.DrawFn) -> IPv6BinaryTrafficSelector:
    fields: dict[str, Any] = {}
    for start, end, values in (
        ("start_src", "end_src", ADDR6),
        ("start_dport", "end_dport", PORT),
        ("start_sport", "end_sport", PORT),
        ("start_nh", "end_nh", st.sampled_from([6, 17])),
    ):
        if draw(st.booleans()):
            a, b = sorted([draw(values), draw(values)], key=_order)
            fields[start] = a
            if draw(st.booleans()):
                fields[end] = b
    return IPv6BinaryTrafficSelector(**fields)


def _in(value: object, first: object, last: object) -> bool:
    key = (lambda v: int(ipaddress.ip_address(v))) if isinstance(value, str) else (lambda v: v)
    return bool(key(first) <= key(value) <= key(last if last is not None else first))


@settings(max_examples=200, deadline=None)
@given(sel=selectors6(), src=ADDR6, sport=PORT, dport=PORT, tcp=st.booleans(), frag=st.booleans())
def test_ipv6_selector_matches_as_rfc6088_says(
    sel: IPv6BinaryTrafficSelector, src: str, sport: int, dport: int, tcp: bool, frag: bool
) -> None:
    sub = bytes(FIDSubOptTrafficSelector(selector=[sel]))
    parsed = ts.parse(sub[2], sub[4:])
    l4 = TCP(sport=sport, dport=dport) if tcp else UDP(sport=sport, dport=dport)
    ip = IPv6(src=src, dst=HOA)
    packet = bytes(ip / IPv6ExtHdrFragment(offset=0) / l4 if frag else ip / l4)
    want = (
        (sel.start_src is None or _in(src, sel.start_src, sel.end_src))
        and (sel.start_dport is None or _in(dport, sel.start_dport, sel.end_dport))
        and (sel.start_sport is None or _in(sport, sel.start_sport, sel.end_sport))
        and (sel.start_nh is None or _in(6 if tcp else 17, sel.start_nh, sel.end_nh))
    )
    assert parsed.matches(ts.packet_fields(packet)) == want


def test_malformed_selectors_are_refused() -> None:
    sel = bytes(IPv6BinaryTrafficSelector(start_dport=5, end_dport=9))
    broken = sel[:1] + bytes([sel[1] & ~0x20]) + sel[2:]  # K (start dport) cleared, L kept
    for data in (
        sel[:2],
        broken,
        sel[:-1],
        bytes(IPv6BinaryTrafficSelector(start_dport=9, end_dport=5)),
    ):
        try:
            ts.parse(2, data)
        except ts.SelectorMalformed:
            continue
        raise AssertionError(f"{data.hex()} parsed")
    assert not ts.supported(0) and ts.supported(1) and ts.supported(2)


# --- OPEN-8: flow bindings steer multicast data too -----------------------------------------

GROUP = "ff0e::db8:91"


def mcast(dport: int = 5004, group: str = GROUP) -> bytes:
    return bytes(IPv6(src=CN, dst=group) / UDP(sport=1234, dport=dport) / b"m")


def copied(ha: HomeAgentCore, packet: bytes, faults: Faults = NO_FAULTS) -> list[str]:
    node = ha.nodes[ipaddress.IPv6Address(HOA)]
    served = [
        ha_dataplane.Served(b.coa, b.multicast, node)
        for b in node.bindings.values()
        if b.multicast.mld.groups
    ]
    plan = ha_dataplane.copies(packet, False, served, faults)
    assert plan is not None
    return [str(c) for c in plan.coas]


def test_flow_bindings_steer_multicast_data_of_the_state() -> None:
    """OPEN-8: a group's data goes to the CoA of the binding with the state (BID 1, which
    sent the BU) unless a flow binding's selector matches it: then to that flow's BIDs,
    one copy each, whichever bindings hold the state."""
    ha = core()
    answer = ba(
        ha,
        bid(1, 20, COAS[0]),
        bid(2, 10, COAS[1]),
        bid(3, 30, COAS[2]),
        state((IS_EX, GROUP, ())),
        flags=0x301,
    )
    assert answer.status == 0
    assert copied(ha, mcast()) == [COAS[0]]  # the state's binding, not the lowest BID-PRI's
    ba(ha, *KEEP, flow(1, 5, [3], to_address(GROUP)), flow(2, 6, [2], dports(9)), seq=2)
    assert copied(ha, mcast()) == [COAS[2]]
    assert copied(ha, mcast(), Faults.parse(Role.HA, "mcast-ignores-flows")) == [COAS[0]]
    assert copied(ha, mcast(9, "ff0e::db8:92")) == []  # no state for that group
    ba(ha, *KEEP, flow(1, 5, [2, 3], None), MIP6OptFlowSummary(fids=[2]), seq=3)
    assert copied(ha, mcast()) == [COAS[1], COAS[2]]
    ba(ha, *KEEP, flow(3, 7, [1], dports(9)), seq=4)  # FIDs 1, 2 removed (§5.3.4)
    assert copied(ha, mcast()) == [COAS[0]] and copied(ha, mcast(9)) == [COAS[0]]
    # The state on two bindings, a flow naming one of them: one copy for the MN.
    node = ha.nodes[ipaddress.IPv6Address(HOA)]
    node.bindings[2].multicast = node.bindings[1].multicast
    assert sorted(copied(ha, mcast())) == [COAS[0], COAS[1]]
    assert copied(ha, mcast(9)) == [COAS[0]]


def test_flow_entries_are_ordered_by_fid_pri() -> None:
    s = ts.Selector(6, ())
    flows = {1: ha_mcoa.Flow(1, 9, (1,), s), 2: ha_mcoa.Flow(2, 3, (1,), s)}
    assert [f.fid for f in ha_mcoa.ordered(flows)] == [2, 1]
    assert Fault.HA_FLOWS_IGNORED.value == ("ha", "flows-ignored")
