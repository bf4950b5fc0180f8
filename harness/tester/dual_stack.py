"""The tester's side of RFC 5555 at a home agent over IPv6 transport (draft §6, DSMIPv6): the
IPv4 Home Address option of its BUs (§3.1.1), the IPv4 Address Acknowledgement of the HA's
BAs (§3.2.1), and IPv4 datagrams from the lab's correspondent to an IPv4 home address, seen
IPv4-in-IPv6 in the HA's tunnel to the care-of address (§4.5.1).
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6, MIP6OptUnknown
from scapy.packet import Packet

from harness import verdicts
from harness.lab.topology import Lab
from harness.tester.conversation import (
    ExpectationFailed,
    Link,
    Predicate,
    from_src,
    inbound,
    to_dst,
)
from harness.tester.home_agent import FLAG_A, FLAG_H, HomeAgentUnderTest
from harness.wire import compact
from harness.wire.mobility import (
    IgmpGroupRecord,
    MIP6OptIPv4CareOfAddress,
    MIP6OptIPv4HomeAddress,
    MIP6OptMulticastState,
)
from harness.wire.numbers import IGMPV3_REPORT, MobOpt

IPV4_IN_IPV6 = 4  # the Next Header of an IPv4 packet in IPv6 (RFC 2473)
UNSPECIFIED = "0.0.0.0"
PORT = 40400  # the correspondent's UDP port for IPv4 probes


def ipv4_hoa(address: str = UNSPECIFIED, prefix_len: int = 32, p_flag: bool = False) -> Packet:
    """An IPv4 Home Address option: 0.0.0.0 asks for a dynamic address (RFC 5555 §4.4.2)."""
    return MIP6OptIPv4HomeAddress(prefix_len=prefix_len, flags=int(p_flag), address=address)


def raw_ipv4_hoa(data: bytes) -> Packet:
    """An IPv4 Home Address option with exactly `data` after its Length (malformed ones)."""
    return MIP6OptUnknown(otype=int(MobOpt.IPV4_HOME_ADDRESS), olen=len(data), odata=data)


@dataclass(frozen=True)
class IPv4Ack:
    """The IPv4 Address Acknowledgement of a BA (RFC 5555 §3.2.1)."""

    status: int
    prefix_len: int
    reserved: int
    address: ipaddress.IPv4Address

    @property
    def accepted(self) -> bool:
        return self.status < 128


def ipv4_ack(ba: compact.MobilityMessage) -> IPv4Ack | None:
    for opt in ba.options:
        if opt.otype == MobOpt.IPV4_ADDRESS_ACK and len(opt.data) == 6:
            return IPv4Ack(
                opt.data[0], opt.data[1] >> 2, opt.data[1] & 3, ipaddress.IPv4Address(opt.data[2:])
            )
    return None


def tunnelled4(ha: HomeAgentUnderTest, coa: str, hoa4: str, payload: bytes) -> Predicate:
    """The correspondent's IPv4 datagram for `hoa4`, IPv4-in-IPv6 from the HA to `coa`
    (RFC 5555 §4.5.1: an IPv4 packet to an MN in an IPv6 network goes in IPv6)."""

    def test(pkt: Any) -> bool:
        outer = pkt.getlayer(IPv6)
        if outer is None or outer.nh != IPV4_IN_IPV6 or IP not in outer:
            return False
        inner = outer[IP]
        return inner.dst == hoa4 and UDP in inner and bytes(inner[UDP].payload) == payload

    return (
        inbound
        & from_src(ha.address)
        & to_dst(coa)
        & Predicate(test, f"an IPv4 datagram for {hoa4} inside IPv6 ({len(payload)} octets)")
    )


class Correspondent4:
    """A UDP socket of the lab's correspondent node, IPv4."""

    def __init__(self, ha: HomeAgentUnderTest) -> None:
        self.ha = ha
        self.address = str(ha.lab.plan.cn.host4)
        self.sock = ha.lab.socket("cn", socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("0.0.0.0", PORT))

    def __enter__(self) -> Correspondent4:
        return self

    def __exit__(self, *_: object) -> None:
        self.sock.close()

    def send(self, hoa4: str, payload: bytes) -> None:
        self.sock.sendto(payload, (hoa4, PORT))

    def received(self, within: float) -> list[tuple[bytes, str]]:
        """The datagrams that reach it within `within` seconds: (payload, source)."""
        self.sock.settimeout(within)
        out = []
        try:
            while True:
                data, addr = self.sock.recvfrom(65535)
                out.append((data, addr[0]))
                self.sock.settimeout(0.05)
        except (TimeoutError, OSError):
            pass
        return out


def reverse4(ha: HomeAgentUnderTest, coa: str, hoa4: str, cn4: str, payload: bytes) -> Packet:
    """An IPv4 datagram from the IPv4 home address to the correspondent, IPv4-in-IPv6 from
    the care-of address to the HA (the reverse tunnel, RFC 5555 §4.4.3)."""
    return IPv6(
        bytes(
            IPv6(src=coa, dst=ha.address, nh=IPV4_IN_IPV6)
            / IP(src=hoa4, dst=cn4)
            / UDP(sport=PORT, dport=PORT)
            / payload
        )
    )


# ----------------------------------------------------------------- IPv4 multicast (draft §8)

REACH_TRIES, REACH_EACH = 10, 0.3  # a source's datagrams until one reaches the HA's link


def state4(*records: tuple[int, str, tuple[str, ...]]) -> MIP6OptMulticastState:
    """A Multicast State option in its IGMPv3 form (draft §8, type 0x22) of (record type,
    group, sources) records."""
    return MIP6OptMulticastState(
        report_type=IGMPV3_REPORT,
        records=[IgmpGroupRecord(rtype=t, maddr=g, sources=list(s)) for t, g, s in records],
    )


@dataclass
class Source4:
    """A real IPv4 multicast sender: a UDP socket in a lab node."""

    node: str
    address: str
    sock: socket.socket

    def send(self, group: str, payload: bytes) -> None:
        self.sock.sendto(payload, (group, PORT))


def open_source4(lab: Lab, node: str, address: object) -> Source4:
    from harness.netproto import sockopts

    sock = lab.socket(node, socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IP, sockopts.IP_MULTICAST_TTL, 16)
    ifindex = lab.ifindex(node, "eth0")
    sock.setsockopt(socket.IPPROTO_IP, sockopts.IP_MULTICAST_IF, sockopts.ip_mreqn(ifindex))
    return Source4(node, str(address), sock)


def carries4(group: str, payload: bytes) -> Predicate:
    """An IPv4 datagram to `group` with `payload`, not inside IPv6."""

    def test(pkt: Any) -> bool:
        if IPv6 in pkt or IP not in pkt:
            return False
        ip = pkt[IP]
        return ip.dst == group and UDP in ip and bytes(ip[UDP].payload) == payload

    return inbound & Predicate(test, f"an IPv4 datagram to {group} ({len(payload)} octets)")


def reach_ha4(watch: Link, source: Source4, group: str, tag: str) -> bytes:
    """Datagrams tagged `tag` from `source` to `group` until one is seen on `watch` (the
    HA's uplink or access link); its payload. Inconclusive if none is: the lab's trouble."""
    for i in range(REACH_TRIES):
        payload = f"{tag}-{i}".encode()
        source.send(group, payload)
        try:
            watch.expect(carries4(group, payload), within=REACH_EACH)
            return payload
        except ExpectationFailed:
            continue
    verdicts.inconclusive(
        f"no IPv4 datagram from {source.node} ({source.address}) to {group} reached the home "
        f"agent's {watch.iface} in {REACH_TRIES * REACH_EACH:g} s: the lab did not deliver"
    )


def igmp_query_to(ha: HomeAgentUnderTest, coa: str) -> Predicate:
    """An IGMP Membership Query (RFC 3376 §4.1) IPv4-in-IPv6 from the HA to `coa`."""

    def test(pkt: Any) -> bool:
        outer = pkt.getlayer(IPv6)
        if outer is None or outer.nh != IPV4_IN_IPV6:
            return False
        inner = bytes(outer.payload)
        ihl = (inner[0] & 0x0F) * 4 if inner and inner[0] >> 4 == 4 else 0
        return ihl >= 20 and inner[9] == 2 and len(inner) > ihl and inner[ihl] == 0x11

    return inbound & from_src(ha.address) & to_dst(coa) & Predicate(test, "an IGMP Query")


@dataclass(frozen=True)
class IgmpQuery:
    """What a tunnelled IGMP Query says (RFC 3376 §4.1)."""

    dst: str
    ttl: int
    router_alert: bool
    group: str
    sources: int
    length: int


def tunnelled_igmp(pkt: Any) -> IgmpQuery:
    inner = bytes(pkt.getlayer(IPv6).payload)
    ihl = (inner[0] & 0x0F) * 4
    msg = inner[ihl:]
    return IgmpQuery(
        str(ipaddress.IPv4Address(inner[16:20])),
        inner[8],
        bytes([0x94, 0x04]) in inner[20:ihl],
        str(ipaddress.IPv4Address(msg[4:8])),
        int.from_bytes(msg[10:12], "big") if len(msg) >= 12 else -1,
        len(msg),
    )


# ----------------------------------------------------------------- BUs in UDP/IPv4 (§4.2)

DSMIP_PORT = 4191  # RFC 5555 §8
FLAG_F = 0x004  # RFC 5555 §3.1.3: Force UDP encapsulation, in the BU's flags


class Udp4Mn:
    """The tester as an MN in an IPv4 network (RFC 5555 §4.2): BUs inside UDP and IPv4
    from the tester's IPv4 address to the HA's, the BAs read on the same socket."""

    def __init__(self, ha: HomeAgentUnderTest) -> None:
        self.ha = ha
        self.ha4 = str(ha.lab.plan.link(1).router4)
        self.sock = ha.lab.socket("mn", socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("0.0.0.0", 0))

    def __enter__(self) -> Udp4Mn:
        return self

    def __exit__(self, *_: object) -> None:
        self.sock.close()

    def bu(
        self, hoa: str, seq: int, lifetime: int, v4coa: str | None, *, force: bool = False
    ) -> bytes:
        """A BU whose IPv6 source is the home address (§4.2), with the IPv4 Care-of Address
        option naming `v4coa` (None: without it), the F flag when `force` (§3.1.3), signed
        as the profile says."""
        opts = (MIP6OptIPv4CareOfAddress(address=v4coa),) if v4coa else ()
        flags = FLAG_A | FLAG_H | (FLAG_F if force else 0)
        return bytes(self.ha.bu(hoa, seq, lifetime, opts, coa=hoa, flags=flags))

    def _from_ha(self, within: float) -> Iterator[bytes]:
        """What comes in UDP from the HA's port 4191 within `within` seconds."""
        deadline = time.monotonic() + within
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data, (src, port) = self.sock.recvfrom(65535)
            except (TimeoutError, OSError):
                return
            if (src, port) == (self.ha4, DSMIP_PORT):
                yield data

    def exchange(self, bu: bytes, seq: int, within: float) -> compact.MobilityMessage | None:
        """Send `bu` in UDP to the HA's port 4191; its BA of sequence number `seq` from
        that port within `within` seconds, or None."""
        self.sock.sendto(bu, (self.ha4, DSMIP_PORT))
        for data in self._from_ha(within):
            try:
                msg = compact.parse_packet(data)
            except compact.Malformed:
                continue
            if msg.mhtype == compact.MHType.BA and msg.seq == seq:
                return msg
        return None

    def tunnelled(self, hoa: str, payload: bytes, within: float) -> bool:
        """Did an IPv6 (or IPv4) packet to `hoa` carrying `payload` come in UDP from the
        HA's port 4191 within `within` seconds?"""
        return any(udp_tunnelled(data, hoa, payload) for data in self._from_ha(within))


def udp_tunnelled(data: bytes, hoa: str, payload: bytes) -> bool:
    """`data` (a UDP payload from the HA's port 4191, or what protocol 41 or 4 carries) is
    an IPv6 or IPv4 packet to `hoa` whose UDP payload is `payload` (RFC 5555 §4.1)."""
    if not data or data[0] >> 4 not in (4, 6):
        return False
    try:
        pkt = IPv6(data) if data[0] >> 4 == 6 else IP(data)
    except Exception:  # noqa: BLE001 - anything scapy cannot read is not it
        return False
    return pkt.dst == hoa and UDP in pkt and bytes(pkt[UDP].payload) == payload


def in_ipv4(ha4: str, own4: str, hoa: str, payload: bytes) -> Predicate:
    """An IPv6 (or IPv4) packet to `hoa` carrying `payload`, inside IPv4 (protocol 41, or
    4) from the HA's IPv4 address to `own4` (RFC 5555 §4.5.1 without a NAT)."""

    def test(pkt: Any) -> bool:
        ip = pkt.getlayer(IP)
        if ip is None or ip.proto not in (4, 41) or ip.src != ha4 or ip.dst != own4:
            return False
        return udp_tunnelled(bytes(ip.payload), hoa, payload)

    return inbound & Predicate(test, f"a packet to {hoa} in IPv4 from {ha4}")


NO_KEEPALIVE = 0xFFFFFFFF  # RFC 5555 §3.2.2: a Refresh Time of all ones, no NAT detected


@dataclass(frozen=True)
class NatDetection:
    """The NAT Detection option of a BA (RFC 5555 §3.2.2)."""

    forced: bool  # F: UDP encapsulation required
    refresh: int

    @property
    def says_nat(self) -> bool:
        return self.refresh != NO_KEEPALIVE


def nat_detection(ba: compact.MobilityMessage) -> NatDetection | None:
    for o in ba.options:
        if o.otype == MobOpt.NAT_DETECTION and len(o.data) == 6:
            return NatDetection(bool(o.data[0] & 0x80), int.from_bytes(o.data[2:6], "big"))
    return None
