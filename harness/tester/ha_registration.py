"""Home registration with a home agent under test, from the tester's side: the BAs it
expects by sequence number, a registration, whether a home address has left no binding
behind (RFC 6275 §9.5.1), the DAD Neighbor Solicitation of a new binding (RFC 6275 §10.3.1),
the RFC 4285 §6 replay protection option and its NTP timestamps, and a vector sent as it is.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

import pytest
from scapy.layers.inet6 import MIP6OptReplayProtection
from scapy.layers.l2 import Ether

from harness.tester.conversation import (
    ExpectationFailed,
    Link,
    Predicate,
    inbound,
    ipv6_bytes,
    is_icmp6,
    is_mh,
    mobility_message,
)
from harness.tester.home_agent import HomeAgentUnderTest
from harness.wire import compact
from harness.wire.numbers import MobOpt

REQUESTED = 25  # lifetime units (4 s each) the tester asks for
NTP_EPOCH = 2208988800  # seconds from 1900 (NTP, RFC 1305) to 1970
BARRIER_SEQ = 4242  # the valid BU sent after a quiet window (expect_silence)

# Any answer of a home agent to a message: BA, BE, or an ICMPv6 Parameter Problem of code 0
# or 1. (Code 2, unrecognised option, is left out: this lab's kernel, which has no Mobile
# IPv6, sends it for every Home Address option it sees; a real HA's kernel does not.)
ANSWER = inbound & (is_mh("BA") | is_mh("BE") | is_icmp6(type=4, code=0) | is_icmp6(type=4, code=1))


def expect_ba_seq(
    ha: HomeAgentUnderTest, mn_link: Link, seq: int, status: int | None = None
) -> Any:
    """The HA's BA for `seq` (of `status`) within its answer time."""
    return mn_link.expect(inbound & is_mh("BA", seq=seq, status=status), within=ha.answer_within)


def for_hoa(hoa: str) -> Predicate:
    def test(pkt: Any) -> bool:
        msg = mobility_message(pkt)
        return msg is not None and msg.rh2_hoa == hoa

    return Predicate(test, f"for home address {hoa}")


def message(pkt: Any) -> compact.MobilityMessage:
    raw = ipv6_bytes(pkt)
    assert raw is not None
    return compact.parse_packet(raw)


def register_hoa(ha: HomeAgentUnderTest, mn_link: Link, hoa: str, seq: int) -> None:
    mn_link.send(ha.bu(hoa, seq, REQUESTED))
    expect_ba_seq(ha, mn_link, seq, 0)


def no_binding_was_made(
    ha: HomeAgentUnderTest, mn_link: Link, hoa: str, seq: int, options: tuple[Any, ...] = ()
) -> None:
    """Nothing was recorded for `hoa`: a BU with a sequence number below anything sent for
    it before is accepted as a first registration (RFC 6275 §9.5.1), where a binding cache
    entry (which holds the last accepted number, §9.1) would have answered 135."""
    mn_link.send(ha.bu(hoa, seq, REQUESTED, options))
    # A 135 carries the last accepted number, not this one: any BA for the home address.
    ba = message(mn_link.expect(inbound & is_mh("BA") & for_hoa(hoa), within=ha.answer_within))
    assert (ba.body[6], ba.seq) == (0, seq), (
        f"a first registration (seq {seq}) after it got status {ba.body[6]} with seq {ba.seq}: "
        "the HA kept state for the home address"
    )


def expect_silence(
    ha: HomeAgentUnderTest, mn_link: Link, *, since: int, answer: Predicate = ANSWER
) -> None:
    """A silent discard (RFC 6275 §9.2, §6.1.7): no `answer` from seq `since` on during the
    reaction window (INT-15), nor before the HA answers a valid BU sent after that window.
    The BU is a barrier: a home agent slowed down (a loaded host, a first packet) answers in
    order, so an answer that missed the window still shows up ahead of the barrier's BA.
    An HA that does not answer the barrier at all keeps the window's verdict."""
    mn_link.expect_none(answer, during=ha.reaction_window, since=since)
    hoa = ha.fresh_hoa()
    barrier = inbound & is_mh("BA") & for_hoa(hoa)
    mn_link.send(ha.bu(hoa, BARRIER_SEQ, REQUESTED))
    try:
        mn_link.expect(barrier, within=ha.answer_within + ha.reaction_window, since=since)
    except ExpectationFailed:
        mn_link.note("the barrier BU got no BA: only the reaction window was watched")
        return
    mn_link.expect_none(answer & ~barrier, during=0, since=since)


def dad_ns_bytes(hoa: str) -> Callable[[bytes], bool]:
    """Does an Ethernet frame carry the DAD Neighbor Solicitation for `hoa` (RFC 4862
    §5.4.2: ICMPv6 type 135 from ::, target `hoa`)? On bytes, for the capture thread."""
    target = ipaddress.IPv6Address(hoa).packed

    def test(frame: bytes) -> bool:
        return (
            len(frame) >= 78
            and frame[12:14] == b"\x86\xdd"
            and frame[20] == 58  # no extension header before the ICMPv6 message
            and frame[22:38] == bytes(16)
            and frame[54] == 135
            and frame[62:78] == target
        )

    return test


def is_dad_ns(hoa: str) -> Predicate:
    test = dad_ns_bytes(hoa)
    return Predicate(lambda p: test(bytes(p)), f"a DAD Neighbor Solicitation (from ::) for {hoa}")


def ntp(t: float) -> int:
    """A 64-bit NTP timestamp for Unix time `t` (RFC 4285 §6)."""
    return ((int(t) + NTP_EPOCH) << 32) | int((t % 1) * (1 << 32))


def replay(stamp: int) -> MIP6OptReplayProtection:
    return MIP6OptReplayProtection(timestamp=stamp)


def needs_keys(ha: HomeAgentUnderTest) -> None:
    if ha.keys is None:
        pytest.skip("the profile has no [keys]: RFC 4285 is not configured")


def echoed_timestamps(pkt: Any) -> list[int]:
    return [
        int.from_bytes(o.data, "big")
        for o in message(pkt).options
        if o.otype == MobOpt.REPLAY_PROTECTION and len(o.data) == 8
    ]


def vector_frame(mn_link: Link, raw: bytes, router: str) -> bytes:
    """The vector inside an Ethernet header to the MN's router (sent exactly as is)."""
    return bytes(Ether(src=mn_link.mac, dst=mn_link.resolve(router), type=0x86DD)) + raw
