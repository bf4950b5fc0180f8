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
* One poll loop; its timeout is the core's next deadline (binding expiry). SIGTERM and
  SIGINT end it cleanly.

* The data plane in userspace (class Tunnels): a TUN device per binding with the home
  address's /128 routed into it, IPv6-in-IPv6 to the care-of address, and the reverse
  tunnel from a raw socket of protocol 41.
* Multicast (class MulticastForwarder): the groups of the bindings' multicast state joined
  on the uplink, and data admitted by a binding's state tunnelled to its CoA.

Not done yet (issue 4): the MLD querier towards the tunnel, DNS updates (DnsRequest answered
as failed), and scaling of the core's clock by --time-scale (the core's clock is the wall
clock, which RFC 4285 timestamps need).

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
from harness.reference.ha_core import (
    Action,
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
from harness.wire import compact

IPPROTO_DSTOPTS, IPPROTO_MH, IPPROTO_IPV6_IN_IPV6 = 60, 135, 41
TUNSETIFF, IFF_TUN, IFF_NO_PI = 0x400454CA, 0x0001, 0x1000
TUN_PREFIX = "dmmha"
IPV6_HEADER = struct.Struct("!IHBB16s16s")
ICMP6_MAX = 1280  # RFC 4443 §2.4: the error packet must not exceed the minimum MTU
READY_LINE = "dmmconf ha: ready"

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
        self.tunnels = Tunnels(opts.address, None, self.log, self.mutant)
        self.multicast = MulticastForwarder(opts.uplink, self.log, self.mutant)

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
        self.multicast.open()

    def close(self) -> None:
        for s, _ in self._rx:
            s.close()
        self._rx = []
        if self._tx is not None:
            self._tx.close()
            self._tx = None

    def stop(self, *_: object) -> None:
        self._stop = True

    # ------------------------------------------------------------------ loop

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
            f"{len(self.opts.keys)} MN-HA key(s)"
            + (f", MUTANT {self.mutant}" if self.mutant else "")
        )
        print(READY_LINE, flush=True)
        try:
            while not self._stop:
                deadline = self.core.next_deadline()
                timeout = None if deadline is None else max(0.0, deadline - time.time()) + 0.001
                readers: list[Any] = [wake_r, *(s for s, _ in self._rx), *self.tunnels.fds()]
                if self.multicast.sniffer is not None:
                    readers.append(self.multicast.sniffer)
                ready, _, _ = select.select(readers, [], [], timeout)
                for r in ready:
                    if r is wake_r:
                        with contextlib.suppress(OSError):
                            wake_r.recv(64)
                        continue
                    if isinstance(r, int):
                        self.tunnels.from_tun(r)
                        continue
                    if r is self.multicast.sniffer:
                        self.multicast.drain(self.core, self.tunnels)
                        continue
                    proto = {id(s): p for s, p in self._rx}.get(id(r))
                    if proto == IPPROTO_IPV6_IN_IPV6:
                        self.tunnels.from_coa(r)
                    elif proto is not None:
                        self._drain(r, proto)
                self.perform(self.core.tick(time.time()))
        finally:
            signal.set_wakeup_fd(-1)
            wake_r.close()
            wake_w.close()
            self.tunnels.close()
            self.multicast.close()
            self.close()
        self.log("stopped")
        return 0

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
        actions = self.core.receive(packet, time.time())
        if self.mutant:
            actions = self._mutate_reaction(packet, actions)
        self.perform(actions)

    def _mutate_reaction(self, packet: bytes, actions: list[Action]) -> list[Action]:
        m = self.mutant
        if m == "answer-discarded" and not actions and len(packet) >= 40:
            src = ipaddress.IPv6Address(packet[8:24])
            return [SendBindingError(src, src, 1)]
        out: list[Action] = []
        for a in actions:
            if isinstance(a, SendBindingAck) and a.status == 0:
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
                self.multicast.sync(self.core.bindings())
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

    def _send(self, data: bytes, dst: str) -> None:
        assert self._tx is not None
        try:
            self._tx.sendto(data, (dst, 0, 0, 0))
        except OSError as exc:
            self.log(f"cannot send to {dst}: {exc}")


class Tunnels:
    """The userspace data plane (RFC 6275 §10.4.1, §10.4.5): per binding a TUN device with
    the home address's /128 routed into it. What the kernel routes there goes to the CoA
    inside IPv6 (outer source: the HA's address), sent whole on the IPPROTO_RAW socket;
    what arrives on the raw socket of protocol 41 from a bound CoA with the bound home
    address as inner source is written to that TUN device, and the kernel forwards it."""

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
                ["ip", "link", "set", name, "up"],
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
            hoa = ipaddress.IPv6Address(inner[8:24])
            for (bound, _bid), (fd, _name, coa) in self.by_key.items():
                if bound == hoa and coa == src:
                    with contextlib.suppress(OSError):
                        os.write(fd, inner)
                    break


class MulticastForwarder:
    """Draft §6 / RFC 6275 §10.4.1: the groups the bindings' multicast state asks for are
    joined on the uplink (the kernel's MLDv2 host stack reports them to the core), and each
    multicast packet that arrives there is tunnelled to the CoA of every binding whose state
    admits (group, source): one copy per subscribed binding. Groups of link-local scope are
    never joined nor tunnelled (RFC 6275 §10.4.1)."""

    def __init__(
        self, uplink: str | None, log: Callable[[str], None], mutant: str | None = None
    ) -> None:
        self.uplink = uplink
        self.log = log
        self.mutant = mutant
        self.joined: set[tuple[ipaddress.IPv6Address, ipaddress.IPv6Address | None]] = set()
        self.joiner: socket.socket | None = None
        self.sniffer: socket.socket | None = None
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
        self.sniffer = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x86DD))
        self.sniffer.bind((self.uplink, 0))
        self.sniffer.setblocking(False)

    def close(self) -> None:
        for s in (self.joiner, self.sniffer):
            if s is not None:
                s.close()
        self.joiner = self.sniffer = None
        self.joined.clear()

    def sync(self, bindings: list[ha_core.Binding]) -> None:
        if self.joiner is None:
            return
        wanted: set[tuple[ipaddress.IPv6Address, ipaddress.IPv6Address | None]] = set()
        for b in bindings:
            for group, state in b.multicast.mld.groups.items():
                if not isinstance(group, ipaddress.IPv6Address) or (group.packed[1] & 0xF) <= 2:
                    continue
                if state.mode.name == "INCLUDE":
                    wanted |= {
                        (group, src)
                        for src in state.sources
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
        from harness.lab import mldproxy

        assert self.joiner is not None
        if source is None:
            opt = mldproxy.MCAST_JOIN_GROUP if join else mldproxy.MCAST_LEAVE_GROUP
            value = mldproxy.group_req(self.ifindex, group)
        else:
            opt = mldproxy.MCAST_JOIN_SOURCE_GROUP if join else mldproxy.MCAST_LEAVE_SOURCE_GROUP
            value = mldproxy.group_source_req(self.ifindex, group, source)
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

    def drain(self, core: HomeAgentCore, tunnels: Tunnels) -> None:
        assert self.sniffer is not None
        while True:
            try:
                packet, addr = self.sniffer.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            if addr[2] == socket.PACKET_OUTGOING or len(packet) < 40 or packet[24] != 0xFF:
                continue
            if (packet[25] & 0xF) <= 2 or self.mutant == "no-mcast-forward":
                continue  # link-local scope (or less) stays on the link
            group = ipaddress.IPv6Address(packet[24:40])
            source = ipaddress.IPv6Address(packet[8:24])
            for b in core.bindings():
                wanted = b.multicast.admits(group, source) or self.mutant == "ignore-leave"
                if isinstance(b.coa, ipaddress.IPv6Address) and wanted:
                    tunnels.encapsulate(packet, b.coa)


def _has_options(packet: bytes, types: tuple[int, ...]) -> bool:
    try:
        msg = compact.parse_packet(packet)
        options = compact.parse_options(msg.body, compact.FIXED_PART[compact.MHType.BU])
    except (compact.Malformed, KeyError):
        return False
    return any(o.otype in types for o in options)


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
