"""Scapy layers for the Mobility Header messages and options the draft needs.

Scapy 2.8 knows MH types 0-7 and mobility options 0-16. This module declares
the rest the scapy way (fields_desc, x/y alignment attributes) and registers
them in scapy's dispatch tables (``moboptcls``, ``_mip6_mhtype2cls``), so that
``IPv6(raw_bytes)`` dissects them and ``IPv6()/BindingUpdate(options=[...])``
builds them with RFC 6275 §6.2 padding computed for every option.

Sections cited are those of the RFC named beside each class; the Multicast
State option follows draft-sarikaya-mext-multicastdmm-01 §4.1 and
docs/interpretations.md (checksum, alignment, type value).
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from typing import Any

from scapy.fields import (
    BitField,
    ByteEnumField,
    ByteField,
    ConditionalField,
    Field,
    FieldLenField,
    FieldListField,
    FlagsField,
    IntField,
    IP6Field,
    IPField,
    PacketListField,
    ShortField,
    StrLenField,
    XBitField,
    XShortField,
)
from scapy.layers import inet6
from scapy.layers.inet6 import (
    HAO,
    MIP6MH_BA,
    MIP6MH_BE,
    MIP6MH_BU,
    IP6ListField,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrRouting,
    LifetimeField,
    MIP6OptUnknown,
    Pad1,
    PadN,
    _MIP6OptAlign,
    _OptionsField,
    _PhantomAutoPadField,
)
from scapy.packet import Packet, Raw
from scapy.pton_ntop import inet_pton
from scapy.utils import checksum as internet_checksum

from harness.config import WireConfig
from harness.wire import numbers
from harness.wire.numbers import MobOpt

# Names for scapy's option-type enum, so `show()` prints them.
_OPTION_NAMES = {
    int(MobOpt.DNS_UPDATE): "DNS Update (RFC5026)",
    int(MobOpt.EXPERIMENTAL): "Experimental (RFC5096)",
    int(MobOpt.IPV4_HOME_ADDRESS): "IPv4 Home Address (RFC5555)",
    int(MobOpt.IPV4_ADDRESS_ACK): "IPv4 Address Acknowledgement (RFC5555)",
    int(MobOpt.NAT_DETECTION): "NAT Detection (RFC5555)",
    int(MobOpt.IPV4_CARE_OF_ADDRESS): "IPv4 Care-of Address (RFC5555)",
    int(MobOpt.BINDING_IDENTIFIER): "Binding Identifier (RFC5648)",
    int(MobOpt.FLOW_SUMMARY): "Flow Summary (RFC6089)",
    int(MobOpt.FLOW_IDENTIFICATION): "Flow Identification (RFC6089)",
}
inet6._mobopttypes.update(_OPTION_NAMES)
inet6.bastatus.update(numbers.BA_STATUS)
_mobopttypes = inet6._mobopttypes


class MobilityOptionTooLong(ValueError):
    """An option's data exceeds the 255 octets its 8-bit length can express."""


def _option_length(p: bytes) -> int:
    body = len(p) - 2
    if body > 255:
        raise MobilityOptionTooLong(
            f"mobility option data is {body} octets; the Option Length field holds at most 255"
        )
    return body


class _MobOpt(_MIP6OptAlign):
    """Base: an option whose Option Length is computed from its bytes when left as None."""

    def post_build(self, p: bytes, pay: bytes) -> bytes:
        if self.olen is None:
            p = p[:1] + struct.pack("B", _option_length(p)) + p[2:]
        return p + pay


# --- RFC 5026 §8.1 -------------------------------------------------------------------------


class MIP6OptDNSUpdate(_MobOpt):
    name = "MIPv6 Option - DNS Update"
    fields_desc = [
        ByteEnumField("otype", int(MobOpt.DNS_UPDATE), _mobopttypes),
        ByteField("olen", None),
        ByteEnumField("status", 0, numbers.DNS_UPDATE_STATUS),
        FlagsField("flags", 0, 1, "R"),
        BitField("reserved", 0, 7),
        StrLenField("mn_identity", b"", length_from=lambda pkt: max(pkt.olen - 2, 0)),
    ]
    x, y = 0, 0  # RFC 5026 §8.1 states no alignment requirement


# --- RFC 5096 §4 ----------------------------------------------------------------------------


class MIP6OptExperimental(_MobOpt):
    name = "MIPv6 Option - Experimental"
    fields_desc = [
        ByteEnumField("otype", int(MobOpt.EXPERIMENTAL), _mobopttypes),
        ByteField("olen", None),
        StrLenField("data", b"", length_from=lambda pkt: pkt.olen),
    ]
    x, y = 0, 0


# --- RFC 5555 §3.1.1, §3.1.2, §3.2.1, §3.2.2 ---------------------------------------------------


class MIP6OptIPv4HomeAddress(_MobOpt):
    name = "MIPv6 Option - IPv4 Home Address"
    fields_desc = [
        ByteEnumField("otype", int(MobOpt.IPV4_HOME_ADDRESS), _mobopttypes),
        ByteField("olen", 6),
        BitField("prefix_len", 32, 6),
        FlagsField("flags", 0, 1, "P"),
        BitField("reserved", 0, 9),
        IPField("address", "0.0.0.0"),
    ]
    x, y = 4, 0


class MIP6OptIPv4AddressAck(_MobOpt):
    name = "MIPv6 Option - IPv4 Address Acknowledgement"
    fields_desc = [
        ByteEnumField("otype", int(MobOpt.IPV4_ADDRESS_ACK), _mobopttypes),
        ByteField("olen", 6),
        ByteEnumField("status", 0, numbers.IPV4_HOA_STATUS),
        BitField("prefix_len", 32, 6),
        BitField("reserved", 0, 2),
        IPField("address", "0.0.0.0"),
    ]
    x, y = 4, 0


class MIP6OptNATDetection(_MobOpt):
    name = "MIPv6 Option - NAT Detection"
    fields_desc = [
        ByteEnumField("otype", int(MobOpt.NAT_DETECTION), _mobopttypes),
        ByteField("olen", 6),
        FlagsField("flags", 0, 1, "F"),
        BitField("reserved", 0, 15),
        IntField("refresh_time", 0),
    ]
    x, y = 4, 0


class MIP6OptIPv4CareOfAddress(_MobOpt):
    name = "MIPv6 Option - IPv4 Care-of Address"
    fields_desc = [
        ByteEnumField("otype", int(MobOpt.IPV4_CARE_OF_ADDRESS), _mobopttypes),
        ByteField("olen", 6),
        ShortField("reserved", 0),
        IPField("address", "0.0.0.0"),
    ]
    x, y = 4, 0


# --- RFC 5648 §4.3 as updated by RFC 6089 §4.1 -----------------------------------------------


class _BIDCareOfAddressField(Field[str | None, bytes]):
    """The optional CoA of the BID option: absent, IPv4 (Length 8) or IPv6 (Length 20)."""

    def __init__(self, name: str) -> None:
        Field.__init__(self, name, None, fmt="16s")

    def i2m(self, pkt: Packet | None, x: str | None) -> bytes:
        if x is None:
            return b""
        addr = ipaddress.ip_address(x)
        return addr.packed

    def m2i(self, pkt: Packet | None, x: bytes) -> str | None:
        if not x:
            return None
        return str(ipaddress.ip_address(x))

    def addfield(self, pkt: Packet, s: bytes, val: str | None) -> bytes:
        return s + self.i2m(pkt, val)

    def getfield(self, pkt: Packet, s: bytes) -> tuple[bytes, str | None]:
        size = {8: 4, 20: 16}.get(pkt.olen, 0) if pkt.olen is not None else 0
        if pkt.olen not in (4, 8, 20):
            size = max(pkt.olen - 4, 0)  # malformed length: keep the bytes visible as raw
            return s[size:], s[:size].hex() if size else None
        return s[size:], self.m2i(pkt, s[:size])

    def i2len(self, pkt: Packet, x: str | None) -> int:
        return len(self.i2m(pkt, x))

    def i2repr(self, pkt: Packet | None, x: str | None) -> str:
        return "(absent)" if x is None else str(x)


class MIP6OptBindingIdentifier(_MobOpt):
    name = "MIPv6 Option - Binding Identifier"
    fields_desc = [
        ByteEnumField("otype", int(MobOpt.BINDING_IDENTIFIER), _mobopttypes),
        ByteField("olen", None),
        ShortField("bid", 1),
        ByteEnumField("status", 0, numbers.BA_STATUS),
        FlagsField("flags", 0, 1, "H"),
        BitField("bid_pri", 0, 7),
        _BIDCareOfAddressField("coa"),
    ]

    def alignment_delta(self, curpos: int) -> int:
        # RFC 5648 §4.3: 2n without a care-of address, 8n+2 with one.
        self.x, self.y = (2, 0) if self.coa is None else (8, 2)
        return int(super().alignment_delta(curpos))


# --- RFC 6089 §4.2 and RFC 6088 §3 -----------------------------------------------------------


class FIDSubOptPad1(Packet):
    name = "FID Sub-option - Pad1"
    fields_desc = [ByteField("stype", 0)]

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s


class FIDSubOptPadN(Packet):
    name = "FID Sub-option - PadN"
    fields_desc = [
        ByteField("stype", 1),
        FieldLenField("slen", None, length_of="data", fmt="B"),
        StrLenField("data", b"", length_from=lambda pkt: pkt.slen),
    ]

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s


class FIDSubOptBindingReference(Packet):
    name = "FID Sub-option - Binding Reference"
    fields_desc = [
        ByteField("stype", 2),
        FieldLenField("slen", None, length_of="bids", fmt="B"),
        FieldListField("bids", [], ShortField("bid", 0), length_from=lambda pkt: pkt.slen),
    ]
    align = 2

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s


class _TSFlagsField(BitField):
    """The A.. flags of a binary traffic selector; when left None, set from the fields present."""

    def i2m(self, pkt: Packet | None, x: int | None) -> int:
        if x is None and pkt is not None:
            return sum(
                1 << (self.size - 1 - i)
                for i, (_flag, name) in enumerate(pkt.flag_fields)
                if pkt.getfieldval(name) is not None
            )
        return int(x or 0)


def _present(bit: int, name: str) -> Any:
    """Field `name` is on the wire when its flag is set (or, when building, has a value)."""

    def cond(pkt: Packet) -> bool:
        if pkt.flags is None:
            return pkt.getfieldval(name) is not None
        return bool(pkt.flags & (1 << bit))

    return cond


class _TrafficSelector(Packet):
    flag_fields: list[tuple[str, str]] = []

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s

    def present(self) -> set[str]:
        """The flag letters of the fields this selector carries."""
        width = len(self.flag_fields)
        flags = _TSFlagsField("f", None, width).i2m(self, self.flags)
        return {f for i, (f, _n) in enumerate(self.flag_fields) if flags & (1 << (width - 1 - i))}


def _ts_fields(layout: list[tuple[str, str, Any]]) -> list[Any]:
    width = len(layout)
    fields: list[Any] = [_TSFlagsField("flags", None, width), XBitField("reserved", 0, 32 - width)]
    for i, (_flag, name, make) in enumerate(layout):
        fields.append(ConditionalField(make(name), _present(width - 1 - i, name)))
    return fields


class IPv4BinaryTrafficSelector(_TrafficSelector):
    """RFC 6088 §3.1 (TS Format 1)."""

    name = "IPv4 Binary Traffic Selector"
    _layout = [
        ("A", "start_src", lambda n: IPField(n, None)),
        ("B", "end_src", lambda n: IPField(n, None)),
        ("C", "start_dst", lambda n: IPField(n, None)),
        ("D", "end_dst", lambda n: IPField(n, None)),
        ("E", "start_spi", lambda n: IntField(n, None)),
        ("F", "end_spi", lambda n: IntField(n, None)),
        ("G", "start_sport", lambda n: ShortField(n, None)),
        ("H", "end_sport", lambda n: ShortField(n, None)),
        ("I", "start_dport", lambda n: ShortField(n, None)),
        ("J", "end_dport", lambda n: ShortField(n, None)),
        ("K", "start_ds", lambda n: ByteField(n, None)),
        ("L", "end_ds", lambda n: ByteField(n, None)),
        ("M", "start_proto", lambda n: ByteField(n, None)),
        ("N", "end_proto", lambda n: ByteField(n, None)),
    ]
    fields_desc = _ts_fields(_layout)
    flag_fields = [(flag, name) for flag, name, _ in _layout]


class IPv6BinaryTrafficSelector(_TrafficSelector):
    """RFC 6088 §3.2 (TS Format 2)."""

    name = "IPv6 Binary Traffic Selector"
    _layout = [
        ("A", "start_src", lambda n: IP6Field(n, None)),
        ("B", "end_src", lambda n: IP6Field(n, None)),
        ("C", "start_dst", lambda n: IP6Field(n, None)),
        ("D", "end_dst", lambda n: IP6Field(n, None)),
        ("E", "start_spi", lambda n: IntField(n, None)),
        ("F", "end_spi", lambda n: IntField(n, None)),
        ("G", "start_flow_label", lambda n: IntField(n, None)),
        ("H", "end_flow_label", lambda n: IntField(n, None)),
        ("I", "start_sport", lambda n: ShortField(n, None)),
        ("J", "end_sport", lambda n: ShortField(n, None)),
        ("K", "start_dport", lambda n: ShortField(n, None)),
        ("L", "end_dport", lambda n: ShortField(n, None)),
        ("M", "start_tc", lambda n: ByteField(n, None)),
        ("N", "end_tc", lambda n: ByteField(n, None)),
        ("O", "start_nh", lambda n: ByteField(n, None)),
        ("P", "end_nh", lambda n: ByteField(n, None)),
    ]
    fields_desc = _ts_fields(_layout)
    flag_fields = [(flag, name) for flag, name, _ in _layout]


_TS_CLASSES: dict[int, type[Packet]] = {
    numbers.TS_FORMAT_IPV4_BINARY: IPv4BinaryTrafficSelector,
    numbers.TS_FORMAT_IPV6_BINARY: IPv6BinaryTrafficSelector,
}


class FIDSubOptTrafficSelector(Packet):
    name = "FID Sub-option - Traffic Selector"
    fields_desc = [
        ByteField("stype", 3),
        ByteField("slen", None),
        ByteField("ts_format", None),  # None: taken from the selector's class
        ByteField("reserved", 0),
        PacketListField(
            "selector",
            [],
            next_cls_cb=lambda pkt, lst, cur, remain: (
                None if lst or not remain else _TS_CLASSES.get(pkt.ts_format, Raw)
            ),
            length_from=lambda pkt: max(pkt.slen - 2, 0),
        ),
    ]

    @property
    def align(self) -> int:
        # RFC 6088 §3.1/§3.2: the widest field present sets the alignment of the sub-option.
        sel = self.selector[0] if self.selector else None
        if not isinstance(sel, _TrafficSelector):
            return 1
        if isinstance(sel, IPv6BinaryTrafficSelector):
            groups = [("ABCD", 8), ("EFGH", 4), ("IJKL", 2)]
        else:
            groups = [("ABCDEF", 4), ("GHIJ", 2)]
        present = sel.present()
        for letters, size in groups:
            if present & set(letters):
                return size
        return 1

    def post_build(self, p: bytes, pay: bytes) -> bytes:
        if self.slen is None:
            p = p[:1] + struct.pack("B", len(p) - 2) + p[2:]
        if self.ts_format is None:
            sel = type(self.selector[0]) if self.selector else None
            fmt = {cls: code for code, cls in _TS_CLASSES.items()}.get(sel, 0)  # type: ignore[arg-type]
            p = p[:2] + struct.pack("B", fmt) + p[3:]
        return p + pay

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s


_FID_SUBOPT_CLASSES: dict[int, type[Packet]] = {
    0: FIDSubOptPad1,
    1: FIDSubOptPadN,
    2: FIDSubOptBindingReference,
    3: FIDSubOptTrafficSelector,
}


class FIDSubOptUnknown(Packet):
    name = "FID Sub-option - Unknown"
    fields_desc = [
        ByteField("stype", None),
        FieldLenField("slen", None, length_of="data", fmt="B"),
        StrLenField("data", b"", length_from=lambda pkt: pkt.slen),
    ]

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s

    @classmethod
    def dispatch_hook(cls, _pkt: bytes | None = None, *args: Any, **kargs: Any) -> type[Packet]:
        if _pkt:
            return _FID_SUBOPT_CLASSES.get(_pkt[0], cls)
        return cls


class _FIDSubOptionsField(PacketListField):
    """Sub-options of the FID option, padded so each meets its alignment (RFC 6089 §4.2.1).

    Offsets are counted from the start of the FID option; the option itself is placed
    at 8n (which satisfies its 2n requirement) so that relative and absolute alignment agree.
    """

    HEADER = 8  # Type, Length, FID, FID-PRI, Reserved, Status

    def i2m(self, pkt: Packet | None, val: Any) -> bytes:
        out = b""
        pos = self.HEADER
        for sub in val:
            align = getattr(sub, "align", 1)
            gap = (-pos) % align
            if gap == 1:
                out += bytes(FIDSubOptPad1())
            elif gap > 1:
                out += bytes(FIDSubOptPadN(data=b"\x00" * (gap - 2)))
            pos += gap
            raw = bytes(sub)
            out += raw
            pos += len(raw)
        return out

    def addfield(self, pkt: Packet, s: bytes, val: Any) -> bytes:
        return s + self.i2m(pkt, val)


class MIP6OptFlowIdentification(_MobOpt):
    name = "MIPv6 Option - Flow Identification"
    fields_desc = [
        ByteEnumField("otype", int(MobOpt.FLOW_IDENTIFICATION), _mobopttypes),
        ByteField("olen", None),
        ShortField("fid", 1),
        ShortField("fid_pri", 1),
        ByteField("reserved", 0),
        ByteEnumField("status", 0, numbers.FID_STATUS),
        _FIDSubOptionsField(
            "suboptions", [], FIDSubOptUnknown, length_from=lambda pkt: max(pkt.olen - 6, 0)
        ),
    ]
    x, y = 8, 0  # stricter than RFC 6089's 2n, see _FIDSubOptionsField


class MIP6OptFlowSummary(_MobOpt):
    name = "MIPv6 Option - Flow Summary"
    fields_desc = [
        ByteEnumField("otype", int(MobOpt.FLOW_SUMMARY), _mobopttypes),
        ByteField("olen", None),
        FieldListField("fids", [1], ShortField("fid", 0), length_from=lambda pkt: pkt.olen),  # type: ignore[list-item]
    ]
    x, y = 2, 0


# --- draft-perkins-mext-hatunaddr-02 §2 (type TBD, see harness.config) ------------------------


class MIP6OptAltHATunnelAddress(_MobOpt):
    name = "MIPv6 Option - Alternate Home Agent Tunnel Address"
    fields_desc = [
        ByteEnumField("otype", numbers.DEFAULT_ALT_HA_TUNNEL_ADDRESS_TYPE, _mobopttypes),
        ByteField("olen", 16),
        IP6Field("address", "::"),
    ]
    x, y = 8, 6


# --- draft-sarikaya-mext-multicastdmm-01 §4.1, RFC 3810 §5.2, RFC 3376 §4.2 --------------------


class _AuxDataLenField(FieldLenField):
    """Aux Data Len counts 32-bit words (RFC 3810 §5.2.6); scapy's MLD record counts bytes."""


class MldAddressRecord(Packet):
    """Multicast Address Record of an MLDv2 Report (RFC 3810 §5.2.4)."""

    name = "MLDv2 Multicast Address Record"
    fields_desc = [
        ByteEnumField("rtype", 1, {int(t): t.name for t in numbers.McastRecordType}),
        _AuxDataLenField(
            "auxlen", None, length_of="auxdata", fmt="B", adjust=lambda pkt, x: (x + 3) // 4
        ),
        FieldLenField("nsrc", None, count_of="sources", fmt="H"),
        IP6Field("maddr", "::"),
        IP6ListField("sources", [], count_from=lambda pkt: pkt.nsrc),
        StrLenField("auxdata", b"", length_from=lambda pkt: pkt.auxlen * 4),
    ]

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s


class _IPv4ListField(FieldListField):
    def __init__(self, name: str, count_from: Any) -> None:
        FieldListField.__init__(self, name, [], IPField("", "0.0.0.0"), count_from=count_from)


class IgmpGroupRecord(Packet):
    """Group Record of an IGMPv3 Membership Report (RFC 3376 §4.2.4)."""

    name = "IGMPv3 Group Record"
    fields_desc = [
        ByteEnumField("rtype", 1, {int(t): t.name for t in numbers.McastRecordType}),
        _AuxDataLenField(
            "auxlen", None, length_of="auxdata", fmt="B", adjust=lambda pkt, x: (x + 3) // 4
        ),
        FieldLenField("nsrc", None, count_of="sources", fmt="H"),
        IPField("maddr", "0.0.0.0"),
        _IPv4ListField("sources", count_from=lambda pkt: pkt.nsrc),
        StrLenField("auxdata", b"", length_from=lambda pkt: pkt.auxlen * 4),
    ]

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s


REPORT_HEADER_LEN = 8  # Type, Reserved, Checksum, Reserved, Number of records


def _record_class(pkt: Packet) -> type[Packet]:
    return IgmpGroupRecord if pkt.report_type == numbers.IGMPV3_REPORT else MldAddressRecord


class MIP6OptMulticastState(_MobOpt):
    """The Multicast State mobility option (draft §4.1; IGMPv3 form per draft §8).

    The option body is an MLDv2 Report (type 143) or IGMPv3 Report (type 0x22)
    without any IP header; its Checksum is the Internet checksum of that body
    with no pseudo-header (docs/interpretations.md).
    """

    name = "MIPv6 Option - Multicast State"
    fields_desc = [
        ByteEnumField("otype", None, _mobopttypes),
        ByteField("olen", None),
        ByteEnumField(
            "report_type",
            numbers.MLDV2_REPORT,
            {numbers.MLDV2_REPORT: "MLDv2 Report", numbers.IGMPV3_REPORT: "IGMPv3 Report"},
        ),
        ByteField("reserved1", 0),
        XShortField("cksum", None),
        ShortField("reserved2", 0),
        FieldLenField("nrecords", None, count_of="records", fmt="H"),
        PacketListField(
            "records",
            [],
            next_cls_cb=lambda pkt, lst, cur, remain: _record_class(pkt) if remain else None,
            length_from=lambda pkt: max(pkt.olen - REPORT_HEADER_LEN, 0),
        ),
    ]
    x, y = 8, 2  # the first Multicast Address lands on an 8-octet boundary

    def post_build(self, p: bytes, pay: bytes) -> bytes:
        if self.otype is None:
            p = struct.pack("B", active_config().multicast_state_type) + p[1:]
        if self.olen is None:
            p = p[:1] + struct.pack("B", _option_length(p)) + p[2:]
        if self.cksum is None:
            p = p[:4] + struct.pack("!H", report_checksum(p[2:])) + p[6:]
        return p + pay

    def checksum_ok(self) -> bool:
        return report_checksum(bytes(self)[2:]) == self.cksum


def report_checksum(body: bytes) -> int:
    """Internet checksum of a report body, with its Checksum field (octets 2-3) taken as zero."""
    return int(internet_checksum(body[:2] + b"\x00\x00" + body[4:]))


# --- Messages ---------------------------------------------------------------------------------


class MobilityOption(MIP6OptUnknown):
    """Dispatcher for mobility options in the messages below.

    Scapy looks the type up in ``moboptcls``. One type needs the body: when the
    Multicast State option uses RFC 5096's experimental type (the default, see
    harness.config), an option of that type is a Multicast State option only when
    its body is an MLDv2 or IGMPv3 report header.
    """

    @classmethod
    def dispatch_hook(cls, _pkt: bytes | None = None, *args: Any, **kargs: Any) -> type[Packet]:
        if not _pkt:
            return cls
        otype = _pkt[0]
        if otype == active_config().multicast_state_type and otype == MobOpt.EXPERIMENTAL:
            looks_like_report = len(_pkt) >= 2 + REPORT_HEADER_LEN and _pkt[2] in (
                numbers.MLDV2_REPORT,
                numbers.IGMPV3_REPORT,
            )
            return MIP6OptMulticastState if looks_like_report else MIP6OptExperimental
        return inet6.moboptcls.get(otype, MIP6OptUnknown)


def _pseudo_header_addresses(mh: Packet) -> tuple[str, str] | None:
    """Source and destination for the MH checksum (RFC 6275 §6.1.1).

    The Home Address option supplies the source wherever it sits among the
    destination options (scapy's own helper only finds it when it is the sole
    option, which is never the case once padding has been dissected), and a
    routing header with segments left supplies the final destination.
    """
    src = dst = None
    layer = mh.underlayer
    while layer is not None and not isinstance(layer, IPv6):
        if isinstance(layer, IPv6ExtHdrDestOpt) and src is None:
            for opt in layer.options:
                if isinstance(opt, HAO):
                    src = opt.hoa
        if isinstance(layer, IPv6ExtHdrRouting) and layer.segleft and layer.addresses:
            dst = layer.addresses[-1]
        layer = layer.underlayer
    if layer is None:
        return None
    return src or layer.src, dst or layer.dst


class _ChecksummedMH(Packet):
    def post_build(self, p: bytes, pay: bytes) -> bytes:
        p += pay
        if self.len is None:
            p = p[:1] + struct.pack("B", (len(p) - 8) // 8) + p[2:]
        if self.cksum is None:
            addrs = _pseudo_header_addresses(self)
            if addrs is not None:
                pseudo = (
                    inet_pton(socket.AF_INET6, addrs[0])
                    + inet_pton(socket.AF_INET6, addrs[1])
                    + struct.pack("!IxxxB", len(p), 135)
                )
                zeroed = p[:4] + b"\x00\x00" + p[6:]
                p = p[:4] + struct.pack("!H", internet_checksum(pseudo + zeroed)) + p[6:]
        return p


class BindingUpdate(_ChecksummedMH, MIP6MH_BU):
    """Binding Update with the flags of RFC 6275 §6.1.7, RFC 5555 §3.1.3 (F), RFC 5648 §4.2 (O)."""

    name = "IPv6 Mobility Header - Binding Update"
    match_subclass = True  # pkt[MIP6MH_BU] finds it, as code written for scapy expects
    fields_desc = [
        ByteEnumField("nh", 59, inet6.ipv6nh),
        ByteField("len", None),
        ByteEnumField("mhtype", int(numbers.MHType.BU), inet6.mhtypes),
        ByteField("res", 0),
        XShortField("cksum", None),
        XShortField("seq", 0),
        FlagsField("flags", 0b11 << 8, 10, "OTFPRMKLHA"),  # A and H
        XBitField("reserved", 0, 6),
        LifetimeField("mhtime", 3),
        _PhantomAutoPadField("autopad", 1),
        _OptionsField("options", [], MobilityOption, 12, length_from=lambda pkt: 8 * pkt.len - 4),
    ]


class BindingAck(_ChecksummedMH, MIP6MH_BA):
    name = "IPv6 Mobility Header - Binding ACK"
    match_subclass = True
    fields_desc = [
        ByteEnumField("nh", 59, inet6.ipv6nh),
        ByteField("len", None),
        ByteEnumField("mhtype", int(numbers.MHType.BA), inet6.mhtypes),
        ByteField("res", 0),
        XShortField("cksum", None),
        ByteEnumField("status", 0, inet6.bastatus),
        FlagsField("flags", 0, 3, "PRK"),
        XBitField("res2", 0, 5),
        XShortField("seq", 0),
        LifetimeField("mhtime", 0),
        _PhantomAutoPadField("autopad", 1),
        _OptionsField("options", [], MobilityOption, 12, length_from=lambda pkt: 8 * pkt.len - 4),
    ]


class BindingError(_ChecksummedMH, MIP6MH_BE):
    name = "IPv6 Mobility Header - Binding Error"
    match_subclass = True
    fields_desc = [
        ByteEnumField("nh", 59, inet6.ipv6nh),
        ByteField("len", None),
        ByteEnumField("mhtype", int(numbers.MHType.BE), inet6.mhtypes),
        ByteField("res", 0),
        XShortField("cksum", None),
        ByteEnumField("status", 1, numbers.BE_STATUS),
        ByteField("reserved", 0),
        IP6Field("hoa", "::"),
        _PhantomAutoPadField("autopad", 1),
        _OptionsField("options", [], MobilityOption, 24, length_from=lambda pkt: 8 * (pkt.len - 2)),
    ]


# --- Registration -----------------------------------------------------------------------------

_STATIC_OPTIONS: dict[int, type[Packet]] = {
    int(MobOpt.DNS_UPDATE): MIP6OptDNSUpdate,
    int(MobOpt.EXPERIMENTAL): MIP6OptExperimental,
    int(MobOpt.IPV4_HOME_ADDRESS): MIP6OptIPv4HomeAddress,
    int(MobOpt.IPV4_ADDRESS_ACK): MIP6OptIPv4AddressAck,
    int(MobOpt.NAT_DETECTION): MIP6OptNATDetection,
    int(MobOpt.IPV4_CARE_OF_ADDRESS): MIP6OptIPv4CareOfAddress,
    int(MobOpt.BINDING_IDENTIFIER): MIP6OptBindingIdentifier,
    int(MobOpt.FLOW_SUMMARY): MIP6OptFlowSummary,
    int(MobOpt.FLOW_IDENTIFICATION): MIP6OptFlowIdentification,
}

_config: WireConfig | None = None


def active_config() -> WireConfig:
    global _config
    if _config is None:
        _config = WireConfig.from_env()
    return _config


def register(config: WireConfig | None = None) -> WireConfig:
    """Install the layers in scapy's tables for the given (or environment) option types."""
    global _config
    _config = config or WireConfig.from_env()
    moboptcls = inet6.moboptcls
    for otype in list(moboptcls):
        if moboptcls[otype] in (MIP6OptMulticastState, MIP6OptAltHATunnelAddress):
            del moboptcls[otype]
    moboptcls.update(_STATIC_OPTIONS)
    moboptcls[_config.alt_ha_tunnel_address_type] = MIP6OptAltHATunnelAddress
    MIP6OptAltHATunnelAddress.fields_desc[0].default = _config.alt_ha_tunnel_address_type  # type: ignore[union-attr]
    # With the experimental type, MobilityOption tells the two apart by the body.
    if _config.multicast_state_type != MobOpt.EXPERIMENTAL:
        moboptcls[_config.multicast_state_type] = MIP6OptMulticastState
    # Enum fields copy their dict when the class is made; name the configured types directly.
    MIP6OptMulticastState.fields_desc[0].i2s[_config.multicast_state_type] = "Multicast State"  # type: ignore[union-attr]
    _mobopttypes[_config.alt_ha_tunnel_address_type] = "Alternate HA Tunnel Address (hatunaddr)"
    inet6._mip6_mhtype2cls[int(numbers.MHType.BU)] = BindingUpdate
    inet6._mip6_mhtype2cls[int(numbers.MHType.BA)] = BindingAck
    inet6._mip6_mhtype2cls[int(numbers.MHType.BE)] = BindingError
    return _config


register()

__all__ = [
    "BindingAck",
    "BindingError",
    "BindingUpdate",
    "FIDSubOptBindingReference",
    "FIDSubOptPad1",
    "FIDSubOptPadN",
    "FIDSubOptTrafficSelector",
    "IPv4BinaryTrafficSelector",
    "IPv6BinaryTrafficSelector",
    "IgmpGroupRecord",
    "MIP6OptAltHATunnelAddress",
    "MIP6OptBindingIdentifier",
    "MIP6OptDNSUpdate",
    "MIP6OptExperimental",
    "MIP6OptFlowIdentification",
    "MIP6OptFlowSummary",
    "MIP6OptIPv4AddressAck",
    "MIP6OptIPv4CareOfAddress",
    "MIP6OptIPv4HomeAddress",
    "MIP6OptMulticastState",
    "MIP6OptNATDetection",
    "MldAddressRecord",
    "MobilityOption",
    "Pad1",
    "PadN",
    "active_config",
    "register",
    "report_checksum",
]


# --- Listener state that does not fit one option (docs/interpretations.md, point 3) ----------

MAX_OPTION_DATA = 255


def _record_size(rec: Packet) -> int:
    return len(bytes(rec))


def _split_record(rec: Packet, room: int) -> list[Packet]:
    """Cut a record whose sources overflow `room` octets into records of the same type and group."""
    alen = 16 if isinstance(rec, MldAddressRecord) else 4
    fixed = 4 + alen + len(rec.auxdata)
    per = (room - fixed) // alen
    if per < 1:
        raise MobilityOptionTooLong("a record with its aux data alone exceeds one option")
    sources = list(rec.sources)
    parts = []
    for i in range(0, max(len(sources), 1), per):
        part = rec.copy()
        part.sources = sources[i : i + per]
        part.nsrc = None
        parts.append(part)
    return parts


def multicast_state_options(
    records: list[Packet], report_type: int = numbers.MLDV2_REPORT
) -> list[MIP6OptMulticastState]:
    """As many Multicast State options as the records need, each within 255 octets of data.

    Whole records go to each option in order; a record with too many sources is
    split into records of the same type and group (the receiver concatenates them).
    """
    room = MAX_OPTION_DATA - REPORT_HEADER_LEN
    pieces: list[Packet] = []
    for rec in records:
        pieces.extend([rec] if _record_size(rec) <= room else _split_record(rec, room))
    options: list[MIP6OptMulticastState] = []
    current: list[Packet] = []
    used = 0
    for rec in pieces:
        size = _record_size(rec)
        if current and used + size > room:
            options.append(MIP6OptMulticastState(report_type=report_type, records=current))
            current, used = [], 0
        current.append(rec)
        used += size
    if current or not options:
        options.append(MIP6OptMulticastState(report_type=report_type, records=current))
    return options


# The MLDv2 and IGMPv3 report layers that read every record replace scapy's own in its
# tables: whoever dissects with the project's layers gets them (they use the records above).
from harness.wire import mcast_reports  # noqa: E402, F401  (registration is the effect)
