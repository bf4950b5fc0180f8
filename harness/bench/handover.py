"""Handover benchmark: the multicast gap an application sees across a handover, and the
BU->BA round trip on the wire.

The scenario (harness/tester/world.py): a mobility lab, a home agent on every access
router, the mobile node on access link 1 (its home link for this run). On link 1 the MN
opens a TCP session with the correspondent node and an application joins an SSM group
whose source is behind the core (`src`) or on access link 1 (the local CDN, `cdn`). Then
the lab moves the MN's interface round the access routers, 1 -> 2 -> 3 -> 1 -> ...; each
move is one of three kinds:

* away-from-home (1 -> 2): the MN registers its link-1 address with the HA of link 1
  (draft §3: a session and a group of that link are still alive);
* between-foreign (2 -> 3): a BU with the new care-of address to the same HA;
* back-home (3 -> 1): the MN deregisters (RFC 6275 §11.5.5) and listens natively again.

Each move is timed from the moment the lab takes the MN off its link (the "move start";
the carrier comes back on the new link a few milliseconds later). What is measured:

* by the application (harness.apps.mcast_recv, its own monotonic clock): the longest
  silence of the stream across the move (`control.move_gaps`), datagrams lost and
  duplicated;
* on the wire, from a capture of the MN's interface (kernel time stamps): the Router
  Solicitation and the first RA with the new prefix (movement detection, RFC 6275
  §11.5.1), the first BU with a care-of address of the new link (MH type 5) and the BA
  (MH type 6) with the sequence number of one of those BUs (RFC 6275 §11.7.1, §11.7.3),
  the first datagram of the group tunnelled to the new care-of address, and which path
  (tunnel or native) brought the datagram that ended the application's silence.

The application can also get the group natively on a foreign link: its socket stays
joined on the air interface, so the MN's kernel answers the visited router's MLD queries
(the lab's routers are MLD proxies), and a router keeps forwarding for a Multicast
Address Listening Interval after the MN left (RFC 3810 §9.4; 2.2 s in the lab, longer
than a round of the cycle). The figures are what the application saw either way; the
summary also splits the gap by the path that ended it.

Between moves the benchmark waits for events, not for time: the BA, then the receiver's
next datagrams; then the MN dwells on the link for `dwell` seconds, which is part of the
scenario (the default 0.5 s is shorter than the binding's refresh time at the profiles'
time scale, so the BUs on the wire are the handovers' own).

`run()` returns a JSON-able dict; `format_report()` renders it as text.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime
import ipaddress
import os
import platform
import shutil
import socket
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.apps import control
from harness.wire import compact, ipv6
from harness.wire.numbers import MHType

HOME_LINK = 1
KIND_AWAY, KIND_FOREIGN, KIND_HOME = "away-from-home", "between-foreign", "back-home"
KINDS = (KIND_AWAY, KIND_FOREIGN, KIND_HOME)
SOURCES = ("src", "cdn")
DEFAULT_MOVES = 24
DEFAULT_RATE = 200.0
DEFAULT_DWELL = 0.5
SETTLE_TIMEOUT = 5.0  # for the BU, the BA and the receiver's next datagrams, per move
RESUME_DATAGRAMS = 3  # datagrams after the BA that say the stream is back
STEADY_DATAGRAMS = 20  # datagrams before the first move
STREAM = "bench"
SESSION_INTERVAL = 0.05

ETH_HLEN = 14
ETH_P_IPV6 = b"\x86\xdd"
NH_UDP, NH_ICMPV6, NH_MH = ipv6.UDP, ipv6.ICMPV6, ipv6.MOBILITY
ND_RS, ND_RA, MLDV2_REPORT = 133, 134, 143
ND_OPT_PREFIX_INFO = 3
RA_HEADER = 16  # RFC 4861 §4.2: the options follow the 16-octet RA header
UDP_HLEN = 8

# Phases of a move, in the order they happen: (key, what it is). Each is a difference of
# two of the per-move times below (milliseconds).
PHASES = (
    ("link", "move start -> carrier up on the new link (the lab's handover)"),
    ("detect", "carrier up -> first RA with the new prefix (RS/RA, RFC 6275 §11.5.1)"),
    ("mn", "RA -> BU (the MN's processing)"),
    ("bu_ba", "BU -> BA (the HA's processing and the round trip)"),
    ("ha_data", "BA -> first tunnelled datagram of the group on the MN's interface"),
    ("app", "that datagram on the wire -> the application reads it (its first copy)"),
)


class BenchError(RuntimeError):
    """The scenario could not be set up (a SUT did not start, no data ever came)."""


# ---------------------------------------------------------------------- the wire


@dataclass(frozen=True)
class WireEvent:
    """One frame of interest on the MN's interface."""

    kind: str  # "bu", "ba", "rs", "ra", "mld-report", "data"
    mono: float  # the kernel's time stamp, on the monotonic clock
    outgoing: bool  # sent by the MN
    src: str
    dst: str
    seq: int | None = None  # BU/BA sequence number; the datagram's for "data"
    status: int | None = None  # BA status
    lifetime: int | None = None  # BU/BA lifetime (4 s units)
    hoa: str | None = None  # BU: the Home Address option's
    prefix: str | None = None  # RA: the first /64 Prefix Information option's
    tunnelled: bool = False  # "data": inside an IPv6-in-IPv6 tunnel
    outer: tuple[str, str] | None = None  # tunnelled "data": the outer source, destination


def _ra_prefix(icmp: bytes) -> str | None:
    pos = RA_HEADER
    while pos + 2 <= len(icmp) and icmp[pos + 1]:
        otype, olen = icmp[pos], 8 * icmp[pos + 1]
        if otype == ND_OPT_PREFIX_INFO and olen == 32 and pos + olen <= len(icmp):
            plen = icmp[pos + 2]
            addr = ipaddress.IPv6Address(icmp[pos + 16 : pos + 32])
            return str(ipaddress.IPv6Network(f"{addr}/{plen}", strict=False))
        pos += olen
    return None


def _datagram_seq(ip: bytes, pos: int) -> int | None:
    from harness.apps import _common

    fields = _common.unpack(ip[pos + UDP_HLEN :])
    return None if fields is None else int(fields["seq"])


def classify(
    frame: bytes, mono: float, outgoing: bool, group: str | None = None
) -> WireEvent | None:
    """What an Ethernet frame on the MN's interface is, for the benchmark; None when it is
    none of: BU, BA, RS, RA, MLDv2 Report, a datagram to `group` (native or tunnelled)."""
    if len(frame) < ETH_HLEN + 40 or frame[12:14] != ETH_P_IPV6:
        return None
    walked = ipv6.parse(frame[ETH_HLEN:])
    if walked is None:
        return None
    ip, proto, pos = walked.raw, walked.upper, walked.offset
    src, dst = str(walked.src), str(walked.dst)
    if proto == NH_MH:
        try:
            msg = compact.parse_packet(ip)
            if msg.mhtype == MHType.BU:
                return WireEvent(
                    "bu", mono, outgoing, src, dst, msg.seq, None, msg.lifetime, msg.hoa
                )
            if msg.mhtype == MHType.BA:
                return WireEvent(
                    "ba", mono, outgoing, src, dst, msg.seq, msg.ba_status, msg.lifetime
                )
        except (compact.Malformed, struct.error, IndexError):
            return None
        return None
    if proto == NH_ICMPV6 and pos < len(ip):
        icmp = ip[pos:]
        if icmp[0] == ND_RS:
            return WireEvent("rs", mono, outgoing, src, dst)
        if icmp[0] == ND_RA:
            return WireEvent("ra", mono, outgoing, src, dst, prefix=_ra_prefix(icmp))
        if icmp[0] == MLDV2_REPORT:
            return WireEvent("mld-report", mono, outgoing, src, dst)
        return None
    if group is None:
        return None
    want = ipaddress.IPv6Address(group)
    if proto == NH_UDP and ipaddress.IPv6Address(dst) == want:
        return WireEvent("data", mono, outgoing, src, dst, seq=_datagram_seq(ip, pos))
    inner = walked.inner()
    if inner is not None and inner.upper == NH_UDP and inner.dst == want:
        return WireEvent(
            "data",
            mono,
            outgoing,
            str(inner.src),
            str(want),
            seq=_datagram_seq(inner.raw, inner.offset),
            tunnelled=True,
            outer=(src, dst),
        )
    return None


def wall_minus_mono() -> float:
    """The offset that turns the kernel's (wall clock) frame stamps into monotonic time:
    the smallest of a few samples (the one least disturbed by a preemption)."""
    samples = []
    for _ in range(5):
        m0 = time.monotonic()
        w = time.time()
        m1 = time.monotonic()
        samples.append((m1 - m0, w - (m0 + m1) / 2))
    return min(samples)[1]


class WireLog:
    """The interesting frames of a capture, classified as they come (a capture subscriber:
    quick), with a wait on a condition variable for the next matching one."""

    def __init__(self, group: str | None, offset: float) -> None:
        self.group = group
        self.offset = offset
        self._cond = threading.Condition()
        self._events: list[WireEvent] = []

    def on_frame(self, frame: Any) -> None:
        event = classify(frame.data, frame.time - self.offset, frame.outgoing, self.group)
        if event is not None:
            with self._cond:
                self._events.append(event)
                self._cond.notify_all()

    def events(self) -> list[WireEvent]:
        with self._cond:
            return list(self._events)

    def wait(self, pred: Callable[[WireEvent], bool], within: float) -> WireEvent | None:
        """The first event so far or within `within` seconds that matches; None if none."""
        deadline = time.monotonic() + within
        i = 0
        with self._cond:
            while True:
                while i < len(self._events):
                    if pred(self._events[i]):
                        return self._events[i]
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)


# ---------------------------------------------------------------------- analysis (pure)


@dataclass(frozen=True)
class Move:
    index: int  # 1, 2, ...
    from_link: int
    to_link: int
    start: float  # monotonic: the lab takes the MN off its link
    up: float  # monotonic: the MN's carrier is back, on the new link
    prefix: str  # the new link's /64
    resumed: bool = True  # the application got datagrams after the BA within the timeout


def move_kind(from_link: int, to_link: int, home: int = HOME_LINK) -> str:
    if from_link == home:
        return KIND_AWAY
    if to_link == home:
        return KIND_HOME
    return KIND_FOREIGN


def cycle(moves: int, links: int = 3, start: int = HOME_LINK) -> list[tuple[int, int]]:
    """(from, to) of each move round the access links: 1 -> 2 -> 3 -> 1 -> ..."""
    if links < 2:
        raise ValueError("a handover needs at least two access links")
    out, here = [], start
    for _ in range(moves):
        there = here % links + 1
        out.append((here, there))
        here = there
    return out


def _in(addr: str, prefix: str) -> bool:
    return ipaddress.IPv6Address(addr) in ipaddress.IPv6Network(prefix)


def _ms(t: float | None, t0: float | None) -> float | None:
    return None if t is None or t0 is None else round((t - t0) * 1000, 3)


def analyse_move(
    move: Move,
    end: float,
    wire: Sequence[WireEvent],
    data: Sequence[control.Event],
    gap: control.Gaps,
) -> dict[str, Any]:
    """The figures of one move from what was recorded in [move.start, end): the wire
    events, the receiver's `data` events (sorted by "mono") and the move's `gap`
    (control.move_gaps). Times in milliseconds from the move start."""
    window = [e for e in wire if move.start <= e.mono < end]
    rs = next((e for e in window if e.kind == "rs" and e.outgoing), None)
    ra = next(
        (e for e in window if e.kind == "ra" and not e.outgoing and e.prefix == move.prefix),
        None,
    )
    bus = [e for e in window if e.kind == "bu" and e.outgoing and _in(e.src, move.prefix)]
    seqs = {e.seq: e for e in bus}
    # the BA of one of them: the same sequence number (RFC 6275 §11.7.3), to a care-of
    # address of the new link, after that BU
    ba = next(
        (
            e
            for e in window
            if e.kind == "ba"
            and not e.outgoing
            and e.seq in seqs
            and _in(e.dst, move.prefix)
            and e.mono >= seqs[e.seq].mono
        ),
        None,
    )
    acked = seqs[ba.seq] if ba is not None else None
    first_bu = bus[0] if bus else None
    # datagrams that came on the new link (not frames in flight at the move), and through
    # the tunnel only those to a care-of address of that link
    arriving = [e for e in window if e.kind == "data" and not e.outgoing and e.mono >= move.up]
    native = next((e for e in arriving if not e.tunnelled), None)
    tunnelled = next(
        (e for e in arriving if e.tunnelled and e.outer and _in(e.outer[1], move.prefix)),
        None,
    )
    times = [float(e["mono"]) for e in data]
    i = bisect.bisect_left(times, move.start)
    j = bisect.bisect_left(times, end)
    before = times[i - 1] if i > 0 else None
    in_window = data[i:j]
    dups = control.duplicates(in_window)
    # the longest silence (what move_gaps measures): from the arrival just before the
    # move to the last one of the window, which two arrivals bound it
    view = data[max(i - 1, 0) : j]
    silence: tuple[float, float, Any] | None = None
    for a, b in zip(view, view[1:], strict=False):
        ta, tb = float(a["mono"]), float(b["mono"])
        if silence is None or tb - ta > silence[1] - silence[0]:
            silence = (ta, tb, b.get("seq"))
    # the path of the datagram that ended it: the first copy of its sequence number on
    # the wire (native from the visited link's router, or through the tunnel)
    carrier = None
    if silence is not None:
        carrier = next(
            (
                e
                for e in wire
                if e.kind == "data"
                and not e.outgoing
                and e.seq == silence[2]
                and silence[0] <= e.mono <= silence[1]
            ),
            None,
        )
    path = None if carrier is None else ("tunnel" if carrier.tunnelled else "native")
    resumed_at = silence[1] if silence is not None else None
    return {
        "move": move.index,
        "from": move.from_link,
        "to": move.to_link,
        "kind": move_kind(move.from_link, move.to_link),
        "resumed": move.resumed,
        "gap_ms": round(gap.longest * 1000, 3) if gap.received >= 2 else None,
        "gap_seqs": [gap.longest_from, gap.longest_to],
        "lost": len(gap.lost),
        "duplicates": sum(n - 1 for n in dups.values()),
        "received": len(in_window),
        "silence_before_ms": _ms(move.start, before),
        "gap_start_ms": _ms(silence[0] if silence else None, move.start),
        "link_ms": _ms(move.up, move.start),
        "rs_ms": _ms(rs.mono if rs else None, move.start),
        "ra_ms": _ms(ra.mono if ra else None, move.start),
        "bu_ms": _ms(first_bu.mono if first_bu else None, move.start),
        "ba_ms": _ms(ba.mono if ba else None, move.start),
        "bu_ba_ms": _ms(ba.mono if ba else None, acked.mono if acked else None),
        "bu_seq": acked.seq if acked else (first_bu.seq if first_bu else None),
        "bu_lifetime": first_bu.lifetime if first_bu else None,
        "bus": len([b for b in bus if ba is None or b.mono <= ba.mono]),
        "ba_status": ba.status if ba else None,
        "native_ms": _ms(native.mono if native else None, move.start),
        "tunnelled_ms": _ms(tunnelled.mono if tunnelled else None, move.start),
        "gap_end_ms": _ms(resumed_at, move.start),
        "resumed_by": path,
        "phases_ms": {
            "link": _ms(move.up, move.start),
            "detect": _ms(ra.mono if ra else None, move.up),
            "mn": _ms(first_bu.mono if first_bu else None, ra.mono if ra else None),
            "bu_ba": _ms(ba.mono if ba else None, acked.mono if acked else None),
            # at home nothing is tunnelled (RFC 6275 §11.5.5): no such phase
            "ha_data": None
            if move_kind(move.from_link, move.to_link) == KIND_HOME
            else _ms(tunnelled.mono if tunnelled else None, ba.mono if ba else None),
            "app": _ms(resumed_at, carrier.mono if carrier else None),
        },
    }


def analyse(
    moves: Sequence[Move],
    wire: Sequence[WireEvent],
    rx_events: Iterable[control.Event],
    stream: str | None = None,
    end: float | None = None,
) -> list[dict[str, Any]]:
    """Every move's figures (see analyse_move); the last move's window runs to `end`."""
    data = sorted(
        (e for e in control.data(rx_events, stream=stream) if "mono" in e and "seq" in e),
        key=lambda e: float(e["mono"]),
    )
    starts = [m.start for m in moves]
    gaps = control.move_gaps(data, stream, starts)
    out = []
    for k, (move, gap) in enumerate(zip(moves, gaps, strict=True)):
        stop = starts[k + 1] if k + 1 < len(starts) else (end if end is not None else float("inf"))
        out.append(analyse_move(move, stop, wire, data, gap))
    return out


def stats(values: Iterable[float | None]) -> dict[str, float | int] | None:
    """n, median, p95, min, max, mean of the values that exist (None when none do)."""
    got = [float(v) for v in values if v is not None]
    return control.summary(got).as_dict(digits=2) if got else None


def _phase(name: str) -> Callable[[dict[str, Any]], float | None]:
    def get(row: dict[str, Any]) -> float | None:
        value = row["phases_ms"][name]
        return None if value is None else float(value)

    return get


def _signalling(kind: str, start: float, prefix: str) -> Callable[[WireEvent], bool]:
    """A BU the MN sent (from a care-of address of `prefix`) or a BA it got (to one), after
    `start`."""

    def test(e: WireEvent) -> bool:
        if e.kind != kind or e.mono < start or e.outgoing != (kind == "bu"):
            return False
        return _in(e.src if kind == "bu" else e.dst, prefix)

    return test


def _data_after(after: float) -> Callable[[control.Event], bool]:
    def test(e: control.Event) -> bool:
        return e.get("event") == "data" and float(e["mono"]) > after

    return test


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Median, p95, min, max of the gap (all moves, and per kind), the BU->BA round trip,
    the time from the move to the first BU, each phase; and the totals."""

    def by_kind(key: Callable[[dict[str, Any]], float | None]) -> dict[str, Any]:
        out = {"all": stats(key(r) for r in rows)}
        for kind in KINDS:
            out[kind] = stats(key(r) for r in rows if r["kind"] == kind)
        return out

    return {
        "gap_ms": by_kind(lambda r: r["gap_ms"]),
        # which path ended the silence: the tunnel from the home agent, or the router of the
        # visited link forwarding natively (its MLD proxy still, or again, has a listener)
        "gap_ms_by_path": {
            path: stats(r["gap_ms"] for r in rows if r["resumed_by"] == path)
            for path in ("tunnel", "native")
        },
        "bu_ba_ms": by_kind(lambda r: r["bu_ba_ms"]),
        "move_to_bu_ms": by_kind(lambda r: r["bu_ms"]),
        "phases_ms": {name: by_kind(_phase(name)) for name, _ in PHASES},
        "totals": {
            "moves": len(rows),
            "resumed": sum(1 for r in rows if r["resumed"]),
            "lost": sum(r["lost"] for r in rows),
            "duplicates": sum(r["duplicates"] for r in rows),
            "received": sum(r["received"] for r in rows),
            "without_bu": sum(1 for r in rows if r["bu_ms"] is None),
            "without_ba": sum(1 for r in rows if r["bu_ms"] is not None and r["ba_ms"] is None),
            "retransmitted_bus": sum(max(r["bus"] - 1, 0) for r in rows),
            "resumed_by_tunnel": sum(1 for r in rows if r["resumed_by"] == "tunnel"),
            "resumed_by_native": sum(1 for r in rows if r["resumed_by"] == "native"),
        },
    }


def session_figures(events: Iterable[control.Event]) -> dict[str, Any]:
    """What the TCP session opened on the home link went through."""
    evs = list(events)
    rtts = [float(e["rtt"]) for e in evs if e.get("event") == "rtt" and e.get("rtt") is not None]
    return {
        "rounds": len(rtts),
        "late": sum(1 for e in evs if e.get("event") == "rtt" and not e.get("ok")),
        "stalls": sum(1 for e in evs if e.get("event") == "stall"),
        "closed": any(e.get("event") == "closed" for e in evs),
        "rtt_ms": stats(r * 1000 for r in rtts),
    }


def machine() -> dict[str, Any]:
    model = None
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "host": socket.gethostname(),
        "load_at_start": [round(x, 2) for x in os.getloadavg()],
    }


# ---------------------------------------------------------------------- the run


def _start_home_agents(world: Any, sut_ha: str) -> None:
    """A home agent on every access router: `sut_ha` ("reference" or a profile path) is
    the home link's, which gets every BU of the scenario; the others are the reference."""
    from harness.sut.profile import ProfileError

    others = tuple(range(1, world.lab.n + 1)) if sut_ha == "reference" else ()
    if sut_ha != "reference":
        try:
            world.start_home_agents(sut_ha, links=(HOME_LINK,))
        except ProfileError as exc:
            raise BenchError(str(exc)) from None
        others = tuple(i for i in range(1, world.lab.n + 1) if i != HOME_LINK)
    world.start_home_agents("reference", links=others)


def run(
    moves: int = DEFAULT_MOVES,
    rate: float = DEFAULT_RATE,
    source: str = "src",
    *,
    dwell: float = DEFAULT_DWELL,
    sut_mn: str = "reference",
    sut_ha: str = "reference",
    settle_timeout: float = SETTLE_TIMEOUT,
    workdir: Path | None = None,
    pcap: Path | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
    keep_events: bool = False,
) -> dict[str, Any]:
    """Build a mobility lab, run the scenario, tear everything down; the result.

    Raises harness.lab.topology.LabUnavailable when the lab cannot be built here, and
    BenchError when the scenario cannot start (a SUT that does not start, a stream that
    never reaches the application before the first move)."""
    from harness.lab.topology import LabError
    from harness.sut.adapters import SutError
    from harness.sut.profile import ProfileError
    from harness.tester import bootstrap
    from harness.tester import world as mobility
    from harness.tester.capture import Capture, CaptureError

    if moves < 1:
        raise ValueError("at least one move")
    if rate <= 0:
        raise ValueError("the rate must be positive")
    if source not in SOURCES:
        raise ValueError(f"source: one of {', '.join(SOURCES)}, not {source!r}")
    if dwell < 0:
        raise ValueError("the dwell time cannot be negative")
    started_wall = datetime.datetime.now(datetime.UTC)
    t_begin = time.monotonic()
    own_workdir = workdir is None
    work = Path(tempfile.mkdtemp(prefix="dmmconf-bench-")) if workdir is None else workdir
    work.mkdir(parents=True, exist_ok=True)
    lab = mobility.mobility_lab()
    world = mobility.World(lab, work)
    group = str(lab.plan.ssm_group6)
    src_addr = world.source_address(source)
    wire = WireLog(group, wall_minus_mono())
    capture = Capture(lab.ns("mn"), mobility.MN_IFACE, pcap, label="mn:mn0")
    capture.subscribe(wire.on_frame)
    recorded: list[Move] = []
    rx = session = None
    lab.up()  # LabUnavailable goes to the caller
    servers = contextlib.ExitStack()
    try:
        # The lab's named: the reference MN asks its HA for DNS updates (RFC 5026), and a
        # BA would otherwise wait for a server that is not there (the HA's DNS deadline).
        dns = servers.enter_context(bootstrap.optional_dns_server(lab))
        try:
            capture.start()
            _start_home_agents(world, sut_ha)
            world.start_mobile_node(sut_mn)
            world.mn_address(HOME_LINK)
            world.echo_server()
            session = world.session(SESSION_INTERVAL)
            rx = world.receiver(group, src_addr)
            world.source(source, group, rate, stream=STREAM)
            rx.wait_count("data", STEADY_DATAGRAMS, settle_timeout, "the stream, before the moves")
        except (SutError, ProfileError, CaptureError, LabError, AssertionError) as exc:
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BenchError(f"the scenario did not start: {detail} (logs in {work})") from exc
        assert rx is not None and session is not None
        schedule = cycle(moves, lab.n)
        for index, (frm, to) in enumerate(schedule, start=1):
            prefix = str(lab.plan.link(to).prefix6)
            start = time.monotonic()
            up = world.move(to)
            ba = None
            bu = wire.wait(_signalling("bu", start, prefix), settle_timeout)
            if bu is not None:
                ba = wire.wait(_signalling("ba", start, prefix), settle_timeout)
            after = max(up, ba.mono if ba is not None else up)
            try:
                rx.wait_count(
                    _data_after(after),
                    RESUME_DATAGRAMS,
                    settle_timeout,
                    "datagrams after the handover",
                )
                resumed = True
            except control.AppExpectationFailed:
                resumed = False
            move = Move(index, frm, to, start, up, prefix, resumed)
            recorded.append(move)
            if progress is not None:
                progress(
                    {
                        "move": index,
                        "from": frm,
                        "to": to,
                        "resumed": resumed,
                        "bu": bu is not None,
                        "ba": ba is not None,
                    }
                )
            if dwell:
                time.sleep(dwell)  # the scenario's time on the link, not a wait for anything
        end = time.monotonic()
        rx_events = rx.events()
        session_events = session.events()
    finally:
        world.close()
        capture.stop()
        servers.close()
        lab.down()
    if own_workdir:  # the SUTs' logs; a run that did not start keeps them (BenchError)
        shutil.rmtree(work, ignore_errors=True)
    rows = analyse(recorded, wire.events(), rx_events, STREAM, end)
    cstats = capture.stats()
    result: dict[str, Any] = {
        "benchmark": "handover",
        "started": started_wall.isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - t_begin, 1),
        "dns_server": "named" if dns.server is not None else f"none: {dns.why_not}",
        "parameters": {
            "moves": moves,
            "rate": rate,
            "source": source,
            "source_address": src_addr,
            "group": group,
            "dwell_s": dwell,
            "settle_timeout_s": settle_timeout,
            "sut_mn": sut_mn,
            "sut_ha": sut_ha,
            "cycle": " -> ".join(str(x) for x in [HOME_LINK, *(to for _, to in schedule)]),
        },
        "machine": machine(),
        "moves": rows,
        "summary": summarize(rows),
        "session": session_figures(session_events),
        "capture": {
            "frames": cstats.frames,
            "kernel_drops": cstats.kernel_drops,
            "pcap": str(pcap) if pcap is not None else None,
        },
        "workdir": None if own_workdir else str(work),
    }
    result["machine"]["load_at_end"] = [round(x, 2) for x in os.getloadavg()]
    if keep_events:  # the raw material, times in seconds from the first move's start
        t0 = recorded[0].start if recorded else 0.0
        result["events"] = {
            "t0": t0,
            "moves": [[round(m.start - t0, 6), round(m.up - t0, 6), m.to_link] for m in recorded],
            "wire": [
                {**asdict(e), "mono": round(e.mono - t0, 6)}
                for e in wire.events()
                if e.mono >= t0 - 1.0
            ],
            "app": [
                [round(float(e["mono"]) - t0, 6), e.get("seq"), e.get("ifindex")]
                for e in control.data(rx_events)
                if float(e["mono"]) >= t0 - 1.0
            ],
        }
    return result


# ---------------------------------------------------------------------- text


def _f(value: Any, width: int, digits: int = 1) -> str:
    if value is None:
        return "-".rjust(width)
    if isinstance(value, float):
        return f"{value:.{digits}f}".rjust(width)
    return str(value).rjust(width)


def format_report(result: dict[str, Any]) -> str:
    p, m, s = result["parameters"], result["machine"], result["summary"]
    lines = [
        f"handover benchmark: {p['moves']} moves, links {p['cycle'][:40]}"
        f"{'...' if len(p['cycle']) > 40 else ''}",
        f"  stream: {p['rate']:g} datagrams/s from {p['source']} ({p['source_address']}) to "
        f"{p['group']}, dwell {p['dwell_s']:g} s per link; MN {p['sut_mn']}, HAs {p['sut_ha']}",
        f"  machine: {m['cores']} cores, {m['cpu'] or 'unknown CPU'}, Linux {m['kernel']}, "
        f"Python {m['python']}, load {m['load_at_start'][0]:.2f} -> {m['load_at_end'][0]:.2f}",
        "",
        "   # move  kind             gap ms  lost  dup  move->BU  BU->BA  BA->tunnel"
        "  gap from, to  via     note",
        "                                                      (ms)    (ms)  data (ms)"
        "     (ms, move=0)",
    ]
    for r in result["moves"]:
        note = []
        if not r["resumed"]:
            note.append("NO DATA AFTER THE MOVE")
        if r["bu_ms"] is None:
            note.append("no BU")
        elif r["ba_ms"] is None:
            note.append("no BA")
        elif r["bus"] > 1:
            note.append(f"{r['bus']} BUs")
        if r["kind"] != KIND_HOME and r["tunnelled_ms"] is None:
            note.append("nothing tunnelled")
        lines.append(
            f"{r['move']:>4} {r['from']}->{r['to']}  {r['kind']:<15}"
            f"{_f(r['gap_ms'], 8)}{_f(r['lost'], 6)}{_f(r['duplicates'], 5)}"
            f"{_f(r['bu_ms'], 10)}{_f(r['bu_ba_ms'], 8)}{_f(r['phases_ms']['ha_data'], 12)}"
            f"{_f(r['gap_start_ms'], 8)},{_f(r['gap_end_ms'], 6)}  {(r['resumed_by'] or '-'):<7} "
            f"{', '.join(note)}"
        )
    lines += ["", "summary (ms)                             n   median      p95      min      max"]

    def row(label: str, st: dict[str, Any] | None) -> None:
        if st is None:
            lines.append(f"  {label:<35}{'0':>5}        -")
            return
        lines.append(
            f"  {label:<35}{st['n']:>5}{st['median']:>9.1f}{st['p95']:>9.1f}"
            f"{st['min']:>9.1f}{st['max']:>9.1f}"
        )

    for kind in ("all", *KINDS):
        row(f"gap, {kind}", s["gap_ms"][kind])
    for path in ("tunnel", "native"):
        row(
            f"gap, ended {'through the tunnel' if path == 'tunnel' else 'natively'}",
            s["gap_ms_by_path"][path],
        )
    for kind in ("all", *KINDS):
        row(f"BU->BA round trip, {kind}", s["bu_ba_ms"][kind])
    row("move->first BU, all", s["move_to_bu_ms"]["all"])
    lines += ["", "phases (median ms)" + "".join(f"{k:>17}" for k in KINDS)]
    for name, what in PHASES:
        cells = []
        for kind in KINDS:
            st = s["phases_ms"][name][kind]
            cells.append(_f(st["median"] if st else None, 17))
        lines.append(f"  {name:<16}" + "".join(cells) + f"   {what}")
    t = s["totals"]
    sess = result["session"]
    lines += [
        "",
        f"totals: {t['moves']} moves, {t['moves'] - t['resumed']} without data afterwards, "
        f"{t['lost']} datagrams lost, {t['duplicates']} duplicated, "
        f"{t['without_bu']} moves without a BU, {t['without_ba']} BUs without a BA, "
        f"{t['retransmitted_bus']} BU retransmissions",
        f"the silence ended with a tunnelled datagram after {t['resumed_by_tunnel']} moves, "
        f"with a native one (from the router of the link) after {t['resumed_by_native']}",
        f"TCP session: {sess['rounds']} round trips, {sess['stalls']} stalls, "
        f"{'closed' if sess['closed'] else 'still open'}"
        + (
            f", rtt median {sess['rtt_ms']['median']:.1f} ms, max {sess['rtt_ms']['max']:.1f} ms"
            if sess["rtt_ms"]
            else ""
        ),
        f"capture: {result['capture']['frames']} frames, "
        f"{result['capture']['kernel_drops']} dropped by the kernel"
        + (f", {result['capture']['pcap']}" if result["capture"]["pcap"] else ""),
    ]
    return "\n".join(lines)


__all__ = [
    "KINDS",
    "PHASES",
    "BenchError",
    "Move",
    "WireEvent",
    "WireLog",
    "analyse",
    "analyse_move",
    "classify",
    "cycle",
    "format_report",
    "move_kind",
    "run",
    "session_figures",
    "stats",
    "summarize",
]
