"""ICMP and ICMPv6 echo from inside a lab node: is that address reachable from there now?"""

from __future__ import annotations

import contextlib
import ipaddress
import random
import select
import socket
import struct
import time
from typing import Any

from harness.lab import netns
from harness.lab.nodes import Nodes, Unreachable
from harness.netproto import sockopts

IPv6 = ipaddress.IPv6Address


def ping(
    nodes: Nodes,
    node: str,
    dst: object,
    *,
    timeout: float = 2.0,
    ifname: str | None = None,
    src: object | None = None,
) -> float:
    """ICMP(v6) echo from node to dst; the round-trip time, or Unreachable."""
    ip = ipaddress.ip_address(str(dst))
    dest: tuple[Any, ...] = (str(ip), 0)
    if isinstance(ip, IPv6) and ip.scope_id:  # fe80::1%mn0: the scope is node's mn0
        scope = ip.scope_id
        index = int(scope) if scope.isdigit() else nodes.ifindex(node, scope)
        dest = (str(ip).split("%")[0], 0, 0, index)
    if ip.version == 6:
        sock = netns.socket_in(
            nodes.ns(node), socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6
        )
        # Only Echo Replies (type 129) get through (struct icmp6_filter: set bit = block).
        sock.setsockopt(socket.IPPROTO_ICMPV6, 1, sockopts.icmp6_filter({129}))
    else:
        sock = netns.socket_in(nodes.ns(node), socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    with sock:
        if ifname:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
        if src is not None:
            sock.bind((str(src), 0))
        from harness.wire.compact import internet_checksum  # late: scapy-free path

        ident, deadline = random.randrange(1, 0xFFFF), time.monotonic() + timeout
        seq = 0
        while time.monotonic() < deadline:
            seq += 1
            sent = time.monotonic()
            if ip.version == 6:
                pkt = struct.pack("!BBHHH", 128, 0, 0, ident, seq) + b"dmmconf"
            else:
                body = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + b"dmmconf"
                pkt = body[:2] + struct.pack("!H", internet_checksum(body)) + body[4:]
            with contextlib.suppress(OSError):  # no route yet / link down: retry
                sock.sendto(pkt, dest)
            retry = min(sent + 0.2, deadline)
            while (left := retry - time.monotonic()) > 0:
                if not select.select([sock], [], [], left)[0]:
                    break
                data, peer = sock.recvfrom(2048)
                if ip.version == 4:
                    data = data[(data[0] & 0x0F) * 4 :]
                    expect = 0
                else:
                    expect = 129
                if (
                    len(data) >= 8
                    and data[0] == expect
                    and struct.unpack_from("!H", data, 4)[0] == ident
                    and ipaddress.ip_address(peer[0].split("%")[0]).packed == ip.packed
                ):
                    return time.monotonic() - sent
    raise Unreachable(f"{node} got no echo reply from {ip} within {timeout:.1f} s")
