"""A multicast receiver: joins groups with ordinary sockets and reports every datagram.

    python -m harness.apps.mcast_recv --iface mn0 --group G [--group G2] [--source S ...]
                                      [--exclude S ...] [--port 5000] [--family 6|4]

What a real application does, through the socket API of RFC 3493 §5.2 and RFC 3678 §5.2
(the kernel's MLDv2 / IGMPv3 host stack then reports it, RFC 3810 §6 / RFC 3376 §5):
  * any-source:   IPV6_JOIN_GROUP (IP_ADD_MEMBERSHIP), or MCAST_JOIN_GROUP with --api rfc3678;
  * source-specific (INCLUDE): MCAST_JOIN_SOURCE_GROUP once per --source;
  * EXCLUDE:      MCAST_JOIN_GROUP, then MCAST_BLOCK_SOURCE once per --exclude.
--source and --exclude apply to every --group of the command line. The socket binds
--port on the wildcard address (SO_REUSEADDR: several receivers may share a port) with
IPV6_MULTICAST_ALL (IP_MULTICAST_ALL) off, so it gets only the groups it joined itself,
not whatever another socket of the namespace joined (`--multicast-all` keeps Linux's
default, on).

Events (one JSON object a line, each with "t" = time.time() and "mono" = time.monotonic()):
  joined  {group, mode: asm|include|exclude, sources, added, ifindex}
  left    {group, removed, mode (what is left: include/exclude/asm, or none), sources, ifindex}
  ready   {port, family, ifindex, iface, memberships}
  data    {dst, group (when dst is multicast), src, sport, ifindex, hops, len, kt (kernel
           receive time stamp), and when the payload is mcast_send's: stream, seq, sent,
           sent_mono}
  stats   {received, by_group}   (on `stats` and before exit)
  error   {what, error}          exit {reason, status}
Commands on stdin, one a line:
  join G [S ...] [iface=NAME]    any-source, or INCLUDE the sources (added to those joined)
  exclude G S [S ...] [iface=N]  EXCLUDE mode: any-source but these (added to those blocked)
  unblock G S [S ...]            allow blocked sources again
  leave G [S ...]                leave the group (or only these sources of an INCLUDE join)
  stats | quit
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import struct
from dataclasses import dataclass, field
from typing import Any

from harness.apps import _common
from harness.apps._common import Fatal, emit, error

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# linux/in6.h, linux/in.h, asm-generic/socket.h: not all are in Python's socket module.
IPV6_MULTICAST_ALL = 29
IPV6_RECVPKTINFO, IPV6_PKTINFO = 49, 50
IPV6_RECVHOPLIMIT, IPV6_HOPLIMIT = 51, 52
IP_TTL, IP_PKTINFO, IP_RECVTTL = 2, 8, 12
IP_MULTICAST_ALL = 49
SO_TIMESTAMPNS = 35
MCAST_JOIN_GROUP, MCAST_BLOCK_SOURCE, MCAST_UNBLOCK_SOURCE = 42, 43, 44
MCAST_LEAVE_GROUP, MCAST_JOIN_SOURCE_GROUP, MCAST_LEAVE_SOURCE_GROUP = 45, 46, 47

DEFAULT_PORT = 5000
HOP_LIMIT_CMSGS = ((socket.IPPROTO_IPV6, IPV6_HOPLIMIT), (socket.IPPROTO_IP, IP_TTL))


def sockaddr(addr: IPAddress) -> bytes:
    """struct sockaddr_in(6) padded to struct sockaddr_storage (128 octets)."""
    if addr.version == 6:
        raw = struct.pack("=HHI16sI", socket.AF_INET6, 0, 0, addr.packed, 0)
    else:
        raw = struct.pack("=HH4s", socket.AF_INET, 0, addr.packed)
    return raw.ljust(128, b"\0")


def group_req(ifindex: int, group: IPAddress) -> bytes:
    """struct group_req (RFC 3678 §5.2.1): interface, then the group (aligned to 8)."""
    return struct.pack("=I4x", ifindex) + sockaddr(group)


def group_source_req(ifindex: int, group: IPAddress, source: IPAddress) -> bytes:
    """struct group_source_req (RFC 3678 §5.2.2)."""
    return struct.pack("=I4x", ifindex) + sockaddr(group) + sockaddr(source)


@dataclass
class Membership:
    group: IPAddress
    ifindex: int
    mode: str  # asm, include or exclude
    sources: list[IPAddress] = field(default_factory=list)
    api: str = "rfc3678"  # how the any-source join was made: rfc3493 or rfc3678

    def describe(self) -> dict[str, Any]:
        return {
            "group": str(self.group),
            "mode": self.mode,
            "sources": [str(s) for s in self.sources],
            "ifindex": self.ifindex,
        }


class Receiver:
    def __init__(self, args: argparse.Namespace) -> None:
        self.family = args.family
        self.level = socket.IPPROTO_IPV6 if self.family == 6 else socket.IPPROTO_IP
        self.api = args.api
        self.ifindex = _common.ifindex(args.iface)
        self.members: dict[tuple[IPAddress, int], Membership] = {}
        self.received = 0
        self.by_group: dict[str, int] = {}
        af = socket.AF_INET6 if self.family == 6 else socket.AF_INET
        self.sock = socket.socket(af, socket.SOCK_DGRAM)
        s = self.sock
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, args.rcvbuf)
            s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            if self.family == 6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
                s.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1)
                s.setsockopt(socket.IPPROTO_IPV6, IPV6_MULTICAST_ALL, int(args.multicast_all))
            else:
                s.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
                s.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
                s.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, int(args.multicast_all))
            bind = args.bind or ("::" if self.family == 6 else "0.0.0.0")
            s.bind((bind, args.port))
        except OSError as exc:
            raise Fatal("socket", exc) from None
        s.setblocking(False)
        self.port = s.getsockname()[1]

    # ------------------------------------------------------------ memberships

    def _addr(self, text: str) -> IPAddress:
        a = ipaddress.ip_address(text.split("%")[0])
        if a.version != self.family:
            raise ValueError(f"{a} is not an IPv{self.family} address (--family {self.family})")
        return a

    def _set(self, opt: int, value: bytes) -> None:
        self.sock.setsockopt(self.level, opt, value)

    def _asm_join(self, m: Membership) -> None:
        if self.api == "rfc3493":
            if self.family == 6:
                value = m.group.packed + struct.pack("=I", m.ifindex)
                self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, value)
            else:  # struct ip_mreqn: group, local address (any), interface index
                value = struct.pack("=4s4si", m.group.packed, b"\0" * 4, m.ifindex)
                self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, value)
        else:
            self._set(MCAST_JOIN_GROUP, group_req(m.ifindex, m.group))
        m.api = self.api

    def _asm_leave(self, m: Membership) -> None:
        if m.api == "rfc3493":
            if self.family == 6:
                value = m.group.packed + struct.pack("=I", m.ifindex)
                self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_LEAVE_GROUP, value)
            else:
                value = struct.pack("=4s4si", m.group.packed, b"\0" * 4, m.ifindex)
                self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_DROP_MEMBERSHIP, value)
        else:
            self._set(MCAST_LEAVE_GROUP, group_req(m.ifindex, m.group))

    def _target(self, words: list[str]) -> tuple[list[str], int]:
        """The command's words without an `iface=` one, and the interface it names."""
        ifindex = self.ifindex
        rest = []
        for w in words:
            if w.startswith("iface="):
                ifindex = _common.ifindex(w.split("=", 1)[1])
            else:
                rest.append(w)
        return rest, ifindex

    def join(self, group: str, sources: list[str], ifindex: int, exclude: bool = False) -> None:
        g = self._addr(group)
        srcs = [self._addr(s) for s in sources]
        key = (g, ifindex)
        m = self.members.get(key)
        added: list[IPAddress] = []
        if exclude:
            if not srcs:
                raise ValueError("exclude needs at least one source")
            if m is None:
                m = Membership(g, ifindex, "asm")
                self._set(MCAST_JOIN_GROUP, group_req(ifindex, g))
                m.api = "rfc3678"
                self.members[key] = m
            elif m.mode == "include":
                raise ValueError(f"{g} is joined in INCLUDE mode: leave it first")
            for s in srcs:
                if s not in m.sources:
                    self._set(MCAST_BLOCK_SOURCE, group_source_req(ifindex, g, s))
                    m.sources.append(s)
                    added.append(s)
            m.mode = "exclude"
        elif srcs:
            if m is not None and m.mode != "include":
                raise ValueError(f"{g} is joined in {m.mode} mode: leave it first")
            if m is None:
                m = Membership(g, ifindex, "include")
                self.members[key] = m
            for s in srcs:
                if s not in m.sources:
                    self._set(MCAST_JOIN_SOURCE_GROUP, group_source_req(ifindex, g, s))
                    m.sources.append(s)
                    added.append(s)
        else:
            if m is not None:
                raise ValueError(f"{g} is already joined ({m.mode})")
            m = Membership(g, ifindex, "asm")
            self._asm_join(m)
            self.members[key] = m
        emit("joined", added=[str(s) for s in added], **m.describe())

    def unblock(self, group: str, sources: list[str], ifindex: int) -> None:
        g = self._addr(group)
        m = self.members.get((g, ifindex))
        if m is None or m.mode != "exclude":
            raise ValueError(f"{g} is not joined in EXCLUDE mode")
        removed = []
        for s in map(self._addr, sources):
            if s in m.sources:
                self._set(MCAST_UNBLOCK_SOURCE, group_source_req(ifindex, g, s))
                m.sources.remove(s)
                removed.append(s)
        if not m.sources:
            m.mode = "asm"
        emit("unblocked", removed=[str(s) for s in removed], **m.describe())

    def leave(self, group: str, sources: list[str], ifindex: int | None) -> None:
        g = self._addr(group)
        keys = [k for k in self.members if k[0] == g and (ifindex is None or k[1] == ifindex)]
        if not keys:
            raise ValueError(f"{g} is not joined")
        for key in keys:
            m = self.members[key]
            if sources:
                if m.mode != "include":
                    raise ValueError(f"{g} is joined in {m.mode} mode: leave it whole")
                gone = [self._addr(s) for s in sources]
            elif m.mode == "include":
                gone = list(m.sources)
            else:
                gone = []
            if m.mode == "include":
                # A real application drops its sources one by one (RFC 3678 §5.2.2); the
                # last one ends the membership.
                removed = []
                for s in gone:
                    if s in m.sources:
                        self._set(MCAST_LEAVE_SOURCE_GROUP, group_source_req(m.ifindex, g, s))
                        m.sources.remove(s)
                        removed.append(s)
                gone = removed
                if not m.sources:
                    del self.members[key]
            else:
                self._asm_leave(m)
                del self.members[key]
            left = m.mode if key in self.members else "none"
            emit(
                "left",
                removed=[str(s) for s in gone],
                group=str(g),
                mode=left,
                sources=[str(s) for s in m.sources] if left != "none" else [],
                ifindex=m.ifindex,
            )

    def command(self, words: list[str]) -> None:
        verb, args = words[0], words[1:]
        try:
            if verb == "stats":
                self.stats()
                return
            args, ifindex = self._target(args)
            if verb in ("join", "exclude", "unblock", "leave") and not args:
                raise ValueError(f"{verb} needs a group")
            if verb == "join":
                self.join(args[0], args[1:], ifindex)
            elif verb == "exclude":
                self.join(args[0], args[1:], ifindex, exclude=True)
            elif verb == "unblock":
                self.unblock(args[0], args[1:], ifindex)
            elif verb == "leave":
                explicit = any(w.startswith("iface=") for w in words)
                self.leave(args[0], args[1:], ifindex if explicit else None)
            else:
                raise ValueError(f"unknown command {verb!r}")
        except (OSError, ValueError, Fatal) as exc:
            error(" ".join(words), exc)

    # ------------------------------------------------------------ data

    def readable(self) -> None:
        while True:
            try:
                data, anc, _flags, addr = self.sock.recvmsg(65535, 512)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. an ICMP error queued on the socket
                error("recvmsg", exc)
                return
            self.datagram(data, anc, addr)

    def datagram(self, data: bytes, anc: list[tuple[int, int, bytes]], addr: Any) -> None:
        fields: dict[str, Any] = {"src": addr[0], "sport": addr[1], "len": len(data)}
        for level, kind, value in anc:
            if level == socket.IPPROTO_IPV6 and kind == IPV6_PKTINFO and len(value) >= 20:
                fields["dst"] = str(ipaddress.IPv6Address(value[:16]))
                fields["ifindex"] = struct.unpack_from("=I", value, 16)[0]
            elif level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(value) >= 12:
                index, _spec, raw = struct.unpack_from("=i4s4s", value)
                fields["dst"], fields["ifindex"] = str(ipaddress.IPv4Address(raw)), index
            elif (level, kind) in HOP_LIMIT_CMSGS:
                fields["hops"] = struct.unpack_from("=i", value)[0]
            elif level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
                sec, nsec = struct.unpack_from("=qq", value)
                fields["kt"] = sec + nsec / 1e9
        dst = fields.get("dst")
        if dst is not None and ipaddress.ip_address(dst).is_multicast:
            fields["group"] = dst
        payload = _common.unpack(data)
        if payload is not None:
            fields.update(payload)
        self.received += 1
        key = str(fields.get("group", dst))
        self.by_group[key] = self.by_group.get(key, 0) + 1
        emit("data", **fields)

    def stats(self) -> None:
        emit("stats", received=self.received, by_group=dict(self.by_group))


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m harness.apps.mcast_recv", description=__doc__)
    p.add_argument("--iface", help="interface to join on (name or index; default: any)")
    p.add_argument("--group", action="append", default=[], help="group to join (repeatable)")
    p.add_argument("--source", action="append", default=[], help="INCLUDE this source (SSM)")
    p.add_argument("--exclude", action="append", default=[], help="EXCLUDE this source")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--bind", help="local address to bind (default: the wildcard)")
    p.add_argument("--family", type=int, choices=(4, 6), help="default: the groups' (else 6)")
    p.add_argument(
        "--api",
        choices=("rfc3493", "rfc3678"),
        default="rfc3493",
        help="any-source joins with IPV6_JOIN_GROUP/IP_ADD_MEMBERSHIP or MCAST_JOIN_GROUP",
    )
    p.add_argument("--multicast-all", action="store_true", help="keep IPV6_MULTICAST_ALL on")
    p.add_argument("--rcvbuf", type=int, default=1 << 20)
    p.add_argument("--no-stdin", action="store_true", help="no commands; stdin's end is ignored")
    args = p.parse_args(argv)
    if args.source and args.exclude:
        p.error("--source (INCLUDE) and --exclude (EXCLUDE) do not mix on one group")
    if args.family is None:
        versions = {ipaddress.ip_address(g).version for g in args.group} or {6}
        if len(versions) > 1:
            p.error("groups of both families: run one receiver per family")
        args.family = versions.pop()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)

    def body() -> str:
        rx = Receiver(args)
        for g in args.group:
            try:
                rx.join(g, args.exclude or args.source, rx.ifindex, exclude=bool(args.exclude))
            except (OSError, ValueError) as exc:
                raise Fatal(f"join {g}", exc) from None
        loop = _common.Loop(rx.command, read_stdin=not args.no_stdin)
        loop.add(rx.sock, rx.readable)
        emit(
            "ready",
            port=rx.port,
            family=rx.family,
            ifindex=rx.ifindex,
            iface=args.iface,
            memberships=[m.describe() for m in rx.members.values()],
        )
        try:
            return loop.run()
        finally:
            rx.readable()  # what already arrived is reported, then the totals
            rx.stats()

    return _common.main(body)


if __name__ == "__main__":
    raise SystemExit(main())
