"""The reference Home Agent's data-plane decisions (sans-I/O): what the daemon joins on its
uplink, which care-of addresses get a copy of a multicast packet, and when each binding is
due for an MLD General Query. The daemon (ha_daemon.py, ha_io.py) does the sockets.

* The join set (draft §6, RFC 6275 §10.4.2): for every binding's IPv6 multicast state, an
  EXCLUDE-mode group is one any-source membership (group, None), an INCLUDE-mode group one
  source-specific membership (group, source) per source; groups of link-local scope are
  never joined.
* The copies (draft §3, §6): a multicast packet goes into the tunnel of every binding whose
  state admits (group, source), one copy per binding, none natively on the access link,
  never for a group of link-local scope; a checksum its sender left to offload is completed.
  IPv4 groups likewise by the state of the option's IGMPv3 form (draft §8), joined on the
  uplink and copied IPv4-in-IPv6, or to an IPv4 care-of address the way that binding's
  packets go (copies4; RFC 5555 §4.5.1).
  A binding whose mobile node has flow bindings sends its copy where the first active flow
  binding whose traffic selector matches the packet says (OPEN-8; RFC 6089 §5.3.6 applies
  to every packet forwarded to the MN): to that flow's BIDs' CoAs, one copy per CoA for the
  mobile node however many of its bindings hold the group; no flow matching, to the
  binding's own CoA.
* The steering of unicast packets for a home address among its bindings (RFC 6089 §5.3.6,
  RFC 5648): the first matching active flow binding, else the lowest BID-PRI.
* The query schedule (draft §6, RFC 6275 §10.4.3, INT-7): a General Query to the CoA of each
  binding with IPv6 multicast state, at once when it gets state (or moves to another CoA),
  then every Query Interval; bindings without multicast state get none.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from harness.faults import NO_FAULTS, Fault, Faults
from harness.reference import ha_core, ha_mcoa
from harness.reference import multicast as mcast
from harness.wire import ipv4, ipv6, traffic_selector

IPv6 = ipaddress.IPv6Address
IPv4 = ipaddress.IPv4Address


class Served(NamedTuple):
    """A binding's multicast service as the data plane sees it: where to, what it admits,
    and the binding cache entry of its home address, whose flow bindings may send the data
    elsewhere (OPEN-8; None: nothing to steer by)."""

    coa: IPv4 | IPv6
    state: mcast.BindingMulticast
    node: ha_core.MobileNode | None = None


# A membership on the uplink: (group, source), source None for any source; IPv6 groups of
# the MLDv2 form of the state, IPv4 ones of its IGMPv3 form (draft §8).
Membership = tuple[IPv6 | IPv4, IPv6 | IPv4 | None]


def group_served(group: IPv6, faults: Faults = NO_FAULTS) -> bool:
    return ha_core.served_scope(group, faults)


def join_set(served: Iterable[Served], faults: Faults = NO_FAULTS) -> set[Membership]:
    """The memberships the bindings' IPv6 multicast state asks for."""
    wanted: set[Membership] = set()
    for _coa, state, _node in served:
        for group, gstate in state.mld.groups.items():
            if not isinstance(group, IPv6) or not group_served(group, faults):
                continue
            if gstate.mode is mcast.Mode.INCLUDE:
                wanted |= {(group, src) for src in gstate.sources if isinstance(src, IPv6)}
            else:
                wanted.add((group, None))
        if faults.has(Fault.HA_IGMP_STATE_IGNORED):
            continue
        for group4, gstate in state.igmp.groups.items():  # draft §8: the IGMPv3 form
            if not isinstance(group4, IPv4) or not ha_core.served_scope(group4, faults):
                continue
            if gstate.mode is mcast.Mode.INCLUDE:
                wanted |= {(group4, src) for src in gstate.sources if isinstance(src, IPv4)}
            else:
                wanted.add((group4, None))
    return wanted


def membership_changes(
    joined: set[Membership], wanted: set[Membership], faults: Faults = NO_FAULTS
) -> tuple[list[Membership], list[Membership]]:
    """(to leave, to join), each in a stable order."""
    leave = [] if faults.has(Fault.HA_IGNORE_LEAVE) else sorted(joined - wanted, key=str)
    return leave, sorted(wanted - joined, key=str)


def wants(
    state: mcast.BindingMulticast, group: IPv6, source: IPv6, faults: Faults = NO_FAULTS
) -> bool:
    """Does a binding with this state get a copy of (group, source)?"""
    if faults.has(Fault.HA_IGNORE_LEAVE):
        return True
    if faults.has(Fault.HA_FORWARD_UNSUBSCRIBED):
        return bool(state.mld.groups)
    if faults.has(Fault.HA_IGNORE_SOURCE_FILTER):
        return group in state.mld.groups
    if faults.has(Fault.HA_FORWARD_BY_SOURCE):
        return any(state.admits(g, source) for g in state.mld.groups)
    return state.admits(group, source)


@dataclass(frozen=True)
class Copies:
    packet: bytes  # what goes into the tunnels
    group: IPv6 | IPv4
    coas: tuple[IPv6, ...]  # one copy each
    native: bool  # a copy on the access link too (a fault only)
    # (home address, IPv4 care-of address): one copy each, the way RFC 5555 §4.5.1 has
    # the home address's packets go there (in UDP behind a NAT)
    coas4: tuple[tuple[IPv6, IPv4], ...] = ()


def copies4(
    packet: bytes,
    checksum_not_ready: bool,
    served: Iterable[Served],
    faults: Faults = NO_FAULTS,
) -> Copies | None:
    """What becomes of an IPv4 packet seen on the uplink or the access link (draft §8: the
    reception state of the IGMPv3 form; RFC 5555 §4.5.1: IPv4 in IPv6 to an IPv6 CoA, and
    to an IPv4 CoA the way that binding's packets go)."""
    if len(packet) < 20 or packet[0] >> 4 != 4 or not 224 <= packet[16] < 240:
        return None
    group, source = IPv4(packet[16:20]), IPv4(packet[12:16])
    if faults.has(Fault.HA_IGMP_STATE_IGNORED) or not ha_core.served_scope(group, faults):
        return None  # 224.0.0.0/24 stays on its link
    if checksum_not_ready:
        packet = ipv4.complete_checksum(packet)
    coas: list[IPv6] = []
    coas4: list[tuple[IPv6, IPv4]] = []
    for coa, state, node in served:
        if not state.igmp.admits(group, source):
            continue
        if isinstance(coa, IPv6):
            coas.append(coa)
        elif node is not None:
            coas4.append((node.hoa, coa))
    return Copies(packet, group, tuple(coas), False, tuple(coas4))


def copies(
    packet: bytes,
    checksum_not_ready: bool,
    served: Iterable[Served],
    faults: Faults = NO_FAULTS,
) -> Copies | None:
    """What becomes of an IPv6 packet seen on the uplink or the access link: None when it
    is not multicast data for a tunnel at all."""
    if len(packet) < 40 or packet[24] != 0xFF:
        return None
    group = IPv6(packet[24:40])
    if checksum_not_ready and not faults.has(Fault.HA_NO_CHECKSUM_FIX):
        packet = ipv6.complete_checksum(packet)
    if faults.has(Fault.HA_NO_MCAST_FORWARD):
        return None
    if not group_served(group, faults):
        return None  # link-local scope (or less) stays on the link (RFC 6275 §10.4.2)
    source = IPv6(packet[8:24])
    coas: list[IPv6] = []
    fields: traffic_selector.PacketFields | None = None
    steered: set[tuple[IPv6, IPv6]] = set()  # (home address, CoA): one copy each
    by_flows = not faults.has(Fault.HA_MCAST_IGNORES_FLOWS)
    for coa, state, node in served:
        if not isinstance(coa, IPv6) or not wants(state, group, source, faults):
            continue
        targets: list[IPv4 | IPv6] | None = None
        if node is not None and node.flows and by_flows:  # OPEN-8, RFC 6089 §5.3.6
            if fields is None:
                fields = traffic_selector.packet_fields(packet)
            targets = flow_targets(fields, node.bindings.values(), node.flows.values(), faults)
        if node is None or targets is None:
            coas.append(coa)
        else:
            for target in targets:
                if isinstance(target, IPv6) and (node.hoa, target) not in steered:
                    steered.add((node.hoa, target))
                    coas.append(target)
        if coas and faults.has(Fault.HA_ONE_COPY_ONLY):
            del coas[1:]
            break
    native = bool(coas) and faults.has(Fault.HA_NATIVE_ON_HOME_LINK)
    return Copies(packet, group, tuple(coas), native)


def steer(
    packet: bytes,
    bindings: Iterable[ha_core.Binding],
    flows: Iterable[ha_mcoa.Flow],
    faults: Faults = NO_FAULTS,
) -> list[ipaddress.IPv4Address | IPv6]:
    """The care-of addresses a packet for a home address goes to (RFC 6089 §5.3.6): the
    first active flow binding, in FID-PRI order, whose traffic selector matches it names
    them (one copy per bound BID); a packet no active flow matches goes to the binding of
    the lowest BID-PRI (§5.1.1; 0, the RFC 5648 format, ranks last; ties: the lowest BID)."""
    bound = {b.bid: b for b in bindings}
    if not bound:
        return []
    fields = traffic_selector.packet_fields(packet)
    targets = flow_targets(fields, bound.values(), flows, faults)
    if targets is not None:
        return targets

    def rank(b: ha_core.Binding) -> tuple[int, int]:
        pri = b.bid_pri or 128
        return (-pri if faults.has(Fault.HA_DEFAULT_HIGHEST_BID_PRI) else pri, b.bid)

    return [min(bound.values(), key=rank).coa]


def flow_targets(
    fields: traffic_selector.PacketFields | None,
    bindings: Iterable[ha_core.Binding],
    flows: Iterable[ha_mcoa.Flow],
    faults: Faults = NO_FAULTS,
) -> list[IPv4 | IPv6] | None:
    """RFC 6089 §5.3.6: the CoAs of the first active flow binding, in FID-PRI order, whose
    traffic selector matches a packet's `fields` (one per bound BID); None when none does."""
    if faults.has(Fault.HA_FLOWS_IGNORED):
        return None
    bound = {b.bid: b for b in bindings}
    order = sorted(flows, key=lambda f: f.fid_pri, reverse=faults.has(Fault.HA_FLOW_ORDER_REVERSED))
    for flow in order:
        live = [bound[bid].coa for bid in flow.bids if bid in bound]
        if live and flow.selector.matches(fields):  # §4.3: an inactive entry is skipped
            return live[:1] if faults.has(Fault.HA_FLOW_FIRST_BID_ONLY) else live
    return None


def reverse_tunnel_target(
    inner: bytes,
    src: IPv6,
    bound: Iterable[tuple[IPv6, IPv6 | ipaddress.IPv4Address]],
    faults: Faults = NO_FAULTS,
) -> int | None:
    """RFC 6275 §10.4.5: the index in `bound` ((home address, CoA) pairs) of the binding a
    packet tunnelled from `src` belongs to: its inner source is the home address and `src`
    the CoA. Anything else (an MLD Report from the MN's link-local address, INT-7): None."""
    if len(inner) < 40 or inner[0] >> 4 != 6:
        return None
    hoa = IPv6(inner[8:24])
    loose = faults.has(Fault.HA_REVERSE_ANY_SOURCE)  # either address will do
    for i, (home, coa) in enumerate(bound):
        if (home == hoa and coa == src) or (loose and (home == hoa or coa == src)):
            return i
    return None


class QuerySchedule:
    """When each binding with IPv6 multicast state is due for a General Query (draft §6,
    RFC 6275 §10.4.3, INT-7): at once when it gets state (or moves to another CoA), then
    every Query Interval. Bindings without multicast state get none."""

    def __init__(self, interval: float, response: float, faults: Faults = NO_FAULTS) -> None:
        self.interval = interval
        self.response = response
        self.faults = faults
        self.schedule: dict[tuple[IPv6, int], tuple[float, IPv6]] = {}

    def sync(self, bindings: list[ha_core.Binding], now: float) -> None:
        if self.faults.has(Fault.HA_NO_QUERIER):
            return
        every = self.faults.has(Fault.HA_QUERY_EVERY_BINDING)
        wanted = {
            (b.hoa, b.bid): b.coa
            for b in bindings
            if isinstance(b.coa, IPv6) and (b.multicast.mld.groups or every)
        }
        for key in [k for k in self.schedule if k not in wanted]:
            del self.schedule[key]
        for key, coa in wanted.items():
            entry = self.schedule.get(key)
            if entry is None or entry[1] != coa:
                self.schedule[key] = (now, coa)

    def update(self, key: tuple[IPv6, int], coa: object, groups: bool, now: float) -> None:
        """One binding came, moved or changed its state (`groups`: it has IPv6 groups):
        `sync` for it alone."""
        if self.faults.has(Fault.HA_NO_QUERIER):
            return
        if not isinstance(coa, IPv6) or not (
            groups or self.faults.has(Fault.HA_QUERY_EVERY_BINDING)
        ):
            self.schedule.pop(key, None)
            return
        entry = self.schedule.get(key)
        if entry is None or entry[1] != coa:
            self.schedule[key] = (now, coa)

    def drop(self, key: tuple[IPv6, int]) -> None:
        self.schedule.pop(key, None)

    def next_due(self) -> float | None:
        return min((t for t, _ in self.schedule.values()), default=None)

    def due(self, now: float) -> list[IPv6]:
        """The CoAs to query now; each is scheduled again one interval from now."""
        out = []
        for key, (when, coa) in list(self.schedule.items()):
            if when <= now:
                out.append(coa)
                self.schedule[key] = (now + self.interval, coa)
        return out
