"""The router side of Router Advertisements (RFC 4861 §6.2): :class:`RouterAdvertiser`,
one daemon thread per interface that multicasts RAs inside a namespace at a random
interval in [MinRtrAdvInterval, MaxRtrAdvInterval] (§6.2.4), answers Router
Solicitations (§6.2.6), and can be changed while it runs
(:meth:`~RouterAdvertiser.set_ha_info`, :meth:`~RouterAdvertiser.set_interval`), e.g.
to switch the Home Agent Information off so that an MN must bootstrap. The lab runs one
on each access router; the reference Home Agent runs its own.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import random
import select
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, replace

from harness.netproto import ra
from harness.netproto.icmp6 import (
    hardware_address,
    in_netns,
    link_local_address,
    open_icmpv6_socket,
)
from harness.netproto.ra import (
    ALL_NODES,
    ALL_ROUTERS,
    ICMPV6_RS,
    MAX_INITIAL_RTR_ADVERT_INTERVAL,
    MAX_INITIAL_RTR_ADVERTISEMENTS,
    MAX_RA_DELAY_TIME,
    MIN_DELAY_BETWEEN_RAS,
    MIN_MAX_RTR_ADV_INTERVAL,
    MIN_MIN_RTR_ADV_INTERVAL,
    HaInfo,
    RaError,
    RaParams,
    default_router_lifetime,
    valid_rs,
)

log = logging.getLogger(__name__)
# The RA's bytes come from ra.ra_bytes, looked up at each call (as when this class lived
# next to it): the reference HA's RA mutants replace that function.


@dataclass(frozen=True)
class SentRA:
    at: float  # time.monotonic()
    solicited: bool
    dst: str
    ha: bool  # H flag set
    router_lifetime: int


class RouterAdvertiser:
    """Periodic and solicited RAs on one access interface, in a daemon thread.

    ``min_interval``/``max_interval`` are MinRtrAdvInterval/MaxRtrAdvInterval (RFC 6275
    §7.5 allows down to 0.03/0.07 s). With ``jitter`` (the RFC 4861 §6.2.4 behaviour)
    each interval is uniform in [min, max]; without, it is exactly max. Solicited RAs
    are delayed uniformly in [0, ``max_ra_delay``] (MAX_RA_DELAY_TIME, 0.5 s, scaled
    down in the lab) and multicast RAs are spaced at least ``min_delay_between_ras``
    (MinDelayBetweenRAs: RFC 6275 §13 sets it to MinRtrAdvInterval below 3 s, the
    default here). The interface's MAC goes in the Source Link-Layer Address option
    (RFC 6275 §7.5: a home agent MUST send it), its link-local address is the source.
    """

    def __init__(
        self,
        iface: str,
        params: RaParams,
        *,
        netns: str | None = None,
        min_interval: float | None = None,
        max_interval: float | None = None,
        jitter: bool = True,
        max_ra_delay: float = MAX_RA_DELAY_TIME,
        min_delay_between_ras: float | None = None,
        solicited_unicast: bool = False,
        final_ra: bool = True,
        name: str | None = None,
    ) -> None:
        self.iface = iface
        self.netns = netns
        self.name = name or f"ra-{netns or 'here'}-{iface}"
        self.jitter = jitter
        self.max_ra_delay = max_ra_delay
        self.solicited_unicast = solicited_unicast
        self.final_ra = final_ra
        self._explicit_min_delay = min_delay_between_ras
        max_i = params.max_interval if max_interval is None else max_interval
        min_i = 0.33 * max_i if min_interval is None else min_interval
        self.check_intervals(min_i, max_i)
        self.min_interval, self.max_interval = min_i, max_i
        self._params = replace(params, max_interval=max_i)
        self._ra = b""
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self.sent: deque[SentRA] = deque(maxlen=10000)
        self.rs_received = 0
        self.rs_invalid: deque[str] = deque(maxlen=100)
        self.send_errors: deque[str] = deque(maxlen=100)
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        # Its own generator: the advertiser thread must not draw from the process-wide
        # one while a test runs (hypothesis, for one, watches that for its strategies).
        self._rng = random.Random()
        self._stopping = False
        self._final = final_ra
        self._reschedule = False
        self.sent_count = 0
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self.source: str | None = None
        self.ifindex: int | None = None

    # ---------------------------------------------------------------- control

    @staticmethod
    def check_intervals(min_interval: float, max_interval: float) -> None:
        if max_interval < MIN_MAX_RTR_ADV_INTERVAL:
            raise ValueError(
                f"MaxRtrAdvInterval {max_interval:g} s is below RFC 6275 §7.5's "
                f"{MIN_MAX_RTR_ADV_INTERVAL} s"
            )
        if min_interval < MIN_MIN_RTR_ADV_INTERVAL:
            raise ValueError(
                f"MinRtrAdvInterval {min_interval:g} s is below RFC 6275 §7.5's "
                f"{MIN_MIN_RTR_ADV_INTERVAL} s"
            )
        if min_interval > max_interval:
            raise ValueError(
                f"MinRtrAdvInterval {min_interval:g} s exceeds MaxRtrAdvInterval {max_interval:g} s"
            )

    @property
    def min_delay_between_ras(self) -> float:
        if self._explicit_min_delay is not None:
            return self._explicit_min_delay
        return min(MIN_DELAY_BETWEEN_RAS, self.min_interval)

    @property
    def params(self) -> RaParams:
        with self._lock:
            return self._params

    def _update(self, params: RaParams, reschedule: bool = False) -> None:
        data = ra.ra_bytes(params)  # refuse bad values in the caller's thread
        with self._lock:
            self._params, self._ra = params, data
            self._reschedule |= reschedule
        self._wake()

    def set_ha_info(
        self,
        enabled: bool,
        preference: int = 0,
        lifetime: int | None = None,
        option: bool | None = None,
    ) -> None:
        """Turn the home agent part of the RAs on (H flag, HA Information option, R flag)
        or off; the next RA sent carries the change."""
        ha = HaInfo(preference, lifetime, option) if enabled else None
        self._update(replace(self.params, ha=ha))

    def set_params(self, **changes: object) -> None:
        """Change any :class:`RaParams` field (prefix lifetimes, router lifetime, MTU...)."""
        if "max_interval" in changes:
            raise ValueError("change the intervals with set_interval()")
        self._update(replace(self.params, **changes))  # type: ignore[arg-type]

    def set_interval(self, min_interval: float, max_interval: float) -> None:
        """New MinRtrAdvInterval/MaxRtrAdvInterval; the next RA is rescheduled from the last."""
        self.check_intervals(min_interval, max_interval)
        with self._lock:
            self.min_interval, self.max_interval = min_interval, max_interval
        self._update(replace(self.params, max_interval=max_interval), reschedule=True)

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"x")

    def wait_sent(self, count: int, timeout: float) -> bool:
        """Wait until at least `count` RAs have been sent in all; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.sent_count < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._thread is None:
                    return False
                self._cond.wait(remaining)
            return True

    # ---------------------------------------------------------------- lifecycle

    def start(self, timeout: float = 5.0) -> RouterAdvertiser:
        """Open the socket in the namespace and start advertising. Raises RaError, within
        `timeout`, if the interface or a usable link-local address is missing."""
        if self._thread is not None:
            raise RaError(f"{self.name}: already started")
        self._ra = ra.ra_bytes(self._params)
        self._thread = threading.Thread(
            target=self._run, args=(timeout,), name=self.name, daemon=True
        )
        self._thread.start()
        self._started.wait(timeout + 1.0)
        error = self._error
        if error is not None or not self._started.is_set():
            self.stop(final=False)
            if isinstance(error, RaError):
                raise error
            raise RaError(f"{self.name}: did not start: {error or 'timed out'}")
        return self

    def stop(self, final: bool | None = None) -> None:
        """Stop promptly (a wake-up pipe, no sleeping); by default send one final RA with
        Router Lifetime 0 first (RFC 4861 §6.2.5)."""
        thread = self._thread
        if thread is None:
            self._close_pipe()
            return
        with self._lock:
            self._stopping = True
            self._final = self.final_ra if final is None else final
        self._wake()
        thread.join(timeout=5.0)
        if thread.is_alive():
            raise RaError(f"{self.name}: the advertiser thread did not stop")
        with self._cond:
            self._thread = None
            self._cond.notify_all()
        self._close_pipe()

    def _close_pipe(self) -> None:
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._wake_r = self._wake_w = -1

    def __enter__(self) -> RouterAdvertiser:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- the thread

    def _run(self, timeout: float) -> None:
        sock: socket.socket | None = None
        try:
            try:
                sock, ifindex = open_icmpv6_socket(
                    self.iface, [ICMPV6_RS], self.netns, groups=[ALL_ROUTERS]
                )
                self.ifindex = ifindex
                mac = hardware_address(sock, self.iface)
                with self._lock:
                    if mac is not None and self._params.lladdr is None:
                        self._params = replace(self._params, lladdr=mac)
                        self._ra = ra.ra_bytes(self._params)
                with in_netns(self.netns):
                    self.source = self._wait_link_local(ifindex, timeout)
            except BaseException as exc:
                self._error = exc
                self._started.set()
                return
            self._started.set()
            if self.source is not None:
                self._loop(sock, ifindex)
        finally:
            if sock is not None:
                sock.close()

    def _wait_link_local(self, ifindex: int, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        while True:
            addr, why = link_local_address(ifindex)
            if addr is not None:
                return addr
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                where = f" in namespace {self.netns}" if self.netns else ""
                raise RaError(
                    f"{self.name}: no usable link-local address on {self.iface}{where} "
                    f"within {timeout:g} s: {why}"
                )
            ready, _, _ = select.select([self._wake_r], [], [], min(remaining, 0.02))
            if ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(self._wake_r, 4096)
            with self._lock:
                if self._stopping:
                    return None

    def _interval(self, initial_left: int) -> float:
        value = (
            self._rng.uniform(self.min_interval, self.max_interval)
            if self.jitter
            else (self.max_interval)
        )
        if initial_left > 0:
            value = min(value, MAX_INITIAL_RTR_ADVERT_INTERVAL)
        return value

    def _loop(self, sock: socket.socket, ifindex: int) -> None:
        initial_left = MAX_INITIAL_RTR_ADVERTISEMENTS
        now = time.monotonic()
        next_unsolicited = now  # the first RA goes out at once
        last_multicast: float | None = None
        pending: float | None = None  # a multicast answer to solicitations
        unicast: list[tuple[float, str]] = []
        while True:
            with self._lock:
                stopping, reschedule, final = self._stopping, self._reschedule, self._final
                self._reschedule = False
            if stopping:
                if final:
                    params = replace(self.params, router_lifetime=0, ha=None)
                    self._send(sock, ifindex, ALL_NODES, False, params)
                return
            if reschedule and last_multicast is not None:
                next_unsolicited = last_multicast + self._interval(initial_left)
            now = time.monotonic()
            due = [next_unsolicited] + ([pending] if pending is not None else [])
            due += [t for t, _ in unicast]
            wait = max(0.0, min(due) - now)
            ready, _, _ = select.select([sock.fileno(), self._wake_r], [], [], wait)
            if self._wake_r in ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(self._wake_r, 4096)
            now = time.monotonic()
            if sock.fileno() in ready:
                src = self._receive(sock)
                if src is not None:
                    if self.solicited_unicast and src != "::":
                        unicast.append((now + self._rng.uniform(0, self.max_ra_delay), src))
                    elif pending is None:
                        # RFC 4861 §6.2.6: random delay; rate limit; or the scheduled RA
                        t = now + self._rng.uniform(0, self.max_ra_delay)
                        if last_multicast is not None and (
                            now - last_multicast < self.min_delay_between_ras
                        ):
                            t = last_multicast + self.min_delay_between_ras + (t - now)
                        if t < next_unsolicited:
                            pending = t
            now = time.monotonic()
            for item in [u for u in unicast if u[0] <= now]:
                unicast.remove(item)
                self._send(sock, ifindex, item[1], True)
            if (pending is not None and now >= pending) or now >= next_unsolicited:
                solicited = pending is not None and now >= pending and now < next_unsolicited
                self._send(sock, ifindex, ALL_NODES, solicited)
                last_multicast = now
                pending = None
                if initial_left > 0 and not solicited:
                    initial_left -= 1
                next_unsolicited = now + self._interval(initial_left)

    def _receive(self, sock: socket.socket) -> str | None:
        """Read one packet; the source address of a valid RS, else None."""
        try:
            data, ancdata, _flags, addr = sock.recvmsg(65535, 256)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EINTR):
                self.send_errors.append(f"recv: {exc}")
            return None
        hoplimit = None
        for level, kind, value in ancdata:
            if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_HOPLIMIT:
                hoplimit = struct.unpack("@i", value[:4])[0]
        src = addr[0].split("%")[0]
        why = valid_rs(data, hoplimit, src)
        if why is not None:
            self.rs_invalid.append(f"from {src}: {why}")
            return None
        with self._lock:
            self.rs_received += 1
        return src

    def _send(
        self,
        sock: socket.socket,
        ifindex: int,
        dst: str,
        solicited: bool,
        params: RaParams | None = None,
    ) -> None:
        """Send the current RA (or one built from `params`). The lock is held throughout,
        so an RA counted in `sent_count` after a set_...() call returned carries the change."""
        assert self.source is not None
        pktinfo = socket.inet_pton(socket.AF_INET6, self.source) + struct.pack("@I", ifindex)
        with self._cond:
            if params is None:
                data, params = self._ra, self._params
            else:
                data = ra.ra_bytes(params)
            try:
                sock.sendmsg(
                    [data],
                    [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, pktinfo)],
                    0,
                    (dst, 0, 0, ifindex),
                )
            except OSError as exc:  # interface down, address gone: try again next time
                self.send_errors.append(f"send to {dst}: {exc}")
                log.debug("%s: %s", self.name, exc)
                return
            lifetime = params.router_lifetime
            if lifetime is None:
                lifetime = default_router_lifetime(params.max_interval)
            self.sent.append(
                SentRA(time.monotonic(), solicited, dst, params.ha is not None, lifetime)
            )
            self.sent_count += 1
            self._cond.notify_all()
