"""An MLD and IGMP proxy (RFC 4605) for the lab's routers: IPv6 multicast over the
kernel's multicast routing or a userspace forwarder, IPv4 multicast over the userspace
forwarder always.

The messages, timers and socket options it uses are harness.netproto's (mld, igmp,
sockopts); this module is the proxy process: listener state, upstream memberships, the
data path.

Why this and not smcroute: smcroute installs static (S,G) routes that someone must add by
hand; the lab needs what a real network does, multicast that reaches an access link
*because a listener there asked for it* (MLD, IGMP), and stops when nobody asks. This
proxy does that with nothing but the kernel and the standard library:

* one process serves every router of a lab (core and each AR); each router has two
  halves of the same listener logic (`Family`): MLD for IPv6 groups (`Mld`) and IGMPv3
  for IPv4 groups (`Igmp`), each with a socket for its queries and reports and a UDP
  socket that holds the proxy's memberships on the upstream interface;
* on the downstream interfaces it is the MLDv2 and the IGMPv3 querier (General Queries
  every `query_interval` to ff02::1 and 224.0.0.1, with the Router Alert; Group (and
  Source) Specific Queries on leaves; the same timers for both) and keeps the listener
  state from the reports (RFC 3810 §7, RFC 3376 §6, simplified: EXCLUDE-mode records
  count as "all sources", source lists are not subtracted; MLDv1 and IGMPv1/v2 reports
  and leaves are mapped onto v2/v3 records);
* it joins, on the upstream interface, the union of what its downstream links want
  (MCAST_JOIN_GROUP for any-source interest, MCAST_JOIN_SOURCE_GROUP per source
  otherwise, at IPPROTO_IPV6 or IPPROTO_IP); the router's own kernel then sends the
  MLDv2 and IGMPv3 reports upstream, so the proxy of the core (whose downstream links
  are the AR uplinks) learns them in turn;
* data, RFC 4605 §4.1: an (S,G) packet goes to the downstream interfaces with a listener
  for (S,G), plus the upstream interface when it came from downstream, never back out of
  its arrival interface. For IPv6 either the kernel forwards (MRT6: on an MRT6MSG_NOCACHE
  upcall the proxy installs an MFC entry with those outgoing interfaces, rewritten
  whenever listener state changes) or the userspace forwarder does (`Family.on_frames`:
  a packet socket per interface, hop limit decremented, checksums a local sender left to
  offload completed). IPv4 always takes the userspace forwarder (a second packet socket
  per interface, for ETH_P_IP; TTL decremented and the header checksum updated; groups
  outside 224.0.0.0/24 only): the kernel's IPv4 multicast routing (MRT) is never used,
  whatever the IPv6 data path, so nothing is forwarded twice.

Run as `python -m harness.lab.mldproxy CONFIG.json`; the config names the routers. It
prints "ready" once every socket is set up. With "parent_pid" it exits when that process
does (pidfd), so a test run killed with kill -9 leaves no proxy behind. A unix control
socket answers one JSON request per connection: {"op": "state"}, {"op": "query", "ns":
NS, "ifname": IF, "version": 6 or 4} (a General Query now, MLD by default), {"op":
"release", "ns": NS} (close that router's sockets, its MRT6 socket among them, e.g. so a
reference HA may take multicast routing over). With DMMCONF_MLD_DEBUG=1 in its
environment it logs every report, query and forwarding entry change to its log file
(/run/dmmconf/runs/<runid>.mldproxy.log, removed with the lab).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import selectors
import signal
import socket
import struct
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.lab import datapath as datapaths
from harness.lab import netns
from harness.netproto import igmp, mld
from harness.netproto.mld import ALLOW, BLOCK, IS_EX, IS_IN, TO_EX, TO_IN, Record, Timers
from harness.netproto.packet import (
    ETH_P_IP,
    ETH_P_IPV6,
    checksum_left_to_offload,
    open_packet_socket,
)
from harness.netproto.sockopts import (
    ICMP6_FILTER,
    IP_MULTICAST_LOOP,
    IP_MULTICAST_TTL,
    IP_OPTIONS,
    IP_PKTINFO,
    IPPROTO_ICMPV6,
    IPPROTO_IGMP,
    IPPROTO_IP,
    IPPROTO_IPV6,
    IPV6_HOPOPTS,
    IPV6_PKTINFO,
    IPV6_RECVPKTINFO,
    MAXMIFS,
    MCAST_JOIN_GROUP,
    MCAST_JOIN_SOURCE_GROUP,
    MCAST_LEAVE_GROUP,
    MCAST_LEAVE_SOURCE_GROUP,
    MRT6_ADD_MFC,
    MRT6_ADD_MIF,
    MRT6_INIT,
    MRT6MSG_NOCACHE,
    group_req,
    group_source_req,
    icmp6_filter,
    in_pktinfo,
    mf6cctl,
    mif6ctl,
)
from harness.wire import ipv4, ipv6

Addr = ipaddress.IPv6Address
Addr4 = ipaddress.IPv4Address
IPAddr = ipaddress.IPv6Address | ipaddress.IPv4Address
DEBUG = os.environ.get("DMMCONF_MLD_DEBUG") == "1"  # log every report and MFC change
SG = tuple[IPAddr | None, IPAddr]  # (source or None for any source, group)


# ---------------------------------------------------------------- the data path


def forwardable(packet: bytes) -> bool:
    """An IPv6 packet a multicast router may forward: routable group, a source that is
    neither unspecified nor link-local, and hop limit left (RFC 4291 §2.7, RFC 8200 §3)."""
    if len(packet) < 40 or packet[0] >> 4 != 6 or packet[24] != 0xFF or packet[7] <= 1:
        return False
    if (packet[25] & 0x0F) <= 2:  # interface- or link-local scope
        return False
    src = packet[8:24]
    return src != bytes(16) and not src.startswith(b"\xfe\x80")


def forwardable4(packet: bytes) -> bool:
    """An IPv4 packet a multicast router may forward: a group outside the Local Network
    Control Block (224.0.0.0/24, RFC 5771 §4), a source that is not 0.0.0.0, TTL left
    (RFC 1812 §5.3.1) and a header that verifies."""
    if not ipv4.header_checksum_ok(packet) or packet[8] <= 1:
        return False
    group = Addr4(packet[16:20])
    return igmp.routable(group) and packet[12:16] != bytes(4)


# ---------------------------------------------------------------- listener state


@dataclass
class GroupState:
    any_source_until: float = 0.0  # EXCLUDE-mode (any source) interest expires then
    sources: dict[IPAddr, float] = field(default_factory=dict)

    def wants(self, source: IPAddr | None, now: float) -> bool:
        if self.any_source_until > now:
            return True
        return source is not None and self.sources.get(source, 0.0) > now

    def expire(self, now: float) -> None:
        self.sources = {s: t for s, t in self.sources.items() if t > now}

    def empty(self, now: float) -> bool:
        return self.any_source_until <= now and not self.sources


@dataclass
class Links:
    """A router's interfaces, as both families' halves see them."""

    ns: str
    upstream_name: str
    downstream_names: list[str]
    ifindex: dict[str, int]  # name -> ifindex, upstream first

    @property
    def up_if(self) -> int:
        return self.ifindex[self.upstream_name]

    @property
    def down_ifs(self) -> list[int]:
        return [self.ifindex[n] for n in self.downstream_names]

    @property
    def ifname(self) -> dict[int, str]:
        return {ifi: name for name, ifi in self.ifindex.items()}


class Family:
    """One family's half of a router's proxy, the part both share: listener state per
    (downstream ifindex, group) from the records of reports, the query schedule, the
    upstream memberships (snapshot, wanted, sync), the forwarding entries and their
    outgoing interfaces (oifs), and the userspace forwarder (on_frames).

    A subclass says how its family is spoken: its sockets, its queries, how a report
    and a data packet are read, and how a packet is changed on its way through."""

    version = 0
    name = ""
    ethertype = 0
    level = 0  # of the membership socket options

    def __init__(self, links: Links, timers: Timers, log: Any) -> None:
        self.links, self.ns, self.timers, self.log = links, links.ns, timers, log
        self.up_if, self.down_ifs, self.ifname = links.up_if, links.down_ifs, links.ifname
        self.datapath = datapaths.USERSPACE
        self.sock: socket.socket  # queries out, reports (and, for MLD, upcalls) in
        self.member: socket.socket  # holds the upstream memberships
        self.frames: dict[int, socket.socket] = {}  # ifindex -> packet socket (userspace)
        self.state: dict[tuple[int, IPAddr], GroupState] = {}  # (ifindex, group)
        self.joined: set[SG] = set()  # memberships on the upstream interface
        self.mfc: dict[tuple[IPAddr, IPAddr], tuple[int, frozenset[int]]] = {}  # (S,G)->(iif, oifs)
        self.pending_queries: list[tuple[float, int, IPAddr, tuple[IPAddr, ...]]] = []
        self.next_general = 0.0
        self.startup_left = timers.robustness
        self.synced: frozenset[tuple[int, IPAddr | None, IPAddr]] = frozenset()

    def open_frames(self) -> None:
        """One packet socket per interface for the userspace path (in the namespace)."""
        for name, ifi in self.links.ifindex.items():
            self.frames[ifi] = open_packet_socket(name, self.ethertype)

    def close(self) -> None:
        for s in (self.sock, self.member, *self.frames.values()):
            with contextlib.suppress(OSError):
                s.close()

    # ---- what a family says for itself

    def send_query(self, ifindex: int, group: Any = None, sources: Sequence[Any] = ()) -> None:
        """A General Query (group None), or a Group (and Source) Specific one, on ifindex."""
        if DEBUG:
            srcs = [str(s) for s in sources]
            self.log(f"{self.ns}: {self.name} query on {ifindex} for {group or 'all'} {srcs}")
        payload = self.build_query(
            group,
            list(sources),
            self.timers,
            None if group is None else self.timers.last_listener_query_interval,
        )
        anc, dst = self.query_route(ifindex, self.all_systems if group is None else group)
        try:
            self.sock.sendmsg([payload], anc, 0, dst)
        except OSError as exc:  # interface down (no carrier): the next round will do
            self.log(f"{self.ns}: {self.name} query on ifindex {ifindex}: {exc}")

    def query_route(
        self, ifindex: int, dst: IPAddr
    ) -> tuple[list[Any], tuple[Any, ...]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def on_socket(self, now: float) -> None:
        """Read the family's socket dry (reports, and upcalls where there are any)."""
        while True:
            try:
                data, anc, _, _ = self.sock.recvmsg(2048, 256)
            except (BlockingIOError, InterruptedError):
                return
            self.on_message(data, anc, now)

    def on_message(
        self, data: bytes, anc: list[tuple[int, int, bytes]], now: float
    ) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # Which groups the family keeps state for, which packets it forwards, and where a
    # packet's source and group addresses are.
    build_query: Callable[..., bytes] = staticmethod(mld.mld2_query)
    all_systems: IPAddr = mld.ALL_NODES
    routable: Callable[[Any], bool] = staticmethod(mld.routable)
    forwardable: Callable[[bytes], bool] = staticmethod(forwardable)
    address: type[IPAddr] = Addr
    source_at, group_at = slice(8, 24), slice(24, 40)

    def source_group(self, packet: bytes) -> tuple[IPAddr, IPAddr]:
        return self.address(packet[self.source_at]), self.address(packet[self.group_at])

    def forwarded(self, packet: bytes, offloaded: bool) -> tuple[bytes, bytes]:  # pragma: no cover
        """(the packet as it leaves, with one hop less, its destination MAC)."""
        raise NotImplementedError

    def heard(self, ifindex: int, packet: bytes, now: float) -> None:
        """A packet the data path saw arrive (before forwarding): nothing by default."""

    # ---- listener state

    def on_report(self, ifindex: int, records: Sequence[Record[Any]], now: float) -> None:
        """Apply a report received on a downstream interface to the listener state."""
        if ifindex not in self.down_ifs:
            return
        if DEBUG:
            recs = [(r.rtype, str(r.group), list(map(str, r.sources))) for r in records]
            self.log(f"{self.ns}: {self.name} report on {ifindex}: {recs}")
        mali, llqt = self.timers.listener_interval, self.timers.last_listener_time
        for rec in records:
            if not self.routable(rec.group):
                continue
            key = (ifindex, rec.group)
            st = self.state.setdefault(key, GroupState())
            if rec.rtype in (IS_EX, TO_EX):
                st.any_source_until = now + mali
            elif rec.rtype in (IS_IN, ALLOW, TO_IN):
                for s in rec.sources:
                    st.sources[s] = now + mali
                if rec.rtype == TO_IN and st.any_source_until > now:
                    # Leaving any-source mode: ask who else still listens (RFC 3810 §7.4.2).
                    st.any_source_until = min(st.any_source_until, now + llqt)
                    self._schedule_queries(ifindex, rec.group, ())
            elif rec.rtype == BLOCK:
                blocked = tuple(s for s in rec.sources if s in st.sources)
                for s in blocked:
                    st.sources[s] = min(st.sources[s], now + llqt)
                if blocked and st.any_source_until <= now:
                    self._schedule_queries(ifindex, rec.group, blocked)

    def _schedule_queries(self, ifindex: int, group: IPAddr, sources: tuple[IPAddr, ...]) -> None:
        if any(q[1:] == (ifindex, group, sources) for q in self.pending_queries):
            return  # a retransmitted leave: the queries for it are on their way already
        now = time.monotonic()
        for i in range(self.timers.robustness):  # Last Listener Query Count
            due = now + i * self.timers.last_listener_query_interval
            self.pending_queries.append((due, ifindex, group, sources))

    def tick(self, now: float) -> None:
        """Send the queries that are due and forget expired listener state."""
        if now >= self.next_general:
            for ifi in self.down_ifs:
                self.send_query(ifi)
            if self.startup_left > 1:  # Startup Query Interval: a quarter (RFC 3810 §9.6)
                self.startup_left -= 1
                self.next_general = now + self.timers.query_interval / 4
            else:
                self.next_general = now + self.timers.query_interval
        due = [q for q in self.pending_queries if q[0] <= now]
        self.pending_queries = [q for q in self.pending_queries if q[0] > now]
        for _, ifi, group, sources in due:
            self.send_query(ifi, group, sources)
        for key, st in list(self.state.items()):
            st.expire(now)
            if st.empty(now):
                del self.state[key]

    def next_deadline(self, now: float) -> float:
        times = [self.next_general, *(q[0] for q in self.pending_queries)]
        for st in self.state.values():
            times.extend(t for t in [st.any_source_until, *st.sources.values()] if t > now)
        return min(times)

    def snapshot(self, now: float) -> frozenset[tuple[int, IPAddr | None, IPAddr]]:
        """Who wants what where: (ifindex, source or None, group)."""
        out: set[tuple[int, IPAddr | None, IPAddr]] = set()
        for (ifi, group), st in self.state.items():
            if st.any_source_until > now:
                out.add((ifi, None, group))
            out.update((ifi, s, group) for s, t in st.sources.items() if t > now)
        return frozenset(out)

    # ---- upstream membership and forwarding

    def wanted(self, now: float) -> set[SG]:
        """What to join upstream: any-source interest in G covers every (S,G)."""
        want: set[SG] = {(s, g) for _, s, g in self.snapshot(now)}
        any_groups = {g for s, g in want if s is None}
        return {(s, g) for s, g in want if s is None or g not in any_groups}

    def sync(self, now: float) -> None:
        """Bring upstream memberships and forwarding entries in line with the listener state."""
        snap = self.snapshot(now)
        if snap == self.synced:
            return
        self.synced = snap
        want = self.wanted(now)
        for s, g in sorted(self.joined - want, key=str):
            try:
                if s is None:
                    self.member.setsockopt(self.level, MCAST_LEAVE_GROUP, group_req(self.up_if, g))
                else:
                    self.member.setsockopt(
                        self.level, MCAST_LEAVE_SOURCE_GROUP, group_source_req(self.up_if, g, s)
                    )
            except OSError as exc:
                self.log(f"{self.ns}: leave {s or '*'},{g}: {exc}")
            self.joined.discard((s, g))
        for s, g in sorted(want - self.joined, key=str):
            try:
                if s is None:
                    self.member.setsockopt(self.level, MCAST_JOIN_GROUP, group_req(self.up_if, g))
                else:
                    self.member.setsockopt(
                        self.level, MCAST_JOIN_SOURCE_GROUP, group_source_req(self.up_if, g, s)
                    )
                self.joined.add((s, g))
            except OSError as exc:
                self.log(f"{self.ns}: join {s or '*'},{g}: {exc}")
        for (s, g), (iif, _) in list(self.mfc.items()):
            self.install(s, g, iif, now)

    def oifs(self, source: IPAddr, group: IPAddr, iif: int, now: float) -> frozenset[int]:
        out = {
            ifi
            for ifi in self.down_ifs
            if ifi != iif and (st := self.state.get((ifi, group))) and st.wants(source, now)
        }
        if iif != self.up_if:
            out.add(self.up_if)  # RFC 4605 §4.1: what comes from downstream goes upstream too
        return frozenset(out)

    def install(self, source: IPAddr, group: IPAddr, iif: int, now: float) -> None:
        """Record the (S,G) entry (the userspace forwarder reads self.mfc)."""
        self.mfc[(source, group)] = (iif, self.oifs(source, group, iif, now))

    def on_frames(self, ifindex: int, now: float) -> None:
        """The userspace data path: forward what arrived on `ifindex` (read dry).

        RFC 4605 §4.1 as the kernel's MFC would do it: to the downstream interfaces with
        a listener for (S,G), upstream too when it came from downstream, never back out
        of the arrival interface; one hop less (the subclass's `forwarded`)."""
        sock = self.frames[ifindex]
        while True:
            try:
                packet, anc, _flags, addr = sock.recvmsg(65535, 64)
            except (BlockingIOError, InterruptedError):
                return
            if addr[2] == socket.PACKET_OUTGOING:
                continue
            self.heard(ifindex, packet, now)
            if not self.forwardable(packet):
                continue
            source, group = self.source_group(packet)
            if (source, group) not in self.mfc or self.mfc[(source, group)][0] != ifindex:
                self.install(source, group, ifindex, now)
            oifs = self.oifs(source, group, ifindex, now)
            if not oifs:
                continue
            packet, mac = self.forwarded(packet, checksum_left_to_offload(anc))
            for oif in sorted(oifs):
                try:
                    self.frames[oif].sendto(packet, (self.ifname[oif], self.ethertype, 0, 0, mac))
                except OSError as exc:  # no carrier on that link: like a kernel drop
                    if DEBUG:
                        self.log(f"{self.ns}: forward ({source},{group}) on {oif}: {exc}")

    def describe(self, now: float) -> dict[str, list[Any]]:
        """Listener state, upstream memberships and forwarding entries, by interface name."""
        names = self.ifname
        listeners = []
        for (ifi, group), st in sorted(self.state.items(), key=str):
            entry: dict[str, Any] = {"ifname": names.get(ifi, str(ifi)), "group": str(group)}
            if st.any_source_until > now:
                entry["any_source_for"] = round(st.any_source_until - now, 3)
            entry["sources"] = {str(s): round(t - now, 3) for s, t in st.sources.items()}
            listeners.append(entry)
        return {
            "listeners": listeners,
            "joined_upstream": sorted(f"{s or '*'},{g}" for s, g in self.joined),
            "mfc": [
                {
                    "source": str(s),
                    "group": str(g),
                    "iif": names.get(iif, str(iif)),
                    "oifs": sorted(names.get(i, str(i)) for i in oifs),
                }
                for (s, g), (iif, oifs) in sorted(self.mfc.items(), key=str)
            ],
        }


class Mld(Family):
    """The IPv6 half: MLDv2 querier, MLD reports on a raw ICMPv6 socket, and the kernel
    data path (the same socket is the MRT6 socket, MFC entries) or the userspace one."""

    version, name, ethertype, level = 6, "MLD", ETH_P_IPV6, IPPROTO_IPV6

    def __init__(self, links: Links, timers: Timers, log: Any, datapath: str) -> None:
        """Opens its sockets: call it inside the router's namespace."""
        super().__init__(links, timers, log)
        self.datapath = datapath
        self.mif: dict[int, int] = {}  # ifindex -> mif (kernel path)
        self.sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_ICMPV6)
        self.member = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        if datapath == datapaths.USERSPACE:
            self.open_frames()
        else:
            self.sock.setsockopt(IPPROTO_IPV6, MRT6_INIT, 1)
            for mifi, ifi in enumerate(links.ifindex.values()):
                self.sock.setsockopt(IPPROTO_IPV6, MRT6_ADD_MIF, mif6ctl(mifi, ifi))
                self.mif[ifi] = mifi
        s = self.sock
        s.setsockopt(
            IPPROTO_ICMPV6,
            ICMP6_FILTER,
            icmp6_filter({mld.MLD1_REPORT, mld.MLD1_DONE, mld.MLD2_REPORT}),
        )
        s.setsockopt(IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
        s.setsockopt(IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
        s.setsockopt(IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
        for ifi in self.down_ifs:  # MLDv2 reports go to ff02::16
            s.setsockopt(IPPROTO_IPV6, MCAST_JOIN_GROUP, group_req(ifi, mld.ALL_MLDV2_ROUTERS))
        s.setblocking(False)

    def query_route(self, ifindex: int, dst: IPAddr) -> tuple[list[Any], tuple[Any, ...]]:
        """(ancillary data, destination) of a query: the Router Alert, out of `ifindex`."""
        anc = [
            (IPPROTO_IPV6, IPV6_HOPOPTS, mld.HBH_ROUTER_ALERT),
            (IPPROTO_IPV6, IPV6_PKTINFO, b"\0" * 16 + struct.pack("=I", ifindex)),
        ]
        return anc, (str(dst), 0, 0, ifindex)

    def on_message(self, data: bytes, anc: list[tuple[int, int, bytes]], now: float) -> None:
        """An MLD message, or a kernel upcall on the MRT6 socket."""
        if len(data) >= 40 and data[0] == 0:  # struct mrt6msg: an upcall (im6_mbz == 0)
            msgtype, mifi = data[1], struct.unpack_from("=H", data, 2)[0]
            if msgtype == MRT6MSG_NOCACHE:
                src, grp = Addr(data[8:24]), Addr(data[24:40])
                iif = next((i for i, m in self.mif.items() if m == mifi), None)
                if iif is not None and mld.routable(grp):
                    self.install(src, grp, iif, now)
            return
        ifindex = 0
        for level, kind, value in anc:
            if level == IPPROTO_IPV6 and kind == IPV6_PKTINFO and len(value) >= 20:
                ifindex = struct.unpack_from("=I", value, 16)[0]
        self.on_report(ifindex, mld.parse_report(data), now)

    def forwarded(self, packet: bytes, offloaded: bool) -> tuple[bytes, bytes]:
        if offloaded:
            packet = ipv6.complete_checksum(packet)
        packet = packet[:7] + bytes([packet[7] - 1]) + packet[8:]
        return packet, b"\x33\x33" + packet[36:40]  # RFC 2464 §7

    def install(self, source: IPAddr, group: IPAddr, iif: int, now: float) -> None:
        if self.datapath == datapaths.USERSPACE:
            super().install(source, group, iif, now)
            return
        oifs = self.oifs(source, group, iif, now)
        if self.mfc.get((source, group)) == (iif, oifs):
            return
        assert isinstance(source, Addr) and isinstance(group, Addr)
        try:
            self.sock.setsockopt(
                IPPROTO_IPV6,
                MRT6_ADD_MFC,
                mf6cctl(source, group, self.mif[iif], {self.mif[i] for i in oifs}),
            )
            self.mfc[(source, group)] = (iif, oifs)
            if DEBUG:
                self.log(f"{self.ns}: MFC ({source},{group}) iif {iif} oifs {sorted(oifs)}")
        except OSError as exc:
            self.log(f"{self.ns}: MFC ({source},{group}): {exc}")


class Igmp(Family):
    """The IPv4 half: IGMPv3 querier, IGMP reports on a raw IGMP socket (IGMPv1/v2
    reports, sent to the group itself, from the data path's packet sockets), and always
    the userspace data path (the kernel's MRT is never set up)."""

    version, name, ethertype, level = 4, "IGMP", ETH_P_IP, IPPROTO_IP
    build_query = staticmethod(igmp.igmp3_query)
    all_systems = igmp.ALL_SYSTEMS
    routable = staticmethod(igmp.routable)
    forwardable = staticmethod(forwardable4)
    address, source_at, group_at = Addr4, slice(12, 16), slice(16, 20)

    def __init__(self, links: Links, timers: Timers, log: Any) -> None:
        """Opens its sockets: call it inside the router's namespace."""
        super().__init__(links, timers, log)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_IGMP)
        self.member = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.open_frames()
        s = self.sock
        s.setsockopt(IPPROTO_IP, IP_PKTINFO, 1)
        s.setsockopt(IPPROTO_IP, IP_OPTIONS, igmp.ROUTER_ALERT)  # RFC 3376 §4
        s.setsockopt(IPPROTO_IP, IP_MULTICAST_TTL, 1)
        s.setsockopt(IPPROTO_IP, IP_MULTICAST_LOOP, 0)
        for ifi in self.down_ifs:  # v3 reports go to 224.0.0.22, v2 leaves to 224.0.0.2
            for group in (igmp.ALL_IGMPV3_ROUTERS, igmp.ALL_ROUTERS):
                s.setsockopt(IPPROTO_IP, MCAST_JOIN_GROUP, group_req(ifi, group))
        s.setblocking(False)

    def query_route(self, ifindex: int, dst: IPAddr) -> tuple[list[Any], tuple[Any, ...]]:
        """(ancillary data, destination) of a query: out of `ifindex` (the socket adds the
        Router Alert, IP_OPTIONS)."""
        return [(IPPROTO_IP, IP_PKTINFO, in_pktinfo(ifindex))], (str(dst), 0)

    def on_message(self, data: bytes, anc: list[tuple[int, int, bytes]], now: float) -> None:
        """An IGMP report or leave (IP header included)."""
        ifindex = 0
        for level, kind, value in anc:
            if level == IPPROTO_IP and kind == IP_PKTINFO and len(value) >= 4:
                ifindex = struct.unpack_from("=i", value)[0]
        message = igmp.message_of(data)
        if message is not None:
            self.on_report(ifindex, igmp.parse_report(message), now)

    def heard(self, ifindex: int, packet: bytes, now: float) -> None:
        """IGMPv1/v2 reports go to the group itself, which the router has not joined on
        its downstream links: its IGMP socket never gets them, its packet socket does."""
        message = igmp.message_of(packet)
        if message is not None and message[0] in (igmp.IGMP1_REPORT, igmp.IGMP2_REPORT):
            self.on_report(ifindex, igmp.parse_report(message), now)

    def forwarded(self, packet: bytes, offloaded: bool) -> tuple[bytes, bytes]:
        if offloaded:
            packet = ipv4.complete_checksum(packet)
        return ipv4.decrement_ttl(packet), ipv4.multicast_mac(packet[16:20])


class Router:
    """One router's proxy: its MLD half and its IGMP half over the same interfaces."""

    def __init__(
        self,
        ns: str,
        upstream: str,
        downstream: list[str],
        timers: Timers,
        log: Any,
        datapath: str = datapaths.KERNEL,
        ipv4_only: Sequence[str] = (),
    ) -> None:
        """`ipv4_only`: downstream interfaces without IPv6 (an IPv4-only access link), where
        only the IGMP half works."""
        self.ns, self.upstream_name, self.timers, self.log = ns, upstream, timers, log
        self.datapath = datapath  # IPv6's; IPv4 is always userspace
        self.downstream_names = list(downstream)
        if len(downstream) + 1 > MAXMIFS:
            raise ValueError(f"{ns}: at most {MAXMIFS - 1} downstream interfaces")
        self.families: list[Family] = []
        try:
            with netns.entered(ns):
                names = [upstream, *downstream]
                self.links = Links(
                    ns, upstream, list(downstream), {n: socket.if_nametoindex(n) for n in names}
                )
                down6 = [n for n in downstream if n not in ipv4_only]
                links6 = Links(
                    ns, upstream, down6, {n: self.links.ifindex[n] for n in [upstream, *down6]}
                )
                self.families.append(Mld(links6, timers, log, datapath))
                self.families.append(Igmp(self.links, timers, log))
        except BaseException:
            self.close()
            raise
        self.mld, self.igmp = self.families
        self.ifindex = self.links.ifindex
        self.up_if, self.down_ifs = self.links.up_if, self.links.down_ifs

    def close(self) -> None:
        for fam in self.families:
            fam.close()

    def family(self, version: int) -> Family:
        return self.mld if version == 6 else self.igmp

    def send_query(self, ifindex: int, version: int = 6) -> None:
        self.family(version).send_query(ifindex)

    def describe(self, now: float) -> dict[str, Any]:
        out: dict[str, Any] = {
            "datapath": self.datapath,
            "datapath4": self.igmp.datapath,
            "upstream": self.upstream_name,
            "downstream": self.downstream_names,
            "listeners": [],
            "joined_upstream": [],
            "mfc": [],
        }
        for fam in self.families:  # IPv6 entries first, then IPv4
            for key, entries in fam.describe(now).items():
                out[key] += entries
        return out


# ---------------------------------------------------------------- the daemon


class Proxy:
    def __init__(self, config: dict[str, Any]) -> None:
        self.timers = Timers(**config.get("timers", {}))
        self.log_file = sys.stderr
        self.routers: dict[str, Router] = {}
        self.datapath = config.get("datapath", datapaths.KERNEL)
        for r in config["routers"]:
            self.routers[r["ns"]] = Router(
                r["ns"],
                r["upstream"],
                r["downstream"],
                self.timers,
                self.log,
                self.datapath,
                r.get("ipv4_only", ()),
            )
        self.sel = selectors.DefaultSelector()
        for router in self.routers.values():
            for fam in router.families:
                self.sel.register(fam.sock, selectors.EVENT_READ, fam)
                for ifi, sock in fam.frames.items():
                    self.sel.register(sock, selectors.EVENT_READ, (fam, ifi))
        self.control: socket.socket | None = None
        if config.get("control"):
            path = config["control"]
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            self.control = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.control.bind(path)
            self.control.listen(8)
            self.sel.register(self.control, selectors.EVENT_READ, "control")
        self.parent: int | None = None
        if config.get("parent_pid"):
            try:
                self.parent = os.pidfd_open(int(config["parent_pid"]))
            except ProcessLookupError:
                raise SystemExit("parent process is gone") from None
            self.sel.register(self.parent, selectors.EVENT_READ, "parent")
        self.running = True
        self.errors = 0  # handlers that raised (logged): see guarded

    def log(self, text: str) -> None:
        print(f"{time.monotonic():.3f} mldproxy: {text}", file=self.log_file, flush=True)

    def serve(self) -> None:
        while self.running:
            now = time.monotonic()
            families = [f for r in self.routers.values() for f in r.families]
            for fam in families:
                with self.guarded(f"{fam.ns}: {fam.name} timers"):
                    fam.tick(now)
                    fam.sync(now)
            deadline = min((f.next_deadline(now) for f in families), default=now + 1)
            timeout = max(0.0, min(deadline - time.monotonic(), 1.0)) + 0.001
            for key, _ in self.sel.select(timeout):
                now = time.monotonic()
                if key.data == "parent":
                    self.running = False
                elif key.data == "control":
                    with self.guarded("control request"):
                        self._control()
                elif isinstance(key.data, Family):
                    with self.guarded(f"{key.data.ns}: {key.data.name} message"):
                        key.data.on_socket(now)
                        key.data.sync(now)
                else:
                    fam, ifindex = key.data
                    with self.guarded(f"{fam.ns}: {fam.name} frames on {ifindex}"):
                        fam.on_frames(ifindex, now)

    @contextlib.contextmanager
    def guarded(self, what: str) -> Iterator[None]:
        """One packet or timer that trips the proxy over costs that packet, not the lab's
        multicast for the rest of the run: logged with its traceback, counted in "state"."""
        try:
            yield
        except Exception:  # noqa: BLE001 - the lab's routers must outlive a bad packet
            self.errors += 1
            self.log(f"{what}: {traceback.format_exc().strip()}")

    def _control(self) -> None:
        assert self.control is not None
        conn, _ = self.control.accept()
        with conn:
            conn.settimeout(2.0)
            buf = b""
            try:
                while not buf.endswith(b"\n"):
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    buf += chunk
            except OSError as exc:  # an asker that never finished its request: not routing
                self.log(f"control request: {exc}")
                return
            try:
                reply = self._handle(json.loads(buf or b"{}"))
            except Exception as exc:  # noqa: BLE001 - a bad request must not stop the proxy
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            with contextlib.suppress(OSError):  # the asker gave up waiting (its timeout)
                conn.sendall(json.dumps(reply).encode() + b"\n")

    def _handle(self, req: dict[str, Any]) -> dict[str, Any]:
        now = time.monotonic()
        op = req.get("op")
        if op == "state":
            return {
                "ok": True,
                "datapath": self.datapath,
                "errors": self.errors,
                "routers": {ns: r.describe(now) for ns, r in self.routers.items()},
            }
        router = self.routers.get(req.get("ns", ""))
        if router is None:
            return {"ok": False, "error": f"no router {req.get('ns')!r}"}
        if op == "query":
            name = req.get("ifname")
            version = int(req.get("version", 6))
            family = router.family(version)
            targets = family.down_ifs if name is None else [router.ifindex[name]]
            if any(ifi not in family.down_ifs for ifi in targets):
                return {"ok": False, "error": f"{name}: no {family.name} there"}
            for ifi in targets:
                router.send_query(ifi, version)
            return {"ok": True}
        if op == "release":
            for fam in router.families:
                self.sel.unregister(fam.sock)
                for sock in fam.frames.values():
                    self.sel.unregister(sock)
            router.close()
            del self.routers[router.ns]
            return {"ok": True}
        return {"ok": False, "error": f"unknown op {op!r}"}

    def close(self) -> None:
        for router in self.routers.values():
            router.close()


def request(control_path: str, req: dict[str, Any], timeout: float = 2.0) -> dict[str, Any]:
    """One request to a running proxy's control socket."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(control_path)
        s.sendall(json.dumps(req).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    reply: dict[str, Any] = json.loads(buf)
    return reply


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m harness.lab.mldproxy CONFIG.json", file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as f:
        config = json.load(f)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        proxy = Proxy(config)
    except OSError as exc:
        print(f"mldproxy: cannot start: {exc}", file=sys.stderr, flush=True)
        return 1
    print("ready", flush=True)
    try:
        proxy.serve()
    except KeyboardInterrupt:
        pass
    finally:
        proxy.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
