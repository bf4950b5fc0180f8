"""Interop: a real mobile node, real home agents on three access routers, real applications.

Reference MN + reference HAs by default, or an external profile on its side (conftest.py).
The applications are ordinary programs in the MN's namespace: a multicast receiver (a
plain socket that joined a group on the air interface), a TCP session with the
correspondent node; the sources are real senders behind the core ("src") and on access
link 1 (the local CDN host, draft §1). The MN is moved between the access links by the
lab; what is judged is what the applications get and what the links carry:

* the application keeps receiving after each move, and it receives the group through
  the MN's tunnel, not by a subscription of the MN's air interface on the new link
  (draft §3 last paragraph: DMM-OVW-31);
* on the wire, the group's data reaches the MN encapsulated by the home agent of the link
  where the group was joined, outer source = that access router, outer destination = the
  care-of address, and deliverable (a valid inner checksum: the MN's kernel verifies it)
  (draft §3, §6; RFC 6275 §10.4.1-2);
* the TCP session survives every move: the CN's segments to the old address come through
  that link's HA (DMM-OVW-8), the MN's own go back through it or carry the Home Address
  option (DMM-OVW-9, OPEN-2);
* back home, the group comes natively again, once the MN has deregistered, and nothing
  arrived twice on the way;
* two bindings at two home agents at once (draft §1: DMM-INTRO-2);
* a binding whose session (or last group) ended is deregistered, also when the MN moves
  on before the deregistration could complete (draft §7 MAY: DMM-MN-4, claimed by the
  profile's `deregistration` feature).

Checks of different clauses in one scenario are collected (`Findings`) so that a failure
names every clause that went wrong, not only the first.

Role-true verdicts: every check says whose behaviour it judges (`about="ha"` / `"mn"`,
`Sides.expect_of`). The clauses of the HA's behaviour are marked `judged="ha"`, those of
the MN's `judged="mn"` (suites/interop/conftest.py drops the other side's markers in a run
against one SUT), and a check of the reference peer that fails makes the test inconclusive,
never a fail of the SUT. With both sides the reference, both are judged.
"""

from __future__ import annotations

import pytest

from harness import verdicts
from harness.apps.control import duplicates
from harness.tester.packets import (
    alternate_coa,
    binding_ack,
    binding_update,
    mobility_header,
    native,
    tcp_between,
    tunnelled,
    udp_to,
    with_hoa,
)
from harness.tester.roaming import (
    DELIVERY,
    HOME,
    RATE,
    SIGNALLING,
    Mobility,
    check_group_away,
    delivered,
    is_data,
    on_air,
    rtt_ok,
)
from harness.tester.world import MCAST_PORT, World


@pytest.mark.clause("DMM-OVW-31", "DMM-OVW-8", "DMM-OVW-9", judged="mn")
@pytest.mark.clause("DMM-OVW-28", "RFC6275-HA-11", "DMM-OVW-8", judged="ha")
def test_application_and_session_survive_moves_through_three_links(
    mobility: Mobility, world: World
) -> None:
    m, plan = mobility, world.lab.plan
    group, source = str(plan.ssm_group6), world.source_address("src")
    cn, home, ar1 = str(plan.cn.host6), m.addresses[HOME], m.ha(HOME)
    world.source("src", group, rate=RATE)
    rx = world.receiver(group, source)
    session = world.session()
    delivered(m, rx, is_data(group, source), "the first datagram, on link 1")
    session.wait_for(rtt_ok, DELIVERY)
    findings = m.sides.findings()

    for to in (2, 3):
        since = {i: link.mark() for i, link in m.links.items()}
        moved_at = m.move(to)
        coa, link = m.addresses[to], m.links[to]
        check_group_away(m, rx, group, source, HOME, since, moved_at, findings, "DMM-OVW-28")
        try:  # the HA tunnels the CN's segments to the care-of address
            link.expect(
                tunnelled(ar1, coa, tcp_between(cn, home), "a TCP segment from the CN to " + home),
                DELIVERY,
                since=since[to],
            )
        except AssertionError as exc:
            findings.add("DMM-OVW-8", str(exc).splitlines()[0], about="ha")
            continue
        session.mark()
        try:  # the MN takes them from the tunnel and its session goes on
            session.wait_for(rtt_ok, DELIVERY, f"a round trip after the move to link {to}")
        except AssertionError as exc:
            findings.add("DMM-OVW-8", str(exc).splitlines()[0], about="mn")
        with_option = with_hoa(tcp_between(coa, cn), home)
        upstream = tunnelled(coa, ar1, tcp_between(home, cn), "a TCP segment to the CN") | (
            native(with_option, f"a TCP segment from {coa} with Home Address option {home}")
        )
        try:
            link.expect(upstream, DELIVERY, since=since[to])
        except AssertionError as exc:
            findings.add("DMM-OVW-9", str(exc).splitlines()[0], about="mn")

    since = {i: link.mark() for i, link in m.links.items()}
    m.move(HOME)
    ba = binding_ack(ar1, home, deregistration=True)
    m.sides.expect_of("ha", "RFC6275-BU-2", m.links[HOME], ba, SIGNALLING, since=since[1])
    m.links[HOME].expect(
        native(udp_to(group, MCAST_PORT), f"a datagram of {group}"), DELIVERY, since=since[1]
    )
    rx.mark()
    try:
        rx.wait_for(on_air(group, source, m.air_ifindex), DELIVERY, "a datagram back home")
    except AssertionError as exc:
        findings.add("DMM-OVW-31", str(exc).splitlines()[0], about="mn")
    session.mark()
    session.wait_for(rtt_ok, DELIVERY, "a round trip back home")
    dups = duplicates(rx.events())
    if dups:
        findings.add(
            "DMM-OVW-31",
            f"the application received {len(dups)} datagrams of {group} more than once "
            "(through the tunnel and natively)",
            about="mn",
        )
    findings.check()


@pytest.mark.clause("DMM-INTRO-2", "DMM-OVW-5", "DMM-OVW-6", judged="mn")
@pytest.mark.clause("DMM-INTRO-2", judged="ha")
def test_two_home_agents_tunnel_to_the_mn_at_once(mobility: Mobility, world: World) -> None:
    """The MN's part: a BU to each previous HA, both sessions go on. The HAs' part: each
    accepts and tunnels its session's segments (a reference HA that does not makes the
    MN's verdict inconclusive)."""
    m, plan = mobility, world.lab.plan
    cn = str(plan.cn.host6)
    first = world.session()
    first.wait_for(rtt_ok, DELIVERY)
    a1 = str(first.ready["local"]) if first.ready else m.addresses[1]

    since = {i: link.mark() for i, link in m.links.items()}
    m.move(2)
    a2 = m.addresses[2]
    m.links[2].expect(binding_update(m.ha(1), a1, a2), SIGNALLING, since=since[2])
    m.sides.expect_of(
        "ha", "DMM-INTRO-2", m.links[2], binding_ack(m.ha(1), a1), SIGNALLING, since=since[2]
    )
    first.mark()
    first.wait_for(rtt_ok, DELIVERY, "a round trip of the first session on link 2")
    second = world.session()
    second.wait_for(rtt_ok, DELIVERY)
    local = str(second.ready["local"]) if second.ready else ""
    if m.link_of(local) != 2:
        verdicts.inconclusive(
            f"the session started on link 2 uses {local}, not an address of link 2 "
            "(DMM-OVW-14): no second home agent to register with"
        )

    since = {i: link.mark() for i, link in m.links.items()}
    m.move(3)
    a3, link = m.addresses[3], m.links[3]
    for ha, hoa in ((m.ha(1), a1), (m.ha(2), local)):
        link.expect(binding_update(ha, hoa, a3), SIGNALLING, since=since[3])
        ack = binding_ack(ha, hoa)
        m.sides.expect_of("ha", "DMM-INTRO-2", link, ack, SIGNALLING, since=since[3])
    # both tunnels carry their session's segments in the same stretch of time
    mark = link.mark()
    for s in (first, second):
        s.mark()
        s.wait_for(rtt_ok, DELIVERY)
    for ha, hoa in ((m.ha(1), a1), (m.ha(2), local)):
        segment = tunnelled(ha, a3, tcp_between(cn, hoa), f"a TCP segment from the CN to {hoa}")
        m.sides.expect_of("ha", "DMM-INTRO-2", link, segment, DELIVERY, since=mark)


@pytest.mark.clause("DMM-OVW-31", judged="mn")
@pytest.mark.clause("DMM-HA-19", judged="ha")
def test_local_cdn_group_follows_the_mn(mobility: Mobility, world: World) -> None:
    """Draft §1: a group of the local CDN on link 1 keeps reaching the application after
    the MN has moved on, tunnelled by the HA of the CDN's link (the CDN is on the HA's
    own link: its data reaches the HA's access interface, not its uplink)."""
    m, plan = mobility, world.lab.plan
    group, source = str(plan.ssm_group6), world.source_address("cdn")
    world.source("cdn", group, rate=RATE)
    rx = world.receiver(group, source)
    delivered(m, rx, is_data(group, source), "the first datagram from the CDN")
    findings = m.sides.findings()
    for to in (2, 3):
        since = {i: link.mark() for i, link in m.links.items()}
        moved_at = m.move(to)
        check_group_away(m, rx, group, source, HOME, since, moved_at, findings, "DMM-HA-19")
    findings.check()


@pytest.mark.clause("DMM-MN-4")
def test_binding_of_an_ended_session_is_deregistered(mobility: Mobility, world: World) -> None:
    m = mobility
    session = world.session()
    session.wait_for(rtt_ok, DELIVERY)
    hoa = str(session.ready["local"]) if session.ready else m.addresses[HOME]
    since = {i: link.mark() for i, link in m.links.items()}
    m.move(2)
    link = m.links[2]
    m.sides.expect_of(
        "ha", "RFC6275-HA-6", link, binding_ack(m.ha(HOME), hoa), SIGNALLING, since=since[2]
    )
    session.mark()
    session.wait_for(rtt_ok, DELIVERY, "a round trip through the tunnel")
    mark = link.mark()
    session.send("close")
    session.wait_for("closed", DELIVERY)
    try:
        link.expect(binding_update(m.ha(HOME), hoa, deregistration=True), SIGNALLING, since=mark)
    except AssertionError:
        verdicts.inconclusive("the MN kept its binding after the session ended (draft §7: MAY)")
    ack = binding_ack(m.ha(HOME), hoa, deregistration=True)
    m.sides.expect_of("ha", "RFC6275-BU-2", link, ack, SIGNALLING, since=mark)


@pytest.mark.clause("DMM-MN-4")
def test_pending_deregistration_follows_the_mn_to_the_next_link(
    mobility: Mobility, world: World
) -> None:
    """The last group of link 1 is left while the MN is on link 2, where nothing gets
    through (the link drops every frame), so the deregistration cannot complete there; the
    MN then moves to link 3. A deregistration it goes on with must come from link 3, with
    its care-of address there (RFC 6275 §11.7.1: the care-of address is the BU's source; a
    BU from an address the MN has left draws a BA that never reaches it, and the
    deregistration never completes)."""
    m, plan = mobility, world.lab.plan
    group, source = str(plan.ssm_group6), world.source_address("src")
    world.source("src", group, rate=RATE)
    rx = world.receiver(group, source)
    delivered(m, rx, is_data(group, source), "the first datagram, on link 1")
    home, ha = m.addresses[HOME], m.ha(HOME)
    since = {i: link.mark() for i, link in m.links.items()}
    m.move(2)
    try:
        m.links[2].expect(binding_ack(ha, home), SIGNALLING, since=since[2])
    except AssertionError as exc:  # no BA: the MN made no binding, or the HA did not answer
        verdicts.inconclusive(
            "the MN made no binding for a link left with only a group (OPEN-15): "
            + str(exc).splitlines()[0]
        )
    world.lab.impair(2, loss=1.0)
    rx.send(f"leave {group}")
    rx.wait_for("left", DELIVERY)
    mark = m.links[3].mark()
    m.move(3)
    coa, link = m.addresses[3], m.links[3]
    try:
        pkt = link.expect(binding_update(ha, home, deregistration=True), SIGNALLING, since=mark)
    except AssertionError:
        verdicts.inconclusive("the MN does not deregister a binding left idle (draft §7: MAY)")
    msg = mobility_header(pkt)
    assert msg is not None
    used = {msg.src, alternate_coa(msg) or msg.src}
    assert used == {coa}, (
        f"on link 3 the MN deregisters {home} at {ha} from {sorted(used)}, not from its "
        f"address on link 3 ({coa}): the BA goes to a link the MN has left"
    )
    ack = binding_ack(ha, home, deregistration=True)
    m.sides.expect_of("ha", "RFC6275-BU-2", link, ack, SIGNALLING, since=mark)
