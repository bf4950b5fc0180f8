"""The lab's IGMP proxy (RFC 4605 over IGMPv3, RFC 3376): IPv4 multicast from behind the
core and from an access link reaches the listeners that asked for it, over the userspace
forwarder (IPv4 always takes it, whatever the IPv6 data path).

What is judged is the wire and the listeners' sockets: which IPv4 datagrams reach which
access link, with which TTL, that a UDP socket accepts them (so the checksum a local
sender left to offload was completed before forwarding), and the queries the ARs send.
Each test uses groups of its own in one lab.
"""

from __future__ import annotations

import ipaddress
import select
import socket
import struct
import time
from collections.abc import Callable, Iterator

import pytest

from harness.lab.fixtures import bring_up
from harness.lab.topology import Lab
from harness.netproto import igmp, sockopts
from harness.wire import ipv4

PORT = 5700
SEND_TTL = 16
ETH_HLEN = 14
ETH_P_IP = 0x0800
IP = sockopts.IPPROTO_IP


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    lab = bring_up(Lab(mn_links=(1, 2)))
    try:
        assert lab.mcast_state()["core"]["datapath4"] == "userspace"
        yield lab
    finally:
        lab.down()


def _receiver(lab: Lab, ifname: str, group: str, source: str | None = None) -> socket.socket:
    """A UDP socket in the MN that joined `group` (from `source`) on `ifname` and gets only
    what it joined itself (IP_MULTICAST_ALL 0). SSM joins use IP_ADD_SOURCE_MEMBERSHIP on
    mn0 and MCAST_JOIN_SOURCE_GROUP elsewhere, so both ways a host joins are exercised."""
    rx = lab.socket("mn", socket.AF_INET)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    rx.setsockopt(IP, sockopts.IP_MULTICAST_ALL, 0)
    rx.bind(("0.0.0.0", PORT))
    ifindex, g = lab.ifindex("mn", ifname), ipaddress.IPv4Address(group)
    if source is None:
        rx.setsockopt(IP, sockopts.MCAST_JOIN_GROUP, sockopts.group_req(ifindex, g))
    elif ifname == "mn0":
        local, s = lab.plan.mn_address4(1, 0), ipaddress.IPv4Address(source)
        rx.setsockopt(IP, sockopts.IP_ADD_SOURCE_MEMBERSHIP, sockopts.ip_mreq_source(g, local, s))
    else:
        req = sockopts.group_source_req(ifindex, g, ipaddress.IPv4Address(source))
        rx.setsockopt(IP, sockopts.MCAST_JOIN_SOURCE_GROUP, req)
    return rx


def _sniffer(lab: Lab, node: str, ifname: str) -> socket.socket:
    s = lab.socket(node, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
    s.bind((ifname, 0))
    return s


def _packets(sniffer: socket.socket, wait: float = 0.0) -> list[bytes]:
    """The IPv4 packets the link carried so far (waiting up to `wait` for the first)."""
    out: list[bytes] = []
    while select.select([sniffer], [], [], wait if not out else 0)[0]:
        out.append(sniffer.recv(65535)[ETH_HLEN:])
    return out


def _udp(packets: list[bytes], group: str) -> list[tuple[int, bytes]]:
    """(TTL, payload) of every UDP datagram to `group` among `packets`."""
    g = ipaddress.IPv4Address(group).packed
    out = []
    for ip in packets:
        ihl = ipv4.header_len(ip)
        if ihl and ip[9] == socket.IPPROTO_UDP and ip[16:20] == g:
            out.append((ip[8], ip[ihl + 8 :]))
    return out


def _expect(
    sniffer: socket.socket, pred: Callable[[bytes], bool], want: int, within: float
) -> list[bytes]:
    """Wait until `want` packets the predicate accepts crossed the link (deadline `within`)."""
    deadline, seen = time.monotonic() + within, 0
    hits: list[bytes] = []
    while len(hits) < want and (left := deadline - time.monotonic()) > 0:
        batch = _packets(sniffer, left)
        seen += len(batch)
        hits += [p for p in batch if pred(p)]
    assert len(hits) >= want, f"{len(hits)} of {want} expected packets among {seen} seen"
    return hits


def _stream(
    lab: Lab,
    node: str,
    ifname: str,
    receivers: dict[str, socket.socket],
    want: int,
    ttl: int = SEND_TTL,
    others: tuple[str, ...] = (),
    timeout: float = 5.0,
) -> dict[str, list[bytes]]:
    """Send numbered datagrams from node to each receiver's group (and to `others`) until
    every receiver got `want` of them, or the deadline."""
    with lab.socket(node, socket.AF_INET) as tx:
        tx.setsockopt(IP, sockopts.IP_MULTICAST_TTL, ttl)
        tx.setsockopt(IP, sockopts.IP_MULTICAST_IF, sockopts.ip_mreqn(lab.ifindex(node, ifname)))
        got: dict[str, list[bytes]] = {g: [] for g in receivers}
        deadline, n = time.monotonic() + timeout, 0
        while time.monotonic() < deadline and min(map(len, got.values())) < want:
            for group in [*receivers, *others]:
                tx.sendto(struct.pack("!I", n), (group, PORT))
            n += 1
            for rx in select.select(list(receivers.values()), [], [], 0.02)[0]:
                group = next(g for g, r in receivers.items() if r is rx)
                got[group].append(rx.recv(100))
        return got


def _is_query(group: str | None) -> Callable[[bytes], bool]:
    g = ipaddress.IPv4Address(group or "0.0.0.0").packed
    dst = ipaddress.IPv4Address(group or str(igmp.ALL_SYSTEMS)).packed

    def pred(ip: bytes) -> bool:
        msg = igmp.message_of(ip)
        return msg is not None and msg[0] == igmp.IGMP_QUERY and msg[4:8] == g and ip[16:20] == dst

    return pred


def test_ssm_and_asm_from_behind_the_core_two_hops(lab: Lab) -> None:
    """An SSM and an ASM listener on link 1 get the source behind the core through core and
    ar1, TTL down by exactly two; an unjoined group never reaches the access link, and link
    2, where nobody listens, carries none of it."""
    p = lab.plan
    source, ssm, asm, never = str(p.mcast_source.host4), "232.1.1.1", "239.1.1.1", "239.1.1.99"
    with (
        _receiver(lab, "mn0", ssm, source) as rx_ssm,
        _receiver(lab, "mn0", asm) as rx_asm,
        _sniffer(lab, "mn", "mn0") as link1,
        _sniffer(lab, "mn", "mn1") as link2,
    ):
        got = _stream(lab, "src", "eth0", {ssm: rx_ssm, asm: rx_asm}, want=5, others=(never,))
        assert len(got[ssm]) >= 5 and len(got[asm]) >= 5, {g: len(d) for g, d in got.items()}
        seen1, seen2 = _packets(link1), _packets(link2)
    for group in (ssm, asm):
        on1 = _udp(seen1, group)
        assert {ttl for ttl, _ in on1} == {SEND_TTL - 2}, f"{group}: TTLs on link 1"
        assert len(on1) == len({d for _, d in on1}), f"{group}: a datagram forwarded twice"
        assert not _udp(seen2, group), f"{group} reached link 2, where nobody listens"
    assert not _udp(seen1, never), "an unjoined group reached the access link"
    state = lab.mcast_state()
    assert {e["group"] for e in state["ar1"]["listeners"]} >= {ssm, asm}
    assert f"{source},{ssm}" in state["ar1"]["joined_upstream"]
    assert f"*,{asm}" in state["ar1"]["joined_upstream"]
    entry = {"source": source, "group": ssm, "iif": "src", "oifs": ["ar1"]}
    assert entry in state["core"]["mfc"]
    assert all(e["group"] != never for r in state.values() for e in r["listeners"])


def test_from_an_access_link_goes_up_and_over_never_back(lab: Lab) -> None:
    """The CDN on link 1 to listeners on links 2 and 1: ar1 sends it upstream (RFC 4605
    §4.1), the core down to ar2, 3 hops; link 1 carries only the original although it has
    a listener (never back out of the arrival interface)."""
    source, group = str(lab.plan.cdn4), "232.2.2.2"
    with (
        _receiver(lab, "mn1", group, source) as rx,
        _receiver(lab, "mn0", group, source),
        _sniffer(lab, "mn", "mn0") as link1,
        _sniffer(lab, "mn", "mn1") as link2,
    ):
        got = _stream(lab, "cdn", "eth0", {group: rx}, want=5)
        assert len(got[group]) >= 5, f"{len(got[group])} datagrams reached the listener on link 2"
        seen1, seen2 = _udp(_packets(link1), group), _udp(_packets(link2), group)
    assert {ttl for ttl, _ in seen2} == {SEND_TTL - 3}
    assert {ttl for ttl, _ in seen1} == {SEND_TTL}, "link 1 got a forwarded copy back"
    assert len(seen1) == len({d for _, d in seen1})


def test_ttl_and_local_groups_end_forwarding(lab: Lab) -> None:
    """TTL 2 from behind the core: the core forwards it (2 -> 1), ar1 must not; a group of
    224.0.0.0/24 is never forwarded, although a listener on link 1 joined it, neither down
    from behind the core nor up from the CDN on link 1."""
    source, group, local = str(lab.plan.mcast_source.host4), "232.3.3.3", "224.0.0.200"
    with (
        _receiver(lab, "mn0", group, source) as rx,
        _receiver(lab, "mn0", local) as rx_local,
        _sniffer(lab, "mn", "mn0") as link1,
        _sniffer(lab, "ar1", "up0") as uplink,  # what ar1 receives from the core
        _sniffer(lab, "core", "ar1") as from_ar1,  # what the core receives from ar1
    ):
        # The path is there: a datagram with TTL to spare arrives.
        assert _stream(lab, "src", "eth0", {group: rx}, want=1)[group]
        _packets(link1), _packets(uplink)
        got = _stream(lab, "src", "eth0", {group: rx, local: rx_local}, want=1, ttl=2, timeout=1.0)
        assert not got[group] and not got[local], {g: len(d) for g, d in got.items()}
        on_uplink = _packets(uplink)
        assert {ttl for ttl, _ in _udp(on_uplink, group)} == {1}, "the core did not forward"
        assert not _udp(on_uplink, local), "the core forwarded a 224.0.0.x group"
        on1 = _packets(link1)
        assert not _udp(on1, group) and not _udp(on1, local)
        # From downstream everything routable goes upstream (RFC 4605 §4.1); 224.0.0.x not.
        _packets(from_ar1)
        _stream(lab, "cdn", "eth0", {group: rx}, want=1, others=(local,), timeout=0.5)
        up = _packets(from_ar1)
        assert _udp(up, group), "ar1 did not send a routable group from link 1 upstream"
        assert not _udp(up, local), "ar1 sent a 224.0.0.x group upstream"


def test_leave_stops_forwarding_after_the_last_member_queries(lab: Lab) -> None:
    """An ASM listener leaves (IGMPv3 TO_IN {}): ar1 sends its Group-Specific Queries
    (Router Alert, Max Resp 0.5 s), nobody answers, the state goes and forwarding stops."""
    group = "239.4.4.4"
    with _sniffer(lab, "mn", "mn0") as link1:
        with _receiver(lab, "mn0", group) as rx:
            assert len(_stream(lab, "src", "eth0", {group: rx}, want=3)[group]) >= 3
            _packets(link1)
        queries = _expect(link1, _is_query(group), want=2, within=3.0)
        for q in queries:
            msg = igmp.message_of(q)
            assert msg is not None and q[20:24] == igmp.ROUTER_ALERT and q[8] == 1
            assert igmp.decode_code(msg[1]) == 5  # tenths of a second
        deadline = time.monotonic() + 3.0
        while any(e["group"] == group for e in lab.mcast_state()["ar1"]["listeners"]):
            assert time.monotonic() < deadline, f"ar1 still has listeners for {group}"
            time.sleep(0.05)  # polling the proxy's state; the proxy itself runs on timers
        with lab.socket("mn", socket.AF_INET) as quiet:
            quiet.bind(("0.0.0.0", PORT + 1))
            _packets(link1)
            _stream(lab, "src", "eth0", {group: quiet}, want=1, timeout=0.5)
            assert not _udp(_packets(link1), group), "forwarded after the leave"


def test_general_query_on_the_access_link(lab: Lab) -> None:
    """ar1's IGMPv3 General Query: to 224.0.0.1, TTL 1, the Router Alert, from ar1, the
    lab's timers in Max Resp Code, QRV and QQIC, a checksum that verifies."""
    with _sniffer(lab, "mn", "mn0") as link1:
        lab.multicast.query(1, version=4)
        (q,) = _expect(link1, _is_query(None), want=1, within=2.0)[:1]
    msg = igmp.message_of(q)
    assert msg is not None and len(msg) == igmp.QUERY_LEN
    assert ipv4.header_len(q) == 24 and q[20:24] == igmp.ROUTER_ALERT and q[8] == 1
    assert ipaddress.IPv4Address(q[12:16]) == lab.plan.link(1).router4
    t = lab.mld_timers
    assert igmp.decode_code(msg[1]) == round(t.query_response_interval * 10)
    assert msg[8] & 0x07 == t.robustness and igmp.decode_code(msg[9]) == int(t.query_interval)
    assert ipv4.internet_checksum(msg) == 0 and ipv4.header_checksum_ok(q)
