"""JUnit that carries the verdict, allure labels, and report.json against its documented schema,
on a small fake run (the plugins on a synthetic suite, as in test_verdicts_and_reports)."""

from __future__ import annotations

import importlib.util
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from reports import junit, schema, sections
from tests.unit.test_verdicts_and_reports import MIXED, lab, run, write

__all__ = ["lab"]  # the fixture, imported for the tests below
pytest_plugins = ["pytester"]

DOCS = Path(__file__).resolve().parents[2] / "docs" / "report-schema.md"

FAILING = """
    import pytest
    from harness.verdicts import LAB_UNAVAILABLE, not_run

    @pytest.mark.clause("T-MUST-1", "T-MUST-2")
    def test_fails(attach, tmp_path):
        pcap = tmp_path / "link1.pcap"
        pcap.write_bytes(b"pcap")
        attach(pcap)
        assert 1 == 2, "the HA answered with status 128"

    @pytest.fixture
    def broken():
        raise RuntimeError("tester bug")

    @pytest.mark.clause("T-SHOULD-1")
    def test_setup_error(broken):
        pass

    @pytest.mark.clause("T-MAY-1")
    def test_no_lab():
        not_run(LAB_UNAVAILABLE + ": no root", hint="run as root")
"""


def _cases(path: Path) -> dict[str, ET.Element]:
    root = ET.parse(path).getroot()
    return {c.get("name", ""): c for c in root.iter("testcase")}


def _props(case: ET.Element) -> list[tuple[str, str]]:
    return [(p.get("name", ""), p.get("value", "")) for p in case.iter("property")]


def test_junit_carries_the_verdict(lab: pytest.Pytester) -> None:
    write(lab, "suites/test_mixed.py", MIXED)
    write(lab, "suites/test_failing.py", FAILING)
    run(lab)
    path = lab.path / "out" / "junit.xml"
    cases = _cases(path)
    root = ET.parse(path).getroot()
    assert root.get("failures") == "2" and root.get("errors") == "0"
    assert root.get("tests") == str(len(cases)) == "9"

    passed = cases["test_pass"]
    assert passed.get("classname") == "suites.test_mixed"  # stable: file path + class
    assert not list(passed.iter("failure")) and not list(passed.iter("skipped"))
    assert ("clause", "T-MUST-1") in _props(passed) and ("level", "MUST") in _props(passed)
    assert ("section", "draft 3.1") in _props(passed) and ("verdict", "pass") in _props(passed)

    def skipped(name: str) -> ET.Element:
        (element,) = cases[name].iter("skipped")
        return element

    assert skipped("test_na").get("type") == "not-applicable"
    assert skipped("test_na").get("message") == "not-applicable: IPv4 not claimed by the profile"
    assert skipped("test_not_run").get("message") == (
        "not-run: needs CAP_NET_ADMIN (hint: run as root)"
    )
    assert skipped("test_inconclusive").get("type") == "inconclusive"
    assert skipped("test_inconclusive").get("message", "").startswith("INCONCLUSIVE")
    assert (
        skipped("test_no_lab")
        .get("message", "")
        .startswith("not-run: the network lab is unavailable")
    )

    (failure,) = cases["test_fails"].iter("failure")
    assert "status 128" in failure.get("message", "")
    assert "assert 1 == 2" in (failure.text or "")
    props = _props(cases["test_fails"])
    assert [v for k, v in props if k == "clause"] == ["T-MUST-1", "T-MUST-2"]
    assert [v for k, v in props if k == "level"] == ["MUST", "MUST NOT"]
    out = cases["test_fails"].find("system-out")
    assert out is not None
    assert re.search(r"\[\[ATTACHMENT\|attachments/.*link1\.pcap\]\]", out.text or "")
    # a setup error is the verdict fail, so a failure too (never JUnit's "error")
    (setup_failure,) = cases["test_setup_error"].iter("failure")
    assert setup_failure.get("type") == "error" and "tester bug" in setup_failure.get("message", "")


def test_junit_names() -> None:
    assert junit.names("suites/ha/test_bu.py::TestX::test_y[a-1]") == (
        "suites.ha.test_bu.TestX",
        "test_y[a-1]",
    )
    assert junit.names("suites/test_a.py::test_b") == ("suites.test_a", "test_b")


def test_allure_labels(lab: pytest.Pytester) -> None:
    pytest.importorskip("allure_pytest")
    write(lab, "suites/test_failing.py", FAILING)
    run(lab, "--alluredir", "allure")
    found = (lab.path / "allure").glob("*-result.json")
    results = [json.loads(p.read_text(encoding="utf-8")) for p in found]
    fails = next(r for r in results if r["name"] == "test_fails")
    labels: dict[str, list[str]] = {}
    for label in fails["labels"]:
        labels.setdefault(label["name"], []).append(label["value"])
    assert sorted(labels["epic"]) == ["RFC 6275", sections.DRAFT]
    assert sorted(labels["feature"]) == [
        "RFC 6275 §11.7.1 Sending Binding Updates to the Home Agent",
        "draft §3.1",
    ]
    assert sorted(labels["story"]) == ["T-MUST-1", "T-MUST-2"]
    assert labels["severity"] == ["critical"]
    (attachment,) = fails["attachments"]
    assert attachment["name"] == "link1.pcap" and attachment["source"].endswith(".pcap")
    no_lab = next(r for r in results if r["name"] == "test_no_lab")
    assert no_lab["status"] == "skipped"
    assert {"name": "severity", "value": "minor"} in no_lab["labels"]


def test_section_titles_come_from_the_documents() -> None:
    assert sections.label("draft", "6") == "6 Home Agent Operation"
    assert sections.label("draft", "7.1") == "7.1 Multiple Interface Operation"
    assert sections.title("RFC 6275", "10.3.1") == "Primary Care-of Address Registration"
    assert sections.label("RFC 9999", "3") == "3"  # not bundled: the number alone


# -- report.json schema ---------------------------------------------------------------------------
def _documented_fields() -> set[str]:
    text = DOCS.read_text(encoding="utf-8")
    return set(re.findall(r"^\| `([^`]+)` \|", text, re.MULTILINE))


def test_schema_and_its_documentation_agree() -> None:
    in_schema = set(schema.field_paths())
    counts = {p for p in in_schema if p.startswith(("summary.tests.", "summary.clauses."))}
    documented = _documented_fields()
    text = DOCS.read_text(encoding="utf-8")
    assert in_schema - counts - documented == set(), "fields missing from docs/report-schema.md"
    assert documented - in_schema == set(), "documented fields that the schema does not have"
    assert all(f"`{p}`" in text for p in counts)


def test_a_real_report_follows_the_schema(lab: pytest.Pytester) -> None:
    write(lab, "suites/test_mixed.py", MIXED)
    write(lab, "suites/test_failing.py", FAILING)
    _, doc = run(lab)
    assert schema.validate(doc) == []
    fails = next(c for c in doc["clauses"] if c["id"] == "T-MUST-2")
    assert fails["document"] == "RFC 6275" and fails["section_title"]
    assert doc["run"]["gate"]["no_verdict"].startswith("dmmconf: no verdict possible")


def test_the_validator_finds_what_is_wrong() -> None:
    good: dict[str, Any] = {
        "nodeid": "a::b",
        "clauses": [],
        "evidence": [],
        "about": None,
        "verdict": "pass",
        "reason": "",
        "interpretations": [],
        "hint": None,
        "error": False,
        "xfail": False,
        "duration": 0.1,
        "start": None,
        "stop": None,
        "longrepr": None,
        "attachments": [],
    }
    assert list(schema.errors(good, schema.TEST)) == []
    bad = {**good, "verdict": "broken", "duration": "1s", "extra": 1}
    del bad["reason"]
    problems = list(schema.errors(bad, schema.TEST, "$.tests[0]"))
    assert any("'broken' not one of" in p for p in problems)
    assert any(p.startswith("$.tests[0].duration: str") for p in problems)
    assert "$.tests[0]: missing 'reason'" in problems
    assert "$.tests[0]: unexpected 'extra'" in problems
    if importlib.util.find_spec("jsonschema"):  # where installed, it agrees
        import jsonschema

        jsonschema.validate(good, schema.TEST)


# -- progress -------------------------------------------------------------------------------------
def _progress_lines(out: str) -> list[str]:
    return [ln for ln in out.splitlines() if re.match(r"^\[\d+(/\d+)?( ~\S+ left)?\] ", ln)]


def test_progress_one_line_per_test(lab: pytest.Pytester) -> None:
    write(lab, "suites/test_mixed.py", MIXED)
    write(lab, "suites/test_failing.py", FAILING)
    result, _ = run(lab, "--dmmconf-progress", "lines")
    lines = _progress_lines(result.stdout.str())
    assert len(lines) == 9
    assert lines[0].startswith("[1/9 ~") and lines[-1].startswith("[9/9] ")
    fails = next(ln for ln in lines if "test_fails" in ln)
    assert re.search(
        r"\] fail +\d+\.\d\ds  T-MUST-1,T-MUST-2  suites/test_failing.py::test_fails", fails
    )
    assert "(AssertionError: the HA answered with status 128" in fails
    assert "suites/test_mixed.py ." not in result.stdout.str()  # no dots, no bare file names
    result.stdout.fnmatch_lines(["*1 failed*"])  # pytest's summary still counts

    quiet, _ = run(lab, "--dmmconf-progress", "quiet", "-q")
    assert _progress_lines(quiet.stdout.str()) == []
    quiet.stdout.fnmatch_lines(["*dmmconf verdicts*", "fail*2"])


def test_progress_under_xdist(lab: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    write(lab, "suites/test_mixed.py", MIXED)
    from tests.unit.test_verdicts_and_reports import OPTS, PLUGINS

    result = lab.runpytest_subprocess(
        *PLUGINS, *OPTS, "-p", "xdist", "-n", "2", "--dmmconf-progress", "lines", timeout=120
    )
    lines = _progress_lines(result.stdout.str())
    assert [ln.split("]")[0] for ln in lines][-1] == "[6/6"
    assert len(lines) == 6 and len({ln.rsplit("::", 1)[-1] for ln in lines}) == 6


def test_time_left_is_the_pace_so_far() -> None:
    from harness.verdicts import Judgement, TestResult, Verdict
    from reports import progress

    result = TestResult("suites/a.py::test_b", ["DMM-HA-1"], [Judgement(Verdict.PASS)], 1.5)
    assert progress.line(result, 3, 10, 125.0) == (
        "[ 3/10 ~2m05s left] pass              1.50s  DMM-HA-1  suites/a.py::test_b"
    )
    assert progress.duration(7300) == "2h01m"
