"""The reference Home Agent daemon: a thin I/O shell around HomeAgentCore (`dmmconf ha`).

It runs inside an access router's namespace (the profile starts it with `ip netns exec` or
nsenter) and does only I/O; every decision is the core's:

* Binding Updates arrive on a raw socket of protocol 60 (LAB-FACTS: the kernel, which has no
  Mobile IPv6, delivers a packet whose first extension header is a Destination Options header
  to such a socket, then drops it because of the Home Address option). Mobility Headers sent
  without a Home Address option arrive on a raw socket of protocol 135. A raw IPv6 socket
  gives the payload after the IPv6 header: the header is rebuilt from the source address and
  hop limit of recvmsg and the destination of IPV6_PKTINFO, which is all the core reads
  (addresses for the MH checksum and RFC 4285, offsets for ICMP pointers).
* Binding Acknowledgements (type 2 routing header), Binding Errors and ICMPv6 Parameter
  Problems go out whole through an IPPROTO_RAW socket.
* One poll loop; its timeout is the nearer of the core's next deadline (binding expiry)
  and the querier's next query. SIGTERM and SIGINT end it cleanly.

* The data plane in userspace (class Tunnels): a TUN device per binding with the home
  address's /128 routed into it, IPv6-in-IPv6 to the care-of address, and the reverse
  tunnel from a raw socket of protocol 41.
* Multicast (class MulticastForwarder): the groups of the bindings' multicast state joined
  on the uplink, and multicast data arriving on the uplink or on the access link that a
  binding's state admits (group and INCLUDE/EXCLUDE source list) tunnelled to its CoA, one
  copy per binding; never natively on the access link, never groups of link-local scope
  (RFC 6275 §10.4.2; the core installs no such records, OPEN-6). A packet whose checksum
  its sender left to offload (PACKET_AUXDATA says so) is tunnelled with the checksum
  completed.
* The MLD querier for the mobile nodes (class MldQuerier; draft §6, RFC 6275 §10.4.3,
  INT-7): an MLDv2 General Query, from the access interface's link-local address, through
  the tunnel to the CoA of every binding with IPv6 multicast state, at once after the BA
  that installs the state and every --mld-query-interval after. MLD Reports that come back
  through the tunnel are not read: only Binding Updates change the state (INT-7).
* Duplicate Address Detection for the home address of each new binding before its BA
  (RFC 6275 §10.3.1; RFC 4862 §5.4): a Neighbor Solicitation from :: on the access link,
  then RetransTimer (RFC 4861 §10, scaled by --time-scale, at least DAD_MIN_WAIT) for a
  Neighbor Advertisement of the home address, read on a raw ICMPv6 socket; one answers
  status 134.
* Router Advertisements on the access link with the H flag, the R flag and the Home Agent
  Information option (RFC 6275 §7), from harness.netproto.advertiser.RouterAdvertiser, when
  --ra-interval MIN,MAX is given.
* --time-scale multiplies the RFC defaults of the timers that are not given explicitly
  (RFC 3810 §9: Query Interval 125 s, Query Response Interval 10 s). Binding lifetimes
  are not scaled (they travel on the wire in 4-second units), nor is the core's clock
  (RFC 4285 timestamps are wall-clock time).

Not done yet (issue 4): DNS updates (a DnsRequest is answered as failed), the MN-ID option
check (RFC 4283), IGMPv3 queries and IPv4 multicast forwarding (the profile does not claim
ipv4), and the RFC 3810 startup queries (the first query goes at once, the next after a
whole Query Interval).

One-clause mutants for the suite's own tests: DMMCONF_HA_MUTANT=<name> (see MUTANTS) starts a
deliberately broken HA; tests/test_ha_mutants.py checks that each is caught by the suite.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import ipaddress
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.reference import encode, ha_core
from harness.reference import multicast as mcast
from harness.reference.ha_core import (
    Action,
    DadRequest,
    DnsRequest,
    HAConfig,
    HomeAgentCore,
    MulticastChanged,
    SendBindingAck,
    SendBindingError,
    SendParameterProblem,
    TunnelDown,
    TunnelUp,
)
from harness.wire import compact, ipv6
from harness.wire.numbers import BAStatus, MobOpt

IPPROTO_DSTOPTS, IPPROTO_MH, IPPROTO_IPV6_IN_IPV6 = 60, 135, 41
IPPROTO_HOPOPTS, IPPROTO_ICMPV6 = 0, 58
TUNSETIFF, IFF_TUN, IFF_NO_PI = 0x400454CA, 0x0001, 0x1000
TUN_PREFIX = "dmmha"
IPV6_HEADER = struct.Struct("!IHBB16s16s")
ICMP6_MAX = 1280  # RFC 4443 §2.4: the error packet must not exceed the minimum MTU
READY_LINE = "dmmconf ha: ready"
ETH_P_IPV6 = 0x86DD
SOL_PACKET, PACKET_AUXDATA = 263, 8  # linux/if_packet.h
TP_STATUS_CSUMNOTREADY = 1 << 3  # the checksum is left to the (virtual) hardware
# RFC defaults of the timers (seconds), multiplied by --time-scale when not given.
DEFAULT_QUERY_INTERVAL = 125.0  # RFC 3810 §9.2
DEFAULT_QUERY_RESPONSE_INTERVAL = 10.0  # RFC 3810 §9.3
RETRANS_TIMER = 1.0  # RFC 4861 §10: how long DAD waits for an answer (DupAddrDetectTransmits 1)
DAD_MIN_WAIT = 0.05  # however small the scale: time for a neighbour's answer to arrive
SOL_ICMPV6, ICMP6_FILTER = 58, 1  # linux/icmpv6.h
MAX_RA_DELAY_TIME = 0.5  # RFC 4861 §10

# One-clause mutants: name -> what it breaks (the clause its suite test judges).
MUTANTS: dict[str, str] = {
    "ignore-seq": "accepts any sequence number (RFC 6275 §9.5.1, status 135)",
    "wrong-seq": "answers with the BU's sequence number plus one (RFC 6275 §10.3.1)",
    "long-lifetime": "grants one unit more than the BU asked for (RFC 6275 §10.3.1)",
    "accept-foreign-hoa": "accepts home addresses outside its prefix (status 132)",
    "accept-unauth": "accepts BUs without MN-HA authentication (RFC 4285 §5.1.1)",
    "accept-bad-auth": "accepts a wrong authenticator (RFC 4285 §5.1.1, status 146)",
    "no-echo": "leaves the Multicast State option out of the BA (draft §4.1, INT-6)",
    "dereg-lifetime": "answers a deregistration with a non-zero lifetime (RFC 6275 §6.1.8)",
    "no-binding-error": "sends no Binding Error for an unknown MH type (RFC 6275 §9.2)",
    "no-param-problem": "sends no ICMP Parameter Problem (RFC 6275 §9.2)",
    "answer-discarded": "answers a message it must silently discard with a Binding Error",
    "unsigned-ba": "answers an authenticated BU with an unauthenticated BA (RFC 4285 §5.1)",
    "reject-malformed-mcast": "refuses (128) a BU whose Multicast State option is malformed "
    "instead of installing nothing (INT-2)",
    "no-tunnel": "tunnels nothing to the care-of address (RFC 6275 §10.4.1)",
    "no-reverse-tunnel": "drops reverse-tunnelled packets (RFC 6275 §10.4.5)",
    "no-mcast-forward": "tunnels no multicast data to subscribed bindings (draft §6)",
    "ignore-leave": "keeps tunnelling a group the MN's newer Multicast State no longer lists "
    "(draft §6, INT-7)",
    "reject-ba-options": "refuses (128) a BU carrying options it does not expect there "
    "instead of skipping them (RFC 6275 §6.2.1)",
    # multicast (suites/ha/test_multicast.py)
    "drop-aux-records": "drops Multicast Address Records that carry auxiliary data instead of "
    "ignoring the data (RFC 3810 §5.2.10, INT-6)",
    "changes-replace-state": "applies Filter-Mode-Change and Source-List-Change records to an "
    "empty state instead of the binding's (RFC 3810 §7.4.2, INT-7)",
    "forward-unsubscribed": "tunnels every multicast packet it sees to every binding with "
    "multicast state, subscribed or not (draft §6, INT-7)",
    "ignore-source-filter": "tunnels a subscribed group from any source, ignoring INCLUDE and "
    "EXCLUDE source lists (draft §6, INT-5)",
    "tunnel-link-local": "installs and tunnels groups of link-local scope (RFC 6275 §10.4.2)",
    "one-copy-only": "tunnels each multicast packet to one subscribed binding only (draft §3)",
    "native-on-home-link": "also sends the multicast data it tunnels natively on its access "
    "link (draft §3: the state points to the tunnel)",
    "ghost-state": "serves the Multicast State of rejected and deregistering BUs, and keeps a "
    "removed binding's state (draft §6: a binding cache entry MUST exist)",
    "obey-tunnelled-report": "changes a binding's state from MLD Reports tunnelled by the MN "
    "(draft §6, INT-7)",
    "no-querier": "sends no MLD Queries to its mobile nodes (draft §6, RFC 6275 §10.4.3)",
    "query-not-tunnelled": "sends its MLD Queries natively on the access link instead of "
    "through the tunnel to the CoA (draft §6, RFC 6275 §10.4.3)",
    "query-every-binding": "sends MLD Queries to bindings without multicast state (INT-7)",
    "ra-without-h": "sends the Home Agent Information option in RAs whose H flag is clear "
    "(RFC 6275 §7.4)",
    "ra-zero-lifetime": "advertises Home Agent Lifetime 0 (RFC 6275 §7.4)",
    "no-checksum-fix": "tunnels multicast data whose checksum the sender left to offload as "
    "it is, with a checksum that does not verify (RFC 6275 §10.4.2: the packet must arrive)",
    # issue 4, remaining clauses (suites/ha/test_registration.py)
    "skip-unknown-record": "installs the other records of a Multicast State option with a "
    "record of unknown type, skipping that one (RFC 3810 §5.2.12 read for reports; INT-1 "
    "makes the option malformed)",
    "ignore-mcast-checksum": "installs the records of a Multicast State option whose "
    "checksum is wrong (RFC 3810 §5.2.2, INT-2)",
    "dereg-unknown-accepted": "accepts (0) a deregistration for a home address without a "
    "binding (RFC 6275 §10.3.2, status 133)",
    "no-replay-echo": "leaves the replay protection option out of the BA (RFC 4285 §6)",
    "replay-echo-own-time": "answers an invalid timestamp with its own whole time of day, "
    "not the BU's low-order 32 bits (RFC 4285 §6)",
    "accept-stale-timestamp": "accepts a BU whose replay protection timestamp is far from "
    "its clock (RFC 4285 §6, status 144)",
    "stale-timestamp-binds": "answers a stale timestamp with 144 but creates the binding "
    "all the same (RFC 4285 §6)",
    "accept-replayed-timestamp": "accepts a timestamp no greater than one it accepted before "
    "(RFC 4285 §6, status 144)",
    "reject-reserved-bits": "refuses (128) a BU whose Reserved bits are set instead of "
    "ignoring them (RFC 6275 §6.1.7)",
    "accept-bad-coa": "accepts a care-of address that is not unicast routable (RFC 6275 "
    "§6.1.7: silently discarded)",
    "no-dad": "sends its BA for a new home address without Duplicate Address Detection "
    "(RFC 6275 §10.3.1)",
}
BA_ONLY_OPTIONS = (30, 31)  # what vectors/ puts in a BU to be skipped


@dataclass(frozen=True)
class Options:
    iface: str
    uplink: str | None
    prefix: ipaddress.IPv6Network
    address: ipaddress.IPv6Address
    keys: dict[int, bytes]
    max_lifetime: int = 420
    mutant: str | None = None
    mld_query_interval: float = DEFAULT_QUERY_INTERVAL
    mld_query_response_interval: float = DEFAULT_QUERY_RESPONSE_INTERVAL
    ra_interval: tuple[float, float] | None = None  # (MinRtrAdvInterval, MaxRtrAdvInterval)
    time_scale: float = 1.0

    @property
    def dad_wait(self) -> float:
        """How long DAD listens for an answer (RFC 4861 §10 RetransTimer, scaled)."""
        return max(DAD_MIN_WAIT, RETRANS_TIMER * self.time_scale)


def read_key(path: str) -> bytes:
    """A key file: hex text (the profile's format), or the raw key if it is not hex."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        return bytes.fromhex(data.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        return data


def ipv6_header(payload_len: int, nh: int, hlim: int, src: str, dst: str, tclass: int = 0) -> bytes:
    first = (6 << 28) | (tclass << 20)
    return IPV6_HEADER.pack(
        first,
        payload_len,
        nh,
        hlim,
        ipaddress.IPv6Address(src).packed,
        ipaddress.IPv6Address(dst).packed,
    )


def _ancillary(ancdata: list[tuple[int, int, bytes]]) -> tuple[str | None, int, int]:
    dst, hlim, tclass = None, 64, 0
    for level, kind, data in ancdata:
        if level != socket.IPPROTO_IPV6:
            continue
        if kind == socket.IPV6_PKTINFO and len(data) >= 16:
            dst = str(ipaddress.IPv6Address(data[:16]))
        elif kind == socket.IPV6_HOPLIMIT and len(data) >= 4:
            hlim = struct.unpack("=i", data[:4])[0]
        elif kind == socket.IPV6_TCLASS and len(data) >= 4:
            tclass = struct.unpack("=i", data[:4])[0]
    return dst, hlim, tclass


# A binding's multicast service as the data plane sees it: where to, and what it admits.
Served = tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, mcast.BindingMulticast]


class HomeAgentDaemon:
    def __init__(self, opts: Options, log: Callable[[str], None] | None = None) -> None:
        self.opts = opts
        self.log = log or (lambda line: print(f"dmmconf ha: {line}", flush=True))
        config = HAConfig(
            address=opts.address,
            home_prefix=opts.prefix,
            max_lifetime=opts.max_lifetime,
            keys=dict(opts.keys),
            require_auth=bool(opts.keys),
            dad=True,
        )
        self.mutant = opts.mutant
        if self.mutant == "accept-foreign-hoa":
            config = dataclasses.replace(config, home_prefix=ipaddress.IPv6Network("::/0"))
        if self.mutant == "accept-unauth":
            config = dataclasses.replace(config, require_auth=False)
        self.core = HomeAgentCore(config)
        self._stop = False
        self._rx: list[tuple[socket.socket, int]] = []
        self._tx: socket.socket | None = None
        self._nd: socket.socket | None = None  # Neighbor Advertisements on the access link
        self._dads: dict[int, tuple[float, ipaddress.IPv6Address]] = {}  # id: (deadline, hoa)
        self._dad_packets: dict[int, bytes] = {}  # id: the BU it answers
        self.tunnels = Tunnels(opts.address, None, self.log, self.mutant)
        self.multicast = MulticastForwarder(opts.uplink, opts.iface, self.log, self.mutant)
        self.querier = MldQuerier(
            opts.mld_query_interval, opts.mld_query_response_interval, self.mutant
        )
        self.advertiser: Any = None
        self.link_local: ipaddress.IPv6Address | None = None
        self.access_ifindex = 0
        self.ghosts: list[Served] = []  # mutant ghost-state only

    # ------------------------------------------------------------------ sockets

    def open(self) -> None:
        for proto in (IPPROTO_DSTOPTS, IPPROTO_MH):
            s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, proto)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVTCLASS, 1)
            s.setblocking(False)
            self._rx.append((s, proto))
        self._tx = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
        tunnel = socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_IPV6_IN_IPV6)
        tunnel.setblocking(False)
        self._rx.append((tunnel, IPPROTO_IPV6_IN_IPV6))
        self.tunnels = Tunnels(self.opts.address, self._tx, self.log, self.mutant)
        if self.mutant == "obey-tunnelled-report":
            self.tunnels.on_inner = self._tunnelled_report
        self.multicast.open()
        self._open_access_link()

    def _open_access_link(self) -> None:
        """The access interface: its link-local address (the MLD querier's source, RFC 3810
        §5.1.14) and, with --ra-interval, the Router Advertisements (RFC 6275 §7)."""
        from harness.netproto import advertiser, icmp6
        from harness.netproto import ra as radv

        try:
            self.access_ifindex = socket.if_nametoindex(self.opts.iface)
        except OSError as exc:
            self.log(f"no access interface {self.opts.iface}: {exc}; no MLD queries, no RAs")
            return
        deadline = time.monotonic() + 5.0
        while True:
            addr, why = icmp6.link_local_address(self.access_ifindex)
            if addr is not None or time.monotonic() > deadline:
                break
            select.select([], [], [], 0.02)  # a tentative address: wait for DAD to end
        if addr is None:
            self.log(f"{self.opts.iface}: {why}; no MLD queries")
        else:
            self.link_local = ipaddress.IPv6Address(addr)
        self._open_nd()
        if self.opts.ra_interval is None:
            return
        low, high = self.opts.ra_interval
        params = radv.RaParams(
            prefix=self.opts.prefix,
            router_address=self.opts.address,
            ha=radv.HaInfo(option=True),  # on the wire even with default values
            max_interval=high,
        )
        self.advertiser = advertiser.RouterAdvertiser(
            self.opts.iface,
            params,
            min_interval=low,
            max_interval=high,
            max_ra_delay=MAX_RA_DELAY_TIME * self.opts.time_scale,
            name=f"dmmconf-ha-ra-{self.opts.iface}",
        )
        self.advertiser.start(timeout=5.0)
        self.log(f"Router Advertisements on {self.opts.iface} every {low:g}-{high:g} s")

    def _open_nd(self) -> None:
        """A raw ICMPv6 socket on the access interface that passes Neighbor Advertisements
        only (RFC 3542 §3.2 ICMP6_FILTER): the answers to the HA's DAD."""
        nd = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        try:
            blocked = [0xFFFFFFFF] * 8  # a set bit blocks its type
            blocked[encode.ICMPV6_NA >> 5] &= ~(1 << (encode.ICMPV6_NA & 31))
            nd.setsockopt(SOL_ICMPV6, ICMP6_FILTER, struct.pack("=8I", *blocked))
            nd.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.opts.iface.encode())
            nd.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
        except OSError as exc:
            nd.close()
            self.log(f"no Neighbor Advertisements from {self.opts.iface}: {exc}; DAD blind")
            return
        nd.setblocking(False)
        self._nd = nd

    def close(self) -> None:
        if self._nd is not None:
            self._nd.close()
            self._nd = None
        if self.advertiser is not None:
            with contextlib.suppress(Exception):
                self.advertiser.stop()  # with a final RA (RFC 4861 §6.2.5)
            self.advertiser = None
        for s, _ in self._rx:
            s.close()
        self._rx = []
        if self._tx is not None:
            self._tx.close()
            self._tx = None

    def stop(self, *_: object) -> None:
        self._stop = True

    # ------------------------------------------------------------------ loop

    def served(self) -> list[Served]:
        """Every binding's multicast service (and, for one mutant, its ghosts)."""
        return [(b.coa, b.multicast) for b in self.core.bindings()] + self.ghosts

    def _timeout(self) -> float | None:
        waits = []
        deadline = self.core.next_deadline()
        if deadline is not None:
            waits.append(max(0.0, deadline - time.time()) + 0.001)
        due = self.querier.next_due()
        if due is not None:
            waits.append(max(0.0, due - time.monotonic()))
        if self._dads:
            nearest = min(deadline for deadline, _ in self._dads.values())
            waits.append(max(0.0, nearest - time.monotonic()))
        return min(waits) if waits else None

    def run(self) -> int:
        self.open()
        wake_r, wake_w = socket.socketpair()
        wake_r.setblocking(False)
        wake_w.setblocking(False)
        signal.set_wakeup_fd(wake_w.fileno())  # a signal wakes the poll below
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        self.log(
            f"prefix {self.opts.prefix}, address {self.opts.address}, "
            f"{len(self.opts.keys)} MN-HA key(s), MLD Query Interval "
            f"{self.opts.mld_query_interval:g} s"
            + (f", MUTANT {self.mutant}" if self.mutant else "")
        )
        print(READY_LINE, flush=True)
        try:
            while not self._stop:
                readers: list[Any] = [wake_r, *(s for s, _ in self._rx), *self.tunnels.fds()]
                readers += self.multicast.sniffers
                if self._nd is not None:
                    readers.append(self._nd)
                ready, _, _ = select.select(readers, [], [], self._timeout())
                for r in ready:
                    if r is wake_r:
                        with contextlib.suppress(OSError):
                            wake_r.recv(64)
                        continue
                    if isinstance(r, int):
                        self.tunnels.from_tun(r)
                        continue
                    if r in self.multicast.sniffers:
                        self.multicast.drain(r, self.served(), self.tunnels)
                        continue
                    if self._nd is not None and r is self._nd:
                        self._drain_nd(self._nd)
                        continue
                    proto = {id(s): p for s, p in self._rx}.get(id(r))
                    if proto == IPPROTO_IPV6_IN_IPV6:
                        self.tunnels.from_coa(r)
                    elif proto is not None:
                        self._drain(r, proto)
                self._dad_timeouts()
                self.perform(self.core.tick(time.time()))
                self._query()
        finally:
            signal.set_wakeup_fd(-1)
            wake_r.close()
            wake_w.close()
            self.tunnels.close()
            self.multicast.close()
            self.close()
        self.log("stopped")
        return 0

    # ------------------------------------------------------------------ DAD

    def _start_dad(self, request_id: int, hoa: ipaddress.IPv6Address) -> None:
        """RFC 4862 §5.4.2 on behalf of the mobile node: one NS from ::, then listen."""
        if self.mutant == "no-dad" or self._tx is None or not self.access_ifindex:
            self._dad_done(request_id, False)
            return
        ns = encode.dad_neighbor_solicitation(hoa)
        self._send(ns, str(encode.solicited_node(hoa)), self.access_ifindex)
        self._dads[request_id] = (time.monotonic() + self.opts.dad_wait, hoa)
        self.log(f"DAD for {hoa} on {self.opts.iface}")

    def _drain_nd(self, s: socket.socket) -> None:
        while True:
            try:
                data, anc, _flags, _addr = s.recvmsg(65535, 64)
            except (BlockingIOError, InterruptedError):
                return
            _dst, hlim, _tclass = _ancillary(anc)
            target = encode.advertised_target(data)
            if target is None or hlim != 255:  # RFC 4861 §7.1.2: from the link only
                continue
            for request_id, (_deadline, hoa) in list(self._dads.items()):
                if hoa == target:
                    del self._dads[request_id]
                    self.log(f"DAD for {hoa}: a neighbour answered, the address is in use")
                    self._dad_done(request_id, True)

    def _dad_timeouts(self) -> None:
        now = time.monotonic()
        for request_id, (deadline, hoa) in list(self._dads.items()):
            if deadline <= now:
                del self._dads[request_id]
                self.log(f"DAD for {hoa}: no answer")
                self._dad_done(request_id, False)

    def _query(self) -> None:
        """Draft §6 / RFC 6275 §10.4.3: the General Queries that are due, in their tunnels."""
        now = time.monotonic()
        self.querier.sync(self.core.bindings(), now)
        if self.link_local is None:
            return
        for coa in self.querier.due(now):
            query = encode.mld_general_query(
                self.link_local,
                max_response=self.opts.mld_query_response_interval,
                query_interval=self.opts.mld_query_interval,
            )
            if self.mutant == "query-not-tunnelled":
                self._send(query, str(encode.ALL_NODES), self.access_ifindex)
            else:
                self.tunnels.encapsulate(query, coa)

    def _drain(self, s: socket.socket, proto: int) -> None:
        while True:
            try:
                data, anc, _flags, addr = s.recvmsg(65535, 256)
            except (BlockingIOError, InterruptedError):
                return
            dst, hlim, tclass = _ancillary(anc)
            src = addr[0].split("%", 1)[0]
            if len(data) >= 40 and data[0] >> 4 == 6:
                packet = data  # delivered with its IPv6 header
            elif dst is None:
                continue
            else:
                packet = ipv6_header(len(data), proto, hlim, src, dst, tclass) + data
            self.receive(packet)

    def receive(self, packet: bytes) -> None:
        self._react(packet, lambda: self.core.receive(packet, time.time()))

    def _react(self, packet: bytes, step: Callable[[], list[Action]]) -> None:
        """Perform what the core makes of `packet` (`step` asks it: at once, or when its
        DAD ends), as a mutant would."""
        before = {(b.hoa, b.bid): (b.coa, b.multicast) for b in self.core.bindings()}
        actions = step()
        self._remember_dad_packet(packet, actions)
        if self.mutant:
            actions = self._mutate_reaction(packet, actions)
            if self.mutant == "ghost-state":
                self._haunt(packet, actions, before)
        self.perform(actions)

    def _remember_dad_packet(self, packet: bytes, actions: list[Action]) -> None:
        """The BU a DAD will answer (the newest one of its home address), kept for the
        mutants that judge the BA by its BU."""
        for a in actions:
            if isinstance(a, DadRequest):
                self._dad_packets[a.request_id] = packet
        if actions or not self._dads:
            return
        try:
            msg = compact.parse_packet(packet)
        except compact.Malformed:
            return
        for request_id, (_deadline, hoa) in self._dads.items():
            if msg.hoa and ipaddress.IPv6Address(msg.hoa) == hoa:
                self._dad_packets[request_id] = packet

    def _dad_done(self, request_id: int, duplicate: bool) -> None:
        def step() -> list[Action]:
            return self.core.dad_done(request_id, duplicate, time.time())

        packet = self._dad_packets.pop(request_id, None)
        if packet is None:
            self.perform(step())
        else:
            self._react(packet, step)

    def _mutate_reaction(self, packet: bytes, actions: list[Action]) -> list[Action]:
        m = self.mutant
        if m == "answer-discarded" and not actions and len(packet) >= 40:
            src = ipaddress.IPv6Address(packet[8:24])
            return [SendBindingError(src, src, 1)]
        out: list[Action] = []
        for a in actions:
            if isinstance(a, SendBindingAck) and a.status == 0:
                if m == "reject-reserved-bits" and _reserved_bits(packet):
                    a = dataclasses.replace(a, status=128, lifetime=0)
                if m == "stale-timestamp-binds" and _stale_timestamp(packet):
                    a = dataclasses.replace(
                        a, status=BAStatus.MIPV6_ID_MISMATCH, lifetime=0, multicast=()
                    )
                if (
                    m == "reject-malformed-mcast"
                    and a.multicast
                    and not any(e.records for e in a.multicast)
                ):
                    a = dataclasses.replace(a, status=128, multicast=())
                if m == "reject-ba-options" and _has_options(packet, BA_ONLY_OPTIONS):
                    a = dataclasses.replace(a, status=128)
            out.append(a)
        return out

    def _haunt(
        self, packet: bytes, actions: list[Action], before: dict[tuple[Any, int], Served]
    ) -> None:
        """Mutant ghost-state: what a rejected or deregistering BU carried, and what a
        removed binding had, stays served."""
        now = {(b.hoa, b.bid) for b in self.core.bindings()}
        for key, (coa, state) in before.items():
            if key not in now and (state.mld.groups or state.igmp.groups):
                self.ghosts.append((coa, state))
        for a in actions:
            if isinstance(a, SendBindingAck) and (a.status >= 128 or a.lifetime == 0):
                carried = _multicast_states(packet)
                if carried:
                    ghost = mcast.BindingMulticast()
                    ghost.apply(carried)
                    self.ghosts.append((a.coa, ghost))
        self.multicast.sync(self.served())

    def _tunnelled_report(self, coa: ipaddress.IPv6Address, inner: bytes) -> None:
        """Mutant obey-tunnelled-report: an MLDv2 Report from a CoA changes its bindings."""
        report = _mld_report(inner)
        if report is None:
            return
        for b in self.core.bindings():
            if b.coa == coa:
                b.multicast.apply([report])
        self.multicast.sync(self.served())

    # ------------------------------------------------------------------ actions

    def _mutate(self, action: Action) -> Action | None:
        m = self.mutant
        if isinstance(action, SendBindingAck):
            if m == "wrong-seq" and action.status == 0:
                return dataclasses.replace(action, seq=(action.seq + 1) & 0xFFFF)
            if m == "long-lifetime" and action.status == 0 and action.lifetime:
                return dataclasses.replace(action, lifetime=action.lifetime + 1)
            if m == "no-echo":
                return dataclasses.replace(action, multicast=())
            if m == "dereg-lifetime" and action.status == 0 and action.lifetime == 0:
                return dataclasses.replace(action, lifetime=1)
            if m == "unsigned-ba":
                return dataclasses.replace(action, auth_spi=None)
            if m == "dereg-unknown-accepted" and action.status == BAStatus.NOT_HOME_AGENT:
                return dataclasses.replace(action, status=0)
            if m == "no-replay-echo" and action.status == 0:
                return dataclasses.replace(action, replay_timestamp=None)
            if m == "replay-echo-own-time" and action.status == BAStatus.MIPV6_ID_MISMATCH:
                return dataclasses.replace(action, replay_timestamp=ha_core._ntp_now(time.time()))
        if m == "no-binding-error" and isinstance(action, SendBindingError):
            return None
        if m == "no-param-problem" and isinstance(action, SendParameterProblem):
            return None
        return action

    def perform(self, actions: list[Action]) -> None:
        for original in actions:
            action = self._mutate(original) if self.mutant else original
            if action is None:
                continue
            if isinstance(action, SendBindingAck):
                pkt = encode.binding_ack(action, self.core.config)
                self._send(bytes(pkt), str(action.coa))
                self.log(
                    f"BA to {action.coa} for {action.hoa}: status {action.status}, "
                    f"seq {action.seq}, lifetime {action.lifetime}"
                )
            elif isinstance(action, SendBindingError):
                self._send(self._binding_error(action), str(action.dst))
                self.log(f"BE to {action.dst}: status {action.status}")
            elif isinstance(action, SendParameterProblem):
                self._send(self._param_problem(action), str(action.dst))
                self.log(f"ICMPv6 parameter problem to {action.dst}: pointer {action.pointer}")
            elif isinstance(action, TunnelUp):
                self.log(f"tunnel up: {action.hoa} (bid {action.bid}) -> {action.coa}")
                self.tunnels.up(action.hoa, action.bid, action.coa)
            elif isinstance(action, TunnelDown):
                self.log(f"tunnel down: {action.hoa} (bid {action.bid}) -> {action.coa}")
                self.tunnels.down(action.hoa, action.bid)
            elif isinstance(action, MulticastChanged):
                self.log(f"multicast state of {action.hoa} -> {action.coa} changed")
                self.multicast.sync(self.served())
            elif isinstance(action, DadRequest):
                self._start_dad(action.request_id, action.hoa)
            elif isinstance(action, DnsRequest):
                self.log(f"DNS update for {action.hoa} not supported: answered as failed")
                self.perform(self.core.dns_done(action.request_id, False))

    def _binding_error(self, action: SendBindingError) -> bytes:
        from scapy.layers.inet6 import IPv6

        from harness.wire.mobility import BindingError

        pkt = IPv6(src=str(self.opts.address), dst=str(action.dst)) / BindingError(
            status=action.status, hoa=str(action.hoa)
        )
        return bytes(pkt)

    def _param_problem(self, action: SendParameterProblem) -> bytes:
        from scapy.layers.inet6 import ICMPv6ParamProblem, IPv6
        from scapy.packet import Raw

        room = ICMP6_MAX - 40 - 8
        pkt = (
            IPv6(src=str(self.opts.address), dst=str(action.dst))
            / ICMPv6ParamProblem(code=0, ptr=action.pointer)
            / Raw(action.invoking_packet[:room])
        )
        return bytes(pkt)

    def _send(self, data: bytes, dst: str, scope: int = 0) -> None:
        assert self._tx is not None
        try:
            self._tx.sendto(data, (dst, 0, 0, scope))
        except OSError as exc:
            self.log(f"cannot send to {dst}: {exc}")


class MldQuerier:
    """When each binding with IPv6 multicast state is due for a General Query (draft §6,
    RFC 6275 §10.4.3, INT-7): at once when it gets state (or moves to another CoA), then
    every Query Interval. Bindings without multicast state get none. Sans-I/O: the daemon
    builds and tunnels the queries."""

    def __init__(self, interval: float, response: float, mutant: str | None = None) -> None:
        self.interval = interval
        self.response = response
        self.mutant = mutant
        self.schedule: dict[tuple[ipaddress.IPv6Address, int], tuple[float, Any]] = {}

    def sync(self, bindings: list[ha_core.Binding], now: float) -> None:
        if self.mutant == "no-querier":
            return
        wanted = {
            (b.hoa, b.bid): b.coa
            for b in bindings
            if isinstance(b.coa, ipaddress.IPv6Address)
            and (b.multicast.mld.groups or self.mutant == "query-every-binding")
        }
        for key in [k for k in self.schedule if k not in wanted]:
            del self.schedule[key]
        for key, coa in wanted.items():
            entry = self.schedule.get(key)
            if entry is None or entry[1] != coa:
                self.schedule[key] = (now, coa)

    def next_due(self) -> float | None:
        return min((t for t, _ in self.schedule.values()), default=None)

    def due(self, now: float) -> list[Any]:
        """The CoAs to query now; each is scheduled again one interval from now."""
        out = []
        for key, (when, coa) in list(self.schedule.items()):
            if when <= now:
                out.append(coa)
                self.schedule[key] = (now + self.interval, coa)
        return out


class Tunnels:
    """The userspace data plane (RFC 6275 §10.4.1, §10.4.5): per binding a TUN device with
    the home address's /128 routed into it. What the kernel routes there goes to the CoA
    inside IPv6 (outer source: the HA's address), sent whole on the IPPROTO_RAW socket;
    what arrives on the raw socket of protocol 41 from a bound CoA with the bound home
    address as inner source is written to that TUN device, and the kernel forwards it.
    Anything else from a CoA (an MLD Report from its link-local address, INT-7) is dropped."""

    def __init__(
        self,
        address: ipaddress.IPv6Address,
        tx: socket.socket | None,
        log: Callable[[str], None],
        mutant: str | None = None,
    ) -> None:
        self.address = address
        self.tx = tx
        self.log = log
        self.mutant = mutant
        self._numbers = iter(range(1 << 20))
        self.by_key: dict[tuple[ipaddress.IPv6Address, int], tuple[int, str, Any]] = {}
        self.by_fd: dict[int, tuple[ipaddress.IPv6Address, int]] = {}
        self.on_inner: Callable[[ipaddress.IPv6Address, bytes], None] | None = None

    def fds(self) -> list[int]:
        return list(self.by_fd)

    def up(self, hoa: ipaddress.IPv6Address, bid: int, coa: Any) -> None:
        key = (hoa, bid)
        if key in self.by_key:
            fd, name, _ = self.by_key[key]
            self.by_key[key] = (fd, name, coa)
            return
        if self.mutant == "no-tunnel" or not isinstance(coa, ipaddress.IPv6Address):
            return
        name = f"{TUN_PREFIX}{next(self._numbers)}"
        try:
            fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
            fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
        except OSError as exc:
            self.log(f"cannot create TUN device {name}: {exc}")
            return
        try:
            for argv in (
                # No link-local address: the kernel's own ND and MLD chatter on the device
                # would otherwise be read back from it and tunnelled to the CoA.
                ["ip", "link", "set", name, "addrgenmode", "none", "up"],
                ["ip", "-6", "route", "replace", f"{hoa}/128", "dev", name],
            ):
                subprocess.run(argv, check=True, capture_output=True, timeout=5)
        except (OSError, subprocess.SubprocessError) as exc:
            os.close(fd)
            self.log(f"cannot set TUN device {name} up: {exc}")
            return
        self.by_key[key] = (fd, name, coa)
        self.by_fd[fd] = key

    def down(self, hoa: ipaddress.IPv6Address, bid: int) -> None:
        entry = self.by_key.pop((hoa, bid), None)
        if entry is not None:
            fd = entry[0]
            self.by_fd.pop(fd, None)
            os.close(fd)  # a TUN device that is not persistent goes, and its route with it

    def close(self) -> None:
        for key in list(self.by_key):
            self.down(*key)

    def from_tun(self, fd: int) -> None:
        key = self.by_fd.get(fd)
        while key is not None:
            try:
                inner = os.read(fd, 65535)
            except (BlockingIOError, InterruptedError):
                return
            if not inner or inner[0] >> 4 != 6 or self.tx is None:
                continue
            self.encapsulate(inner, self.by_key[key][2])

    def encapsulate(self, inner: bytes, coa: ipaddress.IPv6Address) -> None:
        if self.tx is None:
            return
        outer = ipv6_header(len(inner), IPPROTO_IPV6_IN_IPV6, 64, str(self.address), str(coa))
        with contextlib.suppress(OSError):
            self.tx.sendto(outer + inner, (str(coa), 0, 0, 0))

    def from_coa(self, sock: socket.socket) -> None:
        while True:
            try:
                inner, addr = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            if self.mutant == "no-reverse-tunnel":
                continue
            if len(inner) >= 40 and inner[0] >> 4 == 6 and inner[6] == IPPROTO_IPV6_IN_IPV6:
                inner = inner[40:]  # delivered with its outer header
            if len(inner) < 40 or inner[0] >> 4 != 6:
                continue
            src = ipaddress.IPv6Address(addr[0].split("%", 1)[0])
            if self.on_inner is not None:
                self.on_inner(src, inner)
            hoa = ipaddress.IPv6Address(inner[8:24])
            for (bound, _bid), (fd, _name, coa) in self.by_key.items():
                if bound == hoa and coa == src:
                    with contextlib.suppress(OSError):
                        os.write(fd, inner)
                    break


def _group_served(group: ipaddress.IPv6Address) -> bool:
    return ha_core.served_scope(group)


class MulticastForwarder:
    """Draft §6 / RFC 6275 §10.4.2: the groups the bindings' multicast state asks for are
    joined on the uplink (the kernel's MLDv2 host stack reports them to the core), and each
    multicast packet that arrives on the uplink, or from a source on the access link, is
    tunnelled to the CoA of every binding whose state admits (group, source): one copy per
    subscribed binding (draft §3), and none on the access link itself. Groups of link-local
    scope are never joined nor tunnelled (RFC 6275 §10.4.2)."""

    def __init__(
        self,
        uplink: str | None,
        access: str | None,
        log: Callable[[str], None],
        mutant: str | None = None,
    ) -> None:
        self.uplink = uplink
        self.access = access
        self.log = log
        self.mutant = mutant
        self.joined: set[tuple[ipaddress.IPv6Address, ipaddress.IPv6Address | None]] = set()
        self.joiner: socket.socket | None = None
        self.sniffers: list[socket.socket] = []
        self.native: socket.socket | None = None  # mutant native-on-home-link only
        self.ifindex = 0

    def open(self) -> None:
        if self.uplink is None:
            return
        try:
            self.ifindex = socket.if_nametoindex(self.uplink)
        except OSError as exc:
            self.log(f"no uplink {self.uplink}: {exc}; multicast is not forwarded")
            return
        self.joiner = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        for name in (self.uplink, self.access):
            if name is None:
                continue
            sniffer = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IPV6))
            try:
                sniffer.bind((name, 0))
            except OSError as exc:
                sniffer.close()
                self.log(f"cannot watch {name} for multicast data: {exc}")
                continue
            sniffer.setblocking(False)
            sniffer.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)  # to see TP_STATUS_CSUMNOTREADY
            self.sniffers.append(sniffer)
            if name == self.access and self.mutant == "native-on-home-link":
                self.native = sniffer

    def close(self) -> None:
        for s in [self.joiner, *self.sniffers]:
            if s is not None:
                s.close()
        self.joiner, self.sniffers, self.native = None, [], None
        self.joined.clear()

    def sync(self, served: list[Served]) -> None:
        if self.joiner is None:
            return
        wanted: set[tuple[ipaddress.IPv6Address, ipaddress.IPv6Address | None]] = set()
        for _coa, state in served:
            for group, gstate in state.mld.groups.items():
                if not isinstance(group, ipaddress.IPv6Address) or not _group_served(group):
                    continue
                if gstate.mode is mcast.Mode.INCLUDE:
                    wanted |= {
                        (group, src)
                        for src in gstate.sources
                        if isinstance(src, ipaddress.IPv6Address)
                    }
                else:
                    wanted.add((group, None))
        if self.mutant != "ignore-leave":
            for group, source in sorted(self.joined - wanted, key=str):
                self._member(group, source, join=False)
        for group, source in sorted(wanted - self.joined, key=str):
            self._member(group, source, join=True)

    def _member(
        self, group: ipaddress.IPv6Address, source: ipaddress.IPv6Address | None, join: bool
    ) -> None:
        from harness.netproto import sockopts

        assert self.joiner is not None
        if source is None:
            opt = sockopts.MCAST_JOIN_GROUP if join else sockopts.MCAST_LEAVE_GROUP
            value = sockopts.group_req(self.ifindex, group)
        else:
            opt = sockopts.MCAST_JOIN_SOURCE_GROUP if join else sockopts.MCAST_LEAVE_SOURCE_GROUP
            value = sockopts.group_source_req(self.ifindex, group, source)
        try:
            self.joiner.setsockopt(socket.IPPROTO_IPV6, opt, value)
        except OSError as exc:
            self.log(f"cannot {'join' if join else 'leave'} ({source}, {group}): {exc}")
            return
        if join:
            self.joined.add((group, source))
        else:
            self.joined.discard((group, source))
        self.log(f"{'joined' if join else 'left'} ({source or '*'}, {group}) on {self.uplink}")

    def _wants(
        self, state: mcast.BindingMulticast, group: ipaddress.IPv6Address, source: Any
    ) -> bool:
        m = self.mutant
        if m == "ignore-leave":
            return True
        if m == "forward-unsubscribed":
            return bool(state.mld.groups)
        if m == "ignore-source-filter":
            return group in state.mld.groups
        return state.admits(group, source)

    def drain(self, sniffer: socket.socket, served: list[Served], tunnels: Tunnels) -> None:
        while True:
            try:
                packet, anc, _flags, addr = sniffer.recvmsg(65535, 64)
            except (BlockingIOError, InterruptedError):
                return
            if addr[2] == socket.PACKET_OUTGOING or len(packet) < 40 or packet[24] != 0xFF:
                continue
            group = ipaddress.IPv6Address(packet[24:40])
            if _checksum_not_ready(anc) and self.mutant != "no-checksum-fix":
                packet = ipv6.complete_checksum(packet)
            if self.mutant == "no-mcast-forward":
                continue
            if not _group_served(group) and self.mutant != "tunnel-link-local":
                continue  # link-local scope (or less) stays on the link (RFC 6275 §10.4.2)
            source = ipaddress.IPv6Address(packet[8:24])
            sent = False
            for coa, state in served:
                if isinstance(coa, ipaddress.IPv6Address) and self._wants(state, group, source):
                    tunnels.encapsulate(packet, coa)
                    sent = True
                    if self.mutant == "one-copy-only":
                        break
            if sent and self.native is not None and self.access is not None:
                mac = b"\x33\x33" + group.packed[-4:]
                with contextlib.suppress(OSError):
                    self.native.sendto(packet, (self.access, ETH_P_IPV6, 0, 0, mac))


def _checksum_not_ready(ancdata: list[tuple[int, int, bytes]]) -> bool:
    """Does PACKET_AUXDATA (struct tpacket_auxdata, tp_status first) say the packet's
    checksum was left to offload?"""
    for level, kind, data in ancdata:
        if level == SOL_PACKET and kind == PACKET_AUXDATA and len(data) >= 4:
            return bool(struct.unpack_from("=I", data)[0] & TP_STATUS_CSUMNOTREADY)
    return False


def _has_options(packet: bytes, types: tuple[int, ...]) -> bool:
    try:
        msg = compact.parse_packet(packet)
        options = compact.parse_options(msg.body, compact.FIXED_PART[compact.MHType.BU])
    except (compact.Malformed, KeyError):
        return False
    return any(o.otype in types for o in options)


def _reserved_bits(packet: bytes) -> int:
    """The Reserved bits of a BU (RFC 6275 §6.1.7: after the flags, before the Lifetime)."""
    try:
        msg = compact.parse_packet(packet)
    except compact.Malformed:
        return 0
    if msg.mhtype != compact.MHType.BU or len(msg.body) < 10:
        return 0
    return int(struct.unpack_from("!H", msg.body, 8)[0]) & 0x3F


def _stale_timestamp(packet: bytes) -> bool:
    """Does the BU carry a replay protection timestamp far from this host's clock?"""
    try:
        msg = compact.parse_packet(packet)
        options = compact.parse_options(msg.body, compact.FIXED_PART[compact.MHType.BU])
    except (compact.Malformed, KeyError):
        return False
    for o in options:
        if o.otype == MobOpt.REPLAY_PROTECTION and len(o.data) == 8:
            return not _TIMESTAMP_FRESH(struct.unpack("!Q", o.data)[0], time.time())
    return False


_TIMESTAMP_FRESH = ha_core.timestamp_fresh  # the real check, whatever a mutant patches


def _skipping_unknown_records(data: bytes) -> compact.McastState:
    """Mutant skip-unknown-record: a Multicast State body parsed with the records of
    unknown type left out (RFC 3810 §5.2.12 applied to the option, against INT-1)."""
    state = compact.parse_report(data)  # as on the wire: unknown record types kept
    known = tuple(r for r in state.records if r.rtype in range(1, 7))
    return dataclasses.replace(state, records=known)


_PARSE_MULTICAST_STATE = compact.parse_multicast_state


def _multicast_states(packet: bytes) -> list[compact.McastState]:
    """The Multicast State options of a BU, parsed (malformed ones left out)."""
    from harness.config import WireConfig

    try:
        msg = compact.parse_packet(packet)
        options = compact.parse_options(msg.body, compact.FIXED_PART[compact.MHType.BU])
    except (compact.Malformed, KeyError):
        return []
    out = []
    for o in options:
        if compact.is_multicast_state(o, WireConfig.from_env()):
            with contextlib.suppress(compact.Malformed):
                out.append(compact.parse_multicast_state(o.data))
    return out


def _mld_report(inner: bytes) -> compact.McastState | None:
    """An MLDv2 Report (RFC 3810 §5.2) in an IPv6 packet, behind at most a Hop-by-Hop
    header; its body has the layout of the Multicast State option's."""
    nh, pos = inner[6], 40
    if nh == IPPROTO_HOPOPTS and len(inner) >= pos + 2:
        nh, pos = inner[pos], pos + 8 * (inner[pos + 1] + 1)
    if nh != IPPROTO_ICMPV6 or len(inner) < pos + 8 or inner[pos] != 143:
        return None
    try:
        return compact.parse_multicast_state(inner[pos:])
    except compact.Malformed:
        return None


def _ra_mutant(name: str) -> None:
    """RA mutants: the bytes the RouterAdvertiser sends are altered."""
    from harness.netproto import ra as radv

    build = radv.ra_bytes

    def mutated(params: Any) -> bytes:
        ra = bytearray(build(params))
        if name == "ra-without-h":
            ra[5] &= ~0x20 & 0xFF  # RFC 6275 §7.1: the H flag
        pos = 16  # RFC 4861 §4.2: options follow the 16-octet header
        while pos + 2 <= len(ra) and ra[pos + 1]:
            if ra[pos] == 8 and name == "ra-zero-lifetime":  # Home Agent Information
                struct.pack_into("!H", ra, pos + 6, 0)
            pos += 8 * ra[pos + 1]
        return bytes(ra)

    radv.ra_bytes = mutated


def install_mutant(name: str | None) -> None:
    """Mutants that live in the core's helpers (patched in this process only)."""
    if name is None:
        return
    if name not in MUTANTS:
        raise SystemExit(f"dmmconf ha: unknown mutant {name!r} (known: {', '.join(MUTANTS)})")
    if name == "ignore-seq":
        ha_core.seq_newer = lambda seq, last: True
    elif name == "accept-bad-auth":
        ha_core._authentic = lambda *args: True
    elif name == "tunnel-link-local":
        ha_core.served_scope = lambda group: True
    elif name in ("accept-stale-timestamp", "stale-timestamp-binds"):
        ha_core.timestamp_fresh = lambda stamp, now: True
    elif name == "accept-replayed-timestamp":
        ha_core.timestamp_valid = lambda stamp, last, now: _TIMESTAMP_FRESH(stamp, now)
    elif name == "accept-bad-coa":
        ha_core.unicast_routable = lambda addr: True
    elif name == "skip-unknown-record":
        compact.parse_multicast_state = _skipping_unknown_records
    elif name == "ignore-mcast-checksum":

        def checksum_ignored(data: bytes) -> compact.McastState:
            return dataclasses.replace(_PARSE_MULTICAST_STATE(data), checksum_ok=True)

        compact.parse_multicast_state = checksum_ignored
    elif name == "changes-replace-state":
        apply = mcast.apply_records
        mcast.apply_records = lambda previous, records: apply(mcast.ListenerState(), records)
    elif name == "drop-aux-records":
        parse = compact.parse_multicast_state

        def without_aux(data: bytes) -> compact.McastState:
            state = parse(data)
            kept = tuple(r for r in state.records if not r.auxdata)
            return dataclasses.replace(state, records=kept)

        compact.parse_multicast_state = without_aux
    elif name in ("ra-without-h", "ra-zero-lifetime"):
        _ra_mutant(name)


def main(opts: Options) -> int:
    install_mutant(opts.mutant)
    daemon = HomeAgentDaemon(opts)
    try:
        return daemon.run()
    except PermissionError as exc:
        print(f"dmmconf ha: cannot open raw sockets: {exc} (needs CAP_NET_RAW)", file=sys.stderr)
        return 1


def mutant_from_env() -> str | None:
    return os.environ.get("DMMCONF_HA_MUTANT") or None
