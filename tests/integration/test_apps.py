"""The real applications (harness/apps) and their controller (harness/apps/control.py).

Pure helpers (gaps, duplicates, p95) and the controller's life cycle need nothing special:
the latter runs the TCP/UDP pair over the loopback of the test's own namespace. The lab
tests (root; not-run otherwise, through the `lab` fixture) run the applications where the
suites will: a receiver in the MN's namespace joined on mn0 while the MN sits on access link
1, the remote source behind the core (`src`, through the MLD proxies of the core and ar1)
and the local CDN on link 1; a TCP/UDP session from the MN to the echo server on the CN.
What they judge is what the applications print, the kernel's listener state of the MN's
namespace (/proc/<pid>/net/mcfilter6) and the processes left.
"""

from __future__ import annotations

import ipaddress
import signal
import time
from collections.abc import Callable, Iterator

import pytest

from harness.apps import _common, control
from harness.apps.control import App, AppExpectationFailed, Event, data, duplicates, gaps, summary
from harness.lab import netns
from harness.lab.topology import Lab
from tests.support.subreaper import running

PORT = 5000  # the data port of the multicast tests
ECHO_PORT = 7000
RATE = "50"  # datagrams per second of each test source
READY = 5.0  # seconds an application may take to become ready (it takes ~0.05 s)
FLOW = 5.0  # seconds for a first datagram to cross the MLD proxies


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def ev(seq: int, mono: float, stream: str = "s", **extra: object) -> Event:
    return {"event": "data", "stream": stream, "seq": seq, "mono": mono, **extra}


# ---------------------------------------------------------------- pure helpers


def test_payload_round_trip_and_foreign_payloads() -> None:
    raw = _common.pack("cdn", 42, size=100)
    assert len(raw) == 100
    got = _common.unpack(raw)
    assert got is not None and got["stream"] == "cdn" and got["seq"] == 42
    assert abs(got["sent_mono"] - time.monotonic()) < 5.0
    assert _common.unpack(b"hello") is None
    assert _common.unpack(b"XXXX" + raw[4:]) is None
    assert _common.unpack(raw[: _common.HEADER_LEN + 1]) is None  # stream id cut short


def test_gaps_losses_and_longest_interval() -> None:
    times = [0.0, 0.1, 0.2, 0.3, 1.3, 1.4, 1.5]
    seqs = [0, 1, 2, 5, 6, 8, 7]  # 3, 4 lost across the silence; 7 and 8 swapped
    events = [ev(s, t) for s, t in zip(seqs, times, strict=True)]
    events.append({"event": "joined", "mono": 0.05})  # other events are ignored
    events.append(ev(100, 0.25, stream="other"))  # other streams too
    g = gaps(events, "s")
    assert g.received == 7 and (g.first, g.last) == (0, 8)
    assert g.lost == [3, 4]
    assert g.longest == pytest.approx(1.0)
    assert (g.longest_from, g.longest_to) == (5, 6)
    assert g.reordered == 1
    # A window around the silence keeps the arrivals just outside it: the interval whole.
    w = gaps(events, "s", start=0.35, end=0.5)
    assert w.longest == pytest.approx(1.0) and (w.first, w.last) == (5, 6) and w.lost == []
    w = gaps(events, "s", start=1.35)
    assert (w.first, w.last, w.received) == (6, 8, 3) and w.longest == pytest.approx(0.1)
    assert gaps(events, "missing") == control.Gaps(received=0, first=None, last=None)
    one = gaps([ev(3, 1.0)], "s")
    assert (one.received, one.lost, one.longest) == (1, [], 0.0)


def test_move_gaps_one_view_per_handover() -> None:
    # 10 pps; silences of 0.5 s after the move at 1.0 and of 0.8 s after the one at 3.0.
    times = [i / 10 for i in range(11)] + [1.5 + i / 10 for i in range(16)]
    times += [3.8 + i / 10 for i in range(5)]
    events = [ev(seq, t) for seq, t in enumerate(times)]
    first, second = control.move_gaps(events, "s", [1.05, 3.05])
    assert first.longest == pytest.approx(0.5) and (first.longest_from, first.longest_to) == (
        10,
        11,
    )
    assert second.longest == pytest.approx(0.8) and (second.first, second.last) == (26, 31)
    assert second.lost == [] and first.lost == []
    assert summary([g.longest for g in (first, second)]).max == pytest.approx(0.8)


def test_duplicates() -> None:
    events = [ev(1, 0.0), ev(2, 0.1), ev(2, 0.2), ev(2, 0.3), ev(1, 0.4, stream="b"), ev(3, 0.5)]
    assert duplicates(events) == {("s", 2): 3}
    assert duplicates(events, "b") == {}
    assert duplicates(events + [ev(1, 0.6, stream="b")]) == {("s", 2): 3, ("b", 1): 2}


def test_summary_median_and_p95() -> None:
    s = summary(range(1, 21))
    assert (s.n, s.median, s.min, s.max) == (20, 10.5, 1.0, 20.0)
    assert s.p95 == pytest.approx(19.05)  # rank 0.95 * 19 = 18.05 (inclusive method)
    assert summary(range(1, 101)).p95 == pytest.approx(95.05)
    assert summary([0.25]).p95 == 0.25 and summary([0.25]).median == 0.25
    assert summary([0.001, 0.002]).as_dict(1000) == {
        "n": 2,
        "median": 1.5,
        "p95": 1.95,
        "min": 1.0,
        "max": 2.0,
        "mean": 1.5,
    }
    with pytest.raises(ValueError):
        summary([])


# ---------------------------------------------------------------- controller, no lab


def test_controller_drives_a_session_over_loopback() -> None:
    """Events, expectations (and their failure messages), commands, clean ends."""
    with App.start("tcp_echo", "--port", "0", "--bind", "::1") as echo:
        port = str(echo.wait_ready(READY)["port"])
        with App.start(
            "tcp_session", "--connect", "::1", "--port", port, "--interval", "0.05"
        ) as s:
            s.wait_ready(READY)
            rounds = s.wait_count("rtt", 3, 5.0)
            assert all(r["ok"] and 0 <= r["rtt"] < 1.0 for r in rounds)
            assert [r["seq"] for r in rounds] == [0, 1, 2]
            # An expectation that fails says what it wanted and what came instead.
            with pytest.raises(AppExpectationFailed) as failed:
                s.wait_for("no-such-event", 0.2, "a no-such-event line")
            assert "a no-such-event line" in str(failed.value) and '"event":"rtt"' in str(
                failed.value
            )
            with pytest.raises(AppExpectationFailed):
                s.expect_none("rtt", 1.0)
            s.send("close")
            closed = s.wait_for("closed", 5.0)
            assert closed["clean"] is True
            assert echo.wait_for("closed", 5.0)["how"] == "eof"
            s.send("stats")
            assert s.wait_for("stats", 5.0)["open"] is False
            assert s.alive  # the session ended, the application did not
        assert s.returncode == 0 and s.events()[-1]["reason"] == "quit"
        assert s.garbage == [] and echo.garbage == []
    assert echo.events()[-1]["event"] == "exit"


def test_fatal_start_fails_wait_ready_at_once() -> None:
    with App.start("tcp_echo", "--port", "0", "--bind", "::1", "--proto", "tcp") as echo:
        port = int(echo.wait_ready(READY)["port"])
    t0 = time.monotonic()
    with App.start("tcp_session", "--connect", "::1", "--port", str(port)) as s:
        with pytest.raises(AppExpectationFailed, match="failed to start.*Connection refused"):
            s.wait_ready(READY)
        assert time.monotonic() - t0 < READY
        assert s.wait_exit(5.0) == 1


# ---------------------------------------------------------------- lab: fixtures


@pytest.fixture
def apps() -> Iterator[Callable[..., App]]:
    """start(lab, node, app, *args): an application in a lab namespace, stopped after the
    test however it ends."""
    started: list[App] = []

    def start(lab: Lab, node: str, app: str, *args: str) -> App:
        a = App.in_lab(lab, node, app, *args)
        started.append(a)
        return a

    yield start
    for a in reversed(started):
        a.stop()


def source(start: Callable[..., App], lab: Lab, node: str, group: object, stream: str) -> App:
    """mcast_send from a host's eth0 (the `src` behind the core, or the CDN on link 1)."""
    tx = start(
        lab,
        node,
        "mcast_send",
        "--group",
        str(group),
        "--port",
        str(PORT),
        "--rate",
        RATE,
        "--iface",
        "eth0",
        "--stream",
        stream,
    )
    ready = tx.wait_ready(READY)
    print(f"{tx.name} ready after {ms(tx.ready_after)}, source {ready['src']}")
    return tx


def receiver(start: Callable[..., App], lab: Lab, *args: str) -> App:
    rx = start(lab, "mn", "mcast_recv", "--iface", "mn0", "--port", str(PORT), *args)
    rx.wait_ready(READY)
    print(f"{rx.name} {' '.join(args)} ready after {ms(rx.ready_after)}")
    return rx


def streams(rx: App) -> set[str]:
    return {str(e.get("stream")) for e in data(rx.events())}


def of_stream(name: str) -> Callable[[Event], bool]:
    return lambda e: e.get("stream") == name


def mcfilter6(pid: int) -> set[tuple[str, str, str]]:
    """(interface, group, source) of the source filters in the namespace of process pid."""
    out = set()
    with open(f"/proc/{pid}/net/mcfilter6", encoding="ascii") as f:
        for line in f.readlines()[1:]:
            _idx, dev, group, src, *_ = line.split()
            out.add(
                (
                    dev,
                    str(ipaddress.IPv6Address(bytes.fromhex(group))),
                    str(ipaddress.IPv6Address(bytes.fromhex(src))),
                )
            )
    return out


# ---------------------------------------------------------------- lab: multicast


def test_ssm_receivers_get_only_their_source(lab: Lab, apps: Callable[..., App]) -> None:
    """Two SSM receivers of one group on mn0, one per source: each gets its source's stream
    (the remote one through core and ar1, the CDN's on the link) and nothing of the other,
    though both streams reach the MN all along."""
    p = lab.plan
    g, remote, cdn = str(p.ssm_group6), str(p.mcast_source.host6), str(p.cdn6)
    rx_remote = receiver(apps, lab, "--group", g, "--source", remote)
    rx_cdn = receiver(apps, lab, "--group", g, "--source", cdn)
    assert rx_remote.ready is not None and rx_remote.ready["memberships"] == [
        {"group": g, "mode": "include", "sources": [remote], "ifindex": lab.ifindex("mn", "mn0")}
    ]
    source(apps, lab, "src", g, "remote")
    source(apps, lab, "cdn", g, "cdn")
    got = rx_remote.wait_count(lambda e: e.get("stream") == "remote", 10, FLOW, "remote stream")
    rx_cdn.wait_count(lambda e: e.get("stream") == "cdn", 10, FLOW, "CDN stream")
    # Both streams flowed together for a while: any leak would show in these windows.
    rx_remote.wait_count(lambda e: e.get("stream") == "remote", 10, 2.0, "more of the stream")
    rx_cdn.wait_count(lambda e: e.get("stream") == "cdn", 10, 2.0, "more of the stream")
    assert streams(rx_remote) == {"remote"} and streams(rx_cdn) == {"cdn"}
    mn0 = lab.ifindex("mn", "mn0")
    assert all(
        (e["group"], e["dst"], e["src"], e["ifindex"]) == (g, g, remote, mn0) for e in got
    ), got[0]
    assert got[0]["hops"] == 16 - 2  # routed by the core and ar1
    assert all(e["mono"] >= e["sent_mono"] for e in got)
    assert {("mn0", g, remote), ("mn0", g, cdn)} <= mcfilter6(rx_remote.pid)


def test_asm_and_exclude_receivers(lab: Lab, apps: Callable[..., App]) -> None:
    """An any-source receiver gets both sources; one that EXCLUDEs the remote source gets
    only the CDN's."""
    p = lab.plan
    g, remote = str(p.asm_group6), str(p.mcast_source.host6)
    rx_any = receiver(apps, lab, "--group", g)
    rx_ex = receiver(apps, lab, "--group", g, "--exclude", remote, "--api", "rfc3678")
    assert rx_ex.ready is not None and rx_ex.ready["memberships"][0]["mode"] == "exclude"
    source(apps, lab, "src", g, "remote")
    source(apps, lab, "cdn", g, "cdn")
    for s in ("remote", "cdn"):
        rx_any.wait_count(of_stream(s), 10, FLOW, f"{s} stream")
    rx_ex.wait_count(lambda e: e.get("stream") == "cdn", 20, FLOW, "CDN stream")
    # rx_any saw the remote stream all the while rx_ex was counting the CDN's.
    assert streams(rx_any) == {"remote", "cdn"}
    assert streams(rx_ex) == {"cdn"}


def test_join_and_leave_on_command(lab: Lab, apps: Callable[..., App]) -> None:
    """Subscriptions change while the application runs: a leave stops the stream (no
    datagram the kernel received after the leave reaches the application) and takes the
    kernel's source filter away; a new join brings both back."""
    p = lab.plan
    g, remote = "ff3e::8000:3", str(p.mcast_source.host6)
    rx = receiver(apps, lab)  # no group yet
    source(apps, lab, "src", g, "remote")
    rx.send(f"join {g} {remote}")
    joined = rx.wait_for("joined", 2.0)
    assert (joined["group"], joined["mode"], joined["added"]) == (g, "include", [remote])
    assert ("mn0", g, remote) in mcfilter6(rx.pid)
    rx.wait_count("data", 5, FLOW, f"data of {g}")
    rx.send(f"leave {g}")
    left = rx.wait_for("left", 2.0)
    assert (left["group"], left["mode"], left["removed"]) == (g, "none", [remote])
    assert ("mn0", g, remote) not in mcfilter6(rx.pid)

    def after(t: float) -> Callable[[Event], bool]:
        return lambda e: e.get("event") == "data" and e["kt"] > t

    rx.expect_none(after(left["t"]), 0.5, "a datagram received after the leave")
    rx.send(f"join {g} {remote}")
    again = rx.wait_for("joined", 2.0)
    rx.wait_count(after(again["t"]), 5, FLOW, "data after joining again")
    # Mistakes are reported, and the application goes on.
    rx.send(f"join {g}")  # any-source on a group joined with sources
    assert "already joined (include)" in rx.wait_for("error", 2.0)["error"]
    rx.send("leave ff3e::dead")
    assert "not joined" in rx.wait_for("error", 2.0)["error"]
    rx.send("stats")
    assert rx.wait_for("stats", 2.0)["received"] >= 10


def test_ipv4_ssm_on_the_access_link(lab: Lab, apps: Callable[..., App]) -> None:
    """IGMPv3 source-specific join (IPv4 multicast is not routed in the lab: the CDN on
    link 1 is the source)."""
    p = lab.plan
    g, cdn4 = str(p.ssm_group4), str(p.cdn4)
    rx = receiver(apps, lab, "--group", g, "--source", cdn4)
    assert rx.ready is not None and rx.ready["family"] == 4
    source(apps, lab, "cdn", g, "cdn4")
    got = rx.wait_count("data", 5, FLOW, f"data of {g}")
    mn0 = lab.ifindex("mn", "mn0")
    assert all(
        (e["group"], e["src"], e["ifindex"], e["stream"]) == (g, cdn4, mn0, "cdn4") for e in got
    )


# ---------------------------------------------------------------- lab: sessions with the CN


def test_tcp_session_from_mn_to_cn(lab: Lab, apps: Callable[..., App]) -> None:
    p = lab.plan
    mn = str(p.mn_address(1))
    echo = apps(lab, "cn", "tcp_echo", "--port", str(ECHO_PORT))
    echo.wait_ready(READY)
    s = apps(
        lab,
        "mn",
        "tcp_session",
        "--connect",
        str(p.cn.host6),
        "--port",
        str(ECHO_PORT),
        "--bind",
        mn,
        "--interval",
        "0.05",
    )
    ready = s.wait_ready(READY)
    print(
        f"tcp_echo ready after {ms(echo.ready_after)}, tcp_session after {ms(s.ready_after)} "
        f"(connect {ms(ready['took'])})"
    )
    assert ready["local"] == mn and ready["remote"] == str(p.cn.host6)
    assert echo.wait_for("accepted", 2.0)["peer"] == mn
    rounds = s.wait_count("rtt", 5, 5.0)
    assert all(r["ok"] for r in rounds), rounds
    assert [r["seq"] for r in rounds] == list(range(5))
    s.send("close")
    assert s.wait_for("closed", 5.0)["clean"] is True
    server_side = echo.wait_for("closed", 5.0)
    assert (server_side["peer"], server_side["how"]) == (mn, "eof")
    s.expect_none("rtt", 0.3, "a round after the close")
    assert s.alive and echo.alive
    s.send("connect")  # a new session
    assert s.wait_for("connected", 5.0)["local"] == mn
    assert echo.wait_for("accepted", 2.0)["peer"] == mn
    s.wait_for("rtt", 5.0)


def test_udp_session_from_mn_to_cn(lab: Lab, apps: Callable[..., App]) -> None:
    p = lab.plan
    echo = apps(lab, "cn", "tcp_echo", "--port", str(ECHO_PORT + 1), "--proto", "udp")
    echo.wait_ready(READY)
    s = apps(
        lab,
        "mn",
        "udp_session",
        "--connect",
        str(p.cn.host6),
        "--port",
        str(ECHO_PORT + 1),
        "--interval",
        "0.05",
        "--timeout",
        "0.5",
    )
    assert s.wait_ready(READY)["local"] == str(p.mn_address(1))
    rounds = s.wait_count("rtt", 5, 5.0)
    assert all(r["ok"] for r in rounds), rounds
    echo.stop()  # no echo any more: the rounds are lost (or refused by the CN)
    s.wait_for(lambda e: e.get("event") == "rtt" and not e["ok"], 3.0, "a lost round")


# ---------------------------------------------------------------- lab: nothing left behind


@pytest.mark.parametrize("how", ["stop", "stdin", "SIGTERM", "SIGINT", "kill"])
def test_applications_end_and_leave_no_process(lab: Lab, how: str) -> None:
    p = lab.plan
    echo = App.in_lab(lab, "cn", "tcp_echo", "--port", str(ECHO_PORT + 2))
    started = [echo]
    try:
        echo.wait_ready(READY)
        started += [
            App.in_lab(lab, "mn", "mcast_recv", "--iface", "mn0", "--group", str(p.asm_group6)),
            App.in_lab(lab, "src", "mcast_send", "--group", str(p.asm_group6), "--iface", "eth0"),
            App.in_lab(
                lab, "mn", "tcp_session", "--connect", str(p.cn.host6), "--port", str(ECHO_PORT + 2)
            ),
            App.in_lab(
                lab, "mn", "udp_session", "--connect", str(p.cn.host6), "--port", str(ECHO_PORT + 2)
            ),
        ]
        for a in started[1:]:
            a.wait_ready(READY)
        print(
            ", ".join(f"{a.name} {a.ready_after * 1000:.0f} ms" for a in started if a.ready_after)
        )
        for a in reversed(started):
            if how == "stop":
                assert a.stop() == 0
            elif how == "stdin":
                a.close_stdin()
            elif how == "kill":  # a process that cannot take quit nor SIGTERM: SIGKILL
                a.signal(signal.SIGSTOP)
                assert a.stop(grace=0.2, term=0.2) == -signal.SIGKILL
                continue
            else:
                a.signal(getattr(signal, how))
            assert a.wait_exit(5.0) == 0
            reason = {"stop": "quit", "stdin": "stdin closed"}.get(how, how)
            last = a.events()[-1]
            assert (last["event"], last["reason"]) == ("exit", reason), a.describe()
            if a.name.startswith("mcast_send"):
                assert a.events()[-2]["event"] == "summary"
        for a in started:
            assert not running(a.pid, None)
            node = a.name.split("@")[1]
            assert a.pid not in netns.pids_in(lab.ns(node))
    finally:
        for a in started:
            a.stop()
