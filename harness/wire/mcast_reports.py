"""Scapy layers for MLDv2 Reports (RFC 3810 §5.2) and IGMPv3 Membership Reports (RFC 3376 §4.2)
that read every record.

Scapy 2.8's own layers lose records: ``ICMPv6MLReport2``'s records chain as payloads of the
first one (so ``records`` holds one), and its ``ICMPv6MLDMultAddrRec`` counts Aux Data Len in
octets, not 32-bit words (RFC 3810 §5.2.6); an IGMPv3 report is left as Raw unless
``scapy.layers.igmp`` is loaded, and that module's ``IGMPv3_MR_Group`` skips the auxiliary
data (RFC 3376 §4.2.6), so the records after one with aux data are read from the wrong
place. This module declares report layers whose records are the Multicast State option's
record classes (``MldAddressRecord``, ``IgmpGroupRecord``), counted by the header's Number of
Records, and registers them in scapy's dispatch (``icmp6typescls[143]`` for ICMPv6, IP
protocol 2 for IGMP), so that ``IPv6(raw)`` and ``IP(raw)`` dissect every record, source and
aux data once the project's wire layers are imported (``import harness.wire``).

The layers subclass scapy's (``match_subclass``), so ``pkt[ICMPv6MLReport2]`` and
``pkt[IGMPv3_MR]`` find them as code written for scapy expects. Octets after the last
record (RFC 3810 §5.2.11) are left as the layer's payload. The independent reading is
harness.wire.compact's parse_report, the parser the rest of the project uses.
"""

from __future__ import annotations

from typing import Any

from scapy.fields import PacketListField
from scapy.layers import inet6
from scapy.layers.igmp import IGMP, IGMPv3_MR
from scapy.layers.inet import IP
from scapy.layers.inet6 import ICMPv6MLReport2
from scapy.packet import Packet, bind_layers, split_bottom_up

from harness.wire import numbers
from harness.wire.mobility import IgmpGroupRecord, MldAddressRecord


class MLDv2Report(ICMPv6MLReport2):
    """MLDv2 Report (RFC 3810 §5.2): scapy's header, every Multicast Address Record."""

    name = "MLDv2 - Multicast Listener Report"
    match_subclass = True  # pkt[ICMPv6MLReport2] finds it
    fields_desc = [
        *ICMPv6MLReport2.fields_desc[:-1],  # type, res, cksum, reserved, records_number
        PacketListField("records", [], MldAddressRecord, count_from=lambda pkt: pkt.records_number),
    ]


class IGMPv3Report(IGMPv3_MR):
    """IGMPv3 Membership Report (RFC 3376 §4.2): scapy's header, every Group Record.

    Bound to IP protocol 2 in place of scapy's IGMP; other IGMP messages are handed to
    scapy's IGMP classes by the dispatch hook."""

    name = "IGMPv3 Membership Report"
    match_subclass = True  # pkt[IGMPv3_MR] finds it
    fields_desc = [
        *IGMPv3_MR.fields_desc[:-1],  # type, reserved, chksum, flags, numgrp
        PacketListField("records", [], IgmpGroupRecord, count_from=lambda pkt: pkt.numgrp),
    ]

    @classmethod
    def dispatch_hook(cls, _pkt: bytes | None = None, *args: Any, **kargs: Any) -> type[Packet]:
        if _pkt and _pkt[0] != numbers.IGMPV3_REPORT:
            return IGMP.dispatch_hook(_pkt, *args, **kargs)
        return cls


def register() -> None:
    """Install the layers in scapy's dispatch (idempotent)."""
    # scapy's table names classes until it loads them, then holds the classes
    inet6.icmp6typescls[numbers.MLDV2_REPORT] = MLDv2Report  # type: ignore[assignment]
    split_bottom_up(IP, IGMP, proto=2)
    split_bottom_up(IP, IGMPv3Report, proto=2)
    bind_layers(IP, IGMPv3Report, proto=2)


register()

__all__ = ["IGMPv3Report", "MLDv2Report", "register"]
