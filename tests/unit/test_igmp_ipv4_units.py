"""The IGMP proxy's sans-I/O parts: IGMPv3 Query building and report reading
(harness.netproto.igmp), the IPv4 socket option structs (harness.netproto.sockopts), the
IPv4 forwarding helpers (harness.wire.ipv4) and which IPv4 packets the forwarder takes
(harness.lab.mldproxy.forwardable4). scapy is the independent reading.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.igmp import IGMPv3, IGMPv3_MQ
from scapy.layers.inet import IP, TCP, UDP, IPOption_Router_Alert
from scapy.layers.l2 import Ether

from harness.lab.mldproxy import forwardable4
from harness.netproto import igmp, sockopts
from harness.netproto.mld import ALLOW, BLOCK, IS_EX, TO_IN, Record, Timers
from harness.wire import ipv4
from harness.wire.mcast_reports import IgmpGroupRecord, IGMPv3Report

A4 = ipaddress.IPv4Address


# ---------------------------------------------------------------- IGMP messages


@pytest.mark.parametrize("value", [0, 1, 5, 10, 127, 128, 200, 1024, 3968, 31744])
def test_max_resp_code_round_trips(value: int) -> None:
    code = igmp.encode_code(value)
    assert 0 <= code <= 0xFF and igmp.decode_code(code) == value


def test_max_resp_code_rounds_down_and_clamps() -> None:
    assert igmp.decode_code(igmp.encode_code(129)) == 128
    assert igmp.encode_code(10**6) == 0xFF and igmp.decode_code(0xFF) == 31744


def test_general_query_as_scapy_reads_it() -> None:
    timers = Timers(query_interval=10.0, query_response_interval=1.0, robustness=2)
    raw = igmp.igmp3_query(None, [], timers)
    assert len(raw) == igmp.QUERY_LEN
    q = IGMPv3(raw)
    assert q.type == igmp.IGMP_QUERY and q.mrcode == 10
    mq = q[IGMPv3_MQ]
    assert mq.gaddr == "0.0.0.0" and mq.qrv == 2 and mq.qqic == 10 and mq.numsrc == 0
    assert ipv4.internet_checksum(raw) == 0


def test_group_and_source_specific_query() -> None:
    group, sources = A4("232.1.1.1"), [A4("10.0.0.1"), A4("10.0.0.2")]
    raw = igmp.igmp3_query(group, sources, Timers(), max_resp=0.5)
    q = IGMPv3(raw)
    assert q.mrcode == 5 and q[IGMPv3_MQ].gaddr == str(group)
    assert q[IGMPv3_MQ].srcaddrs == [str(s) for s in sources]
    assert ipv4.internet_checksum(raw) == 0


def test_v3_report_records_as_scapy_wrote_them() -> None:
    report = IGMPv3Report(
        records=[
            IgmpGroupRecord(rtype=IS_EX, maddr="239.1.1.1"),
            IgmpGroupRecord(rtype=ALLOW, maddr="232.1.1.1", sources=["10.0.0.1", "10.0.0.2"]),
            IgmpGroupRecord(rtype=BLOCK, maddr="232.1.1.2", sources=["10.0.0.3"]),
        ]
    )
    assert igmp.parse_report(bytes(report)) == [
        Record(IS_EX, A4("239.1.1.1"), ()),
        Record(ALLOW, A4("232.1.1.1"), (A4("10.0.0.1"), A4("10.0.0.2"))),
        Record(BLOCK, A4("232.1.1.2"), (A4("10.0.0.3"),)),
    ]


def _v2(mtype: int, group: str) -> bytes:
    body = struct.pack("!BBH4s", mtype, 0, 0, A4(group).packed)
    return body[:2] + struct.pack("!H", ipv4.internet_checksum(body)) + body[4:]


@pytest.mark.parametrize(
    ("mtype", "rtype"),
    [(igmp.IGMP1_REPORT, IS_EX), (igmp.IGMP2_REPORT, IS_EX), (igmp.IGMP2_LEAVE, TO_IN)],
)
def test_v1_v2_messages_map_onto_v3_records(mtype: int, rtype: int) -> None:
    assert igmp.parse_report(_v2(mtype, "239.9.9.9")) == [Record(rtype, A4("239.9.9.9"), ())]


def test_bad_checksum_queries_and_short_messages_give_nothing() -> None:
    good = _v2(igmp.IGMP2_REPORT, "239.9.9.9")
    assert igmp.parse_report(good[:2] + b"\0\0" + good[4:]) == []
    assert igmp.parse_report(igmp.igmp3_query(None, [], Timers())) == []
    assert igmp.parse_report(good[:6]) == []


def test_message_of_skips_the_router_alert() -> None:
    pkt = IP(dst="224.0.0.22", ttl=1, options=[IPOption_Router_Alert()])
    raw = bytes(pkt / IGMPv3Report(records=[IgmpGroupRecord(rtype=IS_EX, maddr="239.1.1.1")]))
    message = igmp.message_of(raw)
    assert message is not None and message[0] == igmp.IGMP3_REPORT
    assert igmp.parse_report(message) == [Record(IS_EX, A4("239.1.1.1"), ())]
    assert igmp.message_of(bytes(IP(dst="239.1.1.1") / UDP())) is None


def test_routable_groups() -> None:
    assert igmp.routable(A4("239.1.1.1")) and igmp.routable(A4("224.0.1.1"))
    assert not igmp.routable(A4("224.0.0.22")) and not igmp.routable(A4("10.0.0.1"))


# ---------------------------------------------------------------- socket option structs


def test_ipv4_group_req_carries_a_sockaddr_in() -> None:
    req = sockopts.group_req(7, A4("239.1.2.3"))
    assert len(req) == 136  # u32 interface, 4 pad, sockaddr_storage
    assert struct.unpack_from("=I", req)[0] == 7
    assert struct.unpack_from("=H", req, 8)[0] == socket.AF_INET
    assert req[12:16] == A4("239.1.2.3").packed and req[16:] == bytes(120)


def test_ipv4_group_source_req_and_mixed_families() -> None:
    req = sockopts.group_source_req(3, A4("232.1.1.1"), A4("10.0.0.1"))
    assert len(req) == 264 and req[12:16] == A4("232.1.1.1").packed
    assert struct.unpack_from("=H", req, 136)[0] == socket.AF_INET
    assert req[140:144] == A4("10.0.0.1").packed
    with pytest.raises(ValueError, match="different families"):
        sockopts.group_source_req(3, A4("232.1.1.1"), ipaddress.IPv6Address("::1"))


def test_ipv6_group_req_unchanged() -> None:
    g = ipaddress.IPv6Address("ff3e::1")
    req = sockopts.group_req(2, g)
    assert len(req) == 136 and struct.unpack_from("=H", req, 8)[0] == socket.AF_INET6
    assert req[16:32] == g.packed


def test_in_pktinfo_ip_mreqn_and_ip_mreq_source() -> None:
    assert sockopts.in_pktinfo(5) == struct.pack("=I", 5) + bytes(8)
    assert sockopts.ip_mreqn(5) == bytes(8) + struct.pack("=i", 5)
    g, i, s = A4("232.1.1.1"), A4("10.0.1.100"), A4("10.0.0.1")
    assert sockopts.ip_mreq_source(g, i, s) == g.packed + i.packed + s.packed


# ---------------------------------------------------------------- IPv4 helpers


def _udp(ttl: int = 16, payload: bytes = b"data", **ip: Any) -> bytes:
    return bytes(
        IP(src="10.0.1.5", dst="239.1.1.1", ttl=ttl, **ip) / UDP(sport=1, dport=2) / payload
    )


@given(ttl=st.integers(1, 255), payload=st.binary(max_size=64))
def test_decrement_ttl_keeps_the_header_checksum_right(ttl: int, payload: bytes) -> None:
    raw = _udp(ttl, payload)
    out = ipv4.decrement_ttl(raw)
    assert out[8] == ttl - 1 and ipv4.header_checksum_ok(out)
    assert out == _udp(ttl - 1, payload)  # what scapy builds with that TTL


def test_decrement_ttl_with_options() -> None:
    raw = bytes(IP(dst="239.1.1.1", ttl=5, options=[IPOption_Router_Alert()]) / UDP())
    out = ipv4.decrement_ttl(raw)
    assert ipv4.header_len(out) == 24 and out[8] == 4 and ipv4.header_checksum_ok(out)


def _offloaded(raw: bytes) -> bytes:
    """`raw` as a veth with checksum offload passes it: only the pseudo-header sum."""
    ihl = ipv4.header_len(raw)
    at = ihl + (6 if raw[9] == 17 else 16)
    length = len(raw) - ihl
    partial = ~ipv4.internet_checksum(raw[12:20] + struct.pack("!xBH", raw[9], length)) & 0xFFFF
    return raw[:at] + struct.pack("!H", partial) + raw[at + 2 :]


@given(payload=st.binary(max_size=200))
def test_complete_checksum_of_an_offloaded_udp_datagram(payload: bytes) -> None:
    raw = _udp(payload=payload)
    half = _offloaded(raw)
    assert ipv4.complete_checksum(half) == raw  # scapy's full checksum
    assert ipv4.transport_checksum_ok(ipv4.complete_checksum(half))


def test_complete_checksum_of_tcp_and_untouched_others() -> None:
    raw = bytes(IP(src="10.0.1.5", dst="10.0.0.1") / TCP(sport=1, dport=2) / b"xyz")
    assert ipv4.complete_checksum(_offloaded(raw)) == raw
    frag = _udp(flags="MF")
    assert ipv4.fragmented(frag) and ipv4.complete_checksum(frag) == frag
    assert ipv4.complete_checksum(b"\x60" + bytes(39)) == b"\x60" + bytes(39)


def test_udp_checksum_zero_is_sent_as_all_ones() -> None:
    # Find a payload whose UDP checksum computes to 0, which RFC 768 sends as 0xFFFF.
    base = _udp(payload=b"\0\0")
    csum = struct.unpack_from("!H", base, 26)[0]
    fix = struct.pack("!H", (csum if csum != 0xFFFF else 0))
    raw = _udp(payload=fix)
    done = ipv4.complete_checksum(_offloaded(raw))
    assert struct.unpack_from("!H", done, 26)[0] == 0xFFFF and ipv4.transport_checksum_ok(done)


def test_multicast_mac() -> None:
    assert ipv4.multicast_mac(A4("239.129.1.2")) == bytes.fromhex("01005e010102")
    assert ipv4.multicast_mac(A4("224.0.0.1").packed) == bytes.fromhex("01005e000001")
    frame = Ether(bytes(Ether(dst="01:00:5e:01:01:02") / IP(dst="239.1.1.2")))
    assert ipv4.multicast_mac(A4(frame[IP].dst)) == bytes.fromhex(frame.dst.replace(":", ""))


@pytest.mark.parametrize(
    ("raw", "ok"),
    [
        (_udp(), True),
        (_udp(ttl=2), True),
        (_udp(ttl=1), False),
        (bytes(IP(src="10.0.1.5", dst="224.0.0.200", ttl=16) / UDP()), False),
        (bytes(IP(src="0.0.0.0", dst="239.1.1.1", ttl=16) / UDP()), False),
        (bytes(IP(src="10.0.1.5", dst="10.0.0.1", ttl=16) / UDP()), False),
        (_udp()[:10] + b"\0\0" + _udp()[12:], False),  # header checksum broken
    ],
)
def test_which_ipv4_packets_the_forwarder_takes(raw: bytes, ok: bool) -> None:
    assert forwardable4(raw) is ok
