"""An echo server for the session applications: TCP and UDP on one port (the CN's side).

    python -m harness.apps.tcp_echo [--port 7000] [--bind ADDR] [--proto tcp|udp|both]

Whatever a client sends comes back unchanged. The sockets are IPv6 with IPV6_V6ONLY off
(unless --bind names an IPv4 address), so IPv4 clients are served too (RFC 3493 §3.7).
A TCP client that half-closes (shutdown of its sending side) gets the rest of its echo and
then the server's FIN: a clean end of the session on both sides.

Events: ready {port, bind, proto}; accepted {peer, local}; closed {peer, how: eof|reset|error,
bytes_in}; udp {peer, len} per datagram with --verbose; error {what, error}; exit.
Commands: stats (sessions open and served) | quit.
"""

from __future__ import annotations

import argparse
import ipaddress
import selectors
import socket

from harness.apps import _common
from harness.apps._common import Fatal, emit, error

DEFAULT_PORT = 7000


class Conn:
    def __init__(self, sock: socket.socket, peer: str) -> None:
        self.sock = sock
        self.peer = peer
        self.out = b""
        self.bytes_in = 0
        self.eof = False


class Echo:
    def __init__(self, args: argparse.Namespace, loop: _common.Loop) -> None:
        self.loop = loop
        self.verbose = args.verbose
        self.conns: dict[int, Conn] = {}
        self.served = 0
        bind = args.bind or "::"
        six = ipaddress.ip_address(bind.split("%")[0]).version == 6
        af = socket.AF_INET6 if six else socket.AF_INET
        self.tcp: socket.socket | None = None
        self.udp: socket.socket | None = None
        try:
            port = args.port
            if args.proto in ("tcp", "both"):
                self.tcp = socket.socket(af, socket.SOCK_STREAM)
                self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if six:
                    self.tcp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                self.tcp.bind((bind, port))
                self.tcp.listen(64)
                self.tcp.setblocking(False)
                port = self.tcp.getsockname()[1]  # --port 0: UDP takes the same number
                loop.add(self.tcp, self.accept)
            if args.proto in ("udp", "both"):
                self.udp = socket.socket(af, socket.SOCK_DGRAM)
                if six:
                    self.udp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                self.udp.bind((bind, port))
                self.udp.setblocking(False)
                port = self.udp.getsockname()[1]
                loop.add(self.udp, self.datagrams)
        except OSError as exc:
            raise Fatal("socket", exc) from None
        self.port = port

    def accept(self) -> None:
        assert self.tcp is not None
        while True:
            try:
                sock, addr = self.tcp.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                error("accept", exc)
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Conn(sock, addr[0])
            self.conns[sock.fileno()] = conn
            self.served += 1
            self.loop.add(sock, lambda c=conn: self.ready(c))  # type: ignore[misc]
            emit("accepted", peer=addr[0], pport=addr[1], local=sock.getsockname()[0])

    def ready(self, c: Conn) -> None:
        try:
            if c.out:
                c.out = c.out[c.sock.send(c.out) :]
            while not c.eof and len(c.out) < 1 << 20:
                try:
                    data = c.sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    break
                if not data:
                    c.eof = True
                    break
                c.bytes_in += len(data)
                c.out += data
                c.out = c.out[c.sock.send(c.out) :]
        except (BlockingIOError, InterruptedError):
            pass
        except ConnectionResetError:
            self.close(c, "reset")
            return
        except OSError as exc:
            error("echo", exc, peer=c.peer)
            self.close(c, "error")
            return
        if c.eof and not c.out:
            self.close(c, "eof")
            return
        reading = not c.eof and len(c.out) < 1 << 20
        events = (selectors.EVENT_READ if reading else 0) | (selectors.EVENT_WRITE if c.out else 0)
        self.loop.modify(c.sock, lambda c=c: self.ready(c), events)  # type: ignore[misc]

    def close(self, c: Conn, how: str) -> None:
        self.loop.remove(c.sock)
        self.conns.pop(c.sock.fileno(), None)
        c.sock.close()
        emit("closed", peer=c.peer, how=how, bytes_in=c.bytes_in)

    def datagrams(self) -> None:
        assert self.udp is not None
        while True:
            try:
                data, addr = self.udp.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                error("recvfrom", exc)
                return
            try:
                self.udp.sendto(data, addr)
            except OSError as exc:
                error("sendto", exc, peer=addr[0])
            if self.verbose:
                emit("udp", peer=addr[0], pport=addr[1], len=len(data))

    def command(self, words: list[str]) -> None:
        if words[0] == "stats":
            emit("stats", open=len(self.conns), served=self.served)
        else:
            error(" ".join(words), f"unknown command {words[0]!r}")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m harness.apps.tcp_echo", description=__doc__)
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="0: any free port")
    p.add_argument("--bind", help="local address (default: every address, both families)")
    p.add_argument("--proto", choices=("tcp", "udp", "both"), default="both")
    p.add_argument("--verbose", action="store_true", help="an event per UDP datagram")
    p.add_argument("--no-stdin", action="store_true", help="no commands; stdin's end is ignored")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)

    def body() -> str:
        server: Echo | None = None
        loop = _common.Loop(
            lambda w: server.command(w) if server else None, read_stdin=not args.no_stdin
        )
        server = Echo(args, loop)
        emit("ready", port=server.port, bind=args.bind or "::", proto=args.proto)
        try:
            return loop.run()
        finally:
            for c in list(server.conns.values()):
                c.sock.close()

    return _common.main(body)


if __name__ == "__main__":
    raise SystemExit(main())
