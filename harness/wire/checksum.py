"""Upper-layer checksums of IPv6 packets (RFC 8200 §8.1), without scapy.

Shared by everything that forwards packets it read from a packet socket (the lab's
userspace multicast data path, the reference HA's tunnel): a local sender's packet that
crossed a veth with checksum offload carries only the pseudo-header sum until someone
completes it.
"""

from __future__ import annotations

import ipaddress
import struct

from harness.wire.compact import internet_checksum

# Where the checksum field sits in each upper layer a forwarder may have to complete.
_CHECKSUM_AT = {17: 6, 6: 16, 58: 2}  # UDP, TCP, ICMPv6
_EXTENSIONS = (0, 43, 60)  # Hop-by-Hop, Routing, Destination Options (RFC 8200 §4)


def transport_checksum(
    src: ipaddress.IPv6Address, dst: ipaddress.IPv6Address, nh: int, msg: bytes
) -> int:
    """The Internet checksum of an upper-layer message with the pseudo-header of RFC 8200
    §8.1 (the checksum field of `msg` must be zero)."""
    data = src.packed + dst.packed + struct.pack("!I3xB", len(msg), nh) + msg
    return internet_checksum(data)


def complete_checksum(packet: bytes) -> bytes:
    """`packet` (IPv6) with its UDP, TCP or ICMPv6 checksum computed in full.

    A packet a local sender handed over with checksum offload (a veth passes it on as it
    is) is seen by a packet socket with only the pseudo-header sum in the field; forwarded
    so, its receiver would drop it. Packets behind a Fragment header or an unknown header
    are returned as they are."""
    if len(packet) < 40 or packet[0] >> 4 != 6:
        return packet
    nh, pos = packet[6], 40
    while nh in _EXTENSIONS and pos + 2 <= len(packet):
        nh, pos = packet[pos], pos + 8 * (packet[pos + 1] + 1)
    at = _CHECKSUM_AT.get(nh)
    end = 40 + struct.unpack_from("!H", packet, 4)[0]
    if at is None or pos + at + 2 > min(end, len(packet)):
        return packet
    msg = bytearray(packet[pos:end])
    struct.pack_into("!H", msg, at, 0)
    src, dst = ipaddress.IPv6Address(packet[8:24]), ipaddress.IPv6Address(packet[24:40])
    csum = transport_checksum(src, dst, nh, bytes(msg))
    if nh == 17 and csum == 0:
        csum = 0xFFFF  # RFC 8200 §8.1: a UDP checksum of zero is sent as all ones
    struct.pack_into("!H", msg, at, csum)
    return packet[:pos] + bytes(msg) + packet[end:]
