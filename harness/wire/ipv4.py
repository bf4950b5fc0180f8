"""What a multicast forwarder needs of an IPv4 packet (no scapy, plain bytes): the header's
length and checksum (RFC 791 §3.1), the TTL decremented with the checksum made right again
(RFC 1812 §5.3.1), the UDP or TCP checksum a local sender left to offload completed with the
IPv4 pseudo-header (RFC 768, RFC 9293 §3.1), and the Ethernet address of a group (RFC 1112
§6.4). The lab's IGMP proxy forwards with these; harness.wire.ipv6 is IPv6's counterpart.
"""

from __future__ import annotations

import ipaddress
import struct

from harness.wire.ipv6 import internet_checksum

__all__ = [
    "complete_checksum",
    "decrement_ttl",
    "fragmented",
    "header_checksum_ok",
    "header_len",
    "internet_checksum",
    "multicast_mac",
    "transport_checksum_ok",
]

MIN_HEADER = 20
TCP, UDP = 6, 17
_CHECKSUM_AT = {UDP: 6, TCP: 16}  # where the checksum sits in each upper layer


def header_len(raw: bytes) -> int:
    """The header's length in octets (IHL), or 0 when `raw` is no IPv4 packet."""
    if len(raw) < MIN_HEADER or raw[0] >> 4 != 4:
        return 0
    ihl = (raw[0] & 0x0F) * 4
    return ihl if MIN_HEADER <= ihl <= len(raw) else 0


def _with_header_checksum(raw: bytes, ihl: int) -> bytes:
    header = bytearray(raw[:ihl])
    header[10:12] = b"\0\0"
    struct.pack_into("!H", header, 10, internet_checksum(bytes(header)))
    return bytes(header) + raw[ihl:]


def header_checksum_ok(raw: bytes) -> bool:
    ihl = header_len(raw)
    return ihl > 0 and internet_checksum(raw[:ihl]) == 0


def decrement_ttl(raw: bytes) -> bytes:
    """`raw` with its TTL one less and its header checksum recomputed."""
    ihl = header_len(raw)
    if ihl == 0 or raw[8] == 0:
        return raw
    return _with_header_checksum(raw[:8] + bytes([raw[8] - 1]) + raw[9:], ihl)


def fragmented(raw: bytes) -> bool:
    """A fragment (More Fragments set or a non-zero offset): only reassembly sees its
    whole upper layer."""
    return bool(struct.unpack_from("!H", raw, 6)[0] & 0x3FFF)


def _upper(raw: bytes) -> tuple[int, bytes] | None:
    """(offset, upper-layer message) of an unfragmented UDP or TCP packet, else None."""
    ihl = header_len(raw)
    if ihl == 0 or raw[9] not in _CHECKSUM_AT or fragmented(raw):
        return None
    total = struct.unpack_from("!H", raw, 2)[0]
    msg = raw[ihl : min(total, len(raw))]
    if len(msg) < _CHECKSUM_AT[raw[9]] + 2:
        return None
    return ihl, msg


def _pseudo_header(raw: bytes, length: int) -> bytes:
    return raw[12:20] + struct.pack("!xBH", raw[9], length)


def transport_checksum_ok(raw: bytes) -> bool:
    """The UDP or TCP checksum verifies as the receiver checks it (True for other upper
    layers, fragments, and a UDP checksum of zero, which means none, RFC 768)."""
    upper = _upper(raw)
    if upper is None:
        return True
    _, msg = upper
    if raw[9] == UDP and msg[6:8] == b"\0\0":
        return True
    return internet_checksum(_pseudo_header(raw, len(msg)) + msg) == 0


def complete_checksum(raw: bytes) -> bytes:
    """`raw` with its UDP or TCP checksum computed in full (as it is for anything else).

    A local sender's packet that crossed a veth with checksum offload carries only the
    pseudo-header sum (PACKET_AUXDATA says TP_STATUS_CSUMNOTREADY); forwarded so, its
    receiver would drop it."""
    upper = _upper(raw)
    if upper is None:
        return raw
    ihl, msg = upper
    at = _CHECKSUM_AT[raw[9]]
    body = bytearray(msg)
    struct.pack_into("!H", body, at, 0)
    csum = internet_checksum(_pseudo_header(raw, len(body)) + bytes(body))
    if raw[9] == UDP and csum == 0:
        csum = 0xFFFF  # RFC 768: a computed zero is sent as all ones
    struct.pack_into("!H", body, at, csum)
    return raw[:ihl] + bytes(body) + raw[ihl + len(msg) :]


def multicast_mac(group: ipaddress.IPv4Address | bytes) -> bytes:
    """The Ethernet destination of an IPv4 group: 01:00:5e and its low 23 bits."""
    raw = group.packed if isinstance(group, ipaddress.IPv4Address) else group
    return b"\x01\x00\x5e" + bytes([raw[1] & 0x7F]) + raw[2:4]


_THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")


def valid_home_address(addr: ipaddress.IPv4Address) -> bool:
    """RFC 5555 §4.5 "a valid unicast IPv4 address": not multicast, reserved (240/4, the
    limited broadcast included), loopback, link-local or "this network" (0/8)."""
    return not (
        addr.is_multicast
        or addr.is_reserved
        or addr.is_loopback
        or addr.is_link_local
        or addr in _THIS_NETWORK
    )
