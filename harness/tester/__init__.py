"""The tester: what the suites (suites/) stand on. Suites hold tests; everything they use
to talk to a system under test and read the wire lives here.

- `capture.Capture`: every frame on an interface of a namespace, to a pcap and to subscribers.
- `conversation.Endpoint` / `conversation.Link`: send crafted packets; `expect` /
  `expect_none` frames matching predicates within deadlines (`ExpectationFailed`).
- `fixtures`: the `captures` pytest fixture (pcaps attached to each test's report entry).
- `packets`: predicates on packets read through `harness.wire.ipv6` (tunnels, BUs, BAs, MLD);
  `wirelog`: the BUs, BAs and MLD Reports of several links over time.
- `world`: the mobility world (lab, home agents, MN, CN, sources, applications);
  `roaming`: one mobile node roaming it (the interop suite); `mobile_node`: the SUT MN
  (the MN suite); `handover_state`, `handover_invariants`, `handover_machine`: the
  hypothesis state machine over handovers.
- `home_agent`, `ha_registration`, `multicast_state`, `sources`, `mld_querier`,
  `router_ads`: the tester as the mobile node of a SUT home agent (the HA suite).
- `findings`: problems of several clauses collected along one scenario.
"""

from harness.tester.capture import Capture, CaptureError, Frame
from harness.tester.conversation import (
    Endpoint,
    ExpectationFailed,
    Link,
    Predicate,
    all_of,
    any_of,
    from_src,
    inbound,
    is_icmp6,
    is_mh,
    is_udp_to,
    outbound,
    to_dst,
)

__all__ = [
    "Capture",
    "CaptureError",
    "Endpoint",
    "ExpectationFailed",
    "Frame",
    "Link",
    "Predicate",
    "all_of",
    "any_of",
    "from_src",
    "inbound",
    "is_icmp6",
    "is_mh",
    "is_udp_to",
    "outbound",
    "to_dst",
]
