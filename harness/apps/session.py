"""A client session with a correspondent node: small messages echoed back, round trip by
round trip, over TCP (`tcp_session`) or UDP (`udp_session`), to a `tcp_echo` server.

    python -m harness.apps.tcp_session --connect CN [--port 7000] [--bind LOCAL]
                                       [--interval 0.2] [--timeout 2] [--size 0]
    python -m harness.apps.udp_session ... (same options)

A message is "<seq> <monotonic send time> <padding>\\n". TCP keeps one message in flight:
the next goes --interval after the previous one was sent, or as soon as its echo is back
if that took longer. UDP sends one every --interval whatever came back, and a message
without an echo within --timeout is reported lost.

Events: connected {local, lport, remote, port, took} (then ready, the first time);
rtt {seq, rtt, ok} per round trip (ok: within --timeout; UDP's losses are rtt null, ok
false, lost true); stall {seq, waited} when a TCP echo is --timeout late (TCP goes on
retransmitting; the rtt event follows once it is back); late {seq, rtt} for a UDP echo
after it was counted lost; error {what, error} (a session that fails ends: closed follows);
closed {clean, rounds, how}; recovered {failed} when UDP sends work again; stats {rounds,
ok, failed}; exit.

Commands: close (end the session cleanly: TCP shuts down its sending side and waits for
the server's FIN; the process stays up) | connect (a new session) | interval S | stats |
quit.
"""

from __future__ import annotations

import argparse
import ipaddress
import selectors
import socket
import time

from harness.apps import _common
from harness.apps._common import Fatal, emit, error

DEFAULT_PORT = 7000


class Session:
    def __init__(self, args: argparse.Namespace, loop: _common.Loop) -> None:
        self.args = args
        self.loop = loop
        self.interval = args.interval
        self.timeout_s = args.timeout
        self.remote = args.connect
        ip = ipaddress.ip_address(args.connect.split("%")[0])
        self.af = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        self.sock: socket.socket | None = None
        self.seq = 0
        self.rounds = 0
        self.ok = 0
        self.failed = 0
        self.next_send = 0.0
        self.pending = b""
        self.buf = b""
        self.closing_until: float | None = None

    # ---------------------------------------------------------------- shared

    def message(self, seq: int) -> bytes:
        text = f"{seq} {time.monotonic():.6f}"
        if self.args.size > len(text) + 1:
            text += " " + "x" * (self.args.size - len(text) - 2)
        return (text + "\n").encode()

    def open_socket(self, kind: int) -> socket.socket:
        sock = socket.socket(self.af, kind)
        if self.args.bind:
            sock.bind((self.args.bind, 0))
        return sock

    def connected(self, took: float, first: bool) -> None:
        assert self.sock is not None
        local = self.sock.getsockname()
        fields = {
            "local": local[0],
            "lport": local[1],
            "remote": self.remote,
            "port": self.args.port,
            "took": took,
        }
        emit("connected", **fields)
        if first:
            emit("ready", **fields)

    def round(self, seq: int, rtt: float | None, ok: bool, **extra: object) -> None:
        self.rounds += 1
        if ok:
            self.ok += 1
        else:
            self.failed += 1
        emit("rtt", seq=seq, rtt=rtt, ok=ok, **extra)

    def stats(self) -> None:
        emit("stats", rounds=self.rounds, ok=self.ok, failed=self.failed, open=self.is_open())

    def is_open(self) -> bool:
        return self.sock is not None

    def command(self, words: list[str]) -> None:
        verb = words[0]
        try:
            if verb == "close":
                if not self.is_open():
                    raise ValueError("no session is open")
                self.close()
            elif verb == "connect":
                if self.is_open():
                    raise ValueError("a session is open: close it first")
                self.connect(first=False)
            elif verb == "interval" and len(words) == 2:
                value = float(words[1])
                if value <= 0:
                    raise ValueError("the interval must be positive")
                self.interval = value
                emit("interval", interval=value)
            elif verb == "stats":
                self.stats()
            else:
                raise ValueError(f"unknown command {verb!r}")
        except (OSError, ValueError) as exc:
            error(" ".join(words), exc)

    # ---------------------------------------------------------------- per protocol

    def connect(self, first: bool) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def timeout(self) -> float | None:
        raise NotImplementedError

    def on_timer(self) -> None:
        raise NotImplementedError


class TcpSession(Session):
    """One message in flight; stalls and resets reported; `close` is a clean FIN exchange."""

    def __init__(self, args: argparse.Namespace, loop: _common.Loop) -> None:
        super().__init__(args, loop)
        self.inflight: tuple[int, float] | None = None  # seq, monotonic send time
        self.stalled = False

    def connect(self, first: bool) -> None:
        sock = self.open_socket(socket.SOCK_STREAM)
        sock.settimeout(self.args.connect_timeout)
        t0 = time.monotonic()
        try:
            sock.connect((self.remote, self.args.port))
        except BaseException:
            sock.close()
            raise
        took = time.monotonic() - t0
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        self.sock, self.buf, self.pending = sock, b"", b""
        self.inflight, self.stalled, self.closing_until = None, False, None
        self.next_send = time.monotonic()
        self.loop.add(sock, self.ready)
        self.connected(took, first)

    def _watch(self) -> None:
        if self.sock is not None:
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if self.pending else 0)
            self.loop.modify(self.sock, self.ready, events)

    def _end(self, clean: bool, how: str) -> None:
        if self.sock is not None:
            self.loop.remove(self.sock)
            self.sock.close()
            self.sock = None
        self.inflight, self.closing_until = None, None
        emit("closed", clean=clean, how=how, rounds=self.rounds)

    def _fail(self, what: str, exc: BaseException | str) -> None:
        error(what, exc)
        self._end(False, what)

    def close(self) -> None:
        assert self.sock is not None
        if self.closing_until is not None:
            return
        try:
            self.sock.shutdown(socket.SHUT_WR)  # our FIN; the echo server answers with its own
        except OSError as exc:
            self._fail("shutdown", exc)
            return
        self.closing_until = time.monotonic() + self.timeout_s
        emit("closing", rounds=self.rounds)

    def send(self) -> None:
        assert self.sock is not None
        now = time.monotonic()
        self.inflight, self.stalled = (self.seq, now), False
        self.pending += self.message(self.seq)
        self.seq += 1
        self.next_send = now + self.interval
        self.flush()

    def flush(self) -> None:
        assert self.sock is not None
        try:
            self.pending = self.pending[self.sock.send(self.pending) :]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            self._fail("send", exc)
            return
        self._watch()

    def ready(self) -> None:
        if self.sock is None:
            return
        if self.pending:
            self.flush()
            if self.sock is None:
                return
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fail("recv", exc)
            return
        if not data:
            if self.closing_until is not None:
                self._end(True, "fin")
            else:
                self._fail("recv", "the server closed the connection")
            return
        self.buf += data
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            seq = int(line.split(b" ", 1)[0])
            if self.inflight is not None and seq == self.inflight[0]:
                rtt = time.monotonic() - self.inflight[1]
                self.round(seq, rtt, rtt <= self.timeout_s)
                self.inflight = None

    def timeout(self) -> float | None:
        if self.sock is None:
            return None
        now = time.monotonic()
        if self.closing_until is not None:
            return self.closing_until - now
        if self.inflight is not None:
            return None if self.stalled else self.inflight[1] + self.timeout_s - now
        return self.next_send - now

    def on_timer(self) -> None:
        now = time.monotonic()
        if self.closing_until is not None:
            if now >= self.closing_until:
                error("close", f"no FIN from the server within {self.timeout_s} s")
                self._end(False, "timeout")
        elif self.inflight is not None:
            if not self.stalled and now >= self.inflight[1] + self.timeout_s:
                self.stalled = True
                emit("stall", seq=self.inflight[0], waited=now - self.inflight[1])
        elif now >= self.next_send:
            self.send()


class UdpSession(Session):
    """A message every interval; echoes matched by sequence number; losses after --timeout."""

    def __init__(self, args: argparse.Namespace, loop: _common.Loop) -> None:
        super().__init__(args, loop)
        self.outstanding: dict[int, float] = {}
        self.lost: dict[int, float] = {}
        self.failing = 0

    def connect(self, first: bool) -> None:
        sock = self.open_socket(socket.SOCK_DGRAM)
        t0 = time.monotonic()
        try:
            sock.connect((self.remote, self.args.port))  # no packet: the route and source
        except BaseException:
            sock.close()
            raise
        sock.setblocking(False)
        self.sock = sock
        self.outstanding.clear()
        self.next_send = time.monotonic()
        self.loop.add(sock, self.ready)
        self.connected(time.monotonic() - t0, first)

    def close(self) -> None:
        assert self.sock is not None
        self.loop.remove(self.sock)
        self.sock.close()
        self.sock = None
        self.outstanding.clear()
        emit("closed", clean=True, how="close", rounds=self.rounds)

    def ready(self) -> None:
        while self.sock is not None:
            try:
                data = self.sock.recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # ICMP errors come back on a connected UDP socket
                error("recv", exc)
                continue
            try:
                seq = int(data.split(b" ", 1)[0])
            except ValueError:
                continue
            now = time.monotonic()
            if seq in self.outstanding:
                rtt = now - self.outstanding.pop(seq)
                self.round(seq, rtt, True)
            elif seq in self.lost:
                emit("late", seq=seq, rtt=now - self.lost.pop(seq))

    def timeout(self) -> float | None:
        if self.sock is None:
            return None
        now = time.monotonic()
        due = self.next_send - now
        if self.outstanding:
            due = min(due, min(self.outstanding.values()) + self.timeout_s - now)
        return due

    def on_timer(self) -> None:
        assert self.sock is not None
        now = time.monotonic()
        for seq, sent in sorted(self.outstanding.items()):
            if now >= sent + self.timeout_s:
                del self.outstanding[seq]
                self.lost[seq] = sent
                if len(self.lost) > 10000:
                    self.lost.pop(next(iter(self.lost)))
                self.round(seq, None, False, lost=True)
        if now >= self.next_send:
            self.next_send = max(self.next_send + self.interval, now)
            try:
                self.sock.send(self.message(self.seq))
            except OSError as exc:
                if not self.failing:
                    error("send", exc, seq=self.seq)
                self.failing += 1
            else:
                self.outstanding[self.seq] = now
                if self.failing:
                    emit("recovered", failed=self.failing, seq=self.seq)
                    self.failing = 0
            self.seq += 1


def parse(proto: str, argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=f"python -m harness.apps.{proto}_session", description=__doc__)
    p.add_argument("--connect", required=True, help="the server's (the CN's) address")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--bind", help="local address (default: the kernel's choice)")
    p.add_argument("--interval", type=float, default=0.2, help="seconds between messages")
    p.add_argument("--timeout", type=float, default=2.0, help="a round later than this fails")
    p.add_argument("--connect-timeout", type=float, default=5.0)
    p.add_argument("--size", type=int, default=0, help="pad messages to this many octets")
    p.add_argument("--no-stdin", action="store_true", help="no commands; stdin's end is ignored")
    args = p.parse_args(argv)
    if args.interval <= 0 or args.timeout <= 0:
        p.error("--interval and --timeout must be positive")
    return args


def main(proto: str, argv: list[str] | None = None) -> int:
    args = parse(proto, argv)

    def body() -> str:
        session: Session | None = None

        def command(words: list[str]) -> None:
            if session is not None:
                session.command(words)

        def timeout() -> float | None:
            return session.timeout() if session is not None else None

        def on_timer() -> None:
            if session is not None:
                session.on_timer()

        loop = _common.Loop(
            command, read_stdin=not args.no_stdin, timeout=timeout, on_timer=on_timer
        )
        session = (TcpSession if proto == "tcp" else UdpSession)(args, loop)
        try:
            session.connect(first=True)
        except OSError as exc:
            raise Fatal(f"connect [{args.connect}]:{args.port}", exc) from None
        try:
            return loop.run()
        finally:
            session.stats()

    return _common.main(body)
