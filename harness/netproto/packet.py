"""Packet sockets (AF_PACKET) for forwarders that read frames and send them on: the lab's
userspace multicast data path and the reference HA's multicast tunnel.

A local sender's packet that crossed a veth with checksum offload reaches a packet socket
with only the pseudo-header sum in its checksum field; PACKET_AUXDATA says so, and the
forwarder must complete it (harness/wire/ipv6.py, ipv4.py) before sending it on.
"""

from __future__ import annotations

import socket
import struct

# linux/if_ether.h, linux/if_packet.h
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
SOL_PACKET, PACKET_AUXDATA = 263, 8
TP_STATUS_CSUMNOTREADY = 1 << 3  # the checksum is left to the (virtual) hardware


def open_packet_socket(ifname: str, ethertype: int = ETH_P_IPV6) -> socket.socket:
    """A non-blocking packet socket bound to one interface for `ethertype`, with
    PACKET_AUXDATA on. Open it in the interface's namespace; OSError when it cannot be."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ethertype))
    try:
        sock.bind((ifname, ethertype))
        sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def checksum_left_to_offload(ancdata: list[tuple[int, int, bytes]]) -> bool:
    """Does PACKET_AUXDATA (struct tpacket_auxdata, tp_status first) say the packet's
    checksum was left to the (virtual) hardware?"""
    for level, kind, data in ancdata:
        if level == SOL_PACKET and kind == PACKET_AUXDATA and len(data) >= 4:
            return bool(struct.unpack_from("=I", data)[0] & TP_STATUS_CSUMNOTREADY)
    return False
