"""The tester around a mobile node under test (the MN suite, suites/mn): the SUT MN among
reference home agents in a mobility world, the BUs it sends and what they carry (options,
the Multicast State option's records), the tester acting as a home agent that answers it,
and predicates on its traffic (tunnelled from an HA, with a Home Address option).
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
from dataclasses import dataclass
from typing import Any

from scapy.layers.inet6 import IPv6
from scapy.packet import Packet

from harness.lab.topology import Lab
from harness.sut import adapters
from harness.tester import world as mobility
from harness.tester.conversation import Link, Predicate, mobility_message
from harness.wire import compact
from harness.wire.numbers import MHType

MH_BU = int(MHType.BU)
FLAG_A, FLAG_H = 0x200, 0x100  # as compact's bu_flags gives them (the 16 bits >> 6)
ALT_COA, HOME_ADDRESS_OPT, MSG_AUTH = 3, 201, 9


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
    pkt: Packet = (
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


def session_then_move(mn: MobileNodeUnderTest, to: int = 2) -> Any:
    session = mn.world.session()
    session.wait_for("rtt", 3, "a first round trip on link 1")
    mn.link.mark()
    mn.world.move(to)
    return session


def bu_any() -> Predicate:
    return bu_from_mn()


def aux_lengths(bu: Any) -> list[int]:
    from harness.config import WireConfig
    from harness.wire import compact

    config = WireConfig.from_env()
    out = []
    for o in options_of(bu):
        if compact.is_multicast_state(o, config):
            out += [len(r.auxdata) for r in compact.parse_multicast_state(o.data).records]
    return out


def mld_report_with(group: str) -> Predicate:
    """An MLDv2 Report with a record for `group` (every record, read by the project's one
    report parser through the lab's MLD code)."""
    from harness.netproto.mld import parse_report
    from harness.reference.mn_listener import report_from_packet

    want = ipaddress.IPv6Address(group)

    def test(pkt: Any) -> bool:
        ip = pkt.getlayer(IPv6)
        message = report_from_packet(bytes(ip)) if ip is not None else None
        return message is not None and any(r.group == want for r in parse_report(message))

    return Predicate(test, f"an MLDv2 Report naming {group}")


def ba_for(seq: int) -> Predicate:
    def test(pkt: Any) -> bool:
        msg = mobility_message(pkt)
        return msg is not None and msg.mhtype == 6 and msg.seq == seq

    return Predicate(test, f"a BA for seq {seq}")


def tunnelled_from(ha: str, group: str) -> Predicate:
    def test(pkt: Any) -> bool:
        outer = pkt.getlayer(IPv6)
        if outer is None or outer.nh != 41 or outer.src != ha:
            return False
        inner = outer.payload.getlayer(IPv6)
        return inner is not None and inner.dst == group

    return Predicate(test, f"IPv6-in-IPv6 from {ha} carrying {group}")


def home_address_option(pkt: Any) -> str | None:
    from scapy.layers.inet6 import HAO

    hao = pkt.getlayer(HAO)
    return str(hao.hoa) if hao is not None else None
