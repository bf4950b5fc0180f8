"""IPv6 and IPv4 socket options and the structs they take (Linux): multicast membership
(RFC 3678's group_req / group_source_req, with a struct sockaddr_in6 or sockaddr_in inside,
at level IPPROTO_IPV6 or IPPROTO_IP), the kernel's IPv6 multicast routing (MRT6,
linux/mroute6.h: mif6ctl, mf6cctl), the ICMPv6 type filter (struct icmp6_filter) and the
IPv4 ancillary data and options an IGMP querier sends with (struct in_pktinfo, IP_OPTIONS).

Sans-I/O: numbers and byte strings only. Shared by the lab's MLD proxy, the reference
daemons, the tester and the tests.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Iterable

Addr = ipaddress.IPv6Address
Addr4 = ipaddress.IPv4Address

IPPROTO_IPV6 = socket.IPPROTO_IPV6
IPPROTO_ICMPV6 = socket.IPPROTO_ICMPV6
# linux/mroute6.h
MRT6_INIT = 200
MRT6_ADD_MIF = 202
MRT6_ADD_MFC = 204
MRT6_DEL_MFC = 205
MRT6MSG_NOCACHE = 1
MAXMIFS = 32
# linux/in6.h, linux/icmpv6.h
IPV6_RECVPKTINFO = 49
IPV6_PKTINFO = 50
IPV6_HOPOPTS = 54
ICMP6_FILTER = 1
MCAST_JOIN_GROUP = 42
MCAST_LEAVE_GROUP = 45
MCAST_JOIN_SOURCE_GROUP = 46
MCAST_LEAVE_SOURCE_GROUP = 47  # the MCAST_* numbers are the same at IPPROTO_IP (linux/in.h)
# linux/in.h
IPPROTO_IP = socket.IPPROTO_IP
IPPROTO_IGMP = socket.IPPROTO_IGMP
IP_OPTIONS = 4
IP_PKTINFO = 8
IP_MULTICAST_IF = 32
IP_MULTICAST_TTL = 33
IP_MULTICAST_LOOP = 34
IP_ADD_SOURCE_MEMBERSHIP = 39
IP_MULTICAST_ALL = 49


def sockaddr_in6(addr: Addr | None) -> bytes:
    """struct sockaddr_in6 padded to struct sockaddr_storage (128 octets)."""
    raw = (addr or Addr("::")).packed
    return struct.pack("=HHI16sI", socket.AF_INET6, 0, 0, raw, 0).ljust(128, b"\0")


def sockaddr_in(addr: Addr4 | None) -> bytes:
    """struct sockaddr_in padded to struct sockaddr_storage (128 octets)."""
    raw = (addr or Addr4(0)).packed
    return struct.pack("=HH4s8x", socket.AF_INET, 0, raw).ljust(128, b"\0")


def sockaddr(addr: Addr | Addr4) -> bytes:
    """The struct sockaddr_in6 or sockaddr_in of `addr`, as group_req carries it."""
    return sockaddr_in(addr) if isinstance(addr, Addr4) else sockaddr_in6(addr)


def group_req(ifindex: int, group: Addr | Addr4) -> bytes:
    """struct group_req (MCAST_JOIN_GROUP, MCAST_LEAVE_GROUP), for an IPv6 group (level
    IPPROTO_IPV6) or an IPv4 one (level IPPROTO_IP)."""
    return struct.pack("=I4x", ifindex) + sockaddr(group)


def group_source_req(ifindex: int, group: Addr | Addr4, source: Addr | Addr4) -> bytes:
    """struct group_source_req (MCAST_JOIN_SOURCE_GROUP, MCAST_LEAVE_SOURCE_GROUP), either
    family (group and source of the same one)."""
    if isinstance(group, Addr4) != isinstance(source, Addr4):
        raise ValueError(f"group {group} and source {source} are of different families")
    return struct.pack("=I4x", ifindex) + sockaddr(group) + sockaddr(source)


def in_pktinfo(ifindex: int) -> bytes:
    """struct in_pktinfo for sendmsg's IP_PKTINFO: send out of `ifindex`, the kernel picks
    the source address."""
    return struct.pack("=I4x4x", ifindex)


def ip_mreq_source(group: Addr4, interface: Addr4, source: Addr4) -> bytes:
    """struct ip_mreq_source (IP_ADD_SOURCE_MEMBERSHIP): the interface by its address."""
    return group.packed + interface.packed + source.packed


def ip_mreqn(ifindex: int) -> bytes:
    """struct ip_mreqn for IP_MULTICAST_IF: multicast out of `ifindex`."""
    return struct.pack("=4x4xi", ifindex)


def mif6ctl(mifi: int, ifindex: int) -> bytes:
    # mifi_t mifi; u8 flags; u8 threshold; u16 pifi; [2 pad] u32 rate_limit
    return struct.pack("=HBBH2xI", mifi, 0, 1, ifindex, 0)


def mf6cctl(source: Addr, group: Addr, parent: int, oifs: set[int]) -> bytes:
    bits = [0] * 8  # if_set: 256 bits
    for mif in oifs:
        bits[mif // 32] |= 1 << (mif % 32)
    origin = struct.pack("=HHI16sI", socket.AF_INET6, 0, 0, source.packed, 0)
    grp = struct.pack("=HHI16sI", socket.AF_INET6, 0, 0, group.packed, 0)
    return origin + grp + struct.pack("=H2x8I", parent, *bits)


def icmp6_filter(passed: Iterable[int]) -> bytes:
    """struct icmp6_filter passing only the ICMPv6 types `passed` (Linux: a set bit blocks)."""
    words = [0xFFFFFFFF] * 8
    for t in passed:
        words[t >> 5] &= ~(1 << (t & 31)) & 0xFFFFFFFF
    return struct.pack("=8I", *words)
