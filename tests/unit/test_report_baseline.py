"""Baselines (dmmconf run --baseline, --gate regressions), dmmconf report diff and merge, on
fake runs (the plugins on a synthetic suite)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from harness import cli
from reports import baseline, schema
from tests.unit.test_verdicts_and_reports import lab, run, write

__all__ = ["lab"]  # the fixture, imported for the tests below
pytest_plugins = ["pytester"]

BEFORE = """
    import pytest

    @pytest.mark.clause("T-MUST-1")
    def test_a():
        pass

    @pytest.mark.clause("T-MUST-2")
    def test_b():
        assert 0

    @pytest.mark.clause("T-SHOULD-1")
    def test_c():
        assert 0
"""
AFTER = """
    import pytest

    @pytest.mark.clause("T-MUST-1")
    def test_a():
        assert 0

    @pytest.mark.clause("T-MUST-2")
    def test_b():
        pass

    @pytest.mark.clause("T-SHOULD-1")
    def test_c():
        assert 0

    @pytest.mark.clause("T-MAY-1")
    def test_d():
        pass
"""


def test_classes() -> None:
    assert baseline.classify("pass", "pass") == "pass"
    assert baseline.classify("pass", "fail") == "fixed"
    assert baseline.classify("fail", "pass") == "regression"
    assert baseline.classify("fail", "fail") == "expected fail"
    assert baseline.classify("fail", "not-run") == "fail"
    assert baseline.classify("pass", None) == "new"
    assert baseline.classify("pass", "untested") == "new"
    assert baseline.classify("not-run", "pass") == "not-run"


@pytest.fixture
def two_runs(lab: pytest.Pytester) -> pytest.Pytester:
    write(lab, "suites/test_s.py", BEFORE)
    run(lab)
    shutil.copytree(lab.path / "out", lab.path / "before")
    write(lab, "suites/test_s.py", AFTER)
    run(lab)
    shutil.copytree(lab.path / "out", lab.path / "after")
    return lab


def test_report_diff(two_runs: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = str(two_runs.path / "before"), str(two_runs.path / "after" / "report.json")
    assert cli.main(["report", "diff", a, b, "--json"]) == 0
    rows = {r["clause"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["T-MUST-1"]["class"] == "regression"
    assert rows["T-MUST-2"]["class"] == "fixed"
    assert rows["T-MAY-1"]["class"] == "new"
    assert "T-SHOULD-1" not in rows  # the same verdict: not a difference
    assert cli.main(["report", "diff", a, b]) == 0
    assert "3 clause(s) differ, 1 regression(s)" in capsys.readouterr().out
    assert cli.main(["report", "diff", a, str(two_runs.path / "nothing")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_report_merge(two_runs: pytest.Pytester, capsys: pytest.CaptureFixture[str]) -> None:
    out = two_runs.path / "matrix"
    runs = [str(two_runs.path / "before"), str(two_runs.path / "after")]
    assert cli.main(["report", "merge", *runs, "--out", str(out)]) == 0
    matrix = json.loads((out / "matrix.json").read_text(encoding="utf-8"))
    assert len(matrix["columns"]) == 2
    row = next(r for r in matrix["clauses"] if r["id"] == "T-MUST-1")
    assert list(row["verdicts"].values()) == ["pass", "fail"]
    page = (out / "matrix.html").read_text(encoding="utf-8")
    assert page.count("<tr>") == 1 + len(matrix["clauses"])
    assert '<td class="fail">fail</td>' in page


def test_run_with_baseline_and_regression_gate(two_runs: pytest.Pytester) -> None:
    """`dmmconf run --baseline` on a stand-in `suites` package (first on PYTHONPATH)."""
    lab = two_runs
    pkg = lab.path / "pkg" / "suites"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    shutil.copy(lab.path / "suites" / "test_s.py", pkg / "test_s.py")  # the AFTER suite
    env = {
        **os.environ,
        "PYTHONPATH": str(lab.path / "pkg"),
        "DMMCONF_CATALOG": str(lab.path / "catalog.toml"),
    }

    def dmmconf(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "harness.cli", "run", "--serial", "-q", *args]
        cmd += ["--report-dir", str(lab.path / "run"), "--", "-p", "no:hypothesispytest"]
        return subprocess.run(
            cmd, cwd=lab.path, env=env, capture_output=True, text=True, timeout=120
        )

    before = str(lab.path / "before" / "report.json")
    proc = dmmconf("--baseline", before)
    assert proc.returncode == 1, proc.stderr  # a MUST fails: the default gate
    assert "regressions: T-MUST-1" in proc.stderr
    doc = json.loads((lab.path / "run" / "report.json").read_text(encoding="utf-8"))
    assert schema.validate(doc) == []
    assert doc["baseline"]["classes"]["T-MUST-2"] == "fixed"
    assert doc["baseline"]["regressions"] == ["T-MUST-1"]
    assert "Regressions: T-MUST-1" in (lab.path / "run" / "report.html").read_text(encoding="utf-8")
    assert dmmconf("--baseline", before, "--gate", "regressions").returncode == 1
    # against itself nothing regresses: the failing MUST is an expected fail, and passes the gate
    same = str(lab.path / "after" / "report.json")
    proc = dmmconf("--baseline", same, "--gate", "regressions")
    assert proc.returncode == 0, proc.stderr
    proc = dmmconf("--gate", "regressions")
    assert proc.returncode == 2 and "needs --baseline" in proc.stderr
