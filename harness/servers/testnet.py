"""A small network for the real servers until the lab's topology hosts them.

`ServerNet`: one client namespace, and per service link of the plan (dns, dhcp) a
server namespace joined to the client by a veth. The server end has the link's host
addresses (plan.dns.host6/host4, ...), the client end the core's (core6/core4), so the
client stands where the core router will. Names are ``dmms-<pid>-...``: they never clash
with the lab's ``dmm-`` namespaces, nor between pytest-xdist workers. DAD is off in
these namespaces, so addresses are usable as soon as they are configured.

A run killed with kill -9 leaves its namespaces and directories behind (its daemons die
with it, see _process); the next `server_net` removes those whose pid is gone.

`not_run_if_unavailable` turns a missing server binary into a not-run verdict with
the install hint (harness.verdicts.not_run), never a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.lab import netns as _netns
from harness.lab import plan as lab_plan
from harness.servers._process import DIR_PREFIX, ServerUnavailable, wait_until
from harness.verdicts import not_run

NS_PREFIX = "dmms-"  # "dmm-" is the lab's; the extra "s" keeps the two apart
SERVER_IFNAME = "eth0"
CLIENT_IFINDEX_BASE = 1000
LINK_TIMEOUT = 3.0
RT_SCOPE_LINK = 253
_OWNED = re.compile(rf"^{re.escape(NS_PREFIX)}(\d+)-")


def run_prefix(pid: int | None = None) -> str:
    return f"{NS_PREFIX}{os.getpid() if pid is None else pid}-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_stale() -> list[str]:
    """Remove namespaces and private directories of ``dmms-<pid>-`` runs whose pid is dead."""

    removed: list[str] = []
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(_netns.NETNS_RUN_DIR):
            m = _OWNED.match(name)
            if m and not _pid_alive(int(m[1])):
                with contextlib.suppress(OSError):
                    _netns.delete(name)
                    removed.append(name)
    tmp = Path(tempfile.gettempdir())
    for path in tmp.glob(f"{DIR_PREFIX}*"):
        m = _OWNED.match(path.name)
        if m and path.is_dir() and not _pid_alive(int(m[1])):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(str(path))
    return removed


def _wait_link_ready(ns: str, ifname: str, deadline: float) -> None:
    """Carrier up (operstate UP) and a link-local address: the link carries DHCPv6."""
    from pyroute2 import IPRoute

    with _netns.entered(ns), IPRoute() as ipr:
        index = ipr.link_lookup(ifname=ifname)[0]

        def ready() -> bool:
            link = ipr.get_links(index)[0]
            addrs = ipr.get_addr(index=index, family=socket.AF_INET6)
            return link.get("operstate") == "UP" and any(
                a.get("scope") == RT_SCOPE_LINK for a in addrs
            )

        wait_until(ready, max(0.0, deadline - time.monotonic()), f"link {ifname} in {ns} up")


def _write_sysctl(path: str, value: str) -> None:
    # /proc/sys/net is the calling thread's namespace's (call inside _netns.entered).
    with open(path, "w") as f:
        f.write(value)


@dataclass(frozen=True)
class ServiceSide:
    """One service link: a server namespace and the client's interface towards it."""

    link: lab_plan.ServiceLink
    netns: str  # the server's namespace
    server_if: str  # in `netns`
    client_if: str  # in the client namespace

    @property
    def server6(self) -> ipaddress.IPv6Address:
        return self.link.host6

    @property
    def server4(self) -> ipaddress.IPv4Address:
        return self.link.host4

    @property
    def client6(self) -> ipaddress.IPv6Address:
        return self.link.core6

    @property
    def client4(self) -> ipaddress.IPv4Address:
        return self.link.core4


class ServerNet:
    """A client namespace and one server namespace per service link, joined by veths."""

    def __init__(self, services: Sequence[lab_plan.ServiceLink], prefix: str | None = None) -> None:
        self.prefix = prefix or run_prefix()
        self.client = f"{self.prefix}cli"
        self.sides: dict[str, ServiceSide] = {
            s.name: ServiceSide(s, f"{self.prefix}{s.name}", SERVER_IFNAME, f"{s.name}0")
            for s in services
        }
        self._made: list[str] = []

    def side(self, name: str) -> ServiceSide:
        return self.sides[name]

    def up(self) -> ServerNet:
        from pyroute2 import IPRoute

        try:
            for name in [self.client, *(s.netns for s in self.sides.values())]:
                _netns.create(name)
                self._made.append(name)
                with _netns.entered(name):
                    for scope in ("all", "default"):
                        _write_sysctl(f"/proc/sys/net/ipv6/conf/{scope}/accept_dad", "0")
                    with IPRoute() as ipr:
                        ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
            for n, side in enumerate(self.sides.values()):
                fd = os.open(_netns.path(side.netns), os.O_RDONLY)
                try:
                    with _netns.entered(self.client), IPRoute() as ipr:
                        # The client end gets an ifindex no fresh namespace hands out, so
                        # the two ends differ: with equal ifindexes the kernel's linkwatch
                        # treats the carrier change as not urgent and delays it up to 1 s.
                        ipr.link(
                            "add",
                            ifname=side.client_if,
                            index=CLIENT_IFINDEX_BASE + n,
                            kind="veth",
                            peer={"ifname": side.server_if, "net_ns_fd": fd},
                        )
                finally:
                    os.close(fd)
                self._configure(
                    self.client,
                    side.client_if,
                    side.link.prefix6,
                    side.client6,
                    side.link.subnet4,
                    side.client4,
                )
                self._configure(
                    side.netns,
                    side.server_if,
                    side.link.prefix6,
                    side.server6,
                    side.link.subnet4,
                    side.server4,
                )
            deadline = time.monotonic() + LINK_TIMEOUT
            for side in self.sides.values():
                _wait_link_ready(self.client, side.client_if, deadline)
                _wait_link_ready(side.netns, side.server_if, deadline)
        except BaseException:
            self.down()
            raise
        return self

    @staticmethod
    def _configure(
        ns: str,
        ifname: str,
        prefix6: ipaddress.IPv6Network,
        addr6: ipaddress.IPv6Address,
        subnet4: ipaddress.IPv4Network,
        addr4: ipaddress.IPv4Address,
    ) -> None:
        from pyroute2 import IPRoute

        with _netns.entered(ns), IPRoute() as ipr:
            index = ipr.link_lookup(ifname=ifname)[0]
            ipr.addr("add", index=index, address=str(addr6), prefixlen=prefix6.prefixlen)
            ipr.addr("add", index=index, address=str(addr4), prefixlen=subnet4.prefixlen)
            ipr.link("set", index=index, state="up")

    def down(self) -> None:
        """Delete the namespaces (their veths go with them). Processes in them must be gone."""

        for name in reversed(self._made):
            try:
                _netns.delete(name)
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    raise
        self._made.clear()

    def __enter__(self) -> ServerNet:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()


@contextlib.contextmanager
def not_run_if_unavailable() -> Iterator[None]:
    """A ServerUnavailable in the block ends the test not-run, with the install hint."""
    try:
        yield
    except ServerUnavailable as exc:
        not_run(str(exc), hint=exc.hint)
