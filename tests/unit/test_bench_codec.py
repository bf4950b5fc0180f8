"""`dmmconf bench codec`: the fast encoder gives scapy's bytes, and every rate is measured."""

from __future__ import annotations

import subprocess
import sys

from harness.bench import codec


def test_one_short_round_gives_every_rate_and_identical_bytes() -> None:
    result = codec.run(seconds=0.01, repeats=1)
    assert result["byte_identical"]
    for way in ("decode", "encode"):
        assert set(result["rates"][way]) == {"scapy", "compact", "ceiling"}
        assert all(r > 0 for r in result["rates"][way].values())
    report = codec.format_report(result)
    assert "byte-identical to scapy: yes" in report and "decode" in report


def test_the_command_prints_the_table() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "bench",
            "codec",
            "--seconds",
            "0.01",
            "--repeats",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "x scapy" in proc.stdout and "encode" in proc.stdout


def test_bad_options_are_a_clear_message() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "bench", "codec", "--repeats", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "--repeats" in proc.stderr
