"""The reference HA core, driven with the tester's own scapy-built BUs (no network)."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Sequence
from typing import TypeVar

import pytest
from scapy.layers.inet6 import (
    HAO,
    IPv6,
    IPv6ExtHdrDestOpt,
    MIP6OptAltCoA,
    MIP6OptMsgAuth,
    MIP6OptReplayProtection,
)
from scapy.packet import Packet

import vectors
from harness.reference import encode
from harness.reference.ha_core import (
    DadRequest,
    DnsRequest,
    HAConfig,
    HomeAgentCore,
    MulticastChanged,
    SendBindingAck,
    SendBindingError,
    SendParameterProblem,
    TunnelDown,
    TunnelUp,
    _ntp_now,
)
from harness.wire import auth, compact, ipv6
from harness.wire.mobility import (
    BindingUpdate,
    FIDSubOptBindingReference,
    FIDSubOptTrafficSelector,
    IPv6BinaryTrafficSelector,
    MIP6OptBindingIdentifier,
    MIP6OptDNSUpdate,
    MIP6OptFlowIdentification,
    MIP6OptFlowSummary,
    MIP6OptIPv4HomeAddress,
    MIP6OptMulticastState,
    MldAddressRecord,
)

HA, HOA, COA, COA2 = "2001:db8:1::1", "2001:db8:1::10", "2001:db8:2::10", "2001:db8:3::10"
KEY, SPI = b"k" * 20, 4096
GROUP, SOURCE = "ff3e::8000:1", "2001:db8:c2::10"
UDP_5004 = FIDSubOptTrafficSelector(selector=[IPv6BinaryTrafficSelector(start_dport=5004)])
NOW = 1_800_000_000.0


def core(**kw: object) -> HomeAgentCore:
    cfg = HAConfig(
        address=ipaddress.IPv6Address(HA),
        home_prefix=ipaddress.IPv6Network("2001:db8:1::/64"),
        keys={SPI: KEY},
        **kw,  # type: ignore[arg-type]
    )
    return HomeAgentCore(cfg)


def bu(
    *options: Packet, seq: int = 1, lifetime: int = 25, flags: int = 0x300, coa: str = COA
) -> bytes:
    pkt: Packet = (
        IPv6(src=coa, dst=HA)
        / IPv6ExtHdrDestOpt(options=[HAO(hoa=HOA)])
        / BindingUpdate(seq=seq, mhtime=lifetime, flags=flags, options=list(options))
    )
    if any(isinstance(o, MIP6OptMsgAuth) for o in options):
        pkt = auth.sign(pkt, KEY)
    return bytes(pkt)


T = TypeVar("T")


def only(actions: Sequence[object], cls: type[T]) -> list[T]:
    return [a for a in actions if isinstance(a, cls)]


def state_option(*groups: str) -> MIP6OptMulticastState:
    return MIP6OptMulticastState(
        records=[MldAddressRecord(rtype=1, maddr=g, sources=[SOURCE]) for g in groups]
    )


def test_registration_brings_up_the_tunnel_and_acks() -> None:
    ha = core()
    actions = ha.receive(bu(seq=7, lifetime=25), NOW)
    assert only(actions, TunnelUp) == [
        TunnelUp(ipaddress.IPv6Address(HOA), 0, ipaddress.IPv6Address(COA))
    ]
    (ba,) = only(actions, SendBindingAck)
    assert (ba.status, ba.seq, ba.lifetime) == (0, 7, 25)
    pkt = encode.binding_ack(ba, ha.config)
    msg = compact.parse_packet(bytes(pkt))
    assert msg.checksum_ok and msg.rh2_hoa == HOA and msg.dst == COA


def test_lifetime_is_capped_and_bindings_expire() -> None:
    ha = core(max_lifetime=40)
    (ba,) = only(ha.receive(bu(lifetime=1000), NOW), SendBindingAck)
    assert ba.lifetime == 10
    assert ha.next_deadline() == NOW + 40
    assert ha.tick(NOW + 39) == []
    assert only(ha.tick(NOW + 40), TunnelDown)
    assert ha.bindings() == []


@pytest.mark.parametrize(
    ("first", "second", "status"),
    [(10, 10, 135), (10, 9, 135), (10, 11, 0), (65535, 0, 0), (10, 10 + 32768, 135)],
)
def test_sequence_numbers_modulo_2_16(first: int, second: int, status: int) -> None:
    ha = core()
    ha.receive(bu(seq=first), NOW)
    (ba,) = only(ha.receive(bu(seq=second, coa=COA2), NOW), SendBindingAck)
    assert ba.status == status
    if status == 135:
        assert ba.seq == first  # RFC 6275 §9.5.1: the last accepted one


def test_not_home_subnet_and_not_home_registration() -> None:
    ha = core()
    raw = bytes(
        IPv6(src=COA, dst=HA)
        / IPv6ExtHdrDestOpt(options=[HAO(hoa="2001:db8:9::1")])
        / BindingUpdate(seq=1)
    )
    assert only(ha.receive(raw, NOW), SendBindingAck)[0].status == 132
    assert only(ha.receive(bu(flags=0x200), NOW), SendBindingAck)[0].status == 131


def test_multicast_state_installed_echoed_moved_and_removed() -> None:
    ha = core()
    actions = ha.receive(bu(state_option(GROUP)), NOW)
    (changed,) = only(actions, MulticastChanged)
    assert changed.state.admits(ipaddress.ip_address(GROUP), ipaddress.ip_address(SOURCE))
    (ba,) = only(actions, SendBindingAck)
    assert [r.maddr for r in ba.multicast[0].records] == [GROUP]
    # The encoded BA carries the echo as a Multicast State option that parses back.
    msg = compact.parse_packet(bytes(encode.binding_ack(ba, ha.config)))
    (opt,) = [
        o
        for o in compact.parse_options(msg.body, 12)
        if compact.is_multicast_state(o, ha.config.wire)
    ]
    assert [r.maddr for r in compact.parse_multicast_state(opt.data).records] == [GROUP]
    # A refresh from a new CoA without the option moves the state with the binding (INT-5).
    moved = ha.receive(bu(seq=2, coa=COA2), NOW)
    assert only(moved, MulticastChanged)[0].coa == ipaddress.ip_address(COA2)
    # Deregistration removes it.
    gone = ha.receive(bu(seq=3, lifetime=0, coa=COA2), NOW)
    assert only(gone, TunnelDown) and not only(gone, MulticastChanged)[0].state.mld.groups


def test_bad_report_checksum_installs_nothing_and_echoes_empty() -> None:
    ha = core()
    opt = state_option(GROUP)
    opt.cksum = 0x1234
    actions = ha.receive(bu(opt), NOW)
    assert not only(actions, MulticastChanged)
    (ba,) = only(actions, SendBindingAck)
    assert ba.status == 0 and ba.multicast[0].records == ()


def test_link_local_groups_are_neither_installed_nor_echoed() -> None:
    """RFC 6275 §10.4.2 with OPEN-6: records of link-local scope (ff02::/16, and ff01::/16
    below it) are left out of the binding's state and of the BA's echo; the rest stays."""
    ha = core()
    option = MIP6OptMulticastState(
        records=[
            MldAddressRecord(rtype=2, maddr="ff02::db8:1", sources=[]),
            MldAddressRecord(rtype=2, maddr="ff01::db8:1", sources=[]),
            MldAddressRecord(rtype=1, maddr=GROUP, sources=[SOURCE]),
        ]
    )
    actions = ha.receive(bu(option), NOW)
    (changed,) = only(actions, MulticastChanged)
    assert [str(g) for g in changed.state.mld.groups] == [GROUP]
    (ba,) = only(actions, SendBindingAck)
    assert [r.maddr for r in ba.multicast[0].records] == [GROUP]


def test_mld_general_query_encoding() -> None:
    """RFC 3810 §5.1: the querier's General Query, checked with scapy's MLDv2 layers."""
    from scapy.layers.inet6 import ICMPv6MLQuery2, IPv6ExtHdrHopByHop, RouterAlert

    src = ipaddress.IPv6Address("fe80::1")
    raw = encode.mld_general_query(src, max_response=0.1, query_interval=1.0)
    pkt = IPv6(raw)
    assert (pkt.src, pkt.dst, pkt.hlim, pkt.plen) == ("fe80::1", "ff02::1", 1, len(raw) - 40)
    hbh = pkt[IPv6ExtHdrHopByHop]
    assert any(isinstance(o, RouterAlert) and o.value == 0 for o in hbh.options)
    q = pkt[ICMPv6MLQuery2]
    assert (q.type, q.mrd, q.mladdr, q.S, q.QRV, q.QQIC, q.sources_number) == (
        130,
        100,
        "::",
        0,
        2,
        1,
        0,
    )
    sent = q.cksum
    q.cksum = None
    assert IPv6(bytes(pkt))[ICMPv6MLQuery2].cksum == sent
    # RFC 3810 §5.1.3 / §5.1.9: large values in the floating-point form.
    assert encode.max_response_code(10) == 10000
    code = encode.max_response_code(40)
    assert ((code & 0xFFF) | 0x1000) << (((code >> 12) & 7) + 3) == 40000
    assert encode.qqic(125) == 125 and encode.qqic(0.2) == 1
    code = encode.qqic(200)
    assert ((code & 0xF) | 0x10) << (((code >> 4) & 7) + 3) == 200


def test_complete_checksum_fixes_a_partial_udp_checksum() -> None:
    """A datagram seen with only the pseudo-header sum in its checksum field (offload) is
    tunnelled with the full checksum; other packets pass unchanged."""
    from scapy.layers.inet import UDP

    good = bytes(IPv6(src=SOURCE, dst=GROUP) / UDP(sport=1, dport=5004) / b"data")
    partial = bytearray(good)
    partial[46:48] = b"\x12\x34"
    assert ipv6.complete_checksum(bytes(partial)) == good
    assert ipv6.complete_checksum(good) == good
    fragment = bytes(IPv6(src=SOURCE, dst=GROUP, nh=44) / (b"\x11\x00\x00\x01" + b"x" * 12))
    assert ipv6.complete_checksum(fragment) == fragment


def test_querier_schedule_follows_the_bindings_multicast_state() -> None:
    """The daemon's querier (sans-I/O part): a query at once when a binding gets state or
    moves, then every interval; none for bindings without state."""
    from harness.reference.ha_dataplane import QuerySchedule

    ha = core()
    querier = QuerySchedule(interval=1.0, response=0.1)
    ha.receive(bu(seq=1), NOW)
    querier.sync(ha.bindings(), 0.0)
    assert querier.next_due() is None and querier.due(0.0) == []
    ha.receive(bu(state_option(GROUP), seq=2), NOW)
    querier.sync(ha.bindings(), 0.5)
    assert querier.due(0.5) == [ipaddress.ip_address(COA)]
    assert querier.next_due() == 1.5 and querier.due(1.4) == []
    assert querier.due(1.5) == [ipaddress.ip_address(COA)]
    ha.receive(bu(seq=3, coa=COA2), NOW)  # moves, state and all (INT-5)
    querier.sync(ha.bindings(), 1.6)
    assert querier.due(1.6) == [ipaddress.ip_address(COA2)]
    ha.receive(bu(MIP6OptMulticastState(records=[]), seq=4, coa=COA2), NOW)  # cleared
    querier.sync(ha.bindings(), 1.7)
    assert querier.next_due() is None


def test_multiple_care_of_addresses_and_replacement() -> None:
    ha = core()
    actions = ha.receive(
        bu(
            MIP6OptBindingIdentifier(bid=1, bid_pri=1, coa=COA),
            MIP6OptBindingIdentifier(bid=2, bid_pri=2, coa=COA2),
        ),
        NOW,
    )
    assert {t.bid for t in only(actions, TunnelUp)} == {1, 2}
    assert [(b.bid, b.status) for b in only(actions, SendBindingAck)[0].bids] == [(1, 0), (2, 0)]
    # RFC 5648 §6.2: a BU without a BID option replaces them all.
    replaced = ha.receive(bu(seq=2), NOW)
    assert {t.bid for t in only(replaced, TunnelDown)} == {1, 2}
    assert [b.bid for b in ha.bindings()] == [0]


def test_flow_bindings_need_known_bids() -> None:
    ha = core()
    ha.receive(bu(MIP6OptBindingIdentifier(bid=1, coa=COA)), NOW)
    (ba,) = only(
        ha.receive(
            bu(
                MIP6OptBindingIdentifier(bid=1, coa=COA),
                MIP6OptFlowIdentification(
                    fid=5, fid_pri=1, suboptions=[FIDSubOptBindingReference(bids=[1]), UDP_5004]
                ),
                MIP6OptFlowIdentification(
                    fid=6, fid_pri=2, suboptions=[FIDSubOptBindingReference(bids=[9]), UDP_5004]
                ),
                MIP6OptFlowSummary(fids=[5, 7]),
                seq=2,
            ),
            NOW,
        ),
        SendBindingAck,
    )
    assert [(f.fid, f.status) for f in ba.flows] == [(5, 0), (6, 131), (7, 132)]


def test_dns_update_waits_for_the_server_then_acks_with_its_status() -> None:
    ha = core(dns_domain="lab.example")
    fqdn = b"\x02mn\x03lab\x07example\x00"
    actions = ha.receive(bu(MIP6OptDNSUpdate(mn_identity=fqdn)), NOW)
    (req,) = only(actions, DnsRequest)
    assert not only(actions, SendBindingAck) and not req.remove and req.fqdn == "mn.lab.example."
    (ba,) = ha.dns_done(req.request_id, ok=False)
    assert isinstance(ba, SendBindingAck) and ba.dns is not None
    assert ba.dns.status == 130 and ba.status == 0
    # Deregistration removes the entry (draft §6).
    dereg = ha.receive(bu(seq=2, lifetime=0), NOW)
    assert any(isinstance(a, DnsRequest) and a.remove for a in dereg)


def test_authentication_rfc4285() -> None:
    good = bu(MIP6OptMsgAuth(mspi=SPI, authdata=b"\0" * 12))
    ha = core(require_auth=True)
    (ba,) = only(ha.receive(good, NOW), SendBindingAck)
    assert ba.status == 0 and ba.auth_spi == SPI
    assert auth.verify(encode.binding_ack(ba, ha.config), KEY)
    assert core(require_auth=True).receive(bu(seq=2), NOW) == []  # no auth: discarded
    other = HomeAgentCore(
        HAConfig(
            address=ipaddress.IPv6Address(HA),
            home_prefix=ipaddress.IPv6Network("2001:db8:1::/64"),
            keys={SPI: b"other"},
        )
    )
    assert only(other.receive(good, NOW), SendBindingAck)[0].status == 146
    unknown = HomeAgentCore(
        HAConfig(
            address=ipaddress.IPv6Address(HA), home_prefix=ipaddress.IPv6Network("2001:db8:1::/64")
        )
    )
    assert unknown.receive(good, NOW) == []  # no SA for the SPI: discarded


def test_replay_protection_window() -> None:
    ha = core()
    fresh = bu(MIP6OptReplayProtection(timestamp=_ntp_now(NOW)))
    assert only(ha.receive(fresh, NOW), SendBindingAck)[0].status == 0
    stale = bu(MIP6OptReplayProtection(timestamp=_ntp_now(NOW - 60.25)), seq=2)
    (ba,) = only(ha.receive(stale, NOW), SendBindingAck)
    # RFC 4285 §6: the HA's seconds, the BU's low-order 32 bits.
    assert ba.status == 144
    assert ba.replay_timestamp == (_ntp_now(NOW) & ~0xFFFFFFFF) | (
        _ntp_now(NOW - 60.25) & 0xFFFFFFFF
    )


def test_replay_protection_echo_no_binding_and_replays() -> None:
    """RFC 4285 §6: a valid Timestamp is copied into the BA; a stale one gets 144 and no
    binding (a lower sequence number is still a first registration); a Timestamp no
    greater than one accepted before is refused, even after the binding is gone."""
    auth = MIP6OptMsgAuth(mspi=SPI, authdata=b"\0" * 12)
    ha = core(require_auth=True)
    stale = bu(MIP6OptReplayProtection(timestamp=_ntp_now(NOW - 3600)), auth, seq=1000)
    (ba,) = only(ha.receive(stale, NOW), SendBindingAck)
    assert ba.status == 144 and ba.auth_spi == SPI and ha.bindings() == []
    stamp = _ntp_now(NOW + 0.5)
    (ba,) = only(
        ha.receive(bu(MIP6OptReplayProtection(timestamp=stamp), auth, seq=10), NOW), SendBindingAck
    )
    assert (ba.status, ba.replay_timestamp) == (0, stamp)
    msg = compact.parse_packet(bytes(encode.binding_ack(ba, ha.config)))
    (opt,) = [o for o in compact.parse_options(msg.body, 12) if o.otype == 10]
    assert opt.data == stamp.to_bytes(8, "big")
    replayed = bu(MIP6OptReplayProtection(timestamp=stamp), auth, seq=11)
    assert only(ha.receive(replayed, NOW + 1), SendBindingAck)[0].status == 144
    ha.receive(bu(MIP6OptReplayProtection(timestamp=stamp + 1), auth, seq=12, lifetime=0), NOW)
    assert ha.bindings() == []
    again = bu(MIP6OptReplayProtection(timestamp=stamp), auth, seq=13)
    assert only(ha.receive(again, NOW + 1), SendBindingAck)[0].status == 144


def test_deregistration_without_binding_gets_133_and_changes_nothing() -> None:
    """RFC 6275 §10.3.2: nothing to deregister is a rejection (133), with or without the A
    flag; it leaves no state (a lower sequence number is a first registration after it)."""
    ha = core()
    for flags in (0x300, 0x100):
        actions = ha.receive(bu(seq=500, lifetime=0, flags=flags), NOW)
        (ba,) = actions
        assert isinstance(ba, SendBindingAck) and (ba.status, ba.seq, ba.lifetime) == (133, 500, 0)
    assert ha.bindings() == [] and ha.nodes == {}
    assert only(ha.receive(bu(seq=10), NOW), SendBindingAck)[0].status == 0


@pytest.mark.parametrize("bad", ["ff0e::db8:1", "fe80::db8:10", "::1", "::", "::ffff:10.0.0.1"])
def test_care_of_address_not_unicast_routable_is_discarded(bad: str) -> None:
    """RFC 6275 §6.1.7: an Alternate Care-of Address that is no unicast routable address
    makes the BU silently discarded: no answer, no binding."""
    ha = core()
    assert ha.receive(bu(MIP6OptAltCoA(acoa=bad), seq=1000), NOW) == []
    assert ha.nodes == {}
    assert (
        only(ha.receive(bu(MIP6OptAltCoA(acoa=COA2), seq=10), NOW), SendBindingAck)[0].status == 0
    )
    assert [str(b.coa) for b in ha.bindings()] == [COA2]


def test_reserved_bits_of_a_bu_are_ignored() -> None:
    """RFC 6275 §6.1.7: the BU's Reserved bits change nothing."""
    raw = bytes(
        IPv6(src=COA, dst=HA)
        / IPv6ExtHdrDestOpt(options=[HAO(hoa=HOA)])
        / BindingUpdate(seq=3, mhtime=25, flags=0x300, reserved=0x3F)
    )
    (ba,) = only(core().receive(raw, NOW), SendBindingAck)
    assert (ba.status, ba.seq, ba.lifetime) == (0, 3, 25)


def test_duplicate_address_detection_before_the_ba_of_a_new_binding() -> None:
    """RFC 6275 §10.3.1: with DAD on, a new home address waits for its DAD; the newest BU
    sent meanwhile is the one answered. A duplicate answers 134 and creates nothing. A
    refresh and a deregistration of an existing binding need no DAD."""
    ha = core(dad=True)
    (dad,) = ha.receive(bu(seq=1), NOW)
    assert isinstance(dad, DadRequest) and str(dad.hoa) == HOA
    assert ha.receive(bu(seq=2), NOW) == []  # a retransmission: the same DAD answers it
    actions = ha.dad_done(dad.request_id, False, NOW + 0.05)
    assert only(actions, TunnelUp)
    assert [(a.status, a.seq) for a in only(actions, SendBindingAck)] == [(0, 2)]
    assert ha.dad_done(dad.request_id, False, NOW) == []  # answered once
    assert only(ha.receive(bu(seq=3), NOW), SendBindingAck)[0].status == 0
    assert only(ha.receive(bu(seq=4, lifetime=0), NOW), SendBindingAck)[0].status == 0
    (dad,) = ha.receive(bu(seq=5), NOW)
    assert isinstance(dad, DadRequest)
    (ba,) = ha.dad_done(dad.request_id, True, NOW)
    assert isinstance(ba, SendBindingAck)
    assert (ba.status, ba.seq, ba.lifetime) == (134, 5, 0) and ha.nodes == {}


def test_a_deregistration_during_dad_cancels_the_waiting_registration() -> None:
    """Found by the interop suite: a registration held by its DAD must not complete after
    the MN deregistered meanwhile (a binding nobody wants, for its whole lifetime)."""
    ha = core(dad=True)
    (dad,) = ha.receive(bu(seq=1), NOW)
    assert isinstance(dad, DadRequest)
    (ba,) = only(ha.receive(bu(seq=2, lifetime=0), NOW), SendBindingAck)
    assert ba.status == 133
    assert ha.dad_done(dad.request_id, False, NOW + 0.05) == []
    assert ha.nodes == {}


def test_dad_neighbor_solicitation_encoding() -> None:
    """RFC 4862 §5.4.2: from ::, to the solicited-node group, hop limit 255, no options."""
    from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6NDOptSrcLLAddr

    raw = encode.dad_neighbor_solicitation(ipaddress.IPv6Address("2001:db8:1::12:3456"))
    pkt = IPv6(raw)
    assert (pkt.src, pkt.dst, pkt.hlim) == ("::", "ff02::1:ff12:3456", 255)
    ns = pkt[ICMPv6ND_NS]
    assert ns.tgt == "2001:db8:1::12:3456" and ICMPv6NDOptSrcLLAddr not in pkt
    sent = ns.cksum
    ns.cksum = None
    assert IPv6(bytes(pkt))[ICMPv6ND_NS].cksum == sent
    na = bytes(ICMPv6ND_NA(tgt="2001:db8:1::12:3456"))
    assert str(encode.advertised_target(na)) == "2001:db8:1::12:3456"
    assert encode.advertised_target(bytes(ns)) is None


def test_ipv4_home_address_assignment() -> None:
    ha = core(ipv4_pool=ipaddress.IPv4Network("10.0.1.0/24"))
    (ba,) = only(ha.receive(bu(MIP6OptIPv4HomeAddress(address="0.0.0.0")), NOW), SendBindingAck)
    assert ba.ipv4 is not None
    assert ba.ipv4.status == 0 and ba.ipv4.address in ipaddress.IPv4Network("10.0.1.0/24")
    no_pool = core()
    (ba,) = only(
        no_pool.receive(bu(MIP6OptIPv4HomeAddress(address="0.0.0.0")), NOW), SendBindingAck
    )
    assert ba.ipv4 is not None and ba.ipv4.status == 129


@pytest.mark.parametrize("vec", vectors.malformed(), ids=lambda v: v.name)
def test_malformed_vectors_get_their_reaction(vec: vectors.Vector) -> None:
    actions = core().receive(vec.raw, time.time())
    kind = vec.expect["kind"]
    if kind == "discard":
        assert actions == []
    elif kind == "icmp-parameter-problem":
        assert only(actions, SendParameterProblem)[0].pointer == vec.expect["pointer"]
    elif kind == "binding-error":
        assert only(actions, SendBindingError)[0].status == vec.expect["status"]
    else:
        (ba,) = only(actions, SendBindingAck)
        assert ba.status == vec.expect["status"]
        if vec.name == "mcast-unknown-record-type":  # RFC 3810 §5.2.12: the rest installed
            (changed,) = only(actions, MulticastChanged)
            assert {str(g) for g in changed.state.mld.groups} == {"ff0e::1234"}
        elif vec.name == "igmp-unknown-record-type":  # RFC 3376 §4.2.12: the rest installed
            (changed,) = only(actions, MulticastChanged)
            assert {str(g) for g in changed.state.igmp.groups} == {"239.1.2.3"}
        elif vec.expect.get("multicast_installed") is False:
            assert not only(actions, MulticastChanged)
