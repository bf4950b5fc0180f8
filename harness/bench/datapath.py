"""What the lab's multicast data paths cost: `dmmconf bench datapath`.

For each data path this machine has (userspace always, kernel where the kernel has
MRT6), in one run:

* one-way latency of multicast from the source behind the core to a listener on link 1
  (two routers: core and ar1), against the same path's unicast (the kernel's own
  forwarding) as the baseline measured in the same lab; per-hop cost of the data path is
  (multicast - unicast) / 2;
* optionally the handover benchmark's multicast gap (harness/bench/handover.py) with
  that data path forced.

Sender and receiver are sockets of this one process (in two namespaces), so both time
stamps come from the same CLOCK_MONOTONIC; datagrams go one at a time, each waited for
with a deadline.
"""

from __future__ import annotations

import ipaddress
import os
import select
import socket
import struct
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from harness.apps import control
from harness.lab import datapath as datapaths
from harness.netproto import sockopts

PORT = 5700
HOPS = 2  # core and ar1 between the source and link 1
GROUP = "ff3e::8000:70"
DEFAULT_PACKETS = 300
WAIT = 1.0  # deadline for one datagram


def available_paths() -> list[str]:
    paths = [datapaths.USERSPACE]
    if datapaths.kernel_support()["ipv6"] is None:
        paths.append(datapaths.KERNEL)
    return paths


@contextmanager
def forced(path: str) -> Iterator[None]:
    """DMMCONF_DATAPATH set to `path` for labs built inside the block."""
    old = os.environ.get(datapaths.ENV)
    os.environ[datapaths.ENV] = path
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(datapaths.ENV, None)
        else:
            os.environ[datapaths.ENV] = old


def _one_way(tx: socket.socket, rx: socket.socket, dst: str, packets: int) -> list[float]:
    """Milliseconds from sendto to recv for each datagram that arrived within WAIT."""
    out = []
    for n in range(packets):
        tx.sendto(struct.pack("!IQ", n, time.monotonic_ns()), (dst, PORT))
        deadline = time.monotonic() + WAIT
        while (left := deadline - time.monotonic()) > 0 and select.select([rx], [], [], left)[0]:
            data = rx.recv(64)
            got = time.monotonic_ns()
            seq, sent = struct.unpack_from("!IQ", data)
            if seq == n:
                out.append((got - sent) / 1e6)
                break
    return out


def measure_latency(path: str, packets: int = DEFAULT_PACKETS) -> dict[str, Any]:
    """One lab with `path`; multicast and unicast one-way latency over the same two hops."""
    from harness.lab.topology import Lab

    lab = Lab(datapath=path).up()  # LabUnavailable goes to the caller
    try:
        p = lab.plan
        rx = lab.socket("mn")
        tx = lab.socket("src")
        try:
            rx.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            rx.bind(("::", PORT))
            group_req = sockopts.group_source_req(
                lab.ifindex("mn", "mn0"),
                ipaddress.IPv6Address(GROUP),
                ipaddress.IPv6Address(str(p.mcast_source.host6)),
            )
            rx.setsockopt(41, sockopts.MCAST_JOIN_SOURCE_GROUP, group_req)
            tx.setsockopt(41, socket.IPV6_MULTICAST_HOPS, 16)
            tx.setsockopt(41, socket.IPV6_MULTICAST_IF, lab.ifindex("src", "eth0"))
            _wait_for_stream(tx, rx, GROUP)
            mcast = _one_way(tx, rx, GROUP, packets)
            unicast = _one_way(tx, rx, str(p.mn_address(1)), packets)
        finally:
            rx.close()
            tx.close()
    finally:
        lab.down()
    m, u = control.summary(mcast), control.summary(unicast)
    per_hop = (m.median - u.median) / HOPS if mcast and unicast else None
    return {
        "datapath": path,
        "packets": packets,
        "multicast_ms": m.as_dict(digits=3) if mcast else None,
        "unicast_ms": u.as_dict(digits=3) if unicast else None,
        "per_hop_added_ms": None if per_hop is None else round(per_hop, 3),
        "lost": {"multicast": packets - len(mcast), "unicast": packets - len(unicast)},
    }


def _wait_for_stream(tx: socket.socket, rx: socket.socket, group: str, within: float = 5.0) -> None:
    """Until the listener's report has reached both proxies and a datagram comes through."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        tx.sendto(b"warm-up", (group, PORT))
        if select.select([rx], [], [], 0.05)[0]:
            rx.recv(64)
            while select.select([rx], [], [], 0)[0]:
                rx.recv(64)
            return
    raise RuntimeError(f"no multicast reached the listener within {within:g} s")


def run(
    packets: int = DEFAULT_PACKETS,
    moves: int = 0,
    paths: list[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Every available path's latency (and handover gap with `moves` > 0), in one run."""
    from harness.bench import handover

    result: dict[str, Any] = {
        "machine": handover.machine(),
        "paths": {},
        "unavailable": {},
    }
    why_not = datapaths.kernel_support()["ipv6"]
    if why_not is not None:
        result["unavailable"][datapaths.KERNEL] = why_not
    for path in paths or available_paths():
        if progress:
            progress(f"{path}: latency over {packets} datagrams")
        entry = measure_latency(path, packets)
        if moves:
            if progress:
                progress(f"{path}: handover benchmark, {moves} moves")
            with forced(path):
                hand = handover.run(moves)
            entry["handover_gap_ms"] = hand["summary"]["gap_ms"]["all"]
            entry["handover_moves"] = hand["summary"]["totals"]
        result["paths"][path] = entry
    return result


def format_report(result: dict[str, Any]) -> str:
    def fig(st: dict[str, Any] | None, key: str) -> str:
        return "-" if not st else f"{st[key]:.3f}"

    lines = [
        f"{'data path':10} {'mcast med':>10} {'mcast p95':>10} {'ucast med':>10} "
        f"{'ucast p95':>10} {'per hop +':>10} {'lost':>5} {'gap med':>8} {'gap p95':>8}"
    ]
    for path, e in result["paths"].items():
        gap = e.get("handover_gap_ms") or None
        lines.append(
            f"{path:10} {fig(e['multicast_ms'], 'median'):>10} {fig(e['multicast_ms'], 'p95'):>10}"
            f" {fig(e['unicast_ms'], 'median'):>10} {fig(e['unicast_ms'], 'p95'):>10}"
            f" {e['per_hop_added_ms'] if e['per_hop_added_ms'] is not None else '-':>10}"
            f" {e['lost']['multicast']:>5} {fig(gap, 'median'):>8} {fig(gap, 'p95'):>8}"
        )
    for path, why in result["unavailable"].items():
        lines.append(f"{path:10} not on this machine: {why}")
    lines.append("latencies in ms, one way, source behind the core -> listener on link 1 (2 hops)")
    return "\n".join(lines)
