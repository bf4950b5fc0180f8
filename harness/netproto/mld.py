"""MLD (RFC 2710, RFC 3810) as the lab's proxy, the reference daemons and the tests speak
it: message and record types, the addresses, the protocol timers, the Query a querier
sends, and the one report reader (:func:`parse_report`, over harness.wire.compact).

Sans-I/O: bytes in, values out.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import Generic, TypeVar

from harness.wire import compact

Addr = ipaddress.IPv6Address
A = TypeVar("A", ipaddress.IPv6Address, ipaddress.IPv4Address)

MLD_QUERY = 130
MLD1_REPORT = 131
MLD1_DONE = 132
MLD2_REPORT = 143

IS_IN, IS_EX, TO_IN, TO_EX, ALLOW, BLOCK = 1, 2, 3, 4, 5, 6

ALL_NODES = ipaddress.IPv6Address("ff02::1")
ALL_MLDV2_ROUTERS = ipaddress.IPv6Address("ff02::16")
# Hop-by-Hop Options header with a Router Alert (MLD, value 0) and a PadN (RFC 3810 §5).
HBH_ROUTER_ALERT = bytes([0, 0, 5, 2, 0, 0, 1, 0])


@dataclass
class Timers:
    query_interval: float = 10.0
    query_response_interval: float = 1.0
    robustness: int = 2
    last_listener_query_interval: float = 0.5

    @property
    def listener_interval(self) -> float:  # MALI, RFC 3810 §9.4
        return self.robustness * self.query_interval + self.query_response_interval

    @property
    def last_listener_time(self) -> float:  # LLQT
        return self.robustness * self.last_listener_query_interval


def mld2_query(
    group: Addr | None, sources: list[Addr], timers: Timers, max_resp: float | None = None
) -> bytes:
    resp_ms = int((timers.query_response_interval if max_resp is None else max_resp) * 1000)
    qqic = min(int(timers.query_interval), 127)
    qrv = min(timers.robustness, 7)
    return (
        struct.pack("!BBHHH", MLD_QUERY, 0, 0, min(resp_ms, 32767), 0)
        + (group or Addr("::")).packed
        + struct.pack("!BBH", qrv, qqic, len(sources))
        + b"".join(s.packed for s in sources)
    )


@dataclass(frozen=True)
class Record(Generic[A]):
    """A multicast address record as a router takes it in: MLDv2's (IPv6) or, through
    harness.netproto.igmp, IGMPv3's (IPv4); the record types are the same numbers."""

    rtype: int
    group: A
    sources: tuple[A, ...]


def parse_report(data: bytes) -> list[Record[Addr]]:
    """MLDv2 Report, or an MLDv1 Report/Done mapped onto the equivalent v2 record.

    MLDv2 records come from the project's one report parser (harness.wire.compact). A
    report whose declared counts overrun it gives the records before the overrun, as
    Linux's bridge snooping takes them in; records of unknown type are left for the
    listener logic to ignore (RFC 3810 §5.2.12). Never raises."""
    if len(data) < 8:
        return []
    mtype = data[0]
    if mtype in (MLD1_REPORT, MLD1_DONE):
        if len(data) < 24:
            return []
        group = Addr(data[8:24])
        return [Record(IS_EX if mtype == MLD1_REPORT else TO_IN, group, ())]
    if mtype != MLD2_REPORT:
        return []
    return records(data, Addr)


def records(data: bytes, address: type[A]) -> list[Record[A]]:
    """The records of an MLDv2 or IGMPv3 report (addresses of class `address`) up to the
    first that overruns it (harness.wire.compact.records_before_overrun)."""
    return [
        Record(r.rtype, address(r.maddr), tuple(map(address, r.sources)))
        for r in compact.records_before_overrun(data)
    ]


def routable(group: Addr) -> bool:
    """Multicast beyond link-local scope (RFC 4291 §2.7 scope field > 2)."""
    return group.is_multicast and (group.packed[1] & 0x0F) > 2
