"""The reference MN core's home agent bootstrapping and DNS Update option (draft §3, §7;
RFC 5026 §5.1, §8.1; RFC 6610 §4.1): decisions only, no sockets."""

from __future__ import annotations

import ipaddress

from harness.reference import mn_core as m
from harness.reference import mn_packets
from harness.reference.multicast import ListenerState
from tests.unit.test_reference_mn_core import IID, addr, of, ra

A = ipaddress.IPv6Address
P = ipaddress.IPv6Network
DNS = A("2001:db8:c3::10")
SRV_NAME = "_mip6._ipv6.lab.example."
FQDN = "mn.lab.example"


def ha(link: int) -> A:
    return P(f"2001:db8:{link}::/64")[1]


def core(**config: object) -> m.MobileNodeCore:
    settings: dict = {"bu_lifetime": 100, "time_scale": 0.01, "seed": 1, "fqdn": FQDN}
    settings.update(config)
    c = m.MobileNodeCore(m.MNConfig(**settings))
    c.add_interface("mn0", IID)
    c.router_advertisement(0.0, ra(1))
    return c


def srv_answer(*links: int, glue: bool = True) -> m.DnsAnswer:
    targets = tuple(m.SrvTarget(0, 1, f"ha{i}.lab.example.") for i in links)
    addresses = tuple((f"ha{i}.lab.example.", ha(i)) for i in links) if glue else ()
    return m.DnsAnswer(targets, addresses, ttl=300.0)


def test_an_ra_with_a_home_agent_needs_no_bootstrapping() -> None:
    c = core(dns_server=DNS, domain="lab.example", dhcp=True)
    out = c.router_advertisement(1.0, ra(2))
    assert not of(out, m.LookupHomeAgent) and not of(out, m.RequestHomeInfo)


def test_without_ha_information_the_mn_asks_dns_by_service_name_and_dhcp() -> None:
    c = core(dns_server=DNS, domain="lab.example", dhcp=True)
    out = c.router_advertisement(1.0, ra(2, ha=False))
    [lookup] = of(out, m.LookupHomeAgent)
    assert (lookup.qname, lookup.qtype) == (SRV_NAME, "SRV")  # RFC 5026 §5.1.2
    assert len(of(out, m.RequestHomeInfo)) == 1  # RFC 6610 §4.1.1
    # the address is formed and used whatever the discovery says (draft §3)
    assert m.AddAddress("mn0", addr(2), 64) in out


def test_a_configured_ha_name_is_looked_up_by_aaaa() -> None:
    c = core(dns_server=DNS, ha_fqdn="ha2.lab.example")
    [lookup] = of(c.router_advertisement(1.0, ra(2, ha=False)), m.LookupHomeAgent)
    assert (lookup.qname, lookup.qtype) == ("ha2.lab.example.", "AAAA")  # RFC 5026 §5.1.1


def test_the_srv_target_on_the_links_prefix_becomes_its_home_agent() -> None:
    c = core(dns_server=DNS, domain="lab.example")
    [lookup] = of(c.router_advertisement(1.0, ra(2, ha=False)), m.LookupHomeAgent)
    c.dns_answer(1.1, lookup.query_id, srv_answer(1, 2, 3))
    entry = c.ha_cache[P("2001:db8:2::/64")]
    assert entry.address == ha(2)
    assert entry.expires == 1.1 + 300.0  # the records' TTL (OPEN-1)
    assert not c.bootstraps


def test_targets_without_glue_are_resolved_then_chosen() -> None:
    c = core(dns_server=DNS, domain="lab.example")
    [lookup] = of(c.router_advertisement(1.0, ra(2, ha=False)), m.LookupHomeAgent)
    out = c.dns_answer(1.1, lookup.query_id, srv_answer(1, 2, glue=False))
    aaaa = of(out, m.LookupHomeAgent)
    assert {(q.qname, q.qtype) for q in aaaa} == {
        ("ha1.lab.example.", "AAAA"),
        ("ha2.lab.example.", "AAAA"),
    }
    second = next(q for q in aaaa if q.qname == "ha2.lab.example.")
    c.dns_answer(1.2, second.query_id, m.DnsAnswer((), (("ha2.lab.example.", ha(2)),)))
    assert c.ha_cache[P("2001:db8:2::/64")].address == ha(2)


def test_dhcp_reply_names_the_home_agent() -> None:
    c = core(dhcp=True)
    [req] = of(c.router_advertisement(1.0, ra(2, ha=False)), m.RequestHomeInfo)
    c.home_info(1.1, req.transaction_id, (ha(2),))
    assert c.ha_cache[P("2001:db8:2::/64")].address == ha(2)


def test_an_unanswered_request_is_repeated_with_the_same_id_then_given_up() -> None:
    c = core(dhcp=True, bootstrap_timeout=1.0, bootstrap_tries=3)
    [req] = of(c.router_advertisement(1.0, ra(2, ha=False)), m.RequestHomeInfo)
    deadline = c.next_deadline()
    assert deadline is not None and deadline <= 2.0
    [again] = of(c.tick(2.0), m.RequestHomeInfo)
    assert again.transaction_id == req.transaction_id and again.elapsed == 1.0
    assert of(c.tick(4.0), m.RequestHomeInfo)  # doubled interval
    assert not of(c.tick(8.0), m.RequestHomeInfo) and not c.bootstraps


def test_a_discovered_home_agent_gets_the_bu_with_the_dns_update_option() -> None:
    c = core(dns_server=DNS, domain="lab.example")
    [lookup] = of(c.router_advertisement(1.0, ra(2, ha=False)), m.LookupHomeAgent)
    c.dns_answer(1.1, lookup.query_id, srv_answer(1, 2, 3))
    c.observed(2.0, {addr(2)}, ListenerState())
    [bu] = of(c.router_advertisement(3.0, ra(3)), m.SendBindingUpdate)
    assert (bu.ha, bu.hoa, bu.coa) == (ha(2), addr(2), addr(3))
    assert bu.dns == m.DnsUpdate(FQDN, remove=False)  # draft §7: R clear, its FQDN


def test_refreshes_carry_no_dns_update_and_the_deregistration_removes_it() -> None:
    c = core()
    c.observed(0.5, {addr(1)}, ListenerState())
    [bu] = of(c.router_advertisement(1.0, ra(2)), m.SendBindingUpdate)
    assert bu.dns == m.DnsUpdate(FQDN, remove=False)
    c.binding_ack(1.1, ha(1), addr(1), bu.seq, 0, 100)
    [refresh] = of(c.tick(1.1 + 0.6 * 4.0), m.SendBindingUpdate)
    assert refresh.dns is None
    [dereg] = of(c.observed(5.0, set(), ListenerState()), m.SendBindingUpdate)
    assert dereg.lifetime == 0
    assert dereg.dns == m.DnsUpdate(FQDN, remove=True)  # draft §3: R set


def test_returning_home_keeps_the_dns_entry() -> None:
    c = core()
    c.observed(0.5, {addr(1)}, ListenerState())
    [bu] = of(c.router_advertisement(1.0, ra(2)), m.SendBindingUpdate)
    c.binding_ack(1.1, ha(1), addr(1), bu.seq, 0, 100)
    [dereg] = of(c.router_advertisement(2.0, ra(1)), m.SendBindingUpdate)
    assert dereg.lifetime == 0 and dereg.dns is None  # the address is in use again


def test_no_fqdn_no_dns_update_option() -> None:
    c = core(fqdn=None)
    c.observed(0.5, {addr(1)}, ListenerState())
    [bu] = of(c.router_advertisement(1.0, ra(2)), m.SendBindingUpdate)
    assert bu.dns is None


def test_the_option_on_the_wire() -> None:
    """RFC 5026 §8.1: Status 0, R as asked, the FQDN in DNS wire format."""
    bu = m.SendBindingUpdate("mn0", ha(2), addr(2), addr(3), 7, 100, None, m.DnsUpdate(FQDN, True))
    opt = mn_packets.dns_update_option(bu)
    assert (opt.status, int(opt.flags)) == (0, 1)
    assert opt.mn_identity == b"\x02mn\x03lab\x07example\x00"


def test_dns_answers_are_read_from_a_real_message() -> None:
    import dns.message
    import dns.rrset

    query = dns.message.make_query(SRV_NAME, "SRV")
    reply = dns.message.make_response(query)
    reply.answer.append(dns.rrset.from_text(SRV_NAME, 60, "IN", "SRV", "0 1 0 ha2.lab.example."))
    reply.additional.append(dns.rrset.from_text("ha2.lab.example.", 60, "IN", "AAAA", str(ha(2))))
    parsed = mn_packets.dns_answer(reply.to_wire())
    assert parsed is not None
    qid, answer = parsed
    assert qid == query.id and answer is not None
    assert answer.srv == (m.SrvTarget(0, 1, "ha2.lab.example."),)
    assert answer.addresses == (("ha2.lab.example.", ha(2)),)
    assert mn_packets.dns_answer(query.to_wire()) is None  # a query, not a response
