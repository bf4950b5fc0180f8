"""RFC 4285 §5.1 authenticator: computed over CoA | HoA | MH up to the SPI, checksum zeroed."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

import pytest
from scapy.layers.inet6 import MIP6OptMsgAuth
from scapy.packet import Packet

from harness.wire import auth, compact
from harness.wire.mobility import BindingAck, BindingUpdate, MIP6OptBindingIdentifier
from tests.unit.test_wire_properties import MN_COA, MN_HOA, ba_packet, bu_packet

KEY = b"0123456789abcdef0123"


def _bu() -> Packet:
    return bu_packet(
        BindingUpdate(
            seq=9,
            options=[
                MIP6OptBindingIdentifier(bid=1),
                MIP6OptMsgAuth(mspi=0x1234, authdata=b"\0" * 12),
            ],
        )
    )


def test_authenticator_is_hmac_sha1_of_coa_hoa_and_mh_up_to_spi() -> None:
    signed = auth.sign(_bu(), KEY)
    raw = bytes(signed)
    msg = compact.parse_packet(raw)
    assert msg.checksum_ok
    # Written out independently of auth.py: find option 9, take MH up to its SPI.
    opt = next(o for o in compact.parse_options(msg.body, 12) if o.otype == 9)
    spi_end = opt.offset + 2 + 1 + 4
    mh = bytearray(msg.body)
    mh[4:6] = b"\0\0"
    data = (
        ipaddress.IPv6Address(MN_COA).packed
        + ipaddress.IPv6Address(MN_HOA).packed
        + bytes(mh[:spi_end])
    )
    expected = hmac.new(KEY, data, hashlib.sha1).digest()[:12]
    assert msg.body[spi_end : spi_end + 12] == expected
    assert auth.verify(signed, KEY)


def test_wrong_key_and_tampering_fail_verification() -> None:
    signed = auth.sign(_bu(), KEY)
    assert not auth.verify(signed, b"another key")
    tampered = signed.copy()
    tampered[BindingUpdate].seq = 10
    assert not auth.verify(tampered, KEY)


def test_ba_uses_destination_and_routing_header_home_address() -> None:
    ba = ba_packet(BindingAck(seq=9, options=[MIP6OptMsgAuth(mspi=0x1234, authdata=b"\0" * 12)]))
    assert auth.addresses(ba) == (MN_COA, MN_HOA)
    assert auth.verify(auth.sign(ba, KEY), KEY)


def test_message_without_auth_option_is_refused() -> None:
    with pytest.raises(auth.AuthenticationError):
        auth.sign(bu_packet(BindingUpdate()), KEY)
