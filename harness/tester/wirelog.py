"""What the access links carried, read incrementally from their captures: the BUs and BAs,
and the MLD Reports. Frames are parsed from their bytes through `harness.wire.ipv6` (no
dissector), so a log over every frame of three links stays cheap. The interop suite and
the handover machine judge bindings and subscriptions over time with it.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.tester.conversation import Link
from harness.tester.packets import (
    ETH_HLEN,
    FLAG_H,
    alternate_coa,
    frame_packet6,
    mac_of,
    mld_groups,
)
from harness.wire import compact, ipv6


@dataclass(frozen=True)
class MhSeen:
    """A BU or BA seen on an access link."""

    t: float  # capture time, time.monotonic()
    link: int
    kind: str  # "BU" or "BA"
    src: str
    dst: str
    hoa: str  # BU: the Home Address option; BA: the type 2 routing header (or dst at home)
    coa: str  # BU: the Alternate Care-of Address (else src); BA: dst
    seq: int
    lifetime: int  # 4 s units
    status: int  # BA status (0 for a BU)
    h_flag: bool = False


@dataclass(frozen=True)
class Report:
    """An MLDv2 Report seen on an access link: who sent it (Ethernet), which groups."""

    t: float
    link: int
    mac: str
    groups: tuple[str, ...]


class WireLog:
    """The BUs, BAs and MLDv2 Reports of some links (link number -> `Link`), from the
    moment the log is made; `poll()` reads what came since the last poll."""

    def __init__(self, links: dict[int, Link]) -> None:
        self.links = links
        self._pos = {i: link.mark() for i, link in links.items()}  # from now on
        self.mh: list[MhSeen] = []
        self.reports: list[Report] = []

    def poll(self) -> None:
        for i, link in self.links.items():
            frames = link.frames(self._pos[i])
            if frames:
                self._pos[i] = frames[-1].seq + 1
            for f in frames:
                self._one(i, f.mono, f.data)

    def _one(self, link: int, t: float, data: bytes) -> None:
        p = frame_packet6(data)
        if p is None:
            return
        if p.upper == ipv6.MOBILITY:
            try:
                msg = compact.parse_packet(data[ETH_HLEN:])
            except (compact.Malformed, ValueError):
                return
            if msg.mhtype == compact.MHType.BU and msg.hoa is not None:
                self.mh.append(
                    MhSeen(
                        t, link, "BU", msg.src, msg.dst, msg.hoa, alternate_coa(msg) or msg.src,
                        msg.seq, msg.lifetime, 0, bool(msg.bu_flags & FLAG_H),
                    )
                )  # fmt: skip
            elif msg.mhtype == compact.MHType.BA:
                self.mh.append(
                    MhSeen(
                        t, link, "BA", msg.src, msg.dst, msg.rh2_hoa or msg.dst, msg.dst,
                        msg.seq, msg.lifetime, msg.ba_status,
                    )
                )  # fmt: skip
            return
        if p.upper == ipv6.IPV6_IN_IPV6:
            return  # tunnelled: not the MN's own signalling
        groups = mld_groups(p)
        if groups is not None:
            self.reports.append(Report(t, link, mac_of(data), groups))

    def bus(self, since: float = 0.0) -> list[MhSeen]:
        return [m for m in self.mh if m.kind == "BU" and m.t >= since]

    def bas(self, since: float = 0.0) -> list[MhSeen]:
        return [m for m in self.mh if m.kind == "BA" and m.t >= since]


def describe_bu(bu: MhSeen) -> str:
    """A BU of the log, for a failure message."""
    return (
        f"BU seen on link {bu.link}: {bu.src} -> {bu.dst}, hoa {bu.hoa}, coa {bu.coa}, "
        f"seq {bu.seq}, lifetime {bu.lifetime}"
    )
