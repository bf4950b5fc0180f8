"""The reference MN core on an IPv4-only link (RFC 5555 §4.2-§4.4, draft §8), without a
network: when it registers the IPv4 care-of address, what its BUs carry, what it takes from
the BA, the NAT keepalive, and the faults of issue 13."""

from __future__ import annotations

import ipaddress

from harness.faults import Fault, Faults
from harness.reference import mn_core as m
from harness.reference import mn_dhcp4, mn_packets
from harness.reference.multicast import ListenerState
from harness.wire import compact, dhcp
from harness.wire.numbers import MobOpt

A, P, V4 = ipaddress.IPv6Address, ipaddress.IPv6Network, ipaddress.IPv4Address
IID = 0x100
HA1, HA1_V4 = A("2001:db8:1::1"), V4("10.0.1.1")
HOME, COA4, HOA4 = P("2001:db8:1::/64")[IID], V4("10.0.3.100"), V4("10.0.1.40")
HAS = {HA1: HA1_V4}


def _ra(link: int) -> m.RouterAdvert:
    prefix = P(f"2001:db8:{link}::/64")
    return m.RouterAdvert("mn0", A(f"fe80::{link}"), prefix, prefix[1], 3.0)


def _core(*faults: Fault) -> m.MobileNodeCore:
    c = m.MobileNodeCore(
        m.MNConfig(
            bu_lifetime=100,
            time_scale=0.01,
            seed=1,
            fqdn="mn.lab.example",
            faults=Faults.of(*faults),
        )
    )
    c.add_interface("mn0", IID)
    c.router_advertisement(0.0, _ra(1))
    return c


def _of(actions: list[m.Action], kind: type) -> list:
    return [a for a in actions if isinstance(a, kind)]


def _moved(c: m.MobileNodeCore, session: bool = True) -> list[m.Action]:
    c.observed(0.5, {HOME} if session else set(), ListenerState())
    return c.ipv4_link(1.0, "mn0", COA4, HAS)


def test_a_move_with_a_session_registers_the_ipv4_care_of_address() -> None:
    c = _core()
    out = _moved(c)
    [bu] = _of(out, m.SendBindingUpdate)
    assert (bu.ha, bu.hoa, bu.coa4, bu.ha4, bu.hoa4) == (HA1, HOME, COA4, HA1_V4, V4(0))
    assert bu.dns == m.DnsUpdate("mn.lab.example", False)
    assert m.HomeAddressToTunnel("mn0", HOME) in out
    assert m.RemoveAddress("mn0", HOME) in out


def test_no_session_no_registration_unless_the_fault() -> None:
    assert not _of(_moved(_core(), session=False), m.SendBindingUpdate)
    assert _of(_moved(_core(Fault.MN_V4_REGISTER_ALWAYS), session=False), m.SendBindingUpdate)
    assert not _of(_moved(_core(Fault.MN_NO_V4_REGISTRATION)), m.SendBindingUpdate)


def test_no_ipv4_address_of_the_home_agent_no_registration() -> None:
    c = _core()
    c.observed(0.5, {HOME}, ListenerState())
    assert not _of(c.ipv4_link(1.0, "mn0", COA4, {}), m.SendBindingUpdate)


def test_the_ba_assigns_the_ipv4_home_address_and_sets_the_keepalive() -> None:
    c = _core()
    [bu] = _of(_moved(c), m.SendBindingUpdate)
    ack = m.Ipv4Ack(0, HOA4, 32, 110)
    out = c.binding_ack(1.1, HA1, HOME, bu.seq, 0, 100, ack)
    assert m.Ipv4HomeAddress(HOME, HOA4, 32) in out
    assert m.Udp4TunnelChanged(((HOME, HA1_V4),)) in out
    assert not _of(out, m.TunnelChanged)
    # §4.3: the keepalive (a refresh BU) at the NAT's 110 s, scaled: before the binding's 2 s
    assert c.next_deadline() == 1.1 + 1.1
    [again] = _of(c.tick(2.21), m.SendBindingUpdate)
    assert again.hoa4 == HOA4 and again.dns is None  # it has one now (§4.4.2)
    assert again.coa4 == COA4


def test_no_keepalive_without_a_nat_or_with_the_fault() -> None:
    for ack, fault in ((m.Ipv4Ack(0, HOA4, 32, m.NO_KEEPALIVE), None),
                       (m.Ipv4Ack(0, HOA4, 32, 110), Fault.MN_NAT_KEEPALIVE_IGNORED)):  # fmt: skip
        c = _core(*(() if fault is None else (fault,)))
        [bu] = _of(_moved(c), m.SendBindingUpdate)
        c.binding_ack(1.1, HA1, HOME, bu.seq, 0, 100, ack)
        assert c.next_deadline() == 1.1 + 2.0  # the binding's refresh, half of 4 s


def test_the_ipv4_hoa_unused_fault_does_not_take_the_address() -> None:
    c = _core(Fault.MN_IPV4_HOA_UNUSED)
    [bu] = _of(_moved(c), m.SendBindingUpdate)
    out = c.binding_ack(1.1, HA1, HOME, bu.seq, 0, 100, m.Ipv4Ack(0, HOA4, 32, 110))
    assert not _of(out, m.Ipv4HomeAddress)


def test_the_v4_bu_no_dns_fault() -> None:
    [bu] = _of(_moved(_core(Fault.MN_V4_BU_NO_DNS)), m.SendBindingUpdate)
    assert bu.dns is None


def test_back_on_an_ipv6_link_the_binding_takes_the_ipv6_care_of_address() -> None:
    c = _core()
    [bu] = _of(_moved(c), m.SendBindingUpdate)
    c.binding_ack(1.1, HA1, HOME, bu.seq, 0, 100, m.Ipv4Ack(0, HOA4, 32, 110))
    out = c.router_advertisement(1.5, _ra(2))
    [again] = _of(out, m.SendBindingUpdate)
    assert again.coa4 is None and again.coa == P("2001:db8:2::/64")[IID]
    assert again.hoa4 == HOA4  # RFC 5555 §4.4.2: the IPv4 home address it has, in every BU
    msg = compact.parse_packet(mn_packets.binding_update(again))
    types = [
        o.otype for o in compact.parse_options(msg.body, compact.FIXED_PART[compact.MHType.BU])
    ]
    assert MobOpt.IPV4_HOME_ADDRESS in types and MobOpt.IPV4_CARE_OF_ADDRESS not in types
    assert MobOpt.ALTERNATE_COA in types


def test_the_bu_in_udp_is_sent_from_the_home_address_with_both_options() -> None:
    [bu] = _of(_moved(_core()), m.SendBindingUpdate)
    msg = compact.parse_packet(mn_packets.binding_update(bu, b"k" * 16, 4096))
    assert msg.src == str(HOME) and not msg.hoa_raw  # §4.2: no Home Address option
    types = [
        o.otype for o in compact.parse_options(msg.body, compact.FIXED_PART[compact.MHType.BU])
    ]
    assert MobOpt.IPV4_HOME_ADDRESS in types and MobOpt.IPV4_CARE_OF_ADDRESS in types
    assert MobOpt.ALTERNATE_COA not in types
    faulty = mn_packets.binding_update(bu, faults=Faults.of(Fault.MN_NO_IPV4_HOA_OPTION))
    msg = compact.parse_packet(faulty)
    types = [
        o.otype for o in compact.parse_options(msg.body, compact.FIXED_PART[compact.MHType.BU])
    ]
    assert MobOpt.IPV4_HOME_ADDRESS not in types


def test_the_home_agents_ipv4_addresses_from_the_home_network_information() -> None:
    home = dhcp.HomeInfo(ha_addresses=("2001:db8:1::1", "64:ff9b::a00:101"))
    assert mn_dhcp4.ha_ipv4_addresses(home) == {HA1: HA1_V4}
    assert mn_dhcp4.ha_ipv4_addresses(dhcp.HomeInfo(ha_addresses=("2001:db8:1::1",))) == {}


GROUP4, SOURCE4, GROUP6 = V4("232.1.1.1"), V4("198.51.100.10"), A("ff3e::8000:1")


def _listening() -> ListenerState:
    from harness.reference.multicast import GroupState, Mode

    return ListenerState(
        {
            GROUP4: GroupState(Mode.INCLUDE, frozenset({SOURCE4})),
            GROUP6: GroupState(Mode.EXCLUDE, frozenset()),
        }
    )


def _moved_listening(c: m.MobileNodeCore) -> list[m.Action]:
    c.observed(0.5, {HOME}, _listening())
    return c.ipv4_link(1.0, "mn0", COA4, HAS)


def test_the_ipv4_groups_go_in_an_igmpv3_option_of_their_own() -> None:
    """Draft §8: the groups joined on link 1 go with the binding, one option per family."""
    [bu] = _of(_moved_listening(_core()), m.SendBindingUpdate)
    assert bu.multicast is not None and set(bu.multicast.groups) == {GROUP6}
    assert bu.multicast4 is not None and set(bu.multicast4.groups) == {GROUP4}
    msg = compact.parse_packet(mn_packets.binding_update(bu))
    fixed = compact.FIXED_PART[compact.MHType.BU]
    bodies = [o.data for o in compact.parse_options(msg.body, fixed) if o.data[:1] == b"\x22"]
    [state] = [compact.parse_multicast_state(b) for b in bodies]
    assert state.checksum_ok
    assert [(r.rtype, r.maddr, r.sources) for r in state.records] == [
        (1, str(GROUP4), (str(SOURCE4),))
    ]


def test_no_igmpv3_option_without_ipv4_groups_and_an_empty_one_after_the_last() -> None:
    c = _core()
    [bu] = _of(_moved(c), m.SendBindingUpdate)
    assert bu.multicast4 is None
    c = _core()
    _moved_listening(c)
    [later] = _of(c.observed(1.5, {HOME}, ListenerState()), m.SendBindingUpdate)
    assert later.multicast4 == ListenerState()  # INT-7: clears what the HA holds
    [bu] = _of(_moved_listening(_core(Fault.MN_NO_IGMP_OPTION)), m.SendBindingUpdate)
    assert bu.multicast4 is None


def test_tunnelled_ipv4_multicast_goes_to_the_device_unless_the_fault() -> None:
    def packet(dst: str) -> bytes:
        return bytes([0x45]) + bytes(11) + SOURCE4.packed + V4(dst).packed

    assert mn_packets.ipv4_for_device(packet(str(GROUP4)), [HOA4])
    assert mn_packets.ipv4_for_device(packet(str(HOA4)), [HOA4])
    assert not mn_packets.ipv4_for_device(packet("224.0.0.1"), [HOA4])
    assert not mn_packets.ipv4_for_device(packet("10.9.9.9"), [HOA4])
    broken = Faults.of(Fault.MN_V4_MCAST_NOT_DELIVERED)
    assert not mn_packets.ipv4_for_device(packet(str(GROUP4)), [HOA4], broken)


def test_the_igmpv3_report_sent_on_air_keeps_only_the_groups_not_moved() -> None:
    """Draft §3 last paragraph, for IPv4 (§8): the records of moved groups stay off the air;
    the report of the rest reads back the same (RFC 3376 §4.2, checksum included)."""
    from harness.netproto import igmp
    from harness.netproto.mld import Record
    from harness.reference.mn_kernel import nft_script

    local = V4("239.1.1.1")
    records = [Record(1, GROUP4, (SOURCE4,)), Record(2, local, ())]
    keep = mn_packets.air_records(records, {GROUP4})
    assert igmp.parse_report(mn_packets.igmp_report(keep)) == [Record(2, local, ())]
    assert "igmp type membership-report-v3" in nft_script("t", ("mn0",), 1, 2)
