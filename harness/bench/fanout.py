"""How many tunnelled copies of one group a home agent makes: `dmmconf bench fanout`.

In the lab of `dmmconf bench ha` (harness/bench/registrations.py), the generator registers N
home addresses (N = 1, 100, 1000), each BU with a Multicast State option that subscribes
the group (MODE_IS_EXCLUDE with no sources, draft §4.1), all at the tester's one care-of
address. The CDN on the home link then sends UDP datagrams to the group in a bare loop for
`seconds`, and the tester counts the IPv6-in-IPv6 copies arriving on its interface: copies
per second, and datagrams the HA made copies of.

The ceiling, measured first over the same path: a bare `sendto` loop in the HA's namespace
sending the same encapsulated packet to the care-of address (harness/bench/ha_echo.py
flood-raw), counted the same way. Target (issue 15): at least half of it.
"""

from __future__ import annotations

import select
import time
from collections.abc import Callable, Sequence
from typing import Any

DEFAULT_COUNTS = (1, 100, 1000)
DEFAULT_SECONDS = 2.0
GROUP, PORT = "ff3e::8000:77", 5777
TARGET_SHARE = 0.5
IPPROTO_IPV6_IN_IPV6 = 41


def count_copies(rx: Any, seconds: float) -> int:
    """IPv6-in-IPv6 packets read from the packet socket `rx` during `seconds`."""
    end = time.monotonic() + seconds
    n = 0
    while (left := end - time.monotonic()) > 0:
        select.select([rx], [], [], left)
        while True:
            try:
                pkt = rx.recv(2048)
            except BlockingIOError:
                break
            if len(pkt) >= 40 and pkt[6] == IPPROTO_IPV6_IN_IPV6:
                n += 1
    return n


def _drain(rx: Any) -> None:
    while True:
        try:
            rx.recv(2048)
        except BlockingIOError:
            return


def encapsulated(ha: str, coa: str, source: str) -> bytes:
    """What the HA sends for one datagram of the CDN: IPv6(HA -> CoA) / IPv6 / UDP."""
    import socket
    import struct

    from harness.reference.ha_io import ipv6_header

    udp = struct.pack("!HHHH", PORT, PORT, 8 + 100, 0) + bytes(100)
    inner = ipv6_header(len(udp), socket.IPPROTO_UDP, 15, source, GROUP) + udp
    return ipv6_header(len(inner), IPPROTO_IPV6_IN_IPV6, 64, ha, coa) + inner


def run(
    counts: Sequence[int] = DEFAULT_COUNTS,
    *,
    seconds: float = DEFAULT_SECONDS,
    sut: str = "reference",
    progress: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    from harness.bench.registrations import DEFAULT_WINDOW, ha_lab, home_addresses, stop, tool
    from harness.config import WireConfig
    from harness.tester.home_agent import COA, HOME_LINK
    from harness.wire import compact
    from harness.wire.numbers import MLDV2_REPORT, McastRecordType

    counts = sorted(set(counts))
    state = compact.encode_multicast_state(
        MLDV2_REPORT, [compact.McastRecord(McastRecordType.MODE_IS_EXCLUDE, GROUP, ())]
    )
    result: dict[str, Any] = {"seconds": seconds, "group": GROUP, "sizes": []}
    with ha_lab(sut) as hl:
        gen, ar = hl.gen, hl.ns(f"ar{HOME_LINK}")
        cdn = str(hl.lab.plan.cdn6)
        progress("ceiling: a bare sendto loop of the tunnelled packet on ar1")
        packet = encapsulated(hl.ha, COA, cdn)
        flood = tool(ar, "flood-raw", COA, packet.hex(), str(seconds + 1))
        try:
            _drain(gen.rx)
            result["ceiling"] = count_copies(gen.rx, seconds) / seconds
        finally:
            stop(flood)
        hl.start_ha()
        gen.options = ((WireConfig.from_env().multicast_state_type, state),)
        held = 0
        for n in counts:
            progress(f"{n} tunnels: registering {n - held} more")
            reg = gen.drive(
                iter(home_addresses(hl.prefix, held, n - held)), DEFAULT_WINDOW, lambda _a: False
            )
            held = n
            progress(f"{n} tunnels: the CDN sends for {seconds:g} s")
            source = tool(hl.ns("cdn"), "flood-udp", GROUP, str(PORT), "eth0", str(seconds + 1))
            try:
                _drain(gen.rx)
                copies = count_copies(gen.rx, seconds)
            finally:
                stop(source)
            result["sizes"].append(
                {
                    "tunnels": n,
                    "registered": reg["answered"],
                    "copies_per_s": copies / seconds,
                    "datagrams_per_s": copies / seconds / n,
                }
            )
    return result


def format_report(result: dict[str, Any]) -> str:
    c = result["ceiling"]
    lines = [
        f"multicast fan-out: one group ({result['group']}) to N tunnels, "
        f"{result['seconds']:g} s per figure",
        f"  ceiling (bare sendto loop of the tunnelled packet on ar1): {c:,.0f} packets/s",
        f"  {'tunnels':>8} {'copies/s':>10} {'datagrams/s':>12} {'% ceiling':>10}",
    ]
    for s in result["sizes"]:
        lines.append(
            f"  {s['tunnels']:>8,} {s['copies_per_s']:>10,.0f} {s['datagrams_per_s']:>12,.1f} "
            f"{100 * s['copies_per_s'] / c if c else 0:>9.1f}%"
        )
    if result["sizes"]:
        share = result["sizes"][-1]["copies_per_s"] / c if c else 0.0
        met = "met" if share >= TARGET_SHARE else "NOT met"
        lines.append(
            f"  target at {result['sizes'][-1]['tunnels']:,} tunnels: >= "
            f"{100 * TARGET_SHARE:g}% of the ceiling: {met}"
        )
    return "\n".join(lines)
