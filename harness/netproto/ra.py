"""Router Advertisements (RFC 4861 §4.2, §6.2; RFC 6275 §7): the message, sans-I/O.

:func:`build_ra` gives the RA an access router sends, as a scapy ``ICMPv6ND_RA`` with
its options: Source Link-Layer Address, MTU (optional), Prefix Information for the AR's
/64 (on-link, autonomous), the Advertisement Interval option (RFC 6275 §7.3) and, when
the AR's home agent is enabled, the H flag (§7.1), the Home Agent Information option
(§7.4) and the R flag with the HA's full address in the Prefix Information option
(§7.2). :func:`valid_rs` checks a Router Solicitation (§6.1.1). The router that sends
them is :class:`harness.netproto.advertiser.RouterAdvertiser`.

scapy 2.8's layouts were checked against the RFC figures: ``ICMPv6ND_RA`` has M, O, H
then RFC 4191's Prf (2 bits), P and 2 reserved bits; ``ICMPv6NDOptPrefixInfo`` has L, A,
R and 5 reserved bits; ``ICMPv6NDOptAdvInterval`` (type 7) and ``ICMPv6NDOptHAInfo``
(type 8) are Length 1 with a 16-bit Reserved, then a 32-bit interval (ms) or a 16-bit
preference and a 16-bit lifetime (s). They are right and used as they are, with two
defaults overridden: scapy's RA defaults to Prf = 1 ("High", RFC 4191), where a plain
RFC 4861 router sends 0 ("Medium"), and its HA lifetime to 1 s.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from scapy.layers.inet6 import (
    ICMPv6ND_RA,
    ICMPv6NDOptAdvInterval,
    ICMPv6NDOptDNSSL,
    ICMPv6NDOptHAInfo,
    ICMPv6NDOptMTU,
    ICMPv6NDOptPrefixInfo,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
)
from scapy.packet import Packet

if TYPE_CHECKING:
    from harness.lab.plan import AccessLink

# RFC 4861 §10 protocol constants (router)
MAX_INITIAL_RTR_ADVERT_INTERVAL = 16.0
MAX_INITIAL_RTR_ADVERTISEMENTS = 3
MAX_FINAL_RTR_ADVERTISEMENTS = 3
MIN_DELAY_BETWEEN_RAS = 3.0
MAX_RA_DELAY_TIME = 0.5
# RFC 4861 §6.2.1 defaults, and RFC 6275 §7.5's lowest allowed intervals
DEFAULT_MAX_RTR_ADV_INTERVAL = 600.0
MIN_MIN_RTR_ADV_INTERVAL = 0.03
MIN_MAX_RTR_ADV_INTERVAL = 0.07
MAX_ROUTER_LIFETIME = 9000
# RFC 4861 §6.2.1 AdvValidLifetime / AdvPreferredLifetime defaults
DEFAULT_VALID_LIFETIME = 2592000
DEFAULT_PREFERRED_LIFETIME = 604800

ALL_NODES = "ff02::1"
ALL_ROUTERS = "ff02::2"
ICMPV6_RS = 133
ICMPV6_RA = 134


class RaError(RuntimeError):
    """The advertiser cannot run (no such interface, no usable link-local address...)."""


# ---------------------------------------------------------------- building


@dataclass(frozen=True)
class HaInfo:
    """The home agent part of an RA (RFC 6275 §7.1, §7.4).

    ``lifetime`` None means the Router Lifetime (the option's default). ``option`` None
    sends the Home Agent Information option unless both values are the defaults (§7.4:
    it SHOULD NOT be sent then); True or False force it in or out (the H flag is set
    either way).
    """

    preference: int = 0
    lifetime: int | None = None
    option: bool | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.preference <= 0xFFFF:
            raise ValueError(f"home agent preference: 0..65535, not {self.preference}")
        if self.lifetime is not None and not 1 <= self.lifetime <= 0xFFFF:
            # §7.4: "A value of 0 MUST NOT be used"; the field is 16 bits of seconds
            raise ValueError(
                f"home agent lifetime: 1..65535 s (0 MUST NOT be used), not {self.lifetime}"
            )


@dataclass(frozen=True)
class RaParams:
    """What an access router advertises on its link."""

    prefix: ipaddress.IPv6Network
    router_address: ipaddress.IPv6Address | None = None  # its global address on the link
    lladdr: str | None = None  # Source Link-Layer Address option; None: left out
    ha: HaInfo | None = None  # None: not a home agent (H clear, no HA option)
    max_interval: float = DEFAULT_MAX_RTR_ADV_INTERVAL  # MaxRtrAdvInterval, seconds
    router_lifetime: int | None = None  # None: 3 x MaxRtrAdvInterval, at least 1 s
    cur_hop_limit: int = 64
    managed: bool = False
    other: bool = False
    reachable_time: int = 0
    retrans_timer: int = 0
    on_link: bool = True
    autonomous: bool = True
    valid_lifetime: int = DEFAULT_VALID_LIFETIME
    preferred_lifetime: int = DEFAULT_PREFERRED_LIFETIME
    advertise_router_address: bool = False  # R flag without being an HA (RFC 6275 §7.2 MAY)
    mtu: int | None = None
    adv_interval: bool = True  # send the Advertisement Interval option
    adv_interval_ms: int | None = None  # None: from max_interval (see advertisement_interval_ms)
    # RFC 8106 §5.2 DNS Search List option: the link's domains (OPEN-10: how an MN learns
    # the local domain during link establishment); none: left out
    dns_search: tuple[str, ...] = ()
    dns_search_lifetime: int | None = None  # None: 3 x MaxRtrAdvInterval (RFC 8106 §5.2)


def params_for_link(link: AccessLink, ha: HaInfo | None = HaInfo(), **changes: object) -> RaParams:
    """What the access router of `link` (the address plan's) advertises: its /64, and its
    router address with the R flag when its home agent is enabled (`ha`)."""
    params = RaParams(prefix=link.prefix6, router_address=link.router6, ha=ha)
    return replace(params, **changes)  # type: ignore[arg-type]


def advertisement_interval_ms(max_interval: float) -> int:
    """The Advertisement Interval value: MaxRtrAdvInterval in ms (RFC 6275 §7.3), plus
    20 ms when below 200 ms (§7.5: for scheduling granularity)."""
    ms = math.ceil(max_interval * 1000)
    return ms + 20 if ms < 200 else ms


def default_router_lifetime(max_interval: float) -> int:
    """AdvDefaultLifetime: 3 x MaxRtrAdvInterval (RFC 4861 §6.2.1), kept at >= 1 s (RFC 6275
    §7.5) and <= 9000 s."""
    return min(max(math.ceil(3 * max_interval), 1), MAX_ROUTER_LIFETIME)


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ValueError(f"{name}: {low}..{high}, not {value}")


def build_ra(params: RaParams) -> ICMPv6ND_RA:
    """The Router Advertisement (ICMPv6 message and options, no IPv6 header).

    The checksum is left 0: a raw ICMPv6 socket has the kernel compute it (RFC 3542
    §3.1); :func:`build_ra_packet` gives a whole packet with the checksum filled in.
    """
    p = params
    _check_range("cur hop limit", p.cur_hop_limit, 0, 255)
    _check_range("reachable time", p.reachable_time, 0, 0xFFFFFFFF)
    _check_range("retrans timer", p.retrans_timer, 0, 0xFFFFFFFF)
    _check_range("valid lifetime", p.valid_lifetime, 0, 0xFFFFFFFF)
    _check_range("preferred lifetime", p.preferred_lifetime, 0, 0xFFFFFFFF)
    if p.preferred_lifetime > p.valid_lifetime:
        raise ValueError(
            f"preferred lifetime {p.preferred_lifetime} exceeds valid lifetime {p.valid_lifetime}"
        )
    router_lifetime = (
        default_router_lifetime(p.max_interval) if p.router_lifetime is None else p.router_lifetime
    )
    _check_range("router lifetime", router_lifetime, 0, 0xFFFF)

    flag_r = p.ha is not None or p.advertise_router_address
    if flag_r:
        # §7.2: a home agent MUST include a Prefix Information option with R set, whose
        # Prefix field holds its complete address
        if p.router_address is None:
            raise ValueError("the R flag (a home agent's RA) needs router_address (RFC 6275 §7.2)")
        if p.router_address not in p.prefix:
            raise ValueError(f"router address {p.router_address} is not in {p.prefix}")
        prefix_field = str(p.router_address)
    else:
        prefix_field = str(p.prefix.network_address)

    ra = ICMPv6ND_RA(
        chlim=p.cur_hop_limit,
        M=int(p.managed),
        O=int(p.other),
        H=int(p.ha is not None),
        prf=0,  # RFC 4191 "Medium": scapy's default is 1 ("High")
        P=0,
        res=0,
        routerlifetime=router_lifetime,
        reachabletime=p.reachable_time,
        retranstimer=p.retrans_timer,
        cksum=0,
    )
    options: list[Packet] = []
    if p.lladdr is not None:
        options.append(ICMPv6NDOptSrcLLAddr(lladdr=p.lladdr))
    if p.mtu is not None:
        _check_range("MTU", p.mtu, 1280, 0xFFFFFFFF)
        options.append(ICMPv6NDOptMTU(mtu=p.mtu))
    options.append(
        ICMPv6NDOptPrefixInfo(
            prefixlen=p.prefix.prefixlen,
            L=int(p.on_link),
            A=int(p.autonomous),
            R=int(flag_r),
            res1=0,
            validlifetime=p.valid_lifetime,
            preferredlifetime=p.preferred_lifetime,
            res2=0,
            prefix=prefix_field,
        )
    )
    if p.adv_interval:
        ms = p.adv_interval_ms
        if ms is None:
            ms = advertisement_interval_ms(p.max_interval)
        _check_range("advertisement interval (ms)", ms, 0, 0xFFFFFFFF)
        options.append(ICMPv6NDOptAdvInterval(advint=ms))
    if p.ha is not None:
        lifetime = p.ha.lifetime if p.ha.lifetime is not None else router_lifetime
        defaults = p.ha.preference == 0 and lifetime == router_lifetime
        send = p.ha.option if p.ha.option is not None else not defaults
        if send:
            if lifetime == 0:  # Router Lifetime 0 as the option's default
                raise ValueError(
                    "home agent lifetime would be 0 (the Router Lifetime); give HaInfo.lifetime"
                )
            options.append(ICMPv6NDOptHAInfo(res=0, pref=p.ha.preference, lifetime=lifetime))
    if p.dns_search:
        dnssl_life = p.dns_search_lifetime
        if dnssl_life is None:
            dnssl_life = max(math.ceil(3 * p.max_interval), 1)
        _check_range("DNSSL lifetime", dnssl_life, 0, 0xFFFFFFFF)
        options.append(ICMPv6NDOptDNSSL(lifetime=dnssl_life, searchlist=list(p.dns_search)))
    for opt in options:
        ra = ra / opt
    return ra


def ra_bytes(params: RaParams) -> bytes:
    """The RA as the bytes a raw ICMPv6 socket sends (checksum 0, filled by the kernel)."""
    return bytes(build_ra(params))


def build_ra_packet(params: RaParams, src: str, dst: str = ALL_NODES) -> IPv6:
    """The RA in an IPv6 header (hop limit 255, RFC 4861 §4.2), checksum computed."""
    ra = build_ra(params)
    ra.cksum = None
    return IPv6(src=src, dst=dst, hlim=255) / ra


# ---------------------------------------------------------------- Router Solicitations


def valid_rs(data: bytes, hoplimit: int | None, src: str) -> str | None:
    """Why a Router Solicitation fails RFC 4861 §6.1.1 validation, or None if valid.
    (The kernel has already checked the ICMP checksum.)"""
    if hoplimit != 255:
        return f"hop limit {hoplimit}, not 255"
    if len(data) < 8:
        return f"ICMP length {len(data)} < 8"
    if data[0] != ICMPV6_RS or data[1] != 0:
        return f"type {data[0]} code {data[1]}"
    i, has_slla = 8, False
    while i < len(data):
        if i + 2 > len(data) or data[i + 1] == 0:
            return "an option of length 0"
        has_slla |= data[i] == 1
        i += 8 * data[i + 1]
    if i != len(data):
        return "options overrun the message"
    if src == "::" and has_slla:
        return "unspecified source with a Source Link-Layer Address option"
    return None
