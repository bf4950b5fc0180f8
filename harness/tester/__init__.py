"""Tester primitives: captures on lab links, and conversations over them (issue 3).

- `capture.Capture`: every frame on an interface of a namespace, to a pcap and to subscribers.
- `conversation.Endpoint` / `conversation.Link`: send crafted packets; `expect` /
  `expect_none` frames matching predicates within deadlines (`ExpectationFailed`).
- `fixtures`: the `captures` pytest fixture (pcaps attached to each test's report entry).
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
