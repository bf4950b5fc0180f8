"""The reference HA core on the points of issue 10: a BA regardless of the A flag (RFC 6275
§10.3.1), sequence numbers across the wrap (§9.5.1), expiry of a binding and its multicast
state (§10.3.1), a record of unknown type (RFC 3810 §5.2.12), the checksum of the option
with or without the MLD pseudo-header (INT-2), several options in one BU (INT-3), and the
Reserved fields of the option (RFC 3810 §5.2.1)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import pytest

from harness.faults import Fault, Faults
from harness.reference.ha_core import (
    MulticastChanged,
    SendBindingAck,
    checksum_accepted,
    parse_multicast_state,
    pseudo_header_sources,
)
from harness.tester.multicast_state import link_local_of, split_state, state, with_pseudo_header
from harness.wire.mobility import MIP6OptMulticastState
from tests.unit.test_reference_ha_core import COA, HOA, NOW, bu, core, only

G1, G2 = "ff0e::db8:1", "ff0e::db8:2"


def groups(actions: Sequence[object]) -> set[str]:
    changed = only(actions, MulticastChanged)
    return {str(g) for c in changed for g in c.state.mld.groups}


@pytest.mark.parametrize("flags", [0x300, 0x100])
def test_an_accepted_home_registration_gets_a_ba_with_or_without_a(flags: int) -> None:
    (ba,) = only(core().receive(bu(seq=7, flags=flags), NOW), SendBindingAck)
    assert (ba.status, ba.seq) == (0, 7)


def test_the_fault_answers_only_with_a() -> None:
    ha = core(faults=Faults.of(Fault.HA_NO_BA_WITHOUT_A))
    assert only(ha.receive(bu(seq=7, flags=0x100), NOW), SendBindingAck) == []


@pytest.mark.parametrize("faults", [Faults(), Faults.of(Fault.HA_SEQ_NO_WRAP)])
def test_sequence_numbers_wrap(faults: Faults) -> None:
    ha = core(faults=faults)
    assert only(ha.receive(bu(seq=65535), NOW), SendBindingAck)[0].status == 0
    (ba,) = only(ha.receive(bu(seq=0), NOW), SendBindingAck)
    assert (ba.status, ba.seq) == ((135, 65535) if faults else (0, 0))
    # the window still holds for both: 32868 is not newer than 100
    ha = core(faults=faults)
    ha.receive(bu(seq=100), NOW)
    assert only(ha.receive(bu(seq=100 + 32768), NOW), SendBindingAck)[0].status == 135


@pytest.mark.parametrize("faults", [Faults(), Faults.of(Fault.HA_NO_EXPIRY)])
def test_a_binding_ends_with_its_lifetime(faults: Faults) -> None:
    ha = core(faults=faults)
    ha.receive(bu(state((2, G1, ())), seq=3, lifetime=1), NOW)
    assert ha.bindings()
    actions = ha.tick(NOW + 4.001)
    if faults:
        assert ha.bindings() and not actions
    else:
        assert not ha.bindings()
        (changed,) = only(actions, MulticastChanged)
        assert not changed.state.mld.groups


def test_a_record_of_unknown_type_is_ignored_and_the_rest_installed() -> None:
    option = state((1, G1, ("2001:db8:c2::1",)), (2, G2, ()))
    body = bytearray(bytes(option)[2:])
    body[8] = 9  # the first record's type
    from harness.wire.mobility import report_checksum

    body[2:4] = report_checksum(bytes(body)).to_bytes(2, "big")
    parsed = parse_multicast_state(bytes(body))
    assert [r.maddr for r in parsed.records] == [G2] and parsed.checksum_ok
    with pytest.raises(Exception, match="unknown record type"):
        parse_multicast_state(bytes(body), Faults.of(Fault.HA_DROP_OPTION_WITH_UNKNOWN_RECORD))


def test_the_checksum_with_the_mld_pseudo_header_is_accepted() -> None:
    src = link_local_of(HOA)
    option = with_pseudo_header(state((2, G1, ())), src)
    body = bytes(option)[2:]
    parsed = parse_multicast_state(body)
    assert not parsed.checksum_ok  # not the checksum without pseudo-header
    sources = pseudo_header_sources(ipaddress.IPv6Address(HOA), ipaddress.IPv6Address(COA))
    assert src in sources
    assert checksum_accepted(parsed, body, sources)
    refused = Faults.of(Fault.HA_REFUSE_PSEUDO_HEADER_CHECKSUM)
    assert not checksum_accepted(parsed, body, sources, refused)
    assert groups(core().receive(bu(option, seq=2), NOW)) == {G1}


def test_damaged_options_are_still_refused() -> None:
    option = state((2, G1, ()))
    raw = bytearray(bytes(option))
    raw[4] ^= 0x55
    assert groups(core().receive(bu(MIP6OptMulticastState(bytes(raw)), seq=2), NOW)) == set()


@pytest.mark.parametrize("faults", [Faults(), Faults.of(Fault.HA_FIRST_OPTION_ONLY)])
def test_several_options_are_merged(faults: Faults) -> None:
    options = split_state((2, G1, ()), (2, G2, ()))
    got = groups(core(faults=faults).receive(bu(*options, seq=2), NOW))
    assert got == ({G1} if faults else {G1, G2})


@pytest.mark.parametrize("faults", [Faults(), Faults.of(Fault.HA_REJECT_REPORT_RESERVED)])
def test_reserved_fields_are_ignored(faults: Faults) -> None:
    option = state((2, G1, ()))
    option.reserved1, option.reserved2 = 0xFF, 0xFFFF
    got = groups(core(faults=faults).receive(bu(option, seq=2), NOW))
    assert got == (set() if faults else {G1})
