"""Comparing runs: a baseline's classes, `dmmconf report diff` and `dmmconf report merge`.

A clause's class against a baseline (a previous report.json):
  pass           passes now and passed then
  fixed          passes now, failed then
  regression     fails now, passed then
  expected fail  fails now and failed then
  fail           fails now, was not judged then (not-run, inconclusive, not-applicable)
  new            not in the baseline, or untested there and judged now
and otherwise the clause's verdict now (not-applicable, inconclusive, not-run, untested).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from harness.errors import UserError
from reports import html as html_mod

CLASSES = ("regression", "fixed", "expected fail", "fail", "new", "pass")


def load(path: str | Path) -> dict[str, Any]:
    """A report.json (or a run directory holding one)."""
    p = Path(path)
    if p.is_dir():
        p = p / "report.json"
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"{p}: cannot read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{p}: not a report.json ({exc})") from None
    if not isinstance(doc, dict) or not str(doc.get("schema", "")).startswith("dmmconf-report/"):
        raise UserError(f"{p}: not a dmmconf report.json (no schema dmmconf-report/...)")
    return doc


def verdicts(doc: Mapping[str, Any]) -> dict[str, str]:
    return {c["id"]: c["verdict"] for c in doc["clauses"]}


def classify(now: str, then: str | None) -> str:
    if then is None or (then == "untested" and now != "untested"):
        return "new"
    if now == "pass":
        return "fixed" if then == "fail" else "pass"
    if now == "fail":
        return {"pass": "regression", "fail": "expected fail"}.get(then, "fail")
    return now


def compare(baseline: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """The baseline section of a report: each clause's class and the counts."""
    before, after = verdicts(baseline), verdicts(current)
    classes = {cid: classify(v, before.get(cid)) for cid, v in after.items()}
    counts: dict[str, int] = {}
    for cls in classes.values():
        counts[cls] = counts.get(cls, 0) + 1
    return {
        "started": (baseline.get("run") or {}).get("started"),
        "classes": classes,
        "counts": counts,
        "regressions": sorted(c for c, cls in classes.items() if cls == "regression"),
    }


def diff_rows(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """(clause, verdict in A, verdict in B, class of B against A) where they differ."""
    va, vb = verdicts(a), verdicts(b)
    rows = []
    for cid in dict.fromkeys([*va, *vb]):
        x, y = va.get(cid, "-"), vb.get(cid, "-")
        if x != y:
            rows.append((cid, x, y, classify(y, va.get(cid))))
    return rows


def column(doc: Mapping[str, Any], where: str) -> str:
    """The name of a run's column in a matrix: its SUT and role, or the directory."""
    sut = (doc.get("run") or {}).get("sut") or {}
    target = str(sut.get("target") or where)
    name = Path(target).stem if target != "reference" else "reference"
    return f"{name} ({sut.get('role') or 'ha+mn'})"


def merge(docs: Sequence[tuple[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """Several runs side by side: one row per clause, one column per run."""
    columns = []
    for where, doc in docs:
        name = column(doc, where)
        if name in columns:
            name = f"{name} [{where}]"
        columns.append(name)
    rows: dict[str, dict[str, Any]] = {}
    for name, (_, doc) in zip(columns, docs, strict=True):
        for c in doc["clauses"]:
            row = rows.setdefault(
                c["id"],
                {"id": c["id"], "level": c["level"], "source": c["source"],
                 "section": c["section"], "text": c["text"], "verdicts": {}},
            )  # fmt: skip
            row["verdicts"][name] = c["verdict"]
    return {
        "schema": "dmmconf-matrix/1",
        "runs": [{"column": n, "report": w} for n, (w, _) in zip(columns, docs, strict=True)],
        "columns": columns,
        "clauses": list(rows.values()),
    }


def render_matrix(matrix: Mapping[str, Any]) -> str:
    """Autobahn-style: clause rows x implementation columns, each cell its verdict."""
    cols = matrix["columns"]
    head = "".join(f"<th>{escape(c)}</th>" for c in cols)
    body = []
    for row in matrix["clauses"]:
        cells = "".join(
            f'<td class="{escape(row["verdicts"].get(c, "-"))}">'
            f"{escape(row['verdicts'].get(c, '-'))}</td>"
            for c in cols
        )
        body.append(
            f'<tr><th title="{escape(row["text"])}">{escape(row["id"])}</th>'
            f"<td>{escape(row['level'])}</td><td>{escape(row['source'])} §"
            f"{escape(row['section'])}</td>{cells}</tr>"
        )
    runs = "".join(f"<li>{escape(r['column'])}: {escape(r['report'])}</li>" for r in matrix["runs"])
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        f"<title>dmmconf interop matrix</title><style>{html_mod.CSS}"
        "td.pass,td.fail,td.not-run,td.inconclusive,td.not-applicable,td.untested"
        "{text-align:center;font-weight:600}</style></head><body>"
        f"<h1>dmmconf interop matrix</h1><ul>{runs}</ul>"
        f"<table><tr><th>clause</th><th>level</th><th>section</th>{head}</tr>"
        + "".join(body)
        + "</table></body></html>\n"
    )
