"""What every application shares: JSON events on stdout, commands on stdin, a select loop,
clean exits on signals and on stdin's end, and the payload format of the test streams.

Only the standard library, and only light modules: these programs must start fast.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import selectors
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

# ---------------------------------------------------------------- payload of the test streams

# A datagram of mcast_send (and of udp_session): magic, version, length of the stream id,
# sequence number, send time (time.time()), send time (time.monotonic()), the stream id,
# then zero padding up to the requested size. Network byte order throughout.
MAGIC = b"DMMA"
VERSION = 1
_HEAD = struct.Struct("!4sBBQdd")
HEADER_LEN = _HEAD.size
MAX_STREAM = 255


def pack(stream: str, seq: int, size: int = 0) -> bytes:
    name = stream.encode()
    if len(name) > MAX_STREAM:
        raise ValueError(f"stream id longer than {MAX_STREAM} octets: {stream!r}")
    head = _HEAD.pack(MAGIC, VERSION, len(name), seq, time.time(), time.monotonic()) + name
    return head.ljust(size, b"\0")


def unpack(data: bytes) -> dict[str, Any] | None:
    """stream, seq, sent, sent_mono of a payload made by `pack`; None for anything else."""
    if len(data) < HEADER_LEN:
        return None
    magic, version, n, seq, sent, sent_mono = _HEAD.unpack_from(data)
    if magic != MAGIC or version != VERSION or len(data) < HEADER_LEN + n:
        return None
    stream = data[HEADER_LEN : HEADER_LEN + n].decode(errors="replace")
    return {"stream": stream, "seq": seq, "sent": sent, "sent_mono": sent_mono}


# ---------------------------------------------------------------- events


class Stop(BaseException):
    """Leave the main loop now (a signal, stdout gone, quit)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_stdout_gone = False
_writing = False  # a signal that comes while a line is half written waits for its end
_pending: str | None = None


def emit(event: str, **fields: Any) -> None:
    """One JSON line on stdout: the event's name, its times (wall and monotonic), fields."""
    global _stdout_gone, _writing, _pending
    if _stdout_gone:
        return
    record = {"event": event, "t": time.time(), "mono": time.monotonic(), **fields}
    data = (json.dumps(record, separators=(",", ":")) + "\n").encode()
    _writing = True
    try:
        while data:
            data = data[os.write(1, data) :]  # EINTR is retried (PEP 475)
    except BrokenPipeError:
        _stdout_gone = True  # whoever read us is gone: nobody to work for any more
        raise Stop("stdout closed") from None
    finally:
        _writing = False
    if _pending is not None:
        reason, _pending = _pending, None
        raise Stop(reason)


def error(what: str, exc: BaseException | str, **fields: Any) -> None:
    text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    emit("error", what=what, error=text, **fields)


# ---------------------------------------------------------------- the main loop


class Loop:
    """selectors around stdin (commands) and the application's sockets, with one timer.

    `on_command(words)` gets each stdin line split into words; `quit` is handled here.
    `timeout()` says how long until the application wants `on_timer()` (None: never).
    """

    def __init__(
        self,
        on_command: Callable[[list[str]], None],
        *,
        read_stdin: bool = True,
        timeout: Callable[[], float | None] = lambda: None,
        on_timer: Callable[[], None] = lambda: None,
    ) -> None:
        self.sel = selectors.DefaultSelector()
        self.on_command = on_command
        self.timeout = timeout
        self.on_timer = on_timer
        self.done: str | None = None
        self._buf = b""
        if read_stdin:
            # Left blocking (a terminal's flags are the shell's too): select says when a
            # read returns at once.
            self.sel.register(0, selectors.EVENT_READ, self._stdin)

    def add(
        self, fileobj: Any, callback: Callable[[], None], events: int = selectors.EVENT_READ
    ) -> None:
        """Call `callback()` whenever fileobj is ready (readable; `events` to say otherwise)."""
        self.sel.register(fileobj, events, callback)

    def modify(self, fileobj: Any, callback: Callable[[], None], events: int) -> None:
        self.sel.modify(fileobj, events, callback)

    def remove(self, fileobj: Any) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.sel.unregister(fileobj)

    def stop(self, reason: str) -> None:
        self.done = reason

    def _stdin(self) -> None:
        try:
            chunk = os.read(0, 65536)
        except BlockingIOError:
            return
        if not chunk:
            self.remove(0)
            self.stop("stdin closed")
            return
        self._buf += chunk
        while b"\n" in self._buf and self.done is None:
            line, self._buf = self._buf.split(b"\n", 1)
            words = line.decode(errors="replace").split()
            if not words:
                continue
            if words[0] in ("quit", "exit"):
                self.stop("quit")
            else:
                self.on_command(words)

    def run(self) -> str:
        """Until `stop`, a signal (SIGTERM, SIGINT) or stdin's end; the reason."""
        while self.done is None:
            wait = self.timeout()
            if wait is not None and wait <= 0:
                self.on_timer()
                continue
            for key, _ in self.sel.select(wait):
                key.data()
                if self.done is not None:
                    break
        return self.done


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    global _pending
    if _writing:
        _pending = signal.Signals(signum).name
        return
    raise Stop(signal.Signals(signum).name)


def main(body: Callable[[], str | None]) -> int:
    """Run an application's body with the common exit rules; the process's exit status.

    SIGTERM and SIGINT end it (exit 0) as `quit` does; a body that raises a fatal OSError
    reports it as an `error` event with `fatal: true` and exits 1. The last event is always
    `exit`, with the reason.
    """
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    status, reason = 0, "done"
    try:
        try:
            reason = body() or "done"
        except Stop as stop:
            reason = stop.reason
        except Fatal as exc:
            status, reason = 1, str(exc)
            error(exc.what, exc.cause or str(exc), fatal=True)
        # Nothing may interrupt the goodbye: the signals have done their work.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        emit("exit", reason=reason, status=status)
    except Stop:
        pass
    if _stdout_gone:
        # Python flushes sys.stdout at exit; with the reader gone that would complain.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
    return status


class Fatal(Exception):
    """The application cannot go on (its socket cannot be set up as asked)."""

    def __init__(self, what: str, cause: BaseException | str) -> None:
        text = cause if isinstance(cause, str) else f"{type(cause).__name__}: {cause}"
        super().__init__(f"{what}: {text}")
        self.what = what
        self.cause = text


def run(body: Callable[[], str | None]) -> None:
    sys.exit(main(body))


# ---------------------------------------------------------------- interfaces


def ifindex(name: str | None) -> int:
    """An interface name (or number) to its index; None or "" or "0" is 0 (any)."""
    if not name or name == "0":
        return 0
    if name.isdigit():
        return int(name)
    try:
        return socket.if_nametoindex(name)
    except OSError as exc:
        raise Fatal(f"interface {name}", exc) from None


def is_transient(exc: OSError) -> bool:
    """Errors a sender sees while a route or link is briefly gone (a handover)."""
    return exc.errno in (
        errno.ENETUNREACH,
        errno.EHOSTUNREACH,
        errno.ENETDOWN,
        errno.EADDRNOTAVAIL,
        errno.ENOBUFS,
        errno.EAGAIN,
        errno.ECONNREFUSED,
        errno.EPERM,
    )
