"""A multicast (or unicast) UDP source: numbered datagrams at a steady rate.

    python -m harness.apps.mcast_send --group G [--port 5000] [--rate 10] [--count N]
                                      [--hops 16] [--iface eth0] [--bind S] [--stream ID]

Each payload is `_common.pack`: a magic, the stream id, the sequence number and the send
time (wall and monotonic), padded to --size; mcast_recv decodes it. The hop limit is set
with IPV6_MULTICAST_HOPS (IP_MULTICAST_TTL), the outgoing interface with
IPV6_MULTICAST_IF (IP_MULTICAST_IF), both RFC 3493 §5.2 socket options; --bind fixes the
source address, which an SSM receiver's filter names.

Pacing keeps the schedule t0 + n / rate; when the process falls behind by more than one
interval the schedule restarts from now instead of sending a burst.

Events: ready {dst, port, src, sport, rate, hops, ifindex, stream}; sent {seq} per datagram
with --verbose; error {what, error, seq} on the first failed send of a run of failures and
recovered {failed} when sends work again (a route that went away and came back);
summary {sent, failed, first_seq, last_seq, stream, duration}; exit {reason, status}.
Commands: rate R | pause | resume | stats (a summary now) | quit.
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import struct
import time
from collections.abc import Callable

from harness.apps import _common
from harness.apps._common import Fatal, emit, error

DEFAULT_PORT = 5000
DEFAULT_HOPS = 16


class Sender:
    def __init__(self, args: argparse.Namespace) -> None:
        self.dst = ipaddress.ip_address(args.group)
        self.port = args.port
        self.stream = args.stream or str(self.dst)
        self.size = args.size
        self.count = args.count
        self.verbose = args.verbose
        self.rate = args.rate
        self.seq = args.start_seq
        self.first_seq = args.start_seq
        self.sent = 0
        self.failed = 0
        self.failing = 0  # failures since the last success
        self.paused = False
        self.on_done: Callable[[], None] = lambda: None
        self.ifindex = _common.ifindex(args.iface)
        six = self.dst.version == 6
        self.sock = socket.socket(socket.AF_INET6 if six else socket.AF_INET, socket.SOCK_DGRAM)
        s = self.sock
        try:
            if six:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, args.hops)
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, args.hops)
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, int(not args.no_loop))
                if self.ifindex:
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, self.ifindex)
            else:
                s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, args.hops)
                s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, args.hops)
                s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, int(not args.no_loop))
                if self.ifindex:  # struct ip_mreqn: no group, any address, this interface
                    mreqn = struct.pack("=4s4si", b"\0" * 4, b"\0" * 4, self.ifindex)
                    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreqn)
            if args.bind:
                s.bind((args.bind, args.sport))
            elif args.sport:
                s.bind(("::" if six else "0.0.0.0", args.sport))
        except OSError as exc:
            raise Fatal("socket", exc) from None
        self.target: tuple[str, int] | tuple[str, int, int, int] = (str(self.dst), self.port)
        if six and self.dst.is_link_local or (six and self.dst.is_multicast and self.ifindex):
            self.target = (str(self.dst), self.port, 0, self.ifindex)
        self.connected = False
        try:  # connecting picks the source address now, so that `ready` can say it
            s.connect(self.target)
            self.connected = True
        except OSError as exc:
            if not _common.is_transient(exc):
                raise Fatal("connect", exc) from None
            error("connect", exc)
        s.setblocking(False)
        self.t0 = time.monotonic()
        self.next = self.t0

    def local(self) -> tuple[str | None, int]:
        host, port = self.sock.getsockname()[:2]
        return (None if host in ("::", "0.0.0.0") else host), port

    def interval(self) -> float:
        return 1.0 / self.rate

    def timeout(self) -> float | None:
        if self.paused or self.done():
            return None
        return self.next - time.monotonic()

    def done(self) -> bool:
        return bool(self.count) and self.sent + self.failed >= self.count

    def tick(self) -> None:
        payload = _common.pack(self.stream, self.seq, self.size)
        try:
            if self.connected:
                self.sock.send(payload)
            else:
                self.sock.sendto(payload, self.target)
        except OSError as exc:
            self.failed += 1
            if not self.failing:
                error("send", exc, seq=self.seq)
            self.failing += 1
        else:
            self.sent += 1
            if self.failing:
                emit("recovered", failed=self.failing, seq=self.seq)
                self.failing = 0
            if self.verbose:
                emit("sent", seq=self.seq)
        self.seq += 1
        if self.done():
            self.on_done()
            return
        now = time.monotonic()
        self.next += self.interval()
        if self.next < now - self.interval():  # fell behind: no burst to catch up
            self.next = now

    def summary(self) -> None:
        emit(
            "summary",
            sent=self.sent,
            failed=self.failed,
            first_seq=self.first_seq,
            last_seq=self.seq - 1,
            stream=self.stream,
            duration=time.monotonic() - self.t0,
        )

    def command(self, words: list[str]) -> None:
        verb = words[0]
        if verb == "rate" and len(words) == 2:
            try:
                rate = float(words[1])
                if rate <= 0:
                    raise ValueError("the rate must be positive")
            except ValueError as exc:
                error(" ".join(words), exc)
                return
            self.rate = rate
            self.next = time.monotonic()
            emit("rate", rate=rate)
        elif verb == "pause":
            self.paused = True
            emit("paused", seq=self.seq)
        elif verb == "resume":
            self.paused = False
            self.next = time.monotonic()
            emit("resumed", seq=self.seq)
        elif verb == "stats":
            self.summary()
        else:
            error(" ".join(words), f"unknown command {verb!r}")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m harness.apps.mcast_send", description=__doc__)
    p.add_argument("--group", required=True, help="destination (a group, or a unicast address)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--rate", type=float, default=10.0, help="datagrams per second")
    p.add_argument("--count", type=int, default=0, help="stop after this many (0: forever)")
    p.add_argument("--hops", type=int, default=DEFAULT_HOPS, help="hop limit / TTL")
    p.add_argument("--iface", help="outgoing interface for multicast")
    p.add_argument("--bind", help="source address")
    p.add_argument("--sport", type=int, default=0, help="source port")
    p.add_argument("--stream", help="stream id in the payload (default: the group)")
    p.add_argument("--size", type=int, default=0, help="pad payloads to this many octets")
    p.add_argument("--start-seq", type=int, default=0)
    p.add_argument("--no-loop", action="store_true", help="IPV6_MULTICAST_LOOP off")
    p.add_argument("--verbose", action="store_true", help="an event per datagram sent")
    p.add_argument("--no-stdin", action="store_true", help="no commands; stdin's end is ignored")
    args = p.parse_args(argv)
    if args.rate <= 0:
        p.error("--rate must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)

    def body() -> str:
        tx = Sender(args)
        loop = _common.Loop(
            tx.command, read_stdin=not args.no_stdin, timeout=tx.timeout, on_timer=tx.tick
        )
        src, sport = tx.local()
        emit(
            "ready",
            dst=str(tx.dst),
            port=tx.port,
            src=src,
            sport=sport,
            rate=tx.rate,
            hops=args.hops,
            ifindex=tx.ifindex,
            stream=tx.stream,
        )
        tx.on_done = lambda: loop.stop("count reached")
        try:
            return loop.run()
        finally:
            tx.summary()

    return _common.main(body)


if __name__ == "__main__":
    raise SystemExit(main())
