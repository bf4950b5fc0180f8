"""The reference Mobile Node's core (sans-I/O): draft §3 and §7 on top of RFC 6275 §11.

It is fed events (a Router Advertisement heard, a carrier change, the sessions and multicast
listening the daemon observed, a Binding Acknowledgement, the passing of time) and answers
with actions for the daemon (`harness/reference/mn_daemon.py`) to carry out. It never reads
a clock or touches a socket.

What it decides:

* The home agent cache (draft §3, §7): an entry per link whose RA carried a home agent
  (H flag, the router's address in an R-flag Prefix Information option, RFC 6275 §7.2);
  an entry lives for the Home Agent Lifetime (OPEN-1), except the first one, which is the
  home link's and never expires. Leaving a link without registering drops its entry.
* Movement (RFC 6275 §11.5.1): an RA with another prefix on an interface means a new link.
  The address formed there (prefix + the interface's identifier) is the care-of address and
  the address for new communication (draft §3: "uses this new address as its new Home
  Address").
* Which home agents need a binding (draft §3, §7, OPEN-15, INT-14): the one of the link left,
  when the address of that link still has a session (the daemon says which addresses do),
  or when multicast groups joined on that link are still listened to. Groups are
  attributed to the link on which they were joined: each binding carries the listener
  state of its own link's groups (draft §3 "all ongoing multicast group subscriptions",
  split by home agent so that no group arrives twice).
* Binding Updates (RFC 6275 §11.7.1): H and A set, a new sequence number for every BU
  (§11.8, including retransmissions), retransmission with exponential back-off
  (INITIAL_BINDACK_TIMEOUT, MAX_BINDACK_TIMEOUT, §13), status 135 answered with the HA's
  number plus one (§11.7.3), refresh before the granted lifetime ends (draft §7), a new BU
  when the listener state of a binding changes (INT-7), deregistration when its sessions
  end (draft §7 MAY; on by default), and deregistration when the MN returns to the link.
* Bootstrapping (draft §3, §7; RFC 5026 §5; RFC 6610 §4.1): on a new link whose RAs name
  no home agent, the MN asks for one: by DNS (AAAA of the configured HA name, else SRV
  ``_mip6._ipv6.<domain>``, RFC 5026 §5.1.1/§5.1.2) and/or by a DHCPv6 Information-request
  for the Unrestricted Home Network Information option (INT-10). Of the home agents it is
  told, it takes one on the link's own prefix (the one that can register the address formed
  there, draft §3: the new address is the new home address), else the first in the
  server's order (INT-17). The answer fills the home agent cache like an RA would.
* DNS (draft §3, §7; RFC 5026 §8.1): with an FQDN configured, a registration BU carries the
  DNS Update option (R clear, MN identity = the FQDN), and the deregistration of a home
  address no longer in use carries it with R set (OPEN-3).
* Several interfaces (draft §7.1, RFC 5648, RFC 6089): while a binding is in force and the
  MN has a care-of address on more than one interface, its BUs carry one BID option per
  interface (the BID and BID-PRI of the interface's rank: the first is preferred), each with
  its care-of address and no Alternate Care-of Address option (RFC 5648 §5.2), O set (§5.9),
  and a Flow Identification option for each configured flow policy whose interface is
  registered (RFC 6089 §5.2: every BU refreshes the whole flow binding state). A new
  interface that forms an address is registered at once, and again under its BID with its
  new care-of address when it moves to another link (RFC 5648 §5.1, §6.2). An interface that
  loses its link leaves the bindings (§5.4, §6.2); when it is the binding's own, the binding
  goes on from an interface that still has a care-of address in it.
* An IPv4-only link (draft §8, RFC 5555 §4.2-§4.4, INT-22): once DHCPv4 gave an IPv4
  care-of address (`ipv4_link`), the address of the link left is registered with that
  link's dual-stack home agent, at its IPv4 address, only while a session of it is open;
  the BU goes in UDP/IPv4 with the IPv4 Care-of Address option and the IPv4 Home Address
  option (0.0.0.0 until one is assigned). The BA's IPv4 Address Acknowledgement gives the
  IPv4 home address the MN then configures; behind a NAT the binding is refreshed at the
  NAT Detection option's refresh time (§4.3: the BU is the keepalive).
* The data plane follows the bindings: a home address leaves the air interface for the
  tunnel when the MN moves away, and the tunnel carries traffic only once the BA has
  come (draft §3: the BA "completes the registration").

Times: `now` and every deadline are in seconds of the daemon's clock. Binding lifetimes
are protocol time, multiplied by `time_scale` (the lab runs RFC timers 100 times faster);
the lifetimes that come from Router Advertisements are already real time (the lab's
routers advertise with short real intervals) and are not scaled.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, field
from enum import Enum

from harness.faults import NO_FAULTS, Fault, Faults
from harness.reference.multicast import GroupState, ListenerState

IPv6 = ipaddress.IPv6Address
IPv4 = ipaddress.IPv4Address
Prefix = ipaddress.IPv6Network
UNSPECIFIED4 = IPv4(0)  # the IPv4 Home Address option's request for a dynamic one
NO_KEEPALIVE = 0xFFFFFFFF  # a NAT Detection option's refresh time when none is needed

LIFETIME_UNIT = 4  # seconds per unit of the BU/BA Lifetime field (RFC 6275 §6.1.7)
STATUS_REJECTED = 128  # BA status >= 128: the BU was refused (RFC 6275 §6.1.8)
STATUS_SEQ_OUT_OF_WINDOW = 135


@dataclass(frozen=True)
class FlowPolicy:
    """A flow the MN binds to one of its interfaces (draft §7.1, RFC 6089): the UDP and TCP
    sessions with a correspondent's port `port` (INT-20). FID and FID-PRI come from its rank
    in the policy."""

    iface: str
    port: int


@dataclass(frozen=True)
class MNConfig:
    bu_lifetime: int = 100  # Lifetime field of registration BUs, 4 s units (RFC 6275 §6.1.7)
    time_scale: float = 1.0  # real seconds per protocol second
    refresh_share: float = 0.5  # refresh once this share of the granted lifetime has passed
    initial_bindack_timeout: float = 1.0  # RFC 6275 §13, protocol seconds
    max_bindack_timeout: float = 32.0
    min_timer: float = 0.25  # no scaled timer is shorter than this (real seconds)
    deregister: bool = True  # draft §7: MAY deregister when the sessions end
    multicast_is_session: bool = True  # INT-14: a subscription made on a link keeps its HA
    seed: int | None = None  # initial sequence numbers; None: unpredictable
    fqdn: str | None = None  # the MN's FQDN: DNS Update option in its BUs (RFC 5026 §8.1)
    dns_server: IPv6 | None = None  # bootstrapping by DNS (draft §7) when set
    domain: str | None = None  # for the SRV lookup by service name (RFC 5026 §5.1.2)
    ha_fqdn: str | None = None  # lookup by home agent name instead (RFC 5026 §5.1.1)
    dhcp: bool = False  # bootstrapping by stateless DHCPv6 (draft §7, RFC 6610)
    bootstrap_timeout: float = 1.0  # real seconds to a query's resend (RFC 8415 INF_TIMEOUT)
    bootstrap_tries: int = 4  # queries per server kind before the MN gives up on a link
    discovered_lifetime: float = 3600.0  # a discovered HA's cache entry without a DNS TTL (OPEN-1)
    flows: tuple[FlowPolicy, ...] = ()  # flows moved to an interface (RFC 6089)
    faults: Faults = NO_FAULTS  # deliberate faults for the kill matrices (harness/faults.py)

    def scaled(self, protocol_seconds: float) -> float:
        return max(self.min_timer, protocol_seconds * self.time_scale)

    @property
    def bootstraps(self) -> bool:
        return self.dns_server is not None or self.dhcp


@dataclass(frozen=True)
class RouterAdvert:
    """What the core needs of an RA (the daemon parses it)."""

    iface: str
    router: IPv6  # the link-local source: the default router
    prefix: Prefix  # the autonomous /64 of the link
    ha_address: IPv6 | None = None  # the router's global address (R flag) when H is set
    ha_lifetime: float | None = None  # Home Agent Lifetime (or Router Lifetime), seconds
    domains: tuple[str, ...] = ()  # the RA's DNS Search List (RFC 8106 §5.2; OPEN-10)


class Phase(Enum):
    REGISTERING = "registering"
    REGISTERED = "registered"
    DEREGISTERING = "deregistering"


@dataclass
class HomeAgentEntry:
    address: IPv6
    prefix: Prefix
    expires: float | None  # None: the home link's entry, which does not expire (draft §3)
    discovered: bool = False  # found by bootstrapping (draft §3, §7), not advertised


@dataclass
class Binding:
    hoa: IPv6
    prefix: Prefix  # the home link of this binding (the link the address was formed on)
    ha: IPv6
    coa: IPv6
    iface: str
    seq: int
    phase: Phase = Phase.REGISTERING
    multicast: ListenerState = field(default_factory=ListenerState)
    sent_at: float = 0.0
    timeout: float = 0.0  # retransmission interval now in force (real seconds)
    retransmit_at: float | None = None
    refresh_at: float | None = None
    expires_at: float | None = None
    acked_coa: IPv6 | None = None  # the CoA the HA last accepted: the tunnel's end
    forget_dns: bool = False  # its deregistration removes the DNS entry (draft §3)
    coa4: IPv4 | None = None  # an IPv4 care-of address: BUs in UDP/IPv4 (RFC 5555 §4.2)
    ha4: IPv4 | None = None  # the dual-stack home agent's IPv4 address they go to
    hoa4: IPv4 | None = None  # the IPv4 home address the HA assigned (RFC 5555 §3.2.1)
    keepalive: float | None = None  # the NAT binding's refresh time, real seconds (§4.3)
    flows_sent: bool = False  # a BU of it carried flow bindings (the flows-once fault)
    igmp_sent: bool = False  # its last BU gave the HA IPv4 groups (draft §8)
    sent_flows: tuple[tuple[int, IPv6], ...] = ()  # (port, CoA) of the last BU's flows
    acked_flows: tuple[tuple[int, IPv6], ...] = ()  # ... of the last BU the HA accepted
    # draft §9: the HA's data plane function, as its last accepting BA named it (INT-9):
    # the tunnel's end at the HA; BUs still go to `ha`, its control plane (DMM-CPDP-7)
    data_plane: IPv6 | None = None

    @property
    def tunnel_end(self) -> IPv6:
        """Where the tunnel ends at the HA: the data plane function the BA named, else the
        HA's own address."""
        return self.data_plane or self.ha


@dataclass(frozen=True)
class SrvTarget:
    """One SRV record of ``_mip6._ipv6.<domain>`` (RFC 2782)."""

    priority: int
    weight: int
    target: str  # absolute name, lower case


@dataclass(frozen=True)
class DnsAnswer:
    """What a DNS response said that bootstrapping uses (the daemon parses it)."""

    srv: tuple[SrvTarget, ...] = ()
    addresses: tuple[tuple[str, IPv6], ...] = ()  # (owner name, AAAA), answer and additional
    ttl: float | None = None


@dataclass
class Bootstrap:
    """Home agent discovery on one link (draft §7): the queries still open, by id."""

    iface: str
    prefix: Prefix
    queries: dict[int, LookupHomeAgent | RequestHomeInfo]
    tries: int = 1
    retry_at: float = 0.0
    srv: tuple[SrvTarget, ...] = ()
    addresses: dict[str, list[IPv6]] = field(default_factory=dict)
    ttl: float | None = None
    started: float = 0.0


# ---------------------------------------------------------------- actions


@dataclass(frozen=True)
class AddAddress:
    iface: str
    address: IPv6
    prefixlen: int


@dataclass(frozen=True)
class RemoveAddress:
    iface: str
    address: IPv6


@dataclass(frozen=True)
class SetDefaultRoute:
    iface: str
    router: IPv6


@dataclass(frozen=True)
class SendRouterSolicitation:
    iface: str


@dataclass(frozen=True)
class HomeAddressToTunnel:
    """Keep `hoa` for the sockets that use it, off the air interface: it moves to the
    tunnel device, deprecated so that new communication does not pick it (draft §3)."""

    iface: str
    hoa: IPv6


@dataclass(frozen=True)
class HomeAddressFromTunnel:
    hoa: IPv6


@dataclass(frozen=True)
class DnsUpdate:
    """The DNS Update mobility option of a BU (RFC 5026 §8.1): Status 0, R, MN identity."""

    fqdn: str
    remove: bool


@dataclass(frozen=True)
class BidEntry:
    """A Binding Identifier option (RFC 5648 §4.3, BID-PRI of RFC 6089 §4.1)."""

    bid: int
    bid_pri: int
    coa: IPv6 | None  # None: Length 4, no care-of address


@dataclass(frozen=True)
class FlowEntry:
    """A Flow Identification option (RFC 6089 §4.2): a Binding Reference to `bids` and a
    traffic selector of what the HA sends the MN from the correspondent's port `port`
    (source port, RFC 6088 §3.2)."""

    fid: int
    fid_pri: int
    bids: tuple[int, ...]
    port: int


@dataclass(frozen=True)
class SendBindingUpdate:
    iface: str
    ha: IPv6
    hoa: IPv6
    coa: IPv6
    seq: int
    lifetime: int  # 4 s units; 0 deregisters
    multicast: ListenerState | None  # IPv6 groups; None: no Multicast State option
    dns: DnsUpdate | None = None  # None: no DNS Update option
    bids: tuple[BidEntry, ...] = ()  # none: a plain RFC 6275 BU (Alternate CoA option)
    flows: tuple[FlowEntry, ...] = ()
    overwrite: bool = False  # the O flag (RFC 5648 §4.2)
    # RFC 5555 §4.2: with `coa4`, the BU goes in UDP/IPv4 to `ha4` port 4191, its IPv6
    # source the home address (no Home Address option), with the IPv4 Care-of Address
    # option and the IPv4 Home Address option naming `hoa4` (0.0.0.0: a dynamic one)
    coa4: IPv4 | None = None
    ha4: IPv4 | None = None
    hoa4: IPv4 | None = None
    # draft §8: the IPv4 groups, for a Multicast State option of IGMPv3 form (one option
    # per family); None: no such option
    multicast4: ListenerState | None = None


@dataclass(frozen=True)
class Ipv4Ack:
    """What a BA to a BU in UDP/IPv4 said (the daemon parses it): the IPv4 Address
    Acknowledgement (RFC 5555 §3.2.1) and the NAT Detection option's refresh time (§3.2.2)."""

    status: int | None = None  # None: no IPv4 Address Acknowledgement
    address: IPv4 | None = None
    prefixlen: int = 32
    nat_refresh: int | None = None  # seconds; None: no NAT Detection option


@dataclass(frozen=True)
class LookupHomeAgent:
    """A DNS query to the configured server (RFC 5026 §5.1): answer with dns_answer()."""

    iface: str
    query_id: int
    qname: str  # absolute
    qtype: str  # "SRV" or "AAAA"


@dataclass(frozen=True)
class RequestHomeInfo:
    """A DHCPv6 Information-request on `iface` for home network information (RFC 6610
    §4.1.1, no preferred home network: UDINF, INT-10): answer with home_info()."""

    iface: str
    transaction_id: int  # 24 bits
    elapsed: float = 0.0  # seconds since the first one (RFC 8415 §21.9)


@dataclass(frozen=True)
class TunnelChanged:
    """The data plane's bindings changed: (hoa -> (ha, coa)) of the accepted ones."""

    routes: tuple[tuple[IPv6, IPv6, IPv6], ...]


@dataclass(frozen=True)
class Udp4TunnelChanged:
    """The bindings to an IPv4 care-of address the HA accepted: (hoa, ha4) each. What
    `hoa` sends goes in UDP to `ha4` port 4191, and what comes from there is written to
    the tunnel device (RFC 5555 §4.1, §4.5)."""

    routes: tuple[tuple[IPv6, IPv4], ...]


@dataclass(frozen=True)
class Ipv4HomeAddress:
    """The IPv4 home address the HA assigned to the binding of `hoa` (None: none any more):
    the MN configures it for its applications (draft §8, RFC 5555 §4.4)."""

    hoa: IPv6
    address: IPv4 | None
    prefixlen: int = 32


@dataclass(frozen=True)
class FlowRoutes:
    """The flows the HA accepted (draft §7.1, INT-20): (hoa, port, ha, coa) each: new
    sessions with a correspondent's `port` use `hoa`, tunnelled to `ha` from `coa`."""

    routes: tuple[tuple[IPv6, int, IPv6, IPv6], ...]


@dataclass(frozen=True)
class MulticastOnTunnel:
    """The listener state to mirror on the tunnel device (draft §3 last paragraph)."""

    state: ListenerState


@dataclass(frozen=True)
class AnnounceListening:
    """Groups that are served natively again on `iface`'s link: report them there now
    (the kernel would wait for the querier's next General Query)."""

    iface: str
    state: ListenerState


@dataclass(frozen=True)
class Log:
    text: str


Action = (
    AddAddress
    | RemoveAddress
    | SetDefaultRoute
    | SendRouterSolicitation
    | HomeAddressToTunnel
    | HomeAddressFromTunnel
    | SendBindingUpdate
    | LookupHomeAgent
    | RequestHomeInfo
    | TunnelChanged
    | Udp4TunnelChanged
    | Ipv4HomeAddress
    | FlowRoutes
    | MulticastOnTunnel
    | AnnounceListening
    | Log
)


@dataclass
class AttachedLink:
    prefix: Prefix
    address: IPv6
    router: IPv6


def address_in(prefix: Prefix, iid: int) -> IPv6:
    return prefix[iid]


def eui64_iid(mac: str) -> int:
    """The modified EUI-64 interface identifier of a MAC address (RFC 4291 appendix A)."""
    octets = bytes.fromhex(mac.replace(":", "").replace("-", ""))
    if len(octets) != 6:
        raise ValueError(f"not a 48-bit MAC address: {mac!r}")
    eui = bytes([octets[0] ^ 0x02]) + octets[1:3] + b"\xff\xfe" + octets[3:]
    return int.from_bytes(eui, "big")


def _absolute(name: str) -> str:
    return name.lower().rstrip(".") + "."


def _query_id(q: LookupHomeAgent | RequestHomeInfo) -> int:
    return q.query_id if isinstance(q, LookupHomeAgent) else q.transaction_id


def restrict(state: ListenerState, groups: set[ipaddress.IPv4Address | IPv6]) -> ListenerState:
    return ListenerState({g: s for g, s in state.groups.items() if g in groups})


def of_version(state: ListenerState, version: int) -> ListenerState:
    return ListenerState({g: s for g, s in state.groups.items() if g.version == version})


class MobileNodeCore:
    def __init__(self, config: MNConfig | None = None) -> None:
        self.config = config or MNConfig()
        self._rng = random.Random(self.config.seed)
        self.iids: dict[str, int] = {}
        self.links: dict[str, AttachedLink] = {}
        self.ha_cache: dict[Prefix, HomeAgentEntry] = {}
        self._home_seen = False
        self.bindings: dict[IPv6, Binding] = {}  # by home address
        self.sessions: set[IPv6] = set()
        self.listening = ListenerState()
        # group -> prefix of the link it was joined on, for groups served by a binding
        self.group_home: dict[ipaddress.IPv4Address | IPv6, Prefix] = {}
        self._routes: tuple[tuple[IPv6, IPv6, IPv6], ...] = ()
        self._routes4: tuple[tuple[IPv6, IPv4], ...] = ()
        self._flows: tuple[tuple[IPv6, int, IPv6, IPv6], ...] = ()
        self._lost: set[str] = set()  # the returning-iface-ignored fault's memory
        self._first_coa: dict[str, IPv6] = {}  # the moved-iface-old-coa fault's memory
        self.flows: tuple[FlowPolicy, ...] = self.config.flows  # set_flows() changes it
        self._mirrored = ListenerState()
        self.bootstraps: dict[str, Bootstrap] = {}  # by interface

    # ------------------------------------------------------------------ events

    def add_interface(self, iface: str, iid: int) -> list[Action]:
        self.iids[iface] = iid
        return [SendRouterSolicitation(iface)]

    def carrier(self, now: float, iface: str, up: bool) -> list[Action]:
        """A carrier change: on carrier up, solicit an RA at once (RFC 4861 §6.3.7), which
        makes movement detection as fast as the router's answer."""
        if not up and iface in self.links:
            return self._interface_lost(now, iface)
        return [SendRouterSolicitation(iface)] if up and iface in self.iids else []

    def observed(self, now: float, sessions: set[IPv6], listening: ListenerState) -> list[Action]:
        """What the daemon sees in the kernel: local addresses with a live session, and the
        air interfaces' multicast listener state. Bindings follow it (draft §7, INT-7)."""
        self.sessions = set(sessions)
        self.listening = listening
        for group in [g for g in self.group_home if g not in listening.groups]:
            del self.group_home[group]  # the application left: no HA serves it any more
        out: list[Action] = []
        for b in list(self.bindings.values()):
            if b.phase is Phase.DEREGISTERING:
                continue
            wanted = self._binding_state(b)
            if not self._needs_binding(b.hoa, b.prefix):
                if self.config.deregister:
                    out += self._deregister(now, b, "its sessions ended")
                continue
            if wanted.groups != b.multicast.groups:
                b.multicast = wanted
                out.append(Log(f"listener state of {b.hoa} changed: new BU to {b.ha}"))
                out += self._send_bu(now, b, fresh=True)
        return out + self._sync_data_plane()

    def set_flows(self, now: float, flows: tuple[FlowPolicy, ...]) -> list[Action]:
        """A new flow policy (a command, draft §7.1 "move flows"): every binding with BIDs
        sends it at once in a BU (RFC 6089 §5.2: flows added, modified or left out)."""
        if self.config.faults.has(Fault.MN_MOVE_IGNORED) or flows == self.flows:
            return []
        self.flows = flows
        out: list[Action] = [Log(f"flow policy now {[(f.iface, f.port) for f in flows]}")]
        for b in self.bindings.values():
            if b.phase is not Phase.DEREGISTERING and self._bid_entries(b):
                out += self._send_bu(now, b, fresh=True)
        return out

    def router_advertisement(self, now: float, ra: RouterAdvert) -> list[Action]:
        if self.config.faults.has(Fault.MN_BU_TO_CURRENT_HA) and ra.ha_address is not None:
            for entry in self.ha_cache.values():
                entry.address = ra.ha_address  # every link's HA is now the current one
        out: list[Action] = []
        if ra.ha_address is not None:
            out += self._cache_home_agent(now, ra)
        if ra.iface not in self.iids:
            return out
        current = self.links.get(ra.iface)
        if current is not None and current.prefix == ra.prefix:
            if current.router != ra.router:
                current.router = ra.router
                out.append(SetDefaultRoute(ra.iface, ra.router))
            return out
        return out + self._moved(now, ra, current)

    def ipv4_link(self, now: float, iface: str, coa4: IPv4, ha4: dict[IPv6, IPv4]) -> list[Action]:
        """`iface` is on an IPv4-only link with the IPv4 care-of address `coa4` (DHCPv4,
        draft §8); `ha4`: the IPv4 addresses of the dual-stack home agents the MN was told
        of (the DHCPINFORM's home network information, INT-22). Like a move: the address of
        the link left is registered with its home agent, in UDP/IPv4 with the IPv4 care-of
        address, only while a session of it is open (draft §8, OPEN-15); the bindings that
        were on `iface` move to the IPv4 care-of address."""
        old = self.links.pop(iface, None)
        out: list[Action] = [Log(f"{iface}: on an IPv4-only link, IPv4 care-of address {coa4}")]
        self.bootstraps.pop(iface, None)
        if old is not None:
            out.append(RemoveAddress(iface, old.address))
        if old is not None and old.address not in self.bindings:
            out += self._leave_link4(now, iface, old, coa4, ha4)
        for b in self.bindings.values():
            if b.iface != iface or b.hoa == (old.address if old else None):
                continue
            if b.coa4 == coa4:
                continue
            address = ha4.get(b.ha)
            if address is None:
                out.append(Log(f"{b.ha} has no IPv4 address known: {b.hoa} not moved to {coa4}"))
                continue
            b.coa4, b.ha4, b.coa = coa4, address, b.hoa
            dereg = b.phase is Phase.DEREGISTERING
            out += self._send_bu(now, b, fresh=True, lifetime=0 if dereg else None)
        return out + self._sync_data_plane()

    def _leave_link4(
        self, now: float, iface: str, old: AttachedLink, coa4: IPv4, ha4: dict[IPv6, IPv4]
    ) -> list[Action]:
        """The MN left `old` for an IPv4-only link: draft §8, it registers the address of
        `old` with that link's (dual-stack) home agent only if it has open sessions; the
        groups joined on `old`, of either family, go with that binding (draft §3, §8)."""
        self._attribute_native(old.prefix)
        entry = self.ha_cache.get(old.prefix)
        if entry is not None and entry.expires is not None and entry.expires <= now:
            entry = None
        needed = old.address in self.sessions  # OPEN-15: open unicast sessions
        if self.config.faults.has(Fault.MN_V4_REGISTER_ALWAYS):
            needed = True
        address = ha4.get(entry.address) if entry is not None else None
        if not needed or entry is None or address is None:
            self._forget_groups(old.prefix)
            if entry is not None and entry.expires is not None and not needed:
                del self.ha_cache[old.prefix]
            why = (
                "no session left"
                if not needed
                else "no home agent known"
                if entry is None
                else f"no IPv4 address known for {entry.address}"
            )
            return [Log(f"{old.address}: {why}, no binding over IPv4")]
        if self.config.faults.has(Fault.MN_NO_V4_REGISTRATION):
            return [Log(f"{old.address}: left unregistered on the IPv4-only link")]
        b = Binding(
            hoa=old.address,
            prefix=old.prefix,
            ha=entry.address,
            coa=old.address,  # RFC 5555 §4.2: the inner IPv6 source is the home address
            iface=iface,
            seq=self._rng.randrange(0x10000),
            coa4=coa4,
            ha4=address,
        )
        b.multicast = self._binding_state(b)
        self.bindings[b.hoa] = b
        return [HomeAddressToTunnel(iface, b.hoa), *self._send_bu(now, b, fresh=True)]

    def binding_ack(
        self,
        now: float,
        ha: IPv6,
        hoa: IPv6,
        seq: int,
        status: int,
        lifetime: int,
        ipv4: Ipv4Ack | None = None,
        data_plane: IPv6 | None = None,
    ) -> list[Action]:
        """A BA from `ha`; `data_plane`: the HA data plane function's address it names
        (draft §9, an Alternate HA Tunnel Address or Alternate Care-of Address option)."""
        out = self._binding_ack(now, ha, hoa, seq, status, lifetime, ipv4, data_plane)
        if self.config.faults.has(Fault.MN_NO_REFRESH):
            for b in self.bindings.values():
                b.refresh_at = None
        return out

    def _binding_ack(
        self,
        now: float,
        ha: IPv6,
        hoa: IPv6,
        seq: int,
        status: int,
        lifetime: int,
        ipv4: Ipv4Ack | None = None,
        data_plane: IPv6 | None = None,
    ) -> list[Action]:
        b = self.bindings.get(hoa)
        if self.config.faults.has(Fault.MN_ACCEPT_ANY_BA_SEQ) and b is not None:
            seq = b.seq if status != STATUS_SEQ_OUT_OF_WINDOW else seq
        if b is None or b.ha != ha or b.retransmit_at is None or seq != b.seq:
            if b is not None and b.ha == ha and status == STATUS_SEQ_OUT_OF_WINDOW:
                pass  # §11.7.3: a 135 carries the HA's last accepted number, not ours
            else:
                return [Log(f"BA from {ha} for {hoa} (seq {seq}) matches no pending BU")]
        out: list[Action] = []
        if status == STATUS_SEQ_OUT_OF_WINDOW:
            b.seq = seq  # §11.7.3: store it, and the next BU uses the number after it
            return [Log(f"{ha} says sequence out of window: resending after {seq}")] + (
                self._send_bu(
                    now, b, fresh=True, lifetime=0 if b.phase is Phase.DEREGISTERING else None
                )
            )
        b.retransmit_at = None
        if status >= STATUS_REJECTED:
            out.append(Log(f"{ha} refused the binding of {hoa}: status {status}"))
            return out + self._drop(b)
        if b.phase is Phase.DEREGISTERING:
            out.append(Log(f"{ha} deregistered {hoa}"))
            return out + self._drop(b)
        b.phase = Phase.REGISTERED
        b.acked_coa = b.coa
        b.acked_flows = b.sent_flows
        if not self.config.faults.has(Fault.MN_IGNORES_DATA_PLANE):
            b.data_plane = data_plane  # draft §9; none named: the HA's own address
        granted = self.config.scaled(lifetime * LIFETIME_UNIT)
        b.expires_at = now + granted
        b.refresh_at = now + granted * self.config.refresh_share
        out.append(Log(f"{ha} accepted {hoa} -> {b.coa4 or b.coa} for {lifetime} units"))
        if b.coa4 is not None and ipv4 is not None:
            out += self._ipv4_answer(now, b, ipv4)
        return out + self._sync_data_plane()

    def _ipv4_answer(self, now: float, b: Binding, ipv4: Ipv4Ack) -> list[Action]:
        """RFC 5555 §4.4: the IPv4 home address of the IPv4 Address Acknowledgement is the
        MN's (draft §8); §4.3: behind a NAT, the binding is refreshed at the NAT Detection
        option's refresh time (the BU is the keepalive) when that comes before the
        binding's own refresh; all ones: no keepalives needed."""
        out: list[Action] = []
        refresh = ipv4.nat_refresh
        b.keepalive = None
        if refresh is not None and refresh != NO_KEEPALIVE:
            b.keepalive = self.config.scaled(refresh)
            if not self.config.faults.has(Fault.MN_NAT_KEEPALIVE_IGNORED):
                assert b.refresh_at is not None
                b.refresh_at = min(b.refresh_at, now + b.keepalive)
        ok = ipv4.status is not None and ipv4.status < STATUS_REJECTED
        address = ipv4.address if ok and ipv4.address != UNSPECIFIED4 else None
        if address is None:
            if ipv4.status is not None and not ok:
                out.append(Log(f"{b.ha} refused an IPv4 home address: status {ipv4.status}"))
            return out
        if address != b.hoa4:
            b.hoa4 = address
            out.append(Log(f"IPv4 home address {address} assigned with {b.hoa}"))
            if not self.config.faults.has(Fault.MN_IPV4_HOA_UNUSED):
                out.append(Ipv4HomeAddress(b.hoa, address, ipv4.prefixlen))
        return out

    def tick(self, now: float) -> list[Action]:
        out: list[Action] = self._bootstrap_tick(now)
        for prefix, entry in list(self.ha_cache.items()):
            if entry.expires is not None and entry.expires <= now:
                del self.ha_cache[prefix]
                out.append(Log(f"home agent {entry.address} of {prefix} expired from the cache"))
        for b in list(self.bindings.values()):
            if b.retransmit_at is not None and b.retransmit_at <= now:
                if not self.config.faults.has(Fault.MN_NO_BACKOFF):  # §11.8: doubled each time
                    top = self.config.scaled(self.config.max_bindack_timeout)
                    b.timeout = min(b.timeout * 2, top)
                again = self._send_bu(
                    now,
                    b,
                    fresh=False,
                    lifetime=0 if b.phase is Phase.DEREGISTERING else None,
                )
                out += again
            elif b.expires_at is not None and b.expires_at <= now and b.retransmit_at is None:
                out.append(Log(f"binding of {b.hoa} at {b.ha} expired"))
                out += self._drop(b)
            elif b.refresh_at is not None and b.refresh_at <= now and b.retransmit_at is None:
                b.refresh_at = None
                out += self._send_bu(now, b, fresh=True)
        return out

    def next_deadline(self) -> float | None:
        times = [e.expires for e in self.ha_cache.values() if e.expires is not None]
        times += [bs.retry_at for bs in self.bootstraps.values()]
        for b in self.bindings.values():
            if b.retransmit_at is not None:
                times.append(b.retransmit_at)
            else:
                times += [t for t in (b.refresh_at, b.expires_at) if t is not None]
        return min(times, default=None)

    def dns_answer(self, now: float, query_id: int, answer: DnsAnswer | None) -> list[Action]:
        """The DNS server answered LookupHomeAgent `query_id` (None: an error rcode)."""
        bs, query = self._open_query(query_id, LookupHomeAgent)
        if bs is None or not isinstance(query, LookupHomeAgent):
            return [Log(f"DNS answer {query_id} matches no open query")]
        if answer is None:
            return [Log(f"DNS: no {query.qtype} for {query.qname}")] + self._decide(now, bs)
        for name, address in answer.addresses:
            bs.addresses.setdefault(name.lower(), []).append(address)
        if answer.srv:
            bs.srv = tuple(sorted(answer.srv, key=lambda t: (t.priority, -t.weight)))
        if answer.ttl is not None:
            bs.ttl = answer.ttl if bs.ttl is None else min(bs.ttl, answer.ttl)
        return self._decide(now, bs)

    def home_info(
        self, now: float, transaction_id: int, ha_addresses: tuple[IPv6, ...]
    ) -> list[Action]:
        """A DHCPv6 Reply to RequestHomeInfo `transaction_id`: its home agents, in the
        server's order (RFC 6610 §4.1.2)."""
        bs, query = self._open_query(transaction_id, RequestHomeInfo)
        if bs is None or query is None:
            return [Log(f"DHCPv6 Reply {transaction_id:#x} matches no open request")]
        bs.addresses.setdefault("dhcpv6", []).extend(ha_addresses)
        return self._decide(now, bs)

    # ------------------------------------------------------------------ queries

    def registered(self) -> dict[IPv6, tuple[IPv6, IPv6]]:
        """hoa -> (ha, coa the HA accepted): what the data plane may use."""
        return {r[0]: (r[1], r[2]) for r in self._routes}

    def current_address(self, iface: str) -> IPv6 | None:
        link = self.links.get(iface)
        return link.address if link else None

    # ------------------------------------------------------------------ internals

    def _cache_home_agent(self, now: float, ra: RouterAdvert) -> list[Action]:
        assert ra.ha_address is not None
        entry = self.ha_cache.get(ra.prefix)
        if entry is not None and entry.expires is None:
            entry.address = ra.ha_address
            return []
        permanent = not self._home_seen  # draft §3: the first entry does not expire
        self._home_seen = True
        address = ra.ha_address
        if self.config.faults.has(Fault.MN_FIRST_HA_ONLY) and not permanent:
            address = next(e.address for e in self.ha_cache.values() if e.expires is None)
        lifetime = ra.ha_lifetime if ra.ha_lifetime is not None else 0.0
        expires = None if permanent else now + lifetime
        is_new = entry is None
        self.ha_cache[ra.prefix] = HomeAgentEntry(address, ra.prefix, expires)
        if is_new:
            kind = "home link, kept" if permanent else f"for {lifetime:g} s"
            return [Log(f"home agent {address} cached for {ra.prefix} ({kind})")]
        return []

    def _bootstrap(
        self, now: float, iface: str, prefix: Prefix, learned: tuple[str, ...] = ()
    ) -> list[Action]:
        """Draft §3: the local domain learned during link establishment (the RA's DNS
        Search List, OPEN-10) names the SRV lookup; the configured domain otherwise."""
        c = self.config
        queries: list[LookupHomeAgent | RequestHomeInfo] = []
        domain = c.domain
        if learned and not c.faults.has(Fault.MN_IGNORE_LEARNED_DOMAIN):
            domain = learned[0]
        if c.dns_server is not None and (c.ha_fqdn or domain):
            qid = self._rng.randrange(0x10000)
            if c.ha_fqdn and not c.faults.has(Fault.MN_IGNORE_HA_FQDN):
                # RFC 5026 §5.1.1: by the home agent's name
                queries.append(LookupHomeAgent(iface, qid, _absolute(c.ha_fqdn), "AAAA"))
            else:  # RFC 5026 §5.1.2: by service name
                name = _absolute(f"_mip6._ipv6.{domain}")
                queries.append(LookupHomeAgent(iface, qid, name, "SRV"))
        if c.dhcp:
            queries.append(RequestHomeInfo(iface, self._rng.randrange(1, 1 << 24)))
        if not queries:
            return []
        opened = {_query_id(q): q for q in queries}
        retry = now + c.bootstrap_timeout
        self.bootstraps[iface] = Bootstrap(iface, prefix, opened, retry_at=retry, started=now)
        return [Log(f"{iface}: no home agent advertised on {prefix}: bootstrapping"), *queries]

    def _bootstrap_tick(self, now: float) -> list[Action]:
        out: list[Action] = []
        for iface, bs in list(self.bootstraps.items()):
            if bs.retry_at > now:
                continue
            if bs.tries >= self.config.bootstrap_tries or not bs.queries:
                del self.bootstraps[iface]
                out.append(Log(f"{iface}: no home agent found for {bs.prefix}"))
                continue
            bs.tries += 1
            bs.retry_at = now + self.config.bootstrap_timeout * 2 ** (bs.tries - 1)
            for key, q in list(bs.queries.items()):
                if isinstance(q, RequestHomeInfo):  # RFC 8415 §15: same id, elapsed time
                    q = RequestHomeInfo(q.iface, q.transaction_id, now - bs.started)
                    bs.queries[key] = q
                out.append(q)
        return out

    def _open_query(
        self, key: int, kind: type[LookupHomeAgent] | type[RequestHomeInfo]
    ) -> tuple[Bootstrap | None, LookupHomeAgent | RequestHomeInfo | None]:
        for bs in self.bootstraps.values():
            query = bs.queries.get(key)
            if isinstance(query, kind):
                del bs.queries[key]
                return bs, query
        return None, None

    def _decide(self, now: float, bs: Bootstrap) -> list[Action]:
        """Pick the home agent (INT-17): one on the link's prefix, else the first one the
        servers named (SRV order, then DHCPv6's), once every query has answered."""
        names = dict.fromkeys([t.target for t in bs.srv] + list(bs.addresses))
        candidates = [a for n in names for a in bs.addresses.get(n, [])]
        on_link = [a for a in candidates if a in bs.prefix]
        if on_link:
            return self._found(now, bs, on_link[0])
        missing = [t.target for t in bs.srv if t.target not in bs.addresses]
        asked = {q.qname for q in bs.queries.values() if isinstance(q, LookupHomeAgent)}
        out: list[Action] = []
        for target in missing:
            if target not in asked:  # RFC 5026 §5.1.2: the SRV target's address
                q = LookupHomeAgent(bs.iface, self._rng.randrange(0x10000), target, "AAAA")
                bs.queries[q.query_id] = q
                bs.addresses.setdefault(target, [])
                out.append(q)
        if out or bs.queries:
            return out
        if candidates:
            return self._found(now, bs, candidates[0])
        del self.bootstraps[bs.iface]
        return [Log(f"{bs.iface}: the servers named no home agent for {bs.prefix}")]

    def _found(self, now: float, bs: Bootstrap, address: IPv6) -> list[Action]:
        self.bootstraps.pop(bs.iface, None)
        if bs.prefix in self.ha_cache:
            return [Log(f"home agent of {bs.prefix} already known: {address} not cached")]
        permanent = not self._home_seen  # draft §3: the first entry does not expire
        self._home_seen = True
        lifetime = bs.ttl if bs.ttl is not None else self.config.discovered_lifetime
        expires = None if permanent else now + lifetime
        self.ha_cache[bs.prefix] = HomeAgentEntry(address, bs.prefix, expires, discovered=True)
        return [Log(f"home agent {address} discovered for {bs.prefix}")]

    def _needs_binding(self, address: IPv6, prefix: Prefix) -> bool:
        if address in self.sessions:
            return True
        return self.config.multicast_is_session and any(
            p == prefix for p in self.group_home.values()
        )

    def _binding_state(self, b: Binding) -> ListenerState:
        groups = {g for g, p in self.group_home.items() if p == b.prefix}
        return restrict(self.listening, groups)

    def _moved(self, now: float, ra: RouterAdvert, old: AttachedLink | None) -> list[Action]:
        iface = ra.iface
        new_address = address_in(ra.prefix, self.iids[iface])
        out: list[Action] = [Log(f"{iface}: on link {ra.prefix}, address {new_address}")]
        self.bootstraps.pop(iface, None)  # a discovery for the link left is moot
        if old is not None:
            out.append(RemoveAddress(iface, old.address))
        self.links[iface] = AttachedLink(ra.prefix, new_address, ra.router)
        if old is not None and old.address not in self.bindings:
            out += self._leave_link(now, iface, old, new_address)
        returning = self.bindings.get(new_address)
        if returning is not None:
            # back on the link of this home address (RFC 6275 §11.5.5): deregister it, and
            # its groups are served natively again
            out.append(HomeAddressFromTunnel(new_address))
            served = self._binding_state(returning)
            for group in served.groups:
                self.group_home.pop(group, None)
            if self.config.faults.has(Fault.MN_RETURN_HOME_SILENTLY):
                out += self._drop(returning)
            else:
                out += self._deregister(
                    now, returning, "the MN is back on its link", coa=new_address
                )
            if served.groups:
                out.append(AnnounceListening(iface, served))
        out.append(AddAddress(iface, new_address, ra.prefix.prefixlen))
        out.append(SetDefaultRoute(iface, ra.router))
        if ra.ha_address is None and ra.prefix not in self.ha_cache:
            out += self._bootstrap(now, iface, ra.prefix, ra.domains)  # draft §3: no HA Info
        for b in self.bindings.values():
            if b.iface == iface and (b.coa != new_address or b.coa4 is not None):
                # a pending deregistration moves with the MN too: its BA must reach the
                # new link (RFC 6275 §11.7.1: the care-of address is the packet's source)
                b.coa, b.coa4, b.keepalive = new_address, None, None
                dereg = b.phase is Phase.DEREGISTERING
                out += self._send_bu(now, b, fresh=True, lifetime=0 if dereg else None)
            elif b.iface != iface and b.phase is not Phase.DEREGISTERING:
                # a new interface, or an added one on another link: its BID with its new
                # care-of address (RFC 5648 §6.2 updates the binding of a known BID)
                out += self._register_interface(now, b, iface)
        if self.config.faults.has(Fault.MN_NEW_IFACE_ALONE) and old is None and not self.bindings:
            out += self._register_alone(now, iface, new_address)
        return out + self._sync_data_plane()

    def _leave_link(self, now: float, iface: str, old: AttachedLink, coa: IPv6) -> list[Action]:
        """The MN left `old`: register its address with that link's HA if it is still in
        use (draft §3), else forget that HA (draft §7)."""
        self._attribute_native(old.prefix)
        entry = self.ha_cache.get(old.prefix)
        if entry is not None and entry.expires is not None and entry.expires <= now:
            entry = None
        if not self._needs_binding(old.address, old.prefix):
            self._forget_groups(old.prefix)
            if entry is not None and entry.expires is not None:
                del self.ha_cache[old.prefix]
            return [Log(f"{old.address}: no session left, no binding")]
        if entry is None:
            left = self._forget_groups(old.prefix)
            out: list[Action] = [Log(f"{old.address} still in use, but no home agent known")]
            if left.groups:
                out.append(AnnounceListening(iface, left))
            return out
        b = Binding(
            hoa=old.address,
            prefix=old.prefix,
            ha=entry.address,
            coa=coa,
            iface=iface,
            seq=self._rng.randrange(0x10000),
        )
        b.multicast = self._binding_state(b)
        self.bindings[b.hoa] = b
        return [HomeAddressToTunnel(iface, b.hoa), *self._send_bu(now, b, fresh=True)]

    def _attribute_native(self, prefix: Prefix) -> None:
        """The groups not served through a tunnel were joined on the link being left."""
        for group in [g for g in self.listening.groups if g not in self.group_home]:
            self.group_home[group] = prefix

    def _register_interface(self, now: float, b: Binding, iface: str) -> list[Action]:
        """Draft §7.1: a new interface's care-of address is registered with the home agent
        in use, under a BID of its own (RFC 5648)."""
        return [
            Log(f"{iface} registered with {b.ha} for {b.hoa} (BID {self.bid_of(iface)})"),
            *self._send_bu(now, b, fresh=True),
        ]

    def _interface_lost(self, now: float, iface: str) -> list[Action]:
        """An interface lost its link (draft §7.1): its care-of address leaves the bindings
        that named it. The next BU names only the others, O set, or is a plain BU when one
        is left (RFC 5648 §4.2, §6.2: both replace every binding), and the flows bound to it
        are left out, so the HA deletes them (RFC 6089 §5.3.4). When it was the binding's
        own interface, the binding goes on from the first other interface its BUs named
        (that BU is sent from there); with no other, nothing changes (a handover)."""
        gone = self.links[iface].address
        live = [b for b in self.bindings.values() if b.phase is not Phase.DEREGISTERING]
        named = [
            b for b in live if b.iface != iface and any(e.coa == gone for e in self._bid_entries(b))
        ]
        if self.config.faults.has(Fault.MN_LOST_IFACE_KEPT):
            named = []
        # The binding's own interface lost: it goes on from another interface of its BUs.
        heirs = {
            b.hoa: rest[0]
            for b in live
            if b.iface == iface and b.coa == gone
            for rest in [[e.coa for e in self._bid_entries(b) if e.coa not in (gone, None)]]
            if rest
        }
        if self.config.faults.has(Fault.MN_LOST_FIRST_IFACE_KEPT):
            heirs = {}
        if not named and not heirs:
            return []
        del self.links[iface]
        if self.config.faults.has(Fault.MN_RETURNING_IFACE_IGNORED):
            self._lost.add(iface)  # the fault: never registered again
        out: list[Action] = [Log(f"{iface} lost its link: {gone} leaves the bindings")]
        out.append(RemoveAddress(iface, gone))
        for b in named:
            out += self._send_bu(now, b, fresh=True)
        for hoa, coa in heirs.items():
            b = self.bindings[hoa]
            b.iface = next(name for name, link in self.links.items() if link.address == coa)
            b.coa = coa
            out.append(Log(f"{b.hoa}'s binding goes on from {b.iface} ({coa})"))
            out += self._send_bu(now, b, fresh=True)
        return out

    def _register_alone(self, now: float, iface: str, coa: IPv6) -> list[Action]:
        """A fault only: the first interface's address registered with its home link's HA
        from the new interface, though no home agent is in use."""
        first = next((link for name, link in self.links.items() if name != iface), None)
        entry = self.ha_cache.get(first.prefix) if first is not None else None
        if first is None or entry is None:
            return []
        b = Binding(first.address, first.prefix, entry.address, coa, iface, seq=1)
        self.bindings[b.hoa] = b
        return self._send_bu(now, b, fresh=True)

    def bid_of(self, iface: str) -> int:
        """The interface's BID: its rank among the MN's interfaces, from 1 (RFC 5648 §4.3:
        unique per care-of address, draft §7.1)."""
        if self.config.faults.has(Fault.MN_SAME_BID):
            return 1
        return list(self.iids).index(iface) + 1

    def _bid_entries(self, b: Binding) -> tuple[BidEntry, ...]:
        """One BID option per interface with a care-of address for `b` (not the home link's
        address itself), when there are several; none with one (a plain BU, RFC 6275)."""
        coas = [
            (iface, link.address)
            for iface, link in self.links.items()
            if link.address != b.hoa and iface in self.iids
        ]
        if self.config.faults.has(Fault.MN_NEW_IFACE_UNREGISTERED):
            coas = [c for c in coas if c[0] == b.iface]  # the binding's own interface only
        coas = [c for c in coas if c[0] not in self._lost]
        if len(coas) < 2:
            return ()
        zero_pri = self.config.faults.has(Fault.MN_BID_PRI_ZERO)
        no_coa = self.config.faults.has(Fault.MN_BID_WITHOUT_COA)
        if self.config.faults.has(Fault.MN_MOVED_IFACE_OLD_COA):
            # the fault: an added interface's BID keeps the care-of address it was first
            # registered with, wherever the interface has gone since
            coas = [(i, c if i == b.iface else self._first_coa.setdefault(i, c)) for i, c in coas]
        return tuple(
            BidEntry(
                self.bid_of(iface),
                0 if zero_pri else self.bid_of(iface),  # lower is preferred (RFC 6089 §4.1)
                None if no_coa else coa,
            )
            for iface, coa in sorted(coas, key=lambda c: self.bid_of(c[0]))
        )

    def _flow_entries(self, bids: tuple[BidEntry, ...]) -> tuple[FlowEntry, ...]:
        """The configured flows whose interface has a BID in this BU (RFC 6089 §5.2: each
        BU carries every flow binding; FID-PRI unique per flow, §4.2)."""
        registered = {e.bid for e in bids}
        out = []
        for n, policy in enumerate(self.flows, start=1):
            if policy.iface not in self.iids:
                continue
            bid = self.bid_of(policy.iface)
            if self.config.faults.has(Fault.MN_FLOW_TO_PRIMARY):
                bid = min(registered, default=bid)
            if bid in registered:
                pri = 1 if self.config.faults.has(Fault.MN_SAME_FID_PRI) else n
                out.append(FlowEntry(n, pri, (bid,), policy.port))
        return tuple(out)

    def _forget_groups(self, prefix: Prefix) -> ListenerState:
        groups = {g for g, p in self.group_home.items() if p == prefix}
        for g in groups:
            del self.group_home[g]
        return restrict(self.listening, groups)

    def _deregister(
        self, now: float, b: Binding, why: str, coa: IPv6 | None = None
    ) -> list[Action]:
        b.phase = Phase.DEREGISTERING
        b.forget_dns = coa is None  # back home, the address is in use again (draft §3)
        if coa is not None:
            b.coa, b.coa4 = coa, None
        return [
            Log(f"deregistering {b.hoa} at {b.ha}: {why}"),
            *self._send_bu(now, b, fresh=True, lifetime=0),
        ]

    def _drop(self, b: Binding) -> list[Action]:
        self.bindings.pop(b.hoa, None)
        gone: list[Action] = [Ipv4HomeAddress(b.hoa, None)] if b.hoa4 is not None else []
        for g in [g for g, p in self.group_home.items() if p == b.prefix]:
            del self.group_home[g]
        out: list[Action] = gone
        link = self.links.get(b.iface)
        if link is None or link.address != b.hoa:
            out.append(HomeAddressFromTunnel(b.hoa))
        return out + self._sync_data_plane()

    def _send_bu(
        self, now: float, b: Binding, *, fresh: bool, lifetime: int | None = None
    ) -> list[Action]:
        if fresh or not self.config.faults.has(Fault.MN_RETRANSMIT_SAME_SEQ):
            b.seq = (b.seq + 1) & 0xFFFF  # RFC 6275 §11.8: every BU has a new number
        if fresh:
            b.timeout = self.config.scaled(self.config.initial_bindack_timeout)
        b.sent_at = now
        b.retransmit_at = now + b.timeout
        units = self.config.bu_lifetime if lifetime is None else lifetime
        multicast = of_version(b.multicast, 6) if units else None
        multicast4 = self._igmp_state(b) if units else None
        dns = self._dns_update(b, units)
        bids = self._bid_entries(b) if units else ()
        flows = self._flow_entries(bids)
        if self.config.faults.has(Fault.MN_FLOWS_ONCE) and b.flows_sent:
            flows = ()
        b.flows_sent = b.flows_sent or bool(flows)
        coa_of = {e.bid: e.coa for e in bids}
        b.sent_flows = tuple(
            (f.port, coa) for f in flows for coa in [coa_of.get(f.bids[0])] if coa is not None
        )
        return [
            SendBindingUpdate(
                b.iface,
                b.data_plane
                if b.data_plane is not None and self.config.faults.has(Fault.MN_BU_TO_DATA_PLANE)
                else b.ha,
                b.hoa,
                b.coa,
                b.seq,
                units,
                multicast,
                dns,
                bids,
                flows,
                overwrite=bool(bids) and not self.config.faults.has(Fault.MN_NO_OVERWRITE),
                coa4=b.coa4,
                ha4=b.ha4 if b.coa4 is not None else None,
                # RFC 5555 §4.4.2: the IPv4 home address it has (in every BU, from an
                # IPv6 care-of address too), else 0.0.0.0 for one on an IPv4-only link
                hoa4=b.hoa4 or (UNSPECIFIED4 if b.coa4 is not None else None),
                multicast4=multicast4,
            )
        ]

    def _igmp_state(self, b: Binding) -> ListenerState | None:
        """Draft §8: the binding's IPv4 groups go in an option of IGMPv3 form of their own
        (one option per family, DMM-V4-5); none without IPv4 groups, but an empty one
        once more after the last is left, so that the HA drops what it holds (INT-7)."""
        state = of_version(b.multicast, 4)
        if self.config.faults.has(Fault.MN_NO_IGMP_OPTION):
            return None
        if not state.groups and not b.igmp_sent:
            return None
        b.igmp_sent = bool(state.groups)
        return state

    def _dns_update(self, b: Binding, units: int) -> DnsUpdate | None:
        """Draft §7: the registration BU asks the HA to register the home address under the
        MN's FQDN (R clear); draft §3: a deregistration of an address no longer used asks
        for its removal (R set). Refreshes carry none."""
        if self.config.fqdn is None:
            return None
        if b.coa4 is not None and self.config.faults.has(Fault.MN_V4_BU_NO_DNS):
            return None
        if units == 0:
            return DnsUpdate(self.config.fqdn, True) if b.forget_dns else None
        if b.phase is not Phase.REGISTERING:
            return None
        entry = self.ha_cache.get(b.prefix)
        if (
            entry is not None
            and entry.discovered
            and self.config.faults.has(Fault.MN_BOOTSTRAPPED_NOT_IN_DNS)
        ):
            return None
        return DnsUpdate(self.config.fqdn, False)

    def _sync_data_plane(self) -> list[Action]:
        out: list[Action] = []
        routes = tuple(
            sorted(
                (b.hoa, b.tunnel_end, b.acked_coa)
                for b in self.bindings.values()
                if b.acked_coa is not None and b.phase is not Phase.DEREGISTERING and b.coa4 is None
            )
        )
        if routes != self._routes:
            self._routes = routes
            out.append(TunnelChanged(routes))
        routes4 = tuple(
            sorted(
                (b.hoa, b.ha4)
                for b in self.bindings.values()
                if b.acked_coa is not None
                and b.phase is not Phase.DEREGISTERING
                and b.coa4 is not None
                and b.ha4 is not None
            )
        )
        if routes4 != self._routes4:
            self._routes4 = routes4
            out.append(Udp4TunnelChanged(routes4))
        flows = tuple(
            sorted(
                (b.hoa, port, b.tunnel_end, coa)
                for b in self.bindings.values()
                if b.acked_coa is not None and b.phase is Phase.REGISTERED
                for port, coa in b.acked_flows
            )
        )
        if flows != self._flows:
            self._flows = flows
            out.append(FlowRoutes(flows))
        mirror = ListenerState()
        for b in self.bindings.values():
            if b.acked_coa is not None and b.phase is Phase.REGISTERED:
                mirror.groups.update(b.multicast.groups)
        if mirror.groups != self._mirrored.groups:
            self._mirrored = mirror
            out.append(MulticastOnTunnel(mirror))
        return out


__all__ = [
    "Action",
    "AddAddress",
    "AnnounceListening",
    "BidEntry",
    "Binding",
    "Bootstrap",
    "FlowEntry",
    "FlowPolicy",
    "FlowRoutes",
    "DnsAnswer",
    "DnsUpdate",
    "LookupHomeAgent",
    "RequestHomeInfo",
    "SrvTarget",
    "GroupState",
    "HomeAddressFromTunnel",
    "HomeAddressToTunnel",
    "Log",
    "MNConfig",
    "MobileNodeCore",
    "MulticastOnTunnel",
    "RemoveAddress",
    "RouterAdvert",
    "SendBindingUpdate",
    "SendRouterSolicitation",
    "SetDefaultRoute",
    "TunnelChanged",
    "Udp4TunnelChanged",
    "Ipv4Ack",
    "Ipv4HomeAddress",
    "eui64_iid",
]
