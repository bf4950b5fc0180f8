"""Fixtures of the interop suite: a mobility world (the lab, a home agent on every access
router, the echo server at the correspondent node) per module, a fresh mobile node per
test (harness/tester/roaming.py), and the handover machine's configuration.

The world is built once per module (`world`): lab, home agents, echo server. Each test gets
a fresh mobile node (`mobility`), which starts on access link 1 and is put back there at
the end, where the test's bindings are left to end (deregistered, or expired) before the
next test starts, so that no home agent still intercepts an address the next MN uses.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.lab.topology import Lab
from harness.pytest_plugin import RunOptions, state
from harness.tester.conversation import Link
from harness.tester.fixtures import Captures
from harness.tester.handover_state import MachineConfig
from harness.tester.roaming import Mobility, Sides, open_world, sides_of
from harness.tester.world import World

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Role-true verdicts: a `clause` marker with `judged="ha"` names clauses of the HA's
    behaviour, `judged="mn"` the MN's. In a run against one SUT the other side's clauses
    become `evidence` about the reference peer: they never credit (nor fail) a clause (the
    peer's failed checks make the test inconclusive instead, harness/tester/findings.py)."""
    sut = sides_of(state(config).options).sut
    if sut is None:
        return
    for item in items:
        if HERE not in item.path.parents:
            continue
        peer = [
            mk
            for mk in item.own_markers
            if mk.name == "clause" and mk.kwargs.get("judged", sut) != sut
        ]
        item.own_markers[:] = [mk for mk in item.own_markers if mk not in peer]
        for mk in peer:
            item.add_marker(pytest.mark.evidence(*mk.args))


@pytest.fixture(scope="module")
def sides(run_options: RunOptions) -> Sides:
    return sides_of(run_options)


@pytest.fixture(scope="module")
def world(sides: Sides, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The module's lab with its home agents and the CN's echo server."""
    with open_world(tmp_path_factory.mktemp("interop"), sides) as w:
        yield w


@pytest.fixture
def mobility(world: World, sides: Sides, captures: Captures) -> Iterator[Mobility]:
    """A fresh mobile node on link 1 for this test, every access link captured (pcaps in
    the test's report entry); home again and without bindings afterwards."""
    m = Mobility(world, sides, lambda i: captures.watch_link(world.lab, i))
    try:
        m.start()
        yield m
    finally:
        m.close()


@pytest.fixture
def machine_config(
    run_options: RunOptions, captures: Captures, tmp_path: Path
) -> Iterator[MachineConfig]:
    """The handover machine's configuration: the run's sides, every access link of each
    run's lab captured (pcaps in the test's report entry)."""

    def watch(lab: Lab, run: int, link: int) -> Link:
        return captures.watch(lab.ns("sw"), f"br{link}", f"{lab.runid}-access{link}")

    yield MachineConfig(sides_of(run_options), tmp_path, watch)
