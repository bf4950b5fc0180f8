"""The reference HA's two BA encoders agree byte for byte: the scapy one (binding_ack) and
the daemon's fast one (binding_ack_bytes), with and without RFC 4285 signing, a type 2
routing header, echoed Multicast State, BID status and replay protection."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet6 import IPv6

from harness.reference import encode
from harness.reference.ha_core import BidStatus, HAConfig, McastEcho, SendBindingAck
from harness.wire import auth
from harness.wire.compact import McastRecord
from harness.wire.numbers import MLDV2_REPORT

HA = ipaddress.IPv6Address("2001:db8:1::1")
SPI, KEY = 0x1000, b"k" * 20
CONFIG = HAConfig(address=HA, home_prefix=ipaddress.IPv6Network("2001:db8:1::/64"), keys={SPI: KEY})
ADDRESSES = st.integers(1, 0xFFFF).map(lambda n: ipaddress.IPv6Address(f"2001:db8:2::{n:x}"))
RECORDS = st.lists(
    st.builds(
        McastRecord,
        st.sampled_from([1, 2]),
        st.integers(1, 0xFFFF).map(lambda n: f"ff3e::8000:{n:x}"),
        st.lists(st.sampled_from(["2001:db8:c1::10", "2001:db8:c2::10"]), unique=True).map(tuple),
    ),
    max_size=3,
)


@st.composite
def actions(draw: st.DrawFn) -> SendBindingAck:
    coa = draw(ADDRESSES)
    records = draw(RECORDS)
    return SendBindingAck(
        coa=coa,
        hoa=draw(st.sampled_from([coa, ipaddress.IPv6Address("2001:db8:1::1234")])),
        seq=draw(st.integers(0, 0xFFFF)),
        status=draw(st.sampled_from([0, 128, 135, 146])),
        lifetime=draw(st.integers(0, 0xFFFF)),
        bids=tuple(BidStatus(b, 0) for b in draw(st.lists(st.integers(1, 9), max_size=2))),
        multicast=(McastEcho(MLDV2_REPORT, tuple(records)),) if records else (),
        auth_spi=draw(st.sampled_from([None, SPI])),
        replay_timestamp=draw(st.none() | st.integers(0, 2**64 - 1)),
    )


@settings(max_examples=80, deadline=None, database=None)
@given(actions())
def test_fast_ba_encoder_gives_the_scapy_bytes(action: SendBindingAck) -> None:
    fast = encode.binding_ack_bytes(action, CONFIG)
    assert fast == bytes(encode.binding_ack(action, CONFIG))
    if action.auth_spi is not None:
        assert auth.verify(IPv6(fast), KEY)
