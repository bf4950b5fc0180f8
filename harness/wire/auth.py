"""Mobility message authentication (RFC 4285 §5.1) for BU and BA packets.

Authentication Data = first 96 bits of HMAC_SHA1(key, CoA | HoA | MH data), where
MH data runs from the start of the Mobility Header up to and including the
Mobility SPI of the authentication option, with the MH checksum taken as zero.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress

from scapy.layers.inet6 import HAO, IPv6, IPv6ExtHdrRouting, MIP6OptMsgAuth
from scapy.packet import Packet

from harness.wire.mobility import BindingAck, BindingUpdate

AUTH_DATA_LEN = 12  # 96 bits


class AuthenticationError(ValueError):
    """The packet cannot be signed or verified as asked (no auth option, no addresses)."""


def _mobility_header(pkt: Packet) -> Packet:
    for cls in (BindingUpdate, BindingAck):
        if cls in pkt:
            return pkt[cls]
    raise AuthenticationError("no Binding Update or Binding Acknowledgement in the packet")


def addresses(pkt: Packet) -> tuple[str, str]:
    """(care-of address, home address) of a BU (source + HAO) or BA (destination + RH2)."""
    ip = pkt[IPv6]
    mh = _mobility_header(pkt)
    if isinstance(mh, BindingUpdate):
        if HAO not in pkt:
            return ip.src, ip.src  # BU sent from the home address carries no HAO
        return ip.src, pkt[HAO].hoa
    if IPv6ExtHdrRouting in pkt and pkt[IPv6ExtHdrRouting].addresses:
        return ip.dst, pkt[IPv6ExtHdrRouting].addresses[0]
    return ip.dst, ip.dst


def _mh_bytes_and_spi_end(pkt: Packet) -> tuple[bytes, int]:
    mh = _mobility_header(pkt).copy()
    mh.cksum = 0
    raw = bytes(mh)
    # Walk the options as laid out on the wire to find the MN-HA option's SPI.
    fixed = 12
    pos = fixed
    end = 8 * (raw[1] + 1)
    while pos < end:
        otype = raw[pos]
        if otype == 0:
            pos += 1
            continue
        olen = raw[pos + 1]
        if otype == 9:  # Mobility Message Authentication
            return raw, pos + 2 + 1 + 4  # type, length, subtype, SPI
        pos += 2 + olen
    raise AuthenticationError("no Mobility Message Authentication option in the message")


def authenticator(key: bytes, coa: str, hoa: str, mh_data: bytes) -> bytes:
    data = ipaddress.IPv6Address(coa).packed + ipaddress.IPv6Address(hoa).packed + mh_data
    return hmac.new(key, data, hashlib.sha1).digest()[:AUTH_DATA_LEN]


def sign(pkt: Packet, key: bytes) -> Packet:
    """Return a copy of `pkt` whose MN-HA authentication option carries the right data.

    The option must already be in the message (last, per RFC 4285 §5.1), with
    Authentication Data of 12 octets; its content is replaced.
    """
    pkt = pkt.__class__(bytes(pkt))
    mh = _mobility_header(pkt)
    auth = [o for o in mh.options if isinstance(o, MIP6OptMsgAuth)]
    if not auth:
        raise AuthenticationError("no Mobility Message Authentication option to sign")
    auth[-1].authdata = b"\x00" * AUTH_DATA_LEN
    raw, spi_end = _mh_bytes_and_spi_end(pkt)
    coa, hoa = addresses(pkt)
    auth[-1].authdata = authenticator(key, coa, hoa, raw[:spi_end])
    mh.cksum = None
    return pkt.__class__(bytes(pkt))


def verify(pkt: Packet, key: bytes) -> bool:
    raw, spi_end = _mh_bytes_and_spi_end(pkt)
    coa, hoa = addresses(pkt)
    got = raw[spi_end : spi_end + AUTH_DATA_LEN]
    return hmac.compare_digest(got, authenticator(key, coa, hoa, raw[:spi_end]))


__all__ = ["AuthenticationError", "addresses", "authenticator", "sign", "verify", "IPv6"]
