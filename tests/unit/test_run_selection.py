"""Selection: clause IDs, sections, levels, paths instead of the default suites,
`--list`, an empty selection is an error, and a catalog that is not one is refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import catalog, cli
from harness.commands import run as run_cmd
from harness.errors import UserError
from tests.unit.test_verdicts_and_reports import CATALOG, OPTS, PLUGINS, report, verdicts, write

pytest_plugins = ["pytester"]

SUITE = """
    import pytest

    @pytest.mark.clause("T-MUST-1")
    def test_must():
        pass

    @pytest.mark.clause("T-MUST-2")
    def test_must_not():
        pass

    @pytest.mark.clause("T-SHOULD-1", "T-MAY-1")
    def test_should_and_may():
        pass
"""


@pytest.fixture
def lab(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".toml", catalog=CATALOG)
    pytester.makeini("[pytest]\n")
    (pytester.path / "suites").mkdir()
    write(pytester, "suites/test_sel.py", SUITE)
    (pytester.path / "tests").mkdir()
    write(pytester, "tests/test_own.py", "def test_harness_own():\n    pass\n")
    return pytester


def _ran(lab: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, set[str]]:
    result = lab.runpytest(*PLUGINS, *OPTS, *args)
    return result, set(verdicts(report(lab)))


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(["--select-clause", "T-MUST-1"], {"test_must"}, id="clause"),
        pytest.param(
            ["--select-clause", "T-MUST-1", "--select-clause", "T-MAY-1"],
            {"test_must", "test_should_and_may"},
            id="two-clauses",
        ),
        pytest.param(["--select-section", "3"], {"test_must"}, id="section-prefix"),
        pytest.param(["--select-section", "3.1"], {"test_must"}, id="section"),
        pytest.param(["--select-section", "RFC 6275:11"], {"test_must_not"}, id="source-section"),
        pytest.param(["--select-level", "must not"], {"test_must_not"}, id="level"),
        pytest.param(
            ["--select-level", "MAY", "--select-section", "5"],
            {"test_should_and_may"},
            id="level-and-section",
        ),
        pytest.param(["-k", "must"], {"test_must", "test_must_not"}, id="pytest-k"),
        pytest.param(
            [],
            {"test_must", "test_must_not", "test_should_and_may", "test_harness_own"},
            id="no-selection",
        ),
    ],
)
def test_selection_keeps_only_the_matching_tests(
    lab: pytest.Pytester, args: list[str], expected: set[str]
) -> None:
    result, ran = _ran(lab, *args)
    assert result.ret == 0, result.stdout.str()
    assert ran == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--select-clause", "T-NOPE-1"], "clause T-NOPE-1: not in the catalog"),
        (["--select-section", "42"], "section 42: no clause of the catalog"),
        (
            ["--select-level", "MAY", "--select-section", "3"],
            "the selection --section 3 --level MAY matches no test",
        ),
    ],
)
@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_bad_or_empty_selection_is_an_error(
    lab: pytest.Pytester, args: list[str], message: str, workers: list[str]
) -> None:
    result = lab.runpytest_subprocess(*PLUGINS, *OPTS, *workers, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    assert message in result.stdout.str() + result.stderr.str()


def test_list_prints_what_would_run_and_runs_nothing(lab: pytest.Pytester) -> None:
    result = lab.runpytest_subprocess(
        *PLUGINS, *OPTS, "--list-selection", "--select-section", "3", "--select-section", "5"
    )
    assert result.ret == 0, result.stdout.str()
    lines = result.stdout.str().splitlines()
    i = [
        n for n, line in enumerate(lines) if line.split() == ["CLAUSE", "SECTION", "LEVEL", "TEST"]
    ]
    assert i, lines
    assert [line.split() for line in lines[i[0] + 1 : i[0] + 4]] == [
        ["T-MUST-1", "draft", "§3.1", "MUST", "suites/test_sel.py::test_must"],
        ["T-MAY-1", "draft", "§5", "MAY", "suites/test_sel.py::test_should_and_may"],
        ["2", "test(s),", "2", "clause(s)"],
    ]
    assert not (lab.path / "out" / "report.json").exists()


def test_split_user_args(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.py").write_text("")
    words = ["DMM-HA-4", "-k", "DMM-HA-1", "t.py::test_x", "-x", "--tb", "short", "t.py"]
    assert run_cmd.split_user_args(words) == (
        ["DMM-HA-4"],
        ["t.py::test_x", "t.py"],
        ["-k", "DMM-HA-1", "-x", "--tb", "short"],
    )
    with pytest.raises(UserError, match="nope/x.py: neither a clause ID nor a test path"):
        run_cmd.split_user_args(["nope/x.py"])


def test_paths_replace_the_default_suites(tmp_path: Path) -> None:
    args = cli.build_parser().parse_args(
        ["run", "--report-dir", str(tmp_path), "--clause", "DMM-HA-1", "--section", "6",
         "--level", "must", "DMM-HA-4", "--", "tests/unit/test_catalog.py", "-k", "x"]
    )  # fmt: skip
    argv = run_cmd.pytest_argv(args)
    assert argv[0] == "tests/unit/test_catalog.py" and not any(a.endswith("suites") for a in argv)
    clauses = [argv[i + 1] for i, a in enumerate(argv) if a == "--select-clause"]
    assert clauses == ["DMM-HA-1", "DMM-HA-4"]
    assert argv[argv.index("--select-section") + 1] == "6"
    assert argv[argv.index("--select-level") + 1] == "MUST"
    assert argv[-2:] == ["-k", "x"]


def _argv(tmp_path: Path, *words: str) -> list[str]:
    args = cli.build_parser().parse_args(["run", "--report-dir", str(tmp_path), *words])
    return run_cmd.pytest_argv(args)


def test_role_picks_the_suites_and_the_default_run_keeps_them_all(tmp_path: Path) -> None:
    suites = run_cmd._suites_dir()
    default = _argv(tmp_path)
    assert default[0] == str(suites) and "--sut-role" not in default  # every suite, as before
    assert str(suites / "ha") not in default
    for role in ("ha", "mn"):
        argv = _argv(tmp_path, "--role", role)
        assert argv[:2] == [str(suites / role), str(suites / "interop")]
        assert argv[argv.index("--sut-role") + 1] == role
    argv = _argv(tmp_path, "--clause-role", "mn", "--strict-interpretations")
    assert argv[0] == str(suites) and argv[argv.index("--select-role") + 1] == "MN"
    assert "--strict-interpretations" in argv
    # paths after -- still replace the suites, whatever the role
    argv = _argv(tmp_path, "--role", "ha", "--", "tests/unit/test_catalog.py")
    assert argv[0] == "tests/unit/test_catalog.py" and str(suites / "interop") not in argv


def test_dmmconf_run_list_by_role_on_the_bundled_suites() -> None:
    """`dmmconf run --role mn --clause-role MN --list`: the MN and interop suites' tests of
    MN clauses, nothing of the HA suite."""
    res = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "--role", "mn", "--clause-role", "MN",
         "--list"],
        cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    rows = [line.split() for line in res.stdout.splitlines()[1:-1]]
    tests = {r[-1].split("::")[0] for r in rows}
    assert tests and all(t.startswith(("suites/mn/", "suites/interop/")) for t in tests), tests
    assert any(t.startswith("suites/mn/") for t in tests)
    cat = catalog.load()
    by_test: dict[str, set[str]] = {}
    for r in rows:
        by_test.setdefault(r[-1], set()).update(cat[r[0]].roles)
    assert all({"MN", "ANY"} & roles for roles in by_test.values())


def test_dmmconf_run_list_on_the_bundled_suites() -> None:
    """`dmmconf run --list` as a user types it: the real catalog and suites, nothing runs."""
    res = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "--list", "--section", "6", "--level",
         "MUST", "--", "suites/ha"],
        cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["CLAUSE", "SECTION", "LEVEL", "TEST"]
    rows = [line.split() for line in lines[1:-1]]
    assert rows and all(r[-1].startswith("suites/ha/") for r in rows)
    assert all(r[-2] == "MUST" for r in rows)
    assert all(r[-3] == "§6" or r[-3].startswith("§6.") for r in rows), rows


def test_a_toml_that_is_not_a_catalog_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(catalog.CatalogError, match=r"not a requirement catalog: no \[\[clause\]\]"):
        catalog.parse('role = "ha"\n[commands]\nstart = "x"\n')
    not_catalog = tmp_path / "profile.toml"
    not_catalog.write_text('role = "ha"\n', encoding="utf-8")
    monkeypatch.setenv("DMMCONF_CATALOG", str(not_catalog))
    assert cli.main(["clauses"]) == 2
    assert "not a requirement catalog" in capsys.readouterr().err
    res = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "--list"],
        cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True,
        timeout=120, env=dict(os.environ, DMMCONF_CATALOG=str(not_catalog)),
    )  # fmt: skip
    assert res.returncode == 2, res.stdout + res.stderr
    assert "not a requirement catalog: no [[clause]] table (it holds role)" in res.stderr
