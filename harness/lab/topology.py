"""The lab: the default topology of plan.py in network namespaces, handover, impairments.

    src (mcast source) -.                    ar1 [acc0]-p-ar1-.
    cn -----------------+- core [ar1..arN] - ar2 [acc0]-p-ar2-- sw: br1..brN -- p-mn0 - mn [mn0]
    dns, dhcp ----------'                    ar3 [acc0]-p-ar3-'           '---- p-cdn - cdn [eth0]

Namespaces are `dmm-<runid>-<node>` for node in mn, ar1..arN, core, cn, src, dns, dhcp,
cdn and sw. `sw` is the "switch": it holds one bridge per access link (br<i>), and every
interface on an access link (the AR's acc0, the MN's mn<k>, the CDN's eth0) is a veth
whose far end is a port of that bridge. A handover moves the MN's port from one bridge to
another with carrier down and up around it, exactly what the MN's kernel would see on a
real link change. Bridges do not snoop multicast by default (they flood like a hub, so
every listener on a link hears every group the AR forwards; `mcast_snooping=True` makes
them MLDv2-snooping queriers instead).

Interface names inside the namespaces: ARs `acc0` (access) and `up0` (uplink); the core
`ar<i>` towards each AR and `cn`, `src`, `dns`, `dhcp` towards the service hosts; hosts
`eth0`; the MN `mn0`, `mn1`, ...; in sw the bridges `br<i>` and the ports `p-<peer>`.
Addresses come from plan.py only. IPv6 addresses are added without DAD and accept_dad is
0 everywhere, so everything is usable the moment bring-up returns. Routers forward IPv6
and IPv4 and accept no RAs; the MN's accept_ra is a parameter (default 0 when the lab
configures the MN's addresses, else 1, the kernel's).

Multicast routing: every router (core, ARs) is an MLD proxy (RFC 4605); see mldproxy.py
for why and how. Its data path is the kernel's IPv6 multicast routing where the kernel has
it, else a userspace forwarder (datapath.py; `datapath=` or DMMCONF_DATAPATH forces one).
The core's upstream is the `src` link (the remote source), its downstream the AR
uplinks and the other service links; each AR's upstream is its uplink and its downstream
its access link. IPv4 multicast is not routed (no IGMP proxy yet).

Router Advertisements: each AR advertises its link's prefix on acc0 from a
harness.netproto.advertiser.RouterAdvertiser (a thread of the process that owns the lab), as a home
agent with the Home Agent Information option by default, every 0.33-1 s (RFC 4861's
timers scaled by RA_SCALE); `lab.ra(i)` changes them while they run, e.g.
`lab.ra(2).set_ha_info(False)` so an MN on link 2 must bootstrap. They start once the
access interfaces are operationally up and stop before the namespaces go. The MN's
kernel ignores them by default (accept_ra 0 when the lab configures its addresses).

Loss: nftables in the switch namespace (`impair`). Delay: not available (no netem in this
kernel; a userspace relay would be the way), `impair(delay=...)` says so.

Privileges: root (CAP_SYS_ADMIN + CAP_NET_ADMIN + CAP_NET_RAW). Without them `Lab.up()`
raises LabUnavailable naming what is missing and how to get it.

Rootless: a user without root runs everything inside a user namespace of their own, with
a private mount namespace whose /run is a fresh tmpfs (for /run/netns and the registry):

    unshare --user --map-root-user --net --mount \
        sh -c 'mount -t tmpfs tmpfs /run && exec "$@"' - python -m pytest tests/test_lab.py

Inside, the lab is built exactly as under root (namespaces, bridges, nftables, the MLD
proxy's multicast routing all work in namespaces owned by the user namespace); it
disappears with the outermost process, so nothing can be left behind for the reaper.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import errno
import ipaddress
import json
import os
import random
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from harness.lab import datapath as datapaths
from harness.lab import mldproxy, netns, plan, registry, rtnl
from harness.netproto import advertiser, mld, sockopts
from harness.netproto import ra as radv

IPv6 = ipaddress.IPv6Address

SERVICE_NODES = ("cn", "src", "dns", "dhcp")
MN_METRIC = 1024  # the MN's default route metric for mn0; mn<k> gets MN_METRIC + k
STOP_TIMEOUT = 1.0
SETTLE_TIMEOUT = 3.0  # link-state waits in handover
# The ARs' Router Advertisements run on RFC 4861's timers scaled down for tests:
# MaxRtrAdvInterval 600 s -> 1 s (MinRtrAdvInterval keeps its 0.33 ratio, Router
# Lifetime its 3 x MaxRtrAdvInterval), MAX_RA_DELAY_TIME 0.5 s -> ~1 ms.
RA_SCALE = 1 / 600
# What each AR's home agent advertises: the H flag, the R flag with its address and the
# Home Agent Information option, sent even with default values (RFC 6275 §7.4 allows
# leaving it out then; the lab wants it on the wire for tests to see and switch off).
HA_INFO = radv.HaInfo(option=True)
NFT_TABLE = "dmm_impair"


class LabUnavailable(RuntimeError):
    """The lab cannot be built here; `hint` says how to get what is missing."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class LabError(RuntimeError):
    """Something in the lab did not go as it should (a bug, or the kernel refused)."""


class Unreachable(LabError):
    """A probe got no answer within its deadline."""


@dataclass
class MnIface:
    name: str
    number: int  # index into plan.mn_iids: which host part its addresses use
    port: str  # its bridge port's name in sw
    link: int | None = None  # access link it is attached to, None when detached
    configured: int | None = None  # link whose addresses the Lab configured on it


@dataclass
class Timings:
    up: float = 0.0
    down: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)


def _mac(node_no: int, index: int) -> str:
    return f"02:dd:{node_no:02x}:00:{index >> 8 & 0xFF:02x}:{index & 0xFF:02x}"


class Lab:
    """The default topology, built by `up()` (or `with Lab() as lab:`) and removed by `down()`."""

    def __init__(
        self,
        the_plan: plan.Plan | None = None,
        *,
        access_routers: int | None = None,
        runid: str | None = None,
        mn_links: Sequence[int] = (1,),
        configure_addresses: bool = True,
        mn_accept_ra: int | None = None,
        mcast_snooping: bool = False,
        multicast_routing: bool = True,
        datapath: str | None = None,
        mld_timers: mld.Timers | None = None,
        router_advertisements: bool = True,
        ra_max_interval: float | None = None,
        ra_min_interval: float | None = None,
        ha_info: radv.HaInfo | None = HA_INFO,
        manual: bool = False,
    ) -> None:
        if the_plan is None:
            the_plan = plan.build(access_routers or plan.DEFAULT_ACCESS_ROUTERS)
        self.plan = the_plan
        self.n = len(the_plan.access)
        for link in mn_links:
            self._check_link(link)
        if len(mn_links) > len(the_plan.mn_iids):
            raise ValueError(f"at most {len(the_plan.mn_iids)} MN interfaces (plan.mn_iids)")
        self.runid = runid or registry.new_runid("lab" if manual else None)
        self.manual = manual
        self.configure_addresses = configure_addresses
        # The lab's static addresses and the kernel's SLAAC from the ARs' RAs would pile
        # up across handovers (old prefixes stay preferred for days): a lab that configures
        # the MN's addresses turns the kernel's RA processing off unless asked for.
        self.mn_accept_ra = (
            (0 if configure_addresses else 1) if mn_accept_ra is None else mn_accept_ra
        )
        # A manual lab outlives the process; the advertisers are threads of this process.
        self.router_advertisements = router_advertisements and not manual
        max_i = (
            radv.DEFAULT_MAX_RTR_ADV_INTERVAL * RA_SCALE
            if ra_max_interval is None
            else ra_max_interval
        )
        min_i = 0.33 * max_i if ra_min_interval is None else ra_min_interval
        advertiser.RouterAdvertiser.check_intervals(min_i, max_i)
        self.ra_intervals = (min_i, max_i)
        self.ha_info = ha_info
        self.mcast_snooping = mcast_snooping
        self.multicast_routing = multicast_routing
        # "kernel", "userspace" or None/"auto" (DMMCONF_DATAPATH, else what the kernel has):
        # resolved at up(), when the kernel is probed.
        self.datapath_request = datapath
        self.datapath: str | None = None
        if datapath is not None and datapath not in datapaths.CHOICES:
            raise ValueError(
                f"unknown multicast data path {datapath!r} ({', '.join(datapaths.CHOICES)})"
            )
        self.mld_timers = mld_timers or mld.Timers()
        self.initial_mn_links = tuple(mn_links)
        self.routers = [f"ar{i}" for i in range(1, self.n + 1)]
        self.nodes = ["sw", "core", *self.routers, *SERVICE_NODES, "cdn", "mn"]
        self.mn: dict[str, MnIface] = {}
        self.timings = Timings()
        self.impairments: dict[int, float] = {}
        self.record: registry.RunRecord | None = None
        self._ifindex: dict[tuple[str, str], int] = {}  # (node, ifname) -> ifindex
        self._peers: list[tuple[str, int]] = []  # veth ends created down, to bring up
        self._proxy: subprocess.Popen[bytes] | None = None
        self._proxy_control: str | None = None
        self._advertisers: dict[int, advertiser.RouterAdvertiser] = {}
        self._ra_params: dict[int, radv.RaParams] = {}
        self._old_sigterm: Any = None
        self._is_up = False
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ names

    def ns(self, node: str) -> str:
        """The namespace name of a node ("mn", "ar1", "core", "sw", ...)."""
        if node not in self.nodes:
            raise ValueError(f"no node {node!r} in this lab (nodes: {', '.join(self.nodes)})")
        return registry.ns_name(self.runid, node)

    @property
    def namespaces(self) -> dict[str, str]:
        return {node: self.ns(node) for node in self.nodes}

    def ifindex(self, node: str, ifname: str) -> int:
        key = (node, ifname)
        if key not in self._ifindex:
            self._ifindex[key] = netns.if_nametoindex(self.ns(node), ifname)
        return self._ifindex[key]

    def _check_link(self, link: int) -> None:
        if not 1 <= link <= self.n:
            raise ValueError(f"no access link {link} (links are 1..{self.n})")

    # ------------------------------------------------------------------ bring-up

    def __enter__(self) -> Lab:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()

    def up(self) -> Lab:
        """Build the topology; LabUnavailable when this machine cannot."""
        if self._is_up:
            return self
        missing = netns.missing_privileges()
        if missing:
            raise LabUnavailable(missing, hint=netns.PRIVILEGE_HINT)
        if shutil.which("nsenter") is None:
            raise LabUnavailable("nsenter is not installed", hint="apt-get install util-linux")
        t0 = time.perf_counter()
        try:
            registry.reap()
        except PermissionError as exc:
            raise LabUnavailable(
                f"cannot write the run registry ({exc})", hint=netns.PRIVILEGE_HINT
            ) from None
        self.record = registry.RunRecord.mine(
            self.runid, list(self.namespaces.values()), manual=self.manual
        )
        self.record.info = {
            "access_routers": self.n,
            "mn_links": list(self.initial_mn_links),
            "configure_addresses": self.configure_addresses,
        }
        self.record.save()
        self._trap_signals()
        phases = self.timings.phases
        try:
            t = time.perf_counter()
            for name in self.namespaces.values():
                netns.create(name)
            phases["namespaces"] = time.perf_counter() - t
            t = time.perf_counter()
            self._sysctls()
            phases["sysctls"] = time.perf_counter() - t
            t = time.perf_counter()
            self._links()
            phases["links"] = time.perf_counter() - t
            t = time.perf_counter()
            if self.multicast_routing:
                try:
                    self.datapath = datapaths.choose(self.datapath_request)
                except datapaths.DatapathUnavailable as exc:
                    raise LabUnavailable(str(exc)) from None
                self._start_proxy()
            self._addresses()
            phases["addresses"] = time.perf_counter() - t
            t = time.perf_counter()
            if self.multicast_routing:
                self._wait_proxy()
            phases["mldproxy"] = time.perf_counter() - t
            t = time.perf_counter()
            if self.router_advertisements:
                self._start_advertisers()
            phases["ra"] = time.perf_counter() - t
        except BaseException:
            self.down()
            raise
        self._is_up = True
        if not self.manual:
            atexit.register(self.down)
        self.timings.up = time.perf_counter() - t0
        return self

    def _trap_signals(self) -> None:
        """SIGTERM tears the lab down like Ctrl-C (unless someone else handles SIGTERM)."""
        if self.manual or threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return  # e.g. the reports plugin turns it into KeyboardInterrupt already

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            raise KeyboardInterrupt("SIGTERM")

        self._old_sigterm = signal.signal(signal.SIGTERM, on_sigterm)

    def _sysctls(self) -> None:
        common = {
            "net.ipv6.conf.all.accept_dad": 0,
            "net.ipv6.conf.default.accept_dad": 0,
        }
        router = {
            **common,
            "net.ipv6.conf.all.forwarding": 1,
            "net.ipv6.conf.default.forwarding": 1,
            "net.ipv6.conf.all.accept_ra": 0,
            "net.ipv6.conf.default.accept_ra": 0,
            "net.ipv4.ip_forward": 1,
            "net.ipv4.conf.all.rp_filter": 0,
            "net.ipv4.conf.default.rp_filter": 0,
        }
        host = {
            **common,
            "net.ipv6.conf.all.accept_ra": 0,
            "net.ipv6.conf.default.accept_ra": 0,
            "net.ipv4.ip_forward": 0,
        }
        mn = {
            **host,
            "net.ipv6.conf.all.accept_ra": self.mn_accept_ra,
            "net.ipv6.conf.default.accept_ra": self.mn_accept_ra,
            "net.ipv4.conf.all.rp_filter": 0,  # multi-homed: replies may come in elsewhere
            "net.ipv4.conf.default.rp_filter": 0,
        }
        switch = {  # the bridges are not hosts: no IPv6 of their own (no RS, MLD, NDP noise)
            "net.ipv6.conf.all.disable_ipv6": 1,
            "net.ipv6.conf.default.disable_ipv6": 1,
        }
        for node in self.nodes:
            if node == "sw":
                values: dict[str, int] = switch
            elif node == "core" or node in self.routers:
                values = router
            elif node == "mn":
                values = mn
            else:
                values = host
            with netns.entered(self.ns(node)):
                for key, value in values.items():
                    netns.write_sysctl(key, value)

    def _links(self) -> None:
        """Every link of the topology, each end created directly in its namespace, up."""
        fds = {
            node: os.open(netns.path(self.ns(node)), os.O_RDONLY | os.O_CLOEXEC)
            for node in self.nodes
        }
        numbers = {node: i for i, node in enumerate(self.nodes, start=1)}
        counters = dict.fromkeys(self.nodes, 1)  # lo is 1 in a new namespace

        def end(node: str, name: str, master: int | None = None, peer: bool = False) -> rtnl.End:
            counters[node] += 1
            index = counters[node]
            self._ifindex[(node, name)] = index
            if peer:  # created down: brought up by its namespace's batch in _addresses
                self._peers.append((node, index))
            return rtnl.End(name, fds[node], index, _mac(numbers[node], index), master, not peer)

        try:
            with rtnl.Rtnl() as nl:
                for i in range(1, self.n + 1):
                    counters["sw"] += 1
                    self._ifindex[("sw", f"br{i}")] = counters["sw"]
                    nl.add(
                        rtnl.new_bridge(
                            f"br{i}",
                            index=counters["sw"],
                            nsfd=fds["sw"],
                            mac=_mac(numbers["sw"], counters["sw"]),
                            mcast_snooping=self.mcast_snooping,
                        ),
                        f"bridge br{i}",
                    )
                for i in range(1, self.n + 1):
                    ar, br = f"ar{i}", self._ifindex[("sw", f"br{i}")]
                    nl.add(
                        rtnl.new_veth(end("sw", f"p-{ar}", br), end(ar, "acc0", peer=True)),
                        f"{ar} access link",
                    )
                    nl.add(
                        rtnl.new_veth(end(ar, "up0"), end("core", ar, peer=True)), f"{ar} uplink"
                    )
                for svc in SERVICE_NODES:
                    nl.add(
                        rtnl.new_veth(end(svc, "eth0"), end("core", svc, peer=True)), f"{svc} link"
                    )
                nl.add(
                    rtnl.new_veth(
                        end("sw", "p-cdn", self._ifindex[("sw", "br1")]),
                        end("cdn", "eth0", peer=True),
                    ),
                    "cdn link",
                )
                for k, link in enumerate(self.initial_mn_links):
                    iface = MnIface(f"mn{k}", k, f"p-mn{k}", link)
                    self.mn[iface.name] = iface
                    br = self._ifindex[("sw", f"br{link}")]
                    nl.add(
                        rtnl.new_veth(end("sw", iface.port, br), end("mn", iface.name, peer=True)),
                        f"MN {iface.name}",
                    )
                nl.commit()
        finally:
            for fd in fds.values():
                os.close(fd)

    def _addresses(self) -> None:
        p = self.plan
        batches: dict[str, list[tuple[rtnl.Msg, str]]] = {node: [] for node in self.nodes}

        def add(node: str, ifname: str, address: object, plen: int) -> None:
            batches[node].append(
                (
                    rtnl.addr(self._ifindex[(node, ifname)], address, plen),
                    f"address {address}/{plen} on {ifname}",
                )
            )

        def default(node: str, gw: object, metric: int | None = None) -> None:
            batches[node].append((rtnl.route(None, gateway=gw, metric=metric), f"default via {gw}"))

        for link in p.access:
            ar = link.name
            add(ar, "acc0", link.router6, link.prefix6.prefixlen)
            add(ar, "acc0", link.router4, link.subnet4.prefixlen)
            add(ar, "up0", link.ar_uplink6, link.uplink6.prefixlen)
            add(ar, "up0", link.ar_uplink4, link.uplink4.prefixlen)
            default(ar, link.core6)
            default(ar, link.core4)
            add("core", ar, link.core6, link.uplink6.prefixlen)
            add("core", ar, link.core4, link.uplink4.prefixlen)
            batches["core"].append(
                (rtnl.route(str(link.prefix6), gateway=link.ar_uplink6), f"route {link.prefix6}")
            )
            batches["core"].append(
                (rtnl.route(str(link.subnet4), gateway=link.ar_uplink4), f"route {link.subnet4}")
            )
        for svc in SERVICE_NODES:
            s = {"cn": p.cn, "src": p.mcast_source, "dns": p.dns, "dhcp": p.dhcp}[svc]
            add(svc, "eth0", s.host6, s.prefix6.prefixlen)
            add(svc, "eth0", s.host4, s.subnet4.prefixlen)
            default(svc, s.core6)
            default(svc, s.core4)
            add("core", svc, s.core6, s.prefix6.prefixlen)
            add("core", svc, s.core4, s.subnet4.prefixlen)
        l1 = p.link(1)
        add("cdn", "eth0", p.cdn6, l1.prefix6.prefixlen)
        add("cdn", "eth0", p.cdn4, l1.subnet4.prefixlen)
        default("cdn", l1.router6)
        default("cdn", l1.router4)
        for node in self.nodes:
            with rtnl.Rtnl(self.ns(node)) as nl:
                nl.add(rtnl.set_link(1, up=True), "lo up")
                for peer_node, index in self._peers:
                    if peer_node == node:
                        nl.add(rtnl.set_link(index, up=True), f"link {index} up")
                if node == "mn":
                    for iface in self.mn.values():
                        if self.configure_addresses and iface.link is not None:
                            self._mn_config(nl, iface, iface.link)
                for msg, what in batches[node]:
                    nl.add(msg, what)
                nl.commit()

    def _mn_config(self, nl: rtnl.Rtnl, iface: MnIface, link: int | None) -> None:
        """Queue on `nl` (in mn) the swap of iface's addresses and default routes to `link`.

        Deletions may find nothing to delete (commit with ENOENT/ESRCH/EADDRNOTAVAIL ignored).
        """
        index = self.ifindex("mn", iface.name)
        metric = MN_METRIC + iface.number
        n = iface.number
        old = iface.configured
        if old is not None and old != link:
            was = self.plan.link(old)
            for gw in (was.router6, was.router4):
                nl.add(
                    rtnl.route(None, gateway=gw, oif=index, metric=metric, delete=True),
                    f"delete default via {gw} on {iface.name}",
                )
            for address, plen in (
                (self.plan.mn_address(old, n), was.prefix6.prefixlen),
                (self.plan.mn_address4(old, n), was.subnet4.prefixlen),
            ):
                nl.add(rtnl.addr(index, address, plen, delete=True), f"delete {address}")
        if link is not None and old != link:
            new = self.plan.link(link)
            for address, plen in (
                (self.plan.mn_address(link, n), new.prefix6.prefixlen),
                (self.plan.mn_address4(link, n), new.subnet4.prefixlen),
            ):
                nl.add(rtnl.addr(index, address, plen), f"address {address} on {iface.name}")
            for gw in (new.router6, new.router4):
                nl.add(
                    rtnl.route(None, gateway=gw, oif=index, metric=metric),
                    f"default via {gw} on {iface.name}",
                )
        iface.configured = link

    # ------------------------------------------------------------------ RAs

    def _start_advertisers(self) -> None:
        """A RouterAdvertiser on each AR's access interface, once that interface is
        operationally up (before that the kernel drops what is sent on a veth, for up to
        about 1 s: the first RAs would be lost)."""
        for ar in self.routers:
            index = self.ifindex(ar, "acc0")
            with rtnl.LinkWatch(self.ns(ar)) as watch:
                watch.wait(
                    index,
                    lambda s: s.operstate == "up",
                    SETTLE_TIMEOUT,
                    current=self._current(ar, index),
                )
        min_i, max_i = self.ra_intervals
        for link in self.plan.access:
            params = radv.params_for_link(link, ha=self.ha_info, max_interval=max_i)
            adv = advertiser.RouterAdvertiser(
                "acc0",
                params,
                netns=self.ns(link.name),
                min_interval=min_i,
                max_interval=max_i,
                max_ra_delay=radv.MAX_RA_DELAY_TIME * RA_SCALE,
                final_ra=False,  # tear-down: nobody is left to hear it
                name=f"ra-{self.runid}-{link.name}",
            )
            self._advertisers[link.index] = adv
            self._ra_params[link.index] = params
            adv.start(timeout=SETTLE_TIMEOUT)

    @contextlib.contextmanager
    def advertiser_paused(self, link: int) -> Iterator[None]:
        """Access link `link`'s RAs stopped (no final RA) while a SUT on that AR sends its
        own; then a fresh advertiser with the same settings takes over (a stopped one
        cannot start again). A lab without advertisers is left as it is."""
        if link not in self._advertisers:
            yield
            return
        adv = self._advertisers[link]
        adv.stop(final=False)
        try:
            yield
        finally:
            fresh = advertiser.RouterAdvertiser(
                adv.iface,
                adv.params,
                netns=adv.netns,
                min_interval=adv.min_interval,
                max_interval=adv.max_interval,
                jitter=adv.jitter,
                max_ra_delay=adv.max_ra_delay,
                final_ra=adv.final_ra,
                name=adv.name,
            )
            self._advertisers[link] = fresh.start(timeout=SETTLE_TIMEOUT)

    def ra(self, link: int) -> advertiser.RouterAdvertiser:
        """The RouterAdvertiser of access link `link`'s AR: `lab.ra(2).set_ha_info(False)`
        takes the home agent out of ar2's next RAs (reset() puts it back)."""
        self._check_link(link)
        if link not in self._advertisers:
            why = "a manual lab has none" if self.manual else "router_advertisements=False"
            raise LabError(f"no Router Advertisements in this lab ({why})")
        return self._advertisers[link]

    def _stop_advertisers(self) -> None:
        for adv in self._advertisers.values():
            with contextlib.suppress(radv.RaError):
                adv.stop(final=False)
        self._advertisers.clear()

    def _reset_advertisers(self) -> None:
        min_i, max_i = self.ra_intervals
        for index, adv in self._advertisers.items():
            if (adv.min_interval, adv.max_interval) != (min_i, max_i):
                adv.set_interval(min_i, max_i)
            now = adv.params
            want = dataclasses.replace(
                self._ra_params[index], max_interval=now.max_interval, lladdr=now.lladdr
            )
            if now != want:
                changes = {
                    f.name: getattr(want, f.name)
                    for f in dataclasses.fields(want)
                    if f.name != "max_interval"
                }
                adv.set_params(**changes)

    # ------------------------------------------------------------------ MLD proxy

    def _proxy_config(self) -> dict[str, Any]:
        routers = [
            {
                "ns": self.ns("core"),
                "upstream": "src",
                "downstream": [*self.routers, "cn", "dns", "dhcp"],
            }
        ]
        routers += [
            {"ns": self.ns(ar), "upstream": "up0", "downstream": ["acc0"]} for ar in self.routers
        ]
        t = self.mld_timers
        return {
            "datapath": self.datapath,
            "routers": routers,
            "timers": {
                "query_interval": t.query_interval,
                "query_response_interval": t.query_response_interval,
                "robustness": t.robustness,
                "last_listener_query_interval": t.last_listener_query_interval,
            },
        }

    def _start_proxy(self) -> None:
        assert self.record is not None
        base = registry.REGISTRY_DIR / self.runid
        config = self._proxy_config()
        self._proxy_control = f"{base}.mld.sock"
        config["control"] = self._proxy_control
        if not self.manual:
            config["parent_pid"] = os.getpid()
        cfg_path, log_path = f"{base}.mldproxy.json", f"{base}.mldproxy.log"
        with open(cfg_path, "w", encoding="utf-8") as f:
            json.dump(config, f, indent=1)
        self.record.files += [cfg_path, log_path, self._proxy_control]
        with open(log_path, "ab") as log:
            self._proxy = subprocess.Popen(
                [sys.executable, "-m", "harness.lab.mldproxy", cfg_path],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,  # a terminal's Ctrl-C reaches the lab, which stops it
                close_fds=True,
            )
        pid = self._proxy.pid
        self.record.helpers.append(registry.Helper(pid, registry.process_start(pid), "mldproxy"))
        self.record.save()

    def _wait_proxy(self, timeout: float = 5.0) -> None:
        assert self._proxy is not None and self._proxy.stdout is not None
        out = self._proxy.stdout
        ready = select.select([out], [], [], timeout)[0]
        line = out.readline() if ready else b""
        out.close()
        if line.strip() != b"ready":
            self._proxy.kill()
            self._proxy.wait()
            log = f"{registry.REGISTRY_DIR / self.runid}.mldproxy.log"
            try:
                with open(log, encoding="utf-8", errors="replace") as f:
                    tail = f.read()[-2000:]
            except OSError:
                tail = ""
            why = "did not start in time" if not ready else "failed"
            raise LabError(f"the MLD proxy {why}: {tail.strip() or 'no output'}")

    def mcast_state(self) -> dict[str, Any]:
        """The MLD proxies' listener state, upstream memberships and MFC entries, by node."""
        reply = self._proxy_request({"op": "state"})
        by_ns = {v: k for k, v in self.namespaces.items()}
        return {by_ns.get(ns, ns): st for ns, st in reply["routers"].items()}

    def mld_query(self, link: int) -> None:
        """Make link's AR send an MLDv2 General Query now (listeners answer with reports)."""
        self._check_link(link)
        self._proxy_request({"op": "query", "ns": self.ns(f"ar{link}"), "ifname": "acc0"})

    def release_multicast_routing(self, node: str) -> None:
        """Stop proxying on `node` (close its MRT6 socket), e.g. for a SUT that routes itself."""
        self._proxy_request({"op": "release", "ns": self.ns(node)})

    def _proxy_request(self, req: dict[str, Any]) -> dict[str, Any]:
        if self._proxy_control is None:
            raise LabError("multicast routing is off in this lab (multicast_routing=False)")
        reply = mldproxy.request(self._proxy_control, req)
        if not reply.get("ok"):
            raise LabError(f"MLD proxy: {reply.get('error')}")
        return reply

    # ------------------------------------------------------------------ tear-down

    def down(self) -> None:
        """Remove everything this lab made. Safe to call twice, and on a half-built lab."""
        with self._lock:
            if self.record is None:
                return
            t0 = time.perf_counter()
            with contextlib.suppress(Exception):
                atexit.unregister(self.down)
            self._stop_advertisers()  # before their namespaces go
            if self._proxy is not None:
                with contextlib.suppress(ProcessLookupError):
                    self._proxy.terminate()
                try:
                    self._proxy.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self._proxy.kill()
                    self._proxy.wait()
                self._proxy = None
            registry.destroy(self.record)
            self.record = None
            self._is_up = False
            if self._old_sigterm is not None:
                with contextlib.suppress(ValueError):  # not the main thread any more
                    signal.signal(signal.SIGTERM, self._old_sigterm)
                self._old_sigterm = None
            self.timings.down = time.perf_counter() - t0

    def keep(self) -> None:
        """Leave the lab up after this process exits (`dmmconf lab up`)."""
        with contextlib.suppress(Exception):
            atexit.unregister(self.down)
        self.record = None  # down() is now a no-op here; `dmmconf lab down` removes it
        self._proxy = None

    # ------------------------------------------------------------------ inside the nodes

    def socket(
        self,
        node: str,
        family: int = socket.AF_INET6,
        type: int = socket.SOCK_DGRAM,  # noqa: A002
        proto: int = 0,
    ) -> socket.socket:
        """A socket created in node's namespace (it stays there, usable from any thread)."""
        return netns.socket_in(self.ns(node), family, type, proto)

    def run_in(self, node: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """fn(*args, **kwargs) with the calling thread in node's namespace."""
        return netns.run_in(self.ns(node), fn, *args, **kwargs)

    def ipr(self, node: str, **kwargs: Any) -> Any:
        """A pyroute2 IPRoute bound to node's namespace (close it after use)."""
        return netns.NetNS(self.ns(node), **kwargs)

    def exec_in(self, node: str, argv: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen[Any]:
        """Start a program inside node's namespace (subprocess.Popen arguments apply)."""
        return netns.exec_in(self.ns(node), argv, **popen_kwargs)

    def ping(
        self,
        node: str,
        dst: object,
        *,
        timeout: float = 2.0,
        ifname: str | None = None,
        src: object | None = None,
    ) -> float:
        """ICMP(v6) echo from node to dst; the round-trip time, or Unreachable."""
        ip = ipaddress.ip_address(str(dst))
        dest: tuple[Any, ...] = (str(ip), 0)
        if isinstance(ip, IPv6) and ip.scope_id:  # fe80::1%mn0: the scope is node's mn0
            scope = ip.scope_id
            index = int(scope) if scope.isdigit() else self.ifindex(node, scope)
            dest = (str(ip).split("%")[0], 0, 0, index)
        if ip.version == 6:
            sock = self.socket(node, socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
            # Only Echo Replies (type 129) get through (struct icmp6_filter: set bit = block).
            sock.setsockopt(socket.IPPROTO_ICMPV6, 1, sockopts.icmp6_filter({129}))
        else:
            sock = self.socket(node, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        with sock:
            if ifname:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
            if src is not None:
                sock.bind((str(src), 0))
            from harness.wire.compact import internet_checksum  # late: scapy-free path

            ident, deadline = random.randrange(1, 0xFFFF), time.monotonic() + timeout
            seq = 0
            while time.monotonic() < deadline:
                seq += 1
                sent = time.monotonic()
                if ip.version == 6:
                    pkt = struct.pack("!BBHHH", 128, 0, 0, ident, seq) + b"dmmconf"
                else:
                    body = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + b"dmmconf"
                    pkt = body[:2] + struct.pack("!H", internet_checksum(body)) + body[4:]
                with contextlib.suppress(OSError):  # no route yet / link down: retry
                    sock.sendto(pkt, dest)
                retry = min(sent + 0.2, deadline)
                while (left := retry - time.monotonic()) > 0:
                    if not select.select([sock], [], [], left)[0]:
                        break
                    data, peer = sock.recvfrom(2048)
                    if ip.version == 4:
                        data = data[(data[0] & 0x0F) * 4 :]
                        expect = 0
                    else:
                        expect = 129
                    if (
                        len(data) >= 8
                        and data[0] == expect
                        and struct.unpack_from("!H", data, 4)[0] == ident
                        and ipaddress.ip_address(peer[0].split("%")[0]).packed == ip.packed
                    ):
                        return time.monotonic() - sent
        raise Unreachable(f"{node} got no echo reply from {ip} within {timeout:.1f} s")

    # ------------------------------------------------------------------ the MN's links

    def mn_links(self) -> dict[str, int | None]:
        """Each MN interface and the access link it is attached to (None: detached)."""
        return {name: iface.link for name, iface in self.mn.items()}

    def bridge_ports(self, link: int) -> list[str]:
        """The ports of link's bridge, as the kernel has them."""
        self._check_link(link)
        with rtnl.Rtnl(self.ns("sw")) as nl:
            links = nl.links()
        br = self.ifindex("sw", f"br{link}")
        return sorted(s.name for s in links.values() if s.master == br)

    def _iface(self, name: str) -> MnIface:
        try:
            return self.mn[name]
        except KeyError:
            raise ValueError(
                f"no MN interface {name!r} (have {', '.join(self.mn) or 'none'})"
            ) from None

    def attach(self, iface: str, link: int, timeout: float = SETTLE_TIMEOUT) -> float:
        """Attach a (detached) MN interface to an access link; moves it if it is elsewhere."""
        self._check_link(link)
        i = self._iface(iface)
        if i.link is not None:
            return self.move(iface, link, timeout)
        return self._relink(i, link, timeout)

    def move(self, iface: str, to_link: int, timeout: float = SETTLE_TIMEOUT) -> float:
        """Handover: carrier down, port to the new link's bridge, carrier up. Seconds taken."""
        self._check_link(to_link)
        i = self._iface(iface)
        if i.link is None:
            raise LabError(f"{iface} is detached: attach() it first")
        return self._relink(i, to_link, timeout)

    def detach(self, iface: str, timeout: float = SETTLE_TIMEOUT) -> float:
        """Take an MN interface off its link (carrier down, port out of the bridge)."""
        return self._relink(self._iface(iface), None, timeout)

    def attach_new(self, iface: str, link: int, timeout: float = SETTLE_TIMEOUT) -> float:
        """A new MN interface (a new veth) attached to an access link. Seconds taken."""
        self._check_link(link)
        if iface in self.mn:
            raise LabError(f"the MN has an interface {iface!r} already")
        used = {i.number for i in self.mn.values()}
        free = [k for k in range(len(self.plan.mn_iids)) if k not in used]
        if not free:
            raise LabError(f"the plan has host parts for {len(self.plan.mn_iids)} MN interfaces")
        t0 = time.perf_counter()
        new = MnIface(iface, free[0], f"p-{iface}"[:15], link)
        br = self.ifindex("sw", f"br{link}")
        mac_no = self.nodes.index("mn") + 1
        with contextlib.ExitStack() as stack:
            fd_sw = os.open(netns.path(self.ns("sw")), os.O_RDONLY | os.O_CLOEXEC)
            stack.callback(os.close, fd_sw)
            fd_mn = os.open(netns.path(self.ns("mn")), os.O_RDONLY | os.O_CLOEXEC)
            stack.callback(os.close, fd_mn)
            watch = stack.enter_context(rtnl.LinkWatch(self.ns("mn")))
            with rtnl.Rtnl() as nl:
                nl.request(
                    rtnl.new_veth(
                        rtnl.End(new.port, fd_sw, 0, None, br),
                        rtnl.End(iface, fd_mn, 0, _mac(mac_no, 0x100 + new.number), up=False),
                    ),
                    f"MN interface {iface}",
                )
            self.mn[iface] = new
            index = self.ifindex("mn", iface)
            if self.impairments:
                self._apply_nft()
            with rtnl.Rtnl(self.ns("mn")) as nl:
                nl.request(rtnl.set_link(index, up=True), f"{iface} up")
            self._wait_carrier(watch, index, True, timeout)
        if self.configure_addresses:
            with rtnl.Rtnl(self.ns("mn")) as nl:
                self._mn_config(nl, new, link)
                nl.commit()
        return time.perf_counter() - t0

    def remove_iface(self, iface: str) -> None:
        """Delete an MN interface (and its bridge port) altogether."""
        i = self._iface(iface)
        with rtnl.Rtnl(self.ns("mn")) as nl:
            nl.request(
                rtnl.del_link(self.ifindex("mn", iface)), f"delete {iface}", ignore=(errno.ENODEV,)
            )
        del self.mn[iface]
        self._ifindex.pop(("mn", iface), None)
        self._ifindex.pop(("sw", i.port), None)

    def _current(self, node: str, index: int) -> rtnl.LinkState | None:
        with rtnl.Rtnl(self.ns(node)) as nl:
            return nl.links().get(index)

    def _wait_carrier(
        self, watch: rtnl.LinkWatch, index: int, carrier: bool, timeout: float
    ) -> None:
        def ok(s: rtnl.LinkState) -> bool:
            return s.carrier == carrier and (s.operstate == "up") == carrier

        watch.wait(index, ok, timeout, current=self._current("mn", index))

    def _relink(self, i: MnIface, link: int | None, timeout: float) -> float:
        """Carrier down, change of bridge (or none), carrier up; all as the MN sees it."""
        t0 = time.perf_counter()
        port = self.ifindex("sw", i.port)
        mn_index = self.ifindex("mn", i.name)
        with rtnl.LinkWatch(self.ns("mn")) as watch, rtnl.Rtnl(self.ns("sw")) as sw:
            if i.link is not None:
                sw.request(rtnl.set_link(port, up=False), f"{i.port} down")
                self._wait_carrier(watch, mn_index, False, timeout)
            master = 0 if link is None else self.ifindex("sw", f"br{link}")
            sw.request(rtnl.set_link(port, master=master), f"{i.port} to br{link}")
            i.link = link
            if self.configure_addresses:
                with rtnl.Rtnl(self.ns("mn")) as mn:
                    self._mn_config(mn, i, link)
                    mn.commit(ignore=(errno.ESRCH, errno.ENOENT, errno.EADDRNOTAVAIL))
            if self.impairments:  # before carrier is back: no frame slips through
                self._apply_nft()
            if link is not None:
                sw.request(rtnl.set_link(port, up=True), f"{i.port} up")
                self._wait_carrier(watch, mn_index, True, timeout)
        return time.perf_counter() - t0

    # ------------------------------------------------------------------ impairments

    def impair(self, link: int, loss: float = 0.0, delay: float | None = None) -> None:
        """Drop a share `loss` (0..1) of the frames crossing access link `link` (nftables)."""
        self._check_link(link)
        if delay:
            raise NotImplementedError(
                "delay: this kernel has no netem (CONFIG_NET_SCH_NETEM is not set), and "
                "nftables cannot hold packets back; a userspace relay on the link would be "
                "the way, and it is not built"
            )
        if not 0.0 <= loss <= 1.0:
            raise ValueError(f"loss is a share between 0 and 1, not {loss}")
        if loss == 0.0:
            self.impairments.pop(link, None)
        else:
            self.impairments[link] = loss
        self._apply_nft()

    def clear_impairments(self) -> None:
        self.impairments.clear()
        self._apply_nft()

    def _apply_nft(self) -> None:
        nft = shutil.which("nft", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"]))
        if nft is None:
            raise LabUnavailable("nft (nftables) is not installed", hint="apt-get install nftables")
        # Create-then-delete makes the delete safe when the table is not there; the whole
        # script is one transaction, so the new rules replace the old ones atomically.
        script = [f"table bridge {NFT_TABLE} {{}}", f"delete table bridge {NFT_TABLE}"]
        if self.impairments:
            # The kernel lacks `meta ibrname` (CONFIG_NFT_BRIDGE_META), so the rule names
            # the link's ports; the MN's port moves, so handovers rewrite the rules.
            with rtnl.Rtnl(self.ns("sw")) as nl:
                links = nl.links()
            rules = []
            for link, loss in sorted(self.impairments.items()):
                br = self.ifindex("sw", f"br{link}")
                ports = sorted(f'"{s.name}"' for s in links.values() if s.master == br)
                if not ports:
                    continue
                match = f"iifname {{ {', '.join(ports)} }}"
                if loss >= 1.0:
                    rules.append(f"{match} counter drop")
                else:
                    share = round(loss * 1_000_000)
                    rules.append(f"{match} numgen random mod 1000000 < {share} counter drop")
            script += [
                f"table bridge {NFT_TABLE} {{",
                "  chain forward {",
                "    type filter hook forward priority 0; policy accept;",
                *(f"    {rule}" for rule in rules),
                "  }",
                "}",
            ]
        res = netns.run(self.ns("sw"), [nft, "-f", "-"], input="\n".join(script) + "\n")
        if res.returncode != 0:
            raise LabError(f"nft refused the impairment rules: {res.stderr.strip()}")

    # ------------------------------------------------------------------ whole-lab helpers

    def reset(self) -> None:
        """Back to the state after bring-up: no impairments, the MN's first interfaces
        attached where they started, the ones added since removed, the ARs' RAs as they
        were."""
        if self.impairments:
            self.clear_impairments()
        self._reset_advertisers()
        for name in list(self.mn):
            iface = self.mn[name]
            if iface.number >= len(self.initial_mn_links) or iface.port != f"p-mn{iface.number}":
                self.remove_iface(name)
                continue
            want = self.initial_mn_links[iface.number]
            if iface.link != want:
                self.attach(name, want)

    def describe(self) -> dict[str, Any]:
        """What `dmmconf lab up` prints: namespaces, links, addresses, how to enter."""
        p = self.plan
        addrs: dict[str, list[str]] = {node: [] for node in self.nodes}
        links: list[str] = []
        for link in p.access:
            ar = link.name
            addrs[ar] += [
                f"acc0 {link.router6}/64 {link.router4}/{link.subnet4.prefixlen}",
                f"up0 {link.ar_uplink6}/64 {link.ar_uplink4}/30",
            ]
            addrs["core"].append(f"{ar} {link.core6}/64 {link.core4}/30")
            links += [
                f"{ar}:acc0 -- sw:p-{ar} (br{link.index}, access link {link.index}: "
                f"{link.prefix6} {link.subnet4})",
                f"{ar}:up0 -- core:{ar}",
            ]
        for svc, s in zip(SERVICE_NODES, p.services(), strict=True):
            addrs[svc].append(f"eth0 {s.host6}/64 {s.host4}/{s.subnet4.prefixlen}")
            addrs["core"].append(f"{svc} {s.core6}/64 {s.core4}/{s.subnet4.prefixlen}")
            links.append(f"{svc}:eth0 -- core:{svc} ({s.prefix6} {s.subnet4})")
        addrs["cdn"].append(f"eth0 {p.cdn6}/64 {p.cdn4}/24")
        links.append("cdn:eth0 -- sw:p-cdn (br1)")
        for iface in self.mn.values():
            where = f"br{iface.link}" if iface.link else "detached"
            links.append(f"mn:{iface.name} -- sw:{iface.port} ({where})")
            if iface.configured:
                addrs["mn"].append(
                    f"{iface.name} {p.mn_address(iface.configured, iface.number)}/64 "
                    f"{p.mn_address4(iface.configured, iface.number)}/24"
                )
        return {
            "runid": self.runid,
            "namespaces": self.namespaces,
            "links": links,
            "addresses": {k: v for k, v in addrs.items() if v},
            "multicast_routing": "MLD proxy (RFC 4605) in core and each AR, "
            f"{self.datapath} data path"
            if self.multicast_routing
            else "off",
            "router_advertisements": (
                f"every {self.ra_intervals[0]:g}-{self.ra_intervals[1]:g} s on each AR's acc0"
                + (", with the Home Agent Information option" if self.ha_info else "")
            )
            if self.router_advertisements
            else "off" + (" (a manual lab's would die with `lab up`)" if self.manual else ""),
            "enter": f"ip netns exec {self.ns('mn')} bash",
            "timings": {
                "up": round(self.timings.up, 3),
                **{k: round(v, 4) for k, v in self.timings.phases.items()},
            },
        }


def inspect(namespaces: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """The kernel's view of some namespaces: each link's state, master and addresses."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name in namespaces:
        if not netns.exists(name):
            out[name] = []
            continue
        with netns.NetNS(name) as ipr:
            names = {m["index"]: m.get_attr("IFLA_IFNAME") for m in ipr.get_links()}
            rows = []
            for m in ipr.get_links():
                master = m.get_attr("IFLA_MASTER")
                rows.append(
                    {
                        "ifname": m.get_attr("IFLA_IFNAME"),
                        "state": str(m.get_attr("IFLA_OPERSTATE")).lower(),
                        "carrier": bool(m.get_attr("IFLA_CARRIER")),
                        "mac": m.get_attr("IFLA_ADDRESS"),
                        "master": names.get(master) if master else None,
                        "addresses": [
                            f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}"
                            for a in ipr.get_addr(index=m["index"])
                        ],
                    }
                )
        out[name] = rows
    return out
