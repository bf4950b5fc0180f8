"""The report document (report.json) built from the verdict ledger and the catalog.

Schema "dmmconf-report/1" (every field: docs/report-schema.md, checked by reports/schema.py):
  run      metadata: times, command line, SUT, versions, interrupted, exit status, gate
  summary  counts of tests per verdict, of clauses per verdict (plus "untested"),
           and the MUST/MUST NOT clauses with no test
  tests    one entry per test, in the order they ran (see harness.verdicts.TestResult.to_dict),
           with `about`: the implementation its verdict is about
  clauses  one entry per catalog clause, with the verdict aggregated over the tests that
           judged it about the SUT (role-true verdicts); tests that only observed it about
           the reference peer are listed as `evidence`, never a verdict
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from harness.catalog import Catalog, Clause
from harness.verdicts import SEVERITY, UNTESTED, Verdict, worst
from reports import pctr, sections

SCHEMA = "dmmconf-report/1"
DRAFT = sections.DRAFT
CLAUSE_VERDICTS: tuple[str, ...] = (*(v.value for v in SEVERITY), UNTESTED)


def clause_url(clause: Clause) -> str | None:
    """Where a clause's section can be read online."""
    section = clause.section.strip().rstrip(".")
    anchor = f"#section-{section}" if re.fullmatch(r"[0-9A-Z]+(\.[0-9]+)*", section) else ""
    if clause.source.strip().lower() == "draft":
        return f"https://datatracker.ietf.org/doc/html/{DRAFT}{anchor}"
    rfc = re.fullmatch(r"RFC\s*(\d+)", clause.source.strip(), re.IGNORECASE)
    if rfc:
        return f"https://www.rfc-editor.org/rfc/rfc{rfc[1]}{anchor}"
    return None


PEER = "the reference peer"


def about(test: Mapping[str, Any], sut_name: str) -> str | None:
    """The implementation a test's verdict is about: the SUT when it judged a clause of the
    SUT's role, the reference peer when it only observed the peer, None for a harness test."""
    if test.get("clauses"):
        return sut_name
    return PEER if test.get("evidence") else None


def clause_entries(
    catalog: Catalog, tests: list[dict[str, Any]], sut_name: str = "reference"
) -> list[dict[str, Any]]:
    by_clause: dict[str, list[dict[str, Any]]] = {}
    evidence: dict[str, list[dict[str, Any]]] = {}
    for test in tests:
        for cid in test["clauses"]:
            by_clause.setdefault(cid, []).append(test)
        for cid in test.get("evidence", ()):
            evidence.setdefault(cid, []).append(test)
    entries = []
    for clause in catalog:
        mine = by_clause.get(clause.id, [])
        verdict = worst(Verdict(t["verdict"]) for t in mine)
        entries.append(
            {
                "id": clause.id,
                "level": clause.level,
                "mandatory": clause.mandatory,
                "roles": list(clause.roles),
                "source": clause.source,
                "document": sections.document(clause.source),
                "section": clause.section,
                "section_title": sections.title(clause.source, clause.section),
                "url": clause_url(clause),
                "features": pctr.clause_features(clause),
                "text": clause.text,
                "note": clause.note,
                "interpretations": list(clause.interpretations),
                "verdict": verdict.value if verdict else UNTESTED,
                "about": sut_name if mine else None,
                "tests": [t["nodeid"] for t in mine],
                "evidence": [t["nodeid"] for t in evidence.get(clause.id, [])],
            }
        )
    return entries


def summarize(tests: list[dict[str, Any]], clauses: list[dict[str, Any]]) -> dict[str, Any]:
    test_counts = {v.value: 0 for v in SEVERITY}
    for t in tests:
        test_counts[t["verdict"]] += 1
    clause_counts = dict.fromkeys(CLAUSE_VERDICTS, 0)
    for c in clauses:
        clause_counts[c["verdict"]] += 1
    return {
        "tests": test_counts,
        "clauses": clause_counts,
        "uncovered_mandatory": [
            c["id"] for c in clauses if c["mandatory"] and c["verdict"] == UNTESTED
        ],
    }


def build(
    run: Mapping[str, Any], tests: Iterable[dict[str, Any]], catalog: Catalog
) -> dict[str, Any]:
    sut_name = str((run.get("sut") or {}).get("name") or "reference")
    tests = [{**t, "about": about(t, sut_name)} for t in tests]
    clauses = clause_entries(catalog, tests, sut_name)
    doc = {
        "schema": SCHEMA,
        "run": dict(run),
        "summary": summarize(tests, clauses),
        "tests": tests,
        "clauses": clauses,
    }
    doc["pctr"] = pctr.build(doc)
    return doc


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` in one step, so a reader (or a killed run) never sees half a file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        # mkstemp makes the file private (0600); a report is meant to be handed on.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def dumps(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n"
