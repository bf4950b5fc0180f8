"""The HA suite against one-clause mutants of the reference HA: each must be caught.

A mutant is the reference HA started with DMMCONF_HA_MUTANT=<name> (a fault of harness/
faults.py) through a copy of its profile (tests/support/killmatrix.py): the same path an external
SUT takes. For each mutant, the suite tests that judge the clause it breaks
run against it (every mutant's in a few shared pytest processes, tests/support/killmatrix.py
`Board`), and every one of them must fail.
The kill matrix: `pytest tests/meta/test_ha_mutants.py -v`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.faults import Role, by_name
from harness.lab import netns
from tests.support import killmatrix

ROOT = Path(__file__).resolve().parents[2]
ROLE = "ha"
FAULTS = by_name(Role.HA)
SUITE = "suites/ha/test_registration.py"
MALFORMED = SUITE + "::test_malformed_message_gets_its_reaction"
MCAST = "suites/ha/test_multicast.py::"
ECHO_PROPERTY = MCAST + "test_any_mldv2_multicast_state_is_installed_and_echoed"
QUERIES = MCAST + "test_general_queries_reach_the_coa_through_the_tunnel_at_the_query_interval"
RA_OWN = MCAST + "test_the_home_agent_advertises_itself_on_its_link"
RA_RULES = MCAST + "test_home_agent_information_option_rules"
BOTH_SOURCES = MCAST + "test_subscribed_group_is_tunnelled_from_remote_and_local_sources"
TIMESTAMPS = SUITE + "::test_invalid_timestamp_gets_144_and_no_binding"
REPLAY_ECHO = SUITE + "::test_replay_protection_option_is_echoed_in_the_ba"
DNS = "suites/ha/test_dns_update.py::"
MCOA = "suites/ha/test_mcoa_flows.py::"
SPLIT = "suites/ha/test_cp_dp_split.py::"
FLOW_PROPERTY = MCOA + "test_packets_follow_the_flow_bindings"
FLOW_STATUS = MCOA + "test_flow_identification_options_get_their_status"
FLOW_SEQUENCES = MCOA + "test_random_binding_and_flow_changes_keep_every_packet_on_its_binding"
DNS_REGISTERS = DNS + "test_dns_update_option_registers_the_home_address"
DNS_R = DNS + "test_r_flag_removes_that_home_address_only"
DNS_ZONE = DNS + "test_zone_holds_exactly_the_registered_home_addresses"
DNS_MALFORMED = DNS + "test_malformed_dns_update_option_is_not_reported_performed"
V4 = "suites/ha/test_dual_stack.py::"
V4_PROPERTY = V4 + "test_any_ipv4_home_address_option_gets_a_consistent_answer"

# mutant -> the suite tests that must catch it
KILLS: dict[str, tuple[str, ...]] = {
    "ignore-seq": (SUITE + "::test_stale_sequence_number_is_refused_with_the_last_accepted",),
    "wrong-seq": (SUITE + "::test_valid_home_registration_is_accepted",),
    "long-lifetime": (SUITE + "::test_valid_home_registration_is_accepted",),
    "accept-foreign-hoa": (SUITE + "::test_home_address_outside_the_prefix_is_refused",),
    "accept-unauth": (SUITE + "::test_unauthenticated_bu_is_not_accepted",),
    "accept-bad-auth": (SUITE + "::test_wrong_authenticator_gets_146",),
    "unsigned-ba": (SUITE + "::test_ba_is_authenticated_like_the_bu",),
    "no-echo": (SUITE + "::test_multicast_state_is_echoed_in_the_ba", ECHO_PROPERTY),
    "dereg-lifetime": (SUITE + "::test_deregistration_gets_status_0_lifetime_0",),
    "no-binding-error": (MALFORMED + "[unknown-mh-type]",),
    "no-param-problem": (
        MALFORMED + "[payload-proto-not-59]",
        MALFORMED + "[be-header-len-too-short]",
    ),
    "answer-discarded": (
        MALFORMED + "[mh-checksum-wrong]",
        MALFORMED + "[mh-truncated]",
        MALFORMED + "[option-length-past-end]",
        MALFORMED + "[option-truncated]",
    ),
    "answer-discarded-late": (MALFORMED + "[mh-checksum-wrong]",),
    "reject-malformed-mcast": (
        MALFORMED + "[mcast-record-count-too-big]",
        MALFORMED + "[mcast-aux-overflow]",
        MALFORMED + "[mcast-report-checksum-wrong]",
    ),
    "reject-ba-options": (MALFORMED + "[ba-options-in-bu]",),
    "no-tunnel": (SUITE + "::test_packets_for_the_home_address_are_tunnelled_to_the_coa",),
    "no-reverse-tunnel": (
        SUITE + "::test_reverse_tunnelled_packets_are_forwarded",
        V4 + "test_the_mn_reaches_the_correspondent_from_an_ipv4_care_of_address[behind-a-nat]",
        V4 + "test_the_mn_reaches_the_correspondent_from_an_ipv4_care_of_address[no-nat]",
    ),
    "no-mcast-forward": (
        SUITE + "::test_subscribed_multicast_data_is_tunnelled_to_the_coa",
        BOTH_SOURCES,
    ),
    "ignore-leave": (SUITE + "::test_a_group_left_in_a_newer_bu_is_no_longer_tunnelled",),
    # suites/ha/test_multicast.py
    "drop-aux-records": (ECHO_PROPERTY,),
    "changes-replace-state": (MCAST + "test_state_change_records_apply_to_the_bindings_state",),
    "forward-unsubscribed": (MCAST + "test_a_group_not_in_the_state_is_not_tunnelled",),
    "ignore-source-filter": (MCAST + "test_include_and_exclude_source_filters_are_honoured",),
    "tunnel-link-local": (MCAST + "test_a_link_local_group_is_never_tunnelled",),
    "one-copy-only": (MCAST + "test_each_subscribed_mobile_node_gets_one_copy",),
    "native-on-home-link": (
        MCAST + "test_data_for_the_mobile_node_is_not_sent_natively_on_the_home_link",
    ),
    "ghost-state": (MCAST + "test_multicast_state_lives_only_with_a_binding",),
    "no-querier": (QUERIES,),
    "query-not-tunnelled": (QUERIES,),
    "query-every-binding": (MCAST + "test_no_queries_to_a_binding_without_multicast_state",),
    "ra-without-h": (RA_OWN, RA_RULES),
    "ra-zero-lifetime": (RA_RULES,),
    "no-checksum-fix": (BOTH_SOURCES,),
    # the remaining registration clauses
    "ignore-mcast-checksum": (MALFORMED + "[mcast-report-checksum-wrong]",),
    "dereg-unknown-accepted": (
        SUITE + "::test_deregistration_without_a_binding_gets_133_and_changes_nothing",
    ),
    "no-replay-echo": (REPLAY_ECHO,),
    "replay-echo-own-time": (REPLAY_ECHO,),
    "accept-stale-timestamp": (TIMESTAMPS,),
    "stale-timestamp-binds": (TIMESTAMPS,),
    "accept-replayed-timestamp": (TIMESTAMPS,),
    "reject-reserved-bits": (SUITE + "::test_reserved_bits_of_a_bu_are_ignored",),
    "accept-bad-coa": (
        SUITE + "::test_bu_for_a_care_of_address_not_unicast_routable_is_discarded",
    ),
    "no-dad": (
        SUITE + "::test_dad_for_the_home_address_comes_before_the_ba",
        SUITE + "::test_home_address_in_use_on_the_home_link_gets_134",
    ),
    # issue 10: each caught by the new or fixed test, missed by the suite before it
    "no-ba-without-a": (SUITE + "::test_valid_home_registration_is_accepted",),
    "drop-option-with-unknown-record": (MALFORMED + "[mcast-unknown-record-type]",),
    # the IGMPv3 form of the option (draft §8): RFC 3376's own MUSTs
    "drop-igmp-option-with-unknown-record": (MALFORMED + "[igmp-unknown-record-type]",),
    "ignore-igmp-checksum": (MALFORMED + "[igmp-report-checksum-wrong]",),
    "refuse-pseudo-header-checksum": (
        MCAST + "test_option_checksum_with_the_mld_pseudo_header_is_accepted",
    ),
    "query-from-global": (QUERIES,),
    "no-expiry": (MCAST + "test_binding_and_its_multicast_state_end_with_its_lifetime",),
    "expiry-keeps-multicast": (
        MCAST + "test_binding_and_its_multicast_state_end_with_its_lifetime",
    ),
    "first-option-only": (MCAST + "test_state_split_over_several_options_is_merged",),
    "mcast-state-first-position-only": (
        MCAST + "test_multicast_state_option_is_taken_in_any_position[after-another-option]",
    ),
    "seq-no-wrap": (SUITE + "::test_sequence_numbers_wrap_around_modulo_2_16",),
    "reverse-any-source": (
        SUITE + "::test_reverse_tunnelled_packets_from_the_wrong_pair_are_not_forwarded",
    ),
    "forward-by-source": (SUITE + "::test_subscribed_multicast_data_is_tunnelled_to_the_coa",),
    "rejected-bu-installs": (MCAST + "test_multicast_state_lives_only_with_a_binding",),
    "reject-report-reserved": (MCAST + "test_reserved_fields_of_the_option_are_ignored",),
    # issue 11: DNS update (suites/ha/test_dns_update.py)
    "dns-no-update": (DNS_REGISTERS, DNS_ZONE),
    "dns-ba-without-option": (DNS_REGISTERS,),
    "dns-unsigned": (DNS_REGISTERS,),
    "dns-no-deadline": (DNS + "test_silent_dns_server_gives_130_in_time",),
    "dns-status-always-0": (
        DNS + "test_silent_dns_server_gives_130_in_time",
        DNS + "test_wrong_tsig_key_gives_the_failure_status",
        DNS + "test_name_outside_the_home_domain_is_not_reported_updated",
        DNS_MALFORMED + "[label-overruns-the-option]",
    ),
    "dns-r-kept": (DNS_R, DNS_ZONE),
    "dns-r-ba-without-option": (DNS_R,),
    "dns-remove-all": (DNS_R,),
    "dns-dereg-kept": (
        DNS + "test_deregistration_removes_the_dns_entry[plain]",
        DNS + "test_deregistration_removes_the_dns_entry[with-dns-update-option]",
        DNS_ZONE,
    ),
    "dns-expiry-keeps": (DNS + "test_binding_expiry_removes_the_dns_entry",),
    "dns-any-name": (DNS + "test_home_agents_own_name_is_not_updated_for_a_mobile_node",),
    "dns-restart": (DNS + "test_retransmitted_bus_do_not_restart_a_pending_update",),
    # issue 13: IPv4 home addresses over IPv6 transport (suites/ha/test_dual_stack.py)
    "ipv4-no-ack": (
        V4 + "test_dynamic_ipv4_home_address_is_assigned_and_kept",
        V4 + "test_bu_with_both_ipv4_options_gets_an_ipv4_home_address",
    ),
    "ipv4-no-dynamic": (V4 + "test_dynamic_ipv4_home_address_is_assigned_and_kept",),
    "ipv4-exhausted-128": (V4 + "test_exhausted_pool_gives_132",),
    "ipv4-taken-accepted": (V4 + "test_ipv4_home_address_of_another_node_is_refused",),
    "ipv4-zero-prefix-accepted": (V4 + "test_zero_prefix_len_is_an_error", V4_PROPERTY),
    "ipv4-failure-prefix-len": (
        V4 + "test_ipv4_home_address_of_another_node_is_refused",
        V4 + "test_exhausted_pool_gives_132",
        V4_PROPERTY,
    ),
    "ipv4-no-tunnel": (
        V4 + "test_ipv4_traffic_follows_the_ipv4_home_address",
        V4 + "test_ipv4_traffic_of_an_mn_in_an_ipv4_network[behind-a-nat]",
        V4 + "test_ipv4_traffic_of_an_mn_in_an_ipv4_network[no-nat]",
    ),
    "igmp-state-ignored": (V4 + "test_igmpv3_state_admits_ipv4_multicast_into_the_tunnel",),
    "no-igmp-querier": (V4 + "test_igmp_general_queries_reach_the_coa_through_the_tunnel",),
    "no-proxy-arp": (V4 + "test_home_link_neighbours_reach_the_ipv4_home_address",),
    "no-udp4": (
        V4 + "test_bu_in_udp_ipv4_is_answered_in_udp",
        V4 + "test_nat_in_the_path_is_detected",
    ),
    "no-nat-detection": (V4 + "test_nat_in_the_path_is_detected",),
    "dns-no-a-record": (V4 + "test_dns_update_registers_the_ipv4_home_address_too",),
    "forced-udp-ignored": (V4 + "test_forced_udp_encapsulation_is_refused_with_144_or_used",),
    "nat-det-only-behind-nat": (V4 + "test_bu_in_udp_ipv4_is_answered_in_udp",),
    "nat-tunnel-not-udp": (
        V4 + "test_packets_reach_an_ipv4_care_of_address[behind-a-nat]",
        V4 + "test_ipv4_traffic_of_an_mn_in_an_ipv4_network[behind-a-nat]",
    ),
    # draft §9: control and data plane separation (suites/ha/test_cp_dp_split.py)
    "dp-not-in-ba": (SPLIT + "test_the_ba_names_the_data_plane_function",),
    "tunnel-from-cp": (SPLIT + "test_the_data_plane_serves_what_the_control_plane_registered",),
    "dp-misses-moves": (SPLIT + "test_the_data_plane_serves_what_the_control_plane_registered",),
    # issue 12: multiple care-of addresses and flow bindings (suites/ha/test_mcoa_flows.py)
    "flows-ignored": (
        FLOW_PROPERTY,
        MCOA + "test_flows_not_named_in_a_bu_are_removed",
        FLOW_SEQUENCES,
    ),
    "flow-order-reversed": (
        FLOW_PROPERTY,
        MCOA + "test_a_flow_is_modified_in_place_and_inactive_without_its_bids",
    ),
    "flow-first-bid-only": (
        FLOW_PROPERTY,
        MCOA + "test_a_flow_is_modified_in_place_and_inactive_without_its_bids",
    ),
    "default-highest-bid-pri": (
        MCOA + "test_packets_no_flow_matches_go_to_the_lowest_bid_pri",
        FLOW_SEQUENCES,
    ),
    "ba-without-bid-options": (MCOA + "test_bulk_registration_is_acknowledged_per_bid",),
    "bulk-status-in-ba": (
        MCOA + "test_a_bad_care_of_address_in_a_bid_option_is_reported_in_that_option",
    ),
    "bad-bid-coa-accepted": (
        MCOA + "test_a_bad_care_of_address_in_a_bid_option_is_reported_in_that_option",
    ),
    "unknown-bid-accepted": (
        MCOA + "test_a_length_4_bid_option_refreshes_a_known_bid_only",
        MCOA + "test_a_bu_without_bid_option_replaces_every_binding",
    ),
    "fid-malformed-accepted": (FLOW_STATUS, MALFORMED + "[fid-too-short]"),
    "fid-unknown-bid-accepted": (FLOW_STATUS,),
    "fid-not-found-unanswered": (FLOW_STATUS,),
    "flows-kept": (MCOA + "test_flows_not_named_in_a_bu_are_removed", FLOW_SEQUENCES),
    "ba-fid-without-suboptions": (MCOA + "test_the_ba_copies_each_flow_identification_option",),
    "plain-bu-keeps-bids": (MCOA + "test_a_bu_without_bid_option_replaces_every_binding",),
    "flows-before-bids": (FLOW_PROPERTY,),
    "bad-bid-length-accepted": (MALFORMED + "[bid-length-6]",),
    "fid-pri-taken-accepted": (MCOA + "test_a_second_flow_with_a_taken_fid_pri_is_refused",),
    "mcast-ignores-flows": (
        MCOA + "test_a_flow_binding_naming_the_group_steers_its_multicast_data",
        MCOA + "test_random_changes_keep_every_group_datagram_on_its_binding",
    ),
}


def test_every_mutant_has_killers() -> None:
    assert set(KILLS) == set(FAULTS)


def _privileged() -> None:
    missing = netns.missing_privileges()
    if missing:
        pytest.skip(f"the lab needs privileges: {missing}")


@pytest.mark.needs_root
def test_control_the_reference_passes_every_killer(kill_board: killmatrix.Board) -> None:
    """Through the same copied profile, the unmutated reference passes them all."""
    _privileged()
    killmatrix.assert_control_passes(kill_board, ROLE, KILLS)


@pytest.mark.needs_root
@pytest.mark.parametrize("mutant", sorted(KILLS))
def test_suite_kills_mutant(mutant: str, kill_board: killmatrix.Board) -> None:
    _privileged()
    description = FAULTS[mutant].spec.description
    killmatrix.assert_killed(kill_board, ROLE, mutant, KILLS[mutant], description)
