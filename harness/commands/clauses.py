"""`dmmconf clauses`: the requirement catalog, with the tests that cover each clause."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import sys
from pathlib import Path
from typing import Any

from harness.catalog import LEVELS, ROLES, CatalogError, Clause
from harness.errors import UserError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "clauses",
        help="list the requirement catalog and the tests covering each clause",
        description="List the catalog (suites/requirements.toml, or $DMMCONF_CATALOG) with the "
        "test node IDs that carry each clause marker.",
    )
    p.add_argument(
        "--level",
        action="append",
        type=str.upper,
        choices=LEVELS,
        metavar="LEVEL",
        help=f"only this level ({', '.join(LEVELS)}); repeatable",
    )
    p.add_argument(
        "--role",
        action="append",
        type=str.upper,
        choices=ROLES,
        metavar="ROLE",
        help=f"only clauses of this role ({', '.join(ROLES)}; ANY clauses always "
        "match); repeatable",
    )
    p.add_argument("--uncovered", action="store_true", help="only clauses no test covers")
    p.add_argument("--json", action="store_true", help="JSON instead of a table")
    p.add_argument("--suites", metavar="DIR", help="collect tests here (default: installed suites)")
    p.set_defaults(func=clauses)


class _Gatherer:
    """A pytest plugin that keeps what collection found and runs nothing."""

    def __init__(self) -> None:
        self.coverage: dict[str, list[str]] = {}
        self.errors: list[str] = []

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            self.errors.append(f"{report.nodeid or '<session>'}: {report.longreprtext.strip()}")

    def pytest_collection_finish(self, session: Any) -> None:
        from harness.pytest_plugin import clause_ids

        for item in session.items:
            for cid in clause_ids(item):
                self.coverage.setdefault(cid, []).append(item.nodeid)


def collect_coverage(suites_dir: Path) -> tuple[dict[str, list[str]], list[str]]:
    """clause ID -> covering test node IDs, and collection errors; pytest stays silent."""
    import pytest

    gatherer = _Gatherer()
    argv = [
        str(suites_dir),
        "--collect-only",
        "-qq",
        "-p",
        "no:cacheprovider",
        "-p",
        "harness.pytest_plugin",
    ]
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        code = pytest.main(argv, plugins=[gatherer])
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED) and not gatherer.errors:
        gatherer.errors.append(f"pytest exit status {int(code)}: {sink.getvalue().strip()}")
    return gatherer.coverage, gatherer.errors


def _selected(clause: Clause, args: argparse.Namespace, covered: list[str]) -> bool:
    if args.level and clause.level not in args.level:
        return False
    if args.role and not (set(args.role) & set(clause.roles) or "ANY" in clause.roles):
        return False
    return not (args.uncovered and covered)


def clauses(args: argparse.Namespace) -> int:
    from harness.pytest_plugin import load_catalog

    try:
        catalog, _source = load_catalog()
    except CatalogError as exc:
        raise UserError(str(exc)) from None
    if args.suites:
        suites_dir = Path(args.suites)
        if not suites_dir.is_dir():
            raise UserError(f"--suites {args.suites}: no such directory")
    else:
        spec = importlib.util.find_spec("suites")
        if spec is None or spec.origin is None:
            raise UserError("the 'suites' package is not installed (pip install -e .)")
        suites_dir = Path(spec.origin).parent
    coverage, errors = collect_coverage(suites_dir)
    for err in errors:
        first = err.splitlines()[0] if err else err
        print(
            f"dmmconf clauses: warning: collection error, coverage incomplete: {first}",
            file=sys.stderr,
        )

    rows = [(c, coverage.get(c.id, [])) for c in catalog]
    rows = [(c, tests) for c, tests in rows if _selected(c, args, tests)]
    if args.json:
        out = [
            {
                "id": c.id,
                "level": c.level,
                "roles": list(c.roles),
                "source": c.source,
                "section": c.section,
                "text": c.text,
                "covered_by": tests,
            }
            for c, tests in rows
        ]
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return 0
    table = [("ID", "LEVEL", "ROLES", "SECTION", "COVERED-BY")]
    table += [
        (
            c.id,
            c.level,
            ",".join(c.roles),
            f"{c.source} {c.section}".strip(),
            " ".join(tests) or "-",
        )
        for c, tests in rows
    ]
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    for r in table:
        print("  ".join(f"{cell:<{w}}" for cell, w in zip(r, widths, strict=False)) + "  " + r[4])
    uncovered = sum(1 for c, tests in rows if not tests)
    must = sum(1 for c, tests in rows if not tests and c.mandatory)
    print(f"{len(rows)} clause(s), {uncovered} uncovered ({must} MUST/MUST NOT)")
    return 0
