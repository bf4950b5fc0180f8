"""IGMP (RFC 1112, RFC 2236, RFC 3376) as the lab's proxy speaks it: message types, the
addresses, the IGMPv3 Query a querier sends, and the report reader (IGMPv3 records from
the project's one parser, harness.wire.compact; IGMPv1/v2 reports and leaves mapped onto
the equivalent v3 records as RFC 3376 §7.3.2 has a v3 router take them, like MLDv1 in
harness.netproto.mld). The timers are MLD's (`mld.Timers`), scaled the same way.

Sans-I/O: bytes in, values out.
"""

from __future__ import annotations

import ipaddress
import struct

from harness.netproto.mld import IS_EX, TO_IN, Record, Timers, records
from harness.wire.ipv4 import header_len, internet_checksum

Addr4 = ipaddress.IPv4Address

IGMP_QUERY = 0x11
IGMP1_REPORT = 0x12
IGMP2_REPORT = 0x16
IGMP2_LEAVE = 0x17
IGMP3_REPORT = 0x22
QUERY_LEN = 12  # an IGMPv3 Query without sources (RFC 3376 §7.1: shorter ones are v1/v2)

ALL_SYSTEMS = Addr4("224.0.0.1")
ALL_ROUTERS = Addr4("224.0.0.2")  # IGMPv2 Leave Group goes there
ALL_IGMPV3_ROUTERS = Addr4("224.0.0.22")  # IGMPv3 reports go there
LOCAL_CONTROL = ipaddress.IPv4Network("224.0.0.0/24")  # never forwarded (RFC 5771 §4)
# The IP Router Alert option (RFC 2113) every IGMPv3 message carries (RFC 3376 §4), as
# IP_OPTIONS takes it: type 148, length 4, value 0.
ROUTER_ALERT = bytes([0x94, 0x04, 0x00, 0x00])


def encode_code(value: int) -> int:
    """Max Resp Code (tenths of a second) or QQIC (seconds) in RFC 3376 §4.1.1/§4.1.7's
    form: the value itself below 128, else 1 exp(3) mant(4) for (mant | 0x10) << (exp + 3);
    values beyond the largest (31744) are clamped, others rounded down."""
    value = max(0, int(value))
    if value < 128:
        return value
    for exp in range(8):
        mant = (value >> (exp + 3)) - 0x10
        if mant < 0x10:
            return 0x80 | exp << 4 | mant
    return 0xFF


def decode_code(code: int) -> int:
    """The value of a Max Resp Code or QQIC (RFC 3376 §4.1.1, §4.1.7)."""
    if code < 128:
        return code
    return ((code & 0x0F) | 0x10) << (((code >> 4) & 0x07) + 3)


def igmp3_query(
    group: Addr4 | None,
    sources: list[Addr4],
    timers: Timers,
    max_resp: float | None = None,
) -> bytes:
    """An IGMPv3 Membership Query (RFC 3376 §4.1): General (group None), Group-Specific, or
    Group-and-Source-Specific with `sources`; checksum filled in."""
    resp = timers.query_response_interval if max_resp is None else max_resp
    body = struct.pack(
        "!BBH4sBBH",
        IGMP_QUERY,
        encode_code(round(resp * 10)),
        0,
        (group or Addr4(0)).packed,
        min(timers.robustness, 7),  # Resv 0, S 0, QRV
        encode_code(int(timers.query_interval)),
        len(sources),
    ) + b"".join(s.packed for s in sources)
    return body[:2] + struct.pack("!H", internet_checksum(body)) + body[4:]


def message_of(packet: bytes) -> bytes | None:
    """The IGMP message of an IPv4 packet (after its options), or None when it is none."""
    ihl = header_len(packet)
    if ihl == 0 or packet[9] != 2 or len(packet) < ihl + 8:
        return None
    total = struct.unpack_from("!H", packet, 2)[0]
    return packet[ihl : max(ihl, min(total, len(packet)))]


def parse_report(data: bytes) -> list[Record[Addr4]]:
    """IGMPv3 Membership Report, or an IGMPv1/v2 Report (IS_EX {}) or v2 Leave (TO_IN {})
    mapped onto the equivalent v3 record. A message whose checksum does not verify gives
    nothing (RFC 3376 §4.2.2); a v3 report whose declared counts overrun it gives the
    records before the overrun. Never raises."""
    if len(data) < 8 or internet_checksum(data) != 0:
        return []
    mtype = data[0]
    if mtype in (IGMP1_REPORT, IGMP2_REPORT, IGMP2_LEAVE):
        rtype = TO_IN if mtype == IGMP2_LEAVE else IS_EX
        return [Record(rtype, Addr4(data[4:8]), ())]
    if mtype != IGMP3_REPORT:
        return []
    return records(data, Addr4)


def routable(group: Addr4) -> bool:
    """A multicast group a router may forward: not the Local Network Control Block."""
    return group.is_multicast and group not in LOCAL_CONTROL
