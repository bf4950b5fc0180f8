"""The catalogue of deliberate faults of the reference Home Agent and Mobile Node.

The kill matrices (tests/meta/test_ha_mutants.py, tests/meta/test_mn_mutants.py) start the reference
with one fault switched on and require the suite tests that judge the fault's clause to
fail. Each fault has a name (what DMMCONF_HA_MUTANT / DMMCONF_MN_MUTANT say), a role, the
clause of suites/requirements.toml it breaks, and a description. The reference receives a
`Faults` value through its configuration and consults it at named hook points
(`faults.has(Fault.HA_NO_DAD)`); nothing is patched. tests/unit/test_reference_faults.py
checks that every fault is consulted by at least one hook in harness/reference/.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import Enum


class Role(Enum):
    HA = "ha"
    MN = "mn"


class Fault(Enum):
    """A one-clause fault; the value is (role, name)."""

    # the Home Agent: registration (suites/ha/test_registration.py)
    HA_IGNORE_SEQ = ("ha", "ignore-seq")
    HA_WRONG_SEQ = ("ha", "wrong-seq")
    HA_LONG_LIFETIME = ("ha", "long-lifetime")
    HA_ACCEPT_FOREIGN_HOA = ("ha", "accept-foreign-hoa")
    HA_ACCEPT_UNAUTH = ("ha", "accept-unauth")
    HA_ACCEPT_BAD_AUTH = ("ha", "accept-bad-auth")
    HA_NO_ECHO = ("ha", "no-echo")
    HA_DEREG_LIFETIME = ("ha", "dereg-lifetime")
    HA_NO_BINDING_ERROR = ("ha", "no-binding-error")
    HA_NO_PARAM_PROBLEM = ("ha", "no-param-problem")
    HA_ANSWER_DISCARDED = ("ha", "answer-discarded")
    HA_ANSWER_DISCARDED_LATE = ("ha", "answer-discarded-late")
    HA_UNSIGNED_BA = ("ha", "unsigned-ba")
    HA_REJECT_MALFORMED_MCAST = ("ha", "reject-malformed-mcast")
    HA_NO_TUNNEL = ("ha", "no-tunnel")
    HA_NO_REVERSE_TUNNEL = ("ha", "no-reverse-tunnel")
    HA_NO_MCAST_FORWARD = ("ha", "no-mcast-forward")
    HA_IGNORE_LEAVE = ("ha", "ignore-leave")
    HA_REJECT_BA_OPTIONS = ("ha", "reject-ba-options")
    # the Home Agent: multiple care-of addresses and flow bindings (suites/ha/test_mcoa_flows.py)
    HA_FLOWS_IGNORED = ("ha", "flows-ignored")
    HA_FLOW_ORDER_REVERSED = ("ha", "flow-order-reversed")
    HA_FLOW_FIRST_BID_ONLY = ("ha", "flow-first-bid-only")
    HA_DEFAULT_HIGHEST_BID_PRI = ("ha", "default-highest-bid-pri")
    HA_BA_WITHOUT_BID_OPTIONS = ("ha", "ba-without-bid-options")
    HA_BULK_STATUS_IN_BA = ("ha", "bulk-status-in-ba")
    HA_BAD_BID_COA_ACCEPTED = ("ha", "bad-bid-coa-accepted")
    HA_UNKNOWN_BID_ACCEPTED = ("ha", "unknown-bid-accepted")
    HA_FID_MALFORMED_ACCEPTED = ("ha", "fid-malformed-accepted")
    HA_FID_UNKNOWN_BID_ACCEPTED = ("ha", "fid-unknown-bid-accepted")
    HA_FID_NOT_FOUND_UNANSWERED = ("ha", "fid-not-found-unanswered")
    HA_FLOWS_KEPT = ("ha", "flows-kept")
    HA_PLAIN_BU_KEEPS_BIDS = ("ha", "plain-bu-keeps-bids")
    HA_BA_FID_WITHOUT_SUBOPTIONS = ("ha", "ba-fid-without-suboptions")
    HA_FLOWS_BEFORE_BIDS = ("ha", "flows-before-bids")
    HA_BAD_BID_LENGTH_ACCEPTED = ("ha", "bad-bid-length-accepted")
    HA_FID_PRI_TAKEN_ACCEPTED = ("ha", "fid-pri-taken-accepted")
    HA_MCAST_IGNORES_FLOWS = ("ha", "mcast-ignores-flows")
    # the Home Agent: multicast (suites/ha/test_multicast.py)
    HA_DROP_AUX_RECORDS = ("ha", "drop-aux-records")
    HA_CHANGES_REPLACE_STATE = ("ha", "changes-replace-state")
    HA_FORWARD_UNSUBSCRIBED = ("ha", "forward-unsubscribed")
    HA_IGNORE_SOURCE_FILTER = ("ha", "ignore-source-filter")
    HA_TUNNEL_LINK_LOCAL = ("ha", "tunnel-link-local")
    HA_ONE_COPY_ONLY = ("ha", "one-copy-only")
    HA_NATIVE_ON_HOME_LINK = ("ha", "native-on-home-link")
    HA_GHOST_STATE = ("ha", "ghost-state")
    HA_NO_QUERIER = ("ha", "no-querier")
    HA_QUERY_NOT_TUNNELLED = ("ha", "query-not-tunnelled")
    HA_QUERY_EVERY_BINDING = ("ha", "query-every-binding")
    HA_RA_WITHOUT_H = ("ha", "ra-without-h")
    HA_RA_ZERO_LIFETIME = ("ha", "ra-zero-lifetime")
    HA_NO_CHECKSUM_FIX = ("ha", "no-checksum-fix")
    HA_IGNORE_MCAST_CHECKSUM = ("ha", "ignore-mcast-checksum")
    HA_DEREG_UNKNOWN_ACCEPTED = ("ha", "dereg-unknown-accepted")
    HA_NO_REPLAY_ECHO = ("ha", "no-replay-echo")
    HA_REPLAY_ECHO_OWN_TIME = ("ha", "replay-echo-own-time")
    HA_ACCEPT_STALE_TIMESTAMP = ("ha", "accept-stale-timestamp")
    HA_STALE_TIMESTAMP_BINDS = ("ha", "stale-timestamp-binds")
    HA_ACCEPT_REPLAYED_TIMESTAMP = ("ha", "accept-replayed-timestamp")
    HA_REJECT_RESERVED_BITS = ("ha", "reject-reserved-bits")
    HA_ACCEPT_BAD_COA = ("ha", "accept-bad-coa")
    HA_NO_DAD = ("ha", "no-dad")
    # the Home Agent: issue 10 (true verdicts; faults the suite did not see)
    HA_NO_BA_WITHOUT_A = ("ha", "no-ba-without-a")
    HA_DROP_OPTION_WITH_UNKNOWN_RECORD = ("ha", "drop-option-with-unknown-record")
    HA_DROP_IGMP_OPTION_WITH_UNKNOWN_RECORD = ("ha", "drop-igmp-option-with-unknown-record")
    HA_IGNORE_IGMP_CHECKSUM = ("ha", "ignore-igmp-checksum")
    HA_REFUSE_PSEUDO_HEADER_CHECKSUM = ("ha", "refuse-pseudo-header-checksum")
    HA_QUERY_FROM_GLOBAL = ("ha", "query-from-global")
    HA_NO_EXPIRY = ("ha", "no-expiry")
    HA_EXPIRY_KEEPS_MULTICAST = ("ha", "expiry-keeps-multicast")
    HA_FIRST_OPTION_ONLY = ("ha", "first-option-only")
    HA_MCAST_STATE_FIRST_POSITION_ONLY = ("ha", "mcast-state-first-position-only")
    HA_SEQ_NO_WRAP = ("ha", "seq-no-wrap")
    HA_REVERSE_ANY_SOURCE = ("ha", "reverse-any-source")
    HA_FORWARD_BY_SOURCE = ("ha", "forward-by-source")
    HA_REJECTED_BU_INSTALLS = ("ha", "rejected-bu-installs")
    HA_REJECT_REPORT_RESERVED = ("ha", "reject-report-reserved")
    # the Home Agent: DNS update (issue 11, suites/ha/test_dns_update.py)
    HA_DNS_NO_UPDATE = ("ha", "dns-no-update")
    HA_DNS_BA_WITHOUT_OPTION = ("ha", "dns-ba-without-option")
    HA_DNS_UNSIGNED = ("ha", "dns-unsigned")
    HA_DNS_NO_DEADLINE = ("ha", "dns-no-deadline")
    HA_DNS_STATUS_ALWAYS_0 = ("ha", "dns-status-always-0")
    HA_DNS_R_KEPT = ("ha", "dns-r-kept")
    HA_DNS_R_BA_WITHOUT_OPTION = ("ha", "dns-r-ba-without-option")
    HA_DNS_REMOVE_ALL = ("ha", "dns-remove-all")
    HA_DNS_DEREG_KEPT = ("ha", "dns-dereg-kept")
    HA_DNS_EXPIRY_KEEPS = ("ha", "dns-expiry-keeps")
    HA_DNS_ANY_NAME = ("ha", "dns-any-name")
    HA_DNS_RESTART = ("ha", "dns-restart")
    # the Home Agent: RFC 5555 IPv4 home addresses (suites/ha/test_dual_stack.py)
    HA_IPV4_NO_ACK = ("ha", "ipv4-no-ack")
    HA_IPV4_NO_DYNAMIC = ("ha", "ipv4-no-dynamic")
    HA_IPV4_EXHAUSTED_128 = ("ha", "ipv4-exhausted-128")
    HA_IPV4_TAKEN_ACCEPTED = ("ha", "ipv4-taken-accepted")
    HA_IPV4_ZERO_PREFIX_ACCEPTED = ("ha", "ipv4-zero-prefix-accepted")
    HA_IPV4_FAILURE_PREFIX_LEN = ("ha", "ipv4-failure-prefix-len")
    HA_IPV4_NO_TUNNEL = ("ha", "ipv4-no-tunnel")
    HA_IGMP_STATE_IGNORED = ("ha", "igmp-state-ignored")
    HA_NO_IGMP_QUERIER = ("ha", "no-igmp-querier")
    HA_NO_PROXY_ARP = ("ha", "no-proxy-arp")
    HA_NO_UDP4 = ("ha", "no-udp4")
    HA_NO_NAT_DETECTION = ("ha", "no-nat-detection")
    HA_NAT_TUNNEL_NOT_UDP = ("ha", "nat-tunnel-not-udp")
    HA_FORCED_UDP_IGNORED = ("ha", "forced-udp-ignored")
    HA_NAT_DET_ONLY_BEHIND_NAT = ("ha", "nat-det-only-behind-nat")
    HA_DNS_NO_A_RECORD = ("ha", "dns-no-a-record")
    # the Home Agent: control and data plane separation (draft §9, suites/ha/test_cp_dp_split.py)
    HA_DP_NOT_IN_BA = ("ha", "dp-not-in-ba")
    HA_TUNNEL_FROM_CP = ("ha", "tunnel-from-cp")
    HA_DP_MISSES_MOVES = ("ha", "dp-misses-moves")
    # the Mobile Node (suites/mn/test_mobile_node.py, suites/interop)
    MN_NO_MCAST_OPTION = ("mn", "no-mcast-option")
    MN_NO_HAO = ("mn", "no-hao")
    MN_NO_ACK_FLAG = ("mn", "no-ack-flag")
    MN_BU_TO_CURRENT_HA = ("mn", "bu-to-current-ha")
    MN_ALWAYS_REGISTER = ("mn", "always-register")
    MN_NO_REFRESH = ("mn", "no-refresh")
    MN_NO_MIRROR = ("mn", "no-mirror")
    MN_KEEP_OLD_SOURCE = ("mn", "keep-old-source")
    MN_STALE_MCAST = ("mn", "stale-mcast")
    MN_NO_REVERSE_TUNNEL = ("mn", "no-reverse-tunnel")
    MN_IGNORES_DATA_PLANE = ("mn", "ignores-data-plane")
    MN_BU_TO_DATA_PLANE = ("mn", "bu-to-data-plane")
    MN_NO_AUTH = ("mn", "no-auth")
    MN_MN_ID_AFTER_AUTH = ("mn", "mn-id-after-auth")
    MN_RO_COTI = ("mn", "ro-coti")
    MN_REPORT_ON_AIR = ("mn", "report-on-air")
    MN_IGNORE_135 = ("mn", "ignore-135")
    MN_STRICT_BA_OPTIONS = ("mn", "strict-ba-options")
    MN_TUNNEL_BEFORE_BA = ("mn", "tunnel-before-ba")
    MN_RESERVED_BITS = ("mn", "reserved-bits")
    MN_REPORT_WITH_HAO = ("mn", "report-with-hao")
    MN_BU_ON_LINK = ("mn", "bu-on-link")
    MN_REPORT_IN_TUNNEL = ("mn", "report-in-tunnel")
    # the Mobile Node: issue 10 (BA validation, retransmissions, returning home, RA discovery)
    MN_ACCEPT_ANY_BA_SEQ = ("mn", "accept-any-ba-seq")
    MN_ACCEPT_BAD_BA_AUTH = ("mn", "accept-bad-ba-auth")
    MN_NO_BACKOFF = ("mn", "no-backoff")
    MN_RETRANSMIT_SAME_SEQ = ("mn", "retransmit-same-seq")
    MN_BU_BURST = ("mn", "bu-burst")
    MN_RETURN_HOME_SILENTLY = ("mn", "return-home-silently")
    MN_FIRST_HA_ONLY = ("mn", "first-ha-only")
    MN_LATE_REGISTER = ("mn", "late-register")
    MN_RO_ON_REFRESH = ("mn", "ro-on-refresh")
    # the Mobile Node: bootstrapping and DNS update (issue 11, suites/mn/test_bootstrap.py)
    MN_NO_BOOTSTRAP = ("mn", "no-bootstrap")
    MN_SRV_WRONG_NAME = ("mn", "srv-wrong-name")
    MN_IGNORE_HA_FQDN = ("mn", "ignore-ha-fqdn")
    MN_IGNORE_LEARNED_DOMAIN = ("mn", "ignore-learned-domain")
    MN_DHCP_ID_TYPE_0 = ("mn", "dhcp-id-type-0")
    MN_DHCP_ORO_INCOMPLETE = ("mn", "dhcp-oro-incomplete")
    MN_IGNORE_DISCOVERED_HA = ("mn", "ignore-discovered-ha")
    MN_NO_DNS_UPDATE = ("mn", "no-dns-update")
    MN_BOOTSTRAPPED_NOT_IN_DNS = ("mn", "bootstrapped-not-in-dns")
    MN_DNS_UPDATE_R_SET = ("mn", "dns-update-r-set")
    MN_DNS_IDENTITY_ADDRESS = ("mn", "dns-identity-address")
    MN_DNS_STATUS_NONZERO = ("mn", "dns-status-nonzero")
    MN_NO_DNS_REMOVE = ("mn", "no-dns-remove")
    # the Mobile Node: DHCPv4 on an IPv4-only link (issue 11, suites/mn/test_ipv4_bootstrap.py)
    MN_NO_DHCPV4 = ("mn", "no-dhcpv4")
    MN_NO_DHCPINFORM = ("mn", "no-dhcpinform")
    MN_HNINF_WRONG_CODE = ("mn", "hninf-wrong-code")
    MN_HNINF_ID_TYPE_0 = ("mn", "hninf-id-type-0")
    MN_HNINF_NOT_REQUESTED = ("mn", "hninf-not-requested")
    # the Mobile Node: an IPv4 care-of address (issue 13, suites/mn/test_ipv4_bootstrap.py)
    MN_NO_V4_REGISTRATION = ("mn", "no-v4-registration")
    MN_V4_REGISTER_ALWAYS = ("mn", "v4-register-always")
    MN_NO_IPV4_HOA_OPTION = ("mn", "no-ipv4-hoa-option")
    MN_IPV4_HOA_UNUSED = ("mn", "ipv4-hoa-unused")
    MN_V4_BU_NO_DNS = ("mn", "v4-bu-no-dns")
    MN_NAT_KEEPALIVE_IGNORED = ("mn", "nat-keepalive-ignored")
    MN_NO_UDP_TUNNEL = ("mn", "no-udp-tunnel")
    MN_IPV4_HOA_NOT_TUNNELLED = ("mn", "ipv4-hoa-not-tunnelled")
    MN_NO_IGMP_OPTION = ("mn", "no-igmp-state-in-bu")
    MN_V4_MCAST_NOT_DELIVERED = ("mn", "v4-mcast-not-delivered")
    # the Mobile Node: several interfaces and flows (suites/mn/test_mcoa_flows.py)
    MN_NEW_IFACE_UNREGISTERED = ("mn", "new-iface-unregistered")
    MN_NO_BID_OPTION = ("mn", "no-bid-option")
    MN_SAME_BID = ("mn", "same-bid")
    MN_BID_PRI_ZERO = ("mn", "bid-pri-zero")
    MN_BID_WITHOUT_COA = ("mn", "bid-without-coa")
    MN_ALT_COA_WITH_BID = ("mn", "alt-coa-with-bid")
    MN_NO_OVERWRITE = ("mn", "no-overwrite")
    MN_FLOW_TO_PRIMARY = ("mn", "flow-to-primary")
    MN_FLOWS_ONCE = ("mn", "flows-once")
    MN_FLOW_FROM_COA = ("mn", "flow-from-coa")
    MN_FLOW_TUNNEL_PRIMARY = ("mn", "flow-tunnel-primary")
    MN_SAME_FID_PRI = ("mn", "same-fid-pri")
    MN_IGNORE_NEW_IFACE = ("mn", "ignore-new-iface")
    MN_NEW_IFACE_ALONE = ("mn", "new-iface-alone")
    MN_LOST_IFACE_KEPT = ("mn", "lost-iface-kept")
    MN_LOST_FIRST_IFACE_KEPT = ("mn", "lost-first-iface-kept")
    MN_MOVED_IFACE_OLD_COA = ("mn", "moved-iface-old-coa")
    MN_RETURNING_IFACE_IGNORED = ("mn", "returning-iface-ignored")
    MN_MOVE_IGNORED = ("mn", "move-ignored")
    MN_ADDED_IFACE_GROUPS_UNWATCHED = ("mn", "added-iface-groups-unwatched")

    @property
    def role(self) -> Role:
        return Role(self.value[0])

    @property
    def label(self) -> str:
        """The name a profile gives (DMMCONF_<ROLE>_MUTANT)."""
        return str(self.value[1])

    @property
    def spec(self) -> FaultSpec:
        return CATALOGUE[self]


@dataclass(frozen=True)
class FaultSpec:
    clause: str  # the clause of suites/requirements.toml the fault breaks
    description: str


CATALOGUE: dict[Fault, FaultSpec] = {
    Fault.HA_IGNORE_SEQ: FaultSpec(
        "RFC6275-HA-2", "accepts any sequence number (RFC 6275 §9.5.1, status 135)"
    ),
    Fault.HA_WRONG_SEQ: FaultSpec(
        "RFC6275-HA-7", "answers with the BU's sequence number plus one (RFC 6275 §10.3.1)"
    ),
    Fault.HA_LONG_LIFETIME: FaultSpec(
        "RFC6275-HA-5", "grants one unit more than the BU asked for (RFC 6275 §10.3.1)"
    ),
    Fault.HA_ACCEPT_FOREIGN_HOA: FaultSpec(
        "RFC6275-HA-3", "accepts home addresses outside its prefix (status 132)"
    ),
    Fault.HA_ACCEPT_UNAUTH: FaultSpec(
        "RFC4285-1", "accepts BUs without MN-HA authentication (RFC 4285 §5.1.1)"
    ),
    Fault.HA_ACCEPT_BAD_AUTH: FaultSpec(
        "RFC4285-2", "accepts a wrong authenticator (RFC 4285 §5.1.1, status 146)"
    ),
    Fault.HA_NO_ECHO: FaultSpec(
        "DMM-OPT-1", "leaves the Multicast State option out of the BA (draft §4.1, INT-6)"
    ),
    Fault.HA_DEREG_LIFETIME: FaultSpec(
        "RFC6275-BU-2", "answers a deregistration with a non-zero lifetime (RFC 6275 §6.1.8)"
    ),
    Fault.HA_NO_BINDING_ERROR: FaultSpec(
        "RFC6275-MH-2", "sends no Binding Error for an unknown MH type (RFC 6275 §9.2)"
    ),
    Fault.HA_NO_PARAM_PROBLEM: FaultSpec(
        "RFC6275-MH-3", "sends no ICMP Parameter Problem (RFC 6275 §9.2)"
    ),
    Fault.HA_ANSWER_DISCARDED: FaultSpec(
        "RFC6275-MH-1", "answers a message it must silently discard with a Binding Error"
    ),
    Fault.HA_ANSWER_DISCARDED_LATE: FaultSpec(
        "RFC6275-MH-1",
        "stalls, then answers a message it must silently discard with a Binding Error after "
        "the suite's quiet window has closed",
    ),
    Fault.HA_UNSIGNED_BA: FaultSpec(
        "RFC4285-1", "answers an authenticated BU with an unauthenticated BA (RFC 4285 §5.1)"
    ),
    Fault.HA_REJECT_MALFORMED_MCAST: FaultSpec(
        "DMM-OPT-3",
        "refuses (128) a BU whose Multicast State option is malformed instead of installing "
        "nothing (INT-2)",
    ),
    Fault.HA_FLOWS_IGNORED: FaultSpec(
        "DMM-HA-22",
        "keeps the flow binding list but forwards every packet by BID-PRI alone (RFC 6089 §5.3.6)",
    ),
    Fault.HA_FLOW_ORDER_REVERSED: FaultSpec(
        "RFC6089-11",
        "matches the flow bindings highest FID-PRI first (RFC 6089 §4.3: lowest first)",
    ),
    Fault.HA_FLOW_FIRST_BID_ONLY: FaultSpec(
        "RFC6089-11",
        "forwards a packet of a flow bound to several BIDs to the first one only (RFC 6089 "
        "§5.3.6: a copy to each)",
    ),
    Fault.HA_DEFAULT_HIGHEST_BID_PRI: FaultSpec(
        "RFC6089-4",
        "forwards packets no flow matches to the highest BID-PRI value (RFC 6089 §5.1.1: the "
        "lowest)",
    ),
    Fault.HA_BA_WITHOUT_BID_OPTIONS: FaultSpec(
        "RFC5648-9", "leaves the BU's Binding Identifier options out of the BA (RFC 5648 §6.2)"
    ),
    Fault.HA_BULK_STATUS_IN_BA: FaultSpec(
        "RFC5648-10",
        "answers a bulk registration with one failed BID in the BA's Status, the BID options' "
        "Status 0 (RFC 5648 §6.2: 4 MCOA NOTCOMPLETE, the status in the option)",
    ),
    Fault.HA_BAD_BID_COA_ACCEPTED: FaultSpec(
        "RFC5648-7",
        "reports 0 for a BID option whose care-of address is not unicast routable (RFC 5648 "
        "§6.2: 164 MCOA MALFORMED)",
    ),
    Fault.HA_UNKNOWN_BID_ACCEPTED: FaultSpec(
        "RFC5648-8",
        "reports 0 for a Length-4 BID option of an unknown BID (RFC 5648 §6.2: 167)",
    ),
    Fault.HA_FID_MALFORMED_ACCEPTED: FaultSpec(
        "RFC6089-7",
        "reports 0 for a new FID without a traffic selector (RFC 6089 §5.3.2.1: 130)",
    ),
    Fault.HA_FID_UNKNOWN_BID_ACCEPTED: FaultSpec(
        "RFC6089-8",
        "reports 0 for a flow bound to a BID not in the binding cache (RFC 6089 §5.3.2.1: 131)",
    ),
    Fault.HA_FID_NOT_FOUND_UNANSWERED: FaultSpec(
        "RFC6089-9",
        "puts no FID option with 132 in the BA for a Flow Summary FID it does not have (RFC "
        "6089 §5.3.3)",
    ),
    Fault.HA_FLOWS_KEPT: FaultSpec(
        "RFC6089-10",
        "keeps the flows a BU names in neither a Flow Identification nor a Flow Summary option "
        "(RFC 6089 §5.3.4: removed)",
    ),
    Fault.HA_PLAIN_BU_KEEPS_BIDS: FaultSpec(
        "RFC5648-5",
        "keeps the BID bindings of a home address when a BU without BID option registers it "
        "(RFC 5648 §6.2: all replaced)",
    ),
    Fault.HA_FLOWS_BEFORE_BIDS: FaultSpec(
        "RFC6089-6",
        "answers 131 for a flow on a BID the same BU registers, as if the Flow Identification "
        "options came before the BID options (RFC 6089 §5.3.1)",
    ),
    Fault.HA_BAD_BID_LENGTH_ACCEPTED: FaultSpec(
        "RFC5648-6",
        "answers 0 to a BU whose BID option has a Length other than 4, 8 or 20 (RFC 5648 §6.2: "
        "164 MCOA MALFORMED)",
    ),
    Fault.HA_FID_PRI_TAKEN_ACCEPTED: FaultSpec(
        "RFC6089-11",
        "reports 0 for a flow whose FID-PRI another flow holds, which it does not install "
        "(INT-19: 129)",
    ),
    Fault.HA_MCAST_IGNORES_FLOWS: FaultSpec(
        "DMM-HA-22",
        "tunnels a group's data to the binding that holds its multicast state even when a "
        "flow binding's traffic selector matches the data (OPEN-8; RFC 6089 §5.3.6)",
    ),
    Fault.HA_DP_NOT_IN_BA: FaultSpec(
        "DMM-CPDP-9",
        "started split, its BAs do not name the data plane function's address (draft §9)",
    ),
    Fault.HA_TUNNEL_FROM_CP: FaultSpec(
        "DMM-CPDP-4",
        "started split, it names the data plane's address in the BA but tunnels from the "
        "control plane's (draft §9)",
    ),
    Fault.HA_DP_MISSES_MOVES: FaultSpec(
        "DMM-CPDP-2",
        "the data plane keeps tunnelling to a binding's first care-of address after the "
        "control plane accepted a move: no common binding cache (draft §9)",
    ),
    Fault.HA_BA_FID_WITHOUT_SUBOPTIONS: FaultSpec(
        "RFC6089-12",
        "copies FID, FID-PRI and a Status into the BA but not the FID option's sub-options "
        "(RFC 6089 §5.3.5)",
    ),
    Fault.HA_NO_TUNNEL: FaultSpec(
        "RFC6275-HA-9", "tunnels nothing to the care-of address (RFC 6275 §10.4.1)"
    ),
    Fault.HA_NO_REVERSE_TUNNEL: FaultSpec(
        "DMM-HA-1", "drops reverse-tunnelled packets (RFC 6275 §10.4.5)"
    ),
    Fault.HA_NO_MCAST_FORWARD: FaultSpec(
        "DMM-HA-19", "tunnels no multicast data to subscribed bindings (draft §6)"
    ),
    Fault.HA_IGNORE_LEAVE: FaultSpec(
        "DMM-HA-12",
        "keeps tunnelling a group the MN's newer Multicast State no longer lists (draft §6, INT-7)",
    ),
    Fault.HA_REJECT_BA_OPTIONS: FaultSpec(
        "RFC6275-OPT-2",
        "refuses (128) a BU carrying options it does not expect there instead of skipping "
        "them (RFC 6275 §6.2.1)",
    ),
    Fault.HA_DROP_AUX_RECORDS: FaultSpec(
        "RFC3810-2",
        "drops Multicast Address Records that carry auxiliary data instead of ignoring the "
        "data (RFC 3810 §5.2.10, INT-6)",
    ),
    Fault.HA_CHANGES_REPLACE_STATE: FaultSpec(
        "RFC3810-6",
        "applies Filter-Mode-Change and Source-List-Change records to an empty state instead "
        "of the binding's (RFC 3810 §7.4.2, INT-7)",
    ),
    Fault.HA_FORWARD_UNSUBSCRIBED: FaultSpec(
        "DMM-HA-14",
        "tunnels every multicast packet it sees to every binding with multicast state, "
        "subscribed or not (draft §6, INT-7)",
    ),
    Fault.HA_IGNORE_SOURCE_FILTER: FaultSpec(
        "DMM-HA-16",
        "tunnels a subscribed group from any source, ignoring INCLUDE and EXCLUDE source "
        "lists (draft §6, INT-5)",
    ),
    Fault.HA_TUNNEL_LINK_LOCAL: FaultSpec(
        "RFC6275-HA-10", "installs and tunnels groups of link-local scope (RFC 6275 §10.4.2)"
    ),
    Fault.HA_ONE_COPY_ONLY: FaultSpec(
        "DMM-OVW-29", "tunnels each multicast packet to one subscribed binding only (draft §3)"
    ),
    Fault.HA_NATIVE_ON_HOME_LINK: FaultSpec(
        "DMM-OVW-30",
        "also sends the multicast data it tunnels natively on its access link (draft §3: the "
        "state points to the tunnel)",
    ),
    Fault.HA_GHOST_STATE: FaultSpec(
        "DMM-HA-17",
        "serves the Multicast State of rejected and deregistering BUs, and keeps a removed "
        "binding's state (draft §6: a binding cache entry MUST exist)",
    ),
    Fault.HA_NO_QUERIER: FaultSpec(
        "DMM-HA-10", "sends no MLD Queries to its mobile nodes (draft §6, RFC 6275 §10.4.3)"
    ),
    Fault.HA_QUERY_NOT_TUNNELLED: FaultSpec(
        "DMM-HA-18",
        "sends its MLD Queries natively on the access link instead of through the tunnel to "
        "the CoA (draft §6, RFC 6275 §10.4.3)",
    ),
    Fault.HA_QUERY_EVERY_BINDING: FaultSpec(
        "RFC6275-HA-12", "sends MLD Queries to bindings without multicast state (INT-7)"
    ),
    Fault.HA_RA_WITHOUT_H: FaultSpec(
        "RFC6275-RA-1",
        "sends the Home Agent Information option in RAs whose H flag is clear (RFC 6275 §7.4)",
    ),
    Fault.HA_RA_ZERO_LIFETIME: FaultSpec(
        "RFC6275-RA-2", "advertises Home Agent Lifetime 0 (RFC 6275 §7.4)"
    ),
    Fault.HA_NO_CHECKSUM_FIX: FaultSpec(
        "RFC6275-HA-11",
        "tunnels multicast data whose checksum the sender left to offload as it is, with a "
        "checksum that does not verify (RFC 6275 §10.4.2: the packet must arrive)",
    ),
    Fault.HA_IGNORE_MCAST_CHECKSUM: FaultSpec(
        "RFC3810-5",
        "installs the records of a Multicast State option whose checksum is wrong (RFC 3810 "
        "§5.2.2, INT-2)",
    ),
    Fault.HA_DEREG_UNKNOWN_ACCEPTED: FaultSpec(
        "RFC6275-HA-8",
        "accepts (0) a deregistration for a home address without a binding (RFC 6275 "
        "§10.3.2, status 133)",
    ),
    Fault.HA_NO_REPLAY_ECHO: FaultSpec(
        "RFC4285-5", "leaves the replay protection option out of the BA (RFC 4285 §6)"
    ),
    Fault.HA_REPLAY_ECHO_OWN_TIME: FaultSpec(
        "RFC4285-5",
        "answers an invalid timestamp with its own whole time of day, not the BU's low-order "
        "32 bits (RFC 4285 §6)",
    ),
    Fault.HA_ACCEPT_STALE_TIMESTAMP: FaultSpec(
        "RFC4285-6",
        "accepts a BU whose replay protection timestamp is far from its clock (RFC 4285 §6, "
        "status 144)",
    ),
    Fault.HA_STALE_TIMESTAMP_BINDS: FaultSpec(
        "RFC4285-6",
        "answers a stale timestamp with 144 but creates the binding all the same (RFC 4285 §6)",
    ),
    Fault.HA_ACCEPT_REPLAYED_TIMESTAMP: FaultSpec(
        "RFC4285-6",
        "accepts a timestamp no greater than one it accepted before (RFC 4285 §6, status 144)",
    ),
    Fault.HA_REJECT_RESERVED_BITS: FaultSpec(
        "RFC6275-BU-1",
        "refuses (128) a BU whose Reserved bits are set instead of ignoring them (RFC 6275 §6.1.7)",
    ),
    Fault.HA_ACCEPT_BAD_COA: FaultSpec(
        "RFC6275-BU-4",
        "accepts a care-of address that is not unicast routable (RFC 6275 §6.1.7: silently "
        "discarded)",
    ),
    Fault.HA_NO_DAD: FaultSpec(
        "RFC6275-HA-4",
        "sends its BA for a new home address without Duplicate Address Detection (RFC 6275 "
        "§10.3.1)",
    ),
    # issue 10
    Fault.HA_NO_BA_WITHOUT_A: FaultSpec(
        "RFC6275-HA-6",
        "answers an accepted home registration only when its A flag is set (RFC 6275 §10.3.1: "
        "regardless of the A bit)",
    ),
    Fault.HA_DROP_OPTION_WITH_UNKNOWN_RECORD: FaultSpec(
        "RFC3810-3",
        "installs nothing of a Multicast State option that holds a record of unknown type "
        "(RFC 3810 §5.2.12: that record is ignored, the rest processed)",
    ),
    Fault.HA_DROP_IGMP_OPTION_WITH_UNKNOWN_RECORD: FaultSpec(
        "RFC3376-3",
        "installs nothing of a Multicast State option in the IGMPv3 form (draft §8) that holds "
        "a record of unknown type (RFC 3376 §4.2.12: that record is ignored, the rest processed)",
    ),
    Fault.HA_IGNORE_IGMP_CHECKSUM: FaultSpec(
        "RFC3376-4",
        "installs the records of a Multicast State option in the IGMPv3 form whose checksum is "
        "wrong (RFC 3376 §4.2.2: verified before processing)",
    ),
    Fault.HA_REFUSE_PSEUDO_HEADER_CHECKSUM: FaultSpec(
        "RFC3810-5",
        "installs nothing of a Multicast State option whose checksum includes an MLD "
        "pseudo-header (INT-2 accepts both)",
    ),
    Fault.HA_QUERY_FROM_GLOBAL: FaultSpec(
        "RFC3810-7",
        "sends its MLD Queries from its global address (RFC 3810 §5.1.14: link-local source)",
    ),
    Fault.HA_NO_EXPIRY: FaultSpec(
        "RFC6275-HA-13",
        "never expires a binding whose lifetime ran out (RFC 6275 §10.3.1, §9.5.2)",
    ),
    Fault.HA_EXPIRY_KEEPS_MULTICAST: FaultSpec(
        "DMM-HA-17",
        "keeps serving the multicast state of a binding that expired (draft §6: a binding "
        "cache entry MUST exist)",
    ),
    Fault.HA_FIRST_OPTION_ONLY: FaultSpec(
        "DMM-HA-12",
        "installs only the first Multicast State option of a BU (INT-3: all are merged)",
    ),
    Fault.HA_MCAST_STATE_FIRST_POSITION_ONLY: FaultSpec(
        "RFC6275-OPT-1",
        "reads a Multicast State option only when it is the BU's first option (RFC 6275 §6.2: "
        "options other than the authorization data can be placed in any order)",
    ),
    Fault.HA_SEQ_NO_WRAP: FaultSpec(
        "RFC6275-HA-1",
        "takes a sequence number below the last accepted one as old even across the wrap, "
        "so 0 after 65535 is refused (RFC 6275 §9.5.1: modulo 2**16)",
    ),
    Fault.HA_REVERSE_ANY_SOURCE: FaultSpec(
        "RFC6275-HA-14",
        "forwards a reverse-tunnelled packet whatever its inner source (RFC 6275 §10.4.5: "
        "the home address of the binding)",
    ),
    Fault.HA_FORWARD_BY_SOURCE: FaultSpec(
        "DMM-HA-19",
        "tunnels any group's data from a source the binding's state admits, whatever the "
        "group (draft §6: the groups of the option)",
    ),
    Fault.HA_REJECTED_BU_INSTALLS: FaultSpec(
        "DMM-HA-17",
        "refuses a BU with a wrong authenticator (146) but serves its Multicast State until "
        "it accepts a BU from that care-of address (draft §6: a binding cache entry MUST exist)",
    ),
    Fault.HA_REJECT_REPORT_RESERVED: FaultSpec(
        "RFC3810-8",
        "installs nothing of a Multicast State option whose Reserved fields are not zero "
        "(RFC 3810 §5.2.1: ignored on reception)",
    ),
    Fault.HA_DNS_NO_UPDATE: FaultSpec(
        "DMM-HA-2",
        "answers a DNS Update option (R clear) with Status 0 but sends no DNS update (RFC 5026 §6)",
    ),
    Fault.HA_DNS_BA_WITHOUT_OPTION: FaultSpec(
        "DMM-HA-4",
        "updates the DNS but leaves the DNS Update option out of the BA (draft §6)",
    ),
    Fault.HA_DNS_UNSIGNED: FaultSpec(
        "DMM-HA-3",
        "sends its DNS updates without TSIG (draft §6: SHOULD be secure; RFC 5026 §9.5)",
    ),
    Fault.HA_DNS_NO_DEADLINE: FaultSpec(
        "DMM-HA-4",
        "waits for the DNS server without a deadline: no BA while the server is silent "
        "(draft §6: the BA with the status after the update)",
    ),
    Fault.HA_DNS_STATUS_ALWAYS_0: FaultSpec(
        "RFC5026-3",
        "says Status 0 (DNS update performed) in the BA whatever the update's outcome "
        "(RFC 5026 §8.1: >= 128 when not completed)",
    ),
    Fault.HA_DNS_R_KEPT: FaultSpec(
        "DMM-HA-5",
        "answers a DNS Update option with R set with Status 0 but removes nothing (draft §6)",
    ),
    Fault.HA_DNS_R_BA_WITHOUT_OPTION: FaultSpec(
        "DMM-HA-6",
        "removes the entry of an R-flag DNS Update option but leaves the option out of the BA "
        "(draft §6)",
    ),
    Fault.HA_DNS_REMOVE_ALL: FaultSpec(
        "RFC5026-2",
        "removes every address of the name, not only the one of the Home Address option "
        "(RFC 5026 §6: the entry of the FQDN and the HoA)",
    ),
    Fault.HA_DNS_DEREG_KEPT: FaultSpec(
        "DMM-HA-7",
        "keeps the DNS entry of a home address whose binding a deregistration BU ends (draft §6)",
    ),
    Fault.HA_DNS_EXPIRY_KEEPS: FaultSpec(
        "DMM-HA-8",
        "claims the removal of the DNS entry on binding expiry (draft §6 MAY) but keeps it",
    ),
    Fault.HA_DNS_RESTART: FaultSpec(
        "DMM-HA-4",
        "starts the DNS update afresh for each retransmitted BU of a home address whose "
        "update is pending, so a silent server keeps the BA of the latest BU from ever "
        "coming while the MN retransmits (draft §6; RFC 5026 §6, INT-18)",
    ),
    Fault.HA_IPV4_NO_ACK: FaultSpec(
        "RFC5555-5",
        "assigns the IPv4 home address but leaves the IPv4 Address Acknowledgement out of "
        "the BA (RFC 5555 §4.5)",
    ),
    Fault.HA_IPV4_NO_DYNAMIC: FaultSpec(
        "RFC5555-2",
        "answers every request for a dynamic IPv4 home address (0.0.0.0) with 132 though "
        "its pool has addresses (RFC 5555 §4.5 SHOULD)",
    ),
    Fault.HA_IPV4_EXHAUSTED_128: FaultSpec(
        "RFC5555-3",
        "says 128 (reason unspecified), not 132, when its pool of IPv4 home addresses is "
        "exhausted (RFC 5555 §4.5)",
    ),
    Fault.HA_IPV4_TAKEN_ACCEPTED: FaultSpec(
        "RFC5555-4",
        "acknowledges a static IPv4 home address that another mobile node holds (RFC 5555 "
        "§4.5: allocated to this MN)",
    ),
    Fault.HA_IPV4_ZERO_PREFIX_ACCEPTED: FaultSpec(
        "RFC5555-11",
        "takes a Prefix-len of 0 in the IPv4 Home Address option as 32 (RFC 5555 §3.1.1: an error)",
    ),
    Fault.HA_IPV4_FAILURE_PREFIX_LEN: FaultSpec(
        "RFC5555-12",
        "puts Pref-len 32 in an IPv4 Address Acknowledgement that says failure (RFC 5555 "
        "§3.2.1: zero)",
    ),
    Fault.HA_IPV4_NO_TUNNEL: FaultSpec(
        "RFC5555-5",
        "acknowledges the IPv4 home address but tunnels none of its packets to the care-of "
        "address (RFC 5555 §4.5.1)",
    ),
    Fault.HA_IGMP_STATE_IGNORED: FaultSpec(
        "DMM-V4-4",
        "echoes the IGMPv3 form of the Multicast State option but neither joins nor forwards "
        "by it: no IPv4 multicast reaches the care-of address (draft §8)",
    ),
    Fault.HA_NO_IGMP_QUERIER: FaultSpec(
        "DMM-V4-1",
        "sends no IGMPv3 General Query to a mobile node with IPv4 multicast state (draft §8: "
        "the HA is its IGMP querier)",
    ),
    Fault.HA_NO_PROXY_ARP: FaultSpec(
        "RFC5555-13",
        "does not answer ARP on the home link for the IPv4 home addresses it serves: a "
        "neighbour on the home link cannot reach a mobile node's (RFC 5555 §4.5)",
    ),
    Fault.HA_NO_UDP4: FaultSpec(
        "RFC5555-7",
        "ignores BUs that come in UDP and IPv4 (RFC 5555 §4.2: the MN in an IPv4 network)",
    ),
    Fault.HA_NO_NAT_DETECTION: FaultSpec(
        "RFC5555-9",
        "leaves the NAT Detection option out of the BA when the IPv4 Care-of Address option "
        "is not the BU's outer IPv4 source (RFC 5555 §4.2)",
    ),
    Fault.HA_NAT_TUNNEL_NOT_UDP: FaultSpec(
        "RFC5555-8",
        "tunnels the packets of a binding behind a NAT in IPv4 (protocol 41), not in UDP "
        "(RFC 5555 §2.3.2.2, §4.5.1)",
    ),
    Fault.HA_FORCED_UDP_IGNORED: FaultSpec(
        "RFC5555-6",
        "accepts a BU's F flag (forced UDP encapsulation) but tunnels in IPv4 when no NAT "
        "is in the path (RFC 5555 §4.5)",
    ),
    Fault.HA_NAT_DET_ONLY_BEHIND_NAT: FaultSpec(
        "RFC5555-14",
        "puts the NAT Detection option in the BA to a BU in UDP only when a NAT was detected "
        "(RFC 5555 §4.2: whenever the BU came in UDP)",
    ),
    Fault.HA_DNS_NO_A_RECORD: FaultSpec(
        "DMM-HA-2",
        "registers a dual-stack MN's AAAA record but not the A record of its IPv4 home "
        "address (draft §8, INT-21)",
    ),
    Fault.HA_DNS_ANY_NAME: FaultSpec(
        "RFC5026-5",
        "updates any name of its domain for any mobile node, the home agent's own among "
        "them (RFC 5026 §9.5: authorisation checked first)",
    ),
    Fault.MN_NO_MCAST_OPTION: FaultSpec(
        "DMM-OPT-1", "leaves the Multicast State option out of its BUs (draft §3, §4.1)"
    ),
    Fault.MN_NO_HAO: FaultSpec(
        "RFC6275-MN-2", "sends BUs without the Home Address option (RFC 6275 §11.7.1)"
    ),
    Fault.MN_NO_ACK_FLAG: FaultSpec(
        "RFC6275-MN-1", "clears the A flag in its BUs (RFC 6275 §11.7.1)"
    ),
    Fault.MN_BU_TO_CURRENT_HA: FaultSpec(
        "DMM-OVW-6", "registers with the HA of the new link instead of the previous one (draft §3)"
    ),
    Fault.MN_ALWAYS_REGISTER: FaultSpec(
        "DMM-MN-6", "registers the previous address even without a session (draft §7)"
    ),
    Fault.MN_NO_REFRESH: FaultSpec("DMM-MN-3", "never refreshes a binding (draft §7)"),
    Fault.MN_NO_MIRROR: FaultSpec(
        "DMM-OVW-31", "does not move multicast state to the tunnel device (draft §3)"
    ),
    Fault.MN_KEEP_OLD_SOURCE: FaultSpec(
        "DMM-OVW-14",
        "leaves the previous address preferred on the air interface, so new communication "
        "keeps using it (draft §3)",
    ),
    Fault.MN_STALE_MCAST: FaultSpec(
        "DMM-OPT-2", "keeps announcing a group the application left (INT-7)"
    ),
    Fault.MN_IGNORES_DATA_PLANE: FaultSpec(
        "DMM-CPDP-9",
        "tunnels to the HA's control plane address although the BA named its data plane "
        "function's (draft §9)",
    ),
    Fault.MN_BU_TO_DATA_PLANE: FaultSpec(
        "DMM-CPDP-7",
        "sends its next BUs to the data plane function the BA named, not to the control "
        "plane it registered with (draft §9)",
    ),
    Fault.MN_NO_REVERSE_TUNNEL: FaultSpec(
        "DMM-OVW-9",
        "drops what the applications send from a home address (RFC 6275 §11.3.1, draft §3)",
    ),
    Fault.MN_NO_AUTH: FaultSpec(
        "RFC4285-3", "sends its BUs without the MN-HA authentication option (RFC 4285 §5.1)"
    ),
    Fault.MN_MN_ID_AFTER_AUTH: FaultSpec(
        "RFC4283-1",
        "puts its Mobile Node Identifier option after the authentication option (RFC 4283 "
        "§3.2: before any authentication-related option)",
    ),
    Fault.MN_RO_COTI: FaultSpec(
        "DMM-CN-1", "starts return routability with a Care-of Test Init (draft §6: disabled)"
    ),
    Fault.MN_REPORT_ON_AIR: FaultSpec(
        "DMM-OVW-31",
        "lets the kernel keep reporting, on the new link, the groups it now receives through "
        "the tunnel (draft §3 last paragraph)",
    ),
    Fault.MN_IGNORE_135: FaultSpec(
        "RFC6275-MN-5",
        "ignores a BA with status 135 instead of taking the HA's number (RFC 6275 §11.7.3)",
    ),
    Fault.MN_STRICT_BA_OPTIONS: FaultSpec(
        "RFC6275-BA-1", "refuses a BA carrying an option it does not know (RFC 6275 §6.1.8)"
    ),
    Fault.MN_TUNNEL_BEFORE_BA: FaultSpec(
        "DMM-OVW-7", "uses the tunnel as soon as it sends the BU (draft §3)"
    ),
    Fault.MN_RESERVED_BITS: FaultSpec(
        "RFC6275-BU-1", "sets a Reserved bit of its BUs (RFC 6275 §6.1.7)"
    ),
    Fault.MN_REPORT_WITH_HAO: FaultSpec(
        "RFC6275-MN-6",
        "puts a Home Address option in the MLD Reports it sends on the visited link (RFC "
        "6275 §11.3.4)",
    ),
    Fault.MN_BU_ON_LINK: FaultSpec(
        "DMM-MN-6",
        "sends a BU to the HA of the link it is on, for its address there (draft §7)",
    ),
    Fault.MN_REPORT_IN_TUNNEL: FaultSpec(
        "RFC6275-MN-7",
        "tunnels its MLD Reports to the HA before any Query came through the tunnel (RFC "
        "6275 §11.3.4)",
    ),
    # the Mobile Node: issue 10
    Fault.MN_ACCEPT_ANY_BA_SEQ: FaultSpec(
        "RFC6275-MN-8",
        "accepts a BA whatever its sequence number (RFC 6275 §11.7.3: it must match the "
        "outstanding BU's)",
    ),
    Fault.MN_ACCEPT_BAD_BA_AUTH: FaultSpec(
        "RFC4285-7",
        "accepts a BA whose MN-HA authenticator does not verify (RFC 4285 §5.1.1)",
    ),
    Fault.MN_NO_BACKOFF: FaultSpec(
        "RFC6275-MN-9",
        "retransmits an unanswered BU at its initial interval, never doubling it (RFC 6275 §11.8)",
    ),
    Fault.MN_RETRANSMIT_SAME_SEQ: FaultSpec(
        "RFC6275-MN-10",
        "retransmits a BU with the sequence number of the previous transmission (RFC 6275 §11.8)",
    ),
    Fault.MN_BU_BURST: FaultSpec(
        "RFC6275-MN-11",
        "sends every BU eight times back to back (RFC 6275 §11.5.3: MAX_UPDATE_RATE)",
    ),
    Fault.MN_RETURN_HOME_SILENTLY: FaultSpec(
        "RFC6275-MN-12",
        "back on the link of a registered address, drops the binding without a "
        "deregistration BU (RFC 6275 §11.5.5)",
    ),
    Fault.MN_FIRST_HA_ONLY: FaultSpec(
        "DMM-OVW-2",
        "caches only the first home agent it hears and registers every address there, "
        "as an MN with a configured home agent would (draft §3, §7)",
    ),
    Fault.MN_LATE_REGISTER: FaultSpec(
        "DMM-MN-6",
        "registers the previous address even without a session, but 2 s after the move "
        "(past the old fixed 1.5 s quiet window; draft §7)",
    ),
    Fault.MN_RO_ON_REFRESH: FaultSpec(
        "DMM-CN-3",
        "starts return routability with its correspondents (a Home Test Init through the "
        "reverse tunnel) at the BA of each refresh (draft §5, §6: disabled)",
    ),
    Fault.MN_NO_BOOTSTRAP: FaultSpec(
        "DMM-OVW-10",
        "on a link whose RAs carry no home agent, asks neither DNS nor DHCP for one (draft §3)",
    ),
    Fault.MN_SRV_WRONG_NAME: FaultSpec(
        "DMM-MN-10",
        "looks the home agent up as SRV _mip6._udp.<domain> instead of _mip6._ipv6 (draft §7, "
        "RFC 5026 §5.1.2)",
    ),
    Fault.MN_IGNORE_HA_FQDN: FaultSpec(
        "DMM-MN-9",
        "configured with its home agent's FQDN, looks the home agent up by service name "
        "(SRV _mip6._ipv6.<domain>) instead of by that name (draft §7, RFC 5026 §5.1.1)",
    ),
    Fault.MN_IGNORE_LEARNED_DOMAIN: FaultSpec(
        "DMM-OVW-12",
        "looks the home agent up by SRV in its configured domain, not in the local domain the "
        "link's RA names in its DNS Search List (draft §3, OPEN-10)",
    ),
    Fault.MN_DHCP_ID_TYPE_0: FaultSpec(
        "DMM-MN-14",
        "asks DHCPv6 for the visited domain's home network (VDINF, Id-type 0) instead of "
        "no preference (UDINF, Id-type 2; draft §7, INT-10)",
    ),
    Fault.MN_DHCP_ORO_INCOMPLETE: FaultSpec(
        "RFC6610-1",
        "asks DHCPv6 for UDINF without the Home Agent FQDN option (73) in the ORO "
        "(RFC 6610 §4.1.1)",
    ),
    Fault.MN_IGNORE_DISCOVERED_HA: FaultSpec(
        "DMM-OVW-14",
        "sends the bootstrapping queries but never uses their answers: no home agent for an "
        "address formed on such a link (draft §3)",
    ),
    Fault.MN_NO_DHCPV4: FaultSpec(
        "DMM-V4-6",
        "on an IPv4-only link, takes no IPv4 address (no DHCPv4 DISCOVER/REQUEST; draft §8)",
    ),
    Fault.MN_NO_DHCPINFORM: FaultSpec(
        "DMM-V4-10",
        "takes its IPv4 address on an IPv4-only link but sends no DHCPINFORM for home "
        "network information (draft §8)",
    ),
    Fault.MN_HNINF_WRONG_CODE: FaultSpec(
        "DMM-V4-11",
        "puts the Home Network Information option under the configured code plus one "
        "(draft §8, draft-xia-mext-hioptv4, INT-11)",
    ),
    Fault.MN_HNINF_ID_TYPE_0: FaultSpec(
        "DMM-V4-11",
        "sends the DHCPv4 Home Network Information option with Id-type 0 (visited domain) "
        "instead of 2 (no preference; draft §7, INT-10)",
    ),
    Fault.MN_HNINF_NOT_REQUESTED: FaultSpec(
        "DMM-V4-11",
        "its DHCPINFORM's Parameter Request List does not ask for the Home Network "
        "Information option (RFC 2131 §3.4, draft-xia-mext-hioptv4 §5)",
    ),
    Fault.MN_NO_V4_REGISTRATION: FaultSpec(
        "DMM-V4-7",
        "moved onto an IPv4-only link with an open session, does not register its IPv4 "
        "care-of address with the dual-stack home agent (draft §8)",
    ),
    Fault.MN_V4_REGISTER_ALWAYS: FaultSpec(
        "DMM-V4-7",
        "registers its IPv4 care-of address with the home agent of the link left even when "
        "no session of that link's address is open (draft §8, OPEN-15)",
    ),
    Fault.MN_NO_IPV4_HOA_OPTION: FaultSpec(
        "RFC5555-1",
        "its BUs carry no IPv4 Home Address option (RFC 5555 §4.4.2)",
    ),
    Fault.MN_IPV4_HOA_UNUSED: FaultSpec(
        "DMM-V4-8",
        "does not take the IPv4 home address of the BA's IPv4 Address Acknowledgement into "
        "use (draft §8, RFC 5555 §4.4)",
    ),
    Fault.MN_V4_BU_NO_DNS: FaultSpec(
        "DMM-V4-9",
        "its registration BU in UDP/IPv4 carries no DNS Update option: its IPv4 home address "
        "never reaches the DNS (draft §8)",
    ),
    Fault.MN_NAT_KEEPALIVE_IGNORED: FaultSpec(
        "RFC5555-10",
        "behind a NAT, refreshes its binding only at the binding's own refresh time, not at "
        "the refresh time of the BA's NAT Detection option (RFC 5555 §4.3)",
    ),
    Fault.MN_NO_UDP_TUNNEL: FaultSpec(
        "DMM-OVW-9",
        "what a home address registered with an IPv4 care-of address sends is not tunnelled "
        "in UDP to the home agent (RFC 5555 §4.1): the session's packets are dropped",
    ),
    Fault.MN_IPV4_HOA_NOT_TUNNELLED: FaultSpec(
        "DMM-V4-8",
        "what an application sends from the assigned IPv4 home address is not tunnelled in "
        "UDP to the home agent (RFC 5555 §4.1): the address cannot be used",
    ),
    Fault.MN_NO_IGMP_OPTION: FaultSpec(
        "DMM-V4-5",
        "its BUs carry no Multicast State option of IGMPv3 form (type 0x22): the IPv4 groups "
        "its applications joined are not handed to the home agent (draft §8)",
    ),
    Fault.MN_V4_MCAST_NOT_DELIVERED: FaultSpec(
        "DMM-OVW-31",
        "drops the IPv4 multicast the home agent tunnels to it in UDP: the IPv4 groups moved "
        "to the tunnel reach no application (draft §3, §8)",
    ),
    Fault.MN_NO_DNS_UPDATE: FaultSpec(
        "DMM-MN-16",
        "registration BUs carry no DNS Update option (draft §7)",
    ),
    Fault.MN_BOOTSTRAPPED_NOT_IN_DNS: FaultSpec(
        "DMM-OVW-15",
        "registers an address formed on a link where it bootstrapped without a DNS Update "
        "option (and sends no DNS update of its own): the new home address never reaches the "
        "DNS (draft §3, OPEN-4)",
    ),
    Fault.MN_DNS_UPDATE_R_SET: FaultSpec(
        "DMM-MN-17",
        "sets the R flag in the registration BU's DNS Update option (draft §3, §7)",
    ),
    Fault.MN_DNS_IDENTITY_ADDRESS: FaultSpec(
        "DMM-MN-18",
        "names the home address (its ip6.arpa name) in the registration BU's MN identity "
        "field instead of its FQDN (draft §7, RFC 5026 §8.1)",
    ),
    Fault.MN_DNS_STATUS_NONZERO: FaultSpec(
        "RFC5026-3",
        "sends Status 130 in the BU's DNS Update option (RFC 5026 §8.1: MUST be 0 in a BU)",
    ),
    Fault.MN_NO_DNS_REMOVE: FaultSpec(
        "DMM-OVW-21",
        "deregisters an address no longer in use without a DNS Update option with R set (draft §3)",
    ),
    Fault.MN_NEW_IFACE_UNREGISTERED: FaultSpec(
        "DMM-MIF-4",
        "does not register the care-of address of an interface that comes up while a home "
        "agent is in use (draft §7.1)",
    ),
    Fault.MN_NO_BID_OPTION: FaultSpec(
        "DMM-MIF-5",
        "registers its several care-of addresses without Binding Identifier options, one "
        "Alternate Care-of Address only (draft §7.1, RFC 5648)",
    ),
    Fault.MN_SAME_BID: FaultSpec(
        "DMM-MIF-6", "gives every interface's care-of address BID 1 (draft §7.1: unique)"
    ),
    Fault.MN_BID_PRI_ZERO: FaultSpec(
        "RFC6089-1", "sends BID-PRI 0, the reserved value (RFC 6089 §4.1, draft §7.1)"
    ),
    Fault.MN_BID_WITHOUT_COA: FaultSpec(
        "RFC5648-2",
        "registers new BIDs with Length-4 BID options, without their care-of addresses "
        "(RFC 5648 §5.1)",
    ),
    Fault.MN_ALT_COA_WITH_BID: FaultSpec(
        "RFC5648-3",
        "puts an Alternate Care-of Address option beside the BID options (RFC 5648 §5.2)",
    ),
    Fault.MN_NO_OVERWRITE: FaultSpec(
        "RFC5648-4",
        "registers its several bindings for the first time with the O flag clear (RFC 5648 §5.9)",
    ),
    Fault.MN_FLOW_TO_PRIMARY: FaultSpec(
        "DMM-MIF-9",
        "binds the configured flow to the preferred interface's BID instead of the "
        "interface its policy names (draft §7.1, RFC 6089)",
    ),
    Fault.MN_FLOWS_ONCE: FaultSpec(
        "RFC6089-5",
        "sends its flow bindings in one BU only, so the next BU deletes them (RFC 6089 §5.2)",
    ),
    Fault.MN_SAME_FID_PRI: FaultSpec(
        "RFC6089-2", "gives every flow FID-PRI 1 (RFC 6089 §4.2: unique per flow)"
    ),
    Fault.MN_IGNORE_NEW_IFACE: FaultSpec(
        "DMM-MIF-1",
        "leaves an interface that comes up while it runs alone: no address, no use (draft §7.1)",
    ),
    Fault.MN_NEW_IFACE_ALONE: FaultSpec(
        "DMM-MIF-2",
        "registers a new interface's address with the home link's home agent though no home "
        "agent is in use (draft §7.1: none involved)",
    ),
    Fault.MN_MOVE_IGNORED: FaultSpec(
        "DMM-MIF-9",
        "takes no notice of a new flow policy while it runs: no BU moves the flows (draft §7.1)",
    ),
    Fault.MN_ADDED_IFACE_GROUPS_UNWATCHED: FaultSpec(
        "DMM-OVW-27",
        "does not watch the listener state of an interface added while it runs: a group "
        "joined through it is left out of the Multicast State option when it moves (draft §3)",
    ),
    Fault.MN_RETURNING_IFACE_IGNORED: FaultSpec(
        "DMM-MIF-4",
        "never registers again an interface that lost its link and came back (draft §7.1)",
    ),
    Fault.MN_LOST_IFACE_KEPT: FaultSpec(
        "RFC5648-12",
        "keeps the care-of address of an interface that lost its link registered (RFC 5648 §5.4)",
    ),
    Fault.MN_LOST_FIRST_IFACE_KEPT: FaultSpec(
        "RFC5648-12",
        "keeps the binding on its first interface's care-of address when that interface loses "
        "its link while another is registered: no BU from the other (RFC 5648 §5.4, §6.2)",
    ),
    Fault.MN_MOVED_IFACE_OLD_COA: FaultSpec(
        "DMM-MIF-4",
        "re-registers an added interface that moved to another link with the care-of address "
        "it was first registered with (RFC 5648 §6.2: the BID option carries the new one)",
    ),
    Fault.MN_FLOW_FROM_COA: FaultSpec(
        "DMM-MIF-3",
        "new sessions of a flow bound to the new interface take a care-of address instead "
        "of the registered home address (draft §7.1, INT-20)",
    ),
    Fault.MN_FLOW_TUNNEL_PRIMARY: FaultSpec(
        "DMM-MIF-10",
        "reverse-tunnels a flow bound to the new interface from the first interface's "
        "care-of address (draft §7.1: the source address of several interfaces, INT-20)",
    ),
}


def by_name(role: Role) -> dict[str, Fault]:
    """The faults of `role` by the name a profile gives."""
    return {f.label: f for f in Fault if f.role is role}


class UnknownFault(ValueError):
    pass


@dataclass(frozen=True)
class Faults:
    """The faults switched on in one reference node: none, in the reference itself."""

    members: frozenset[Fault] = frozenset()

    def has(self, fault: Fault) -> bool:
        return fault in self.members

    def __bool__(self) -> bool:
        return bool(self.members)

    def __str__(self) -> str:
        return ",".join(sorted(f.label for f in self.members)) or "none"

    @classmethod
    def of(cls, *faults: Fault) -> Faults:
        return cls(frozenset(faults))

    @classmethod
    def parse(cls, role: Role, text: str | None) -> Faults:
        """Comma-separated fault names of `role`; an unknown name is refused."""
        known = by_name(role)
        names = [n.strip() for n in (text or "").split(",") if n.strip()]
        unknown = [n for n in names if n not in known]
        if unknown:
            raise UnknownFault(
                f"unknown {role.value.upper()} fault {', '.join(map(repr, unknown))} "
                f"(known: {', '.join(sorted(known))})"
            )
        return cls(frozenset(known[n] for n in names))

    @classmethod
    def from_env(cls, role: Role) -> Faults:
        """What DMMCONF_<ROLE>_MUTANT switches on (how a profile starts a faulty node)."""
        return cls.parse(role, os.environ.get(env_var(role)))


def env_var(role: Role) -> str:
    return f"DMMCONF_{role.value.upper()}_MUTANT"


NO_FAULTS = Faults()
