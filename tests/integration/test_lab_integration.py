"""Issue 3's "Done when", end to end: the lab, its RAs, named, Kea behind per-AR relays,
a mobile node moving across three links, a capture on each link; and a run killed with
kill -9 followed by a clean one.

Needs root and the server packages (bind9, kea-dhcp6-server, kea-dhcp4-server,
isc-dhcp-relay); without them the tests end not-run with the reason.
"""

from __future__ import annotations

import math
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from scapy.layers.dhcp6 import DHCP6_InfoRequest, DHCP6_RelayForward, DHCP6_Reply
from scapy.layers.inet import UDP
from scapy.layers.inet6 import (
    ICMPv6ND_RA,
    ICMPv6NDOptHAInfo,
    ICMPv6NDOptPrefixInfo,
    IPv6,
)
from scapy.layers.l2 import Ether
from scapy.utils import rdpcap

from harness.lab import netns, plan, registry
from harness.lab.fixtures import bring_up, require_privileges
from harness.lab.topology import Lab
from harness.netproto.advertiser import RouterAdvertiser
from harness.netproto.icmp6 import link_local_address
from harness.servers._process import DIR_PREFIX, ServerUnavailable, find_binary, reap_dirs
from harness.servers.bind import NamedServer, lookup_srv
from harness.servers.inlab import LabDhcp, lab_named
from harness.servers.kea import information_request
from harness.tester.conversation import Endpoint, Predicate
from harness.tester.fixtures import Captures
from harness.verdicts import not_run
from harness.wire import dhcp
from tests.support.subreaper import Victim, wait_dead

SLACK = 0.25  # scheduling slack on top of an RA interval
ND_TYPES = range(133, 138)  # RS, RA, NS, NA, Redirect


# ---------------------------------------------------------------- predicates


def is_ra(adv: RouterAdvertiser, ha_option: bool | None = None) -> Predicate:
    """An RA from `adv`'s AR (its link-local source and MAC), with or without the Home
    Agent Information option (None: either)."""

    def test(pkt: Any) -> bool:
        ra = pkt.getlayer(ICMPv6ND_RA)
        if ra is None or pkt[IPv6].src != adv.source or pkt[Ether].src != adv.params.lladdr:
            return False
        return ha_option is None or (ICMPv6NDOptHAInfo in pkt) == ha_option

    has = {None: "", True: " with the HA Information option", False: " without it"}[ha_option]
    return Predicate(test, f"an RA from {adv.name}{has}")


def is_information_request(mac: str) -> Predicate:
    def test(pkt: Any) -> bool:
        return (
            pkt[Ether].src == mac
            and IPv6 in pkt
            and pkt[IPv6].dst == "ff02::1:2"
            and UDP in pkt
            and (pkt[UDP].sport, pkt[UDP].dport) == (546, 547)
            and DHCP6_InfoRequest in pkt
        )

    return Predicate(test, f"a DHCPv6 Information-request from {mac} to ff02::1:2")


def is_reply(mac: str, router_mac: str | None) -> Predicate:
    def test(pkt: Any) -> bool:
        return (
            pkt[Ether].dst == mac
            and (router_mac is None or pkt[Ether].src == router_mac)
            and UDP in pkt
            and (pkt[UDP].sport, pkt[UDP].dport) == (547, 546)
            and DHCP6_Reply in pkt
        )

    return Predicate(test, f"a DHCPv6 Reply from {router_mac} to {mac}")


def is_relay_forward(link_address: str, peer: str, server: str) -> Predicate:
    """A Relay-forward to the server for `peer` on the link of `link_address`."""

    def test(pkt: Any) -> bool:
        fw = pkt.getlayer(DHCP6_RelayForward)
        return (
            fw is not None
            and pkt[IPv6].dst == server
            and (fw.linkaddr, fw.peeraddr) == (link_address, peer)
            and DHCP6_InfoRequest in fw
        )

    return Predicate(test, f"a Relay-forward for {peer} with link-address {link_address}")


def is_mn_traffic(mac: str, addresses: set[str]) -> Predicate:
    """What the MN sent (its MAC), or what was sent to one of its addresses. Neighbour
    Discovery towards a departed MN (an AR's unreachability probes, RFC 4861 §7.3) is
    the router's, not the MN's traffic."""

    def test(pkt: Any) -> bool:
        if Ether not in pkt:
            return False
        if pkt[Ether].src == mac:
            return True
        ip = pkt.getlayer(IPv6)
        if ip is None or ip.dst not in addresses:
            return False
        return not (ip.nh == 58 and bytes(ip.payload)[:1] and bytes(ip.payload)[0] in ND_TYPES)

    return Predicate(test, f"traffic of the MN ({mac})")


# ---------------------------------------------------------------- the walk


def test_mn_moves_across_three_links_with_ra_dns_and_dhcp_on_each(
    clean_lab: Lab, lab_dns: NamedServer, lab_dhcp: LabDhcp, captures: Captures
) -> None:
    lab, p = clean_lab, clean_lab.plan
    t_start = time.monotonic()
    links = {i: captures.watch_link(lab, i) for i in (1, 2, 3)}
    uplinks = {i: captures.watch_node(lab, f"ar{i}", "up0") for i in (1, 2, 3)}
    mn_mac = Endpoint(lab.ns("mn"), "mn0").mac
    with netns.entered(lab.ns("mn")):
        mn_lla, why = link_local_address(lab.ifindex("mn", "mn0"))
    assert mn_lla is not None, why
    mn_addresses = {mn_lla, *(str(p.mn_address(i)) for i in (1, 2, 3))}
    ha_fqdns = sorted(f"{link.ha_fqdn}." for link in p.access)
    assert lab.mn_links()["mn0"] == 1
    # When the MN was on each link (wall clock, as in the pcaps): [arrived, left].
    on_link: dict[int, list[float]] = {1: [-math.inf, math.inf]}
    timings: dict[str, float] = {}

    for i in (1, 2, 3):
        link, adv, ar = links[i], lab.ra(i), p.link(i)
        if i != 1:
            t = time.time()
            took = lab.move("mn0", i)
            on_link[i - 1][1] = time.time()
            on_link[i] = [t, math.inf]
            timings[f"move to {i}"] = took
        since = link.mark()
        # An RA from ar i, with the HA Information option, within its interval.
        t = time.monotonic()
        got = link.expect(is_ra(adv, ha_option=True), within=adv.max_interval + SLACK)
        timings[f"RA on {i}"] = time.monotonic() - t
        assert got[ICMPv6ND_RA].H == 1
        prefix = got[ICMPv6NDOptPrefixInfo]
        assert (prefix.R, prefix.prefix, prefix.prefixlen) == (1, str(ar.router6), 64)
        # The MN asks named for the home agents (RFC 5026 §5.1.2), from its namespace.
        with netns.entered(lab.ns("mn")):
            targets = lookup_srv(str(p.dns.host6), plan.DOMAIN)
        assert sorted(t.target for t in targets) == ha_fqdns
        # ... and DHCPv6 for its home network (RFC 6610), on its link, through ar i's relay.
        with netns.entered(lab.ns("mn")):
            reply = information_request("mn0")
        info = dhcp.parse_home_info(reply)
        assert info.ha_addresses == (str(ar.router6),), info
        assert info.home_prefixes == (str(ar.prefix6),), info
        assert info.ha_fqdns == (f"{ar.ha_fqdn}.",), info
        link.expect(is_information_request(mn_mac), within=1.0, since=since)
        answer = link.expect(is_reply(mn_mac, adv.params.lladdr), within=1.0, since=since)
        assert dhcp.parse_home_info(answer).ha_addresses == (str(ar.router6),)
        # ... which ar i's relay forwarded with its own address as link-address.
        uplinks[i].expect(
            is_relay_forward(str(ar.router6), mn_lla, str(p.dhcp.host6)),
            within=1.0,
            since=0,
        )

    # ar2's HA Information option switched off: its next RA lacks it. The change comes
    # right after an RA was seen, so the next one is MinRtrAdvInterval away; should the
    # test have been slower than that, the RAs that left before the change (the
    # advertiser counts them) may still carry it, and the one after them may not.
    link2, adv2 = links[2], lab.ra(2)
    link2.mark()
    link2.expect(is_ra(adv2, ha_option=True), within=adv2.max_interval + SLACK)
    seen = adv2.sent_count
    adv2.set_ha_info(False)
    raced = adv2.sent_count - seen  # sent between the one seen and the change: 0 normally
    for n in range(raced + 1):
        following = link2.expect(
            is_ra(adv2), within=adv2.max_interval + SLACK, what=f"ar2's RA #{n + 1} from now"
        )
    assert ICMPv6NDOptHAInfo not in following and following[ICMPv6ND_RA].H == 0
    assert adv2.wait_sent(seen + raced + 1, 1.0) and not adv2.sent[-1].ha

    # The pcaps, read back: each has its AR's RAs (no other AR's), the MN's DHCP exchange,
    # and MN traffic only while the MN was on that link.
    for link in links.values():
        link.stop()
    mn_traffic = is_mn_traffic(mn_mac, mn_addresses)
    for i, link in links.items():
        assert link.capture.pcap is not None
        pkts = rdpcap(str(link.capture.pcap))
        adv = lab.ra(i)
        ras = [pkt for pkt in pkts if ICMPv6ND_RA in pkt]
        assert any(is_ra(adv, ha_option=True)(pkt) for pkt in ras), f"link {i}: no RA of ar{i}"
        assert all(is_ra(adv)(pkt) for pkt in ras), f"link {i}: an RA of another AR"
        assert any(is_information_request(mn_mac)(pkt) for pkt in pkts), f"link {i}: no IR"
        assert any(is_reply(mn_mac, adv.params.lladdr)(pkt) for pkt in pkts), f"link {i}: no Reply"
        arrived, left = on_link[i]
        stray = [
            f"{float(pkt.time):.6f} {pkt.summary()}"
            for pkt in pkts
            if mn_traffic(pkt) and not arrived <= float(pkt.time) <= left
        ]
        assert not stray, f"link {i}: MN traffic outside its stay [{arrived}, {left}]: {stray}"
    print(
        f"walk across 3 links: {time.monotonic() - t_start:.2f} s; "
        + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in timings.items())
    )


# ---------------------------------------------------------------- kill -9, then a clean run

_VICTIM = """
import sys, time
from harness.lab import registry
from harness.lab.topology import Lab
from harness.servers.inlab import LabDhcp, lab_named
lab = Lab(runid=sys.argv[1]).up()
named = lab_named(lab)
servers = LabDhcp(lab).start()
pids = [lab.multicast.proc.pid, named.pid, *servers.pids()]
print("up", *(f"{pid}:{registry.process_start(pid)}" for pid in pids), flush=True)
time.sleep(120)
"""


def _require_lab_and_servers() -> None:
    require_privileges()
    for binary, package in (
        ("named", "bind9"),
        ("kea-dhcp6", "kea-dhcp6-server"),
        ("kea-dhcp4", "kea-dhcp4-server"),
        ("dhcrelay", "isc-dhcp-relay"),
    ):
        try:
            find_binary(binary, package)
        except ServerUnavailable as exc:
            not_run(str(exc), hint=exc.hint)


def test_run_killed_mid_way_is_followed_by_a_clean_run() -> None:
    """A lab with named, Kea, relays, RAs and the MLD proxy, killed with SIGKILL: its
    daemons die with it, the next run's bring-up removes its namespaces, and the next
    run (lab and servers up and down) leaves nothing either."""
    _require_lab_and_servers()
    runid = registry.new_runid("killed")
    victim = Victim(_VICTIM, runid)
    try:
        line = victim.readline(30.0).split()
        assert line[:1] == ["up"], f"the victim's lab did not come up: {line}"
        daemons = {int(pid): int(start) for pid, start in (x.split(":") for x in line[1:])}
        assert len(daemons) == 1 + 1 + 2 + 3  # MLD proxy, named, Kea 6 and 4, 3 relays
        victim.kill()
        # Its daemons die with it (PR_SET_PDEATHSIG, the proxy's pidfd), not later.
        assert wait_dead(dict(daemons), 5.0) == [], "daemons outlived the killed run"
        assert victim.wait_all_gone(5.0), "the killed run left processes behind"
    finally:
        err = victim.close()
    ours = [n for n in netns.list_names() if registry.runid_of(n) == runid]
    assert ours, f"the victim made no namespaces? {err[-2000:]}"

    # The next run: a lab with its servers, up (reaping the dead run's leftovers) and down.
    t = time.perf_counter()
    the_lab = bring_up(Lab())
    try:
        lab_up = time.perf_counter() - t
        named = lab_named(the_lab)
        servers = LabDhcp(the_lab).start()
        up = time.perf_counter() - t
        assert not [n for n in netns.list_names() if registry.runid_of(n) == runid]
        pids = {pid: registry.process_start(pid) for pid in [named.pid, *servers.pids()] if pid}
        t = time.perf_counter()
        servers.stop()
        named.stop()
    finally:
        the_lab.down()
    down = time.perf_counter() - t
    print(
        f"lab with servers: up {up * 1000:.0f} ms (lab {lab_up * 1000:.0f} ms, named "
        f"{(named.startup_seconds or 0) * 1000:.0f} ms, DHCP "
        f"{(servers.startup_seconds or 0) * 1000:.0f} ms), down {down * 1000:.0f} ms"
    )
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"dmm-{runid}-" not in listed and f"dmm-{the_lab.runid}-" not in listed
    assert not (registry.REGISTRY_DIR / f"{runid}.json").exists()
    assert wait_dead(pids, 1.0) == []
    assert _naming(runid) == []
    # The killed run's private server directories go at the next servers' start.
    reap_dirs()
    assert not list(Path(tempfile.gettempdir()).glob(f"{DIR_PREFIX}{victim.pid}-*"))


def _naming(runid: str) -> list[int]:
    """Processes whose command line names the run (the MLD proxy's does; none may be left)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if runid.encode() in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found
