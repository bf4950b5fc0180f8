"""pytest plugin: writes report.json, report.html and journal.jsonl to --report-dir.

Nothing is lost when a run is interrupted: each finished test is appended to
journal.jsonl at once, report.json (and report.html) are rewritten atomically at
most once a second while the run goes on, and always at session end, marked
`interrupted` when Ctrl-C, SIGTERM or pytest.exit stopped the run. Only the xdist
controller (or the single process) writes. junit.xml is written from the same document
(reports/junit.py: the verdict, not pytest's outcome); allure-results come from
allure-pytest's --alluredir (`dmmconf run` passes it), with the labels set here.
"""

from __future__ import annotations

import json
import platform
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

import harness
from harness.pytest_plugin import RunState, clause_ids, no_lab_summary, state
from harness.verdicts import TestResult
from reports import html, junit, model, progress, sections

# The verdict ledger and the options live in the harness plugin.
pytest_plugins = ["harness.pytest_plugin"]

JOURNAL = "journal.jsonl"
REWRITE_EVERY = 1.0  # seconds between incremental rewrites of report.json


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("dmmconf")
    except Exception:  # noqa: BLE001 - not installed: running from a bare checkout
        return getattr(harness, "__version__", "unknown")


def pytest_addoption(parser: pytest.Parser) -> None:
    progress.addoption(parser)


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput") or config.getoption("collectonly"):
        return
    config.pluginmanager.register(ReportWriter(config), "dmmconf-report-writer")
    progress.register(config, state(config))


# allure severity from the clause level (the strongest level of a test's clauses wins)
SEVERITY = {
    "MUST": "critical",
    "MUST NOT": "critical",
    "SHOULD": "normal",
    "SHOULD NOT": "normal",
    "MAY": "minor",
    "BEHAVIOUR": "trivial",
}
_SEVERITY_ORDER = ("blocker", "critical", "normal", "minor", "trivial")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """allure labels (only when allure-pytest is writing): epic = document (the draft or
    "RFC 6275"), feature = section with its title, story = clause ID, severity from the
    level; the clause IDs as tags and links to their sections."""
    if not config.pluginmanager.hasplugin("allure_listener"):
        return
    catalog = state(config).catalog
    for item in items:
        ids = [cid for cid in clause_ids(item) if cid in catalog]
        if not ids:
            continue
        item.add_marker(pytest.mark.allure_label(*ids, label_type="tag"))
        clauses = [catalog[cid] for cid in ids]
        epics = dict.fromkeys(sections.document(c.source) for c in clauses)
        features = dict.fromkeys(feature(c.source, c.section) for c in clauses)
        item.add_marker(pytest.mark.allure_label(*epics, label_type="epic"))
        item.add_marker(pytest.mark.allure_label(*features, label_type="feature"))
        item.add_marker(pytest.mark.allure_label(*ids, label_type="story"))
        severity = min((SEVERITY[c.level] for c in clauses), key=_SEVERITY_ORDER.index)
        item.add_marker(pytest.mark.allure_label(severity, label_type="severity"))
        for c in clauses:
            url = model.clause_url(c)
            if url:
                item.add_marker(pytest.mark.allure_link(url, link_type="link", name=c.id))


def feature(source: str, section: str) -> str:
    """allure's feature of a clause: "draft §6 Home Agent Operation", "RFC 6275 §9.2 ..."."""
    doc = "draft" if source.strip().lower() == "draft" else source
    return f"{doc} §{sections.label(source, section)}"


class ReportWriter:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.st: RunState = state(config)
        self.dir = self.st.options.report_dir
        self.run: dict[str, Any] = {}
        self.journaled: set[str] = set()
        self.attachments: dict[str, str] = {}
        self.last_write = 0.0
        self.final_written = False
        self.t0 = time.monotonic()
        self._old_sigterm: Any = None
        self.doc: dict[str, Any] | None = None

    # -- life cycle -------------------------------------------------------------------------
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        opts = self.st.options
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / JOURNAL).write_text("", encoding="utf-8")
        self.run = {
            "tool": "dmmconf",
            "version": _version(),
            "started": _now(),
            "finished": None,
            "duration": None,
            "argv": list(sys.argv),
            "pytest_args": [str(a) for a in self.config.invocation_params.args],
            "cwd": str(self.config.invocation_params.dir),
            "sut": {"role": opts.role, "target": opts.sut, "name": opts.sut_name},
            "catalog": self.st.catalog_source,
            "python": platform.python_version(),
            "pytest": pytest.__version__,
            "platform": platform.platform(),
            "xdist_workers": self.config.getoption("numprocesses", None),
            "complete": False,
            "interrupted": False,
            "stop_reason": None,
            "exit_status": None,
            "gate": None,
        }
        self._write()
        self._trap_sigterm()

    def _trap_sigterm(self) -> None:
        """SIGTERM (CI timeouts, `kill`) ends the run like Ctrl-C: the final report is written."""
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            raise KeyboardInterrupt("SIGTERM")

        self._old_sigterm = signal.signal(signal.SIGTERM, on_sigterm)

    @pytest.hookimpl(trylast=True)  # after the harness plugin has recorded the report
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        result = self.st.ledger.results.get(report.nodeid)
        if result is not None:
            self._journal([result])
        if time.monotonic() - self.last_write >= REWRITE_EVERY:
            self._write()

    def _journal(self, candidates: Iterable[TestResult]) -> None:
        """Append the newly finished tests among `candidates` to journal.jsonl."""
        new = [r for r in candidates if r.finished and r.nodeid not in self.journaled]
        if not new:
            return
        with open(self.dir / JOURNAL, "a", encoding="utf-8") as f:
            for result in new:
                self.journaled.add(result.nodeid)
                entry = self._entry(result.to_dict())
                f.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")

    @pytest.hookimpl(trylast=True)  # after the harness plugin's gate set the exit status
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self._finalize(session)

    def pytest_unconfigure(self) -> None:
        if not self.final_written:  # sessionfinish never ran (crash in a plugin)
            self.run["interrupted"] = True
            self._write()
        if self._old_sigterm is not None:
            signal.signal(signal.SIGTERM, self._old_sigterm)

    def _finalize(self, session: pytest.Session) -> None:
        st = self.st
        exitstatus = int(session.exitstatus)
        stop = session.shouldstop or session.shouldfail  # -x / --maxfail: a str, else False
        self.run.update(
            finished=_now(),
            duration=round(time.monotonic() - self.t0, 3),
            complete=True,
            interrupted=st.interrupted
            or (exitstatus == pytest.ExitCode.INTERRUPTED and not st.collect_errors),
            stop_reason=str(stop) if stop else None,
            exit_status=exitstatus,
            collection_errors=st.collect_errors,
            gate=None
            if st.gate is None
            else {
                "strict": st.gate.strict,
                "strict_interpretations": st.options.strict_interpretations,
                "blocking": st.gate.blocking,
                "tolerated": st.gate.tolerated,
                "pytest_exit_status": st.gate.exit_before,
                "message": st.gate.message,
                "no_verdict": no_lab_summary(st) if st.gate.no_lab else None,
            },
        )
        self._journal(self.st.ledger)  # tests closed at session end (interrupted)
        self._write()
        self.final_written = True

    # -- output -----------------------------------------------------------------------------
    def _entry(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Copy attachments into the report dir, so the report travels with its evidence."""
        kept = []
        for src in entry["attachments"]:
            if src not in self.attachments:
                dest = self.dir / "attachments" / f"{len(self.attachments):04d}-{Path(src).name}"
                try:
                    dest.parent.mkdir(exist_ok=True)
                    shutil.copyfile(src, dest)
                    self.attachments[src] = str(dest.relative_to(self.dir))
                except OSError:
                    self.attachments[src] = src  # gone or unreadable: keep where it was
            kept.append(self.attachments[src])
        entry["attachments"] = kept
        return entry

    def _write(self) -> None:
        tests = [self._entry(r.to_dict()) for r in self.st.ledger if r.finished]
        doc = model.build(self.run, tests, self.st.catalog)
        model.write_atomic(self.dir / "report.json", model.dumps(doc))
        model.write_atomic(self.dir / "report.html", html.render(doc))
        model.write_atomic(self.dir / "junit.xml", junit.render(doc))
        self.last_write = time.monotonic()
        self.doc = doc

    @pytest.hookimpl(tryfirst=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        doc = self.doc
        if doc is None:
            return
        tr = terminalreporter
        tr.write_sep("=", "dmmconf verdicts")
        for verdict, n in doc["summary"]["tests"].items():
            tr.write_line(f"{verdict:<15} {n}")
        clauses = ", ".join(f"{k} {n}" for k, n in doc["summary"]["clauses"].items() if n)
        tr.write_line(f"clauses: {clauses or 'none in the catalog'}")
        tr.write_line(f"report: {self.dir / 'report.html'} (and report.json)")
