"""IPv6 socket options and the structs they take (Linux): multicast membership
(RFC 3678's group_req / group_source_req), the kernel's IPv6 multicast routing (MRT6,
linux/mroute6.h: mif6ctl, mf6cctl) and the ICMPv6 type filter (struct icmp6_filter).

Sans-I/O: numbers and byte strings only. Shared by the lab's MLD proxy, the reference
daemons, the tester and the tests.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Iterable

Addr = ipaddress.IPv6Address

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
MCAST_LEAVE_SOURCE_GROUP = 47


def sockaddr_in6(addr: Addr | None) -> bytes:
    """struct sockaddr_in6 padded to struct sockaddr_storage (128 octets)."""
    raw = (addr or Addr("::")).packed
    return struct.pack("=HHI16sI", socket.AF_INET6, 0, 0, raw, 0).ljust(128, b"\0")


def group_req(ifindex: int, group: Addr) -> bytes:
    """struct group_req (MCAST_JOIN_GROUP, MCAST_LEAVE_GROUP)."""
    return struct.pack("=I4x", ifindex) + sockaddr_in6(group)


def group_source_req(ifindex: int, group: Addr, source: Addr) -> bytes:
    """struct group_source_req (MCAST_JOIN_SOURCE_GROUP, MCAST_LEAVE_SOURCE_GROUP)."""
    return struct.pack("=I4x", ifindex) + sockaddr_in6(group) + sockaddr_in6(source)


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
