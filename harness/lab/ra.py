"""Router Advertisements that the harness controls (RFC 4861 §4.2, §6.2; RFC 6275 §7).

Two parts:

* :func:`build_ra` (sans-I/O): the RA an access router sends, as a scapy
  ``ICMPv6ND_RA`` with its options: Source Link-Layer Address, MTU (optional), Prefix
  Information for the AR's /64 (on-link, autonomous), the Advertisement Interval option
  (RFC 6275 §7.3) and, when the AR's home agent is enabled, the H flag (§7.1), the Home
  Agent Information option (§7.4) and the R flag with the HA's full address in the
  Prefix Information option (§7.2).
* :class:`RouterAdvertiser`: one daemon thread per AR that multicasts RAs on the access
  interface inside the AR's namespace, at a random interval in [MinRtrAdvInterval,
  MaxRtrAdvInterval] (RFC 4861 §6.2.4), answers Router Solicitations (§6.2.6), and can be
  changed while it runs (:meth:`~RouterAdvertiser.set_ha_info`,
  :meth:`~RouterAdvertiser.set_interval`), e.g. to switch the Home Agent Information off
  so that an MN must bootstrap.

scapy 2.8's layouts were checked against the RFC figures: ``ICMPv6ND_RA`` has M, O, H
then RFC 4191's Prf (2 bits), P and 2 reserved bits; ``ICMPv6NDOptPrefixInfo`` has L, A,
R and 5 reserved bits; ``ICMPv6NDOptAdvInterval`` (type 7) and ``ICMPv6NDOptHAInfo``
(type 8) are Length 1 with a 16-bit Reserved, then a 32-bit interval (ms) or a 16-bit
preference and a 16-bit lifetime (s). They are right and used as they are, with two
defaults overridden: scapy's RA defaults to Prf = 1 ("High", RFC 4191), where a plain
RFC 4861 router sends 0 ("Medium"), and its HA lifetime to 1 s.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import ipaddress
import logging
import math
import os
import random
import select
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from scapy.layers.inet6 import (
    ICMPv6ND_RA,
    ICMPv6NDOptAdvInterval,
    ICMPv6NDOptHAInfo,
    ICMPv6NDOptMTU,
    ICMPv6NDOptPrefixInfo,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
)
from scapy.packet import Packet

from harness.lab import netns as netns_module
from harness.lab.netns import entered as netns_entered
from harness.lab.plan import AccessLink

log = logging.getLogger(__name__)

# RFC 4861 §10 protocol constants (router)
MAX_INITIAL_RTR_ADVERT_INTERVAL = 16.0
MAX_INITIAL_RTR_ADVERTISEMENTS = 3
MAX_FINAL_RTR_ADVERTISEMENTS = 3
MIN_DELAY_BETWEEN_RAS = 3.0
MAX_RA_DELAY_TIME = 0.5
# RFC 4861 §6.2.1 defaults, and RFC 6275 §7.5's lowest allowed intervals
DEFAULT_MAX_RTR_ADV_INTERVAL = 600.0
MIN_MIN_RTR_ADV_INTERVAL = 0.03
MIN_MAX_RTR_ADV_INTERVAL = 0.07
MAX_ROUTER_LIFETIME = 9000
# RFC 4861 §6.2.1 AdvValidLifetime / AdvPreferredLifetime defaults
DEFAULT_VALID_LIFETIME = 2592000
DEFAULT_PREFERRED_LIFETIME = 604800

ALL_NODES = "ff02::1"
ALL_ROUTERS = "ff02::2"
ICMPV6_RS = 133
ICMPV6_RA = 134

_ICMP6_FILTER = 1  # linux/icmpv6.h; not in Python's socket module
_SIOCGIFHWADDR = 0x8927
_IFA_F_TENTATIVE = 0x40
_IFA_F_DADFAILED = 0x08


class RaError(RuntimeError):
    """The advertiser cannot run (no such interface, no usable link-local address...)."""


# ------------------------------------------------------------------------------ builder


@dataclass(frozen=True)
class HaInfo:
    """The home agent part of an RA (RFC 6275 §7.1, §7.4).

    ``lifetime`` None means the Router Lifetime (the option's default). ``option`` None
    sends the Home Agent Information option unless both values are the defaults (§7.4:
    it SHOULD NOT be sent then); True or False force it in or out (the H flag is set
    either way).
    """

    preference: int = 0
    lifetime: int | None = None
    option: bool | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.preference <= 0xFFFF:
            raise ValueError(f"home agent preference: 0..65535, not {self.preference}")
        if self.lifetime is not None and not 1 <= self.lifetime <= 0xFFFF:
            # §7.4: "A value of 0 MUST NOT be used"; the field is 16 bits of seconds
            raise ValueError(
                f"home agent lifetime: 1..65535 s (0 MUST NOT be used), not {self.lifetime}"
            )


@dataclass(frozen=True)
class RaParams:
    """What an access router advertises on its link."""

    prefix: ipaddress.IPv6Network
    router_address: ipaddress.IPv6Address | None = None  # its global address on the link
    lladdr: str | None = None  # Source Link-Layer Address option; None: left out
    ha: HaInfo | None = None  # None: not a home agent (H clear, no HA option)
    max_interval: float = DEFAULT_MAX_RTR_ADV_INTERVAL  # MaxRtrAdvInterval, seconds
    router_lifetime: int | None = None  # None: 3 x MaxRtrAdvInterval, at least 1 s
    cur_hop_limit: int = 64
    managed: bool = False
    other: bool = False
    reachable_time: int = 0
    retrans_timer: int = 0
    on_link: bool = True
    autonomous: bool = True
    valid_lifetime: int = DEFAULT_VALID_LIFETIME
    preferred_lifetime: int = DEFAULT_PREFERRED_LIFETIME
    advertise_router_address: bool = False  # R flag without being an HA (RFC 6275 §7.2 MAY)
    mtu: int | None = None
    adv_interval: bool = True  # send the Advertisement Interval option
    adv_interval_ms: int | None = None  # None: from max_interval (see advertisement_interval_ms)


def params_for_link(link: AccessLink, ha: HaInfo | None = HaInfo(), **changes: object) -> RaParams:
    """What the access router of `link` (the address plan's) advertises: its /64, and its
    router address with the R flag when its home agent is enabled (`ha`)."""
    params = RaParams(prefix=link.prefix6, router_address=link.router6, ha=ha)
    return replace(params, **changes)  # type: ignore[arg-type]


def advertisement_interval_ms(max_interval: float) -> int:
    """The Advertisement Interval value: MaxRtrAdvInterval in ms (RFC 6275 §7.3), plus
    20 ms when below 200 ms (§7.5: for scheduling granularity)."""
    ms = math.ceil(max_interval * 1000)
    return ms + 20 if ms < 200 else ms


def default_router_lifetime(max_interval: float) -> int:
    """AdvDefaultLifetime: 3 x MaxRtrAdvInterval (RFC 4861 §6.2.1), kept at >= 1 s (RFC 6275
    §7.5) and <= 9000 s."""
    return min(max(math.ceil(3 * max_interval), 1), MAX_ROUTER_LIFETIME)


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ValueError(f"{name}: {low}..{high}, not {value}")


def build_ra(params: RaParams) -> ICMPv6ND_RA:
    """The Router Advertisement (ICMPv6 message and options, no IPv6 header).

    The checksum is left 0: a raw ICMPv6 socket has the kernel compute it (RFC 3542
    §3.1); :func:`build_ra_packet` gives a whole packet with the checksum filled in.
    """
    p = params
    _check_range("cur hop limit", p.cur_hop_limit, 0, 255)
    _check_range("reachable time", p.reachable_time, 0, 0xFFFFFFFF)
    _check_range("retrans timer", p.retrans_timer, 0, 0xFFFFFFFF)
    _check_range("valid lifetime", p.valid_lifetime, 0, 0xFFFFFFFF)
    _check_range("preferred lifetime", p.preferred_lifetime, 0, 0xFFFFFFFF)
    if p.preferred_lifetime > p.valid_lifetime:
        raise ValueError(
            f"preferred lifetime {p.preferred_lifetime} exceeds valid lifetime {p.valid_lifetime}"
        )
    router_lifetime = (
        default_router_lifetime(p.max_interval) if p.router_lifetime is None else p.router_lifetime
    )
    _check_range("router lifetime", router_lifetime, 0, 0xFFFF)

    flag_r = p.ha is not None or p.advertise_router_address
    if flag_r:
        # §7.2: a home agent MUST include a Prefix Information option with R set, whose
        # Prefix field holds its complete address
        if p.router_address is None:
            raise ValueError("the R flag (a home agent's RA) needs router_address (RFC 6275 §7.2)")
        if p.router_address not in p.prefix:
            raise ValueError(f"router address {p.router_address} is not in {p.prefix}")
        prefix_field = str(p.router_address)
    else:
        prefix_field = str(p.prefix.network_address)

    ra = ICMPv6ND_RA(
        chlim=p.cur_hop_limit,
        M=int(p.managed),
        O=int(p.other),
        H=int(p.ha is not None),
        prf=0,  # RFC 4191 "Medium": scapy's default is 1 ("High")
        P=0,
        res=0,
        routerlifetime=router_lifetime,
        reachabletime=p.reachable_time,
        retranstimer=p.retrans_timer,
        cksum=0,
    )
    options: list[Packet] = []
    if p.lladdr is not None:
        options.append(ICMPv6NDOptSrcLLAddr(lladdr=p.lladdr))
    if p.mtu is not None:
        _check_range("MTU", p.mtu, 1280, 0xFFFFFFFF)
        options.append(ICMPv6NDOptMTU(mtu=p.mtu))
    options.append(
        ICMPv6NDOptPrefixInfo(
            prefixlen=p.prefix.prefixlen,
            L=int(p.on_link),
            A=int(p.autonomous),
            R=int(flag_r),
            res1=0,
            validlifetime=p.valid_lifetime,
            preferredlifetime=p.preferred_lifetime,
            res2=0,
            prefix=prefix_field,
        )
    )
    if p.adv_interval:
        ms = p.adv_interval_ms
        if ms is None:
            ms = advertisement_interval_ms(p.max_interval)
        _check_range("advertisement interval (ms)", ms, 0, 0xFFFFFFFF)
        options.append(ICMPv6NDOptAdvInterval(advint=ms))
    if p.ha is not None:
        lifetime = p.ha.lifetime if p.ha.lifetime is not None else router_lifetime
        defaults = p.ha.preference == 0 and lifetime == router_lifetime
        send = p.ha.option if p.ha.option is not None else not defaults
        if send:
            if lifetime == 0:  # Router Lifetime 0 as the option's default
                raise ValueError(
                    "home agent lifetime would be 0 (the Router Lifetime); give HaInfo.lifetime"
                )
            options.append(ICMPv6NDOptHAInfo(res=0, pref=p.ha.preference, lifetime=lifetime))
    for opt in options:
        ra = ra / opt
    return ra


def ra_bytes(params: RaParams) -> bytes:
    """The RA as the bytes a raw ICMPv6 socket sends (checksum 0, filled by the kernel)."""
    return bytes(build_ra(params))


def build_ra_packet(params: RaParams, src: str, dst: str = ALL_NODES) -> IPv6:
    """The RA in an IPv6 header (hop limit 255, RFC 4861 §4.2), checksum computed."""
    ra = build_ra(params)
    ra.cksum = None
    return IPv6(src=src, dst=dst, hlim=255) / ra


# ------------------------------------------------------------------------------ netns


@contextlib.contextmanager
def in_netns(netns: str | None) -> Iterator[None]:
    """The lab's namespace switch (harness.lab.netns.entered), failing as an RaError."""
    try:
        ctx = netns_entered(netns)
        ctx.__enter__()
    except (netns_module.NamespaceError, OSError) as exc:
        raise RaError(f"network namespace {netns!r}: {exc}") from None
    try:
        yield
    finally:
        ctx.__exit__(None, None, None)


def _icmp6_filter(accept: Iterable[int]) -> bytes:
    """struct icmp6_filter passing only `accept` (a set bit blocks that type on Linux)."""
    words = [0xFFFFFFFF] * 8
    for t in accept:
        words[t >> 5] &= ~(1 << (t & 31)) & 0xFFFFFFFF
    return struct.pack("=8I", *words)


def open_icmpv6_socket(
    iface: str,
    accept: Iterable[int],
    netns: str | None = None,
    groups: Iterable[str] = (),
) -> tuple[socket.socket, int]:
    """A raw ICMPv6 socket on `iface` of namespace `netns`, receiving only the ICMPv6 types
    in `accept`, with hop limit 255 for what it sends, hop limit and packet info for what it
    receives, and member of the multicast `groups`. Returns it and the interface index."""
    with in_netns(netns):
        try:
            ifindex = socket.if_nametoindex(iface)
        except OSError:
            where = f" in namespace {netns}" if netns else ""
            raise RaError(f"no interface {iface!r}{where}") from None
        s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
        s.setsockopt(socket.IPPROTO_ICMPV6, _ICMP6_FILTER, _icmp6_filter(accept))
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
        for group in groups:
            mreq = socket.inet_pton(socket.AF_INET6, group) + struct.pack("@I", ifindex)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
    except BaseException:
        s.close()
        raise
    return s, ifindex


def hardware_address(sock: socket.socket, iface: str) -> str | None:
    """The interface's 6-octet MAC (asked through the socket: its namespace), or None."""
    try:
        res = fcntl.ioctl(sock.fileno(), _SIOCGIFHWADDR, struct.pack("256s", iface.encode()))
    except OSError:
        return None
    mac = res[18:24]
    if mac == b"\0" * 6:
        return None
    return ":".join(f"{b:02x}" for b in mac)


def link_local_address(ifindex: int) -> tuple[str | None, str]:
    """The usable link-local address of interface `ifindex` in this thread's namespace,
    or None and why not (missing, tentative, DAD failed)."""
    try:
        with open("/proc/thread-self/net/if_inet6", encoding="ascii") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        return None, f"cannot read if_inet6: {exc.strerror}"
    why = "no link-local address"
    for line in lines:
        parts = line.split()
        if len(parts) < 6 or int(parts[1], 16) != ifindex or int(parts[3], 16) != 0x20:
            continue
        flags = int(parts[4], 16)
        addr = str(ipaddress.IPv6Address(bytes.fromhex(parts[0])))
        if flags & _IFA_F_DADFAILED:
            why = f"link-local {addr} failed duplicate address detection"
        elif flags & _IFA_F_TENTATIVE:
            why = f"link-local {addr} is tentative (duplicate address detection running)"
        else:
            return addr, ""
    return None, why


# ------------------------------------------------------------------------- advertiser


@dataclass(frozen=True)
class SentRA:
    at: float  # time.monotonic()
    solicited: bool
    dst: str
    ha: bool  # H flag set
    router_lifetime: int


def _valid_rs(data: bytes, hoplimit: int | None, src: str) -> str | None:
    """Why a Router Solicitation fails RFC 4861 §6.1.1 validation, or None if valid.
    (The kernel has already checked the ICMP checksum.)"""
    if hoplimit != 255:
        return f"hop limit {hoplimit}, not 255"
    if len(data) < 8:
        return f"ICMP length {len(data)} < 8"
    if data[0] != ICMPV6_RS or data[1] != 0:
        return f"type {data[0]} code {data[1]}"
    i, has_slla = 8, False
    while i < len(data):
        if i + 2 > len(data) or data[i + 1] == 0:
            return "an option of length 0"
        has_slla |= data[i] == 1
        i += 8 * data[i + 1]
    if i != len(data):
        return "options overrun the message"
    if src == "::" and has_slla:
        return "unspecified source with a Source Link-Layer Address option"
    return None


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
        ra = ra_bytes(params)  # refuse bad values in the caller's thread
        with self._lock:
            self._params, self._ra = params, ra
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
        self._ra = ra_bytes(self._params)
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
                        self._ra = ra_bytes(self._params)
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
        why = _valid_rs(data, hoplimit, src)
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
                ra, params = self._ra, self._params
            else:
                ra = ra_bytes(params)
            try:
                sock.sendmsg(
                    [ra],
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
