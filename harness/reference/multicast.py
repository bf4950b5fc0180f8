"""Per-binding multicast listener state from Multicast State options (sans-I/O).

The rules are those of docs/interpretations.md INT-3 (split records merge), INT-5 (state
belongs to the binding), INT-6 (what the BA echoes) and INT-7 (a snapshot replaces, changes
apply), with the single-listener reading of RFC 3810 §7.4.2 / RFC 3376 §6.4.2.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

from harness.wire.compact import McastRecord, McastState
from harness.wire.numbers import IGMPV3_REPORT, MLDV2_REPORT, McastRecordType

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class Mode(Enum):
    INCLUDE = "include"
    EXCLUDE = "exclude"


@dataclass(frozen=True)
class GroupState:
    mode: Mode
    sources: frozenset[Address]

    def admits(self, source: Address) -> bool:
        """Does this filter let data from `source` through (RFC 3810 §2.2)?"""
        inside = source in self.sources
        return inside if self.mode is Mode.INCLUDE else not inside


@dataclass
class ListenerState:
    """One binding's listener state for one address family."""

    groups: dict[Address, GroupState] = field(default_factory=dict)

    def admits(self, group: Address, source: Address) -> bool:
        state = self.groups.get(group)
        return state is not None and state.admits(source)

    def copy(self) -> ListenerState:
        return ListenerState(dict(self.groups))


CURRENT_STATE = {McastRecordType.MODE_IS_INCLUDE, McastRecordType.MODE_IS_EXCLUDE}


def merge_split_records(records: Iterable[McastRecord]) -> list[McastRecord]:
    """Records of the same group and type in one BU are one record cut in pieces (INT-3)."""
    merged: dict[tuple[int, str], McastRecord] = {}
    for rec in records:
        key = (rec.rtype, rec.maddr)
        if key in merged:
            prev = merged[key]
            merged[key] = McastRecord(
                rec.rtype, rec.maddr, prev.sources + rec.sources, prev.auxdata
            )
        else:
            merged[key] = rec
    return list(merged.values())


def apply_records(previous: ListenerState, records: list[McastRecord]) -> ListenerState:
    """The state after one BU's records for one family (INT-7)."""
    records = merge_split_records(records)
    snapshot = not records or any(r.rtype in CURRENT_STATE for r in records)
    state = ListenerState() if snapshot else previous.copy()
    for rec in records:
        group = ipaddress.ip_address(rec.maddr)
        sources = frozenset(ipaddress.ip_address(s) for s in rec.sources)
        old = state.groups.get(group, GroupState(Mode.INCLUDE, frozenset()))
        rtype = McastRecordType(rec.rtype)
        if rtype in (McastRecordType.MODE_IS_INCLUDE, McastRecordType.CHANGE_TO_INCLUDE_MODE):
            new = GroupState(Mode.INCLUDE, sources)
        elif rtype in (McastRecordType.MODE_IS_EXCLUDE, McastRecordType.CHANGE_TO_EXCLUDE_MODE):
            new = GroupState(Mode.EXCLUDE, sources)
        elif rtype is McastRecordType.ALLOW_NEW_SOURCES:
            new = GroupState(
                old.mode,
                old.sources | sources if old.mode is Mode.INCLUDE else old.sources - sources,
            )
        else:  # BLOCK_OLD_SOURCES
            new = GroupState(
                old.mode,
                old.sources - sources if old.mode is Mode.INCLUDE else old.sources | sources,
            )
        if new.mode is Mode.INCLUDE and not new.sources:
            state.groups.pop(group, None)  # INCLUDE {} is "not listening"
        else:
            state.groups[group] = new
    return state


def echo_records(state: ListenerState) -> list[McastRecord]:
    """What the BA lists (INT-6): the resulting state as Current-State records, sorted."""
    out = []
    for group in sorted(state.groups, key=lambda a: a.packed):
        g = state.groups[group]
        rtype = (
            McastRecordType.MODE_IS_INCLUDE
            if g.mode is Mode.INCLUDE
            else McastRecordType.MODE_IS_EXCLUDE
        )
        srcs = tuple(str(s) for s in sorted(g.sources, key=lambda a: a.packed))
        out.append(McastRecord(int(rtype), str(group), srcs))
    return out


@dataclass
class BindingMulticast:
    """A binding's state for both families (MLD for IPv6 groups, IGMP for IPv4)."""

    mld: ListenerState = field(default_factory=ListenerState)
    igmp: ListenerState = field(default_factory=ListenerState)

    def apply(self, options: Iterable[McastState], from_empty: bool = False) -> set[int]:
        """Apply one BU's Multicast State options; returns the report types it carried.
        `from_empty`: to an empty state instead of the binding's (a fault's reading)."""
        by_family: dict[int, list[McastRecord]] = {}
        for opt in options:
            by_family.setdefault(opt.report_type, []).extend(opt.records)
        if MLDV2_REPORT in by_family:
            previous = ListenerState() if from_empty else self.mld
            self.mld = apply_records(previous, by_family[MLDV2_REPORT])
        if IGMPV3_REPORT in by_family:
            previous = ListenerState() if from_empty else self.igmp
            self.igmp = apply_records(previous, by_family[IGMPV3_REPORT])
        return set(by_family)

    def admits(self, group: Address, source: Address) -> bool:
        family = self.mld if group.version == 6 else self.igmp
        return family.admits(group, source)
