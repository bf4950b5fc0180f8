"""The tester's side of multiple care-of addresses (RFC 5648) and flow bindings (RFC 6089)
against a home agent under test: the BID, Flow Identification and Flow Summary options it
sends, the BA's answers read back with the compact codec, and unicast probes from the
correspondent whose arrival inside the HA's tunnel tells which care-of address got which flow;
likewise a group's data from the source behind the core (`group_copies`, OPEN-8).

The tester decides where each probe must go with its own reading of RFC 6089 §5.3.6 over
the scapy selectors it sent (`expected_coas`), not with the reference's matcher.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from scapy.layers.inet import UDP
from scapy.packet import Packet

from harness import verdicts
from harness.tester.conversation import (
    ExpectationFailed,
    Link,
    Predicate,
    any_of,
    from_src,
    inbound,
)
from harness.tester.home_agent import (
    FLAG_A,
    FLAG_H,
    HomeAgentUnderTest,
    expect_ba,
    expect_in_time,
)
from harness.tester.sources import Wire, ip6_layers, tunnelled_to
from harness.wire import compact
from harness.wire.mobility import (
    FIDSubOptBindingReference,
    FIDSubOptPad1,
    FIDSubOptPadN,
    FIDSubOptTrafficSelector,
    IPv4BinaryTrafficSelector,
    IPv6BinaryTrafficSelector,
    MIP6OptBindingIdentifier,
    MIP6OptFlowIdentification,
    MIP6OptFlowSummary,
)
from harness.wire.numbers import MobOpt

FLAG_O = 0x001  # RFC 5648 §4.2 Overwrite (the BU layer's flags field)
BULK_FLAGS = FLAG_A | FLAG_H | FLAG_O
PORT_BASE = 7000  # UDP ports of the probes: PORT_BASE + n
PROBE_TRIES = 3  # the first probe of a CoA may wait for neighbour discovery on the way


def bid(n: int, pri: int, coa: str | None = None) -> MIP6OptBindingIdentifier:
    """A BID option (RFC 5648 §4.3, BID-PRI of RFC 6089 §4.1); without `coa`, Length 4."""
    return MIP6OptBindingIdentifier(bid=n, bid_pri=pri, coa=coa)


def dports(first: int, last: int | None = None) -> FIDSubOptTrafficSelector:
    """An IPv6 binary traffic selector (RFC 6088 §3.2) of destination ports first..last."""
    sel = IPv6BinaryTrafficSelector(start_dport=first, end_dport=last)
    return FIDSubOptTrafficSelector(selector=[sel])


def to_address(address: str) -> FIDSubOptTrafficSelector:
    """An IPv6 binary traffic selector (RFC 6088 §3.2) of one destination address: a
    multicast group's data, for OPEN-8."""
    return FIDSubOptTrafficSelector(selector=[IPv6BinaryTrafficSelector(start_dst=address)])


def v4_dports(first: int) -> FIDSubOptTrafficSelector:
    """An IPv4 binary traffic selector (RFC 6088 §3.1) of one destination port."""
    return FIDSubOptTrafficSelector(selector=[IPv4BinaryTrafficSelector(start_dport=first)])


def flow(
    fid: int, pri: int, bids: Sequence[int] | None, selector: Packet | None = None
) -> MIP6OptFlowIdentification:
    """A Flow Identification option (RFC 6089 §4.2); None leaves a sub-option out."""
    subs: list[Packet] = []
    if bids is not None:
        subs.append(FIDSubOptBindingReference(bids=list(bids)))
    if selector is not None:
        subs.append(selector)
    return MIP6OptFlowIdentification(fid=fid, fid_pri=pri, suboptions=subs)


def summary(*fids: int) -> MIP6OptFlowSummary:
    return MIP6OptFlowSummary(fids=list(fids))


@dataclass(frozen=True)
class Answer:
    """What a BA says about BIDs and flows (RFC 5648 §6.2, RFC 6089 §5.3.5)."""

    status: int
    bids: list[tuple[int, int, int]]  # (BID, Status, BID-PRI), in order
    fids: list[tuple[int, int]]  # (FID, Status), in order
    # (FID, FID-PRI, sub-options but padding) of each FID option, in order (§5.3.5)
    fid_contents: list[FidContent] = field(default_factory=list)

    def bid_status(self) -> dict[int, int]:
        return {b: s for b, s, _ in self.bids}

    def fid_status(self, fid: int) -> int | None:
        return next((s for f, s in self.fids if f == fid), None)


FidContent = tuple[int, int, tuple[bytes, ...]]


def fid_content(option: bytes) -> FidContent:
    """(FID, FID-PRI, each sub-option but Pad1 and PadN) of a Flow Identification option
    (RFC 6089 §4.2, §4.2.1), read with the scapy layer."""
    layer = MIP6OptFlowIdentification(option)
    pads = (FIDSubOptPad1, FIDSubOptPadN)
    subs = tuple(bytes(s) for s in layer.suboptions if not isinstance(s, pads))
    return (layer.fid, layer.fid_pri, subs)


def answer(ba: compact.MobilityMessage) -> Answer:
    bids, fids, contents = [], [], []
    for opt in ba.options:
        if opt.otype == MobOpt.BINDING_IDENTIFIER and len(opt.data) in (4, 8, 20):
            ident = compact.parse_binding_identifier(opt.data)
            bids.append((ident.bid, ident.status, ident.bid_pri))
        elif opt.otype == MobOpt.FLOW_IDENTIFICATION and len(opt.data) >= 6:
            fid, _pri, _res, status = struct.unpack_from("!HHBB", opt.data)
            fids.append((fid, status))
            contents.append(fid_content(bytes([opt.otype, len(opt.data)]) + opt.data))
    return Answer(ba.ba_status, bids, fids, contents)


@dataclass
class MultiHomed:
    """A home address with several bindings (RFC 5648) at the HA under test, all of its
    care-of addresses on the tester's interface; each BU is sent from `coas[0]`."""

    ha: HomeAgentUnderTest
    link: Link
    hoa: str
    coas: dict[int, str]  # BID -> CoA
    pris: dict[int, int]  # BID -> BID-PRI
    seq: int = 0
    first: Answer = field(default_factory=lambda: Answer(-1, [], []))  # the bulk BU's

    @property
    def sender(self) -> str:
        return next(iter(self.coas.values()))

    def send(self, *options: Packet, lifetime: int = 25, flags: int = FLAG_A | FLAG_H) -> Answer:
        """A BU with `options`; its BA's answer (any status)."""
        self.seq += 1
        self.link.send(
            self.ha.bu(self.hoa, self.seq, lifetime, options, coa=self.sender, flags=flags)
        )
        return answer(expect_ba(self.ha, self.link, self.sender, self.seq))

    def keep(self) -> tuple[Packet, ...]:
        """Length-4 BID options of every binding: a refresh that keeps them all (RFC 5648
        §6.2: a BU without a BID option would replace them)."""
        return tuple(bid(b, self.pris[b]) for b in self.coas)

    def default_coa(self) -> str:
        """RFC 6089 §5.1.1: the CoA of the lowest BID-PRI (ties: the lowest BID)."""
        return self.coas[min(self.coas, key=lambda b: (self.pris[b], b))]


@contextlib.contextmanager
def multi_homed(
    ha: HomeAgentUnderTest, link: Link, pris: dict[int, int], *extra: Packet
) -> Iterator[MultiHomed]:
    """A fresh home address registered in one bulk BU (O set) with one BID per entry of
    `pris` (BID -> BID-PRI), each on a care-of address of its own; deregistered at the end."""
    coas_all = (ha.coa, *ha.other_coas)
    if len(pris) > len(coas_all):
        raise ValueError(f"{len(pris)} BIDs, the tester has {len(coas_all)} care-of addresses")
    coas = dict(zip(pris, coas_all, strict=False))
    mh = MultiHomed(ha, link, ha.fresh_hoa(), coas, dict(pris))
    mh.first = mh.send(*(bid(b, p, coas[b]) for b, p in pris.items()), *extra, flags=BULK_FLAGS)
    if mh.first.status != 0:
        raise AssertionError(
            f"the bulk registration of BIDs {sorted(pris)} got BA status {mh.first.status}"
        )
    try:
        yield mh
    finally:
        mh.seq += 1
        link.send(ha.bu(mh.hoa, mh.seq, 0, coa=mh.sender))  # RFC 5648 §6.2: removes them all
        with contextlib.suppress(ExpectationFailed):
            expect_ba(ha, link, mh.sender, mh.seq)


# --- Probes from the correspondent ---------------------------------------------------------------


def tunnelled_probe(
    ha: HomeAgentUnderTest, coa: str, hoa: str, port: int, payload: bytes
) -> Predicate:
    """The probe inside the HA's tunnel to `coa` (RFC 6275 §10.4.1)."""
    want_coa, want_hoa = ipaddress.ip_address(coa), ipaddress.ip_address(hoa)

    def test(pkt: Any) -> bool:
        ips = ip6_layers(pkt)
        if len(ips) < 2 or ipaddress.ip_address(ips[0].dst) != want_coa:
            return False
        inner = ips[1]
        udp = inner.payload
        return (
            ipaddress.ip_address(inner.dst) == want_hoa
            and isinstance(udp, UDP)
            and udp.dport == port
            and bytes(udp.payload) == payload
        )

    return (
        inbound
        & from_src(ha.address)
        & Predicate(test, f"UDP to [{hoa}]:{port} carrying {payload!r} tunnelled to {coa}")
    )


def expected_coas(
    mh: MultiHomed,
    flows: Sequence[Any],
    port: int,
    dst: str | None = None,
    default: set[str] | None = None,
) -> set[str]:
    """The tester's own reading of RFC 6089 §5.3.6 for a UDP datagram to `port` (and to
    `dst`: a group, OPEN-8): the first flow (in FID-PRI order) whose destination-port and
    destination-address ranges hold it and that names a bound BID; else `default`, by
    default the lowest BID-PRI's CoA. `flows`: the accepted FID options sent."""
    for opt in sorted(flows, key=lambda o: o.fid_pri):
        bids = next(s.bids for s in opt.suboptions if isinstance(s, FIDSubOptBindingReference))
        sel = next(s.selector[0] for s in opt.suboptions if isinstance(s, FIDSubOptTrafficSelector))
        live = {mh.coas[b] for b in bids if b in mh.coas}
        if not live or not isinstance(sel, IPv6BinaryTrafficSelector):
            continue
        if _holds(sel.start_dport, sel.end_dport, port) and (
            dst is None or _holds(sel.start_dst, sel.end_dst, dst, ipaddress.ip_address)
        ):
            return live
    return {mh.default_coa()} if default is None else default


def _holds(first: Any, last: Any, value: Any, key: Any = None) -> bool:
    """Does a selector's range (first..last; last None: first alone; first None: any)
    hold `value`?"""
    if first is None:
        return True
    k = key or (lambda v: v)
    return bool(k(first) <= k(value) <= k(last if last is not None else first))


class Correspondent:
    """UDP probes from the lab's CN to a home address: each tagged, the verdict on where
    (which care-of addresses, in the HA's tunnel) they arrive."""

    def __init__(self, ha: HomeAgentUnderTest, link: Link) -> None:
        self.ha = ha
        self.link = link
        self.sock = ha.lab.socket("cn", socket.AF_INET6, socket.SOCK_DGRAM)
        self.count = 0

    def __enter__(self) -> Correspondent:
        return self

    def __exit__(self, *_: object) -> None:
        self.sock.close()

    def check(
        self,
        mh: MultiHomed,
        routes: dict[int, set[str]],
        tag: str,
        watch: Iterable[str] | None = None,
    ) -> None:
        """A probe to each port of `routes` arrives at each CoA of its set in the tunnel
        within the reaction window (INT-15) and at none of the other CoAs of `watch` (by
        default the home address's)."""
        watched = set(mh.coas.values() if watch is None else watch)
        mark = self.link.mark()
        sent: list[tuple[int, bytes, set[str]]] = []
        for port, coas in routes.items():
            payload = self._deliver(mh, port, coas, tag)
            sent.append((port, payload, coas))
        wrong = [
            tunnelled_probe(self.ha, coa, mh.hoa, port, payload)
            for port, payload, coas in sent
            for coa in watched - coas
        ]
        if wrong:
            any_wrong = wrong[0]
            for p in wrong[1:]:
                any_wrong = any_wrong | p
            self.link.expect_none(any_wrong, during=self.ha.reaction_window, since=mark)

    def _deliver(self, mh: MultiHomed, port: int, coas: set[str], tag: str) -> bytes:
        """Send until the probe reaches one CoA of `coas` (neighbour discovery on the way
        may hold the first); then every CoA of `coas` must have it within the window."""
        first = sorted(coas)[0]
        for _ in range(PROBE_TRIES):
            self.count += 1
            payload = f"{tag}-{port}-{self.count}".encode()
            mark = self.link.mark()
            self.sock.sendto(payload, (mh.hoa, port))
            try:
                self.link.expect(
                    tunnelled_probe(self.ha, first, mh.hoa, port, payload),
                    within=self.ha.reaction_window,
                    since=mark,
                )
            except ExpectationFailed:
                if self._seen_elsewhere(mh, port, payload, mark):
                    raise AssertionError(
                        f"a packet for [{mh.hoa}]:{port} went to another care-of address "
                        f"than {sorted(coas)}"
                    ) from None
                continue
            for other in sorted(coas)[1:]:
                expect_in_time(
                    self.link,
                    tunnelled_probe(self.ha, other, mh.hoa, port, payload),
                    self.ha.reaction_window,
                    since=mark,
                )
            return payload
        verdicts.inconclusive(
            f"no probe for [{mh.hoa}]:{port} reached any care-of address in "
            f"{PROBE_TRIES} tries: the lab did not deliver, or the HA tunnels nothing"
        )

    def _seen_elsewhere(self, mh: MultiHomed, port: int, payload: bytes, mark: int) -> bool:
        for coa in mh.coas.values():
            try:
                self.link.expect(
                    tunnelled_probe(self.ha, coa, mh.hoa, port, payload), within=0, since=mark
                )
                return True
            except ExpectationFailed:
                continue
        return False


# --- A group's data from the source behind the core (OPEN-8) -----------------------------------


def group_copies(wire: Wire, mh: MultiHomed, group: str, tag: str) -> set[str]:
    """A datagram from the multicast source behind the core to `group`, sent until one
    reaches the HA's uplink (Wire.reach_ha, inconclusive if none does); the care-of
    addresses of `mh` whose tunnel carries it within the HA's reaction window from then
    (INT-15): the first copy awaited, every other CoA given the rest of the window."""
    return set(group_copy_counts(wire, mh.coas.values(), group, tag))


def group_copy_counts(wire: Wire, watch: Iterable[str], group: str, tag: str) -> dict[str, int]:
    """As `group_copies`, over the care-of addresses of `watch`: how many copies of the
    datagram each one's tunnel carried within the window (those with none left out)."""
    mark = wire.mn.mark()
    payload = wire.reach_ha(wire.src, group, tag)
    t0 = time.monotonic()
    at = {c: tunnelled_to(wire.ha, c, group, payload) for c in sorted(set(watch))}
    try:
        wire.mn.expect(any_of(*at.values()), within=wire.forward_within, since=mark)
    except ExpectationFailed:
        return {}
    for predicate in at.values():
        left = max(0.0, wire.forward_within - (time.monotonic() - t0))
        try:
            wire.mn.expect(predicate, within=left, since=mark)
        except ExpectationFailed:
            continue
    frames = wire.mn.packets(since=mark)
    counts = {coa: sum(1 for f in frames if predicate(f)) for coa, predicate in at.items()}
    return {coa: n for coa, n in counts.items() if n}
