"""Fixtures of the MN suite: the SUT mobile node among reference home agents.

The SUT is whatever `--sut` names (the bundled reference MN by default), started through
its profile in the `mn` namespace of a mobility lab (harness/tester/world.py: the lab
configures no address on the MN, which forms its own from the RAs). A reference home agent
runs on every access router. The stimuli are real: applications in the MN's namespace join
groups and talk to the correspondent node, and the lab moves the MN's interface. What is
judged is what the MN sends on its interface (captured), its kernel state and what its
applications receive.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.lab.fixtures import bring_up
from harness.lab.topology import Lab
from harness.pytest_plugin import RunOptions
from harness.sut import adapters
from harness.tester import world as mobility
from harness.tester.conversation import Link, Predicate, mobility_message
from harness.tester.fixtures import Captures
from harness.verdicts import not_applicable, not_run
from harness.wire import compact
from harness.wire.numbers import MHType

MH_BU = int(MHType.BU)
FLAG_A, FLAG_H = 0x200, 0x100  # as compact's bu_flags gives them (the 16 bits >> 6)
ALT_COA, HOME_ADDRESS_OPT, MSG_AUTH = 3, 201, 9


@pytest.fixture(scope="module")
def mobility_lab() -> Iterator[Lab]:
    lab = bring_up(mobility.mobility_lab())
    try:
        yield lab
    finally:
        lab.down()


@dataclass
class MobileNodeUnderTest:
    world: mobility.World
    sut: adapters.SutAdapter
    link: Link  # the MN's interface, captured
    home: ipaddress.IPv6Address  # the address it formed on link 1, where it starts

    @property
    def lab(self) -> Lab:
        return self.world.lab

    def ha_address(self, link: int) -> str:
        return str(self.lab.plan.link(link).router6)

    def key(self) -> bytes | None:
        keys = getattr(self.sut, "profile", None)
        k = getattr(keys, "keys", None) if keys is not None else None
        return k.key if k is not None else None

    def lifetime_seconds(self, units: int) -> float:
        """A Lifetime field's real duration in the lab (4 s units, the profile's scale)."""
        return units * 4 * self.sut.timers.time_scale

    def expect_bu(
        self, within: float = 3.0, what: str = "", **match: Any
    ) -> compact.MobilityMessage:
        pkt = self.link.expect(bu_from_mn(**match), within=within, what=what or None)
        msg = mobility_message(pkt)
        assert msg is not None
        return msg


def bu_from_mn(
    to: str | None = None, hoa: str | None = None, lifetime_zero: bool | None = None
) -> Predicate:
    """A Binding Update sent by the MN (to `to`, for home address `hoa`)."""

    def test(pkt: Any) -> bool:
        msg = mobility_message(pkt)
        if msg is None or msg.mhtype != MH_BU:
            return False
        if to is not None and msg.dst != to:
            return False
        if hoa is not None and msg.hoa != hoa:
            return False
        return lifetime_zero is None or (msg.lifetime == 0) == lifetime_zero

    parts = ["a Binding Update from the MN"]
    if to:
        parts.append(f"to {to}")
    if hoa:
        parts.append(f"for home address {hoa}")
    if lifetime_zero is not None:
        parts.append("with Lifetime 0" if lifetime_zero else "with a non-zero Lifetime")
    return Predicate(test, " ".join(parts))


@pytest.fixture
def mn(
    mobility_lab: Lab, run_options: RunOptions, captures: Captures, tmp_path: Path
) -> Iterator[MobileNodeUnderTest]:
    """The SUT MN on access link 1 with its first address formed, reference HAs on every
    AR (fresh for each test: no binding left from an earlier one), mn0 captured."""
    if run_options.sut_role == "ha":
        not_applicable("the run tests the HA role (--sut-role ha)")
    lab = mobility_lab
    w = mobility.World(lab, tmp_path)
    try:
        w.start_home_agents()
        link = captures.watch_node(lab, "mn", mobility.MN_IFACE)
        try:
            sut = w.start_mobile_node(run_options.sut)
        except adapters.SutNotBuilt as exc:
            not_run(str(exc))
        home = w.mn_address(1)
        w.echo_server()
        yield MobileNodeUnderTest(w, sut, link, home)
    finally:
        w.close()
        lab.reset()
        lab.exec_in("mn", ["ip", "-6", "addr", "flush", "dev", "mn0", "scope", "global"]).wait()


def options_of(msg: compact.MobilityMessage) -> list[compact.Option]:
    return compact.parse_options(msg.body, compact.FIXED_PART[compact.MHType(msg.mhtype)])


def alt_coa(msg: compact.MobilityMessage) -> str | None:
    for o in options_of(msg):
        if o.otype == ALT_COA and len(o.data) == 16:
            return str(ipaddress.IPv6Address(o.data))
    return None


def multicast_state(msg: compact.MobilityMessage) -> dict[str, tuple[int, frozenset[str]]]:
    """group -> (record type, sources) of the BU's Multicast State options (INT-3 merged)."""
    from harness.config import WireConfig

    config = WireConfig.from_env()
    out: dict[str, tuple[int, frozenset[str]]] = {}
    for o in options_of(msg):
        if compact.is_multicast_state(o, config):
            state = compact.parse_multicast_state(o.data)
            for rec in state.records:
                rtype, srcs = out.get(rec.maddr, (rec.rtype, frozenset()))
                out[rec.maddr] = (rec.rtype, srcs | frozenset(rec.sources))
    return out


def u16(data: bytes, off: int) -> int:
    return int(struct.unpack_from("!H", data, off)[0])


__all__ = [
    "ALT_COA",
    "FLAG_A",
    "FLAG_H",
    "MSG_AUTH",
    "MobileNodeUnderTest",
    "alt_coa",
    "bu_from_mn",
    "multicast_state",
    "options_of",
    "send_ba_as_ha",
]


def send_ba_as_ha(
    mn: MobileNodeUnderTest,
    link: int,
    coa: str,
    hoa: str,
    seq: int,
    status: int,
    lifetime: int,
    extra: tuple[Any, ...] = (),
) -> None:
    """The tester acting as access router `link`'s home agent: a BA (type 2 routing
    header, RFC 6275 §6.1.8), signed with the profile's MN-HA key when there is one, sent
    from that router's namespace."""
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrRouting, MIP6OptMsgAuth

    from harness.wire import auth
    from harness.wire.mobility import BindingAck

    keys = getattr(getattr(mn.sut, "profile", None), "keys", None)
    options = list(extra)
    if keys is not None:
        options.append(MIP6OptMsgAuth(subtype=1, mspi=keys.spi, authdata=b"\x00" * 12))
    pkt = (
        IPv6(src=mn.ha_address(link), dst=coa)
        / IPv6ExtHdrRouting(type=2, segleft=1, addresses=[hoa])
        / BindingAck(status=status, seq=seq, mhtime=lifetime, options=options)
    )
    if keys is not None:
        pkt = auth.sign(pkt, keys.key)
    with contextlib.closing(
        mn.lab.socket(f"ar{link}", socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
    ) as s:
        s.sendto(bytes(pkt), (coa, 0))
