"""MLDv2 (RFC 3810 §5.2) and IGMPv3 (RFC 3376 §4.2) reports are read whole: every record,
source and aux word, by the project's one parser (compact.parse_report, which the MLD
proxy, the reference daemons, the suites and `dmmconf decode` use) and by the scapy layers
(harness.wire.mcast_reports). Reports are built here with struct, independently of both;
tshark is the outside oracle; `test_mutant_is_caught` shows the properties fail on a decoder
that counts Aux Data Len in octets or does not read as many records as the header declares
(scapy's own layers among them).
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from scapy.layers import inet6
from scapy.layers.igmp import IGMP, IGMPv3_MR, IGMPv3_MR_Group
from scapy.layers.inet import IP
from scapy.layers.inet6 import ICMPv6MLDMultAddrRec, ICMPv6MLReport2, IPv6
from scapy.packet import Packet, bind_bottom_up, split_bottom_up
from scapy.utils import RawPcapWriter

from harness.netproto import mld
from harness.wire import compact, mcast_reports, mobility
from harness.wire import tshark as ts
from harness.wire.mcast_reports import IGMPv3Report, MLDv2Report

PROPERTY = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Generation only: a mutant needs one counterexample, not a shrunk one.
MUTANT_RUN = settings(PROPERTY, max_examples=300, phases=[Phase.generate])

needs_tshark = pytest.mark.skipif(
    not ts.available(), reason="not-run: tshark missing; apt-get install tshark"
)


# --- Reports built with struct ------------------------------------------------------------


@dataclass(frozen=True)
class Rec:
    rtype: int
    group: bytes
    sources: tuple[bytes, ...]
    aux: bytes  # whole 32-bit words

    def wire(self) -> bytes:
        head = struct.pack("!BBH", self.rtype, len(self.aux) // 4, len(self.sources))
        return head + self.group + b"".join(self.sources) + self.aux


@dataclass(frozen=True)
class Report:
    family: int  # 6: MLDv2 Report, 4: IGMPv3 Membership Report
    records: tuple[Rec, ...]

    def message(self, count: int | None = None) -> bytes:
        """The ICMPv6 or IGMP message; `count` overrides the Number of Records."""
        kind = 143 if self.family == 6 else 0x22
        n = len(self.records) if count is None else count
        return struct.pack("!BBHHH", kind, 0, 0, 0, n) + b"".join(r.wire() for r in self.records)

    def packet(self, message: bytes | None = None) -> bytes:
        """The whole IP packet (RFC 3810 §5 / RFC 3376 §4: Router Alert, hop limit 1)."""
        msg = self.message() if message is None else message
        if self.family == 6:
            src, dst = (
                bytes.fromhex("fe80" + "00" * 13 + "01"),
                bytes.fromhex("ff02" + "00" * 13 + "16"),
            )
            pseudo = src + dst + struct.pack("!IxxxB", len(msg), 58)
            msg = msg[:2] + struct.pack("!H", compact.internet_checksum(pseudo + msg)) + msg[4:]
            hbh = bytes([58, 0, 5, 2, 0, 0, 1, 0])  # Router Alert (MLD), PadN
            head = struct.pack("!IHBB", 6 << 28, len(hbh) + len(msg), 0, 1) + src + dst
            return head + hbh + msg
        msg = msg[:2] + struct.pack("!H", compact.internet_checksum(msg)) + msg[4:]
        head = struct.pack(
            "!BBHHHBBH4s4s", 0x46, 0xC0, 24 + len(msg), 0, 0, 1, 2, 0, bytes([10, 0, 0, 2]),
            bytes([224, 0, 0, 22]),
        ) + bytes([0x94, 4, 0, 0])  # fmt: skip
        head = head[:10] + struct.pack("!H", compact.internet_checksum(head)) + head[12:]
        return head + msg


def _addr(alen: int) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=alen, max_size=alen)


def records(family: int, max_sources: int = 6) -> st.SearchStrategy[Rec]:
    alen = 16 if family == 6 else 4
    return st.builds(
        Rec,
        rtype=st.one_of(st.integers(1, 6), st.integers(0, 255)),  # unknown types are kept
        group=_addr(alen),
        sources=st.lists(_addr(alen), max_size=max_sources).map(tuple),
        aux=st.integers(0, 4).flatmap(lambda w: st.binary(min_size=4 * w, max_size=4 * w)),
    )


def reports(family: int | None = None) -> st.SearchStrategy[Report]:
    """0..20 records, and often 13..24 (the kernel's reports of a dozen groups and more)."""
    fam = st.sampled_from([6, 4]) if family is None else st.just(family)
    return fam.flatmap(
        lambda f: st.one_of(
            st.lists(records(f), max_size=20),
            st.lists(records(f, max_sources=3), min_size=13, max_size=24),
        ).map(lambda recs: Report(f, tuple(recs)))
    )


def _packed(text: str) -> bytes:
    import ipaddress

    return ipaddress.ip_address(text).packed


# --- The checks (each decoder's own property; the mutants reuse them) ------------------------


def check_parser(report: Report) -> None:
    message = report.message()
    state = compact.parse_report(message)
    got = [
        Rec(r.rtype, _packed(r.maddr), tuple(map(_packed, r.sources)), r.auxdata)
        for r in state.records
    ]
    assert got == list(report.records), "the parser read other records than were sent"
    found = compact.report_in_packet(report.packet())
    assert found is not None and found[0][8:] == message[8:]
    assert compact.parse_report(*found).checksum_ok, "checksum over the right bytes"


def _scapy_records(report: Report) -> list[Rec]:
    if report.family == 6:
        layer = IPv6(report.packet())[ICMPv6MLReport2]  # finds MLDv2Report (match_subclass)
        group, sources, recs = "maddr", "sources", layer.records
    else:
        pkt = IP(report.packet())
        assert pkt.haslayer(IGMPv3_MR), f"IGMPv3 Report not dissected: {pkt.summary()}"
        layer = pkt[IGMPv3_MR]
        group, sources, recs = "maddr", "sources", layer.records
    out = []
    for n, r in enumerate(recs):
        kinds = (mobility.MldAddressRecord, mobility.IgmpGroupRecord)
        assert isinstance(r, (*kinds, ICMPv6MLDMultAddrRec, IGMPv3_MR_Group)), f"record {n} lost"
        if isinstance(r, ICMPv6MLDMultAddrRec):  # scapy's own record (the stock mutant)
            group, sources = "dst", "sources"
        elif isinstance(r, IGMPv3_MR_Group):
            group, sources = "maddr", "srcaddrs"
        out.append(
            Rec(
                r.rtype,
                _packed(r.getfieldval(group)),
                tuple(map(_packed, r.getfieldval(sources))),
                bytes(r.auxdata) if hasattr(r, "auxdata") else b"",
            )
        )
    return out


def check_scapy(report: Report) -> None:
    assert _scapy_records(report) == list(report.records), "scapy read other records"


def check_overrun(report: Report, extra: int, cut: int) -> None:
    """Declared counts past the end are Malformed; the records before stay readable."""
    message = report.message()
    with pytest.raises(compact.Malformed):
        compact.parse_report(report.message(count=len(report.records) + extra))
    if len(message) > compact.REPORT_HEADER_LEN:
        cut = compact.REPORT_HEADER_LEN + cut % (len(message) - compact.REPORT_HEADER_LEN)
        with pytest.raises(compact.Malformed):
            compact.parse_report(message[:cut])
        ends, pos = [], compact.REPORT_HEADER_LEN
        for r in report.records:
            pos += len(r.wire())
            ends.append(pos)
        whole = [r for r, end in zip(report.records, ends, strict=True) if end <= cut]
        before = compact.records_before_overrun(message[:cut])
        assert [(r.rtype, _packed(r.maddr)) for r in before] == [(r.rtype, r.group) for r in whole]


# --- Properties -----------------------------------------------------------------------------


THIRTEEN = Report(
    6, tuple(Rec(4, bytes([0xFF, 0x0E]) + bytes(13) + bytes([i]), (), b"") for i in range(13))
)


@PROPERTY
@given(reports())
@example(THIRTEEN)
@example(Report(6, ()))
def test_parser_reads_every_record(report: Report) -> None:
    check_parser(report)


@PROPERTY
@given(reports())
@example(THIRTEEN)
def test_scapy_layers_read_every_record(report: Report) -> None:
    check_scapy(report)


@PROPERTY
@given(reports(), st.integers(1, 3), st.integers(0, 2**16))
def test_overrun_is_malformed(report: Report, extra: int, cut: int) -> None:
    check_overrun(report, extra, cut)


@PROPERTY
@given(reports(family=6), st.integers(0, 2**16))
def test_mld_proxy_takes_the_parsers_records(report: Report, cut: int) -> None:
    """mld.parse_report is the parser's reading, and never raises on an overrun."""
    message = report.message()
    message = message[: max(8, cut % (len(message) + 1))]
    want = [(r.rtype, r.maddr, r.sources) for r in compact.records_before_overrun(message)]
    got = [(r.rtype, str(r.group), tuple(map(str, r.sources))) for r in mld.parse_report(message)]
    assert got == want


@PROPERTY
@given(reports())
def test_option_parser_is_the_report_parser(report: Report) -> None:
    """The Multicast State option body (strict) reads what the wire parser reads."""
    message = report.message()
    if all(r.rtype in range(1, 7) for r in report.records):
        assert (
            compact.parse_multicast_state(message).records == compact.parse_report(message).records
        )
    else:
        with pytest.raises(compact.Malformed, match="unknown record type"):
            compact.parse_multicast_state(message)


def test_other_igmp_messages_stay_scapys() -> None:
    query = IP(bytes(IP(src="10.0.0.1", dst="224.0.0.1") / IGMP(type=0x11)))
    assert type(query.payload).__name__ == "IGMP_MQ"
    assert isinstance(IP(Report(4, ()).packet()).payload, IGMPv3Report)
    assert isinstance(IPv6(Report(6, ()).packet()).payload.payload, MLDv2Report)


# --- tshark as the oracle -------------------------------------------------------------------


TSHARK_BATCH = 400


@needs_tshark
def test_tshark_counts_agree_with_ours() -> None:
    """Hundreds of generated reports in one pcap (one tshark run): records, sources per
    record, aux words, groups, sources and aux data as tshark shows them are ours, and
    tshark sees no fault. Hypothesis generates (no shrinking: the report is in the message)."""
    batch: list[Report] = [THIRTEEN, Report(4, ()), Report(6, ())]

    def collect(report: Report) -> None:
        batch.append(report)

    settings(PROPERTY, max_examples=TSHARK_BATCH, phases=[Phase.generate])(
        given(reports())(collect)
    )()
    assert len(batch) > TSHARK_BATCH // 2 and max(len(r.records) for r in batch) >= 13
    frames = ts.dissect([r.packet() for r in batch], linktype=ts.LINKTYPE_RAW)
    for n, (report, frame) in enumerate(zip(batch, frames, strict=True)):
        ours = ts.ReportSummary.of(compact.parse_report(report.message()).records)
        assert ts.report_summary(frame, report.family) == ours, f"packet {n + 1}: {report}"
        assert not ts.malformed(frame), (n + 1, ts.malformed(frame))


# --- Mutants: each decoder's property fails on a decoder that loses records --------------------


def _one_record_header(data: bytes) -> tuple[int, int, int, int]:
    kind, csum, count, alen = REAL_HEADER(data)
    return kind, csum, min(count, 1), alen  # reads the first record only, as scapy's layer did


REAL_HEADER = compact.report_header


def _field(cls: type[Packet], name: str) -> Any:
    return next(f for f in cls.fields_desc if f.name == name)


@contextmanager
def _scapy_aux_in_octets() -> Iterator[None]:
    with ExitStack() as stack:
        for cls in (mobility.MldAddressRecord, mobility.IgmpGroupRecord):
            stack.enter_context(
                mock.patch.object(_field(cls, "auxdata"), "length_from", lambda p: p.auxlen)
            )
        yield


@contextmanager
def _scapy_one_record() -> Iterator[None]:
    with ExitStack() as stack:
        for cls, count in ((MLDv2Report, "records_number"), (IGMPv3Report, "numgrp")):
            first = (lambda c: lambda p: min(p.getfieldval(c), 1))(count)
            stack.enter_context(mock.patch.object(_field(cls, "records"), "count_from", first))
        yield


@contextmanager
def _stock_scapy() -> Iterator[None]:
    """scapy 2.8's own layers: ICMPv6MLReport2 and scapy.layers.igmp's IGMPv3_MR."""
    inet6.icmp6typescls[143] = ICMPv6MLReport2  # type: ignore[assignment]
    split_bottom_up(IP, IGMPv3Report, proto=2)
    bind_bottom_up(IP, IGMP, proto=2)
    try:
        yield
    finally:
        mcast_reports.register()


MUTANTS: dict[str, tuple[Callable[[], Any], Callable[[Report], None]]] = {
    "parser/aux-len-in-octets": (lambda: mock.patch.object(compact, "AUX_WORD", 1), check_parser),
    "parser/first-record-only": (
        lambda: mock.patch.object(compact, "report_header", _one_record_header),
        check_parser,
    ),
    "scapy/aux-len-in-octets": (_scapy_aux_in_octets, check_scapy),
    "scapy/first-record-only": (_scapy_one_record, check_scapy),
    "scapy/stock-layers": (_stock_scapy, check_scapy),
}


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_mutant_is_caught(mutant: str) -> None:
    patch, check = MUTANTS[mutant]
    # The failure must be the property's own verdict, not a crash of the mutant.
    with patch(), pytest.raises((AssertionError, compact.Malformed)):
        MUTANT_RUN(given(reports())(check))()


def test_mutants_leave_the_decoders_as_they_were() -> None:
    for patch, _check in MUTANTS.values():
        with patch():
            pass
    check_parser(THIRTEEN)
    check_scapy(THIRTEEN)
    check_scapy(Report(4, (Rec(2, bytes(4), (), b"\0\0\0\1"), Rec(1, bytes(4), (bytes(4),), b""))))


# --- dmmconf decode -------------------------------------------------------------------------


def dmmconf(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, timeout=60
    )


AUX_FIRST = Report(
    6,
    (
        Rec(2, _packed("ff0e::1"), (), b"\0\0\0\1"),
        Rec(1, _packed("ff3e::8000:1"), (_packed("2001:db8::1"), _packed("2001:db8::2")), b""),
        Rec(6, _packed("ff0e::2"), (_packed("2001:db8::3"),), b""),
    ),
)
IGMP3 = Report(
    4,
    (
        Rec(2, _packed("239.1.1.1"), (), b"\xde\xad\xbe\xef"),
        Rec(1, _packed("232.1.1.1"), (_packed("10.1.1.1"), _packed("10.1.1.2")), b""),
        Rec(6, _packed("239.1.1.2"), (_packed("10.1.1.3"),), b""),
    ),
)


@pytest.mark.parametrize("report", [AUX_FIRST, IGMP3], ids=["mldv2-aux-first", "igmpv3"])
def test_decode_shows_every_record(report: Report) -> None:
    proc = dmmconf("decode", report.packet().hex())
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    recs = out["report"]["records"]
    got = [
        Rec(r["type"], _packed(r["group"]), tuple(map(_packed, r["sources"])), bytes.fromhex(aux))
        for r, aux in ((r, r["aux_data"]) for r in recs)
    ]
    assert got == list(report.records)
    assert out["report"]["checksum_ok"] is True
    assert len(out["layers"][-1]["records"]) == len(report.records)  # the scapy layer too


@pytest.mark.parametrize("report", [AUX_FIRST, IGMP3], ids=["mldv2", "igmpv3"])
def test_decode_overrun_is_malformed(report: Report, tmp_path: Path) -> None:
    bad = report.packet(report.message(count=len(report.records) + 1))
    proc = dmmconf("decode", bad.hex())
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "truncated" in proc.stderr, proc.stderr
    pcap = tmp_path / "reports.pcap"
    writer = RawPcapWriter(str(pcap), linktype=ts.LINKTYPE_RAW)
    for raw in (report.packet(), bad):
        writer.write(raw)
    writer.close()
    proc = dmmconf("decode", "--pcap", str(pcap))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    good, broken = json.loads(proc.stdout)
    assert len(good["report"]["records"]) == len(report.records)
    assert broken["packet"] == 2 and "record 4 of 4 truncated" in broken["error"]
