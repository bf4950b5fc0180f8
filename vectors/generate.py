"""Writes vectors/golden.json and vectors/malformed.json.

Each vector is declared here by hand: how to build it and what a reader must find in
it (golden), or which defect it carries and what a conformant receiver does (malformed,
RFC 6275 §9.2 and the option rules). The expectations are written out, not read back
from our own decoder, so the vector tests can catch the codec.

Run: python -m vectors.generate   (the test suite checks the files are up to date)
"""

from __future__ import annotations

import ipaddress
import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scapy.layers.inet6 import (
    HAO,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrRouting,
    MIP6OptMNID,
    MIP6OptMsgAuth,
    MIP6OptReplayProtection,
)
from scapy.packet import Packet

from harness.wire import compact
from harness.wire.mobility import (
    BindingAck,
    BindingError,
    BindingUpdate,
    FIDSubOptBindingReference,
    FIDSubOptTrafficSelector,
    IgmpGroupRecord,
    IPv4BinaryTrafficSelector,
    IPv6BinaryTrafficSelector,
    MIP6OptAltHATunnelAddress,
    MIP6OptBindingIdentifier,
    MIP6OptDNSUpdate,
    MIP6OptExperimental,
    MIP6OptFlowIdentification,
    MIP6OptFlowSummary,
    MIP6OptIPv4AddressAck,
    MIP6OptIPv4CareOfAddress,
    MIP6OptIPv4HomeAddress,
    MIP6OptMulticastState,
    MIP6OptNATDetection,
    MldAddressRecord,
)

HERE = Path(__file__).parent
MN_COA, MN_HOA, HA = "2001:db8:2::10", "2001:db8:1::10", "2001:db8:1::1"
FQDN = b"\x02mn\x07example\x03com\x00"


def bu(*options: Packet, **fields: Any) -> Packet:
    return (
        IPv6(src=MN_COA, dst=HA)
        / IPv6ExtHdrDestOpt(options=[HAO(hoa=MN_HOA)])
        / BindingUpdate(seq=fields.pop("seq", 7), options=list(options), **fields)
    )


def ba(*options: Packet, **fields: Any) -> Packet:
    return (
        IPv6(src=HA, dst=MN_COA)
        / IPv6ExtHdrRouting(type=2, segleft=1, addresses=[MN_HOA])
        / BindingAck(seq=fields.pop("seq", 7), options=list(options), **fields)
    )


MLD_STATE = MIP6OptMulticastState(
    records=[
        MldAddressRecord(rtype=1, maddr="ff3e::8000:1", sources=["2001:db8:100::1"]),
        MldAddressRecord(rtype=2, maddr="ff0e::1234", sources=[], auxdata=b"\x00\x00\x00\x01"),
    ]
)
IGMP_STATE = MIP6OptMulticastState(
    report_type=0x22,
    records=[IgmpGroupRecord(rtype=1, maddr="232.1.1.1", sources=["198.51.100.7"])],
)
# Two groups, so that a record of unknown type in the first leaves one to install.
IGMP_TWO_GROUPS = MIP6OptMulticastState(
    report_type=0x22,
    records=[
        IgmpGroupRecord(rtype=1, maddr="232.1.1.1", sources=["198.51.100.7"]),
        IgmpGroupRecord(rtype=2, maddr="239.1.2.3", sources=[]),
    ],
)

# (name, description, source, packet, expected fields of the MH and of each option in order)
GOLDEN: list[tuple[str, str, str, Callable[[], Packet], dict[str, Any]]] = [
    (
        "bu-registration-multicast-state-mld",
        "Registration BU carrying a Multicast State option with an SSM INCLUDE record and "
        "an ASM EXCLUDE record with one word of aux data",
        "draft §4.1, RFC 3810 §5.2",
        lambda: bu(MLD_STATE.copy()),
        {
            "mh": {"mhtype": 5, "seq": 7, "flags": 0x300, "mhtime": 3},
            "options": [
                {
                    "otype": 18,
                    "olen": 68,
                    "report_type": 143,
                    "nrecords": 2,
                    "records": [
                        {
                            "rtype": 1,
                            "auxlen": 0,
                            "nsrc": 1,
                            "maddr": "ff3e::8000:1",
                            "sources": ["2001:db8:100::1"],
                        },
                        {
                            "rtype": 2,
                            "auxlen": 1,
                            "nsrc": 0,
                            "maddr": "ff0e::1234",
                            "sources": [],
                            "auxdata": "00000001",
                        },
                    ],
                }
            ],
        },
    ),
    (
        "bu-registration-multicast-state-igmp",
        "Dual-stack BU: IGMPv3 form of the Multicast State option, IPv4 HoA and CoA",
        "draft §8, RFC 3376 §4.2, RFC 5555 §3.1",
        lambda: bu(
            IGMP_STATE.copy(),
            MIP6OptIPv4HomeAddress(prefix_len=32, address="0.0.0.0"),
            MIP6OptIPv4CareOfAddress(address="192.0.2.7"),
        ),
        {
            "mh": {"mhtype": 5},
            "options": [
                {
                    "otype": 18,
                    "olen": 20,
                    "report_type": 0x22,
                    "nrecords": 1,
                    "records": [
                        {"rtype": 1, "nsrc": 1, "maddr": "232.1.1.1", "sources": ["198.51.100.7"]}
                    ],
                },
                {"otype": 29, "olen": 6, "prefix_len": 32, "flags": 0, "address": "0.0.0.0"},
                {"otype": 32, "olen": 6, "address": "192.0.2.7"},
            ],
        },
    ),
    (
        "bu-mcoa-bids-and-flow-binding",
        "BU registering two care-of addresses with BIDs and BID-PRIs, and a flow binding "
        "with a binding reference and an IPv6 traffic selector",
        "RFC 5648 §4.3, RFC 6089 §4.1, §4.2, RFC 6088 §3.2",
        lambda: bu(
            MIP6OptBindingIdentifier(bid=1, bid_pri=1, coa=MN_COA),
            MIP6OptBindingIdentifier(bid=2, bid_pri=2, coa="2001:db8:3::10"),
            MIP6OptFlowIdentification(
                fid=9,
                fid_pri=1,
                suboptions=[
                    FIDSubOptTrafficSelector(
                        selector=[
                            IPv6BinaryTrafficSelector(
                                start_src="2001:db8:cafe::1", start_dport=5004, end_dport=5005
                            )
                        ]
                    ),
                    FIDSubOptBindingReference(bids=[2]),
                ],
            ),
            MIP6OptFlowSummary(fids=[9]),
        ),
        {
            "mh": {"mhtype": 5},
            "options": [
                {
                    "otype": 35,
                    "olen": 20,
                    "bid": 1,
                    "status": 0,
                    "flags": 0,
                    "bid_pri": 1,
                    "coa": MN_COA,
                },
                {"otype": 35, "olen": 20, "bid": 2, "bid_pri": 2, "coa": "2001:db8:3::10"},
                {"otype": 45, "fid": 9, "fid_pri": 1, "status": 0},
                {"otype": 44, "olen": 2, "fids": [9]},
            ],
        },
    ),
    (
        "bu-dns-update-and-auth",
        "Registration BU asking the HA to update DNS (R clear), with MN identifier, replay "
        "protection and an MN-HA authentication option last",
        "RFC 5026 §8.1, RFC 4283, RFC 4285 §5-6",
        lambda: bu(
            MIP6OptDNSUpdate(mn_identity=FQDN),
            MIP6OptMNID(id=b"mn@example.com"),
            MIP6OptReplayProtection(timestamp=0xE7A1B2C300000000),
            MIP6OptMsgAuth(subtype=1, mspi=0x100, authdata=b"\xaa" * 12),
        ),
        {
            "mh": {"mhtype": 5},
            "options": [
                {
                    "otype": 17,
                    "olen": 2 + len(FQDN),
                    "status": 0,
                    "flags": 0,
                    "mn_identity": FQDN.hex(),
                },
                {"otype": 8, "subtype": 1, "id": b"mn@example.com".hex()},
                {"otype": 10, "olen": 8, "timestamp": 0xE7A1B2C300000000},
                {"otype": 9, "olen": 17, "subtype": 1, "mspi": 0x100, "authdata": "aa" * 12},
            ],
        },
    ),
    (
        "bu-dns-removal",
        "BU asking the HA to remove the DNS entry of an old address (R set)",
        "draft §3, RFC 5026 §8.1",
        lambda: bu(MIP6OptDNSUpdate(flags=1, mn_identity=FQDN)),
        {"mh": {"mhtype": 5}, "options": [{"otype": 17, "flags": 1}]},
    ),
    (
        "ba-accepted-echo-and-data-plane",
        "BA accepting a registration: BID status, echoed Multicast State, the data-plane "
        "address in an Alternate HA Tunnel Address option, DNS Update status",
        "draft §4.1, §9; draft-perkins-mext-hatunaddr-02 §2; RFC 5026 §8.1",
        lambda: ba(
            MIP6OptBindingIdentifier(bid=1, status=0),
            MLD_STATE.copy(),
            MIP6OptAltHATunnelAddress(address="2001:db8:1::2"),
            MIP6OptDNSUpdate(status=0, mn_identity=FQDN),
        ),
        {
            "mh": {"mhtype": 6, "status": 0, "seq": 7},
            "options": [
                {"otype": 35, "olen": 4, "bid": 1, "status": 0},
                {"otype": 18, "report_type": 143, "nrecords": 2},
                {"otype": 254, "olen": 16, "address": "2001:db8:1::2"},
                {"otype": 17, "status": 0},
            ],
        },
    ),
    (
        "ba-dual-stack",
        "BA for a dual-stack registration: IPv4 Address Acknowledgement and NAT Detection",
        "RFC 5555 §3.2",
        lambda: ba(
            MIP6OptIPv4AddressAck(status=0, prefix_len=32, address="10.1.0.5"),
            MIP6OptNATDetection(flags=1, refresh_time=110),
        ),
        {
            "mh": {"mhtype": 6},
            "options": [
                {"otype": 30, "olen": 6, "status": 0, "prefix_len": 32, "address": "10.1.0.5"},
                {"otype": 31, "olen": 6, "flags": 1, "refresh_time": 110},
            ],
        },
    ),
    (
        "ba-flow-binding-status",
        "BA reporting a flow binding refused for an unknown BID",
        "RFC 6089 §4.2",
        lambda: ba(MIP6OptFlowIdentification(fid=9, fid_pri=1, status=131)),
        {"mh": {"mhtype": 6}, "options": [{"otype": 45, "fid": 9, "status": 131}]},
    ),
    (
        "bu-experimental-empty",
        "A plain RFC 5096 Experimental option with no data (type 18 shared with the "
        "Multicast State default: its body is not a report, so it stays Experimental)",
        "RFC 5096 §4",
        lambda: bu(MIP6OptExperimental(data=b"")),
        {"mh": {"mhtype": 5}, "options": [{"otype": 18, "olen": 0, "data": ""}]},
    ),
    (
        "be-unknown-binding",
        "Binding Error, status 1, naming the home address",
        "RFC 6275 §6.1.9",
        lambda: IPv6(src=HA, dst=MN_COA) / BindingError(status=1, hoa=MN_HOA),
        {"mh": {"mhtype": 7, "status": 1, "hoa": MN_HOA}, "options": []},
    ),
]

# Option bytes written out by hand from the RFC figures, checked against our encoder.
HAND_OPTIONS: list[tuple[str, str, str, Callable[[], Packet]]] = [
    (
        "BID, IPv6 CoA, H set, BID-PRI 3",
        "RFC 5648 §4.3 Fig. 5; RFC 6089 §4.1",
        "2314 0001 00 83 20010db8000200000000000000000010",
        lambda: MIP6OptBindingIdentifier(bid=1, status=0, flags=1, bid_pri=3, coa=MN_COA),
    ),
    (
        "BID, IPv4 CoA",
        "RFC 5648 §4.3",
        "2308 0002 00 00 c0000201",
        lambda: MIP6OptBindingIdentifier(bid=2, coa="192.0.2.1"),
    ),
    (
        "DNS Update, R set, status 0",
        "RFC 5026 §8.1",
        "1106 00 80 01610000",
        lambda: MIP6OptDNSUpdate(flags=1, mn_identity=b"\x01a\x00\x00"),
    ),
    (
        "IPv4 Home Address, /24, P set",
        "RFC 5555 §3.1.1 Fig. 1",
        "1d06 62 00 0a000001",
        lambda: MIP6OptIPv4HomeAddress(prefix_len=24, flags=1, address="10.0.0.1"),
    ),
    (
        "IPv4 Address Ack, status 130, /32",
        "RFC 5555 §3.2.1 Fig. 4",
        "1e06 82 80 0a000001",
        lambda: MIP6OptIPv4AddressAck(status=130, prefix_len=32, address="10.0.0.1"),
    ),
    (
        "NAT Detection, F set, 110 s",
        "RFC 5555 §3.2.2 Fig. 5",
        "1f06 8000 0000006e",
        lambda: MIP6OptNATDetection(flags=1, refresh_time=110),
    ),
    (
        "IPv4 CoA",
        "RFC 5555 §3.1.2 Fig. 2",
        "2006 0000 c0000207",
        lambda: MIP6OptIPv4CareOfAddress(address="192.0.2.7"),
    ),
    (
        "Flow Summary, FIDs 1 and 2",
        "RFC 6089 §4.2.2 Fig. 6",
        "2c04 0001 0002",
        lambda: MIP6OptFlowSummary(fids=[1, 2]),
    ),
    (
        "FID, binding reference to BID 4",
        "RFC 6089 §4.2 Fig. 2, §4.2.1.3 Fig. 4",
        "2d0a 0005 0001 00 00 0202 0004",
        lambda: MIP6OptFlowIdentification(
            fid=5, fid_pri=1, suboptions=[FIDSubOptBindingReference(bids=[4])]
        ),
    ),
    (
        "FID, IPv4 selector, protocol 17 only",
        "RFC 6088 §3.1 Fig. 1",
        "2d0f 0006 0002 00 00 0307 01 00 00080000 11",
        lambda: MIP6OptFlowIdentification(
            fid=6,
            fid_pri=2,
            suboptions=[
                FIDSubOptTrafficSelector(selector=[IPv4BinaryTrafficSelector(start_proto=17)])
            ],
        ),
    ),
    (
        "Alternate HA Tunnel Address",
        "draft-perkins-mext-hatunaddr-02 §2",
        "fe10 20010db8000100000000000000000002",
        lambda: MIP6OptAltHATunnelAddress(address="2001:db8:1::2"),
    ),
    (
        "Multicast State, MLDv2, one INCLUDE record, no sources",
        "draft §4.1; RFC 3810 §5.2",
        # body: 8f 00 cksum 0000 0001 | 01 00 0000 ff3e...0001 ; checksum of the body by hand:
        # words 8f00+0000+0000+0001+0100+0000+ff3e+0000*6+0001 = 0x18f40 -> 0x8f41 -> ~ = 0x70be
        "121c 8f00 70be 0000 0001 01000000 ff3e0000000000000000000000000001",
        lambda: MIP6OptMulticastState(records=[MldAddressRecord(rtype=1, maddr="ff3e::1")]),
    ),
    (
        "Multicast State, IGMPv3, one record, aux 1 word",
        "draft §8; RFC 3376 §4.2",
        # words 2200+0000+0000+0001+0201+0001+e801+0101+c633+6407+dead+beef = 0x3d4db
        # -> 0xd4de -> ~ = 0x2b21
        "1218 2200 2b21 0000 0001 02010001 e8010101 c6336407 deadbeef",
        lambda: MIP6OptMulticastState(
            report_type=0x22,
            records=[
                IgmpGroupRecord(
                    rtype=2,
                    maddr="232.1.1.1",
                    sources=["198.51.100.7"],
                    auxdata=b"\xde\xad\xbe\xef",
                )
            ],
        ),
    ),
]


# --- Malformed vectors -----------------------------------------------------------------------


def _mh_offset(raw: bytes) -> int:
    return compact.parse_packet(raw).mh_offset


def _fix(raw: bytes, *, checksum: bool = True) -> bytes:
    """Set the IPv6 Payload Length and (unless told not to) the MH checksum after surgery.

    The vectors have at most one extension header before the MH: Destination Options
    with the HAO (a BU: the HoA is the pseudo-header source) or a type 2 routing header
    (a BA: the HoA is the pseudo-header destination).
    """
    raw = raw[:4] + struct.pack("!H", len(raw) - 40) + raw[6:]
    if not checksum:
        return raw
    nh = raw[6]
    off = 40 + (24 if nh in (compact.NH_DSTOPTS, compact.NH_ROUTING) else 0)
    src = MN_HOA if nh == compact.NH_DSTOPTS else _addr(raw[8:24])
    dst = MN_HOA if nh == compact.NH_ROUTING else _addr(raw[24:40])
    csum = compact.mh_checksum(src, dst, raw[off:])
    return raw[: off + 4] + struct.pack("!H", csum) + raw[off + 6 :]


def _addr(raw: bytes) -> str:
    return str(ipaddress.IPv6Address(raw))


def _surgery(pkt: Packet, edit: Callable[[bytearray, int], bytes], checksum: bool = True) -> bytes:
    raw = bytes(pkt)
    off = _mh_offset(raw)
    return _fix(edit(bytearray(raw), off), checksum=checksum)


def _option_at(raw: bytes, otype: int) -> int:
    msg = compact.parse_packet(raw)
    for opt in compact.parse_options(msg.body, 12):
        if opt.otype == otype:
            return msg.mh_offset + opt.offset
    raise LookupError(otype)


def _set(raw: bytearray, pos: int, data: bytes) -> bytes:
    raw[pos : pos + len(data)] = data
    return bytes(raw)


def _in_state(edit: Callable[[bytearray, int], bytes]) -> Callable[[bytearray, int], bytes]:
    """Apply `edit` at the Multicast State option's start."""

    def apply(raw: bytearray, off: int) -> bytes:
        return edit(raw, _option_at(bytes(raw), 18))

    return apply


def _truncate_mh(raw: bytearray, off: int) -> bytes:
    return bytes(raw[:-8])  # MH Header Len now exceeds the octets present


def _option_past_end(raw: bytearray, off: int) -> bytes:
    pos = _option_at(bytes(raw), 35)
    return _set(raw, pos + 1, bytes([200]))


def _truncated_option(raw: bytearray, off: int) -> bytes:
    # Fixed part, a 3-octet PadN, then a BID option's Type octet as the header's last octet.
    body = bytearray(raw[off : off + 12]) + bytes([1, 1, 0, 35])
    body[1] = len(body) // 8 - 1
    return bytes(raw[:off]) + bytes(body)


def _bad_mh_checksum(raw: bytearray, off: int) -> bytes:
    return _set(raw, off + 4, bytes([raw[off + 4] ^ 0xFF]))


def _payload_proto(raw: bytearray, off: int) -> bytes:
    return _set(raw, off, bytes([6]))


def _unknown_mh_type(raw: bytearray, off: int) -> bytes:
    return _set(raw, off + 2, bytes([42]))


def _short_header_len(raw: bytearray, off: int) -> bytes:
    # A BE (minimum 24 octets) whose Header Len says 8 octets, extra octets dropped.
    body = bytearray(raw[off : off + 8])
    body[1] = 0
    return bytes(raw[:off]) + bytes(body)


def _count_too_big(raw: bytearray, pos: int) -> bytes:
    return _set(raw, pos + 2 + 6, struct.pack("!H", 3))


def _aux_overflow(raw: bytearray, pos: int) -> bytes:
    return _set(raw, pos + 2 + 8 + 1, bytes([50]))  # first record's Aux Data Len


def _unknown_record_type(raw: bytearray, pos: int) -> bytes:
    body_start = pos + 2
    fixed = _set(raw, body_start + 8, bytes([9]))  # first record's type
    fixed_b = bytearray(fixed)
    csum = compact.report_checksum(bytes(fixed_b[body_start : body_start + fixed_b[pos + 1]]))
    return _set(fixed_b, body_start + 2, struct.pack("!H", csum))


def _bad_report_checksum(raw: bytearray, pos: int) -> bytes:
    return _set(raw, pos + 4, bytes([raw[pos + 4] ^ 0x55]))


def _bid_length_6(raw: bytearray, off: int) -> bytes:
    pos = _option_at(bytes(raw), 35)
    return _set(raw, pos + 1, bytes([6]))  # 4 + 2 octets of the CoA: not 4, 8 or 20


def _fid_too_short(raw: bytearray, off: int) -> bytes:
    pos = _option_at(bytes(raw), 45)
    return _set(raw, pos + 1, bytes([4]))  # FID and FID-PRI only; the rest read as options


# (name, description, source, packet builder, edit or None, expected reaction)
MALFORMED: list[tuple[str, str, str, Callable[[], bytes], dict[str, Any]]] = [
    (
        "mh-checksum-wrong",
        "Mobility Header checksum off by one bit pattern",
        "RFC 6275 §9.2",
        lambda: _surgery(bu(MLD_STATE.copy()), _bad_mh_checksum, checksum=False),
        {"kind": "discard"},
    ),
    (
        "mh-truncated",
        "Header Len says 8 octets more than the packet carries",
        "RFC 6275 §9.2",
        lambda: _surgery(bu(MLD_STATE.copy()), _truncate_mh),
        {"kind": "discard"},
    ),
    (
        "payload-proto-not-59",
        "Payload Proto is 6 instead of IPPROTO_NONE",
        "RFC 6275 §9.2",
        lambda: _surgery(bu(), _payload_proto),
        {"kind": "icmp-parameter-problem", "status": 0, "pointer": 64},
    ),
    (
        "unknown-mh-type",
        "MH type 42 (unassigned)",
        "RFC 6275 §9.2",
        lambda: _surgery(bu(), _unknown_mh_type),
        {"kind": "binding-error", "status": 2},
    ),
    (
        "be-header-len-too-short",
        "Binding Error with Header Len 0 (minimum is 24 octets)",
        "RFC 6275 §9.2",
        lambda: _fix(
            _short_header_len(
                bytearray(bytes(IPv6(src=MN_COA, dst=HA) / BindingError(hoa=MN_HOA))), 40
            )
        ),
        {"kind": "icmp-parameter-problem", "status": 0, "pointer": 41},
    ),
    (
        "option-length-past-end",
        "BID option Length 200 runs past the Mobility Header",
        "RFC 6275 §6.2.1 (docs/interpretations.md)",
        lambda: _surgery(bu(MIP6OptBindingIdentifier(bid=1)), _option_past_end),
        {"kind": "discard"},
    ),
    (
        "option-truncated",
        "The header ends right after an option's Type octet",
        "RFC 6275 §6.2.1 (docs/interpretations.md)",
        lambda: _surgery(bu(MIP6OptBindingIdentifier(bid=1, coa=MN_COA)), _truncated_option),
        {"kind": "discard"},
    ),
    (
        "mcast-record-count-too-big",
        "Multicast State counts 3 records, carries 2",
        "draft §4.1; docs/interpretations.md points 2, 6",
        lambda: _surgery(bu(MLD_STATE.copy()), _in_state(_count_too_big)),
        {"kind": "binding-ack", "status": 0, "multicast_installed": False},
    ),
    (
        "mcast-aux-overflow",
        "First record's Aux Data Len (50 words) overflows the option",
        "RFC 3810 §5.2.6; docs/interpretations.md point 2",
        lambda: _surgery(bu(MLD_STATE.copy()), _in_state(_aux_overflow)),
        {"kind": "binding-ack", "status": 0, "multicast_installed": False},
    ),
    (
        "mcast-unknown-record-type",
        "Record type 9 (RFC 3810 §5.2.12 defines 1-6)",
        "RFC 3810 §5.2.12; docs/interpretations.md",
        lambda: _surgery(bu(MLD_STATE.copy()), _in_state(_unknown_record_type)),
        {"kind": "binding-ack", "status": 0, "multicast_installed": True},
    ),
    (
        "mcast-report-checksum-wrong",
        "Report checksum inside the option is wrong",
        "docs/interpretations.md point 2",
        lambda: _surgery(bu(MLD_STATE.copy()), _in_state(_bad_report_checksum)),
        {"kind": "binding-ack", "status": 0, "multicast_installed": False},
    ),
    (
        "igmp-unknown-record-type",
        "IGMPv3 form (draft §8): record type 9 (RFC 3376 §4.2.12 defines 1-6)",
        "RFC 3376 §4.2.12; docs/interpretations.md",
        lambda: _surgery(bu(IGMP_TWO_GROUPS.copy()), _in_state(_unknown_record_type)),
        {"kind": "binding-ack", "status": 0, "multicast_installed": True},
    ),
    (
        "igmp-report-checksum-wrong",
        "IGMPv3 form (draft §8): report checksum inside the option is wrong",
        "RFC 3376 §4.2.2; docs/interpretations.md point 2",
        lambda: _surgery(bu(IGMP_TWO_GROUPS.copy()), _in_state(_bad_report_checksum)),
        {"kind": "binding-ack", "status": 0, "multicast_installed": False},
    ),
    (
        "bid-length-6",
        "BID option with Length 6",
        "RFC 5648 §6.2",
        lambda: _surgery(bu(MIP6OptBindingIdentifier(bid=1, coa="192.0.2.1")), _bid_length_6),
        {"kind": "binding-ack", "status": 164},
    ),
    (
        "fid-too-short",
        "FID option with Length 4 (no Reserved/Status octets)",
        "RFC 6089 §4.2",
        lambda: _surgery(bu(MIP6OptFlowIdentification(fid=1, fid_pri=1)), _fid_too_short),
        {"kind": "binding-ack", "status": 0, "option_status": {"FID": 130}},
    ),
    (
        "ba-options-in-bu",
        "IPv4 Address Ack and NAT Detection (BA options) inside a BU",
        "RFC 5555 §3.2; RFC 6275 §6.2.1",
        lambda: bytes(bu(MIP6OptIPv4AddressAck(address="10.0.0.1"), MIP6OptNATDetection())),
        {"kind": "binding-ack", "status": 0, "ignored_options": [30, 31]},
    ),
]


def golden() -> list[dict[str, Any]]:
    out = []
    for name, description, source, build, expect in GOLDEN:
        out.append(
            {
                "name": name,
                "description": description,
                "source": source,
                "hex": bytes(build()).hex(),
                "expect": expect,
            }
        )
    return out


def hand_options() -> list[dict[str, str]]:
    return [{"name": n, "source": s, "hex": h.replace(" ", "")} for n, s, h, _ in HAND_OPTIONS]


def malformed() -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "description": description,
            "source": source,
            "hex": build().hex(),
            "reaction": reaction,
        }
        for name, description, source, build, reaction in MALFORMED
    ]


def main() -> None:
    (HERE / "golden.json").write_text(
        json.dumps({"packets": golden(), "options": hand_options()}, indent=1) + "\n"
    )
    (HERE / "malformed.json").write_text(json.dumps({"packets": malformed()}, indent=1) + "\n")


if __name__ == "__main__":
    main()
