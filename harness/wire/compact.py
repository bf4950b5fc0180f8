"""A second, independent Mobility Header codec: plain `struct`, no scapy.

It parses what arrives on the wire strictly and says what a conformant receiver
does with it (RFC 6275 §9.2 and the option rules of RFC 5648, RFC 6089,
RFC 5026, RFC 5555 and the draft). Pure functions of bytes: the sans-I/O core
that the reference daemons build on, and the oracle for the malformed vectors.
A differential property test holds it equal to the scapy layers.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import socket
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from harness.config import WireConfig
from harness.wire import ipv6, numbers
from harness.wire.errors import Malformed
from harness.wire.ipv6 import internet_checksum
from harness.wire.numbers import BAStatus, MHType, MobOpt

# The IPv6 numbers have their home in ipv6.py; these names are the judge's.
IPV6_HEADER_LEN = ipv6.HEADER_LEN
NH_HOPOPTS, NH_ROUTING, NH_DSTOPTS = ipv6.HOPOPTS, ipv6.ROUTING, ipv6.DSTOPTS
NH_MOBILITY, NH_NONE, NH_ICMPV6 = ipv6.MOBILITY, ipv6.NO_NEXT, ipv6.ICMPV6
NH_IGMP = 2
HAO_TYPE = ipv6.HOME_ADDRESS_OPTION

# RFC 6275 §9.2: the smallest Header Len accepted per MH type (in octets, whole header).
MIN_MH_LEN = {
    MHType.BRR: 8,
    MHType.HOTI: 16,
    MHType.COTI: 16,
    MHType.HOT: 24,
    MHType.COT: 24,
    MHType.BU: 12,
    MHType.BA: 12,
    MHType.BE: 24,
}
FIXED_PART = {MHType.BRR: 8, MHType.BU: 12, MHType.BA: 12, MHType.BE: 24}


class ReactionKind(StrEnum):
    ACCEPT = "accept"
    DISCARD = "discard"  # silently
    ICMP_PARAMETER_PROBLEM = "icmp-parameter-problem"  # discard and send ICMPv6 type 4
    BINDING_ERROR = "binding-error"
    BINDING_ACK = "binding-ack"


@dataclass(frozen=True)
class Reaction:
    """What the receiver of a message does, as a tester can observe it."""

    kind: ReactionKind
    status: int | None = None  # BA or BE status, or ICMP code
    pointer: int | None = None  # ICMPv6 Parameter Problem pointer (from the IPv6 header)
    option_status: tuple[tuple[str, int], ...] = ()  # e.g. (("BID", 164),)
    ignored_options: tuple[int, ...] = ()  # options skipped as not allowed in this message
    multicast_installed: bool | None = None  # BU with Multicast State: was the state taken
    reason: str = ""

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"kind": self.kind.value}
        for name in ("status", "pointer", "multicast_installed"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.option_status:
            out["option_status"] = dict(self.option_status)
        if self.ignored_options:
            out["ignored_options"] = list(self.ignored_options)
        return out

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Reaction:
        status = data.get("option_status") or {}
        assert isinstance(status, dict)
        ignored = data.get("ignored_options") or []
        assert isinstance(ignored, list)
        return cls(
            kind=ReactionKind(str(data["kind"])),
            status=data.get("status"),  # type: ignore[arg-type]
            pointer=data.get("pointer"),  # type: ignore[arg-type]
            option_status=tuple(sorted(status.items())),
            ignored_options=tuple(ignored),
            multicast_installed=data.get("multicast_installed"),  # type: ignore[arg-type]
        )

    def same_verdict(self, other: Reaction) -> bool:
        """Equal in everything a tester observes (the reason text is for humans)."""
        return self.to_json() == other.to_json()


# --- Parsed structures -----------------------------------------------------------------------


@dataclass(frozen=True)
class McastRecord:
    rtype: int
    maddr: str
    sources: tuple[str, ...]
    auxdata: bytes = b""


@dataclass(frozen=True)
class McastState:
    report_type: int
    checksum: int
    checksum_ok: bool
    records: tuple[McastRecord, ...]


@dataclass(frozen=True)
class Option:
    otype: int
    offset: int  # from the start of the Mobility Header
    data: bytes


@dataclass
class MobilityMessage:
    """A Mobility Header as parsed; its addresses kept as the 16 octets of the wire, and
    written as text only when asked for (`src`, `dst`, `hoa`, `rh2_hoa`)."""

    src_raw: bytes
    dst_raw: bytes
    hoa_raw: bytes | None  # from the Home Address option
    rh2_raw: bytes | None  # from a type 2 routing header
    mh_offset: int  # from the start of the IPv6 packet
    payload_proto: int
    header_len: int  # octets
    mhtype: int
    checksum: int
    checksum_ok: bool
    body: bytes  # the whole Mobility Header
    options: list[Option] = field(default_factory=list)

    @property
    def src(self) -> str:
        return _addr(self.src_raw)

    @property
    def dst(self) -> str:
        return _addr(self.dst_raw)

    @property
    def hoa(self) -> str | None:
        return None if self.hoa_raw is None else _addr(self.hoa_raw)

    @property
    def rh2_hoa(self) -> str | None:
        return None if self.rh2_raw is None else _addr(self.rh2_raw)

    # BU / BA fixed fields
    @property
    def seq(self) -> int:
        off = 6 if self.mhtype == MHType.BU else 8
        return int(struct.unpack_from("!H", self.body, off)[0])

    @property
    def lifetime(self) -> int:
        off = 10
        return int(struct.unpack_from("!H", self.body, off)[0])

    @property
    def bu_flags(self) -> int:
        return int(struct.unpack_from("!H", self.body, 8)[0]) >> 6

    @property
    def ba_status(self) -> int:
        return self.body[6]


def mh_checksum(src: str | bytes, dst: str | bytes, mh: bytes) -> int:
    """RFC 6275 §6.1.1 (pseudo-header of RFC 2460 §8.1, next header 135), checksum field zeroed."""
    mh = mh[:4] + b"\x00\x00" + mh[6:]
    pseudo = _packed(src) + _packed(dst) + struct.pack("!IxxxB", len(mh), NH_MOBILITY)
    return internet_checksum(pseudo + mh)


def report_checksum(body: bytes) -> int:
    return internet_checksum(body[:2] + b"\x00\x00" + body[4:])


_V4_IN_V6_PREFIX = bytes(10)  # ::/80: inet_ntop writes ::a.b.c.d and ::ffff:a.b.c.d forms


def _addr(raw: bytes) -> str:
    """An address as text, as `ipaddress` writes it (RFC 5952). inet_ntop is five times
    faster and agrees, except on the IPv4-compatible and -mapped forms it writes dotted."""
    if len(raw) == 16 and not raw.startswith(_V4_IN_V6_PREFIX):
        return socket.inet_ntop(socket.AF_INET6, raw)
    return str(ipaddress.ip_address(raw))


def _packed(addr: str | bytes) -> bytes:
    if isinstance(addr, bytes):
        return addr
    try:  # inet_pton: ten times faster than ipaddress; it refuses only scoped text
        return socket.inet_pton(socket.AF_INET6 if ":" in addr else socket.AF_INET, addr)
    except OSError:
        return ipaddress.ip_address(addr).packed


def parse_packet(packet: bytes) -> MobilityMessage:
    """Find the Mobility Header in an IPv6 packet and parse its header and option TLVs."""
    walked = ipv6.parse(packet, strict=True)
    assert walked is not None  # strict: Malformed instead
    if walked.fragmented:  # a BU is never fragmented by a conformant sender
        raise Malformed(f"no Mobility Header (next header {ipv6.FRAGMENT})")
    nh, pos = walked.upper, walked.offset
    src, dst = walked.raw[8:24], walked.raw[24:40]
    hoa, rh2 = walked.hoa, walked.rh2
    if nh != NH_MOBILITY:
        raise Malformed(f"no Mobility Header (next header {nh})")
    mh = walked.raw[pos:]
    if len(mh) < 6:
        raise Malformed(f"Mobility Header truncated: {len(mh)} octets")
    header_len = 8 * (mh[1] + 1)
    if header_len > len(mh):
        raise Malformed(f"Mobility Header Len says {header_len} octets, {len(mh)} present")
    mh = mh[:header_len]
    csum = struct.unpack_from("!H", mh, 4)[0]
    pseudo_src = hoa or src
    pseudo_dst = rh2 or dst
    msg = MobilityMessage(
        src_raw=src,
        dst_raw=dst,
        hoa_raw=hoa,
        rh2_raw=rh2,
        mh_offset=pos,
        payload_proto=mh[0],
        header_len=header_len,
        mhtype=mh[2],
        checksum=csum,
        checksum_ok=mh_checksum(pseudo_src, pseudo_dst, mh) == csum,
        body=mh,
    )
    fixed = FIXED_PART.get(MHType(msg.mhtype)) if msg.mhtype in FIXED_PART else None
    if fixed is not None and header_len >= fixed:
        msg.options = parse_options(mh, fixed)
    return msg


def parse_options(mh: bytes, start: int) -> list[Option]:
    """Mobility option TLVs (RFC 6275 §6.2.1); Pad1 and PadN are consumed, not returned."""
    options: list[Option] = []
    pos = start
    while pos < len(mh):
        otype = mh[pos]
        if otype == MobOpt.PAD1:
            pos += 1
            continue
        if pos + 2 > len(mh):
            raise Malformed(f"option type {otype} at offset {pos} has no length octet")
        olen = mh[pos + 1]
        if pos + 2 + olen > len(mh):
            raise Malformed(
                f"option type {otype} at offset {pos}: length {olen} runs past the header"
            )
        if otype != MobOpt.PADN:
            options.append(Option(otype, pos, mh[pos + 2 : pos + 2 + olen]))
        pos += 2 + olen
    return options


# --- MLDv2 and IGMPv3 reports: the project's one parser ------------------------------------
#
# An MLDv2 Report (RFC 3810 §5.2), an IGMPv3 Membership Report (RFC 3376 §4.2) and the body of
# the Multicast State option (draft §4.1) share one layout: Type, Reserved, Checksum, Reserved,
# Number of Records, then the records. Everything in the project that reads records reads
# them here (the lab's MLD proxy, the reference daemons, the suites, `dmmconf decode`); the
# scapy layers of harness.wire.mcast_reports are the second, independent reading.

REPORT_HEADER_LEN = 8
AUX_WORD = 4  # Aux Data Len counts 32-bit words (RFC 3810 §5.2.6, RFC 3376 §4.2.6)


def report_header(data: bytes) -> tuple[int, int, int, int]:
    """(report type, checksum, declared number of records, address length) of a report."""
    if len(data) < REPORT_HEADER_LEN:
        raise Malformed(f"report is {len(data)} octets, its header needs {REPORT_HEADER_LEN}")
    rtype_report, _res, csum, _res2, count = struct.unpack_from("!BBHHH", data)
    if rtype_report not in (numbers.MLDV2_REPORT, numbers.IGMPV3_REPORT):
        raise Malformed(f"report type {rtype_report} is neither MLDv2 (143) nor IGMPv3 (34)")
    return rtype_report, csum, count, 16 if rtype_report == numbers.MLDV2_REPORT else 4


KNOWN_RECORD_TYPES = range(1, 7)  # RFC 3810 §5.2.12, RFC 3376 §4.2.12


def _walk_records(data: bytes, known_types_only: bool) -> Iterator[tuple[McastRecord, int]]:
    """Each record with the offset just past it, as many as the header declares (RFC 3810
    §5.2.3); Malformed at the first one that does not fit, after those before it."""
    _report, _csum, count, alen = report_header(data)
    pos = REPORT_HEADER_LEN
    for n in range(count):
        if pos + 4 + alen > len(data):
            raise Malformed(f"record {n + 1} of {count} truncated at offset {pos}")
        rtype, auxlen, nsrc = struct.unpack_from("!BBH", data, pos)
        if known_types_only and rtype not in KNOWN_RECORD_TYPES:
            raise Malformed(f"record {n + 1}: unknown record type {rtype}")
        maddr = _addr(data[pos + 4 : pos + 4 + alen])
        pos += 4 + alen
        need = nsrc * alen + auxlen * AUX_WORD
        if pos + need > len(data):
            raise Malformed(f"record {n + 1}: {nsrc} sources and {auxlen} aux words overflow")
        sources = tuple(_addr(data[pos + i * alen : pos + (i + 1) * alen]) for i in range(nsrc))
        pos += nsrc * alen
        aux = data[pos : pos + auxlen * AUX_WORD]
        pos += auxlen * AUX_WORD
        yield McastRecord(rtype, maddr, sources, aux), pos


def report_records(data: bytes) -> Iterator[McastRecord]:
    """The records of a report as received, in order; records of unknown type included (the
    receiver ignores them, RFC 3810 §5.2.12, RFC 3376 §4.2.12). Raises Malformed when the
    header is short or a record overruns the data, after yielding the records before it, so
    a caller may keep those (`records_before_overrun`)."""
    for rec, _end in _walk_records(data, known_types_only=False):
        yield rec


def records_before_overrun(data: bytes) -> list[McastRecord]:
    """The records of a report up to the first that overruns it (none for a short header):
    what a router that processes records as it reads them has taken in (Linux's bridge
    snooping does so) when the declared counts overrun the packet."""
    out: list[McastRecord] = []
    with contextlib.suppress(Malformed):
        out.extend(report_records(data))
    return out


def parse_report(data: bytes, pseudo_header: bytes = b"") -> McastState:
    """An MLDv2 Report or IGMPv3 Membership Report as received on the wire (ICMPv6 or IGMP
    message, no IP header). Octets after the last record are ignored (RFC 3810 §5.2.11,
    RFC 3376 §4.2.11); Malformed when the declared counts overrun the message.
    `checksum_ok` covers `pseudo_header + data`: an MLDv2 Report needs the IPv6
    pseudo-header (RFC 3810 §5.2.2) for it to mean anything, an IGMPv3 Report has none."""
    rtype_report, csum, _count, _alen = report_header(data)
    records = tuple(report_records(data))
    whole = pseudo_header + data[:2] + b"\x00\x00" + data[4:]
    return McastState(rtype_report, csum, internet_checksum(whole) == csum, records)


def report_in_packet(packet: bytes) -> tuple[bytes, bytes] | None:
    """The MLDv2 Report an IPv6 packet carries (after its extension headers, the Hop-by-Hop
    with the Router Alert first, RFC 3810 §5) or the IGMPv3 Membership Report of an IPv4
    packet (after the header's options, RFC 3376 §4), up to the end the IP header gives,
    with the pseudo-header its checksum covers (RFC 8200 §8.1; IGMP has none). None when
    the packet carries no report."""
    if len(packet) >= 20 and packet[0] >> 4 == 4:
        ihl, total = 4 * (packet[0] & 0x0F), struct.unpack_from("!H", packet, 2)[0]
        message = packet[ihl : min(total, len(packet))]
        if packet[9] != NH_IGMP or len(message) < REPORT_HEADER_LEN:
            return None
        return (message, b"") if message[0] == numbers.IGMPV3_REPORT else None
    walked = ipv6.parse(packet)
    if walked is None or walked.fragmented or walked.upper != NH_ICMPV6:
        return None
    message = walked.payload
    if len(message) < REPORT_HEADER_LEN or message[0] != numbers.MLDV2_REPORT:
        return None
    return message, walked.pseudo_header()


def parse_multicast_state(data: bytes) -> McastState:
    """The body of a Multicast State option (draft §4.1, RFC 3810 §5.2 / RFC 3376 §4.2),
    strictly: unknown record types and octets after the records are malformed too."""
    rtype_report, csum, count, _alen = report_header(data)
    records, end = [], REPORT_HEADER_LEN
    for rec, pos in _walk_records(data, known_types_only=True):
        records.append(rec)
        end = pos
    if end != len(data):
        raise Malformed(f"{len(data) - end} octets after the {count} records the header counts")
    return McastState(rtype_report, csum, report_checksum(data) == csum, tuple(records))


def multicast_state_as_received(data: bytes) -> McastState:
    """The body of a Multicast State option as a receiver takes it in (INT-1): records of
    an unknown type ignored and the rest processed (RFC 3810 §5.2.12, RFC 3376 §4.2.12);
    counts that overrun the body, or octets after its records, make it malformed."""
    rtype_report, csum, count, _alen = report_header(data)
    records, end = [], REPORT_HEADER_LEN
    for rec, pos in _walk_records(data, known_types_only=False):
        if rec.rtype in KNOWN_RECORD_TYPES:
            records.append(rec)
        end = pos
    if end != len(data):
        raise Malformed(f"{len(data) - end} octets after the {count} records the header counts")
    return McastState(rtype_report, csum, report_checksum(data) == csum, tuple(records))


def is_multicast_state(opt: Option, config: WireConfig) -> bool:
    if opt.otype != config.multicast_state_type:
        return False
    if opt.otype != MobOpt.EXPERIMENTAL:
        return True
    return len(opt.data) >= 8 and opt.data[0] in (numbers.MLDV2_REPORT, numbers.IGMPV3_REPORT)


# --- What a receiver does ---------------------------------------------------------------------

# Options that a Binding Update must not carry (they belong to the BA); RFC 6275 §6.2 lets a
# receiver skip what it does not expect, so they are ignored, not fatal.
BA_ONLY_OPTIONS = (MobOpt.IPV4_ADDRESS_ACK, MobOpt.NAT_DETECTION)


def judge(packet: bytes, config: WireConfig | None = None) -> Reaction:
    """The reaction of a conformant home agent receiving `packet` (an IPv6 packet)."""
    config = config or WireConfig.from_env()
    try:
        msg = parse_packet(packet)
    except Malformed as exc:
        return Reaction(ReactionKind.DISCARD, reason=str(exc))
    return judge_message(msg, config)


def judge_message(msg: MobilityMessage, config: WireConfig) -> Reaction:
    # RFC 6275 §9.2, in its order: checksum, payload proto, MH type, header length.
    if not msg.checksum_ok:
        return Reaction(ReactionKind.DISCARD, reason="Mobility Header checksum is wrong")
    if msg.payload_proto != NH_NONE:
        return Reaction(
            ReactionKind.ICMP_PARAMETER_PROBLEM,
            status=0,
            pointer=msg.mh_offset,
            reason=f"Payload Proto is {msg.payload_proto}, not 59",
        )
    known = {int(t) for t in MHType if t != MHType.EXPERIMENTAL}
    if msg.mhtype not in known:
        return Reaction(ReactionKind.BINDING_ERROR, status=2, reason="unrecognised MH type")
    if msg.header_len < MIN_MH_LEN[MHType(msg.mhtype)]:
        return Reaction(
            ReactionKind.ICMP_PARAMETER_PROBLEM,
            status=0,
            pointer=msg.mh_offset + 1,
            reason=f"Header Len {msg.header_len} below the minimum for MH type {msg.mhtype}",
        )
    if msg.mhtype != MHType.BU:
        # A home agent expects only Binding Updates; route optimisation is off (draft §6).
        return Reaction(ReactionKind.DISCARD, reason=f"MH type {msg.mhtype} is not for a HA")
    try:
        options = parse_options(msg.body, FIXED_PART[MHType.BU])
    except Malformed as exc:
        return Reaction(ReactionKind.DISCARD, reason=f"option layout broken: {exc}")
    return _judge_binding_update(options, config)


def _judge_binding_update(options: list[Option], config: WireConfig) -> Reaction:
    ignored = tuple(o.otype for o in options if o.otype in BA_ONLY_OPTIONS)
    ignored += tuple(o.otype for o in options if o.otype == config.alt_ha_tunnel_address_type)
    for opt in options:
        if opt.otype == MobOpt.BINDING_IDENTIFIER and len(opt.data) not in (4, 8, 20):
            # RFC 5648 §6.2, first rule.
            return Reaction(
                ReactionKind.BINDING_ACK,
                status=BAStatus.MCOA_MALFORMED,
                reason=f"BID option length {len(opt.data)} is not 4, 8 or 20",
            )
    option_status: list[tuple[str, int]] = []
    for opt in options:
        if opt.otype == MobOpt.FLOW_IDENTIFICATION and len(opt.data) < 6:
            option_status.append(("FID", 130))  # RFC 6089 §4.2: option malformed
    mcast = [o for o in options if is_multicast_state(o, config)]
    installed: bool | None = None
    reason = ""
    if mcast:
        installed = True
        for opt in mcast:
            try:
                state = multicast_state_as_received(opt.data)
            except Malformed as exc:
                installed, reason = False, f"Multicast State not installed: {exc}"
                break
            if not state.checksum_ok:
                installed, reason = False, "Multicast State not installed: report checksum wrong"
                break
    return Reaction(
        ReactionKind.BINDING_ACK,
        status=BAStatus.ACCEPTED,
        option_status=tuple(option_status),
        ignored_options=ignored,
        multicast_installed=installed,
        reason=reason,
    )


# --- Alignment (RFC 6275 §6.2 xn+y notation), stated once more, from the RFC texts ----------

_ALIGNMENT: dict[int, tuple[int, int]] = {
    MobOpt.BINDING_REFRESH_ADVICE: (2, 0),  # RFC 6275 §6.2.4
    MobOpt.ALTERNATE_COA: (8, 6),  # RFC 6275 §6.2.5
    MobOpt.NONCE_INDICES: (2, 0),  # RFC 6275 §6.2.6
    MobOpt.BINDING_AUTH_DATA: (8, 2),  # RFC 6275 §6.2.7
    MobOpt.MESSAGE_AUTH: (4, 1),  # RFC 4285 §5
    MobOpt.REPLAY_PROTECTION: (8, 2),  # RFC 4285 §6
    MobOpt.IPV4_HOME_ADDRESS: (4, 0),  # RFC 5555 §3.1.1
    MobOpt.IPV4_CARE_OF_ADDRESS: (4, 0),  # RFC 5555 §3.1.2
    MobOpt.IPV4_ADDRESS_ACK: (4, 0),  # RFC 5555 §3.2.1
    MobOpt.NAT_DETECTION: (4, 0),  # RFC 5555 §3.2.2
    MobOpt.FLOW_IDENTIFICATION: (2, 0),  # RFC 6089 §4.2
    MobOpt.FLOW_SUMMARY: (2, 0),  # RFC 6089 §4.2.2
}


def required_alignment(opt: Option, config: WireConfig) -> tuple[int, int]:
    """(x, y): the option must start at an offset x*n + y from the start of the MH."""
    if is_multicast_state(opt, config):
        return (8, 2)  # docs/interpretations.md, point 4
    if opt.otype == config.alt_ha_tunnel_address_type:
        return (8, 6)  # draft-perkins-mext-hatunaddr-02 §2
    if opt.otype == MobOpt.BINDING_IDENTIFIER:
        return (2, 0) if len(opt.data) == 4 else (8, 2)  # RFC 5648 §4.3
    return _ALIGNMENT.get(opt.otype, (1, 0))


def data_plane_address(
    options: Iterable[Option], config: WireConfig | None = None
) -> ipaddress.IPv6Address | None:
    """The HA data plane function's address a BA names (draft §9, INT-9): an Alternate Home
    Agent Tunnel Address option (the configured type), else an Alternate Care-of Address
    option, each with a 16-octet address; None when it names none."""
    config = config or WireConfig.from_env()
    found = {o.otype: o.data for o in options if len(o.data) == 16}
    for otype in (config.alt_ha_tunnel_address_type, MobOpt.ALTERNATE_COA):
        if otype in found:
            return ipaddress.IPv6Address(found[otype])
    return None


def misaligned(options: list[Option], config: WireConfig) -> list[str]:
    """Each option that does not start where its alignment rule puts it."""
    out = []
    for opt in options:
        x, y = required_alignment(opt, config)
        if opt.offset % x != y % x:
            out.append(f"option {opt.otype} at offset {opt.offset}, needs {x}n+{y}")
    return out


def padding_problems(mh: bytes, start: int) -> list[str]:
    """Pad1/PadN that carry non-zero octets, and a header that is not a multiple of 8."""
    out = []
    if len(mh) % 8:
        out.append(f"Mobility Header is {len(mh)} octets, not a multiple of 8")
    pos = start
    while pos < len(mh):
        otype = mh[pos]
        if otype == MobOpt.PAD1:
            pos += 1
            continue
        olen = mh[pos + 1] if pos + 1 < len(mh) else 0
        if otype == MobOpt.PADN and any(mh[pos + 2 : pos + 2 + olen]):
            out.append(f"PadN at offset {pos} carries non-zero octets")
        pos += 2 + olen
    return out


# --- Encoding: the inverse of the parsers above, byte for byte what scapy's layers build ----


def _pad(delta: int) -> bytes:
    """Pad1 or PadN of `delta` octets (RFC 6275 §6.2.2, §6.2.3)."""
    if delta == 0:
        return b""
    return b"\x00" if delta == 1 else bytes((MobOpt.PADN, delta - 2)) + bytes(delta - 2)


# Where the encoder puts an option when the project's senders are stricter than its rule: the
# Flow Identification option at 8n, so that its sub-options' alignment, counted from the
# option (RFC 6089 §4.2.1), holds counted from the MH too (as the scapy layer does).
SENDER_ALIGNMENT: dict[int, tuple[int, int]] = {MobOpt.FLOW_IDENTIFICATION: (8, 0)}


def _alignment_delta(x: int, y: int, pos: int) -> int:
    return (y - pos) % x if x > 1 else 0


def encode_options(
    options: Iterable[tuple[int, bytes]], start: int, config: WireConfig | None = None
) -> bytes:
    """Mobility option TLVs from offset `start` of the MH, each padded to its alignment
    (RFC 6275 §6.2, `required_alignment`), the whole padded to a multiple of 8 octets."""
    config = config or WireConfig.from_env()
    out: list[bytes] = []
    pos = start
    for otype, data in options:
        if len(data) > 255:
            raise ValueError(f"option {otype}: {len(data)} octets of data, at most 255")
        x, y = SENDER_ALIGNMENT.get(otype) or required_alignment(Option(otype, pos, data), config)
        pad = _pad(_alignment_delta(x, y, pos))
        out += (pad, bytes((otype, len(data))), data)
        pos += len(pad) + 2 + len(data)
    out.append(_pad(-pos % 8))
    return b"".join(out)


def encode_report_records(records: Iterable[McastRecord], report_type: int) -> bytes:
    """The records of an MLDv2 (RFC 3810 §5.2.4) or IGMPv3 (RFC 3376 §4.2.4) report."""
    out = []
    for r in records:
        if len(r.auxdata) % AUX_WORD:
            raise ValueError(f"aux data of {len(r.auxdata)} octets is not whole 32-bit words")
        out.append(struct.pack("!BBH", r.rtype, len(r.auxdata) // AUX_WORD, len(r.sources)))
        out += (_packed(a) for a in (r.maddr, *r.sources))
        out.append(r.auxdata)
    return b"".join(out)


def encode_multicast_state(report_type: int, records: Sequence[McastRecord]) -> bytes:
    """The body of a Multicast State option (draft §4.1): the report with its checksum
    over the body alone (INT-2)."""
    body = struct.pack("!BBHHH", report_type, 0, 0, 0, len(records))
    body += encode_report_records(records, report_type)
    return body[:2] + struct.pack("!H", report_checksum(body)) + body[4:]


BU_FLAG_A, BU_FLAG_H = 0x8000, 0x4000  # RFC 6275 §6.1.7, with the other flags after them


def encode_mobility_packet(
    *,
    src: str | bytes,
    dst: str | bytes,
    mhtype: int,
    fixed: bytes,
    options: Iterable[tuple[int, bytes]] = (),
    hoa: str | bytes | None = None,
    rh2: str | bytes | None = None,
    hop_limit: int = 64,
    mn_ha_key: tuple[int, bytes] | None = None,
    config: WireConfig | None = None,
) -> bytes:
    """An IPv6 packet with a Home Address option (`hoa`, from the mobile node, RFC 6275
    §6.3) or a type 2 routing header (`rh2`, to it, §6.4), and a Mobility Header: type
    `mhtype`, the message data after the checksum `fixed`, then the options; lengths and
    the checksum (pseudo-header with the home address) filled. `mn_ha_key` (SPI, key): an
    MN-HA authentication option last, signed over CoA | HoA | MH (RFC 4285 §5.1)."""
    src_b, dst_b = _packed(src), _packed(dst)
    options = list(options)
    if mn_ha_key is not None:
        options.append((MobOpt.MESSAGE_AUTH, struct.pack("!BI", 1, mn_ha_key[0]) + bytes(12)))
    opts = encode_options(options, 6 + len(fixed), config)
    mh = bytearray(struct.pack("!BBBBH", NH_NONE, 0, mhtype, 0, 0) + fixed + opts)
    if len(mh) % 8:
        raise ValueError(f"the message data leaves the MH at {len(mh)} octets, not 8n")
    mh[1] = len(mh) // 8 - 1
    final_src = _packed(hoa) if hoa is not None else src_b  # RFC 6275 §6.1.1 pseudo-header
    final_dst = _packed(rh2) if rh2 is not None else dst_b
    # RFC 4285 §5.1: CoA | HoA are the BU's source and home address, the BA's destination
    # and routing-header address.
    coa, home = (dst_b, final_dst) if mhtype == MHType.BA else (src_b, final_src)
    pseudo = final_src + final_dst
    if mn_ha_key is not None:  # HMAC-SHA1 over CoA | HoA | MH up to the SPI, checksum 0
        spi_end = _last_option_offset(mh, 6 + len(fixed)) + 2 + 5
        mac = hmac.new(mn_ha_key[1], coa + home + bytes(mh[:spi_end]), hashlib.sha1)
        mh[spi_end : spi_end + 12] = mac.digest()[:12]
    pseudo += struct.pack("!IxxxB", len(mh), NH_MOBILITY)
    mh[4:6] = struct.pack("!H", internet_checksum(pseudo + mh))
    ext, nh = b"", NH_MOBILITY
    if rh2 is not None:  # type 2, one address, Segments Left 1 (RFC 6275 §6.4)
        ext, nh = bytes((NH_MOBILITY, 2, 2, 1, 0, 0, 0, 0)) + final_dst, NH_ROUTING
    elif hoa is not None:  # HAO at 8n+6 (RFC 6275 §6.3): PadN of 4 after the header's 2
        ext = bytes((NH_MOBILITY, 2, MobOpt.PADN, 2, 0, 0, HAO_TYPE, 16)) + final_src
        nh = NH_DSTOPTS
    header = struct.pack("!IHBB", 0x60000000, len(ext) + len(mh), nh, hop_limit)
    return header + src_b + dst_b + ext + bytes(mh)


def _last_option_offset(mh: bytes | bytearray, start: int) -> int:
    """Where the last option that is not padding starts."""
    pos, last = start, start
    while pos < len(mh):
        if mh[pos] == MobOpt.PAD1:
            pos += 1
            continue
        if mh[pos] != MobOpt.PADN:
            last = pos
        pos += 2 + mh[pos + 1]
    return last


def encode_binding_update(
    *,
    src: str | bytes,
    dst: str | bytes,
    seq: int,
    lifetime: int,
    hoa: str | bytes | None = None,
    flags: int = BU_FLAG_A | BU_FLAG_H,
    options: Iterable[tuple[int, bytes]] = (),
    mn_ha_key: tuple[int, bytes] | None = None,
    config: WireConfig | None = None,
) -> bytes:
    """A Binding Update (RFC 6275 §6.1.7): `flags` is the 16-bit word after the sequence
    number (A = 0x8000, H = 0x4000, ... and the Reserved bits); `lifetime` in 4 s units;
    `mn_ha_key` (SPI, key) signs it (RFC 4285 §5.1)."""
    fixed = struct.pack("!HHH", seq, flags, lifetime)
    return encode_mobility_packet(
        src=src,
        dst=dst,
        mhtype=MHType.BU,
        fixed=fixed,
        options=options,
        hoa=hoa,
        mn_ha_key=mn_ha_key,
        config=config,
    )


@dataclass(frozen=True)
class BindingIdentifier:
    bid: int
    status: int
    h_flag: bool
    bid_pri: int
    coa: str | None


def parse_binding_identifier(data: bytes) -> BindingIdentifier:
    """RFC 5648 §4.3 with RFC 6089 §4.1's BID-PRI."""
    if len(data) not in (4, 8, 20):
        raise Malformed(f"BID option length {len(data)} is not 4, 8 or 20")
    bid, status, flags = struct.unpack_from("!HBB", data)
    coa = _addr(data[4:]) if len(data) > 4 else None
    return BindingIdentifier(bid, status, bool(flags & 0x80), flags & 0x7F, coa)
