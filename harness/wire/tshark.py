"""tshark (Wireshark 4.0) as an independent oracle for what the suite puts on the wire.

:func:`dissect` writes the packets to a temporary pcap, runs ``tshark -r FILE -T json
-n`` and returns one :class:`Frame` per packet: a dict from Wireshark field name
(``mip6.bi.bid``, ``dhcpv6.option.type``...) to the list of every value shown for it,
in packet order, plus the expert-info entries. :func:`malformed` picks out the marks
Wireshark uses for malformed packets and error-level problems.

The field names below were read from ``tshark -G fields`` of TShark 4.0.17 and
checked by dissecting packets built from the RFC figures (the notes record where
Wireshark's picture of an option differs from the RFC). Wireshark is a second
implementation, not an authority: where it and an RFC disagree, the RFC wins and
the mapping says so.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet
from scapy.utils import RawPcapWriter

from harness.wire import layers as _layers  # noqa: F401  (scapy dissects with every project layer)
from harness.wire.compact import McastRecord

# pcap link types (https://www.tcpdump.org/linktypes.html)
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101  # raw IPv4 or IPv6, version from the first nibble
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229

DEFAULT_TIMEOUT = 60.0

# epan/proto.h expert severities and groups, as tshark's JSON prints them (decimal).
PI_COMMENT = 0x00100000
PI_CHAT = 0x00200000
PI_NOTE = 0x00400000
PI_WARN = 0x00600000
PI_ERROR = 0x00800000
PI_MALFORMED = 0x07000000
PI_UNDECODED = 0x05000000
PI_PROTOCOL = 0x09000000
_SEVERITY_NAMES = {
    PI_COMMENT: "comment",
    PI_CHAT: "chat",
    PI_NOTE: "note",
    PI_WARN: "warning",
    PI_ERROR: "error",
}


class TsharkError(RuntimeError):
    """tshark is missing, timed out, or failed; the message is one line."""


# ----------------------------------------------------------------------------- mapping


@dataclass(frozen=True)
class OptionFields:
    """How Wireshark 4.0 shows one Mobility Header option.

    ``protocol`` is the per-option pseudo-protocol; its value is the whole option as
    hex bytes (type and length included) and its presence means "Wireshark recognised
    this option type". ``fields`` maps our name for an RFC field to Wireshark's.
    """

    option_type: int
    protocol: str | None
    fields: dict[str, str]
    note: str = ""


# Mobility Header and message fields (RFC 6275 §6.1; flags past A/H/L/K are later RFCs).
MH_FIELDS: dict[str, str] = {
    "payload_proto": "mip6.proto",
    "header_len": "mip6.hlen",
    "mh_type": "mip6.mhtype",
    "reserved": "mip6.reserved",
    "checksum": "mip6.csum",
    # generic per-option fields; type appears only for option types Wireshark does not
    # dissect, and see OPTION_LEN_NOTE for the length
    "option_type": "mip6.mobility_opt",
    "option_len": "mip6.mobility_opt.len",
}
BU_FIELDS: dict[str, str] = {  # RFC 6275 §6.1.7
    "seq": "mip6.bu.seqnr",
    "lifetime": "mip6.bu.lifetime",  # in units of 4 s, shown raw
    "flag_a": "mip6.bu.a_flag",
    "flag_h": "mip6.bu.h_flag",
    "flag_l": "mip6.bu.l_flag",
    "flag_k": "mip6.bu.k_flag",
    "flag_m": "mip6.bu.m_flag",  # RFC 5380
    "flag_r": "mip6.nemo.bu.r_flag",  # RFC 3963
    "flag_p": "mip6.bu.p_flag",  # RFC 5213
    "flag_f": "mip6.bu.f_flag",  # RFC 5555
    "flag_t": "mip6.bu.t_flag",  # RFC 5845
    "flag_b": "mip6.bu.b_flag",  # RFC 6602
}
BA_FIELDS: dict[str, str] = {  # RFC 6275 §6.1.8
    "status": "mip6.ba.status",
    "seq": "mip6.ba.seqnr",
    "lifetime": "mip6.ba.lifetime",
    "flag_k": "mip6.ba.k_flag",
    "flag_r": "mip6.nemo.ba.r_flag",
    "flag_p": "mip6.ba.p_flag",
    "flag_t": "mip6.ba.t_flag",
    "flag_b": "mip6.ba.b_flag",
}
BE_FIELDS: dict[str, str] = {"status": "mip6.be.status", "home_address": "mip6.be.haddr"}

OPTION_LEN_NOTE = (
    "mip6.mobility_opt.len is right for dissected option types, but for types Wireshark "
    "does not dissect (44, 45, unknown ones) 4.0 shows the Mobility Header's Header Len "
    "value there, not the option's Length octet (the following options still parse "
    "correctly, so Wireshark skips by the real length)"
)

MOBILITY_OPTIONS: dict[str, OptionFields] = {
    "alternate_coa": OptionFields(
        3,
        "mip6.options.acoa",
        {"address": "mip6.acoa.acoa"},  # RFC 6275 §6.2.5
    ),
    "mn_id": OptionFields(
        8,
        "mip6.options.mnid",
        {"subtype": "mip6.mnid.subtype", "identifier": "mip6.mnid.identifier"},  # RFC 4283
    ),
    "message_auth": OptionFields(
        9,
        "mip6.options.auth",
        {
            "subtype": "mip6.auth.subtype",
            "spi": "mip6.auth.mobility_spi",
            "authentication_data": "mip6.auth.auth_data",
        },
        "RFC 4285 §5: Option Length covers Subtype, SPI and Authentication Data, so the "
        "data is Length-5 octets; Wireshark 4.0 shows Length-7 (2 octets short).",
    ),
    "replay_protection": OptionFields(
        10,
        "mip6.options.mseg_id",
        {"timestamp": "mip6.mseg_id.timestamp"},
        "Wireshark names option 10 MESG-ID and shows the 64-bit NTP timestamp "
        "(RFC 4285 §6) as an absolute date string, not as the raw number.",
    ),
    "dns_update": OptionFields(
        17,
        "mip6.options.dnsu",
        {
            "status": "mip6.dnsu.status",
            "flag_r": "mip6.dnsu.flag.r",
            "mn_identity": "mip6.dnsu.mn_id",
        },
        "RFC 5026 §8.1: MN identity is Length-2 octets; Wireshark 4.0 shows Length-4 "
        "(drops the last 2 octets, e.g. the root label) and as raw bytes, not a name.",
    ),
    "experimental": OptionFields(
        18,
        "mip6.options.em",
        {"data": "mip6.em.data"},
        "RFC 5096 §3: Data is Length octets; Wireshark 4.0 shows Length-2 (and nothing "
        "when Length<=2).",
    ),
    "ipv4_home_address": OptionFields(
        29,
        "mip6.options.ipv4ha",
        {
            "prefix_len": "mip6.ipv4ha.preflen",
            "flag_p": "mip6.ipv4ha.p_flag",
            "address": "mip6.ipv4ha.ha",
        },
    ),
    "ipv4_address_ack": OptionFields(
        30,
        "mip6.options.ipv4aa",
        {
            "status": "mip6.ipv4aa.sts",
            "prefix_len": "mip6.ipv4ha.preflen",
            "address": "mip6.ipv4ha.ha",
        },
        "Prefix-len and IPv4 home address reuse the IPv4 Home Address option's field "
        "names (mip6.ipv4ha.*): filter on mip6.options.ipv4aa to tell them apart.",
    ),
    "nat_detection": OptionFields(
        31,
        "mip6.options.natd",
        {
            "flag_f": "mip6.natd.f_flag",
            "reserved": "mip6.natd.reserved",
            "refresh_time": "mip6.natd.refresh_t",
        },
    ),
    "ipv4_coa": OptionFields(
        32,
        "mip6.options.ipv4coa",
        {"reserved": "mip6.ipv4coa.reserved", "address": "mip6.ipv4coa.addr"},
    ),
    "binding_identifier": OptionFields(
        35,
        "mip6.options.bi",
        {
            "bid": "mip6.bi.bid",
            "status": "mip6.bi.status",
            "flag_h": "mip6.bi.h_flag",
            "coa_ipv4": "mip6.bi.coa_ipv4",
            "coa_ipv6": "mip6.bi.coa_ipv6",
        },
        "Matches RFC 5648 §4.3 (Length 4, 8 or 20). There is no BID-PRI field: RFC 5648 "
        "has none; draft-sarikaya §7.1's BID-PRI comes from pre-RFC MCoA drafts.",
    ),
    "flow_summary": OptionFields(
        44,
        None,
        {"option_type": "mip6.mobility_opt"},
        "Not dissected by 4.0: shown as 'Unknown (0x2c)' with a note-level expert "
        "mip6.ie_not_dissected. Wireshark's option table (later versions name them) "
        "uses 44 = Flow Summary, 45 = Flow Identification, as RFC 6089 §4.2.2/§4.2 "
        "do; RFC 6089 §8 (IANA) lists them the other way round. " + OPTION_LEN_NOTE,
    ),
    "flow_identification": OptionFields(
        45,
        None,
        {"option_type": "mip6.mobility_opt"},
        "Not dissected by 4.0: 'Unknown (0x2d)', expert mip6.ie_not_dissected; no "
        "FID, FID-PRI, Status or traffic-selector fields. See flow_summary.",
    ),
}
MOBILITY_OPTION_BY_TYPE: dict[int, OptionFields] = {
    o.option_type: o for o in MOBILITY_OPTIONS.values()
}

# DHCPv6 (RFC 6610). Wireshark 4.0 names the seven option codes but dissects none of
# their bodies: every one shows only dhcpv6.option.type / dhcpv6.option.length (no
# FQDN, prefix or address fields), and the containers' inner options are not listed.
DHCPV6_FIELDS: dict[str, str] = {
    "msg_type": "dhcpv6.msgtype",
    "transaction_id": "dhcpv6.xid",
    "option_type": "dhcpv6.option.type",
    "option_len": "dhcpv6.option.length",
    "option_name": "dhcpv6.option.type_str",
    "requested_option": "dhcpv6.requested_option_code",  # each ORO entry
}
DHCPV6_OPTION_NAMES: dict[int, str] = {  # Wireshark's dhcpv6.option.type_str
    49: "Home Network Identifier FQDN",
    50: "Visited Home Network Information",
    69: "Identified Home Network Information",
    70: "Unrestricted Home Network Information",
    71: "Home Network Prefix",
    72: "Home Agent Address",
    73: "Home Agent FQDN",
}


# MLDv2 Report (RFC 3810 §5.2) and IGMPv3 Membership Report (RFC 3376 §4.2) fields: the
# number of records, then per record its number of sources, Aux Data Len (in 32-bit words, as
# tshark reads it too), group, the sources and the aux data (only of records that have some).
REPORT_FIELDS: dict[int, tuple[str, ...]] = {
    6: tuple(
        "icmpv6.mldr." + n
        for n in ("nb_mcast_records", "mar.nb_sources", "mar.aux_data_len")
        + ("mar.multicast_address", "mar.source_address", "mar.auxiliary_data")
    ),
    4: ("igmp.num_grp_recs", "igmp.num_src", "igmp.aux_data_len")
    + ("igmp.maddr", "igmp.saddr", "igmp.aux_data"),
}


@dataclass(frozen=True)
class ReportSummary:
    """What tshark shows of a report's records, to hold our decoders' reading against."""

    records: int
    sources_per_record: tuple[int, ...]
    aux_words_per_record: tuple[int, ...]
    groups: tuple[bytes, ...]  # packed addresses
    sources: tuple[bytes, ...]
    aux_data: bytes

    @classmethod
    def of(cls, records: Sequence[McastRecord]) -> ReportSummary:
        """The same summary of records read by harness.wire.compact."""
        return cls(
            len(records),
            tuple(len(r.sources) for r in records),
            tuple(len(r.auxdata) // 4 for r in records),
            tuple(ipaddress.ip_address(r.maddr).packed for r in records),
            tuple(ipaddress.ip_address(s).packed for r in records for s in r.sources),
            b"".join(r.auxdata for r in records),
        )


def report_summary(frame: Frame, family: int) -> ReportSummary:
    """tshark's reading of the MLDv2 (family 6) or IGMPv3 (4) report in `frame`."""
    count, nsrc, aux, groups, sources, auxdata = (frame.get(n, []) for n in REPORT_FIELDS[family])
    return ReportSummary(
        int(count[0]) if count else 0,
        tuple(int(n) for n in nsrc),
        tuple(int(a) for a in aux),
        tuple(ipaddress.ip_address(g).packed for g in groups),
        tuple(ipaddress.ip_address(s).packed for s in sources),
        b"".join(bytes.fromhex(a.replace(":", "")) for a in auxdata),
    )


# ---------------------------------------------------------------------------- running


def tshark_path() -> str | None:
    """The tshark binary (env DMMCONF_TSHARK overrides the PATH lookup)."""
    return shutil.which(os.environ.get("DMMCONF_TSHARK") or "tshark")


def available() -> bool:
    return tshark_path() is not None


@dataclass(frozen=True)
class Expert:
    """One expert-info entry (``_ws.expert``) of a frame."""

    message: str
    severity: int
    group: int
    field: str | None = None  # the expert's own field, e.g. "mip6.ie_not_dissected"

    @property
    def severity_name(self) -> str:
        return _SEVERITY_NAMES.get(self.severity, hex(self.severity))

    @property
    def is_problem(self) -> bool:
        """Error level, or anything in the Malformed group."""
        return self.severity >= PI_ERROR or self.group == PI_MALFORMED

    def __str__(self) -> str:
        where = f"{self.field}: " if self.field else ""
        return f"[{self.severity_name}] {where}{self.message}"


class Frame(dict[str, list[str]]):
    """Field name -> every value Wireshark showed for it in this packet, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.experts: list[Expert] = []
        self.malformed_marks: list[str] = []

    def first(self, name: str, default: str | None = None) -> str | None:
        values = self.get(name)
        return values[0] if values else default

    def ints(self, name: str) -> list[int]:
        return [int(v, 0) for v in self.get(name, [])]


def _is_object(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(x, tuple) for x in value)


def _expert(pairs: list[tuple[str, Any]]) -> Expert:
    d = {k: v for k, v in pairs if isinstance(v, str)}
    own = [k for k, _ in pairs if not k.startswith("_ws.expert")]
    return Expert(
        message=d.get("_ws.expert.message", ""),
        severity=int(d.get("_ws.expert.severity", "0"), 0),
        group=int(d.get("_ws.expert.group", "0"), 0),
        field=own[0] if own else None,
    )


def _walk(node: list[tuple[str, Any]], frame: Frame) -> None:
    for key, value in node:
        if key == "_ws.expert" and _is_object(value):
            frame.experts.append(_expert(value))
        if key == "_ws.malformed" and isinstance(value, str):
            frame.malformed_marks.append(value)
        _add(key, value, frame)


def _add(key: str, value: Any, frame: Frame) -> None:
    if _is_object(value) and value:
        _walk(value, frame)
    elif isinstance(value, list):  # a JSON array (tshark --no-duplicate-keys style)
        for item in value:
            _add(key, item, frame)
    elif value is not None:
        frame.setdefault(key, []).append(value if isinstance(value, str) else json.dumps(value))


def _linktype_of(pkt: Packet | bytes) -> int:
    if isinstance(pkt, Packet):
        if isinstance(pkt, Ether):
            return LINKTYPE_ETHERNET
        if isinstance(pkt, IPv6):
            return LINKTYPE_IPV6
        if isinstance(pkt, IP):
            return LINKTYPE_IPV4
        raise ValueError(f"cannot tell the link type of a {type(pkt).__name__}; pass linktype=")
    data = bytes(pkt)
    return LINKTYPE_IPV4 if data and data[0] >> 4 == 4 else LINKTYPE_IPV6


def parse_json(text: str) -> list[Frame]:
    """Frames from ``tshark -T json`` output (duplicate keys kept, unlike json.loads)."""
    try:
        doc = json.loads(text, object_pairs_hook=lambda pairs: pairs)
    except json.JSONDecodeError as exc:
        raise TsharkError(f"tshark printed something that is not JSON: {exc}") from None
    frames: list[Frame] = []
    for pkt in doc or []:
        frame = Frame()
        source = dict(pkt).get("_source", [])
        layers = dict(source).get("layers", []) if _is_object(source) else []
        if _is_object(layers):
            _walk(layers, frame)
        frames.append(frame)
    return frames


def dissect(
    packets: Sequence[Packet | bytes],
    linktype: int | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    extra_args: Iterable[str] = (),
) -> list[Frame]:
    """Dissect ``packets`` with tshark; one :class:`Frame` per packet, in order.

    ``linktype`` defaults to what the first packet looks like: Ether -> Ethernet, IPv6
    -> LINKTYPE_IPV6 (229), IP -> LINKTYPE_IPV4 (228); bytes are raw IPv6 unless
    their first nibble is 4. Raises :class:`TsharkError` when tshark is missing,
    times out or fails.
    """
    exe = tshark_path()
    if exe is None:
        raise TsharkError("tshark not found on PATH (apt-get install tshark)")
    if not packets:
        return []
    lt = linktype if linktype is not None else _linktype_of(packets[0])
    with tempfile.TemporaryDirectory(prefix="dmmconf-tshark-") as tmp:
        path = os.path.join(tmp, "packets.pcap")
        writer = RawPcapWriter(path, linktype=lt, sync=True)
        try:
            for p in packets:
                writer.write(bytes(p))
        finally:
            writer.close()
        cmd = [exe, "-r", path, "-T", "json", "-n", *extra_args]
        # an empty personal configuration: the user's Wireshark profile (decode-as,
        # disabled protocols, preferences) must not change what the oracle says
        confdir = os.path.join(tmp, "wireshark-config")
        os.mkdir(confdir)
        env = dict(os.environ, WIRESHARK_CONFIG_DIR=confdir)
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout, check=False, env=env
            )
        except subprocess.TimeoutExpired:
            raise TsharkError(f"tshark did not finish within {timeout:g} s") from None
        except OSError as exc:
            raise TsharkError(f"cannot run tshark: {exc}") from None
    if proc.returncode != 0:
        lines = [
            ln for ln in proc.stderr.splitlines() if ln.strip() and "Running as user" not in ln
        ]
        why = lines[-1].strip() if lines else "no message"
        raise TsharkError(f"tshark exited with status {proc.returncode}: {why}")
    frames = parse_json(proc.stdout)
    if len(frames) != len(packets):
        raise TsharkError(f"tshark returned {len(frames)} frames for {len(packets)} packets")
    return frames


def malformed(frame: Frame | dict[str, list[str]]) -> list[str]:
    """Marks of a malformed packet or an error-level problem, one string each.

    These are the ``_ws.malformed`` items and every expert entry of error severity or
    in the Malformed group; notes and warnings (e.g. "IE data not dissected yet") are
    left to :func:`problems`.
    """
    if isinstance(frame, Frame):
        out = [str(e) for e in frame.experts if e.is_problem]
        if frame.malformed_marks and not any("Malformed" in m for m in out):
            out.extend(frame.malformed_marks)
        return out
    # a plain dict: rebuild from the flattened expert fields
    out = []
    messages = frame.get("_ws.expert.message", [])
    severities = frame.get("_ws.expert.severity", [])
    groups = frame.get("_ws.expert.group", [])
    for msg, sev, grp in zip(messages, severities, groups, strict=False):
        if int(sev, 0) >= PI_ERROR or int(grp, 0) == PI_MALFORMED:
            out.append(msg)
    if frame.get("_ws.malformed") and not out:
        out.extend(frame["_ws.malformed"])
    return out


def problems(frame: Frame, min_severity: int = PI_WARN) -> list[Expert]:
    """Expert entries at or above ``min_severity`` (default: warnings and errors)."""
    return [e for e in frame.experts if e.severity >= min_severity or e.group == PI_MALFORMED]


def version() -> str:
    """First line of ``tshark -v`` (for reports)."""
    exe = tshark_path()
    if exe is None:
        raise TsharkError("tshark not found on PATH (apt-get install tshark)")
    try:
        proc = subprocess.run([exe, "-v"], capture_output=True, text=True, timeout=30, check=False)
    except (subprocess.TimeoutExpired, OSError) as exc:
        raise TsharkError(f"cannot run tshark -v: {exc}") from None
    return proc.stdout.splitlines()[0].strip() if proc.stdout else ""
