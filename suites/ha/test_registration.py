"""Home registration with the SUT home agent, judged on the wire (RFC 6275 §9.2, §9.5.1,
§10.3.1; RFC 4285 §5.1; draft §4.1 with docs/interpretations.md INT-6).

The tester is the mobile node on access link 2 (see conftest.py); each test uses a home
address of its own, so tests share no binding state and run in any order or worker.
"""

from __future__ import annotations

import contextlib
import socket
import time
from typing import Any

import pytest
from scapy.layers.inet import UDP
from scapy.layers.inet6 import IPv6, MIP6OptAltCoA
from scapy.layers.l2 import Ether

import vectors
from harness import verdicts
from harness.config import WireConfig
from harness.tester.conversation import (
    ExpectationFailed,
    Link,
    Predicate,
    from_src,
    inbound,
    ipv6_bytes,
    is_icmp6,
    is_mh,
    is_udp_to,
)
from harness.tester.fixtures import Captures
from harness.tester.ha_registration import (
    REQUESTED,
    dad_ns_bytes,
    echoed_timestamps,
    expect_ba_seq,
    expect_silence,
    for_hoa,
    is_dad_ns,
    message,
    needs_keys,
    no_binding_was_made,
    ntp,
    register_hoa,
    replay,
    vector_frame,
)
from harness.tester.home_agent import (
    FLAG_H,
    HOME_LINK,
    OTHER_COAS,
    HomeAgentUnderTest,
    expect_in_time,
)
from harness.tester.sources import Wire
from harness.wire import auth, compact
from harness.wire.mobility import MIP6OptMulticastState, MldAddressRecord
from harness.wire.numbers import MobOpt

GROUP, SOURCE = "ff3e::8000:41", "2001:db8:c2::10"  # a group no other test uses


@pytest.mark.clause(
    "DMM-HA-1", "DMM-INTRO-1", "RFC6275-HA-1", "RFC6275-HA-5", "RFC6275-HA-6", "RFC6275-HA-7"
)
def test_valid_home_registration_is_accepted(home_agent: HomeAgentUnderTest, mn_link: Link) -> None:
    """A first BU for a home address, any sequence number: BA status 0, same sequence
    number, a lifetime no longer than requested, back to the care-of address."""
    hoa, seq = home_agent.fresh_hoa(), 40000
    mn_link.send(home_agent.bu(hoa, seq, REQUESTED))
    ba = message(expect_ba_seq(home_agent, mn_link, seq))
    assert ba.body[6] == 0, f"BA status {ba.body[6]}, expected 0 (accepted)"
    assert ba.seq == seq
    assert 0 < ba.lifetime <= REQUESTED, f"lifetime {ba.lifetime} units, asked {REQUESTED}"
    assert ba.dst == home_agent.coa and ba.rh2_hoa == hoa, "BA not sent to CoA with RH2 HoA"
    assert ba.checksum_ok
    # RFC 6275 §10.3.1: "Regardless of the setting of the Acknowledge (A) bit".
    hoa, seq = home_agent.fresh_hoa(), 40100
    mn_link.send(home_agent.bu(hoa, seq, REQUESTED, flags=FLAG_H))
    try:
        ba = message(expect_ba_seq(home_agent, mn_link, seq))
    except ExpectationFailed:
        raise AssertionError("no BA for an accepted home registration with A = 0") from None
    assert ba.body[6] == 0, f"BA status {ba.body[6]} for a home registration with A = 0"


@pytest.mark.clause("RFC4285-1")
def test_ba_is_authenticated_like_the_bu(home_agent: HomeAgentUnderTest, mn_link: Link) -> None:
    """RFC 4285 §5.1: the HA answers an authenticated BU with an authenticated BA."""
    if home_agent.keys is None:
        pytest.skip("the profile has no [keys]: RFC 4285 is not configured")
    hoa, seq = home_agent.fresh_hoa(), 11
    mn_link.send(home_agent.bu(hoa, seq))
    pkt = expect_ba_seq(home_agent, mn_link, seq, 0)
    ba = message(pkt)
    assert any(o.otype == MobOpt.MESSAGE_AUTH for o in ba.options), "BA without MN-HA auth"
    raw = ipv6_bytes(pkt)
    assert raw is not None
    assert auth.verify(IPv6(raw), home_agent.keys.key), "BA authenticator wrong"


@pytest.mark.clause("RFC6275-HA-2", "RFC6275-MN-5")
def test_stale_sequence_number_is_refused_with_the_last_accepted(
    home_agent: HomeAgentUnderTest, mn_link: Link
) -> None:
    hoa = home_agent.fresh_hoa()
    register_hoa(home_agent, mn_link, hoa, 100)
    for stale in (100, 99, 100 + 32768):
        mn_link.send(home_agent.bu(hoa, stale))
        ba = message(expect_ba_seq(home_agent, mn_link, 100, 135))
        assert ba.seq == 100, f"stale seq {stale}: BA carries {ba.seq}, not the last accepted"


@pytest.mark.clause("RFC6275-HA-1", "RFC6275-HA-2")
def test_sequence_numbers_wrap_around_modulo_2_16(
    home_agent: HomeAgentUnderTest, mn_link: Link
) -> None:
    """RFC 6275 §9.5.1: sequence numbers compare modulo 2**16: after 65535, 0 is greater
    (accepted), and 65535 is then not greater than the last accepted 0 (135 carrying 0)."""
    hoa = home_agent.fresh_hoa()
    register_hoa(home_agent, mn_link, hoa, 65535)
    mn_link.send(home_agent.bu(hoa, 0))
    ba = message(
        mn_link.expect(inbound & is_mh("BA") & for_hoa(hoa), within=home_agent.answer_within)
    )
    assert (ba.body[6], ba.seq) == (0, 0), (
        f"BU seq 0 after 65535 got status {ba.body[6]} with seq {ba.seq}: 0 is greater modulo 2**16"
    )
    mn_link.send(home_agent.bu(hoa, 65535))
    ba = message(expect_ba_seq(home_agent, mn_link, 0, 135))
    assert ba.seq == 0, f"a stale 65535 after 0: BA carries {ba.seq}, not the last accepted 0"
    mn_link.send(home_agent.bu(hoa, 1, lifetime=0))
    with contextlib.suppress(ExpectationFailed):
        expect_ba_seq(home_agent, mn_link, 1)


@pytest.mark.clause("RFC6275-HA-3")
def test_home_address_outside_the_prefix_is_refused(
    home_agent: HomeAgentUnderTest, mn_link: Link
) -> None:
    hoa = "2001:db8:3::1234"  # ar3's prefix, not the HA's
    mn_link.send(home_agent.bu(hoa, 5))
    expect_ba_seq(home_agent, mn_link, 5, 132)


@pytest.mark.clause("RFC4285-1")
def test_unauthenticated_bu_is_not_accepted(home_agent: HomeAgentUnderTest, mn_link: Link) -> None:
    """RFC 4285 §5.1.1: with an SA configured, a BU without the MN-HA authentication option
    is discarded (or refused); it never gets BA status 0."""
    if home_agent.keys is None:
        pytest.skip("the profile has no [keys]: RFC 4285 is not configured")
    hoa = home_agent.fresh_hoa()
    mark = mn_link.mark()
    mn_link.send(home_agent.bu(hoa, 7, sign=False))
    expect_silence(
        home_agent, mn_link, since=mark, answer=inbound & is_mh("BA", status=0) & for_hoa(hoa)
    )


@pytest.mark.clause("RFC4285-2")
def test_wrong_authenticator_gets_146(home_agent: HomeAgentUnderTest, mn_link: Link) -> None:
    if home_agent.keys is None:
        pytest.skip("the profile has no [keys]: RFC 4285 is not configured")
    hoa = home_agent.fresh_hoa()
    wrong = bytes(b ^ 0x5A for b in home_agent.keys.key)
    mn_link.send(home_agent.bu(hoa, 9, key=wrong))
    expect_ba_seq(home_agent, mn_link, 9, 146)


@pytest.mark.clause("RFC6275-BU-2")
def test_deregistration_gets_status_0_lifetime_0(
    home_agent: HomeAgentUnderTest, mn_link: Link
) -> None:
    hoa = home_agent.fresh_hoa()
    register_hoa(home_agent, mn_link, hoa, 20)
    mn_link.send(home_agent.bu(hoa, 21, lifetime=0))
    ba = message(expect_ba_seq(home_agent, mn_link, 21, 0))
    assert ba.lifetime == 0, f"deregistration answered with lifetime {ba.lifetime}"


@pytest.mark.clause("DMM-OPT-1", "DMM-OPT-3")
def test_multicast_state_is_echoed_in_the_ba(home_agent: HomeAgentUnderTest, mn_link: Link) -> None:
    """Draft §4.1 (INT-6): the BA carries the Multicast State option back, listing what
    the HA installed: here the INCLUDE (S, G) the BU reported."""
    hoa, seq = home_agent.fresh_hoa(), 30
    option = MIP6OptMulticastState(
        records=[MldAddressRecord(rtype=1, maddr=GROUP, sources=[SOURCE])]
    )
    mn_link.send(home_agent.bu(hoa, seq, options=(option,)))
    ba = message(expect_ba_seq(home_agent, mn_link, seq, 0))
    wire = WireConfig.from_env()
    states = [
        compact.parse_multicast_state(o.data)
        for o in ba.options
        if compact.is_multicast_state(o, wire)
    ]
    assert states, "the BA carries no Multicast State option"
    records = [r for s in states for r in s.records]
    assert any(r.maddr == GROUP and SOURCE in r.sources for r in records), (
        f"the echoed state {records} does not list ({SOURCE}, {GROUP})"
    )
    assert all(s.checksum_ok for s in states)


# --- The bidirectional tunnel (RFC 6275 §10.4.1, §10.4.5) ------------------------------------


@pytest.mark.clause("RFC6275-HA-9")
def test_packets_for_the_home_address_are_tunnelled_to_the_coa(
    home_agent: HomeAgentUnderTest, mn_link: Link
) -> None:
    """A correspondent's packet for a registered home address reaches the care-of address
    inside an IPv6-in-IPv6 tunnel from the home agent."""
    lab = home_agent.lab
    hoa = home_agent.fresh_hoa()
    register_hoa(home_agent, mn_link, hoa, 60)
    tunnelled = inbound & from_src(home_agent.address) & is_udp_to(hoa, 9999, tunnelled=True)
    with lab.socket("cn", socket.AF_INET6, socket.SOCK_DGRAM) as s:
        for _ in range(3):  # the first may wait for neighbour discovery on the way
            s.sendto(b"to the home address", (hoa, 9999))
            try:
                mn_link.expect(tunnelled, within=home_agent.answer_within / 2)
                return
            except ExpectationFailed:
                continue
    mn_link.expect(tunnelled, within=0.1)


@pytest.mark.clause("DMM-HA-1")
def test_reverse_tunnelled_packets_are_forwarded(
    home_agent: HomeAgentUnderTest, mn_link: Link, captures: Captures
) -> None:
    """RFC 6275 §10.4.5: a packet from the home address tunnelled from the registered
    care-of address to the home agent is decapsulated and forwarded to its destination."""
    lab = home_agent.lab
    hoa = home_agent.fresh_hoa()
    cn = str(lab.plan.cn.host6)
    register_hoa(home_agent, mn_link, hoa, 70)
    cn_link = captures.watch_node(lab, "cn", "eth0")
    packet = (
        IPv6(src=home_agent.coa, dst=home_agent.address)
        / IPv6(src=hoa, dst=cn)
        / UDP(sport=9997, dport=9998)
        / b"from the home address"
    )
    for _ in range(3):
        mn_link.send(packet)
        try:
            cn_link.expect(
                from_src(hoa) & is_udp_to(cn, 9998, tunnelled=False),
                within=home_agent.answer_within / 2,
            )
            return
        except ExpectationFailed:
            continue
    cn_link.expect(from_src(hoa) & is_udp_to(cn, 9998, tunnelled=False), within=0.1)


@pytest.mark.clause("RFC6275-HA-14")
def test_reverse_tunnelled_packets_from_the_wrong_pair_are_not_forwarded(
    home_agent: HomeAgentUnderTest, mn_link: Link, captures: Captures
) -> None:
    """RFC 6275 §10.4.5: the HA forwards a reverse-tunnelled packet only when the tunnel's
    source is the binding's care-of address (and, for it, the inner source the home
    address): a packet from the home address tunnelled from another of the tester's
    addresses, and one from an unregistered address tunnelled from the CoA, are not
    forwarded, while the same packet from the right pair is (the control, sent last)."""
    lab, ha = home_agent.lab, home_agent
    hoa, stranger = ha.fresh_hoa(), ha.fresh_hoa()
    cn = str(lab.plan.cn.host6)
    register_hoa(ha, mn_link, hoa, 75)
    cn_link = captures.watch_node(lab, "cn", "eth0")

    def tunnelled(outer: str, inner: str, port: int) -> Any:
        return (
            IPv6(src=outer, dst=ha.address)
            / IPv6(src=inner, dst=cn)
            / UDP(sport=9997, dport=port)
            / b"reverse tunnel check"
        )

    def arrives(port: int) -> Predicate:
        return is_udp_to(cn, port, tunnelled=False)

    try:
        # The control first, until the path to the CN is resolved.
        for _ in range(3):
            mn_link.send(tunnelled(ha.coa, hoa, 9990))
            try:
                cn_link.expect(from_src(hoa) & arrives(9990), within=home_agent.answer_within / 2)
                break
            except ExpectationFailed:
                continue
        else:
            verdicts.inconclusive("the correctly tunnelled packet never reached the CN")
        mark = cn_link.mark()
        mn_link.send(tunnelled(OTHER_COAS[3], hoa, 9991))  # outer source not the CoA
        mn_link.send(tunnelled(ha.coa, stranger, 9992))  # inner source not the home address
        mn_link.send(tunnelled(ha.coa, hoa, 9993))  # the control, after them
        expect_in_time(cn_link, from_src(hoa) & arrives(9993), ha.reaction_window, since=mark)
        cn_link.expect_none(arrives(9991) | arrives(9992), during=ha.reaction_window, since=mark)
    finally:
        mn_link.send(ha.bu(hoa, 76, lifetime=0))
        with contextlib.suppress(ExpectationFailed):
            expect_ba_seq(home_agent, mn_link, 76)


@pytest.mark.clause("DMM-HA-19", "RFC6275-HA-11")
def test_subscribed_multicast_data_is_tunnelled_to_the_coa(
    home_agent: HomeAgentUnderTest, mn_link: Link, wire: Wire
) -> None:
    """Draft §6: data for a group in the BU's Multicast State option, from a source its
    filter admits, reaches the CoA through the HA's tunnel; a group not in it does not,
    although its data (from a source the filter admits, on the HA's own link) is seen
    arriving at the HA, so that not forwarding it is the HA's doing."""
    group, other = "ff3e::8000:42", "ff3e::8000:43"  # groups no other test uses
    hoa, seq = home_agent.fresh_hoa(), 80
    option = MIP6OptMulticastState(
        records=[
            MldAddressRecord(rtype=1, maddr=group, sources=[wire.src.address, wire.cdn.address])
        ]
    )
    mn_link.send(home_agent.bu(hoa, seq, options=(option,)))
    expect_ba_seq(home_agent, mn_link, seq, 0)
    try:
        wire.expect_tunnelled(wire.src, home_agent.coa, group, "subscribed")
        wire.expect_not_tunnelled(wire.cdn, home_agent.coa, other, "not-subscribed")
    finally:  # leave the group again, and let its BA come before the next test's capture
        mn_link.send(home_agent.bu(hoa, seq + 1, lifetime=0))
        with contextlib.suppress(ExpectationFailed):
            expect_ba_seq(home_agent, mn_link, seq + 1)


@pytest.mark.clause("DMM-HA-12", "DMM-HA-19")
def test_a_group_left_in_a_newer_bu_is_no_longer_tunnelled(
    home_agent: HomeAgentUnderTest, mn_link: Link
) -> None:
    """INT-7: a refresh BU's Multicast State replaces the binding's state, so data for a group
    it no longer lists stops reaching the CoA (the group is still sent, and was tunnelled
    before, so its absence is the HA's doing)."""
    lab = home_agent.lab
    source = str(lab.plan.mcast_source.host6)
    group = "ff3e::8000:44"  # a group no other test uses
    hoa, seq = home_agent.fresh_hoa(), 90
    state = MIP6OptMulticastState(
        records=[MldAddressRecord(rtype=1, maddr=group, sources=[source])]
    )
    mn_link.send(home_agent.bu(hoa, seq, options=(state,)))
    expect_ba_seq(home_agent, mn_link, seq, 0)
    tunnelled = inbound & from_src(home_agent.address) & is_udp_to(group, 5004, tunnelled=True)
    try:
        with lab.socket("src", socket.AF_INET6, socket.SOCK_DGRAM) as sender:
            sender.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 16)
            sender.setsockopt(
                socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, lab.ifindex("src", "eth0")
            )
            for _ in range(20):  # until the joins have reached the core's proxy
                sender.sendto(b"subscribed", (group, 5004))
                try:
                    mn_link.expect(tunnelled, within=0.2)
                    break
                except ExpectationFailed:
                    continue
            else:
                verdicts.inconclusive(f"data for {group} never reached the CoA while subscribed")
            # The refresh lists no group any more (an option with zero records, INT-7).
            mn_link.send(home_agent.bu(hoa, seq + 1, options=(MIP6OptMulticastState(records=[]),)))
            expect_ba_seq(home_agent, mn_link, seq + 1, 0)
            after = mn_link.mark()
            for _ in range(5):
                sender.sendto(b"left", (group, 5004))
            mn_link.expect_none(tunnelled, during=0.5, since=after)
    finally:
        mn_link.send(home_agent.bu(hoa, seq + 2, lifetime=0))
        with contextlib.suppress(ExpectationFailed):
            expect_ba_seq(home_agent, mn_link, seq + 2)


# --- Deregistration, Reserved bits, care-of addresses (RFC 6275 §6.1.7, §10.3.2) -----------


@pytest.mark.clause("RFC6275-HA-8")
def test_deregistration_without_a_binding_gets_133_and_changes_nothing(
    home_agent: HomeAgentUnderTest, mn_link: Link
) -> None:
    """RFC 6275 §10.3.2: a deregistration (Lifetime 0) for a home address the HA has no
    binding for is rejected with status 133, and leaves nothing behind."""
    hoa = home_agent.fresh_hoa()
    mn_link.send(home_agent.bu(hoa, 500, lifetime=0))
    ba = message(expect_ba_seq(home_agent, mn_link, 500))
    assert ba.body[6] == 133, f"BA status {ba.body[6]}, expected 133 (not home agent for it)"
    no_binding_was_made(home_agent, mn_link, hoa, 10)


@pytest.mark.clause("RFC6275-BU-1")
def test_reserved_bits_of_a_bu_are_ignored(home_agent: HomeAgentUnderTest, mn_link: Link) -> None:
    """RFC 6275 §6.1.7: a BU whose Reserved bits are all set is accepted as without them."""
    hoa, seq = home_agent.fresh_hoa(), 41000
    mn_link.send(home_agent.bu(hoa, seq, REQUESTED, reserved=0x3F))
    ba = message(expect_ba_seq(home_agent, mn_link, seq))
    assert ba.body[6] == 0, f"BA status {ba.body[6]} for a BU with Reserved bits set"
    assert 0 < ba.lifetime <= REQUESTED and ba.rh2_hoa == hoa


# Care-of addresses that are not unicast routable (RFC 6275 §6.1.7), as Alternate CoA.
BAD_COAS = ("ff0e::db8:7", "fe80::db8:7", "::1", "::")


@pytest.mark.clause("RFC6275-BU-4")
def test_bu_for_a_care_of_address_not_unicast_routable_is_discarded(
    home_agent: HomeAgentUnderTest, mn_link: Link
) -> None:
    """RFC 6275 §6.1.7: a BU whose care-of address (Alternate Care-of Address option,
    §6.2.5) is multicast, link-local, loopback or unspecified is silently discarded: no
    answer, and no binding (a lower sequence number is a first registration after it)."""
    ha = home_agent
    hoas = [ha.fresh_hoa() for _ in BAD_COAS]
    mark = mn_link.mark()
    for hoa, bad in zip(hoas, BAD_COAS, strict=True):
        # Signed with the alternate CoA as care-of address (RFC 4285 §5.1), sent from ours.
        pkt = ha.bu(hoa, 1000, REQUESTED, (MIP6OptAltCoA(acoa=bad),), coa=bad)
        pkt[IPv6].src = ha.coa  # the MH checksum covers the home address, not this
        mn_link.send(IPv6(bytes(pkt)))
    expect_silence(ha, mn_link, since=mark)
    for n, hoa in enumerate(hoas):
        no_binding_was_made(ha, mn_link, hoa, 10 + n)


# --- Duplicate Address Detection for a new binding (RFC 6275 §10.3.1) ------------------------


@pytest.mark.clause("RFC6275-HA-4")
def test_dad_for_the_home_address_comes_before_the_ba(
    home_agent: HomeAgentUnderTest, mn_link: Link, captures: Captures
) -> None:
    """RFC 6275 §10.3.1: for a home address without a binding, the HA performs DAD on the
    home link (a Neighbor Solicitation from :: for it, RFC 4862 §5.4.2) before its BA."""
    ha = home_agent
    home = captures.watch_link(ha.lab, HOME_LINK)
    hoa, seq = ha.fresh_hoa(), 43
    start = home.mark()
    mn_link.send(ha.bu(hoa, seq, REQUESTED))
    ba = expect_ba_seq(home_agent, mn_link, seq, 0)
    ns = home.expect(is_dad_ns(hoa), within=ha.reaction_window, since=start)
    assert ns.time < ba.time, (
        f"the DAD NS for {hoa} came {ns.time - ba.time:.3f} s after the BA, not before it"
    )


@pytest.mark.clause("RFC6275-HA-4")
def test_home_address_in_use_on_the_home_link_gets_134(
    home_agent: HomeAgentUnderTest, mn_link: Link, captures: Captures
) -> None:
    """RFC 6275 §10.3.1: when another node answers the DAD for the home address (the tester,
    from the home link, with a Neighbor Advertisement to all nodes as RFC 4862 §5.4.3 has a
    defending node send it), the BA has status 134 (Duplicate Address Detection failed)."""
    from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr

    ha = home_agent
    home = captures.watch_link(ha.lab, HOME_LINK)
    hoa, seq = ha.fresh_hoa(), 44
    owner_mac = "02:db:80:00:00:44"  # the node that has the address already
    answer = bytes(
        Ether(src=owner_mac, dst="33:33:00:00:00:01")
        / IPv6(src=hoa, dst="ff02::1", hlim=255)
        / ICMPv6ND_NA(tgt=hoa, R=0, S=0, O=1)
        / ICMPv6NDOptDstLLAddr(lladdr=owner_mac)
    )
    wanted = dad_ns_bytes(hoa)
    answered: list[float] = []
    bridge = f"br{HOME_LINK}"
    with ha.lab.socket("sw", socket.AF_PACKET, socket.SOCK_RAW, 0) as sock:
        sock.bind((bridge, 0))

        def defend(frame: Any) -> None:  # on the capture thread: as soon as the NS is seen
            if not answered and wanted(frame.data):
                sock.send(answer)
                answered.append(time.time())

        unsubscribe = home.capture.subscribe(defend)
        try:
            mn_link.send(ha.bu(hoa, seq, REQUESTED))
            ba = expect_ba_seq(home_agent, mn_link, seq)
        finally:
            unsubscribe()
    status = message(ba).body[6]
    if status == 134:
        return
    assert answered, f"BA status {status} without a DAD Neighbor Solicitation for {hoa} first"
    if answered[0] >= ba.time:
        verdicts.inconclusive(
            f"the tester's Neighbor Advertisement left {answered[0] - ba.time:.3f} s after the "
            "BA arrived: too late to judge the HA's DAD"
        )
    raise AssertionError(f"BA status {status} although {hoa} was defended on the home link")


# --- Replay protection (RFC 4285 §6) --------------------------------------------------------


@pytest.mark.clause("RFC4285-5")
def test_replay_protection_option_is_echoed_in_the_ba(
    home_agent: HomeAgentUnderTest, mn_link: Link
) -> None:
    """RFC 4285 §6: a BU with the replay protection option gets a BA carrying the option:
    with a valid Timestamp, the Timestamp copied; with an invalid one (status 144), the
    BU's low-order 32 bits under the HA's own time of day."""
    needs_keys(home_agent)
    hoa, seq, stamp = home_agent.fresh_hoa(), 42, ntp(time.time())
    mn_link.send(home_agent.bu(hoa, seq, REQUESTED, (replay(stamp),)))
    pkt = expect_ba_seq(home_agent, mn_link, seq, 0)
    echoed = echoed_timestamps(pkt)
    assert echoed, "the BA carries no replay protection option"
    assert echoed == [stamp], f"Timestamp {[hex(e) for e in echoed]} is not the BU's {stamp:#x}"
    raw = ipv6_bytes(pkt)
    assert raw is not None and home_agent.keys is not None
    assert auth.verify(IPv6(raw), home_agent.keys.key), "BA authenticator wrong"
    stale = ntp(time.time() - 3600)
    mn_link.send(home_agent.bu(home_agent.fresh_hoa(), seq, REQUESTED, (replay(stale),)))
    echoed = echoed_timestamps(expect_ba_seq(home_agent, mn_link, seq, 144))
    assert len(echoed) == 1, "the BA of status 144 carries no replay protection option"
    assert echoed[0] & 0xFFFFFFFF == stale & 0xFFFFFFFF, "the low-order 32 bits are not the BU's"
    drift = (echoed[0] >> 32) - (ntp(time.time()) >> 32)
    assert abs(drift) <= 60, f"the high-order 32 bits are {drift} s off this host's time of day"


@pytest.mark.clause("RFC4285-6")
def test_invalid_timestamp_gets_144_and_no_binding(
    home_agent: HomeAgentUnderTest, mn_link: Link
) -> None:
    """RFC 4285 §6: a correctly authenticated BU whose Timestamp is an hour old gets status
    144 (MIPV6-ID-MISMATCH) and creates no binding; a Timestamp no greater than one accepted
    before (a replay, in an otherwise new BU) gets 144 too."""
    needs_keys(home_agent)
    hoa = home_agent.fresh_hoa()
    mn_link.send(home_agent.bu(hoa, 1000, REQUESTED, (replay(ntp(time.time() - 3600)),)))
    ba = message(expect_ba_seq(home_agent, mn_link, 1000))
    assert ba.body[6] == 144, f"a stale Timestamp got status {ba.body[6]}, expected 144"
    stamp = ntp(time.time())
    no_binding_was_made(home_agent, mn_link, hoa, 10, (replay(stamp),))
    mn_link.send(home_agent.bu(hoa, 11, REQUESTED, (replay(stamp),)))
    ba = message(expect_ba_seq(home_agent, mn_link, 11))
    assert ba.body[6] == 144, f"a replayed Timestamp got status {ba.body[6]}, expected 144"


# --- Malformed messages (vectors/malformed.json) --------------------------------------------

_CLAUSES = {
    "mh-checksum-wrong": ("RFC6275-MH-1",),
    "mh-truncated": ("DMM-HA-1",),
    "payload-proto-not-59": ("RFC6275-MH-3",),
    "unknown-mh-type": ("RFC6275-MH-2",),
    "be-header-len-too-short": ("RFC6275-MH-4",),
    "option-length-past-end": ("DMM-HA-1",),
    "option-truncated": ("DMM-HA-1",),
    "mcast-record-count-too-big": ("DMM-OPT-3",),
    "mcast-aux-overflow": ("DMM-OPT-3",),
    "mcast-unknown-record-type": ("DMM-OPT-3", "RFC3810-3"),
    "mcast-report-checksum-wrong": ("DMM-OPT-3", "RFC3810-5"),
    "igmp-unknown-record-type": ("DMM-OPT-3", "RFC3376-3"),
    "igmp-report-checksum-wrong": ("DMM-OPT-3", "RFC3376-4"),
    "bid-length-6": ("RFC5648-6",),
    "fid-too-short": ("RFC6089-7",),
    "ba-options-in-bu": ("RFC6275-BU-3", "RFC6275-OPT-2"),
}
# The IGMPv3 form of the option is the dual-stack HA's (draft §8): features "ipv4".
_FEATURES = {
    "bid-length-6": "mcoa",
    "fid-too-short": "flow_bindings",
    "igmp-unknown-record-type": "ipv4",
    "igmp-report-checksum-wrong": "ipv4",
}
# RFC 3810 §5.2.12, RFC 3376 §4.2.12: the records of a vector with a record of unknown type
# that a conformant HA installs (the record of unknown type ignored, the rest processed).
RECORDS_KEPT = {
    "mcast-unknown-record-type": ("ff0e::1234",),
    "igmp-unknown-record-type": ("239.1.2.3",),
}


def _params() -> list[Any]:
    return [
        pytest.param(v, id=v.name, marks=pytest.mark.clause(*_CLAUSES.get(v.name, ("DMM-HA-1",))))
        for v in vectors.malformed()
    ]


@pytest.mark.parametrize("vector", _params())
def test_malformed_message_gets_its_reaction(
    home_agent: HomeAgentUnderTest, mn_link: Link, vector: vectors.Vector
) -> None:
    """Each malformed vector gets exactly the reaction RFC 6275 §9.2 (and the RFC of the
    option) defines: silence, a Binding Error, an ICMP Parameter Problem, or a BA."""
    reaction = vector.expect
    feature = _FEATURES.get(vector.name)
    if feature is not None:
        home_agent.sut.features.require(feature, "the SUT home agent")
    router = str(home_agent.lab.plan.link(2).router6)
    raw = vector.raw
    kind = reaction["kind"]
    seq = None
    if kind == "binding-ack":
        seq = 50
        raw = home_agent.resign(raw, home_agent.fresh_hoa(), seq)
    mark = mn_link.mark()
    mn_link.send(vector_frame(mn_link, raw, router))
    if kind == "discard":
        expect_silence(home_agent, mn_link, since=mark)
    elif kind == "binding-error":
        pkt = mn_link.expect(inbound & is_mh("BE"), within=home_agent.answer_within)
        assert pkt is not None and message(pkt).body[6] == reaction["status"]
    elif kind == "icmp-parameter-problem":
        want = Predicate(
            lambda p: (
                p.haslayer("ICMPv6ParamProblem")
                and p["ICMPv6ParamProblem"].ptr == reaction["pointer"]
            ),
            f"pointer {reaction['pointer']}",
        )
        mn_link.expect(
            inbound & is_icmp6(type=4, code=reaction["status"]) & want,
            within=home_agent.answer_within,
        )
    else:
        assert seq is not None
        ba = message(expect_ba_seq(home_agent, mn_link, seq, reaction["status"]))
        if reaction.get("option_status", {}).get("FID") is not None:
            # RFC 6089 §5.3.5: the Flow Identification option copied with its Status
            want = reaction["option_status"]["FID"]
            got = [o.data[5] for o in ba.options if o.otype == MobOpt.FLOW_IDENTIFICATION]
            assert want in got, f"the BA's Flow Identification statuses {got}, expected {want}"
        kept = RECORDS_KEPT.get(vector.name)
        if kept is not None:
            wire = WireConfig.from_env()
            states = [
                compact.parse_report(o.data)
                for o in ba.options
                if compact.is_multicast_state(o, wire)
            ]
            groups = {r.maddr for st in states for r in st.records}
            if states and all(r.rtype in (1, 2) for st in states for r in st.records):
                assert groups == set(kept), (
                    f"the BA echoes {sorted(groups)}: RFC 3810 §5.2.12 (RFC 3376 §4.2.12) "
                    f"ignores the record of unknown type and processes the rest, {sorted(kept)}"
                )
            else:  # no echo, or a verbatim one (INT-6): it shows no installed state
                verdicts.inconclusive("the BA shows no installed state to judge (INT-6)")
        elif reaction.get("multicast_installed") is False:
            wire = WireConfig.from_env()
            echoed = [
                r
                for o in ba.options
                if compact.is_multicast_state(o, wire)
                for r in compact.parse_multicast_state(o.data).records
            ]
            assert not echoed, f"a malformed Multicast State option installed {echoed}"
    assert home_agent.sut.is_ready(), "the home agent is no longer running"
