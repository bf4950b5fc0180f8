"""The mobile node on an IPv4-only foreign network (draft §8): its IPv4 care-of address by
DHCPv4 and its home network information by a DHCPINFORM carrying the DHCPv4 Home Network
Information option of draft-xia-mext-hioptv4 (INT-10, INT-11).

The lab of this module has access link 3 IPv4-only behind its AR's NAT (no RA, no IPv6),
served by the visited network's own kea-dhcp4 (in ar3: a pool, the AR as router, and
OPTION_DSMIP6_HNINF naming the dual-stack home agent of link 1); no home agent runs there.
The MN starts on link 1 and is moved to link 3. Judged from the frames captured on the MN's
interface: its DHCPv4 messages and what it then sends from the address it was given.

A profile that does not claim `ipv4` makes these not-applicable; a
kea-dhcp4 that is missing or does not start, not-run; a server that does not answer the MN,
inconclusive (the lab's failure, never the SUT's).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from harness.lab.fixtures import bring_up
from harness.lab.topology import Lab
from harness.servers.kea import KeaDhcp4Server
from harness.tester import dhcpv4 as v4
from harness.tester import world as mobility
from harness.tester.mobile_node import MobileNodeUnderTest, in_time
from harness.verdicts import inconclusive
from harness.wire import dhcp

V4_ONLY = 3


@pytest.fixture(scope="module")
def mobility_lab() -> Iterator[Lab]:
    """The MN suite's mobility lab (suites/mn/conftest.py), with link 3 IPv4-only."""
    lab = bring_up(mobility.mobility_lab(ipv4_only=(V4_ONLY,)))
    try:
        yield lab
    finally:
        lab.down()


@pytest.fixture(scope="module")
def visited_kea(mobility_lab: Lab) -> Iterator[KeaDhcp4Server]:
    with v4.visited_server(mobility_lab, V4_ONLY) as server:
        yield server


def _claims_ipv4(mn: MobileNodeUnderTest) -> None:
    mn.sut.features.require("ipv4", "the SUT mobile node")


def _leased(mn: MobileNodeUnderTest, kea: KeaDhcp4Server) -> tuple[Any, Any]:
    """Move the MN to the IPv4-only link: its DHCPREQUEST and the server's DHCPACK. No
    DISCOVER from the MN fails; a server that does not answer it is inconclusive."""
    mn.link.mark()
    mn.world.move(V4_ONLY)
    allowed = mn.deadlines.dhcpv4
    disc = in_time(mn.link, v4.discover(), allowed, "a DHCPDISCOVER on the IPv4-only link")
    try:
        mn.link.expect(v4.offer_to(disc), allowed, "kea's DHCPOFFER")
    except AssertionError:
        inconclusive(f"the lab's kea-dhcp4 did not answer the MN's DHCPDISCOVER:\n{kea.tail()}")
    req = in_time(mn.link, v4.request(), allowed, "a DHCPREQUEST after the DHCPOFFER")
    try:
        ack = mn.link.expect(v4.answer_to(req), allowed, "kea's DHCPACK")
    except AssertionError:
        inconclusive(f"the lab's kea-dhcp4 did not answer the MN's DHCPREQUEST:\n{kea.tail()}")
    if v4.message_type(ack) != v4.ACK:
        inconclusive(f"kea-dhcp4 refused the MN's DHCPREQUEST (DHCPNAK): {ack.summary()}")
    return req, ack


def _inform(mn: MobileNodeUnderTest, kea: KeaDhcp4Server) -> tuple[str, Any]:
    """The MN's address on the IPv4-only link and the DHCPINFORM it then sends."""
    _claims_ipv4(mn)
    try:
        _req, ack = _leased(mn, kea)
    except AssertionError as exc:
        inconclusive(f"the MN took no IPv4 address on the IPv4-only link: {exc}")
    address = v4.yiaddr(ack)
    pkt = in_time(
        mn.link, v4.inform(), mn.deadlines.dhcpv4, "a DHCPINFORM for home network information"
    )
    return address, pkt


@pytest.mark.clause("DMM-V4-6")
def test_the_mn_takes_an_ipv4_care_of_address_on_an_ipv4_only_link(
    visited_kea: KeaDhcp4Server, mn: MobileNodeUnderTest
) -> None:
    _claims_ipv4(mn)
    req, ack = _leased(mn, visited_kea)
    address = v4.yiaddr(ack)
    subnet = mn.lab.plan.link(V4_ONLY).subnet4
    assert v4.in_subnet(address, subnet), f"kea leased {address}, outside {subnet} (the lab's)"
    in_time(
        mn.link,
        v4.from_ipv4(address),
        mn.deadlines.dhcpv4,
        f"traffic from the leased address {address} (its IPv4 care-of address)",
    )


@pytest.mark.clause("DMM-V4-10")
def test_the_mn_asks_for_home_network_information_by_dhcpinform(
    visited_kea: KeaDhcp4Server, mn: MobileNodeUnderTest
) -> None:
    address, pkt = _inform(mn, visited_kea)
    assert pkt["IP"].src == address, (
        f"DHCPINFORM from {pkt['IP'].src}, not from the leased address {address}"
    )
    assert v4.ciaddr(pkt) == address, (
        f"DHCPINFORM with ciaddr {v4.ciaddr(pkt)}, not the MN's address {address} "
        "(RFC 2131 §4.4.3: stateless, for a client that has its address)"
    )


@pytest.mark.clause("DMM-V4-11")
def test_the_dhcpinform_carries_the_home_network_information_option(
    visited_kea: KeaDhcp4Server, mn: MobileNodeUnderTest
) -> None:
    _address, pkt = _inform(mn, visited_kea)
    code = dhcp.hninf_code()
    bodies = v4.options_with_code(pkt, code)
    assert bodies, (
        f"the DHCPINFORM carries no option {code}, the configured OPTION_DSMIP6_HNINF "
        "(draft §8, INT-11; DMMCONF_DHCPV4_HNINF_CODE)"
    )
    assert len(bodies) == 1, f"{len(bodies)} HNINF options in one DHCPINFORM"
    hninf = v4.HnInf.read(bodies[0])
    assert hninf.id_type == dhcp.HnInfIdType.NO_PREFERENCE, (
        f"HNINF Id-type {hninf.id_type}, not 2: the MN names a preferred home network "
        "(draft §7, INT-10)"
    )
    assert not hninf.problems, f"malformed RFC 6610 sub-options: {'; '.join(hninf.problems)}"
    asked = v4.requested_codes(pkt)
    assert code in asked, (
        f"Parameter Request List {asked} does not ask for option {code}: the server is not "
        "asked to return the home network information (RFC 2131 §3.4, draft-xia §5)"
    )
