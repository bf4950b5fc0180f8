"""One mobile node roaming a mobility world (harness/tester/world.py) across the access
links, for the interop suite and the handover machine: who plays which side (`Sides`), the
world with a home agent on every access router (`open_world`), and `Mobility`, a fresh
mobile node started on link 1, moved by the lab, watched on every access link, and put back
home at the end with its bindings ended. Also the applications' events the tests wait for.

Which side is the system under test: by default both are the bundled references. A run
with an external profile (`--sut PROFILE`) puts it on its side: an HA profile (`--sut-role
ha`, or a profile whose role is ha) on every access router with the reference MN; an MN
profile with the reference HAs.
"""

from __future__ import annotations

import contextlib
import ipaddress
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import verdicts
from harness.apps.control import App, AppExpectationFailed, Event
from harness.lab import netns
from harness.lab.fixtures import bring_up
from harness.lab.topology import Lab
from harness.pytest_plugin import RunOptions
from harness.sut.profile import load
from harness.tester.conversation import ExpectationFailed, Link, Predicate
from harness.tester.findings import Findings, Side
from harness.tester.packets import channel, general_query, packet6, report_naming, tunnelled
from harness.tester.wirelog import MhSeen, WireLog
from harness.tester.world import MCAST_PORT, MLD_TIMERS, MN_IFACE, World, mobility_lab
from harness.wire import ipv6

LINKS = (1, 2, 3)
HOME = 1  # the link every MN starts on
RATE = 20.0  # datagrams per second of each test source
# From a move (or a join) until the application has a datagram again: the MN's movement
# detection, its BU and the HA's BA, the HA's join upstream through the lab's MLD proxies.
DELIVERY = 4.0
SIGNALLING = 2.0  # from a move until its BU / BA is on the wire
SLACK = 0.3  # scheduling slack around the protocol's own timers
LIFETIME_UNIT = 4  # seconds per unit of the BU/BA Lifetime field (RFC 6275 §6.1.7)
# The next headers of an IPv6 header that may start a Mobility Header message.
MOBILITY_FIRST = (ipv6.ROUTING, ipv6.DSTOPTS, ipv6.MOBILITY)


@dataclass(frozen=True)
class Sides:
    """Who plays which role: "reference" or the path of a profile."""

    ha: str = "reference"
    mn: str = "reference"

    @property
    def mn_is_reference(self) -> bool:
        return self.mn == "reference"

    @property
    def sut(self) -> Side | None:
        """The side the SUT plays; None when both are the reference (both judged)."""
        if self.mn != "reference":
            return "mn"
        return "ha" if self.ha != "reference" else None

    def findings(self) -> Findings:
        return Findings(self.sut)

    def expect_of(
        self,
        about: Side,
        clause: str,
        link: Link,
        predicate: Predicate,
        within: float,
        *,
        since: int | None = None,
    ) -> Any:
        """`link.expect` of a packet that `about`'s behaviour must produce. When `about` is
        the reference peer of the SUT, its absence is not the SUT's fail: the test ends
        inconclusive, naming the peer's clause (role-true verdicts)."""
        __tracebackhide__ = True
        try:
            return link.expect(predicate, within, since=since)
        except AssertionError as exc:
            if Findings(self.sut).judges(about):
                raise
            verdicts.inconclusive(
                f"the reference {about.upper()} broke {clause}, so the SUT could not be "
                f"judged: {str(exc).splitlines()[0]}"
            )


def sides_of(options: RunOptions) -> Sides:
    if options.sut == "reference":
        return Sides()
    role = options.sut_role or load(options.sut).role
    return Sides(ha=options.sut) if role == "ha" else Sides(mn=options.sut)


def start_home_agents(
    world: World, sut: str, also: Callable[[World], object] | None = None
) -> None:
    """A home agent on every access router, started at once (and `also(world)` alongside,
    e.g. the mobile node). An external profile names one placement (e.g. ar1); here the
    same implementation runs on every router, so each copy is placed at its own."""
    world.start_home_agents(sut, LINKS, also)


@contextlib.contextmanager
def open_world(
    workdir: Path, sides: Sides, also: Callable[[World], object] | None = None
) -> Iterator[World]:
    """The lab for a real mobile node, its home agents and the correspondent's echo server
    (the mobile node itself is started by `Mobility`), and the lab's named when it can start.
    The lab's own Router Advertisements are paused while the home agents run: the MN hears
    theirs (RFC 6275 §7.1-7.4).
    `also(world)` runs while the home agents start. Ends as not-run where the lab cannot be
    built or the reference is not built."""
    from harness.tester.bootstrap import optional_dns_server

    lab = bring_up(mobility_lab())
    world = World(lab, workdir)
    try:
        with contextlib.ExitStack() as paused:
            # the DNS server the home agents update (draft §6): a BA never waits for a
            # server that is not there; without named the run goes on (no DNS checks here)
            paused.enter_context(optional_dns_server(lab))
            for i in LINKS:  # the home agents advertise their links themselves (draft §3)
                paused.enter_context(lab.advertiser_paused(i))
            start_home_agents(world, sides.ha, also)
            world.echo_server()
            try:
                yield world
            finally:
                world.close()
    finally:
        lab.down()


def air_mac(lab: Lab) -> str:
    """The hardware address of the MN's air interface, from its kernel."""
    from pyroute2 import IPRoute

    with netns.entered(lab.ns("mn")), IPRoute() as ipr:
        link = ipr.get_links(ipr.link_lookup(ifname=MN_IFACE)[0])[0]
        return str(link.get_attr("IFLA_ADDRESS")).lower()


def is_data(group: str, source: str | None = None) -> Callable[[Event], bool]:
    def test(e: Event) -> bool:
        return (
            e.get("event") == "data"
            and e.get("group") == group
            and (source is None or e.get("src") == source)
        )

    test.__name__ = f"a datagram of {group}" + (f" from {source}" if source else "")
    return test


def rtt_ok(e: Event) -> bool:
    return e.get("event") == "rtt" and bool(e.get("ok"))


rtt_ok.__name__ = "a round trip answered in time"


@dataclass
class Mobility:
    """One mobile node in a world: started on link 1, moved by the lab, watched on every
    access link (through `watch`), and put back home at the end."""

    world: World
    sides: Sides
    watch: Callable[[int], Link]
    links: dict[int, Link] = field(default_factory=dict)
    log: WireLog | None = None
    link: int = HOME
    addresses: dict[int, str] = field(default_factory=dict)  # link -> the MN's address there
    air_ifindex: int = 0
    mac: str = ""
    first_app: int = 0

    @property
    def lab(self) -> Lab:
        return self.world.lab

    @property
    def wire(self) -> WireLog:
        assert self.log is not None
        return self.log

    def ha(self, link: int) -> str:
        """The home agent of access link `link`: its access router's address."""
        return str(self.lab.plan.link(link).router6)

    def link_of(self, address: str) -> int | None:
        a = ipaddress.IPv6Address(address)
        return next((i for i in LINKS if a in self.lab.plan.link(i).prefix6), None)

    @property
    def time_scale(self) -> float:
        assert self.world.mn is not None
        return float(self.world.mn.timers.time_scale)

    def granted(self, units: int) -> float:
        """Real seconds of a binding lifetime of `units` (the MN's time scale)."""
        return units * LIFETIME_UNIT * self.time_scale

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        if self.lab.mn[MN_IFACE].link != HOME:
            self.world.move(HOME)
        self.links = {i: self.watch(i) for i in LINKS}
        self.log = WireLog(self.links)
        self.first_app = len(self.world.apps)
        if self.world.mn is None:  # (else started with the world)
            self.world.start_mobile_node(self.sides.mn)
        self.link = HOME
        self.addresses = {HOME: str(self.world.mn_address(HOME))}
        self.air_ifindex = self.lab.ifindex("mn", MN_IFACE)
        self.mac = air_mac(self.lab)

    def move(self, to: int) -> float:
        """Handover to link `to`; returns once the MN has its address there."""
        t = self.world.move(to)
        self.link = to
        self.addresses[to] = str(self.world.mn_address(to, within=SIGNALLING))
        return t

    def stop_apps(self) -> None:
        """Stop what this MN's test started (newest first); the module's apps stay."""
        mine = self.world.apps[self.first_app :]
        for a in reversed(mine):
            with contextlib.suppress(Exception):
                a.stop()
        del self.world.apps[self.first_app :]

    def open_bindings(self) -> dict[tuple[str, str], float]:
        """(HA, home address) -> expiry of each binding whose last BA accepted it."""
        self.wire.poll()
        last: dict[tuple[str, str], MhSeen] = {}
        for m in sorted(self.wire.bas(), key=lambda m: m.t):
            last[(m.src, m.hoa)] = m
        return {
            k: m.t + self.granted(m.lifetime)
            for k, m in last.items()
            if m.status < 128 and m.lifetime > 0
        }

    def settle(self) -> None:
        """Wait until no home agent holds a binding of this MN: each has been deregistered
        (a BA with lifetime 0, on whichever link it went) or has run out (the lifetime its
        last BA granted). Woken by the Mobility Header frames of every link, bounded by
        the longest lifetime left. The MN is home by then, and its sessions have ended."""
        mobility = threading.Event()

        def on_frame(frame: Any) -> None:
            data = frame.data
            if len(data) > 20 and data[12:14] == b"\x86\xdd" and data[20] in MOBILITY_FIRST:
                mobility.set()

        unsubscribe = [link.capture.subscribe(on_frame) for link in self.links.values()]
        deadline: float | None = None  # an MN that goes on refreshing is not waited for
        try:
            while True:
                mobility.clear()
                now = time.monotonic()
                left = {k: e for k, e in self.open_bindings().items() if e + SLACK > now}
                if not left:
                    return
                if deadline is None:
                    deadline = max(left.values()) + SLACK
                if now >= deadline:
                    return
                mobility.wait(min(max(left.values()) + SLACK, deadline) - now)
        finally:
            for stop in unsubscribe:
                stop()

    def close(self) -> None:
        """End of a test: its applications stop (sessions end), the MN goes home, the
        bindings end, the MN stops."""
        try:
            self.stop_apps()
            if self.lab.impairments:
                self.lab.clear_impairments()
            if self.world.mn is not None and self.log is not None and self.addresses:
                if self.link != HOME:
                    with contextlib.suppress(AssertionError):  # a test's verdict is made
                        self.move(HOME)
                self.settle()
        finally:
            self.world.stop_mobile_node()
            if self.lab.mn[MN_IFACE].link != HOME:
                self.world.move(HOME)
            self.link = HOME


def subscribes_on_air(m: Mobility, group: str, since: int) -> str | None:
    """Does the MN subscribe its air interface to `group` on the link it is on (since frame
    `since` of that link)? Watched until the link's querier has asked once (a General
    Query) and the Maximum Response Delay has passed, so that a report the kernel sends
    only in answer to a query is seen too. What it sent, or None."""
    link = m.links[m.link]
    named = report_naming(group, m.mac)
    interval = MLD_TIMERS.query_interval + MLD_TIMERS.query_response_interval + SLACK
    try:
        link.expect(general_query(), interval, since=since)
        link.expect_none(named, MLD_TIMERS.query_response_interval + SLACK, since=since)
    except ExpectationFailed as exc:
        if exc.what == str(named):
            return str(exc).splitlines()[0]
        return None  # no querier on the link: nothing asked, nothing to judge there
    return None


def delivered(m: Mobility, rx: App, pred: Callable[[Event], bool], what: str) -> Event:
    """`rx`'s datagram matching `pred` within DELIVERY. None coming while the lab's own
    multicast routing is broken (its proxy exited or raised) is the lab's failure: the test
    ends inconclusive, naming it. Otherwise the failure says what the lab's routers held
    for the group then, so that a reader sees where the datagrams stopped."""
    __tracebackhide__ = True
    try:
        return rx.wait_for(pred, DELIVERY, what)
    except AppExpectationFailed as exc:
        trouble = m.lab.mcast_trouble()
        if trouble is not None:
            verdicts.inconclusive(
                f"the lab's multicast routing failed, so {what} could not be judged: {trouble}"
            )
        raise AppExpectationFailed(f"{exc}\n{routers_picture(m.lab)}") from None


def routers_picture(lab: Lab) -> str:
    """The lab's routers' listener state and forwarding entries, one line per router."""
    try:
        state = lab.mcast_state()
    except Exception as exc:  # noqa: BLE001 - a picture for a failure message only
        return f"the lab's routers: no state ({exc})"
    lines = ["the lab's routers then:"]
    for node, st in sorted(state.items()):
        listeners = [
            f"{e['ifname']} {e['group']} from "
            + ("any" if e.get("any_source_for") else " ".join(sorted(e.get("sources", {}))))
            for e in st.get("listeners", [])
        ]
        mfc = [f"({e['source']},{e['group']}) {e['iif']}->{e['oifs']}" for e in st.get("mfc", [])]
        lines.append(
            f"  {node}: listeners {'; '.join(listeners) or '-'} | joined upstream "
            f"{' '.join(st.get('joined_upstream', [])) or '-'} | mfc {'; '.join(mfc) or '-'}"
        )
    return "\n".join(lines)


def through_tunnel(group: str, source: str, air: int) -> Callable[[Event], bool]:
    """A datagram of the group that the MN's kernel delivered from another interface than
    the air interface: through the tunnel."""
    base = is_data(group, source)

    def test(e: Event) -> bool:
        return base(e) and e.get("ifindex") != air

    test.__name__ = f"a datagram of {group} from {source} through the tunnel (not ifindex {air})"
    return test


def on_air(group: str, source: str, air: int) -> Callable[[Event], bool]:
    base = is_data(group, source)

    def test(e: Event) -> bool:
        return base(e) and e.get("ifindex") == air

    test.__name__ = f"a datagram of {group} from {source} on the air interface (ifindex {air})"
    return test


def check_group_away(
    m: Mobility,
    rx: App,
    group: str,
    source: str,
    joined_on: int,
    since: dict[int, int],
    moved_at: float,
    findings: Findings,
    ha_clause: str,
) -> None:
    """After a move away from `joined_on`: the group's data tunnelled by that link's HA to
    the care-of address, deliverable (the HA's behaviour, under `ha_clause`); the
    application receives it through the tunnel; the MN does not subscribe its air interface
    to the group on the new link, not even when the link's querier asks (the MN's, under
    DMM-OVW-31). Without the HA's tunnelled data the MN's part cannot be judged."""
    here, coa, ha = m.link, m.addresses[m.link], m.ha(joined_on)
    link = m.links[here]
    what = f"a datagram of ({source}, {group})"
    try:
        pkt = link.expect(
            tunnelled(ha, coa, channel(group, source, MCAST_PORT), what),
            DELIVERY,
            since=since[here],
        )
    except AssertionError as exc:
        findings.add(ha_clause, str(exc).splitlines()[0], about="ha")
        return
    outer = packet6(pkt)
    inner = outer.inner() if outer is not None else None
    if inner is not None and not inner.transport_checksum_ok():
        findings.add(
            ha_clause,
            f"on link {here}, {ha} tunnels {group}'s datagrams to {coa} with an inner UDP "
            "checksum that does not verify (RFC 8200 §8.1): the MN's kernel drops them",
            about="ha",
        )
        return
    rx.mark()
    try:
        rx.wait_for(through_tunnel(group, source, m.air_ifindex), DELIVERY)
    except AssertionError as exc:
        got = [e for e in rx.events() if is_data(group, source)(e) and e["mono"] >= moved_at]
        air = sum(1 for e in got if e.get("ifindex") == m.air_ifindex)
        findings.add(
            "DMM-OVW-31",
            about="mn",
            text=f"on link {here}, the application got no datagram of {group} through the tunnel "
            f"within {DELIVERY:g} s ({len(got)} since the move, {air} of them on the air "
            f"interface): {str(exc).splitlines()[0]}",
        )
    reported = subscribes_on_air(m, group, since[here])
    if reported is not None:
        findings.add(
            "DMM-OVW-31",
            about="mn",
            text=f"on link {here}, the MN's air interface asks for {group} though the group comes "
            f"through the tunnel (it is then delivered natively there too): {reported}",
        )
