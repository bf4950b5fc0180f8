"""SUT adapters: start an HA or MN implementation in its lab namespace, know when it is
ready, stop it without leaving anything behind.

:class:`ProfileSut` runs what a profile (:mod:`harness.sut.profile`) describes.
:class:`ReferenceSut` is a :class:`ProfileSut` built from the bundled profiles in
``harness/sut/profiles/``, so that the path an external implementation takes is the
path the bundled reference takes on every run.

Processes: the start command runs as ``/bin/sh -c`` inside the namespace (``ip netns
exec NAME`` for a named namespace, ``nsenter --net=PATH`` for a path: the command lines of
harness.lab.netns), started and followed by harness.lab.supervisor, in a session of its
own, its output (stdout and stderr together) copied to a log file. Stopping runs
the profile's stop command if it has one, then sends SIGTERM and, after the stop
timeout, SIGKILL to every process still in that session, so that children the SUT
started go too. An interpreter that exits with a SUT still running kills it (atexit).
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import os
import signal
import subprocess
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Literal

from harness.lab import netns as _netns
from harness.lab import supervisor
from harness.sut.profile import (
    FEATURES,
    Features,
    Placement,
    Profile,
    ProfileError,
    Readiness,
    Timers,
    load,
    render,
)

NETNS_DIR = "/run/netns"
PROFILES_DIR = Path(__file__).parent / "profiles"
_POLL = 0.02  # how often readiness rules that have no event (ports, commands) are re-checked
_TAIL = 400  # characters of output quoted in an error


class SutError(RuntimeError):
    """The SUT could not be started, did not become ready, or could not be stopped."""


class SutExited(SutError):
    """The SUT's process ended before it was ready."""


class SutNotReady(SutError):
    """The readiness rule did not hold within its deadline."""


StopOutcome = Literal["not-running", "exited", "terminated", "killed"]


class SutAdapter(ABC):
    """A system under test the harness can start, wait for, and stop."""

    role: str
    name: str

    @abstractmethod
    def start(self, placement: Placement) -> None:
        """Start it at `placement` and return once it is ready; raise SutError otherwise."""

    @abstractmethod
    def stop(self) -> StopOutcome:
        """Stop it and everything it started; safe to call twice."""

    @abstractmethod
    def is_ready(self) -> bool:
        """Started, ready, and still running."""

    @property
    @abstractmethod
    def features(self) -> Features: ...

    @property
    @abstractmethod
    def timers(self) -> Timers: ...

    @property
    @abstractmethod
    def log_path(self) -> Path | None:
        """Where its output goes (evidence for the report)."""

    def claims(self, feature: str) -> bool:
        return self.features.claims(feature)

    def require(self, feature: str) -> None:
        """End the calling test as not-applicable unless the SUT claims `feature`."""
        __tracebackhide__ = True
        self.features.require(feature, who=f"the SUT {self.name!r}")

    def __enter__(self) -> SutAdapter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# Adapters with a live process, stopped when the interpreter exits.
_LIVE: weakref.WeakSet[ProfileSut] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for sut in list(_LIVE):
        with contextlib.suppress(Exception):
            sut.stop(timeout=0.5)


def namespace_argv(netns: str | None, argv: Sequence[str]) -> list[str]:
    """`argv` run inside the network namespace `netns` (a name, a path, or None: here)."""
    if netns is None:
        return list(argv)
    return _netns.exec_argv(netns, argv, iproute2=True)


def _check_namespace(netns: str | None) -> None:
    if netns is None:
        return
    path = _namespace_path(netns)
    if not os.path.exists(path):
        raise SutError(f"network namespace {netns!r} does not exist ({path})")


def _namespace_path(netns: str) -> str:
    return netns if netns.startswith("/") else os.path.join(NETNS_DIR, netns)


def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(state, process group, session) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # comm may hold spaces and parentheses: the fields start after the last ')'
    rest = data[data.rfind(b")") + 2 :].split()
    return rest[0].decode(), int(rest[2]), int(rest[3])


def session_members(sid: int) -> list[int]:
    """Live (non-zombie) processes of session `sid`."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        st = _proc_stat(int(entry))
        if st is not None and st[2] == sid and st[0] not in ("Z", "X"):
            out.append(int(entry))
    return out


def _signal_session(sid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(sid, sig)
    for pid in session_members(sid):  # members that moved to a process group of their own
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def pipe_holders(inode: int) -> list[int]:
    """Live processes with the pipe `inode` open (e.g. a SUT's detached child)."""
    target = f"pipe:[{inode}]"
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{entry}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{entry}/fd/{fd}") == target:
                    st = _proc_stat(int(entry))
                    if st is not None and st[0] not in ("Z", "X"):
                        out.append(int(entry))
                    break
            except OSError:
                continue
    return out


def _socket_listening(pid: int, kind: Literal["udp", "tcp"], port: int) -> bool:
    """Has the namespace of process `pid` a UDP socket bound to / a TCP listener on `port`?"""
    for table in (kind, kind + "6"):
        try:
            with open(f"/proc/{pid}/net/{table}", encoding="ascii") as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) < 4:
                continue
            local_port = int(parts[1].rsplit(":", 1)[1], 16)
            if local_port == port and (kind == "udp" or parts[3] == "0A"):
                return True
    return False


def _run_once(argv: list[str], timeout: float, cwd: str) -> int | None:
    """Exit status of `argv`, or None if it did not finish in time (then it is killed)."""
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        cwd=cwd,
    )
    try:
        return proc.wait(timeout=max(timeout, 0.0))
    except subprocess.TimeoutExpired:
        _signal_session(proc.pid, signal.SIGKILL)
        proc.wait()
        return None
    finally:
        _signal_session(proc.pid, signal.SIGKILL)  # anything it left running


class ProfileSut(SutAdapter):
    """An implementation described by a profile, run as a separate process."""

    def __init__(self, profile: Profile, workdir: str | os.PathLike[str]) -> None:
        self.profile = profile
        self.role = profile.role
        self.name = profile.name
        self.workdir = Path(workdir)
        self._proc: subprocess.Popen[bytes] | None = None
        self._placement: Placement | None = None
        self._values: dict[str, str | tuple[str, ...]] = {}
        self._log_path: Path | None = None
        self._log: IO[bytes] | None = None
        self._reader: supervisor.Follower | None = None
        self._changed = threading.Event()  # set by the reader: a line arrived, or EOF
        self._matched = threading.Event()
        self._tail = b""
        self._ready = False
        self._pipe_inode: int | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ properties

    @property
    def features(self) -> Features:
        return self.profile.features

    @property
    def timers(self) -> Timers:
        return self.profile.timers

    @property
    def log_path(self) -> Path | None:
        return self._log_path

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def is_ready(self) -> bool:
        return self._ready and self._proc is not None and self._proc.poll() is None

    def output_tail(self) -> str:
        return self._tail.decode("utf-8", "replace")[-_TAIL:]

    # ------------------------------------------------------------------ start

    def start(
        self, placement: Placement, *, python: str | None = None, split: bool = False
    ) -> None:
        """`split`: with `[commands].split_args`, control and data planes apart (draft §9)."""
        if self._proc is not None:
            raise SutError(f"{self.name}: already started (pid {self._proc.pid})")
        self.profile.check_placement(placement)
        _check_namespace(placement.netns)
        self.workdir.mkdir(parents=True, exist_ok=True)
        key_file = self._write_key_file()
        self._log_path = self.workdir / f"sut-{self.role}.log"
        self._values = self.profile.values(
            placement,
            key_file=str(key_file) if key_file else None,
            log_file=str(self._log_path),
            python=python,
        )
        command = self.profile.render("start", self._values, split=split)
        self._placement = placement
        self._log = open(self._log_path, "wb")  # noqa: SIM115 - closed in stop()
        self._log.write(f"# {self.name}: {command}\n".encode())
        self._log.flush()
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self._matched.clear()
        self._changed.clear()
        self._tail = b""
        try:
            self._proc = supervisor.start(
                ["/bin/sh", "-c", command],
                netns=placement.netns,
                iproute2=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.workdir,
                env=env,
            )
        except OSError as exc:
            self._close_log()
            raise SutError(f"{self.name}: cannot start: {exc}") from None
        _LIVE.add(self)
        assert self._proc.stdout is not None
        self._pipe_inode = os.fstat(self._proc.stdout.fileno()).st_ino
        self._reader = supervisor.Follower(
            self._proc.stdout,
            self._output_line,
            name=f"sut-log-{self.role}",
            on_end=self._changed.set,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop(timeout=min(self.profile.commands.stop_timeout, 2.0))
            raise
        self._ready = True

    def _write_key_file(self) -> Path | None:
        keys = self.profile.keys
        if keys is None:
            return None
        path = self.workdir / f"{self.role}-mn-ha.key"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(keys.key_file_bytes())
        return path

    def _output_line(self, line: bytes) -> None:
        log, rule = self._log, self.profile.ready
        if log is not None:
            with contextlib.suppress(ValueError, OSError):  # closed by stop()
                log.write(line)
                log.flush()
        self._tail = (self._tail + line)[-4 * _TAIL :]
        if rule.kind == "log_regex" and rule.pattern.search(line.decode("utf-8", "replace")):
            self._matched.set()
        self._changed.set()

    def _check(self, rule: Readiness, remaining: float) -> bool:
        assert self._proc is not None and self._placement is not None
        if rule.kind == "log_regex":
            return self._matched.is_set()
        if rule.kind in ("udp_port", "tcp_port"):
            # until `ip netns exec` has entered the namespace, /proc/PID/net is ours
            if not _netns.holds(self._placement.netns, self._proc.pid):
                return False
            kind: Literal["udp", "tcp"] = "udp" if rule.kind == "udp_port" else "tcp"
            return _socket_listening(self._proc.pid, kind, int(rule.value))
        where = f"profile {self.profile.source}: [ready].command"
        command = render(str(rule.value), self._values, where=where)
        argv = namespace_argv(self._placement.netns, ["/bin/sh", "-c", command])
        return _run_once(argv, remaining, str(self.workdir)) == 0

    def _wait_ready(self) -> None:
        assert self._proc is not None
        rule = self.profile.ready
        deadline = time.monotonic() + rule.timeout
        while True:
            remaining = deadline - time.monotonic()
            if self._check(rule, max(remaining, 0.0)):
                return
            status = self._proc.poll()
            if status is not None:
                if self._reader is not None:
                    self._reader.join(timeout=1.0)  # the last lines, for the message
                if rule.kind == "log_regex" and self._matched.is_set():
                    return self._exited_after_ready(status)
                raise SutExited(
                    f"{self.name}: exited with status {status} before it was ready "
                    f"({rule.describe()}); last output: {self._last_line()!r} "
                    f"(log {self._log_path})"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SutNotReady(
                    f"{self.name}: not ready within {rule.timeout:g} s: {self._unmet(rule)} "
                    f"(log {self._log_path})"
                )
            self._changed.wait(min(remaining, _POLL if rule.kind != "log_regex" else 0.1))
            self._changed.clear()

    def _exited_after_ready(self, status: int) -> None:
        raise SutExited(
            f"{self.name}: printed its ready line, then exited with status {status} "
            f"(log {self._log_path})"
        )

    def _unmet(self, rule: Readiness) -> str:
        ns = self._placement.netns if self._placement else None
        where = f" in namespace {ns}" if ns else ""
        if rule.kind == "log_regex":
            return f"{rule.describe()} never matched its output (last line {self._last_line()!r})"
        if rule.kind == "udp_port":
            return f"{rule.describe()}: nothing bound UDP port {rule.value}{where}"
        if rule.kind == "tcp_port":
            return f"{rule.describe()}: nothing listened on TCP port {rule.value}{where}"
        return f"{rule.describe()} never exited with status 0"

    def _last_line(self) -> str:
        lines = self.output_tail().strip().splitlines()
        return lines[-1] if lines else ""

    # ------------------------------------------------------------------ stop

    def _members(self, sid: int) -> set[int]:
        """Every live process we started: its session, and any process that left the
        session (setsid) but still holds its output pipe."""
        members = set(session_members(sid))
        if self._pipe_inode is not None and self._reader is not None and self._reader.is_alive():
            members |= set(pipe_holders(self._pipe_inode))
        members.discard(os.getpid())
        return members

    def _signal(self, sid: int, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(sid, sig)
        for pid in self._members(sid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)

    def _wait_gone(self, sid: int, proc: subprocess.Popen[bytes], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            proc.poll()  # reap the leader, or it stays a zombie member
            if self._reader is not None:
                self._reader.join(timeout=0)
            if not self._members(sid):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL)

    def stop(self, timeout: float | None = None) -> StopOutcome:
        """Stop the SUT: stop command, then SIGTERM, then SIGKILL to all it started."""
        with self._lock:
            proc = self._proc
            if proc is None:
                return "not-running"
            grace = self.profile.commands.stop_timeout if timeout is None else timeout
            outcome: StopOutcome = "exited"
            try:
                sid = proc.pid  # start_new_session: the leader's pid is the session id
                if proc.poll() is None and self.profile.commands.stop and self._placement:
                    command = self.profile.render("stop", self._values)
                    argv = namespace_argv(self._placement.netns, ["/bin/sh", "-c", command])
                    with contextlib.suppress(OSError):
                        _run_once(argv, grace, str(self.workdir))
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(timeout=grace)
                proc.poll()
                if self._reader is not None:
                    self._reader.join(timeout=0.05)  # EOF: nobody holds the output any more
                if self._members(sid):
                    outcome = "terminated"
                    self._signal(sid, signal.SIGTERM)
                    if not self._wait_gone(sid, proc, grace):
                        outcome = "killed"
                        self._signal(sid, signal.SIGKILL)
                        if not self._wait_gone(sid, proc, 5.0):
                            left = sorted(self._members(sid))
                            raise SutError(f"{self.name}: processes {left} survived SIGKILL")
                proc.wait()
            finally:
                if self._reader is not None:
                    self._reader.join(timeout=2.0)
                self._close_log()
                self._proc = None
                self._ready = False
                _LIVE.discard(self)
            return outcome

    def move_flows(self, flows: tuple[str, ...], timeout: float = 5.0) -> None:
        """Run the profile's [commands].move_flows with `flows` ("IFACE=PORT" words) in the
        SUT's namespace; not applicable without that command; a failure is the SUT's."""
        template = self.profile.commands.move_flows
        if template is None or self._placement is None:
            from harness.verdicts import not_applicable

            not_applicable(f"{self.name}: no [commands].move_flows in its profile")
        command = self.profile.render("move_flows", {**self._values, "flows": flows})
        argv = namespace_argv(self._placement.netns, ["/bin/sh", "-c", command])
        status = _run_once(argv, timeout, str(self.workdir))
        if status != 0:
            raise AssertionError(f"{self.name}: [commands].move_flows ended with {status}")

    def _close_log(self) -> None:
        if self._log is not None:
            with contextlib.suppress(OSError):
                self._log.close()
            self._log = None


# ----------------------------------------------------------------------------- reference


def reference_profile(role: str) -> Profile:
    """The bundled profile that starts the reference HA or MN."""
    if role not in ("ha", "mn"):
        raise ValueError(f"role: ha or mn, not {role!r}")
    return load(PROFILES_DIR / f"reference-{role}.toml")


class ReferenceSut(ProfileSut):
    """The bundled reference HA or MN, started through its bundled profile."""

    def __init__(
        self, role: str, workdir: str | os.PathLike[str], placement: str | None = None
    ) -> None:
        profile = reference_profile(role)
        if placement is not None:
            profile = dataclasses.replace(profile, placement=placement)
        super().__init__(profile, workdir)


def open_sut(sut: str, role: str, workdir: str | os.PathLike[str]) -> SutAdapter:
    """The adapter for `--sut` ("reference" or a profile path) in `--sut-role` `role`."""
    if sut == "reference":
        return ReferenceSut(role, workdir)
    profile = load(sut)
    if profile.role != role:
        raise ProfileError(
            f"profile {profile.source}: role: {profile.role!r}, but the run tests role {role!r}"
        )
    return ProfileSut(profile, workdir)


__all__ = [
    "FEATURES",
    "ProfileSut",
    "ReferenceSut",
    "SutAdapter",
    "SutError",
    "SutExited",
    "SutNotReady",
    "namespace_argv",
    "open_sut",
    "pipe_holders",
    "reference_profile",
    "session_members",
]
