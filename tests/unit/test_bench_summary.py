"""`dmmconf bench all`'s table: each row against its ceiling, met or not by the targets."""

from __future__ import annotations

from typing import Any

from harness.bench import summary


def _codec(compact: float, byte_identical: bool = True) -> dict[str, Any]:
    rates = {"scapy": 1000.0, "compact": compact, "ceiling": 100_000.0}
    return {"octets": 224, "byte_identical": byte_identical, "rates": {"decode": rates}}


def test_codec_rows_need_both_ratios_and_identical_bytes() -> None:
    assert summary.codec_rows(_codec(20_000))[0]["met"] is True
    assert summary.codec_rows(_codec(9_000))[0]["met"] is False  # 9x scapy
    assert summary.codec_rows(_codec(20_000, byte_identical=False))[0]["met"] is False


def _sizes(*rates: float) -> dict[str, Any]:
    return {
        "ceiling": {"rate": 20_000.0},
        "sizes": [
            {"bindings": 10**i, "refresh": {"rate": r}, "bytes_per_binding": 900.0}
            for i, r in enumerate(rates, start=3)
        ],
    }


def test_only_the_largest_binding_count_is_judged() -> None:
    rows = summary.registration_rows(_sizes(1.0, 12_000.0))
    assert [r["met"] for r in rows] == [None, True]
    assert summary.registration_rows(_sizes(15_000.0, 9_000.0))[-1]["met"] is False


def _move(
    gap_end: float | None, ba: float | None, gap: float = 50.0, by: str = "tunnel"
) -> dict[str, Any]:
    return {"gap_end_ms": gap_end, "ba_ms": ba, "gap_ms": gap, "resumed_by": by}


def test_handover_gap_is_judged_over_each_moves_floor() -> None:
    near = {"moves": [_move(45.0 + i % 3, 40.0) for i in range(20)]}
    assert summary.handover_rows(near)[0]["met"] is True
    late = {"moves": [_move(90.0, 40.0) for _ in range(20)]}
    assert summary.handover_rows(late)[0]["met"] is False
    assert summary.handover_rows({"moves": [_move(None, None)]})[0]["met"] is False
    # a move home ends natively: its silence is not judged against the BA
    home = {"moves": [*near["moves"], _move(900.0, 40.0, by="native")]}
    assert summary.handover_rows(home)[0]["met"] is True


def test_conformance_needs_the_time_and_the_speedup() -> None:
    assert summary.conformance_rows(110.0, 58.0)[0]["met"] is True
    assert summary.conformance_rows(70.0, 58.0)[0]["met"] is False


def test_the_table_has_a_line_per_row() -> None:
    rows = summary.codec_rows(_codec(20_000)) + summary.conformance_rows(110.0, 58.0)
    text = summary.format_report({"rows": rows, "machine": "here"})
    assert text.count("\n| ") == 1 + len(rows) and "yes" in text


def test_live_property_rate_is_reported_and_a_failure_is_no() -> None:
    (row,) = summary.property_rows(1.5)
    assert row["value"] == "8.0 examples/s" and row["met"] is None
    assert summary.property_rows(None)[0]["met"] is False


def test_fanout_is_judged_at_the_most_tunnels() -> None:
    result: dict[str, Any] = {
        "ceiling": 50_000.0,
        "sizes": [
            {"tunnels": 1, "copies_per_s": 10_000.0},
            {"tunnels": 1000, "copies_per_s": 30_000.0},
        ],
    }
    assert [r["met"] for r in summary.fanout_rows(result)] == [None, True]
    result["sizes"][-1]["copies_per_s"] = 20_000.0
    assert summary.fanout_rows(result)[-1]["met"] is False
