"""The handover state machine (suites/interop) against one-clause mutants of the reference
MN: hypothesis must find each mutant's fault and shrink it to a short sequence of steps.

A mutant is the reference MN started with DMMCONF_MN_MUTANT=<name> (a fault of
harness/faults.py) through a copy of the bundled profile that sets the variable
(tests/support/killmatrix.py): the path an external MN takes. The control runs the interop
suite's scripted sequence against the unmutated reference through the same kind of copy;
it must keep every invariant, or the kills below prove nothing.

Hypothesis replays many runs while it shrinks; each new one takes the lab a few seconds
(a world of its own; the machine skips the runs whose steps it already knows the outcome
of). By default one mutant is hunted (bu-to-current-ha: about a minute on 2 cores);
DMMCONF_MACHINE_MUTANTS=all hunts every mutant below (up to several minutes each; some,
e.g. no-refresh and report-on-air, need a larger search than the default to be met:
DMMCONF_MUTANT_EXAMPLES=10 DMMCONF_MUTANT_STEPS=6), or a comma-separated list names some.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.faults import Role, by_name
from harness.lab import netns
from harness.lab.topology import Lab
from harness.tester.conversation import Link
from harness.tester.handover_machine import machine_settings, run_machine, run_script
from harness.tester.handover_state import MachineConfig, Run
from harness.tester.roaming import Sides
from tests.support.killmatrix import mutant_profile

MAX_STEPS = 3  # what a minimal failing sequence may take (e.g. a session, a move)
EXAMPLES = int(os.environ.get("DMMCONF_MUTANT_EXAMPLES", "5"))
STEPS = int(os.environ.get("DMMCONF_MUTANT_STEPS", "5"))
DEFAULT_MUTANTS = ("bu-to-current-ha",)

# mutant -> the clause tags of the invariants that catch it
CATCHES: dict[str, tuple[str, ...]] = {
    # the BU of a move goes to the new link's HA: none reaches the previous one
    "bu-to-current-ha": ("[DMM-OVW-5]", "[DMM-OVW-6]", "[DMM-MN-6]"),
    # the tunnel device does not listen to the groups: the application hears nothing
    "no-mirror": ("[DMM-OVW-31]",),
    # moved groups stay subscribed on the air interface: they arrive twice
    "report-on-air": ("[DMM-OVW-31]",),
    # a left group stays in the listener state: its HA keeps it, or is registered for it
    "stale-mcast": ("[DMM-OPT-2]", "[DMM-MN-6]"),
    # a move without a session registers all the same
    "always-register": ("[DMM-MN-6]",),
    # bindings run out: the tunnel stops
    "no-refresh": ("[DMM-MN-3]", "[DMM-OVW-8]", "[DMM-OVW-31]", "[DMM-OVW-28]"),
}
# The shortest failing sequence of no-refresh has three steps (a session, a move, time
# passing); hypothesis's shrinker has been seen to stop at four (a second session).
LONGEST: dict[str, int] = {"no-refresh": MAX_STEPS + 1}


def hunted() -> list[str]:
    wanted = os.environ.get("DMMCONF_MACHINE_MUTANTS", "")
    if wanted.strip() == "all":
        return sorted(CATCHES)
    names = [n.strip() for n in wanted.split(",") if n.strip()] or list(DEFAULT_MUTANTS)
    unknown = [n for n in names if n not in CATCHES]
    if unknown:
        raise ValueError(f"DMMCONF_MACHINE_MUTANTS: no machine mutant {unknown}")
    return names


def test_every_machine_mutant_exists() -> None:
    assert set(CATCHES) <= set(by_name(Role.MN))


class Watches:
    """Access links captured in memory only (no pcaps: shrinking makes many runs), one
    capture per lab link for all the runs that use it, closed at the end."""

    def __init__(self) -> None:
        self.links: dict[tuple[str, int], Link] = {}

    def __call__(self, lab: Lab, run: int, link: int) -> Link:
        key = (lab.ns("sw"), link)
        if key not in self.links:
            self.links[key] = Link(key[0], f"br{link}", f"{lab.runid}-access{link}").start()
        return self.links[key]

    def close(self) -> None:
        for link in self.links.values():
            with contextlib.suppress(Exception):
                link.close()


@pytest.fixture
def watches() -> Iterator[Watches]:
    w = Watches()
    try:
        yield w
    finally:
        w.close()


def config_for(name: str, tmp_path: Path, watches: Watches) -> MachineConfig:
    missing = netns.missing_privileges()
    if missing:
        pytest.skip(f"the lab needs privileges: {missing}")
    profile = mutant_profile("mn", name, tmp_path)
    # the mutants are the reference: a link left with only groups is registered (INT-14)
    return MachineConfig(Sides(mn=str(profile)), tmp_path, watches, multicast_binds=True)


def describe(runs: list[Run], last: int = 4) -> str:
    return "\n".join(
        f"  run {i}: {r.steps} -> {r.failure}" for i, r in list(enumerate(runs))[-last:]
    )


@pytest.mark.needs_root
def test_control_reference_keeps_the_invariants(tmp_path: Path, watches: Watches) -> None:
    config = config_for("none", tmp_path, watches)
    run_script(config)


@pytest.mark.needs_root
@pytest.mark.parametrize("mutant", hunted())
def test_machine_catches_the_mutant_with_a_short_sequence(
    mutant: str, tmp_path: Path, watches: Watches
) -> None:
    config = config_for(mutant, tmp_path, watches)
    with pytest.raises(Exception) as info:  # noqa: PT011 - hypothesis re-raises the run's error
        run_machine(config, machine_settings(EXAMPLES, STEPS, multiple_bugs=False))
    tags = CATCHES[mutant]
    caught = [r for r in config.runs if r.failure and any(t in r.failure for t in tags)]
    assert caught, (
        f"no run failed with {' or '.join(tags)} ({len(config.runs)} runs); "
        f"hypothesis raised {info.value!r}\n{describe(config.runs)}"
    )
    final = config.runs[-1]  # hypothesis replays the shrunk example last
    in_lab = [r for r in config.runs if r.in_lab]
    print(
        f"{mutant}: {len(config.runs)} runs, {len(in_lab)} in the lab "
        f"({sum(r.seconds for r in in_lab):.0f} s); shrunk to {final.steps}: {final.failure}"
    )
    assert final.failure is not None and any(t in final.failure for t in tags), (
        f"the shrunk example does not fail with {' or '.join(tags)}\n{describe(config.runs)}"
    )
    assert len(final.steps) <= LONGEST.get(mutant, MAX_STEPS), (
        f"the shrunk sequence has {len(final.steps)} steps: {final.steps}"
    )
