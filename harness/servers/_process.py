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
* the daemon gets SIGTERM when the process that started it dies (PR_SET_PDEATHSIG,
  harness.lab.supervisor's `die_with_parent`), so a test run killed with kill -9 does not
  leave daemons behind;
* a daemon runs inside a lab namespace, so the lab's reaper, which kills every process
  in the namespaces it removes, gets it too if it survived somehow;
* stop: SIGTERM, SIGKILL after a deadline, then the directory goes.

Starting, following the output and stopping are harness.lab.supervisor's.
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from harness.lab import registry, supervisor

KEEP_DIRS_ENV = "DMMCONF_KEEP_SERVER_DIRS"  # "1": keep the private directories (debugging)
DIR_PREFIX = "dmms-"


class ServerUnavailable(RuntimeError):
    """The daemon cannot run here (binary missing, no privileges); `hint` says how to fix it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class ServerError(RuntimeError):
    """The daemon was started but did not come up, or misbehaved."""


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
        self._reader: supervisor.Follower | None = None
        self._log: IO[str] | None = None

    # ------------------------------------------------------------------ start

    def start(self, timeout: float) -> None:
        """Start, and return once the ready line appeared; ServerError otherwise."""

        self.proc = supervisor.start(
            self.argv,
            netns=self.netns,
            die_with_parent=True,  # dies with this process, even after kill -9
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            env=self.env,
            start_new_session=True,  # Ctrl-C reaches pytest, whose teardown stops us
        )
        assert self.proc.stdout is not None
        self._log = open(self.log_path, "a", encoding="utf-8", errors="replace")  # noqa: SIM115
        self._reader = supervisor.Follower(
            self.proc.stdout,
            self._line,
            name=f"{self.kind}-log",
            on_end=self._ended,  # output ended: the daemon is gone; start() looks at poll()
        )
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

    def _line(self, raw: bytes) -> None:
        line = raw.decode("utf-8", "replace").rstrip("\n")
        self._tail.append(line)
        assert self._log is not None
        self._log.write(line + "\n")
        self._log.flush()
        if not self._ready.is_set() and self.ready_line.search(line):
            self._ready.set()

    def _ended(self) -> None:
        if self._log is not None:
            self._log.close()
        self._ready.set()

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
        status = supervisor.terminate(proc, timeout, kill_wait=timeout)
        self._join_reader()
        return status

    def _join_reader(self) -> None:
        if self._reader is not None:
            self._reader.join(2.0)


def wait_until(
    predicate: Callable[[], bool], timeout: float, what: str, step: float = 0.02
) -> float:
    """Poll `predicate()` until true, with a deadline; the seconds it took (ServerError
    when it passes). Only for what has no event to wait on (a UDP port showing up in
    /proc): never an unbounded loop, never a fixed sleep."""
    return supervisor.wait_until(predicate, timeout, what, step, error=ServerError)


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
