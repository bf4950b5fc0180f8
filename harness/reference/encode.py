"""The daemon's encoders: the HA core's SendBindingAck as a packet (scapy layers), the
MLDv2 General Query the HA sends as querier for its mobile nodes, and the Neighbor
Solicitation of its Duplicate Address Detection (plain struct)."""

from __future__ import annotations

import ipaddress
import math
import struct

from scapy.layers.inet6 import IPv6, IPv6ExtHdrRouting, MIP6OptMsgAuth, MIP6OptReplayProtection
from scapy.packet import Packet, Raw

from harness.reference.ha_core import HAConfig, SendBindingAck
from harness.wire import auth, compact
from harness.wire.ipv6 import transport_checksum
from harness.wire.mobility import (
    BindingAck,
    IgmpGroupRecord,
    MIP6OptAltHATunnelAddress,
    MIP6OptBindingIdentifier,
    MIP6OptDNSUpdate,
    MIP6OptFlowIdentification,
    MIP6OptIPv4AddressAck,
    MIP6OptNATDetection,
    MldAddressRecord,
    multicast_state_options,
)
from harness.wire.numbers import MLDV2_REPORT, MHType


def binding_ack(action: SendBindingAck, config: HAConfig) -> Packet:
    """The BA as scapy layers (what binding_ack_bytes gives, byte for byte)."""
    options = _ba_options(action)
    key = config.keys.get(action.auth_spi) if action.auth_spi is not None else None
    if key is not None:  # RFC 4285 §5.1: last option
        options.append(MIP6OptMsgAuth(subtype=1, mspi=action.auth_spi, authdata=b"\x00" * 12))
    if action.udp4 is not None:  # RFC 5555 §4.2, §4.5: to the home address, in UDP/IPv4
        ip = IPv6(src=str(config.address), dst=str(action.hoa))
    else:
        ip = IPv6(src=str(config.address), dst=str(action.coa))
    if action.hoa != action.coa and action.udp4 is None:
        ip = ip / IPv6ExtHdrRouting(type=2, segleft=1, addresses=[str(action.hoa)])
    pkt = ip / BindingAck(
        status=action.status, seq=action.seq, mhtime=action.lifetime, options=options
    )
    return auth.sign(pkt, key) if key is not None else pkt


def binding_ack_bytes(action: SendBindingAck, config: HAConfig) -> bytes:
    """The BA on the wire, by the fast encoder (the daemon's path: no scapy packet built
    and parsed again to sign it, RFC 4285 §5.1)."""
    if not isinstance(action.coa, ipaddress.IPv6Address):
        return bytes(binding_ack(action, config))  # not on this path: an IPv4 care-of address
    options = [(raw[0], raw[2:]) for raw in map(bytes, _ba_options(action))]
    key = config.keys.get(action.auth_spi) if action.auth_spi is not None else None
    fixed = struct.pack("!BBHH", action.status, 0, action.seq, action.lifetime)
    return compact.encode_mobility_packet(
        src=config.address.packed,
        dst=action.coa.packed,
        mhtype=MHType.BA,
        fixed=fixed,
        options=options,
        rh2=action.hoa.packed if action.hoa != action.coa else None,
        mn_ha_key=(action.auth_spi, key)
        if key is not None and action.auth_spi is not None
        else None,
        config=config.wire,
    )


def _ba_options(action: SendBindingAck) -> list[Packet]:
    """The BA's options but the MN-HA authentication option, in their order."""
    options: list[Packet] = [
        MIP6OptBindingIdentifier(bid=b.bid, status=b.status, bid_pri=b.bid_pri) for b in action.bids
    ]
    for echo in action.multicast:
        cls = MldAddressRecord if echo.report_type == MLDV2_REPORT else IgmpGroupRecord
        records: list[Packet] = [
            cls(rtype=r.rtype, maddr=r.maddr, sources=list(r.sources)) for r in echo.records
        ]
        options += multicast_state_options(records, echo.report_type)
    for f in action.flows:
        subs = [Raw(f.suboptions)] if f.suboptions else []  # as the BU had them, padding too
        options.append(
            MIP6OptFlowIdentification(
                fid=f.fid, fid_pri=f.fid_pri, status=f.status, suboptions=subs
            )
        )
    if action.ipv4 is not None:
        options.append(
            MIP6OptIPv4AddressAck(
                status=action.ipv4.status,
                prefix_len=action.ipv4.prefix_len,
                address=str(action.ipv4.address),
            )
        )
    if action.dns is not None:
        options.append(
            MIP6OptDNSUpdate(
                status=action.dns.status, flags=int(action.dns.remove), mn_identity=action.dns.fqdn
            )
        )
    if action.data_plane is not None:
        options.append(MIP6OptAltHATunnelAddress(address=str(action.data_plane)))
    if action.replay_timestamp is not None:
        options.append(MIP6OptReplayProtection(timestamp=action.replay_timestamp))
    if action.udp4 is not None and (action.udp4.detection_option or action.udp4.nat):
        # RFC 5555 §4.2: in every BA to a BU in UDP; §3.2.2: the refresh time §4.3's
        # NATKATIMEOUT behind a NAT, all ones without (no keepalives needed); F when the
        # packets go in UDP though no NAT is in the path (the BU's F flag, accepted)
        refresh = NAT_KEEPALIVE if action.udp4.nat else NO_KEEPALIVE
        forced = action.udp4.forced and not action.udp4.nat
        options.append(MIP6OptNATDetection(flags=int(forced), refresh_time=refresh))
    return options


# --- MLDv2 General Query (RFC 3810 §5.1) ------------------------------------------------------

NAT_KEEPALIVE = 110  # seconds, RFC 5555 §4.3 NATKATIMEOUT
NO_KEEPALIVE = 0xFFFFFFFF  # RFC 5555 §3.2.2: no NAT was detected
ALL_NODES = ipaddress.IPv6Address("ff02::1")
ICMPV6_MLD_QUERY = 130
ROUTER_ALERT_MLD = bytes([5, 2, 0, 0])  # RFC 2711 Router Alert, value 0: MLD (RFC 3810 §5)
PADN_2 = bytes([1, 0])
DEFAULT_ROBUSTNESS = 2  # RFC 3810 §9.1


def _float_code(value: int, mant_bits: int, total_bits: int) -> int:
    """RFC 3810 §5.1.3 / §5.1.9: values below 2**(total_bits-1) as they are, larger ones as
    1 | exp | mant with value = (mant | 1 << mant_bits) << (exp + 3)."""
    if value < 1 << (total_bits - 1):
        return value
    exp_bits = total_bits - 1 - mant_bits
    for exp in range(1 << exp_bits):
        mant = (value >> (exp + 3)) - (1 << mant_bits)
        if 0 <= mant < 1 << mant_bits:
            return (1 << (total_bits - 1)) | (exp << mant_bits) | mant
    return (1 << total_bits) - 1  # the largest value the code can hold


def max_response_code(seconds: float) -> int:
    """Maximum Response Code (RFC 3810 §5.1.3) for a delay in seconds (milliseconds)."""
    return _float_code(max(0, round(seconds * 1000)), 12, 16)


def qqic(seconds: float) -> int:
    """Querier's Query Interval Code (RFC 3810 §5.1.9); whole seconds, at least 1."""
    return _float_code(max(1, math.ceil(seconds)), 4, 8)


def icmpv6_checksum(src: ipaddress.IPv6Address, dst: ipaddress.IPv6Address, msg: bytes) -> int:
    """RFC 4443 §2.3."""
    return transport_checksum(src, dst, 58, msg)


def igmp_general_query(
    src: ipaddress.IPv4Address, *, max_response: float, query_interval: float
) -> bytes:
    """A whole IPv4 packet: an IGMPv3 General Query (RFC 3376 §4.1: Group Address 0, no
    sources) from `src` to 224.0.0.1 with TTL 1 and the IP Router Alert option (§4)."""
    from harness.netproto import igmp
    from harness.netproto.mld import Timers
    from harness.wire.ipv4 import internet_checksum

    timers = Timers(query_interval=query_interval, query_response_interval=max_response)
    body = igmp.igmp3_query(None, [], timers)
    header = bytearray(
        struct.pack(
            "!BBHHHBBH4s4s",
            0x46,  # version 4, IHL 6: the Router Alert option's word
            0xC0,  # DSCP CS6, RFC 3376 §4 "Internetwork Control"
            24 + len(body),
            0,
            0,
            1,  # TTL 1
            2,  # IGMP
            0,
            src.packed,
            igmp.ALL_SYSTEMS.packed,
        )
        + igmp.ROUTER_ALERT
    )
    struct.pack_into("!H", header, 10, internet_checksum(bytes(header)))
    return bytes(header) + body


def mld_general_query(
    src: ipaddress.IPv6Address,
    *,
    max_response: float,
    query_interval: float,
    robustness: int = DEFAULT_ROBUSTNESS,
    router_alert: bool = True,
) -> bytes:
    """A whole IPv6 packet: an MLDv2 General Query (RFC 3810 §5.1: multicast address and
    source list empty, S = 0) from `src` (a link-local address, §5.1.14) to ff02::1 with
    hop limit 1 and a Hop-by-Hop Router Alert option (§5)."""
    body = bytearray(
        struct.pack(
            "!BBHHH16sBBH",
            ICMPV6_MLD_QUERY,
            0,
            0,
            max_response_code(max_response),
            0,
            bytes(16),
            robustness & 0x7 if robustness <= 7 else 0,  # Resv | S = 0 | QRV (§5.1.8)
            qqic(query_interval),
            0,
        )
    )
    struct.pack_into("!H", body, 2, icmpv6_checksum(src, ALL_NODES, bytes(body)))
    if router_alert:
        ext, nh = bytes([58, 0]) + ROUTER_ALERT_MLD + PADN_2, 0  # Hop-by-Hop, 8 octets
    else:
        ext, nh = b"", 58
    header = struct.pack(
        "!IHBB16s16s", 6 << 28, len(ext) + len(body), nh, 1, src.packed, ALL_NODES.packed
    )
    return header + ext + bytes(body)


# --- Duplicate Address Detection (RFC 4862 §5.4.2, RFC 6275 §10.3.1) --------------------------

ICMPV6_NS, ICMPV6_NA = 135, 136
UNSPECIFIED = ipaddress.IPv6Address("::")


def solicited_node(addr: ipaddress.IPv6Address) -> ipaddress.IPv6Address:
    """RFC 4291 §2.7.1: ff02::1:ff00:0/104 and the low 24 bits of `addr`."""
    return ipaddress.IPv6Address(b"\xff\x02" + bytes(9) + b"\x01\xff" + addr.packed[-3:])


def dad_neighbor_solicitation(target: ipaddress.IPv6Address) -> bytes:
    """A whole IPv6 packet: the Neighbor Solicitation of DAD for `target` (RFC 4862 §5.4.2:
    source ::, to the target's solicited-node group, hop limit 255, no Source Link-Layer
    Address option; RFC 4861 §4.3)."""
    dst = solicited_node(target)
    body = bytearray(struct.pack("!BBHI16s", ICMPV6_NS, 0, 0, 0, target.packed))
    struct.pack_into("!H", body, 2, icmpv6_checksum(UNSPECIFIED, dst, bytes(body)))
    header = struct.pack("!IHBB16s16s", 6 << 28, len(body), 58, 255, UNSPECIFIED.packed, dst.packed)
    return header + bytes(body)


def advertised_target(icmp: bytes) -> ipaddress.IPv6Address | None:
    """The Target Address of a Neighbor Advertisement (RFC 4861 §4.4), given from its ICMPv6
    header on (as a raw ICMPv6 socket delivers it); None for anything else."""
    if len(icmp) < 24 or icmp[0] != ICMPV6_NA or icmp[1] != 0:
        return None
    return ipaddress.IPv6Address(icmp[8:24])
