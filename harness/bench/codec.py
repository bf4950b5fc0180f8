"""What decoding and encoding a Binding Update costs: `dmmconf bench codec`.

The message is the one of issue 15: a BU (Home Address option, MN-HA authentication) whose
Multicast State option carries three MLDv2 records, 208 octets on the wire. In one process
and one invocation, each way:

* scapy (the project's layers, harness.wire.mobility), the baseline;
* the fast codec (harness.wire.compact: `parse_packet` + `parse_multicast_state`, and
  `encode_binding_update`), whose encoder must give scapy's bytes exactly;
* the ceiling: bare `struct` calls over the same fixed headers and option headers, with no
  validation and no objects; no Python codec can beat it.

Rates are messages per second, best of `repeats` rounds (the machine is shared and noisy);
the ratios are the figures that matter.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from typing import Any

from harness.config import WireConfig

DEFAULT_SECONDS = 0.3  # per round
TARGET_X_SCAPY, TARGET_CEILING = 20.0, 0.10  # issue 15: each way
DEFAULT_REPEATS = 3
HOA = "2001:db8:1::1234"
COA = "2001:db8:2::10"
HA = "2001:db8:1::1"
RECORDS = (  # (record type, group, sources): three MLDv2 records
    (1, "ff3e::8000:1", ("2001:db8:c1::10",)),
    (2, "ff3e::8000:2", ()),
    (5, "ff3e::8000:3", ("2001:db8:c1::10", "2001:db8:c2::10")),
)
SEQ, LIFETIME = 4242, 25
SPI, AUTHDATA = 0x1000, bytes(range(12))


def scapy_packet() -> Any:
    from scapy.layers.inet6 import HAO, IPv6, IPv6ExtHdrDestOpt, MIP6OptMsgAuth
    from scapy.packet import Packet

    from harness.wire.mobility import BindingUpdate, MldAddressRecord, multicast_state_options

    records: list[Packet] = [
        MldAddressRecord(rtype=t, maddr=g, sources=list(s)) for t, g, s in RECORDS
    ]
    options = [
        *multicast_state_options(records),
        MIP6OptMsgAuth(subtype=1, mspi=SPI, authdata=AUTHDATA),
    ]
    return (
        IPv6(src=COA, dst=HA)
        / IPv6ExtHdrDestOpt(options=[HAO(hoa=HOA)])
        / BindingUpdate(seq=SEQ, mhtime=LIFETIME, options=options)
    )


def compact_encode(config: WireConfig | None = None) -> bytes:
    from harness.wire import compact
    from harness.wire.numbers import MLDV2_REPORT, MobOpt

    config = config or WireConfig.from_env()

    state = compact.encode_multicast_state(
        MLDV2_REPORT, [compact.McastRecord(t, g, s) for t, g, s in RECORDS]
    )
    auth = struct.pack("!BI", 1, SPI) + AUTHDATA
    return compact.encode_binding_update(
        src=COA,
        dst=HA,
        hoa=HOA,
        seq=SEQ,
        lifetime=LIFETIME,
        options=((config.multicast_state_type, state), (MobOpt.MESSAGE_AUTH, auth)),
        config=config,
    )


def struct_decode(packet: bytes) -> int:
    """The ceiling of decoding: the fixed fields and each option's type and length, no
    checks, no objects (the DestOpt header is 24 octets here)."""
    unpack = struct.unpack_from
    unpack("!IHBB16s16s", packet, 0)
    mh = 64
    unpack("!BBBBHHHH", packet, mh)
    pos, end, n = mh + 12, mh + 8 * (packet[mh + 1] + 1), 0
    while pos < end:
        otype = packet[pos]
        if otype == 0:
            pos += 1
            continue
        pos += 2 + packet[pos + 1]
        n += 1
    return n


def struct_encode(body: bytes) -> bytes:
    """The ceiling of encoding: the fixed headers packed around a ready-made option area."""
    return b"".join(
        (
            struct.pack("!IHBB16s16s", 0x60000000, len(body) + 24, 60, 64, _COA, _HA),
            _DESTOPT,
            struct.pack("!BBBBHHHH", 59, (len(body) + 11) // 8, 5, 0, 0, SEQ, 0xC000, LIFETIME),
            body,
        )
    )


_COA = bytes(16)
_HA = bytes(16)
_DESTOPT = bytes(24)


def rate(fn: Callable[[], object], seconds: float, repeats: int) -> float:
    """Calls per second of `fn`, best of `repeats` rounds of about `seconds` each."""
    best = 0.0
    for _ in range(repeats):
        n, batch = 0, 64
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            for _ in range(batch):
                fn()
            n += batch
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, n / (now - start))
    return best


def run(seconds: float = DEFAULT_SECONDS, repeats: int = DEFAULT_REPEATS) -> dict[str, Any]:
    from scapy.layers.inet6 import IPv6

    from harness.wire import compact

    config = WireConfig.from_env()
    reference = bytes(scapy_packet())
    identical = compact_encode(config) == reference

    def compact_decode() -> None:
        msg = compact.parse_packet(reference)
        for opt in msg.options:
            if compact.is_multicast_state(opt, config):
                compact.parse_multicast_state(opt.data)

    options = reference[76:]
    figures = {
        "decode": {
            "scapy": rate(lambda: IPv6(reference), seconds, repeats),
            "compact": rate(compact_decode, seconds, repeats),
            "ceiling": rate(lambda: struct_decode(reference), seconds, repeats),
        },
        "encode": {
            "scapy": rate(lambda: bytes(scapy_packet()), seconds, repeats),
            "compact": rate(lambda: compact_encode(config), seconds, repeats),
            "ceiling": rate(lambda: struct_encode(options), seconds, repeats),
        },
    }
    return {"octets": len(reference), "byte_identical": identical, "rates": figures}


def format_report(result: dict[str, Any]) -> str:
    lines = [
        f"codec: BU with a 3-record MLDv2 Multicast State option, {result['octets']} octets;"
        f" compact encoder byte-identical to scapy: {'yes' if result['byte_identical'] else 'NO'}",
        f"  {'way':<7} {'scapy/s':>10} {'compact/s':>10} {'ceiling/s':>11} "
        f"{'x scapy':>8} {'% ceiling':>10}  target (>= {TARGET_X_SCAPY:g}x, "
        f">= {100 * TARGET_CEILING:g}%)",
    ]
    for way, r in result["rates"].items():
        x, share = r["compact"] / r["scapy"], r["compact"] / r["ceiling"]
        verdict = ", ".join(
            f"{what} {'met' if ok else 'NOT met'}"
            for what, ok in (("x scapy", x >= TARGET_X_SCAPY), ("ceiling", share >= TARGET_CEILING))
        )
        lines.append(
            f"  {way:<7} {r['scapy']:>10,.0f} {r['compact']:>10,.0f} {r['ceiling']:>11,.0f} "
            f"{x:>8.1f} {100 * share:>9.1f}%  {verdict}"
        )
    return "\n".join(lines)
