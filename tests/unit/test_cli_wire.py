"""`dmmconf decode` and `dmmconf vectors`: output, and bad input handled in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from scapy.utils import rdpcap

import vectors


def dmmconf(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, timeout=60
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], status: int) -> None:
    assert proc.returncode == status, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith("dmmconf ")


def test_decode_prints_fields_as_json() -> None:
    vec = vectors.golden()[0]
    proc = dmmconf("decode", vec.raw.hex(), "--judge")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    names = [layer["layer"] for layer in out["layers"]]
    assert names[0] == "IPv6" and "Binding Update" in names[-1]
    state = [o for o in out["layers"][-1]["options"] if o.get("report_type") == 143]
    assert state[0]["records"][0]["maddr"] == "ff3e::8000:1"
    assert out["reaction"] == {"kind": "binding-ack", "status": 0, "multicast_installed": True}


@pytest.mark.parametrize(
    ("text", "status"),
    [("abc", 2), ("zz", 2), ("", 2), ("6000", 1), ("50" * 40, 1)],
    ids=["odd-hex", "not-hex", "empty", "short-ipv6", "bad-version"],
)
def test_decode_bad_hex(text: str, status: int) -> None:
    assert_one_line_error(dmmconf("decode", text), status)


def test_decode_truncated_packet() -> None:
    raw = vectors.golden()[0].raw
    assert_one_line_error(dmmconf("decode", raw[:-9].hex()), 1)


def test_decode_unreadable_pcap(tmp_path: Path) -> None:
    bogus = tmp_path / "x.pcap"
    bogus.write_bytes(b"not a capture file at all")
    assert_one_line_error(dmmconf("decode", "--pcap", str(bogus)), 2)
    assert_one_line_error(dmmconf("decode", "--pcap", str(tmp_path / "missing.pcap")), 2)


def test_vectors_export_and_decode_round_trip(tmp_path: Path) -> None:
    pcap = tmp_path / "vectors.pcap"
    proc = dmmconf("vectors", "export", "--pcap", str(pcap))
    assert proc.returncode == 0, proc.stderr
    everything = vectors.everything()
    packets = rdpcap(str(pcap))
    assert [bytes(p) for p in packets] == [v.raw for v in everything]
    decoded = dmmconf("decode", "--pcap", str(pcap), "--judge")
    # The malformed vectors that break the header's structure make the exit status 1 ...
    assert decoded.returncode == 1 and "malformed" in decoded.stderr
    entries = json.loads(decoded.stdout)
    assert len(entries) == len(everything)
    # ... and every entry still reports the reaction a receiver owes it.
    for vec, entry in zip(everything, entries, strict=True):
        if vec.kind == "malformed":
            assert entry["reaction"]["kind"] == vec.expect["kind"], vec.name


def test_vectors_export_to_unwritable_place() -> None:
    assert_one_line_error(dmmconf("vectors", "export", "--pcap", "/nonexistent/dir/v.pcap"), 2)


def test_vectors_list_names_every_vector() -> None:
    proc = dmmconf("vectors", "list")
    assert proc.returncode == 0
    for vec in vectors.everything():
        assert vec.name in proc.stdout
