"""The mobile node's home agent bootstrapping and DNS update (draft §3, §7; RFC 5026 §5.1,
§8.1; RFC 6610 §4.1).

The lab's access routers stop advertising a home agent on the links the MN moves to; the
lab's real named (SRV ``_mip6._ipv6.<domain>``) and Kea (behind a DHCPv6 relay in every AR)
answer it. Judged on the MN's interface: its DNS queries and DHCPv6 Information-requests,
the BU it then sends, and the DNS Update option of its BUs. A server that cannot start
makes the tests not-run; a profile that does not claim the feature, not-applicable.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Iterator

import pytest

from harness.lab.topology import Lab
from harness.servers.bind import NamedServer
from harness.servers.inlab import LabDhcp
from harness.tester import bootstrap as boot
from harness.tester.bootstrap import CONFIGURED_HA_LINK
from harness.tester.dns import LabDns, dns_answer
from harness.tester.ha_registration import message
from harness.tester.mobile_node import (
    MobileNodeUnderTest,
    ba_for,
    deregistration_when_the_session_ends,
    in_time,
    session_then_move,
)
from harness.verdicts import inconclusive

ZONE_POLL = 0.02  # named has no change notification for the tester; ask with a deadline

# Deadlines: mn.deadlines (harness/tester/mobile_node.py, INT-16). A query is due as soon
# as the MN knows it is on a new link, which takes at most the next RA: the registration
# deadline.


@pytest.fixture
def named(lab_dns_server: boot.DnsServerState) -> NamedServer:
    """The MN suite's named (suites/mn/conftest.py), or not-run."""
    return lab_dns_server.require()


@pytest.fixture(scope="module")
def kea(mobility_lab: Lab) -> Iterator[LabDhcp]:
    with boot.dhcp_servers(mobility_lab) as servers:
        yield servers


@pytest.fixture
def bare(mn: MobileNodeUnderTest) -> Iterator[MobileNodeUnderTest]:
    """The MN, with access links 2 and 3 advertising no home agent."""
    with boot.home_agents_withheld(mn, 2, 3):
        yield mn


def _move(mn: MobileNodeUnderTest, link: int) -> None:
    mn.link.mark()
    mn.world.move(link)


def _bootstrapped_on_link_2(mn: MobileNodeUnderTest) -> ipaddress.IPv6Address:
    """Move to link 2 (no home agent advertised); the address the MN forms there once it
    has asked DNS or DHCPv6 for a home agent (inconclusive if it asks neither)."""
    if not (mn.sut.claims("dns_bootstrap") or mn.sut.claims("dhcp_bootstrap")):
        mn.sut.require("dns_bootstrap")
    _move(mn, 2)
    try:
        mn.link.expect(boot.bootstrap_query(), mn.deadlines.registration)
    except AssertionError:
        inconclusive("the MN asked for no home agent on link 2: nothing was discovered")
    return mn.world.mn_address(2)


def _first_query_after_move(mn: MobileNodeUnderTest, link: int, what: str) -> boot.DnsQuery:
    """Move to `link`; the MN's first DNS query there, due within the registration deadline."""
    _move(mn, link)
    pkt = in_time(
        mn.link,
        boot.dns_query(),
        mn.deadlines.registration,
        f"{what} after the move to link {link}",
    )
    q = boot.dns_query_of(pkt)
    assert q is not None
    return q


@pytest.mark.clause("DMM-OVW-10", "DMM-OVW-11", "DMM-MN-8", "DMM-MN-10")
def test_srv_lookup_on_each_link_without_home_agent_information(
    named: NamedServer, kea: LabDhcp, bare: MobileNodeUnderTest
) -> None:
    mn = bare
    mn.sut.require("dns_bootstrap")
    want = boot.srv_name(mn.lab)
    server = str(mn.lab.plan.dns.host6)
    for link in (2, 3):  # DMM-MN-8: on each new link
        q = _first_query_after_move(mn, link, "a DNS query for a home agent")
        assert q.dst == server, f"DNS query to {q.dst}, not the configured server {server}"
        assert (q.qname, q.qtype) == (want, "SRV"), (
            f"first DNS query on link {link}: {q.qtype} {q.qname}, expected SRV {want} "
            "(RFC 5026 §5.1.2)"
        )


@pytest.fixture
def bare_named(named_ha_mn: MobileNodeUnderTest) -> Iterator[MobileNodeUnderTest]:
    """The MN configured with link 2's home agent name, links 2 and 3 advertising none."""
    with boot.home_agents_withheld(named_ha_mn, 2, 3):
        yield named_ha_mn


@pytest.mark.clause("DMM-MN-9", "DMM-OVW-11", "DMM-OVW-10")
def test_configured_home_agent_name_is_looked_up_and_registered_with(
    named: NamedServer, kea: LabDhcp, bare_named: MobileNodeUnderTest
) -> None:
    """Configured with the FQDN of link 2's home agent (suites/mn/conftest.py,
    named_ha_mn), the MN on link 2, whose RAs carry no home agent, asks for that name's
    AAAA (RFC 5026 §5.1.1), and then registers link 2's address with that home agent."""
    mn = bare_named
    ha_name = mn.lab.plan.link(CONFIGURED_HA_LINK).ha_fqdn.rstrip(".") + "."
    ha = mn.ha_address(CONFIGURED_HA_LINK)
    if str(ha) not in boot.aaaa_of(mn.lab, named, ha_name):
        inconclusive(f"the lab's named does not hold {ha_name} AAAA {ha}")
    q = _first_query_after_move(mn, CONFIGURED_HA_LINK, f"a DNS query for {ha_name}")
    assert (q.qname, q.qtype) == (ha_name, "AAAA"), (
        f"first DNS query on link 2: {q.qtype} {q.qname}, expected AAAA {ha_name}, the "
        "configured home agent name (draft §7, RFC 5026 §5.1.1)"
    )
    home = mn.world.mn_address(CONFIGURED_HA_LINK)
    session = mn.world.session()
    session.wait_for("rtt", mn.deadlines.data, "a round trip from link 2")
    mn.link.mark()
    mn.world.move(3)
    bu = mn.expect_bu(None, f"a BU for {home} to the named home agent {ha}", hoa=str(home))
    assert bu.dst == ha, f"BU for {home} to {bu.dst}, not to {ha_name} ({ha})"
    mn.link.expect(ba_for(bu.seq), mn.deadlines.ba, "the named home agent's BA")


# A local domain the lab's link 2 advertises, unlike anything the MN is configured with
LOCAL_DOMAIN = "visited2.example"


@pytest.mark.clause("DMM-OVW-12", "DMM-MN-10")
@pytest.mark.interpretation("OPEN-10")
def test_srv_lookup_uses_the_domain_learned_on_the_link(
    named: NamedServer, kea: LabDhcp, bare: MobileNodeUnderTest
) -> None:
    """Link 2's RAs carry no home agent and a DNS Search List (RFC 8106 §5.2) naming a
    domain the MN was not configured with: its SRV query there is for that local domain
    (draft §3 "MN gets the local domain name during link establishment", OPEN-10)."""
    mn = bare
    mn.sut.require("dns_bootstrap")
    assert LOCAL_DOMAIN not in boot.srv_name(mn.lab)
    mn.lab.ra(2).set_params(dns_search=(LOCAL_DOMAIN,))
    want = f"_mip6._ipv6.{LOCAL_DOMAIN}."
    q = _first_query_after_move(mn, 2, "a DNS query for a home agent")
    assert q.qtype == "SRV", f"{q.qtype} {q.qname}: no lookup by service name (draft §7)"
    assert q.qname == want, (
        f"SRV query for {q.qname}, not for the domain the link advertised ({want}; "
        "draft §3, OPEN-10: the RA's DNS Search List)"
    )


@pytest.mark.clause(
    "DMM-OVW-10", "DMM-OVW-13", "DMM-MN-11", "DMM-MN-12", "DMM-MN-13", "DMM-MN-14", "RFC6610-1"
)
def test_dhcpv6_information_request_asks_for_any_home_network(
    named: NamedServer, kea: LabDhcp, bare: MobileNodeUnderTest
) -> None:
    mn = bare
    mn.sut.require("dhcp_bootstrap")
    _move(mn, 2)
    pkt = in_time(
        mn.link,
        boot.information_request(),
        mn.deadlines.registration,
        "a DHCPv6 Information-request after the move to link 2",
    )
    req = boot.information_request_of(pkt)
    assert req is not None
    assert req.dst == boot.ALL_DHCP_RELAY_AGENTS_AND_SERVERS, f"sent to {req.dst}"
    oro = req.requested
    assert boot.UDINF in oro, (
        f"ORO {oro} does not ask for the Unrestricted Home Network Information option (70): "
        "no Id-type 2 (draft §7, INT-10)"
    )
    asked_other = [c for c in (boot.VDINF, boot.IDINF) if c in oro]
    assert not asked_other, f"ORO {oro} also asks for {asked_other}: a preferred home network"
    missing = [c for c in (boot.HNIDF, boot.HNP, boot.HAA, boot.HAF) if c not in oro]
    assert not missing, f"ORO {oro} lacks {missing} (RFC 6610 §4.1.1)"


@pytest.mark.clause("DMM-OVW-14", "DMM-OVW-10")
def test_the_discovered_home_agent_registers_the_address_formed_there(
    named: NamedServer, kea: LabDhcp, bare: MobileNodeUnderTest
) -> None:
    mn = bare
    """Link 2 advertises no home agent; after bootstrapping there the MN uses link 2's
    address as a home address: moving on with a session from it, it registers it with the
    home agent it discovered (ar2, the one DNS and DHCP name for link 2's prefix)."""
    home = _bootstrapped_on_link_2(mn)
    session = mn.world.session()
    session.wait_for("rtt", mn.deadlines.data, "a round trip from link 2")
    mn.link.mark()
    mn.world.move(3)
    ha = mn.ha_address(2)
    bu = mn.expect_bu(None, f"a BU for {home} to the discovered home agent {ha}", hoa=str(home))
    assert bu.dst == ha, f"BU for {home} to {bu.dst}, not to link 2's home agent {ha}"
    mn.link.expect(ba_for(bu.seq), mn.deadlines.ba, "the discovered HA's BA")


@pytest.mark.clause("DMM-OVW-15")
@pytest.mark.interpretation("OPEN-4")
def test_the_new_home_address_is_registered_in_the_dns(
    named: NamedServer, kea: LabDhcp, bare: MobileNodeUnderTest
) -> None:
    """After bootstrapping on link 2 and registering link 2's address with the home agent
    it found there, the lab's named holds an AAAA of the MN's FQDN for that address,
    whoever sent the update (OPEN-4: the HA on the BU's DNS Update option, or the MN)."""
    mn = bare
    mn.sut.require("dns_update")
    zone, fqdn = LabDns(mn.lab, named), boot.mn_fqdn(mn)
    home = _bootstrapped_on_link_2(mn)
    zone.forget(fqdn, str(home))  # an earlier test's record of the same address
    if home in zone.aaaa(fqdn):
        inconclusive(f"named still holds {fqdn} AAAA {home} from before the test")
    try:
        session = mn.world.session()
        session.wait_for("rtt", mn.deadlines.data, "a round trip from link 2")
        mn.link.mark()
        mn.world.move(3)
        ha = mn.ha_address(2)
        bu = mn.expect_bu(None, f"a BU for {home} to the discovered home agent", hoa=str(home))
        if bu.dst != ha:
            inconclusive(f"BU for {home} to {bu.dst}, not link 2's home agent {ha} (DMM-OVW-14)")
        ba = message(mn.link.expect(ba_for(bu.seq), mn.deadlines.ba, "the home agent's BA"))
        answer = dns_answer(ba)
        if answer is not None and not answer.performed:
            inconclusive(
                f"the lab's home agent {ha} could not update named: Status {answer.status}"
            )
        # the HA answers after its update (draft §6); an MN that updates named itself
        # (OPEN-4) has the BA deadline again to do it
        deadline = time.monotonic() + mn.deadlines.ba
        while home not in zone.aaaa(fqdn):
            assert time.monotonic() < deadline, (
                f"named holds no AAAA {home} for {fqdn} after the registration of the new "
                f"home address (draft §3; it holds {sorted(map(str, zone.aaaa(fqdn)))})"
            )
            threading.Event().wait(ZONE_POLL)
    finally:
        zone.forget(fqdn, str(home))


@pytest.mark.clause(
    "DMM-MN-16",
    "DMM-MN-17",
    "DMM-MN-18",
    "DMM-OVW-16",
    "DMM-OVW-17",
    "RFC5026-3",
    "RFC5026-4",
)
def test_registration_bu_carries_the_dns_update_option(mn: MobileNodeUnderTest) -> None:
    mn.sut.require("dns_update")
    session_then_move(mn)
    bu = mn.expect_bu(to=mn.ha_address(1))
    options = boot.dns_update_options(bu)
    assert options, "the registration BU carries no DNS Update option (draft §7)"
    assert len(options) == 1, f"{len(options)} DNS Update options"
    [dns] = options
    assert not dns.remove, f"R set in the registration BU's DNS Update option ({dns.shown()})"
    assert dns.status == 0, f"Status {dns.status} in a BU (RFC 5026 §8.1: MUST be 0)"
    fqdn = boot.mn_fqdn(mn)
    assert dns.names(fqdn), f"MN identity is not the MN's FQDN {fqdn} ({dns.shown()})"
    assert bu.hoa == str(mn.home), f"Home Address option {bu.hoa}, expected {mn.home}"


@pytest.mark.clause("DMM-OVW-20", "DMM-OVW-21", "RFC5026-4")
def test_deregistration_asks_to_remove_the_dns_entry(mn: MobileNodeUnderTest) -> None:
    mn.sut.require("dns_update")
    mn.sut.require("deregistration")
    bu, dereg = deregistration_when_the_session_ends(mn)
    options = boot.dns_update_options(dereg)
    assert options, (
        f"the deregistration of {bu.hoa}, no longer used, carries no DNS Update option (draft §3)"
    )
    [dns] = options
    assert dns.remove, f"R clear in the removal's DNS Update option ({dns.shown()})"
    fqdn, old = boot.mn_fqdn(mn), boot.reverse_name(str(bu.hoa))
    assert dns.names(fqdn) or dns.names(old), (
        f"MN identity names neither the MN's FQDN {fqdn} nor the old address {old} "
        f"(OPEN-3; {dns.shown()})"
    )
    assert dereg.hoa == bu.hoa, f"removal for {dereg.hoa}, expected {bu.hoa} (OPEN-3)"
