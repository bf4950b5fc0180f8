"""`dmmconf decode HEX | --pcap FILE`: a packet, field by field, as JSON."""

from __future__ import annotations

import argparse
import json
import string
import sys
from pathlib import Path
from typing import Any

from scapy.error import Scapy_Exception
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.packet import Packet
from scapy.utils import rdpcap

from harness.config import ConfigError, WireConfig
from harness.errors import MalformedInput, UserError
from harness.wire import compact
from harness.wire import layers as _layers  # noqa: F401  (scapy dissects with every project layer)
from harness.wire.fields import to_json
from harness.wire.numbers import IGMPV3_REPORT, MLDV2_REPORT, McastRecordType


def register(sub: Any) -> None:
    p = sub.add_parser(
        "decode",
        help="decode a packet (hex of an IPv6/IPv4 packet, or every packet of a pcap) as JSON",
        description="Decode IPv6 (or IPv4) packets field by field. A Mobility Header is also "
        "checked strictly: a truncated or inconsistent one is an error (exit 1).",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("hex", nargs="?", help="the packet as hex (spaces and colons allowed)")
    src.add_argument("--pcap", metavar="FILE", help="decode every packet of this pcap file")
    p.add_argument(
        "--judge",
        action="store_true",
        help="add the reaction of a conformant home agent (RFC 6275 §9.2 and options)",
    )
    p.set_defaults(func=run)


def parse_hex(text: str) -> bytes:
    cleaned = "".join(ch for ch in text if ch not in " :\n\t")
    if cleaned.startswith(("0x", "0X")):
        cleaned = cleaned[2:]
    if not cleaned:
        raise UserError("no hex given")
    bad = next((ch for ch in cleaned if ch not in string.hexdigits), None)
    if bad is not None:
        raise UserError(f"not hex: {bad!r} in the input")
    if len(cleaned) % 2:
        raise UserError(f"odd number of hex digits ({len(cleaned)}): a packet is whole octets")
    return bytes.fromhex(cleaned)


def _ip_packet(pkt: Packet) -> bytes | None:
    for cls in (IPv6, IP):
        if cls in pkt:
            return bytes(pkt[cls])
    return None


def decode_one(raw: bytes, judge: bool, config: WireConfig) -> dict[str, Any]:
    """Dissect one IP packet; raise UserError when its structure does not hold together."""
    if not raw:
        raise MalformedInput("empty packet")
    version = raw[0] >> 4
    if version == 6:
        _check_ipv6(raw)
    elif version == 4:
        if len(raw) < 20 or int.from_bytes(raw[2:4], "big") > len(raw):
            raise MalformedInput(f"truncated IPv4 packet ({len(raw)} octets)")
    else:
        raise MalformedInput(f"IP version {version}: not an IPv4 or IPv6 packet")
    try:
        pkt: Packet = IPv6(raw) if version == 6 else IP(raw)
    except Exception as exc:  # scapy raises many types on odd input; none may escape as a trace
        raise MalformedInput(f"cannot dissect: {exc}") from None
    out: dict[str, Any] = {"layers": to_json(pkt)}
    report = _report(raw)
    if report is not None:
        out["report"] = report
    if judge and version == 6:
        out["reaction"] = compact.judge(raw, config).to_json()
    return out


_REPORT_NAMES = {MLDV2_REPORT: "MLDv2 Report", IGMPV3_REPORT: "IGMPv3 Membership Report"}


def _report(raw: bytes) -> dict[str, Any] | None:
    """An MLDv2 or IGMPv3 report, record by record, read by the project's one parser (the
    scapy layers above read it independently); MalformedInput when its declared counts
    overrun it (RFC 3810 §5.2, RFC 3376 §4.2)."""
    found = compact.report_in_packet(raw)
    if found is None:
        return None
    message, pseudo = found
    name = _REPORT_NAMES[message[0]]
    try:
        state = compact.parse_report(message, pseudo)
    except compact.Malformed as exc:
        raise MalformedInput(f"malformed {name}: {exc}") from None
    return {
        "type": name,
        "checksum": state.checksum,
        "checksum_ok": state.checksum_ok,
        "records": [
            {
                "type": r.rtype,
                "type_text": _record_type_name(r.rtype),
                "group": r.maddr,
                "sources": list(r.sources),
                "aux_data": r.auxdata.hex(),
            }
            for r in state.records
        ],
    }


def _record_type_name(rtype: int) -> str:
    try:
        return McastRecordType(rtype).name
    except ValueError:
        return f"unknown ({rtype}), ignored by a receiver (RFC 3810 §5.2.12)"


def _check_ipv6(raw: bytes) -> None:
    try:
        compact.parse_packet(raw)
    except compact.Malformed as exc:
        text = str(exc)
        if text.startswith("no Mobility Header"):
            if len(raw) < compact.IPV6_HEADER_LEN:
                raise MalformedInput(f"truncated IPv6 packet: {text}") from None
            return  # not a mobility message: nothing more to check strictly
        raise MalformedInput(f"malformed packet: {text}") from None
    msg = compact.parse_packet(raw)
    start = (
        compact.FIXED_PART.get(compact.MHType(msg.mhtype))
        if msg.mhtype in compact.FIXED_PART
        else None
    )
    if start is not None and msg.header_len >= start:
        try:
            compact.parse_options(msg.body, start)
        except compact.Malformed as exc:
            raise MalformedInput(f"malformed Mobility Header: {exc}") from None


def run(args: argparse.Namespace) -> int:
    try:
        config = WireConfig.from_env()
    except ConfigError as exc:
        raise UserError(str(exc)) from None
    if not args.pcap:
        json.dump(decode_one(parse_hex(args.hex), args.judge, config), sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    pcap = Path(args.pcap)
    if pcap.is_dir():
        raise UserError(f"--pcap {args.pcap}: is a directory, not a capture file")
    if pcap.is_file() and pcap.stat().st_size == 0:
        raise UserError(f"--pcap {args.pcap}: empty file, not a pcap or pcapng capture")
    try:
        packets = rdpcap(args.pcap)
    except OSError as exc:
        raise UserError(f"--pcap {args.pcap}: cannot read: {exc.strerror or exc}") from None
    except (Scapy_Exception, EOFError, ValueError) as exc:
        why = "no packet could be read" if "No data could be read" in str(exc) else str(exc)
        raise UserError(f"--pcap {args.pcap}: not a pcap or pcapng capture ({why})") from None
    # Every packet gets an entry; a malformed one carries its error instead of layers.
    results: list[dict[str, Any]] = []
    bad = 0
    for n, pkt in enumerate(packets, start=1):
        raw = _ip_packet(pkt)
        try:
            if raw is None:
                raise MalformedInput("carries no IP packet")
            results.append({"packet": n, **decode_one(raw, args.judge, config)})
        except MalformedInput as exc:
            bad += 1
            entry: dict[str, Any] = {"packet": n, "error": str(exc)}
            if raw and args.judge and raw[0] >> 4 == 6:
                entry["reaction"] = compact.judge(raw, config).to_json()
            results.append(entry)
    json.dump(results, sys.stdout, indent=1)
    sys.stdout.write("\n")
    if bad:
        raise MalformedInput(f"{bad} of {len(packets)} packets in {args.pcap} are malformed")
    return 0
