"""Handover sequences: a hypothesis state machine over three access routers.

The rules are what a user of a mobile node does: move to another link, join a group (of
a small set, from the source behind the core or from the local CDN on link 1), leave one,
start a TCP session with the correspondent node, end one, let time pass (one or two
binding refresh intervals). Each run has a world of its own (lab, a home agent on every
access router, the mobile node, the sources and the applications), so that a run, and a
shrunk replay of it, starts from nothing.

After every step, invariants are checked on the wire (every access link is captured) and
by the applications, with event-driven waits:

* every live session answers within a deadline (through its link's HA when away);
* every joined group reaches its application within a deadline; an application that
  left its group receives nothing of it, and nothing arrives twice;
* away from the link where a group was joined, its data comes encapsulated from that
  link's HA (outer source = that access router's address, outer destination = the MN's
  address on the current link) and deliverable (a valid inner checksum), the application
  gets it through the tunnel, and the MN's air interface does not subscribe to it on the
  current link (draft §3; INT-14: a group belongs to the link where it was joined);
* no registration BU goes to an HA whose link has no live session or group, none to the
  HA of the link the MN is on, none for an address of another link, and none from an
  address the MN does not have on the link it is on (draft §3, §7; DMM-MN-6, DMM-OVW-5,
  DMM-OVW-6, OPEN-15, INT-14);
* a binding still needed is renewed by a BU sent before the lifetime its BA granted has
  run out (draft §7: DMM-MN-3);
* a move away from a link with a live session or group brings a BU to that link's HA
  with the new care-of address, and its BA (draft §3: DMM-OVW-5, DMM-OVW-6); a group left
  while away stops coming through the tunnel once the MN's BU said so (INT-7).

Hypothesis shrinks a failing run to a minimal sequence of steps and prints it
(`state.move(k=0)`, ...). The runs are deterministic (derandomize) and few in CI, and a
fixed sequence that meets every situation above runs too (SCRIPT), since a few generated
runs need not. DMMCONF_HANDOVER_EXAMPLES and DMMCONF_HANDOVER_STEPS run the search longer
(e.g. 50 and 12 locally). tests/meta/test_handover_machine_mutants.py hunts one-clause mutants
of the reference MN with it and checks that the shrunk sequence is short.
"""

from __future__ import annotations

import os
import time
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule, run_state_machine_as_test

from harness import verdicts
from harness.tester.conversation import Predicate
from harness.tester.handover_invariants import Invariants
from harness.tester.handover_state import (
    CHANNELS,
    DEFAULT_EXAMPLES,
    DEFAULT_STEPS,
    ENV_EXAMPLES,
    ENV_STEPS,
    GROUPS,
    MAX_SESSIONS,
    WINDOW,
    Joined,
    MachineConfig,
    MulticastOnlyNotRegistered,
    Session,
    fail,
    fail_by_reading,
    noted,
)
from harness.tester.packets import binding_ack, binding_update, refused, tunnelled, udp_to
from harness.tester.roaming import DELIVERY, LINKS, SIGNALLING, rtt_ok
from harness.tester.world import MCAST_PORT


def machine_settings(
    examples: int | None = None, steps: int | None = None, *, multiple_bugs: bool = True
) -> settings:
    return settings(
        report_multiple_bugs=multiple_bugs,
        max_examples=examples or int(os.environ.get(ENV_EXAMPLES, DEFAULT_EXAMPLES)),
        stateful_step_count=steps or int(os.environ.get(ENV_STEPS, DEFAULT_STEPS)),
        deadline=None,
        derandomize=True,  # the same sequences on every run (CI)
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )


class Steps(Invariants):
    """The rules: what a user of a mobile node does.

    A rule first updates the plan (what the steps asked for: where the MN is, which groups
    and sessions are live), which the preconditions read, then hands its action to `_do`.
    The actions run against the real world, with every invariant after each; except that
    while the steps so far repeat the beginning of a run that already passed, they are
    only noted (the world is built, and they are carried out, once the run goes where no
    passing run went), and steps that begin like a run that failed end the same way at
    once. Hypothesis makes many runs that differ only in choices the machine ignores while
    it shrinks; this keeps the lab's time for the runs that are new.
    """

    # ------------------------------------------------------------------ rules

    @rule(k=st.integers(0, len(LINKS) - 2))
    @noted
    def move(self, k: int) -> None:
        """To the k-th other link (k=0: the lowest-numbered one)."""
        old = self.here
        to = [link for link in LINKS if link != old][k]
        self.here = to
        self._do(f"move {old}->{to}", lambda: self._move(to))

    def _move(self, to: int) -> None:
        m = self.mob
        old = m.link
        before = self.need()
        marks = {i: link.mark() for i, link in m.links.items()}
        self.record(time.monotonic(), here=to)  # from before the move: BUs come fast
        m.move(to)
        link, coa = m.links[to], m.addresses[to]
        self.config.judged |= {"DMM-OVW-5", "DMM-MN-6"}  # a BU only where one is due
        for x in sorted(self.need()):
            hoa = m.addresses[x]
            try:
                link.expect(binding_update(m.ha(x), hoa, coa), SIGNALLING, since=marks[to])
            except AssertionError as exc:
                sessions = [s for s in self.sessions if s.link == x]
                if x == old and not sessions and not self.config.groups_bind:
                    raise MulticastOnlyNotRegistered(str(exc)) from None
                what = "DMM-OVW-5" if x == old else "DMM-OVW-6"
                why = f"after the move {old}->{to}: {str(exc).splitlines()[0]}"
                if x != old and not sessions:  # only groups joined on x call for it: INT-14
                    fail_by_reading("INT-14", what, why)
                fail(what, why)
            try:
                link.expect(binding_ack(m.ha(x), hoa), SIGNALLING, since=marks[to])
            except AssertionError as exc:
                fail("RFC6275-HA-6", str(exc).splitlines()[0], "ha", self.sut)
            self.config.judged.add("DMM-OVW-6")
        if len(self.need()) >= 2:
            self.config.judged.add("DMM-INTRO-2")  # bindings at two HAs at once
        if to in before:
            # back on the link of a home address: RFC 6275 §11.5.4
            link.expect(
                binding_update(m.ha(to), m.addresses[to], deregistration=True),
                SIGNALLING,
                since=marks[to],
            )

    @precondition(lambda self: len(self.plan_groups) < len(GROUPS))
    @rule(channel=st.sampled_from(CHANNELS))
    @noted
    def join(self, channel: tuple[str, str]) -> None:
        """Join (source, group); a group already joined: the other group instead."""
        g, node = channel
        if g in self.plan_groups:
            g = next(x for x in GROUPS if x not in self.plan_groups)
        self.plan_groups[g] = self.here
        self._do(f"join {g} from {node} on link {self.here}", lambda: self._join(g, node))

    def _join(self, g: str, node: str) -> None:
        m = self.mob
        source = m.world.source_address(node)
        rx = self.rx[g]
        rx.mark()
        rx.send(f"join {g} {source}")
        e = rx.wait_for("joined", DELIVERY, f"the join of {g}")
        self.groups[g] = Joined(source, node, m.link)
        self.record(float(e["mono"]))

    @precondition(lambda self: bool(self.plan_groups))
    @rule()
    @noted
    def leave(self) -> None:
        """Leave the group joined first."""
        g, joined_on = next(iter(self.plan_groups.items()))
        del self.plan_groups[g]
        self._do(
            f"leave {g} on link {self.here} (joined on link {joined_on})",
            lambda: self._leave(g),
        )

    def _leave(self, g: str) -> None:
        j = self.groups[g]
        m = self.mob
        link = m.links[m.link]
        mark = link.mark()
        rx = self.rx[g]
        rx.mark()
        rx.send(f"leave {g}")
        e = rx.wait_for("left", DELIVERY, f"the leave of {g}")
        del self.groups[g]
        self.left_at[g], self.left_wall[g] = float(e["mono"]), float(e["t"])
        self.record(self.left_at[g])
        if j.link == m.link:
            return
        # the HA of the group's link learns it from a BU (INT-7), then stops
        ha, hoa, coa = m.ha(j.link), m.addresses[j.link], m.addresses[m.link]
        try:
            link.expect(binding_update(ha, hoa, coa), SIGNALLING, since=mark)
            link.expect(binding_ack(ha, hoa), SIGNALLING, since=mark)
        except AssertionError:
            link.expect(binding_update(ha, hoa, deregistration=True), SIGNALLING, since=mark)
            link.expect(binding_ack(ha, hoa, deregistration=True), SIGNALLING, since=mark)
        after = link.mark()
        stale = tunnelled(ha, coa, udp_to(g, MCAST_PORT), f"a datagram of {g}")
        try:
            link.expect_none(stale, WINDOW, since=after)
        except AssertionError as exc:
            fail("DMM-OPT-2", f"{g} was left, yet: {str(exc).splitlines()[0]}")
        self.config.judged.add("DMM-OPT-2")

    @precondition(lambda self: len(self.plan_sessions) < MAX_SESSIONS)
    @rule()
    @noted
    def start_session(self) -> None:
        self.plan_sessions.append(self.here)
        self._do(f"start a session on link {self.here}", self._start_session)

    def _start_session(self) -> None:
        m = self.mob
        app = m.world.session()
        app.wait_for(rtt_ok, DELIVERY, "the session's first round trip")
        local = str(app.ready["local"]) if app.ready else ""
        self.sessions.append(Session(app, local, m.link_of(local)))
        self.record(float(app.ready["mono"]) if app.ready else None)

    @precondition(lambda self: bool(self.plan_sessions))
    @rule()
    @noted
    def end_session(self) -> None:
        """End the session started first."""
        started_on = self.plan_sessions.pop(0)
        self._do(
            f"end the session started on link {started_on}, on link {self.here}",
            self._end_session,
        )

    def _end_session(self) -> None:
        s = self.sessions[0]
        s.app.mark()
        s.app.send("close")
        e = s.app.wait_for("closed", DELIVERY, "the session's end")
        self.sessions.remove(s)
        self.record(float(e["mono"]))
        s.app.stop()

    @precondition(lambda self: bool(self.plan_need()))  # a binding to keep alive
    @rule(k=st.integers(1, 2))
    @noted
    def let_time_pass(self, k: int) -> None:
        """k times the refresh interval of the bindings (half the lifetime the MN asks
        for, in real time), while no BA refuses a binding."""
        self._do(
            f"let {k} refresh interval(s) pass on link {self.here}",
            lambda: self._let_time_pass(k),
        )

    def _let_time_pass(self, k: int) -> None:
        m = self.mob
        assert m.world.mn is not None
        asked = float(m.world.mn.timers.max_bu_lifetime) * m.time_scale
        refusal = Predicate(refused, "a BA refusing a binding, or a Binding Error")
        link = m.links[m.link]
        try:
            link.expect_none(refusal, k * asked / 2, since=link.mark())
        except AssertionError as exc:
            fail("DMM-MN-3", str(exc).splitlines()[0])


def handover_machine(config: MachineConfig) -> type[Steps]:
    """The state machine class bound to `config` (hypothesis instantiates it per run).

    Named HandoverMachine, a name no class of this module's source has: hypothesis seeds
    its derandomized runs from the machine's source, or its name when it has none, so the
    runs are the ones they were when the class was made inside this function."""
    return type("HandoverMachine", (Steps,), {"config": config, "__qualname__": "HandoverMachine"})


def run_machine(config: MachineConfig, the_settings: settings) -> None:
    """Hypothesis runs the machine (and shrinks a failure)."""
    run_state_machine_as_test(handover_machine(config), settings=the_settings)


# A sequence that meets every situation the invariants judge, run as is on every CI run
# (the few derandomized runs of hypothesis need not meet them all). Moves name the k-th
# other link, in order: from 1, k=0 is link 2; from 2, k=1 is link 3; from 3, k=1 is 2.
SCRIPT: tuple[tuple[str, dict[str, Any]], ...] = (
    ("join", {"channel": (GROUPS[0], "src")}),  # from behind the core, on link 1
    ("start_session", {}),  # on link 1
    ("move", {"k": 0}),  # 1 -> 2: HA 1 serves group 0 and the session
    ("join", {"channel": (GROUPS[1], "cdn")}),  # from the local CDN of link 1, on link 2
    ("let_time_pass", {"k": 2}),  # HA 1's binding is refreshed
    ("move", {"k": 1}),  # 2 -> 3: HA 1 (group 0, session) and HA 2 (group 1) at once
    ("leave", {}),  # group 0 left while away: HA 1 stops tunnelling it
    ("end_session", {}),  # HA 1's binding has nothing left: it ends
    ("move", {"k": 1}),  # 3 -> 2: home to group 1's link, served natively again
    ("leave", {}),  # group 1 left on its own link
)


def run_script(
    config: MachineConfig, script: tuple[tuple[str, dict[str, Any]], ...] = SCRIPT
) -> None:
    """The machine driven through `script`, invariants after every step, the way
    hypothesis replays a sequence it prints."""
    machine: Any = handover_machine(config)()
    try:
        for name, kwargs in script:
            getattr(machine, name)(**kwargs)
            machine.the_world_holds()
    finally:
        machine.teardown()


CLAUSES = ("DMM-OVW-5", "DMM-OVW-6", "DMM-OVW-31", "DMM-MN-6")
SCRIPT_CLAUSES = (*CLAUSES, "DMM-OPT-2", "DMM-MN-3", "DMM-INTRO-2")


def require_judged(config: MachineConfig, clauses: tuple[str, ...]) -> None:
    """A test that passed without meeting the situation of one of its clauses judged
    nothing there: inconclusive, naming what the runs never met."""
    missing = [c for c in clauses if c not in config.judged]
    if missing:
        verdicts.inconclusive(
            f"the runs never met the situation of {', '.join(missing)} "
            f"({len(config.runs)} runs: {[r.steps for r in config.runs][-3:]})"
        )
