"""The reference Mobile Node's view of its kernel (I/O): `ip -batch`, sysctls, the sessions of
/proc/net/{tcp6,udp6} (OPEN-15), and carrier changes from rtnetlink."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import socket
import struct
import subprocess
from collections.abc import Callable, Iterable


def ip_batch(lines: list[str], log: Callable[[str], None], family: str = "-6") -> None:
    """Run `ip` commands in one process (`ip -batch`): a handover changes addresses, a route
    and a rule at once, and one fork is a few milliseconds."""
    if not lines:
        return
    res = subprocess.run(
        ["ip", family, "-force", "-batch", "-"],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=10,
    )
    for err in res.stderr.splitlines():
        if err.strip() and "File exists" not in err and "Cannot assign" not in err:
            log(f"ip: {err.strip()}")


def sysctl(path: str, value: str) -> None:
    with contextlib.suppress(OSError), open(f"/proc/sys/{path}", "w") as f:
        f.write(value)


# ---------------------------------------------------------------- kernel state readers

_TCP_GONE = {"06", "07", "0A"}  # TIME_WAIT, CLOSE, LISTEN: not a session


def _proc_sockets(path: str) -> Iterable[tuple[ipaddress.IPv6Address, str, bool]]:
    """(local address, state, has a peer) of each socket in /proc/net/{tcp6,udp6} that a
    process still holds (an orphan, inode 0, closing on its own, is no session)."""
    try:
        with open(path) as f:
            lines = f.readlines()[1:]
    except OSError:
        return
    for line in lines:
        parts = line.split()
        if len(parts) < 4:
            continue
        local, remote, state = parts[1], parts[2], parts[3]
        if len(parts) > 9 and parts[9] == "0":
            continue
        raw = bytes.fromhex(local.split(":")[0])
        # the kernel prints the address as four host-order 32-bit words
        addr = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
        has_peer = remote.split(":")[1] != "0000"
        yield ipaddress.IPv6Address(addr), state, has_peer


def session_peers(local: ipaddress.IPv6Address) -> set[ipaddress.IPv6Address]:
    """The remote addresses of the TCP connections of `local` (a fault's route
    optimisation needs its correspondents)."""
    out: set[ipaddress.IPv6Address] = set()
    try:
        with open("/proc/net/tcp6") as f:
            lines = f.readlines()[1:]
    except OSError:
        return out
    for line in lines:
        parts = line.split()
        if len(parts) < 4:
            continue
        words = [bytes.fromhex(x.split(":")[0]) for x in parts[1:3]]
        mine, peer = (b"".join(w[i : i + 4][::-1] for i in range(0, 16, 4)) for w in words)
        if ipaddress.IPv6Address(mine) == local and any(peer):
            out.add(ipaddress.IPv6Address(peer))
    return out


def active_session_addresses() -> set[ipaddress.IPv6Address]:
    """Local addresses of open TCP connections and connected UDP sockets (OPEN-15)."""
    out = set()
    for addr, state, _peer in _proc_sockets("/proc/net/tcp6"):
        if state not in _TCP_GONE:
            out.add(addr)
    for addr, _state, peer in _proc_sockets("/proc/net/udp6"):
        if peer:
            out.add(addr)
    return {a for a in out if not a.is_link_local and not a.is_unspecified}


class LinkEvents:
    """Carrier changes from rtnetlink (RTMGRP_LINK), as (iface, carrier up) pairs."""

    def __init__(self) -> None:
        from pyroute2 import IPRoute

        self._ipr = IPRoute()
        self._ipr.bind()
        self._carrier: dict[str, bool] = {}

    def fileno(self) -> int:
        return int(self._ipr.fileno())

    def drain(self) -> list[tuple[str, bool]]:
        out = []
        for msg in self._ipr.get():
            if msg.get("event") != "RTM_NEWLINK":
                continue
            name = msg.get_attr("IFLA_IFNAME")
            up = msg.get_attr("IFLA_CARRIER") == 1 and msg.get_attr("IFLA_OPERSTATE") == "UP"
            if name is not None and self._carrier.get(name) != up:
                self._carrier[name] = up
                out.append((name, up))
        return out

    def close(self) -> None:
        self._ipr.close()


RTMGRP_LINK, RTM_NEWLINK, IFLA_IFNAME, IFF_RUNNING = 0x1, 16, 3, 0x40


class CarrierWatch:
    """Carrier changes of `ifaces` as (iface, up) pairs, read from an rtnetlink socket of
    our own (struct-parsed; every message of every datagram). `LinkEvents` above, on
    pyroute2 0.9's IPRoute.get(), was seen to deliver no RTM_NEWLINK of a handover at all
    (2026-12), so the DHCPv4 client (draft §8) does not stand on it."""

    def __init__(self, ifaces: Iterable[str]) -> None:
        self.ifaces = set(ifaces)
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self._sock.bind((0, RTMGRP_LINK))
        self._sock.setblocking(False)
        self._carrier: dict[str, bool] = {}

    def fileno(self) -> int:
        return self._sock.fileno()

    def drain(self) -> list[tuple[str, bool]]:
        out: list[tuple[str, bool]] = []
        while True:
            try:
                data = self._sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return out
            off = 0
            while off + 32 <= len(data):
                length, kind = struct.unpack_from("=IH", data, off)
                if length < 16:
                    break
                if kind == RTM_NEWLINK:
                    flags = struct.unpack_from("=I", data, off + 24)[0]
                    name = _ifname(data[off + 32 : off + length])
                    up = bool(flags & IFF_RUNNING)
                    if name in self.ifaces and self._carrier.get(name) != up:
                        self._carrier[name] = up
                        out.append((name, up))
                off += (length + 3) & ~3

    def close(self) -> None:
        self._sock.close()


def _ifname(attrs: bytes) -> str | None:
    off = 0
    while off + 4 <= len(attrs):
        length, kind = struct.unpack_from("=HH", attrs, off)
        if length < 4:
            return None
        if kind == IFLA_IFNAME:
            return attrs[off + 4 : off + length].split(b"\0", 1)[0].decode(errors="replace")
        off += (length + 3) & ~3
    return None


def nft_script(table: str, ifaces: tuple[str, ...], mark: int, group: int) -> str:
    """The MN's nftables tables, replaced (no `ifaces`: removed): type 2 routing headers
    dropped before the input hook, and the kernel's MLDv2 Reports and IGMPv3 Membership
    Reports (draft §8) on `ifaces` that do not carry `mark` logged to NFLOG `group` and
    dropped."""
    script = f"table ip6 {table} {{}}\ndelete table ip6 {table}\n"
    script += f"table ip {table} {{}}\ndelete table ip {table}\n"
    if ifaces:
        names = ", ".join(f'"{i}"' for i in ifaces)
        held = f"meta mark != {mark:#x} log group {group} drop; }}\n"
        script += (
            f"table ip6 {table} {{\n"
            "  chain in { type filter hook prerouting priority -300; policy accept;\n"
            "    rt type 2 drop; }\n"
            "  chain out { type filter hook output priority 0; policy accept;\n"
            f"    oifname {{ {names} }} icmpv6 type mld2-listener-report {held}"
            "}\n"
            f"table ip {table} {{\n"
            "  chain out { type filter hook output priority 0; policy accept;\n"
            f"    oifname {{ {names} }} igmp type membership-report-v3 {held}"
            "}\n"
        )
    return script


def find_nft() -> str | None:
    return shutil.which("nft", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"]))


def run_nft(nft: str, script: str) -> str | None:
    """Run an nft script; None when done, else nft's complaint."""
    res = subprocess.run([nft, "-f", "-"], input=script, text=True, capture_output=True, timeout=10)
    return None if res.returncode == 0 else res.stderr.strip()
