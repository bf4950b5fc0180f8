"""Run ids, the per-run registry, and the reaper that removes what a killed run left.

Every namespace a lab creates is named `dmm-<runid>-<node>`. Before it creates anything, a
lab writes /run/dmmconf/runs/<runid>.json: the owner's pid (and its start time, so a
recycled pid is not mistaken for the owner), the namespaces, the helper processes (the
MLD proxy), and whether the lab is `manual` (made by `dmmconf lab up`, meant to outlive
its maker). `reap()` then removes, under a lock:

* every run whose owner is dead (kill -9, a crash) and that is not manual: its helper
  processes, every process still inside its namespaces, the namespaces, its files;
* every `dmm-` namespace that no registry claims and that is older than
  `orphan_age` seconds (a registry lost with a reboot of /run never happens, but a
  namespace made by hand with the project's prefix might);
* the small topologies some tests build for themselves, named `<prefix><pid>-...` with
  the pid of the process that made them (`dmmt-`, `dmmr-`, and `dmms-` of older runs):
  those whose process is gone, with every process still inside.

Run ids carry the pytest-xdist worker id (`gw0-3fa9c1`), so two workers never collide and
a reader can tell whose namespaces they are.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import signal
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.lab import netns

PREFIX = "dmm-"
# Namespaces named `<prefix><pid>-...` by the tests' own small topologies (tester, RA).
PID_TAGGED_PREFIXES = ("dmmt-", "dmmr-", "dmms-")
REGISTRY_DIR = Path(os.environ.get("DMMCONF_RUN_DIR", "/run/dmmconf")) / "runs"
ORPHAN_AGE = 30.0  # seconds: an unclaimed dmm- namespace younger than this may be a lab being born


def new_runid(tag: str | None = None) -> str:
    """A fresh run id: `<worker>-<hex>` under pytest-xdist, `<tag>-<hex>` or `<hex>` otherwise."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    head = tag or worker
    rand = secrets.token_hex(3)
    return f"{head}-{rand}" if head else rand


def ns_name(runid: str, node: str) -> str:
    return f"{PREFIX}{runid}-{node}"


def runid_of(name: str) -> str | None:
    """The run id in a namespace name `dmm-<runid>-<node>`, None for other names."""
    if not name.startswith(PREFIX) or "-" not in name[len(PREFIX) :]:
        return None
    return name[len(PREFIX) :].rsplit("-", 1)[0]


def process_start(pid: int) -> int | None:
    """The start time of a process (clock ticks since boot), None if there is none."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    return int(stat[stat.rindex(")") + 2 :].split()[19])


def alive(pid: int, start: int | None) -> bool:
    now = process_start(pid)
    return now is not None and (start is None or now == start)


@dataclass
class Helper:
    pid: int
    start: int | None
    what: str


@dataclass
class RunRecord:
    runid: str
    pid: int
    start: int | None
    namespaces: list[str]
    manual: bool = False
    created: float = field(default_factory=time.time)
    helpers: list[Helper] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # sockets, logs: removed with the run
    info: dict[str, Any] = field(default_factory=dict)  # free-form (the lab's options)

    @classmethod
    def mine(cls, runid: str, namespaces: list[str], manual: bool = False) -> RunRecord:
        pid = os.getpid()
        return cls(runid, pid, process_start(pid), list(namespaces), manual)

    @property
    def path(self) -> Path:
        return REGISTRY_DIR / f"{self.runid}.json"

    def save(self) -> None:
        REGISTRY_DIR.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1), encoding="utf-8")
        os.replace(tmp, self.path)

    def remove(self) -> None:
        for f in self.files:
            with contextlib.suppress(OSError):
                os.unlink(f)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    @classmethod
    def load(cls, path: Path) -> RunRecord | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            data["helpers"] = [Helper(**h) for h in data.get("helpers", [])]
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None

    def owner_alive(self) -> bool:
        return alive(self.pid, self.start)


def records() -> list[RunRecord]:
    try:
        paths = sorted(REGISTRY_DIR.glob("*.json"))
    except OSError:
        return []
    return [r for p in paths if (r := RunRecord.load(p)) is not None]


@contextlib.contextmanager
def locked() -> Iterator[None]:
    """Serialise reapers (and lab creation against them) across processes."""
    REGISTRY_DIR.mkdir(parents=True, exist_ok=True)
    fd = os.open(REGISTRY_DIR / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def stop_helper(helper: Helper, timeout: float = 1.0) -> None:
    """SIGTERM a helper process (if it is still the same process), SIGKILL after `timeout`."""
    if not alive(helper.pid, helper.start):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(helper.pid, signal.SIGTERM)
    try:
        pidfd = os.pidfd_open(helper.pid)
    except ProcessLookupError:
        return
    try:
        import select

        if not select.select([pidfd], [], [], timeout)[0]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(helper.pid, signal.SIGKILL)
    finally:
        os.close(pidfd)


def destroy(record: RunRecord) -> list[str]:
    """Remove everything of one run: helpers, namespaces (and processes inside), files."""
    for helper in record.helpers:
        stop_helper(helper)
    removed = []
    for name in record.namespaces:
        if netns.exists(name):
            netns.delete(name)
            removed.append(name)
    record.remove()
    return removed


def reap_pid_tagged(prefixes: tuple[str, ...] = PID_TAGGED_PREFIXES) -> list[str]:
    """Remove `<prefix><pid>-...` namespaces whose pid is gone (and what runs in them)."""
    removed = []
    for name in netns.list_names():
        for prefix in prefixes:
            pid = name[len(prefix) :].split("-", 1)[0] if name.startswith(prefix) else ""
            if pid.isdigit() and not alive(int(pid), None):
                with contextlib.suppress(OSError):
                    netns.delete(name)
                    removed.append(name)
                break
    return removed


def reap(orphan_age: float = ORPHAN_AGE, include_manual: bool = False) -> list[str]:
    """Remove what dead runs left; the names of the namespaces removed."""
    removed: list[str] = []
    with locked():
        claimed: set[str] = set()
        for record in records():
            dead = not record.owner_alive()
            if dead and (include_manual or not record.manual):
                removed += destroy(record)
            else:
                claimed.update(record.namespaces)
        now = time.time()
        for name in netns.list_names(PREFIX):
            if name in claimed:
                continue
            born = netns.created_at(name)
            if born is None or now - born >= orphan_age:
                netns.delete(name)
                removed.append(name)
        removed += reap_pid_tagged()
    return removed
