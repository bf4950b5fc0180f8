"""Router Advertisements the harness controls (harness.netproto.ra, .advertiser).

The builder is checked against scapy's and tshark's decoding; the advertiser runs in a
namespace pair of its own (`dmmr-<pid>-<n>r` router, `...h` host, joined by a veth),
which needs root (not-run otherwise).
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import os
import select
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet6 import (
    ICMPv6ND_RA,
    ICMPv6ND_RS,
    ICMPv6NDOptAdvInterval,
    ICMPv6NDOptHAInfo,
    ICMPv6NDOptMTU,
    ICMPv6NDOptPrefixInfo,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
)
from scapy.packet import Packet

from harness import verdicts
from harness.lab import netns, registry
from harness.netproto import advertiser, icmp6, ra
from harness.wire import tshark

PREFIX = ipaddress.IPv6Network("2001:db8:1::/64")
ROUTER = ipaddress.IPv6Address("2001:db8:1::1")
MAC = "02:00:00:00:01:01"


def ha_params(**kw: object) -> ra.RaParams:
    base: dict[str, object] = dict(
        prefix=PREFIX,
        router_address=ROUTER,
        lladdr=MAC,
        ha=ra.HaInfo(preference=7, lifetime=300),
        max_interval=0.1,
        router_lifetime=30,
        mtu=1500,
    )
    base.update(kw)
    return ra.RaParams(**base)  # type: ignore[arg-type]


def options(pkt: ICMPv6ND_RA) -> list[Packet]:
    out: list[Packet] = []
    layer = pkt.payload
    while layer and layer.__class__.__name__ != "NoPayload":
        out.append(layer)
        layer = layer.payload
    return out


# --------------------------------------------------------------------------- builder


def test_ha_ra_decoded_by_scapy_is_what_was_asked() -> None:
    wire = bytes(ra.build_ra_packet(ha_params(), "fe80::1"))
    pkt = IPv6(wire)
    assert pkt.hlim == 255 and pkt.dst == "ff02::1" and pkt.src == "fe80::1"
    r = pkt[ICMPv6ND_RA]
    assert (r.type, r.code, r.chlim, r.M, r.O, r.H, r.prf, r.P, r.res) == (
        134,
        0,
        64,
        0,
        0,
        1,
        0,
        0,
        0,
    )
    assert r.routerlifetime == 30
    kinds = [type(o) for o in options(r)]
    assert kinds == [
        ICMPv6NDOptSrcLLAddr,
        ICMPv6NDOptMTU,
        ICMPv6NDOptPrefixInfo,
        ICMPv6NDOptAdvInterval,
        ICMPv6NDOptHAInfo,
    ]
    assert r[ICMPv6NDOptSrcLLAddr].lladdr == MAC
    assert r[ICMPv6NDOptMTU].mtu == 1500
    pio = r[ICMPv6NDOptPrefixInfo]
    # RFC 6275 §7.2: R set and the Prefix field holds the HA's complete address
    assert (pio.prefixlen, pio.L, pio.A, pio.R, pio.res1) == (64, 1, 1, 1, 0)
    assert pio.prefix == str(ROUTER)
    assert (pio.validlifetime, pio.preferredlifetime) == (2592000, 604800)
    assert r[ICMPv6NDOptAdvInterval].advint == 120  # 100 ms + 20 ms (RFC 6275 §7.5)
    hai = r[ICMPv6NDOptHAInfo]
    assert (hai.len, hai.res, hai.pref, hai.lifetime) == (1, 0, 7, 300)
    # the HA option's bytes, field by field, against the RFC 6275 §7.4 figure
    assert bytes(hai)[:8] == bytes([8, 1, 0, 0]) + struct.pack("!HH", 7, 300)
    assert bytes(r[ICMPv6NDOptAdvInterval])[:8] == bytes([7, 1, 0, 0]) + struct.pack("!I", 120)


def test_plain_router_ra_has_no_home_agent_parts() -> None:
    r = ra.build_ra(ha_params(ha=None, mtu=None))
    assert r.H == 0
    assert ICMPv6NDOptHAInfo not in r and ICMPv6NDOptMTU not in r
    pio = r[ICMPv6NDOptPrefixInfo]
    assert pio.R == 0 and pio.prefix == "2001:db8:1::"
    # with the R flag asked for, a plain router may advertise its address too (§7.2 MAY)
    r = ra.build_ra(ha_params(ha=None, advertise_router_address=True))
    assert r.H == 0 and r[ICMPv6NDOptPrefixInfo].R == 1
    assert r[ICMPv6NDOptPrefixInfo].prefix == str(ROUTER)


def test_ha_option_follows_rfc6275_section_7_4_defaults() -> None:
    # preference 0 and lifetime = Router Lifetime: the option SHOULD NOT be sent; H still is
    r = ra.build_ra(ha_params(ha=ra.HaInfo()))
    assert r.H == 1 and ICMPv6NDOptHAInfo not in r
    r = ra.build_ra(ha_params(ha=ra.HaInfo(lifetime=30)))  # equal to the router lifetime
    assert ICMPv6NDOptHAInfo not in r
    r = ra.build_ra(ha_params(ha=ra.HaInfo(option=True)))
    assert r[ICMPv6NDOptHAInfo].lifetime == 30 and r[ICMPv6NDOptHAInfo].pref == 0
    r = ra.build_ra(ha_params(ha=ra.HaInfo(preference=1, option=False)))
    assert r.H == 1 and ICMPv6NDOptHAInfo not in r


def test_params_for_a_link_of_the_address_plan() -> None:
    from harness.lab import plan

    params = ra.params_for_link(plan.build().link(2), max_interval=0.5)
    r = ra.build_ra(params)
    assert r.H == 1 and ICMPv6NDOptHAInfo not in r  # default HaInfo: H flag only (§7.4)
    assert r[ICMPv6NDOptPrefixInfo].prefix == "2001:db8:2::1" and r.routerlifetime == 2
    r = ra.build_ra(ra.params_for_link(plan.build().link(3), ha=None))
    assert r.H == 0 and r[ICMPv6NDOptPrefixInfo].prefix == "2001:db8:3::"


def test_timer_rules() -> None:
    assert ra.advertisement_interval_ms(0.07) == 90  # RFC 6275 §7.5: +20 ms below 200 ms
    assert ra.advertisement_interval_ms(0.2) == 200
    assert ra.advertisement_interval_ms(600) == 600000
    assert ra.default_router_lifetime(0.07) == 1  # at least 1 s (§7.5)
    assert ra.default_router_lifetime(600) == 1800  # 3 x MaxRtrAdvInterval (RFC 4861)
    assert ra.default_router_lifetime(5000) == 9000
    assert ra.build_ra(ha_params(router_lifetime=None, max_interval=10)).routerlifetime == 30


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ra.HaInfo(lifetime=0), "0 MUST NOT be used"),
        (lambda: ra.HaInfo(preference=70000), "home agent preference: 0..65535"),
        (lambda: ra.build_ra(ha_params(router_address=None)), "needs router_address"),
        (
            lambda: ra.build_ra(ha_params(router_address=ipaddress.IPv6Address("2001:db8:2::1"))),
            "is not in 2001:db8:1::/64",
        ),
        (
            lambda: ra.build_ra(ha_params(preferred_lifetime=10, valid_lifetime=5)),
            "exceeds valid lifetime",
        ),
        (lambda: ra.build_ra(ha_params(mtu=1000)), "MTU: 1280.."),
        (
            lambda: advertiser.RouterAdvertiser(
                "x", ha_params(), min_interval=0.01, max_interval=0.1
            ),
            "below RFC 6275 §7.5's 0.03 s",
        ),
        (
            lambda: advertiser.RouterAdvertiser(
                "x", ha_params(), min_interval=0.5, max_interval=0.1
            ),
            "exceeds MaxRtrAdvInterval",
        ),
    ],
    ids=[
        "ha-lifetime-0",
        "preference",
        "no-router-address",
        "address-outside",
        "lifetimes",
        "mtu",
        "interval-floor",
        "interval-order",
    ],
)
def test_builder_refuses_what_the_rfcs_forbid(make: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()  # type: ignore[operator]


@settings(max_examples=60, deadline=None)
@given(
    pref=st.integers(0, 0xFFFF),
    lifetime=st.integers(1, 0xFFFF),
    router_lifetime=st.integers(0, 9000),
    max_interval=st.floats(0.07, 1800),
    valid=st.integers(0, 0xFFFFFFFF),
    ha=st.booleans(),
)
def test_builder_round_trips_through_scapy(
    pref: int, lifetime: int, router_lifetime: int, max_interval: float, valid: int, ha: bool
) -> None:
    params = ha_params(
        ha=ra.HaInfo(pref, lifetime, option=True) if ha else None,
        router_lifetime=router_lifetime,
        max_interval=max_interval,
        valid_lifetime=valid,
        preferred_lifetime=valid // 2,
    )
    r = ICMPv6ND_RA(ra.ra_bytes(params))
    assert (r.H, r.routerlifetime) == (int(ha), router_lifetime)
    assert r[ICMPv6NDOptAdvInterval].advint == ra.advertisement_interval_ms(max_interval)
    assert r[ICMPv6NDOptPrefixInfo].validlifetime == valid
    assert bool(r[ICMPv6NDOptPrefixInfo].R) is ha
    if ha:
        assert (r[ICMPv6NDOptHAInfo].pref, r[ICMPv6NDOptHAInfo].lifetime) == (pref, lifetime)
    else:
        assert ICMPv6NDOptHAInfo not in r


def test_tshark_decodes_the_ra_as_asked() -> None:
    if not tshark.available():
        verdicts.not_run("tshark is missing", hint="apt-get install tshark")
    with_ha = ra.build_ra_packet(ha_params(), "fe80::1")
    without = ra.build_ra_packet(ha_params(ha=None, mtu=None), "fe80::1")
    f, g = tshark.dissect([with_ha, without])
    assert not tshark.malformed(f) and not tshark.malformed(g)
    assert f.first("icmpv6.checksum.status") == "1"  # scapy's checksum is right
    assert f.first("icmpv6.type") == "134" and f.first("icmpv6.nd.ra.cur_hop_limit") == "64"
    assert f.first("icmpv6.nd.ra.flag.h") == "1" and f.first("icmpv6.nd.ra.flag.prf") == "0"
    assert f.first("icmpv6.nd.ra.router_lifetime") == "30"
    assert f.ints("icmpv6.opt.type") == [1, 5, 3, 7, 8]
    assert f.first("icmpv6.opt.src_linkaddr") == MAC
    assert f.first("icmpv6.opt.mtu") == "1500"
    assert f.first("icmpv6.opt.prefix") == str(ROUTER)
    assert f.first("icmpv6.opt.prefix.length") == "64"
    flags = ("l", "a", "r")
    assert [f.first(f"icmpv6.opt.prefix.flag.{x}") for x in flags] == ["1", "1", "1"]
    assert f.first("icmpv6.opt.prefix.valid_lifetime") == "2592000"
    assert f.first("icmpv6.opt.prefix.preferred_lifetime") == "604800"
    assert f.first("icmpv6.opt.advertisement_interval") == "120"
    # Wireshark 4.0 labels the lifetime field "Home Agent Preference" too; the name is right
    assert f.first("icmpv6.opt.home_agent_preference") == "7"
    assert f.first("icmpv6.opt.home_agent_lifetime") == "300"
    assert g.first("icmpv6.nd.ra.flag.h") == "0" and g.ints("icmpv6.opt.type") == [1, 3, 7]
    assert g.first("icmpv6.opt.prefix.flag.r") == "0" and g.first("icmpv6.opt.prefix") == (
        "2001:db8:1::"
    )
    assert "icmpv6.opt.home_agent_preference" not in g


def _rs(hlim_ok: bool = True, slla: bool = False, src: str = "fe80::2") -> tuple:
    body = ICMPv6ND_RS(cksum=0)
    if slla:
        body = body / ICMPv6NDOptSrcLLAddr(lladdr=MAC)
    return bytes(body), 255 if hlim_ok else 64, src


def test_router_solicitation_validation() -> None:
    assert ra.valid_rs(*_rs()) is None
    assert ra.valid_rs(*_rs(slla=True)) is None
    assert ra.valid_rs(*_rs(hlim_ok=False)) == "hop limit 64, not 255"
    assert ra.valid_rs(bytes([133, 1]) + bytes(6), 255, "fe80::2") == "type 133 code 1"
    assert ra.valid_rs(bytes([133, 0]) + bytes(2), 255, "fe80::2") == "ICMP length 4 < 8"
    assert ra.valid_rs(bytes([133, 0]) + bytes(6) + bytes([1, 0]) + bytes(6), 255, "fe80::2") == (
        "an option of length 0"
    )
    assert ra.valid_rs(*_rs(slla=True, src="::")) == (
        "unspecified source with a Source Link-Layer Address option"
    )


# ----------------------------------------------------------------- namespace pair

_counter = itertools.count()


@dataclass
class Link:
    router: str  # namespace names
    host: str
    router_if: str = "ra0"
    host_if: str = "ho0"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def _sysctl(ns: str, *settings_: str) -> None:
    subprocess.run(
        netns.exec_argv(ns, ["sysctl", "-q", "-w", *settings_]),
        check=True,
        capture_output=True,
    )


def _wait_oper_up(ns: str, iface: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        out = subprocess.run(
            ["ip", "-n", ns, "-j", "link", "show", "dev", iface],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        if json.loads(out)[0].get("operstate") == "UP":
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"{iface} in {ns} not operationally up within {timeout} s")
        time.sleep(0.02)


def _wait_link_local(ns: str, iface: str, timeout: float = 5.0) -> None:
    """Carrier up is not enough: sending from the host needs its link-local address."""
    deadline = time.monotonic() + timeout
    while True:
        out = subprocess.run(
            ["ip", "-n", ns, "-j", "-6", "addr", "show", "dev", iface, "scope", "link"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        infos = [a for entry in json.loads(out or "[]") for a in entry.get("addr_info", [])]
        if any(not a.get("tentative") for a in infos):
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"{iface} in {ns} has no usable link-local address in {timeout} s")
        time.sleep(0.02)


@pytest.fixture
def link() -> Iterator[Link]:
    if os.geteuid() != 0:
        verdicts.not_run("network namespaces need root", hint="run the tests as root")
    if shutil.which("ip") is None:
        verdicts.not_run("iproute2's ip is missing", hint="apt-get install iproute2")
    registry.reap_pid_tagged(("dmmr-",))  # what a run killed with -9 left
    base = f"dmmr-{os.getpid()}-{next(_counter)}"
    ln = Link(base + "r", base + "h")
    try:
        _ip("netns", "add", ln.router)
        _ip("netns", "add", ln.host)
        _ip(
            "link",
            "add",
            ln.router_if,
            "netns",
            ln.router,
            "type",
            "veth",
            "peer",
            "name",
            ln.host_if,
            "netns",
            ln.host,
        )
        _sysctl(
            ln.router,
            "net.ipv6.conf.all.forwarding=1",
            f"net.ipv6.conf.{ln.router_if}.accept_dad=0",
        )
        # a host that learns from RAs but does not solicit on its own: the tests send RSs
        _sysctl(
            ln.host,
            f"net.ipv6.conf.{ln.host_if}.accept_dad=0",
            f"net.ipv6.conf.{ln.host_if}.accept_ra=1",
            f"net.ipv6.conf.{ln.host_if}.autoconf=1",
            f"net.ipv6.conf.{ln.host_if}.router_solicitations=0",
        )
        _ip("-n", ln.router, "link", "set", ln.router_if, "up")
        _ip("-n", ln.host, "link", "set", ln.host_if, "up")
        # the kernel drops what is sent before the carrier is seen up (linkwatch: up to 1 s)
        _wait_oper_up(ln.router, ln.router_if)
        _wait_oper_up(ln.host, ln.host_if)
        _wait_link_local(ln.router, ln.router_if)
        _wait_link_local(ln.host, ln.host_if)
        yield ln
    finally:
        for ns in (ln.router, ln.host):
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)


@dataclass
class Heard:
    at: float
    ra: ICMPv6ND_RA
    hlim: int | None
    src: str
    dst: str | None


class Listener:
    """The host's side: a raw socket that hears RAs and can send RSs."""

    def __init__(self, ln: Link) -> None:
        self.sock, self.ifindex = icmp6.open_icmpv6_socket(ln.host_if, [ra.ICMPV6_RA], ln.host)

    def close(self) -> None:
        self.sock.close()

    def next(self, timeout: float) -> Heard | None:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self.sock], [], [], remaining)
            if not ready:
                return None
            data, anc, _flags, addr = self.sock.recvmsg(65535, 256)
            now = time.monotonic()
            hlim, dst = None, None
            for level, kind, value in anc:
                if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_HOPLIMIT:
                    hlim = struct.unpack("@i", value[:4])[0]
                if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO:
                    dst = socket.inet_ntop(socket.AF_INET6, value[:16])
            return Heard(now, ICMPv6ND_RA(data), hlim, addr[0].split("%")[0], dst)

    def collect(self, duration: float) -> list[Heard]:
        out, deadline = [], time.monotonic() + duration
        while (h := self.next(deadline - time.monotonic())) is not None:
            out.append(h)
        return out

    def send_rs(self, hoplimit: int = 255) -> None:
        anc = [(socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT, struct.pack("@i", hoplimit))]
        self.sock.sendmsg([bytes(ICMPv6ND_RS(cksum=0))], anc, 0, ("ff02::2", 0, 0, self.ifindex))


@pytest.fixture
def listener(link: Link) -> Iterator[Listener]:
    lst = Listener(link)
    try:
        yield lst
    finally:
        lst.close()


@pytest.fixture
def advertisers() -> Iterator[list[advertiser.RouterAdvertiser]]:
    made: list[advertiser.RouterAdvertiser] = []
    try:
        yield made
    finally:
        for adv in made:
            adv.stop(final=False)


def _start(
    made: list[advertiser.RouterAdvertiser], ln: Link, **kw: object
) -> advertiser.RouterAdvertiser:
    params = kw.pop("params", ha_params(lladdr=None))
    adv = advertiser.RouterAdvertiser(ln.router_if, params, netns=ln.router, **kw)  # type: ignore[arg-type]
    made.append(adv)
    return adv.start(timeout=3.0)


def test_periodic_ras_arrive_within_the_interval(
    link: Link, listener: Listener, advertisers: list[advertiser.RouterAdvertiser]
) -> None:
    adv = _start(advertisers, link, min_interval=0.1, max_interval=0.2)
    heard = listener.collect(1.3)
    assert len(heard) >= 6, [h.at for h in heard]
    gaps = [b.at - a.at for a, b in itertools.pairwise(heard)]
    assert all(0.095 <= g <= 0.2 + 0.1 for g in gaps), gaps
    mac = icmp6.hardware_address(listener.sock, link.host_if)  # not the router's
    for h in heard:
        # RFC 4861 §4.2 / §6.1.2: hop limit 255, link-local source, all-nodes destination
        assert h.hlim == 255 and h.dst == "ff02::1"
        assert h.src == adv.source and h.src.startswith("fe80::")
        assert h.ra.H == 1 and h.ra[ICMPv6NDOptHAInfo].pref == 7
        slla = h.ra[ICMPv6NDOptSrcLLAddr].lladdr
        assert slla != mac and slla == adv.params.lladdr  # the router's own MAC
        assert h.ra[ICMPv6NDOptAdvInterval].advint == 200  # MaxRtrAdvInterval in ms
    assert not any(s.solicited for s in adv.sent)


def test_router_solicitation_is_answered_promptly(
    link: Link, listener: Listener, advertisers: list[advertiser.RouterAdvertiser]
) -> None:
    adv = _start(
        advertisers,
        link,
        min_interval=30,
        max_interval=40,
        max_ra_delay=0.05,
        min_delay_between_ras=0.03,
    )
    assert listener.next(2.0) is not None  # the first, unsolicited RA
    assert listener.next(0.3) is None  # then quiet: the next is 30..40 s away
    sent = time.monotonic()
    listener.send_rs()
    heard = listener.next(1.0)
    assert heard is not None, "no RA answered the RS within 1 s"
    assert heard.at - sent < 0.05 + 0.1
    assert heard.dst == "ff02::1" and heard.hlim == 255
    assert adv.wait_sent(2, 1.0)  # (the RA can be heard before its sender has logged it)
    assert adv.rs_received == 1 and adv.sent[1].solicited


def test_invalid_solicitation_is_ignored(
    link: Link, listener: Listener, advertisers: list[advertiser.RouterAdvertiser]
) -> None:
    # the failure path: an RS that fails RFC 4861 §6.1.1 (hop limit 64) gets no RA
    adv = _start(
        advertisers,
        link,
        min_interval=30,
        max_interval=40,
        max_ra_delay=0.05,
        min_delay_between_ras=0.03,
    )
    assert listener.next(2.0) is not None
    listener.send_rs(hoplimit=64)
    assert listener.next(0.4) is None
    assert adv.rs_received == 0 and any("hop limit 64" in r for r in adv.rs_invalid)
    listener.send_rs()  # and a valid one still works
    assert listener.next(1.0) is not None


def test_switching_ha_info_off_and_on(
    link: Link, listener: Listener, advertisers: list[advertiser.RouterAdvertiser]
) -> None:
    adv = _start(advertisers, link, min_interval=0.05, max_interval=0.08)
    heard = [listener.next(1.0) for _ in range(2)]
    assert all(h is not None and h.ra.H == 1 and ICMPv6NDOptHAInfo in h.ra for h in heard)
    adv.set_ha_info(False)
    before = adv.sent_count  # every RA after these carries the change
    received = len(heard)
    while received < before:  # what was sent before the switch
        assert listener.next(1.0) is not None
        received += 1
    h = listener.next(1.0)
    assert h is not None and h.ra.H == 0 and ICMPv6NDOptHAInfo not in h.ra
    assert h.ra[ICMPv6NDOptPrefixInfo].R == 0 and h.ra[ICMPv6NDOptPrefixInfo].prefix == (
        "2001:db8:1::"
    )
    adv.set_ha_info(True, preference=9, lifetime=60)
    before = adv.sent_count
    received += 1
    while received < before:
        assert listener.next(1.0) is not None
        received += 1
    h = listener.next(1.0)
    assert h is not None and h.ra.H == 1
    assert (h.ra[ICMPv6NDOptHAInfo].pref, h.ra[ICMPv6NDOptHAInfo].lifetime) == (9, 60)


def test_set_interval_takes_effect_and_stop_is_prompt(
    link: Link, listener: Listener, advertisers: list[advertiser.RouterAdvertiser]
) -> None:
    adv = _start(advertisers, link, min_interval=30, max_interval=40)
    assert listener.next(2.0) is not None
    assert listener.next(0.2) is None
    adv.set_interval(0.05, 0.07)  # rescheduled from the last RA: due at once
    h = listener.next(0.5)
    assert h is not None and h.ra[ICMPv6NDOptAdvInterval].advint == 90
    adv.set_interval(30, 40)
    listener.collect(0.1)  # drain
    started = time.monotonic()
    adv.stop()  # with the final RA
    assert time.monotonic() - started < 0.5
    final = listener.next(1.0)
    assert final is not None and final.ra.routerlifetime == 0 and final.ra.H == 0


def test_host_autoconfigures_from_the_ra(
    link: Link, advertisers: list[advertiser.RouterAdvertiser]
) -> None:
    from harness.lab.netns import NetNS  # no fork, unlike pyroute2's own NetNS

    adv = _start(advertisers, link, min_interval=0.05, max_interval=0.1)
    ns = NetNS(link.host)
    try:
        deadline = time.monotonic() + 3.0
        addrs: list[str] = []
        prefix_route = default = None
        while time.monotonic() < deadline:
            addrs = [
                a.get("IFA_ADDRESS")
                for a in ns.get_addr(family=socket.AF_INET6)
                if a["prefixlen"] == 64 and ipaddress.IPv6Address(a.get("IFA_ADDRESS")) in PREFIX
            ]
            routes = ns.get_routes(family=socket.AF_INET6)
            prefix_route = next(
                (r for r in routes if r.get("RTA_DST") == "2001:db8:1::" and r["dst_len"] == 64),
                None,
            )
            default = next((r for r in routes if r["dst_len"] == 0 and r.get("RTA_GATEWAY")), None)
            if addrs and prefix_route is not None and default is not None:
                break
            time.sleep(0.05)
    finally:
        ns.close()
    assert addrs, "no SLAAC address from the RA's prefix"
    assert prefix_route is not None  # proto kernel (2) or ra (9): whichever came first
    assert default is not None and default.get("RTA_GATEWAY") == adv.source
    assert default["proto"] == 9  # RTPROT_RA: learnt from the RA


def test_missing_interface_fails_fast(
    link: Link, advertisers: list[advertiser.RouterAdvertiser]
) -> None:
    adv = advertiser.RouterAdvertiser("nope0", ha_params(), netns=link.router, max_interval=1)
    advertisers.append(adv)
    started = time.monotonic()
    with pytest.raises(ra.RaError, match=f"no interface 'nope0' in namespace {link.router}"):
        adv.start(timeout=2.0)
    assert time.monotonic() - started < 1.0


def test_interface_without_link_local_fails_within_the_deadline(
    link: Link, advertisers: list[advertiser.RouterAdvertiser]
) -> None:
    _ip("-n", link.router, "link", "add", "down0", "type", "veth", "peer", "name", "down1")
    adv = advertiser.RouterAdvertiser("down0", ha_params(), netns=link.router, max_interval=1)
    advertisers.append(adv)
    started = time.monotonic()
    with pytest.raises(ra.RaError, match="no usable link-local address on down0 .* within 0.3 s"):
        adv.start(timeout=0.3)
    assert 0.3 <= time.monotonic() - started < 1.5


def test_missing_namespace_is_reported() -> None:
    adv = advertiser.RouterAdvertiser("x0", ha_params(), netns="dmmr-no-such-ns", max_interval=1)
    with pytest.raises(ra.RaError, match="network namespace 'dmmr-no-such-ns'"):
        adv.start(timeout=0.5)
