"""The state of the handover machine (harness/tester/handover_machine.py): its
configuration and the record of its runs, the plan the rules update (where the MN is to
be, which groups and sessions are live), and the model of what happened in the real world
over time (which links needed a binding when), which the invariants judge against.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NoReturn, TypeVar, cast

from hypothesis.stateful import RuleBasedStateMachine

from harness.apps.control import App
from harness.lab.topology import Lab
from harness.tester.conversation import Link
from harness.tester.findings import Side
from harness.tester.roaming import Mobility, Sides, open_world
from harness.tester.world import MCAST_PORT, MN_IFACE, World
from harness.verdicts import InterpretationFailure

GROUPS = ("ff3e::8000:21", "ff3e::8000:22")  # SSM groups of the machine (RFC 4607)
SOURCES = ("src", "cdn")  # behind the core / on access link 1 (draft §1's local CDN)
# (group, source) channels a join picks from; simplest first (what shrinking goes to)
CHANNELS = tuple((g, node) for node in SOURCES for g in GROUPS)
MACHINE_RATE = 20.0
# From a step until a joined group's next datagram: a few handover round trips (a TCP
# session's DELIVERY also covers its retransmission back-off).
MCAST_DELIVERY = 2.5
MAX_SESSIONS = 2
# A BU that comes this long after its link's need ended (a session closed, a group left,
# the MN back on the link) is still the MN catching up (it polls its sockets, and movement
# detection waits for an RA), not a binding without a session.
GRACE = 0.6
WINDOW = 0.5  # a negative observation on the wire after the state changed
DEFAULT_EXAMPLES, DEFAULT_STEPS = 3, 8
ENV_EXAMPLES, ENV_STEPS = "DMMCONF_HANDOVER_EXAMPLES", "DMMCONF_HANDOVER_STEPS"


class Violation(AssertionError):
    """An invariant of the handover machine did not hold; the message starts with the
    clause it breaks."""


class MulticastOnlyNotRegistered(AssertionError):
    """An external MN did not register a link that had only multicast groups left: OPEN-15
    lets it (INT-14 is the reference's choice), so nothing can be judged."""


class PeerViolation(Exception):
    """A check of the reference peer's behaviour failed in a run against one SUT (role-true
    verdicts): not the SUT's fail; the test ends inconclusive, naming the peer's clause."""


def fail_by_reading(
    reading: str, clause: str, text: str, about: Side | None = None, sut: Side | None = None
) -> NoReturn:
    """Like `fail`, for a check that rests on the suite's reading `reading` (an INT-n), not on
    the clause's text: the SUT's failure is verdict *interpretation*, never *fail*."""
    if about is not None and sut is not None and about != sut:
        raise PeerViolation(f"[{clause}] the reference {about.upper()} ({reading}): {text}")
    raise InterpretationFailure([reading], f"[{clause}] {text}")


def fail(clause: str, text: str, about: Side | None = None, sut: Side | None = None) -> NoReturn:
    """An invariant broken by `about`'s behaviour (None: the SUT's, whichever it is). When
    `about` is not the run's SUT (`sut`; None: both sides are the reference, both judged),
    it is the reference peer's problem: a PeerViolation, never the SUT's Violation."""
    if about is not None and sut is not None and about != sut:
        raise PeerViolation(f"[{clause}] the reference {about.upper()}: {text}")
    raise Violation(f"[{clause}] {text}")


F = TypeVar("F", bound=Callable[..., Any])


def noted(fn: F) -> F:
    """Record in the run what ended it (hypothesis only reports the shrunk failure)."""

    @functools.wraps(fn)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except Exception as exc:
            if self.record_.failure is None:
                self.record_.failure = f"{type(exc).__name__}: {exc}"
                self.record_.error = exc
            raise

    return cast(F, wrapper)


@dataclass
class Joined:
    source: str  # the source's address (an SSM channel, RFC 4607)
    node: str  # the lab node that sends
    link: int  # where the MN was when the application joined (INT-14)


@dataclass
class Session:
    app: App
    address: str  # its local address
    link: int | None  # the link of that address


@dataclass
class Run:
    """One run of the machine: its steps, and what ended it if it failed."""

    steps: list[str] = field(default_factory=list)
    failure: str | None = None
    error: Exception | None = None
    in_lab: bool = False  # carried out in the lab (else known from an earlier run)
    seconds: float = 0.0


@dataclass
class MachineConfig:
    """What the runs need from outside: who plays which role, where they keep their files,
    how an access link is watched (`watch(lab, run, link)`), and whether the MN counts
    groups as ongoing communication (INT-14; the reference does, OPEN-15 lets others not:
    by default, whether the MN is the reference). It also keeps what the runs so far
    showed: the steps of the runs that passed, and the steps that led to each failure."""

    sides: Sides
    workdir: Path
    watch: Callable[[Lab, int, int], Link]
    multicast_binds: bool | None = None
    runs: list[Run] = field(default_factory=list)  # every run, in order
    passed: list[tuple[str, ...]] = field(default_factory=list)  # steps of passing runs
    failed: dict[tuple[str, ...], Exception] = field(default_factory=dict)  # prefix -> why
    judged: set[str] = field(default_factory=set)  # clauses some run put to the test

    @property
    def groups_bind(self) -> bool:
        return self.sides.mn_is_reference if self.multicast_binds is None else self.multicast_binds

    def known_start(self, steps: tuple[str, ...]) -> bool:
        """Do `steps` begin a run that passed, or lead to a failure already seen?"""
        n = len(steps)
        return any(p[:n] == steps for p in self.passed) or any(p[:n] == steps for p in self.failed)

    def known_failure(self, steps: tuple[str, ...]) -> Exception | None:
        return next((e for p, e in self.failed.items() if steps[: len(p)] == p), None)

    def world(self, run: int, stack: contextlib.ExitStack) -> World:
        """A world of its own for run `run` (lab, home agents, echo server, sources, and
        the mobile node starting alongside the home agents), as long as `stack` lives."""
        workdir = self.workdir / f"run{run}"
        workdir.mkdir(parents=True, exist_ok=True)
        mn = self.sides.mn
        world: World = stack.enter_context(
            open_world(workdir, self.sides, also=lambda w: w.start_mobile_node(mn))
        )
        for node in SOURCES:
            for g in GROUPS:
                world.source(node, g, rate=MACHINE_RATE, stream=f"{node}/{g}")
        return world


class MachineState(RuleBasedStateMachine):
    """The plan, the real world of one run and the model of what happened in it; the rules
    (harness/tester/handover_machine.py) and the invariants (handover_invariants.py) build
    on it. `config` is set on the class that `handover_machine(config)` makes."""

    config: ClassVar[MachineConfig]

    @property
    def sut(self) -> Side | None:
        """The side the run's SUT plays (None: both are the reference)."""
        return self.config.sides.sut

    def __init__(self) -> None:
        super().__init__()
        self.run = len(self.config.runs)
        self.record_ = Run()
        self.began = time.monotonic()
        self.config.runs.append(self.record_)
        # the plan
        self.here = 1
        self.plan_groups: dict[str, int] = {}  # group -> the link it is joined on
        self.plan_sessions: list[int] = []  # the link each live session started on
        self.key: list[str] = []
        self.pending: list[Callable[[], None]] = []
        self.live = False
        self.done = 0  # steps carried out for real (or begun)
        # the real world and the model of what happened in it
        self.stack = contextlib.ExitStack()
        self.m: Mobility | None = None
        self.rx: dict[str, App] = {}
        self.groups: dict[str, Joined] = {}
        self.sessions: list[Session] = []
        # the model over time: (when, links that need a binding, group -> its link)
        # (when, links needing a binding, group -> link joined on, links needing one for a
        # session alone): the last tells INT-14's share of a need (groups) from the draft's
        self.history: list[tuple[float, frozenset[int], dict[str, int], frozenset[int]]] = []
        self.checked_bas: set[tuple[float, str, str]] = set()
        self.checked_bus = 0
        self.rx_seen: dict[str, int] = {}
        self.left_at: dict[str, float] = {}  # the application's "left" (monotonic)
        self.left_wall: dict[str, float] = {}  # the same, wall clock (kernel time stamps')
        self.last_check = 0.0

    # ------------------------------------------------------------------ plan

    def check(self) -> None:
        """Every invariant, now (harness/tester/handover_invariants.py)."""
        raise NotImplementedError

    def plan_need(self) -> frozenset[int]:
        links = set(self.plan_sessions) | set(self.plan_groups.values())
        return frozenset(link for link in links if link != self.here)

    def _do(self, text: str, action: Callable[[], None]) -> None:
        self.record_.steps.append(text)
        self.key.append(text)
        key = tuple(self.key)
        if not self.live:
            failure = self.config.known_failure(key)
            if failure is not None:
                raise failure
            if self.config.known_start(key):
                self.pending.append(action)
                return
            self.live = self.record_.in_lab = True
            self.mob  # noqa: B018 - the world, now
            for earlier in self.pending:
                self.done += 1
                earlier()
                self.check()
            self.pending.clear()
        self.done += 1
        action()  # hypothesis checks the invariants next

    # ------------------------------------------------------------------ model

    @property
    def mob(self) -> Mobility:
        """The run's world, built when the run first needs it."""
        if self.m is None:
            self._start()
        assert self.m is not None
        return self.m

    def need(self, here: int | None = None, *, groups: bool = True) -> frozenset[int]:
        """Links (other than the MN's, or `here`) with a live session or (`groups`) a group
        joined on them (INT-14)."""
        if here is None:
            here = self.m.link if self.m is not None else 1
        links = {s.link for s in self.sessions if s.link is not None}
        if groups:
            links |= {j.link for j in self.groups.values()}
        return frozenset(link for link in links if link != here)

    def record(self, when: float | None = None, here: int | None = None) -> None:
        t = time.monotonic() if when is None else when
        if self.history:
            t = max(t, self.history[-1][0])
        groups = {g: j.link for g, j in self.groups.items()}
        self.history.append((t, self.need(here), groups, self.need(here, groups=False)))

    def _state_at(self, t: float) -> int:
        times = [h[0] for h in self.history]
        return max(bisect.bisect_right(times, t) - 1, 0)

    def needed_between(self, link: int, start: float, end: float) -> bool:
        """Did `link` need a binding at some moment of [start, end]?"""
        lo, hi = self._state_at(start), self._state_at(end)
        return any(link in self.history[i][1] for i in range(lo, hi + 1))

    def needed_throughout(self, link: int, start: float, end: float) -> bool:
        lo, hi = self._state_at(start), self._state_at(end)
        return all(link in self.history[i][1] for i in range(lo, hi + 1))

    def sessions_need_throughout(self, link: int, start: float, end: float) -> bool:
        """Did `link` need a binding for its sessions alone all through [start, end]?"""
        lo, hi = self._state_at(start), self._state_at(end)
        return all(link in self.history[i][3] for i in range(lo, hi + 1))

    def groups_live_between(self, start: float, end: float) -> bool:
        """Was any group joined at some moment of [start, end]?"""
        lo, hi = self._state_at(start), self._state_at(end)
        return any(self.history[i][2] for i in range(lo, hi + 1))

    # ------------------------------------------------------------------ set-up

    def _start(self) -> None:
        world = self.config.world(self.run, self.stack)
        lab = world.lab
        self.m = Mobility(world, self.config.sides, lambda i: self.config.watch(lab, self.run, i))
        self.stack.callback(self._end)
        self.m.start()
        for g in GROUPS:
            self.rx[g] = world.app(
                "mn", "mcast_recv", "--port", str(MCAST_PORT), "--iface", MN_IFACE
            )
            self.rx_seen[g] = 0
        self.record()

    def _end(self) -> None:
        """The run's MN and applications go (then its world, with `stack`)."""
        if self.m is not None:
            self.m.stop_apps()
            self.m.world.stop_mobile_node()

    def teardown(self) -> None:
        try:
            self.stack.close()
        finally:
            self.record_.seconds = time.monotonic() - self.began
            if self.live and self.record_.error is not None:
                self.config.failed.setdefault(tuple(self.key[: self.done]), self.record_.error)
            elif self.live:
                self.config.passed.append(tuple(self.key))
