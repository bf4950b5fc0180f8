"""`dmmconf report diff A B` and `dmmconf report merge RUN_DIR...`: comparing runs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from harness.errors import UserError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "report",
        help="compare runs: diff two reports, merge several into an interop matrix",
        description="Compare conformance runs by their report.json files (or run directories).",
    )
    sub = p.add_subparsers(dest="report_command", required=True)
    d = sub.add_parser("diff", help="the clauses whose verdict differs between run A and run B")
    d.add_argument("a", metavar="A", help="report.json or run directory (the earlier run)")
    d.add_argument("b", metavar="B", help="report.json or run directory (the later run)")
    d.add_argument("--json", action="store_true", help="JSON rows instead of a table")
    d.set_defaults(func=diff)
    m = sub.add_parser(
        "merge",
        help="several runs side by side: clause rows x implementation columns (HTML and JSON)",
    )
    m.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories or report.json")
    m.add_argument(
        "--out", default="reports/out/matrix", metavar="DIR", help="where matrix.html/.json go"
    )
    m.set_defaults(func=merge)


def diff(args: argparse.Namespace) -> int:
    from reports import baseline

    rows = baseline.diff_rows(baseline.load(args.a), baseline.load(args.b))
    if args.json:
        keys = ("clause", "a", "b", "class")
        print(json.dumps([dict(zip(keys, r, strict=True)) for r in rows], indent=2))
        return 0
    head = ("CLAUSE", "A", "B", "CLASS")
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(head)]
    for row in [head, *rows]:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    regressions = sum(1 for r in rows if r[3] == "regression")
    print(f"{len(rows)} clause(s) differ, {regressions} regression(s)")
    return 0


def merge(args: argparse.Namespace) -> int:
    from reports import baseline, model

    docs = [(str(r), baseline.load(r)) for r in args.runs]
    matrix = baseline.merge(docs)
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out {out}: {exc.strerror}") from None
    model.write_atomic(out / "matrix.json", model.dumps(matrix))
    model.write_atomic(out / "matrix.html", baseline.render_matrix(matrix))
    print(
        f"{len(matrix['clauses'])} clauses x {len(matrix['columns'])} runs: {out / 'matrix.html'}"
    )
    return 0
