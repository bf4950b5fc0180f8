"""The real servers inside a running Lab (harness.lab.topology): where each one goes.

* `lab_named(lab)`: named in the lab's `dns` namespace on plan.dns.host6/host4, serving
  the home domain with the plan's access routers as home agents (AAAA, A, the
  ``_mip6._ipv6`` SRV set, PTRs), updatable with the lab's TSIG key (`lab_tsig_key`):
  one key per lab, so that a home agent started before named (or across its restarts)
  holds the key every named of that lab accepts (RFC 5026 §9.5).
* `LabDhcp(lab)`: Kea DHCPv6 and DHCPv4 in the `dhcp` namespace, one subnet per access
  link, and a DHCPv6 relay (dhcrelay -6) in every access router, from its access link
  (acc0) to the server's unicast address through its uplink (up0). An Information-
  request an MN sends to ff02::1:2 on link i reaches Kea through ar i's relay, with
  ar i's address as link-address, and the Reply names ar i as home agent and link i's
  prefix as home prefix. A DHCPINFORM from the MN goes straight to the server's IPv4
  address (RFC 2131 §3.4), whose subnet Kea picks by ciaddr: no DHCPv4 relay needed.
* `visited_dhcp4(lab, link)`: on an IPv4-only access link (behind its AR's NAT, which the
  `dhcp` host cannot answer through), the visited network's own DHCPv4 server, as a NAT
  gateway has one: kea-dhcp4 in that AR on its access interface, leasing addresses from a
  pool (the MN's IPv4 care-of address, draft §8) with the AR as router, and answering a
  DHCPINFORM with OPTION_DSMIP6_HNINF naming the dual-stack home agent of the home link:
  its IPv6 address, its IPv4 address as an IPv4-embedded IPv6 address (RFC 6610 §3.4,
  RFC 6052), the home prefix and its FQDN.

The daemons run in the lab's namespaces, so they go with it: `Lab.down()` and the
reaper kill whatever is left in the namespaces they remove.
"""

from __future__ import annotations

import ipaddress
import time
from types import TracebackType
from typing import TYPE_CHECKING

from harness.servers.bind import DNS_PORT, NamedServer, TsigKey, ZoneData, home_agents
from harness.servers.kea import HomeNetworkInfo, KeaDhcp4Server, KeaDhcp6Server, LinkSubnet
from harness.servers.relay import DhcpRelay6
from harness.wire.dhcp import IPV4_EMBEDDING_WKP

if TYPE_CHECKING:
    from harness.lab.topology import Lab

DHCP_IFNAME = "eth0"  # the dhcp host's interface (topology.py)
RELAY_LOWER, RELAY_UPPER = "acc0", "up0"  # an AR's access and uplink interfaces


_LAB_KEYS: dict[str, TsigKey] = {}  # run id: the lab's DNS update key


def lab_tsig_key(lab: Lab) -> TsigKey:
    """The TSIG key the lab's named accepts for updates (made on first use, one per lab)."""
    return _LAB_KEYS.setdefault(lab.runid, TsigKey.generate())


def lab_named(
    lab: Lab, *, zone: ZoneData | None = None, port: int = DNS_PORT, key: TsigKey | None = None
) -> NamedServer:
    """named for the lab's home domain in its `dns` namespace, started (by default the
    zone names the plan's access routers as the home agents, and the key is the lab's)."""
    p = lab.plan
    if zone is None:
        zone = ZoneData(home_agents=home_agents(p), ns6=p.dns.host6, ns4=p.dns.host4)
    addresses: list[str | ipaddress.IPv4Address | ipaddress.IPv6Address] = [
        p.dns.host6,
        p.dns.host4,
    ]
    key = key or lab_tsig_key(lab)
    return NamedServer(lab.ns("dns"), addresses, zone=zone, port=port, key=key).start()


VISITED_POOL = (100, 199)  # host numbers leased on an IPv4-only link


def visited_home_info(lab: Lab, home: int = 1) -> HomeNetworkInfo:
    """The dual-stack home agent of access link `home`, as an IPv4-only link is told of it."""
    link = lab.plan.link(home)
    embedded = ipaddress.IPv6Address(int(IPV4_EMBEDDING_WKP.network_address) | int(link.router4))
    return HomeNetworkInfo(
        ha_addresses=(link.router6, embedded),
        home_prefixes=(link.prefix6,),
        ha_fqdns=(f"{link.ha_fqdn}.",),
    )


def visited_dhcp4(lab: Lab, link: int, *, home: int = 1) -> KeaDhcp4Server:
    """kea-dhcp4 for IPv4-only access link `link`, in its AR (not started)."""
    access = lab.plan.link(link)
    if not access.ipv4_only:
        raise ValueError(f"access link {link} is not IPv4-only")
    first, last = (access.subnet4[n] for n in VISITED_POOL)
    return KeaDhcp4Server(
        lab.ns(access.name),
        RELAY_LOWER,
        access.subnet4,
        info=visited_home_info(lab, home),
        pool=(str(first), str(last)),
        router=access.router4,
    )


class LabDhcp:
    """Kea (DHCPv6, DHCPv4) in the lab's `dhcp` namespace and a DHCPv6 relay per AR."""

    def __init__(self, lab: Lab, *, dhcp4: bool = True) -> None:
        p = lab.plan
        self.lab = lab
        self.v6 = KeaDhcp6Server(
            lab.ns("dhcp"),
            DHCP_IFNAME,
            p.dhcp.prefix6,
            unicast=p.dhcp.host6,
            links=[LinkSubnet.for_access_link(link, 6) for link in p.access],
        )
        self.v4 = (
            KeaDhcp4Server(
                lab.ns("dhcp"),
                DHCP_IFNAME,
                p.dhcp.subnet4,
                links=[LinkSubnet.for_access_link(link, 4) for link in p.access],
            )
            if dhcp4
            else None
        )
        self.relays = {
            link.index: DhcpRelay6(lab.ns(link.name), RELAY_LOWER, RELAY_UPPER, p.dhcp.host6)
            for link in p.access
        }
        self.startup_seconds: float | None = None

    def home_info(self, link: int) -> HomeNetworkInfo:
        """What a client on access link `link` is told."""
        return self.v6.info_for(self.lab.plan.link(link).router6)

    def start(self) -> LabDhcp:
        began = time.monotonic()
        try:
            self.v6.start()
            if self.v4 is not None:
                self.v4.start()
            for relay in self.relays.values():
                relay.start()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def stop(self) -> None:
        for relay in self.relays.values():
            relay.stop()
        if self.v4 is not None:
            self.v4.stop()
        self.v6.stop()

    def pids(self) -> list[int]:
        servers: list[DhcpRelay6 | KeaDhcp6Server | KeaDhcp4Server | None] = [
            self.v6,
            self.v4,
            *self.relays.values(),
        ]
        return [s.pid for s in servers if s is not None and s.pid is not None]

    def __enter__(self) -> LabDhcp:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


__all__ = ["LabDhcp", "lab_named", "lab_tsig_key", "visited_dhcp4", "visited_home_info"]
