"""The fault catalogue (harness/faults.py) against the reference that consults it, and the
sans-I/O decisions the reference daemons take from their data-plane modules."""

from __future__ import annotations

import ipaddress
import re
import tomllib
from pathlib import Path

import pytest

from harness.faults import CATALOGUE, NO_FAULTS, Fault, Faults, Role, UnknownFault, by_name
from harness.reference import ha_dataplane, ha_hooks, mn_packets
from harness.reference.multicast import BindingMulticast, GroupState, ListenerState, Mode

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "harness" / "reference"
HOOK = re.compile(r"\bFault\.([A-Z0-9_]+)\b")

G1 = ipaddress.IPv6Address("ff3e::4321:1")
G2 = ipaddress.IPv6Address("ff1e::2")
LINK_LOCAL = ipaddress.IPv6Address("ff02::1234")
S1 = ipaddress.IPv6Address("2001:db8:c0::1")
S2 = ipaddress.IPv6Address("2001:db8:c0::2")
COA1 = ipaddress.IPv6Address("2001:db8:2::10")
COA2 = ipaddress.IPv6Address("2001:db8:3::10")


def hooks() -> dict[str, list[str]]:
    """Each Fault member named in the reference's code, with where."""
    found: dict[str, list[str]] = {}
    for path in sorted(REFERENCE.glob("*.py")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for name in HOOK.findall(line):
                found.setdefault(name, []).append(f"{path.name}:{n}")
    return found


def test_every_fault_has_a_hook_in_the_reference() -> None:
    found = hooks()
    missing = [f.name for f in Fault if f.name not in found]
    assert not missing, f"faults no hook consults (a renamed or removed hook?): {missing}"


def test_every_hook_names_a_fault_of_the_catalogue() -> None:
    unknown = {name: where for name, where in hooks().items() if name not in Fault.__members__}
    assert not unknown, f"hooks naming no fault: {unknown}"


def test_every_fault_breaks_a_clause_of_the_catalog() -> None:
    catalog = tomllib.loads((ROOT / "suites" / "requirements.toml").read_text(encoding="utf-8"))
    ids = {c["id"] for c in catalog["clause"]}
    assert set(CATALOGUE) == set(Fault)
    for fault, spec in CATALOGUE.items():
        assert spec.clause in ids, f"{fault.name}: no clause {spec.clause}"
        assert spec.description, fault.name
        assert fault.name.startswith(fault.role.value.upper() + "_")


def test_no_global_of_the_reference_is_patched() -> None:
    patch = re.compile(r"^\s*[\w.]+\.\w+\s*=\s*(lambda|_\w+)", re.M)
    for path in REFERENCE.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        hits = [
            m.group(0) for m in patch.finditer(text) if not m.group(0).lstrip().startswith("self.")
        ]
        assert not hits, f"{path.name} assigns module attributes: {hits}"
        assert "install_mutant" not in text


def test_names_are_parsed_per_role_and_unknown_ones_refused() -> None:
    assert Faults.parse(Role.HA, None) == NO_FAULTS and not NO_FAULTS
    assert Faults.parse(Role.HA, "no-dad").has(Fault.HA_NO_DAD)
    both = Faults.parse(Role.MN, "no-hao, no-auth")
    assert both == Faults.of(Fault.MN_NO_HAO, Fault.MN_NO_AUTH) and str(both) == "no-auth,no-hao"
    assert Faults.parse(Role.HA, "no-reverse-tunnel").has(Fault.HA_NO_REVERSE_TUNNEL)
    assert Faults.parse(Role.MN, "no-reverse-tunnel").has(Fault.MN_NO_REVERSE_TUNNEL)
    with pytest.raises(UnknownFault, match="no-hao"):
        Faults.parse(Role.HA, "no-hao")  # an MN fault
    with pytest.raises(UnknownFault):
        Faults.parse(Role.MN, "no-such-fault")
    assert set(by_name(Role.HA)) | set(by_name(Role.MN)) == {f.label for f in Fault}


def test_profile_variable_is_parsed_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.reference import ha_daemon, mn_daemon

    monkeypatch.setenv("DMMCONF_HA_MUTANT", "ghost-state")
    assert ha_daemon.faults_from_env() == Faults.of(Fault.HA_GHOST_STATE)
    monkeypatch.setenv("DMMCONF_HA_MUTANT", "ghost")
    with pytest.raises(SystemExit, match="unknown HA fault"):
        ha_daemon.faults_from_env()
    monkeypatch.setenv("DMMCONF_MN_MUTANT", "ghost")
    with pytest.raises(SystemExit) as info:
        mn_daemon.faults_from_env()
    assert info.value.code == 2


# ---------------------------------------------------------------- the HA's data plane


def served(*entries: tuple[ipaddress.IPv6Address, dict]) -> list[ha_dataplane.Served]:
    out: list[ha_dataplane.Served] = []
    for coa, groups in entries:
        state = BindingMulticast()
        state.mld = ListenerState(dict(groups))
        out.append(ha_dataplane.Served(coa, state))
    return out


def include(*sources: ipaddress.IPv6Address) -> GroupState:
    return GroupState(Mode.INCLUDE, frozenset(sources))


def exclude(*sources: ipaddress.IPv6Address) -> GroupState:
    return GroupState(Mode.EXCLUDE, frozenset(sources))


def test_join_set_from_include_and_exclude_state() -> None:
    state = served(
        (COA1, {G1: include(S1, S2), LINK_LOCAL: exclude()}),
        (COA2, {G2: exclude(S1), G1: include(S1)}),
    )
    assert ha_dataplane.join_set(state) == {(G1, S1), (G1, S2), (G2, None)}
    faulty = Faults.of(Fault.HA_TUNNEL_LINK_LOCAL)
    assert (LINK_LOCAL, None) in ha_dataplane.join_set(state, faulty)


def test_membership_changes_leave_what_no_binding_wants() -> None:
    joined: set[ha_dataplane.Membership] = {(G1, S1), (G2, None)}
    wanted: set[ha_dataplane.Membership] = {(G1, S1), (G1, S2)}
    assert ha_dataplane.membership_changes(joined, wanted) == ([(G2, None)], [(G1, S2)])
    faulty = Faults.of(Fault.HA_IGNORE_LEAVE)
    assert ha_dataplane.membership_changes(joined, wanted, faulty) == ([], [(G1, S2)])


def packet(src: ipaddress.IPv6Address, group: ipaddress.IPv6Address) -> bytes:
    from scapy.layers.inet import UDP
    from scapy.layers.inet6 import IPv6

    return bytes(IPv6(src=str(src), dst=str(group), hlim=5) / UDP(sport=1, dport=2) / b"data")


def test_copies_go_to_every_binding_whose_filter_admits_the_source() -> None:
    state = served((COA1, {G1: include(S1)}), (COA2, {G1: exclude(S1)}), (COA1, {G2: exclude()}))
    plan = ha_dataplane.copies(packet(S1, G1), False, state)
    assert plan is not None and plan.coas == (COA1,) and not plan.native
    plan = ha_dataplane.copies(packet(S2, G1), False, state)
    assert plan is not None and plan.coas == (COA2,)
    assert ha_dataplane.copies(packet(S1, LINK_LOCAL), False, state) is None
    assert ha_dataplane.copies(b"\x60" + bytes(39), False, state) is None  # unicast


def test_copies_with_faults() -> None:
    state = served((COA1, {G1: include(S1)}), (COA2, {G1: include(S1)}), (COA1, {G2: exclude()}))
    pkt = packet(S2, G1)

    def coas(*faults: Fault) -> tuple[ipaddress.IPv6Address, ...] | None:
        plan = ha_dataplane.copies(pkt, False, state, Faults.of(*faults))
        return None if plan is None else plan.coas

    assert coas() == ()
    assert coas(Fault.HA_IGNORE_SOURCE_FILTER) == (COA1, COA2)
    assert coas(Fault.HA_FORWARD_UNSUBSCRIBED) == (COA1, COA2, COA1)
    assert coas(Fault.HA_NO_MCAST_FORWARD) is None
    one = ha_dataplane.copies(packet(S1, G1), False, state, Faults.of(Fault.HA_ONE_COPY_ONLY))
    assert one is not None and one.coas == (COA1,)
    native = ha_dataplane.copies(
        packet(S1, G1), False, state, Faults.of(Fault.HA_NATIVE_ON_HOME_LINK)
    )
    assert native is not None and native.native


def test_reverse_tunnel_target_needs_home_address_and_care_of_address() -> None:
    hoa = ipaddress.IPv6Address("2001:db8:1::99")
    inner = packet(hoa, ipaddress.IPv6Address("2001:db8:9::1"))
    bound = [(hoa, COA2), (hoa, COA1)]
    assert ha_dataplane.reverse_tunnel_target(inner, COA1, bound) == 1
    assert ha_dataplane.reverse_tunnel_target(inner, S1, bound) is None
    assert ha_dataplane.reverse_tunnel_target(inner[:30], COA1, bound) is None


def test_ra_hook_leaves_the_reference_ra_alone() -> None:
    from harness.netproto import ra as radv

    params = radv.RaParams(
        prefix=ipaddress.IPv6Network("2001:db8:1::/64"),
        router_address=ipaddress.IPv6Address("2001:db8:1::1"),
        ha=radv.HaInfo(option=True),
    )
    ra = radv.ra_bytes(params)
    assert ha_hooks.router_advertisement(NO_FAULTS, ra) == ra
    without_h = ha_hooks.router_advertisement(Faults.of(Fault.HA_RA_WITHOUT_H), ra)
    assert without_h[5] & 0x20 == 0 and ra[5] & 0x20
    zero = ha_hooks.router_advertisement(Faults.of(Fault.HA_RA_ZERO_LIFETIME), ra)
    assert zero != ra and len(zero) == len(ra)


# ---------------------------------------------------------------- the MN's packets


def test_air_records_leave_out_the_groups_served_through_a_tunnel() -> None:
    from harness.netproto.mld import Record

    records = [Record(4, G1, ()), Record(4, G2, ())]
    assert mn_packets.air_records(records, {G1}) == [records[1]]
    assert mn_packets.air_records(records, {G1}, Faults.of(Fault.MN_REPORT_ON_AIR)) == records


def test_reverse_tunnel_only_for_registered_home_addresses() -> None:
    hoa = ipaddress.IPv6Address("2001:db8:1::99")
    ha = ipaddress.IPv6Address("2001:db8:1::1")
    inner = packet(hoa, ipaddress.IPv6Address("2001:db8:9::1"))
    outer = mn_packets.reverse_tunnel(inner, {hoa: (ha, COA1)})
    assert outer is not None and outer[40:] == inner and outer[6] == 41
    assert ipaddress.IPv6Address(outer[8:24]) == COA1
    assert ipaddress.IPv6Address(outer[24:40]) == ha
    assert mn_packets.reverse_tunnel(inner, {}) is None
    faulty = Faults.of(Fault.MN_NO_REVERSE_TUNNEL)
    assert mn_packets.reverse_tunnel(inner, {hoa: (ha, COA1)}, faulty) is None
    report = mn_packets.mld_report(ListenerState({G1: exclude()}), str(hoa))
    assert mn_packets.reverse_tunnel(report, {hoa: (ha, COA1)}) is None
