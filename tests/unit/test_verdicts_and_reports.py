"""The verdicts, the clause marker, the gate and the reports, on small synthetic suites."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from harness import cli
from harness.catalog import load
from harness.commands import run as run_cmd
from harness.verdicts import Verdict, decode, encode, worst

pytest_plugins = ["pytester"]

CATALOG = """
[[clause]]
id = "T-MUST-1"
level = "MUST"
role = "HA"
source = "draft"
section = "3.1"
text = "The HA MUST <accept> the option & process it."

[[clause]]
id = "T-MUST-2"
level = "MUST NOT"
role = ["MN"]
source = "RFC 6275"
section = "11.7.1"
text = "The MN MUST NOT do that."

[[clause]]
id = "T-SHOULD-1"
level = "SHOULD"
role = "HA"
source = "draft"
section = "4"
text = "The HA SHOULD do this."

[[clause]]
id = "T-MAY-1"
level = "MAY"
role = "ANY"
source = "draft"
section = "5"
text = "Anyone MAY do so."
"""

# Hypothesis is not needed by the synthetic suites; loading it re-imports it in every inline run.
PLUGINS = (
    "-p",
    "harness.pytest_plugin",
    "-p",
    "reports.plugin",
    "-p",
    "no:cacheprovider",
    "-p",
    "no:hypothesispytest",
)
OPTS = ("--catalog", "catalog.toml", "--report-dir", "out")


@pytest.fixture
def lab(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".toml", catalog=CATALOG)
    pytester.makeini("[pytest]\n")  # rootdir = the temporary directory
    (pytester.path / "suites").mkdir()
    (pytester.path / "tests").mkdir()
    return pytester


def write(pytester: pytest.Pytester, relpath: str, source: str) -> None:
    path = pytester.path / relpath
    path.write_text(textwrap.dedent(source), encoding="utf-8")


def report(pytester: pytest.Pytester) -> dict[str, Any]:
    return json.loads((pytester.path / "out" / "report.json").read_text(encoding="utf-8"))


def run(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    result = pytester.runpytest(*PLUGINS, *OPTS, *args)
    return result, report(pytester)


def verdicts(doc: dict[str, Any]) -> dict[str, str]:
    return {t["nodeid"].split("::")[-1]: t["verdict"] for t in doc["tests"]}


def clause_verdicts(doc: dict[str, Any]) -> dict[str, str]:
    return {c["id"]: c["verdict"] for c in doc["clauses"]}


MIXED = """
    import pytest
    from harness.verdicts import inconclusive, not_applicable, not_run

    @pytest.mark.clause("T-MUST-1")
    def test_pass():
        pass

    @pytest.mark.clause("T-MUST-1")
    def test_na():
        not_applicable("IPv4 not claimed by the profile")

    @pytest.mark.clause("T-SHOULD-1")
    def test_inconclusive():
        inconclusive("the MN never registered")

    @pytest.mark.clause("T-SHOULD-1", "T-MAY-1")
    def test_not_run():
        not_run("needs CAP_NET_ADMIN", hint="run as root")

    @pytest.mark.clause("T-MAY-1")
    def test_plain_skip():
        pytest.skip("no tshark")

    @pytest.fixture
    def lab_root():
        not_run("no network namespaces", hint="run as root")

    @pytest.mark.clause("T-MAY-1")
    def test_fixture_not_run(lab_root):
        pass
"""


# -- the verdict encoding -------------------------------------------------------------------------
def test_encoding_round_trips() -> None:
    msg = encode(Verdict.NOT_RUN, "no root", "sudo dmmconf run")
    assert decode("Skipped: " + msg) == (Verdict.NOT_RUN, "no root", "sudo dmmconf run")
    assert decode(encode(Verdict.INCONCLUSIVE, "x")) == (Verdict.INCONCLUSIVE, "x", None)
    assert decode("plain reason") == (Verdict.NOT_RUN, "skipped: plain reason", None)
    assert worst([Verdict.PASS, Verdict.NOT_APPLICABLE, Verdict.NOT_RUN]) == Verdict.NOT_RUN
    assert worst([Verdict.PASS, Verdict.FAIL, Verdict.INCONCLUSIVE]) == Verdict.FAIL
    assert worst([]) is None


# -- collection -----------------------------------------------------------------------------------
def test_unknown_clause_is_a_collection_error(lab: pytest.Pytester) -> None:
    write(
        lab,
        "suites/test_unknown.py",
        """
        import pytest

        @pytest.mark.clause("T-MUST-1", "T-NOPE-9")
        def test_a():
            pass
    """,
    )
    result, _ = run(lab)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*suites/test_unknown.py::test_a: unknown clause ID 'T-NOPE-9'*"])
    result.assert_outcomes(errors=1)


def test_suites_need_a_clause_marker_tests_do_not(lab: pytest.Pytester) -> None:
    write(lab, "suites/test_unmarked.py", "def test_forgot():\n    pass\n")
    write(lab, "tests/test_unit.py", "def test_helper():\n    pass\n")
    result, _ = run(lab, "suites", "tests")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*suites/test_unmarked.py::test_forgot: no @pytest.mark.clause*"])
    assert "test_unit.py" not in result.stdout.str().split("short test summary")[-1]
    result, _ = run(lab, "tests")
    assert result.ret == pytest.ExitCode.OK


def test_class_and_module_markers_count(lab: pytest.Pytester) -> None:
    write(
        lab,
        "suites/test_cls.py",
        """
        import pytest
        pytestmark = pytest.mark.clause("T-MAY-1")

        @pytest.mark.clause("T-MUST-1")
        class TestBoth:
            def test_a(self):
                pass
    """,
    )
    result, doc = run(lab)
    assert result.ret == pytest.ExitCode.OK
    assert sorted(doc["tests"][0]["clauses"]) == ["T-MAY-1", "T-MUST-1"]


# -- verdicts and aggregation ---------------------------------------------------------------------
def test_verdict_per_test_and_per_clause(lab: pytest.Pytester) -> None:
    write(lab, "suites/test_mixed.py", MIXED)
    result, doc = run(lab)
    assert result.ret == pytest.ExitCode.OK
    assert verdicts(doc) == {
        "test_pass": "pass",
        "test_na": "not-applicable",
        "test_inconclusive": "inconclusive",
        "test_not_run": "not-run",
        "test_plain_skip": "not-run",
        "test_fixture_not_run": "not-run",
    }
    tests = {t["nodeid"].split("::")[-1]: t for t in doc["tests"]}
    assert tests["test_na"]["reason"] == "IPv4 not claimed by the profile"
    assert tests["test_not_run"]["reason"] == "needs CAP_NET_ADMIN"
    assert tests["test_not_run"]["hint"] == "run as root"
    assert tests["test_plain_skip"]["reason"] == "skipped: no tshark"
    assert tests["test_fixture_not_run"]["hint"] == "run as root"  # from a fixture (setup)
    # fail > inconclusive > not-run > not-applicable > pass; untested when no test
    assert clause_verdicts(doc) == {
        "T-MUST-1": "not-applicable",
        "T-MUST-2": "untested",
        "T-SHOULD-1": "inconclusive",
        "T-MAY-1": "not-run",
    }
    assert doc["summary"]["tests"] == {
        "fail": 0,
        "interpretation": 0,
        "inconclusive": 1,
        "not-run": 3,
        "not-applicable": 1,
        "pass": 1,
    }
    assert doc["summary"]["uncovered_mandatory"] == ["T-MUST-2"]
    assert doc["run"]["complete"] is True and doc["run"]["interrupted"] is False
    must1 = next(c for c in doc["clauses"] if c["id"] == "T-MUST-1")
    assert must1["level"] == "MUST" and must1["roles"] == ["HA"] and must1["section"] == "3.1"
    assert must1["tests"] == ["suites/test_mixed.py::test_pass", "suites/test_mixed.py::test_na"]
    result.stdout.fnmatch_lines(["*uncovered MUSTs: 1*", "*T-MUST-2*"])
    result.stdout.fnmatch_lines(["not-applicable*1"])


@pytest.mark.parametrize(
    "body",
    [
        "pytest.skip('later')",
        "not_applicable('no IPv4')",
        "inconclusive('no BU seen')",
        "not_run('no root')",
        "pytest.importorskip('no_such_module_dmmconf')",
        "pytest.xfail('known bug')",
    ],
)
def test_a_skipped_test_is_never_a_pass(lab: pytest.Pytester, body: str) -> None:
    write(
        lab,
        "suites/test_skip.py",
        f"""
        import pytest
        from harness.verdicts import inconclusive, not_applicable, not_run

        @pytest.mark.clause("T-MAY-1")
        def test_it():
            {body}
    """,
    )
    _, doc = run(lab)
    assert doc["tests"][0]["verdict"] != "pass"
    assert clause_verdicts(doc)["T-MAY-1"] != "pass"
    assert doc["summary"]["tests"]["pass"] == 0


def test_skipif_marker_is_not_run(lab: pytest.Pytester) -> None:
    write(
        lab,
        "suites/test_skipif.py",
        """
        import pytest

        @pytest.mark.clause("T-MAY-1")
        @pytest.mark.skipif(True, reason="no IPv4 stack")
        def test_it():
            pass
    """,
    )
    _, doc = run(lab)
    assert doc["tests"][0]["verdict"] == "not-run"
    assert "no IPv4 stack" in doc["tests"][0]["reason"]


# -- the gate -------------------------------------------------------------------------------------
GATE_CASES = {
    # name: (test source, extra args, expected exit status)
    "should-fail": ('@pytest.mark.clause("T-SHOULD-1")\ndef test_x():\n    assert 0', (), 0),
    "should-fail-strict": (
        '@pytest.mark.clause("T-SHOULD-1")\ndef test_x():\n    assert 0',
        ("--strict-gate",),
        1,
    ),
    "may-and-should-fail": (
        '@pytest.mark.clause("T-SHOULD-1", "T-MAY-1")\ndef test_x():\n    assert 0',
        (),
        0,
    ),
    "must-fail": ('@pytest.mark.clause("T-MUST-1")\ndef test_x():\n    assert 0', (), 1),
    "must-and-should-fail": (
        '@pytest.mark.clause("T-SHOULD-1", "T-MUST-2")\ndef test_x():\n    assert 0',
        (),
        1,
    ),
    "should-setup-error": (
        "@pytest.fixture\ndef broken():\n    raise RuntimeError('lab')\n\n"
        '@pytest.mark.clause("T-SHOULD-1")\ndef test_x(broken):\n    pass',
        (),
        1,
    ),
    "must-xfail": (
        '@pytest.mark.clause("T-MUST-1")\n@pytest.mark.xfail(reason="bug 7")\n'
        "def test_x():\n    assert 0",
        (),
        1,
    ),
    "should-xfail": (
        '@pytest.mark.clause("T-SHOULD-1")\n@pytest.mark.xfail(reason="bug 7")\n'
        "def test_x():\n    assert 0",
        (),
        0,
    ),
}


@pytest.mark.parametrize("case", GATE_CASES)
def test_gate(lab: pytest.Pytester, case: str) -> None:
    source, args, expected = GATE_CASES[case]
    write(lab, "suites/test_gate.py", "import pytest\n\n" + source + "\n")
    result, doc = run(lab, *args)
    assert doc["tests"][0]["verdict"] == "fail"
    assert result.ret == expected
    assert doc["run"]["exit_status"] == expected
    if case == "should-fail":
        result.stdout.fnmatch_lines(["*dmmconf gate: 1 failure(s), all on SHOULD/MAY*status 0*"])
        assert doc["run"]["gate"]["tolerated"] == ["suites/test_gate.py::test_x"]


def test_unmarked_failure_always_fails_the_run(lab: pytest.Pytester) -> None:
    write(lab, "tests/test_unit.py", "def test_helper():\n    assert 0\n")
    write(
        lab,
        "suites/test_s.py",
        'import pytest\n\n@pytest.mark.clause("T-SHOULD-1")\ndef test_x():\n    assert 0\n',
    )
    result, doc = run(lab, "suites", "tests")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert doc["run"]["gate"]["blocking"] == ["tests/test_unit.py::test_helper"]


# -- interruption ---------------------------------------------------------------------------------
def test_interrupted_run_keeps_what_was_done(lab: pytest.Pytester) -> None:
    write(
        lab,
        "suites/test_int.py",
        """
        import pytest

        @pytest.mark.clause("T-MUST-1")
        def test_first():
            pass

        @pytest.mark.clause("T-SHOULD-1")
        def test_second():
            raise KeyboardInterrupt

        @pytest.mark.clause("T-MAY-1")
        def test_never():
            pass
    """,
    )
    rec = lab.inline_run(*PLUGINS, *OPTS, no_reraise_ctrlc=True)
    assert rec.ret == pytest.ExitCode.INTERRUPTED
    doc = report(lab)
    assert doc["run"]["interrupted"] is True
    assert verdicts(doc) == {"test_first": "pass", "test_second": "not-run"}
    assert clause_verdicts(doc)["T-MAY-1"] == "untested"
    journal = (lab.path / "out" / "journal.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["verdict"] for line in journal] == ["pass", "not-run"]
    assert "interrupted" in (lab.path / "out" / "report.html").read_text(encoding="utf-8")


def test_sigterm_ends_the_run_with_a_final_report(lab: pytest.Pytester) -> None:
    write(
        lab,
        "suites/test_term.py",
        """
        import pathlib, time
        import pytest

        @pytest.mark.clause("T-MUST-1")
        def test_done():
            pass

        @pytest.mark.clause("T-SHOULD-1")
        def test_hangs():
            pathlib.Path("started").touch()
            time.sleep(60)
    """,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", *PLUGINS, *OPTS],
        cwd=lab.path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not (lab.path / "started").exists():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == pytest.ExitCode.INTERRUPTED
    finally:
        if proc.poll() is None:
            proc.kill()
    doc = report(lab)
    assert doc["run"]["interrupted"] is True
    assert verdicts(doc) == {"test_done": "pass", "test_hangs": "not-run"}


# -- HTML -----------------------------------------------------------------------------------------
def test_html_report_is_self_contained_and_escaped(lab: pytest.Pytester) -> None:
    write(lab, "suites/test_mixed.py", MIXED)
    write(
        lab,
        "suites/test_fail.py",
        """
        import pytest

        @pytest.mark.clause("T-MUST-1")
        def test_fails():
            assert "<script>" == "x"
    """,
    )
    run(lab)
    page = (lab.path / "out" / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert 'id="T-MUST-1"' in page and "T-SHOULD-1" in page
    assert "&lt;accept&gt; the option &amp; process it" in page
    assert page.count("<script") == 1 and "&lt;script&gt;" in page  # only the filters' own
    assert "<link" not in page and "src=" not in page  # no external assets


# -- attachments ----------------------------------------------------------------------------------
def test_attachments_are_copied_into_the_report(lab: pytest.Pytester) -> None:
    write(
        lab,
        "suites/test_att.py",
        """
        import pytest

        @pytest.mark.clause("T-MUST-1")
        def test_capture(attach, tmp_path):
            pcap = tmp_path / "link1.pcap"
            pcap.write_bytes(b"pcap")
            attach(pcap)
    """,
    )
    _, doc = run(lab)
    (path,) = doc["tests"][0]["attachments"]
    assert path.endswith("link1.pcap")
    assert (lab.path / "out" / path).read_bytes() == b"pcap"


# -- allure ---------------------------------------------------------------------------------------
def test_clause_ids_become_allure_tags_and_links(lab: pytest.Pytester) -> None:
    pytest.importorskip("allure_pytest")
    write(
        lab,
        "suites/test_al.py",
        """
        import pytest

        @pytest.mark.clause("T-MUST-1")
        def test_it():
            pass
    """,
    )
    run(lab, "--alluredir", "allure")
    (result_file,) = (lab.path / "allure").glob("*-result.json")
    result = json.loads(result_file.read_text(encoding="utf-8"))
    assert {"name": "tag", "value": "T-MUST-1"} in result["labels"]
    assert any(
        link["name"] == "T-MUST-1" and "#section-3.1" in link["url"] for link in result["links"]
    )


# -- xdist ----------------------------------------------------------------------------------------
def test_xdist_gives_the_same_verdicts(lab: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    write(lab, "suites/test_mixed.py", MIXED)
    write(
        lab,
        "suites/test_gate.py",
        'import pytest\n\n@pytest.mark.clause("T-SHOULD-1")\ndef test_x():\n    assert 0\n',
    )
    serial, serial_doc = run(lab)
    parallel = lab.runpytest_subprocess(*PLUGINS, *OPTS, "-p", "xdist", "-n", "2", timeout=120)
    parallel_doc = report(lab)
    assert parallel_doc["run"]["xdist_workers"] == 2
    assert verdicts(parallel_doc) == verdicts(serial_doc)
    assert clause_verdicts(parallel_doc) == clause_verdicts(serial_doc)
    assert {t["nodeid"]: t["reason"] for t in parallel_doc["tests"]} == {
        t["nodeid"]: t["reason"] for t in serial_doc["tests"]
    }
    assert parallel.ret == serial.ret == pytest.ExitCode.OK  # the SHOULD fail is tolerated
    parallel.stdout.fnmatch_lines(["*uncovered MUSTs: 1*"])


# -- the command line -----------------------------------------------------------------------------
def test_run_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["run", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in ("--role", "--sut", "--report-dir", "--strict-gate", "--serial"):
        assert option in out


def test_run_builds_the_pytest_command(tmp_path: Path) -> None:
    parser = cli.build_parser()
    out = tmp_path / "rep"
    args = parser.parse_args(
        [
            "run",
            "--role",
            "ha",
            "--strict-gate",
            "--serial",
            "--report-dir",
            str(out),
            "--",
            "-k",
            "bu",
        ]
    )
    argv = run_cmd.pytest_argv(args)
    # --role ha: the HA suite and the interop suite (the MN suite has nothing to judge)
    assert [Path(a).name for a in argv[:2]] == ["ha", "interop"]
    assert all(Path(a).is_dir() and Path(a).parent.name == "suites" for a in argv[:2])
    assert not any(a.startswith("--junitxml") for a in argv)  # reports.plugin writes junit.xml
    assert f"--alluredir={out / 'allure-results'}" in argv
    assert argv[argv.index("--sut-role") + 1] == "ha"
    assert "--strict-gate" in argv and "-n" not in argv
    assert argv[-2:] == ["-k", "bu"]
    assert argv[2:4] == ["-p", "harness.pytest_plugin"]


def test_dmmconf_run_end_to_end(lab: pytest.Pytester) -> None:
    """`dmmconf run` on a stand-in `suites` package (first on PYTHONPATH): all four outputs."""
    pkg = lab.path / "pkg" / "suites"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    write(
        lab,
        "pkg/suites/test_e2e.py",
        """
        import pytest

        @pytest.mark.clause("T-MUST-1")
        def test_must():
            pass

        @pytest.mark.clause("T-SHOULD-1")
        def test_should():
            assert 0
    """,
    )
    out = lab.path / "out"
    env = {
        **os.environ,
        "PYTHONPATH": str(lab.path / "pkg"),
        "DMMCONF_CATALOG": str(lab.path / "catalog.toml"),
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "run",
            "--report-dir",
            str(out),
            "--",
            "-p",
            "no:hypothesispytest",
        ],
        cwd=lab.path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr  # the SHOULD fail is tolerated
    doc = report(lab)
    assert verdicts(doc) == {"test_must": "pass", "test_should": "fail"}
    junit = (out / "junit.xml").read_text(encoding="utf-8")
    assert 'name="clause" value="T-MUST-1"' in junit
    assert list((out / "allure-results").glob("*-result.json"))
    assert (out / "report.html").is_file()
    assert proc.stdout.count("uncovered MUSTs") == 1  # the plugins are registered once


def test_run_rejects_a_missing_profile(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "--sut", "/no/such/profile.toml"]) == 2
    assert "cannot read: No such file" in capsys.readouterr().err


def test_clauses_lists_the_bundled_catalog(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["clauses", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == [c.id for c in load()]
    assert cli.main(["clauses"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["ID", "LEVEL", "ROLES", "SECTION", "COVERED-BY"]


def test_clauses_shows_coverage_and_filters(
    lab: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write(
        lab,
        "suites/test_cov_probe.py",
        """
        import pytest

        @pytest.mark.clause("T-MUST-1")
        def test_covers():
            pass
    """,
    )
    monkeypatch.setenv("DMMCONF_CATALOG", str(lab.path / "catalog.toml"))
    suites = str(lab.path / "suites")
    assert cli.main(["clauses", "--json", "--suites", suites]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["T-MUST-1"]["covered_by"] == ["suites/test_cov_probe.py::test_covers"]
    assert rows["T-MUST-2"]["covered_by"] == []
    assert (
        cli.main(["clauses", "--json", "--uncovered", "--level", "MUST NOT", "--suites", suites])
        == 0
    )
    assert [r["id"] for r in json.loads(capsys.readouterr().out)] == ["T-MUST-2"]
    assert cli.main(["clauses", "--role", "MN", "--suites", suites]) == 0
    ids = [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:-1]]
    assert ids == ["T-MUST-2", "T-MAY-1"]  # MN clauses, and ANY
