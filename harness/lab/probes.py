"""What this machine offers the lab, the reference daemons and the suites: one probe per item.

`run_all()` answers with one `Finding` per item (stable `name`, `status` "ok" | "missing" |
"fallback", a short `detail`, and the `fix` for what is missing), for `dmmconf doctor` and
for anyone who must say why the lab cannot start (`blocking(run_all())`).

Nothing of the host changes: the kernel probes (namespaces, veth, bridge, TUN, nftables,
NFLOG, raw and packet sockets, multicast routing) run in throw-away network namespaces
(`netns.in_private_namespace`); without root they run in a child process inside a user
namespace of its own (`unshare --user --map-root-user --net`), the rootless lab's way.
Every probe has a deadline (subprocesses a timeout, in-process probes a thread that is
waited for at most `timeout` seconds) and a probe that raises is "missing" with the error.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import importlib.metadata
import importlib.util
import json
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass

from harness.lab import datapath, netns

OK, MISSING, FALLBACK = "ok", "missing", "fallback"
STATUSES = (OK, MISSING, FALLBACK)

DEADLINE = 5.0  # seconds, for the whole run
_SUBPROCESS_TIMEOUT = 3.0


@dataclass(frozen=True)
class Finding:
    """One item's state. `fix` says what to do when it is missing (or how to leave a fallback)."""

    name: str
    status: str
    detail: str
    fix: str = ""
    group: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


class Missing(Exception):
    """Raised by a probe for a missing item whose fix differs from the probe's usual one."""

    def __init__(self, detail: str, fix: str) -> None:
        super().__init__(detail)
        self.fix = fix


# A check returns (status, detail) or (status, detail, fix); raising means missing.
Check = Callable[[], tuple[str, ...]]


@dataclass(frozen=True)
class Probe:
    name: str
    group: str
    check: Check
    fix: str  # for a missing item, unless the check raises Missing with its own
    in_netns: bool = False  # run inside a throw-away network namespace

    def run(self) -> Finding:
        try:
            out = netns.in_private_namespace(self.check) if self.in_netns else self.check()
        except Missing as exc:
            return Finding(self.name, MISSING, str(exc), exc.fix, self.group)
        except subprocess.TimeoutExpired as exc:
            return Finding(
                self.name, MISSING, f"no answer within {exc.timeout:g} s", self.fix, self.group
            )
        except Exception as exc:  # a probe that errors is a missing item, never a traceback
            return Finding(self.name, MISSING, _error(exc), self.fix, self.group)
        status, detail = out[0], out[1]
        fix = out[2] if len(out) > 2 else (self.fix if status == MISSING else "")
        return Finding(self.name, status, detail, fix, self.group)


def _error(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror} (errno {exc.errno})" + (f": {exc.filename}" if exc.filename else "")
    return f"{type(exc).__name__}: {exc}"


def _run(argv: Sequence[str], input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv),
        input=input,
        capture_output=True,
        text=True,
        timeout=_SUBPROCESS_TIMEOUT,
        stdin=None if input is not None else subprocess.DEVNULL,
    )


def _sbin_path() -> str:
    """PATH plus the sbin directories (Debian's daemons are there; a user's PATH may lack them)."""
    extra = ["/usr/sbin", "/usr/local/sbin", "/sbin"]
    return os.pathsep.join([os.environ.get("PATH", ""), *extra])


# ---------------------------------------------------------------------- privileges

_USERNS_FIX = (
    "unprivileged user namespaces are off: enable them "
    "(sysctl -w kernel.unprivileged_userns_clone=1, user.max_user_namespaces > 0, "
    "kernel.apparmor_restrict_unprivileged_userns=0)"
)


def unshare_works() -> str | None:
    """None when `unshare -rn true` (a rootless user + network namespace) works, else why not."""
    unshare = shutil.which("unshare", path=_sbin_path())
    if unshare is None:
        return "unshare (util-linux) is not installed"
    try:
        res = _run([unshare, "--user", "--map-root-user", "--net", "true"])
    except subprocess.TimeoutExpired:
        return f"unshare -rn true: no answer within {_SUBPROCESS_TIMEOUT:g} s"
    if res.returncode != 0:
        return f"unshare -rn true: {res.stderr.strip() or f'exit {res.returncode}'}"
    return None


def _privileges() -> tuple[str, ...]:
    lacking = netns.missing_privileges()
    if lacking is None:
        if netns.initial_user_namespace():
            return OK, f"root (uid {os.getuid()}): CAP_NET_ADMIN, CAP_NET_RAW, CAP_SYS_ADMIN"
        return OK, "uid 0 in a user namespace of its own (a rootless lab)"
    why_not = unshare_works()
    if why_not is None:
        return (
            FALLBACK,
            f"not root (uid {os.getuid()}); a rootless user namespace works (unshare -rn)",
            netns.PRIVILEGE_HINT,
        )
    raise Missing(f"{lacking}; rootless: {why_not}", f"{netns.PRIVILEGE_HINT}; {_USERNS_FIX}")


# ---------------------------------------------------------------------- kernel
# Each runs with the calling thread in a throw-away network namespace.


def _netns() -> tuple[str, ...]:
    socket.if_nametoindex("lo")
    return OK, "a private network namespace created and removed"


def _veth() -> tuple[str, ...]:
    from harness.lab import rtnl

    with rtnl.Rtnl() as nl:
        nl.add(rtnl.new_veth(rtnl.End("dcveth0"), rtnl.End("dcveth1", up=False)), "veth pair")
        nl.commit()
    return OK, "veth pair created in a private namespace"


def _bridge() -> tuple[str, ...]:
    from harness.lab import rtnl

    with rtnl.Rtnl() as nl:
        nl.add(rtnl.new_bridge("dcbr0", mcast_snooping=True), "bridge")
        nl.commit()
    return OK, "bridge (MLD snooping) created in a private namespace"


TUNSETIFF, IFF_TUN, IFF_NO_PI = 0x400454CA, 0x0001, 0x1000


def _tun() -> tuple[str, ...]:
    try:
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    except PermissionError as exc:
        raise Missing(
            f"{_error(exc)} (mode {os.stat('/dev/net/tun').st_mode & 0o777:04o})",
            "run as root, or let everyone open it as most distributions do: "
            "chmod 0666 /dev/net/tun",
        ) from None
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", b"dctun0", IFF_TUN | IFF_NO_PI))
    finally:
        os.close(fd)
    return OK, "/dev/net/tun opened, TUNSETIFF made a TUN device"


def nft_binary() -> str | None:
    return shutil.which("nft", path=_sbin_path())


_NFT_FIX = "apt-get install nftables"


def _nft(script: str) -> None:
    nft = nft_binary()
    if nft is None:
        raise Missing("nft (nftables) is not installed", _NFT_FIX)
    res = _run([nft, "-f", "-"], input=script)
    if res.returncode != 0:
        raise Missing(
            f"nft refused: {' '.join(res.stderr.split())[:160]}",
            "a kernel with nf_tables (CONFIG_NF_TABLES, CONFIG_NF_TABLES_INET)",
        )


def _nftables() -> tuple[str, ...]:
    _nft("table inet dmmconf_doctor {\n  chain c { type filter hook output priority 0; }\n}\n")
    return OK, "nft created a table and a chain in a private namespace"


NFLOG_GROUP = 4243


def _nflog() -> tuple[str, ...]:
    from harness.reference import nflog

    try:
        _nft(
            "table ip6 dmmconf_doctor {\n  chain c { type filter hook output priority 0;\n"
            f"    icmpv6 type mld2-listener-report log group {NFLOG_GROUP} drop; }}\n}}\n"
        )
    except Missing as exc:
        if nft_binary() is None:
            raise
        fix = "a kernel with nfnetlink_log (CONFIG_NETFILTER_NETLINK_LOG)"
        raise Missing(str(exc), fix) from None
    group = nflog.NflogGroup(NFLOG_GROUP)
    group.sock.close()
    return OK, f"an nft `log group {NFLOG_GROUP}` rule accepted, the group bound"


def _raw6(proto: int, what: str) -> Check:
    def check() -> tuple[str, ...]:
        socket.socket(socket.AF_INET6, socket.SOCK_RAW, proto).close()
        return OK, f"socket(AF_INET6, SOCK_RAW, {proto}) opened: {what}"

    return check


def _af_packet() -> tuple[str, ...]:
    socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x86DD)).close()
    return OK, "socket(AF_PACKET, SOCK_DGRAM, ETH_P_IPV6) opened"


_DATAPATH_NOTE = f"nothing to do; to force a path: {datapath.ENV}=kernel|userspace or --datapath"


def _mrt(family: str, config: str) -> Check:
    def check() -> tuple[str, ...]:
        why_not = datapath.kernel_support()[family]
        if why_not is None:
            return OK, f"kernel multicast routing ({config})"
        return FALLBACK, f"userspace data path in use: {why_not}", _DATAPATH_NOTE

    return check


def _datapath(requested: str | None) -> Check:
    def check() -> tuple[str, ...]:
        source = (
            f"--datapath {requested}"
            if requested
            else f"{datapath.ENV}={os.environ[datapath.ENV]}"
            if os.environ.get(datapath.ENV)
            else "auto"
        )
        try:
            chosen = datapath.choose(requested)
        except datapath.DatapathUnavailable as exc:
            raise Missing(
                f"{source}: {exc}", f"unset {datapath.ENV}, or set it to userspace or auto"
            ) from None
        except ValueError as exc:
            raise Missing(str(exc), f"{datapath.ENV}=auto|kernel|userspace") from None
        return OK, f"{source}: {chosen} (force: {datapath.ENV}=kernel|userspace, --datapath)"

    return check


# ---------------------------------------------------------------------- tools


def tshark_binary() -> str | None:
    """As harness.wire.tshark.tshark_path() finds it (DMMCONF_TSHARK, else PATH)."""
    return shutil.which(os.environ.get("DMMCONF_TSHARK") or "tshark")


def _tool(
    name: str, package: str, version_argv: Sequence[str], *, find: Callable[[], str | None]
) -> Check:
    def check() -> tuple[str, ...]:
        binary = find()
        if binary is None:
            raise Missing(f"{name} not found", f"apt-get install {package}")
        version = ""
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            res = _run([binary, *version_argv])
            version = _version(res.stdout + "\n" + res.stderr)
        return OK, f"{binary}" + (f" ({version})" if version else "")

    return check


def _version(text: str) -> str:
    for line in text.splitlines():
        m = re.search(r"\d+\.\d+(\.\d+)?([-.~+][\w.~+-]*)?", line)
        if m and "running as user" not in line.lower():
            return m.group(0)
    return ""


def _daemon(name: str, package: str) -> Callable[[], str | None]:
    """As harness.servers find their daemons (PATH plus the sbin directories)."""
    from harness.servers._process import ServerUnavailable, find_binary

    def find() -> str | None:
        try:
            return find_binary(name, package)
        except ServerUnavailable:
            return None

    return find


def _on_path(name: str, *extra: str) -> Callable[[], str | None]:
    """As the lab finds plain tools: PATH (plus `extra` directories)."""
    return lambda: shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), *extra]))


# ---------------------------------------------------------------------- python


def _python() -> tuple[str, ...]:
    v = sys.version_info
    text = f"{sys.executable} {v.major}.{v.minor}.{v.micro}"
    if v < (3, 11):
        raise Missing(f"{text}: the project needs Python >= 3.11", "apt-get install python3.11")
    return OK, text


def requirements() -> list[str]:
    """The project's runtime requirements (installed metadata, else pyproject.toml)."""
    try:
        reqs = importlib.metadata.requires("dmmconf") or []
        return [r for r in reqs if "extra ==" not in r]
    except importlib.metadata.PackageNotFoundError:
        pass
    import tomllib

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "pyproject.toml"), "rb") as f:
        return list(tomllib.load(f)["project"]["dependencies"])


def _distribution_name(requirement: str) -> str:
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return m.group(1) if m else requirement.strip()


def _satisfies(requirement: str, version: str) -> bool | None:
    try:
        from packaging.requirements import Requirement
    except ImportError:
        return None
    return Requirement(requirement).specifier.contains(version, prereleases=True)


def _top_level(dist: importlib.metadata.Distribution) -> list[str]:
    text = dist.read_text("top_level.txt")
    if text:
        return [m for m in text.split() if m]
    names = set()
    for f in dist.files or ():
        parts = f.parts
        if len(parts) > 1 and parts[0].isidentifier() and not parts[0].endswith(".dist-info"):
            names.add(parts[0])
        elif len(parts) == 1 and parts[0].endswith(".py"):
            names.add(parts[0][:-3])
    return sorted(names)


def _package(requirement: str) -> Check:
    name = _distribution_name(requirement)
    fix = f"{sys.executable} -m pip install '{requirement}' (or ./dev setup)"

    def check() -> tuple[str, ...]:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            raise Missing(f"{name} is not installed (needs {requirement})", fix) from None
        version = dist.version
        if _satisfies(requirement, version) is False:
            raise Missing(f"{name} {version} installed, the project needs {requirement}", fix)
        modules = _top_level(dist)
        lost = [m for m in modules if importlib.util.find_spec(m) is None]
        if modules and len(lost) == len(modules):
            raise Missing(f"{name} {version}: module {', '.join(lost)} not importable", fix)
        return OK, f"{name} {version}" + (f" ({requirement})" if requirement != name else "")

    return check


# ---------------------------------------------------------------------- the list

KERNEL = "kernel"


def kernel_probes(requested_datapath: str | None = None) -> list[Probe]:
    """The probes that need namespace privileges (run in throw-away namespaces)."""
    fix_kernel = "a kernel with {} (or run where it is built in)".format
    return [
        Probe("netns", KERNEL, _netns, fix_kernel("network namespaces (CONFIG_NET_NS)"), True),
        Probe("veth", KERNEL, _veth, fix_kernel("veth (CONFIG_VETH)"), True),
        Probe("bridge", KERNEL, _bridge, fix_kernel("bridging (CONFIG_BRIDGE)"), True),
        Probe("tun", KERNEL, _tun, fix_kernel("TUN devices (CONFIG_TUN, /dev/net/tun)"), True),
        Probe("nftables", KERNEL, _nftables, _NFT_FIX, True),
        Probe("nflog", KERNEL, _nflog, fix_kernel("nfnetlink_log"), True),
        Probe(
            "raw-ipv6-41",
            KERNEL,
            _raw6(41, "the userspace IPv6-in-IPv6 tunnels"),
            fix_kernel("raw IPv6 sockets"),
            True,
        ),
        Probe(
            "raw-ipv6-60",
            KERNEL,
            _raw6(60, "Binding Updates with a Home Address option"),
            fix_kernel("raw IPv6 sockets"),
            True,
        ),
        Probe(
            "raw-ipv6-raw",
            KERNEL,
            _raw6(socket.IPPROTO_RAW, "whole IPv6 packets sent (IPPROTO_RAW)"),
            fix_kernel("raw IPv6 sockets"),
            True,
        ),
        Probe("af-packet", KERNEL, _af_packet, fix_kernel("packet sockets (CONFIG_PACKET)"), True),
        Probe("mrt6", KERNEL, _mrt("ipv6", "MRT6, CONFIG_IPV6_MROUTE"), "", False),
        Probe("mrt", KERNEL, _mrt("ipv4", "MRT, CONFIG_IP_MROUTE"), "", False),
        Probe("datapath", KERNEL, _datapath(requested_datapath), "", False),
    ]


def other_probes() -> list[Probe]:
    """The probes any user may run where it is: privileges, Debian tools, Python packages."""
    tools = [
        ("tshark", "tshark", ["--version"], tshark_binary),
        ("named", "bind9", ["-v"], _daemon("named", "bind9")),
        ("kea-dhcp6", "kea-dhcp6-server", ["-v"], _daemon("kea-dhcp6", "kea-dhcp6-server")),
        ("kea-dhcp4", "kea-dhcp4-server", ["-v"], _daemon("kea-dhcp4", "kea-dhcp4-server")),
        ("dhcrelay", "isc-dhcp-relay", ["--version"], _daemon("dhcrelay", "isc-dhcp-relay")),
        ("nsenter", "util-linux", ["--version"], _on_path("nsenter", "/usr/bin")),
        ("ip", "iproute2", ["-V"], _on_path("ip")),
        ("nft", "nftables", ["--version"], nft_binary),
    ]
    probes = [Probe("privileges", "privileges", _privileges, netns.PRIVILEGE_HINT)]
    probes += [
        Probe(name, "tools", _tool(name, pkg, argv, find=find), f"apt-get install {pkg}")
        for name, pkg, argv, find in tools
    ]
    probes.append(Probe("python", "python", _python, "apt-get install python3.11"))
    try:
        reqs = requirements()
    except Exception as exc:
        reqs = []
        probes.append(Probe("python:requirements", "python", _raise(exc), "reinstall: ./dev setup"))
    probes += [
        Probe(f"python:{_distribution_name(r).lower()}", "python", _package(r), "") for r in reqs
    ]
    return probes


def _raise(exc: Exception) -> Check:
    def check() -> tuple[str, ...]:
        raise exc

    return check


# ---------------------------------------------------------------------- running


def run_probes(probes: Iterable[Probe], timeout: float = DEADLINE) -> list[Finding]:
    """Each probe in a thread of its own, all at once; the ones not done in `timeout` s are
    missing ("no answer"). Findings in the probes' order."""
    probes = list(probes)
    results: list[Finding | None] = [None] * len(probes)

    def work(i: int, probe: Probe) -> None:
        results[i] = probe.run()

    threads = [
        threading.Thread(target=work, args=(i, p), daemon=True, name=f"probe-{p.name}")
        for i, p in enumerate(probes)
    ]
    for t in threads:
        t.start()
    end = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, end - time.monotonic()))
    return [
        r
        if r is not None
        else Finding(p.name, MISSING, f"no answer within {timeout:g} s", p.fix, p.group)
        for p, r in zip(probes, results, strict=True)
    ]


_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000
PR_SET_PDEATHSIG = 1


class _RootlessChild:
    """The kernel probes in a forked child inside a user + network namespace of its own
    (what `unshare -rn` makes), for a process without the privileges: the child is root
    there, so it sees what a rootless lab would. It runs the probes one after the other and
    sends each finding as a JSON line; the parent stops waiting at the deadline and kills it.

    Forked, not exec'd: the interpreter may live where a user namespace's root cannot
    reach (a home directory of mode 0700), and a fork needs no binary at all. run_all()
    forks before it starts any thread of its own; the child runs no thread.
    """

    def __init__(self, probes: list[Probe]) -> None:
        self.probes = probes
        rfd, wfd = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the child: never returns
            os.close(rfd)
            self._child(wfd)
        os.close(wfd)
        self.rfd = rfd

    def _child(self, wfd: int) -> None:
        try:
            # Dies with the thread that forked it, and holds none of the parent's output
            # open (a fork of a pytest-xdist worker must not keep the run's stdout).
            _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            uid, gid = os.getuid(), os.getgid()
            if _libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"unshare(CLONE_NEWUSER): {os.strerror(err)}")
            for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"),
                               ("gid_map", f"0 {gid} 1")):  # fmt: skip
                with open(f"/proc/self/{name}", "w", encoding="ascii") as f:
                    f.write(text)
            for probe in self.probes:
                os.write(wfd, (json.dumps(probe.run().as_dict()) + "\n").encode())
        except BaseException as exc:
            with contextlib.suppress(BaseException):
                os.write(wfd, (json.dumps({"error": _error(exc)}) + "\n").encode())
        finally:
            os._exit(0)

    def results(self, timeout: float) -> list[Finding]:
        end = time.monotonic() + timeout
        data, error = b"", None
        try:
            while True:
                left = end - time.monotonic()
                if left <= 0 or not select.select([self.rfd], [], [], left)[0]:
                    error = f"no answer within {timeout:g} s"
                    break
                chunk = os.read(self.rfd, 1 << 16)
                if not chunk:
                    break
                data += chunk
        finally:
            os.close(self.rfd)
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.waitpid(self.pid, 0)
        found: dict[str, Finding] = {}
        for line in data.decode(errors="replace").splitlines():
            with contextlib.suppress(ValueError, TypeError):
                d = json.loads(line)
                if "error" in d:
                    error = f"no user namespace: {d['error']}"
                else:
                    found[d["name"]] = Finding(**d)
        if error is None and len(found) < len(self.probes):
            error = "the probing child ended early"
        return [
            found.get(p.name)
            or Finding(p.name, MISSING, f"not probed: {error}", "see privileges", p.group)
            for p in self.probes
        ]


def run_all(requested_datapath: str | None = None, timeout: float = DEADLINE) -> list[Finding]:
    """Every finding: privileges, kernel features, Debian tools, Python packages.

    The kernel probes run here in throw-away namespaces when this process has the
    privileges, else in a child inside a user namespace of its own (forked first, before
    this function starts its threads)."""
    probes = kernel_probes(requested_datapath)
    child = None if netns.missing_privileges() is None else _RootlessChild(probes)
    box: list[list[Finding]] = []
    kernel = None
    if child is None:
        kernel = threading.Thread(
            target=lambda: box.append(run_probes(probes, timeout)), daemon=True
        )
        kernel.start()
    others = run_probes(other_probes(), timeout)
    if child is not None:
        box.append(child.results(timeout))
    elif kernel is not None:
        kernel.join(timeout + 0.5)
    kernel_found = (
        box[0]
        if box
        else [
            Finding(p.name, MISSING, f"no answer within {timeout:g} s", p.fix, p.group)
            for p in probes
        ]
    )
    return others[:1] + kernel_found + others[1:]


GROUP_TITLES = {
    "privileges": "privileges",
    KERNEL: "kernel (probed in throw-away network namespaces)",
    "tools": "Debian tools",
    "python": "Python",
}


def blocking(findings: Iterable[Finding]) -> list[Finding]:
    """The findings that stop the lab or the suites: missing, with no fallback."""
    return [f for f in findings if f.status == MISSING]


def table(findings: Sequence[Finding]) -> str:
    """An aligned text table, grouped; each missing item's fix (and each fallback's note)
    on the line below it."""
    width = max((len(f.name) for f in findings), default=4)
    lines = [f"  {'item':<{width}}  {'status':<8}  detail"]
    group = None
    for f in findings:
        if f.group != group:
            group = f.group
            lines.append(f"{GROUP_TITLES.get(group, group)}:")
        lines.append(f"  {f.name:<{width}}  {f.status:<8}  {f.detail}")
        if f.fix and f.status != OK:
            label = "fix" if f.status == MISSING else "note"
            lines.append(f"  {'':<{width}}  {'':<8}  {label}: {f.fix}")
    counts = {s: sum(1 for f in findings if f.status == s) for s in STATUSES}
    lines.append(f"{counts[OK]} ok, {counts[FALLBACK]} fallback in use, {counts[MISSING]} missing")
    return "\n".join(lines)
