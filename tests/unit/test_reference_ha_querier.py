"""The HA's General Query schedule kept binding by binding (update/drop, what the daemon
does per action) ends where a full sync over the bindings would: the same keys, CoAs and
due times, whatever the order of the changes."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.faults import NO_FAULTS, Fault, Faults
from harness.reference import multicast as mcast
from harness.reference.ha_core import Binding
from harness.reference.ha_dataplane import QuerySchedule
from harness.reference.multicast import BindingMulticast

HOAS = [ipaddress.IPv6Address(f"2001:db8:1::{n:x}") for n in range(1, 5)]
COAS = [ipaddress.IPv6Address(f"2001:db8:2::{n:x}") for n in range(1, 4)]
GROUP = ipaddress.IPv6Address("ff3e::8000:1")

# (home address index, CoA index or None for "gone", has a group)
CHANGES = st.lists(
    st.tuples(st.integers(0, 3), st.none() | st.integers(0, 2), st.booleans()), max_size=20
)


def _binding(hoa: int, coa: int, groups: bool) -> Binding:
    state = BindingMulticast()
    if groups:  # EXCLUDE {}: every source of the group
        state.mld.groups[GROUP] = mcast.GroupState(mcast.Mode.EXCLUDE, frozenset())
    return Binding(HOAS[hoa], 0, COAS[coa], 0, 1e9, state)


@settings(max_examples=100, deadline=None, database=None)
@given(CHANGES, st.sampled_from([NO_FAULTS, Faults.of(Fault.HA_QUERY_EVERY_BINDING)]))
def test_updates_one_by_one_end_where_a_full_sync_does(changes: list, faults: Faults) -> None:
    incremental, full = QuerySchedule(1.0, 0.1, faults), QuerySchedule(1.0, 0.1, faults)
    bindings: dict[int, Binding] = {}
    for now, (hoa, coa, groups) in enumerate(changes):
        key = (HOAS[hoa], 0)
        if coa is None:
            bindings.pop(hoa, None)
            incremental.drop(key)
        else:
            b = bindings[hoa] = _binding(hoa, coa, groups)
            incremental.update(key, b.coa, bool(b.multicast.mld.groups), float(now))
        full.sync(list(bindings.values()), float(now))
        assert incremental.schedule == full.schedule
