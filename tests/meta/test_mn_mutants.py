"""The MN suite against one-clause mutants of the reference MN: each must be caught.

A mutant is the reference MN with one fault of harness/faults.py switched on; see
tests/support/killmatrix.py; the kill matrix: `pytest tests/meta/test_mn_mutants.py -v`.
"""

from __future__ import annotations

import pytest

from harness.faults import Role, by_name
from harness.lab import netns
from tests.support import killmatrix

SUITE = "suites/mn/test_mobile_node.py::"
REGISTRATION = SUITE + "test_move_with_a_session_registers_with_the_previous_ha"
BOOT = "suites/mn/test_bootstrap.py::"
MCOA = "suites/mn/test_mcoa_flows.py::"
SPLIT = "suites/mn/test_cp_dp_split.py::"
NEW_IFACE = MCOA + "test_a_new_interface_is_registered_under_a_bid_of_its_own"
FLOWS = MCOA + "test_flows_are_bound_to_their_interfaces_in_every_bu"
NATIVE = MCOA + "test_a_new_interface_without_a_home_agent_in_use_is_used_natively"
NEW_SESSION = MCOA + "test_a_new_session_of_a_moved_flow_uses_the_home_address_on_its_interface"
V4 = "suites/mn/test_ipv4_bootstrap.py::"
INFORM = V4 + "test_the_dhcpinform_carries_the_home_network_information_option"
FAULTS = by_name(Role.MN)
ROLE = "mn"

# mutant -> the suite tests that must catch it
KILLS: dict[str, tuple[str, ...]] = {
    "no-mcast-option": (SUITE + "test_bu_carries_every_group_joined_on_the_link",),
    "no-hao": (REGISTRATION,),
    "no-ack-flag": (REGISTRATION,),
    "bu-to-current-ha": (REGISTRATION,),
    "always-register": (SUITE + "test_no_binding_without_a_session",),
    "no-refresh": (SUITE + "test_binding_is_refreshed_before_it_expires",),
    "no-mirror": (SUITE + "test_application_keeps_receiving_through_the_tunnel",),
    "keep-old-source": (SUITE + "test_new_communication_uses_the_new_address",),
    "stale-mcast": (SUITE + "test_a_left_group_is_dropped_by_a_new_bu",),
    "no-reverse-tunnel": (SUITE + "test_session_traffic_leaves_through_the_home_agent",),
    "no-auth": (SUITE + "test_bu_is_authenticated",),
    "mn-id-after-auth": (SUITE + "test_mn_identifier_option_precedes_the_authentication_option",),
    "ro-coti": (SUITE + "test_no_route_optimisation",),
    "report-in-tunnel": (SUITE + "test_no_tunnelled_report_before_the_has_query",),
    "ignore-135": (SUITE + "test_status_135_makes_the_mn_use_the_next_number",),
    "strict-ba-options": (SUITE + "test_unknown_option_in_the_ba_is_skipped",),
    "tunnel-before-ba": (SUITE + "test_tunnel_is_used_only_after_the_ba",),
    "reserved-bits": (SUITE + "test_bu_encoding_reserved_and_padding",),
    "report-with-hao": (SUITE + "test_joins_are_reported_on_the_link_without_home_address",),
    "bu-on-link": (SUITE + "test_no_bu_while_on_the_link_of_the_session",),
    "report-on-air": (
        SUITE + "test_moved_groups_are_not_reported_on_the_new_link",
        V4 + "test_moved_ipv4_groups_are_not_reported_on_the_ipv4_only_link",
    ),
    # issue 10: faults the suite did not see
    "accept-any-ba-seq": (SUITE + "test_ba_with_another_sequence_number_is_ignored",),
    "accept-bad-ba-auth": (SUITE + "test_ba_with_a_wrong_authenticator_is_ignored",),
    "no-backoff": (SUITE + "test_unanswered_bu_is_retransmitted_with_back_off",),
    "retransmit-same-seq": (SUITE + "test_retransmitted_bu_has_a_greater_sequence_number",),
    "bu-burst": (SUITE + "test_bus_to_the_ha_respect_max_update_rate",),
    "return-home-silently": (SUITE + "test_returning_home_deregisters",),
    "late-register": (SUITE + "test_no_binding_without_a_session",),
    "ro-on-refresh": (SUITE + "test_no_route_optimisation_reaches_the_cn",),
    "first-ha-only": (
        SUITE + "test_bu_goes_to_the_ha_the_visited_link_advertised[2-3]",
        SUITE + "test_bu_goes_to_the_ha_the_visited_link_advertised[3-2]",
    ),
    # issue 11: bootstrapping and DNS update
    "no-bootstrap": (
        BOOT + "test_srv_lookup_on_each_link_without_home_agent_information",
        BOOT + "test_dhcpv6_information_request_asks_for_any_home_network",
    ),
    "srv-wrong-name": (BOOT + "test_srv_lookup_on_each_link_without_home_agent_information",),
    "ignore-ha-fqdn": (BOOT + "test_configured_home_agent_name_is_looked_up_and_registered_with",),
    "ignore-learned-domain": (BOOT + "test_srv_lookup_uses_the_domain_learned_on_the_link",),
    "dhcp-id-type-0": (BOOT + "test_dhcpv6_information_request_asks_for_any_home_network",),
    "dhcp-oro-incomplete": (BOOT + "test_dhcpv6_information_request_asks_for_any_home_network",),
    "ignore-discovered-ha": (
        BOOT + "test_the_discovered_home_agent_registers_the_address_formed_there",
    ),
    "no-dns-update": (BOOT + "test_registration_bu_carries_the_dns_update_option",),
    "bootstrapped-not-in-dns": (BOOT + "test_the_new_home_address_is_registered_in_the_dns",),
    "dns-update-r-set": (BOOT + "test_registration_bu_carries_the_dns_update_option",),
    "dns-identity-address": (BOOT + "test_registration_bu_carries_the_dns_update_option",),
    "dns-status-nonzero": (BOOT + "test_registration_bu_carries_the_dns_update_option",),
    "no-dns-remove": (BOOT + "test_deregistration_asks_to_remove_the_dns_entry",),
    # issue 11: DHCPv4 on an IPv4-only link (draft §8)
    "no-dhcpv4": (V4 + "test_the_mn_takes_an_ipv4_care_of_address_on_an_ipv4_only_link",),
    "no-dhcpinform": (V4 + "test_the_mn_asks_for_home_network_information_by_dhcpinform",),
    "hninf-wrong-code": (INFORM,),
    "hninf-id-type-0": (INFORM,),
    "hninf-not-requested": (INFORM,),
    # issue 13: registering the IPv4 care-of address (draft §8, RFC 5555)
    "no-v4-registration": (
        V4 + "test_the_mn_registers_its_ipv4_care_of_address_after_a_move_with_a_session",
    ),
    "v4-register-always": (
        V4 + "test_the_mn_does_not_register_its_ipv4_care_of_address_without_a_session",
    ),
    "no-ipv4-hoa-option": (
        V4 + "test_the_bu_in_udp_carries_the_ipv4_home_address_option_asking_for_one",
    ),
    "ipv4-hoa-unused": (V4 + "test_the_mn_takes_the_assigned_ipv4_home_address_into_use",),
    "v4-bu-no-dns": (V4 + "test_the_ipv4_home_address_is_registered_in_the_dns",),
    "nat-keepalive-ignored": (V4 + "test_the_nat_binding_is_refreshed_at_the_bas_refresh_time",),
    "no-udp-tunnel": (V4 + "test_session_traffic_leaves_in_udp_to_the_home_agent",),
    "ipv4-hoa-not-tunnelled": (
        V4 + "test_an_application_reaches_the_correspondent_from_the_ipv4_home_address",
    ),
    "no-igmp-state-in-bu": (
        V4 + "test_the_bu_in_udp_carries_the_ipv4_groups_in_igmpv3_form",
        V4 + "test_an_ipv4_application_keeps_its_stream_through_the_home_agent",
        V4 + "test_an_ipv4_application_keeps_its_stream_after_a_move_to_an_ipv6_link",
    ),
    "v4-mcast-not-delivered": (
        V4 + "test_an_ipv4_application_keeps_its_stream_through_the_home_agent",
        V4 + "test_an_ipv4_application_keeps_its_stream_after_a_move_to_an_ipv6_link",
    ),
    # issue 12: several interfaces and flows (draft §7.1, RFC 5648, RFC 6089)
    "new-iface-unregistered": (NEW_IFACE, FLOWS),
    "no-bid-option": (NEW_IFACE,),
    "same-bid": (NEW_IFACE,),
    "bid-pri-zero": (NEW_IFACE,),
    "bid-without-coa": (NEW_IFACE,),
    "alt-coa-with-bid": (NEW_IFACE,),
    "no-overwrite": (NEW_IFACE,),
    "flow-to-primary": (FLOWS,),
    "flows-once": (FLOWS,),
    "same-fid-pri": (FLOWS,),
    "ignore-new-iface": (NATIVE,),
    "new-iface-alone": (NATIVE,),
    "move-ignored": (MCOA + "test_flows_moved_by_command_are_rebound_in_the_next_bu",),
    "returning-iface-ignored": (MCOA + "test_an_interface_back_on_its_link_is_registered_again",),
    "lost-iface-kept": (MCOA + "test_an_interface_that_loses_its_link_leaves_the_bindings",),
    # draft §9: home agents with separate control and data planes (suites/mn/test_cp_dp_split.py)
    "ignores-data-plane": (SPLIT + "test_data_goes_to_the_data_plane_the_ba_named",),
    "bu-to-data-plane": (SPLIT + "test_later_bus_still_go_to_the_control_plane",),
    "lost-first-iface-kept": (
        MCOA + "test_the_first_interface_lost_leaves_the_binding_on_the_other",
        MCOA + "test_an_application_keeps_its_stream_when_the_first_interface_is_lost",
    ),
    "moved-iface-old-coa": (
        MCOA + "test_an_added_interface_on_another_link_is_registered_with_its_new_care_of_address",
    ),
    "added-iface-groups-unwatched": (
        MCOA + "test_a_group_joined_through_an_added_interface_moves_with_it",
    ),
    "flow-from-coa": (NEW_SESSION,),
    "flow-tunnel-primary": (NEW_SESSION,),
}


def _privileged() -> None:
    missing = netns.missing_privileges()
    if missing:
        pytest.skip(f"the lab needs privileges: {missing}")


def test_every_mutant_has_killers() -> None:
    assert set(KILLS) == set(FAULTS)


@pytest.mark.needs_root
def test_control_the_reference_passes_every_killer(kill_board: killmatrix.Board) -> None:
    _privileged()
    killmatrix.assert_control_passes(kill_board, ROLE, KILLS)


@pytest.mark.needs_root
@pytest.mark.parametrize("mutant", sorted(KILLS))
def test_suite_kills_mutant(mutant: str, kill_board: killmatrix.Board) -> None:
    _privileged()
    description = FAULTS[mutant].spec.description
    killmatrix.assert_killed(kill_board, ROLE, mutant, KILLS[mutant], description)
