"""Kill matrices: the suites run against one-clause faults of the reference (a "mutant":
the reference with one fault of harness/faults.py switched on).

A mutant is the reference HA or MN started with DMMCONF_<ROLE>_MUTANT=<name> through a copy
of its bundled profile with that variable set, the path an external SUT takes. The suite
tests that judge the clause a mutant breaks run against it; each of them must fail, and the
unmutated reference, through the same kind of copied profile, must pass them all (the
control).

The pairs (mutant, suite test) a session needs run in few pytest processes (`Board`): one
"runner" per role and per pytest-xdist worker of the outer run, each with one lab, the SUT
started anew for each mutant (tests/support/killplugin.py). Runners of the same role share the
pairs through a board directory and write each pair's outcome there; the outer tests
(tests/meta/test_*_mutants.py, still one per mutant) read their verdict from it.
`run_suite` is the one-process-per-mutant way, for a single look at one mutant.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.sut import adapters

ROOT = Path(__file__).resolve().parents[2]


def mutant_profile(role: str, name: str, directory: Path) -> Path:
    """The bundled reference profile of `role`, starting mutant `name` ("none": the
    reference itself, the control)."""
    text = (adapters.PROFILES_DIR / f"reference-{role}.toml").read_text(encoding="utf-8")
    start = f'start = """{{python}} -m harness.cli {role}'
    if start not in text:
        raise ValueError(f"reference-{role}.toml does not start with {start!r}")
    if name != "none":
        var = f"DMMCONF_{role.upper()}_MUTANT"
        text = text.replace(start, f'start = """{var}={name} {{python}} -m harness.cli {role}')
    text = re.sub(r'^name = "(.*)"$', rf'name = "\1, mutant {name}"', text, count=1, flags=re.M)
    path = directory / f"mutant-{role}-{name}.toml"
    tmp = path.with_suffix(f".{os.getpid()}.tmp")  # runners of one board write it at once
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DMMCONF_"))}


def run_suite(
    role: str, mutant: str, targets: tuple[str, ...], tmp_path: Path, timeout: float = 300
) -> tuple[set[str], str]:
    """Run `targets` against the mutant; the node ids that failed, and the output."""
    profile = mutant_profile(role, mutant, tmp_path)
    env = _env()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            "-q",
            "-rA",
            "--sut",
            str(profile),
            "--sut-role",
            role,
            "--report-dir",
            str(tmp_path / "report"),
            *targets,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    out = proc.stdout + proc.stderr
    return set(re.findall(r"^FAILED (\S+)", out, re.M)), out


CONTROL = "none"  # the mutant name of the unmutated reference
PER_PAIR = 60.0  # seconds a runner may take per pair before it is killed (a hung lab)


@dataclasses.dataclass(frozen=True)
class Pair:
    """What one suite test did against one mutant (or the control)."""

    mutant: str
    test: str
    outcome: str  # passed, failed, skipped, not-collected, not-run
    call: str | None  # the outcome of the test's call phase (None: it never got there)
    longrepr: str
    runner: int | None

    @property
    def killed(self) -> bool:
        """The test failed against the mutant: its call failed (a setup error or a skip is no
        kill)."""
        return self.call == "failed"

    def describe(self) -> str:
        where = f" (runner {self.runner})" if self.runner is not None else ""
        text = f"{self.test}: {self.outcome}{where}"
        return text + ("\n" + self.longrepr.rstrip() if self.longrepr.strip() else "")


def matrix_of(item: pytest.Item) -> tuple[str, dict[str, tuple[str, ...]]] | None:
    """(role, KILLS) of an outer kill-matrix test: a test of a module with ROLE and KILLS that
    asks for the `kill_board` fixture."""
    module = getattr(item, "module", None)
    if "kill_board" not in getattr(item, "fixturenames", ()):
        return None
    role, kills = getattr(module, "ROLE", None), getattr(module, "KILLS", None)
    if role is None or kills is None:
        return None
    return str(role), kills


def wanted_pairs(item: pytest.Item) -> list[tuple[str, str, str]]:
    """The (role, mutant, test) pairs an outer test reads: its mutant's killers, or, for the
    control (no `mutant` parameter), every killer of the matrix against the reference."""
    matrix = matrix_of(item)
    if matrix is None:
        return []
    role, kills = matrix
    callspec = getattr(item, "callspec", None)
    mutant = callspec.params.get("mutant") if callspec is not None else None
    if mutant is None:
        return [(role, CONTROL, t) for t in sorted({t for ts in kills.values() for t in ts})]
    return [(role, str(mutant), t) for t in kills.get(str(mutant), ())]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (released by the kernel if this process dies)."""
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class Board:
    """The kill-matrix pairs of one outer test session, run once for all its xdist workers.

    `directory` is shared by the workers (each builds the same Board from the same
    collection). The first time a worker needs a role's results it starts its runners for
    that role (`per_worker` of them, each with a lab of its own: the tests mostly wait on the
    wire, so more runners than cores can pay), which claim and run whatever pairs are left;
    once they end, every pair has been claimed, and the worker waits (a blocking lock each
    runner holds while it runs, bounded by the runner's timeout) for the pairs other workers'
    runners still hold.
    """

    def __init__(
        self,
        directory: Path,
        pairs: Iterable[tuple[str, str, str]],
        runner: int,
        runners: int,
        per_worker: int = 1,
    ) -> None:
        self.directory = directory
        self.runner, self.runners, self.per_worker = runner, runners, max(per_worker, 1)
        self.pairs: dict[str, list[tuple[str, str]]] = {}
        for role, mutant, test in pairs:
            listed = self.pairs.setdefault(role, [])
            if (mutant, test) not in listed:
                listed.append((mutant, test))
        self.results: dict[str, dict[str, Pair]] = {}

    def outcomes(self, role: str, mutant: str, tests: Iterable[str]) -> list[Pair]:
        """What each of `tests` did against `mutant`, the role's runner started if needed."""
        if role not in self.results:
            self.results[role] = self._run(role)
        done = self.results[role]
        return [
            done.get(f"{mutant} {t}") or Pair(mutant, t, "not-run", None, "not planned", None)
            for t in tests
        ]

    def _run(self, role: str) -> dict[str, Pair]:
        board = self.directory / role
        board.mkdir(parents=True, exist_ok=True)
        pairs = self.pairs.get(role, [])
        mutants = dict.fromkeys([CONTROL] + [m for m, _ in pairs])
        profiles = {m: str(mutant_profile(role, m, board)) for m in mutants}
        mine = [self.runner * self.per_worker + j for j in range(self.per_worker)]
        with contextlib.ExitStack() as stack:
            procs = []
            for runner in mine:  # each holds its lock while it runs
                stack.enter_context(_locked(board / f"running-{runner}.lock"))
                plan = board / f"plan-{runner}.json"
                plan.write_text(
                    json.dumps(
                        {"role": role, "profiles": profiles, "pairs": pairs, "board": str(board),
                         "runner": runner, "runners": self.runners * self.per_worker}
                    ),
                    encoding="utf-8",
                )  # fmt: skip
                out = stack.enter_context(open(board / f"log-{runner}.txt", "w"))
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist",
                     "-p", "tests.support.killplugin", "--kill-plan", str(plan),
                     "-q", "--sut", profiles[CONTROL], "--sut-role", role,
                     "--report-dir", str(board / f"report-{runner}"),
                     *sorted({t.split("::", 1)[0] for _, t in pairs})],
                    cwd=ROOT, env=_env(), stdout=out, stderr=subprocess.STDOUT,
                ))  # fmt: skip
            for proc in procs:
                try:
                    proc.wait(timeout=120 + PER_PAIR * len(pairs))
                except subprocess.TimeoutExpired:  # its pairs end up not-run
                    proc.kill()
                    proc.wait()
        results = self._read(board)
        if any(f"{m} {t}" not in results for m, t in pairs):  # others still running theirs
            for lock in sorted(board.glob("running-*.lock")):
                with _locked(lock):
                    pass
            results = self._read(board)
        for m, t in pairs:
            if f"{m} {t}" not in results:
                reason = f"no runner reported it (logs: {board}/log-*.txt)"
                results[f"{m} {t}"] = Pair(m, t, "not-run", None, reason, None)
        return results

    @staticmethod
    def _read(board: Path) -> dict[str, Pair]:
        results: dict[str, Pair] = {}
        for path in sorted(board.glob("results-*.json")):
            doc: dict[str, dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
            for k, e in doc.items():
                if "outcome" not in e or (k in results and e["outcome"] == "not-collected"):
                    continue  # unfinished, or a pair another runner did run
                results[k] = Pair(
                    e["mutant"], e["test"], e["outcome"], e.get("call"), e.get("longrepr", ""),
                    e.get("runner"),
                )  # fmt: skip
        return results


def assert_control_passes(board: Board, role: str, kills: dict[str, tuple[str, ...]]) -> None:
    """The unmutated reference, through the same kind of copied profile, passes every killer."""
    __tracebackhide__ = True
    targets = sorted({t for ts in kills.values() for t in ts})
    bad = [p for p in board.outcomes(role, CONTROL, targets) if p.outcome != "passed"]
    assert not bad, "the reference itself does not pass:\n" + "\n".join(p.describe() for p in bad)


def assert_killed(
    board: Board, role: str, mutant: str, killers: tuple[str, ...], description: str
) -> None:
    """Each of `killers` failed against `mutant`."""
    __tracebackhide__ = True
    survived = [p for p in board.outcomes(role, mutant, killers) if not p.killed]
    assert not survived, (
        f"mutant {mutant} ({description}) survived {[p.test for p in survived]}:\n"
        + "\n".join(p.describe() for p in survived)
    )
