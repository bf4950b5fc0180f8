"""The reference Home Agent's data plane in userspace (I/O only; the decisions are
harness/reference/ha_dataplane.py's):

* Tunnels (RFC 6275 §10.4.1, §10.4.5): one TUN device, each bound home address's /128
  routed into it. What the kernel routes there goes to the CoA of the home address's
  binding inside IPv6 (outer source: the HA's address), sent whole on the IPPROTO_RAW
  socket; what arrives on the raw socket of protocol 41 from a bound CoA with the bound
  home address as inner source is written to the TUN device, and the kernel forwards it.
* MulticastForwarder (draft §6, RFC 6275 §10.4.2): the join set on the uplink (the kernel's
  MLDv2 host stack reports it to the core router), and packet sockets on the uplink and the
  access link whose multicast data goes into the tunnels the data plane chooses.
* FaultyRouterAdvertiser: the lab's RouterAdvertiser with the RA bytes passed through the
  faults' hook on their way to the socket.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import ipaddress
import os
import socket
import struct
import subprocess
from collections.abc import Callable
from typing import Any

from harness.faults import NO_FAULTS, Fault, Faults
from harness.netproto import advertiser
from harness.netproto.packet import (
    ETH_P_IP,
    ETH_P_IPV6,
    checksum_left_to_offload,
    open_packet_socket,
)
from harness.reference import ha_core, ha_dataplane, ha_hooks
from harness.reference.ha_dataplane import Membership, Served

IPPROTO_IPV6_IN_IPV6 = 41
IPPROTO_IPV4_IN_IPV6 = 4  # RFC 2473 with an IPv4 packet inside (RFC 5555 §4.5.1)
TUNSETIFF, IFF_TUN, IFF_NO_PI = 0x400454CA, 0x0001, 0x1000
TUN_PREFIX = "dmmha"
IPV6_HEADER = struct.Struct("!IHBB16s16s")


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


def ipv4_subnet(iface: str, address: ipaddress.IPv4Address) -> ipaddress.IPv4Network | None:
    """The IPv4 subnet `address` has on `iface`, as the kernel holds it (None: not there)."""
    import json

    argv = ["ip", "-j", "-4", "addr", "show", "dev", iface]
    try:
        out = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=5)
        links = json.loads(out.stdout or "[]")
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    for link in links:
        for a in link.get("addr_info", []):
            if a.get("local") == str(address):
                return ipaddress.IPv4Interface(f"{address}/{a['prefixlen']}").network
    return None


def default_ipv4_pool(subnet: ipaddress.IPv4Network) -> ipaddress.IPv4Network:
    """The IPv4 home addresses the HA assigns by default: the second eighth of the home
    link's subnet (10.0.1.32/27 of the lab's 10.0.1.0/24: clear of the router, the MN's
    own addresses at .100 and the local source at .205; INT-21)."""
    if subnet.prefixlen > 29:
        return subnet
    return list(subnet.subnets(prefixlen_diff=3))[1]


class Tunnels:
    """One TUN device for every binding, and the IPv6-in-IPv6 both ways.

    Each bound home address has its /128 routed into the device (the route through
    rtnetlink, one request); a packet read from it goes to the CoA of the binding the home
    address's route serves: the one brought up last, as `ip route replace` would have it.
    A move to another care-of address only re-points that entry: no device, no route churn.
    With `node_of` (the core's entry of a home address) a packet goes where
    ha_dataplane.steer sends it among the home address's bindings (RFC 6089 §5.3.6).
    """

    def __init__(
        self,
        address: ipaddress.IPv6Address,
        tx: socket.socket | None,
        log: Callable[[str], None],
        faults: Faults = NO_FAULTS,
    ) -> None:
        self.address = address
        self.tx = tx
        self.log = log
        self.faults = faults
        self.coa_of: dict[tuple[ipaddress.IPv6Address, int], Any] = {}  # (hoa, bid): coa
        self.route_of: dict[bytes, tuple[ipaddress.IPv6Address, int]] = {}  # packed hoa: key
        self.fd: int | None = None
        self.ifindex = 0
        self._rtnl: Any = None
        self.on_inner: Callable[[ipaddress.IPv6Address, bytes], None] | None = None
        self._text: dict[ipaddress.IPv6Address, str] = {}  # CoAs as sendto(2) wants them
        # the binding cache entry of a home address, for the steering of each packet
        self.node_of: Callable[[ipaddress.IPv6Address], ha_core.MobileNode | None] | None = None
        # RFC 5555 §4.5.1: packets to an IPv4 care-of address go in UDP from the DSMIPv6
        # port when a NAT was detected (the path of `udp_path`), else IPv6 in IPv4 (raw4)
        self.udp_path: Callable[[ipaddress.IPv6Address], Any] | None = None
        self.udp4: socket.socket | None = None
        self.raw4: socket.socket | None = None
        self.raw44: socket.socket | None = None  # IPv4 in IPv4 (protocol 4)
        # RFC 5555 §4.5: each IPv4 home address's /32 routed into the device too, its
        # packets tunnelled to the CoA of its IPv6 home address's binding (§4.5.1)
        self.hoa_of4: dict[bytes, ipaddress.IPv6Address] = {}  # packed IPv4 HoA: IPv6 HoA

    def fds(self) -> list[int]:
        return [] if self.fd is None else [self.fd]

    def _device(self) -> bool:
        """The TUN device, made on first use; False (logged) when it cannot be."""
        if self.fd is not None:
            return True
        from harness.lab import rtnl  # the project's rtnetlink client

        name = f"{TUN_PREFIX}0"
        try:
            fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
            fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
        except OSError as exc:
            self.log(f"cannot create TUN device {name}: {exc}")
            return False
        try:
            # No link-local address: the kernel's own ND and MLD chatter on the device
            # would otherwise be read back from it and tunnelled to the CoA.
            argv = ["ip", "link", "set", name, "addrgenmode", "none", "up"]
            subprocess.run(argv, check=True, capture_output=True, timeout=5)
            self.ifindex = socket.if_nametoindex(name)
            self._rtnl = rtnl.Rtnl(None)
        except (OSError, subprocess.SubprocessError) as exc:
            os.close(fd)
            self.log(f"cannot set TUN device {name} up: {exc}")
            return False
        self.fd = fd
        return True

    def _route(
        self, hoa: ipaddress.IPv6Address | ipaddress.IPv4Address, *, delete: bool = False
    ) -> bool:
        from harness.lab import rtnl

        net = f"{hoa}/{hoa.max_prefixlen}"
        msg = rtnl.route(net, oif=self.ifindex, delete=delete)
        try:
            self._rtnl.request(msg, f"route {net}", ignore=(errno.ESRCH,) if delete else ())
        except OSError as exc:
            self.log(f"cannot {'remove' if delete else 'add'} the route of {hoa}: {exc}")
            return False
        return True

    def up(self, hoa: ipaddress.IPv6Address, bid: int, coa: Any) -> None:
        key = (hoa, bid)
        if key in self.coa_of:
            self.coa_of[key] = coa  # RFC 6275 §10.3.1: same binding, new care-of address
            return
        if self.faults.has(Fault.HA_NO_TUNNEL) or not isinstance(
            coa, (ipaddress.IPv6Address, ipaddress.IPv4Address)
        ):
            return
        if not self._device() or not self._route(hoa):
            return
        self.coa_of[key] = coa
        self.route_of[hoa.packed] = key

    def down(self, hoa: ipaddress.IPv6Address, bid: int) -> None:
        key = (hoa, bid)
        if self.coa_of.pop(key, None) is None or self.route_of.get(hoa.packed) != key:
            return
        others = [k for k in self.coa_of if k[0] == hoa]
        if others:
            self.route_of[hoa.packed] = others[-1]
        else:
            del self.route_of[hoa.packed]
            self._route(hoa, delete=True)

    def bind4(self, hoa: ipaddress.IPv6Address, address: ipaddress.IPv4Address | None) -> None:
        """The IPv4 home address of `hoa` (None: none now): its /32 into the device."""
        for old in [a for a, h in self.hoa_of4.items() if h == hoa]:
            del self.hoa_of4[old]
            self._route(ipaddress.IPv4Address(old), delete=True)
        if address is None or self.faults.has(Fault.HA_IPV4_NO_TUNNEL):
            return
        if self._device() and self._route(address):
            self.hoa_of4[address.packed] = hoa

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # a TUN device that is not persistent goes, its routes with it
            self.fd = None
        if self._rtnl is not None:
            self._rtnl.close()
            self._rtnl = None
        self.coa_of.clear()
        self.route_of.clear()
        self.hoa_of4.clear()

    def from_tun(self, fd: int) -> None:
        while True:
            try:
                inner = os.read(fd, 65535)
            except (BlockingIOError, InterruptedError):
                return
            if self.tx is not None and len(inner) >= 20 and inner[0] >> 4 == 4:
                self._ipv4_to_coa(inner)
                continue
            if self.tx is None or len(inner) < 40 or inner[0] >> 4 != 6:
                continue
            key = self.route_of.get(inner[24:40])
            if key is None:
                continue
            node = self.node_of(key[0]) if self.node_of is not None else None
            if node is None or (len(node.bindings) == 1 and not node.flows):
                coas = [self.coa_of[key]]  # one binding: nothing to choose
            else:  # RFC 6089 §5.3.6, RFC 5648: which of the home address's bindings get it
                bindings, flows = node.bindings.values(), node.flows.values()
                coas = ha_dataplane.steer(inner, bindings, flows, self.faults)
            for coa in coas:
                if isinstance(coa, ipaddress.IPv6Address):
                    self.encapsulate(inner, coa)
                else:
                    self.to_ipv4_coa(inner, key[0], coa)

    def to_ipv4_coa(
        self, inner: bytes, hoa: ipaddress.IPv6Address, coa: ipaddress.IPv4Address
    ) -> None:
        """RFC 5555 §4.5.1: to an IPv4 care-of address, in UDP from port 4191 to the BU's
        source port when a NAT was in the path (§4.2), else in IPv4 (protocol 41)."""
        path = self.udp_path(hoa) if self.udp_path is not None else None
        sock, port = (self.raw4 if inner[0] >> 4 == 6 else self.raw44), 0
        udp = not self.faults.has(Fault.HA_NAT_TUNNEL_NOT_UDP)
        if path is not None and not path.nat and self.faults.has(Fault.HA_FORCED_UDP_IGNORED):
            udp = False  # the F flag accepted, and then not followed
        if path is not None and path.in_udp and path.address == coa and udp:
            sock, port = self.udp4, path.port  # behind a NAT, or forced (§4.2, §4.5)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.sendto(inner, (str(coa), port))

    def from_ipv4_coa(self, inner: bytes, src: ipaddress.IPv4Address) -> None:
        """The reverse tunnel from an IPv4 care-of address (RFC 5555 §4.4.3, §4.5.1; RFC 6275
        §10.4.5 likewise): an IPv6 packet out of UDP or protocol 41 from a bound IPv4 CoA,
        with that binding's home address as source, goes to the TUN device."""
        if self.fd is None or self.faults.has(Fault.HA_NO_REVERSE_TUNNEL):
            return
        if len(inner) >= 40 and inner[0] >> 4 == 6:
            hoa: ipaddress.IPv6Address | None = ipaddress.IPv6Address(inner[8:24])
        elif len(inner) >= 20 and inner[0] >> 4 == 4:  # from the IPv4 home address
            hoa = self.hoa_of4.get(inner[12:16])
        else:
            return
        if any(h == hoa and c == src for (h, _bid), c in self.coa_of.items()):
            with contextlib.suppress(OSError):
                os.write(self.fd, inner)

    def from_raw4(self, sock: socket.socket) -> None:
        """IPv6 in IPv4 (protocol 41) or IPv4 in IPv4 (protocol 4) from an IPv4 care-of
        address."""
        while True:
            try:
                packet, (src, _port) = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            ihl = (packet[0] & 0x0F) * 4 if packet and packet[0] >> 4 == 4 else 0
            if ihl:
                self.from_ipv4_coa(packet[ihl:], ipaddress.IPv4Address(src))

    def _ipv4_to_coa(self, inner: bytes) -> None:
        """RFC 5555 §4.5.1: an IPv4 packet for an IPv4 home address, IPv4-in-IPv6 to the
        CoA of the binding its IPv6 home address's route serves."""
        hoa = self.hoa_of4.get(inner[16:20])
        key = self.route_of.get(hoa.packed) if hoa is not None else None
        coa = self.coa_of.get(key) if key is not None else None
        if isinstance(coa, ipaddress.IPv6Address):
            self.encapsulate(inner, coa, IPPROTO_IPV4_IN_IPV6)
        elif isinstance(coa, ipaddress.IPv4Address) and hoa is not None:
            self.to_ipv4_coa(inner, hoa, coa)  # §4.5.1: in IPv4, or UDP behind a NAT

    def from_coa4(self, sock: socket.socket) -> None:
        """The reverse tunnel of IPv4 (RFC 5555 §4.5.1, RFC 6275 §10.4.5 likewise): from a
        bound CoA, with the IPv4 home address of that binding as inner source."""
        while True:
            try:
                inner, addr = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            if len(inner) >= 40 and inner[0] >> 4 == 6 and inner[6] == IPPROTO_IPV4_IN_IPV6:
                inner = inner[40:]  # delivered with its outer header
            if len(inner) < 20 or inner[0] >> 4 != 4 or self.fd is None:
                continue
            src = ipaddress.IPv6Address(addr[0].split("%", 1)[0])
            hoa = self.hoa_of4.get(inner[12:16])
            if hoa is None or self.faults.has(Fault.HA_NO_REVERSE_TUNNEL):
                continue
            if any(h == hoa and c == src for (h, _bid), c in self.coa_of.items()):
                with contextlib.suppress(OSError):
                    os.write(self.fd, inner)

    def encapsulate(
        self, inner: bytes, coa: ipaddress.IPv6Address, nh: int = IPPROTO_IPV6_IN_IPV6
    ) -> None:
        """RFC 2473 in IPv6, from the HA's address to `coa`: the outer header packed from
        the addresses' octets, no text conversion on this per-copy path (the fan-out)."""
        if self.tx is None:
            return
        dst = self._text.get(coa)
        if dst is None:
            if len(self._text) > 65536:  # CoAs of bindings long gone
                self._text.clear()
            dst = self._text[coa] = str(coa)
        outer = IPV6_HEADER.pack(0x60000000, len(inner), nh, 64, self.address.packed, coa.packed)
        with contextlib.suppress(OSError):
            self.tx.sendto(outer + inner, (dst, 0, 0, 0))

    def from_coa(self, sock: socket.socket) -> None:
        while True:
            try:
                inner, addr = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            if self.faults.has(Fault.HA_NO_REVERSE_TUNNEL):
                continue
            if len(inner) >= 40 and inner[0] >> 4 == 6 and inner[6] == IPPROTO_IPV6_IN_IPV6:
                inner = inner[40:]  # delivered with its outer header
            if len(inner) < 40 or inner[0] >> 4 != 6:
                continue
            src = ipaddress.IPv6Address(addr[0].split("%", 1)[0])
            if self.on_inner is not None:
                self.on_inner(src, inner)
            bound = [(hoa, coa) for (hoa, _bid), coa in self.coa_of.items()]
            index = ha_dataplane.reverse_tunnel_target(inner, src, bound, self.faults)
            if index is not None and self.fd is not None:
                with contextlib.suppress(OSError):
                    os.write(self.fd, inner)


class MulticastForwarder:
    """The uplink memberships and the packet sockets that see multicast data."""

    def __init__(
        self,
        uplink: str | None,
        access: str | None,
        log: Callable[[str], None],
        faults: Faults = NO_FAULTS,
    ) -> None:
        self.uplink = uplink
        self.access = access
        self.log = log
        self.faults = faults
        self.joined: set[Membership] = set()
        self.joiner: socket.socket | None = None
        self.joiner4: socket.socket | None = None  # IPv4 groups (draft §8, the IGMPv3 form)
        self.sniffers: list[socket.socket] = []
        self.native: socket.socket | None = None  # the access link's, for a fault only
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
        self.joiner4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for name in (self.uplink, self.access):
            if name is None:
                continue
            for ethertype in (ETH_P_IPV6, ETH_P_IP):
                try:
                    sniffer = open_packet_socket(name, ethertype)
                except OSError as exc:
                    self.log(f"cannot watch {name} for multicast data: {exc}")
                    continue
                self.sniffers.append(sniffer)
                if name == self.access and ethertype == ETH_P_IPV6:
                    self.native = sniffer

    def close(self) -> None:
        for s in [self.joiner, self.joiner4, *self.sniffers]:
            if s is not None:
                s.close()
        self.joiner, self.joiner4, self.sniffers, self.native = None, None, [], None
        self.joined.clear()

    def sync(self, served: list[Served]) -> None:
        if self.joiner is None:
            return
        wanted = ha_dataplane.join_set(served, self.faults)
        leave, join = ha_dataplane.membership_changes(self.joined, wanted, self.faults)
        for group, source in leave:
            self._member(group, source, join=False)
        for group, source in join:
            self._member(group, source, join=True)

    def _member(self, group: Any, source: Any, join: bool) -> None:
        from harness.netproto import sockopts

        joiner = self.joiner if group.version == 6 else self.joiner4
        level = socket.IPPROTO_IPV6 if group.version == 6 else socket.IPPROTO_IP
        assert joiner is not None
        if source is None:
            opt = sockopts.MCAST_JOIN_GROUP if join else sockopts.MCAST_LEAVE_GROUP
            value = sockopts.group_req(self.ifindex, group)
        else:
            opt = sockopts.MCAST_JOIN_SOURCE_GROUP if join else sockopts.MCAST_LEAVE_SOURCE_GROUP
            value = sockopts.group_source_req(self.ifindex, group, source)
        try:
            joiner.setsockopt(level, opt, value)  # the MCAST_* numbers serve both levels
        except OSError as exc:
            self.log(f"cannot {'join' if join else 'leave'} ({source}, {group}): {exc}")
            return
        if join:
            self.joined.add((group, source))
        else:
            self.joined.discard((group, source))
        self.log(f"{'joined' if join else 'left'} ({source or '*'}, {group}) on {self.uplink}")

    def drain(self, sniffer: socket.socket, served: list[Served], tunnels: Tunnels) -> None:
        while True:
            try:
                packet, anc, _flags, addr = sniffer.recvmsg(65535, 64)
            except (BlockingIOError, InterruptedError):
                return
            if addr[2] == socket.PACKET_OUTGOING:
                continue
            if addr[1] == ETH_P_IP:  # draft §8, RFC 5555 §4.5.1: IPv4 in IPv6
                plan4 = ha_dataplane.copies4(
                    packet, checksum_left_to_offload(anc), served, self.faults
                )
                if plan4 is not None:
                    for coa in plan4.coas:
                        tunnels.encapsulate(plan4.packet, coa, IPPROTO_IPV4_IN_IPV6)
                    for hoa, coa4 in plan4.coas4:
                        tunnels.to_ipv4_coa(plan4.packet, hoa, coa4)
                continue
            plan = ha_dataplane.copies(packet, checksum_left_to_offload(anc), served, self.faults)
            if plan is None:
                continue
            for coa in plan.coas:
                tunnels.encapsulate(plan.packet, coa)
            if plan.native and self.native is not None and self.access is not None:
                mac = b"\x33\x33" + plan.group.packed[-4:]
                with contextlib.suppress(OSError):
                    self.native.sendto(plan.packet, (self.access, ETH_P_IPV6, 0, 0, mac))


class _FaultySocket:
    """A socket whose sendmsg passes the first buffer through the RA faults' hook."""

    def __init__(self, sock: socket.socket, faults: Faults) -> None:
        self._sock = sock
        self._faults = faults

    def sendmsg(self, buffers: list[bytes], *args: Any) -> int:
        first = ha_hooks.router_advertisement(self._faults, bytes(buffers[0]))
        return self._sock.sendmsg([first, *buffers[1:]], *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class FaultyRouterAdvertiser(advertiser.RouterAdvertiser):
    """The RouterAdvertiser whose RAs go through the faults' hook (unchanged without)."""

    def __init__(self, *args: Any, faults: Faults = NO_FAULTS, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.faults = faults

    def _loop(self, sock: socket.socket, ifindex: int) -> None:
        if self.faults:
            sock = _FaultySocket(sock, self.faults)  # type: ignore[assignment]
        super()._loop(sock, ifindex)
