"""RFC 6088 binary traffic selectors (§3.1 IPv4, §3.2 IPv6) read from bytes, and matched
against a packet (no I/O, no scapy): what a flow binding (RFC 6089 §4.2.1.4) selects.

A selector is a set of ranges, one per field whose flag is set (A..N for IPv4, A..P for
IPv6); a "start" alone is a range of one value, an "end" without its start is malformed
(RFC 6088 §3.1: "MUST NOT be included unless"). A packet matches when every present range
holds its field; a packet of the other IP version never matches. DS/TC compare the six DS
bits only (RFC 6088 §3.1 (K)), flow labels the low 20 bits (§3.2 (G) says 24, the IPv6
header has 20).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from harness.wire.numbers import TS_FORMAT_IPV4_BINARY, TS_FORMAT_IPV6_BINARY


class SelectorMalformed(ValueError):
    pass


# (start field, end field, octets) in wire order; the flag of field i is bit (width-1-i).
_V4 = (("src", 4), ("dst", 4), ("spi", 4), ("sport", 2), ("dport", 2), ("ds", 1), ("proto", 1))
_V6 = (
    ("src", 16),
    ("dst", 16),
    ("spi", 4),
    ("flow_label", 4),
    ("sport", 2),
    ("dport", 2),
    ("ds", 1),
    ("proto", 1),
)
_LAYOUT = {TS_FORMAT_IPV4_BINARY: _V4, TS_FORMAT_IPV6_BINARY: _V6}
_MASK = {"ds": 0xFC, "flow_label": 0xFFFFF}


@dataclass(frozen=True)
class Selector:
    version: int  # 4 or 6: the IP version of the packets it can match
    ranges: tuple[tuple[str, int, int], ...]  # (field, first, last), inclusive

    def matches(self, fields: PacketFields | None) -> bool:
        if fields is None or fields.version != self.version:
            return False
        for name, first, last in self.ranges:
            value = getattr(fields, name)
            if value is None or not first <= value <= last:
                return False
        return True

    def overlaps(self, other: Selector) -> bool:
        """Could one packet match both (RFC 6089 §4.2: FID-PRI decides then)?"""
        if self.version != other.version:
            return False
        mine = {n: (a, b) for n, a, b in self.ranges}
        for name, first, last in other.ranges:
            if name in mine and (last < mine[name][0] or mine[name][1] < first):
                return False
        return True


def supported(ts_format: int) -> bool:
    return ts_format in _LAYOUT


def parse(ts_format: int, data: bytes) -> Selector:
    """The selector of a Traffic Selector sub-option: `data` after its TS Format and
    Reserved octets. Unsupported formats raise KeyError; broken ones SelectorMalformed."""
    layout = _LAYOUT[ts_format]
    width = 2 * len(layout)
    if len(data) < 4:
        raise SelectorMalformed("no flags word")
    flags = struct.unpack_from("!I", data)[0] >> (32 - width)
    pos = 4
    ranges = []
    for i, (name, size) in enumerate(layout):
        has_start = bool(flags & (1 << (width - 1 - 2 * i)))
        has_end = bool(flags & (1 << (width - 2 - 2 * i)))
        if has_end and not has_start:
            raise SelectorMalformed(f"end {name} without its start")
        values = []
        for present in (has_start, has_end):
            if not present:
                continue
            if pos + size > len(data):
                raise SelectorMalformed(f"{name} past the end of the selector")
            values.append(int.from_bytes(data[pos : pos + size], "big") & _MASK.get(name, -1))
            pos += size
        if values:
            first, last = values[0], values[-1]
            if last < first:
                raise SelectorMalformed(f"{name} range ends before it starts")
            ranges.append((name, first, last))
    return Selector(4 if ts_format == TS_FORMAT_IPV4_BINARY else 6, tuple(ranges))


@dataclass(frozen=True)
class PacketFields:
    version: int
    src: int
    dst: int
    ds: int
    proto: int  # the upper-layer protocol (IPv6: after the extension headers)
    flow_label: int | None = None
    sport: int | None = None
    dport: int | None = None
    spi: int | None = None


_EXTENSIONS = {0, 43, 60}  # hop-by-hop, routing, destination options (RFC 8200 §4)
FRAGMENT, ESP, TCP, UDP = 44, 50, 6, 17


def packet_fields(packet: bytes) -> PacketFields | None:
    """The fields a selector looks at, from an IPv4 or IPv6 packet; None if unreadable."""
    if not packet:
        return None
    version = packet[0] >> 4
    if version == 6 and len(packet) >= 40:
        first = struct.unpack_from("!I", packet)[0]
        nh, pos = packet[6], 40
        while nh in _EXTENSIONS and pos + 2 <= len(packet):
            nh, pos = packet[pos], pos + 8 * (packet[pos + 1] + 1)
        if nh == FRAGMENT and pos + 8 <= len(packet):
            offset = struct.unpack_from("!H", packet, pos + 2)[0] >> 3
            nh, pos = packet[pos], pos + 8
            if offset:  # RFC 6089 §5.3.6: later fragments carry no upper-layer header
                pos = len(packet)
        ports, spi = _upper(nh, packet, pos)
        return PacketFields(
            6,
            int.from_bytes(packet[8:24], "big"),
            int.from_bytes(packet[24:40], "big"),
            (first >> 20) & 0xFC,
            nh,
            first & 0xFFFFF,
            *ports,
            spi,
        )
    if version == 4 and len(packet) >= 20:
        ihl = 4 * (packet[0] & 0xF)
        later = struct.unpack_from("!H", packet, 6)[0] & 0x1FFF
        ports, spi = _upper(packet[9], packet, len(packet) if later else ihl)
        return PacketFields(
            4,
            int.from_bytes(packet[12:16], "big"),
            int.from_bytes(packet[16:20], "big"),
            packet[1] & 0xFC,
            packet[9],
            None,
            *ports,
            spi,
        )
    return None


def _upper(proto: int, packet: bytes, pos: int) -> tuple[tuple[int | None, int | None], int | None]:
    if proto in (TCP, UDP) and pos + 4 <= len(packet):
        sport, dport = struct.unpack_from("!HH", packet, pos)
        return (sport, dport), None
    if proto == ESP and pos + 4 <= len(packet):
        return (None, None), struct.unpack_from("!I", packet, pos)[0]
    return (None, None), None
