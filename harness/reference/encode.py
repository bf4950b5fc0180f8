"""Turning the HA core's SendBindingAck into a packet (the daemon's encoder, scapy layers)."""

from __future__ import annotations

from scapy.layers.inet6 import IPv6, IPv6ExtHdrRouting, MIP6OptMsgAuth, MIP6OptReplayProtection
from scapy.packet import Packet

from harness.reference.ha_core import HAConfig, SendBindingAck
from harness.wire import auth
from harness.wire.mobility import (
    BindingAck,
    IgmpGroupRecord,
    MIP6OptAltHATunnelAddress,
    MIP6OptBindingIdentifier,
    MIP6OptDNSUpdate,
    MIP6OptFlowIdentification,
    MIP6OptIPv4AddressAck,
    MldAddressRecord,
    multicast_state_options,
)
from harness.wire.numbers import MLDV2_REPORT


def binding_ack(action: SendBindingAck, config: HAConfig) -> Packet:
    options: list[Packet] = [
        MIP6OptBindingIdentifier(bid=b.bid, status=b.status) for b in action.bids
    ]
    for echo in action.multicast:
        cls = MldAddressRecord if echo.report_type == MLDV2_REPORT else IgmpGroupRecord
        records: list[Packet] = [
            cls(rtype=r.rtype, maddr=r.maddr, sources=list(r.sources)) for r in echo.records
        ]
        options += multicast_state_options(records, echo.report_type)
    for f in action.flows:
        options.append(MIP6OptFlowIdentification(fid=f.fid, fid_pri=f.fid_pri, status=f.status))
    if action.ipv4 is not None:
        options.append(
            MIP6OptIPv4AddressAck(
                status=action.ipv4.status,
                prefix_len=action.ipv4.prefix_len,
                address=str(action.ipv4.address),
            )
        )
    if action.dns is not None:
        options.append(
            MIP6OptDNSUpdate(
                status=action.dns.status, flags=int(action.dns.remove), mn_identity=action.dns.fqdn
            )
        )
    if action.data_plane is not None:
        options.append(MIP6OptAltHATunnelAddress(address=str(action.data_plane)))
    if action.replay_timestamp is not None:
        options.append(MIP6OptReplayProtection(timestamp=action.replay_timestamp))
    key = config.keys.get(action.auth_spi) if action.auth_spi is not None else None
    if key is not None:  # RFC 4285 §5.1: last option
        options.append(MIP6OptMsgAuth(subtype=1, mspi=action.auth_spi, authdata=b"\x00" * 12))
    ip = IPv6(src=str(config.address), dst=str(action.coa))
    if action.hoa != action.coa:
        ip = ip / IPv6ExtHdrRouting(type=2, segleft=1, addresses=[str(action.hoa)])
    pkt = ip / BindingAck(
        status=action.status, seq=action.seq, mhtime=action.lifetime, options=options
    )
    return auth.sign(pkt, key) if key is not None else pkt
