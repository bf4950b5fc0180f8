"""The five verdicts (docs/architecture.md, principle 6) and how pytest results map onto them.

A test ends with a verdict other than pass or fail by calling `not_applicable`,
`inconclusive` or `not_run`. They are pytest skips whose message starts with a
tag, "[not-applicable] ...": a skip is what every pytest tool (junit, allure,
xdist, the terminal) already knows is *not* a pass, and a plain string survives
xdist's report serialisation unchanged.

Mapping of pytest outcomes (`judge`):
  passed in call                     -> pass
  failed in call                     -> fail
  failed in setup/teardown (error)   -> fail, flagged `error` (never tolerated by the gate)
  skipped with a tag                 -> the tagged verdict
  skipped without a tag (skip/skipif/importorskip) -> not-run
  xfailed                            -> fail, flagged `xfail` (a known failure is still a failure)
  xfail(run=False)                   -> not-run
  xpassed (non-strict)               -> pass; strict xpass is a pytest failure -> fail
  failed in call, by an interpretation (the test's `interpretation` marker or
  `InterpretationFailure`)           -> interpretation (docs/interpretations.md, "Verdict
                                        classes"); it gates only with --strict-interpretations

Whose behaviour a verdict is about (role-true verdicts): the ledger is given the run's rule
(`judges`, from the catalog's role of each clause and the SUT's role). A test's clause whose
role the SUT does not play is *evidence* about the reference peer (`TestResult.evidence`),
never a verdict of that clause.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NoReturn

import pytest


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NOT_APPLICABLE = "not-applicable"
    INCONCLUSIVE = "inconclusive"
    NOT_RUN = "not-run"
    # A failure by the suite's own reading (an INT-n of docs/interpretations.md) where the
    # draft or the RFC does not decide: not a failed requirement.
    INTERPRETATION = "interpretation"


# A clause with no test at all gets this instead of a verdict.
UNTESTED = "untested"

# Every test that needed the network lab when it could not start is not-run with a reason
# that begins so; a run with such tests ends with EXIT_NO_VERDICT (README, "Exit status").
LAB_UNAVAILABLE = "the network lab is unavailable"
EXIT_NO_VERDICT = 6
DOCTOR_HINT = "`dmmconf doctor` checks everything the lab needs"

# Aggregation order, worst first: one failing test makes its clause fail.
SEVERITY: tuple[Verdict, ...] = (
    Verdict.FAIL,
    Verdict.INTERPRETATION,
    Verdict.INCONCLUSIVE,
    Verdict.NOT_RUN,
    Verdict.NOT_APPLICABLE,
    Verdict.PASS,
)

_HINT_SEP = " | hint: "
_TAGGED = re.compile(
    r"^\[(?P<verdict>not-applicable|inconclusive|not-run)\] (?P<reason>.*)$", re.DOTALL
)


def worst(verdicts: Iterable[Verdict]) -> Verdict | None:
    """The most severe verdict, or None for an empty input."""
    present = set(verdicts)
    return next((v for v in SEVERITY if v in present), None)


def encode(verdict: Verdict, reason: str, hint: str | None = None) -> str:
    """The skip message that carries a non-pass verdict through pytest."""
    text = f"[{verdict.value}] {reason}"
    return f"{text}{_HINT_SEP}{hint}" if hint else text


def decode(message: str) -> tuple[Verdict, str, str | None]:
    """Verdict, reason and hint of a skip message; an untagged skip is not-run."""
    message = message.removeprefix("Skipped: ")
    m = _TAGGED.match(message)
    if m is None:
        return Verdict.NOT_RUN, f"skipped: {message}", None
    reason, _, hint = m["reason"].partition(_HINT_SEP)
    return Verdict(m["verdict"]), reason, hint or None


def not_applicable(reason: str) -> NoReturn:
    """End the test: the SUT profile does not claim the feature this test judges."""
    __tracebackhide__ = True  # report the test's line, not this helper's
    pytest.skip(encode(Verdict.NOT_APPLICABLE, reason))


def inconclusive(reason: str) -> NoReturn:
    """End the test: a precondition did not happen, so nothing can be judged."""
    __tracebackhide__ = True  # report the test's line, not this helper's
    pytest.skip(encode(Verdict.INCONCLUSIVE, reason))


def not_run(reason: str, hint: str | None = None) -> NoReturn:
    """End the test: the environment lacks something (root, a binary); `hint` says how to fix it."""
    __tracebackhide__ = True  # report the test's line, not this helper's
    pytest.skip(encode(Verdict.NOT_RUN, reason, hint))


class InterpretationFailure(AssertionError):
    """A check failed on the suite's reading `interpretations` (INT-n), not on a requirement:
    its verdict is *interpretation*. Raise it with `interpretation_failed` or get it from
    `by_interpretation`; a test marked `@pytest.mark.interpretation("INT-4")` has every
    assertion failure counted so."""

    def __init__(self, interpretations: Iterable[str], message: str) -> None:
        self.interpretations = tuple(interpretations)
        super().__init__(f"[{', '.join(self.interpretations)}] {message}")


def interpretation_failed(interpretations: str | Iterable[str], reason: str) -> NoReturn:
    """End the test: it fails only by the suite's reading `interpretations` (e.g. "INT-4")."""
    __tracebackhide__ = True
    ids = (interpretations,) if isinstance(interpretations, str) else tuple(interpretations)
    raise InterpretationFailure(ids, reason)


class by_interpretation:  # noqa: N801 - used as a `with` statement, like contextlib's
    """`with by_interpretation("INT-4"): assert ...`: an assertion failing inside is an
    interpretation failure (the other checks of the test stay requirements)."""

    def __init__(self, *interpretations: str) -> None:
        self.interpretations = interpretations

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        if isinstance(exc, AssertionError) and not isinstance(exc, InterpretationFailure):
            raise InterpretationFailure(self.interpretations, str(exc)) from exc


INTERPRETATION_PROPERTY = "interpretation"  # user property of a report failed by an INT-n


@dataclass(frozen=True)
class Judgement:
    """The verdict of one phase (setup, call, teardown) of a test."""

    verdict: Verdict
    reason: str = ""
    hint: str | None = None
    error: bool = False  # a failure outside the test body
    xfail: bool = False
    interpretations: tuple[str, ...] = ()  # the INT-n readings of an interpretation verdict


def _crash_message(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None and getattr(crash, "message", None):
        return str(crash.message)
    text = report.longreprtext.strip()
    return text.splitlines()[-1] if text else "failed"


def _skip_message(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    # A skip's longrepr is (path, lineno, message); xdist may turn the tuple into a list.
    if isinstance(longrepr, tuple | list) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr or "")


def judge(report: pytest.TestReport) -> Judgement | None:
    """The verdict one phase report carries, or None (a setup/teardown that just passed)."""
    wasxfail: str | None = getattr(report, "wasxfail", None)
    if report.failed:
        reason = _crash_message(report)
        interps = tuple(
            i for v in _props(report, INTERPRETATION_PROPERTY) for i in v.split(",") if i
        )
        if report.when == "call" and interps and wasxfail is None:
            return Judgement(Verdict.INTERPRETATION, reason, interpretations=interps)
        if report.when == "call":
            return Judgement(Verdict.FAIL, reason)
        return Judgement(Verdict.FAIL, f"error in {report.when}: {reason}", error=True)
    if report.skipped:
        if wasxfail is not None:
            if wasxfail.startswith("[NOTRUN]"):
                return Judgement(Verdict.NOT_RUN, f"xfail(run=False):{wasxfail[8:]}")
            return Judgement(
                Verdict.FAIL, f"known failure (xfail): {wasxfail or 'no reason given'}", xfail=True
            )
        verdict, reason, hint = decode(_skip_message(report))
        return Judgement(verdict, reason, hint)
    if report.when == "call":
        note = f"passed although marked xfail: {wasxfail}" if wasxfail is not None else ""
        return Judgement(Verdict.PASS, note)
    return None


def _props(report: pytest.TestReport, key: str) -> list[str]:
    return [str(v) for k, v in report.user_properties if k == key]


@dataclass
class TestResult:
    """One test, built from its phase reports; `verdict` is decided when it finishes."""

    __test__ = False  # not a pytest test class

    nodeid: str
    clauses: list[str] = field(default_factory=list)  # judged about the SUT
    judgements: list[Judgement] = field(default_factory=list)
    duration: float = 0.0
    longrepr: list[str] = field(default_factory=list)
    attachments: list[str] = field(default_factory=list)
    start: float | None = None
    stop: float | None = None
    finished: bool = False
    evidence: list[str] = field(default_factory=list)  # about the reference peer, no verdict
    judges: Callable[[str], bool] | None = None  # the run's role rule (None: every clause)

    def add(self, report: pytest.TestReport) -> None:
        for clause in _props(report, "clause"):
            if self.judges is not None and not self.judges(clause):
                if clause not in self.evidence:
                    self.evidence.append(clause)
            elif clause not in self.clauses:
                self.clauses.append(clause)
        for clause in _props(report, "evidence"):
            if clause not in self.evidence and clause not in self.clauses:
                self.evidence.append(clause)
        for path in _props(report, "attachment"):
            if path not in self.attachments:
                self.attachments.append(path)
        self.duration += report.duration
        start, stop = getattr(report, "start", None), getattr(report, "stop", None)
        self.start = start if self.start is None else self.start
        self.stop = stop if stop is not None else self.stop
        if report.failed and report.longreprtext:
            self.longrepr.append(f"[{report.when}] {report.longreprtext}")
        judgement = judge(report)
        if judgement is not None:
            self.judgements.append(judgement)
        # Teardown is the last phase; xdist reports a crashed worker's test with when="???".
        if report.when not in ("setup", "call"):
            self.finished = True

    def finish(self, why: str) -> None:
        """Close a test that never reached teardown (interrupted run)."""
        if not self.judgements:
            self.judgements.append(Judgement(Verdict.NOT_RUN, why))
        self.finished = True

    @property
    def decisive(self) -> Judgement:
        if not self.judgements:
            return Judgement(Verdict.NOT_RUN, "no result yet")
        top = worst(j.verdict for j in self.judgements)
        return next(j for j in self.judgements if j.verdict == top)

    @property
    def verdict(self) -> Verdict:
        return self.decisive.verdict

    @property
    def error(self) -> bool:
        return any(j.error for j in self.judgements)

    @property
    def xfail(self) -> bool:
        return self.verdict == Verdict.FAIL and not any(
            j.verdict == Verdict.FAIL and not j.xfail for j in self.judgements
        )

    def to_dict(self) -> dict[str, Any]:
        d = self.decisive
        return {
            "nodeid": self.nodeid,
            "clauses": list(self.clauses),
            "evidence": list(self.evidence),
            "verdict": d.verdict.value,
            "reason": d.reason,
            "interpretations": list(d.interpretations),
            "hint": d.hint,
            "error": self.error,
            "xfail": self.xfail,
            "duration": round(self.duration, 6),
            "start": self.start,
            "stop": self.stop,
            "longrepr": "\n\n".join(self.longrepr) or None,
            "attachments": list(self.attachments),
        }


class Ledger:
    """Every test of the run, in the order their first report arrived."""

    def __init__(self, judges: Callable[[str], bool] | None = None) -> None:
        self.results: dict[str, TestResult] = {}
        self.judges = judges  # which clauses a verdict may be about (the SUT's role)

    def record(self, report: pytest.TestReport) -> TestResult:
        result = self.results.get(report.nodeid)
        if result is None:
            result = self.results[report.nodeid] = TestResult(report.nodeid, judges=self.judges)
        result.add(report)
        return result

    def finish_all(self, why: str) -> None:
        for result in self.results.values():
            if not result.finished:
                result.finish(why)

    def __iter__(self) -> Iterator[TestResult]:
        return iter(list(self.results.values()))  # a copy: safe while reports arrive

    def __len__(self) -> int:
        return len(self.results)
