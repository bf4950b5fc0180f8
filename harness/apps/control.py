"""The test side of harness.apps: start an application, read its events, drive it, stop it;
and pure helpers over what a receiver saw (losses, gaps, duplicates, median and p95).

    with App.in_lab(lab, "mn", "mcast_recv", "--iface", "mn0", "--group", G) as rx:
        rx.wait_ready(5.0)
        rx.wait_for(lambda e: e["event"] == "data", 3.0, "a datagram of G")
        rx.send(f"leave {G}")

Events are read by a thread of the controller as the application prints them (so that an
application never blocks on a full stdout pipe while the test is busy elsewhere, e.g.
during a handover) and handed to waiters through a condition variable: `wait_for` is
event-driven, with a deadline, never a polling loop. Like the tester's Link.expect,
expectations consume the event stream in order: each `wait_for` looks at the events
after the previous match (or after `mark()`), including events that came before the call.

A failed expectation raises `AppExpectationFailed` (an AssertionError) that says what was
expected, within how long, whether the process is still alive, and the last events seen.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import harness
from harness.lab import supervisor

Event = dict[str, Any]
Predicate = Callable[[Event], bool] | str  # a str matches the event's name

# The directory holding the harness package: the applications run with `python -S` (no
# site-packages to scan: they need the standard library only) and this on PYTHONPATH.
PACKAGE_ROOT = str(Path(harness.__file__).resolve().parent.parent)
APPS = ("mcast_recv", "mcast_send", "tcp_echo", "tcp_session", "udp_session")
SHOWN_EVENTS = 8  # events quoted in a failure message
STOP_GRACE = 1.0  # after `quit` and stdin's end, before SIGTERM
STOP_TERM = 2.0  # after SIGTERM, before SIGKILL


# Called as factory(argv, stdin=..., stdout=..., ...): subprocess.Popen's signature.
PopenFactory = Callable[..., subprocess.Popen[bytes]]


class AppExpectationFailed(AssertionError):
    """An application did not print what was expected in time (or printed what must not)."""


def argv(app: str, *args: str, python: str = sys.executable) -> list[str]:
    """The command line that runs application `app` of this package."""
    if app not in APPS:
        raise ValueError(f"no application {app!r} (there are: {', '.join(APPS)})")
    return [python, "-S", "-m", f"harness.apps.{app}", *args]


def app_env(base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = PACKAGE_ROOT + (os.pathsep + path if path else "")
    return env


def matcher(pred: Predicate) -> Callable[[Event], bool]:
    if isinstance(pred, str):
        name = pred
        return lambda e: e.get("event") == name
    return pred


def _short(e: Event, width: int = 200) -> str:
    text = json.dumps({k: v for k, v in e.items() if k not in ("t",)}, separators=(",", ":"))
    return text if len(text) <= width else text[: width - 3] + "..."


class App:
    """One application process, its events, its stdin."""

    def __init__(
        self,
        cmd: Sequence[str],
        *,
        popen: PopenFactory | None = None,
        name: str | None = None,
    ) -> None:
        self.argv = list(cmd)
        self.name = name or next(
            (a.rsplit(".", 1)[-1] for a in cmd if "harness.apps." in a), cmd[0]
        )
        self._events: list[Event] = []
        self._garbage: list[str] = []  # stdout lines that are not JSON events
        self._stderr: list[str] = []
        self._cond = threading.Condition()
        self._eof = False
        self._cursor = 0
        self._stdin_lock = threading.Lock()
        factory: PopenFactory = popen or subprocess.Popen
        self.started = time.monotonic()
        self.proc = factory(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=app_env(),
            close_fds=True,
        )
        self.pid = self.proc.pid
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._threads = [
            threading.Thread(
                target=self._read_stdout,
                args=(self.proc.stdout,),
                name=f"app-{self.name}-{self.pid}-out",
                daemon=True,
            ),
            threading.Thread(
                target=self._read_stderr,
                args=(self.proc.stderr,),
                name=f"app-{self.name}-{self.pid}-err",
                daemon=True,
            ),
        ]
        for t in self._threads:
            t.start()
        self.ready: Event | None = None

    # ------------------------------------------------------------------ starting

    @classmethod
    def start(
        cls, app: str, *args: str, popen: PopenFactory | None = None, name: str | None = None
    ) -> App:
        """Application `app` of harness.apps with `args`, through `popen` (default: here)."""
        return cls(argv(app, *args), popen=popen, name=name)

    @classmethod
    def in_lab(cls, lab: Any, node: str, app: str, *args: str, name: str | None = None) -> App:
        """Application `app` inside the namespace of `node` of a harness.lab Lab."""

        def popen(cmd: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
            proc: subprocess.Popen[bytes] = supervisor.start(cmd, netns=lab.ns(node), **kwargs)
            return proc

        return cls(argv(app, *args), popen=popen, name=name or f"{app}@{node}")

    # ------------------------------------------------------------------ reading

    def _read_stdout(self, out: IO[bytes]) -> None:
        try:
            for raw in out:
                line = raw.decode(errors="replace").rstrip("\n")
                try:
                    event = json.loads(line)
                except ValueError:
                    event = None
                with self._cond:
                    if isinstance(event, dict) and "event" in event:
                        self._events.append(event)
                    elif line:
                        self._garbage.append(line)
                    self._cond.notify_all()
        except (OSError, ValueError):
            pass  # the pipe was closed under us by stop()
        finally:
            with self._cond:
                self._eof = True
                self._cond.notify_all()

    def _read_stderr(self, err: IO[bytes]) -> None:
        with contextlib.suppress(OSError, ValueError):
            for raw in err:
                with self._cond:
                    self._stderr.append(raw.decode(errors="replace").rstrip("\n"))

    def events(self, pred: Predicate | None = None) -> list[Event]:
        """Every event parsed so far (those matching `pred`, an event name or a callable)."""
        with self._cond:
            got = list(self._events)
        return got if pred is None else [e for e in got if matcher(pred)(e)]

    @property
    def stderr(self) -> str:
        with self._cond:
            return "\n".join(self._stderr)

    @property
    def garbage(self) -> list[str]:
        """Lines of stdout that were not events (an application bug if any)."""
        with self._cond:
            return list(self._garbage)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    def mark(self) -> int:
        """From now on, expectations look only at events that come after this point."""
        with self._cond:
            self._cursor = len(self._events)
            return self._cursor

    def describe(self, since: int | None = None) -> str:
        """The last events (after `since`) and the process's state, for failure messages."""
        with self._cond:
            window = self._events[since or 0 :]
            stderr = self._stderr[-5:]
            garbage = self._garbage[-3:]
        rc = self.proc.poll()
        state = "running" if rc is None else f"exited with status {rc}"
        lines = [f"{self.name} (pid {self.pid}) {state}; {len(window)} event(s) in the window"]
        lines += [f"  {_short(e)}" for e in window[-SHOWN_EVENTS:]]
        if garbage:
            lines.append(f"  not JSON: {garbage}")
        if stderr:
            lines.append("  stderr: " + " | ".join(stderr))
        return "\n".join(lines)

    # ------------------------------------------------------------------ waiting

    def wait_for(
        self, pred: Predicate, within: float, what: str | None = None, *, since: int | None = None
    ) -> Event:
        """The first event after the cursor (or `since`) that matches, waiting up to `within`
        seconds; the cursor moves past it. AppExpectationFailed when none comes in time or
        the application ends first."""
        return self.wait_count(pred, 1, within, what, since=since)[0]

    def wait_count(
        self,
        pred: Predicate,
        count: int,
        within: float,
        what: str | None = None,
        *,
        since: int | None = None,
    ) -> list[Event]:
        """`count` matching events after the cursor (or `since`); the cursor moves past the
        last of them."""
        test = matcher(pred)
        what = what or (pred if isinstance(pred, str) else getattr(pred, "__name__", "event"))
        start = self._cursor if since is None else since
        deadline = time.monotonic() + within
        found: list[Event] = []
        with self._cond:
            i = start
            while True:
                while i < len(self._events) and len(found) < count:
                    if test(self._events[i]):
                        found.append(self._events[i])
                    i += 1
                if len(found) >= count:
                    self._cursor = i
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:
                    break
                self._cond.wait(left)
        ended = " (the application's output ended)" if self._eof else ""
        raise AppExpectationFailed(
            f"expected {count} x {what} from {self.name} within {within:g} s, "
            f"got {len(found)}{ended}\n{self.describe(start)}"
        )

    def expect_none(
        self, pred: Predicate, within: float, what: str | None = None, *, since: int | None = None
    ) -> None:
        """No matching event after the cursor (or `since`) during the next `within` seconds
        (a wait by nature: an absence takes its full time to show)."""
        test = matcher(pred)
        what = what or (pred if isinstance(pred, str) else getattr(pred, "__name__", "event"))
        start = self._cursor if since is None else since
        deadline = time.monotonic() + within
        with self._cond:
            i = start
            while True:
                while i < len(self._events):
                    if test(self._events[i]):
                        raise AppExpectationFailed(
                            f"{self.name} printed {what}, which must not happen: "
                            f"{_short(self._events[i])}\n{self.describe(start)}"
                        )
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:
                    return
                self._cond.wait(left)

    def wait_ready(self, within: float = 5.0) -> Event:
        """The `ready` event; fails at once if the application ends or reports a fatal error."""

        def ready_or_fatal(e: Event) -> bool:
            return e.get("event") == "ready" or bool(e.get("fatal"))

        e = self.wait_for(ready_or_fatal, within, "ready", since=0)
        if e.get("event") != "ready":
            raise AppExpectationFailed(
                f"{self.name} failed to start: {e.get('what')}: {e.get('error')}\n{self.describe()}"
            )
        self.ready = e
        return e

    @property
    def ready_after(self) -> float | None:
        """Seconds from starting the process to its `ready` (by the application's clock)."""
        return None if self.ready is None else float(self.ready["mono"]) - self.started

    # ------------------------------------------------------------------ driving

    def send(self, line: str) -> None:
        """A command line on the application's stdin."""
        assert self.proc.stdin is not None
        try:
            with self._stdin_lock:
                self.proc.stdin.write(line.rstrip("\n").encode() + b"\n")
                self.proc.stdin.flush()
        except (BrokenPipeError, ValueError, OSError) as exc:
            raise AppExpectationFailed(
                f"cannot send {line!r} to {self.name}: {exc}\n{self.describe()}"
            ) from None

    def signal(self, signum: int = signal.SIGTERM) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signum)

    def close_stdin(self) -> None:
        with self._stdin_lock, contextlib.suppress(OSError, ValueError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()

    def wait_exit(self, within: float) -> int:
        """The exit status once the process has ended (and its output has been read)."""
        try:
            rc = self.proc.wait(within)
        except subprocess.TimeoutExpired:
            raise AppExpectationFailed(
                f"{self.name} did not exit within {within:g} s\n{self.describe()}"
            ) from None
        for t in self._threads:
            t.join(within)
        return rc

    def stop(self, grace: float = STOP_GRACE, term: float = STOP_TERM) -> int:
        """End the application: `quit` and stdin's end, then SIGTERM, then SIGKILL; its status.
        Idempotent."""
        if self.proc.poll() is None:
            with contextlib.suppress(AppExpectationFailed):
                self.send("quit")
            self.close_stdin()
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                supervisor.terminate(self.proc, term)
        self.close_stdin()
        for t in self._threads:
            t.join(2.0)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        rc = self.proc.returncode
        assert rc is not None
        return rc

    def __enter__(self) -> App:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<App {self.name} pid {self.pid} {'running' if self.alive else 'ended'}>"


# ---------------------------------------------------------------------- pure helpers


def data(
    events: Iterable[Event],
    *,
    stream: str | None = None,
    group: str | None = None,
    src: str | None = None,
) -> list[Event]:
    """The `data` events of a receiver, optionally only one stream, group or source."""
    out = []
    for e in events:
        if e.get("event") != "data":
            continue
        if stream is not None and e.get("stream") != stream:
            continue
        if group is not None and e.get("group") != group:
            continue
        if src is not None and e.get("src") != src:
            continue
        out.append(e)
    return out


@dataclass(frozen=True)
class Gaps:
    """What a receiver missed of one stream, and the longest silence between two arrivals."""

    received: int  # datagrams that arrived (duplicates included)
    first: int | None  # lowest and highest sequence numbers that arrived
    last: int | None
    lost: list[int] = field(default_factory=list)  # first..last never received
    longest: float = 0.0  # longest interval between consecutive arrivals, seconds
    longest_from: int | None = None  # seq that arrived just before the longest interval
    longest_to: int | None = None  # seq that arrived just after it
    reordered: int = 0  # arrivals with a lower seq than the arrival before them


def gaps(
    events: Iterable[Event],
    stream: str | None = None,
    *,
    start: float | None = None,
    end: float | None = None,
    clock: str = "mono",
) -> Gaps:
    """Losses and the longest interval between consecutive arrivals of `stream` (all
    decoded streams when None; mixing streams makes the sequence numbers meaningless).

    `start`/`end` (in the events' `clock`: "mono" is time.monotonic(), the same clock in
    every namespace, "t" the wall clock, "kt" the kernel's receive stamps) restrict the
    view to the arrivals in [start, end] plus the last one before start and the first one
    after end, so that an interval straddling a bound (the silence a handover at `start`
    causes) is measured whole.
    """
    arrivals = sorted(
        (float(e[clock]), int(e["seq"]))
        for e in data(events, stream=stream)
        if "seq" in e and clock in e
    )
    if start is not None or end is not None:
        lo = 0
        if start is not None:
            before = [i for i, (t, _) in enumerate(arrivals) if t < start]
            lo = before[-1] if before else 0
        hi = len(arrivals)
        if end is not None:
            after = [i for i, (t, _) in enumerate(arrivals) if t > end]
            hi = after[0] + 1 if after else len(arrivals)
        arrivals = arrivals[lo:hi]
    if not arrivals:
        return Gaps(received=0, first=None, last=None)
    seqs = [s for _, s in arrivals]
    seen = set(seqs)
    first, last = min(seen), max(seen)
    longest, frm, to = 0.0, None, None
    reordered = 0
    for (t0, s0), (t1, s1) in zip(arrivals, arrivals[1:], strict=False):
        if t1 - t0 > longest:
            longest, frm, to = t1 - t0, s0, s1
        if s1 < s0:
            reordered += 1
    return Gaps(
        received=len(arrivals),
        first=first,
        last=last,
        lost=[s for s in range(first, last + 1) if s not in seen],
        longest=longest,
        longest_from=frm,
        longest_to=to,
        reordered=reordered,
    )


def move_gaps(
    events: Iterable[Event], stream: str | None, moves: Sequence[float], clock: str = "mono"
) -> list[Gaps]:
    """`gaps` once per handover: move i's view holds the arrival just before moves[i] and
    every arrival after it up to (not including) moves[i + 1] (the last move: to the end),
    so its `longest` is the silence the application saw across that move (for a steady
    stream), and the silence that straddles the next move counts for the next one."""
    arrivals = sorted(
        (e for e in data(events, stream=stream) if "seq" in e and clock in e),
        key=lambda e: float(e[clock]),
    )
    times = [float(e[clock]) for e in arrivals]
    out = []
    for i, t in enumerate(moves):
        lo = max(bisect.bisect_left(times, t) - 1, 0)
        hi = bisect.bisect_left(times, moves[i + 1]) if i + 1 < len(moves) else len(times)
        out.append(gaps(arrivals[lo:hi], stream, clock=clock))
    return out


def duplicates(events: Iterable[Event], stream: str | None = None) -> dict[tuple[str, int], int]:
    """(stream, seq) of each datagram that arrived more than once, and how many times."""
    counts: dict[tuple[str, int], int] = {}
    for e in data(events, stream=stream):
        if "seq" in e:
            key = (str(e.get("stream")), int(e["seq"]))
            counts[key] = counts.get(key, 0) + 1
    return {k: n for k, n in counts.items() if n > 1}


@dataclass(frozen=True)
class Summary:
    n: int
    median: float
    p95: float
    min: float
    max: float
    mean: float

    def as_dict(self, scale: float = 1.0, digits: int = 3) -> dict[str, float | int]:
        """The figures multiplied by `scale` (1000: milliseconds), rounded."""
        return {
            "n": self.n,
            **{
                k: round(getattr(self, k) * scale, digits)
                for k in ("median", "p95", "min", "max", "mean")
            },
        }


def p95(values: Sequence[float]) -> float:
    """The 95th percentile: statistics.quantiles' inclusive method (linear interpolation
    between the closest ranks; the value itself for a single one)."""
    if not values:
        raise ValueError("p95 of no values")
    if len(values) == 1:
        return float(values[0])
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def summary(values: Iterable[float]) -> Summary:
    """Median, p95 (see `p95`), min, max and mean of some measurements."""
    v = [float(x) for x in values]
    if not v:
        raise ValueError("a summary of no values")
    return Summary(
        n=len(v),
        median=statistics.median(v),
        p95=p95(v),
        min=min(v),
        max=max(v),
        mean=statistics.fmean(v),
    )
