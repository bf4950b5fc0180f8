"""pytest fixtures for the lab. Load with `pytest_plugins = ["harness.lab.fixtures"]`.

* `lab`: one Lab per test session *per pytest-xdist worker* (each worker builds its own
  namespaces under its own run id, `dmm-gw0-xxxxxx-...`), torn down at the end of the
  session, on Ctrl-C and on SIGTERM. Where the lab cannot be built (no root, nsenter
  missing) every test using it ends with a not-run verdict that says what is missing and
  how to get it, never an error.
* `clean_lab`: the same lab, put back as bring-up left it after the test (impairments
  cleared, the MN's interfaces back on their first links, added interfaces removed, the
  ARs' Router Advertisements as they were). Tests that move, add, impair or change
  things use this one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NoReturn

import pytest

from harness.lab import netns
from harness.lab.topology import Lab, LabError, LabUnavailable
from harness.verdicts import DOCTOR_HINT, LAB_UNAVAILABLE, not_run


def lab_not_run(why: object, hint: str | None = None) -> NoReturn:
    """End the test not-run because no lab can be built here (the one wording for it)."""
    __tracebackhide__ = True
    not_run(f"{LAB_UNAVAILABLE}: {why}", hint=f"{hint}; {DOCTOR_HINT}" if hint else DOCTOR_HINT)


def require_privileges() -> None:
    """Not-run, with the fix, unless this process may build labs."""
    __tracebackhide__ = True
    missing = netns.missing_privileges()
    if missing:
        lab_not_run(missing, netns.PRIVILEGE_HINT)


def bring_up(the_lab: Lab) -> Lab:
    """`the_lab.up()`, or end the test not-run when this machine cannot build it.

    A lab that cannot start is the harness's problem, never the SUT's: the verdict is
    not-run with what is missing and the fix, the same words for every test (the run's
    summary says it once and the run ends with the no-verdict exit status)."""
    __tracebackhide__ = True
    try:
        return the_lab.up()
    except (LabUnavailable, LabError) as exc:
        lab_not_run(exc, getattr(exc, "hint", None))


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """The default topology of plan.py, built once per worker."""
    the_lab = bring_up(Lab())
    try:
        yield the_lab
    finally:
        the_lab.down()


@pytest.fixture
def clean_lab(lab: Lab) -> Iterator[Lab]:
    """The session's lab, reset to its bring-up state after the test."""
    try:
        yield lab
    finally:
        lab.reset()
