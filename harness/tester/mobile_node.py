"""The tester around a mobile node under test (the MN suite, suites/mn): the SUT MN among
reference home agents in a mobility world, the BUs it sends and what they carry (options,
the Multicast State option's records), the tester acting as a home agent that answers it,
and predicates on its traffic (tunnelled from an HA, with a Home Address option).
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
from dataclasses import dataclass
from typing import Any

from scapy.layers.inet6 import IPv6
from scapy.packet import Packet

from harness.lab.topology import Lab
from harness.sut import adapters
from harness.tester import world as mobility
from harness.tester.conversation import Link, Predicate, mobility_message
from harness.wire import compact
from harness.wire.numbers import MHType

MH_BU = int(MHType.BU)
FLAG_A, FLAG_H = 0x200, 0x100  # as compact's bu_flags gives them (the 16 bits >> 6)
ALT_COA, HOME_ADDRESS_OPT, MSG_AUTH = 3, 201, 9

# RFC 6275 §13 protocol constants (seconds, except the rate)
INITIAL_BINDACK_TIMEOUT = 1.0
INITIAL_BINDACK_TIMEOUT_FIRST_REG = 1.5
MAX_BINDACK_TIMEOUT = 32.0
RTR_SOLICITATION_INTERVAL = 4.0  # RFC 4861 §10
MAX_UPDATE_RATE = 3  # Mobility Header messages of one type to one node within a second
TCP_INITIAL_RTO = 1.0  # RFC 6298 §2.1: a TCP sender retransmits within a few of these
# The margin of every deadline (docs/interpretations.md INT-16 of the MN suite): a relative
# part for the SUT's timer granularity, and an absolute part for what the lab itself adds
# between a stimulus and the SUT's first chance to react (moving an interface between
# bridges, the capture, scheduling on a shared machine). A reaction later than its deadline
# is a failure of its own ("reacted after X ms, allowed Y"), looked for during LATE_FACTOR
# times the deadline more.
MARGIN = 0.1
LAB_SLACK = 2.5
LATE_FACTOR = 1.0
# RFC 5555 §4.3 keepalives are timed between two frames of the MN's own interface (the BA
# in, the next datagram out): the MN's scheduling on a loaded machine, not the lab's moves
KEEPALIVE_SLACK = 0.5


@dataclass(frozen=True)
class Deadlines:
    """Every deadline and quiet window of the MN suite, from the RFC timers scaled by the
    profile's declared [timers] (time_scale), the lab's router timers (RA interval, MLD
    querier) and the margin above."""

    time_scale: float
    ra_max_interval: float  # the lab routers' MaxRtrAdvInterval (RFC 4861 §6.2.1)
    query_interval: float  # the lab routers' MLD Query Interval (RFC 3810 §9.2)
    query_response_interval: float

    def scaled(self, protocol_seconds: float) -> float:
        return protocol_seconds * self.time_scale

    @property
    def registration(self) -> float:
        """From a move to the first BU: movement detection takes at most the next
        unsolicited RA (RFC 6275 §11.5.1), then the MN sends at once."""
        return self.ra_max_interval * (1 + MARGIN) + LAB_SLACK

    @property
    def quiet(self) -> float:
        """How long "no BU" is watched for: as long as a BU would have taken."""
        return self.registration

    @property
    def ba(self) -> float:
        """From a BU to the (reference or tester) HA's BA: a first registration may wait for
        DAD, which InitialBindackTimeoutFirstReg covers (RFC 6275 §11.8, §13)."""
        return self.scaled(INITIAL_BINDACK_TIMEOUT_FIRST_REG) * (1 + MARGIN) + LAB_SLACK

    @property
    def max_bindack(self) -> float:
        return self.scaled(MAX_BINDACK_TIMEOUT)

    @property
    def retransmission(self) -> float:
        """The longest an MN may wait before retransmitting an unanswered BU: the timeout
        never grows beyond MAX_BINDACK_TIMEOUT (RFC 6275 §11.8)."""
        return self.max_bindack * (1 + MARGIN) + LAB_SLACK

    @property
    def rate_window(self) -> float:
        """MAX_UPDATE_RATE's second, scaled like every other RFC 6275 timer (INT-16)."""
        return self.scaled(1.0)

    @property
    def report_after_query(self) -> float:
        """Within this a listener answers a General Query of the lab's routers: the next
        Query comes within one Query Interval, the Report within the Maximum Response
        Delay (RFC 3810 §6.2); twice, should one Query go unanswered (a lost Report)."""
        return (2 * self.query_interval + self.query_response_interval) * (1 + MARGIN)

    @property
    def dhcpv4(self) -> float:
        """From a move onto an IPv4-only link to each of the MN's DHCPv4 messages (draft §8):
        the link shows it has no IPv6 once the MN's Router Solicitations go unanswered
        (RFC 4861 §6.3.7, §10: MAX_RTR_SOLICITATIONS x RTR_SOLICITATION_INTERVAL), and a
        message may be a retransmission after the first timeouts (RFC 2131 §4.1: 4 s, 8 s)."""
        return self.scaled(3 * RTR_SOLICITATION_INTERVAL + 4.0 + 8.0) * (1 + MARGIN) + LAB_SLACK

    def keepalive(self, refresh: float) -> float:
        """From a BA with a NAT Detection option of refresh time `refresh` (protocol
        seconds, RFC 5555 §3.2.2) to the MN's next datagram to the HA, both read on the MN's
        own interface: the refresh time scaled, with the margin and KEEPALIVE_SLACK (no lab
        stimulus lies between the two frames, only the MN's own timers and scheduling)."""
        return self.scaled(refresh) * (1 + MARGIN) + KEEPALIVE_SLACK

    @property
    def data(self) -> float:
        """For an application's data or a session's round trip: no RFC timer bounds it,
        the lab's slack does."""
        return LAB_SLACK


def deadlines_for(world: mobility.World, sut: adapters.SutAdapter) -> Deadlines:
    return Deadlines(
        time_scale=sut.timers.time_scale,
        ra_max_interval=world.lab.ra_intervals[1],
        query_interval=mobility.MLD_TIMERS.query_interval,
        query_response_interval=mobility.MLD_TIMERS.query_response_interval,
    )


def in_time(
    link: Link,
    predicate: Predicate,
    allowed: float,
    what: str | None = None,
    *,
    since: int | None = None,
) -> Any:
    """The first frame matching `predicate` within `allowed` seconds; one that comes later
    (within LATE_FACTOR x `allowed` more) fails as late, with how late."""
    __tracebackhide__ = True
    import time

    t0 = time.monotonic()
    try:
        return link.expect(predicate, allowed, what, since=since)
    except AssertionError as missing:
        try:
            link.expect(predicate, allowed * LATE_FACTOR, what, since=since)
        except AssertionError:
            raise missing from None
        took = (time.monotonic() - t0) * 1000
        raise AssertionError(
            f"{what or predicate}: reacted after {took:.0f} ms, allowed {allowed * 1000:.0f} ms"
        ) from None


@dataclass
class MobileNodeUnderTest:
    world: mobility.World
    sut: adapters.SutAdapter
    link: Link  # the MN's interface, captured
    home: ipaddress.IPv6Address  # the address it formed on link 1, where it starts

    @property
    def lab(self) -> Lab:
        return self.world.lab

    def ha_address(self, link: int) -> str:
        return str(self.lab.plan.link(link).router6)

    def key(self) -> bytes | None:
        keys = getattr(self.sut, "profile", None)
        k = getattr(keys, "keys", None) if keys is not None else None
        return k.key if k is not None else None

    @property
    def deadlines(self) -> Deadlines:
        return deadlines_for(self.world, self.sut)

    def lifetime_seconds(self, units: int) -> float:
        """A Lifetime field's real duration in the lab (4 s units, the profile's scale)."""
        return units * 4 * self.sut.timers.time_scale

    def expect_bu(
        self, within: float | None = None, what: str = "", **match: Any
    ) -> compact.MobilityMessage:
        """The MN's next BU (matching `match`) within `within` (default: the registration
        deadline); a late one fails as late."""
        allowed = self.deadlines.registration if within is None else within
        pkt = in_time(self.link, bu_from_mn(**match), allowed, what or None)
        msg = mobility_message(pkt)
        assert msg is not None
        return msg


def bu_from_mn(
    to: str | None = None, hoa: str | None = None, lifetime_zero: bool | None = None
) -> Predicate:
    """A Binding Update sent by the MN (to `to`, for home address `hoa`)."""

    def test(pkt: Any) -> bool:
        msg = mobility_message(pkt)
        if msg is None or msg.mhtype != MH_BU:
            return False
        if to is not None and msg.dst != to:
            return False
        if hoa is not None and msg.hoa != hoa:
            return False
        return lifetime_zero is None or (msg.lifetime == 0) == lifetime_zero

    parts = ["a Binding Update from the MN"]
    if to:
        parts.append(f"to {to}")
    if hoa:
        parts.append(f"for home address {hoa}")
    if lifetime_zero is not None:
        parts.append("with Lifetime 0" if lifetime_zero else "with a non-zero Lifetime")
    return Predicate(test, " ".join(parts))


def options_of(msg: compact.MobilityMessage) -> list[compact.Option]:
    return compact.parse_options(msg.body, compact.FIXED_PART[compact.MHType(msg.mhtype)])


def alt_coa(msg: compact.MobilityMessage) -> str | None:
    for o in options_of(msg):
        if o.otype == ALT_COA and len(o.data) == 16:
            return str(ipaddress.IPv6Address(o.data))
    return None


def multicast_state(msg: compact.MobilityMessage) -> dict[str, tuple[int, frozenset[str]]]:
    """group -> (record type, sources) of the BU's Multicast State options (INT-3 merged)."""
    from harness.config import WireConfig

    config = WireConfig.from_env()
    out: dict[str, tuple[int, frozenset[str]]] = {}
    for o in options_of(msg):
        if compact.is_multicast_state(o, config):
            state = compact.parse_multicast_state(o.data)
            for rec in state.records:
                rtype, srcs = out.get(rec.maddr, (rec.rtype, frozenset()))
                out[rec.maddr] = (rec.rtype, srcs | frozenset(rec.sources))
    return out


def u16(data: bytes, off: int) -> int:
    return int(struct.unpack_from("!H", data, off)[0])


def send_ba_as_ha(
    mn: MobileNodeUnderTest,
    link: int,
    coa: str,
    hoa: str,
    seq: int,
    status: int,
    lifetime: int,
    extra: tuple[Any, ...] = (),
    *,
    wrong_key: bool = False,
) -> None:
    """The tester acting as access router `link`'s home agent: a BA (type 2 routing
    header, RFC 6275 §6.1.8), signed with the profile's MN-HA key when there is one (with
    another key when `wrong_key`), sent from that router's namespace."""
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrRouting, MIP6OptMsgAuth

    from harness.wire import auth
    from harness.wire.mobility import BindingAck

    keys = getattr(getattr(mn.sut, "profile", None), "keys", None)
    options = list(extra)
    if keys is not None:
        options.append(MIP6OptMsgAuth(subtype=1, mspi=keys.spi, authdata=b"\x00" * 12))
    pkt: Packet = (
        IPv6(src=mn.ha_address(link), dst=coa)
        / IPv6ExtHdrRouting(type=2, segleft=1, addresses=[hoa])
        / BindingAck(status=status, seq=seq, mhtime=lifetime, options=options)
    )
    if keys is not None:
        key = bytes(b ^ 0x5A for b in keys.key) if wrong_key else keys.key
        pkt = auth.sign(pkt, key)
    with contextlib.closing(
        mn.lab.socket(f"ar{link}", socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
    ) as s:
        s.sendto(bytes(pkt), (coa, 0))


def session_then_move(mn: MobileNodeUnderTest, to: int = 2) -> Any:
    session = mn.world.session()
    session.wait_for("rtt", 3, "a first round trip on link 1")
    mn.link.mark()
    mn.world.move(to)
    return session


def deregistration_when_the_session_ends(
    mn: MobileNodeUnderTest,
) -> tuple[compact.MobilityMessage, compact.MobilityMessage]:
    """A session from link 1, a move to link 2, the registration and its BA, then the
    session closes: (the registration BU, the deregistration BU). An MN that keeps its
    binding ends the test inconclusive (draft §7: deregistering is a MAY)."""
    from harness.verdicts import inconclusive

    session = session_then_move(mn)
    bu = mn.expect_bu(to=mn.ha_address(1))
    mn.link.expect(ba_for(bu.seq), mn.deadlines.ba, "the HA's BA")
    session.send("close")
    session.wait_for("closed", mn.deadlines.data, "the session's clean close")
    try:
        dereg = mn.expect_bu(None, "a deregistration", to=bu.dst, lifetime_zero=True)
    except AssertionError:
        inconclusive("the MN kept its binding after the session ended (draft §7: MAY)")
    return bu, dereg


def bu_any() -> Predicate:
    return bu_from_mn()


def aux_lengths(bu: Any) -> list[int]:
    from harness.config import WireConfig
    from harness.wire import compact

    config = WireConfig.from_env()
    out = []
    for o in options_of(bu):
        if compact.is_multicast_state(o, config):
            out += [len(r.auxdata) for r in compact.parse_multicast_state(o.data).records]
    return out


def mld_report_with(group: str) -> Predicate:
    """An MLDv2 Report with a record for `group`, or for an IPv4 group an IGMP Report (every
    record, read by the project's one report parser through the lab's MLD and IGMP code)."""
    from scapy.layers.inet import IP

    from harness.netproto import igmp
    from harness.netproto.mld import parse_report
    from harness.reference.mn_listener import report_from_packet

    want = ipaddress.ip_address(group)

    def test(pkt: Any) -> bool:
        if want.version == 4:
            ip4 = pkt.getlayer(IP)
            found = igmp.message_of(bytes(ip4)) if ip4 is not None else None
            return found is not None and any(r.group == want for r in igmp.parse_report(found))
        ip = pkt.getlayer(IPv6)
        message = report_from_packet(bytes(ip)) if ip is not None else None
        return message is not None and any(r.group == want for r in parse_report(message))

    kind = "an IGMP Report" if want.version == 4 else "an MLDv2 Report"
    return Predicate(test, f"{kind} naming {group}")


def ba_for(seq: int) -> Predicate:
    def test(pkt: Any) -> bool:
        msg = mobility_message(pkt)
        return msg is not None and msg.mhtype == 6 and msg.seq == seq

    return Predicate(test, f"a BA for seq {seq}")


def tunnelled_from(ha: str, group: str) -> Predicate:
    def test(pkt: Any) -> bool:
        outer = pkt.getlayer(IPv6)
        if outer is None or outer.nh != 41 or outer.src != ha:
            return False
        inner = outer.payload.getlayer(IPv6)
        return inner is not None and inner.dst == group

    return Predicate(test, f"IPv6-in-IPv6 from {ha} carrying {group}")


def home_address_option(pkt: Any) -> str | None:
    from scapy.layers.inet6 import HAO

    hao = pkt.getlayer(HAO)
    return str(hao.hoa) if hao is not None else None


def newer(a: int, b: int) -> bool:
    """Is sequence number `a` newer than `b` (RFC 6275 §9.5.1: modulo 2**16)?"""
    return (a - b) & 0xFFFF in range(1, 0x8000)


def expect_latest_ba(mn: MobileNodeUnderTest, bu: compact.MobilityMessage, what: str) -> float:
    """The HA's BA to `bu`, or to the newest BU the MN sent the same HA for the same home
    address since: an MN that retransmitted (a new sequence number, RFC 6275 §11.8) before
    the first BA reached it matches only the BA of its latest BU (§11.7.3), so its state
    follows that one. Waits for each in turn, a few times at most; the monotonic time the
    last BA was captured at."""
    seq, to_ha = bu.seq, bu_from_mn(to=bu.dst, hoa=bu.hoa)
    for _ in range(4):
        ba = mn.link.expect(ba_for(seq), mn.deadlines.ba, what, since=0)
        at = next(f.mono for f in mn.link.frames() if f.packet is ba)
        sent = [mobility_message(f.packet) for f in mn.link.frames() if to_ha(f.packet)]
        later = [m.seq for m in sent if m is not None and newer(m.seq, seq)]
        if not later:
            return at
        seq = later[-1]
    return at


@dataclass(frozen=True)
class SentBU:
    time: float  # the capture's kernel timestamp
    msg: compact.MobilityMessage


def unanswered_bus(mn: MobileNodeUnderTest, count: int) -> list[SentBU]:
    """The tester silences access router 1's home agent, the MN moves away with a session,
    and its first `count` BUs to that HA (the first one and its retransmissions) are
    collected with their times. A retransmission that does not come within the longest
    timeout RFC 6275 §11.8 allows ends the test inconclusive (retransmitting is a SHOULD)."""
    from harness.verdicts import inconclusive

    mn.world.home_agents.pop(1).stop()  # nobody answers as ar1's HA
    session_then_move(mn)
    start = mn.link.cursor
    ha = mn.ha_address(1)
    mn.expect_bu(to=ha)
    for n in range(1, count):
        try:
            mn.link.expect(bu_from_mn(to=ha), mn.deadlines.retransmission)
        except AssertionError:
            inconclusive(
                f"the MN sent {n} BU(s) to {ha} and no retransmission within "
                f"{mn.deadlines.retransmission:.2f} s: the retransmissions cannot be judged"
            )
    pred = bu_from_mn(to=ha)
    out = []
    for frame in mn.link.frames(start):
        if pred(frame.packet):
            msg = mobility_message(frame.packet)
            assert msg is not None
            out.append(SentBU(frame.time, msg))
    return out[:count] if len(out) >= count else out


def tunnelled_to(ha: str, coa: str) -> Predicate:
    """A packet the MN tunnels from `coa` to `ha` (its reverse tunnel, RFC 6275 §11.3.1)."""

    def test(pkt: Any) -> bool:
        ip = pkt.getlayer(IPv6)
        return ip is not None and ip.nh == 41 and ip.dst == ha and ip.src == coa

    return Predicate(test, f"a packet tunnelled from {coa} to {ha}")
