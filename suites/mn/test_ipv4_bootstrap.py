"""The mobile node on an IPv4-only foreign network (draft §8): its IPv4 care-of address by
DHCPv4 and its home network information by a DHCPINFORM carrying the DHCPv4 Home Network
Information option of draft-xia-mext-hioptv4 (INT-10, INT-11).

The lab of this module has access link 3 IPv4-only behind its AR's NAT (no RA, no IPv6),
served by the visited network's own kea-dhcp4 (in ar3: a pool, the AR as router, and
OPTION_DSMIP6_HNINF naming the dual-stack home agent of link 1); no home agent runs there.
The MN starts on link 1 and is moved to link 3. Judged from the frames captured on the MN's
interface: its DHCPv4 messages and what it then sends from the address it was given.

With a session of its link-1 address open, the MN then registers its IPv4 care-of address
with link 1's dual-stack home agent (RFC 5555 §4.2, draft §8, INT-22): judged on the same
interface, its BU in UDP/IPv4 to the HA's port 4191 (through ar3's NAT), the options it
carries, the IPv4 home address of the HA's BA in the MN's kernel and in an application's
use, the session's packets in UDP to the HA, the A record at the lab's named, and the NAT
keepalives.

With an IPv4 application of the MN joined to the remote IPv4 source's group on link 1, the
same BU carries that group in a Multicast State option of IGMPv3 form (draft §8, DMM-V4-5),
and the source's numbered stream reaches the application through the home agent after the
registration, from the tunnel rather than the air interface, and no IGMP Report names the
group on the IPv4-only link any more (draft §3, DMM-OVW-31).

A profile that does not claim `ipv4` (and, for the multicast tests, `igmp`) makes these
not-applicable; a
kea-dhcp4 that is missing or does not start, not-run; a server that does not answer the MN,
or a reference home agent that does not answer or assign, inconclusive (the lab's failure,
never the SUT's).
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from harness.lab.fixtures import bring_up
from harness.lab.topology import Lab
from harness.servers.kea import KeaDhcp4Server
from harness.tester import bootstrap as boot
from harness.tester import dhcpv4 as v4
from harness.tester import world as mobility
from harness.tester.bootstrap import DnsServerState
from harness.tester.dns import LabDns, dns_answer
from harness.tester.mobile_node import (
    TCP_INITIAL_RTO,
    MobileNodeUnderTest,
    expect_latest_ba,
    in_time,
    mld_report_with,
    session_then_move,
)
from harness.verdicts import by_interpretation, inconclusive
from harness.wire import compact, dhcp
from harness.wire.numbers import McastRecordType

V4_ONLY = 3
POLL = 0.05  # how often the MN's kernel state and the zone are looked at (seconds)
IDLE = 3600.0  # seconds between an idle session's messages: none during a test
KEEPALIVE_PERIODS = 3  # refresh times the MN's keepalives are watched for


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


# ------------------------------------------------------------ RFC 5555: the IPv4 care-of address
# The MN leaves link 1 (its reference home agent is dual-stack) for the IPv4-only link. With
# a session of its link-1 address open it registers the IPv4 care-of address with that home
# agent: a BU in UDP/IPv4 to the HA's IPv4 address, port 4191, through ar3's NAT (RFC 5555
# §4.2, draft §8). Judged on the MN's interface: what it sends, and the HA's BA it receives.


def _ha4(mn: MobileNodeUnderTest) -> str:
    return str(mn.lab.plan.link(1).router4)


def _registered4(
    mn: MobileNodeUnderTest, kea: KeaDhcp4Server, *, idle: bool = False
) -> tuple[str, Any]:
    """With a session from link 1 open (`idle`: quiet after its first round trip), a move
    to the IPv4-only link: the leased address and the MN's first BU in UDP/IPv4 to link 1's
    home agent (the frame). No BU in time fails; a lab that gives no address or leaves the
    session unopened is inconclusive."""
    _claims_ipv4(mn)
    # idle: one message, echoed, then none: nothing in flight for TCP to retransmit later
    app = mn.world.session(IDLE) if idle else mn.world.session()
    try:
        app.wait_for("rtt", mn.deadlines.data, "a first round trip on link 1")
    except AssertionError as exc:
        inconclusive(f"the session from link 1 did not start: {exc}")
    try:
        _req, ack = _leased(mn, kea)
    except AssertionError as exc:
        inconclusive(f"the MN took no IPv4 address on the IPv4-only link: {exc}")
    address = v4.yiaddr(ack)
    allowed = mn.deadlines.dhcpv4 + mn.deadlines.registration
    pkt = in_time(
        mn.link,
        v4.bu_in_udp4(_ha4(mn)),
        allowed,
        f"a BU in UDP/IPv4 to link 1's home agent ({_ha4(mn)}:{v4.DSMIP_PORT}) after the move "
        "with an open session (draft §8, RFC 5555 §4.2)",
    )
    return address, pkt


def _accepted4(mn: MobileNodeUnderTest, bu: Any) -> tuple[Any, Any]:
    """The reference HA's BA to the MN's BU in UDP/IPv4 (frame, message); none, or one that
    refuses it or assigns no IPv4 home address, is the lab's failure (inconclusive)."""
    msg = v4.mobility(bu)
    try:
        frame = mn.link.expect(v4.ba_in_udp4(_ha4(mn), msg.seq), mn.deadlines.ba, "the HA's BA")
    except AssertionError as exc:
        inconclusive(f"link 1's reference home agent did not answer the BU in UDP/IPv4: {exc}")
    ba = v4.mobility(frame)
    if ba.ba_status >= 128:
        inconclusive(f"link 1's reference home agent refused the BU: status {ba.ba_status}")
    return frame, ba


@pytest.mark.clause("DMM-V4-7")
@pytest.mark.interpretation("OPEN-15")
def test_the_mn_registers_its_ipv4_care_of_address_after_a_move_with_a_session(
    visited_kea: KeaDhcp4Server, mn: MobileNodeUnderTest
) -> None:
    address, pkt = _registered4(mn, visited_kea)
    msg = v4.mobility(pkt)
    assert msg.src == str(mn.home), (
        f"the BU's IPv6 source is {msg.src}, not the home address {mn.home} of link 1 "
        "(RFC 5555 §4.2: IPv6 header src=V6HOA)"
    )
    coas = v4.ipv4_coa_options(msg)
    assert coas == [address], (
        f"IPv4 Care-of Address options {coas}, not the leased address {address} "
        "(RFC 5555 §4.2, draft §8)"
    )


@pytest.mark.clause("DMM-OVW-9")
def test_session_traffic_leaves_in_udp_to_the_home_agent(
    visited_kea: KeaDhcp4Server, mn: MobileNodeUnderTest
) -> None:
    """After the registration in UDP/IPv4 and its BA, the session's packets leave the MN
    with the old address as their source, inside UDP/IPv4 to the HA's port 4191 (RFC 5555
    §4.1, the reverse tunnel from an IPv4 care-of address; draft §3 upstream, OPEN-2)."""
    _address, pkt = _registered4(mn, visited_kea)
    _accepted4(mn, pkt)
    cn = str(mn.lab.plan.cn.host6)
    # this session's segments only: orphaned sockets of the lab's earlier sessions of the
    # same home address may still be retransmitting through the tunnel
    session = mn.world.apps[-1]
    lport = int(session.events("connected")[0]["lport"])
    # TCP keeps (re)sending the session's segments; within a few of its retransmission
    # timeouts one must leave the MN this way
    in_time(
        mn.link,
        v4.tunnelled_in_udp4(_ha4(mn), str(mn.home), cn, lport),
        mn.deadlines.data + 3 * TCP_INITIAL_RTO,
        f"the session's packets from {mn.home} to {cn} in UDP to the home agent",
    )


@pytest.mark.clause("DMM-V4-7")
@pytest.mark.interpretation("OPEN-15")
def test_the_mn_does_not_register_its_ipv4_care_of_address_without_a_session(
    visited_kea: KeaDhcp4Server, mn: MobileNodeUnderTest
) -> None:
    address, _pkt = _inform(mn, visited_kea)
    quiet = mn.deadlines.quiet
    mn.link.expect_none(
        v4.bu_in_udp4(_ha4(mn)),
        quiet,
        f"a BU in UDP/IPv4 from {address}, though no session of link 1 was open (draft §8)",
    )


@pytest.mark.clause("RFC5555-1", "DMM-V4-8")
def test_the_bu_in_udp_carries_the_ipv4_home_address_option_asking_for_one(
    visited_kea: KeaDhcp4Server, mn: MobileNodeUnderTest
) -> None:
    _address, pkt = _registered4(mn, visited_kea)
    msg = v4.mobility(pkt)
    hoas = v4.ipv4_hoa_options(msg)
    assert hoas, "the BU carries no IPv4 Home Address option (RFC 5555 §4.4.2, draft §8)"
    assert len(hoas) == 1, f"{len(hoas)} IPv4 Home Address options in one BU"
    assert hoas[0].address == "0.0.0.0", (
        f"IPv4 Home Address option with {hoas[0].address}: the MN has no static IPv4 home "
        "address (its profile names none), so it MUST ask for 0.0.0.0 (RFC 5555 §4.4.2)"
    )
    assert v4.ipv4_coa_options(msg), "the BU carries no IPv4 Care-of Address option (draft §8)"


@pytest.mark.clause("DMM-V4-8")
def test_the_mn_takes_the_assigned_ipv4_home_address_into_use(
    visited_kea: KeaDhcp4Server, mn: MobileNodeUnderTest
) -> None:
    _address, pkt = _registered4(mn, visited_kea)
    _frame, ba = _accepted4(mn, pkt)
    answer = v4.assigned_ipv4(ba)
    if answer is None or answer[0] >= 128 or answer[1] == "0.0.0.0":
        inconclusive(f"link 1's reference home agent assigned no IPv4 home address: {answer}")
    hoa4 = answer[1]
    deadline = time.monotonic() + mn.deadlines.ba
    while hoa4 not in (held := v4.node_ipv4_addresses(mn.lab, "mn")):
        with by_interpretation("INT-22"):  # "uses" read as the kernel's state
            assert time.monotonic() < deadline, (
                f"the MN does not use the IPv4 home address {hoa4} of the BA's IPv4 Address "
                f"Acknowledgement: no interface of it has that address (it has {sorted(held)};"
                " draft §8)"
            )
        threading.Event().wait(POLL)


@pytest.mark.clause("DMM-V4-8")
def test_an_application_reaches_the_correspondent_from_the_ipv4_home_address(
    visited_kea: KeaDhcp4Server, mn: MobileNodeUnderTest
) -> None:
    """After the BA assigned an IPv4 home address, an application of the MN bound to it
    sends to the correspondent's IPv4 address: its packets leave the MN from that address
    inside UDP/IPv4 to the HA's port 4191 (RFC 5555 §4.1), and the correspondent's echoes,
    tunnelled back by the HA, reach the application. No echo coming back to the MN is the
    reference HA's or the lab's failure (inconclusive)."""
    _address, pkt = _registered4(mn, visited_kea)
    _frame, ba = _accepted4(mn, pkt)
    answer = v4.assigned_ipv4(ba)
    if answer is None or answer[0] >= 128 or answer[1] == "0.0.0.0":
        inconclusive(f"link 1's reference home agent assigned no IPv4 home address: {answer}")
    hoa4, cn4 = answer[1], str(mn.lab.plan.cn.host4)
    # the SUT may take a moment to put the address in place (DMM-V4-8's kernel-state test)
    deadline = time.monotonic() + mn.deadlines.ba
    while hoa4 not in v4.node_ipv4_addresses(mn.lab, "mn") and time.monotonic() < deadline:
        threading.Event().wait(POLL)
    mark = mn.link.mark()
    app = mn.world.app(
        "mn", "udp_session", "--connect", cn4, "--port", str(mobility.CN_PORT),
        "--bind", hoa4, "--interval", "0.05",
    )  # fmt: skip
    in_time(
        mn.link,
        v4.ipv4_tunnelled_in_udp4(_ha4(mn), hoa4, cn4),
        mn.deadlines.data,
        f"the application's packets from {hoa4} to {cn4} in UDP to the home agent",
    )
    try:
        app.wait_for("rtt", mn.deadlines.data, f"an echo of {cn4} at {hoa4}")
    except AssertionError as exc:
        back = v4.ipv4_in_udp4_from(_ha4(mn), hoa4)
        if not any(back(p) for p in mn.link.packets(mark)):
            inconclusive(f"no echo came back through the reference home agent: {exc}")
        raise


@pytest.mark.clause("DMM-V4-9")
def test_the_ipv4_home_address_is_registered_in_the_dns(
    visited_kea: KeaDhcp4Server, lab_dns_server: DnsServerState, mn: MobileNodeUnderTest
) -> None:
    """After the registration in UDP/IPv4 and its BA, the lab's named holds an A record of
    the MN's FQDN for the IPv4 home address the BA assigned, whoever sent the update (the
    HA on the BU's DNS Update option, or the MN itself, OPEN-4)."""
    mn.sut.require("dns_update")
    zone, fqdn = LabDns(mn.lab, lab_dns_server.require()), boot.mn_fqdn(mn)
    zone.forget(fqdn, *map(str, zone.a(fqdn)))  # an earlier test's records
    if before := zone.a(fqdn):
        inconclusive(f"named still holds {fqdn} A {sorted(map(str, before))} from before")
    hoa4 = ""
    try:
        _address, pkt = _registered4(mn, visited_kea)
        _frame, ba = _accepted4(mn, pkt)
        answer = v4.assigned_ipv4(ba)
        if answer is None or answer[0] >= 128 or answer[1] == "0.0.0.0":
            inconclusive(f"link 1's reference home agent assigned no IPv4 home address: {answer}")
        hoa4 = answer[1]
        update = dns_answer(ba)
        if update is not None and not update.performed:
            inconclusive(f"link 1's reference home agent could not update named: {update.status}")
        deadline = time.monotonic() + mn.deadlines.ba
        while ipaddress.IPv4Address(hoa4) not in (held := zone.a(fqdn)):
            assert time.monotonic() < deadline, (
                f"named holds no A {hoa4} for {fqdn} after the registration that assigned it "
                f"(draft §8; it holds {sorted(map(str, held))})"
            )
            threading.Event().wait(POLL)
    finally:
        if hoa4:
            zone.forget(fqdn, hoa4)


@pytest.mark.clause("RFC5555-10")
def test_the_nat_binding_is_refreshed_at_the_bas_refresh_time(
    visited_kea: KeaDhcp4Server, mn: MobileNodeUnderTest
) -> None:
    """Behind ar3's NAT, with its session idle (so that only a keepalive refreshes the NAT
    binding), the MN keeps it alive: during KEEPALIVE_PERIODS refresh times after the BA, no
    silence of its BUs to the HA's port 4191 (the keepalive of RFC 5555 §4.3) is longer
    than the refresh time of the BA's NAT Detection option, scaled by the profile's
    time_scale (INT-22). Only BUs count: segments of the lab's earlier sessions (orphaned
    TCP sockets of the same home address, still retransmitting) also go through the tunnel
    and would hide a missing keepalive."""
    _address, pkt = _registered4(mn, visited_kea, idle=True)
    _frame, ba = _accepted4(mn, pkt)
    at = mn.link.frames(mn.link.cursor - 1)[0].mono  # the BA's frame
    refresh = v4.nat_refresh(ba)
    if refresh is None or refresh == v4.NO_KEEPALIVE:
        inconclusive(
            f"link 1's reference home agent saw no NAT (NAT Detection refresh {refresh}): "
            "the lab's NAT was not in the path"
        )
    allowed = mn.deadlines.keepalive(refresh)
    end = at + KEEPALIVE_PERIODS * allowed
    sent = [at]
    while (left := end - time.monotonic()) > 0:
        try:
            mn.link.expect(v4.bu_in_udp4(_ha4(mn)), left, "the MN's next BU to the HA")
        except AssertionError:
            break
        sent.append(mn.link.frames(mn.link.cursor - 1)[0].mono)
    sent.append(end)
    gaps = [b - a for a, b in zip(sent, sent[1:], strict=False)]
    longest = max(gaps)
    assert longest <= allowed, (
        f"the MN sent no BU to {_ha4(mn)}:{v4.DSMIP_PORT} for {longest:.2f} s (BUs at "
        f"{', '.join(f'{t - at:+.2f}' for t in sent[1:-1]) or 'none'} s after the BA), allowed "
        f"{allowed:.2f} s: the NAT Detection option's refresh time ({refresh} s, "
        f"{mn.deadlines.scaled(refresh):.2f} s scaled) was not used (RFC 5555 §4.3)"
    )


# ------------------------------------------------------------------- draft §8: IPv4 multicast
# An IPv4 application of the MN joined a group on link 1; the MN moves, with a session
# open, onto the IPv4-only link. Its registration in UDP/IPv4 hands the group to link 1's
# home agent in a Multicast State option of IGMPv3 form (one option per family), and the
# stream then reaches the application through that home agent.


def _joined4(mn: MobileNodeUnderTest) -> tuple[str, str, Any]:
    """An IPv4 application of the MN joined to the lab's IPv4 SSM group, INCLUDE {the remote
    source} (RFC 3678 §5.2 through the kernel's IGMPv3 host stack): group, source, app."""
    _claims_ipv4(mn)
    mn.sut.features.require("igmp", "the SUT mobile node")
    plan = mn.lab.plan
    group, source = str(plan.ssm_group4), str(plan.mcast_source.host4)
    app = mn.world.receiver(group, source)
    try:
        app.wait_for("joined", mn.deadlines.data, f"the join of {group}", since=0)
    except AssertionError as exc:
        inconclusive(f"the IPv4 application could not join {group} on the MN: {exc}")
    return group, source, app


def _igmp_records(msg: Any) -> dict[str, compact.McastRecord]:
    """The group records of a BU's Multicast State options of IGMPv3 form, by group, read
    with the suite's one report parser; a malformed option or a bad checksum fails."""
    records: list[compact.McastRecord] = []
    for body in v4.igmp_state_options(msg):
        try:
            state = compact.parse_multicast_state(body)
        except compact.Malformed as exc:
            raise AssertionError(f"a malformed IGMPv3 Multicast State option: {exc}") from None
        assert state.checksum_ok, f"IGMPv3 option with a bad checksum {state.checksum:#06x}"
        records += state.records
    return {r.maddr: r for r in records}


@pytest.mark.clause("DMM-V4-5", "DMM-OVW-27")
def test_the_bu_in_udp_carries_the_ipv4_groups_in_igmpv3_form(
    visited_kea: KeaDhcp4Server, mn: MobileNodeUnderTest
) -> None:
    """The BU in UDP/IPv4 after the move carries a Multicast State option whose body is an
    IGMPv3 Membership Report (type 0x22, RFC 3376 §4.2) naming the IPv4 group the
    application joined on link 1 with its source (draft §8; §3: all ongoing subscriptions),
    read with the suite's one report parser."""
    group, source, _app = _joined4(mn)
    _address, pkt = _registered4(mn, visited_kea)
    msg = v4.mobility(pkt)
    assert v4.igmp_state_options(msg), (
        f"the BU in UDP/IPv4 carries no Multicast State option of IGMPv3 form (type 0x22), "
        f"though an IPv4 application listens to {group} (draft §8)"
    )
    named = _igmp_records(msg)
    assert group in named, (
        f"the IGMPv3 option's records name {sorted(named) or 'no group'}, not {group}, "
        "which an IPv4 application joined on link 1 (draft §3, §8)"
    )
    rec = named[group]
    want = (int(McastRecordType.MODE_IS_INCLUDE), (source,))
    assert (rec.rtype, rec.sources) == want, (
        f"the record of {group} is type {rec.rtype} with sources {list(rec.sources)}, not "
        f"MODE_IS_INCLUDE {{{source}}}, the application's filter (RFC 3376 §4.2.12)"
    )


STREAM_RATE = 100.0  # datagrams per second of the remote IPv4 source
STREAM_AFTER = 20  # datagrams sent after the registration that must reach the application


def _stream_from_the_tunnel(
    mn: MobileNodeUnderTest, app: Any, group: str, air: int, registered: float
) -> None:
    """STREAM_AFTER datagrams of `group` sent after `registered` (the BA's capture time)
    reach the application, not from the air interface `air`; AssertionError otherwise."""

    def after_registration(e: dict[str, Any]) -> bool:
        return (
            e["event"] == "data"
            and e.get("group") == group
            and e.get("ifindex") != air
            and float(e.get("sent_mono", 0.0)) > registered
        )

    app.wait_count(
        after_registration,
        STREAM_AFTER,
        mn.deadlines.ba + mn.deadlines.data,
        f"{STREAM_AFTER} datagrams of {group} sent after the registration, delivered from "
        "the tunnel (not from the air interface)",
        since=0,
    )


@pytest.mark.clause("DMM-OVW-31")
def test_an_ipv4_application_keeps_its_stream_through_the_home_agent(
    visited_kea: KeaDhcp4Server, mn: MobileNodeUnderTest
) -> None:
    """A real IPv4 application joined on link 1 to a real IPv4 source's numbered stream keeps
    receiving it after the move onto the IPv4-only link: of the datagrams sent after the
    registration completed (the HA's BA on the MN's interface), STREAM_AFTER reach it, and
    from the tunnel, not from the air interface (draft §3: the moved state points to the
    tunnel; §8). Losses during the changeover are not judged. A home agent that tunnels
    none of the stream to the MN although a BU named the group is the reference's or the
    lab's failure (inconclusive); if no BU named it, the MN never asked for it (fail)."""
    group, _source, app = _joined4(mn)
    air = mn.lab.ifindex("mn", mobility.MN_IFACE)
    mn.world.source("src", group, rate=STREAM_RATE)
    start = mn.link.mark()
    _address, pkt = _registered4(mn, visited_kea)
    _frame, _ba = _accepted4(mn, pkt)
    registered = mn.link.frames(mn.link.cursor - 1)[0].mono  # the BA's frame
    mark = mn.link.mark()

    try:
        _stream_from_the_tunnel(mn, app, group, air, registered)
    except AssertionError:
        tunnelled = v4.ipv4_in_udp4_from(_ha4(mn), group)
        if not any(tunnelled(p) for p in mn.link.packets(mark)):
            bu = v4.bu_in_udp4(_ha4(mn))
            sent = [v4.mobility(p) for p in mn.link.packets(start) if bu(p)]
            assert any(group in _igmp_records(m) for m in sent), (
                f"none of the MN's {len(sent)} BU(s) in UDP/IPv4 names {group} in a Multicast "
                "State option of IGMPv3 form: the home agent was never asked for the stream "
                "(draft §8)"
            )
            inconclusive(
                f"link 1's reference home agent tunnelled none of {group}'s stream to the MN "
                "after the registration: the lab's or the reference's failure"
            )
        raise


@pytest.mark.clause("DMM-OVW-31", "DMM-V4-5")
def test_an_ipv4_application_keeps_its_stream_after_a_move_to_an_ipv6_link(
    mn: MobileNodeUnderTest,
) -> None:
    """The same IPv4 application, the MN moving with a session to link 2, which has IPv6:
    the BU to link 1's home agent (over IPv6) carries the group in IGMPv3 form (draft §8),
    and the data the HA then tunnels IPv4-in-IPv6 (RFC 5555 §4.5.1) reaches the application
    from the tunnel: STREAM_AFTER datagrams sent after the BA. Changeover losses are not
    judged; a home agent that tunnels none of it although the BU asked is inconclusive."""
    group, _source, app = _joined4(mn)
    air = mn.lab.ifindex("mn", mobility.MN_IFACE)
    mn.world.source("src", group, rate=STREAM_RATE)
    session_then_move(mn)
    bu = mn.expect_bu(to=mn.ha_address(1))
    assert group in _igmp_records(bu), (
        f"the BU to link 1's home agent names no {group} in a Multicast State option of IGMPv3 "
        f"form (its IGMPv3 records: {sorted(_igmp_records(bu))}); the application still listens"
    )
    registered = expect_latest_ba(mn, bu, "link 1's home agent's BA")
    mark = mn.link.mark()

    try:
        _stream_from_the_tunnel(mn, app, group, air, registered)
    except AssertionError:
        ha = mn.ha_address(1)
        if not any(ipv4_in_ipv6_from(ha, group)(p) for p in mn.link.packets(mark)):
            inconclusive(
                f"link 1's reference home agent tunnelled none of {group}'s stream to the MN "
                "after the registration: the lab's or the reference's failure"
            )
        raise


def ipv4_in_ipv6_from(ha: str, group: str) -> Any:
    """IPv4 multicast to `group` inside IPv6 from `ha` (RFC 2473, next header 4)."""
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import IPv6

    def test(pkt: Any) -> bool:
        outer = pkt.getlayer(IPv6)
        inner = pkt.getlayer(IP)
        return outer is not None and outer.src == ha and inner is not None and inner.dst == group

    return test


@pytest.mark.clause("DMM-OVW-31")
def test_moved_ipv4_groups_are_not_reported_on_the_ipv4_only_link(
    visited_kea: KeaDhcp4Server, mn: MobileNodeUnderTest
) -> None:
    """Draft §3, for IPv4 (§8): once the IPv4 group joined on link 1 is served through the
    home agent (its BA), the IPv4-only link's querier hears no IGMP Report naming it, for
    as long as the MN takes to answer two of its General Queries."""
    group, _source, _app = _joined4(mn)
    _address, pkt = _registered4(mn, visited_kea)
    _accepted4(mn, pkt)
    mn.link.expect_none(
        mld_report_with(group),
        mn.deadlines.report_after_query,
        f"IGMP Report for {group} on the IPv4-only link, where it is served through the "
        "home agent's tunnel",
    )
