"""The kill-matrix runner (tests/support/killplugin.py) without a lab: a stand-in suite whose
package-scoped "SUT" fixture asks for `run_options`, as suites/ha/conftest.py's home agent
does. Each pair must run against its own mutant's profile, the SUT started once per mutant
(not per test), every pair's outcome must reach the results file, and a second runner on
the same board must find every pair claimed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import killmatrix, killplugin

ROOT = Path(__file__).resolve().parents[2]

pytest_plugins = ["pytester"]

SUITE = """
import pytest

@pytest.fixture(scope="package")
def sut(run_options):
    with open({log!r}, "a") as f:
        f.write("start " + run_options.sut_name + "\\n")
    yield run_options.sut_name
    with open({log!r}, "a") as f:
        f.write("stop " + run_options.sut_name + "\\n")

def test_a(sut):
    assert sut.endswith("mutant none")

@pytest.mark.parametrize("x", ["p", "q"])
def test_b(sut, x):
    assert sut.endswith("mutant none") or x == "p"

def test_untouched(sut):
    pass
"""


def _plan(tmp: Path, board: Path, pairs: list[tuple[str, str]], runner: int) -> Path:
    mutants = dict.fromkeys([killmatrix.CONTROL] + [m for m, _ in pairs])
    profiles = {m: str(killmatrix.mutant_profile("ha", m, tmp)) for m in mutants}
    path = tmp / f"plan-{runner}.json"
    doc = {"role": "ha", "profiles": profiles, "pairs": pairs, "board": str(board),
           "runner": runner, "runners": 2}  # fmt: skip
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_runner_restarts_the_sut_per_mutant_and_reports_each_pair(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the runner's pytest starts in pytester's directory: the checkout's `tests` package
    # (the plugin) must be importable from there, as it is from the checkout for killmatrix
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    log = pytester.path / "sut.log"
    pytester.makeini("[pytest]\n")
    pytester.mkpydir("suite")
    (pytester.path / "suite" / "test_fake.py").write_text(SUITE.format(log=str(log)))
    board = pytester.path / "board"
    pairs = [
        ("none", "suite/test_fake.py::test_a"),
        ("none", "suite/test_fake.py::test_b[q]"),
        ("m-one", "suite/test_fake.py::test_a"),
        ("m-two", "suite/test_fake.py::test_b[p]"),
        ("m-two", "suite/test_fake.py::test_b[q]"),
        ("m-two", "suite/test_fake.py::test_gone"),
    ]
    args = ["-p", "harness.pytest_plugin", "-p", killplugin.__name__, "-p", "no:cacheprovider"]
    plan = _plan(pytester.path, board, pairs, runner=0)
    profile = killmatrix.mutant_profile("ha", "none", pytester.path)
    run = pytester.runpytest_subprocess(
        *args, "--kill-plan", str(plan), "--sut", str(profile), "--sut-role", "ha",
        "--report-dir", str(pytester.path / "report"), "suite",
    )  # fmt: skip
    run.assert_outcomes(passed=3, failed=2)
    results = killmatrix.Board._read(board)
    outcome = {(p.mutant, p.test.split("::")[1]): (p.outcome, p.call) for p in results.values()}
    assert outcome == {
        ("none", "test_a"): ("passed", "passed"),
        ("none", "test_b[q]"): ("passed", "passed"),
        ("m-one", "test_a"): ("failed", "failed"),
        ("m-two", "test_b[p]"): ("passed", "passed"),  # the mutant survives this one
        ("m-two", "test_b[q]"): ("failed", "failed"),
        ("m-two", "test_gone"): ("not-collected", None),
    }
    # one start per mutant, each stopped before the next starts
    lines = log.read_text().splitlines()
    names = [line.split(", mutant ")[1] for line in lines]
    assert [line.split()[0] for line in lines] == ["start", "stop"] * 3
    assert names[::2] == names[1::2] and sorted(names[::2]) == ["m-one", "m-two", "none"]
    # a second runner on the same board finds every pair claimed, and runs none
    plan = _plan(pytester.path, board, pairs, runner=1)
    again = pytester.runpytest_subprocess(
        *args, "--kill-plan", str(plan), "--sut", str(profile), "--sut-role", "ha",
        "--report-dir", str(pytester.path / "report1"), "suite",
    )  # fmt: skip
    again.assert_outcomes()
    assert len(log.read_text().splitlines()) == 6


def test_walks_share_the_pairs_from_both_ends() -> None:
    items = list(range(7))
    assert killplugin._walk(items, 0, 1) == items  # type: ignore[arg-type]
    assert killplugin._walk(items, 0, 2) == items  # type: ignore[arg-type]
    assert killplugin._walk(items, 1, 2) == items[::-1]  # type: ignore[arg-type]
    assert killplugin._walk(items, 2, 4)[0] == 3  # type: ignore[arg-type]
