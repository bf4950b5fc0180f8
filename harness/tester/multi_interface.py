"""The tester around a mobile node with a second interface (draft §7.1, RFC 5648, RFC 6089):
the lab adds the interface while the MN uses a home agent, and the BUs that follow are read
back: their Binding Identifier options with the compact codec, their Flow Identification
options with the scapy layers (the tester's own opinion of the RFC 6089 format).

The MN under test is started with both interface names (the second does not exist yet) and
the flow policy `FLOWS`: what the tester asks it to move, checked on the wire afterwards.
"""

from __future__ import annotations

import contextlib
import ipaddress
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

from scapy.layers.inet import UDP
from scapy.layers.inet6 import IPv6

from harness.apps.control import App, AppExpectationFailed, Event
from harness.lab.nodes import Unreachable
from harness.lab.topology import LabError
from harness.tester.conversation import Link, Predicate, mobility_message
from harness.tester.fixtures import Captures
from harness.tester.flows import FLAG_O, PORT_BASE
from harness.tester.mobile_node import (
    ALT_COA,
    MobileNodeUnderTest,
    alt_coa,
    ba_for,
    bu_from_mn,
    expect_latest_ba,
    in_time,
    multicast_state,
    options_of,
    session_then_move,
    tunnelled_from,
)
from harness.tester.world import CN_PORT, MN_IFACE
from harness.verdicts import inconclusive, not_applicable, not_run
from harness.wire import compact
from harness.wire.mobility import (
    FIDSubOptBindingReference,
    FIDSubOptTrafficSelector,
    MIP6OptFlowIdentification,
)
from harness.wire.numbers import MobOpt

SECOND_IFACE = "mn1"
SECOND_LINK = 3  # the access link the lab attaches the second interface to
FIRST_VISITED = 2  # where the first interface moves, so that a home agent is in use
# the flows the MN is asked to bind (RFC 6089): one to each interface, by the
# correspondent's port (INT-20)
FLOW_PORTS = {SECOND_IFACE: PORT_BASE + 1, MN_IFACE: PORT_BASE + 2}
FLOWS = tuple(f"{iface}={port}" for iface, port in FLOW_PORTS.items())
# the same flows, each moved to the other interface (a command while the MN runs)
MOVED_FLOW_PORTS = {MN_IFACE: FLOW_PORTS[SECOND_IFACE], SECOND_IFACE: FLOW_PORTS[MN_IFACE]}
MOVED_FLOWS = tuple(f"{iface}={port}" for iface, port in MOVED_FLOW_PORTS.items())


@dataclass(frozen=True)
class Bid:
    """A BID option as the BU carries it (RFC 5648 §4.3, RFC 6089 §4.1)."""

    bid: int
    bid_pri: int
    length: int
    coa: str | None


@dataclass(frozen=True)
class FlowOption:
    """A Flow Identification option (RFC 6089 §4.2) as the tester reads it."""

    fid: int
    fid_pri: int
    bids: tuple[int, ...] | None  # None: no Binding Reference sub-option
    sports: tuple[int | None, int | None] | None  # the selector's source ports; None: none


def bids_of(msg: compact.MobilityMessage) -> list[Bid]:
    out = []
    for o in options_of(msg):
        if o.otype != MobOpt.BINDING_IDENTIFIER:
            continue
        if len(o.data) not in (4, 8, 20):
            out.append(Bid(-1, -1, len(o.data), None))
            continue
        ident = compact.parse_binding_identifier(o.data)
        out.append(Bid(ident.bid, ident.bid_pri, len(o.data), ident.coa))
    return out


def flows_of(msg: compact.MobilityMessage) -> list[FlowOption]:
    out = []
    for o in options_of(msg):
        if o.otype != MobOpt.FLOW_IDENTIFICATION:
            continue
        opt = MIP6OptFlowIdentification(bytes([o.otype, len(o.data)]) + o.data)
        bids: tuple[int, ...] | None = None
        sports: tuple[int | None, int | None] | None = None
        for sub in opt.suboptions:
            if isinstance(sub, FIDSubOptBindingReference):
                bids = tuple(sub.bids)
            elif isinstance(sub, FIDSubOptTrafficSelector) and sub.selector:
                sel: Any = sub.selector[0]
                sports = (getattr(sel, "start_sport", None), getattr(sel, "end_sport", None))
        out.append(FlowOption(opt.fid, opt.fid_pri, bids, sports))
    return out


def has_alt_coa(msg: compact.MobilityMessage) -> bool:
    return any(o.otype == ALT_COA for o in options_of(msg))


def overwrite_flag(msg: compact.MobilityMessage) -> bool:
    return bool(msg.bu_flags & FLAG_O)


def bu_with_bids(to: str, hoa: str) -> Predicate:
    """A BU from the MN to `to` for `hoa` that carries at least one BID option."""

    def test(pkt: Any) -> bool:
        msg = mobility_message(pkt)
        return (
            msg is not None
            and msg.mhtype == 5
            and msg.dst == to
            and msg.hoa == hoa
            and bool(bids_of(msg))
        )

    return Predicate(test, f"a BU to {to} for {hoa} with Binding Identifier options")


@dataclass
class SecondInterface:
    """What the tester saw: the first registration (one interface), the BU that followed
    the second interface, and the care-of addresses of both interfaces."""

    first: compact.MobilityMessage
    bu: compact.MobilityMessage
    coa: dict[str, str]  # interface -> its care-of address


def second_interface_comes_up(mn: MobileNodeUnderTest) -> SecondInterface:
    """A session from link 1, the first interface to link 2 and its registration with the
    home agent of link 1 (acknowledged: a home agent is in use, draft §7.1), then the lab
    adds the second interface on link 3: the MN's next BU to that home agent, which must
    carry BID options (an MN that sends none fails the caller's assertions, not here)."""
    session_then_move(mn, FIRST_VISITED)
    ha = mn.ha_address(1)
    first = mn.expect_bu(to=ha)
    try:
        mn.link.expect(ba_for(first.seq), mn.deadlines.ba, "the HA's BA")
    except AssertionError:
        inconclusive("the reference HA did not acknowledge the first registration")
    coa0 = str(mn.world.mn_address(FIRST_VISITED))
    bu = _next_bu(
        mn,
        lambda: mn.lab.attach_new(SECOND_IFACE, SECOND_LINK),
        bu_with_bids(ha, str(mn.home)),
        f"a BU with BID options to {ha} after {SECOND_IFACE} came up on link {SECOND_LINK}",
    )
    coa1 = second_address(mn, 0.0)
    return SecondInterface(first, bu, {MN_IFACE: coa0, SECOND_IFACE: coa1})


def second_interface_lost(
    mn: MobileNodeUnderTest, seen: SecondInterface
) -> compact.MobilityMessage:
    """After the BA to the BU of both interfaces, the lab takes the second interface off its
    link (carrier down): the MN's next BU to the home agent, within the registration
    deadline (the MN sees the carrier go at once)."""
    ha = mn.ha_address(1)
    _bulk_acknowledged(mn, seen)
    return _next_bu(
        mn,
        lambda: mn.lab.detach(SECOND_IFACE),
        bu_from_mn(to=ha, hoa=str(mn.home)),
        f"a BU to {ha} after {SECOND_IFACE} lost its link",
    )


def second_interface_back(mn: MobileNodeUnderTest) -> compact.MobilityMessage:
    """The lab puts the second interface back on its link: the MN's next BU with BID
    options to the home agent in use, within the registration deadline."""
    ha = mn.ha_address(1)
    return _next_bu(
        mn,
        lambda: mn.lab.attach(SECOND_IFACE, SECOND_LINK),
        bu_with_bids(ha, str(mn.home)),
        f"a BU with BID options to {ha} after {SECOND_IFACE} came back to link {SECOND_LINK}",
    )


@dataclass(frozen=True)
class Moved:
    """The second interface moved to another link: the first BU naming a care-of address
    of that link's prefix for it, the MN's BUs to the home agent between the move and that
    one, and the addresses the MN has on the interface in that prefix (from the kernel)."""

    bu: compact.MobilityMessage
    before: list[compact.MobilityMessage]
    coa: str  # the new care-of address the BU names
    formed: list[str]


def second_interface_moves(
    mn: MobileNodeUnderTest, seen: SecondInterface, to_link: int = FIRST_VISITED
) -> Moved:
    """After the BA to the BU of both interfaces, the lab moves the second interface from
    link 3 to `to_link` (carrier down, the other bridge, carrier up): the MN's first BU to
    the home agent in use whose BID options name a care-of address in `to_link`'s prefix
    other than the first interface's, within the registration deadline (INT-16: movement
    detection, the address and the BU)."""
    ha, hoa = mn.ha_address(1), str(mn.home)
    _bulk_acknowledged(mn, seen)
    prefix = mn.lab.plan.link(to_link).prefix6
    first = seen.coa[MN_IFACE]

    def new_coas(msg: compact.MobilityMessage) -> list[str]:
        return [
            b.coa
            for b in bids_of(msg)
            if b.coa is not None and b.coa != first and ipaddress.ip_address(b.coa) in prefix
        ]

    def names_new(pkt: Any) -> bool:
        msg = mobility_message(pkt)
        return msg is not None and bool(new_coas(msg))

    wanted = bu_with_bids(ha, hoa) & Predicate(
        names_new, f"a BID option naming a care-of address in {prefix} other than {first}"
    )
    mark = mn.link.mark()
    mn.lab.move(SECOND_IFACE, to_link)
    what = f"a BU to {ha} naming {SECOND_IFACE}'s care-of address on link {to_link}"
    bu = mobility_message(in_time(mn.link, wanted, mn.deadlines.registration, what, since=mark))
    assert bu is not None
    before = []
    for pkt in mn.link.packets(since=mark):
        msg = mobility_message(pkt)
        if msg is None or not bu_from_mn(to=ha, hoa=hoa)(pkt):
            continue
        if msg.seq == bu.seq:
            break
        before.append(msg)
    formed = [str(a) for a in mn.world.mn_addresses(SECOND_IFACE) if a in prefix]
    return Moved(bu, before, new_coas(bu)[0], formed)


def leaves_bid(msg: compact.MobilityMessage, bid: int) -> bool:
    """Does this BU remove the binding of `bid` at the home agent (RFC 5648 §5.4, §6.2):
    a Lifetime-0 BU naming it, a plain BU (it replaces every binding), or a BU with O set
    that does not name it?"""
    named = {b.bid for b in bids_of(msg)}
    if msg.lifetime == 0:
        return bid in named
    return not named or (overwrite_flag(msg) and bid not in named)


def care_of_address(msg: compact.MobilityMessage) -> str:
    """The care-of address of a BU (RFC 6275 §11.7.1): its Alternate Care-of Address
    option's, else its source address."""
    return alt_coa(msg) or msg.src


def bu_leaving(mn: MobileNodeUnderTest, gone: str) -> Predicate:
    """A BU from the MN to the home agent in use that leaves care-of address `gone`: a
    Lifetime-0 BU, or one that names it neither as its care-of address nor in a BID option."""

    def leaves(pkt: Any) -> bool:
        msg = mobility_message(pkt)
        if msg is None:
            return False
        if msg.lifetime == 0:
            return True
        return care_of_address(msg) != gone and all(b.coa != gone for b in bids_of(msg))

    return bu_from_mn(to=mn.ha_address(1), hoa=str(mn.home)) & Predicate(
        leaves, f"a Lifetime 0, or no longer naming {gone}"
    )


def first_interface_lost(
    mn: MobileNodeUnderTest, seen: SecondInterface, captures: Captures
) -> compact.MobilityMessage:
    """After the BA to the BU of both interfaces, the lab takes the first interface off its
    link (carrier down) while the second stays on link 3: the MN's first BU to the home
    agent in use, seen on the second interface's link (the only one left), that leaves
    the lost care-of address (a Lifetime-0 BU, or one that names it neither as its
    care-of address nor in a BID option), within the registration deadline. A BU the MN
    had under way as the link went (a retransmission or refresh that still names it) is
    passed over: the MN sees the loss only then."""
    ha = mn.ha_address(1)
    gone = seen.coa[MN_IFACE]
    second = captures.watch_node(mn.lab, "mn", SECOND_IFACE)
    _bulk_acknowledged(mn, seen)
    wanted = bu_leaving(mn, gone)
    mark = second.mark()
    mn.lab.detach(MN_IFACE)
    what = f"a BU to {ha} on {SECOND_IFACE} leaving {gone} after {MN_IFACE} lost its link"
    pkt = in_time(second, wanted, mn.deadlines.registration, what, since=mark)
    msg = mobility_message(pkt)
    assert msg is not None
    return msg


def flows_moved(mn: MobileNodeUnderTest, seen: SecondInterface) -> compact.MobilityMessage:
    """After the BA to the BU of both interfaces, the tester tells the MN (its profile's
    move_flows command) to swap the interfaces of the two flows (`MOVED_FLOWS`): the MN's
    next BU with BID options to the home agent in use, within the registration deadline
    (a BU is due at once; no RFC timer bounds it, INT-16's margin does)."""
    from harness.sut.adapters import ProfileSut

    if not isinstance(mn.sut, ProfileSut):
        not_applicable("the SUT is not started from a profile: no move_flows command")
    ha, sut = mn.ha_address(1), mn.sut
    _bulk_acknowledged(mn, seen)
    return _next_bu(
        mn,
        lambda: sut.move_flows(MOVED_FLOWS),
        bu_with_bids(ha, str(mn.home)),
        f"a BU with BID options to {ha} after the MN was told to move its flows",
    )


def _bulk_acknowledged(mn: MobileNodeUnderTest, seen: SecondInterface) -> None:
    """The reference HA's BA to the BU of both interfaces; without it, inconclusive."""
    try:
        mn.link.expect(ba_for(seen.bu.seq), mn.deadlines.ba, "the HA's BA to the bulk BU")
    except AssertionError:
        inconclusive("the reference HA did not acknowledge the BU of both interfaces")


def _next_bu(
    mn: MobileNodeUnderTest, act: Callable[[], object], wanted: Predicate, what: str
) -> compact.MobilityMessage:
    """The MN's next BU matching `wanted` after `act()` (a change the lab or the tester
    makes), within the registration deadline (INT-16)."""
    mn.link.mark()
    act()
    msg = mobility_message(in_time(mn.link, wanted, mn.deadlines.registration, what))
    assert msg is not None
    return msg


def second_address(mn: MobileNodeUnderTest, within: float) -> str:
    """The address the MN formed on its second interface in that link's prefix (from the
    kernel), waited for `within` seconds; none is the MN's failure (draft §7.1)."""
    prefix = mn.lab.plan.link(SECOND_LINK).prefix6
    deadline = time.monotonic() + within
    while True:
        found = [a for a in mn.world.mn_addresses(SECOND_IFACE) if a in prefix]
        if found:
            return str(found[0])
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"the MN formed no address in {prefix} on {SECOND_IFACE} within {within:g} s"
            )
        time.sleep(0.02)


def attach_second_interface(mn: MobileNodeUnderTest, captures: Captures) -> tuple[Link, str]:
    """The lab adds the second interface on link 3 (the MN on link 1, nothing moved); its
    captured link and the address the MN formed there within the registration deadline."""
    mn.link.mark()
    mn.lab.attach_new(SECOND_IFACE, SECOND_LINK)
    link = captures.watch_node(mn.lab, "mn", SECOND_IFACE)
    return link, second_address(mn, mn.deadlines.registration)


def reach_natively(mn: MobileNodeUnderTest, address: str) -> None:
    """An echo to the correspondent from `address` through the second interface: the MN's
    own address and routes there (a loss is the MN's failure; it sent no BU, so nothing
    else is in the way)."""
    try:
        mn.lab.ping("mn", mn.lab.plan.cn.host6, ifname=SECOND_IFACE, src=address)
    except Unreachable as exc:
        raise AssertionError(f"no echo reply to {address} through {SECOND_IFACE}: {exc}") from None


def flow_datagram(cn: str, port: int) -> Predicate:
    """A UDP datagram to `cn`:`port` on the link, native or inside an IPv6-in-IPv6 tunnel."""

    def test(pkt: Any) -> bool:
        inner = _innermost(pkt)
        udp = inner.getlayer(UDP) if inner is not None else None
        return inner is not None and udp is not None and inner.dst == cn and udp.dport == port

    return Predicate(test, f"a UDP datagram to {cn} port {port}")


def _innermost(pkt: Any) -> Any:
    ip = pkt.getlayer(IPv6)
    while ip is not None and ip.nh == 41 and isinstance(ip.payload, IPv6):
        ip = ip.payload
    return ip


@dataclass(frozen=True)
class FlowSeen:
    """The first datagram of the flow's new session on the second interface: its outer
    (tunnel) source and destination, and the session's own source address."""

    outer_src: str
    outer_dst: str
    tunnelled: bool
    inner_src: str


def new_session_of_the_flow(
    mn: MobileNodeUnderTest, seen: SecondInterface, captures: Captures
) -> FlowSeen:
    """After the registration of both interfaces is acknowledged, a new UDP session from
    the MN to the CN's port of the flow bound to the second interface (a real application;
    the CN echoes): its first datagram seen on the second interface's link. A BA that does
    not come ends the test inconclusive (the home agent is the lab's)."""
    try:
        expect_latest_ba(mn, seen.bu, "the HA's BA to the bulk BU (or to its retransmission)")
    except AssertionError:
        inconclusive("the reference HA did not acknowledge the BU of both interfaces")
    second = captures.watch_node(mn.lab, "mn", SECOND_IFACE)
    port = FLOW_PORTS[SECOND_IFACE]
    cn = str(mn.lab.plan.cn.host6)
    mn.world.app("cn", "tcp_echo", "--port", str(port), "--proto", "udp")
    mn.world.app("mn", "udp_session", "--connect", cn, "--port", str(port), "--interval", "0.02")
    pkt = second.expect(
        flow_datagram(cn, port),
        mn.deadlines.data,
        f"the new session to port {port} on {SECOND_IFACE}, the interface its flow is bound to",
    )
    outer = pkt.getlayer(IPv6)
    inner = _innermost(pkt)
    return FlowSeen(str(outer.src), str(outer.dst), outer is not inner, str(inner.src))


# ------------------------------------------------------------ a stream through the changes

STREAM_RATE = 100.0  # datagrams a second from the source behind the core
STREAM_COUNT = 20  # datagrams sent once the SUT has re-registered that must be delivered
TUNNEL_SLICE = 0.05  # how long each of the MN's links is waited on in turn


@dataclass(frozen=True)
class Stream:
    """A real receiver application on the MN and the group a real numbered source behind
    the core sends it."""

    app: App
    group: str


def stream_to_the_mn(mn: MobileNodeUnderTest, iface: str = MN_IFACE, link: int = 1) -> Stream:
    """The application joins the lab's SSM group through `iface` on access link `link` and
    the source sends its numbered stream: the first datagram, natively there, before
    anything moves. Not run when an application does not start; inconclusive when the lab
    does not deliver the group there (nothing of the mobility is judged yet)."""
    plan = mn.lab.plan
    group, src = str(plan.ssm_group6), str(plan.mcast_source.host6)
    try:
        app = mn.world.receiver(group, src, iface=iface)
        mn.world.source("src", group, rate=STREAM_RATE)
    except AppExpectationFailed as exc:
        not_run(f"the stream's applications did not start: {exc}")
    try:
        app.wait_for("data", mn.deadlines.data, f"{group} natively on link {link}")
    except AppExpectationFailed:
        inconclusive(f"the lab did not deliver {group} to the application on link {link}")
    return Stream(app, group)


def sent_after(moment: float) -> Callable[[Event], bool]:
    """Selects a receiver's data events of the datagrams the source sent at `moment` or
    later (time.monotonic() of this machine, which the payload's send time is read on)."""

    def test(e: Event) -> bool:
        return e.get("event") == "data" and float(e.get("sent_mono", -1.0)) >= moment

    return test


@dataclass
class Changeover:
    """A change of the MN's interfaces (the first off its link and, once the block of
    `first_interface_detached` ends, back on link FIRST_VISITED): the moments
    (time.monotonic()) of both, the home agent the MN re-registers with, the BU it owes it
    after the change (`owed`, what `_whose_loss` looks for), and the captured links of both
    interfaces with their seq at the change."""

    at: float
    ha: str
    owed: Predicate
    marks: dict[str, tuple[Link, int]]
    back_at: float | None = None


def _lab_does(act: Callable[[], object], what: str) -> float:
    """The lab's change `act`, and when it was made; a lab that cannot: not run."""
    at = time.monotonic()
    try:
        act()
    except LabError as exc:
        not_run(f"the lab could not {what}: {exc}")
    return at


@contextlib.contextmanager
def first_interface_detached(
    mn: MobileNodeUnderTest, seen: SecondInterface, captures: Captures
) -> Iterator[Changeover]:
    """After the home agent's BA to the BU of both interfaces, the lab takes the first
    interface off its link (carrier down) while the second stays on link 3; when the block
    ends (without an error), it puts the first back on link FIRST_VISITED, where its
    care-of address was."""
    second = captures.watch_node(mn.lab, "mn", SECOND_IFACE)
    _bulk_acknowledged(mn, seen)
    marks = {MN_IFACE: (mn.link, mn.link.mark()), SECOND_IFACE: (second, second.mark())}
    at = _lab_does(lambda: mn.lab.detach(MN_IFACE), f"take {MN_IFACE} off its link")
    change = Changeover(at, mn.ha_address(1), bu_leaving(mn, seen.coa[MN_IFACE]), marks)
    yield change
    change.back_at = _lab_does(
        lambda: mn.lab.attach(MN_IFACE, FIRST_VISITED),
        f"put {MN_IFACE} back on link {FIRST_VISITED}",
    )


def bu_carrying(ha: str, hoa: str, group: str) -> Predicate:
    """A BU from the MN to `ha` for home address `hoa` whose Multicast State options carry
    a record of `group` (draft §4.1)."""

    def test(pkt: Any) -> bool:
        msg = mobility_message(pkt)
        return msg is not None and group in multicast_state(msg)

    return bu_from_mn(to=ha, hoa=hoa) & Predicate(test, f"a Multicast State record of {group}")


@dataclass(frozen=True)
class GroupMoved:
    """The added interface moved off the link where an application joined a group through
    it: the stream, the change, the address the interface had there, and the MN's BU to
    that link's home agent for it."""

    stream: Stream
    change: Changeover
    hoa: str
    bu: compact.MobilityMessage


def added_interface_moves_with_a_group(mn: MobileNodeUnderTest, captures: Captures) -> GroupMoved:
    """No home agent in use: the lab adds the second interface on link 3, an application
    joins the group through it and gets the stream natively there, and a TCP session to
    the correspondent runs from the address the interface formed there (so that the MN owes
    that link's home agent a binding whatever it makes of multicast alone, OPEN-15). Then
    the lab moves that interface to link FIRST_VISITED: the MN's BU to link 3's home agent
    for that address, within the registration deadline (draft §3)."""
    second, address = attach_second_interface(mn, captures)
    stream = stream_to_the_mn(mn, SECOND_IFACE, SECOND_LINK)
    cn = str(mn.lab.plan.cn.host6)
    args = ("--connect", cn, "--port", str(CN_PORT), "--bind", address, "--interval", "0.05")
    session = mn.world.app("mn", "tcp_session", *args)
    session.wait_for("rtt", mn.deadlines.data, f"a round trip to {cn} from {address}")
    ha = mn.ha_address(SECOND_LINK)
    owed = bu_carrying(ha, address, stream.group)
    marks = {MN_IFACE: (mn.link, mn.link.mark()), SECOND_IFACE: (second, second.mark())}
    at = _lab_does(
        lambda: mn.lab.move(SECOND_IFACE, FIRST_VISITED),
        f"move {SECOND_IFACE} to link {FIRST_VISITED}",
    )
    change = Changeover(at, ha, owed, marks)
    what = f"a BU to {ha} for {address} after {SECOND_IFACE} left link {SECOND_LINK}"
    pkt = in_time(second, bu_from_mn(to=ha, hoa=address), mn.deadlines.registration, what)
    msg = mobility_message(pkt)
    assert msg is not None
    return GroupMoved(stream, change, address, msg)


def stream_kept(
    mn: MobileNodeUnderTest, stream: Stream, change: Changeover, since: float
) -> list[Event]:
    """After a change at `since`, the SUT's re-registration is due by its registration
    deadline and the home agent's BA (both from the profile's timers, INT-16): STREAM_COUNT
    datagrams the source sent after that must reach the application, none of them read
    from an air interface (decapsulated from the tunnel), and the home agent's tunnel must
    carry the group to one of the MN's interfaces. Datagrams sent during the change itself
    are not judged. When the application does not get them, the wire says whose fault it
    is (`_whose_loss`)."""
    d = mn.deadlines
    settled = since + d.registration + d.ba
    within = max(settled - time.monotonic(), 0.0) + d.data + STREAM_COUNT / STREAM_RATE
    what = f"datagrams of {stream.group} sent once the MN had re-registered"
    try:
        got = stream.app.wait_count(sent_after(settled), STREAM_COUNT, within, what)
    except AppExpectationFailed as missing:
        _whose_loss(mn, stream, change, settled, missing)
    air = {iface: mn.lab.ifindex("mn", iface) for iface in (MN_IFACE, SECOND_IFACE)}
    native = [e.get("seq") for e in got if e.get("ifindex") in air.values()]
    assert not native, (
        f"datagrams {native} of {stream.group} reached the application natively on an air "
        f"interface ({air}), not decapsulated from the HA's tunnel"
    )
    ha = change.ha
    if not _tunnelled_from_now(change, tunnelled_from(ha, stream.group), d.data):
        raise AssertionError(
            f"the application got {stream.group} after the change, but no datagram of it "
            f"tunnelled from {ha} reached {MN_IFACE} or {SECOND_IFACE} within {d.data:g} s"
        )
    return got


def _tunnelled_seen(change: Changeover, wanted: Predicate, after: float) -> bool:
    """Was a frame matching `wanted` captured at `after` or later on either interface's
    link (since the change)?"""
    return any(
        f.mono >= after and wanted(f.packet)
        for link, mark in change.marks.values()
        for f in link.frames(mark)
    )


def _tunnelled_from_now(change: Changeover, wanted: Predicate, within: float) -> bool:
    """Does a frame matching `wanted` come on either interface's link within `within`
    seconds from now (the links waited on in turn, a slice at a time)?"""
    links = [(link, link.mark()) for link, _ in change.marks.values()]
    deadline = time.monotonic() + within
    while True:
        for link, mark in links:
            try:
                link.expect(wanted, TUNNEL_SLICE, since=mark)
                return True
            except AssertionError:
                pass
        if time.monotonic() >= deadline:
            return False


def _whose_loss(
    mn: MobileNodeUnderTest,
    stream: Stream,
    change: Changeover,
    settled: float,
    missing: AssertionError,
) -> NoReturn:
    """The application did not get the stream sent at `settled` or later. The MN's failure
    when the BU it owed the home agent after the change did not come before `settled`, or
    when the home agent's tunnel carried the group to it after `settled` and the
    application still did not get it; inconclusive when the (reference) home agent did not
    acknowledge the MN's last BU before `settled`, or tunnelled nothing to the MN after
    acknowledging it."""
    ha = change.ha
    frames = [f for link, mark in change.marks.values() for f in link.frames(mark)]
    bu = bu_from_mn(to=ha)
    due = [f for f in frames if f.mono <= settled and bu(f.packet)]
    if not any(change.owed(f.packet) for f in due):
        raise AssertionError(
            f"{missing}\nthe MN did not send {change.owed} within its re-registration "
            "deadline: the home agent cannot tunnel the group to where the MN is"
        )
    last = mobility_message(max(due, key=lambda f: f.mono).packet)
    assert last is not None
    if not any(ba_for(last.seq)(f.packet) for f in frames):
        inconclusive(
            f"the reference HA did not acknowledge the MN's last BU (seq {last.seq}) before "
            "its re-registration deadline: the stream's loss is not the MN's to answer for"
        )
    if not _tunnelled_seen(change, tunnelled_from(ha, stream.group), settled):
        inconclusive(
            f"the reference HA acknowledged the MN's BU (seq {last.seq}) but tunnelled no "
            f"datagram of {stream.group} to the MN's interfaces after its deadline"
        )
    raise AssertionError(
        f"{missing}\nthe HA's tunnel carried {stream.group} to the MN after it re-registered, "
        "yet the application did not get the datagrams"
    )
