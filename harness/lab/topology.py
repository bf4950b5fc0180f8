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
for why and how, multicast.py for how the lab runs it. Its data path is the kernel's IPv6
multicast routing where the kernel has it, else a userspace forwarder (datapath.py;
`datapath=` or DMMCONF_DATAPATH forces one). The core's upstream is the `src` link (the
remote source), its downstream the AR uplinks and the other service links; each AR's
upstream is its uplink and its downstream its access link. The same process is each
router's IGMP proxy for IPv4 groups, always on the userspace forwarder.

Router Advertisements: each AR advertises its link's prefix on acc0 from a
harness.netproto.advertiser.RouterAdvertiser (a thread of the process that owns the lab,
adverts.py), as a home agent with the Home Agent Information option by default, every
0.33-1 s (RFC 4861's timers scaled by RA_SCALE); `lab.ra(i)` changes them while they run, e.g.
`lab.ra(2).set_ha_info(False)` so an MN on link 2 must bootstrap. They start once the
access interfaces are operationally up and stop before the namespaces go. The MN's
kernel ignores them by default (accept_ra 0 when the lab configures its addresses).

Loss: nftables in the switch namespace (`impair`, impair.py). Delay: not available (no
netem in this kernel; a userspace relay would be the way), `impair(delay=...)` says so.

The parts, each with one job, that `Lab` composes (its methods are theirs): nodes.py
(names, namespaces, interface indexes, the MN's interfaces), wiring.py (sysctls, links,
addresses), multicast.py (the MLD proxy process), adverts.py (the ARs' RAs), handover.py
(the MN's links), impair.py (loss), echo.py (ping).

Privileges: root (CAP_SYS_ADMIN + CAP_NET_ADMIN + CAP_NET_RAW). Without them `Lab.up()`
raises LabUnavailable naming what is missing and how to get it.

Rootless: a user without root runs everything inside a user namespace of their own, with
a private mount namespace whose /run is a fresh tmpfs (for /run/netns and the registry):

    unshare --user --map-root-user --net --mount \
        sh -c 'mount -t tmpfs tmpfs /run && exec "$@"' - \
        python -m pytest tests/integration/test_lab.py

Inside, the lab is built exactly as under root (namespaces, bridges, nftables, the MLD
proxy's multicast routing all work in namespaces owned by the user namespace); it
disappears with the outermost process, so nothing can be left behind for the reaper.
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from harness.lab import datapath as datapaths
from harness.lab import echo, netns, plan, registry
from harness.lab.adverts import RA_SCALE, Advertisers
from harness.lab.handover import Handover
from harness.lab.impair import Impairments
from harness.lab.multicast import MulticastRouting
from harness.lab.nodes import (
    SETTLE_TIMEOUT,
    LabError,
    LabUnavailable,
    Nodes,
    Unreachable,
    check_link,
)
from harness.lab.wiring import Wiring
from harness.netproto import advertiser, mld, ra

__all__ = ["Lab", "LabError", "LabUnavailable", "Timings", "Unreachable", "inspect"]

# What each AR's home agent advertises: the H flag, the R flag with its address and the
# Home Agent Information option, sent even with default values (RFC 6275 §7.4 allows
# leaving it out then; the lab wants it on the wire for tests to see and switch off).
HA_INFO = ra.HaInfo(option=True)


@dataclass
class Timings:
    up: float = 0.0
    down: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)


class Lab:
    """The default topology, built by `up()` (or `with Lab() as lab:`) and removed by `down()`.

    A thin composition of its parts (`where`, `wiring`, `multicast`, `advertisers`,
    `handover`, `impairment_rules`); its methods are theirs."""

    def __init__(
        self,
        the_plan: plan.Plan | None = None,
        *,
        access_routers: int | None = None,
        ipv4_only: Sequence[int] = (),
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
        ha_info: ra.HaInfo | None = HA_INFO,
        manual: bool = False,
    ) -> None:
        if the_plan is None:  # ipv4_only: access links that are IPv4-only behind a NAT
            the_plan = plan.build(access_routers or plan.DEFAULT_ACCESS_ROUTERS, ipv4_only)
        elif ipv4_only:
            raise ValueError("ipv4_only: give it to plan.build with the plan")
        for link in mn_links:
            check_link(len(the_plan.access), link)
        if len(mn_links) > len(the_plan.mn_iids):
            raise ValueError(f"at most {len(the_plan.mn_iids)} MN interfaces (plan.mn_iids)")
        where = Nodes(the_plan, runid or registry.new_runid("lab" if manual else None))
        self.plan, self.n, self.runid = where.plan, where.n, where.runid
        self.routers, self.nodes, self.mn = where.routers, where.nodes, where.mn
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
            ra.DEFAULT_MAX_RTR_ADV_INTERVAL * RA_SCALE
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
        self.timings = Timings()
        self.record: registry.RunRecord | None = None
        # The parts, each with one job
        self.where = where
        self.wiring = Wiring(
            where,
            configure_addresses=configure_addresses,
            mn_accept_ra=self.mn_accept_ra,
            mcast_snooping=mcast_snooping,
            initial_mn_links=self.initial_mn_links,
        )
        self.multicast = MulticastRouting(where, self.mld_timers)
        self.advertisers = Advertisers(where, self.ra_intervals, ha_info, manual)
        self.impairment_rules = Impairments(where)
        self.handover = Handover(where, self.wiring, self.impairment_rules)
        self._old_sigterm: Any = None
        self._is_up = False
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ names

    def ns(self, node: str) -> str:
        """The namespace name of a node ("mn", "ar1", "core", "sw", ...)."""
        return self.where.ns(node)

    @property
    def namespaces(self) -> dict[str, str]:
        return self.where.namespaces

    def ifindex(self, node: str, ifname: str) -> int:
        return self.where.ifindex(node, ifname)

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
            "ipv4_only": list(self.plan.ipv4_only),
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
            self.wiring.sysctls()
            phases["sysctls"] = time.perf_counter() - t
            t = time.perf_counter()
            self.wiring.links()
            phases["links"] = time.perf_counter() - t
            t = time.perf_counter()
            if self.multicast_routing:
                try:
                    self.datapath = datapaths.choose(self.datapath_request)
                except datapaths.DatapathUnavailable as exc:
                    raise LabUnavailable(str(exc)) from None
                self.multicast.start(self.record, self.datapath, self.manual)
            self.wiring.addresses()
            phases["addresses"] = time.perf_counter() - t
            t = time.perf_counter()
            if self.multicast_routing:
                self.multicast.wait_ready()
            phases["mldproxy"] = time.perf_counter() - t
            t = time.perf_counter()
            if self.router_advertisements:
                self.advertisers.start()
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

    # ---------------------------------------------------------------- RAs (adverts.py)

    @contextlib.contextmanager
    def advertiser_paused(self, link: int) -> Iterator[None]:
        """Access link `link`'s RAs stopped (no final RA) while a SUT on that AR sends its
        own; then a fresh advertiser with the same settings takes over."""
        with self.advertisers.paused(link):
            yield

    def ra(self, link: int) -> advertiser.RouterAdvertiser:
        """The RouterAdvertiser of access link `link`'s AR: `lab.ra(2).set_ha_info(False)`
        takes the home agent out of ar2's next RAs (reset() puts it back)."""
        return self.advertisers.get(link)

    # ------------------------------------------------------------ MLD proxy (multicast.py)

    def mcast_state(self) -> dict[str, Any]:
        """The MLD proxies' listener state, upstream memberships and MFC entries, by node."""
        return self.multicast.state()

    def mcast_trouble(self) -> str | None:
        """Why the lab's multicast routing is not to be trusted now (its proxy exited, does
        not answer, or raised), or None."""
        return self.multicast.trouble()

    def mld_query(self, link: int) -> None:
        """Make link's AR send an MLDv2 General Query now (listeners answer with reports)."""
        self.multicast.query(link)

    def release_multicast_routing(self, node: str) -> None:
        """Stop proxying on `node` (close its MRT6 socket), e.g. for a SUT that routes itself."""
        self.multicast.release(node)

    # ------------------------------------------------------------------ tear-down

    def down(self) -> None:
        """Remove everything this lab made. Safe to call twice, and on a half-built lab."""
        with self._lock:
            if self.record is None:
                return
            t0 = time.perf_counter()
            with contextlib.suppress(Exception):
                atexit.unregister(self.down)
            self.advertisers.stop()  # before their namespaces go
            self.multicast.stop()
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
        self.multicast.forget()

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
        return echo.ping(self.where, node, dst, timeout=timeout, ifname=ifname, src=src)

    # ---------------------------------------------------------- the MN's links (handover.py)

    def mn_links(self) -> dict[str, int | None]:
        """Each MN interface and the access link it is attached to (None: detached)."""
        return self.handover.mn_links()

    def bridge_ports(self, link: int) -> list[str]:
        """The ports of link's bridge, as the kernel has them."""
        return self.handover.bridge_ports(link)

    def attach(self, iface: str, link: int, timeout: float = SETTLE_TIMEOUT) -> float:
        """Attach a (detached) MN interface to an access link; moves it if it is elsewhere."""
        return self.handover.attach(iface, link, timeout)

    def move(self, iface: str, to_link: int, timeout: float = SETTLE_TIMEOUT) -> float:
        """Handover: carrier down, port to the new link's bridge, carrier up. Seconds taken."""
        return self.handover.move(iface, to_link, timeout)

    def detach(self, iface: str, timeout: float = SETTLE_TIMEOUT) -> float:
        """Take an MN interface off its link (carrier down, port out of the bridge)."""
        return self.handover.detach(iface, timeout)

    def attach_new(self, iface: str, link: int, timeout: float = SETTLE_TIMEOUT) -> float:
        """A new MN interface (a new veth) attached to an access link. Seconds taken."""
        return self.handover.attach_new(iface, link, timeout)

    def remove_iface(self, iface: str) -> None:
        """Delete an MN interface (and its bridge port) altogether."""
        self.handover.remove_iface(iface)

    # ------------------------------------------------------------ impairments (impair.py)

    @property
    def impairments(self) -> dict[int, float]:
        """The loss on each impaired access link (link -> share of frames dropped)."""
        return self.impairment_rules.loss

    def impair(self, link: int, loss: float = 0.0, delay: float | None = None) -> None:
        """Drop a share `loss` (0..1) of the frames crossing access link `link` (nftables)."""
        self.impairment_rules.set(link, loss, delay)

    def clear_impairments(self) -> None:
        self.impairment_rules.clear()

    # ------------------------------------------------------------------ whole-lab helpers

    def reset(self) -> None:
        """Back to the state after bring-up: no impairments, the MN's first interfaces
        attached where they started, the ones added since removed, the ARs' RAs as they
        were."""
        if self.impairments:
            self.clear_impairments()
        self.advertisers.reset()
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
        links, addresses = self.wiring.layout()
        return {
            "runid": self.runid,
            "namespaces": self.namespaces,
            "links": links,
            "addresses": addresses,
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
