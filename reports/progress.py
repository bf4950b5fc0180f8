"""Progress of a conformance run: one line per test as it ends, instead of pytest's dots.

    [ 12/74 ~1m05s left] fail            0.53s  DMM-HA-1,DMM-HA-4  suites/ha/test_bu.py::test_x

`--dmmconf-progress lines` (what `dmmconf run` passes) prints them, with the verdict, the
clause IDs, the duration, a running count and an estimate of the time left (the tests still
to run at the pace of those done so far, which counts parallel workers in); `quiet` (`dmmconf
run -q`, for CI logs) prints no line per test, only the summary; `pytest` (the default for a
bare pytest) leaves pytest's own output alone. With -v pytest's lines are kept. Under
pytest-xdist the controller prints: the verdicts come from the ledger it keeps.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from harness.pytest_plugin import RunState
from harness.verdicts import TestResult, Verdict

MODES = ("pytest", "lines", "quiet")
_COLOUR = {
    Verdict.PASS: {"green": True},
    Verdict.FAIL: {"red": True, "bold": True},
    Verdict.INCONCLUSIVE: {"yellow": True},
    Verdict.NOT_RUN: {"yellow": True},
    Verdict.NOT_APPLICABLE: {"cyan": True},
}


def addoption(parser: pytest.Parser) -> None:
    parser.getgroup("dmmconf").addoption(
        "--dmmconf-progress",
        choices=MODES,
        default="pytest",
        help="lines: one line per test as it ends (verdict, clauses, duration, count, time "
        "left); quiet: only the summary; pytest: pytest's own output (default)",
    )


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def line(result: TestResult, done: int, total: int | None, left: float | None) -> str:
    """One test's progress line."""
    width = len(str(total or done))
    count = f"{done:>{width}}/{total}" if total else f"{done}"
    eta = f" ~{duration(left)} left" if left is not None else ""
    clauses = ",".join(result.clauses) or "-"
    reason = result.decisive.reason
    why = f"  ({reason.splitlines()[0][:100]})" if reason and result.verdict != Verdict.PASS else ""
    return (
        f"[{count}{eta}] {result.verdict.value:<15} {result.duration:6.2f}s  {clauses}  "
        f"{result.nodeid}{why}"
    )


class Progress:
    """Controller-side: prints a line when a test's last report (teardown) arrives."""

    def __init__(self, config: pytest.Config, st: RunState, mode: str) -> None:
        self.config = config
        self.st = st
        self.mode = mode
        self.total: int | None = None
        self.done = 0
        self.t0: float | None = None
        self.printed: set[str] = set()

    def _quiet_pytest(self) -> bool:
        return self.mode != "pytest" and self.config.get_verbosity() <= 0

    @pytest.hookimpl(wrapper=True)
    def pytest_report_teststatus(self, report: Any) -> Any:
        result = yield
        if self._quiet_pytest() and isinstance(result, tuple | list) and len(result) == 3:
            return (result[0], "", "")  # counted in the summary, no letter: our line says it
        return result

    def pytest_sessionstart(self) -> None:
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        if tr is not None and self._quiet_pytest():
            tr.showfspath = False  # no "suites/x.py " before each test: the line names it

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if self.total is None:
            self.total = len(session.items)

    def pytest_runtest_logstart(self) -> None:
        if self.t0 is None:
            self.t0 = time.monotonic()

    @pytest.hookimpl(trylast=True)  # after the harness plugin recorded the report
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        result = self.st.ledger.results.get(report.nodeid)
        if result is None or not result.finished or report.nodeid in self.printed:
            return
        self.printed.add(report.nodeid)
        self.done += 1
        if self.mode != "lines" or self.config.get_verbosity() != 0:
            return
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        if tr is None:
            return
        total = self.total if self.total and self.total >= self.done else None
        left = None
        if total and self.t0 is not None and self.done < total:
            elapsed = time.monotonic() - self.t0
            left = elapsed / self.done * (total - self.done)
        tr.ensure_newline()
        text = line(result, self.done, total, left)
        tr.write_line(text, **_COLOUR.get(result.verdict, {}))


class XdistTotal:
    """Under xdist the controller collects nothing: the total is what a worker collected."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self.progress.total = max(self.progress.total or 0, len(ids))


def register(config: pytest.Config, st: RunState) -> None:
    mode = config.getoption("dmmconf_progress", "pytest")
    if mode == "pytest":
        return
    progress = Progress(config, st, mode)
    config.pluginmanager.register(progress, "dmmconf-progress")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistTotal(progress), "dmmconf-progress-xdist")
