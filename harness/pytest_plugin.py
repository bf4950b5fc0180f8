"""The root pytest plugin: options, the `clause` marker, the verdict ledger and the gate.

Loaded by the top-level conftest.py (and by `dmmconf run -p`; pytest registers a
plugin module once by name, so both together are harmless).

Works under pytest-xdist: workers validate markers at collection and put the
clause IDs into `item.user_properties` (("clause", ID) pairs), which travel with
every report to the controller; the controller alone keeps the ledger, runs the
gate and prints the summary.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import textwrap
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness import catalog as catalog_mod
from harness.catalog import Catalog, Clause
from harness.verdicts import (
    DOCTOR_HINT,
    EXIT_NO_VERDICT,
    INTERPRETATION_PROPERTY,
    LAB_UNAVAILABLE,
    InterpretationFailure,
    Ledger,
    TestResult,
    Verdict,
)

CATALOG_ENV = "DMMCONF_CATALOG"
DEFAULT_REPORT_DIR = "reports/out"


def load_catalog(path: str | os.PathLike[str] | None = None) -> tuple[Catalog, str]:
    """The catalog at `path`, else at $DMMCONF_CATALOG, else the bundled one; and where from."""
    path = path or os.environ.get(CATALOG_ENV) or None
    if path is None:
        return catalog_mod.load(), "suites/requirements.toml"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise catalog_mod.CatalogError(f"cannot read catalog {path}: {exc.strerror}") from None
    return catalog_mod.parse(text), str(path)


@dataclass(frozen=True)
class Selection:
    """Which conformance tests to run: a test is kept when one of its clauses matches every
    filter given (clause IDs, section prefixes "6" / "RFC 6275:9.2", levels)."""

    clauses: tuple[str, ...] = ()
    sections: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()  # the catalog's roles ("HA", "MN", ...); ANY matches each

    def __bool__(self) -> bool:
        return bool(self.clauses or self.sections or self.levels or self.roles)

    def describe(self) -> str:
        parts = [*self.clauses]
        parts += [f"--section {s}" for s in self.sections]
        parts += [f"--level {lv}" for lv in self.levels]
        parts += [f"--clause-role {r}" for r in self.roles]
        return " ".join(parts)

    def matches(self, clause: Clause) -> bool:
        if self.clauses and clause.id not in self.clauses:
            return False
        if self.levels and clause.level not in self.levels:
            return False
        if self.roles and not ({*self.roles, "ANY"} & set(clause.roles)):
            return False
        return not self.sections or any(_in_section(clause, s) for s in self.sections)


def _in_section(clause: Clause, wanted: str) -> bool:
    source, _, section = wanted.rpartition(":")
    if source and source.strip().lower() != clause.source.lower():
        return False
    return clause.section == section or clause.section.startswith(section + ".")


# The catalog roles whose clauses judge a SUT of each role (an HA's control and data planes
# are the HA's; a CN clause is about the lab's correspondent node, never a SUT's).
CLAUSE_ROLES_OF = {"ha": frozenset({"HA", "CP", "DP", "ANY"}), "mn": frozenset({"MN", "ANY"})}
REFERENCE_NAME = "reference"


@dataclass(frozen=True)
class RunOptions:
    sut_role: str | None  # --sut-role as given
    sut: str  # "reference" or an absolute profile path
    report_dir: Path
    strict_gate: bool
    selection: Selection = Selection()
    list_only: bool = False
    strict_interpretations: bool = False
    role: str | None = None  # the SUT's role: --sut-role, else the profile's; None: both
    sut_name: str = REFERENCE_NAME  # what the verdicts are about: the profile's name

    def judges(self, catalog: Catalog) -> Callable[[str], bool] | None:
        """The rule of role-true verdicts: does a check of this clause judge the SUT? None
        when every clause does (the bundled reference plays both roles)."""
        if self.role is None:
            return None
        mine = CLAUSE_ROLES_OF[self.role]

        def judges(clause_id: str) -> bool:
            clause = catalog.clauses.get(clause_id)
            return clause is None or bool(mine & set(clause.roles))

        return judges


@dataclass
class GateDecision:
    strict: bool
    blocking: list[str]  # failed tests that fail the run
    tolerated: list[str]  # failed tests on non-mandatory clauses only
    exit_before: int
    exit_after: int
    message: str | None
    no_lab: list[str] = field(default_factory=list)  # tests not-run: no lab could start


@dataclass
class RunState:
    catalog: Catalog
    catalog_source: str
    options: RunOptions
    is_worker: bool
    suite_roots: tuple[Path, ...]
    ledger: Ledger = field(default_factory=Ledger)
    covered: set[str] = field(default_factory=set)
    collect_errors: int = 0
    interrupted: bool = False
    gate: GateDecision | None = None
    selected: int | None = None  # tests kept by the selection (None: no selection)


STATE = pytest.StashKey[RunState]()


def state(config: pytest.Config) -> RunState:
    return config.stash[STATE]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dmmconf", "DMM multicast conformance")
    group.addoption(
        "--sut-role",
        choices=("ha", "mn"),
        default=None,
        help="role of the system under test (default: both roles, reference SUT)",
    )
    group.addoption(
        "--sut",
        default="reference",
        metavar="reference|PROFILE",
        help="the SUT: the bundled reference or a profile file",
    )
    group.addoption(
        "--report-dir",
        default=DEFAULT_REPORT_DIR,
        metavar="DIR",
        help=f"where report.json and report.html go (default {DEFAULT_REPORT_DIR})",
    )
    group.addoption(
        "--strict-gate",
        action="store_true",
        default=False,
        help="any fail fails the exit status, not only fails on MUST clauses",
    )
    group.addoption(
        "--catalog",
        default=None,
        metavar="PATH",
        help=f"requirement catalog to use (default ${CATALOG_ENV} or the bundled one)",
    )
    group.addoption(
        "--select-clause",
        action="append",
        default=[],
        metavar="ID",
        help="run only the tests of this clause; repeatable",
    )
    group.addoption(
        "--select-section",
        action="append",
        default=[],
        metavar="[SOURCE:]SECTION",
        help='run only the tests of clauses in this section and its subsections ("6", '
        '"RFC 6275:9.2"); repeatable',
    )
    group.addoption(
        "--select-level",
        action="append",
        default=[],
        type=str.upper,
        choices=catalog_mod.LEVELS,
        metavar="LEVEL",
        help=f"run only the tests of clauses of this level ({', '.join(catalog_mod.LEVELS)}); "
        "repeatable",
    )
    group.addoption(
        "--select-role",
        action="append",
        default=[],
        type=str.upper,
        choices=catalog_mod.ROLES,
        metavar="ROLE",
        help="run only the tests of clauses of this catalog role "
        f"({', '.join(r for r in catalog_mod.ROLES if r != 'ANY')}; a clause "
        "of role ANY matches each); repeatable",
    )
    group.addoption(
        "--strict-interpretations",
        action="store_true",
        default=False,
        help="failures by the suite's interpretations (INT-n, verdict 'interpretation') gate "
        "like failed requirements",
    )
    group.addoption(
        "--list-selection",
        action="store_true",
        default=False,
        help="print what would run (clause, section, level, test) and run nothing",
    )


def _suite_roots(config: pytest.Config) -> tuple[Path, ...]:
    """Directories whose tests must carry a clause marker."""
    roots = [config.rootpath / "suites"]
    spec = importlib.util.find_spec("suites")
    if spec is not None and spec.origin:
        roots.append(Path(spec.origin).parent)
    return tuple(dict.fromkeys(r.resolve() for r in roots))


@pytest.hookimpl(tryfirst=True)  # other plugins (reports) read the state in their configure
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "clause(*ids): the catalog requirement(s) this test judges")
    config.addinivalue_line(
        "markers",
        "interpretation(*ids): the test judges by the suite's reading INT-n; its assertion "
        "failures are verdict 'interpretation' (docs/interpretations.md, Verdict classes)",
    )
    config.addinivalue_line(
        "markers",
        "evidence(*ids): catalog clauses this test observes about the reference peer; evidence, "
        "never a verdict",
    )
    here = config.invocation_params.dir
    try:
        raw = config.getoption("catalog")
        catalog, source = load_catalog(here / raw if raw else None)
    except catalog_mod.CatalogError as exc:
        raise pytest.UsageError(str(exc)) from None
    sut = config.getoption("sut")
    role, name = config.getoption("sut_role"), REFERENCE_NAME
    if sut != "reference":
        profile = here / sut
        if not profile.exists():
            raise pytest.UsageError(f"--sut {sut}: not 'reference' and no such profile file")
        from harness.sut import profile as profile_mod

        try:  # the whole profile, before any lab starts
            profile_mod.check(profile, role=config.getoption("sut_role"), for_run=True)
            loaded = profile_mod.load(profile)
        except profile_mod.ProfileError as exc:
            raise pytest.UsageError(str(exc)) from None
        sut = str(profile.resolve())
        role, name = role or loaded.role, loaded.name
    selection = _selection(config, catalog, source)
    options = RunOptions(
        sut_role=config.getoption("sut_role"),
        sut=sut,
        report_dir=(here / config.getoption("report_dir")).resolve(),
        strict_gate=bool(config.getoption("strict_gate")),
        selection=selection,
        list_only=bool(config.getoption("list_selection")),
        strict_interpretations=bool(config.getoption("strict_interpretations")),
        role=role,
        sut_name=name,
    )
    if options.list_only:
        config.option.collectonly = True
    config.stash[STATE] = RunState(
        catalog=catalog,
        catalog_source=source,
        options=options,
        is_worker=hasattr(config, "workerinput"),
        suite_roots=_suite_roots(config),
        ledger=Ledger(options.judges(catalog)),
    )


def _selection(config: pytest.Config, catalog: Catalog, source: str) -> Selection:
    sel = Selection(
        clauses=tuple(dict.fromkeys(config.getoption("select_clause"))),
        sections=tuple(dict.fromkeys(config.getoption("select_section"))),
        levels=tuple(dict.fromkeys(config.getoption("select_level"))),
        roles=tuple(dict.fromkeys(config.getoption("select_role"))),
    )
    unknown = [c for c in sel.clauses if c not in catalog]
    if unknown:
        raise pytest.UsageError(
            f"clause {', '.join(unknown)}: not in the catalog {source} (dmmconf clauses lists it)"
        )
    for wanted in sel.sections:
        if not any(_in_section(c, wanted) for c in catalog):
            raise pytest.UsageError(
                f"section {wanted}: no clause of the catalog {source} is in it "
                '(a section is "6", "7.1" or "RFC 6275:9.2")'
            )
    return sel


def clause_ids(item: pytest.Item) -> list[str]:
    """All clause IDs of an item, from markers on it, its class and module."""
    ids = (str(a) for mark in item.iter_markers("clause") for a in mark.args)
    return list(dict.fromkeys(ids))  # unique, in order


def evidence_ids(item: pytest.Item) -> list[str]:
    """The clauses an item observes about the reference peer (its `evidence` markers)."""
    return list(dict.fromkeys(str(a) for m in item.iter_markers("evidence") for a in m.args))


def interpretation_ids(item: pytest.Item) -> list[str]:
    """The INT-n readings of an item's `interpretation` markers."""
    ids = (str(a) for m in item.iter_markers("interpretation") for a in m.args)
    return list(dict.fromkeys(ids))


def _leaves(group: BaseExceptionGroup[Any]) -> list[BaseException]:
    """The exceptions of a (nested) exception group."""
    out: list[BaseException] = []
    for e in group.exceptions:
        out.extend(_leaves(e) if isinstance(e, BaseExceptionGroup) else [e])
    return out


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failure by one of the suite's interpretations (the test's `interpretation` marker on
    an assertion, or an InterpretationFailure) carries its INT-n to the controller."""
    report = yield
    if report.failed and call.when == "call" and call.excinfo is not None:
        exc = call.excinfo.value
        ids: list[str] = []
        if isinstance(exc, InterpretationFailure):
            ids = list(exc.interpretations)
        elif isinstance(exc, BaseExceptionGroup):  # hypothesis's report_multiple_bugs
            leaves = _leaves(exc)
            readings = [e for e in leaves if isinstance(e, InterpretationFailure)]
            if leaves and len(readings) == len(leaves):  # any other failure is a fail
                ids = list(dict.fromkeys(i for e in readings for i in e.interpretations))
        elif isinstance(exc, AssertionError):
            ids = interpretation_ids(item)
        if ids:
            report.user_properties.append((INTERPRETATION_PROPERTY, ",".join(ids)))
    return report


def _problems(item: pytest.Function, st: RunState) -> list[str]:
    marks = list(item.iter_markers("clause"))
    where = item.nodeid
    if not marks:
        path = item.path.resolve()
        if any(path.is_relative_to(root) for root in st.suite_roots):
            return [
                f"{where}: no @pytest.mark.clause(...): every conformance test names the "
                "requirement(s) it judges"
            ]
        return []
    out = []
    for mark in marks:
        if not mark.args or not all(isinstance(a, str) for a in mark.args):
            out.append(f"{where}: @pytest.mark.clause needs one or more clause IDs (strings)")
        out.extend(
            f"{where}: unknown clause ID {a!r} (not in the catalog {st.catalog_source})"
            for a in mark.args
            if isinstance(a, str) and a not in st.catalog
        )
    out.extend(
        f"{where}: unknown clause ID {a!r} in @pytest.mark.evidence"
        for a in evidence_ids(item)
        if a not in st.catalog
    )
    return out


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, Any]:
    """Turn a module/class with a bad or missing clause marker into a collection error."""
    report = yield
    st = collector.config.stash.get(STATE, None)
    if st is None or report.outcome != "passed":
        return report
    problems: list[str] = []
    for node in report.result or ():
        if isinstance(node, pytest.Function):
            found = _problems(node, st)
            problems.extend(found)
            if not found:
                for cid in clause_ids(node):
                    if ("clause", cid) not in node.user_properties:
                        node.user_properties.append(("clause", cid))
                for cid in evidence_ids(node):
                    if ("evidence", cid) not in node.user_properties:
                        node.user_properties.append(("evidence", cid))
    if problems:
        report.outcome = "failed"
        report.longrepr = "\n".join(problems)
        report.result = []
    return report


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep only the selected tests (--select-clause, --select-section, --select-level)."""
    st = state(config)
    sel = st.options.selection
    if not sel:
        return
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        clauses = [st.catalog[c] for c in clause_ids(item) if c in st.catalog]
        (kept if any(sel.matches(c) for c in clauses) else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = kept
    st.selected = len(kept)


def selection_rows(st: RunState, items: list[pytest.Item]) -> list[tuple[str, str, str, str]]:
    """(clause, section, level, test) for each selected test and each of its clauses."""
    rows = []
    for item in items:
        ids = clause_ids(item) or ["-"]
        for cid in ids:
            c: Clause | None = None
            if cid in st.catalog:
                c = st.catalog[cid]
            if c is not None and st.options.selection and not st.options.selection.matches(c):
                continue
            where = f"{c.source} §{c.section}" if c else "-"
            rows.append((cid, where, c.level if c else "-", item.nodeid))
    return rows


def _print_list(session: pytest.Session, st: RunState) -> None:
    rows = selection_rows(st, session.items)
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(_LIST_HEAD)]
    lines = [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
        for row in [_LIST_HEAD, *rows]
    ]
    clauses = {r[0] for r in rows} - {"-"}
    lines.append(f"{len(session.items)} test(s), {len(clauses)} clause(s)")
    capman = session.config.pluginmanager.get_plugin("capturemanager")
    with capman.global_and_fixture_disabled() if capman else contextlib.nullcontext():
        print("\n".join(lines), flush=True)


_LIST_HEAD = ("CLAUSE", "SECTION", "LEVEL", "TEST")


def empty_selection_message(st: RunState) -> str:
    return (
        f"dmmconf: the selection {st.options.selection.describe()} matches no test "
        "(dmmconf run --list shows what a selection runs; dmmconf clauses --uncovered the "
        "clauses no test covers)"
    )


@pytest.hookimpl(tryfirst=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    st = state(session.config)
    for item in session.items:
        st.covered.update(clause_ids(item))
    if st.options.list_only and not st.is_worker:
        if st.options.selection and not session.items:
            raise pytest.UsageError(empty_selection_message(st).removeprefix("dmmconf: "))
        _print_list(session, st)


class _Controller:
    """Hooks that only the controller (or a single process) runs."""

    def __init__(self, st: RunState) -> None:
        self.st = st

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.st.collect_errors += 1

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        result = self.st.ledger.record(report)
        self.st.covered.update(result.clauses)

    def pytest_keyboard_interrupt(self) -> None:
        self.st.interrupted = True

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        st = self.st
        if st.options.selection and session.exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
            session.exitstatus = pytest.ExitCode.USAGE_ERROR  # an empty selection is an error
            st.selected = 0
        why = "run interrupted before the test finished" if st.interrupted else "did not finish"
        st.ledger.finish_all(why)
        st.gate = decide_gate(st, int(session.exitstatus))
        session.exitstatus = st.gate.exit_after

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        st = self.st
        tr = terminalreporter
        uncovered = [c.id for c in st.catalog if c.mandatory and c.id not in st.covered]
        tr.write_line(f"uncovered MUSTs: {len(uncovered)}")
        if uncovered:
            width = shutil.get_terminal_size().columns - 4
            for line in textwrap.wrap(" ".join(uncovered), width, break_on_hyphens=False):
                tr.write_line(f"  {line}")
        if st.gate is not None and st.gate.message:
            tr.write_line(st.gate.message, bold=True)
        if st.selected == 0:
            tr.write_line(empty_selection_message(st), red=True, bold=True)
        if st.gate is not None and st.gate.no_lab:
            tr.write_line(no_lab_summary(st), red=True, bold=True)


def pytest_sessionstart(session: pytest.Session) -> None:
    st = state(session.config)
    if not st.is_worker:
        session.config.pluginmanager.register(_Controller(st), "dmmconf-controller")


def _blocks(result: TestResult, st: RunState) -> bool:
    """Does this failed test (fail, or interpretation) fail the run?"""
    if result.verdict == Verdict.INTERPRETATION and not st.options.strict_interpretations:
        return False  # the suite's reading, not a requirement
    if not result.clauses:
        if result.evidence:
            return False  # about the reference peer only: no verdict of the SUT
        return not result.xfail  # harness tests: pytest's own meaning of xfail
    if result.error or st.options.strict_gate:
        return True
    return any(st.catalog[c].mandatory for c in result.clauses if c in st.catalog)


def _lab_unavailable(result: TestResult) -> bool:
    d = result.decisive
    return d.verdict == Verdict.NOT_RUN and d.reason.startswith(LAB_UNAVAILABLE)


def no_lab_summary(st: RunState) -> str:
    """The one message of a run whose lab could not start: why, the fix, the exit status."""
    results = [r for r in st.ledger if _lab_unavailable(r)]
    reasons = sorted({r.decisive.reason for r in results})
    hints = sorted({r.decisive.hint for r in results if r.decisive.hint})
    lines = [
        f"dmmconf: no verdict possible for {len(results)} test(s): "
        + "; ".join(r.removeprefix(LAB_UNAVAILABLE + ": ") for r in reasons),
        f"  the lab could not start ({LAB_UNAVAILABLE}); every test that needs it is "
        f"not-run with that reason; exit status {EXIT_NO_VERDICT}",
    ]
    lines += [f"  fix: {h}" for h in hints] or [f"  fix: {DOCTOR_HINT}"]
    return "\n".join(lines)


def decide_gate(st: RunState, exitstatus: int) -> GateDecision:
    """The exit status: only fails on MUST clauses (or any fail with --strict-gate) count;
    with no blocking fail, tests that could not run for want of a lab make it
    EXIT_NO_VERDICT (a run that judged nothing of them is not a pass)."""
    failed = [r for r in st.ledger if r.verdict in (Verdict.FAIL, Verdict.INTERPRETATION)]
    blocking = [r.nodeid for r in failed if _blocks(r, st)]
    tolerated = [r.nodeid for r in failed if not _blocks(r, st)]
    no_lab = [r.nodeid for r in st.ledger if _lab_unavailable(r)]
    after, message = exitstatus, None
    if exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        if blocking:
            after = pytest.ExitCode.TESTS_FAILED
            if exitstatus == pytest.ExitCode.OK:
                message = (
                    f"dmmconf gate: {len(blocking)} known failure(s) (xfail) on "
                    "MUST clauses: exit status 1"
                )
        elif tolerated and exitstatus == pytest.ExitCode.TESTS_FAILED and not st.collect_errors:
            after = pytest.ExitCode.OK
            message = (
                f"dmmconf gate: {len(tolerated)} failure(s), all on SHOULD/MAY/BEHAVIOUR "
                "clauses, the suite's interpretations or evidence about the reference peer: "
                "exit status 0 (--strict-gate, --strict-interpretations make them fail the run)"
            )
    if no_lab and not blocking and after == pytest.ExitCode.OK:
        after = EXIT_NO_VERDICT
    return GateDecision(
        st.options.strict_gate, blocking, tolerated, exitstatus, int(after), message, no_lab
    )


@pytest.fixture(scope="session")
def run_options(pytestconfig: pytest.Config) -> RunOptions:
    """--sut-role, --sut, --report-dir and --strict-gate of this run."""
    return state(pytestconfig).options


@pytest.fixture
def attach(request: pytest.FixtureRequest) -> Callable[[str | os.PathLike[str]], None]:
    """attach(path): keep a file (a pcap, a log) as evidence in this test's report entry."""

    def _attach(path: str | os.PathLike[str]) -> None:
        resolved = str(Path(path).resolve())
        request.node.user_properties.append(("attachment", resolved))
        try:  # allure-pytest, when active, wants the file too; a no-op otherwise
            import allure

            name, ext = Path(resolved).name, Path(resolved).suffix.lstrip(".") or None
            allure.attach.file(resolved, name=name, extension=ext)  # a pcap stays a .pcap
        except Exception:  # noqa: BLE001 - evidence is best effort, never a test failure
            pass

    return _attach
