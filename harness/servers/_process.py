"""A server daemon run in the foreground inside a network namespace.

What every server here shares:

* a private working directory (``dmms-<pid>-<kind>-XXXX`` under the temp dir) that
  holds the generated configuration and everything the daemon writes, removed on stop;
* the daemon runs in the foreground with its log on stdout/stderr, read by a thread
  into ``<dir>/<kind>.log`` and a short in-memory tail (for error messages once the
  directory is gone);
* readiness is an event, not a sleep: the reader thread sets it when the daemon prints
  the line that says it is serving (or when its output ends because it died); the
  caller then confirms with a real query;
* the daemon gets SIGTERM when the process that started it dies (PR_SET_PDEATHSIG), so
  a test run killed with kill -9 does not leave daemons behind. The kernel sends that
  signal when the *thread* that forked the daemon ends, not the process: every daemon is
  therefore forked by one spawner thread that lives as long as the process (`_Spawner`),
  whichever thread asked for it (a fixture, a helper thread that is gone a moment later);
* a daemon runs inside a lab namespace, so the lab's reaper, which kills every process
  in the namespaces it removes, gets it too if it survived somehow;
* stop: SIGTERM, SIGKILL after a deadline, then the directory goes.
"""

from __future__ import annotations

import collections
import concurrent.futures
import ctypes
import os
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self, TypeVar

from harness.lab import netns as _netns
from harness.lab import registry

KEEP_DIRS_ENV = "DMMCONF_KEEP_SERVER_DIRS"  # "1": keep the private directories (debugging)
DIR_PREFIX = "dmms-"
PR_SET_PDEATHSIG = 1

_libc = ctypes.CDLL(None, use_errno=True)
_prctl = _libc.prctl  # resolved here, not in the forked child


class ServerUnavailable(RuntimeError):
    """The daemon cannot run here (binary missing, no privileges); `hint` says how to fix it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class ServerError(RuntimeError):
    """The daemon was started but did not come up, or misbehaved."""


T = TypeVar("T")
_OWNED_DIR = re.compile(rf"^{re.escape(DIR_PREFIX)}(\d+)-")


def private_dir(kind: str) -> Path:
    """A fresh directory tagged with this process's id, so a reaper can tell whose it is."""
    return Path(tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{os.getpid()}-{kind}-"))


def remove_dir(path: Path) -> None:
    if os.environ.get(KEEP_DIRS_ENV) == "1":
        return
    shutil.rmtree(path, ignore_errors=True)


def reap_dirs() -> list[Path]:
    """Remove the private directories of processes that are gone (a run killed with -9)."""
    removed = []
    for path in Path(tempfile.gettempdir()).glob(f"{DIR_PREFIX}*"):
        m = _OWNED_DIR.match(path.name)
        if m and path.is_dir() and not registry.alive(int(m[1]), None):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def find_binary(name: str, package: str, explicit: str | None = None) -> str:
    """Absolute path of a daemon binary, or ServerUnavailable with the apt-get hint."""
    if explicit:
        if os.access(explicit, os.X_OK):
            return explicit
        raise ServerUnavailable(
            f"{explicit} is not an executable", hint=f"apt-get install {package}"
        )
    # Debian puts daemons in /usr/sbin, which a non-root PATH often lacks.
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin", "/sbin"])
    found = shutil.which(name, path=path)
    if found is None:
        raise ServerUnavailable(f"{name} is not installed", hint=f"apt-get install {package}")
    return found


def _die_with_parent() -> None:  # runs in the child between fork and exec
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class _Spawner:
    """One thread, alive as long as the process, that forks every daemon.

    PR_SET_PDEATHSIG fires when the parent *thread* ends (prctl(2)): a daemon forked by
    a short-lived thread would be killed when that thread returns, and one forked by a
    thread that lingers would outlive nothing. A thread that only ends with the process
    makes the signal mean "the process died". `call(fn)` runs fn in it (fn enters the
    daemon's namespace there, so the namespace switch stays per call) and returns its
    result or raises its exception in the caller.
    """

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


class ServerProcess:
    """One foreground daemon, started inside a namespace, with its output followed."""

    TAIL_LINES = 60

    def __init__(
        self,
        kind: str,
        argv: Sequence[str],
        *,
        netns: str,
        workdir: Path,
        ready_line: re.Pattern[str],
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.kind = kind
        self.argv = list(argv)
        self.netns = netns
        self.workdir = workdir
        self.ready_line = ready_line
        self.env = dict(os.environ if env is None else env)
        self.log_path = workdir / f"{kind}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._tail: collections.deque[str] = collections.deque(maxlen=self.TAIL_LINES)
        self._ready = threading.Event()  # ready line seen, or output ended
        self._reader: threading.Thread | None = None

    # ------------------------------------------------------------------ start

    def start(self, timeout: float) -> None:
        """Start, and return once the ready line appeared; ServerError otherwise."""

        def spawn() -> subprocess.Popen[bytes]:
            with _netns.entered(self.netns):
                return subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    cwd=self.workdir,
                    env=self.env,
                    start_new_session=True,  # Ctrl-C reaches pytest, whose teardown stops us
                    preexec_fn=_die_with_parent,  # dies with this process, even after kill -9
                )

        self.proc = spawner.call(spawn)
        assert self.proc.stdout is not None
        self._reader = threading.Thread(
            target=self._follow, args=(self.proc.stdout,), name=f"{self.kind}-log", daemon=True
        )
        self._reader.start()
        ready = self._ready.wait(timeout)
        if self.proc.poll() is not None:
            self._join_reader()
            raise ServerError(
                f"{self.kind} exited with status {self.proc.returncode} while starting"
                f" ({' '.join(self.argv)}); its output:\n{self.tail()}"
            )
        if not ready:
            raise ServerError(
                f"{self.kind} printed no ready line ({self.ready_line.pattern!r}) within "
                f"{timeout:g} s; its output:\n{self.tail()}"
            )

    def _follow(self, stream: IO[bytes]) -> None:
        with open(self.log_path, "a", encoding="utf-8", errors="replace") as log:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self._tail.append(line)
                log.write(line + "\n")
                log.flush()
                if not self._ready.is_set() and self.ready_line.search(line):
                    self._ready.set()
        stream.close()
        self._ready.set()  # output ended: the daemon is gone; start() looks at poll()

    def tail(self) -> str:
        return "\n".join(self._tail) or "(no output)"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # ------------------------------------------------------------------- stop

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; the exit status (None if never started)."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        self._join_reader()
        return proc.returncode

    def _join_reader(self) -> None:
        if self._reader is not None:
            self._reader.join(2.0)


def wait_until(
    predicate: Callable[[], bool], timeout: float, what: str, step: float = 0.02
) -> float:
    """Poll `predicate()` until true, with a deadline; the seconds it took.

    Only for what has no event to wait on (a UDP port showing up in /proc); the deadline
    is the point: never an unbounded loop, never a fixed sleep.
    """
    start = time.monotonic()
    deadline = start + timeout
    while True:
        if predicate():
            return time.monotonic() - start
        if time.monotonic() >= deadline:
            raise ServerError(f"{what}: not within {timeout:g} s")
        time.sleep(step)


class ManagedServer:
    """What every daemon wrapper shares: its process, its private directory, and stopping
    both (also as a context manager). Subclasses set `_proc` and `dir` in `start()`."""

    dir: Path | None = None
    _proc: ServerProcess | None = None

    def start(self) -> Self:
        raise NotImplementedError

    def tail(self) -> str:
        return self._proc.tail() if self._proc is not None else "(not started)"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.proc else None

    def stop(self, timeout: float = 5.0) -> None:
        try:
            if self._proc is not None:
                self._proc.stop(timeout)
        finally:
            self._proc = None
            if self.dir is not None:
                remove_dir(self.dir)
                self.dir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
