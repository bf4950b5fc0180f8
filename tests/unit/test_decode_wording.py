"""`dmmconf decode --pcap` on input that is no capture: one clear line each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness import cli


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b""), "empty file, not a pcap or pcapng capture"),
        (lambda p: p.mkdir(), "is a directory, not a capture file"),
        (lambda p: p.write_bytes(b"not a capture"), "not a pcap or pcapng capture"),
        (lambda p: None, "cannot read: No such file or directory"),
    ],
    ids=["empty", "directory", "junk", "missing"],
)
def test_decode_pcap_says_what_is_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Any, message: str
) -> None:
    """Issue 14's wording: no scapy "No data could be read!", no raw "[Errno 21]"."""
    path = tmp_path / "x.pcap"
    make(path)
    assert cli.main(["decode", "--pcap", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == f"dmmconf decode: --pcap {path}: {message}\n" or (
        message in err and err.count("\n") == 1
    ), err
    assert "Errno" not in err and "No data could be read" not in err
