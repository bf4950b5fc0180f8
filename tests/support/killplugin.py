"""pytest plugin of a kill-matrix runner: many (mutant, suite test) pairs in one pytest
process with one lab, the SUT restarted whenever the mutant changes.

tests/support/killmatrix.py starts `pytest -p tests.support.killplugin --kill-plan PLAN`
with PLAN a JSON file:

    {"role": "ha", "profiles": {mutant: copied profile}, "pairs": [[mutant, nodeid], ...],
     "board": directory shared by the runners of one matrix, "runner": k, "runners": n}

The mutant is chosen per SUT start: the suites' SUT fixtures (suites/ha/conftest.py
`home_agent`, package-scoped; suites/mn/conftest.py `mn`, per test) start what
`run_options.sut` names. This plugin parametrizes `run_options` (pytest's direct
parametrization overrides the fixture), session-scoped, with one RunOptions per mutant whose
`sut` is that mutant's profile. When the parameter changes from one test to the next, pytest
tears down `run_options` and every fixture that requested it (the HA SUT) before the next
test starts a new one; the lab does not depend on it and stays up.

Several runners (one per pytest-xdist worker of the outer run) may share one board: each
claims a pair (a file created with O_EXCL under board/claims) before it runs it and passes
over the pairs someone else claimed. Runner k walks the pairs, grouped by module and mutant,
from its own place (runner 0 forwards from the start, runner 1 backwards from the end, ...),
so runners that start at different times still share the work without a plan of who does
what.

Each runner writes board/results-<k>.json after every pair: per pair, the outcome of each
phase and the failure's text. A pair the runner was given but could not collect is
"not-collected".
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.pytest_plugin import RunOptions, state
from harness.sut import profile as profile_mod

ID_PREFIX = "kill-"  # the parameter id of the mutant in the runner's node ids


@dataclasses.dataclass
class Plan:
    role: str
    profiles: dict[str, str]
    pairs: list[tuple[str, str]]
    board: Path
    runner: int
    runners: int
    options: dict[str, RunOptions] = dataclasses.field(default_factory=dict)
    results: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    @classmethod
    def load(cls, path: str) -> Plan:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(
            role=doc["role"],
            profiles=dict(doc["profiles"]),
            pairs=[(m, t) for m, t in doc["pairs"]],
            board=Path(doc["board"]),
            runner=int(doc["runner"]),
            runners=int(doc["runners"]),
        )

    def record(self, mutant: str, test: str, **fields: Any) -> None:
        entry = self.results.setdefault(key(mutant, test), {"mutant": mutant, "test": test})
        entry.update(fields)

    def write(self) -> None:
        self.board.mkdir(parents=True, exist_ok=True)
        path = self.board / f"results-{self.runner}.json"
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.results, indent=1), encoding="utf-8")
        tmp.replace(path)

    def claim(self, mutant: str, test: str) -> bool:
        """True if this runner may run the pair (nobody claimed it before)."""
        claims = self.board / "claims"
        claims.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha1(key(mutant, test).encode()).hexdigest()
        try:
            fd = os.open(claims / name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            f.write(f"{self.runner} {mutant} {test}\n")
        return True


def key(mutant: str, test: str) -> str:
    return f"{mutant} {test}"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--kill-plan",
        default=None,
        help="kill matrix: run these (mutant, test) pairs, the SUT per mutant (a JSON file)",
    )


@pytest.hookimpl(trylast=True)  # after harness.pytest_plugin has made the run's options
def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("kill_plan")
    if not path:
        return
    plan = Plan.load(path)
    base = state(config).options
    for mutant, profile in plan.profiles.items():
        try:
            profile_mod.check(Path(profile), role=plan.role, for_run=True)
            name = profile_mod.load(Path(profile)).name
        except profile_mod.ProfileError as exc:
            raise pytest.UsageError(f"--kill-plan: {exc}") from None
        plan.options[mutant] = dataclasses.replace(base, sut=str(profile), sut_name=name)
    config.pluginmanager.register(Runner(plan), "killmatrix-runner")


def _function_of(nodeid: str) -> str:
    return nodeid.split("[", 1)[0]


def _module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def _walk(items: list[pytest.Item], runner: int, runners: int) -> list[pytest.Item]:
    """The order runner `runner` of `runners` goes through the pairs: from the start of its
    share, even runners forwards, odd ones backwards, wrapping around."""
    runners = max(runners, 1)
    n, k = len(items), runner % runners
    if k % 2 == 0:
        start = k * n // runners
        return items[start:] + items[:start]
    end = (k + 1) * n // runners
    return items[:end][::-1] + items[end:][::-1]


def _text(report: pytest.TestReport) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]) + "\n"
    return report.longreprtext + "\n"


class Runner:
    """The hooks of a runner with a plan."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.pairs: dict[str, tuple[str, str]] = {}  # the runner's node id -> its pair

    @pytest.hookimpl(trylast=True)  # the mutant's id comes after the test's own parameters
    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        plan = self.plan
        function = metafunc.definition.nodeid
        mutants = list(dict.fromkeys(m for m, t in plan.pairs if _function_of(t) == function))
        if not mutants:
            return
        if "run_options" not in metafunc.fixturenames:
            raise pytest.UsageError(
                f"{function}: no fixture of it asks for run_options; the kill matrix cannot "
                "choose its SUT"
            )
        metafunc.parametrize(
            "run_options",
            [plan.options[m] for m in mutants],
            ids=[ID_PREFIX + m for m in mutants],
            scope="session",
        )

    def _pair_of(self, item: pytest.Item) -> tuple[str, str] | None:
        callspec = getattr(item, "callspec", None)
        if callspec is None or "run_options" not in callspec.params:
            return None
        sut = callspec.params["run_options"].sut
        mutant = next(m for m, o in self.plan.options.items() if o.sut == sut)
        suffix = ID_PREFIX + mutant + "]"
        nodeid = item.nodeid
        if nodeid.endswith("[" + suffix):
            return mutant, nodeid[: -len(suffix) - 1]
        if nodeid.endswith("-" + suffix):
            return mutant, nodeid[: -len(suffix) - 1] + "]"
        raise pytest.UsageError(f"{nodeid}: the mutant's parameter is not the last one")

    @pytest.hookimpl(trylast=True)  # after pytest's own reordering: the runner has its own
    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        plan = self.plan
        wanted = {key(m, t): i for i, (m, t) in enumerate(plan.pairs)}
        keep: list[tuple[int, pytest.Item]] = []
        drop = []
        for item in items:
            pair = self._pair_of(item)
            if pair is not None and key(*pair) in wanted:
                self.pairs[item.nodeid] = pair
                keep.append((wanted.pop(key(*pair)), item))
            else:
                drop.append(item)
        for mutant, test in (k.split(" ", 1) for k in wanted):
            plan.record(mutant, test, outcome="not-collected", runner=plan.runner)
        if drop:
            config.hook.pytest_deselected(items=drop)
        # By module (a module-scoped lab, as the MN suite's, is built once per module), then
        # by mutant (the HA suite's SUT is package-scoped: one start per mutant and module).
        modules = {m: i for i, m in enumerate(dict.fromkeys(_module_of(t) for _, t in plan.pairs))}
        mutants = {m: i for i, m in enumerate(dict.fromkeys(m for m, _ in plan.pairs))}

        def order(entry: tuple[int, pytest.Item]) -> tuple[int, int, int]:
            mutant, test = self.pairs[entry[1].nodeid]
            return modules[_module_of(test)], mutants[mutant], entry[0]

        keep.sort(key=order)
        items[:] = _walk([item for _, item in keep], plan.runner, plan.runners)
        plan.write()

    def _claimed(self, items: list[pytest.Item]) -> Iterator[pytest.Item]:
        for item in items:
            if self.plan.claim(*self.pairs[item.nodeid]):
                yield item

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool | None:
        if session.config.option.collectonly:
            return None
        if session.testsfailed and not session.config.option.continue_on_collection_errors:
            raise session.Interrupted(f"{session.testsfailed} errors during collection")
        # Claim one pair ahead: the teardown after a test depends on the test that runs next.
        todo = self._claimed(session.items)
        item = next(todo, None)
        while item is not None:
            after = next(todo, None)
            item.config.hook.pytest_runtest_protocol(item=item, nextitem=after)
            if session.shouldfail:
                raise session.Failed(session.shouldfail)
            if session.shouldstop:
                raise session.Interrupted(session.shouldstop)
            item = after
        return True

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        pair = self.pairs.get(report.nodeid)
        if pair is None:
            return
        plan = self.plan
        entry = plan.results.get(key(*pair), {})
        fields: dict[str, Any] = {report.when: report.outcome, "runner": plan.runner}
        if report.failed or report.skipped:
            text = entry.get("longrepr", "") + f"[{report.when}] " + _text(report)
            fields["longrepr"] = text[-4000:]
        if report.when == "call":
            fields["seconds"] = round(report.duration, 3)
        plan.record(*pair, **fields)
        if report.when == "teardown":
            entry = plan.results[key(*pair)]
            phases = [entry.get(w) for w in ("setup", "call", "teardown")]
            entry["outcome"] = (
                "failed" if "failed" in phases else "skipped" if "skipped" in phases else "passed"
            )
            plan.write()
