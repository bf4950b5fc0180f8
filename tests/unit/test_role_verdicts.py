"""Role-true verdicts and the strengths of judgement (issue 10, items 1 and 2), on synthetic
suites: a clause's verdict comes only from tests of the SUT's role (the others are evidence
about the reference peer, never a pass, and never gate); a failure by one of the suite's
interpretations is its own verdict, `interpretation`, gating only with
--strict-interpretations; `--select-role` selects by the catalog's role."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from harness.sut import adapters
from harness.verdicts import InterpretationFailure, by_interpretation, interpretation_failed
from reports import html, schema
from tests.unit.test_verdicts_and_reports import OPTS, PLUGINS, clause_verdicts, lab, run, write

__all__ = ["lab"]  # the fixture, imported for the tests below
pytest_plugins = ["pytester"]

# T-MUST-1 is an HA clause, T-MUST-2 an MN clause, T-MAY-1 is ANY (tests_verdicts_and_reports)
ROLES = """
    import pytest

    @pytest.mark.clause("T-MUST-1", "T-MUST-2")
    def test_both():
        pass

    @pytest.mark.clause("T-MUST-1")
    def test_ha_only():
        assert 0, "the reference HA sent no BA"

    @pytest.mark.clause("T-MAY-1")
    def test_any():
        pass

    @pytest.mark.clause("T-MUST-2")
    @pytest.mark.evidence("T-SHOULD-1")
    def test_mn_with_declared_evidence():
        pass
"""

INTERP = """
    import pytest
    from harness.verdicts import by_interpretation, interpretation_failed

    @pytest.mark.clause("T-MUST-1")
    @pytest.mark.interpretation("INT-4")
    def test_marked():
        assert 0, "options not at 8n+2"

    @pytest.mark.clause("T-MUST-1")
    def test_helper():
        with by_interpretation("INT-6", "INT-7"):
            assert 0, "the BA's option is not the installed state"

    @pytest.mark.clause("T-SHOULD-1")
    def test_raised():
        interpretation_failed("INT-2", "checksum with a pseudo-header refused")

    @pytest.mark.clause("T-MUST-2")
    @pytest.mark.interpretation("INT-4")
    def test_marked_but_crashed():
        raise KeyError("a harness bug is no interpretation")
"""


def _tests(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["nodeid"].split("::")[-1]: t for t in doc["tests"]}


def _clauses(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in doc["clauses"]}


def test_an_mn_run_takes_no_verdict_from_ha_clauses(lab: pytest.Pytester) -> None:
    write(lab, "suites/test_roles.py", ROLES)
    result, doc = run(lab, "--sut-role", "mn")
    assert result.ret == 0, result.stdout.str()  # the failing check is about the HA peer
    assert schema.validate(doc) == []
    tests, clauses = _tests(doc), _clauses(doc)
    assert tests["test_both"]["clauses"] == ["T-MUST-2"]
    assert tests["test_both"]["evidence"] == ["T-MUST-1"]
    assert tests["test_both"]["about"] == "reference"
    assert tests["test_ha_only"] == {**tests["test_ha_only"], "clauses": [], "verdict": "fail"}
    assert tests["test_ha_only"]["evidence"] == ["T-MUST-1"]
    assert tests["test_ha_only"]["about"] == "the reference peer"
    assert tests["test_any"]["clauses"] == ["T-MAY-1"]  # ANY judges every role
    assert tests["test_mn_with_declared_evidence"]["evidence"] == ["T-SHOULD-1"]
    # the HA clause: untested, its tests shown as evidence; never a pass nor a fail
    assert clauses["T-MUST-1"]["verdict"] == "untested" and clauses["T-MUST-1"]["tests"] == []
    assert clauses["T-MUST-1"]["about"] is None
    assert [n.split("::")[-1] for n in clauses["T-MUST-1"]["evidence"]] == [
        "test_both",
        "test_ha_only",
    ]
    assert clauses["T-MUST-2"]["verdict"] == "pass" and clauses["T-MUST-2"]["about"] == "reference"
    assert doc["run"]["sut"]["role"] == "mn"
    assert doc["run"]["gate"]["blocking"] == [] and len(doc["run"]["gate"]["tolerated"]) == 1
    page = (lab.path / "out" / "report.html").read_text(encoding="utf-8")
    assert "evidence about the reference peer" in page and "about: the reference peer" in page
    assert "Tests without a clause" not in page  # evidence-only tests sit under their clause
    junit = ET.parse(lab.path / "out" / "junit.xml").getroot()
    case = next(c for c in junit.iter("testcase") if c.get("name") == "test_both")
    props = [(p.get("name"), p.get("value")) for p in case.iter("property")]
    assert ("clause", "T-MUST-2") in props and ("evidence", "T-MUST-1") in props
    assert ("about", "reference") in props


def test_an_ha_run_and_the_default_run(lab: pytest.Pytester) -> None:
    write(lab, "suites/test_roles.py", ROLES)
    result, doc = run(lab, "--sut-role", "ha")
    assert result.ret == 1  # the HA's own MUST failed
    assert clause_verdicts(doc)["T-MUST-1"] == "fail"
    assert clause_verdicts(doc)["T-MUST-2"] == "untested"
    assert _tests(doc)["test_both"]["evidence"] == ["T-MUST-2"]
    # the bundled reference without --sut-role plays both roles: everything is a verdict
    result, doc = run(lab)
    assert result.ret == 1
    assert clause_verdicts(doc)["T-MUST-1"] == "fail"
    assert clause_verdicts(doc)["T-MUST-2"] == "pass"
    assert _tests(doc)["test_both"]["evidence"] == []
    assert doc["run"]["sut"] == {**doc["run"]["sut"], "role": None, "name": "reference"}


def test_a_profile_names_what_the_verdicts_are_about(lab: pytest.Pytester) -> None:
    write(lab, "suites/test_roles.py", ROLES)
    profile = adapters.PROFILES_DIR / "reference-mn.toml"
    result, doc = run(lab, "--sut", str(profile))  # the role comes from the profile
    assert result.ret == 0, result.stdout.str()
    assert doc["run"]["sut"]["role"] == "mn"
    name = doc["run"]["sut"]["name"]
    assert name.startswith("dmmconf reference MN")
    assert _clauses(doc)["T-MUST-2"]["about"] == name
    assert _clauses(doc)["T-MUST-1"]["verdict"] == "untested"


def test_interpretation_failures_are_their_own_verdict(lab: pytest.Pytester) -> None:
    write(lab, "suites/test_interp.py", INTERP)
    result, doc = run(lab)
    tests = _tests(doc)
    assert tests["test_marked"]["verdict"] == "interpretation"
    assert tests["test_marked"]["interpretations"] == ["INT-4"]
    assert "options not at 8n+2" in tests["test_marked"]["reason"]
    assert tests["test_helper"]["interpretations"] == ["INT-6", "INT-7"]
    assert tests["test_raised"]["verdict"] == "interpretation"
    assert tests["test_marked_but_crashed"]["verdict"] == "fail"  # not an assertion
    assert clause_verdicts(doc)["T-MUST-1"] == "interpretation"
    assert doc["summary"]["tests"]["interpretation"] == 3
    assert result.ret == 1  # only the crash gates (a MUST clause's fail)
    assert [n.split("::")[-1] for n in doc["run"]["gate"]["blocking"]] == [
        "test_marked_but_crashed"
    ]
    assert schema.validate(doc) == []
    page = html.render(doc)
    assert "interpretation INT-4" in page and 'value="interpretation"' in page
    junit = ET.parse(lab.path / "out" / "junit.xml").getroot()
    case = next(c for c in junit.iter("testcase") if c.get("name") == "test_marked")
    skipped = case.find("skipped")
    assert skipped is not None and skipped.get("type") == "interpretation"
    assert (skipped.get("message") or "").startswith("INTERPRETATION (the suite's reading INT-4")


GROUPS = """
    import pytest
    from harness.verdicts import InterpretationFailure

    @pytest.mark.clause("T-MUST-1")
    def test_readings_only():
        raise ExceptionGroup("two bugs", [
            InterpretationFailure(["INT-14"], "a group served twice"),
            ExceptionGroup("nested", [InterpretationFailure(["INT-6"], "echo differs")]),
        ])

    @pytest.mark.clause("T-MUST-2")
    def test_a_reading_and_a_requirement():
        raise ExceptionGroup("two bugs", [
            InterpretationFailure(["INT-14"], "a group served twice"),
            AssertionError("no BU after the move"),
        ])
"""


def test_several_failures_are_an_interpretation_only_when_all_are(lab: pytest.Pytester) -> None:
    """Hypothesis reports several distinct failures as one exception group (the handover
    machine's report_multiple_bugs): by the suite's readings alone it is *interpretation*;
    with a failure of a requirement among them it is *fail*."""
    write(lab, "suites/test_groups.py", GROUPS)
    _, doc = run(lab)
    tests = _tests(doc)
    assert tests["test_readings_only"]["verdict"] == "interpretation"
    assert tests["test_readings_only"]["interpretations"] == ["INT-14", "INT-6"]
    assert tests["test_a_reading_and_a_requirement"]["verdict"] == "fail"


def test_strict_interpretations_make_them_gate(lab: pytest.Pytester) -> None:
    write(lab, "suites/test_interp.py", INTERP.replace("raise KeyError", "return None  #"))
    result, doc = run(lab)
    assert result.ret == 0, result.stdout.str()
    result, doc = run(lab, "--strict-interpretations")
    assert result.ret == 1
    blocking = {n.split("::")[-1] for n in doc["run"]["gate"]["blocking"]}
    assert blocking == {"test_marked", "test_helper"}  # the MUST clause's; not the SHOULD's
    assert doc["run"]["gate"]["strict_interpretations"] is True


def test_the_helpers_outside_pytest() -> None:
    with pytest.raises(InterpretationFailure) as exc, by_interpretation("INT-1"):
        raise AssertionError("x")
    assert exc.value.interpretations == ("INT-1",) and str(exc.value) == "[INT-1] x"
    with pytest.raises(InterpretationFailure, match=r"^\[INT-2\] y$"):
        interpretation_failed("INT-2", "y")
    with pytest.raises(KeyError), by_interpretation("INT-1"):  # only assertions are readings
        raise KeyError("z")


def test_select_role_uses_the_catalog(lab: pytest.Pytester) -> None:
    write(lab, "suites/test_roles.py", ROLES)
    result = lab.runpytest(*PLUGINS, *OPTS, "--select-role", "mn")
    assert result.ret == 0
    ran = {t["nodeid"].split("::")[-1] for t in _report(lab.path)["tests"]}
    assert ran == {"test_both", "test_any", "test_mn_with_declared_evidence"}
    result = lab.runpytest(*PLUGINS, *OPTS, "--select-role", "CN")
    assert result.ret == 0  # ANY clauses match every role
    assert {t["nodeid"].split("::")[-1] for t in _report(lab.path)["tests"]} == {"test_any"}


def _report(path: Path) -> dict[str, Any]:
    import json

    return dict(json.loads((path / "out" / "report.json").read_text(encoding="utf-8")))
