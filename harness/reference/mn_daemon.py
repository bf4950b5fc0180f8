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
  Acknowledgements, which carry a type 2 routing header the kernel refuses (LAB-FACTS),
  read from an AF_PACKET socket; an nftables rule keeps the kernel from answering them
  with ICMP Parameter Problems.
* The tunnel: one TUN device holds the home addresses (deprecated, so new communication
  picks the link's address, draft §3) and a policy rule per home address routes what the
  applications send from it into the device; the daemon encapsulates that to the home
  agent (reverse tunnelling, OPEN-2) and writes what the home agents tunnel to it into the
  device, which joins the bindings' groups so that applications keep receiving
  (LAB-FACTS: mirror membership).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import ipaddress
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from harness.reference import mn_core, nflog
from harness.reference.mn_core import MNConfig, MobileNodeCore
from harness.reference.multicast import ListenerState, Mode

IPPROTO_IPV6_IN_IPV6, IPPROTO_ROUTING, IPPROTO_MH = 41, 43, 135
SO_MARK = 36
ETH_P_IPV6 = 0x86DD
TUNSETIFF, IFF_TUN, IFF_NO_PI = 0x400454CA, 0x0001, 0x1000
TUN_NAME = "dmmmn0"
ROUTE_TABLE = 4242  # what the home addresses send goes into the tunnel device
RULE_PRIORITY = 1000
NFT_TABLE = "dmmconf_mn"
NFLOG_GROUP = 4242  # the kernel's MLD Reports on the air interfaces, held back for us
MARK = 0x444D  # what this daemon sends; the nftables rules let it pass
POLL_INTERVAL = 0.05  # how often sessions and listener state are looked at (seconds)
ND_RS, ND_RA = 133, 134
ALL_ROUTERS = "ff02::2"
MLDV2_ROUTERS = "ff02::16"
READY_LINE = "dmmconf mn: ready"

# One-clause mutants for the suite's own tests (tests/test_mn_mutants.py).
MUTANTS: dict[str, str] = {
    "no-mcast-option": "leaves the Multicast State option out of its BUs (draft §3, §4.1)",
    "no-hao": "sends BUs without the Home Address option (RFC 6275 §11.7.1)",
    "no-ack-flag": "clears the A flag in its BUs (RFC 6275 §11.7.1)",
    "bu-to-current-ha": "registers with the HA of the new link instead of the previous one "
    "(draft §3)",
    "always-register": "registers the previous address even without a session (draft §7)",
    "no-refresh": "never refreshes a binding (draft §7)",
    "no-mirror": "does not move multicast state to the tunnel device (draft §3)",
    "keep-old-source": "leaves the previous address preferred on the air interface, so new "
    "communication keeps using it (draft §3)",
    "stale-mcast": "keeps announcing a group the application left (INT-7)",
    "no-reverse-tunnel": "drops what the applications send from a home address (RFC 6275 "
    "§11.3.1, draft §3)",
    "no-auth": "sends its BUs without the MN-HA authentication option (RFC 4285 §5.1)",
    "ro-coti": "starts return routability with a Care-of Test Init (draft §6: disabled)",
    "report-on-air": "lets the kernel keep reporting, on the new link, the groups it now "
    "receives through the tunnel (draft §3 last paragraph)",
    "ignore-135": "ignores a BA with status 135 instead of taking the HA's number "
    "(RFC 6275 §11.7.3)",
    "strict-ba-options": "refuses a BA carrying an option it does not know (RFC 6275 §6.1.8)",
    "tunnel-before-ba": "uses the tunnel as soon as it sends the BU (draft §3)",
    "reserved-bits": "sets a Reserved bit of its BUs (RFC 6275 §6.1.7)",
    "report-with-hao": "puts a Home Address option in the MLD Reports it sends on the "
    "visited link (RFC 6275 §11.3.4)",
    "bu-on-link": "sends a BU to the HA of the link it is on, for its address there (draft §7)",
    "report-in-tunnel": "tunnels its MLD Reports to the HA before any Query came through the "
    "tunnel (RFC 6275 §11.3.4)",
}


@dataclass(frozen=True)
class Options:
    ifaces: tuple[str, ...]
    spi: int | None = None
    key: bytes | None = None
    mn_id: str | None = None
    bu_lifetime: int = 100  # 4 s units
    time_scale: float = 1.0
    deregister: bool = True
    mutant: str | None = None


def _ip_batch(lines: list[str], log: Callable[[str], None]) -> None:
    """Run `ip` commands in one process (`ip -batch`): a handover changes addresses, a route
    and a rule at once, and one fork is a few milliseconds."""
    if not lines:
        return
    res = subprocess.run(
        ["ip", "-6", "-force", "-batch", "-"],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=10,
    )
    for err in res.stderr.splitlines():
        if err.strip() and "File exists" not in err and "Cannot assign" not in err:
            log(f"ip: {err.strip()}")


def _sysctl(path: str, value: str) -> None:
    with contextlib.suppress(OSError), open(f"/proc/sys/{path}", "w") as f:
        f.write(value)


# ---------------------------------------------------------------- kernel state readers

_TCP_GONE = {"06", "07", "0A"}  # TIME_WAIT, CLOSE, LISTEN: not a session


def _proc_sockets(path: str) -> Iterable[tuple[ipaddress.IPv6Address, str, bool]]:
    """(local address, state, has a peer) of each socket in /proc/net/{tcp6,udp6} that a
    process still holds (an orphan, inode 0, closing on its own, is no session)."""
    try:
        with open(path) as f:
            lines = f.readlines()[1:]
    except OSError:
        return
    for line in lines:
        parts = line.split()
        if len(parts) < 4:
            continue
        local, remote, state = parts[1], parts[2], parts[3]
        if len(parts) > 9 and parts[9] == "0":
            continue
        raw = bytes.fromhex(local.split(":")[0])
        # the kernel prints the address as four host-order 32-bit words
        addr = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
        has_peer = remote.split(":")[1] != "0000"
        yield ipaddress.IPv6Address(addr), state, has_peer


def active_session_addresses() -> set[ipaddress.IPv6Address]:
    """Local addresses of open TCP connections and connected UDP sockets (OPEN-15)."""
    out = set()
    for addr, state, _peer in _proc_sockets("/proc/net/tcp6"):
        if state not in _TCP_GONE:
            out.add(addr)
    for addr, _state, peer in _proc_sockets("/proc/net/udp6"):
        if peer:
            out.add(addr)
    return {a for a in out if not a.is_link_local and not a.is_unspecified}


# ---------------------------------------------------------------- packets


def binding_update(
    bu: mn_core.SendBindingUpdate, opts: Options, mutant: str | None = None
) -> bytes:
    from scapy.layers.inet6 import HAO, IPv6, IPv6ExtHdrDestOpt, MIP6OptAltCoA, MIP6OptMsgAuth

    from harness.reference.mn_listener import option_records
    from harness.wire import auth
    from harness.wire.mobility import BindingUpdate, multicast_state_options

    options: list[Any] = [MIP6OptAltCoA(acoa=str(bu.coa))]
    if bu.multicast is not None and mutant != "no-mcast-option":
        options += multicast_state_options(option_records(bu.multicast))
    signed = opts.key is not None and opts.spi is not None and mutant != "no-auth"
    if signed:
        options.append(MIP6OptMsgAuth(subtype=1, mspi=opts.spi, authdata=b"\x00" * 12))
    flags = 0x100 | (0 if mutant == "no-ack-flag" else 0x200)  # H, A (RFC 6275 §11.7.1)
    if mutant == "reserved-bits":
        flags |= 0x01
    mh = BindingUpdate(seq=bu.seq, mhtime=bu.lifetime, flags=flags, options=options)
    pkt: Any
    if mutant == "no-hao":
        pkt = IPv6(src=str(bu.coa), dst=str(bu.ha)) / mh
    else:
        pkt = (
            IPv6(src=str(bu.coa), dst=str(bu.ha))
            / IPv6ExtHdrDestOpt(options=[HAO(hoa=str(bu.hoa))])
            / mh
        )
    if signed:
        assert opts.key is not None
        pkt = auth.sign(pkt, opts.key)
    return bytes(pkt)


def parse_ra(data: bytes, src: str, iface: str) -> mn_core.RouterAdvert | None:
    """The parts of an RA the core uses (RFC 4861 §4.2, RFC 6275 §7.1, §7.2, §7.4)."""
    from scapy.layers.inet6 import ICMPv6ND_RA, ICMPv6NDOptHAInfo, ICMPv6NDOptPrefixInfo

    try:
        ra = ICMPv6ND_RA(data)
    except Exception:
        return None
    if ra.type != ND_RA:
        return None
    prefix = ha_address = None
    opt = ra.getlayer(ICMPv6NDOptPrefixInfo)
    k = 1
    while opt is not None:
        if opt.prefixlen == 64 and opt.A:
            prefix = ipaddress.IPv6Network(f"{opt.prefix}/64", strict=False)
            if opt.R and ra.H:
                ha_address = ipaddress.IPv6Address(opt.prefix)
        k += 1
        opt = ra.getlayer(ICMPv6NDOptPrefixInfo, k)
    if prefix is None:
        return None
    ha_lifetime: float | None = None
    if ha_address is not None:
        info = ra.getlayer(ICMPv6NDOptHAInfo)
        ha_lifetime = float(info.lifetime if info is not None else ra.routerlifetime)
        if ha_address == prefix.network_address:
            ha_address = None  # an R flag without a full address: not usable
    return mn_core.RouterAdvert(
        iface=iface,
        router=ipaddress.IPv6Address(src.split("%", 1)[0]),
        prefix=prefix,
        ha_address=ha_address,
        ha_lifetime=ha_lifetime,
    )


def mld_report(state: ListenerState, src: str) -> bytes:
    """An MLDv2 Report of Current-State records (RFC 3810 §5.2) from `src`."""
    from harness.netproto.mld import Record

    records = []
    for group in sorted(state.groups, key=lambda a: a.packed):
        g = state.groups[group]
        sources = tuple(sorted(g.sources, key=lambda a: a.packed))
        records.append(Record(1 if g.mode is Mode.INCLUDE else 2, group, sources))  # type: ignore[arg-type]
    return mld_report_records(records, src)


def mld_report_records(records: Iterable[Any], src: str) -> bytes:
    """An MLDv2 Report (RFC 3810 §5.2) of the given records (rtype, group, sources)."""
    from scapy.layers.inet6 import (
        ICMPv6MLDMultAddrRec,
        ICMPv6MLReport2,
        IPv6,
        IPv6ExtHdrHopByHop,
        RouterAlert,
    )

    recs = [
        ICMPv6MLDMultAddrRec(rtype=r.rtype, dst=str(r.group), sources=[str(s) for s in r.sources])
        for r in records
    ]
    pkt = (
        IPv6(src=src, dst=MLDV2_ROUTERS, hlim=1)
        / IPv6ExtHdrHopByHop(options=[RouterAlert(value=0)])
        / ICMPv6MLReport2(records=recs)
    )
    return bytes(pkt)


def _ipv6_header(payload_len: int, nh: int, src: str, dst: str, hlim: int = 64) -> bytes:
    return struct.pack(
        "!IHBB16s16s",
        6 << 28,
        payload_len,
        nh,
        hlim,
        ipaddress.IPv6Address(src).packed,
        ipaddress.IPv6Address(dst).packed,
    )


# ---------------------------------------------------------------- the daemon


class MobileNodeDaemon:
    def __init__(self, opts: Options, log: Callable[[str], None] | None = None) -> None:
        self.opts = opts
        self.log = log or (lambda line: print(f"dmmconf mn: {line}", flush=True))
        self.mutant = opts.mutant
        self.core = MobileNodeCore(
            MNConfig(
                bu_lifetime=opts.bu_lifetime,
                time_scale=opts.time_scale,
                deregister=opts.deregister,
            )
        )
        self._stop = False
        self._ra: dict[int, str] = {}  # fd -> iface
        self._ra_socks: dict[str, socket.socket] = {}
        self._ba: dict[int, tuple[socket.socket, str]] = {}
        self._tx: socket.socket | None = None
        self._tunnel_rx: socket.socket | None = None
        self._tun_fd: int | None = None
        self._tun_index = 0
        self._ifindex: dict[str, int] = {}
        self._routes: dict[ipaddress.IPv6Address, tuple[ipaddress.IPv6Address, ...]] = {}
        self._has: dict[ipaddress.IPv6Address, tuple[ipaddress.IPv6Address, ipaddress.IPv6Address]]
        self._has = {}
        self._nl: Any = None
        self._air: nflog.NflogGroup | None = None
        self._bu_on_link_sent = False
        self._mirror: Any = None
        self._listener: Any = None
        self._last_seen: tuple[frozenset[Any], Any] | None = None

    # ------------------------------------------------------------------ set-up

    def open(self) -> list[mn_core.Action]:
        from harness.netproto import icmp6
        from harness.reference import mn_listener

        actions: list[mn_core.Action] = []
        for iface in self.opts.ifaces:
            # this daemon forms the addresses (see the module docstring)
            for key, value in (("accept_ra", "0"), ("autoconf", "0"), ("accept_dad", "0")):
                _sysctl(f"net/ipv6/conf/{iface}/{key}", value)
            sock, ifindex = icmp6.open_icmpv6_socket(iface, [ND_RA])
            sock.setblocking(False)
            self._ifindex[iface] = ifindex
            self._ra[sock.fileno()] = iface
            self._ra_socks[iface] = sock
            mac = icmp6.hardware_address(sock, iface)
            if mac is None:
                raise OSError(f"{iface} has no hardware address")
            self._flush_global(iface)
            ba = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IPV6))
            ba.bind((iface, 0))
            ba.setblocking(False)
            self._ba[ba.fileno()] = (ba, iface)
            actions += self.core.add_interface(iface, mn_core.eui64_iid(mac))
        self._tx = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
        self._tx.setsockopt(socket.SOL_SOCKET, SO_MARK, MARK)
        self._air = nflog.NflogGroup(NFLOG_GROUP)
        self._tunnel_rx = socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_IPV6_IN_IPV6)
        self._tunnel_rx.setblocking(False)
        self._open_tun()
        self._nft(add=True)
        self._nl = _LinkEvents()
        self._listener = mn_listener.KernelListenerWatch(list(self.opts.ifaces))
        self._mirror = mn_listener.TunnelMirror(self._tun_index)
        return actions

    def _flush_global(self, iface: str) -> None:
        _ip_batch([f"addr flush dev {iface} scope global"], self.log)

    def _open_tun(self) -> None:
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", TUN_NAME.encode(), IFF_TUN | IFF_NO_PI))
        self._tun_fd = fd
        _ip_batch(
            [
                f"link set {TUN_NAME} up multicast on",
                f"route replace default dev {TUN_NAME} table {ROUTE_TABLE}",
            ],
            self.log,
        )
        _sysctl(f"net/ipv6/conf/{TUN_NAME}/accept_dad", "0")
        self._tun_index = socket.if_nametoindex(TUN_NAME)

    def _nft(self, add: bool) -> None:
        nft = shutil.which("nft", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"]))
        if nft is None:
            if add:
                self.log("no nft: BAs draw ICMP errors, and moved groups stay reported on air")
            self._drop_air()
            return
        script = f"table ip6 {NFT_TABLE} {{}}\ndelete table ip6 {NFT_TABLE}\n"
        if add:
            ifaces = ", ".join(f'"{i}"' for i in self.opts.ifaces)
            # BAs are read from AF_PACKET, before the input hook (RFC 6275 §6.4); the
            # kernel's MLD Reports on the air interfaces go to this daemon (NFLOG), which
            # sends on what still belongs to the link (draft §3 last paragraph)
            script += (
                f"table ip6 {NFT_TABLE} {{\n"
                "  chain in { type filter hook prerouting priority -300; policy accept;\n"
                "    rt type 2 drop; }\n"
                "  chain out { type filter hook output priority 0; policy accept;\n"
                f"    oifname {{ {ifaces} }} icmpv6 type mld2-listener-report "
                f"meta mark != {MARK:#x} log group {NFLOG_GROUP} drop; }}\n"
                "}\n"
            )
        res = subprocess.run(
            [nft, "-f", "-"], input=script, text=True, capture_output=True, timeout=10
        )
        if add and res.returncode != 0:
            self.log(f"nft refused the rules: {res.stderr.strip()}")
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
        for sock, _ in self._ba.values():
            sock.close()
        for s in (self._tx, self._tunnel_rx):
            if s is not None:
                s.close()
        if self._nl is not None:
            self._nl.close()
        if self._air is not None:
            self._air.close()
        lines = [f"rule del priority {RULE_PRIORITY}" for _ in self._has]
        _ip_batch(lines, self.log)
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
            + (f", MUTANT {self.mutant}" if self.mutant else "")
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
                wake = next_poll if deadline is None else min(deadline, next_poll)
                readers: list[Any] = [
                    wake_r,
                    *self._ra_socks.values(),
                    *(s for s, _ in self._ba.values()),
                    self._tunnel_rx,
                    self._tun_fd,
                    self._nl,
                    self._listener,
                    *([self._air] if self._air is not None else []),
                ]
                ready, _, _ = select.select(readers, [], [], max(0.0, wake - now))
                for r in ready:
                    self._dispatch(r, wake_r)
                self.perform(self.core.tick(time.monotonic()))
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
                if iface in self._ifindex:
                    self.perform(self.core.carrier(now, iface, up))
        elif r is self._air:
            self._air_reports(now)
        elif r is self._listener:
            if self._listener.drain():
                self.observe(now)
        elif r is self._tunnel_rx:
            self._from_home_agents()
        elif r == self._tun_fd:
            self._from_tun()
        elif isinstance(r, socket.socket) and r.fileno() in self._ra:
            self._read_ra(r, self._ra[r.fileno()])
        elif isinstance(r, socket.socket) and r.fileno() in self._ba:
            self._read_ba(r)

    def observe(self, now: float) -> None:
        sessions = active_session_addresses()
        listening = ListenerState()
        if self._listener is not None:
            self._listener.refresh()  # /proc: joins the kernel has not reported yet, leaves
            listening = self._listener.state()
        if self.mutant == "stale-mcast" and self._last_seen is not None:
            old = self._last_seen[1]
            merged = ListenerState(dict(old.groups))
            merged.groups.update(listening.groups)
            listening = merged
        if self.mutant == "always-register":
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
            message = mn_listener.report_from_packet(packet)
            if iface is None or message is None or len(packet) < 40:
                continue
            if self._listener is not None:
                changed |= self._listener.feed(iface, message)
            moved = set() if self.mutant == "report-on-air" else set(self.core.group_home)
            keep = [r for r in mld.parse_report(message) if r.group not in moved]
            if keep:
                src = str(ipaddress.IPv6Address(packet[8:24]))
                report = mld_report_records(keep, src)
                home = self.core.current_address(iface)
                if self.mutant == "report-with-hao" and home is not None:
                    report = _with_home_address(report, home)
                self._send(report, MLDV2_ROUTERS, outdev)
        if self._listener is not None:
            changed |= self._listener.refresh()  # as drain() does: /proc settles the rest
        if changed:
            self.observe(now)

    def _read_ra(self, sock: socket.socket, iface: str) -> None:
        while True:
            try:
                data, _anc, _flags, addr = sock.recvmsg(2048, 256)
            except (BlockingIOError, InterruptedError):
                return
            ra = parse_ra(data, addr[0], iface)
            if ra is None:
                continue
            now = time.monotonic()
            self.observe(now)  # the sessions as they are at the move
            if self.mutant == "bu-to-current-ha" and ra.ha_address is not None:
                for entry in self.core.ha_cache.values():
                    entry.address = ra.ha_address
            self.perform(self.core.router_advertisement(now, ra))
            if self.mutant == "bu-on-link":
                self._bu_on_link(ra)

    def _read_ba(self, sock: socket.socket) -> None:
        from harness.wire import compact
        from harness.wire.numbers import MHType

        while True:
            try:
                frame, addr = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            if addr[2] == socket.PACKET_OUTGOING or len(frame) < 48:
                continue
            if frame[6] not in (IPPROTO_ROUTING, IPPROTO_MH):
                continue
            try:
                msg = compact.parse_packet(frame)
            except compact.Malformed:
                continue
            if msg.mhtype != MHType.BA:
                continue
            hoa = msg.rh2_hoa or msg.dst  # no type 2 header when the MN is at home (§6.1.8)
            if self.mutant == "ignore-135" and msg.ba_status == 135:
                continue
            if self.mutant == "strict-ba-options" and _unknown_options(msg):
                continue
            if self.opts.key is not None and not self._ba_authentic(frame):
                self.log(f"BA from {msg.src} fails RFC 4285 verification: ignored")
                continue
            actions = self.core.binding_ack(
                time.monotonic(),
                ipaddress.IPv6Address(msg.src),
                ipaddress.IPv6Address(hoa),
                msg.seq,
                msg.ba_status,
                msg.lifetime,
            )
            self.perform(actions)
            if self.mutant == "no-refresh":
                for b in self.core.bindings.values():
                    b.refresh_at = None
            if self.mutant == "ro-coti" and msg.ba_status < 128:
                self._send_coti(ipaddress.IPv6Address(hoa))

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
            if len(inner) < 40 or inner[0] >> 4 != 6:
                continue
            src = ipaddress.IPv6Address(inner[8:24])
            route = self._has.get(src)
            if route is None:
                continue  # not (yet) registered: the BA completes the registration (§3)
            if inner[6] == 0 and _is_mld_report(inner):
                continue  # RFC 6275 §11.3.4: none tunnelled (the HA ignores them, INT-7)
            if self.mutant == "no-reverse-tunnel":
                continue
            ha, coa = route
            outer = _ipv6_header(len(inner), IPPROTO_IPV6_IN_IPV6, str(coa), str(ha))
            self._send(outer + inner, str(ha))

    def _from_home_agents(self) -> None:
        assert self._tunnel_rx is not None and self._tun_fd is not None
        home_agents = {ha for ha, _ in self._has.values()}
        while True:
            try:
                data, addr = self._tunnel_rx.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            if len(data) >= 40 and data[0] >> 4 == 6 and data[6] == IPPROTO_IPV6_IN_IPV6:
                data = data[40:]
            src = ipaddress.IPv6Address(addr[0].split("%", 1)[0])
            if src not in home_agents or len(data) < 40 or data[0] >> 4 != 6:
                continue
            with contextlib.suppress(OSError):
                os.write(self._tun_fd, data)

    def _send(self, data: bytes, dst: str, ifindex: int = 0) -> None:
        assert self._tx is not None
        try:
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
            elif isinstance(a, mn_core.RemoveAddress):
                if self.mutant == "keep-old-source":
                    continue
                ip.append(f"addr del {a.address}/64 dev {a.iface}")
            elif isinstance(a, mn_core.SetDefaultRoute):
                ip.append(f"route replace default via {a.router} dev {a.iface}")
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
            elif isinstance(a, mn_core.TunnelChanged):
                self._has = {hoa: (ha, coa) for hoa, ha, coa in a.routes}
            elif isinstance(a, mn_core.MulticastOnTunnel):
                if self.mutant != "no-mirror" and self._mirror is not None:
                    after.append(functools.partial(self._mirror.sync, a.state))
            elif isinstance(a, mn_core.AnnounceListening):
                after.append(functools.partial(self._announce, a.iface, a.state))
        if ip:
            _ip_batch(ip, self.log)
        for fn in after:
            fn()

    def _send_bu(self, bu: mn_core.SendBindingUpdate) -> None:
        data = binding_update(bu, self.opts, self.mutant)
        self._send(data, str(bu.ha))
        if self.mutant == "tunnel-before-ba" and bu.lifetime:
            self._has[bu.hoa] = (bu.ha, bu.coa)
        if self.mutant == "report-in-tunnel" and bu.lifetime:
            self._tunnel_report(bu)
        groups = len(bu.multicast.groups) if bu.multicast is not None else 0
        self.log(
            f"BU to {bu.ha}: hoa {bu.hoa} coa {bu.coa} seq {bu.seq} lifetime {bu.lifetime}"
            f" groups {groups}"
        )

    def _bu_on_link(self, ra: mn_core.RouterAdvert) -> None:
        """Mutant bu-on-link only: a BU to the HA of the link the MN is on, for its address
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
        """Mutant report-in-tunnel only: the listener state as an MLDv2 Report tunnelled
        to the HA with the BU, before the binding is in place (RFC 6275 §11.3.4)."""
        if self._listener is not None:
            inner = mld_report(self._listener.state(), str(bu.hoa))
            outer = _ipv6_header(len(inner), IPPROTO_IPV6_IN_IPV6, str(bu.coa), str(bu.ha))
            self._send(outer + inner, str(bu.ha))

    def _send_coti(self, hoa: ipaddress.IPv6Address) -> None:
        """Mutant ro-coti only: a Care-of Test Init (RFC 6275 §6.1.4) from the care-of
        address, as route optimisation would start it (its peer here: the HA)."""
        from scapy.layers.inet6 import IPv6, MIP6MH_CoTI

        route = self._has.get(hoa)
        if route is not None:
            ha, coa = route
            pkt = IPv6(src=str(coa), dst=str(ha)) / MIP6MH_CoTI(cookie=b"\x01" * 8)
            self._send(bytes(pkt), str(ha))

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
        self._send(mld_report(state, ll), MLDV2_ROUTERS, self._ifindex[iface])
        self.log(f"reported {len(state.groups)} group(s) on {iface}")


def _with_home_address(report: bytes, hoa: ipaddress.IPv6Address) -> bytes:
    """Mutant report-with-hao only: the report with a Home Address option (RFC 6275 §11.3.4
    forbids it on the visited link)."""
    from scapy.layers.inet6 import HAO, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop

    pkt = IPv6(report)
    hbh = pkt[IPv6ExtHdrHopByHop]
    rest = hbh.payload
    hbh.remove_payload()
    hbh.nh = 60  # a Destination Options header follows now
    out = (
        IPv6(src=pkt.src, dst=pkt.dst, hlim=1)
        / hbh
        / IPv6ExtHdrDestOpt(options=[HAO(hoa=str(hoa))])
        / rest
    )
    return bytes(IPv6(bytes(out)))


def _unknown_options(msg: Any) -> bool:
    """Mutant strict-ba-options only: does the BA carry an option type outside RFC 6275's
    and RFC 4285's (and the Multicast State option's)?"""
    from harness.config import WireConfig
    from harness.wire import compact

    known = {0, 1, 2, 3, 4, 5, 6, 9, 10, WireConfig.from_env().multicast_state_type}
    options = compact.parse_options(msg.body, compact.FIXED_PART[compact.MHType.BA])
    return any(o.otype not in known for o in options)


def _is_mld_report(packet: bytes) -> bool:
    """An MLDv2 Report behind a hop-by-hop header (how the kernel sends them)."""
    pos = 40
    hlen = 8 * (packet[pos + 1] + 1) if len(packet) > pos + 1 else 0
    return packet[pos] == 58 and len(packet) > pos + hlen and packet[pos + hlen] in (131, 143)


class _LinkEvents:
    """Carrier changes from rtnetlink (RTMGRP_LINK), as (iface, carrier up) pairs."""

    def __init__(self) -> None:
        from pyroute2 import IPRoute

        self._ipr = IPRoute()
        self._ipr.bind()
        self._carrier: dict[str, bool] = {}

    def fileno(self) -> int:
        return int(self._ipr.fileno())

    def drain(self) -> list[tuple[str, bool]]:
        out = []
        for msg in self._ipr.get():
            if msg.get("event") != "RTM_NEWLINK":
                continue
            name = msg.get_attr("IFLA_IFNAME")
            up = msg.get_attr("IFLA_CARRIER") == 1 and msg.get_attr("IFLA_OPERSTATE") == "UP"
            if name is not None and self._carrier.get(name) != up:
                self._carrier[name] = up
                out.append((name, up))
        return out

    def close(self) -> None:
        self._ipr.close()


def main(opts: Options) -> int:
    if opts.mutant is not None and opts.mutant not in MUTANTS:
        print(
            f"dmmconf mn: unknown mutant {opts.mutant!r} (known: {', '.join(MUTANTS)})",
            file=sys.stderr,
        )
        return 2
    daemon = MobileNodeDaemon(opts)
    try:
        return daemon.run()
    except PermissionError as exc:
        print(f"dmmconf mn: {exc} (needs CAP_NET_ADMIN and CAP_NET_RAW)", file=sys.stderr)
        return 1


def mutant_from_env() -> str | None:
    return os.environ.get("DMMCONF_MN_MUTANT") or None
