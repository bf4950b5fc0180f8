"""The processes the harness starts (servers, SUTs, applications, the MLD proxy): one way
to start one in a network namespace, follow its output into a log, wait for it with a
deadline, and stop it (SIGTERM, then SIGKILL).

* `start(argv, netns=...)`: inside a namespace (a name or a path; None: here), entered the
  one way harness.lab.netns has; with `die_with_parent` the process gets SIGTERM when this
  process dies (PR_SET_PDEATHSIG), so a run killed with kill -9 leaves nothing behind.
  The kernel sends that signal when the *thread* that forked the child ends, not the
  process: such children are therefore forked by one spawner thread that lives as long
  as the process (`_Spawner`), whichever thread asked (a fixture, a helper thread that
  is gone a moment later).
* `Follower`: a thread that reads a process's output line by line into a log and hands
  each line to a callback, and says when the output ended.
* `wait_until(predicate, timeout)`: for what has no event to wait on; never unbounded.
* `terminate(proc, grace)`: SIGTERM, SIGKILL after `grace`; the exit status.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from typing import IO, Any, TypeVar

from harness.lab import netns as _netns

PR_SET_PDEATHSIG = 1
T = TypeVar("T")

_libc = ctypes.CDLL(None, use_errno=True)
_prctl = _libc.prctl  # resolved here, not in the forked child


class Timeout(RuntimeError):
    """`wait_until` ran out of time."""


def _die_with_parent() -> None:  # runs in the child between fork and exec
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class _Spawner:
    """One thread, alive as long as the process, that forks every child that must die
    with the process. `call(fn)` runs fn in it (fn enters the child's namespace there, so
    the namespace switch stays per call) and returns its result or raises its exception
    in the caller."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], concurrent.futures.Future[Any]]]
        self._jobs = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def call(self, fn: Callable[[], T]) -> T:
        with self._lock:
            if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                self._jobs = queue.SimpleQueue()  # a fork's copy starts afresh
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._run, args=(self._jobs,), name="dmmconf-spawner", daemon=True
                )
                self._thread.start()
            future: concurrent.futures.Future[T] = concurrent.futures.Future()
            self._jobs.put((fn, future))
        return future.result()

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    @staticmethod
    def _run(
        jobs: queue.SimpleQueue[tuple[Callable[[], Any], concurrent.futures.Future[Any]]],
    ) -> None:
        while True:
            fn, future = jobs.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                future.set_exception(exc)


spawner = _Spawner()


def start(
    argv: Sequence[str],
    *,
    netns: str | None = None,
    die_with_parent: bool = False,
    iproute2: bool = False,
    **popen_kwargs: Any,
) -> subprocess.Popen[Any]:
    """Start `argv` inside namespace `netns` (subprocess.Popen keyword arguments apply).

    With `die_with_parent` the spawner thread enters the namespace and forks the child
    with PR_SET_PDEATHSIG; otherwise the child enters it itself through the command line
    of harness.lab.netns.exec_argv (nsenter; `iproute2`: `ip netns exec` for a named
    namespace, which also shows the child that namespace's /sys and /etc/netns files).
    """
    if die_with_parent:

        def spawn() -> subprocess.Popen[Any]:
            with _netns.entered(netns):
                return subprocess.Popen(list(argv), preexec_fn=_die_with_parent, **popen_kwargs)

        return spawner.call(spawn)
    if netns is None:
        return subprocess.Popen(list(argv), **popen_kwargs)
    return _netns.exec_in(netns, argv, iproute2=iproute2, **popen_kwargs)


class Follower:
    """A daemon thread reading `stream` line by line (bytes, newline kept) until it ends:
    each line goes to `on_line`; at the end the stream is closed, `on_end` runs and
    `ended` is set."""

    def __init__(
        self,
        stream: IO[bytes],
        on_line: Callable[[bytes], None],
        *,
        name: str,
        on_end: Callable[[], None] | None = None,
    ) -> None:
        self.ended = threading.Event()
        self._stream, self._on_line, self._on_end = stream, on_line, on_end
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for raw in iter(self._stream.readline, b""):
                self._on_line(raw)
        finally:
            self._stream.close()
            if self._on_end is not None:
                self._on_end()
            self.ended.set()

    def join(self, timeout: float | None = None) -> None:
        self.thread.join(timeout)

    def is_alive(self) -> bool:
        return self.thread.is_alive()


def wait_until(
    predicate: Callable[[], bool],
    timeout: float,
    what: str,
    step: float = 0.02,
    error: type[Exception] = Timeout,
) -> float:
    """Poll `predicate()` until true, with a deadline; the seconds it took (`error` with
    `what` when the deadline passes). Only for what has no event to wait on."""
    begin = time.monotonic()
    deadline = begin + timeout
    while True:
        if predicate():
            return time.monotonic() - begin
        if time.monotonic() >= deadline:
            raise error(f"{what}: not within {timeout:g} s")
        time.sleep(step)


def terminate(
    proc: subprocess.Popen[Any], grace: float, kill_wait: float | None = None
) -> int | None:
    """SIGTERM (if it still runs), SIGKILL after `grace` s; its exit status. `kill_wait`
    bounds the wait after SIGKILL (None: until it is gone)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(kill_wait)
    return proc.returncode
