"""Fixtures of the meta tests: the kill matrices' board (tests/support/killmatrix.py)."""

from __future__ import annotations

import os

import pytest

from tests.support import killmatrix

# Kill-matrix runners per worker and role, each a pytest with a lab of its own. Two by
# default: the killers mostly wait on the wire, and on a 2-core machine with -n 2 the MN
# matrix took 287 s with one runner per worker and 201 s with two.
RUNNERS_ENV = "DMMCONF_KILL_RUNNERS"
DEFAULT_RUNNERS = "2"


@pytest.fixture(scope="session")
def kill_board(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> killmatrix.Board:
    """The (mutant, suite test) pairs every kill-matrix test of this session reads, run once
    for all the pytest-xdist workers of the session, in one runner per role and worker."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if worker else base  # the workers' base directories share a parent
    pairs = [p for item in request.session.items for p in killmatrix.wanted_pairs(item)]
    return killmatrix.Board(
        shared / "killmatrix",
        pairs,
        runner=int(worker.removeprefix("gw")) if worker else 0,
        runners=int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")),
        per_worker=int(os.environ.get(RUNNERS_ENV, DEFAULT_RUNNERS)),
    )
