"""Capture every frame on one interface of a network namespace, in the background.

A `Capture` opens an AF_PACKET socket *inside* the namespace (the calling thread steps in
only to create it: the socket stays bound to that namespace for life), and one thread
reads it. Each frame is timestamped by the kernel (SO_TIMESTAMPNS), appended to a pcap
file at once (scapy's RawPcapWriter with sync: one write per frame, so a run that dies
keeps everything captured so far) and handed to the subscribers (callbacks, run on the
capture thread: they must be quick; `conversation.Link` only appends and notifies).

The socket joins the interface in promiscuous mode (as tcpdump does): on a bridge this is
what makes the bridge device see frames forwarded between its ports, not only those for
itself, so a capture on `br0` in a switch namespace sees the whole link.

Start and stop are cheap and idempotent. Once the socket exists (the end of `start()`),
no frame is missed even before the thread first runs: the kernel queues them. `stop()`
reads what is already queued, up to a deadline, then closes; it never waits for traffic.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.lab.netns import entered as in_netns
from harness.wire import layers as _layers  # noqa: F401  (scapy dissects with every project layer)

log = logging.getLogger(__name__)

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_STATISTICS = 6
SO_TIMESTAMPNS = 35  # SO_TIMESTAMPNS_OLD: the value on x86, arm and most 64-bit ABIs
SNAPLEN = 262144  # frames can exceed the MTU (GRO on veth): keep them whole
DLT_EN10MB = 1
PACKET_OUTGOING = socket.PACKET_OUTGOING

# PACKET_* packet types, for summaries.
PKTTYPE_NAMES = {0: "host", 1: "broadcast", 2: "multicast", 3: "otherhost", 4: "outgoing"}


class CaptureError(RuntimeError):
    """A capture could not be opened (no such namespace or interface, no privileges)."""


class Frame:
    """One captured frame: raw bytes, when, and which way it went."""

    __slots__ = ("seq", "time", "mono", "data", "pkttype", "label", "_packet")

    def __init__(
        self, seq: int, time_: float, mono: float, data: bytes, pkttype: int, label: str
    ) -> None:
        self.seq = seq  # 0, 1, 2, ... in the order the capture read them
        self.time = time_  # wall clock, from the kernel's timestamp
        self.mono = mono  # time.monotonic() when the capture thread read it
        self.data = data  # the whole frame, Ethernet header included
        self.pkttype = pkttype  # PACKET_HOST, PACKET_OUTGOING, ...
        self.label = label  # the link it was captured on
        self._packet: Any = None

    @property
    def outgoing(self) -> bool:
        """Sent by the namespace the capture is in (else received by it, or just seen)."""
        return self.pkttype == PACKET_OUTGOING

    @property
    def packet(self) -> Any:
        """The frame dissected by scapy (Ether / ...), made once, on first use.

        `.time` is the capture time, `.sniffed_on` the link label, and `.direction`
        follows pcapng: 1 inbound, 2 outbound.
        """
        if self._packet is None:
            from scapy.layers.l2 import Ether

            import harness.wire.mobility  # noqa: F401 - registers the mobility layers

            pkt = Ether(self.data)
            pkt.time = self.time
            pkt.sniffed_on = self.label
            pkt.direction = 2 if self.outgoing else 1
            self._packet = pkt
        return self._packet

    def __repr__(self) -> str:
        way = PKTTYPE_NAMES.get(self.pkttype, str(self.pkttype))
        return f"<Frame #{self.seq} {len(self.data)} B {way} on {self.label}>"


@dataclass(frozen=True)
class CaptureStats:
    frames: int  # read by the capture
    kernel_drops: int  # dropped by the kernel because the socket buffer was full
    pcap: str | None


Subscriber = Callable[[Frame], None]


class Capture:
    """Every frame on `iface` in namespace `ns` (None: this process's namespace)."""

    def __init__(
        self,
        ns: str | None,
        iface: str,
        pcap: str | os.PathLike[str] | None = None,
        *,
        label: str | None = None,
        promisc: bool = True,
        rcvbuf: int = 4 << 20,
    ) -> None:
        self.ns = ns
        self.iface = iface
        self.pcap = Path(pcap) if pcap is not None else None
        self.label = label or (f"{ns}:{iface}" if ns else iface)
        self.promisc = promisc
        self.rcvbuf = rcvbuf
        self.mac: str | None = None  # the interface's hardware address, known once started
        self.ifindex: int | None = None
        self.error: BaseException | None = None  # what ended the thread, if not stop()
        self._lock = threading.Lock()
        self._subscribers: list[Subscriber] = []
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._wake_r = self._wake_w = -1
        self._stopping = False
        self._drain_until = 0.0
        self._writer: Any = None
        self._count = 0
        self._drops = 0
        self._started_once = False

    # -- life cycle -------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Capture:
        """Open the socket in the namespace and start reading; no-op when already running."""
        with self._lock:
            if self._thread is not None:
                return self
            sock = self._open_socket()
            try:
                self._open_pcap()
            except BaseException:
                sock.close()
                raise
            self._sock = sock
            self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
            self._stopping = False
            self.error = None
            self._thread = threading.Thread(
                target=self._run, name=f"capture {self.label}", daemon=True
            )
            self._thread.start()
            self._started_once = True
        return self

    def stop(self, drain: float = 0.5) -> None:
        """Read what is queued (at most `drain` seconds), close the socket and the pcap."""
        with self._lock:
            thread = self._thread
            if thread is None:
                return
            self._drain_until = time.monotonic() + drain
            self._stopping = True
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"x")
        thread.join(drain + 1.0)
        with self._lock:
            if thread.is_alive():  # the thread is stuck in a subscriber: leave it, close up
                log.warning("capture %s: thread did not end within %.1f s", self.label, drain)
            self._close()
            self._thread = None

    def __enter__(self) -> Capture:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        """Call fn(frame) for every frame from now on; returns the function that unsubscribes."""
        with self._lock:
            self._subscribers = [*self._subscribers, fn]

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = [s for s in self._subscribers if s is not fn]

        return unsubscribe

    def stats(self) -> CaptureStats:
        self._read_kernel_stats()
        return CaptureStats(self._count, self._drops, str(self.pcap) if self.pcap else None)

    # -- internals --------------------------------------------------------------------------
    def _open_socket(self) -> socket.socket:
        where = f"interface {self.iface!r}" + (f" in namespace {self.ns!r}" if self.ns else "")
        try:
            with in_netns(self.ns):
                sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
                    sock.bind((self.iface, ETH_P_ALL))
                    self.ifindex = socket.if_nametoindex(self.iface)
                except BaseException:
                    sock.close()
                    raise
        except (OSError, FileNotFoundError) as exc:
            raise CaptureError(f"cannot capture on {where}: {exc}") from exc
        with contextlib.suppress(OSError):  # else the thread's own clock will do
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        if self.promisc:
            mreq = struct.pack("iHH8s", self.ifindex, PACKET_MR_PROMISC, 0, b"")
            try:
                sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
            except OSError as exc:
                log.warning("capture %s: no promiscuous mode: %s", self.label, exc)
        addr = sock.getsockname()  # (ifname, proto, pkttype, hatype, hwaddr)
        self.mac = ":".join(f"{b:02x}" for b in addr[4][:6]) if len(addr) > 4 else None
        sock.setblocking(False)
        return sock

    def _open_pcap(self) -> None:
        if self.pcap is None:
            return
        from scapy.utils import RawPcapWriter

        self.pcap.parent.mkdir(parents=True, exist_ok=True)
        append = self._started_once and self.pcap.exists()
        # A buffer larger than any frame: RawPcapWriter's sync flushes the record header
        # and the frame together, one write(2) per frame.
        f = open(self.pcap, "ab" if append else "wb", buffering=2 * SNAPLEN)  # noqa: SIM115
        writer = RawPcapWriter(f, linktype=DLT_EN10MB, nano=True, sync=True, snaplen=SNAPLEN)
        if append:
            writer.header_present = True
        else:
            writer.write_header(None)
            f.flush()
        self._writer = writer

    def _run(self) -> None:
        sock = self._sock
        assert sock is not None
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        try:
            while not self._stopping:
                poller.poll()  # until a frame or stop(): an event wait, no timeout
                self._read_available(sock, until=None)
            self._read_available(sock, until=self._drain_until)
        except BaseException as exc:  # noqa: BLE001 - recorded, reported by the link
            if not self._stopping:
                self.error = exc
                log.error("capture %s stopped: %r", self.label, exc)

    def _read_available(self, sock: socket.socket, until: float | None) -> None:
        """Read every frame queued now (stop at `until` on the monotonic clock)."""
        while True:
            if until is None:
                if self._stopping:
                    return  # stop() asked: the caller drains, with a deadline
            elif time.monotonic() >= until:
                return
            try:
                data, anc, _flags, addr = sock.recvmsg(SNAPLEN, 64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.ENETDOWN, errno.ENXIO):
                    return  # interface went down or away: a handover, not an error
                raise
            mono = time.monotonic()
            stamp = None
            for level, kind, value in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
                    sec, nsec = struct.unpack("qq", value[:16])
                    stamp = (sec, nsec)
            if stamp is None:
                now = time.time_ns()
                stamp = (now // 1_000_000_000, now % 1_000_000_000)
            frame = Frame(self._count, stamp[0] + stamp[1] / 1e9, mono, data, addr[2], self.label)
            self._count += 1
            if self._writer is not None:
                self._writer.write_packet(data, sec=stamp[0], usec=stamp[1])
            for fn in self._subscribers:
                try:
                    fn(frame)
                except Exception:  # a subscriber's bug must not end the capture
                    log.exception("capture %s: subscriber failed", self.label)

    def _read_kernel_stats(self) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            _packets, drops = struct.unpack("II", sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
        except OSError:
            return
        self._drops += drops  # the kernel resets the counters on each read

    def _close(self) -> None:
        self._read_kernel_stats()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r = self._wake_w = -1
        if self._writer is not None:
            try:
                self._writer.close()
            except OSError as exc:
                log.warning("capture %s: closing %s: %s", self.label, self.pcap, exc)
            self._writer = None
