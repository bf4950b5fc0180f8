"""A mobility world: the lab with a home agent on every access router, a mobile node, a
correspondent node and multicast sources, and the real applications that use them.

The MN suite, the interop suite, the handover state machine and the benchmark all stand on
it. Which side is the system under test is the caller's choice: the MN suite starts the
SUT mobile node among reference home agents; the interop run starts the reference on both
sides. Everything is judged from outside: the kernel's state of the MN (addresses), the
wire (captures), and what the applications report.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.apps.control import App
from harness.lab import netns
from harness.lab.topology import Lab
from harness.netproto import mld
from harness.sut import adapters
from harness.sut.profile import Placement, ProfileError
from harness.sut.profile import load as load_profile

MN_IFACE = "mn0"
ADDRESS_POLL = 0.01  # netlink has no cheap "wait for an address"; poll with a deadline
CN_PORT = 7000
MCAST_PORT = 5000
# The MLD querier timers of the lab's routers: short, so that a report the kernel sends in
# answer to a query comes within a second (RFC 3810 §9 timers, scaled down).
MLD_TIMERS = mld.Timers(query_interval=1.0, query_response_interval=0.2)


def ha_placement(lab: Lab, link: int, workdir: Path) -> Placement:
    """Where an HA runs in the lab: access router `link`'s namespace, its access link and
    uplink interfaces (the names topology.py gives them), and the key file of the lab's
    DNS server (RFC 5026 §9.5), written into its working directory."""
    from harness.servers.inlab import lab_tsig_key

    key_file = Path(workdir) / "dns-update.key"
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(lab_tsig_key(lab).named_conf())
    return Placement.for_ha(
        lab.plan,
        link,
        netns=lab.ns(f"ar{link}"),
        iface="acc0",
        uplink_iface="up0",
        workdir=workdir,
        tsig_key_file=str(key_file),
    )


def mobility_lab(ipv4_only: tuple[int, ...] = ()) -> Lab:
    """The lab for runs with a real mobile node: the MN forms its own addresses (the lab
    configures none on it), and the routers query MLD listeners every second; the access
    links in `ipv4_only` are IPv4-only behind a NAT (draft §8)."""
    return Lab(configure_addresses=False, mld_timers=MLD_TIMERS, ipv4_only=ipv4_only)


@dataclass
class World:
    lab: Lab
    workdir: Path
    home_agents: dict[int, adapters.SutAdapter] = field(default_factory=dict)
    mn: adapters.SutAdapter | None = None
    apps: list[App] = field(default_factory=list)
    moves: list[tuple[float, int]] = field(default_factory=list)  # (monotonic time, link)

    # ------------------------------------------------------------------ nodes

    def start_home_agents(
        self,
        sut: str = "reference",
        links: tuple[int, ...] = (),
        also: Callable[[World], object] | None = None,
        *,
        split: bool = False,
    ) -> None:
        """A home agent on each access router but the IPv4-only ones, all started at once
        (`sut`: "reference" or one HA profile, placed on every router in turn; `split`: with
        control and data planes apart, draft §9), and `also(self)` alongside (e.g. the
        mobile node)."""
        profile = None
        if sut != "reference":
            profile = load_profile(sut)
            if profile.role != "ha":
                raise ProfileError(f"profile {sut}: role {profile.role!r}, not 'ha'")

        def one(i: int) -> object:
            workdir = self.workdir / f"ha{i}"
            workdir.mkdir(parents=True, exist_ok=True)
            ha: adapters.ProfileSut
            if profile is None:
                ha = adapters.ReferenceSut("ha", workdir, placement=f"ar{i}")
            else:
                ha = adapters.ProfileSut(dataclasses.replace(profile, placement=f"ar{i}"), workdir)
            self.home_agents[i] = ha  # before start: close() stops it whatever happens
            ha.start(ha_placement(self.lab, i, workdir), split=split)
            return ha

        # an IPv4-only access link (draft §8) has no IPv6 for a home agent to serve on: its
        # router is the visited network's NAT gateway, never a home agent
        links = links or tuple(
            i for i in range(1, self.lab.n + 1) if i not in self.lab.plan.ipv4_only
        )
        with ThreadPoolExecutor(len(links) + 1) as pool:
            futures = [pool.submit(one, i) for i in links]
            if also is not None:
                futures.append(pool.submit(also, self))
            for future in futures:
                future.result()

    def start_mobile_node(
        self,
        sut: str = "reference",
        ifaces: tuple[str, ...] = (MN_IFACE,),
        flows: tuple[str, ...] = (),
        before_start: Callable[[adapters.SutAdapter], None] | None = None,
        ha_names: tuple[str, ...] = (),
    ) -> adapters.SutAdapter:
        """The SUT MN on `ifaces` (the later ones may not exist yet: interfaces the lab adds
        while it runs) with the flow policy `flows` ("IFACE=PORT"); `before_start` sees the
        adapter (its profile) before the SUT is started."""
        workdir = self.workdir / "mn"
        workdir.mkdir(parents=True, exist_ok=True)
        self.mn = adapters.open_sut(sut, "mn", workdir)
        if before_start is not None:
            before_start(self.mn)
        self.mn.start(
            Placement.for_mn(
                self.lab.plan,
                netns=self.lab.ns("mn"),
                ifaces=ifaces,
                workdir=workdir,
                flows=flows,
                ha_names=ha_names,
            )
        )
        return self.mn

    def stop_mobile_node(self) -> None:
        if self.mn is not None:
            self.mn.stop()
            self.mn = None

    # ------------------------------------------------------------------ MN state

    def mn_addresses(self, iface: str = MN_IFACE) -> list[ipaddress.IPv6Address]:
        """The MN's global IPv6 addresses on `iface`, from the kernel (not from the SUT)."""
        from pyroute2 import IPRoute

        with netns.entered(self.lab.ns("mn")), IPRoute() as ipr:
            try:
                index = ipr.link_lookup(ifname=iface)[0]
            except IndexError:
                return []
            out = []
            for msg in ipr.get_addr(family=10, index=index):
                addr = ipaddress.IPv6Address(msg.get_attr("IFA_ADDRESS"))
                if not addr.is_link_local:
                    out.append(addr)
            return out

    def mn_address(self, link: int, within: float = 5.0) -> ipaddress.IPv6Address:
        """Wait until the MN has formed an address in access link `link`'s prefix."""
        prefix = self.lab.plan.link(link).prefix6
        deadline = time.monotonic() + within
        while True:
            found = [a for a in self.mn_addresses() if a in prefix]
            if found:
                return found[0]
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the MN formed no address in {prefix} within {within:g} s "
                    f"(it has: {', '.join(map(str, self.mn_addresses())) or 'none'})"
                )
            time.sleep(ADDRESS_POLL)

    def move(self, link: int) -> float:
        """Handover of the MN's interface to access link `link`; the time of the move."""
        self.lab.move(MN_IFACE, link)
        now = time.monotonic()
        self.moves.append((now, link))
        return now

    # ------------------------------------------------------------------ applications

    def app(self, node: str, name: str, *args: str) -> App:
        app = App.in_lab(self.lab, node, name, *args)
        self.apps.append(app)
        app.wait_ready()
        return app

    def echo_server(self) -> App:
        return self.app("cn", "tcp_echo", "--port", str(CN_PORT))

    def session(self, interval: float = 0.05) -> App:
        """A TCP session from the MN to the CN (a real application's connection)."""
        return self._to_cn("tcp_session", interval)

    def udp_session(self, interval: float = 0.01) -> App:
        """A UDP flow from the MN to the CN's echo: unlike TCP, it keeps sending through
        losses, so it shows at once which path the MN's packets take."""
        return self._to_cn("udp_session", interval)

    def _to_cn(self, app: str, interval: float) -> App:
        cn = str(self.lab.plan.cn.host6)
        args = ("--connect", cn, "--port", str(CN_PORT), "--interval", str(interval))
        return self.app("mn", app, *args)

    def receiver(self, group: str, *sources: str, iface: str = MN_IFACE) -> App:
        """A receiving application on the MN, joined on `iface`. An IPv4 one keeps
        IP_MULTICAST_ALL on (Linux's default): the kernel matches an IPv4 socket's
        memberships by interface too, so without it a datagram that reaches the MN
        through another device (a mobile node's tunnel, draft §8) would reach no socket."""
        args = ["--group", group, "--port", str(MCAST_PORT), "--iface", iface]
        for s in sources:
            args += ["--source", s]
        if ipaddress.ip_address(group).version == 4:
            args.append("--multicast-all")
        return self.app("mn", "mcast_recv", *args)

    def source(self, node: str, group: str, rate: float = 100.0, stream: str = "") -> App:
        args = ["--group", group, "--port", str(MCAST_PORT), "--rate", str(rate)]
        if stream:
            args += ["--stream", stream]
        return self.app(node, "mcast_send", *args)

    def source_address(self, node: str) -> str:
        return str({"src": self.lab.plan.mcast_source.host6, "cdn": self.lab.plan.cdn6}[node])

    # ------------------------------------------------------------------ end

    def close(self) -> None:
        for app in reversed(self.apps):
            with contextlib.suppress(Exception):
                app.stop()
        self.apps.clear()
        self.stop_mobile_node()
        for ha in self.home_agents.values():
            with contextlib.suppress(Exception):
                ha.stop()
        self.home_agents.clear()


@contextlib.contextmanager
def world(lab: Lab, workdir: Path) -> Iterator[World]:
    w = World(lab, workdir)
    try:
        yield w
    finally:
        w.close()


def log_tail(sut: adapters.SutAdapter | None, chars: int = 3000) -> str:
    path: Any = sut.log_path if sut is not None else None
    if path is None:
        return ""
    with contextlib.suppress(OSError):
        return str(Path(path).read_text(errors="replace")[-chars:])
    return ""
