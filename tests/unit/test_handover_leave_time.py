"""The handover machine's "no datagram after the leave" check (harness/tester/
handover_invariants.py) goes by the kernel's receive time stamp: a datagram the MN's kernel
queued before the application left may be read, and reported, after the "left" event (seen
in CI as a false DMM-OVW-31 fail); one the kernel took in after the leave is a stray."""

from __future__ import annotations

from harness.apps.control import Event
from harness.tester.handover_invariants import Invariants

G = "ff3e::8000:21"


def _machine() -> Invariants:
    m = Invariants.__new__(Invariants)
    m.left_at, m.left_wall = {G: 100.0}, {G: 5000.0}  # "left": mono 100, wall 5000
    return m


def _data(kt: float | None, mono: float) -> Event:
    e: Event = {"event": "data", "group": G, "mono": mono}
    if kt is not None:
        e["kt"] = kt
    return e


def test_queued_before_the_leave_and_read_after_it_is_no_stray() -> None:
    assert not _machine()._after_leave(G, _data(kt=4999.99, mono=100.01))


def test_taken_in_after_the_leave_is_a_stray() -> None:
    assert _machine()._after_leave(G, _data(kt=5000.01, mono=100.01))


def test_without_a_kernel_time_stamp_the_report_time_decides() -> None:
    assert _machine()._after_leave(G, _data(kt=None, mono=100.01))
    assert not _machine()._after_leave(G, _data(kt=None, mono=99.9))
