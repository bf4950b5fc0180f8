"""The reference HA's listener-state rules (INT-3, INT-6, INT-7) against a set-algebra model."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.reference.multicast import (
    ListenerState,
    Mode,
    apply_records,
    echo_records,
    merge_split_records,
)
from harness.wire.compact import McastRecord

GROUPS = ["ff3e::8000:1", "ff3e::8000:2", "ff0e::1"]
SOURCES = ["2001:db8::1", "2001:db8::2", "2001:db8::3", "2001:db8::4"]


def records(types: list[int]) -> st.SearchStrategy[list[McastRecord]]:
    rec = st.builds(
        lambda t, g, s: McastRecord(t, g, tuple(s)),
        st.sampled_from(types),
        st.sampled_from(GROUPS),
        st.lists(st.sampled_from(SOURCES), unique=True, max_size=4),
    )
    return st.lists(rec, max_size=6)


def model(
    previous: dict[str, tuple[str, set[str]]], recs: list[McastRecord]
) -> dict[str, tuple[str, set[str]]]:
    """RFC 3810 §7.4.2 for one listener, written as plainly as possible."""
    merged: dict[tuple[int, str], set[str]] = {}
    order: list[tuple[int, str]] = []
    for r in recs:
        if (r.rtype, r.maddr) not in merged:
            order.append((r.rtype, r.maddr))
        merged.setdefault((r.rtype, r.maddr), set()).update(r.sources)
    state = {} if (not recs or any(r.rtype in (1, 2) for r in recs)) else dict(previous)
    for rtype, group in order:
        srcs = merged[(rtype, group)]
        mode, have = state.get(group, ("in", set()))
        if rtype in (1, 3):
            state[group] = ("in", set(srcs))
        elif rtype in (2, 4):
            state[group] = ("ex", set(srcs))
        elif rtype == 5:
            state[group] = (mode, have | srcs if mode == "in" else have - srcs)
        else:
            state[group] = (mode, have - srcs if mode == "in" else have | srcs)
        if state[group] == ("in", set()):
            del state[group]
    return state


def as_model(state: ListenerState) -> dict[str, tuple[str, set[str]]]:
    return {
        str(g): ("in" if s.mode is Mode.INCLUDE else "ex", {str(x) for x in s.sources})
        for g, s in state.groups.items()
    }


@settings(max_examples=300, deadline=None)
@given(records([1, 2, 3, 4, 5, 6]), records([1, 2, 3, 4, 5, 6]))
def test_two_bus_match_the_model(first: list[McastRecord], second: list[McastRecord]) -> None:
    after_first = apply_records(ListenerState(), first)
    assert as_model(after_first) == model({}, first)
    after_second = apply_records(after_first, second)
    assert as_model(after_second) == model(model({}, first), second)


@settings(max_examples=200, deadline=None)
@given(records([1, 2]))
def test_echo_of_a_snapshot_reinstalls_the_same_state(snapshot: list[McastRecord]) -> None:
    state = apply_records(ListenerState(), snapshot)
    again = apply_records(ListenerState(), echo_records(state))
    assert as_model(again) == as_model(state)


@settings(max_examples=200, deadline=None)
@given(records([1, 2]), st.integers(1, 3))
def test_split_records_merge_back(snapshot: list[McastRecord], cut: int) -> None:
    pieces = []
    for r in snapshot:
        pieces.append(McastRecord(r.rtype, r.maddr, r.sources[:cut]))
        pieces.append(McastRecord(r.rtype, r.maddr, r.sources[cut:]))
    assert as_model(apply_records(ListenerState(), pieces)) == as_model(
        apply_records(ListenerState(), merge_split_records(snapshot))
    )


def test_forwarding_follows_the_filter() -> None:
    state = apply_records(
        ListenerState(),
        [
            McastRecord(1, "ff3e::8000:1", ("2001:db8::1",)),
            McastRecord(2, "ff0e::1", ("2001:db8::2",)),
        ],
    )
    g1, g2 = ipaddress.ip_address("ff3e::8000:1"), ipaddress.ip_address("ff0e::1")
    s1, s2 = ipaddress.ip_address("2001:db8::1"), ipaddress.ip_address("2001:db8::2")
    assert state.admits(g1, s1) and not state.admits(g1, s2)
    assert state.admits(g2, s1) and not state.admits(g2, s2)
    assert not state.admits(ipaddress.ip_address("ff3e::8000:9"), s1)


def test_empty_option_clears_and_absent_option_keeps() -> None:
    state = apply_records(ListenerState(), [McastRecord(1, "ff3e::8000:1", ("2001:db8::1",))])
    assert apply_records(state, []).groups == {}
