"""`dmmconf bench handover`: the handover benchmark (harness/bench/handover.py).

It builds its own mobility lab (root, or a user namespace of one's own), runs the
scenario, prints a table of the moves and a summary, and with --json writes the whole
result. Exit status: 0 when the application got the stream back after every move, 1 when
it did not after some move (the figures are still printed) or the scenario could not
start, 2 when the lab cannot be built here or an option is wrong.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.errors import UserError

MIN_MOVES_FOR_FIGURES = 20  # the published median and p95 are over at least 20 moves


class _Failed(UserError):
    exit_status = 1


def register(sub: Any) -> None:
    from harness.bench import codec as codec_bench
    from harness.bench import datapath as datapath_bench
    from harness.bench import fanout, handover, registrations

    p = sub.add_parser(
        "bench",
        help="benchmarks in the lab (needs root): the multicast gap across handovers",
        description="Benchmarks of the reference (or of profile SUTs) in a lab of their own.",
    )
    kinds = p.add_subparsers(dest="bench", required=True)
    h = kinds.add_parser(
        "handover",
        help="the multicast gap an application sees across handovers, and the BU->BA round trip",
        description="Builds a mobility lab of its own (home agents on every access router, "
        "the MN on link 1 with a TCP session and an application receiving an SSM group), "
        "moves the MN round the links 1->2->3->1... and reports, per move and in summary "
        "(median, p95, min, max), the longest silence the application saw, the datagrams "
        "lost and duplicated, the BU->BA round trip and the time from the move to the BU "
        "on the MN's interface. Needs root (or a user namespace of one's own).",
    )
    h.add_argument(
        "--moves",
        type=int,
        default=handover.DEFAULT_MOVES,
        metavar="N",
        help=f"handovers round links 1->2->3->1... (default {handover.DEFAULT_MOVES})",
    )
    h.add_argument(
        "--rate",
        type=float,
        default=handover.DEFAULT_RATE,
        metavar="PPS",
        help=f"datagrams per second of the stream (default {handover.DEFAULT_RATE:g})",
    )
    h.add_argument(
        "--source",
        choices=handover.SOURCES,
        default="src",
        help="the multicast source: behind the core (src, default) or the CDN on link 1 (cdn)",
    )
    h.add_argument(
        "--dwell",
        type=float,
        default=handover.DEFAULT_DWELL,
        metavar="S",
        help=f"seconds on each link once the stream is back (default {handover.DEFAULT_DWELL:g})",
    )
    h.add_argument("--json", metavar="FILE", help="write the whole result as JSON")
    h.add_argument("--pcap", metavar="FILE", help="keep the capture of the MN's interface")
    h.add_argument(
        "--events",
        action="store_true",
        help="put every classified frame and datagram arrival in the JSON too (large)",
    )
    h.add_argument(
        "--sut-mn", default="reference", metavar="PROFILE", help="the MN (default: reference)"
    )
    h.add_argument(
        "--sut-ha",
        default="reference",
        metavar="PROFILE",
        help="the HA of the home link (ar1), which gets every BU of the scenario; the other "
        "access routers run the reference HA (default: reference everywhere)",
    )
    h.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    h.set_defaults(func=run)
    d = kinds.add_parser(
        "datapath",
        help="what the lab's multicast data paths cost: one-way latency per hop, handover gap",
        description="For each multicast data path this machine has (userspace always, the "
        "kernel's MRT6 where it exists), in one run: the one-way latency of multicast over "
        "two routers against unicast over the same routers, the added cost per hop, and with "
        "--moves the handover benchmark's multicast gap. Needs root.",
    )
    d.add_argument("--packets", type=int, default=datapath_bench.DEFAULT_PACKETS, metavar="N")
    d.add_argument(
        "--moves", type=int, default=0, metavar="N", help="also run N handovers per path"
    )
    d.add_argument("--json", metavar="FILE", help="write the whole result as JSON")
    d.set_defaults(func=run_datapath)
    c = kinds.add_parser(
        "codec",
        help="decode and encode rates of a BU: scapy, the fast codec, the struct ceiling",
        description="In one process: messages per second decoding and encoding a Binding "
        "Update with a three-record MLDv2 Multicast State option, by scapy (the baseline), "
        "by the fast codec (harness.wire.compact) and by bare struct calls (the ceiling), "
        "best of --repeats rounds; checks that the fast encoder gives scapy's bytes. "
        "No root needed.",
    )
    c.add_argument("--seconds", type=float, default=codec_bench.DEFAULT_SECONDS, metavar="S")
    c.add_argument("--repeats", type=int, default=codec_bench.DEFAULT_REPEATS, metavar="N")
    _json_option(c)
    c.set_defaults(func=run_codec)
    r = kinds.add_parser(
        "ha",
        help="BU->BA per second a home agent sustains at 1k, 10k, 100k bindings",
        description="In a lab of its own: a load generator on access link 2 registers home "
        "addresses with the HA on ar1 (the reference, or --sut's) until it holds each of "
        "--bindings, then refreshes random bindings for --seconds: BU->BA per second, new "
        "registrations per second, memory per binding; against a bare echo loop on ar1 "
        "measured first over the same path (the ceiling). Needs root.",
    )
    _counts_option(r, "--bindings", registrations.DEFAULT_COUNTS, "binding counts to measure at")
    r.add_argument("--seconds", type=float, default=registrations.DEFAULT_SECONDS, metavar="S")
    r.add_argument(
        "--window",
        type=int,
        default=registrations.DEFAULT_WINDOW,
        metavar="N",
        help="BUs in flight (default %(default)s)",
    )
    r.add_argument(
        "--sut", default="reference", metavar="PROFILE", help="the HA (default: the reference)"
    )
    _json_option(r)
    r.set_defaults(func=run_registrations)
    f = kinds.add_parser(
        "fanout",
        help="tunnelled copies per second of one group to 1, 100, 1000 MN tunnels",
        description="In a lab of its own: N home addresses registered with the HA on ar1, "
        "each subscribing one group (Multicast State), the CDN on the home link sending to "
        "it in a bare loop; the IPv6-in-IPv6 copies per second reaching the care-of "
        "address, against a bare sendto loop of the same tunnelled packet on ar1 measured "
        "first over the same path (the ceiling). Needs root.",
    )
    _counts_option(f, "--tunnels", fanout.DEFAULT_COUNTS, "tunnel counts to measure at")
    f.add_argument("--seconds", type=float, default=fanout.DEFAULT_SECONDS, metavar="S")
    f.add_argument("--sut", default="reference", metavar="PROFILE")
    _json_option(f)
    f.set_defaults(func=run_fanout)
    a = kinds.add_parser(
        "all",
        help="every benchmark in one run, one table of figures against their ceilings",
        description="Runs the codec, home agent and handover benchmarks (and with "
        "--conformance the conformance run serial and with 2 workers) and prints one table: "
        "each figure, the ceiling or baseline measured in the same invocation, the ratio, "
        "the target of issue 15 and whether it is met. Needs root.",
    )
    _counts_option(a, "--bindings", registrations.DEFAULT_COUNTS, "binding counts (bench ha)")
    _counts_option(a, "--tunnels", fanout.DEFAULT_COUNTS, "tunnel counts (bench fanout)")
    a.add_argument(
        "--seconds",
        type=float,
        metavar="S",
        help="seconds per measurement of bench ha and bench fanout (default: each one's own)",
    )
    a.add_argument("--moves", type=int, default=handover.DEFAULT_MOVES, metavar="N")
    a.add_argument("--conformance", action="store_true", help="also time the conformance run")
    _json_option(a)
    a.set_defaults(func=run_all)


def _counts_option(parser: Any, name: str, default: tuple[int, ...], what: str) -> None:
    parser.add_argument(
        name,
        default=",".join(str(n) for n in default),
        metavar="N,N,...",
        help=f"{what} (default %(default)s)",
    )


def _json_option(parser: Any) -> None:
    parser.add_argument("--json", metavar="FILE", help="write the whole result as JSON")


def _counts(text: str, option: str) -> list[int]:
    try:
        counts = [int(n) for n in text.split(",") if n.strip()]
    except ValueError:
        raise UserError(f"{option}: numbers separated by commas, not {text!r}") from None
    if not counts or min(counts) < 1:
        raise UserError(f"{option}: counts of at least 1, not {text!r}")
    return counts


def _json_path(text: str | None) -> Path | None:
    out = Path(text) if text else None
    if out is not None and not out.parent.exists():
        raise UserError(f"--json: no directory {str(out.parent)!r}")
    return out


def _sut_path(sut: str) -> None:
    if sut != "reference" and not Path(sut).is_file():
        raise UserError(f"--sut: no profile file {sut!r}")


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _lab_errors() -> Iterator[None]:
    """A lab that cannot be built here is the user's to fix (exit 2); an HA that does not
    start ends the benchmark (exit 1)."""
    from harness.lab.topology import LabUnavailable
    from harness.sut.adapters import SutError
    from harness.sut.profile import ProfileError

    try:
        yield
    except LabUnavailable as exc:
        hint = f" ({exc.hint})" if exc.hint else ""
        raise UserError(f"the lab cannot be built here: {exc}{hint}") from None
    except (SutError, ProfileError) as exc:
        raise _Failed(f"the home agent did not start: {exc}") from None


def _emit(result: dict[str, Any], report: str, out: Path | None, command: str) -> None:
    result["command"] = command
    print(report)
    if out is not None:
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"JSON: {out}")


def run_fanout(args: argparse.Namespace) -> int:
    from harness.bench import fanout

    counts = _counts(args.tunnels, "--tunnels")
    if not args.seconds > 0:
        raise UserError("--seconds must be positive")
    _sut_path(args.sut)
    out = _json_path(args.json)
    with _lab_errors():
        result = fanout.run(counts, seconds=args.seconds, sut=args.sut, progress=_progress)
    command = f"dmmconf bench fanout --tunnels {args.tunnels} --seconds {args.seconds:g}"
    _emit(result, fanout.format_report(result), out, command)
    return 0


def run_all(args: argparse.Namespace) -> int:
    from harness.bench import summary

    counts = _counts(args.bindings, "--bindings")
    tunnels = _counts(args.tunnels, "--tunnels")
    if args.moves < 1:
        raise UserError("--moves must be at least 1")
    if args.seconds is not None and not args.seconds > 0:
        raise UserError("--seconds must be positive")
    out = _json_path(args.json)
    with _lab_errors():
        result = summary.run(
            counts=counts,
            tunnels=tunnels,
            seconds=args.seconds,
            moves=args.moves,
            conformance=args.conformance,
            progress=lambda m: _progress(f"bench: {m}"),
        )
    command = "dmmconf bench all " + " ".join(shlex.quote(a) for a in sys.argv[3:])
    _emit(result, summary.format_report(result), out, command)
    return 0


def run_registrations(args: argparse.Namespace) -> int:
    from harness.bench import registrations

    counts = _counts(args.bindings, "--bindings")
    if not args.seconds > 0 or args.window < 1:
        raise UserError("--seconds must be positive and --window at least 1")
    _sut_path(args.sut)
    out = _json_path(args.json)
    with _lab_errors():
        result = registrations.run(
            counts, seconds=args.seconds, window=args.window, sut=args.sut, progress=_progress
        )
    command = (
        f"dmmconf bench ha --bindings {args.bindings} --seconds {args.seconds:g} "
        f"--window {args.window}"
    )
    _emit(result, registrations.format_report(result), out, command)
    return 0


def run_codec(args: argparse.Namespace) -> int:
    from harness.bench import codec as codec_bench

    if not args.seconds > 0 or args.repeats < 1:
        raise UserError("--seconds must be positive and --repeats at least 1")
    out = _json_path(args.json)
    result = codec_bench.run(args.seconds, args.repeats)
    command = f"dmmconf bench codec --seconds {args.seconds:g} --repeats {args.repeats}"
    _emit(result, codec_bench.format_report(result), out, command)
    return 0 if result["byte_identical"] else 1


def run_datapath(args: argparse.Namespace) -> int:
    from harness.bench import datapath as datapath_bench
    from harness.lab.topology import LabUnavailable

    if args.packets < 1 or args.moves < 0:
        raise UserError("--packets must be at least 1 and --moves not negative")
    out = Path(args.json) if args.json else None
    if out is not None and not out.parent.exists():
        raise UserError(f"--json: no directory {str(out.parent)!r}")
    try:
        result = datapath_bench.run(
            args.packets, args.moves, progress=lambda m: print(m, file=sys.stderr, flush=True)
        )
    except LabUnavailable as exc:
        hint = f" ({exc.hint})" if exc.hint else ""
        raise UserError(f"the lab cannot be built here: {exc}{hint}") from None
    result["command"] = f"dmmconf bench datapath --packets {args.packets} --moves {args.moves}"
    print(datapath_bench.format_report(result))
    if out is not None:
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"JSON: {out}")
    return 0


def run(args: argparse.Namespace) -> int:
    from harness.bench import handover
    from harness.lab.topology import LabUnavailable

    if args.moves < 1:
        raise UserError(f"--moves must be at least 1, not {args.moves}")
    if not args.rate > 0:
        raise UserError(f"--rate must be positive, not {args.rate:g}")
    if args.dwell < 0:
        raise UserError(f"--dwell cannot be negative ({args.dwell:g})")
    for option, value in (("--sut-mn", args.sut_mn), ("--sut-ha", args.sut_ha)):
        if value != "reference" and not Path(value).is_file():
            raise UserError(f"{option}: no profile file {value!r}")
    out = Path(args.json) if args.json else None
    if out is not None and not out.parent.exists():
        raise UserError(f"--json: no directory {str(out.parent)!r}")

    def progress(p: dict[str, Any]) -> None:
        if args.quiet:
            return
        what = "stream back" if p["resumed"] else "NO DATA"
        sig = "BU+BA" if p["ba"] else ("BU, no BA" if p["bu"] else "no BU")
        print(
            f"move {p['move']}/{args.moves}: {p['from']}->{p['to']}, {sig}, {what}",
            file=sys.stderr,
            flush=True,
        )

    try:
        result = handover.run(
            args.moves,
            args.rate,
            args.source,
            dwell=args.dwell,
            sut_mn=args.sut_mn,
            sut_ha=args.sut_ha,
            pcap=Path(args.pcap) if args.pcap else None,
            progress=progress,
            keep_events=args.events,
        )
    except LabUnavailable as exc:
        hint = f" ({exc.hint})" if exc.hint else ""
        raise UserError(f"the lab cannot be built here: {exc}{hint}") from None
    except handover.BenchError as exc:
        raise _Failed(str(exc)) from None
    result["command"] = "dmmconf bench handover " + " ".join(shlex.quote(a) for a in _argv(args))
    print(handover.format_report(result))
    if args.moves < MIN_MOVES_FOR_FIGURES:
        print(
            f"note: {args.moves} moves; the published figures use at least "
            f"{MIN_MOVES_FOR_FIGURES} (the default is {handover.DEFAULT_MOVES})"
        )
    if out is not None:
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"JSON: {out}")
    missing = result["summary"]["totals"]["moves"] - result["summary"]["totals"]["resumed"]
    if missing:
        print(
            f"dmmconf bench: the application got no data after {missing} move(s)",
            file=sys.stderr,
        )
        return 1
    return 0


def _argv(args: argparse.Namespace) -> list[str]:
    """The options of this run, as a command line (for the record in the result)."""
    out = ["--moves", str(args.moves), "--rate", f"{args.rate:g}", "--source", args.source]
    out += ["--dwell", f"{args.dwell:g}"]
    if args.sut_mn != "reference":
        out += ["--sut-mn", args.sut_mn]
    if args.sut_ha != "reference":
        out += ["--sut-ha", args.sut_ha]
    return out
