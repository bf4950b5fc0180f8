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

import pytest

from harness.lab.topology import Lab, LabUnavailable
from harness.verdicts import not_run


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """The default topology of plan.py, built once per worker."""
    the_lab = Lab()
    try:
        the_lab.up()
    except LabUnavailable as exc:
        not_run(f"the network lab is unavailable: {exc}", hint=exc.hint)
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
