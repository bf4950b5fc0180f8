"""IPv4 home addresses at the SUT home agent over IPv6 transport (draft §6: a dual-stack HA
MUST support RFC 5555; RFC 5555 §3.1.1, §3.2.1, §4.5, §4.5.1; INT-21), judged on the wire.

The tester, as a mobile node on an IPv6 access link, puts the IPv4 Home Address option in its
BUs (0.0.0.0 for a dynamic address, a static one, hypothesis-drawn bad ones) and reads the
IPv4 Address Acknowledgement of each BA; IPv4 datagrams from the lab's correspondent to the
assigned address must reach the care-of address IPv4-in-IPv6, and the reverse tunnel must
carry the MN's IPv4 datagrams to the correspondent. An HA profile that does not claim `ipv4`
makes every test here not-applicable. What is not tested yet (IPv4 care-of addresses, UDP
encapsulation and NAT detection, IGMP) is in docs/roadmap.md.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import subprocess
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import HAO, IPv6, IPv6ExtHdrDestOpt, MIP6OptUnknown
from scapy.packet import Packet

from harness import verdicts
from harness.sut.profile import MN_FQDN
from harness.tester.conversation import ExpectationFailed, Link
from harness.tester.dns import LabDns, answered, ba_deadline, dns_answer, dns_option, settled
from harness.tester.dual_stack import (
    DSMIP_PORT,
    PORT,
    UNSPECIFIED,
    Correspondent4,
    IPv4Ack,
    Udp4Mn,
    igmp_query_to,
    in_ipv4,
    ipv4_ack,
    ipv4_hoa,
    nat_detection,
    open_source4,
    raw_ipv4_hoa,
    reach_ha4,
    reverse4,
    state4,
    tunnelled4,
    tunnelled_igmp,
)
from harness.tester.ha_registration import vector_frame
from harness.tester.home_agent import (
    FLAG_A,
    FLAG_H,
    FOREIGN_LINK,
    LIFETIME,
    MARGIN,
    HomeAgentUnderTest,
    binding,
    deregister,
    expect_ba,
    expect_in_time,
)
from harness.tester.multicast_state import IS_EX, IS_IN
from harness.tester.sources import Wire
from harness.wire import compact
from harness.wire.ipv4 import valid_home_address
from harness.wire.mobility import (
    BindingUpdate,
    MIP6OptIPv4CareOfAddress,
    MIP6OptIPv4HomeAddress,
)

ARP_RETRY = 1.0  # the neighbour's ARP may need one retransmission (Linux: 1 s), the lab's time
POOL_LIMIT = 256  # dynamic requests after which an HA that never says 132 is inconclusive


@pytest.fixture(autouse=True)
def claims_ipv4(home_agent: HomeAgentUnderTest) -> None:
    home_agent.sut.features.require("ipv4", "the SUT home agent")


def asked(
    ha: HomeAgentUnderTest,
    link: Link,
    hoas: list[tuple[str, int]],
    hoa: str,
    seq: int,
    *options: Packet,
) -> compact.MobilityMessage:
    """Send a BU for `hoa` with `options` and return the HA's BA for it; a home address it
    accepts goes into `hoas` (with `seq`), to be deregistered afterwards."""
    if any(isinstance(o, MIP6OptUnknown) for o in options):
        # An option of the wrong length, which scapy cannot read back: signed on the bytes.
        unsigned = bytes(
            IPv6(src=ha.coa, dst=ha.address)
            / IPv6ExtHdrDestOpt(options=[HAO(hoa=hoa)])
            / BindingUpdate(seq=seq, mhtime=LIFETIME, flags=FLAG_A | FLAG_H, options=list(options))
        )
        router = str(ha.lab.plan.link(2).router6)
        link.send(vector_frame(link, ha.resign(unsigned, hoa, seq), router))
    else:
        link.send(ha.bu(hoa, seq, options=tuple(options)))
    ba = expect_ba(ha, link, ha.coa, seq)
    if ba.ba_status < 128:
        hoas[:] = [h for h in hoas if h[0] != hoa] + [(hoa, seq)]
    return ba


def acknowledged(ba: compact.MobilityMessage, what: str) -> IPv4Ack:
    """The BA accepted the BU (a precondition) and carries the IPv4 Address Acknowledgement
    (RFC 5555 §4.5: MUST, when the IPv4 home address is accepted; §4.2: present whenever
    the BU carried the option)."""
    if ba.ba_status >= 128:
        verdicts.inconclusive(f"the BU {what} was refused outright (BA status {ba.ba_status})")
    ack = ipv4_ack(ba)
    assert ack is not None, f"the BA to the BU {what} carries no IPv4 Address Acknowledgement"
    return ack


@contextlib.contextmanager
def registered(ha: HomeAgentUnderTest, link: Link) -> Iterator[list[tuple[str, int]]]:
    """Home addresses the test registers ((hoa, last seq) appended), deregistered after."""
    hoas: list[tuple[str, int]] = []
    try:
        yield hoas
    finally:
        for hoa, seq in hoas:
            deregister(ha, link, hoa, seq + 1, ha.coa)


def dynamic(ha: HomeAgentUnderTest, link: Link, hoas: list[tuple[str, int]]) -> IPv4Ack:
    """A fresh home address registered with a request for a dynamic IPv4 home address."""
    return acknowledged(asked(ha, link, hoas, ha.fresh_hoa(), 1, ipv4_hoa()), "asking for 0.0.0.0")


@pytest.mark.clause("DMM-HA-24", "RFC5555-2", "RFC5555-5")
def test_dynamic_ipv4_home_address_is_assigned_and_kept(
    home_agent: HomeAgentUnderTest, mn_link: Link
) -> None:
    """0.0.0.0 in the IPv4 Home Address option: the acknowledgement says success with a
    usable address (§4.5 SHOULD allocate); a refresh naming that address keeps it (the HA
    MUST store it with the IPv6 home address), and a second MN gets another."""
    ha = home_agent
    with registered(ha, mn_link) as hoas:
        ack = dynamic(ha, mn_link, hoas)
        assert ack.accepted, f"IPv4 Address Acknowledgement status {ack.status} for 0.0.0.0"
        assert valid_home_address(ack.address), f"the HA assigned {ack.address}"
        assert 0 < ack.prefix_len <= 32, f"Pref-len {ack.prefix_len} with success"
        again = acknowledged(
            asked(ha, mn_link, hoas, hoas[0][0], 2, ipv4_hoa(str(ack.address))), "refreshing it"
        )
        assert again.accepted and again.address == ack.address, (
            f"a refresh naming {ack.address} got status {again.status}, {again.address}"
        )
        other = dynamic(ha, mn_link, hoas)
        assert not other.accepted or other.address != ack.address, (
            f"{ack.address} was assigned to two mobile nodes at once"
        )


@pytest.mark.clause("RFC5555-4", "RFC5555-12")
def test_ipv4_home_address_of_another_node_is_refused(
    home_agent: HomeAgentUnderTest, mn_link: Link
) -> None:
    """An MN names as its static IPv4 home address the one the HA assigned to another MN:
    refused (§4.5: the address MUST be checked as the MN's own; Pref-len 0, §3.2.1), and the
    first MN keeps it."""
    ha = home_agent
    with registered(ha, mn_link) as hoas:
        first = dynamic(ha, mn_link, hoas)
        if not first.accepted:
            verdicts.inconclusive(f"no dynamic IPv4 home address to take (status {first.status})")
        owner = hoas[0][0]
        ack = acknowledged(
            asked(ha, mn_link, hoas, ha.fresh_hoa(), 1, ipv4_hoa(str(first.address))),
            "naming another's address",
        )
        assert not ack.accepted, (
            f"{first.address}, held by another mobile node, acknowledged with status {ack.status}"
        )
        assert ack.prefix_len == 0, f"Pref-len {ack.prefix_len} in a failure (status {ack.status})"
        kept = acknowledged(
            asked(ha, mn_link, hoas, owner, 2, ipv4_hoa(str(first.address))), "of its owner"
        )
        assert kept.accepted and kept.address == first.address, (
            f"the owner's refresh of {first.address} got status {kept.status}, {kept.address}"
        )


@pytest.mark.clause("RFC5555-3", "RFC5555-12")
def test_exhausted_pool_gives_132(home_agent: HomeAgentUnderTest, mn_link: Link) -> None:
    """Dynamic requests from ever more MNs until the HA has no address left: that
    acknowledgement says 132 with Pref-len 0 (§4.5 MUST, §3.2.1). An HA that assigns
    POOL_LIMIT addresses is inconclusive."""
    ha = home_agent
    with registered(ha, mn_link) as hoas:
        given_out: set[ipaddress.IPv4Address] = set()
        for _ in range(POOL_LIMIT):
            ack = dynamic(ha, mn_link, hoas)
            if not ack.accepted:
                break
            assert ack.address not in given_out, f"{ack.address} assigned twice"
            given_out.add(ack.address)
        else:
            verdicts.inconclusive(f"the HA assigned {POOL_LIMIT} addresses without running out")
        if not given_out:
            verdicts.inconclusive(f"the HA assigned no address at all (status {ack.status})")
        assert ack.status == 132, (
            f"status {ack.status}, not 132, after {len(given_out)} addresses were assigned"
        )
        assert ack.prefix_len == 0, f"Pref-len {ack.prefix_len} in a failure"


@pytest.mark.clause("RFC5555-11", "RFC5555-12")
def test_zero_prefix_len_is_an_error(home_agent: HomeAgentUnderTest, mn_link: Link) -> None:
    """Prefix-len 0 in the IPv4 Home Address option (§3.1.1: an error): no success for the
    IPv4 home address, and Pref-len 0 in the failure (§3.2.1)."""
    ha = home_agent
    with registered(ha, mn_link) as hoas:
        ba = asked(ha, mn_link, hoas, ha.fresh_hoa(), 1, ipv4_hoa(prefix_len=0))
        if ba.ba_status >= 128:
            return  # the whole BU refused: an error as well
        ack = ipv4_ack(ba)
        with verdicts.by_interpretation("INT-21"):
            assert ack is not None, "the option was ignored: no IPv4 Address Acknowledgement"
        assert not ack.accepted, f"status {ack.status} (success) for Prefix-len 0"
        assert ack.prefix_len == 0, f"Pref-len {ack.prefix_len} in a failure"


def option_cases() -> st.SearchStrategy[Packet]:
    """IPv4 Home Address options, good and bad: any Prefix-len (0 among them), the P flag,
    Reserved bits, unspecified, ordinary, multicast, broadcast, loopback, 0/8 and 240/4
    addresses; and options of the wrong length."""
    addresses = st.one_of(
        st.just(UNSPECIFIED),
        st.sampled_from(["224.0.0.1", "239.1.1.1", "255.255.255.255", "127.0.0.1", "0.1.2.3"]),
        st.sampled_from(["240.0.0.1", "169.254.1.1", "10.0.1.40", "192.0.2.77"]),
        st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n))),
    )
    well_formed = st.builds(
        MIP6OptIPv4HomeAddress,
        prefix_len=st.one_of(st.just(32), st.just(0), st.integers(0, 63)),
        flags=st.integers(0, 1),
        reserved=st.one_of(st.just(0), st.integers(0, 511)),
        address=addresses,
    )
    malformed = st.binary(min_size=0, max_size=10).filter(lambda b: len(b) != 6).map(raw_ipv4_hoa)
    return st.one_of(well_formed, well_formed, malformed)


def check_answer(option: Packet, ba: compact.MobilityMessage) -> None:
    """What every answer to an IPv4 Home Address option must be (RFC 5555 §3.1.1, §3.2.1,
    §4.5; INT-21 for what the RFC leaves open)."""
    raw = bytes(option)
    ack = ipv4_ack(ba)
    if ba.ba_status >= 128 or ack is None:
        if len(raw) == 8 and ba.ba_status < 128:
            with verdicts.by_interpretation("INT-21"):
                assert ack is not None, "no IPv4 Address Acknowledgement for a well-formed option"
        return
    assert ack.status >= 128 or ack.prefix_len > 0, f"success with Pref-len 0: {ack}"
    if ack.status >= 128:
        assert ack.prefix_len == 0, f"Pref-len {ack.prefix_len} in a failure ({ack.status})"
        return
    assert valid_home_address(ack.address), f"success with the address {ack.address}"
    if len(raw) == 8:
        assert raw[2] >> 2 != 0, f"success ({ack.status}) for Prefix-len 0 (§3.1.1: an error)"
        named = ipaddress.IPv4Address(raw[4:8])
        if not valid_home_address(named) and named != ipaddress.IPv4Address(UNSPECIFIED):
            with verdicts.by_interpretation("INT-21"):
                raise AssertionError(f"success ({ack.status}) for the static address {named}")


@pytest.mark.clause("RFC5555-5", "RFC5555-11", "RFC5555-12")
def test_any_ipv4_home_address_option_gets_a_consistent_answer(
    home_agent: HomeAgentUnderTest, mn_link: Link
) -> None:
    """Hypothesis-drawn IPv4 Home Address options, bad ones among them: the HA answers each
    BU, and the acknowledgement is consistent: success only with a usable address and a
    Pref-len above 0, never for Prefix-len 0, and failure always with Pref-len 0."""
    ha = home_agent

    @settings(
        max_examples=int(os.environ.get("DMMCONF_IPV4_EXAMPLES", "12")),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(option=option_cases())
    @example(option=ipv4_hoa(prefix_len=0))
    @example(option=ipv4_hoa("224.0.0.1"))
    @example(option=raw_ipv4_hoa(b"\x80\x00\x00\x00"))
    def check(option: Packet) -> None:
        with registered(ha, mn_link) as hoas:
            check_answer(option, asked(ha, mn_link, hoas, ha.fresh_hoa(), 1, option))

    check()


@pytest.mark.clause("DMM-HA-24", "RFC5555-5")
def test_ipv4_traffic_follows_the_ipv4_home_address(
    home_agent: HomeAgentUnderTest, mn_link: Link
) -> None:
    """Once the IPv4 home address is acknowledged (the HA's binding cache entry for it,
    §4.5), an IPv4 datagram from the correspondent to it reaches the care-of address
    IPv4-in-IPv6 (§4.5.1), and the MN's IPv4 datagram tunnelled to the HA reaches the
    correspondent; after the deregistration nothing more is tunnelled."""
    ha = home_agent
    with registered(ha, mn_link) as hoas, Correspondent4(ha) as cn:
        ack = dynamic(ha, mn_link, hoas)
        if not ack.accepted:
            verdicts.inconclusive(f"no IPv4 home address was assigned (status {ack.status})")
        hoa4, payload = str(ack.address), os.urandom(12)
        mark = mn_link.mark()
        cn.send(hoa4, payload)
        expect_in_time(mn_link, tunnelled4(ha, ha.coa, hoa4, payload), ha.reaction_window,
                       since=mark)  # fmt: skip
        back = os.urandom(12)
        mn_link.send(reverse4(ha, ha.coa, hoa4, cn.address, back))
        got = cn.received(ha.reaction_window)
        assert (back, hoa4) in got, (
            f"the MN's IPv4 datagram from {hoa4}, reverse-tunnelled to the HA, did not reach "
            f"the correspondent (it got {len(got)} datagrams)"
        )
        hoa, seq = hoas.pop()
        deregister(ha, mn_link, hoa, seq + 1, ha.coa)
        late = os.urandom(12)
        mark = mn_link.mark()
        cn.send(hoa4, late)
        with contextlib.suppress(ExpectationFailed):
            mn_link.expect(tunnelled4(ha, ha.coa, hoa4, late), within=ha.reaction_window,
                           since=mark)  # fmt: skip
            raise AssertionError(f"{hoa4} is still tunnelled after its deregistration")


@pytest.mark.clause("DMM-V4-4", "DMM-V4-5", "DMM-HA-19", "DMM-V4-3")
def test_igmpv3_state_admits_ipv4_multicast_into_the_tunnel(
    home_agent: HomeAgentUnderTest, mn_link: Link, wire: Wire
) -> None:
    """The Multicast State option in its IGMPv3 form (type 0x22) initialises the binding's
    IPv4 reception state (draft §8): INCLUDE {remote source} for the SSM group, EXCLUDE {}
    for the ASM group. The remote source's SSM datagrams and the home link's source's ASM
    datagrams reach the care-of address IPv4-in-IPv6; the home link's source's datagrams to
    the SSM group, whose source list lacks it, do not."""
    ha, lab = home_agent, home_agent.lab
    ssm, asm = str(lab.plan.ssm_group4), str(lab.plan.asm_group4)
    remote = open_source4(lab, "src", lab.plan.mcast_source.host4)
    local = open_source4(lab, "cdn", lab.plan.cdn4)
    option = state4((IS_IN, ssm, (remote.address,)), (IS_EX, asm, ()))
    with (
        contextlib.closing(remote.sock),
        contextlib.closing(local.sock),
        binding(ha, mn_link, option),
    ):
        # the home link's source first: its datagrams reach the HA whatever it joined
        for source, group, watch in ((local, asm, wire.access), (remote, ssm, wire.uplink)):
            mark = mn_link.mark()
            payload = reach_ha4(watch, source, group, f"v4-{source.node}")
            expect_in_time(mn_link, tunnelled4(ha, ha.coa, group, payload),
                           ha.reaction_window, since=mark)  # fmt: skip
        mark = mn_link.mark()
        payload = reach_ha4(wire.access, local, ssm, "v4-unlisted")
        mn_link.expect_none(
            tunnelled4(ha, ha.coa, ssm, payload), during=ha.reaction_window, since=mark
        )


@pytest.mark.clause("DMM-V4-1", "DMM-V4-2")
def test_igmp_general_queries_reach_the_coa_through_the_tunnel(
    home_agent: HomeAgentUnderTest, mn_link: Link
) -> None:
    """Draft §8: the HA is the IGMP querier of a mobile node with IPv4 multicast state:
    IGMPv3 General Queries IPv4-in-IPv6 to the CoA (to 224.0.0.1, TTL 1, Router Alert,
    Group Address 0, no sources; RFC 3376 §4, §4.1), the first within the profile's query
    interval after the BA, the next within one and a half (the MLD timers, INT-21)."""
    ha = home_agent
    interval = ha.timers.mld_query_interval
    coa = ha.other_coas[3]
    option = state4((IS_EX, "239.1.1.7", ()))
    with binding(ha, mn_link, option, coa=coa):
        queries = [mn_link.expect(igmp_query_to(ha, coa), within=interval + MARGIN)]
        queries.append(mn_link.expect(igmp_query_to(ha, coa), within=1.5 * interval + MARGIN))
    for pkt in queries:
        q = tunnelled_igmp(pkt)
        assert (q.dst, q.ttl, q.group, q.sources) == ("224.0.0.1", 1, "0.0.0.0", 0), (
            f"not an IGMPv3 General Query as RFC 3376 §4.1 has it: {q}"
        )
        assert q.length >= 12, f"a {q.length}-octet query is IGMPv1/v2, not v3 (RFC 3376 §7.1)"
        assert q.router_alert, "the query carries no IP Router Alert option (RFC 3376 §4)"


@pytest.mark.clause("RFC5555-13")
def test_home_link_neighbours_reach_the_ipv4_home_address(
    home_agent: HomeAgentUnderTest, mn_link: Link
) -> None:
    """A host on the home link sends to a registered IPv4 home address, which is on its
    own subnet: it asks for it with ARP, the HA answers for it (§4.5: proxy for address
    resolution), and the datagram reaches the care-of address IPv4-in-IPv6."""
    ha, lab = home_agent, home_agent.lab
    neighbour = open_source4(lab, "cdn", lab.plan.cdn4)
    with registered(ha, mn_link) as hoas, contextlib.closing(neighbour.sock):
        ack = dynamic(ha, mn_link, hoas)
        if not ack.accepted:
            verdicts.inconclusive(f"no IPv4 home address was assigned (status {ack.status})")
        hoa4 = str(ack.address)
        if ipaddress.IPv4Address(hoa4) not in lab.plan.link(1).subnet4:
            verdicts.inconclusive(f"{hoa4} is not on the home link's subnet: nothing to resolve")
        # resolved afresh: an entry cached from an earlier binding of the address proves nothing
        argv = ["ip", "-n", lab.ns("cdn"), "neigh", "flush", "to", hoa4]
        subprocess.run(argv, check=True, capture_output=True, timeout=10)
        payload = os.urandom(12)
        mark = mn_link.mark()
        neighbour.send(hoa4, payload)
        expect_in_time(mn_link, tunnelled4(ha, ha.coa, hoa4, payload),
                       ha.reaction_window + ARP_RETRY, since=mark)  # fmt: skip


# --- BUs in UDP and IPv4 (RFC 5555 §4.2), from the tester's IPv4 address ------------------


def udp_ba(mn: Udp4Mn, ha: HomeAgentUnderTest, bu: bytes, seq: int) -> compact.MobilityMessage:
    ba = mn.exchange(bu, seq, ha.answer_within + ha.reaction_window)
    assert ba is not None, (
        f"no BA in UDP from {mn.ha4} port {DSMIP_PORT} to a BU that came so (RFC 5555 §4.2: "
        "the BA goes in UDP whenever the BU did)"
    )
    return ba


@pytest.mark.clause("RFC5555-7", "RFC5555-14", "DMM-HA-24")
def test_bu_in_udp_ipv4_is_answered_in_udp(home_agent: HomeAgentUnderTest) -> None:
    """A BU inside UDP/IPv4 to port 4191 (IPv6 source: the home address; the IPv4 Care-of
    Address option: the tester's own IPv4 address, so no NAT): the BA comes back in UDP from
    port 4191, accepting it (the binding cache entry for the IPv6 home address, §2.3.2.2),
    with the NAT Detection option (§4.2: MUST for a BU in UDP) saying no NAT (a Refresh
    Time of all ones, INT-21); the deregistration that follows finds the entry."""
    ha = home_agent
    hoa = ha.fresh_hoa()
    with Udp4Mn(ha) as mn:
        own = str(ha.lab.plan.mn_address4(FOREIGN_LINK))
        ba = udp_ba(mn, ha, mn.bu(hoa, 1, LIFETIME, own), 1)
        assert ba.ba_status == 0 and ba.lifetime > 0, (
            f"BA status {ba.ba_status}, lifetime {ba.lifetime} for a BU in UDP/IPv4"
        )
        det = nat_detection(ba)
        assert det is not None, "no NAT Detection option in the BA to a BU in UDP (§4.2)"
        with verdicts.by_interpretation("INT-21"):
            assert not det.says_nat and not det.forced, (
                f"the NAT Detection option says {det} though no NAT was in the path (§3.2.2: "
                "a Refresh Time of all ones)"
            )
        gone = udp_ba(mn, ha, mn.bu(hoa, 2, 0, own), 2)
        assert gone.ba_status == 0, (
            f"the deregistration got status {gone.ba_status}: no binding cache entry was made"
        )


@pytest.mark.clause("DMM-HA-25")
def test_bu_with_both_ipv4_options_gets_an_ipv4_home_address(
    home_agent: HomeAgentUnderTest,
) -> None:
    """A BU in UDP/IPv4 with the IPv4 Care-of Address option and the IPv4 Home Address
    option asking for one (0.0.0.0): the HA creates the binding (the BA accepts it) and
    its BA carries the IPv4 Address Acknowledgement with a success status and an IPv4 home
    address (draft §6). That IPv4 traffic then reaches the MN is judged by
    `test_ipv4_traffic_of_an_mn_in_an_ipv4_network`."""
    ha = home_agent
    hoa = ha.fresh_hoa()
    own = str(ha.lab.plan.mn_address4(FOREIGN_LINK))
    with Udp4Mn(ha) as mn:
        options = (MIP6OptIPv4CareOfAddress(address=own), ipv4_hoa())
        ba = udp_ba(mn, ha, bytes(ha.bu(hoa, 1, LIFETIME, options, coa=hoa)), 1)
        try:
            assert ba.ba_status < 128 and ba.lifetime > 0, (
                f"BA status {ba.ba_status}, lifetime {ba.lifetime}: no binding cache entry for "
                "a BU with the IPv4 Care-of Address and IPv4 Home Address options (draft §6)"
            )
            ack = ipv4_ack(ba)
            assert ack is not None, (
                "the BA carries no IPv4 Address Acknowledgement option (draft §6, RFC 5555 §4.5)"
            )
            assert ack.accepted and ack.address != ipaddress.IPv4Address(0), (
                f"IPv4 Address Acknowledgement status {ack.status}, address {ack.address}: no "
                "IPv4 home address set for a request of 0.0.0.0 (draft §6)"
            )
        finally:
            mn.exchange(mn.bu(hoa, 2, 0, own), 2, ha.answer_within)


@pytest.mark.clause("RFC5555-9")
def test_nat_in_the_path_is_detected(home_agent: HomeAgentUnderTest) -> None:
    """The IPv4 Care-of Address option names an address that is not the BU's outer IPv4
    source (as a NAT would make it): the BA carries the NAT Detection option (§4.2, §3.2.2:
    MUST when a NAT is detected)."""
    ha = home_agent
    hoa = ha.fresh_hoa()
    with Udp4Mn(ha) as mn:
        ba = udp_ba(mn, ha, mn.bu(hoa, 1, LIFETIME, "192.168.77.5"), 1)
        try:
            if ba.ba_status >= 128:
                verdicts.inconclusive(f"the BU was refused (status {ba.ba_status})")
            det = nat_detection(ba)
            assert det is not None and det.says_nat, (
                f"NAT Detection option {det}, though the IPv4 Care-of Address option "
                f"(192.168.77.5) is not the BU's outer source "
                f"({ha.lab.plan.mn_address4(FOREIGN_LINK)}; §3.2.2: all ones means no NAT)"
            )
        finally:
            mn.exchange(mn.bu(hoa, 2, 0, "192.168.77.5"), 2, ha.answer_within)


@pytest.mark.clause("RFC5555-8", "DMM-HA-24")
@pytest.mark.parametrize("nat", [True, False], ids=["behind-a-nat", "no-nat"])
def test_packets_reach_an_ipv4_care_of_address(
    home_agent: HomeAgentUnderTest, mn_link: Link, nat: bool
) -> None:
    packets_reach_an_ipv4_care_of_address(home_agent, mn_link, nat)


@pytest.mark.clause("RFC5555-6")
def test_forced_udp_encapsulation_is_refused_with_144_or_used(
    home_agent: HomeAgentUnderTest, mn_link: Link
) -> None:
    """A BU in UDP with the F flag and no NAT in the path (§4.5): an HA that does not accept
    forcing UDP answers 144 (read so only for a BU without RFC 4285 options, OPEN-12; a
    signed BU refused is inconclusive); one that accepts sends the home address's packets
    in UDP."""
    packets_reach_an_ipv4_care_of_address(home_agent, mn_link, False, force=True)


def packets_reach_an_ipv4_care_of_address(
    home_agent: HomeAgentUnderTest, mn_link: Link, nat: bool, *, force: bool = False
) -> None:
    """After a BU in UDP/IPv4, the correspondent's IPv6 datagram to the home address reaches
    the IPv4 care-of address (§4.5.1): in UDP from port 4191 to the BU's source port when a
    NAT was detected (§2.3.2.2: the tunnel MUST use UDP encapsulation), else inside IPv4."""
    ha, lab = home_agent, home_agent.lab
    hoa = ha.fresh_hoa()
    own = str(lab.plan.mn_address4(FOREIGN_LINK))
    named = "192.168.77.5" if nat else own
    cn = lab.socket("cn", socket.AF_INET6, socket.SOCK_DGRAM)
    with Udp4Mn(ha) as mn, contextlib.closing(cn):
        ba = udp_ba(mn, ha, mn.bu(hoa, 1, LIFETIME, named, force=force), 1)
        try:
            if force and ba.ba_status == 144 and ha.keys is None:
                return  # §4.5: forcing UDP not accepted (OPEN-12)
            if ba.ba_status >= 128:
                verdicts.inconclusive(f"the BU in UDP/IPv4 was refused (status {ba.ba_status})")
            payload = os.urandom(12)
            mark = mn_link.mark()
            cn.sendto(payload, (hoa, PORT))
            if nat or force:
                assert mn.tunnelled(hoa, payload, ha.reaction_window), (
                    f"the datagram to {hoa} did not come in UDP from {mn.ha4} port {DSMIP_PORT}"
                    f" though {'a NAT was detected' if nat else 'the BU forced UDP'}"
                )
            else:
                expect_in_time(mn_link, in_ipv4(mn.ha4, own, hoa, payload),
                               ha.reaction_window, since=mark)  # fmt: skip
        finally:
            mn.exchange(mn.bu(hoa, 2, 0, named), 2, ha.answer_within)


@pytest.mark.clause("DMM-HA-1", "RFC6275-HA-14", "DMM-HA-24")
@pytest.mark.parametrize("nat", [True, False], ids=["behind-a-nat", "no-nat"])
def test_the_mn_reaches_the_correspondent_from_an_ipv4_care_of_address(
    home_agent: HomeAgentUnderTest, mn_link: Link, nat: bool
) -> None:
    """After a BU in UDP/IPv4, the MN's IPv6 datagram from its home address, tunnelled to
    the HA in UDP to port 4191 (behind a NAT) or inside IPv4 (protocol 41) from the care-of
    address the binding holds, reaches the correspondent (RFC 5555 §4.4.3, §4.5.1); one in
    IPv4 from another address is not forwarded (RFC 6275 §10.4.5: the tunnel's source must
    be the binding's care-of address)."""
    ha, lab = home_agent, home_agent.lab
    hoa = ha.fresh_hoa()
    own = str(lab.plan.mn_address4(FOREIGN_LINK))
    named = "192.168.77.5" if nat else own
    cn6 = str(lab.plan.cn.host6)
    cn = lab.socket("cn", socket.AF_INET6, socket.SOCK_DGRAM)
    cn.bind(("::", PORT))
    with Udp4Mn(ha) as mn, contextlib.closing(cn):
        ba = udp_ba(mn, ha, mn.bu(hoa, 1, LIFETIME, named), 1)
        try:
            if ba.ba_status >= 128:
                verdicts.inconclusive(f"the BU in UDP/IPv4 was refused (status {ba.ba_status})")
            spoofed = os.urandom(12)
            if not nat:  # from an address the binding does not hold: dropped
                forged = IPv6(src=hoa, dst=cn6) / UDP(sport=PORT, dport=PORT) / spoofed
                mn_link.send(IP(src=str(ipaddress.IPv4Address(own) - 1), dst=mn.ha4, proto=41)
                             / forged)  # fmt: skip
            payload = os.urandom(12)
            inner = IPv6(src=hoa, dst=cn6) / UDP(sport=PORT, dport=PORT) / payload
            if nat:
                mn.sock.sendto(bytes(inner), (mn.ha4, DSMIP_PORT))
            else:
                mn_link.send(IP(src=own, dst=mn.ha4, proto=41) / inner)
            cn.settimeout(ha.reaction_window)
            got = []
            with contextlib.suppress(TimeoutError, OSError):
                while (data := cn.recvfrom(65535))[0] != payload:
                    got.append(data)
                got.append(data)
            assert got and got[-1][0] == payload and got[-1][1][0] == hoa, (
                f"the MN's datagram from {hoa}, tunnelled to the HA "
                f"{'in UDP' if nat else 'in IPv4'}, did not reach the correspondent"
            )
            assert spoofed not in [d for d, _ in got], (
                "a datagram tunnelled in IPv4 from an address the binding does not hold was "
                "forwarded"
            )
        finally:
            mn.exchange(mn.bu(hoa, 2, 0, named), 2, ha.answer_within)


@pytest.mark.clause("DMM-HA-24", "DMM-HA-25", "RFC5555-5", "RFC5555-8")
@pytest.mark.parametrize("nat", [True, False], ids=["behind-a-nat", "no-nat"])
def test_ipv4_traffic_of_an_mn_in_an_ipv4_network(
    home_agent: HomeAgentUnderTest, mn_link: Link, nat: bool
) -> None:
    """A BU in UDP/IPv4 asking for an IPv4 home address: the correspondent's IPv4 datagram
    to it reaches the IPv4 care-of address in UDP (behind a NAT) or inside IPv4 (§4.5.1:
    IPv4, [UDP], IPv4), and the MN's IPv4 datagram tunnelled back the same way reaches the
    correspondent."""
    ha, lab = home_agent, home_agent.lab
    hoa = ha.fresh_hoa()
    own = str(lab.plan.mn_address4(FOREIGN_LINK))
    named = "192.168.77.5" if nat else own
    with Udp4Mn(ha) as mn, Correspondent4(ha) as cn:
        bu = bytes(ha.bu(hoa, 1, LIFETIME, (MIP6OptIPv4CareOfAddress(address=named),
                                            ipv4_hoa()), coa=hoa))  # fmt: skip
        ba = udp_ba(mn, ha, bu, 1)
        try:
            ack = ipv4_ack(ba)
            if ba.ba_status >= 128 or ack is None or not ack.accepted:
                verdicts.inconclusive(f"no IPv4 home address (BA {ba.ba_status}, {ack})")
            hoa4, payload = str(ack.address), os.urandom(12)
            mark = mn_link.mark()
            cn.send(hoa4, payload)
            if nat:
                assert mn.tunnelled(hoa4, payload, ha.reaction_window), (
                    f"the datagram to {hoa4} did not come in UDP from {mn.ha4} port {DSMIP_PORT}"
                )
            else:
                expect_in_time(mn_link, in_ipv4(mn.ha4, own, hoa4, payload),
                               ha.reaction_window, since=mark)  # fmt: skip
            back = os.urandom(12)
            inner = IP(src=hoa4, dst=cn.address) / UDP(sport=PORT, dport=PORT) / back
            if nat:
                mn.sock.sendto(bytes(inner), (mn.ha4, DSMIP_PORT))
            else:
                mn_link.send(IP(src=own, dst=mn.ha4, proto=4) / inner)
            got = cn.received(ha.reaction_window)
            assert (back, hoa4) in got, (
                f"the MN's IPv4 datagram from {hoa4}, tunnelled to the HA, did not reach the "
                f"correspondent (it got {len(got)})"
            )
        finally:
            mn.exchange(mn.bu(hoa, 2, 0, named), 2, ha.answer_within)


@pytest.mark.clause("DMM-HA-2", "DMM-HA-7")
@pytest.mark.interpretation("INT-21")
def test_dns_update_registers_the_ipv4_home_address_too(
    home_agent: HomeAgentUnderTest, mn_link: Link, ha_dns: LabDns, dns_link: Link
) -> None:
    """A BU with the DNS Update option and the IPv4 Home Address option (0.0.0.0): the HA
    puts the assigned IPv4 home address in the DNS as an A record of the MN's name beside
    its AAAA (draft §8: the MN's IPv4 home address in the DNS, done by the HA that updates
    it, RFC 5026 §6), and the deregistration removes it (draft §6)."""
    ha = home_agent
    ha.sut.features.require("dns_update", "the SUT home agent")
    ha_dns.healthy()
    hoa, fqdn = ha.fresh_hoa(), MN_FQDN + "."
    ba = answered(ha, mn_link, hoa, 1, LIFETIME, ipv4_hoa(), dns_option(fqdn))
    ack, answer = ipv4_ack(ba), dns_answer(ba)
    try:
        if ba.ba_status >= 128 or ack is None or not ack.accepted:
            verdicts.inconclusive(f"no IPv4 home address was assigned (BA {ba.ba_status}, {ack})")
        if answer is None or not answer.performed:
            verdicts.inconclusive(f"the DNS update was not performed: {answer}")
        held = ha_dns.a(fqdn)
        assert ack.address in held, (
            f"named holds A {sorted(map(str, held))} for {fqdn}, not the IPv4 home address "
            f"{ack.address}"
        )
        mark = dns_link.mark()
        answered(ha, mn_link, hoa, 2, 0)
        settled(dns_link, mark, ba_deadline(ha), until=lambda: ack.address not in ha_dns.a(fqdn))
        assert ack.address not in ha_dns.a(fqdn), (
            f"named still holds A {ack.address} for {fqdn} after the deregistration"
        )
    finally:
        with contextlib.suppress(ExpectationFailed, AssertionError):
            answered(ha, mn_link, hoa, 3, 0)
        ha_dns.forget(fqdn, hoa, *([str(ack.address)] if ack is not None else []))
