"""The reference HA's IPv4 home addresses (RFC 5555 §3.1.1, §3.2.1, §4.5; INT-21), sans-I/O:
the core with the tester's scapy-built BUs, a model of the pool, and the faults' hook."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet6 import HAO, IPv6, IPv6ExtHdrDestOpt

from harness.faults import Fault, Faults
from harness.reference import ha_hooks
from harness.reference.ha_core import HomeAgentCore, IPv4Ack, IPv4Bound, SendBindingAck
from harness.wire.mobility import BindingUpdate, MIP6OptIPv4HomeAddress
from tests.unit.test_reference_ha_core import COA, HA, NOW, core, only

POOL = ipaddress.IPv4Network("10.0.1.32/29")  # six hosts: .33 .. .38
OWN = ipaddress.IPv4Address("10.0.1.33")  # the HA's own is never handed out


def v4core(**kw: object) -> HomeAgentCore:
    return core(ipv4_pool=POOL, ipv4_address=OWN, **kw)


def bu(hoa: str, seq: int = 1, *, lifetime: int = 25, **opt: Any) -> bytes:
    pkt = (
        IPv6(src=COA, dst=HA)
        / IPv6ExtHdrDestOpt(options=[HAO(hoa=hoa)])
        / BindingUpdate(
            seq=seq, mhtime=lifetime, flags=0x300, options=[MIP6OptIPv4HomeAddress(**opt)]
        )
    )
    return bytes(pkt)


def ack(actions: Sequence[object]) -> IPv4Ack:
    (ba,) = only(actions, SendBindingAck)
    assert ba.ipv4 is not None
    return ba.ipv4


def hoa(n: int) -> str:
    return f"2001:db8:1::{0x100 + n:x}"


def test_dynamic_addresses_skip_the_has_own_and_run_out_with_132() -> None:
    ha = v4core()
    got = [ack(ha.receive(bu(hoa(i)), NOW)) for i in range(6)]
    assert [a.status for a in got] == [0, 0, 0, 0, 0, 132]
    assigned = [a.address for a in got[:5]]
    assert OWN not in assigned and len(set(assigned)) == 5
    assert got[5].prefix_len == 0  # §3.2.1: zero in a failure
    # a deregistration frees its address for the next MN
    ha.receive(bu(hoa(0), 2, lifetime=0), NOW)
    assert ack(ha.receive(bu(hoa(9)), NOW)).address == assigned[0]


def test_static_address_checks() -> None:
    ha = v4core()
    first = ack(ha.receive(bu(hoa(1)), NOW))
    cases = {
        str(first.address): 130,  # another MN's
        str(OWN): 130,  # the HA's own
        "192.0.2.1": 130,  # not on the home link's pool
        "224.0.0.1": 131,
        "255.255.255.255": 131,
        "127.0.0.1": 131,
        "0.0.0.1": 131,
    }
    for i, (address, status) in enumerate(cases.items()):
        got = ack(ha.receive(bu(hoa(10 + i), address=address), NOW))
        assert (got.status, got.prefix_len) == (status, 0), address
    free = ack(ha.receive(bu(hoa(30), address="10.0.1.38"), NOW))
    assert (free.status, free.prefix_len, str(free.address)) == (0, 32, "10.0.1.38")


def test_prefix_len_zero_and_prefix_requests_fail() -> None:
    ha = v4core()
    assert ack(ha.receive(bu(hoa(1), prefix_len=0), NOW)).status == 128
    assert ack(ha.receive(bu(hoa(2), flags=1), NOW)).status == 133
    assert ack(core().receive(bu(hoa(3)), NOW)).status == 129  # no pool: no IPv4 here


def test_ipv4_bound_follows_the_node() -> None:
    ha = v4core()
    (bound,) = only(ha.receive(bu(hoa(1)), NOW), IPv4Bound)
    assert bound.address is not None and bound.address in POOL
    assert not only(ha.receive(bu(hoa(1), 2, address=str(bound.address)), NOW), IPv4Bound)
    (gone,) = only(ha.receive(bu(hoa(1), 3, lifetime=0), NOW), IPv4Bound)
    assert gone.address is None
    (again,) = only(ha.receive(bu(hoa(2), lifetime=1), NOW), IPv4Bound)
    (expired,) = only(ha.tick(NOW + 10), IPv4Bound)
    assert expired == IPv4Bound(again.hoa, None)


@given(st.lists(st.tuples(st.integers(0, 7), st.booleans()), max_size=30))
def test_no_address_is_ever_held_twice(ops: list[tuple[int, bool]]) -> None:
    """Model: registrations (0.0.0.0) and deregistrations of eight MNs in any order; the
    addresses held are distinct, in the pool, never the HA's own, and 132 only when every
    other pool address is held."""
    ha, seqs = v4core(), [0] * 8
    for n, register in ops:
        seqs[n] += 1
        out = ha.receive(bu(hoa(n), seqs[n], lifetime=25 if register else 0), NOW)
        held = [node.ipv4_hoa for node in ha.nodes.values() if node.ipv4_hoa is not None]
        assert len(held) == len(set(held)) and all(a in POOL and a != OWN for a in held)
        answers = only(out, SendBindingAck)
        v4 = answers[0].ipv4 if register and answers else None
        if v4 is not None and v4.status == 132:
            assert len(held) == len(list(POOL.hosts())) - 1


def test_faults_bend_only_their_answer() -> None:
    ha = v4core()
    packet = bu(hoa(1))
    actions = ha.receive(packet, NOW)
    for fault, want in [
        (Fault.HA_IPV4_NO_ACK, None),
        (Fault.HA_IPV4_NO_DYNAMIC, 132),
    ]:
        (ba,) = only(ha_hooks.reaction(Faults.of(fault), packet, actions), SendBindingAck)
        assert (ba.ipv4.status if ba.ipv4 is not None else None) == want
    zero = bu(hoa(2), prefix_len=0)
    (ba,) = only(
        ha_hooks.reaction(
            Faults.of(Fault.HA_IPV4_ZERO_PREFIX_ACCEPTED), zero, ha.receive(zero, NOW)
        ),
        SendBindingAck,
    )
    assert ba.ipv4 is not None and ba.ipv4.status == 0
    (ba,) = only(ha_hooks.reaction(Faults.of(), packet, actions), SendBindingAck)
    assert ba.ipv4 is not None and ba.ipv4.status == 0


def _udp4(src: str, dst: str) -> bytes:
    from scapy.layers.inet import IP, UDP

    return bytes(IP(src=src, dst=dst, ttl=8) / UDP(sport=1, dport=2) / b"data")


def test_igmpv3_state_gives_ipv4_joins_and_copies() -> None:
    """Draft §8: the IGMPv3 form initialises the binding's IPv4 reception state; the data
    plane joins by it and copies IPv4 multicast into the tunnel by it, never 224.0.0.0/24."""
    from harness.reference import ha_dataplane
    from harness.wire.mobility import IgmpGroupRecord, MIP6OptMulticastState
    from harness.wire.numbers import IGMPV3_REPORT

    option = MIP6OptMulticastState(
        report_type=IGMPV3_REPORT,
        records=[
            IgmpGroupRecord(rtype=1, maddr="232.1.1.1", sources=["198.51.100.18"]),
            IgmpGroupRecord(rtype=2, maddr="239.1.1.1", sources=[]),
        ],
    )
    ha = v4core()
    pkt = (
        IPv6(src=COA, dst=HA)
        / IPv6ExtHdrDestOpt(options=[HAO(hoa=hoa(1))])
        / BindingUpdate(seq=1, mhtime=25, flags=0x300, options=[option])
    )
    ha.receive(bytes(pkt), NOW)
    served = [ha_dataplane.Served(b.coa, b.multicast) for b in ha.bindings()]
    group, source = ipaddress.IPv4Address("232.1.1.1"), ipaddress.IPv4Address("198.51.100.18")
    assert ha_dataplane.join_set(served) == {
        (group, source),
        (ipaddress.IPv4Address("239.1.1.1"), None),
    }
    coa = ipaddress.IPv6Address(COA)
    for src, dst, want in [
        ("198.51.100.18", "232.1.1.1", (coa,)),
        ("10.0.1.205", "232.1.1.1", ()),  # not in the INCLUDE list
        ("10.0.1.205", "239.1.1.1", (coa,)),
        ("10.0.1.205", "239.9.9.9", ()),  # no state
        ("10.0.1.205", "224.0.0.251", ()),  # link-local scope
    ]:
        plan = ha_dataplane.copies4(_udp4(src, dst), False, served)
        assert (plan.coas if plan is not None else ()) == want, (src, dst)
    # a binding to an IPv4 care-of address (RFC 5555 §4.5.1) gets its copy that way
    node = ha.nodes[ipaddress.IPv6Address(hoa(1))]
    coa4 = ipaddress.IPv4Address("192.0.2.7")
    via4 = [ha_dataplane.Served(coa4, b.multicast, node) for b in ha.bindings()]
    plan = ha_dataplane.copies4(_udp4("198.51.100.18", "232.1.1.1"), False, via4)
    assert plan is not None and (plan.coas, plan.coas4) == ((), ((node.hoa, coa4),))
    ignored = Faults.of(Fault.HA_IGMP_STATE_IGNORED)
    assert not ha_dataplane.join_set(served, ignored)
    assert ha_dataplane.copies4(_udp4("198.51.100.18", "232.1.1.1"), False, served, ignored) is None


def test_igmp_general_query_packet() -> None:
    """RFC 3376 §4, §4.1: to 224.0.0.1, TTL 1, Router Alert, a valid header checksum, and
    an IGMPv3 General Query scapy reads as one."""
    from scapy.layers.igmp import IGMPv3, IGMPv3_MQ
    from scapy.layers.inet import IP

    from harness.reference import encode
    from harness.wire import ipv4

    raw = encode.igmp_general_query(OWN, max_response=0.1, query_interval=1)
    assert ipv4.header_checksum_ok(raw) and raw[8] == 1 and raw[20:24] == b"\x94\x04\x00\x00"
    pkt = IP(raw)
    assert pkt.dst == "224.0.0.1" and pkt.src == str(OWN)
    assert pkt[IGMPv3].type == 0x11 and pkt[IGMPv3_MQ].gaddr == "0.0.0.0"
    assert pkt[IGMPv3_MQ].numsrc == 0 and ipv4.internet_checksum(raw[24:]) == 0


def test_bu_in_udp_ipv4_binds_the_outer_source_and_detects_a_nat() -> None:
    """RFC 5555 §4.2: the CoA is the outer IPv4 source; the BA goes back in UDP to it, to
    the home address without a routing header, with the NAT Detection option only when the
    IPv4 Care-of Address option is not that source (or is missing, INT-21)."""
    from harness.reference import encode
    from harness.reference.ha_core import Udp4
    from harness.wire import compact
    from harness.wire.mobility import MIP6OptIPv4CareOfAddress
    from harness.wire.numbers import MobOpt

    outer = ipaddress.IPv4Address("10.0.2.100")
    for named, nat in [("10.0.2.100", False), ("192.168.77.5", True), (None, True)]:
        ha = v4core()
        home = hoa(1)
        opts = [MIP6OptIPv4CareOfAddress(address=named)] if named else []
        pkt = (
            IPv6(src=home, dst=HA)
            / IPv6ExtHdrDestOpt(options=[HAO(hoa=home)])
            / BindingUpdate(seq=1, mhtime=25, flags=0x300, options=opts)
        )
        (ba,) = only(ha.receive(bytes(pkt), NOW, udp4=(outer, 5555)), SendBindingAck)
        assert ba.status == 0 and ba.coa == outer and ba.udp4 == Udp4(outer, 5555, nat)
        msg = compact.parse_packet(encode.binding_ack_bytes(ba, ha.config))
        assert ipaddress.IPv6Address(msg.dst_raw) == ipaddress.IPv6Address(home)
        (det,) = [o.data for o in msg.options if o.otype == MobOpt.NAT_DETECTION]
        assert det[2:6] == (b"\x00\x00\x00\x6e" if nat else b"\xff" * 4)  # 110 s, or none
        # the same home address over IPv6 again: the BA goes the IPv6 way
        (back,) = only(ha.receive(bu(home, 2), NOW), SendBindingAck)
        assert back.udp4 is None and back.coa == ipaddress.IPv6Address(COA)


def test_dns_requests_carry_the_ipv4_home_address() -> None:
    """Draft §8 (INT-21): the A record of the IPv4 home address goes with the AAAA record:
    registered with it, removed with it by the deregistration."""
    from harness.reference.ha_core import DnsRequest
    from harness.wire.mobility import MIP6OptDNSUpdate

    name = b"\x02mn\x03lab\x07example\x00"
    ha = v4core(dns_domain="lab.example", dns_names=frozenset({"mn.lab.example."}))
    pkt = (
        IPv6(src=COA, dst=HA)
        / IPv6ExtHdrDestOpt(options=[HAO(hoa=hoa(1))])
        / BindingUpdate(
            seq=1,
            mhtime=25,
            flags=0x300,
            options=[MIP6OptIPv4HomeAddress(), MIP6OptDNSUpdate(mn_identity=name)],
        )
    )
    (req,) = only(ha.receive(bytes(pkt), NOW), DnsRequest)
    assert req.hoa4 is not None and req.hoa4 in POOL and not req.remove
    ha.dns_done(req.request_id, ok=True)
    (rm,) = only(ha.receive(bu(hoa(1), 2, lifetime=0), NOW), DnsRequest)
    assert (rm.remove, rm.hoa4) == (True, req.hoa4)
