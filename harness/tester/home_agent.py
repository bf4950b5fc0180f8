"""The tester as the mobile node of a home agent under test: the SUT HA on ar1, the
tester on access link 2 with the care-of addresses of the packet vectors, and the Binding
Updates it sends (signed with the profile's MN-HA key, RFC 4285), the BAs it expects, and
the registrations it makes and ends. The HA suite (suites/ha) stands on it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import struct
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scapy.layers.inet6 import HAO, IPv6, IPv6ExtHdrDestOpt, MIP6OptMsgAuth
from scapy.packet import Packet

from harness.lab.topology import Lab
from harness.sut import adapters
from harness.sut.profile import Keys, Timers
from harness.tester.conversation import (
    ExpectationFailed,
    Link,
    Predicate,
    inbound,
    is_mh,
    mobility_message,
    to_dst,
)
from harness.wire import auth, compact, ipv6
from harness.wire.mobility import BindingUpdate

HOME_LINK, FOREIGN_LINK = 1, 2
COA = "2001:db8:2::10"  # the care-of address of vectors/ (generate.py MN_COA)
# More care-of addresses on the tester's interface: other mobile nodes, or tunnels of their own.
OTHER_COAS = ("2001:db8:2::11", "2001:db8:2::12", "2001:db8:2::13", "2001:db8:2::14")
FLAG_A, FLAG_H = 0x200, 0x100
LIFETIME = 25  # units of 4 s: longer than any test of the suite
LIFETIME_UNIT = 4.0  # seconds per unit of the BU/BA Lifetime (RFC 6275 §6.1.7)

# Deadlines from the SUT's timers (docs/interpretations.md INT-15). RFC 6275 §13: a mobile
# node retransmits a BU after INITIAL_BINDACK_TIMEOUT, so a reaction later than that (times
# the profile's time_scale) is of no use to it; MARGIN is the lab's own delay (capture,
# scheduling on a loaded two-core host, a userspace data path), added to every window.
INITIAL_BINDACK_TIMEOUT = 1.0
MARGIN = 0.5
LATE_WATCH = 2.0  # how long past a missed deadline a late reaction is still looked for


@dataclass
class HomeAgentUnderTest:
    lab: Lab
    sut: adapters.SutAdapter
    address: str
    prefix: ipaddress.IPv6Network
    keys: Keys | None
    timers: Timers = Timers()
    coa: str = COA
    other_coas: tuple[str, ...] = OTHER_COAS
    _hoas: Iterator[int] = field(default_factory=lambda: itertools.count(0x1000))

    @property
    def reaction_window(self) -> float:
        """Seconds the HA has to react to a message or to forward a packet, and the quiet
        window that makes a silent discard or a packet not forwarded (INT-15)."""
        return INITIAL_BINDACK_TIMEOUT * self.timers.time_scale + MARGIN

    @property
    def answer_within(self) -> float:
        """Seconds the HA has to answer a BU: its profile's `[timers].answer_time` (RFC 6275
        sets none), plus the lab's MARGIN."""
        return self.timers.answer_time + MARGIN

    def fresh_hoa(self) -> str:
        """A home address in the HA's prefix that no other test used (no shared state)."""
        return str(self.prefix[next(self._hoas)])

    def bu(
        self,
        hoa: str,
        seq: int,
        lifetime: int = 25,
        options: tuple[Packet, ...] = (),
        *,
        flags: int = FLAG_A | FLAG_H,
        sign: bool = True,
        key: bytes | None = None,
        coa: str | None = None,
        reserved: int = 0,
    ) -> Packet:
        """A Binding Update from the CoA (`coa`, default the tester's first) with a Home
        Address option, signed (RFC 4285) with the profile's SA unless sign=False or the
        profile has no keys; `key` overrides it. `reserved`: the BU's Reserved bits (RFC
        6275 §6.1.7, the six after the flags this layer knows)."""
        opts = list(options)
        if sign and self.keys is not None:
            opts.append(MIP6OptMsgAuth(subtype=1, mspi=self.keys.spi, authdata=b"\x00" * 12))
        pkt: Packet = (
            IPv6(src=coa or self.coa, dst=self.address)
            / IPv6ExtHdrDestOpt(options=[HAO(hoa=hoa)])
            / BindingUpdate(seq=seq, mhtime=lifetime, flags=flags, reserved=reserved, options=opts)
        )
        if sign and self.keys is not None:
            pkt = auth.sign(pkt, key if key is not None else self.keys.key)
        return IPv6(bytes(pkt))

    def resign(self, raw: bytes, hoa: str, seq: int) -> bytes:
        """A vector BU (raw bytes) made this test's own: its Home Address option set to
        `hoa`, its sequence number to `seq`, and (if the profile has keys) an MN-HA
        authentication option appended last, signed; the MH checksum recomputed."""
        msg = compact.parse_packet(raw)
        pkt = bytearray(raw)
        pos = pkt.find(bytes([ipv6.HOME_ADDRESS_OPTION, 16]), ipv6.HEADER_LEN, msg.mh_offset)
        if pos < 0:
            raise ValueError("the vector has no Home Address option")
        pkt[pos + 2 : pos + 18] = ipaddress.IPv6Address(hoa).packed
        off = msg.mh_offset
        struct.pack_into("!H", pkt, off + 6, seq)
        if self.keys is not None:
            mh_len = 8 * (pkt[off + 1] + 1)
            pad = (-(mh_len + 19)) % 8
            extra = (bytes([1, pad - 2]) + bytes(pad - 2) if pad >= 2 else bytes(pad)) + (
                bytes([9, 17, 1]) + struct.pack("!I", self.keys.spi) + bytes(12)
            )
            pkt[off + mh_len : off + mh_len] = extra
            pkt[off + 1] += len(extra) // 8
            struct.pack_into("!H", pkt, 4, len(pkt) - 40)
            struct.pack_into("!H", pkt, off + 4, 0)
            spi_end = off + mh_len + len(extra) - 12
            mac = auth.authenticator(self.keys.key, msg.src, hoa, bytes(pkt[off:spi_end]))
            pkt[spi_end : spi_end + 12] = mac
        struct.pack_into("!H", pkt, off + 4, 0)
        checksum = compact.mh_checksum(hoa, msg.dst, bytes(pkt[off:]))
        struct.pack_into("!H", pkt, off + 4, checksum)
        return bytes(pkt)


@contextlib.contextmanager
def home_agent_started(
    lab: Lab, sut: adapters.SutAdapter, workdir: Path, *, split: bool = False
) -> Iterator[HomeAgentUnderTest]:
    """The SUT home agent started on the home link's router of `lab` (`split`: with its
    control and data planes apart, draft §9), the tester's MN interface moved to the foreign
    link with the care-of addresses; the lab's own RAs on the home link paused meanwhile
    (the SUT's are the ones seen there, RFC 6275 §7). The lab is reset afterwards."""
    from harness.tester.world import ha_placement

    placement = ha_placement(lab, HOME_LINK, workdir)
    lab.move("mn0", FOREIGN_LINK)
    coas = (COA, *OTHER_COAS)
    for coa in coas:
        ip_in_mn(lab, "addr", "add", f"{coa}/64", "dev", "mn0", "nodad")
    try:
        with lab.advertiser_paused(HOME_LINK):
            if split:
                assert isinstance(sut, adapters.ProfileSut), "only a profile says how to split"
                sut.start(placement, split=True)
            else:
                sut.start(placement)
            try:
                keys = sut.profile.keys if isinstance(sut, adapters.ProfileSut) else None
                link = lab.plan.link(HOME_LINK)
                yield HomeAgentUnderTest(
                    lab, sut, str(link.router6), link.prefix6, keys, timers=sut.timers
                )
            finally:
                sut.stop()
    finally:
        for coa in coas:
            with contextlib.suppress(subprocess.CalledProcessError):
                ip_in_mn(lab, "addr", "del", f"{coa}/64", "dev", "mn0")
        lab.reset()


def ip_in_mn(lab: Lab, *args: str) -> None:
    """`ip -n <mn namespace> args...` (the tester's interface)."""
    subprocess.run(["ip", "-n", lab.ns("mn"), *args], check=True, capture_output=True, timeout=10)


def expect_in_time(
    link: Link, predicate: Predicate, allowed: float, *, since: int | None = None
) -> Any:
    """The first frame matching `predicate` within `allowed` seconds (from now, looking at
    frames from `since`); one that comes only later fails with its own reason, "reacted
    after X ms, allowed Y ms" (INT-15), one that never comes as an ExpectationFailed."""
    __tracebackhide__ = True
    t0 = time.time()
    start = link.mark() if since is None else since
    try:
        return link.expect(predicate, within=allowed, since=start)
    except ExpectationFailed as missed:
        try:
            late = link.expect(predicate, within=LATE_WATCH, since=start)
        except ExpectationFailed:
            raise missed from None
        took = (float(late.time) - t0) * 1000
        raise AssertionError(
            f"{predicate.description}: reacted after {took:.0f} ms, allowed "
            f"{allowed * 1000:.0f} ms (INT-15)"
        ) from None


def expect_ba(
    ha: HomeAgentUnderTest, link: Link, coa: str, seq: int, status: int | None = None
) -> compact.MobilityMessage:
    """The HA's BA to `coa` for `seq` (of `status`), within the HA's answer time."""
    wanted = inbound & to_dst(coa) & is_mh("BA", seq=seq, status=status)
    pkt = link.expect(wanted, within=ha.answer_within)
    msg = mobility_message(pkt)
    assert msg is not None
    return msg


def register(
    ha: HomeAgentUnderTest,
    link: Link,
    hoa: str,
    seq: int,
    *options: Packet,
    coa: str | None = None,
    lifetime: int = LIFETIME,
) -> compact.MobilityMessage:
    """Send a BU and return its BA, which must accept it (status 0)."""
    coa = coa or ha.coa
    link.send(ha.bu(hoa, seq, lifetime, options, coa=coa))
    return expect_ba(ha, link, coa, seq, 0)


def deregister(ha: HomeAgentUnderTest, link: Link, hoa: str, seq: int, coa: str) -> None:
    """In a finally, so that the next test inherits no binding: a missing BA is let pass
    (the test has its verdict already), a refusal is the test's own mistake."""
    link.send(ha.bu(hoa, seq, 0, coa=coa))
    with contextlib.suppress(ExpectationFailed):
        ba = expect_ba(ha, link, coa, seq)
        assert ba.ba_status == 0, f"the deregistration of {hoa} got status {ba.ba_status}"


@dataclass
class Bound:
    """A registered home address, and the last sequence number used for it."""

    hoa: str
    coa: str
    seq: int
    ba: compact.MobilityMessage

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def refresh(
        self, ha: HomeAgentUnderTest, link: Link, *options: Packet
    ) -> compact.MobilityMessage:
        return register(ha, link, self.hoa, self.next_seq(), *options, coa=self.coa)


@contextlib.contextmanager
def binding(
    ha: HomeAgentUnderTest, link: Link, *options: Packet, coa: str | None = None, seq: int = 1
) -> Iterator[Bound]:
    """A fresh home address registered with `options` for the duration."""
    hoa = ha.fresh_hoa()
    coa = coa or ha.coa
    bound = Bound(hoa, coa, seq, register(ha, link, hoa, seq, *options, coa=coa))
    try:
        yield bound
    finally:
        deregister(ha, link, hoa, bound.next_seq(), coa)
