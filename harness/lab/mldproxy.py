"""An MLD proxy (RFC 4605) over the kernel's IPv6 multicast routing, for the lab's routers.

The messages, timers and socket options it uses are harness.netproto's (mld, sockopts);
this module is the proxy process: listener state, upstream memberships, the data path.

Why this and not smcroute: smcroute installs static (S,G) routes that someone must add by
hand; the lab needs what a real network does, multicast that reaches an access link
*because a listener there asked for it* (MLD), and stops when nobody asks. This proxy
does that with nothing but the kernel (CONFIG_IPV6_MROUTE) and the standard library:

* one process serves every router of a lab (core and each AR); for each it opens, inside
  the router's namespace, an MRT6 socket (MRT6_INIT, one MIF per interface) and a UDP
  socket that holds the proxy's memberships on its upstream interface;
* on the downstream interfaces it is the MLDv2 querier (General Queries every
  `query_interval`, Multicast Address (and Source) Specific Queries on leaves) and
  keeps the listener state from the reports (RFC 3810 §7, simplified: EXCLUDE-mode
  records count as "all sources", source lists are not subtracted);
* it joins, on the upstream interface, the union of what its downstream links want
  (MCAST_JOIN_GROUP for any-source interest, MCAST_JOIN_SOURCE_GROUP per source
  otherwise); the router's own kernel then sends the MLDv2 reports upstream, so the
  proxy of the core (whose downstream links are the AR uplinks) learns them in turn;
* data: the kernel asks (MRT6MSG_NOCACHE upcall) when an (S,G) packet has no cache
  entry; the proxy installs an MFC entry whose outgoing interfaces are the downstream
  interfaces with a listener for (S,G), plus the upstream interface when the packet came
  from downstream (RFC 4605 §4.1); entries are rewritten whenever listener state changes.

Run as `python -m harness.lab.mldproxy CONFIG.json`; the config names the routers. It
prints "ready" once every socket is set up. With "parent_pid" it exits when that process
does (pidfd), so a test run killed with kill -9 leaves no proxy behind. A unix control
socket answers one JSON request per connection: {"op": "state"}, {"op": "query", "ns":
NS, "ifname": IF} (a General Query now), {"op": "release", "ns": NS} (close that router's
MRT6 socket, e.g. so a reference HA may take multicast routing over). With
DMMCONF_MLD_DEBUG=1 in its environment it logs every report, query and MFC change to
its log file (/run/dmmconf/runs/<runid>.mldproxy.log, removed with the lab).
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
from dataclasses import dataclass, field
from typing import Any

from harness.lab import datapath as datapaths
from harness.lab import netns
from harness.netproto.mld import (
    ALL_MLDV2_ROUTERS,
    ALL_NODES,
    ALLOW,
    BLOCK,
    HBH_ROUTER_ALERT,
    IS_EX,
    IS_IN,
    MLD1_DONE,
    MLD1_REPORT,
    MLD2_REPORT,
    TO_EX,
    TO_IN,
    Timers,
    mld2_query,
    parse_report,
    routable,
)
from harness.netproto.sockopts import (
    ICMP6_FILTER,
    IPPROTO_ICMPV6,
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
    mf6cctl,
    mif6ctl,
)
from harness.wire import ipv6

# linux/if_ether.h, linux/if_packet.h
ETH_P_IPV6 = 0x86DD
SOL_PACKET, PACKET_AUXDATA = 263, 8
TP_STATUS_CSUMNOTREADY = 1 << 3

Addr = ipaddress.IPv6Address
DEBUG = os.environ.get("DMMCONF_MLD_DEBUG") == "1"  # log every report and MFC change
SG = tuple[Addr | None, Addr]  # (source or None for any source, group)


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


def _packet_socket(ifname: str) -> socket.socket:
    """A packet socket bound to one interface for IPv6, with PACKET_AUXDATA (checksum
    state), non-blocking. Must be opened in the interface's namespace."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IPV6))
    try:
        sock.bind((ifname, ETH_P_IPV6))
        sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def checksum_left_to_offload(ancdata: list[tuple[int, int, bytes]]) -> bool:
    """Does PACKET_AUXDATA (struct tpacket_auxdata, tp_status first) say the checksum was
    left to the (virtual) hardware? A veth passes a local sender's packet on so."""
    for level, kind, data in ancdata:
        if level == SOL_PACKET and kind == PACKET_AUXDATA and len(data) >= 4:
            return bool(struct.unpack_from("=I", data)[0] & TP_STATUS_CSUMNOTREADY)
    return False


# ---------------------------------------------------------------- listener state


@dataclass
class GroupState:
    any_source_until: float = 0.0  # EXCLUDE-mode (any source) interest expires then
    sources: dict[Addr, float] = field(default_factory=dict)

    def wants(self, source: Addr | None, now: float) -> bool:
        if self.any_source_until > now:
            return True
        return source is not None and self.sources.get(source, 0.0) > now

    def expire(self, now: float) -> None:
        self.sources = {s: t for s, t in self.sources.items() if t > now}

    def empty(self, now: float) -> bool:
        return self.any_source_until <= now and not self.sources


class Router:
    """One router's proxy: its MLD socket, its upstream memberships, its listener state,
    and its data path (kernel MFC entries, or packet sockets it forwards between)."""

    def __init__(
        self,
        ns: str,
        upstream: str,
        downstream: list[str],
        timers: Timers,
        log: Any,
        datapath: str = datapaths.KERNEL,
    ) -> None:
        self.ns, self.upstream_name, self.timers, self.log = ns, upstream, timers, log
        self.datapath = datapath
        self.downstream_names = list(downstream)
        if len(downstream) + 1 > MAXMIFS:
            raise ValueError(f"{ns}: at most {MAXMIFS - 1} downstream interfaces")
        # The kernel path: the MLD socket is also the MRT6 socket (reports and upcalls).
        # The userspace path: a plain raw ICMPv6 socket for MLD, one packet socket per
        # interface for the data.
        self.frames: dict[int, socket.socket] = {}  # ifindex -> packet socket (userspace)
        with netns.entered(ns):
            self.ifindex = {n: socket.if_nametoindex(n) for n in [upstream, *downstream]}
            self.mrt = socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_ICMPV6)
            self.member = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            if datapath == datapaths.USERSPACE:
                for name, ifi in self.ifindex.items():
                    self.frames[ifi] = _packet_socket(name)
        self.ifname = {ifi: name for name, ifi in self.ifindex.items()}
        self.mif: dict[int, int] = {}  # ifindex -> mif
        if datapath == datapaths.KERNEL:
            self.mrt.setsockopt(IPPROTO_IPV6, MRT6_INIT, 1)
            for mifi, name in enumerate([upstream, *downstream]):
                self.mrt.setsockopt(IPPROTO_IPV6, MRT6_ADD_MIF, mif6ctl(mifi, self.ifindex[name]))
                self.mif[self.ifindex[name]] = mifi
        self.up_if = self.ifindex[upstream]
        self.down_ifs = [self.ifindex[n] for n in downstream]
        self.mrt.setsockopt(
            IPPROTO_ICMPV6, ICMP6_FILTER, icmp6_filter({MLD1_REPORT, MLD1_DONE, MLD2_REPORT})
        )
        self.mrt.setsockopt(IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
        self.mrt.setsockopt(IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
        self.mrt.setsockopt(IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
        for ifi in self.down_ifs:  # MLDv2 reports go to ff02::16
            self.mrt.setsockopt(IPPROTO_IPV6, MCAST_JOIN_GROUP, group_req(ifi, ALL_MLDV2_ROUTERS))
        self.mrt.setblocking(False)
        self.state: dict[tuple[int, Addr], GroupState] = {}  # (ifindex, group)
        self.joined: set[SG] = set()  # memberships on the upstream interface
        self.mfc: dict[tuple[Addr, Addr], tuple[int, frozenset[int]]] = {}  # (S,G)->(iif, oifs)
        self.pending_queries: list[tuple[float, int, Addr, tuple[Addr, ...]]] = []
        self.next_general = 0.0
        self.startup_left = timers.robustness
        self.synced: frozenset[tuple[int, Addr | None, Addr]] = frozenset()

    def close(self) -> None:
        for s in (self.mrt, self.member, *self.frames.values()):
            with contextlib.suppress(OSError):
                s.close()

    # ---- MLD

    def send_query(self, ifindex: int, group: Addr | None = None, sources: tuple = ()) -> None:
        if DEBUG:
            srcs = [str(s) for s in sources]
            self.log(f"{self.ns}: query on {ifindex} for {group or 'all'} {srcs}")
        payload = mld2_query(
            group,
            list(sources),
            self.timers,
            None if group is None else self.timers.last_listener_query_interval,
        )
        dst = ALL_NODES if group is None else group
        anc = [
            (IPPROTO_IPV6, IPV6_HOPOPTS, HBH_ROUTER_ALERT),
            (IPPROTO_IPV6, IPV6_PKTINFO, b"\0" * 16 + struct.pack("=I", ifindex)),
        ]
        try:
            self.mrt.sendmsg([payload], anc, 0, (str(dst), 0, 0, ifindex))
        except OSError as exc:  # interface down (no carrier): the next round will do
            self.log(f"{self.ns}: query on ifindex {ifindex}: {exc}")

    def on_report(self, ifindex: int, data: bytes, now: float) -> None:
        """Apply a report received on a downstream interface to the listener state."""
        if ifindex not in self.down_ifs:
            return
        if DEBUG:
            recs = [(r.rtype, str(r.group), list(map(str, r.sources))) for r in parse_report(data)]
            self.log(f"{self.ns}: report on {ifindex}: {recs}")
        mali, llqt = self.timers.listener_interval, self.timers.last_listener_time
        for rec in parse_report(data):
            if not routable(rec.group):
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

    def _schedule_queries(self, ifindex: int, group: Addr, sources: tuple[Addr, ...]) -> None:
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

    def snapshot(self, now: float) -> frozenset[tuple[int, Addr | None, Addr]]:
        """Who wants what where: (ifindex, source or None, group)."""
        out: set[tuple[int, Addr | None, Addr]] = set()
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
        """Bring upstream memberships and MFC entries in line with the listener state."""
        snap = self.snapshot(now)
        if snap == self.synced:
            return
        self.synced = snap
        want = self.wanted(now)
        for s, g in sorted(self.joined - want, key=str):
            try:
                if s is None:
                    self.member.setsockopt(
                        IPPROTO_IPV6, MCAST_LEAVE_GROUP, group_req(self.up_if, g)
                    )
                else:
                    self.member.setsockopt(
                        IPPROTO_IPV6, MCAST_LEAVE_SOURCE_GROUP, group_source_req(self.up_if, g, s)
                    )
            except OSError as exc:
                self.log(f"{self.ns}: leave {s or '*'},{g}: {exc}")
            self.joined.discard((s, g))
        for s, g in sorted(want - self.joined, key=str):
            try:
                if s is None:
                    self.member.setsockopt(IPPROTO_IPV6, MCAST_JOIN_GROUP, group_req(self.up_if, g))
                else:
                    self.member.setsockopt(
                        IPPROTO_IPV6, MCAST_JOIN_SOURCE_GROUP, group_source_req(self.up_if, g, s)
                    )
                self.joined.add((s, g))
            except OSError as exc:
                self.log(f"{self.ns}: join {s or '*'},{g}: {exc}")
        for (s, g), (iif, _) in list(self.mfc.items()):
            self.install(s, g, iif, now)

    def oifs(self, source: Addr, group: Addr, iif: int, now: float) -> frozenset[int]:
        out = {
            ifi
            for ifi in self.down_ifs
            if ifi != iif and (st := self.state.get((ifi, group))) and st.wants(source, now)
        }
        if iif != self.up_if:
            out.add(self.up_if)  # RFC 4605 §4.1: what comes from downstream goes upstream too
        return frozenset(out)

    def install(self, source: Addr, group: Addr, iif: int, now: float) -> None:
        oifs = self.oifs(source, group, iif, now)
        if self.mfc.get((source, group)) == (iif, oifs):
            return
        if self.datapath == datapaths.USERSPACE:  # the forwarder reads self.mfc
            self.mfc[(source, group)] = (iif, oifs)
            return
        try:
            self.mrt.setsockopt(
                IPPROTO_IPV6,
                MRT6_ADD_MFC,
                mf6cctl(source, group, self.mif[iif], {self.mif[i] for i in oifs}),
            )
            self.mfc[(source, group)] = (iif, oifs)
            if DEBUG:
                self.log(f"{self.ns}: MFC ({source},{group}) iif {iif} oifs {sorted(oifs)}")
        except OSError as exc:
            self.log(f"{self.ns}: MFC ({source},{group}): {exc}")

    def on_mrt(self, now: float) -> None:
        """Read the MRT6 socket dry: MLD reports and kernel upcalls."""
        while True:
            try:
                data, anc, _, _ = self.mrt.recvmsg(2048, 256)
            except (BlockingIOError, InterruptedError):
                return
            if len(data) >= 40 and data[0] == 0:  # struct mrt6msg: an upcall (im6_mbz == 0)
                msgtype, mifi = data[1], struct.unpack_from("=H", data, 2)[0]
                if msgtype == MRT6MSG_NOCACHE:
                    src, grp = Addr(data[8:24]), Addr(data[24:40])
                    iif = next((i for i, m in self.mif.items() if m == mifi), None)
                    if iif is not None and routable(grp):
                        self.install(src, grp, iif, now)
                continue
            ifindex = 0
            for level, kind, value in anc:
                if level == IPPROTO_IPV6 and kind == IPV6_PKTINFO and len(value) >= 20:
                    ifindex = struct.unpack_from("=I", value, 16)[0]
            self.on_report(ifindex, data, now)

    def on_frames(self, ifindex: int, now: float) -> None:
        """The userspace data path: forward what arrived on `ifindex` (read dry).

        RFC 4605 §4.1 as the kernel's MFC would do it: to the downstream interfaces with
        a listener for (S,G), upstream too when it came from downstream, never back out
        of the arrival interface; hop limit decremented, scope kept (RFC 4291 §2.7)."""
        sock = self.frames[ifindex]
        while True:
            try:
                packet, anc, _flags, addr = sock.recvmsg(65535, 64)
            except (BlockingIOError, InterruptedError):
                return
            if addr[2] == socket.PACKET_OUTGOING or not forwardable(packet):
                continue
            source, group = Addr(packet[8:24]), Addr(packet[24:40])
            if (source, group) not in self.mfc or self.mfc[(source, group)][0] != ifindex:
                self.install(source, group, ifindex, now)
            oifs = self.oifs(source, group, ifindex, now)
            if not oifs:
                continue
            if checksum_left_to_offload(anc):
                packet = ipv6.complete_checksum(packet)
            packet = packet[:7] + bytes([packet[7] - 1]) + packet[8:]
            mac = b"\x33\x33" + packet[36:40]  # RFC 2464 §7
            for oif in sorted(oifs):
                try:
                    self.frames[oif].sendto(packet, (self.ifname[oif], ETH_P_IPV6, 0, 0, mac))
                except OSError as exc:  # no carrier on that link: like a kernel drop
                    if DEBUG:
                        self.log(f"{self.ns}: forward ({source},{group}) on {oif}: {exc}")

    def describe(self, now: float) -> dict[str, Any]:
        names = {v: k for k, v in self.ifindex.items()}
        listeners = []
        for (ifi, group), st in sorted(self.state.items(), key=str):
            entry: dict[str, Any] = {"ifname": names.get(ifi, str(ifi)), "group": str(group)}
            if st.any_source_until > now:
                entry["any_source_for"] = round(st.any_source_until - now, 3)
            entry["sources"] = {str(s): round(t - now, 3) for s, t in st.sources.items()}
            listeners.append(entry)
        return {
            "datapath": self.datapath,
            "upstream": self.upstream_name,
            "downstream": self.downstream_names,
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


# ---------------------------------------------------------------- the daemon


class Proxy:
    def __init__(self, config: dict[str, Any]) -> None:
        self.timers = Timers(**config.get("timers", {}))
        self.log_file = sys.stderr
        self.routers: dict[str, Router] = {}
        self.datapath = config.get("datapath", datapaths.KERNEL)
        for r in config["routers"]:
            self.routers[r["ns"]] = Router(
                r["ns"], r["upstream"], r["downstream"], self.timers, self.log, self.datapath
            )
        self.sel = selectors.DefaultSelector()
        for router in self.routers.values():
            self.sel.register(router.mrt, selectors.EVENT_READ, router)
            for ifi, sock in router.frames.items():
                self.sel.register(sock, selectors.EVENT_READ, (router, ifi))
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

    def log(self, text: str) -> None:
        print(f"{time.monotonic():.3f} mldproxy: {text}", file=self.log_file, flush=True)

    def serve(self) -> None:
        while self.running:
            now = time.monotonic()
            for router in list(self.routers.values()):
                router.tick(now)
                router.sync(now)
            deadline = min((r.next_deadline(now) for r in self.routers.values()), default=now + 1)
            timeout = max(0.0, min(deadline - time.monotonic(), 1.0)) + 0.001
            for key, _ in self.sel.select(timeout):
                now = time.monotonic()
                if key.data == "parent":
                    self.running = False
                elif key.data == "control":
                    self._control()
                elif isinstance(key.data, Router):
                    key.data.on_mrt(now)
                    key.data.sync(now)
                else:
                    router, ifindex = key.data
                    router.on_frames(ifindex, now)

    def _control(self) -> None:
        assert self.control is not None
        conn, _ = self.control.accept()
        with conn:
            conn.settimeout(2.0)
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = conn.recv(4096)
                if not chunk:
                    break
                buf += chunk
            try:
                reply = self._handle(json.loads(buf or b"{}"))
            except Exception as exc:  # noqa: BLE001 - a bad request must not stop the proxy
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            conn.sendall(json.dumps(reply).encode() + b"\n")

    def _handle(self, req: dict[str, Any]) -> dict[str, Any]:
        now = time.monotonic()
        op = req.get("op")
        if op == "state":
            return {
                "ok": True,
                "datapath": self.datapath,
                "routers": {ns: r.describe(now) for ns, r in self.routers.items()},
            }
        router = self.routers.get(req.get("ns", ""))
        if router is None:
            return {"ok": False, "error": f"no router {req.get('ns')!r}"}
        if op == "query":
            name = req.get("ifname")
            targets = router.down_ifs if name is None else [router.ifindex[name]]
            for ifi in targets:
                router.send_query(ifi)
            return {"ok": True}
        if op == "release":
            self.sel.unregister(router.mrt)
            for sock in router.frames.values():
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
