"""Fixtures of the interop suite: a mobility world (the lab, a home agent on every access
router, the mobile node, an echo server at the correspondent node, real multicast sources)
and what the interop tests and the handover machine read off the wire.

Which side is the system under test: by default both are the bundled references. A run
with an external profile (`--sut PROFILE`) puts it on its side: an HA profile (`--sut-role
ha`, or a profile whose role is ha) on every access router with the reference MN; an MN
profile with the reference HAs. Everything is judged from outside: the access links'
wire, the MN's kernel (its addresses), and what the applications report.

The world is built once per module (`world`): lab, home agents, echo server. Each test gets
a fresh mobile node (`mobility`), which starts on access link 1 and is put back there at
the end, where the test's bindings are left to end (deregistered, or expired) before the
next test starts, so that no home agent still intercepts an address the next MN uses.
"""

from __future__ import annotations

import contextlib
import ipaddress
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness import verdicts
from harness.apps.control import Event
from harness.lab import netns
from harness.lab.fixtures import bring_up
from harness.lab.topology import Lab
from harness.pytest_plugin import RunOptions
from harness.sut import adapters
from harness.sut.profile import load
from harness.tester.conversation import ExpectationFailed, Link, Predicate, ipv6_bytes
from harness.tester.fixtures import Captures
from harness.tester.world import MLD_TIMERS, MN_IFACE, World, mobility_lab
from harness.wire import compact

LINKS = (1, 2, 3)
HOME = 1  # the link every MN starts on
RATE = 20.0  # datagrams per second of each test source
# From a move (or a join) until the application has a datagram again: the MN's movement
# detection, its BU and the HA's BA, the HA's join upstream through the lab's MLD proxies.
DELIVERY = 4.0
SIGNALLING = 2.0  # from a move until its BU / BA is on the wire
SLACK = 0.3  # scheduling slack around the protocol's own timers
LIFETIME_UNIT = 4  # seconds per unit of the BU/BA Lifetime field (RFC 6275 §6.1.7)
IPPROTO_HOPOPTS, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_IPV6 = 0, 6, 17, 41
IPPROTO_ROUTING, IPPROTO_FRAGMENT, IPPROTO_ICMPV6, IPPROTO_DSTOPTS = 43, 44, 58, 60
MLD_QUERY, MLDV2_REPORT = 130, 143
HAO_TYPE = 0xC9
FLAG_H = 0x100  # in MobilityMessage.bu_flags (RFC 6275 §6.1.7: A 0x200, H 0x100)


# ----------------------------------------------------------------------------- the sides


@dataclass(frozen=True)
class Sides:
    """Who plays which role: "reference" or the path of a profile."""

    ha: str = "reference"
    mn: str = "reference"

    @property
    def mn_is_reference(self) -> bool:
        return self.mn == "reference"


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
    (the mobile node itself is started by `Mobility`). The lab's own Router Advertisements
    are paused while the home agents run: the MN hears theirs (RFC 6275 §7.1-7.4).
    `also(world)` runs while the home agents start. Ends as not-run where the lab cannot be
    built or the reference is not built."""
    lab = bring_up(mobility_lab())
    world = World(lab, workdir)
    try:
        with contextlib.ExitStack() as paused:
            for i in LINKS:  # the home agents advertise their links themselves (draft §3)
                paused.enter_context(lab.advertiser_paused(i))
            try:
                start_home_agents(world, sides.ha, also)
            except adapters.SutNotBuilt as exc:
                verdicts.not_run(str(exc))
            world.echo_server()
            try:
                yield world
            finally:
                world.close()
    finally:
        lab.down()


# ----------------------------------------------------------------------------- the wire


@dataclass(frozen=True)
class Ip6:
    """An IPv6 packet as bytes: addresses, the upper layer after the extension headers,
    the Home Address option if any."""

    src: str
    dst: str
    proto: int  # the upper-layer protocol (41 for a tunnelled packet)
    payload: bytes  # the upper-layer header and data
    hoa: str | None

    def inner(self) -> Ip6 | None:
        return ip6(self.payload) if self.proto == IPPROTO_IPV6 else None

    def ports(self) -> tuple[int, int] | None:
        if self.proto in (IPPROTO_TCP, IPPROTO_UDP) and len(self.payload) >= 4:
            sport, dport = struct.unpack_from("!HH", self.payload)
            return int(sport), int(dport)
        return None

    def transport_checksum_ok(self) -> bool:
        """The UDP/TCP checksum verifies (RFC 8200 §8.1 pseudo-header), as the receiving
        kernel checks it."""
        if self.proto not in (IPPROTO_TCP, IPPROTO_UDP):
            return True
        pseudo = (
            ipaddress.IPv6Address(self.src).packed
            + ipaddress.IPv6Address(self.dst).packed
            + struct.pack("!IxxxB", len(self.payload), self.proto)
        )
        return compact.internet_checksum(pseudo + self.payload) == 0


def ip6(raw: bytes) -> Ip6 | None:
    """`raw` (an IPv6 packet) parsed, or None when it is not one."""
    if len(raw) < 40 or raw[0] >> 4 != 6:
        return None
    plen = struct.unpack_from("!H", raw, 4)[0]
    raw = raw[: 40 + plen]
    nh, pos, hoa = raw[6], 40, None
    while nh in (IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS, IPPROTO_FRAGMENT):
        if pos + 8 > len(raw):
            return None
        hlen = 8 if nh == IPPROTO_FRAGMENT else 8 * (raw[pos + 1] + 1)
        if nh == IPPROTO_DSTOPTS:
            opt = pos + 2
            while opt + 2 <= min(pos + hlen, len(raw)):
                if raw[opt] == 0:
                    opt += 1
                    continue
                if raw[opt] == HAO_TYPE and raw[opt + 1] == 16 and opt + 18 <= len(raw):
                    hoa = str(ipaddress.IPv6Address(raw[opt + 2 : opt + 18]))
                opt += 2 + raw[opt + 1]
        nh, pos = raw[pos], pos + hlen
    return Ip6(
        src=str(ipaddress.IPv6Address(raw[8:24])),
        dst=str(ipaddress.IPv6Address(raw[24:40])),
        proto=nh,
        payload=raw[pos:],
        hoa=hoa,
    )


def frame_ip6(data: bytes) -> Ip6 | None:
    """The IPv6 packet of an Ethernet frame (the lab's links carry no VLAN tags)."""
    if len(data) < 14 + 40 or data[12:14] != b"\x86\xdd":
        return None
    return ip6(data[14:])


def packet_ip6(pkt: Any) -> Ip6 | None:
    raw = ipv6_bytes(pkt)
    return ip6(raw) if raw is not None else None


def tunnelled(outer_src: str, outer_dst: str, inner: Callable[[Ip6], bool], what: str) -> Predicate:
    """An IPv6-in-IPv6 packet from `outer_src` to `outer_dst` whose inner packet passes
    `inner` (RFC 6275 §10.4.1, RFC 2473)."""
    a, b = str(ipaddress.IPv6Address(outer_src)), str(ipaddress.IPv6Address(outer_dst))

    def test(pkt: Any) -> bool:
        p = packet_ip6(pkt)
        if p is None or p.src != a or p.dst != b:
            return False
        q = p.inner()
        return q is not None and inner(q)

    return Predicate(test, f"{what} tunnelled from {a} to {b}")


def native(test_ip: Callable[[Ip6], bool], what: str) -> Predicate:
    def test(pkt: Any) -> bool:
        p = packet_ip6(pkt)
        return p is not None and p.proto != IPPROTO_IPV6 and test_ip(p)

    return Predicate(test, f"{what} (not tunnelled)")


def udp_to(group: str, port: int | None = None) -> Callable[[Ip6], bool]:
    g = str(ipaddress.IPv6Address(group))

    def test(p: Ip6) -> bool:
        ports = p.ports()
        return (
            p.proto == IPPROTO_UDP
            and p.dst == g
            and ports is not None
            and (port is None or ports[1] == port)
        )

    return test


def tcp_between(src: str, dst: str) -> Callable[[Ip6], bool]:
    s, d = str(ipaddress.IPv6Address(src)), str(ipaddress.IPv6Address(dst))
    return lambda p: p.proto == IPPROTO_TCP and p.src == s and p.dst == d


def mobility_header(pkt: Any) -> compact.MobilityMessage | None:
    """The Mobility Header message of a captured packet (compact codec), or None."""
    raw = ipv6_bytes(pkt)
    if raw is None or len(raw) < 40 or raw[6] not in (IPPROTO_DSTOPTS, IPPROTO_ROUTING, 135):
        return None
    try:
        return compact.parse_packet(raw)
    except (compact.Malformed, ValueError):
        return None


def binding_update(
    ha: str, hoa: str, coa: str | None = None, *, deregistration: bool = False
) -> Predicate:
    """A BU to `ha` for home address `hoa` (from care-of address `coa`): a registration
    (lifetime > 0, H flag set, RFC 6275 §11.7.1) or a deregistration (lifetime 0)."""
    ha, hoa = str(ipaddress.IPv6Address(ha)), str(ipaddress.IPv6Address(hoa))
    coa = str(ipaddress.IPv6Address(coa)) if coa is not None else None

    def test(pkt: Any) -> bool:
        msg = mobility_header(pkt)
        if msg is None or msg.mhtype != compact.MHType.BU or msg.dst != ha or msg.hoa != hoa:
            return False
        if coa is not None and (alternate_coa(msg) or msg.src) != coa:
            return False
        if deregistration:
            return msg.lifetime == 0
        return msg.lifetime > 0 and bool(msg.bu_flags & FLAG_H)

    kind = "deregistration" if deregistration else "home registration"
    return Predicate(
        test, f"a {kind} BU to {ha} for {hoa}" + (f" from care-of address {coa}" if coa else "")
    )


def binding_ack(ha: str, hoa: str, *, deregistration: bool = False) -> Predicate:
    """A BA from `ha` for `hoa` that accepts (status < 128) a registration (lifetime > 0)
    or a deregistration (lifetime 0)."""
    ha, hoa = str(ipaddress.IPv6Address(ha)), str(ipaddress.IPv6Address(hoa))

    def test(pkt: Any) -> bool:
        msg = mobility_header(pkt)
        return (
            msg is not None
            and msg.mhtype == compact.MHType.BA
            and msg.src == ha
            and (msg.rh2_hoa or msg.dst) == hoa
            and msg.ba_status < 128
            and (msg.lifetime == 0) == deregistration
        )

    kind = "a deregistration" if deregistration else "the binding"
    return Predicate(test, f"a BA from {ha} accepting {kind} of {hoa}")


def general_query() -> Predicate:
    """An MLD General Query (RFC 3810 §5.1.10: Multicast Address ::) on the link."""

    def test(pkt: Any) -> bool:
        p = packet_ip6(pkt)
        body = p.payload if p is not None else b""
        return (
            p is not None
            and p.proto == IPPROTO_ICMPV6
            and len(body) >= 24
            and body[0] == MLD_QUERY
            and body[8:24] == bytes(16)
        )

    return Predicate(test, "an MLD General Query")


def report_naming(group: str, mac: str) -> Predicate:
    """An MLDv2 Report sent from `mac` that asks for `group` (see `_mld_groups`)."""
    g = str(ipaddress.IPv6Address(group))

    def test(pkt: Any) -> bool:
        raw = bytes(getattr(pkt, "original", None) or pkt)  # the frame as captured
        if ":".join(f"{b:02x}" for b in raw[6:12]) != mac:
            return False
        p = frame_ip6(raw)
        groups = _mld_groups(p) if p is not None else None
        return bool(groups) and g in (groups or ())

    return Predicate(test, f"MLDv2 Report from {mac} asking for {g}")


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


# ----------------------------------------------------------------------------- wire log


@dataclass(frozen=True)
class MhSeen:
    """A BU or BA seen on an access link."""

    t: float  # capture time, time.monotonic()
    link: int
    kind: str  # "BU" or "BA"
    src: str
    dst: str
    hoa: str  # BU: the Home Address option; BA: the type 2 routing header (or dst at home)
    coa: str  # BU: the Alternate Care-of Address (else src); BA: dst
    seq: int
    lifetime: int  # 4 s units
    status: int  # BA status (0 for a BU)
    h_flag: bool = False


@dataclass(frozen=True)
class Report:
    """An MLDv2 Report seen on an access link: who sent it (Ethernet), which groups."""

    t: float
    link: int
    mac: str
    groups: tuple[str, ...]


def alternate_coa(msg: compact.MobilityMessage) -> str | None:
    """The Alternate Care-of Address option of a BU (RFC 6275 §6.2.5), if any."""
    for o in msg.options:
        if o.otype == 3 and len(o.data) == 16:  # Alternate Care-of Address (RFC 6275 §6.2.5)
            return str(ipaddress.IPv6Address(o.data))
    return None


def _mld_groups(p: Ip6) -> tuple[str, ...] | None:
    """The groups an MLDv2 Report asks to receive (RFC 3810 §5.2.12): records of EXCLUDE
    mode, and INCLUDE-mode or ALLOW records with sources; a leave (TO_IN {}, BLOCK) asks
    for nothing. None when `p` is no Report."""
    body = p.payload
    if p.proto != IPPROTO_ICMPV6 or len(body) < 8 or body[0] != MLDV2_REPORT:
        return None
    return tuple(
        r.maddr
        for r in compact.records_before_overrun(body)
        if r.rtype in (2, 4) or (r.rtype in (1, 3, 5) and r.sources)
    )


class WireLog:
    """What the access links carried, read incrementally from their captures: the BUs and
    BAs, and the MLD Reports. Frames are parsed from their bytes (no dissector), so a log
    over every frame of three links stays cheap."""

    def __init__(self, links: dict[int, Link]) -> None:
        self.links = links
        self._pos = {i: link.mark() for i, link in links.items()}  # from now on
        self.mh: list[MhSeen] = []
        self.reports: list[Report] = []

    def poll(self) -> None:
        for i, link in self.links.items():
            frames = link.frames(self._pos[i])
            if frames:
                self._pos[i] = frames[-1].seq + 1
            for f in frames:
                self._one(i, f.mono, f.data)

    def _one(self, link: int, t: float, data: bytes) -> None:
        p = frame_ip6(data)
        if p is None:
            return
        if p.proto == 135:
            try:
                msg = compact.parse_packet(data[14:])
            except (compact.Malformed, ValueError):
                return
            if msg.mhtype == compact.MHType.BU and msg.hoa is not None:
                self.mh.append(
                    MhSeen(
                        t, link, "BU", msg.src, msg.dst, msg.hoa, alternate_coa(msg) or msg.src,
                        msg.seq, msg.lifetime, 0, bool(msg.bu_flags & FLAG_H),
                    )
                )  # fmt: skip
            elif msg.mhtype == compact.MHType.BA:
                self.mh.append(
                    MhSeen(
                        t, link, "BA", msg.src, msg.dst, msg.rh2_hoa or msg.dst, msg.dst,
                        msg.seq, msg.lifetime, msg.ba_status,
                    )
                )  # fmt: skip
            return
        if p.proto == IPPROTO_IPV6:
            return  # tunnelled: not the MN's own signalling
        groups = _mld_groups(p)
        if groups is not None:
            mac = ":".join(f"{b:02x}" for b in data[6:12])
            self.reports.append(Report(t, link, mac, groups))

    def bus(self, since: float = 0.0) -> list[MhSeen]:
        return [m for m in self.mh if m.kind == "BU" and m.t >= since]

    def bas(self, since: float = 0.0) -> list[MhSeen]:
        return [m for m in self.mh if m.kind == "BA" and m.t >= since]


# ----------------------------------------------------------------------------- the MN


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
            try:
                self.world.start_mobile_node(self.sides.mn)
            except adapters.SutNotBuilt as exc:
                verdicts.not_run(str(exc))
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
            if len(data) > 20 and data[12:14] == b"\x86\xdd" and data[20] in (43, 60, 135):
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


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def sides(run_options: RunOptions) -> Sides:
    return sides_of(run_options)


@pytest.fixture(scope="module")
def world(sides: Sides, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The module's lab with its home agents and the CN's echo server."""
    with open_world(tmp_path_factory.mktemp("interop"), sides) as w:
        yield w


@pytest.fixture
def mobility(world: World, sides: Sides, captures: Captures) -> Iterator[Mobility]:
    """A fresh mobile node on link 1 for this test, every access link captured (pcaps in
    the test's report entry); home again and without bindings afterwards."""
    m = Mobility(world, sides, lambda i: captures.watch_link(world.lab, i))
    try:
        m.start()
        yield m
    finally:
        m.close()


__all__ = [
    "DELIVERY",
    "HOME",
    "LINKS",
    "RATE",
    "SIGNALLING",
    "SLACK",
    "Ip6",
    "MhSeen",
    "Mobility",
    "Report",
    "Sides",
    "WireLog",
    "alternate_coa",
    "binding_ack",
    "binding_update",
    "ip6",
    "is_data",
    "mobility_header",
    "native",
    "open_world",
    "packet_ip6",
    "rtt_ok",
    "sides_of",
    "subscribes_on_air",
    "start_home_agents",
    "tcp_between",
    "tunnelled",
    "udp_to",
]
