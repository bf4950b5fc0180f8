"""`dmmconf run`: the conformance run (pytest on the installed suites), writing the reports."""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import sys
from pathlib import Path
from typing import Any

from harness.catalog import LEVELS, ROLES
from harness.errors import UserError

PLUGINS = (
    "harness.pytest_plugin",
    "reports.plugin",
    "harness.lab.fixtures",
    "harness.tester.fixtures",
    "harness.servers.fixtures",
)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "run",
        help="run the conformance suites and write the reports",
        description="Run the conformance suites with pytest and write report.json, report.html, "
        "junit.xml and allure-results to the report directory. Exit status: pytest's, after "
        "the gate (only fails on MUST clauses fail the run unless --strict-gate).",
        epilog="Arguments after -- go to pytest unchanged, e.g. dmmconf run -- -k binding -x",
    )
    p.add_argument(
        "--role",
        choices=("ha", "mn"),
        help="role of the SUT: runs that role's suite (suites/ha or suites/mn) and the interop "
        "suite, and takes a clause's verdict only from checks of that role (default: the "
        "bundled reference, both roles, every suite)",
    )
    p.add_argument(
        "--sut",
        default="reference",
        metavar="reference|PROFILE",
        help="the bundled reference (default) or a SUT profile file",
    )
    p.add_argument(
        "--report-dir",
        default="reports/out",
        metavar="DIR",
        help="where the reports go (default reports/out)",
    )
    p.add_argument(
        "--strict-gate",
        action="store_true",
        help="fail the exit status on any fail, not only on MUST clauses",
    )
    p.add_argument("--serial", action="store_true", help="do not run tests in parallel (xdist)")
    p.add_argument(
        "--baseline",
        metavar="FILE",
        help="a previous report.json: class each clause as pass, fail, expected fail, fixed, "
        "regression or new (in report.json and report.html)",
    )
    p.add_argument(
        "--gate",
        choices=("default", "regressions"),
        default="default",
        help="regressions: the exit status fails only on regressions against --baseline",
    )
    p.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="for CI logs: no line per test, only the summary (default: one line per test as "
        "it ends, with verdict, clauses, duration, count and time left)",
    )
    p.add_argument(
        "--clause",
        action="append",
        default=[],
        metavar="ID",
        help="only the tests of this clause (e.g. DMM-HA-4); repeatable; clause IDs may also "
        "be given as the last arguments",
    )
    p.add_argument(
        "--section",
        action="append",
        default=[],
        metavar="[SOURCE:]SECTION",
        help='only the tests of clauses in this section and its subsections ("6", "7.1", '
        '"RFC 6275:9.2"); repeatable',
    )
    p.add_argument(
        "--level",
        action="append",
        default=[],
        type=str.upper,
        choices=LEVELS,
        metavar="LEVEL",
        help=f"only the tests of clauses of this level ({', '.join(LEVELS)}); repeatable",
    )
    p.add_argument(
        "--clause-role",
        action="append",
        default=[],
        type=str.upper,
        choices=ROLES,
        metavar="ROLE",
        help=f"only the tests of clauses of this catalog role ({', '.join(ROLES)}; a clause of "
        "role ANY matches each); repeatable",
    )
    p.add_argument(
        "--strict-interpretations",
        action="store_true",
        help="failures by the suite's interpretations (verdict 'interpretation', an INT-n of "
        "docs/interpretations.md) fail the exit status like failed requirements",
    )
    p.add_argument(
        "--list",
        action="store_true",
        help="print what would run (clause, section, level, test) and exit",
    )
    p.add_argument(
        "pytest_args",
        nargs="*",
        metavar="CLAUSE... -- PYTEST_ARGS",
        help="clause IDs to run (e.g. DMM-HA-4); after --, pytest arguments: test paths and "
        "node IDs there replace the default suites, -k/-m narrow them",
    )
    p.set_defaults(func=run)


def _suites_dir() -> Path:
    spec = importlib.util.find_spec("suites")
    if spec is None or spec.origin is None:
        raise UserError("the 'suites' package is not installed (pip install -e .)")
    return Path(spec.origin).parent


def default_suites(role: str | None) -> list[str]:
    """The suites a run takes without test paths: every suite, or with a SUT role that
    role's suite and the interop suite (where the SUT plays its role among references)."""
    root = _suites_dir()
    if role is None:
        return [str(root)]
    return [str(root / role), str(root / "interop")]


def _wants_parallel(args: argparse.Namespace) -> bool:
    if args.serial or (os.cpu_count() or 1) < 2 or importlib.util.find_spec("xdist") is None:
        return False
    user = args.pytest_args
    given = {"-n", "--numprocesses", "--dist"}
    return not any(a in given or a.startswith(("-n", "--numprocesses=")) for a in user) and not (
        "no:xdist" in user or "-pno:xdist" in user
    )


# pytest options that take a value as the next word (so that word is not a test path)
_VALUE_OPTIONS = frozenset(
    {
        "-k", "-m", "-p", "-n", "-o", "-c", "-r", "-W", "--numprocesses", "--dist",
        "--rootdir", "--ignore", "--ignore-glob", "--deselect", "--maxfail", "--tb",
        "--confcutdir", "--basetemp", "--durations", "--log-level", "--log-cli-level",
        "--import-mode", "--capture", "--maxprocesses", "--timeout",
    }
)  # fmt: skip
_CLAUSE_ID = re.compile(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$")


def split_user_args(user: list[str]) -> tuple[list[str], list[str], list[str]]:
    """The user's words as (clause IDs, test paths or node IDs, other pytest arguments).
    Paths replace the default suites (they are not added to them)."""
    clauses: list[str] = []
    paths: list[str] = []
    rest: list[str] = []
    takes_value = False
    for word in user:
        if takes_value:
            rest.append(word)
            takes_value = False
        elif word.startswith("-"):
            rest.append(word)
            takes_value = word in _VALUE_OPTIONS
        elif _CLAUSE_ID.match(word) and not Path(word).exists():
            clauses.append(word)
        else:
            if not Path(word.split("::")[0]).exists():
                raise UserError(f"{word}: neither a clause ID nor a test path that exists")
            paths.append(word)
    return clauses, paths, rest


def pytest_argv(args: argparse.Namespace) -> list[str]:
    """The pytest command line for these options (exposed for tests and for --help-like use)."""
    if args.sut != "reference":
        # the profile is checked whole before anything starts (dmmconf sut check does the same)
        from harness.sut import profile as profile_mod

        profile_mod.check(args.sut, role=args.role, for_run=True)
    report_dir = Path(args.report_dir).resolve()
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--report-dir {args.report_dir}: {exc.strerror}") from None
    clauses, paths, extra = split_user_args(args.pytest_args)
    argv = paths or default_suites(args.role)
    # pytest registers a plugin module once by name: harmless when a conftest lists them too,
    # needed when the suites are installed without the checkout's conftest.py.
    for plugin in PLUGINS:
        argv += ["-p", plugin]
    argv += ["--report-dir", str(report_dir)]
    for cid in dict.fromkeys([*args.clause, *clauses]):
        argv += ["--select-clause", cid]
    for section in args.section:
        argv += ["--select-section", section]
    for level in args.level:
        argv += ["--select-level", level]
    for role in getattr(args, "clause_role", ()):
        argv += ["--select-role", role]
    if args.list:  # nothing runs, no report is written
        argv += ["--list-selection", "-o", "addopts=", "-p", "no:terminal"]
    else:
        # junit.xml is written by reports.plugin from the verdicts (not pytest's --junitxml)
        argv += ["--dmmconf-progress", "quiet" if args.quiet else "lines"]
        if args.quiet:
            argv.append("-q")
        if importlib.util.find_spec("allure_pytest") is not None:
            argv += [f"--alluredir={report_dir / 'allure-results'}", "--clean-alluredir"]
    if args.role:
        argv += ["--sut-role", args.role]
    if args.sut != "reference":
        argv += ["--sut", str(Path(args.sut).resolve())]
    if args.strict_gate:
        argv.append("--strict-gate")
    if getattr(args, "strict_interpretations", False):
        argv.append("--strict-interpretations")
    if not args.list and _wants_parallel(args):
        argv += ["-n", "auto"]
    return argv + extra


def _apply_baseline(args: argparse.Namespace, status: int) -> int:
    """Add the baseline's classes to the reports; with --gate regressions, the exit status."""
    from reports import baseline, html, model

    before = baseline.load(args.baseline)
    path = Path(args.report_dir) / "report.json"
    doc = baseline.load(path)
    doc["baseline"] = {"file": str(Path(args.baseline).resolve()), **baseline.compare(before, doc)}
    model.write_atomic(path, model.dumps(doc))
    model.write_atomic(path.with_name("report.html"), html.render(doc))
    counts = ", ".join(f"{k} {n}" for k, n in sorted(doc["baseline"]["counts"].items()))
    regressions = doc["baseline"]["regressions"]
    print(f"dmmconf run: against the baseline: {counts}", file=sys.stderr)
    if regressions:
        print(f"dmmconf run: regressions: {' '.join(regressions)}", file=sys.stderr)
    if args.gate == "regressions" and status in (0, 1):
        return 1 if regressions else 0
    return status


def run(args: argparse.Namespace) -> int:
    import pytest  # late: `dmmconf --help` should not pay for it

    if args.gate == "regressions" and not args.baseline:
        raise UserError("--gate regressions needs --baseline FILE (a previous report.json)")
    if args.baseline:
        from reports import baseline

        baseline.load(args.baseline)  # unusable input is refused before anything runs
    argv = pytest_argv(args)
    print("dmmconf run: pytest " + " ".join(argv), file=sys.stderr)
    status = int(pytest.main(argv))
    if args.baseline and not args.list and (Path(args.report_dir) / "report.json").is_file():
        status = _apply_baseline(args, status)
    if status == int(pytest.ExitCode.USAGE_ERROR):
        return 2  # an empty selection, an unknown clause or section: unusable input
    if status == int(pytest.ExitCode.NO_TESTS_COLLECTED):
        # Nothing judged is not a pass: say so, and keep pytest's distinct exit status.
        print(
            f"dmmconf run: no conformance test ran, so no clause was judged (exit {status}); "
            f"the report in {args.report_dir} lists every clause as untested",
            file=sys.stderr,
        )
    return status
