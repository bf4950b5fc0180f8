"""Fixtures of the HA suite: the SUT home agent on ar1, and the tester as its mobile node.

The SUT is whatever `--sut` names (the bundled reference by default), started through its
profile on ar1 of the session's lab; the tests judge only what reaches the wire. The tester
is the mobile node: it sits in the `mn` namespace, moved to access link 2 (a foreign link
for ar1's home agent), with the care-of address of the packet vectors (2001:db8:2::10) added
to its interface, and sends crafted Binding Updates signed with the profile's MN-HA key.
Further care-of addresses on the same interface (2001:db8:2::11...) stand for other mobile
nodes, or keep one test's tunnel apart from the others'.

While the SUT runs, the lab's own Router Advertisements on the SUT's link are stopped, so
that the RAs seen there are the SUT's (RFC 6275 §7); they are restored afterwards.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from scapy.layers.inet6 import HAO, IPv6, IPv6ExtHdrDestOpt, MIP6OptMsgAuth
from scapy.packet import Packet

from harness.lab.topology import Lab
from harness.pytest_plugin import RunOptions
from harness.sut import adapters
from harness.sut.profile import Keys, Timers
from harness.tester.conversation import Link
from harness.tester.fixtures import Captures
from harness.tester.world import ha_placement
from harness.verdicts import not_applicable, not_run
from harness.wire import auth, compact
from harness.wire.mobility import BindingUpdate

HOME_LINK, FOREIGN_LINK = 1, 2
COA = "2001:db8:2::10"  # the care-of address of vectors/ (generate.py MN_COA)
# More care-of addresses on the tester's interface: other mobile nodes, or tunnels of their own.
OTHER_COAS = ("2001:db8:2::11", "2001:db8:2::12", "2001:db8:2::13", "2001:db8:2::14")
FLAG_A, FLAG_H = 0x200, 0x100


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
        pos = pkt.find(bytes([0xC9, 16]), 40, msg.mh_offset)
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


def _ip(lab: Lab, *args: str) -> None:
    subprocess.run(["ip", "-n", lab.ns("mn"), *args], check=True, capture_output=True, timeout=10)


@pytest.fixture(scope="package")
def home_agent(
    lab: Lab, run_options: RunOptions, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HomeAgentUnderTest]:
    """The SUT home agent started on ar1, and the tester's MN placed on access link 2."""
    if run_options.sut_role == "mn":
        not_applicable("the run tests the MN role (--sut-role mn)")
    workdir: Path = tmp_path_factory.mktemp("sut-ha")
    sut = adapters.open_sut(run_options.sut, "ha", workdir)
    placement = ha_placement(lab, HOME_LINK, workdir)
    lab.move("mn0", FOREIGN_LINK)
    coas = (COA, *OTHER_COAS)
    for coa in coas:
        _ip(lab, "addr", "add", f"{coa}/64", "dev", "mn0", "nodad")
    try:
        with lab.advertiser_paused(HOME_LINK):
            try:
                sut.start(placement)
            except adapters.SutNotBuilt as exc:
                not_run(str(exc))
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
                _ip(lab, "addr", "del", f"{coa}/64", "dev", "mn0")
        lab.reset()


@pytest.fixture
def mn_link(home_agent: HomeAgentUnderTest, captures: Captures) -> Link:
    """The tester's MN interface (mn0 on access link 2): send BUs, expect the answers."""
    return captures.watch_node(home_agent.lab, "mn", "mn0")


__all__ = ["COA", "FLAG_A", "FLAG_H", "OTHER_COAS", "HomeAgentUnderTest"]
