"""What a home agent sustains: `dmmconf bench ha`.

In a lab of its own, the HA (the bundled reference, or a profile's) runs on ar1 as in the HA
suite; a load generator in the `mn` namespace on access link 2 plays any number of mobile
nodes, one care-of address, one home address each, every BU signed with the profile's MN-HA
key (RFC 4285) by the fast encoder. With `window` BUs in flight:

* it registers home addresses until the HA holds 1k, 10k, 100k bindings (new bindings: the
  HA's DAD, RFC 6275 §10.3.1, is part of the cost), and
* at each size, for `seconds`, refreshes bindings picked at random (seq + 1): BU -> BA per
  second, the HA's steady work;
* memory per binding: the HA's resident set (its process session) at each size.

The ceiling, measured in the same run over the same path before the HA starts: a bare
echo loop on ar1 (a raw socket of protocol 60 in, a ready-made BA out through IPPROTO_RAW),
driven by the same generator. A BA that does not come within LOST_AFTER counts as lost.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import select
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_COUNTS = (1000, 10000, 100000)
DEFAULT_SECONDS = 3.0
DEFAULT_WINDOW = 128
LOST_AFTER = 2.0  # seconds without a BA: the BU counts as lost
LIFETIME = 0xFFFF  # 4 s units: no binding ends during the run
TARGET_RATE, TARGET_SHARE = 10_000, 0.5  # issue 15, at 100k bindings
ETH_P_IPV6 = 0x86DD
MH_BA, NH_ROUTING, NH_MOBILITY = 6, 43, 135


class Generator:
    """BUs out on a raw socket of the `mn` namespace, BAs in on a packet socket of mn0."""

    def __init__(self, ns: str, iface: str, coa: str, ha: str, key: tuple[int, bytes] | None):
        from harness.lab import netns

        self.coa, self.ha, self.key = coa, ha, key
        self.tx = netns.socket_in(ns, socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
        with netns.entered(ns):
            self.rx = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IPV6))
            self.rx.bind((iface, ETH_P_IPV6))
        self.rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.rx.setblocking(False)
        self.seq: dict[bytes, int] = {}
        self.options: tuple[tuple[int, bytes], ...] = ()  # in every BU (e.g. Multicast State)

    def close(self) -> None:
        self.tx.close()
        self.rx.close()

    def bu(self, hoa: bytes) -> bytes:
        from harness.wire import compact

        seq = (self.seq.get(hoa, 0) + 1) & 0xFFFF
        self.seq[hoa] = seq
        return compact.encode_binding_update(
            src=self.coa,
            dst=self.ha,
            hoa=hoa,
            seq=seq,
            lifetime=LIFETIME,
            options=self.options,
            mn_ha_key=self.key,
        )

    def _answers(self) -> Iterator[bytes]:
        """Home addresses of the BAs (type 2 routing header) received so far."""
        while True:
            try:
                pkt = self.rx.recv(2048)
            except BlockingIOError:
                return
            if (
                len(pkt) >= 72
                and pkt[6] == NH_ROUTING
                and pkt[40] == NH_MOBILITY
                and pkt[66] == MH_BA
            ):
                yield pkt[48:64]

    def drive(self, hoas: Iterator[bytes], window: int, until: Callable[[int], bool]) -> dict:
        """Keep `window` BUs in flight, for the home addresses `hoas` gives, until `until`
        (of the answers so far) says so; the answers, the losses, and the rate."""
        pending: dict[bytes, float] = {}
        answered = lost = sent = 0
        start = time.monotonic()
        exhausted = False
        while not until(answered) and not (exhausted and not pending):
            now = time.monotonic()
            busy = 0  # picks already in flight: fewer addresses than the window must not spin
            while len(pending) < window and not exhausted and busy <= window:
                hoa = next(hoas, None)
                if hoa is None:
                    exhausted = True
                    break
                if hoa in pending:
                    busy += 1
                    continue
                self.tx.sendto(self.bu(hoa), (self.ha, 0))
                pending[hoa] = now
                sent += 1
            select.select([self.rx], [], [], 0.05)
            for hoa in self._answers():
                if pending.pop(hoa, None) is not None:
                    answered += 1
            stale = [h for h, t in pending.items() if now - t > LOST_AFTER]
            for h in stale:
                del pending[h]
                lost += 1
        took = time.monotonic() - start
        return {
            "sent": sent,
            "answered": answered,
            "lost": lost,
            "seconds": took,
            "rate": answered / took if took > 0 else 0.0,
        }


def home_addresses(prefix: ipaddress.IPv6Network, first: int, count: int) -> list[bytes]:
    base = int(prefix.network_address) + 0x10000  # clear of the router and the lab's hosts
    return [(base + i).to_bytes(16, "big") for i in range(first, first + count)]


def random_pick(hoas: Sequence[bytes]) -> Iterator[bytes]:
    rng = random.Random(4242)
    while True:
        yield hoas[rng.randrange(len(hoas))]


def for_seconds(seconds: float) -> Callable[[int], bool]:
    """An end condition for Generator.drive: `seconds` from now."""
    end = time.monotonic() + seconds
    return lambda _answered: time.monotonic() >= end


def _rss(pid: int | None) -> int | None:
    """Resident set in bytes of `pid`'s session (the SUT and what it started)."""
    from harness.sut.adapters import session_members

    if pid is None:
        return None
    total = 0
    for member in session_members(os.getsid(pid)):
        with contextlib.suppress(OSError), open(f"/proc/{member}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


def tool(ns: str, *args: str) -> subprocess.Popen[bytes]:
    """harness.bench.ha_echo (`echo` or `flood`) in namespace `ns`, ready when it says so."""
    proc = subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, "-m", "harness.bench.ha_echo", *args],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 10)
    if not ready or not proc.stdout.readline().startswith(b"ready"):
        proc.kill()
        raise RuntimeError(f"harness.bench.ha_echo {args[0]} did not start")
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.wait()


@dataclass
class HaLab:
    """The benchmarks' lab: the tester's MN on access link 2 with one care-of address, the
    HA's router ar1 (the HA not started yet), and the load generator."""

    lab: Any
    sut: Any
    gen: Generator
    ha: str
    prefix: ipaddress.IPv6Network
    work: Path

    def start_ha(self) -> int | None:
        from harness.tester.home_agent import HOME_LINK
        from harness.tester.world import ha_placement

        self.sut.start(ha_placement(self.lab, HOME_LINK, self.work))
        return getattr(self.sut, "pid", None)

    def ns(self, node: str) -> str:
        return str(self.lab.ns(node))


@contextlib.contextmanager
def ha_lab(sut: str) -> Iterator[HaLab]:
    """Raises LabUnavailable (no lab here) and SutError / ProfileError (no HA)."""
    from harness.lab.topology import Lab
    from harness.sut import adapters
    from harness.tester.home_agent import COA, FOREIGN_LINK, HOME_LINK, ip_in_mn

    lab = Lab()
    work = Path(tempfile.mkdtemp(prefix="dmmconf-bench-ha-"))
    lab.up()
    try:
        lab.move("mn0", FOREIGN_LINK)
        ip_in_mn(lab, "addr", "add", f"{COA}/64", "dev", "mn0", "nodad")
        link = lab.plan.link(HOME_LINK)
        the_sut = adapters.open_sut(sut, "ha", work)
        keys = the_sut.profile.keys if isinstance(the_sut, adapters.ProfileSut) else None
        key = (keys.spi, keys.key) if keys is not None else None
        gen = Generator(lab.ns("mn"), "mn0", COA, str(link.router6), key)
        try:
            yield HaLab(lab, the_sut, gen, str(link.router6), link.prefix6, work)
        finally:
            gen.close()
            the_sut.stop()
    finally:
        lab.down()


def run(
    counts: Sequence[int] = DEFAULT_COUNTS,
    *,
    seconds: float = DEFAULT_SECONDS,
    window: int = DEFAULT_WINDOW,
    sut: str = "reference",
    progress: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    """Build the lab, measure the ceiling, start the HA, and measure it at each size.
    Raises LabUnavailable (no lab here) and SutError / ProfileError (no HA)."""
    from harness.tester.home_agent import HOME_LINK

    counts = sorted(set(counts))
    result: dict[str, Any] = {"window": window, "seconds": seconds, "sizes": []}
    with ha_lab(sut) as hl:
        gen = hl.gen
        progress("ceiling: the bare echo loop on ar1")
        echo = tool(hl.ns(f"ar{HOME_LINK}"), "echo", hl.ha)
        try:
            hoas = home_addresses(hl.prefix, 0, 1000)
            gen.drive(random_pick(hoas), window, lambda n: n >= 2000)  # warm-up
            result["ceiling"] = gen.drive(random_pick(hoas), window, for_seconds(seconds))
        finally:
            stop(echo)
        pid = hl.start_ha()
        rss0 = _rss(pid)
        held: list[bytes] = []
        for n in counts:
            new = home_addresses(hl.prefix, len(held), n - len(held))
            progress(f"{n} bindings: registering {len(new)} more")
            reg = gen.drive(iter(new), window, lambda _n: False)
            held += new
            progress(f"{n} bindings: refreshing for {seconds:g} s")
            refresh = gen.drive(random_pick(held), window, for_seconds(seconds))
            rss = _rss(pid)
            result["sizes"].append(
                {
                    "bindings": n,
                    "register": reg,
                    "refresh": refresh,
                    "rss": rss,
                    "bytes_per_binding": (rss - rss0) / n if rss and rss0 else None,
                }
            )
    return result


def format_report(result: dict[str, Any]) -> str:
    c = result["ceiling"]
    lines = [
        f"home agent registrations, {result['window']} BUs in flight, "
        f"{result['seconds']:g} s per figure",
        f"  ceiling (bare echo loop on ar1): {c['rate']:,.0f} BU->BA/s ({c['lost']} lost)",
        f"  {'bindings':>9} {'new/s':>9} {'refresh/s':>10} {'% ceiling':>10} {'lost':>6} "
        f"{'B/binding':>10}",
    ]
    for s in result["sizes"]:
        r = s["refresh"]
        per = s["bytes_per_binding"]
        lines.append(
            f"  {s['bindings']:>9,} {s['register']['rate']:>9,.0f} {r['rate']:>10,.0f} "
            f"{100 * r['rate'] / c['rate'] if c['rate'] else 0:>9.1f}% "
            f"{r['lost'] + s['register']['lost']:>6} {per if per is None else round(per):>10}"
        )
    last = result["sizes"][-1] if result["sizes"] else None
    if last is not None:
        rate = last["refresh"]["rate"]
        share = rate / c["rate"] if c["rate"] else 0.0
        met = rate >= TARGET_RATE and share >= TARGET_SHARE
        lines.append(
            f"  target at {last['bindings']:,} bindings: >= {TARGET_RATE:,}/s and >= "
            f"{100 * TARGET_SHARE:g}% of the ceiling: {'met' if met else 'NOT met'}"
        )
    return "\n".join(lines)
