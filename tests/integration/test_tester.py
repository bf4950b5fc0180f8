"""The tester primitives: captures, conversations (send / expect / expect_none), the fixture.

The namespace tests build their own tiny topology (two namespaces joined by a veth pair,
and a bridge in a 'switch' namespace for the bridge test), named `dmmt-<pid>-...` so they
never meet the lab's `dmm-` namespaces or another xdist worker's. A reaper removes what a
killed run left behind. Without root they end as not-run.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import HAO, ICMPv6DestUnreach, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrRouting
from scapy.layers.l2 import Ether
from scapy.utils import rdpcap

from harness import verdicts
from harness.lab import netns as _netns
from harness.lab import registry
from harness.tester.capture import Capture, CaptureError
from harness.tester.conversation import (
    Endpoint,
    ExpectationFailed,
    Link,
    all_of,
    any_of,
    from_src,
    inbound,
    is_icmp6,
    is_mh,
    is_udp_to,
    outbound,
    to_dst,
)
from harness.wire import compact
from harness.wire.mobility import (
    BindingAck,
    BindingUpdate,
    MIP6OptMulticastState,
    MldAddressRecord,
)

pytest_plugins = ["pytester"]

PREFIX = "dmmt-"
MY_PREFIX = f"{PREFIX}{os.getpid()}-"
A_ADDR, B_ADDR = "2001:db8:7::1", "2001:db8:7::2"
A_ADDR4, B_ADDR4 = "198.51.100.1", "198.51.100.2"
HOA = "2001:db8:1::100"
RTMGRP_LINK = 1
# A fixed Ethernet header: Ether() alone makes scapy solicit the MAC on the host's network.
ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
NETLINK_ROUTE = 0


# --- The little topology ----------------------------------------------------------------------


def _alive(pid: int) -> bool:
    return registry.alive(pid, None)


def reap() -> list[str]:
    """Remove `dmmt-<pid>-*` namespaces whose process is gone (a run killed with -9)."""
    return registry.reap_pid_tagged((PREFIX,))


def _ipr(ns: str) -> Any:
    from pyroute2 import IPRoute

    with _netns.entered(ns):
        return IPRoute()


def _wait_up(ns: str, ifname: str, within: float = 5.0) -> None:
    """Wait (on link events, not by polling) until the interface's operstate is UP.

    Until then the kernel's linkwatch has not activated the queue and frames are dropped
    (a first Neighbour Solicitation goes unanswered and costs a 1 s retransmission)."""
    with _netns.entered(ns):
        events = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
    ipr = _ipr(ns)
    try:
        events.bind((0, RTMGRP_LINK))
        events.setblocking(False)
        deadline = time.monotonic() + within
        while True:
            (link,) = ipr.link("get", index=ipr.link_lookup(ifname=ifname)[0])
            if link.get("IFLA_OPERSTATE") == "UP":
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{ns}/{ifname} not up within {within} s")
            if select.select([events], [], [], left)[0]:
                with contextlib.suppress(BlockingIOError):
                    while events.recv(65536):
                        pass
    finally:
        ipr.close()
        events.close()


def _configure(ns: str, ifname: str, address: str | None, address4: str | None = None) -> None:
    ipr = _ipr(ns)
    try:
        ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
        idx = ipr.link_lookup(ifname=ifname)[0]
        if address:
            ipr.addr("add", index=idx, address=address, prefixlen=64, flags=0x02)  # nodad
        if address4:
            ipr.addr("add", index=idx, address=address4, prefixlen=24)
        ipr.link("set", index=idx, state="up")
    finally:
        ipr.close()


@contextlib.contextmanager
def namespaces(*suffixes: str) -> Iterator[list[str]]:
    from harness.lab import netns  # creates and removes without forking (pyroute2's forks)

    missing = _netns.missing_privileges()
    if missing:
        verdicts.not_run(missing, hint=_netns.PRIVILEGE_HINT)
    reap()
    names = [f"{MY_PREFIX}{s}" for s in suffixes]
    made = []
    try:
        for name in names:
            if name in netns.list_names():
                netns.delete(name)  # left by this very pid (pid reuse): ours to clear
            netns.create(name)
            made.append(name)
        yield names
    finally:
        for name in made:
            with contextlib.suppress(OSError):
                netns.delete(name)


@dataclass(frozen=True)
class Pair:
    a: str  # namespace of end A
    b: str
    a_if: str = "ta0"
    b_if: str = "tb0"


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    """Namespaces A and B joined by a veth pair, 2001:db8:7::1 and ::2, up and running."""
    with namespaces("a", "b") as (a, b):
        p = Pair(a, b)
        ipr = _ipr(a)
        try:
            ipr.link("add", ifname=p.a_if, kind="veth", peer={"ifname": p.b_if, "net_ns_fd": b})
        finally:
            ipr.close()
        _configure(a, p.a_if, A_ADDR, A_ADDR4)
        _configure(b, p.b_if, B_ADDR, B_ADDR4)
        _wait_up(a, p.a_if)
        _wait_up(b, p.b_if)
        yield p


@pytest.fixture
def link_b(pair: Pair, tmp_path: Path) -> Iterator[Link]:
    with Link(pair.b, pair.b_if, "b", pcap=tmp_path / "b.pcap") as link:
        yield link


@pytest.fixture
def end_a(pair: Pair) -> Iterator[Endpoint]:
    ep = Endpoint(pair.a, pair.a_if, "a")
    yield ep
    ep.close()


def udp(dport: int, payload: bytes = b"dmmconf probe") -> Any:
    return IPv6(src=A_ADDR, dst=B_ADDR) / UDP(sport=40000, dport=dport) / payload


def send_udp_from(ns: str, dport: int, payload: bytes = b"dmmconf probe") -> None:
    """A real application's datagram, from an ordinary socket in namespace `ns`."""
    with _netns.entered(ns):
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    with s:
        s.sendto(payload, (B_ADDR, dport))


# --- Predicates (no privileges needed) ----------------------------------------------------------


def _bu(seq: int = 7) -> Any:
    return (
        ETH
        / IPv6(src=A_ADDR, dst=B_ADDR)
        / IPv6ExtHdrDestOpt(options=[HAO(hoa=HOA)])
        / BindingUpdate(seq=seq)
    )


def _ba(seq: int = 7, status: int = 0) -> Any:
    return (
        ETH
        / IPv6(src=B_ADDR, dst=A_ADDR)
        / IPv6ExtHdrRouting(type=2, segleft=1, addresses=[HOA])
        / BindingAck(seq=seq, status=status)
    )


def test_is_mh_matches_on_the_wire_bytes() -> None:
    bu, ba = Ether(bytes(_bu(7))), Ether(bytes(_ba(7, 0)))
    assert is_mh("BU", seq=7)(bu)
    assert is_mh(5)(bu)
    assert not is_mh("BA")(bu)
    assert not is_mh("BU", seq=8)(bu)
    assert is_mh("BA", seq=7, status=0)(ba)
    assert not is_mh("BA", seq=7, status=128)(ba)
    assert is_mh(checksum_ok=True)(ba)
    assert not is_mh()(Ether(bytes(ETH / udp(9))))
    assert str(is_mh("BA", seq=7, status=0)) == "a BA with status 0 for seq 7"


def test_address_and_udp_predicates() -> None:
    native = Ether(bytes(ETH / IPv6(src=A_ADDR, dst="ff3e::8000:1") / UDP(dport=5000)))
    tunnelled = Ether(
        bytes(
            ETH
            / IPv6(src="2001:db8:1::1", dst=B_ADDR)
            / IPv6(src=A_ADDR, dst="ff3e::8000:1")
            / UDP(dport=5000)
        )
    )
    v4 = Ether(bytes(ETH / IP(src="10.0.1.1", dst="232.1.1.1") / UDP(dport=5000)))
    assert is_udp_to("ff3e::8000:1", 5000)(native)
    assert is_udp_to("FF3E:0:0::8000:1", 5000)(native)  # any spelling of the address
    assert not is_udp_to("ff3e::8000:1", 5001)(native)
    assert is_udp_to("ff3e::8000:1", 5000, tunnelled=True)(tunnelled)
    assert not is_udp_to("ff3e::8000:1", 5000, tunnelled=True)(native)
    assert not is_udp_to("ff3e::8000:1", 5000, tunnelled=False)(tunnelled)
    assert is_udp_to("232.1.1.1", 5000)(v4)
    assert from_src(A_ADDR)(native) and not from_src(B_ADDR)(native)
    assert from_src("2001:db8:1::1")(tunnelled)  # the outer header
    assert to_dst(B_ADDR)(tunnelled)
    both = from_src(A_ADDR) & is_udp_to("ff3e::8000:1", 5000)
    assert both(native) and str(both) == f"from {A_ADDR} and UDP to [ff3e::8000:1]:5000"
    assert (~both)(tunnelled)
    assert any_of(is_mh(), from_src(A_ADDR))(native)
    assert not all_of(is_mh(), from_src(A_ADDR))(native)
    param_problem = Ether(
        bytes(ETH / IPv6(src=B_ADDR, dst=A_ADDR, nh=58) / b"\x04\x02\x00\x00\x00\x00\x00\x2a")
    )
    assert is_icmp6(4, 2)(param_problem) and not is_icmp6(4, 1)(param_problem)
    assert not inbound(native) and not outbound(native)  # no direction: not captured
    # The datagram an ICMP error quotes is not a datagram.
    quoted = Ether(
        bytes(
            ETH
            / IPv6(src=B_ADDR, dst=A_ADDR)
            / ICMPv6DestUnreach(code=4)
            / IPv6(src=A_ADDR, dst=B_ADDR)
            / UDP(dport=5000)
        )
    )
    assert is_icmp6(1, 4)(quoted)
    assert not is_udp_to(B_ADDR, 5000)(quoted) and not to_dst(B_ADDR)(quoted)


# --- Captures and conversations on a veth pair ------------------------------------------------


def test_udp_datagram_is_captured_and_written_to_the_pcap(pair: Pair, tmp_path: Path) -> None:
    pcap = tmp_path / "b.pcap"
    with Link(pair.b, pair.b_if, "b", pcap=pcap) as link:
        send_udp_from(pair.a, 5000, b"into the pcap")
        pkt = link.expect(is_udp_to(B_ADDR, 5000), within=2.0)
        assert bytes(pkt[UDP].payload) == b"into the pcap"
        assert pkt.direction == 1 and pkt.sniffed_on == "b"
    captured = [f.data for f in link.frames()]  # after stop(): what was drained is in too
    stats = link.capture.stats()
    assert stats.frames == len(captured) and stats.kernel_drops == 0
    written = rdpcap(str(pcap))
    assert [bytes(p) for p in written] == captured  # every frame, byte for byte, in order
    hits = [p for p in written if UDP in p and p[UDP].dport == 5000]
    assert len(hits) == 1 and bytes(hits[0][UDP].payload) == b"into the pcap"
    assert abs(float(hits[0].time) - float(pkt.time)) < 1e-6  # kernel timestamp, in ns


def test_expect_returns_the_match_well_before_its_deadline(
    link_b: Link, end_a: Endpoint, record_property: Any
) -> None:
    latencies = []
    for n in range(5):
        sent = end_a.send(udp(6000 + n))  # L3, raw socket of namespace A
        t_sent = time.monotonic()
        pkt = link_b.expect(is_udp_to(B_ADDR, 6000 + n), within=2.0)
        latencies.append(time.monotonic() - t_sent)
        assert bytes(pkt[IPv6]) == sent
    record_property("expect_latency_ms", [round(t * 1000, 2) for t in latencies])
    assert max(latencies) < 0.5, latencies  # the deadline was 2 s


def test_expect_consumes_in_order_and_sees_frames_that_came_before_the_call(
    link_b: Link, end_a: Endpoint
) -> None:
    end_a.send(udp(7001))
    end_a.send(udp(7002))
    end_a.send(udp(7001))
    first = link_b.expect(is_udp_to(B_ADDR, 7001), within=1.0)
    second = link_b.expect(is_udp_to(B_ADDR, 7001), within=1.0)  # the third datagram
    assert second.time > first.time
    with pytest.raises(ExpectationFailed):
        link_b.expect(is_udp_to(B_ADDR, 7002), within=0.1)  # already passed by the cursor
    assert link_b.expect(is_udp_to(B_ADDR, 7002), within=0.1, since=0)
    link_b.mark()
    with pytest.raises(ExpectationFailed):
        link_b.expect(is_udp_to(B_ADDR, 7001), within=0.1)


def test_expect_on_what_never_comes_fails_after_its_deadline_saying_what_was_seen(
    link_b: Link, end_a: Endpoint
) -> None:
    end_a.send(udp(5000))
    link_b.expect(is_udp_to(B_ADDR, 5000), within=1.0)
    end_a.send(udp(5002, b"not what we wait for"))
    t0 = time.monotonic()
    with pytest.raises(ExpectationFailed) as info:
        link_b.expect(is_udp_to(B_ADDR, 5001), within=0.3, what="a datagram to port 5001")
    waited = time.monotonic() - t0
    assert 0.3 <= waited < 0.8
    message = str(info.value)
    assert message.startswith("expected a datagram to port 5001 on link 'b'")
    assert "within 0.3 s" in message and "deadline passed" in message
    assert "Seen on the link in the window" in message
    assert "UDP 2001:db8:7::1:40000 > 2001:db8:7::2:5002" in message  # the datagram that came
    assert "Full capture:" in message
    assert info.value.total >= 1 and info.value.what == "a datagram to port 5001"


def test_expect_none_passes_when_silent_and_fails_when_the_packet_appears(
    link_b: Link, end_a: Endpoint
) -> None:
    t0 = time.monotonic()
    link_b.expect_none(is_udp_to(B_ADDR, 5100), during=0.2)
    assert time.monotonic() - t0 >= 0.2

    # A datagram arriving in the middle of the window fails it at once, not at the end.
    timer = threading.Timer(0.05, end_a.send, args=(udp(5100),))
    t0 = time.monotonic()
    timer.start()
    try:
        with pytest.raises(ExpectationFailed) as info:
            link_b.expect_none(is_udp_to(B_ADDR, 5100), during=3.0, what="datagram to 5100")
    finally:
        timer.join()
    assert time.monotonic() - t0 < 1.0
    assert "expected no datagram to 5100" in str(info.value)
    assert "but one came at" in str(info.value)


def test_crafted_bu_with_home_address_option_is_captured_byte_for_byte(
    link_b: Link, end_a: Endpoint
) -> None:
    state = MIP6OptMulticastState(
        records=[MldAddressRecord(rtype=1, maddr="ff3e::8000:1", sources=["2001:db8:c2::10"])]
    )
    bu = (
        IPv6(src=A_ADDR, dst=B_ADDR)
        / IPv6ExtHdrDestOpt(options=[HAO(hoa=HOA)])
        / BindingUpdate(seq=7, options=[state])
    )
    sent = end_a.send(bu)  # L3: the raw socket sends the header chain as built
    pkt = link_b.expect(is_mh("BU", seq=7), within=2.0)
    assert bytes(pkt[IPv6]) == sent
    assert pkt.original[14:] == sent  # the frame as captured, past the Ethernet header
    msg = compact.parse_packet(pkt.original[14:])
    assert (msg.hoa, msg.seq, msg.checksum_ok) == (HOA, 7, True)
    # The receiving kernel has no Mobile IPv6: it drops the packet over the unknown option
    # 0xC9 and says so (RFC 8200 §4.2, action 11: Parameter Problem code 2).
    link_b.expect(is_icmp6(4, 2) & outbound, within=2.0, what="B's Parameter Problem")

    # The same packet at L2, in a frame from A's MAC to B's (the kernel's neighbour entry;
    # the bridge test covers the solicitation made when there is none).
    assert end_a._neighbour_entry(B_ADDR) == link_b.mac
    frame = end_a.send(bu, l2=True)
    got = link_b.expect(is_mh("BU", seq=7) & inbound, within=2.0)
    assert got.original == frame and frame[14:] == sent
    assert got.src == end_a.mac and got.dst == link_b.mac


def test_ba_with_a_type_2_routing_header_goes_out_whole(pair: Pair, tmp_path: Path) -> None:
    ba = (
        IPv6(src=B_ADDR, dst=A_ADDR)
        / IPv6ExtHdrRouting(type=2, segleft=1, addresses=[HOA])
        / BindingAck(seq=9, status=0)
    )
    with Link(pair.a, pair.a_if, "a", pcap=tmp_path / "a.pcap") as link_a:
        with contextlib.closing(Endpoint(pair.b, pair.b_if, "b")) as end_b:
            sent = end_b.send(ba)
        pkt = link_a.expect(is_mh("BA", seq=9, status=0) & inbound, within=2.0)
    assert pkt.original[14:] == sent
    assert compact.parse_packet(sent).rh2_hoa == HOA


def test_ipv4_goes_out_at_l3_and_at_l2(link_b: Link, end_a: Endpoint) -> None:
    datagram = IP(src=A_ADDR4, dst=B_ADDR4) / UDP(sport=40000, dport=5600) / b"v4"
    sent = end_a.send(datagram)
    assert link_b.expect(is_udp_to(B_ADDR4, 5600), within=2.0)[IP].original == sent
    assert end_a._solicit(B_ADDR4, 2.0) == link_b.mac  # an ARP request, answered
    frame = end_a.send(datagram, l2=True, resolve_within=2.0)
    got = link_b.expect(is_udp_to(B_ADDR4, 5600) & inbound, within=2.0)
    assert got.original == frame and got.dst == link_b.mac
    group = end_a.send(IP(src=A_ADDR4, dst="232.1.1.1") / UDP(dport=5601), l2=True)
    assert group[:6] == bytes.fromhex("01005e010101")  # the group's multicast MAC
    link_b.expect(is_udp_to("232.1.1.1", 5601), within=2.0)


def test_start_and_stop_are_idempotent_and_a_restart_appends(pair: Pair, tmp_path: Path) -> None:
    pcap = tmp_path / "c.pcap"
    cap = Capture(pair.b, pair.b_if, pcap, label="b")
    seen: list[Any] = []
    cap.subscribe(seen.append)
    assert cap.start() is cap.start() and cap.running
    send_udp_from(pair.a, 5300)
    t0 = time.monotonic()
    cap.stop()
    cap.stop()
    assert time.monotonic() - t0 < 0.6 and not cap.running
    first = len(rdpcap(str(pcap)))
    cap.start()
    send_udp_from(pair.a, 5301)
    cap.stop()
    written = rdpcap(str(pcap))
    assert len(written) > first and len(written) == len(seen)
    assert [p[UDP].dport for p in written if UDP in p and p[UDP].sport != 5300][-1] == 5301


def test_a_capture_on_a_missing_interface_says_so(pair: Pair) -> None:
    with pytest.raises(CaptureError, match=f"'nosuch0' in namespace '{pair.b}'"):
        Capture(pair.b, "nosuch0").start()
    with pytest.raises(CaptureError, match="network namespace .* does not exist"):
        Capture(f"{MY_PREFIX}absent", "lo").start()


def test_capture_on_a_bridge_in_a_switch_namespace_sees_the_link(tmp_path: Path) -> None:
    with namespaces("sw", "h1", "h2") as (sw, h1, h2):
        ipr = _ipr(sw)
        try:
            ipr.link("add", ifname="br0", kind="bridge")
            br = ipr.link_lookup(ifname="br0")[0]
            for host in (h1, h2):
                port = f"p-{host[-2:]}"
                ipr.link(
                    "add", ifname=port, kind="veth", peer={"ifname": "eth0", "net_ns_fd": host}
                )
                ipr.link("set", index=ipr.link_lookup(ifname=port)[0], master=br, state="up")
            ipr.link("set", index=br, state="up")
        finally:
            ipr.close()
        _configure(h1, "eth0", "2001:db8:8::1")
        _configure(h2, "eth0", "2001:db8:8::2")
        for ns, ifname in ((h1, "eth0"), (h2, "eth0"), (sw, "br0")):
            _wait_up(ns, ifname)
        with Link(sw, "br0", "access", pcap=tmp_path / "br.pcap") as switch:
            with contextlib.closing(Endpoint(h1, "eth0")) as host1:
                assert host1._neighbour_entry("2001:db8:8::2") is None  # so: solicited
                host1.send(
                    IPv6(src="2001:db8:8::1", dst="2001:db8:8::2") / UDP(dport=5400), l2=True
                )
            # A unicast frame between two ports: the bridge forwards it, the capture sees it.
            pkt = switch.expect(is_udp_to("2001:db8:8::2", 5400), within=2.0)
            assert pkt.dst != switch.mac and pkt.src == host1.mac
            # Our Neighbour Solicitation was answered over the bridge before that.
            switch.expect(is_icmp6(136), within=0.1, since=0)
    assert any(UDP in p and p[UDP].dport == 5400 for p in rdpcap(str(tmp_path / "br.pcap")))


# --- The captures fixture, in an inner pytest run ------------------------------------------------

INNER = """
    import os, socket
    from scapy.layers.inet import UDP
    from scapy.layers.inet6 import IPv6
    from harness.tester import is_mh, is_udp_to

    A, B = os.environ["DMMT_NS_A"], os.environ["DMMT_NS_B"]

    def test_datagram_arrives(captures):
        a = captures.watch(A, "ta0", "a")
        b = captures.watch(B, "tb0", "b")
        a.send(IPv6(src="2001:db8:7::1", dst="2001:db8:7::2") / UDP(dport=5500) / b"hi")
        b.expect(is_udp_to("2001:db8:7::2", 5500), within=2.0)

    def test_binding_ack_never_comes(captures):
        b = captures.watch(B, "tb0", "b")
        b.expect(is_mh("BA", seq=7, status=0), within=0.3)
"""

INNER_PLUGINS = (
    "-p",
    "harness.pytest_plugin",
    "-p",
    "reports.plugin",
    "-p",
    "harness.tester.fixtures",
    "-p",
    "no:cacheprovider",
    "-p",
    "no:hypothesispytest",
    "--report-dir",
    "out",
)


@pytest.fixture
def inner(pytester: pytest.Pytester, pair: Pair, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("DMMT_NS_A", pair.a)
    monkeypatch.setenv("DMMT_NS_B", pair.b)
    monkeypatch.delenv("DMMCONF_KEEP_CAPTURES", raising=False)
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_inner=INNER)
    return pytester


def _report(pytester: pytest.Pytester) -> dict[str, dict[str, Any]]:
    doc = json.loads((pytester.path / "out" / "report.json").read_text(encoding="utf-8"))
    return {t["nodeid"].split("::")[-1]: t for t in doc["tests"]}


def test_captures_fixture_attaches_pcaps_and_a_missing_ba_reads_well(
    inner: pytest.Pytester,
) -> None:
    result = inner.runpytest(*INNER_PLUGINS, "--alluredir", "allure")
    result.assert_outcomes(passed=1, failed=1)
    # The failing expectation, as the user reads it.
    result.stdout.fnmatch_lines(
        [
            "*ExpectationFailed: expected a BA with status 0 for seq 7 on link 'b' (*/tb0)"
            " within 0.3 s; the deadline passed (+0.300 s) and nothing matched.",
            "*Full capture: *test_binding_ack_never_comes.b.pcap",
        ]
    )
    tests = _report(inner)
    assert tests["test_binding_ack_never_comes"]["verdict"] == "fail"
    assert (
        "expected a BA with status 0 for seq 7" in tests["test_binding_ack_never_comes"]["reason"]
    )
    for name, labels in (
        ("test_datagram_arrives", ["a", "b"]),
        ("test_binding_ack_never_comes", ["b"]),
    ):
        attached = tests[name]["attachments"]
        pcaps = [p for p in attached if p.endswith(".pcap")]
        assert [p.rsplit(".", 2)[-2] for p in pcaps] == labels, attached
        assert any(p.endswith(".transcript.txt") for p in attached)
        for rel in pcaps:  # copied into the report dir, linked by a relative path
            assert not Path(rel).is_absolute()
            rdpcap(str(inner.path / "out" / rel))
    # The datagram is in both pcaps of the passing test.
    arrived = tests["test_datagram_arrives"]["attachments"]
    for rel in arrived[:2]:
        assert any(UDP in p and p[UDP].dport == 5500 for p in rdpcap(str(inner.path / "out" / rel)))
    transcript = (inner.path / "out" / arrived[-1]).read_text()
    assert "[a] sent (L3, raw socket)" in transcript and "[b] expected UDP to" in transcript
    # The originals stay under <report dir>/captures/<test>/.
    assert len(list((inner.path / "out" / "captures").rglob("*.pcap"))) == 3
    # And allure has them as attachments of the tests.
    names = []
    for path in (inner.path / "allure").glob("*-result.json"):
        doc = json.loads(path.read_text())
        names += [a["name"] for a in doc.get("attachments", [])]
        for step in doc.get("steps", []):
            names += [a["name"] for a in step.get("attachments", [])]
    for path in (inner.path / "allure").glob("*-container.json"):
        doc = json.loads(path.read_text())
        for fixture in doc.get("afters", []):
            names += [a["name"] for a in fixture.get("attachments", [])]
    assert sum(n.endswith(".pcap") for n in names) == 3, names


def test_keep_captures_failed_drops_the_pcaps_of_passing_tests(inner: pytest.Pytester) -> None:
    result = inner.runpytest(*INNER_PLUGINS, "--keep-captures=failed")
    result.assert_outcomes(passed=1, failed=1)
    tests = _report(inner)
    assert tests["test_datagram_arrives"]["attachments"] == []
    assert any(p.endswith(".pcap") for p in tests["test_binding_ack_never_comes"]["attachments"])
    left = [p.name for p in (inner.path / "out" / "captures").rglob("*.pcap")]
    assert left == ["test_binding_ack_never_comes.b.pcap"]


def test_captures_without_privileges_is_not_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        _netns, "missing_privileges", lambda: "this process lacks CAP_NET_ADMIN (to create links)"
    )
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_inner="def test_x(captures):\n    raise AssertionError('ran')\n")
    result = pytester.runpytest(*INNER_PLUGINS)
    result.assert_outcomes(skipped=1)
    (test,) = _report(pytester).values()
    assert test["verdict"] == "not-run"
    assert "lacks CAP_NET_ADMIN" in test["reason"] and "root" in (test["hint"] or "")


def test_the_reaper_removes_what_a_killed_run_left(pair: Pair) -> None:
    from harness.lab import netns  # creates and removes without forking (pyroute2's forks)

    dead = 2**22 + 1  # above the default pid_max: no such process
    assert not _alive(dead)
    name = f"{PREFIX}{dead}-left"
    netns.create(name)
    try:
        assert name in reap()
        assert name not in netns.list_names()
        assert pair.a in netns.list_names()  # a live run's namespaces stay
    finally:
        if name in netns.list_names():
            netns.delete(name)


LOGS = """
    def test_passes(captures, tmp_path):
        log = tmp_path / "sut-mn.log"
        log.write_text("all well\\n")
        captures.keep_if_failed(log)

    def test_fails(captures, tmp_path):
        log = tmp_path / "sut-mn.log"
        log.write_text("what the SUT did\\n")
        captures.keep_if_failed(log)
        captures.keep_if_failed(None)  # a SUT that never started has no log
        raise AssertionError("judged on the wire")
"""


def test_a_failed_tests_report_keeps_the_logs_it_was_given(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The logs of the nodes a test ran (the SUT's, the reference peers') are evidence in
    the report entry of a test that failed, and only then (they can be large)."""
    monkeypatch.delenv("DMMCONF_KEEP_CAPTURES", raising=False)
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_logs=LOGS)
    # in a process of its own: an in-process run leaves the report plugin's state to the
    # inner runs that follow it in this worker
    result = pytester.runpytest_subprocess(*INNER_PLUGINS)
    result.assert_outcomes(passed=1, failed=1)
    tests = _report(pytester)
    assert not any(p.endswith(".log") for p in tests["test_passes"]["attachments"])
    logs = [p for p in tests["test_fails"]["attachments"] if p.endswith(".log")]
    assert len(logs) == 1, tests["test_fails"]["attachments"]
    assert (pytester.path / "out" / logs[0]).read_text() == "what the SUT did\n"
