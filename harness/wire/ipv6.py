"""The one view of an IPv6 packet for the whole project (no scapy, plain bytes).

`parse(raw)` walks the extension headers (RFC 8200 §4) once and tells where the upper
layer starts, the Home Address option (RFC 6275 §6.3) and the type 2 routing header's
address (RFC 6275 §6.4) when present; the result opens an IPv6-in-IPv6 tunnel (`inner`)
and checks or completes the upper-layer checksum (RFC 8200 §8.1). The judge, the lab's
forwarder, the reference daemons, the suites and the benchmark all read packets through
it, so a bug in it shows everywhere or nowhere.

Lenient by default (a packet it cannot follow gives None); `strict=True` raises
Malformed with what is wrong, for the judge of RFC 6275 §9.2.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from harness.wire.errors import Malformed

HEADER_LEN = 40
HOPOPTS, ROUTING, FRAGMENT, DSTOPTS = 0, 43, 44, 60
IPV6_IN_IPV6, TCP, UDP, ICMPV6, MOBILITY, NO_NEXT = 41, 6, 17, 58, 135, 59
HOME_ADDRESS_OPTION = 0xC9  # RFC 6275 §6.3
PAD1, PADN = 0, 1
ROUTER_ALERT = 5  # RFC 2711
ROUTING_TYPE_2 = 2  # RFC 6275 §6.4

# Where the checksum field sits in each upper layer a forwarder may have to complete.
_CHECKSUM_AT = {UDP: 6, TCP: 16, ICMPV6: 2}


@dataclass(frozen=True)
class Packet6:
    """An IPv6 packet (cut to its Payload Length) and where its parts are."""

    raw: bytes
    upper: int  # the upper-layer protocol after the extension headers
    offset: int  # where the upper-layer header starts
    hoa: bytes | None  # the Home Address option's address
    rh2: bytes | None  # the type 2 routing header's address
    fragmented: bool = False  # a Fragment header came first: the upper layer is partial

    @property
    def src(self) -> ipaddress.IPv6Address:
        return ipaddress.IPv6Address(self.raw[8:24])

    @property
    def dst(self) -> ipaddress.IPv6Address:
        return ipaddress.IPv6Address(self.raw[24:40])

    @property
    def hop_limit(self) -> int:
        return self.raw[7]

    @property
    def payload(self) -> bytes:
        """The upper-layer header and its data."""
        return self.raw[self.offset :]

    def hop_by_hop_options(self) -> list[tuple[int, bytes]]:
        """(type, data) of each option of a Hop-by-Hop Options header that comes first
        (RFC 8200 §4.3; Pad1 and PadN left out), [] when there is none."""
        if self.raw[6] != HOPOPTS:
            return []
        end = HEADER_LEN + 8 * (self.raw[HEADER_LEN + 1] + 1)
        return [(t, d) for t, d in _tlvs(self.raw[HEADER_LEN:end]) if t not in (PAD1, PADN)]

    def inner(self) -> Packet6 | None:
        """The tunnelled packet of an IPv6-in-IPv6 packet (RFC 2473), else None."""
        return parse(self.payload) if self.upper == IPV6_IN_IPV6 else None

    def ports(self) -> tuple[int, int] | None:
        if self.upper in (TCP, UDP) and len(self.payload) >= 4 and not self.fragmented:
            sport, dport = struct.unpack_from("!HH", self.payload)
            return int(sport), int(dport)
        return None

    def pseudo_header(self, length: int | None = None) -> bytes:
        """The RFC 8200 §8.1 pseudo-header (the Home Address and the type 2 routing
        header's address stand for source and destination, RFC 6275 §6.1.7)."""
        src = self.hoa or self.raw[8:24]
        dst = self.rh2 or self.raw[24:40]
        n = len(self.payload) if length is None else length
        return src + dst + struct.pack("!I3xB", n, self.upper)

    def transport_checksum_ok(self) -> bool:
        """The UDP, TCP or ICMPv6 checksum verifies, as the receiving kernel checks it
        (True for other upper layers and for fragments, which only reassembly can check)."""
        if self.upper not in _CHECKSUM_AT or self.fragmented:
            return True
        return internet_checksum(self.pseudo_header() + self.payload) == 0

    def with_checksum_completed(self) -> bytes:
        """The packet with its UDP, TCP or ICMPv6 checksum computed in full.

        A local sender's packet that crossed a veth with checksum offload carries only the
        pseudo-header sum; forwarded so, its receiver would drop it."""
        at = _CHECKSUM_AT.get(self.upper)
        if at is None or self.fragmented or self.offset + at + 2 > len(self.raw):
            return self.raw
        msg = bytearray(self.payload)
        struct.pack_into("!H", msg, at, 0)
        csum = internet_checksum(self.pseudo_header(len(msg)) + bytes(msg))
        if self.upper == UDP and csum == 0:
            csum = 0xFFFF  # RFC 8200 §8.1: a UDP checksum of zero is sent as all ones
        struct.pack_into("!H", msg, at, csum)
        return self.raw[: self.offset] + bytes(msg)


def complete_checksum(raw: bytes) -> bytes:
    """`raw` with its upper-layer checksum completed (as it is when it is no IPv6 packet)."""
    pkt = parse(raw)
    return raw if pkt is None else pkt.with_checksum_completed()


def transport_checksum(
    src: ipaddress.IPv6Address, dst: ipaddress.IPv6Address, nh: int, msg: bytes
) -> int:
    """The checksum of an upper-layer message with the RFC 8200 §8.1 pseudo-header (the
    checksum field of `msg` must be zero)."""
    return internet_checksum(src.packed + dst.packed + struct.pack("!I3xB", len(msg), nh) + msg)


def internet_checksum(data: bytes) -> int:
    """RFC 1071's one's complement sum, complemented. The sum of 16-bit words with
    end-around carry is the data as one big number modulo 0xFFFF (2**16 = 1 mod 0xFFFF,
    RFC 1071 §2(B)), except that it is 0xFFFF, not 0, for data that is not all zero."""
    if len(data) % 2:
        data += b"\0"
    number = int.from_bytes(data, "big")
    total = number % 0xFFFF or (0xFFFF if number else 0)
    return ~total & 0xFFFF


def _fail(strict: bool, why: str) -> None:
    if strict:
        raise Malformed(why)


def _tlvs(ext: bytes) -> list[tuple[int, bytes]]:
    """The options of a Hop-by-Hop or Destination Options header, as far as they hold."""
    out, pos = [], 2
    while pos < len(ext):
        if ext[pos] == PAD1:
            out.append((PAD1, b""))
            pos += 1
            continue
        if pos + 2 > len(ext) or pos + 2 + ext[pos + 1] > len(ext):
            break
        out.append((ext[pos], ext[pos + 2 : pos + 2 + ext[pos + 1]]))
        pos += 2 + ext[pos + 1]
    return out


def _home_address(ext: bytes, strict: bool) -> bytes | None:
    """The Home Address option in a Destination Options header (TLVs, RFC 8200 §4.2)."""
    pos = 2
    while pos < len(ext):
        otype = ext[pos]
        if otype == PAD1:
            pos += 1
            continue
        if pos + 2 > len(ext):
            _fail(strict, "destination option truncated")
            return None
        olen = ext[pos + 1]
        if pos + 2 + olen > len(ext):
            _fail(strict, "destination option runs past its header")
            return None
        if otype == HOME_ADDRESS_OPTION:
            if olen != 16:
                _fail(strict, f"Home Address option length {olen}, not 16")
                return None
            return ext[pos + 2 : pos + 18]
        pos += 2 + olen
    return None


def parse(raw: bytes, strict: bool = False) -> Packet6 | None:
    """`raw` as an IPv6 packet; None (or Malformed when strict) when it is not one or its
    headers run past the bytes. Stops at the first header that is not Hop-by-Hop,
    Routing, Destination Options or Fragment: that is the upper layer."""
    if len(raw) < HEADER_LEN:
        _fail(strict, f"IPv6 header truncated: {len(raw)} octets")
        return None
    if raw[0] >> 4 != 6:
        _fail(strict, f"IP version {raw[0] >> 4}, not 6")
        return None
    plen = struct.unpack_from("!H", raw, 4)[0]
    if HEADER_LEN + plen > len(raw):
        _fail(strict, f"IPv6 Payload Length {plen} runs past the {len(raw)} octets captured")
        if not strict:
            plen = len(raw) - HEADER_LEN  # a capture cut short: read what there is
    raw = raw[: HEADER_LEN + plen]
    nh, pos = raw[6], HEADER_LEN
    hoa = rh2 = None
    while nh in (HOPOPTS, ROUTING, DSTOPTS, FRAGMENT):
        if pos + 8 > len(raw):
            _fail(strict, "extension header truncated")
            return None
        hlen = 8 if nh == FRAGMENT else 8 * (raw[pos + 1] + 1)
        if pos + hlen > len(raw):
            _fail(strict, "extension header runs past the packet")
            return None
        ext = raw[pos : pos + hlen]
        if nh == DSTOPTS:
            hoa = _home_address(ext, strict) or hoa
        elif nh == ROUTING and ext[2] == ROUTING_TYPE_2 and hlen == 24:
            rh2 = ext[8:24]
        elif nh == FRAGMENT:
            return Packet6(raw, ext[0], pos + hlen, hoa, rh2, fragmented=True)
        nh, pos = ext[0], pos + hlen
    return Packet6(raw, nh, pos, hoa, rh2)
