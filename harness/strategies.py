"""Hypothesis strategies for the draft's messages and options.

They generate what a real mobile node could send (and the edges it could hit:
the 255-octet option limit, empty and maximal source lists, aux data) so that
property tests and conformance tests share one notion of "any valid input".
"""

from __future__ import annotations

import ipaddress

from hypothesis import strategies as st
from scapy.layers.inet6 import MIP6OptMNID, MIP6OptMsgAuth, MIP6OptReplayProtection
from scapy.packet import Packet

from harness.wire import numbers
from harness.wire.mobility import (
    MAX_OPTION_DATA,
    REPORT_HEADER_LEN,
    BindingAck,
    BindingUpdate,
    FIDSubOptBindingReference,
    FIDSubOptTrafficSelector,
    IgmpGroupRecord,
    IPv4BinaryTrafficSelector,
    IPv6BinaryTrafficSelector,
    MIP6OptAltHATunnelAddress,
    MIP6OptBindingIdentifier,
    MIP6OptDNSUpdate,
    MIP6OptExperimental,
    MIP6OptFlowIdentification,
    MIP6OptFlowSummary,
    MIP6OptIPv4AddressAck,
    MIP6OptIPv4CareOfAddress,
    MIP6OptIPv4HomeAddress,
    MIP6OptMulticastState,
    MIP6OptNATDetection,
    MldAddressRecord,
)

RECORD_TYPES = [int(t) for t in numbers.McastRecordType]
MAX_MH_LEN = 8 * 256  # Header Len is 8 bits in 8-octet units (RFC 6275 §6.1.1)


def ipv6_unicast() -> st.SearchStrategy[str]:
    return st.integers(0, 2**64 - 1).map(
        lambda iid: str(ipaddress.IPv6Address((0x20010DB8 << 96) | iid))
    )


def ipv4_unicast() -> st.SearchStrategy[str]:
    return st.integers(0, 2**16 - 1).map(
        lambda n: str(ipaddress.IPv4Address((198 << 24) | (18 << 16) | n))
    )


def ipv6_asm_group() -> st.SearchStrategy[str]:
    # Scopes 4..e, transient groups (RFC 4291 §2.7), outside the SSM range.
    return st.tuples(st.sampled_from([0x4, 0x5, 0x8, 0xE]), st.integers(1, 2**32 - 1)).map(
        lambda t: str(ipaddress.IPv6Address((0xFF10 | t[0]) << 112 | t[1]))
    )


def ipv6_ssm_group() -> st.SearchStrategy[str]:
    # FF3x::/96 (RFC 4607 §1).
    return st.tuples(st.sampled_from([0x5, 0x8, 0xE]), st.integers(0x8000_0000, 2**32 - 1)).map(
        lambda t: str(ipaddress.IPv6Address((0xFF30 | t[0]) << 112 | t[1]))
    )


def ipv4_asm_group() -> st.SearchStrategy[str]:
    return (
        st.integers(0xE0000100, 0xEFFFFFFF)
        .filter(lambda n: n >> 24 != 232)
        .map(lambda n: str(ipaddress.IPv4Address(n)))
    )


def ipv4_ssm_group() -> st.SearchStrategy[str]:
    return st.integers(0xE8000100, 0xE8FFFFFF).map(lambda n: str(ipaddress.IPv4Address(n)))


def aux_data() -> st.SearchStrategy[bytes]:
    # Whole 32-bit words: Aux Data Len counts words (RFC 3810 §5.2.6).
    return st.integers(0, 3).flatmap(
        lambda words: st.binary(min_size=4 * words, max_size=4 * words)
    )


@st.composite
def multicast_record(draw: st.DrawFn, family: int = 6, max_sources: int = 20) -> Packet:
    ssm = draw(st.booleans())
    if family == 6:
        group = draw(ipv6_ssm_group() if ssm else ipv6_asm_group())
        source = ipv6_unicast()
        cls: type[Packet] = MldAddressRecord
    else:
        group = draw(ipv4_ssm_group() if ssm else ipv4_asm_group())
        source = ipv4_unicast()
        cls = IgmpGroupRecord
    rtype = draw(st.sampled_from(RECORD_TYPES))
    sources = draw(st.lists(source, max_size=max_sources, unique=True))
    return cls(rtype=rtype, maddr=group, sources=sources, auxdata=draw(aux_data()))


def _size(rec: Packet) -> int:
    return len(bytes(rec))


@st.composite
def multicast_state_option(draw: st.DrawFn, family: int | None = None) -> MIP6OptMulticastState:
    """One option that fits the 8-bit Option Length (records dropped until it fits)."""
    family = family or draw(st.sampled_from([6, 4]))
    records = draw(st.lists(multicast_record(family, max_sources=14), max_size=6))
    room = MAX_OPTION_DATA - REPORT_HEADER_LEN
    kept, used = [], 0
    for rec in records:
        if used + _size(rec) <= room:
            kept.append(rec)
            used += _size(rec)
    report = numbers.MLDV2_REPORT if family == 6 else numbers.IGMPV3_REPORT
    return MIP6OptMulticastState(report_type=report, records=kept)


def fqdn() -> st.SearchStrategy[bytes]:
    label = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20).filter(
        lambda s: not s.startswith("-") and not s.endswith("-")
    )
    return st.lists(label, min_size=2, max_size=4).map(
        lambda labels: b"".join(bytes([len(x)]) + x.encode() for x in labels) + b"\x00"
    )


@st.composite
def binding_identifier(draw: st.DrawFn, in_bu: bool = True) -> Packet:
    coa = None
    if in_bu:
        coa = draw(st.one_of(st.none(), ipv6_unicast(), ipv4_unicast()))
    return MIP6OptBindingIdentifier(
        bid=draw(st.integers(1, 0xFFFF)),
        status=0 if in_bu else draw(st.sampled_from(sorted(numbers.BA_STATUS))),
        flags=draw(st.integers(0, 1)),
        bid_pri=draw(st.integers(1, 127)),
        coa=coa,
    )


@st.composite
def traffic_selector(draw: st.DrawFn) -> Packet:
    if draw(st.booleans()):
        fields = {
            "start_src": ipv6_unicast(),
            "start_dst": ipv6_unicast(),
            "start_spi": st.integers(0, 2**32 - 1),
            "start_flow_label": st.integers(0, 2**20 - 1),
            "start_sport": st.integers(0, 0xFFFF),
            "start_dport": st.integers(0, 0xFFFF),
            "start_tc": st.integers(0, 255),
            "start_nh": st.integers(0, 255),
        }
        cls: type[Packet] = IPv6BinaryTrafficSelector
    else:
        fields = {
            "start_src": ipv4_unicast(),
            "start_dst": ipv4_unicast(),
            "start_spi": st.integers(0, 2**32 - 1),
            "start_sport": st.integers(0, 0xFFFF),
            "start_dport": st.integers(0, 0xFFFF),
            "start_ds": st.integers(0, 255),
            "start_proto": st.integers(0, 255),
        }
        cls = IPv4BinaryTrafficSelector
    chosen = draw(st.lists(st.sampled_from(sorted(fields)), min_size=1, unique=True))
    values = {name: draw(fields[name]) for name in chosen}
    # An End field only with its Start (RFC 6088 §3.1), and never below it.
    for name in list(values):
        end = "end_" + name[len("start_") :]
        if draw(st.booleans()) and isinstance(values[name], int):
            values[end] = values[name]
    return FIDSubOptTrafficSelector(selector=[cls(**values)])  # type: ignore[arg-type]


@st.composite
def flow_identification(draw: st.DrawFn, in_bu: bool = True) -> Packet:
    subs: list[Packet] = []
    if draw(st.booleans()):
        subs.append(
            FIDSubOptBindingReference(
                bids=draw(st.lists(st.integers(1, 0xFFFF), min_size=1, max_size=4))
            )
        )
    if draw(st.booleans()):
        subs.append(draw(traffic_selector()))
    draw(st.randoms()).shuffle(subs)
    return MIP6OptFlowIdentification(
        fid=draw(st.integers(1, 0xFFFF)),
        fid_pri=draw(st.integers(1, 0xFFFF)),
        status=0 if in_bu else draw(st.sampled_from(sorted(numbers.FID_STATUS))),
        suboptions=subs,
    )


def _fits(options: list[Packet], cls: type[Packet]) -> bool:
    try:
        return len(bytes(cls(options=options))) <= MAX_MH_LEN
    except ValueError:
        return False


def _bu_options() -> st.SearchStrategy[Packet]:
    return st.one_of(
        binding_identifier(in_bu=True),
        fqdn().flatmap(
            lambda name: st.builds(
                MIP6OptDNSUpdate, mn_identity=st.just(name), flags=st.integers(0, 1)
            )
        ),
        st.builds(
            MIP6OptIPv4HomeAddress,
            prefix_len=st.integers(1, 32),
            flags=st.integers(0, 1),
            address=ipv4_unicast(),
        ),
        st.builds(MIP6OptIPv4CareOfAddress, address=ipv4_unicast()),
        flow_identification(in_bu=True),
        st.builds(
            MIP6OptFlowSummary, fids=st.lists(st.integers(1, 0xFFFF), min_size=1, max_size=8)
        ),
        multicast_state_option(),
        st.builds(
            MIP6OptExperimental,
            data=st.binary(min_size=1, max_size=40).filter(
                lambda b: b[:1] not in (b"\x8f", b"\x22")
            ),
        ),
        fqdn().map(lambda name: MIP6OptMNID(id=name)),
        st.integers(0, 2**64 - 1).map(lambda t: MIP6OptReplayProtection(timestamp=t)),
    )


@st.composite
def binding_update(draw: st.DrawFn) -> Packet:
    options = draw(st.lists(_bu_options(), max_size=6).filter(lambda o: _fits(o, BindingUpdate)))
    if draw(st.booleans()):  # RFC 4285 §5.1: the authentication option comes last
        options.append(
            MIP6OptMsgAuth(subtype=1, mspi=draw(st.integers(256, 2**32 - 1)), authdata=b"\x00" * 12)
        )
    return BindingUpdate(
        seq=draw(st.integers(0, 0xFFFF)),
        flags=draw(st.integers(0, 0x3FF)),
        mhtime=draw(st.integers(0, 0xFFFF)),
        options=options,
    )


def _ba_options() -> st.SearchStrategy[Packet]:
    return st.one_of(
        binding_identifier(in_bu=False),
        st.builds(
            MIP6OptIPv4AddressAck,
            status=st.sampled_from(sorted(numbers.IPV4_HOA_STATUS)),
            prefix_len=st.integers(1, 32),
            address=ipv4_unicast(),
        ),
        st.builds(
            MIP6OptNATDetection, flags=st.integers(0, 1), refresh_time=st.integers(0, 2**32 - 1)
        ),
        fqdn().flatmap(
            lambda name: st.builds(
                MIP6OptDNSUpdate,
                mn_identity=st.just(name),
                status=st.sampled_from(sorted(numbers.DNS_UPDATE_STATUS)),
                flags=st.integers(0, 1),
            )
        ),
        flow_identification(in_bu=False),
        multicast_state_option(),
        st.builds(MIP6OptAltHATunnelAddress, address=ipv6_unicast()),
    )


@st.composite
def binding_ack(draw: st.DrawFn) -> Packet:
    options = draw(st.lists(_ba_options(), max_size=6).filter(lambda o: _fits(o, BindingAck)))
    return BindingAck(
        status=draw(st.sampled_from(sorted(numbers.BA_STATUS))),
        flags=draw(st.integers(0, 7)),
        seq=draw(st.integers(0, 0xFFFF)),
        mhtime=draw(st.integers(0, 0xFFFF)),
        options=options,
    )
