"""The Protocol Conformance Test Report (ISO/IEC 9646-5, ETSI style) of a run.

  identification   the report, the test laboratory, the IUT, the protocol, the test suite
  iut_status       conformant / non-conformant / not established, and why
  static           the PICS: each optional feature, claimed or not (the SUT profile's
                   [features]); the PIXIT: the SUT profile itself (the extra information a
                   test laboratory needs: commands, placement, timers), key material withheld
  dynamic          tests and clauses per verdict, clauses per level and verdict
  campaign         when, how long, the command, the selection, how it ended
  observations     what a reader must know: the gate, a lab that could not start, an
                   interrupted run, MUST clauses without a test, known failures

Clause features (which optional feature a clause belongs to) come from the features'
own descriptions in harness/sut/profile.py ("(RFC 5555, draft §8)").
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from harness.catalog import LEVELS, Clause
from reports import sections

CORE = "core"  # the filter value of clauses no optional feature covers
_REDACT = re.compile(r"key|secret|password", re.IGNORECASE)


def _features() -> dict[str, str]:
    from harness.sut.profile import FEATURES

    return FEATURES


@cache
def _feature_scopes() -> tuple[tuple[str, str, str], ...]:
    """(feature, document source, section prefix or "") for every reference in a feature's
    description: "(RFC 5555, draft §8)" -> ("ipv4", "RFC 5555", ""), ("ipv4", "draft", "8")."""
    scopes = []
    for name, text in _features().items():
        for m in re.finditer(r"\b(RFC [0-9]+|draft)(?: §([0-9.]+))?", text):
            scopes.append((name, m[1], m[2] or ""))
    return tuple(scopes)


def clause_features(clause: Clause) -> list[str]:
    """The optional features a clause belongs to ([] for the core protocol)."""
    out = []
    for name, source, section in _feature_scopes():
        if source != clause.source:
            continue
        if not section or clause.section == section or clause.section.startswith(section + "."):
            out.append(name)
    return list(dict.fromkeys(out))


def _redact(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _redact(v, k) for k, v in value.items()}
    if _REDACT.search(key) and isinstance(value, str) and not key.endswith("_file"):
        return "(withheld)"
    return value


@cache
def _profile(path: str) -> dict[str, Any] | None:
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None


def _profiles(sut: Mapping[str, Any]) -> dict[str, tuple[str, dict[str, Any] | None]]:
    """role -> (profile path, its TOML) of the IUT(s) of a run."""
    from harness.sut import profile as profile_mod

    target, role = sut.get("target") or "reference", sut.get("role")
    if target != "reference":
        data = _profile(target)
        return {str((data or {}).get("role") or role or "?"): (target, data)}
    where = Path(profile_mod.__file__).parent / "profiles"
    roles = [role] if role else ["ha", "mn"]
    return {
        r: (str(where / f"reference-{r}.toml"), _profile(str(where / f"reference-{r}.toml")))
        for r in roles
    }


def static(sut: Mapping[str, Any]) -> dict[str, Any]:
    pics = []
    pixit = []
    for role, (path, data) in _profiles(sut).items():
        claimed = (data or {}).get("features") or {}
        pics.append(
            {
                "role": role,
                "implementation": (data or {}).get("name") or path,
                "features": [
                    {
                        "feature": f,
                        "description": text,
                        "claimed": bool(claimed.get(f)) if data is not None else None,
                    }
                    for f, text in _features().items()
                ],
            }
        )
        pixit.append({"role": role, "profile": path, "values": _redact(data) if data else None})
    return {"pics": pics, "pixit": pixit}


def iut_status(doc: Mapping[str, Any]) -> dict[str, str]:
    clauses = doc["clauses"]
    failed_must = [c["id"] for c in clauses if c["mandatory"] and c["verdict"] == "fail"]
    failed = [c["id"] for c in clauses if c["verdict"] == "fail"]
    unjudged = [
        c["id"]
        for c in clauses
        if c["mandatory"] and c["verdict"] in ("inconclusive", "not-run", "untested")
    ]
    if failed_must:
        return {
            "status": "non-conformant",
            "reason": f"{len(failed_must)} MUST/MUST NOT clause(s) fail: {', '.join(failed_must)}",
        }
    if unjudged or not any(c["verdict"] == "pass" for c in clauses):
        extra = f"; {len(failed)} optional clause(s) fail" if failed else ""
        return {
            "status": "not established",
            "reason": f"no MUST clause fails, but {len(unjudged)} MUST/MUST NOT clause(s) were "
            f"not judged (inconclusive, not-run or untested){extra}",
        }
    extra = f" ({len(failed)} SHOULD/MAY clause(s) fail)" if failed else ""
    return {
        "status": "conformant",
        "reason": f"every MUST/MUST NOT clause passes or does not apply{extra}",
    }


def dynamic(doc: Mapping[str, Any]) -> dict[str, Any]:
    by_level: dict[str, dict[str, int]] = {}
    for c in doc["clauses"]:
        row = by_level.setdefault(c["level"], {})
        row[c["verdict"]] = row.get(c["verdict"], 0) + 1
    return {
        "tests": dict(doc["summary"]["tests"]),
        "clauses": dict(doc["summary"]["clauses"]),
        "clauses_by_level": {lv: by_level[lv] for lv in LEVELS if lv in by_level},
    }


def observations(doc: Mapping[str, Any]) -> list[str]:
    run, out = doc["run"], []
    gate = run.get("gate") or {}
    if run.get("interrupted"):
        out.append("The run was interrupted: the results are partial.")
    elif not run.get("complete"):
        out.append("The run has not finished (or was killed): the results are partial.")
    if gate.get("no_verdict"):
        out.append(gate["no_verdict"])
    if gate.get("message"):
        out.append(gate["message"])
    uncovered = doc["summary"].get("uncovered_mandatory") or []
    if uncovered:
        out.append(f"{len(uncovered)} MUST/MUST NOT clause(s) have no test yet (untested).")
    xfail = [t["nodeid"] for t in doc["tests"] if t.get("xfail")]
    if xfail:
        out.append(f"{len(xfail)} known failure(s) (xfail), counted as fail: {', '.join(xfail)}")
    errors = [t["nodeid"] for t in doc["tests"] if t.get("error")]
    if errors:
        out.append(f"{len(errors)} test(s) failed outside the test body (setup/teardown).")
    return out


def build(doc: Mapping[str, Any]) -> dict[str, Any]:
    run = doc["run"]
    sut = run.get("sut") or {}
    return {
        "identification": {
            "report": f"dmmconf PCTR {run.get('started')}",
            "test_laboratory": run.get("platform"),
            "test_tool": f"dmmconf {run.get('version')} (pytest {run.get('pytest')})",
            "protocol": f"{sections.DRAFT} (with RFC 6275, 5648, 6089, 5555, 5026, 4285)",
            "test_suite": f"dmmconf suites, catalog {run.get('catalog')}",
            "iut": sut.get("target"),
            "iut_role": sut.get("role") or "ha+mn",
        },
        "iut_status": iut_status(doc),
        "static": static(sut),
        "dynamic": dynamic(doc),
        "campaign": {
            "started": run.get("started"),
            "finished": run.get("finished"),
            "duration": run.get("duration"),
            "command": " ".join(run.get("argv") or ()),
            "tests_run": len(doc["tests"]),
            "exit_status": run.get("exit_status"),
            "complete": run.get("complete"),
        },
        "observations": observations(doc),
    }
