"""The reference Home Agent daemon: a thin I/O shell around HomeAgentCore (`dmmconf ha`).

It runs inside an access router's namespace (the profile starts it with `ip netns exec` or
nsenter) and does only I/O and timers; every decision is the core's (ha_core.py) or the data
plane's (ha_dataplane.py):

* Binding Updates arrive on a raw socket of protocol 60 (docs/lab-facts.md: the kernel, which has no
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

* The data plane in userspace (harness/reference/ha_io.py, Tunnels and MulticastForwarder;
  its decisions are harness/reference/ha_dataplane.py's): a TUN device per binding with the
  home address's /128 routed into it, IPv6-in-IPv6 to the care-of address, the reverse
  tunnel from a raw socket of protocol 41, the join set on the uplink, and one copy of each
  multicast packet per binding whose state admits it (draft §3, §6; RFC 6275 §10.4.2).
* The MLD querier for the mobile nodes (ha_dataplane.QuerySchedule decides when; draft §6,
  RFC 6275 §10.4.3, INT-7): an MLDv2 General Query, from the access interface's link-local
  address, through the tunnel to the CoA of every binding with IPv6 multicast state, at
  once after the BA that installs the state and every --mld-query-interval after. MLD
  Reports that come back through the tunnel are not read: only Binding Updates change the
  state (INT-7).
* Duplicate Address Detection for the home address of each new binding before its BA
  (RFC 6275 §10.3.1; RFC 4862 §5.4): a Neighbor Solicitation from :: on the access link,
  then RetransTimer (RFC 4861 §10, scaled by --time-scale, at least DAD_MIN_WAIT) for a
  Neighbor Advertisement of the home address, read on a raw ICMPv6 socket; one answers
  status 134.
* The IGMP querier for mobile nodes with IPv4 multicast state (draft §8): IGMPv3 General
  Queries from --address4 to 224.0.0.1 (TTL 1, Router Alert), IPv4-in-IPv6 to the CoA, on
  the MLD querier's timers (INT-21); the IGMPv3 form of the Multicast State option is joined
  on the uplink and forwarded by, likewise IPv4-in-IPv6.
* Router Advertisements on the access link with the H flag, the R flag and the Home Agent
  Information option (RFC 6275 §7), from harness.netproto.advertiser.RouterAdvertiser, when
  --ra-interval MIN,MAX is given.
* --time-scale multiplies the RFC defaults of the timers that are not given explicitly
  (RFC 3810 §9: Query Interval 125 s, Query Response Interval 10 s). Binding lifetimes
  are not scaled (they travel on the wire in 4-second units), nor is the core's clock
  (RFC 4285 timestamps are wall-clock time).

* DNS updates (RFC 5026 §6, draft §6) of the home address on --dns-server in --domain,
  RFC 2136 signed with the TSIG key of --tsig-key-file, on a worker thread with a deadline
  of --dns-timeout (harness/reference/ha_dns.py): the BA waits for the answer; a server that
  refuses, fails the signature or does not answer in time gives status 130. The names an MN
  may have updated: --mn-fqdn (RFC 5026 §9.5); --dns-remove-on-expiry takes the draft's MAY.

* IPv4 home addresses (RFC 5555 §4.5) over IPv6 transport: with --address4, the core
  assigns them from --ipv4-pool (default: the second eighth of the home link's IPv4 subnet,
  INT-21) and answers with the IPv4 Address Acknowledgement; each assigned address's /32 is
  routed into the TUN device and its packets go IPv4-in-IPv6 (next header 4) to the CoA of
  the IPv6 home address's binding; IPv4-in-IPv6 from that CoA with the IPv4 home address
  as inner source is written back to the device (ha_io.Tunnels.bind4, from_coa4). The
  access interface's proxy_arp is on while the daemon runs, so that the kernel answers ARP
  on the home link for those addresses (§4.5); the value before is restored at the end.

* BUs in UDP and IPv4 (RFC 5555 §4.2) on port 4191 of --address4: the core binds the
  outer IPv4 source as care-of address and detects a NAT (the IPv4 Care-of Address option
  is not that source); the BA goes back in UDP from that port, to the home address, with
  the NAT Detection option when a NAT was in the path.

  Packets for a home address bound so go to the IPv4 care-of address in UDP from port 4191
  when a NAT was detected, else inside IPv4 (protocol 41, from --address4) (§4.5.1).

  The reverse tunnel likewise: an IPv6 packet (not a Mobility Header) in UDP to port 4191
  or in protocol 41, from the IPv4 care-of address of its home address's binding, goes to
  the TUN device and on.

  IPv4 packets of an IPv4 home address go the same ways (UDP, or IPv4 in IPv4, protocol 4).

Not done yet: the MN-ID option check (RFC 4283); NAT keepalives and the F flag (RFC 5555
§4.3, §4.5); IGMP
Reports through the tunnel are not read (only BUs change the state, as for MLD, INT-7); the
RFC 3810 startup queries (the first query goes at once, the next after a whole Query
Interval).

Deliberate faults for the suite's own tests (the catalogue: harness/faults.py): Options.faults,
from DMMCONF_HA_MUTANT=<name>, switches them on; the daemon consults them at its hook points
and through harness/reference/ha_hooks.py. tests/meta/test_ha_mutants.py checks that the suite
catches each.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
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

from harness.faults import NO_FAULTS, Fault, Faults, Role, UnknownFault
from harness.reference import encode, ha_dns, ha_hooks
from harness.reference.ha_core import (
    Action,
    DadRequest,
    DnsRequest,
    HAConfig,
    HomeAgentCore,
    IPv4Bound,
    MulticastChanged,
    SendBindingAck,
    SendBindingError,
    SendParameterProblem,
    TunnelDown,
    TunnelMoved,
    TunnelUp,
)
from harness.reference.ha_dataplane import QuerySchedule, Served
from harness.reference.ha_io import FaultyRouterAdvertiser, MulticastForwarder, Tunnels, ipv6_header
from harness.wire import ipv6

IPPROTO_DSTOPTS, IPPROTO_MH, IPPROTO_IPV6_IN_IPV6, IPPROTO_IPV4_IN_IPV6 = 60, 135, 41, 4
DSMIP_PORT = 4191  # RFC 5555 §8: BUs and tunnelled packets in UDP/IPv4
RAW4 = -41  # the _rx tag of the IPv4 socket of protocol 41 (IPv6 in IPv4)
ICMP6_MAX = 1280  # RFC 4443 §2.4: the error packet must not exceed the minimum MTU
READY_LINE = "dmmconf ha: ready"
# RFC defaults of the timers (seconds), multiplied by --time-scale when not given.
DEFAULT_QUERY_INTERVAL = 125.0  # RFC 3810 §9.2
DEFAULT_QUERY_RESPONSE_INTERVAL = 10.0  # RFC 3810 §9.3
RETRANS_TIMER = 1.0  # RFC 4861 §10: how long DAD waits for an answer (DupAddrDetectTransmits 1)
DAD_MIN_WAIT = 0.05  # however small the scale: time for a neighbour's answer to arrive
SOL_ICMPV6, ICMP6_FILTER = 58, 1  # linux/icmpv6.h
MAX_RA_DELAY_TIME = 0.5  # RFC 4861 §10


@dataclass(frozen=True)
class Options:
    iface: str
    uplink: str | None
    prefix: ipaddress.IPv6Network
    address: ipaddress.IPv6Address
    keys: dict[int, bytes]
    max_lifetime: int = 420
    faults: Faults = NO_FAULTS  # deliberate faults (harness/faults.py); none in the reference
    mld_query_interval: float = DEFAULT_QUERY_INTERVAL
    mld_query_response_interval: float = DEFAULT_QUERY_RESPONSE_INTERVAL
    ra_interval: tuple[float, float] | None = None  # (MinRtrAdvInterval, MaxRtrAdvInterval)
    time_scale: float = 1.0
    dns_server: str | None = None  # RFC 5026 §6: None, no DNS update service (status 129)
    domain: str | None = None
    tsig_key: Any = None  # harness.servers.bind.TsigKey (RFC 5026 §9.5), None: unsigned
    dns_timeout: float = 1.0  # seconds an update may take before its BA says 130
    mn_fqdns: tuple[str, ...] = ()  # the names an MN may have updated (empty: the domain's)
    dns_remove_on_expiry: bool = False  # draft §6 MAY
    address4: ipaddress.IPv4Address | None = None  # on the home link (RFC 5555 dual stack)
    ipv4_pool: ipaddress.IPv4Network | None = None  # RFC 5555 §4.5 dynamic IPv4 home addresses
    # draft §9: the data plane function's address (None: one address for both functions)
    data_plane: ipaddress.IPv6Address | None = None

    @property
    def tunnel_address(self) -> ipaddress.IPv6Address:
        """Where the tunnels end at the HA: the data plane function's address when the
        functions are separate (draft §9), else the HA's own."""
        if self.data_plane is None or self.faults.has(Fault.HA_TUNNEL_FROM_CP):
            return self.address
        return self.data_plane

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
            dns_domain=opts.domain if opts.dns_server else None,
            dns_names=frozenset(() if opts.faults.has(Fault.HA_DNS_ANY_NAME) else opts.mn_fqdns),
            dns_remove_on_expiry=opts.dns_remove_on_expiry
            and not opts.faults.has(Fault.HA_DNS_EXPIRY_KEEPS),
            ipv4_pool=opts.ipv4_pool,
            ipv4_address=opts.address4,
            # draft §9: each BA names the data plane function (INT-9)
            data_plane_address=None if opts.faults.has(Fault.HA_DP_NOT_IN_BA) else opts.data_plane,
            faults=opts.faults,
        )
        self.faults = opts.faults
        self.core = HomeAgentCore(config)
        self._stop = False
        self._rx: list[tuple[socket.socket, int]] = []
        self._tx: socket.socket | None = None
        self._nd: socket.socket | None = None  # Neighbor Advertisements on the access link
        self._dads: dict[int, tuple[float, ipaddress.IPv6Address]] = {}  # id: (deadline, hoa)
        self._dad_bus = ha_hooks.BuMemory()  # the BU each DAD answers, for the faults
        self.tunnels = Tunnels(opts.tunnel_address, None, self.log, self.faults)
        self.multicast = MulticastForwarder(opts.uplink, opts.iface, self.log, self.faults)
        self.querier = QuerySchedule(
            opts.mld_query_interval, opts.mld_query_response_interval, self.faults
        )
        # Draft §8: the IGMP querier for mobile nodes with IPv4 state, on the MLD timers
        self.querier4 = QuerySchedule(
            opts.mld_query_interval, opts.mld_query_response_interval, self.faults
        )
        self.advertiser: Any = None
        self.link_local: ipaddress.IPv6Address | None = None
        self.access_ifindex = 0
        self.ghosts: list[Served] = []  # kept by a fault only (ha_hooks.ghosts)
        self.dns: ha_dns.DnsUpdater | None = None
        self._served: dict[tuple[ipaddress.IPv6Address, int], Served] = {}  # see served()
        self._proxy_arp_was: str | None = None  # the access link's proxy_arp before ours
        self._udp4: socket.socket | None = None  # RFC 5555 §4.2, the DSMIPv6 port
        self._raw4: socket.socket | None = None  # IPv6 in IPv4 to IPv4 care-of addresses
        self._raw44: socket.socket | None = None  # IPv4 in IPv4 likewise
        self._data_plane_added = False  # the data plane's address was put on --iface by us

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
        tunnel4 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_IPV4_IN_IPV6)
        tunnel4.setblocking(False)
        self._rx.append((tunnel4, IPPROTO_IPV4_IN_IPV6))
        if self.opts.address4 is not None:  # RFC 5555 §4.2: BUs in UDP/IPv4
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            udp.bind((str(self.opts.address4), DSMIP_PORT))  # the BA's source is HA_V4ADDR
            udp.setblocking(False)
            self._rx.append((udp, DSMIP_PORT))
            self._udp4 = udp
            raw4 = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_IPV6_IN_IPV6)
            raw4.bind((str(self.opts.address4), 0))  # the outer source: HA_V4ADDR
            raw4.setblocking(False)
            self._raw4 = raw4
            self._rx.append((raw4, RAW4))
            raw44 = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_IPIP)
            raw44.bind((str(self.opts.address4), 0))
            raw44.setblocking(False)
            self._raw44 = raw44
            self._rx.append((raw44, RAW4))
        self._open_data_plane()
        self.tunnels = Tunnels(self.opts.tunnel_address, self._tx, self.log, self.faults)
        self.tunnels.node_of = self.core.nodes.get
        self.tunnels.udp_path = self.core.udp4_path
        self.tunnels.udp4, self.tunnels.raw4 = self._udp4, self._raw4
        self.tunnels.raw44 = self._raw44
        self.multicast.open()
        self._open_access_link()
        if self.opts.address4 is not None and not self.faults.has(Fault.HA_NO_PROXY_ARP):
            self._proxy_arp()

    def _open_data_plane(self) -> None:
        """Draft §9: the data plane function's address on the access interface (the two
        functions share this process, and with it the binding cache, §9's common database)."""
        if self.opts.data_plane is None:
            return
        argv = ["ip", "-6", "addr", "add", f"{self.opts.data_plane}/128", "dev", self.opts.iface]
        done = subprocess.run([*argv, "nodad"], capture_output=True, text=True, timeout=5)
        if done.returncode == 0:
            self._data_plane_added = True
        elif "exists" not in done.stderr:
            self.log(f"cannot add the data plane address: {done.stderr.strip()}")
        self.log(
            f"data plane function at {self.opts.data_plane} (control plane {self.opts.address})"
        )

    def _close_data_plane(self) -> None:
        if self._data_plane_added:
            argv = [
                "ip",
                "-6",
                "addr",
                "del",
                f"{self.opts.data_plane}/128",
                "dev",
                self.opts.iface,
            ]
            subprocess.run(argv, capture_output=True, timeout=5)
            self._data_plane_added = False

    def _proxy_arp(self) -> None:
        """RFC 5555 §4.5: the HA answers ARP on the home link for the IPv4 home addresses
        it serves; the kernel does it for every address routed elsewhere (their /32 into
        the TUN device) once proxy_arp is on for the access interface."""
        self._proxy_arp_was = self._set_proxy_arp("1")

    def _set_proxy_arp(self, value: str) -> str | None:
        """Write the access interface's proxy_arp; its value before (None: not written)."""
        path = f"/proc/sys/net/ipv4/conf/{self.opts.iface}/proxy_arp"
        try:
            with open(path, encoding="ascii") as f:
                before = f.read().strip()
            with open(path, "w", encoding="ascii") as f:
                f.write(value)
        except OSError as exc:
            self.log(f"cannot set proxy ARP for IPv4 home addresses ({path}): {exc}")
            return None
        return before

    def _open_access_link(self) -> None:
        """The access interface: its link-local address (the MLD querier's source, RFC 3810
        §5.1.14) and, with --ra-interval, the Router Advertisements (RFC 6275 §7)."""
        from harness.netproto import icmp6
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
        self.advertiser = FaultyRouterAdvertiser(
            self.opts.iface,
            params,
            min_interval=low,
            max_interval=high,
            max_ra_delay=MAX_RA_DELAY_TIME * self.opts.time_scale,
            name=f"dmmconf-ha-ra-{self.opts.iface}",
            faults=self.faults,
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
        self._close_data_plane()
        if self._proxy_arp_was is not None:  # the next HA on this link starts as we did
            self._set_proxy_arp(self._proxy_arp_was)
            self._proxy_arp_was = None
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
        self._raw4 = self._raw44 = None  # closed with the other receivers
        if self._tx is not None:
            self._tx.close()
            self._tx = None

    def stop(self, *_: object) -> None:
        self._stop = True

    # ------------------------------------------------------------------ loop

    def served(self) -> list[Served]:
        """The multicast service of every binding that has some (and, for one fault, its
        ghosts). Kept up to date binding by binding (`_track`): each packet the sniffers
        see asks for it, and a walk over every binding would cost O(cache) per event."""
        return [*self._served.values(), *self.ghosts]

    def _track(self, hoa: ipaddress.IPv6Address, bid: int) -> None:
        """A binding came, moved, changed its multicast state or went: its entries in
        served() and in the querier's schedule follow it."""
        key, binding = (hoa, bid), self.core.binding(hoa, bid)
        if binding is None:
            self._served.pop(key, None)
            self.querier.drop(key)
            self.querier4.drop(key)
            return
        state = binding.multicast
        # HA_IGNORE_LEAVE serves bindings left with no state too
        if state.mld.groups or state.igmp.groups or self.faults.has(Fault.HA_IGNORE_LEAVE):
            self._served[key] = Served(binding.coa, state, self.core.nodes.get(hoa))
        else:
            self._served.pop(key, None)
        self.querier.update(key, binding.coa, bool(state.mld.groups), time.monotonic())
        igmp = bool(state.igmp.groups) and not self.faults.has(Fault.HA_NO_IGMP_QUERIER)
        self.querier4.update(key, binding.coa, igmp, time.monotonic())

    def _timeout(self) -> float | None:
        waits = []
        deadline = self.core.next_deadline()
        if deadline is not None:
            waits.append(max(0.0, deadline - time.time()) + 0.001)
        for querier in (self.querier, self.querier4):
            due = querier.next_due()
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
        self._open_dns(wake_w)
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        self.log(
            f"prefix {self.opts.prefix}, address {self.opts.address}, "
            f"{len(self.opts.keys)} MN-HA key(s), MLD Query Interval "
            f"{self.opts.mld_query_interval:g} s"
            + (f", FAULTS {self.faults}" if self.faults else "")
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
                    elif proto == IPPROTO_IPV4_IN_IPV6:
                        self.tunnels.from_coa4(r)
                    elif proto == DSMIP_PORT:
                        self._drain_udp4(r)
                    elif proto == RAW4:
                        self.tunnels.from_raw4(r)
                    elif proto is not None:
                        self._drain(r, proto)
                self._dns_results()
                self._dad_timeouts()
                self._tick()
                self._query()
        finally:
            signal.set_wakeup_fd(-1)
            if self.dns is not None:
                self.dns.close()
            wake_r.close()
            wake_w.close()
            self.tunnels.close()
            self.multicast.close()
            self.close()
        self.log("stopped")
        return 0

    # ------------------------------------------------------------------ DNS

    def _open_dns(self, wake: socket.socket) -> None:
        """The updater of RFC 5026 §6; its worker wakes the loop through `wake`."""
        opts = self.opts
        if opts.dns_server is None or opts.domain is None:
            return

        def poke() -> None:
            with contextlib.suppress(OSError):
                wake.send(b"d")

        self.dns = ha_dns.DnsUpdater(
            opts.dns_server,
            opts.domain,
            None if self.faults.has(Fault.HA_DNS_UNSIGNED) else opts.tsig_key,
            poke,
            timeout=3600.0 if self.faults.has(Fault.HA_DNS_NO_DEADLINE) else opts.dns_timeout,
            remove_all=self.faults.has(Fault.HA_DNS_REMOVE_ALL),
        )
        signed = "TSIG " + opts.tsig_key.name if opts.tsig_key is not None else "unsigned"
        self.log(f"DNS updates to {opts.dns_server} in {opts.domain} ({signed})")

    def _dns_request(self, request: DnsRequest) -> None:
        if self.dns is None:
            self.log(f"DNS update for {request.hoa}: no DNS server: answered as failed")
            self.perform(self.core.dns_done(request.request_id, False))
            return
        if ha_hooks.dns_skipped(self.faults, request):
            self.perform(self.core.dns_done(request.request_id, True))
            return
        if self.faults.has(Fault.HA_DNS_NO_A_RECORD):
            request = dataclasses.replace(request, hoa4=None)
        verb = "remove" if request.remove else "add"
        a = f" A {request.hoa4}" if request.hoa4 is not None else ""
        self.log(f"DNS {verb} {request.fqdn} AAAA {request.hoa}{a} ({request.why})")
        self.dns.submit(request)

    def _dns_results(self) -> None:
        if self.dns is None:
            return
        for result in self.dns.results():
            self.log(f"DNS update {result.request_id}: {result.why}")
            self.perform(self.core.dns_done(result.request_id, result.ok))

    # ------------------------------------------------------------------ DAD

    def _start_dad(self, request_id: int, hoa: ipaddress.IPv6Address) -> None:
        """RFC 4862 §5.4.2 on behalf of the mobile node: one NS from ::, then listen."""
        if self.faults.has(Fault.HA_NO_DAD) or self._tx is None or not self.access_ifindex:
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
        if self.link_local is None:
            return
        for coa in self.querier.due(now):
            source = self.link_local  # RFC 3810 §5.1.14
            if self.faults.has(Fault.HA_QUERY_FROM_GLOBAL):
                source = ipaddress.IPv6Address(self.opts.address)
            query = encode.mld_general_query(
                source,
                max_response=self.opts.mld_query_response_interval,
                query_interval=self.opts.mld_query_interval,
            )
            if self.faults.has(Fault.HA_QUERY_NOT_TUNNELLED):
                self._send(query, str(encode.ALL_NODES), self.access_ifindex)
            else:
                self.tunnels.encapsulate(query, coa)
        if self.opts.address4 is None:
            return
        for coa in self.querier4.due(now):  # draft §8: IGMPv3, IPv4-in-IPv6 (RFC 5555 §4.5.1)
            query4 = encode.igmp_general_query(
                self.opts.address4,
                max_response=self.opts.mld_query_response_interval,
                query_interval=self.opts.mld_query_interval,
            )
            self.tunnels.encapsulate(query4, coa, IPPROTO_IPV4_IN_IPV6)

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
        DAD ends), as the faults bend it."""
        ghostly = self.faults.has(Fault.HA_GHOST_STATE) or self.faults.has(
            Fault.HA_REJECTED_BU_INSTALLS
        )
        before = (  # for those faults only: a walk over every binding costs O(cache) per BU
            {(b.hoa, b.bid): Served(b.coa, b.multicast) for b in self.core.bindings()}
            if ghostly
            else {}
        )
        mcoa = ha_hooks.mcoa_before(self.faults, self.core.nodes, packet)
        actions = step()
        actions = ha_hooks.mcoa_after(self.faults, self.core.nodes, mcoa, packet, actions)
        self._dad_bus.remember(packet, actions, {i: hoa for i, (_, hoa) in self._dads.items()})
        if ghostly:
            after = {(b.hoa, b.bid) for b in self.core.bindings()}
            self.ghosts += ha_hooks.ghosts(self.faults, packet, actions, before, after)
            self.multicast.sync(self.served())
        answered = ha_hooks.reaction(self.faults, packet, actions)
        if self.faults.has(Fault.HA_ANSWER_DISCARDED_LATE) and answered and not actions:
            # A stalled daemon: past the tester's quiet window (INT-15), nothing else served.
            select.select([], [], [], self.opts.time_scale + 1.0)
        actions = answered
        self.ghosts = ha_hooks.ghosts_kept(self.faults, self.ghosts, actions)
        self.perform(actions)

    def _tick(self) -> None:
        """Bindings whose lifetime ran out end (RFC 6275 §10.3.1), for one fault but their
        multicast service."""
        keep = self.faults.has(Fault.HA_EXPIRY_KEEPS_MULTICAST)
        before = (
            {(b.hoa, b.bid): Served(b.coa, b.multicast) for b in self.core.bindings()}
            if keep
            else {}
        )
        actions = self.core.tick(time.time())
        if keep and actions:
            after = {(b.hoa, b.bid) for b in self.core.bindings()}
            self.ghosts += ha_hooks.expired(self.faults, before, after)
            self.multicast.sync(self.served())
        self.perform(actions)

    def _dad_done(self, request_id: int, duplicate: bool) -> None:
        def step() -> list[Action]:
            return self.core.dad_done(request_id, duplicate, time.time())

        packet = self._dad_bus.pop(request_id)
        if packet is None:
            self.perform(step())
        else:
            self._react(packet, step)

    # ------------------------------------------------------------------ actions

    def perform(self, actions: list[Action]) -> None:
        for original in actions:
            if isinstance(original, _CHANGES_BINDINGS):
                self._track(original.hoa, original.bid)
            action = ha_hooks.action(self.faults, original, time.time())
            if action is None:
                continue
            if isinstance(action, SendBindingAck) and action.udp4 is not None:
                pkt = encode.binding_ack_bytes(action, self.core.config)
                if self._udp4 is not None:  # RFC 5555 §4.2: the way the BU came
                    with contextlib.suppress(OSError):
                        self._udp4.sendto(pkt, (str(action.udp4.address), action.udp4.port))
                self.log(
                    f"BA in UDP to {action.udp4.address}:{action.udp4.port} for {action.hoa}: "
                    f"status {action.status}, seq {action.seq}, NAT {action.udp4.nat}"
                )
            elif isinstance(action, SendBindingAck):
                pkt = encode.binding_ack_bytes(action, self.core.config)
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
            elif isinstance(action, TunnelMoved):
                self.log(f"tunnel moved: {action.hoa} (bid {action.bid}) -> {action.coa}")
                if not self.faults.has(Fault.HA_DP_MISSES_MOVES):
                    self.tunnels.up(action.hoa, action.bid, action.coa)  # re-points the entry
            elif isinstance(action, TunnelDown):
                self.log(f"tunnel down: {action.hoa} (bid {action.bid}) -> {action.coa}")
                self.tunnels.down(action.hoa, action.bid)
            elif isinstance(action, MulticastChanged):
                self.log(f"multicast state of {action.hoa} -> {action.coa} changed")
                self.multicast.sync(self.served())
            elif isinstance(action, DadRequest):
                self._start_dad(action.request_id, action.hoa)
            elif isinstance(action, DnsRequest):
                self._dns_request(action)
            elif isinstance(action, IPv4Bound):
                self.log(f"IPv4 home address of {action.hoa}: {action.address}")
                self.tunnels.bind4(action.hoa, action.address)

    def _drain_udp4(self, s: socket.socket) -> None:
        """RFC 5555 §4.2: an IPv6 packet with a Mobility Header inside UDP and IPv4."""
        while True:
            try:
                data, (src, port) = s.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            if self.faults.has(Fault.HA_NO_UDP4) or not data:
                continue
            origin = (ipaddress.IPv4Address(src), port)
            if data[0] >> 4 == 4:  # §4.1: an IPv4 packet from the IPv4 home address
                self.tunnels.from_ipv4_coa(data, origin[0])
                continue
            if len(data) < 40 or data[0] >> 4 != 6:
                continue
            view = ipv6.parse(data)
            if view is not None and view.upper != IPPROTO_MH:
                self.tunnels.from_ipv4_coa(data, origin[0])  # §4.1: data, not signalling
                continue

            def step(data: bytes = data, origin: Any = origin) -> list[Action]:
                return self.core.receive(data, time.time(), udp4=origin)

            self._react(data, step)

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


# The actions after which served() and the querier look at the bindings again.
_CHANGES_BINDINGS = (TunnelUp, TunnelMoved, TunnelDown, MulticastChanged)


def main(opts: Options) -> int:
    daemon = HomeAgentDaemon(opts)
    try:
        return daemon.run()
    except PermissionError as exc:
        print(f"dmmconf ha: cannot open raw sockets: {exc} (needs CAP_NET_RAW)", file=sys.stderr)
        return 1


def faults_from_env() -> Faults:
    """DMMCONF_HA_MUTANT (how a profile switches faults on); an unknown name ends the run."""
    try:
        return Faults.from_env(Role.HA)
    except UnknownFault as exc:
        raise SystemExit(f"dmmconf ha: {exc}") from None
