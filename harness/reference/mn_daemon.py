"""The reference Mobile Node daemon: a thin I/O shell around MobileNodeCore (`dmmconf mn`).

It runs inside the MN's namespace and owns the global addresses of the interfaces it is
given (it turns the kernel's SLAAC off there and forms addresses from the RAs itself, with
the interface's EUI-64 identifier and no DAD wait: a mobility daemon that decides when an
address becomes a home address must also decide when it leaves the link). All decisions are
the core's; this module only does I/O:

* Router Advertisements on a raw ICMPv6 socket per interface; a Router Solicitation on
  carrier up (link events from rtnetlink).
* Sessions: the local addresses of open TCP connections and connected UDP sockets
  (/proc/net/tcp6, /proc/net/udp6), OPEN-15.
* Multicast listening: the kernel's listener state of the air interfaces
  (harness/reference/mn_listener.py).
* Binding Updates (Home Address option, Alternate Care-of Address, Multicast State options,
  RFC 4285 authentication) sent whole through an IPPROTO_RAW socket; Binding
  Acknowledgements, which carry a type 2 routing header the kernel refuses (docs/lab-facts.md),
  read from an AF_PACKET socket; an nftables rule keeps the kernel from answering them
  with ICMP Parameter Problems.
* Home agent bootstrapping (draft §7): the core's DNS queries go to the configured server
  over UDP (dnspython builds and reads them), its DHCPv6 Information-requests to
  ff02::1:2 from port 546 on the link (harness/wire/dhcp.py builds them); the answers go
  back to the core, which owns every timer (retransmissions, giving up).
* The tunnel: one TUN device holds the home addresses (deprecated, so new communication
  picks the link's address, draft §3) and a policy rule per home address routes what the
  applications send from it into the device; the daemon encapsulates that to the home
  agent (reverse tunnelling, OPEN-2) and writes what the home agents tunnel to it into the
  device, which joins the bindings' groups so that applications keep receiving
  (docs/lab-facts.md: mirror membership).
* An IPv4-only link (draft §8, RFC 5555): with --dhcpv4, the DHCPv4 client's settling on
  the link (its lease and the DHCPINFORM's home agents, harness/reference/mn_dhcp4.py) goes
  to the core; its BUs in UDP/IPv4 leave one UDP socket for the HA's port 4191, and what
  comes back on it is a BA (with the IPv4 Address Acknowledgement and NAT Detection options)
  or an IPv6 packet for the tunnel device; what a home address bound so sends goes in UDP
  too. The IPv4 home address is put on the tunnel device with a rule that routes what it
  sends there, and its IPv4 packets go in UDP to the HA and back (RFC 5555 §4.1, §4.5.1).
* Several interfaces (draft §7.1, INT-20): an interface of --ifaces that is not there at
  start is taken on when it appears (polled), and its carrier is polled too (IFF_RUNNING;
  the first interface's loss as well, so that its binding goes on from another one);
  its default route comes after the first interface's, and a rule routes what its own
  address sends through it. The flows the HA accepted get a rule by port into a table whose
  route takes the home address into the tunnel device; the daemon sends them from the
  flow's care-of address (IPV6_PKTINFO, so that the kernel routes by that source).

The packets are built and read in harness/reference/mn_packets.py, the kernel is asked
through harness/reference/mn_kernel.py. Deliberate faults for the suite's own tests (the
catalogue: harness/faults.py) come in Options.faults, from DMMCONF_MN_MUTANT=<name>, and are
consulted at the hook points here, in mn_packets.py and in the core
(tests/meta/test_mn_mutants.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import ipaddress
import os
import select
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.faults import NO_FAULTS, Fault, Faults, Role, UnknownFault
from harness.reference import mn_core, mn_dhcp4, mn_listener, nflog
from harness.reference import mn_packets as packets
from harness.reference.mn_core import MNConfig, MobileNodeCore
from harness.reference.mn_kernel import (
    CarrierWatch,
    LinkEvents,
    active_session_addresses,
    find_nft,
    ip_batch,
    nft_script,
    run_nft,
    session_peers,
    sysctl,
)
from harness.reference.multicast import ListenerState
from harness.wire import layers as _layers  # noqa: F401  (scapy dissects with every project layer)

LATE_REGISTER = 2.0  # seconds the late-register fault holds a needless BU back
BU_BURST = 8  # copies of each BU the bu-burst fault sends

IPPROTO_IPV6_IN_IPV6, IPPROTO_ROUTING, IPPROTO_MH = 41, 43, 135
IPPROTO_IPV4_IN_IPV6 = 4  # RFC 2473 with IPv4 inside: an IPv4 home address's or group's data
SO_MARK = 36
ETH_P_IPV6 = 0x86DD
ETH_P_IP = 0x0800
DHCP4_CLIENT_PORT = 68  # RFC 2131 §4.1
DSMIP_PORT = 4191  # RFC 5555 §8: BUs and tunnelled packets in UDP/IPv4
TUNSETIFF, IFF_TUN, IFF_NO_PI = 0x400454CA, 0x0001, 0x1000
SIOCGIFFLAGS, IFF_RUNNING = 0x8913, 0x40
TUN_NAME = "dmmmn0"
ROUTE_TABLE = 4242  # what the home addresses send goes into the tunnel device
RULE_PRIORITY = 1000
FLOW_TABLE = 4250  # + n: a flow's sessions take the home address (draft §7.1, INT-20)
FLOW_RULE_PRIORITY = 999
IFACE_TABLE = 4300  # + rank: what an added interface's address sends leaves through it
IFACE_RULE_PRIORITY = 1001
NFT_TABLE = "dmmconf_mn"
NFLOG_GROUP = 4242  # the kernel's MLD and IGMPv3 Reports on the air interfaces, held back for us
MARK = 0x444D  # what this daemon sends; the nftables rules let it pass
POLL_INTERVAL = 0.05  # how often sessions and listener state are looked at (seconds)
ND_RS, ND_RA = 133, 134
ALL_ROUTERS = "ff02::2"
MLDV2_ROUTERS = "ff02::16"
DNS_PORT = 53
DHCP6_CLIENT_PORT, DHCP6_SERVER_PORT = 546, 547  # RFC 8415 §7.2
ALL_DHCP_RELAY_AGENTS_AND_SERVERS = "ff02::1:2"  # RFC 8415 §7.1
READY_LINE = "dmmconf mn: ready"


@dataclass(frozen=True)
class Options:
    ifaces: tuple[str, ...]
    spi: int | None = None
    key: bytes | None = None
    mn_id: str | None = None
    bu_lifetime: int = 100  # 4 s units
    time_scale: float = 1.0
    deregister: bool = True
    fqdn: str | None = None  # the MN's FQDN: DNS Update option (RFC 5026 §8.1)
    dns_server: str | None = None  # bootstrapping by DNS (draft §7)
    domain: str | None = None
    ha_fqdn: str | None = None
    dhcp: bool = False  # bootstrapping by DHCPv6 (draft §7, RFC 6610)
    dhcpv4: bool = False  # DHCPv4 on links without IPv6 (draft §8; mn_dhcp4.py)
    flows: tuple[mn_core.FlowPolicy, ...] = ()  # flows bound to an interface (RFC 6089)
    flows_file: str | None = None  # a new policy written here is taken (IFACE=PORT words)
    faults: Faults = NO_FAULTS  # deliberate faults (harness/faults.py); none in the reference


# ---------------------------------------------------------------- the daemon


class MobileNodeDaemon:
    def __init__(self, opts: Options, log: Callable[[str], None] | None = None) -> None:
        self.opts = opts
        self.log = log or (lambda line: print(f"dmmconf mn: {line}", flush=True))
        self.faults = opts.faults
        self._acked: set[ipaddress.IPv6Address] = set()  # the ro-on-refresh fault's memory
        self.core = MobileNodeCore(
            MNConfig(
                bu_lifetime=opts.bu_lifetime,
                time_scale=opts.time_scale,
                deregister=opts.deregister,
                faults=opts.faults,
                fqdn=opts.fqdn,
                dns_server=ipaddress.IPv6Address(opts.dns_server) if opts.dns_server else None,
                domain=opts.domain,
                ha_fqdn=opts.ha_fqdn,
                dhcp=opts.dhcp,
                flows=opts.flows,
            )
        )
        self._dns: socket.socket | None = None
        self._dhcp: socket.socket | None = None
        self._mac: dict[str, str] = {}
        self._stop = False
        self._ra: dict[int, str] = {}  # fd -> iface
        self._ra_socks: dict[str, socket.socket] = {}
        self._ba: dict[int, tuple[socket.socket, str]] = {}
        self._tx: socket.socket | None = None
        self._igmp_tx: socket.socket | None = None
        self._tunnel_rx: socket.socket | None = None
        self._tunnel4_rx: socket.socket | None = None  # IPv4 in IPv6 from the HAs (draft §8)
        self._tun_fd: int | None = None
        self._tun_index = 0
        self._ifindex: dict[str, int] = {}
        self._routes: dict[ipaddress.IPv6Address, tuple[ipaddress.IPv6Address, ...]] = {}
        self._has: dict[ipaddress.IPv6Address, tuple[ipaddress.IPv6Address, ipaddress.IPv6Address]]
        self._has = {}
        self._flows: dict[tuple[ipaddress.IPv6Address, int], tuple[Any, Any]] = {}
        self._flow_rules: list[str] = []  # `ip rule del` lines of what FlowRoutes installed
        self._iface_rules: dict[ipaddress.IPv6Address, str] = {}
        self._running: dict[str, bool] = {}  # carrier of the interfaces taken on later
        self._flows_seen: float | None = None  # mtime of the flows file taken last
        self._nl: Any = None
        self._air: nflog.NflogGroup | None = None
        self._bu_on_link_sent = False
        self._mirror: Any = None
        self._listener: Any = None
        self._last_seen: tuple[frozenset[Any], Any] | None = None
        # DHCPv4 on IPv4-only links (draft §8): its core, and per interface an AF_PACKET
        # socket (the client has no address yet) and a UDP sink on port 68, so that the
        # kernel answers the unicast DHCPACK to a DHCPINFORM with no ICMP error
        self.v4 = (
            mn_dhcp4.Dhcp4Client(mn_dhcp4.Dhcp4Config(opts.time_scale, faults=opts.faults))
            if opts.dhcpv4
            else None
        )
        self._v4_socks: dict[int, tuple[socket.socket, str]] = {}
        self._v4_carrier: CarrierWatch | None = None
        # RFC 5555 §4.2: BUs in UDP/IPv4 to a dual-stack HA's port 4191 and their BAs, and
        # the home addresses tunnelled that way (hoa -> HA's IPv4 address), on one socket:
        # one NAT binding for signalling and data
        self._udp4: socket.socket | None = None
        self._has4: dict[ipaddress.IPv6Address, ipaddress.IPv4Address] = {}
        self._hoa4: dict[ipaddress.IPv6Address, ipaddress.IPv4Address] = {}

    # ------------------------------------------------------------------ set-up

    def open(self) -> list[mn_core.Action]:
        actions: list[mn_core.Action] = []
        # an interface that comes later (draft §7.1) forms no address of its own either
        for key, value in (("accept_ra", "0"), ("autoconf", "0"), ("accept_dad", "0")):
            sysctl(f"net/ipv6/conf/default/{key}", value)
        for iface in self.opts.ifaces:
            if iface == self.opts.ifaces[0] or _exists(iface):
                actions += self._open_iface(iface)
            else:
                self.log(f"{iface} is not there yet: managed when it appears")
        if self.opts.dns_server is not None:
            self._dns = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            self._dns.setblocking(False)
        if self.opts.dhcp:
            self._dhcp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            self._dhcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._dhcp.bind(("::", DHCP6_CLIENT_PORT))  # RFC 8415 §7.2
            self._dhcp.setblocking(False)
        self._tx = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
        self._tx.setsockopt(socket.SOL_SOCKET, SO_MARK, MARK)
        self._igmp_tx = self._igmp_socket()
        self._air = nflog.NflogGroup(NFLOG_GROUP)
        self._tunnel_rx = socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_IPV6_IN_IPV6)
        self._tunnel_rx.setblocking(False)
        self._tunnel4_rx = socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_IPV4_IN_IPV6)
        self._tunnel4_rx.setblocking(False)
        self._open_tun()
        self._nft(add=True)
        self._nl = LinkEvents()
        if self.v4 is not None:
            self._v4_carrier = CarrierWatch(self.opts.ifaces)
            self._udp4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._udp4.bind(("0.0.0.0", 0))
            self._udp4.setblocking(False)
        self._listener = mn_listener.KernelListenerWatch(list(self._ifindex))
        self._mirror = mn_listener.TunnelMirror(self._tun_index)
        return actions

    @staticmethod
    def _igmp_socket() -> socket.socket:
        """What the kernel would send an IGMPv3 Report with (RFC 3376 §4: TTL 1, the IP
        Router Alert option), marked to pass this daemon's own nftables rule."""
        from harness.netproto import igmp

        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_IGMP)
        sock.setsockopt(socket.SOL_SOCKET, SO_MARK, MARK)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, igmp.ROUTER_ALERT)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        return sock

    def _open_iface(self, iface: str) -> list[mn_core.Action]:
        from harness.netproto import icmp6

        # this daemon forms the addresses (see the module docstring)
        for key, value in (("accept_ra", "0"), ("autoconf", "0"), ("accept_dad", "0")):
            sysctl(f"net/ipv6/conf/{iface}/{key}", value)
        sock, ifindex = icmp6.open_icmpv6_socket(iface, [ND_RA])
        sock.setblocking(False)
        self._ifindex[iface] = ifindex
        self._ra[sock.fileno()] = iface
        self._ra_socks[iface] = sock
        mac = icmp6.hardware_address(sock, iface)
        if mac is None:
            raise OSError(f"{iface} has no hardware address")
        self._mac[iface] = mac
        self._flush_global(iface)
        ba = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IPV6))
        ba.bind((iface, 0))
        ba.setblocking(False)
        self._ba[ba.fileno()] = (ba, iface)
        if self.v4 is not None:
            self._open_v4(iface)
        return self.core.add_interface(iface, mn_core.eui64_iid(mac))

    def _flush_global(self, iface: str) -> None:
        ip_batch([f"addr flush dev {iface} scope global"], self.log)

    def _open_tun(self) -> None:
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", TUN_NAME.encode(), IFF_TUN | IFF_NO_PI))
        self._tun_fd = fd
        ip_batch(
            [
                f"link set {TUN_NAME} up multicast on",
                f"route replace default dev {TUN_NAME} table {ROUTE_TABLE}",
            ],
            self.log,
        )
        sysctl(f"net/ipv6/conf/{TUN_NAME}/accept_dad", "0")
        self._tun_index = socket.if_nametoindex(TUN_NAME)

    def _nft(self, add: bool) -> None:
        """BAs are read from AF_PACKET, before the input hook (RFC 6275 §6.4); the kernel's
        MLD Reports on the air interfaces go to this daemon (NFLOG), which sends on what
        still belongs to the link (draft §3 last paragraph)."""
        nft = find_nft()
        if nft is None:
            if add:
                self.log("no nft: BAs draw ICMP errors, and moved groups stay reported on air")
            self._drop_air()
            return
        script = nft_script(NFT_TABLE, self.opts.ifaces if add else (), MARK, NFLOG_GROUP)
        refused = run_nft(nft, script)
        if add and refused is not None:
            self.log(f"nft refused the rules: {refused}")
            self._drop_air()

    def _drop_air(self) -> None:
        if self._air is not None:
            self._air.close()
            self._air = None

    def close(self) -> None:
        if self._mirror is not None:
            with contextlib.suppress(OSError):
                self._mirror.close()
        if self._listener is not None:
            self._listener.close()
        for sock in self._ra_socks.values():
            sock.close()
        for sock, _ in [*self._ba.values(), *self._v4_socks.values()]:
            sock.close()
        for s in (
            self._tx,
            self._igmp_tx,
            self._tunnel_rx,
            self._tunnel4_rx,
            self._dns,
            self._dhcp,
            self._udp4,
        ):
            if s is not None:
                s.close()
        if self._nl is not None:
            self._nl.close()
        if self._v4_carrier is not None:
            self._v4_carrier.close()
        if self._air is not None:
            self._air.close()
        lines = [f"rule del priority {RULE_PRIORITY}" for _ in self._has]
        if self._hoa4:
            ip_batch([f"rule del priority {RULE_PRIORITY}" for _ in self._hoa4], self.log, "-4")
        lines += self._flow_rules + list(self._iface_rules.values())
        ip_batch(lines, self.log)
        if self._tun_fd is not None:
            os.close(self._tun_fd)  # the device goes with its addresses and routes
        self._nft(add=False)

    def stop(self, *_: object) -> None:
        self._stop = True

    # ------------------------------------------------------------------ loop

    def run(self) -> int:
        actions = self.open()
        wake_r, wake_w = socket.socketpair()
        wake_r.setblocking(False)
        wake_w.setblocking(False)
        signal.set_wakeup_fd(wake_w.fileno())
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        self.log(
            f"interfaces {', '.join(self.opts.ifaces)}, BU lifetime {self.opts.bu_lifetime} "
            f"units, time scale {self.opts.time_scale:g}"
            + (f", FAULTS {self.faults}" if self.faults else "")
        )
        self.perform(actions)
        print(READY_LINE, flush=True)
        next_poll = 0.0
        try:
            while not self._stop:
                now = time.monotonic()
                if now >= next_poll:
                    self.observe(now)
                    next_poll = now + POLL_INTERVAL
                deadline = self.core.next_deadline()
                if self.v4 is not None and (d4 := self.v4.next_deadline()) is not None:
                    deadline = d4 if deadline is None else min(deadline, d4)
                wake = next_poll if deadline is None else min(deadline, next_poll)
                readers: list[Any] = [
                    wake_r,
                    *self._ra_socks.values(),
                    *(s for s, _ in self._ba.values()),
                    self._tunnel_rx,
                    self._tunnel4_rx,
                    self._tun_fd,
                    self._nl,
                    self._listener,
                    *([self._air] if self._air is not None else []),
                    *(s for s in (self._dns, self._dhcp, self._udp4) if s is not None),
                    *(s for s, _ in self._v4_socks.values()),
                    *([self._v4_carrier] if self._v4_carrier is not None else []),
                ]
                ready, _, _ = select.select(readers, [], [], max(0.0, wake - now))
                for r in ready:
                    self._dispatch(r, wake_r)
                self.perform(self.core.tick(time.monotonic()))
                if self.v4 is not None:
                    self._perform_v4(self.v4.tick(time.monotonic()))
        finally:
            signal.set_wakeup_fd(-1)
            wake_r.close()
            wake_w.close()
            self.close()
        self.log("stopped")
        return 0

    def _dispatch(self, r: Any, wake_r: socket.socket) -> None:
        now = time.monotonic()
        if r is wake_r:
            with contextlib.suppress(OSError):
                wake_r.recv(64)
        elif r is self._nl:
            for iface, up in self._nl.drain():
                self._adopt_new_interfaces()
                # an added interface's loss is polled (_poll_carrier): its events are not
                # reliable enough to drop a binding on
                later = iface in self._ifindex and iface != self.opts.ifaces[0]
                if iface in self._ifindex and (up or not later):
                    self.perform(self.core.carrier(now, iface, up))
        elif r is self._v4_carrier and self.v4 is not None:
            for iface, up in self._v4_carrier.drain():
                self._perform_v4(self.v4.carrier(now, iface, up))
        elif r is self._air:
            self._air_reports(now)
        elif r is self._listener:
            if self._listener.drain():
                self.observe(now)
        elif r is self._tunnel_rx:
            self._from_home_agents(self._tunnel_rx, IPPROTO_IPV6_IN_IPV6)
        elif r is self._tunnel4_rx:
            self._from_home_agents(self._tunnel4_rx, IPPROTO_IPV4_IN_IPV6)
        elif r is self._dns:
            self._read_dns()
        elif r is self._dhcp:
            self._read_dhcp()
        elif r is self._udp4:
            self._read_udp4()
        elif r == self._tun_fd:
            self._from_tun()
        elif isinstance(r, socket.socket) and r.fileno() in self._ra:
            self._read_ra(r, self._ra[r.fileno()])
        elif isinstance(r, socket.socket) and r.fileno() in self._ba:
            self._read_ba(r)
        elif isinstance(r, socket.socket) and r.fileno() in self._v4_socks:
            self._read_v4(*self._v4_socks[r.fileno()])

    def _adopt_new_interfaces(self) -> None:
        """An interface of --ifaces that has appeared since (draft §7.1: a new interface
        becomes active): managed from now on, its RS sent once its carrier is up."""
        if self.faults.has(Fault.MN_IGNORE_NEW_IFACE):
            return
        for iface in self.opts.ifaces:
            if iface not in self._ifindex and _exists(iface):
                self.log(f"{iface} appeared")
                self.perform(self._open_iface(iface))
                watched = not self.faults.has(Fault.MN_ADDED_IFACE_GROUPS_UNWATCHED)
                if self._listener is not None and watched:
                    self._listener.watch(iface)  # its groups are the MN's too (draft §3)

    def _poll_carrier(self, now: float) -> None:
        """The carrier of the interfaces, looked at directly (IFF_RUNNING): rtnetlink's
        events for a veth made while the daemon runs were seen to go missing, and those of
        the first interface's loss too. The first interface's carrier coming back is left
        to rtnetlink's event (whose Router Solicitation it already sends)."""
        for n, iface in enumerate(list(self._ifindex)):
            up = _running(iface)
            if up is not None and self._running.get(iface, up) != up and (n or not up):
                self.perform(self.core.carrier(now, iface, up))
            if up is not None:
                self._running[iface] = up

    def _poll_flows_file(self, now: float) -> None:
        """A new flow policy (the profile's move_flows command writes it): IFACE=PORT words;
        one that does not parse is logged and left."""
        path = self.opts.flows_file
        if path is None:
            return
        try:
            mtime = os.stat(path).st_mtime
            if mtime == self._flows_seen:
                return
            self._flows_seen = mtime
            with open(path) as f:
                words = f.read().split()
        except OSError:
            return
        policy = []
        for word in words:
            iface, _, port = word.partition("=")
            if iface not in self.opts.ifaces or not port.isdigit() or not 0 < int(port) < 65536:
                self.log(f"{path}: {word!r} is not IFACE=PORT: policy left as it was")
                return
            policy.append(mn_core.FlowPolicy(iface, int(port)))
        self.perform(self.core.set_flows(now, tuple(policy)))

    def observe(self, now: float) -> None:
        if len(self._ifindex) < len(self.opts.ifaces):
            self._adopt_new_interfaces()
        self._poll_carrier(now)
        self._poll_flows_file(now)
        sessions = active_session_addresses()
        listening = ListenerState()
        if self._listener is not None:
            self._listener.refresh()  # /proc: joins the kernel has not reported yet, leaves
            listening = self._listener.state()
        if self.faults.has(Fault.MN_STALE_MCAST) and self._last_seen is not None:
            old = self._last_seen[1]
            merged = ListenerState(dict(old.groups))
            merged.groups.update(listening.groups)
            listening = merged
        if self.faults.has(Fault.MN_ALWAYS_REGISTER) or self.faults.has(Fault.MN_LATE_REGISTER):
            sessions |= {a for link in self.core.links.values() for a in [link.address]}
        seen = (frozenset(sessions), listening)
        if self._last_seen is not None and (
            self._last_seen[0] == seen[0] and self._last_seen[1].groups == listening.groups
        ):
            return
        self._last_seen = seen
        self.perform(self.core.observed(now, sessions, listening))

    def _air_reports(self, now: float) -> None:
        """The kernel's MLD Reports on an air interface, held back by nftables: learn the
        listener state from them, and send on only the records of groups that belong to
        the link; the groups served through a tunnel are no longer reported there."""
        from harness.netproto import mld
        from harness.reference import mn_listener

        assert self._air is not None
        names = {index: name for name, index in self._ifindex.items()}
        changed = False
        for outdev, packet in self._air.packets():
            iface = names.get(outdev)
            if packet[:1] and packet[0] >> 4 == 4:
                self._air_report4(outdev, packet)
                continue
            message = mn_listener.report_from_packet(packet)
            if iface is None or message is None or len(packet) < 40:
                continue
            if self._listener is not None:
                changed |= self._listener.feed(iface, message)
            moved = set(self.core.group_home)
            keep = packets.air_records(mld.parse_report(message), moved, self.faults)
            if keep:
                src = str(ipaddress.IPv6Address(packet[8:24]))
                home = self.core.current_address(iface)
                report = packets.air_report(keep, src, home, self.faults)
                self._send(report, MLDV2_ROUTERS, outdev)
        if self._listener is not None:
            changed |= self._listener.refresh()  # as drain() does: /proc settles the rest
        if changed:
            self.observe(now)

    def _air_report4(self, outdev: int, packet: bytes) -> None:
        """An IGMPv3 Report of the kernel's on an air interface (draft §8, as MLD's above):
        the records of the IPv4 groups served through a tunnel are not sent there."""
        from harness.netproto import igmp, sockopts

        message = igmp.message_of(packet)
        if message is None or self._igmp_tx is None:
            return
        moved = set(self.core.group_home)
        keep = packets.air_records(igmp.parse_report(message), moved, self.faults)
        if keep:
            try:
                self._igmp_tx.setsockopt(
                    socket.IPPROTO_IP, socket.IP_MULTICAST_IF, sockopts.ip_mreqn(outdev)
                )
                self._igmp_tx.sendto(packets.igmp_report(keep), (str(igmp.ALL_IGMPV3_ROUTERS), 0))
            except OSError as exc:
                self.log(f"cannot send an IGMPv3 Report on {outdev}: {exc}")

    def _read_ra(self, sock: socket.socket, iface: str) -> None:
        while True:
            try:
                data, _anc, _flags, addr = sock.recvmsg(2048, 256)
            except (BlockingIOError, InterruptedError):
                return
            ra = packets.parse_ra(data, addr[0], iface)
            if ra is None or _running(iface) is False:
                continue  # none, or it came before the interface lost its link
            now = time.monotonic()
            self.observe(now)  # the sessions as they are at the move
            if self.v4 is not None:
                self._perform_v4(self.v4.ipv6_router(now, iface))
            self.perform(self.core.router_advertisement(now, ra))
            if self.faults.has(Fault.MN_BU_ON_LINK):
                self._bu_on_link(ra)

    def _read_ba(self, sock: socket.socket) -> None:
        while True:
            try:
                frame, addr = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            if addr[2] == socket.PACKET_OUTGOING:
                continue
            self._binding_ack(frame)

    def _binding_ack(self, frame: bytes, udp4: bool = False) -> None:
        """A BA (an IPv6 packet: read on the link, or from the UDP payload of a dual-stack
        HA, `udp4`, which also carries RFC 5555's options) to the core."""
        from harness.wire import compact
        from harness.wire.numbers import MHType

        if len(frame) < 48 or frame[6] not in (IPPROTO_ROUTING, IPPROTO_MH):
            return
        try:
            msg = compact.parse_packet(frame)
        except compact.Malformed:
            return
        if msg.mhtype != MHType.BA:
            return
        hoa = msg.rh2_hoa or msg.dst  # no type 2 header when the MN is at home (§6.1.8)
        if packets.ba_ignored(msg, self.faults):
            return
        if (
            self.opts.key is not None
            and not self.faults.has(Fault.MN_ACCEPT_BAD_BA_AUTH)
            and not self._ba_authentic(frame)
        ):
            self.log(f"BA from {msg.src} fails RFC 4285 verification: ignored")
            return
        actions = self.core.binding_ack(
            time.monotonic(),
            ipaddress.IPv6Address(msg.src),
            ipaddress.IPv6Address(hoa),
            msg.seq,
            msg.ba_status,
            msg.lifetime,
            packets.ipv4_ack(msg) if udp4 else None,
            compact.data_plane_address(msg.options),  # draft §9, INT-9
        )
        self.perform(actions)
        if self.faults.has(Fault.MN_RO_COTI) and msg.ba_status < 128:
            self._send_coti(ipaddress.IPv6Address(hoa))
        if self.faults.has(Fault.MN_RO_ON_REFRESH) and msg.ba_status < 128 and msg.lifetime:
            self._send_hoti_on_refresh(ipaddress.IPv6Address(hoa))

    def _ba_authentic(self, frame: bytes) -> bool:
        from scapy.layers.inet6 import IPv6, MIP6OptMsgAuth

        from harness.wire import auth

        pkt = IPv6(frame)
        if not pkt.haslayer(MIP6OptMsgAuth):
            return False  # RFC 4285 §5.1: the HA MUST include it when the BU had it
        assert self.opts.key is not None
        return auth.verify(pkt, self.opts.key)

    # ------------------------------------------------------------------ data plane

    def _from_tun(self) -> None:
        assert self._tun_fd is not None
        while True:
            try:
                inner = os.read(self._tun_fd, 65535)
            except (BlockingIOError, InterruptedError):
                return
            if len(inner) >= 20 and inner[0] >> 4 == 4 and self._hoa4:
                self._ipv4_to_home_agent(inner)
                continue
            if len(inner) >= 40 and inner[0] >> 4 == 6 and self._has4:
                ha4 = self._has4.get(ipaddress.IPv6Address(inner[8:24]))
                if ha4 is not None:  # RFC 5555 §4.1: in UDP to the HA's IPv4 address
                    if not self.faults.has(Fault.MN_NO_UDP_TUNNEL):
                        self._send_udp4(inner, ha4)
                    continue
            outer = packets.reverse_tunnel(inner, self._has, self.faults, self._flows)
            if outer is not None:
                # the route of the outer source: an added interface's care-of address
                # leaves through that interface (its rule, IFACE_TABLE)
                self._send(outer, str(ipaddress.IPv6Address(outer[24:40])), src=outer[8:24])

    def _from_home_agents(self, sock: socket.socket, proto: int) -> None:
        """What a home agent tunnels to the MN (RFC 2473): IPv6 in IPv6, or IPv4 in IPv6 (an
        IPv4 group's data or an IPv4 home address's packets, draft §8, RFC 5555 §4.5.1), from
        the tunnel's end at an HA the MN has a binding with, into the tunnel device."""
        assert self._tun_fd is not None
        home_agents = {ha for ha, _ in self._has.values()}
        version, least = (6, 40) if proto == IPPROTO_IPV6_IN_IPV6 else (4, 20)
        while True:
            try:
                data, addr = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            if len(data) >= 40 and data[0] >> 4 == 6 and data[6] == proto:
                data = data[40:]
            src = ipaddress.IPv6Address(addr[0].split("%", 1)[0])
            if src not in home_agents or len(data) < least or data[0] >> 4 != version:
                continue
            if version == 4 and not packets.ipv4_for_device(data, self._hoa4.values(), self.faults):
                continue
            with contextlib.suppress(OSError):
                os.write(self._tun_fd, data)

    def _send(self, data: bytes, dst: str, ifindex: int = 0, src: bytes | None = None) -> None:
        """Send a whole IPv6 packet; with `src` (16 octets) the kernel routes it by that
        source too (IPV6_PKTINFO: a raw socket's own header is not looked at for routing)."""
        assert self._tx is not None
        try:
            if src is not None:
                info = src + struct.pack("@I", ifindex)
                anc = [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, info)]
                self._tx.sendmsg([data], anc, 0, (dst, 0, 0, ifindex))
                return
            self._tx.sendto(data, (dst, 0, 0, ifindex))
        except OSError as exc:
            self.log(f"cannot send to {dst}: {exc}")

    # ------------------------------------------------------------------ actions

    def perform(self, actions: list[mn_core.Action]) -> None:
        ip: list[str] = []
        after: list[Callable[[], object]] = []
        for a in actions:
            if isinstance(a, mn_core.Log):
                self.log(a.text)
            elif isinstance(a, mn_core.AddAddress):
                ip.append(f"addr replace {a.address}/{a.prefixlen} dev {a.iface} nodad")
                rank = self._rank(a.iface)
                if rank and a.address not in self._iface_rules:
                    rule = f"from {a.address}/128 lookup {IFACE_TABLE + rank}"
                    ip.append(f"rule add {rule} priority {IFACE_RULE_PRIORITY}")
                    self._iface_rules[a.address] = f"rule del {rule}"
            elif isinstance(a, mn_core.RemoveAddress):
                if self.faults.has(Fault.MN_KEEP_OLD_SOURCE):
                    continue
                ip.append(f"addr del {a.address}/64 dev {a.iface}")
                gone = self._iface_rules.pop(a.address, None)
                if gone is not None:
                    ip.append(gone)
            elif isinstance(a, mn_core.SetDefaultRoute):
                # the first interface's route is the default; another's comes after it, and
                # is the route of what its own address sends
                rank = self._rank(a.iface)
                metric = f" metric {1024 + rank}" if rank else ""
                ip.append(f"route replace default via {a.router} dev {a.iface}{metric}")
                if rank:
                    table = IFACE_TABLE + rank
                    ip.append(f"route replace default via {a.router} dev {a.iface} table {table}")
            elif isinstance(a, mn_core.HomeAddressToTunnel):
                ip += [
                    f"addr replace {a.hoa}/128 dev {TUN_NAME} nodad preferred_lft 0",
                    f"rule add from {a.hoa}/128 lookup {ROUTE_TABLE} priority {RULE_PRIORITY}",
                ]
            elif isinstance(a, mn_core.HomeAddressFromTunnel):
                ip += [
                    f"rule del from {a.hoa}/128 lookup {ROUTE_TABLE} priority {RULE_PRIORITY}",
                    f"addr del {a.hoa}/128 dev {TUN_NAME}",
                ]
            elif isinstance(a, mn_core.SendRouterSolicitation):
                after.append(functools.partial(self._solicit, a.iface))
            elif isinstance(a, mn_core.SendBindingUpdate):
                after.append(functools.partial(self._send_bu, a))
            elif isinstance(a, mn_core.LookupHomeAgent):
                after.append(functools.partial(self._send_dns, a))
            elif isinstance(a, mn_core.RequestHomeInfo):
                after.append(functools.partial(self._send_dhcp, a))
            elif isinstance(a, mn_core.TunnelChanged):
                self._has = {hoa: (ha, coa) for hoa, ha, coa in a.routes}
            elif isinstance(a, mn_core.Udp4TunnelChanged):
                self._has4 = dict(a.routes)
            elif isinstance(a, mn_core.Ipv4HomeAddress):
                ip_batch(self._ipv4_home_address(a), self.log, "-4")
            elif isinstance(a, mn_core.FlowRoutes):
                ip += self._flow_routes(a)
            elif isinstance(a, mn_core.MulticastOnTunnel):
                if not self.faults.has(Fault.MN_NO_MIRROR) and self._mirror is not None:
                    after.append(functools.partial(self._mirror.sync, a.state))
            elif isinstance(a, mn_core.AnnounceListening):
                after.append(functools.partial(self._announce, a.iface, a.state))
        if ip:
            ip_batch(ip, self.log)
        for fn in after:
            fn()

    def _rank(self, iface: str) -> int:
        return list(self._ifindex).index(iface) if iface in self._ifindex else 0

    def _flow_routes(self, a: mn_core.FlowRoutes) -> list[str]:
        """New sessions with a flow's port take the home address, so they go into the
        tunnel (draft §7.1 "MUST use the registered home address", INT-20); the tunnel
        sends them from the care-of address the flow is bound to."""
        lines, self._flow_rules = self._flow_rules, []
        self._flows = {(hoa, port): (ha, coa) for hoa, port, ha, coa in a.routes}
        for n, (hoa, port, _ha, _coa) in enumerate(a.routes):
            table = FLOW_TABLE + n
            lines.append(f"route replace default dev {TUN_NAME} src {hoa} table {table}")
            if self.faults.has(Fault.MN_FLOW_FROM_COA):
                continue  # the fault: the flow's sessions keep the care-of address
            rule = f"dport {port} lookup {table} priority {FLOW_RULE_PRIORITY}"
            lines.append(f"rule add {rule}")
            self._flow_rules.append(f"rule del {rule}")
        return lines

    def _send_bu(self, bu: mn_core.SendBindingUpdate) -> None:
        data = packets.binding_update(
            bu, self.opts.key, self.opts.spi, self.faults, self.opts.mn_id
        )
        if bu.coa4 is not None and bu.ha4 is not None:
            self._send_udp4(data, bu.ha4)
            self.log(
                f"BU in UDP to {bu.ha4}:{DSMIP_PORT} ({bu.ha}): hoa {bu.hoa} coa {bu.coa4} "
                f"ipv4 hoa {bu.hoa4} seq {bu.seq} lifetime {bu.lifetime}"
            )
            return
        if self.faults.has(Fault.MN_LATE_REGISTER) and bu.hoa not in active_session_addresses():
            # the fault: a binding nothing needs, registered LATE_REGISTER seconds late
            threading.Timer(LATE_REGISTER, self._send, (data, str(bu.ha))).start()
            return
        # the fault's burst: the copies back to back in one loop, so that even a loaded
        # machine sends them within MAX_UPDATE_RATE's scaled window (INT-16: 10 ms)
        # a binding gone on from an added interface: its BU routed by its care-of address
        # (that interface's rule), not by the first interface's default route
        src = bu.coa.packed if bu.iface != self.opts.ifaces[0] else None
        for _ in range(BU_BURST if self.faults.has(Fault.MN_BU_BURST) else 1):
            self._send(data, str(bu.ha), src=src)
        if self.faults.has(Fault.MN_TUNNEL_BEFORE_BA) and bu.lifetime:
            self._has[bu.hoa] = (bu.ha, bu.coa)
        if self.faults.has(Fault.MN_REPORT_IN_TUNNEL) and bu.lifetime:
            self._tunnel_report(bu)
        groups = len(bu.multicast.groups) if bu.multicast is not None else 0
        self.log(
            f"BU to {bu.ha}: hoa {bu.hoa} coa {bu.coa} seq {bu.seq} lifetime {bu.lifetime}"
            f" groups {groups}"
            + "".join(f" bid {e.bid}/{e.bid_pri} {e.coa}" for e in bu.bids)
            + "".join(f" fid {f.fid} port {f.port} -> bid {f.bids}" for f in bu.flows)
        )

    # ------------------------------------------------------------------ bootstrapping

    def _send_dns(self, q: mn_core.LookupHomeAgent) -> None:
        import dns.message

        if self._dns is None or self.opts.dns_server is None:
            return
        qname = packets.srv_query_name(q.qname, self.faults)
        query = dns.message.make_query(qname, q.qtype)
        query.id = q.query_id
        dst = (self.opts.dns_server, DNS_PORT)
        self._send_query(self._dns, query.to_wire(), dst, f"DNS: {q.qtype} {qname}? ({q.query_id})")

    def _send_dhcp(self, q: mn_core.RequestHomeInfo) -> None:
        if self._dhcp is None:
            return
        data = packets.information_request(q, self._mac[q.iface], self.faults)
        dst = (ALL_DHCP_RELAY_AGENTS_AND_SERVERS, DHCP6_SERVER_PORT, 0, self._ifindex[q.iface])
        what = f"DHCPv6: Information-request on {q.iface} ({q.transaction_id:#x})"
        self._send_query(self._dhcp, data, dst, what)

    def _send_query(
        self, sock: socket.socket, data: bytes, dst: tuple[Any, ...], what: str
    ) -> None:
        if self.faults.has(Fault.MN_NO_BOOTSTRAP):
            return
        try:
            sock.sendto(data, dst)
        except OSError as exc:
            self.log(f"cannot send {what}: {exc}")
            return
        self.log(what)

    def _read_dns(self) -> None:
        assert self._dns is not None
        for query_id, answer in self._answers(self._dns, packets.dns_answer):
            self.perform(self.core.dns_answer(time.monotonic(), query_id, answer))

    def _read_dhcp(self) -> None:
        assert self._dhcp is not None
        for transaction_id, agents in self._answers(self._dhcp, packets.home_info_reply):
            self.perform(self.core.home_info(time.monotonic(), transaction_id, agents))

    def _answers(self, sock: socket.socket, parse: Callable[[bytes], Any]) -> list[Any]:
        """What the servers answered so far on `sock`, parsed (what does not parse is
        dropped)."""
        out = []
        while True:
            try:
                data, _addr = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                break
            parsed = parse(data)
            if parsed is not None and not self.faults.has(Fault.MN_IGNORE_DISCOVERED_HA):
                out.append(parsed)
        return out

    def _bu_on_link(self, ra: mn_core.RouterAdvert) -> None:
        """A fault only: a BU to the HA of the link the MN is on, for its address
        there, while a session of that address is alive (draft §7: none until it moves)."""
        address = self.core.current_address(ra.iface)
        if ra.ha_address is None or address is None or self._bu_on_link_sent:
            return
        if address in active_session_addresses():
            self._bu_on_link_sent = True
            self._send_bu(
                mn_core.SendBindingUpdate(ra.iface, ra.ha_address, address, address, 1, 100, None)
            )

    def _tunnel_report(self, bu: mn_core.SendBindingUpdate) -> None:
        """A fault only: the listener state as an MLDv2 Report tunnelled
        to the HA with the BU, before the binding is in place (RFC 6275 §11.3.4)."""
        if self._listener is not None:
            inner = packets.mld_report(self._listener.state(), str(bu.hoa))
            outer = packets.ipv6_header(len(inner), IPPROTO_IPV6_IN_IPV6, str(bu.coa), str(bu.ha))
            self._send(outer + inner, str(bu.ha))

    def _send_coti(self, hoa: ipaddress.IPv6Address) -> None:
        """A fault only: a Care-of Test Init to the HA (route optimisation is off, draft §6)."""
        route = self._has.get(hoa)
        if route is not None:
            ha, coa = route
            self._send(packets.care_of_test_init(coa, ha), str(ha))

    def _send_hoti_on_refresh(self, hoa: ipaddress.IPv6Address) -> None:
        """A fault only: at the BA of a refresh (not the first), a Home Test Init to each
        correspondent of `hoa`, through the reverse tunnel (draft §6: disabled)."""
        first = hoa not in self._acked
        self._acked.add(hoa)
        if first:
            return
        for peer in session_peers(hoa):
            outer = packets.reverse_tunnel(packets.home_test_init(hoa, peer), self._has)
            if outer is not None:
                self._send(outer, str(ipaddress.IPv6Address(outer[24:40])))

    # ------------------------------------------------------------------ DHCPv4 (draft §8)

    def _open_v4(self, iface: str) -> None:
        raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
        raw.bind((iface, 0))
        raw.setblocking(False)
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sink.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sink.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
        sink.bind(("0.0.0.0", DHCP4_CLIENT_PORT))
        sink.setblocking(False)
        for sock in (raw, sink):
            self._v4_socks[sock.fileno()] = (sock, iface)

    def _read_v4(self, sock: socket.socket, iface: str) -> None:
        assert self.v4 is not None
        while True:
            try:
                data, addr = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            if sock.family != socket.AF_PACKET or addr[2] == socket.PACKET_OUTGOING:
                continue  # the UDP sink only swallows
            reply = mn_dhcp4.parse_reply(data, self._mac[iface])
            if reply is not None:
                self._perform_v4(self.v4.reply(time.monotonic(), iface, reply))

    def _perform_v4(self, actions: list[mn_dhcp4.Action]) -> None:
        for a in actions:
            if isinstance(a, mn_core.Log):
                self.log(a.text)
            elif isinstance(a, mn_dhcp4.AddAddress4):
                lines = [f"addr replace {a.address}/{a.prefixlen} dev {a.iface}"]
                if a.router is not None:
                    lines.append(f"route replace default via {a.router} dev {a.iface}")
                ip_batch(lines, self.log, "-4")
            elif isinstance(a, mn_dhcp4.RemoveAddress4):
                ip_batch([f"addr del {a.address}/{a.prefixlen} dev {a.iface}"], self.log, "-4")
            elif isinstance(a, mn_dhcp4.Ipv4Link):
                has = mn_dhcp4.ha_ipv4_addresses(a.home)
                now = time.monotonic()
                self.observe(now)  # the sessions as they are at the move
                self.perform(self.core.ipv4_link(now, a.iface, a.address, has))
            elif isinstance(a, mn_dhcp4.SendDhcp4):
                sock = next((s for s, i in self._v4_socks.values() if i == a.iface), None)
                if sock is None:
                    continue
                kinds = {1: "DISCOVER", 3: "REQUEST", 8: "INFORM"}
                try:
                    sock.send(mn_dhcp4.build_frame(a, self._mac[a.iface], self.faults))
                except OSError as exc:
                    self.log(f"cannot send DHCP{kinds[a.kind]} on {a.iface}: {exc}")
                    continue
                self.log(f"DHCPv4: {kinds[a.kind]} on {a.iface} ({a.xid:#x})")

    def _send_udp4(self, data: bytes, ha4: ipaddress.IPv4Address) -> None:
        if self._udp4 is None:
            return
        try:
            self._udp4.sendto(data, (str(ha4), DSMIP_PORT))
        except OSError as exc:
            self.log(f"cannot send in UDP to {ha4}:{DSMIP_PORT}: {exc}")

    def _read_udp4(self) -> None:
        """From a dual-stack HA's port 4191 (RFC 5555 §4.2, §4.5.1): a BA, or an IPv6
        packet tunnelled to a home address bound to the IPv4 care-of address."""
        assert self._udp4 is not None and self._tun_fd is not None
        while True:
            try:
                data, (src, port) = self._udp4.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            if port != DSMIP_PORT or not data:
                continue
            if data[0] >> 4 == 4 and len(data) >= 20:  # §4.5.1: to an IPv4 home address
                from_ha = ipaddress.IPv4Address(src) in self._has4.values()
                if from_ha and packets.ipv4_for_device(data, self._hoa4.values(), self.faults):
                    with contextlib.suppress(OSError):
                        os.write(self._tun_fd, data)
                continue
            if len(data) < 40 or data[0] >> 4 != 6:
                continue
            if data[6] in (IPPROTO_ROUTING, IPPROTO_MH):
                self._binding_ack(data, udp4=True)
            elif ipaddress.IPv4Address(src) in self._has4.values():
                with contextlib.suppress(OSError):
                    os.write(self._tun_fd, data)

    def _ipv4_to_home_agent(self, inner: bytes) -> None:
        """An IPv4 packet from an IPv4 home address: in UDP to the HA of its binding, when
        that is one to an IPv4 care-of address (RFC 5555 §4.1: IPv4, UDP, IPv4)."""
        src = ipaddress.IPv4Address(inner[12:16])
        hoa = next((h for h, a in self._hoa4.items() if a == src), None)
        ha4 = self._has4.get(hoa) if hoa is not None else None
        if ha4 is not None and not self.faults.has(Fault.MN_IPV4_HOA_NOT_TUNNELLED):
            self._send_udp4(inner, ha4)

    def _ipv4_home_address(self, a: mn_core.Ipv4HomeAddress) -> list[str]:
        """The IPv4 home address on the tunnel device (draft §8: the MN uses it), or
        removed when the binding ends."""
        old = self._hoa4.pop(a.hoa, None)
        lines = []
        if old is not None:
            lines += [
                f"rule del from {old}/32 lookup {ROUTE_TABLE} priority {RULE_PRIORITY}",
                f"addr del {old}/32 dev {TUN_NAME}",
            ]
        if a.address is not None:
            # what the applications send from it goes into the device (RFC 5555 §4.1)
            self._hoa4[a.hoa] = a.address
            sysctl(f"net/ipv4/conf/{TUN_NAME}/rp_filter", "0")  # its packets come from afar
            lines += [
                f"addr replace {a.address}/32 dev {TUN_NAME}",
                f"route replace default dev {TUN_NAME} table {ROUTE_TABLE}",
                f"rule add from {a.address}/32 lookup {ROUTE_TABLE} priority {RULE_PRIORITY}",
            ]
        return lines

    def _solicit(self, iface: str) -> None:
        sock = self._ra_socks.get(iface)
        if sock is None:
            return
        rs = bytes([ND_RS, 0, 0, 0, 0, 0, 0, 0])  # the kernel fills the checksum
        with contextlib.suppress(OSError):
            sock.sendto(rs, (ALL_ROUTERS, 0, 0, self._ifindex[iface]))

    def _announce(self, iface: str, state: ListenerState) -> None:
        from harness.netproto import icmp6

        ll, _ = icmp6.link_local_address(self._ifindex[iface])
        if ll is None or not state.groups:
            return
        self._send(packets.mld_report(state, ll), MLDV2_ROUTERS, self._ifindex[iface])
        self.log(f"reported {len(state.groups)} group(s) on {iface}")


def _running(iface: str) -> bool | None:
    """IFF_RUNNING of `iface` (its carrier), or None when it is not there."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH14x", iface.encode()[:15], 0)
        flags = struct.unpack_from("16sH", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, req))[1]
        return bool(flags & IFF_RUNNING)
    return None


def _exists(iface: str) -> bool:
    try:
        socket.if_nametoindex(iface)
    except OSError:
        return False
    return True


def main(opts: Options) -> int:
    daemon = MobileNodeDaemon(opts)
    try:
        return daemon.run()
    except PermissionError as exc:
        print(f"dmmconf mn: {exc} (needs CAP_NET_ADMIN and CAP_NET_RAW)", file=sys.stderr)
        return 1


def faults_from_env() -> Faults:
    """DMMCONF_MN_MUTANT (how a profile switches faults on); an unknown name ends the run
    with status 2."""
    try:
        return Faults.from_env(Role.MN)
    except UnknownFault as exc:
        print(f"dmmconf mn: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
