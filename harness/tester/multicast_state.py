"""The Multicast State option of the draft (§4.1) from the tester's side: building it from
records, the listener state a BA echoes (INT-6, merged across split records, INT-3), the
state a fresh binding gets from one BU's records (INT-7 with RFC 3810 §7.4.2), and the
property that any option is installed and echoed exactly (hypothesis, against the live HA).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, assume, example, given, settings

from harness import strategies
from harness.config import WireConfig
from harness.tester.conversation import Link
from harness.tester.home_agent import HomeAgentUnderTest, deregister, register
from harness.wire import compact
from harness.wire.mobility import MIP6OptMulticastState, MldAddressRecord
from harness.wire.numbers import MLDV2_REPORT

INCLUDE, EXCLUDE = "include", "exclude"
IS_IN, IS_EX, TO_IN, TO_EX, ALLOW, BLOCK = 1, 2, 3, 4, 5, 6


def state(*records: tuple[int, str, tuple[str, ...]]) -> MIP6OptMulticastState:
    """A Multicast State option (MLDv2 form) of (record type, group, sources) records."""
    return MIP6OptMulticastState(
        records=[MldAddressRecord(rtype=t, maddr=g, sources=list(s)) for t, g, s in records]
    )


Echo = dict[ipaddress.IPv4Address | ipaddress.IPv6Address, tuple[str, frozenset[Any]]]


def echoed(ba: compact.MobilityMessage, family: int = MLDV2_REPORT) -> Echo | None:
    """The listener state a BA's Multicast State options list (INT-6), merged across split
    records (INT-3); None when the BA carries no option of that family."""
    wire = WireConfig.from_env()
    states = [
        compact.parse_multicast_state(o.data)
        for o in ba.options
        if compact.is_multicast_state(o, wire)
    ]
    states = [s for s in states if s.report_type == family]
    if not states:
        return None
    out: dict[Any, tuple[str, set[Any]]] = {}
    for s in states:
        assert s.checksum_ok, "a Multicast State option of the BA has a bad checksum (INT-2)"
        for r in s.records:
            assert r.rtype in (IS_IN, IS_EX), (
                f"the BA echoes a record of type {r.rtype}, not a Current-State record (INT-6)"
            )
            mode = INCLUDE if r.rtype == IS_IN else EXCLUDE
            group = ipaddress.ip_address(r.maddr)
            prev = out.setdefault(group, (mode, set()))
            assert prev[0] == mode, f"the BA echoes {group} in both filter modes"
            prev[1].update(ipaddress.ip_address(a) for a in r.sources)
    return {g: (m, frozenset(s)) for g, (m, s) in out.items()}


def expected_echo(records: list[Any]) -> Echo:
    """The state a fresh binding gets from one BU's records (INT-3 merge, INT-7 with RFC 3810
    §7.4.2 from the empty state INCLUDE {}); the model the echo is judged against."""
    merged: dict[tuple[int, Any], set[Any]] = {}
    for r in records:
        key = (int(r.rtype), ipaddress.ip_address(r.maddr))
        merged.setdefault(key, set()).update(ipaddress.ip_address(a) for a in r.sources or [])
    out: Echo = {}
    for (rtype, group), sources in merged.items():
        if rtype in (IS_EX, TO_EX):
            out[group] = (EXCLUDE, frozenset(sources))
        elif rtype in (IS_IN, TO_IN, ALLOW) and sources:
            out[group] = (INCLUDE, frozenset(sources))
        # BLOCK from INCLUDE {} and INCLUDE {} itself: not listening
    return out


def one_type_per_group(option: MIP6OptMulticastState) -> bool:
    """INT-3 leaves a BU that gives one group records of several types unjudged."""
    types: dict[str, set[int]] = {}
    for r in option.records:
        types.setdefault(str(r.maddr), set()).add(int(r.rtype))
    return all(len(t) == 1 for t in types.values())


def largest_mld_option() -> MIP6OptMulticastState:
    """One record with 14 sources: 8 + 20 + 14 x 16 = 252 octets, the most that fits (INT-3)."""
    sources = [f"2001:db8:c2::{i:x}" for i in range(0x100, 0x10E)]
    return state((TO_IN, "ff3e::8000:7f", tuple(sources)))


def aux_data_option() -> MIP6OptMulticastState:
    """Records with auxiliary data between good ones (RFC 3810 §5.2.10: ignored)."""
    return MIP6OptMulticastState(
        records=[
            MldAddressRecord(rtype=IS_EX, maddr="ff0e::db8:7e", sources=[], auxdata=b"\x01" * 8),
            MldAddressRecord(rtype=IS_IN, maddr="ff3e::8000:7e", sources=["2001:db8:c2::10"]),
        ]
    )


def echo_property(ha: HomeAgentUnderTest, link: Link, family: int) -> Callable[[], None]:
    """Any Multicast State option of `family` (all record types, source lists, aux data,
    sizes up to the option limit) in a BU to the live HA: BA status 0, and the echo lists
    exactly the state the records give (INT-6). Each example uses a fresh home address and
    is deregistered after."""

    @settings(
        max_examples=12,
        deadline=None,
        derandomize=True,  # the same examples on every run (and in CI)
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(option=strategies.multicast_state_option(6 if family == MLDV2_REPORT else 4))
    def check(option: MIP6OptMulticastState) -> None:
        assume(one_type_per_group(option))
        hoa = ha.fresh_hoa()
        ba = register(ha, link, hoa, 1, option)
        try:
            got = echoed(ba, family)
            assert got is not None, "the BA carries no Multicast State option back (INT-6)"
            want = expected_echo(list(option.records))
            assert got == want, f"the BA echoes {got}, the records give {want}"
        finally:
            deregister(ha, link, hoa, 2, ha.coa)

    if family == MLDV2_REPORT:
        check = example(option=largest_mld_option())(check)
        check = example(option=aux_data_option())(check)
    return check
