"""Run a script that a test then kills with SIGKILL, and collect every process it left.

The machine's PID 1 does not reap orphans: a daemon whose parent was killed would stay
a zombie (`[named] <defunct>`) for good. So the victim runs under a small keeper that
makes itself a child subreaper (PR_SET_CHILD_SUBREAPER): the victim's orphans are
re-parented to it, and it reaps them as they die. It exits once it has no child left,
so its exit means every process of the victim is gone.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time

from harness.lab.registry import alive

_KEEPER = r"""
import ctypes, os, subprocess, sys
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
victim = subprocess.Popen([sys.executable, "-c", *sys.argv[1:]])
print("victim", victim.pid, flush=True)
while True:
    try:
        os.wait()
    except ChildProcessError:
        break
"""


class Victim:
    """`script` (python -c) with `args`, under a keeper; `lines` its stdout so far."""

    def __init__(self, script: str, *args: str) -> None:
        self.keeper = subprocess.Popen(
            [sys.executable, "-c", _KEEPER, script, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        first = self.readline(30.0).split()
        if first[:1] != ["victim"]:
            self.keeper.kill()
            raise AssertionError(f"the keeper did not start the victim: {first}")
        self.pid = int(first[1])

    def readline(self, timeout: float) -> str:
        """The next line the victim (or its keeper) prints, within `timeout`."""
        assert self.keeper.stdout is not None
        if not select.select([self.keeper.stdout], [], [], timeout)[0]:
            return ""
        return self.keeper.stdout.readline()

    def kill(self) -> None:
        """SIGKILL the victim (not the keeper: it stays to reap the orphans)."""
        os.kill(self.pid, signal.SIGKILL)

    def wait_all_gone(self, timeout: float) -> bool:
        """True once the victim and every process it left have died (the keeper exits)."""
        try:
            self.keeper.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def close(self) -> str:
        """Stop the keeper if it is still there; its stderr (the victim's too)."""
        if self.keeper.poll() is None:
            self.keeper.kill()
        _, err = self.keeper.communicate(timeout=10)
        return err or ""


def wait_dead(pids: dict[int, int | None], timeout: float) -> list[int]:
    """Wait until every pid (with its start time, against pid reuse) has exited; the
    ones still alive at the deadline."""
    deadline = time.monotonic() + timeout
    left_over = list(pids)
    while left_over:
        left_over = [pid for pid in left_over if running(pid, pids[pid])]
        left = deadline - time.monotonic()
        if not left_over or left <= 0:
            break
        fds = []
        for pid in left_over:
            try:
                fds.append(os.pidfd_open(pid))
            except ProcessLookupError:
                continue
        try:
            if fds:
                select.select(fds, [], [], left)  # readable when one of them exits
        finally:
            for fd in fds:
                os.close(fd)
    return left_over


def running(pid: int, start: int | None) -> bool:
    """Alive and not a zombie (a zombie has exited; only its reaping is pending)."""
    if not alive(pid, start):
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"
