"""The handover benchmark (harness/bench/handover.py, `dmmconf bench handover`).

Unit tests of its pure parts: what it makes of a frame on the MN's interface, how it pairs
BUs with BAs and splits the receiver's stream into moves, its statistics and its report,
and the command's refusals. One lab run of three moves checks the shape of a real result.
Nothing here judges how fast anything is: the benchmark reports, it does not pass or fail
on figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
from typing import Any

import pytest
from scapy.layers.inet import UDP
from scapy.layers.inet6 import (
    HAO,
    ICMPv6MLDMultAddrRec,
    ICMPv6MLReport2,
    ICMPv6ND_RA,
    ICMPv6ND_RS,
    ICMPv6NDOptPrefixInfo,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    RouterAlert,
)
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw

from harness.apps import _common, control
from harness.bench import handover
from harness.bench.handover import (
    KIND_AWAY,
    KIND_FOREIGN,
    KIND_HOME,
    Move,
    WireEvent,
    analyse,
    analyse_move,
    classify,
    cycle,
    move_kind,
    summarize,
)
from harness.errors import UserError
from harness.wire.mobility import BindingAck, BindingUpdate

HA = "2001:db8:1::1"
HOA = "2001:db8:1::100"
COA2 = "2001:db8:2::100"
COA3 = "2001:db8:3::100"
SRC = "2001:db8:c2::10"
GROUP = "ff3e::8000:1"
P1, P2, P3 = "2001:db8:1::/64", "2001:db8:2::/64", "2001:db8:3::/64"
MAC = "02:00:00:00:00:01"


def frame(pkt: Any) -> bytes:
    return bytes(Ether(src=MAC, dst="33:33:00:00:00:01") / pkt)


def datagram(seq: int, src: str = SRC) -> Any:
    return IPv6(src=src, dst=GROUP) / UDP(sport=4000, dport=5000) / Raw(_common.pack("b", seq))


# ---------------------------------------------------------------------- classify


def test_a_binding_update_with_its_home_address_option() -> None:
    bu = (
        IPv6(src=COA2, dst=HA)
        / IPv6ExtHdrDestOpt(options=[HAO(hoa=HOA)])
        / BindingUpdate(seq=4711, mhtime=100, flags=0x300)
    )
    e = classify(frame(bu), 12.5, True, GROUP)
    assert e is not None
    assert (e.kind, e.seq, e.lifetime, e.hoa, e.src, e.dst) == ("bu", 4711, 100, HOA, COA2, HA)
    assert e.outgoing and e.mono == 12.5


def test_a_binding_ack_behind_a_type_2_routing_header() -> None:
    ba = (
        IPv6(src=HA, dst=COA2)
        / IPv6ExtHdrRouting(type=2, segleft=1, addresses=[HOA])
        / BindingAck(status=0, seq=4711, mhtime=100)
    )
    e = classify(frame(ba), 1.0, False, GROUP)
    assert e is not None
    assert (e.kind, e.seq, e.status, e.lifetime, e.dst) == ("ba", 4711, 0, 100, COA2)
    refused = IPv6(src=HA, dst=HOA) / BindingAck(status=135, seq=9)  # at home: no RH2
    e2 = classify(frame(refused), 1.0, False, GROUP)
    assert e2 is not None and (e2.kind, e2.status, e2.seq) == ("ba", 135, 9)


def test_router_solicitations_advertisements_and_reports() -> None:
    rs = classify(frame(IPv6(src="fe80::1", dst="ff02::2") / ICMPv6ND_RS()), 0.0, True)
    assert rs is not None and rs.kind == "rs"
    ra = (
        IPv6(src="fe80::2", dst="ff02::1")
        / ICMPv6ND_RA(H=1)
        / ICMPv6NDOptPrefixInfo(prefix="2001:db8:2::", prefixlen=64, R=1)
    )
    e = classify(frame(ra), 0.0, False)
    assert e is not None and (e.kind, e.prefix) == ("ra", P2)
    bare = classify(frame(IPv6(src="fe80::2", dst="ff02::1") / ICMPv6ND_RA()), 0.0, False)
    assert bare is not None and bare.prefix is None
    report = (
        IPv6(src="fe80::1", dst="ff02::16")
        / IPv6ExtHdrHopByHop(options=[RouterAlert(value=0)])
        / ICMPv6MLReport2(records=[ICMPv6MLDMultAddrRec(rtype=1, dst=GROUP, sources=[SRC])])
    )
    r = classify(frame(report), 0.0, True)
    assert r is not None and r.kind == "mld-report"


def test_datagrams_of_the_group_native_and_tunnelled() -> None:
    native = classify(frame(datagram(42)), 3.0, False, GROUP)
    assert native is not None
    assert (native.kind, native.seq, native.tunnelled, native.outer) == ("data", 42, False, None)
    tunnelled = classify(frame(IPv6(src=HA, dst=COA2) / datagram(43)), 3.0, False, GROUP)
    assert tunnelled is not None
    assert (tunnelled.kind, tunnelled.seq, tunnelled.tunnelled) == ("data", 43, True)
    assert (tunnelled.src, tunnelled.dst, tunnelled.outer) == (SRC, GROUP, (HA, COA2))
    # the datagram of some other application: no sequence number, still data of the group
    other = IPv6(src=SRC, dst=GROUP) / UDP(dport=5000) / Raw(b"hello")
    e = classify(frame(other), 3.0, False, GROUP)
    assert e is not None and e.kind == "data" and e.seq is None


def test_what_is_none_of_its_business() -> None:
    other_group = IPv6(src=SRC, dst="ff3e::9") / UDP(dport=5000) / Raw(_common.pack("b", 1))
    assert classify(frame(other_group), 0.0, False, GROUP) is None
    assert classify(frame(datagram(1)), 0.0, False, None) is None  # no group: no data
    assert classify(bytes(Ether() / ARP()), 0.0, False, GROUP) is None
    assert classify(frame(datagram(1))[:40], 0.0, False, GROUP) is None  # truncated
    bad_mh = bytearray(frame(IPv6(src=COA2, dst=HA) / BindingUpdate(seq=1)))
    bad_mh[14 + 40 + 1] = 200  # a Header Len that runs past the packet
    assert classify(bytes(bad_mh), 0.0, True, GROUP) is None


# ---------------------------------------------------------------------- the scenario


def test_the_cycle_goes_round_the_links_from_home() -> None:
    assert cycle(7) == [(1, 2), (2, 3), (3, 1), (1, 2), (2, 3), (3, 1), (1, 2)]
    assert cycle(3, links=2) == [(1, 2), (2, 1), (1, 2)]
    assert [move_kind(a, b) for a, b in cycle(3)] == [KIND_AWAY, KIND_FOREIGN, KIND_HOME]
    with pytest.raises(ValueError):
        cycle(3, links=1)


# ---------------------------------------------------------------------- analysis


def ev(kind: str, t: float, out: bool, src: str = "", dst: str = "", **kw: Any) -> WireEvent:
    return WireEvent(kind, t, out, src, dst, **kw)


def rx(times_seqs: list[tuple[float, int]]) -> list[dict[str, Any]]:
    return [{"event": "data", "mono": t, "seq": s, "stream": "b"} for t, s in times_seqs]


def steady(t0: float, t1: float, seq0: int, step: float = 0.005) -> list[tuple[float, int]]:
    out, t, s = [], t0, seq0
    while t < t1 - 1e-9:
        out.append((round(t, 6), s))
        t += step
        s += 1
    return out


def test_one_move_paired_on_the_wire_and_seen_by_the_application() -> None:
    """A move at t=10: the first BU is lost, its retransmission (a new sequence number,
    RFC 6275 §11.8) is acknowledged; a BA for another care-of address is not this move's,
    nor are a frame that was in flight at the move and one tunnelled to another CoA. The
    stream stops at 9.998 and comes back through the tunnel at 10.1195."""
    move = Move(1, 1, 2, start=10.0, up=10.002, prefix=P2)
    wire = [
        ev("ra", 9.99, False, prefix=P1),  # the old link's, before the move
        ev("data", 10.001, False, SRC, GROUP, seq=20),  # in flight: before the carrier
        ev("rs", 10.003, True),
        ev("data", 10.004, False, SRC, GROUP, seq=21, tunnelled=True, outer=(HA, COA3)),
        ev("ra", 10.010, False, prefix=P2),
        ev("bu", 10.020, True, COA2, HA, seq=7),
        ev("ba", 10.025, False, HA, COA3, seq=7, status=0),  # another CoA: not ours
        ev("bu", 10.070, True, COA2, HA, seq=8),
        ev("ba", 10.100, False, HA, COA2, seq=8, status=0),
        ev("data", 10.119, False, SRC, GROUP, seq=24, tunnelled=True, outer=(HA, COA2)),
    ]
    data = rx([*steady(9.9, 9.999, 0), (10.1195, 24), (10.125, 25), (10.130, 26)])
    [gap] = control.move_gaps(data, None, [move.start])
    r = analyse_move(move, 11.0, wire, data, gap)
    assert r["kind"] == KIND_AWAY
    assert r["rs_ms"] == 3.0 and r["ra_ms"] == 10.0
    assert r["bu_ms"] == 20.0  # the move to the first BU
    assert r["bu_ba_ms"] == 30.0 and r["bu_seq"] == 8 and r["bus"] == 2  # paired by seq
    assert r["ba_status"] == 0
    last_before = data[19]["mono"]
    assert r["gap_ms"] == round((10.1195 - last_before) * 1000, 3)
    assert r["gap_seqs"] == [19, 24] and r["lost"] == 4  # 20..23
    assert r["gap_start_ms"] == round((last_before - 10.0) * 1000, 3)
    assert r["gap_end_ms"] == 119.5
    assert r["resumed_by"] == "tunnel" and r["tunnelled_ms"] == 119.0 and r["native_ms"] is None
    ph = r["phases_ms"]
    assert ph["link"] == 2.0 and ph["detect"] == 8.0 and ph["mn"] == 10.0
    assert ph["bu_ba"] == 30.0 and ph["ha_data"] == 19.0 and ph["app"] == 0.5


def test_a_move_without_answer_and_the_native_path() -> None:
    move = Move(3, 3, 1, start=5.0, up=5.001, prefix=P1)
    wire = [
        ev("bu", 5.010, True, HOA, HA, seq=3, lifetime=0),
        ev("data", 5.004, False, SRC, GROUP, seq=101),  # native, back home
    ]
    data = rx([(4.999, 100), (5.0045, 101), (5.009, 102), (5.009, 102)])  # one duplicate
    [gap] = control.move_gaps(data, None, [move.start])
    r = analyse_move(move, 6.0, wire, data, gap)
    assert r["kind"] == KIND_HOME
    assert r["bu_ms"] == 10.0 and r["bu_lifetime"] == 0
    assert r["ba_ms"] is None and r["bu_ba_ms"] is None and r["bus"] == 1
    assert r["resumed_by"] == "native" and r["native_ms"] == 4.0
    assert r["duplicates"] == 1 and r["lost"] == 0
    assert r["phases_ms"]["ha_data"] is None  # nothing is tunnelled at home


def test_analyse_splits_the_stream_at_each_move_start() -> None:
    """Three moves at 1, 2, 3 s; the stream (200/s) is silent for 50 ms after the first
    move and 100 ms after the second; each move gets its own silence and losses."""
    stream = [p for p in steady(0.5, 4.0, 0) if not (1.0 < p[0] < 1.05 or 2.0 < p[0] < 2.1)]
    moves = [
        Move(1, 1, 2, 1.0, 1.001, P2),
        Move(2, 2, 3, 2.0, 2.001, P3),
        Move(3, 3, 1, 3.0, 3.001, P1),
    ]
    rows = analyse(moves, [], rx(stream), stream="b", end=4.0)
    assert [r["kind"] for r in rows] == [KIND_AWAY, KIND_FOREIGN, KIND_HOME]
    assert [r["lost"] for r in rows] == [9, 19, 0]
    assert rows[0]["gap_ms"] == pytest.approx(50.0, abs=0.01)
    assert rows[1]["gap_ms"] == pytest.approx(100.0, abs=0.01)
    assert rows[2]["gap_ms"] == pytest.approx(5.0, abs=0.01)
    assert all(r["bu_ms"] is None and r["resumed_by"] is None for r in rows)  # no wire


def test_summary_by_kind_and_totals() -> None:
    def row(kind: str, gap: float, rtt: float | None, lost: int) -> dict[str, Any]:
        phases = {name: 1.0 for name, _ in handover.PHASES}
        return {
            "kind": kind,
            "gap_ms": gap,
            "bu_ba_ms": rtt,
            "bu_ms": 20.0,
            "ba_ms": None if rtt is None else 20.0 + rtt,
            "bus": 2 if rtt is None else 1,
            "lost": lost,
            "duplicates": 1,
            "received": 100,
            "resumed": rtt is not None,
            "resumed_by": "tunnel" if rtt else None,
            "phases_ms": phases,
        }

    gaps = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
    rows = [
        row(KIND_AWAY, gaps[0], 5.0, 1),
        row(KIND_FOREIGN, gaps[1], 6.0, 2),
        row(KIND_HOME, gaps[2], 7.0, 0),
        row(KIND_AWAY, gaps[3], 8.0, 3),
        row(KIND_FOREIGN, gaps[4], None, 4),
        row(KIND_HOME, gaps[5], 9.0, 0),
    ]
    s = summarize(rows)
    assert s["gap_ms"]["all"]["n"] == 6
    assert s["gap_ms"]["all"]["median"] == statistics.median(gaps)
    assert s["gap_ms"]["all"]["p95"] == pytest.approx(control.p95(gaps), abs=0.01)
    assert (s["gap_ms"]["all"]["min"], s["gap_ms"]["all"]["max"]) == (10.0, 60.0)
    assert s["gap_ms"][KIND_AWAY]["median"] == 25.0 and s["gap_ms"][KIND_HOME]["n"] == 2
    assert s["gap_ms_by_path"]["tunnel"]["n"] == 5 and s["gap_ms_by_path"]["native"] is None
    assert s["bu_ba_ms"]["all"]["n"] == 5  # the move without a BA has no round trip
    assert s["bu_ba_ms"][KIND_FOREIGN]["n"] == 1
    assert s["move_to_bu_ms"]["all"]["median"] == 20.0
    assert s["phases_ms"]["detect"]["all"]["n"] == 6
    t = s["totals"]
    assert (t["moves"], t["resumed"], t["lost"], t["duplicates"]) == (6, 5, 10, 6)
    assert (t["without_bu"], t["without_ba"], t["retransmitted_bus"]) == (0, 1, 1)
    assert (t["resumed_by_tunnel"], t["resumed_by_native"]) == (5, 0)
    assert handover.stats([None, None]) is None


def test_session_figures() -> None:
    events = [
        {"event": "rtt", "rtt": 0.001, "ok": True},
        {"event": "stall", "seq": 2, "waited": 2.0},
        {"event": "rtt", "rtt": 2.5, "ok": False},
    ]
    f = handover.session_figures(events)
    assert (f["rounds"], f["late"], f["stalls"], f["closed"]) == (2, 1, 1, False)
    assert f["rtt_ms"]["max"] == 2500.0


def fake_result(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "parameters": {
            "moves": len(rows),
            "rate": 200.0,
            "source": "src",
            "source_address": SRC,
            "group": GROUP,
            "dwell_s": 0.5,
            "sut_mn": "reference",
            "sut_ha": "reference",
            "cycle": "1 -> 2 -> 3 -> 1",
        },
        "machine": {
            "cores": 2,
            "cpu": "x",
            "kernel": "6.1",
            "python": "3.11",
            "load_at_start": [0.5, 0, 0],
            "load_at_end": [0.6, 0, 0],
        },
        "moves": rows,
        "summary": summarize(rows),
        "session": {"rounds": 3, "stalls": 0, "closed": False, "rtt_ms": None},
        "capture": {"frames": 10, "kernel_drops": 0, "pcap": None},
    }


def test_the_report_shows_every_move_and_the_summary() -> None:
    moves = [Move(1, 1, 2, 10.0, 10.002, P2), Move(2, 2, 3, 11.0, 11.002, P3)]
    wire = [
        ev("bu", 10.02, True, COA2, HA, seq=1),
        ev("ba", 10.03, False, HA, COA2, seq=1, status=0),
    ]
    stream = [p for p in steady(9.5, 12.0, 0) if not (10.0 < p[0] < 10.08)]
    rows = analyse(moves, wire, rx(stream), end=12.0)
    text = handover.format_report(fake_result(rows))
    assert "1->2  away-from-home" in text and "2->3  between-foreign" in text
    assert "no BU" in text  # the second move had none
    assert "gap, all" in text and "BU->BA round trip, all" in text
    assert "10.0" in text  # move 1's BU->BA, in ms
    json.dumps(fake_result(rows))  # the result is JSON as it is


# ---------------------------------------------------------------------- the command


def parse(*argv: str) -> argparse.Namespace:
    from harness.commands import bench

    parser = argparse.ArgumentParser(prog="dmmconf")
    bench.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["bench", "handover", *argv])


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--moves", "0"], "--moves"),
        (["--rate", "0"], "--rate"),
        (["--dwell", "-1"], "--dwell"),
        (["--sut-ha", "/nonexistent/ha.toml"], "--sut-ha"),
        (["--json", "/nonexistent/dir/out.json"], "--json"),
    ],
)
def test_the_command_refuses_bad_options(argv: list[str], says: str) -> None:
    args = parse(*argv)
    with pytest.raises(UserError, match=says) as info:
        args.func(args)
    assert info.value.exit_status == 2


def test_without_the_lab_the_command_says_so_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from harness.lab.topology import LabUnavailable

    def no_lab(*_a: Any, **_k: Any) -> dict[str, Any]:
        raise LabUnavailable("not root", hint="run as root")

    monkeypatch.setattr(handover, "run", no_lab)
    args = parse("--moves", "3")
    with pytest.raises(UserError) as info:
        args.func(args)
    assert info.value.exit_status == 2
    assert str(info.value) == "the lab cannot be built here: not root (run as root)"


def test_a_scenario_that_cannot_start_ends_with_status_1(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*_a: Any, **_k: Any) -> dict[str, Any]:
        raise handover.BenchError("the scenario did not start: the MN did not start")

    monkeypatch.setattr(handover, "run", broken)
    args = parse()
    with pytest.raises(UserError, match="did not start") as info:
        args.func(args)
    assert info.value.exit_status == 1


# ---------------------------------------------------------------------- one real run


@pytest.mark.needs_root
def test_three_moves_in_the_lab(tmp_path: Any) -> None:
    """One move of each kind with the reference MN and HAs: every move has its BU and BA on
    the MN's interface, the application gets the stream back after each, and the result
    has the shape the README and the JSON readers rely on."""
    from harness.lab.fixtures import lab_not_run
    from harness.lab.topology import LabUnavailable

    try:
        result = handover.run(3, dwell=0.2, workdir=tmp_path)
    except LabUnavailable as exc:
        lab_not_run(exc, exc.hint)
    rows = result["moves"]
    assert [(r["from"], r["to"], r["kind"]) for r in rows] == [
        (1, 2, KIND_AWAY),
        (2, 3, KIND_FOREIGN),
        (3, 1, KIND_HOME),
    ]
    for r in rows:
        assert r["resumed"], f"no datagrams after move {r['move']}"
        assert r["bu_ms"] is not None and r["bu_ba_ms"] is not None, r
        assert r["ba_status"] == 0 and r["gap_ms"] is not None
    assert rows[2]["bu_lifetime"] == 0  # back home: a deregistration (RFC 6275 §11.5.5)
    s = result["summary"]
    assert s["gap_ms"]["all"]["n"] == 3 and s["bu_ba_ms"]["all"]["n"] == 3
    assert set(s["gap_ms"]) == {"all", *handover.KINDS}
    assert s["totals"]["moves"] == 3 and s["totals"]["resumed"] == 3
    assert result["machine"]["cores"] and result["machine"]["kernel"]
    json.dumps(result)
    assert "gap, all" in handover.format_report(result)


def test_datapath_bench_measures_every_path_here() -> None:
    """`dmmconf bench datapath`: each available path has its figures, a missing kernel path
    is named with the reason, and multicast costs more than the kernel's unicast."""
    from harness.bench import datapath
    from harness.lab.fixtures import lab_not_run
    from harness.lab.topology import LabUnavailable

    try:
        result = datapath.run(packets=30)
    except LabUnavailable as exc:
        lab_not_run(exc, exc.hint)
    assert set(result["paths"]) | set(result["unavailable"]) == {"userspace", "kernel"}
    for entry in result["paths"].values():
        assert entry["lost"] == {"multicast": 0, "unicast": 0}
        assert entry["multicast_ms"]["n"] == entry["unicast_ms"]["n"] == 30
    assert "userspace" in datapath.format_report(result)


@pytest.mark.needs_root
def test_home_agent_registrations_in_the_lab() -> None:
    """`dmmconf bench ha`, small: the echo ceiling and the reference HA both answer every
    BU (nothing lost), the HA holds the bindings it was given, and the table judges the
    largest count."""
    from harness.bench import registrations
    from harness.lab.fixtures import lab_not_run
    from harness.lab.topology import LabUnavailable

    try:
        result = registrations.run((50, 200), seconds=0.3, window=16)
    except LabUnavailable as exc:
        lab_not_run(exc, exc.hint)
    assert result["ceiling"]["answered"] > 0 and result["ceiling"]["lost"] == 0
    sizes = result["sizes"]
    assert [s["bindings"] for s in sizes] == [50, 200]
    for s in sizes:
        assert s["register"]["lost"] == 0 and s["refresh"]["answered"] > 0
    assert sum(s["register"]["answered"] for s in sizes) == 200
    assert "target at 200 bindings" in registrations.format_report(result)


def _bench(tmp_path: Any, *args: str) -> dict[str, Any]:
    """`dmmconf bench ARGS --json`, as a user runs it; a lab that cannot be built here
    (exit 2) is not-run."""
    import subprocess
    import sys

    from harness.lab.fixtures import lab_not_run

    out = tmp_path / "bench.json"
    res = subprocess.run(
        [sys.executable, "-m", "harness.cli", "bench", *args, "--json", str(out)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    if res.returncode == 2 and "the lab cannot be built here" in res.stderr:
        lab_not_run(Exception(res.stderr.strip()), None)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    result: dict[str, Any] = json.loads(out.read_text())
    assert result["command"].startswith("dmmconf bench ")
    return result


@pytest.mark.needs_root
def test_bench_fanout_command(tmp_path: Any) -> None:
    """`dmmconf bench fanout`, small: the ceiling and each tunnel count have a rate."""
    result = _bench(tmp_path, "fanout", "--tunnels", "1,3", "--seconds", "0.3")
    assert [row["tunnels"] for row in result["sizes"]] == [1, 3]
    assert result["ceiling"] > 0 and all(r["copies_per_s"] > 0 for r in result["sizes"])


@pytest.mark.needs_root
def test_bench_all_command(tmp_path: Any) -> None:
    """`dmmconf bench all`, small (fewer bindings than BUs in flight, too): one row per
    figure, each with its value and its verdict against the target (or none, reported)."""
    result = _bench(
        tmp_path, "all", "--bindings", "40", "--tunnels", "1,2", "--seconds", "0.3",
        "--moves", "3",
    )  # fmt: skip
    figures = " | ".join(row["figure"] for row in result["rows"])
    for part in ("codec decode", "codec encode", "HA refresh", "fan-out", "handover"):
        assert part in figures, figures
    assert all(row["met"] in (True, False, None) for row in result["rows"])
