"""An IPv4-only access link behind a NAT (`Lab(ipv4_only=(3,))`, `dmmconf lab up
--ipv4-only 3`): the foreign network of draft §8 and RFC 5555 §4.1 that a dual-stack MN
meets. Judged from the hosts' sockets and the link's frames:

* the MN there has its IPv4 address and default route only; no IPv6 frame (RA, MLD query,
  neighbour discovery) leaves the AR onto the link, while the dual-stack link 2 carries RAs;
* its UDP reaches the correspondent from the AR's uplink address (masquerade) and the
  answer comes back through the NAT; nothing outside reaches the private subnet itself;
* IPv4 multicast still reaches a listener there (the AR's IGMP proxy half).
"""

from __future__ import annotations

import ipaddress
import select
import socket
import time
from collections.abc import Iterator

import pytest

from harness.lab import plan
from harness.lab.fixtures import bring_up
from harness.lab.nodes import LabError
from harness.lab.topology import Lab
from harness.netproto import sockopts

pytestmark = pytest.mark.needs_root

V4_ONLY = 3
PORT = 5711
ETH_P_ALL, ETH_P_IPV6 = 0x0003, 0x86DD
WAIT = 1.0  # seconds: several RA and query intervals of the lab's scaled timers


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    lab = bring_up(Lab(ipv4_only=(V4_ONLY,), mn_links=(V4_ONLY, 2)))
    try:
        yield lab
    finally:
        lab.down()


def _frames(lab: Lab, link: int, ethertype: int, seconds: float) -> list[bytes]:
    """The frames of `ethertype` the AR sent onto access link `link` for `seconds` (only an
    ETH_P_ALL socket sees what its own host sends)."""
    s = lab.socket(f"ar{link}", socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind(("acc0", 0))
    out: list[bytes] = []
    end = time.monotonic() + seconds
    with s:
        while (left := end - time.monotonic()) > 0:
            if select.select([s], [], [], left)[0]:
                frame, addr = s.recvfrom(65535)
                if addr[2] == socket.PACKET_OUTGOING and frame[12:14] == ethertype.to_bytes(2):
                    out.append(frame)
    return out


def test_the_plan_refuses_an_ipv4_only_home_link() -> None:
    with pytest.raises(ValueError, match="link 1 is the home link"):
        plan.build(3, ipv4_only=(1,))


def test_the_mn_there_has_ipv4_only(lab: Lab) -> None:
    addrs = set(_addresses(lab, "mn0"))
    assert (socket.AF_INET, str(lab.plan.mn_address4(V4_ONLY))) in addrs
    globals6 = [a for f, a in addrs if f == socket.AF_INET6 and not a.startswith("fe80:")]
    assert not globals6, f"IPv6 addresses on an IPv4-only link: {globals6}"
    s = lab.socket("mn", socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"mn0")  # mn1 is on link 2
    with s, pytest.raises(OSError):  # no IPv6 route out of an IPv4-only network
        s.connect((str(lab.plan.cn.host6), PORT))


def _addresses(lab: Lab, ifname: str) -> list[tuple[int, str]]:
    index = lab.ifindex("mn", ifname)
    with lab.ipr("mn") as ipr:
        return [(m["family"], str(m.get_attr("IFA_ADDRESS"))) for m in ipr.get_addr(index=index)]


def test_no_ipv6_leaves_the_router_onto_the_link(lab: Lab) -> None:
    lab.mld_query(2)  # the dual-stack link speaks IPv6 in the same window: the control
    v4_only = _frames(lab, V4_ONLY, ETH_P_IPV6, WAIT)
    assert not v4_only, f"{len(v4_only)} IPv6 frames from ar{V4_ONLY} onto the IPv4-only link"
    assert _frames(lab, 2, ETH_P_IPV6, WAIT), "no IPv6 frame on dual-stack link 2 (control)"
    with pytest.raises(LabError, match="IPv4-only"):
        lab.ra(V4_ONLY)


def test_udp_crosses_the_nat_and_its_answer_comes_back(lab: Lab) -> None:
    cn = lab.socket("cn", socket.AF_INET, socket.SOCK_DGRAM)
    mn = lab.socket("mn", socket.AF_INET, socket.SOCK_DGRAM)
    with cn, mn:
        cn.bind((str(lab.plan.cn.host4), PORT))
        mn.bind((str(lab.plan.mn_address4(V4_ONLY)), 0))
        mn.sendto(b"hello", (str(lab.plan.cn.host4), PORT))
        assert select.select([cn], [], [], WAIT)[0], "the CN got nothing from behind the NAT"
        data, (src, sport) = cn.recvfrom(100)
        assert data == b"hello"
        assert src == str(lab.plan.link(V4_ONLY).ar_uplink4), (
            f"the CN saw {src}, not the AR's uplink address: no NAT"
        )
        cn.sendto(b"back", (src, sport))
        assert select.select([mn], [], [], WAIT)[0], "the answer did not come back through the NAT"
        assert mn.recv(100) == b"back"
        # the private subnet itself is not routed from outside
        cn.sendto(b"in", (str(lab.plan.mn_address4(V4_ONLY)), PORT))
        mn2 = lab.socket("mn", socket.AF_INET, socket.SOCK_DGRAM)
        with mn2:
            mn2.bind(("0.0.0.0", PORT))
            assert not select.select([mn2], [], [], 0.3)[0], "the CN reached the private subnet"


def test_ipv4_multicast_reaches_a_listener_there(lab: Lab) -> None:
    group = ipaddress.IPv4Address("239.1.7.1")
    rx = lab.socket("mn", socket.AF_INET, socket.SOCK_DGRAM)
    tx = lab.socket("src", socket.AF_INET, socket.SOCK_DGRAM)
    with rx, tx:
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        rx.setsockopt(sockopts.IPPROTO_IP, sockopts.IP_MULTICAST_ALL, 0)
        rx.bind(("0.0.0.0", PORT + 1))
        req = sockopts.group_req(lab.ifindex("mn", "mn0"), group)
        rx.setsockopt(sockopts.IPPROTO_IP, sockopts.MCAST_JOIN_GROUP, req)
        tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 16)
        deadline = time.monotonic() + 3 * WAIT  # the join climbs two proxies first
        while time.monotonic() < deadline:
            tx.sendto(b"m", (str(group), PORT + 1))
            if select.select([rx], [], [], 0.05)[0]:
                assert rx.recv(10) == b"m"
                return
        pytest.fail(f"no datagram of {group} reached the listener on the IPv4-only link")
