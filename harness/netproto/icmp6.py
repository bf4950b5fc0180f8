"""Raw ICMPv6 sockets in a network namespace, for Neighbor Discovery (RFC 4861): a
socket on one interface that receives only some ICMPv6 types, the interface's MAC, and
its usable link-local address. Used by the Router Advertiser (routers) and the
reference Mobile Node (hosts). Errors are :class:`harness.netproto.ra.RaError`.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import socket
import struct
from collections.abc import Iterable, Iterator

from harness.lab import netns as netns_module
from harness.lab.netns import entered as netns_entered
from harness.netproto import ra, sockopts

_SIOCGIFHWADDR = 0x8927
_IFA_F_TENTATIVE = 0x40
_IFA_F_DADFAILED = 0x08


@contextlib.contextmanager
def in_netns(netns: str | None) -> Iterator[None]:
    """The lab's namespace switch (harness.lab.netns.entered), failing as an ra.RaError."""
    try:
        ctx = netns_entered(netns)
        ctx.__enter__()
    except (netns_module.NamespaceError, OSError) as exc:
        raise ra.RaError(f"network namespace {netns!r}: {exc}") from None
    try:
        yield
    finally:
        ctx.__exit__(None, None, None)


def open_icmpv6_socket(
    iface: str,
    accept: Iterable[int],
    netns: str | None = None,
    groups: Iterable[str] = (),
) -> tuple[socket.socket, int]:
    """A raw ICMPv6 socket on `iface` of namespace `netns`, receiving only the ICMPv6 types
    in `accept`, with hop limit 255 for what it sends, hop limit and packet info for what it
    receives, and member of the multicast `groups`. Returns it and the interface index."""
    with in_netns(netns):
        try:
            ifindex = socket.if_nametoindex(iface)
        except OSError:
            where = f" in namespace {netns}" if netns else ""
            raise ra.RaError(f"no interface {iface!r}{where}") from None
        s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
        s.setsockopt(socket.IPPROTO_ICMPV6, sockopts.ICMP6_FILTER, sockopts.icmp6_filter(accept))
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
        for group in groups:
            mreq = socket.inet_pton(socket.AF_INET6, group) + struct.pack("@I", ifindex)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
    except BaseException:
        s.close()
        raise
    return s, ifindex


def hardware_address(sock: socket.socket, iface: str) -> str | None:
    """The interface's 6-octet MAC (asked through the socket: its namespace), or None."""
    try:
        res = fcntl.ioctl(sock.fileno(), _SIOCGIFHWADDR, struct.pack("256s", iface.encode()))
    except OSError:
        return None
    mac = res[18:24]
    if mac == b"\0" * 6:
        return None
    return ":".join(f"{b:02x}" for b in mac)


def link_local_address(ifindex: int) -> tuple[str | None, str]:
    """The usable link-local address of interface `ifindex` in this thread's namespace,
    or None and why not (missing, tentative, DAD failed)."""
    try:
        with open("/proc/thread-self/net/if_inet6", encoding="ascii") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        return None, f"cannot read if_inet6: {exc.strerror}"
    why = "no link-local address"
    for line in lines:
        parts = line.split()
        if len(parts) < 6 or int(parts[1], 16) != ifindex or int(parts[3], 16) != 0x20:
            continue
        flags = int(parts[4], 16)
        addr = str(ipaddress.IPv6Address(bytes.fromhex(parts[0])))
        if flags & _IFA_F_DADFAILED:
            why = f"link-local {addr} failed duplicate address detection"
        elif flags & _IFA_F_TENTATIVE:
            why = f"link-local {addr} is tentative (duplicate address detection running)"
        else:
            return addr, ""
    return None, why
