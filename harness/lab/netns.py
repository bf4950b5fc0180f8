"""Named network namespaces: create, delete, enter from one thread, sockets and processes inside.

A namespace here is named the iproute2 way, a bind mount at /run/netns/<name>, so
`ip netns exec <name> ...`, `ip netns list`, pyroute2 and tcpdump users all see it.

Threads and sockets. setns(2) with CLONE_NEWNET moves the *calling thread* only: the
rest of the process stays where it was. `entered(name)` moves the calling thread into a
namespace for the length of a `with` block and back afterwards (the saved namespace is
per call, not a process-wide stack like pyroute2's pushns/popns, which two threads would
corrupt). A socket keeps the namespace it was created in for its whole life, whatever
thread later uses it: `socket_in(ns, ...)` opens one inside and hands it back, usable
from any thread. `NetNS(name)` is a pyroute2 IPRoute whose netlink socket was opened that
way (no fork, unlike pyroute2's own netns= argument, which also creates the namespace
when it is missing; this one refuses).

Creating a namespace is done in the calling thread as iproute2 does it: unshare(2) a
new network namespace, bind-mount /proc/thread-self/ns/net onto /run/netns/<name>, and
setns(2) back. No fork, about 0.4 ms each.

Processes: `exec_in(name, argv)` starts a program inside a namespace through `nsenter
--net=...` (util-linux), which execs the program directly: the Popen's pid is the
program's, and no preexec_fn runs in a forked copy of a threaded process. Every
command line that enters a namespace is built here (`exec_argv`); harness.lab.supervisor
starts, follows and stops the processes.

Everything here needs CAP_SYS_ADMIN and CAP_NET_ADMIN (root); `missing_privileges()` says
what is lacking.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

NETNS_RUN_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MS_REC = 16384
MS_SHARED = 1 << 20
MNT_DETACH = 2

T = TypeVar("T")

_libc = ctypes.CDLL(None, use_errno=True)

# Capability bits (linux/capability.h) the lab needs, and what for.
_CAPS = {
    12: ("CAP_NET_ADMIN", "create links, addresses and routes"),
    13: ("CAP_NET_RAW", "open raw and packet sockets"),
    21: ("CAP_SYS_ADMIN", "create and enter network namespaces"),
}

ROOTLESS = (
    "unshare --user --map-root-user --net --mount "
    "sh -c 'mount -t tmpfs tmpfs /run && exec \"$@\"' - "
)
PRIVILEGE_HINT = (
    "run as root (`sudo .venv/bin/python -m pytest ...`, `sudo .venv/bin/dmmconf lab up`), "
    f"or rootless in a user namespace of your own: {ROOTLESS}.venv/bin/python -m pytest ..."
)


class NamespaceError(RuntimeError):
    """A namespace operation failed (missing namespace, kernel refusal)."""


class NamespaceMissing(NamespaceError, FileNotFoundError):
    """The named namespace does not exist (also a FileNotFoundError, as opening it was)."""


def _oserror(what: str) -> OSError:
    err = ctypes.get_errno()
    return OSError(err, f"{what}: {os.strerror(err)}")


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        raise _oserror("setns(CLONE_NEWNET)")


def path(name: str) -> str:
    """/run/netns/<name>; refuses names that are not a single path component."""
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"not a network namespace name: {name!r}")
    return os.path.join(NETNS_RUN_DIR, name)


def exists(name: str) -> bool:
    return os.path.exists(path(name))


def list_names(prefix: str = "") -> list[str]:
    """The named namespaces whose name starts with `prefix`, sorted."""
    try:
        return sorted(n for n in os.listdir(NETNS_RUN_DIR) if n.startswith(prefix))
    except FileNotFoundError:
        return []


def missing_privileges() -> str | None:
    """What this process lacks to build a namespace lab, or None when it has it all."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            status = f.read()
    except OSError:
        return "cannot read /proc/self/status (is this Linux with /proc mounted?)"
    caps = 0
    for line in status.splitlines():
        if line.startswith("CapEff:"):
            caps = int(line.split()[1], 16)
    lacking = [f"{name} (to {why})" for bit, (name, why) in _CAPS.items() if not caps >> bit & 1]
    if lacking:
        return (
            f"the network lab needs root privileges; this process (uid {os.getuid()}) lacks "
            + ", ".join(lacking)
        )
    if not os.path.exists("/proc/thread-self/ns/net"):
        return "the kernel offers no network namespaces (/proc/thread-self/ns/net is missing)"
    return None


def initial_user_namespace() -> bool:
    """False inside a user namespace (a rootless lab), where uid 0 is someone else outside."""
    try:
        with open("/proc/self/uid_map", encoding="ascii") as f:
            return f.read().split() == ["0", "0", "4294967295"]
    except OSError:
        return True


def _prepare_run_dir() -> None:
    """/run/netns exists and is a shared mount point (as iproute2 leaves it)."""
    os.makedirs(NETNS_RUN_DIR, mode=0o755, exist_ok=True)
    d = NETNS_RUN_DIR.encode()
    if _libc.mount(b"none", d, None, MS_SHARED | MS_REC, None) == 0:
        return
    if ctypes.get_errno() != errno.EINVAL:  # EINVAL: not a mount point yet
        raise _oserror(f"mount --make-rshared {NETNS_RUN_DIR}")
    if _libc.mount(d, d, b"none", MS_BIND | MS_REC, None) != 0:
        raise _oserror(f"mount --rbind {NETNS_RUN_DIR}")
    if _libc.mount(b"none", d, None, MS_SHARED | MS_REC, None) != 0:
        raise _oserror(f"mount --make-rshared {NETNS_RUN_DIR}")


_run_dir_ready = False


def create(name: str) -> None:
    """Create the named namespace (fails with FileExistsError if the name is taken)."""
    global _run_dir_ready
    if not _run_dir_ready:
        _prepare_run_dir()
        _run_dir_ready = True
    p = path(name)
    os.close(os.open(p, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.unshare(CLONE_NEWNET) != 0:
            err = _oserror("unshare(CLONE_NEWNET)")
            os.unlink(p)
            raise err
        try:
            if _libc.mount(b"/proc/thread-self/ns/net", p.encode(), b"none", MS_BIND, None) != 0:
                err = _oserror(f"bind mount of the new namespace on {p}")
                os.unlink(p)
                raise err
        finally:
            _setns(own)  # back where this thread was; the new namespace lives on its mount
    finally:
        os.close(own)


def in_private_namespace(fn: Callable[[], T]) -> T:
    """Run fn in a new, nameless network namespace of the calling thread, then come back.

    For probes (what does this kernel allow?) that must not touch any namespace in use.
    """
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.unshare(CLONE_NEWNET) != 0:
            raise _oserror("unshare(CLONE_NEWNET)")
        try:
            return fn()
        finally:
            _setns(own)  # the new namespace goes with its last socket
    finally:
        os.close(own)


def delete(name: str, kill_processes: bool = True) -> None:
    """Remove the named namespace (no error if it is gone already).

    Processes still inside would keep the namespace alive after its name is gone; with
    `kill_processes` they get SIGKILL first (a daemon of a killed run, say).
    """
    p = path(name)
    if kill_processes:
        for pid in pids_in(name):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    if _libc.umount2(p.encode(), MNT_DETACH) != 0 and ctypes.get_errno() not in (
        errno.EINVAL,  # not mounted (half-made entry)
        errno.ENOENT,
    ):
        raise _oserror(f"umount {p}")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(p)


def created_at(name: str) -> float | None:
    """When the namespace was made (the time stamp of its nsfs inode), None if it is gone."""
    try:
        return os.stat(path(name)).st_mtime
    except FileNotFoundError:
        return None


def pids_in(name: str) -> list[int]:
    """Processes whose network namespace is this one (what `ip netns pids` prints)."""
    try:
        st = os.stat(path(name))
    except FileNotFoundError:
        return []
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            s = os.stat(f"/proc/{entry}/ns/net")
        except OSError:
            continue
        if (s.st_dev, s.st_ino) == (st.st_dev, st.st_ino) and int(entry) != os.getpid():
            found.append(int(entry))
    return found


@contextlib.contextmanager
def entered(name: str | None) -> Iterator[None]:
    """Run the block with the calling thread in namespace `name`; back where it was after.

    `name` is a named namespace or a path to a namespace file (`/proc/<pid>/ns/net`); None
    stays where the thread is. Only this thread moves (setns(2) is per thread). Sockets
    opened in the block stay in the namespace for good.
    """
    if name is None:
        yield
        return
    p = name if name.startswith("/") else path(name)
    try:
        target = os.open(p, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NamespaceMissing(f"network namespace {name!r} does not exist ({p})") from None
    try:
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(target)
            try:
                yield
            finally:
                _setns(own)  # cannot fail for a namespace this thread was just in
        finally:
            os.close(own)
    finally:
        os.close(target)


def run_in(name: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """fn(*args, **kwargs) evaluated with the calling thread inside namespace `name`."""
    with entered(name):
        return fn(*args, **kwargs)


def socket_in(
    name: str,
    family: int = socket.AF_INET6,
    type: int = socket.SOCK_DGRAM,  # noqa: A002 - the socket module's own name
    proto: int = 0,
) -> socket.socket:
    """A socket created inside namespace `name` (it stays there, used from any thread)."""
    with entered(name):
        return socket.socket(family, type, proto)


def if_nametoindex(name: str, ifname: str) -> int:
    """An interface's index inside namespace `name` (OSError when there is none)."""
    with entered(name):
        return socket.if_nametoindex(ifname)


def NetNS(name: str, **kwargs: Any) -> Any:  # noqa: N802 - reads like the class it returns
    """A pyroute2 IPRoute talking to namespace `name` (which must exist). Close it after use.

    The netlink socket is opened in the namespace by this thread (no fork); keyword
    arguments go to IPRoute (e.g. groups=RTMGRP_LINK to receive link notifications).
    """
    from pyroute2 import IPRoute

    sock = socket_in(name, socket.AF_NETLINK, socket.SOCK_DGRAM, 0)  # NETLINK_ROUTE
    try:
        return IPRoute(fileno=sock.detach(), **kwargs)
    except BaseException:
        sock.close()
        raise


def _nsenter() -> str:
    found = shutil.which("nsenter", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/bin"]))
    if found is None:
        raise NamespaceError("nsenter (util-linux) is not installed: apt-get install util-linux")
    return found


def _file(name: str) -> str:
    """The namespace file of a name (/run/netns/<name>) or of a path (itself)."""
    return name if name.startswith("/") else path(name)


def exec_argv(name: str, argv: Sequence[str], *, iproute2: bool = False) -> list[str]:
    """The command line that runs `argv` inside namespace `name` (a name or a path to a
    namespace file): nsenter, which execs `argv` directly. `iproute2` with a name: `ip
    netns exec`, which also gives the program a mount namespace where /sys is that
    namespace's and /etc/netns/<name>/ files are bound over /etc (what an external
    program started "the iproute2 way" may expect)."""
    if iproute2 and not name.startswith("/"):
        return ["ip", "netns", "exec", name, *argv]
    return [_nsenter(), f"--net={_file(name)}", "--", *argv]


def exec_in(
    name: str, argv: Sequence[str], *, iproute2: bool = False, **popen_kwargs: Any
) -> subprocess.Popen[Any]:
    """Start `argv` inside namespace `name` (subprocess.Popen keyword arguments apply)."""
    if not os.path.exists(_file(name)):
        raise NamespaceError(f"network namespace {name!r} does not exist ({_file(name)})")
    return subprocess.Popen(exec_argv(name, argv, iproute2=iproute2), **popen_kwargs)


def holds(name: str | None, pid: int) -> bool:
    """Is process `pid` in namespace `name` (a name or a path; None: this process's)?"""
    target = "/proc/self/ns/net" if name is None else _file(name)
    try:
        a, b = os.stat(f"/proc/{pid}/ns/net"), os.stat(target)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def run(
    name: str, argv: Sequence[str], *, input: str | None = None, timeout: float = 10.0
) -> subprocess.CompletedProcess[str]:
    """Run `argv` inside namespace `name` to completion, output captured (text)."""
    if not exists(name):
        raise NamespaceError(f"network namespace {name!r} does not exist ({path(name)})")
    return subprocess.run(
        exec_argv(name, argv), input=input, capture_output=True, text=True, timeout=timeout
    )


def write_sysctl(key: str, value: str | int) -> None:
    """Write net.* sysctl `key` (dotted) for the calling thread's current namespace."""
    with open("/proc/sys/" + key.replace(".", "/"), "w", encoding="ascii") as f:
        f.write(str(value))


def read_sysctl(key: str) -> str:
    with open("/proc/sys/" + key.replace(".", "/"), encoding="ascii") as f:
        return f.read().strip()
