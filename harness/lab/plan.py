"""The lab's address plan: the one place that says which node has which address.

Every pytest-xdist worker builds the same plan in its own namespaces (isolated, so the
addresses may repeat); only the names carry the run's prefix. Documentation prefixes
(RFC 3849, RFC 5737) and a DNS domain under example (RFC 2606) keep the lab off any real net.

    CN, mcast source (remote) --- core --- ar1 --- access1 (bridge) --- mn (+ local CDN source)
                          dns, dhcp ---'  '--- ar2 --- access2 (bridge)
                                          '--- ar3 --- access3 (bridge)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

DEFAULT_ACCESS_ROUTERS = 3
DOMAIN = "lab.example"  # the home domain of the DNS zone (RFC 5026 §5: _mip6._ipv6.<domain>)


@dataclass(frozen=True)
class AccessLink:
    index: int  # 1..N
    prefix6: ipaddress.IPv6Network  # the link's /64 (the AR's home network prefix)
    subnet4: ipaddress.IPv4Network  # its IPv4 subnet, for dual stack
    router6: ipaddress.IPv6Address  # the AR (and its HA) on this link
    router4: ipaddress.IPv4Address
    uplink6: ipaddress.IPv6Network  # AR <-> core
    core6: ipaddress.IPv6Address  # core's end of the uplink
    ar_uplink6: ipaddress.IPv6Address  # AR's end
    uplink4: ipaddress.IPv4Network
    core4: ipaddress.IPv4Address
    ar_uplink4: ipaddress.IPv4Address
    # An IPv4-only foreign network behind a NAT (draft §8, RFC 5555 §4.1): the AR speaks no
    # IPv6 on the link (no address, no RA, no MLD) and masquerades the subnet on its uplink,
    # which the core has no route to.
    ipv4_only: bool = False

    @property
    def name(self) -> str:
        return f"ar{self.index}"

    @property
    def ha_fqdn(self) -> str:
        return f"ha{self.index}.{DOMAIN}"

    @property
    def data_plane6(self) -> ipaddress.IPv6Address:
        """The address an HA on this link whose control and data planes are separate (draft
        §9) gives its data plane function: clear of the router (1), the MN's (0x100..) and
        the tester's home addresses (0x1000..)."""
        return self.prefix6[0xD0]


@dataclass(frozen=True)
class ServiceLink:
    """A stub link behind the core with one host on it (CN, sources, servers)."""

    name: str
    prefix6: ipaddress.IPv6Network
    host6: ipaddress.IPv6Address
    core6: ipaddress.IPv6Address
    subnet4: ipaddress.IPv4Network
    host4: ipaddress.IPv4Address
    core4: ipaddress.IPv4Address


def _service(name: str, n: int) -> ServiceLink:
    p6 = ipaddress.IPv6Network(f"2001:db8:{0xC0 + n:x}::/64")
    p4 = ipaddress.IPv4Network(f"198.51.100.{8 * n}/29")
    hosts4 = list(p4.hosts())
    return ServiceLink(name, p6, p6[0x10], p6[1], p4, hosts4[1], hosts4[0])


@dataclass(frozen=True)
class Plan:
    access: tuple[AccessLink, ...]
    cn: ServiceLink
    mcast_source: ServiceLink  # the multicast source behind the core
    dns: ServiceLink
    dhcp: ServiceLink
    # Multicast groups the sources send to (SSM and ASM), used by tests and the interop run.
    ssm_group6: ipaddress.IPv6Address = ipaddress.IPv6Address("ff3e::8000:1")
    asm_group6: ipaddress.IPv6Address = ipaddress.IPv6Address("ff0e::db8:1")
    ssm_group4: ipaddress.IPv4Address = ipaddress.IPv4Address("232.1.1.1")
    asm_group4: ipaddress.IPv4Address = ipaddress.IPv4Address("239.1.1.1")
    mn_iids: tuple[int, ...] = field(default=(0x100, 0x101, 0x102))  # MN interfaces' host parts
    cdn_iid: int = 0xCD  # the local CDN source on access link 1

    def link(self, index: int) -> AccessLink:
        return self.access[index - 1]

    def mn_address(self, link: int, interface: int = 0) -> ipaddress.IPv6Address:
        """The address the MN's interface forms on an access link (static IID: reproducible)."""
        return self.link(link).prefix6[self.mn_iids[interface]]

    def mn_address4(self, link: int, interface: int = 0) -> ipaddress.IPv4Address:
        """The MN interface's IPv4 address on an access link (dual stack, RFC 5555)."""
        return self.link(link).subnet4[100 + interface]

    @property
    def cdn6(self) -> ipaddress.IPv6Address:
        """The local CDN source (draft §1), a host on access link 1."""
        return self.link(1).prefix6[self.cdn_iid]

    @property
    def cdn4(self) -> ipaddress.IPv4Address:
        return self.link(1).subnet4[self.cdn_iid]

    def services(self) -> tuple[ServiceLink, ...]:
        return (self.cn, self.mcast_source, self.dns, self.dhcp)

    @property
    def ipv4_only(self) -> tuple[int, ...]:
        """The access links that are IPv4-only behind a NAT."""
        return tuple(link.index for link in self.access if link.ipv4_only)


def build(access_routers: int = DEFAULT_ACCESS_ROUTERS, ipv4_only: Iterable[int] = ()) -> Plan:
    """The plan of a lab with `access_routers` access links; those named in `ipv4_only`
    (2..N: link 1 is the home link) are IPv4-only behind a NAT."""
    if not 1 <= access_routers <= 15:
        raise ValueError(f"access routers: 1..15, not {access_routers}")
    v4_only = set(ipv4_only)
    if bad := sorted(i for i in v4_only if not 2 <= i <= access_routers):
        raise ValueError(
            f"IPv4-only links: 2..{access_routers} (link 1 is the home link), not {bad}"
        )
    links = []
    for i in range(1, access_routers + 1):
        p6 = ipaddress.IPv6Network(f"2001:db8:{i}::/64")
        p4 = ipaddress.IPv4Network(f"10.0.{i}.0/24")
        up6 = ipaddress.IPv6Network(f"2001:db8:f{i:03x}::/64")
        up4 = ipaddress.IPv4Network(f"10.255.{i}.0/30")
        links.append(
            AccessLink(
                i, p6, p4, p6[1], p4[1], up6, up6[1], up6[2], up4, up4[1], up4[2], i in v4_only
            )
        )
    return Plan(
        access=tuple(links),
        cn=_service("cn", 1),
        mcast_source=_service("src", 2),
        dns=_service("dns", 3),
        dhcp=_service("dhcp", 4),
    )
