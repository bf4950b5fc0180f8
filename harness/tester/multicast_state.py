"""The Multicast State option of the draft (§4.1) from the tester's side: building it from
records, the listener state a BA echoes (INT-6, merged across split records, INT-3), the
state a fresh binding gets from one BU's records (INT-7 with RFC 3810 §7.4.2), and the
property that any option is installed and echoed exactly (hypothesis, against the live HA).

INT-6 accepts two readings of the echo: the installed state (Current-State records), or the
BU's options copied verbatim. A verbatim echo says nothing about what was installed, so a
verdict that rests on the installed state is then taken from the data, or inconclusive.
INT-2 accepts two checksums: without a pseudo-header, or with the MLD pseudo-header of the
report the MN's stack would have sent (`with_pseudo_header`).
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable, Sequence
from typing import Any

from hypothesis import HealthCheck, assume, example, given, settings

from harness import strategies, verdicts
from harness.config import WireConfig
from harness.tester.conversation import Link
from harness.tester.home_agent import HomeAgentUnderTest, deregister, register
from harness.wire import compact
from harness.wire.ipv6 import internet_checksum
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


def option_bodies(ba: compact.MobilityMessage, family: int = MLDV2_REPORT) -> list[bytes]:
    """The bodies of the BA's Multicast State options of `family`, in order."""
    wire = WireConfig.from_env()
    return [
        o.data
        for o in ba.options
        if compact.is_multicast_state(o, wire) and o.data[:1] == bytes([family])
    ]


def is_verbatim_echo(ba: compact.MobilityMessage, sent: Sequence[MIP6OptMulticastState]) -> bool:
    """Does the BA carry back exactly the options the BU carried (INT-6, second reading)?"""
    bodies = [bytes(o)[2:] for o in sent]
    family = bodies[0][0] if bodies and bodies[0] else MLDV2_REPORT
    return bool(bodies) and option_bodies(ba, family) == bodies


def echoed_or_verbatim(
    ba: compact.MobilityMessage, sent: Sequence[MIP6OptMulticastState], family: int = MLDV2_REPORT
) -> Echo | None:
    """`echoed`, unless the BA copies the BU's options verbatim: then the verdict that rests
    on the installed state cannot be taken from the BA (inconclusive, INT-6). A copy of
    Current-State records with a good checksum reads as the installed state either way."""
    if is_verbatim_echo(ba, sent) and echoed_state_differs(ba, family):
        verdicts.inconclusive(
            "the HA echoes the Multicast State option verbatim (INT-6 allows it): the BA does "
            "not show the installed state this check judges"
        )
    return echoed(ba, family)


def echoed_state_differs(ba: compact.MobilityMessage, family: int = MLDV2_REPORT) -> bool:
    """Is the BA's echo something other than Current-State records with good checksums?"""
    wire = WireConfig.from_env()
    for o in ba.options:
        if not compact.is_multicast_state(o, wire) or o.data[:1] != bytes([family]):
            continue
        try:
            st = compact.parse_report(o.data)
        except compact.Malformed:
            return True
        if not st.checksum_ok or any(r.rtype not in (IS_IN, IS_EX) for r in st.records):
            return True
    return False


ALL_MLDV2_ROUTERS = ipaddress.IPv6Address("ff02::16")


def link_local_of(addr: str) -> ipaddress.IPv6Address:
    """The link-local address with the interface identifier of `addr` (RFC 4862 §5.3)."""
    return ipaddress.IPv6Address(b"\xfe\x80" + bytes(6) + ipaddress.IPv6Address(addr).packed[8:])


def with_pseudo_header(option: MIP6OptMulticastState, src: ipaddress.IPv6Address) -> Any:
    """The option with the checksum an MN's stack gives the MLDv2 Report it sends from
    `src` to ff02::16 (RFC 3810 §5.2.2, RFC 8200 §8.1), as an MN that copies that report
    into the option carries it (INT-2 accepts it)."""
    raw = bytearray(bytes(option))
    body = bytes(raw[2:4]) + b"\0\0" + bytes(raw[6:])
    pseudo = src.packed + ALL_MLDV2_ROUTERS.packed + struct.pack("!I3xB", len(body), 58)
    struct.pack_into("!H", raw, 4, int(internet_checksum(pseudo + body)))
    return MIP6OptMulticastState(bytes(raw))


def split_state(*records: tuple[int, str, tuple[str, ...]]) -> list[MIP6OptMulticastState]:
    """One Multicast State option per record (INT-3: a BU may carry several, each with its
    own header and checksum; the HA merges them)."""
    return [state(r) for r in records]


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


ECHO_EXAMPLES = 12  # examples of echo_property per run (dmmconf bench all reports the rate)


def echo_property(ha: HomeAgentUnderTest, link: Link, family: int) -> Callable[[], None]:
    """Any Multicast State option of `family` (all record types, source lists, aux data,
    sizes up to the option limit) in a BU to the live HA: BA status 0, and the echo lists
    exactly the state the records give (INT-6). Each example uses a fresh home address and
    is deregistered after."""

    @settings(
        max_examples=ECHO_EXAMPLES,
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
            tally["examples"] += 1
            if is_verbatim_echo(ba, [option]):
                tally["verbatim"] += 1  # INT-6's second reading: accepted, shows no state
                return
            got = echoed(ba, family)
            assert got is not None, "the BA carries no Multicast State option back (INT-6)"
            want = expected_echo(list(option.records))
            assert got == want, f"the BA echoes {got}, the records give {want}"
        finally:
            deregister(ha, link, hoa, 2, ha.coa)

    if family == MLDV2_REPORT:
        check = example(option=largest_mld_option())(check)
        check = example(option=aux_data_option())(check)
    tally = {"examples": 0, "verbatim": 0}

    def run() -> None:
        check()
        if tally["examples"] and tally["verbatim"] == tally["examples"]:
            verdicts.inconclusive(
                "the HA echoed every option verbatim (INT-6 allows it): the BA never showed "
                "the installed state, which the data tests judge instead"
            )

    return run
