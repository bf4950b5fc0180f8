"""The reference Home Agent's protocol core: bytes and a clock in, actions out (sans-I/O).

It decides everything a home agent of the draft decides (RFC 6275 §9.2, §9.5.1, §10.3.1 home
registration, with Duplicate Address Detection for new home addresses when configured;
RFC 5648 binding identifiers; RFC 6089 flow bindings; RFC 5555 IPv4 home addresses; RFC 5026
/ draft §6 DNS updates; RFC 4285 authentication; draft §4.1 and §6 with
docs/interpretations.md for multicast state) and performs no I/O: the daemon around it
receives packets, feeds them in, and carries out the returned actions (send a BA, bring a
tunnel up, install multicast forwarding, run DAD, ask the DNS server). The same core can be
driven by hypothesis for millions of steps without a network.
"""

from __future__ import annotations

import dataclasses
import hashlib
import heapq
import hmac
import ipaddress
import itertools
import struct
from dataclasses import dataclass, field

from harness.config import WireConfig
from harness.faults import NO_FAULTS, Fault, Faults
from harness.reference import ha_mcoa
from harness.reference.ha_mcoa import Flow
from harness.reference.multicast import BindingMulticast, echo_records
from harness.wire import compact
from harness.wire.compact import McastRecord, MobilityMessage, Option, ReactionKind
from harness.wire.ipv4 import valid_home_address
from harness.wire.numbers import IGMPV3_REPORT, MLDV2_REPORT, BAStatus, MobOpt

IPv6 = ipaddress.IPv6Address
IPv4 = ipaddress.IPv4Address
FLAG_O = 0x001  # RFC 5648 §4.2 Overwrite, in MobilityMessage.bu_flags
FLAG_F = 0x004  # RFC 5555 §3.1.3 Force UDP encapsulation, likewise
SEQ_WINDOW = 1 << 15  # RFC 6275 §9.5.1: "less than" modulo 2**16
LIFETIME_UNIT = 4  # seconds per unit of the BU/BA Lifetime field (RFC 6275 §6.1.7)
NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900 to 1970 (RFC 4285 §6 timestamps)
REPLAY_WINDOW = 7.0  # RFC 4285 §5: the "close enough" default


# --- Configuration --------------------------------------------------------------------------


@dataclass(frozen=True)
class HAConfig:
    address: IPv6
    home_prefix: ipaddress.IPv6Network
    max_lifetime: int = 420  # seconds granted at most (RFC 6275 leaves it to the HA)
    keys: dict[int, bytes] = field(default_factory=dict)  # RFC 4285 MN-HA SAs by SPI
    require_auth: bool = False
    require_replay_protection: bool = False
    ipv4_pool: ipaddress.IPv4Network | None = None  # RFC 5555 dynamic IPv4 home addresses
    ipv4_address: IPv4 | None = None  # the HA's own on the home link, never handed out
    data_plane_address: IPv6 | None = None  # draft §9: announced in the BA when set
    dad: bool = False  # RFC 6275 §10.3.1: DAD for the home address of each new binding
    # RFC 5026 §6, §9.5 / draft §6: the domain whose DNS server the HA updates (None: no DNS
    # update service, status 129), the names its MNs may have updated (empty: any name
    # below the domain), and the draft's MAY: remove the entry when a binding expires.
    dns_domain: str | None = None
    dns_names: frozenset[str] = frozenset()
    dns_remove_on_expiry: bool = False
    wire: WireConfig = field(default_factory=WireConfig.from_env)
    faults: Faults = NO_FAULTS  # deliberate faults for the kill matrices (harness/faults.py)


# --- State ----------------------------------------------------------------------------------


@dataclass
class Binding:
    """One binding cache entry (RFC 6275 §9.1), keyed by home address and BID (RFC 5648)."""

    hoa: IPv6
    bid: int  # 0 when the BU carried no Binding Identifier option
    coa: ipaddress.IPv4Address | IPv6
    bid_pri: int
    expires: float
    multicast: BindingMulticast = field(default_factory=BindingMulticast)


@dataclass
class MobileNode:
    """What the HA keeps per home address across its bindings."""

    hoa: IPv6
    last_seq: int
    bindings: dict[int, Binding] = field(default_factory=dict)
    flows: dict[int, Flow] = field(default_factory=dict)
    ipv4_hoa: IPv4 | None = None
    fqdn: str | None = None  # the name registered in the DNS for the home address
    dns_hoa4: IPv4 | None = None  # the IPv4 home address registered under it (an A record)
    spi: int | None = None


# --- Actions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BidStatus:
    bid: int
    status: int
    bid_pri: int = 0  # copied from the BU (RFC 6089 §5.3.5)


@dataclass(frozen=True)
class FidStatus:
    fid: int
    fid_pri: int
    status: int
    suboptions: bytes = b""  # the BU's, copied (RFC 6089 §5.3.5)


@dataclass(frozen=True)
class McastEcho:
    report_type: int
    records: tuple[McastRecord, ...]


@dataclass(frozen=True)
class DnsStatus:
    status: int
    remove: bool
    fqdn: bytes


@dataclass(frozen=True)
class IPv4Ack:
    status: int
    prefix_len: int
    address: IPv4


@dataclass(frozen=True)
class Udp4:
    """Where a BU in UDP and IPv4 came from (RFC 5555 §4.2): the outer source (V4ADDR) and
    port the BA goes back to, and whether a NAT was in the path (the IPv4 Care-of Address
    option differs from the outer source, or is missing)."""

    address: IPv4
    port: int
    nat: bool
    forced: bool = False  # the BU's F flag, accepted: UDP even without a NAT (§4.5)
    detection_option: bool = True  # in the BA (§4.2); False only by a fault's hook

    @property
    def in_udp(self) -> bool:
        """Do the binding's packets go in UDP (§4.5.1)?"""
        return self.nat or self.forced


@dataclass(frozen=True)
class SendBindingAck:
    coa: ipaddress.IPv4Address | IPv6  # where the BA goes
    hoa: IPv6  # for the type 2 routing header
    seq: int
    status: int
    lifetime: int  # in 4-second units
    bids: tuple[BidStatus, ...] = ()
    flows: tuple[FidStatus, ...] = ()
    multicast: tuple[McastEcho, ...] = ()
    dns: DnsStatus | None = None
    ipv4: IPv4Ack | None = None
    data_plane: IPv6 | None = None
    auth_spi: int | None = None  # sign with this SA (RFC 4285 §5.1.1: BA answers in kind)
    replay_timestamp: int | None = None  # RFC 4285 §6, echoed or the HA's own on mismatch
    udp4: Udp4 | None = None  # RFC 5555 §4.2: the BU came in UDP/IPv4, the BA goes so too


@dataclass(frozen=True)
class SendBindingError:
    dst: IPv6
    hoa: IPv6
    status: int


@dataclass(frozen=True)
class SendParameterProblem:
    dst: IPv6
    pointer: int
    invoking_packet: bytes


@dataclass(frozen=True)
class TunnelUp:
    hoa: IPv6
    bid: int
    coa: ipaddress.IPv4Address | IPv6


@dataclass(frozen=True)
class TunnelMoved:
    """The binding's tunnel now ends at `coa` instead of `old` (RFC 6275 §10.3.1: the
    entry is updated in place; the tunnel itself stays)."""

    hoa: IPv6
    bid: int
    old: ipaddress.IPv4Address | IPv6
    coa: ipaddress.IPv4Address | IPv6


@dataclass(frozen=True)
class TunnelDown:
    hoa: IPv6
    bid: int
    coa: ipaddress.IPv4Address | IPv6


@dataclass(frozen=True)
class MulticastChanged:
    hoa: IPv6
    bid: int
    coa: ipaddress.IPv4Address | IPv6
    state: BindingMulticast


@dataclass(frozen=True)
class DadRequest:
    """RFC 6275 §10.3.1: run Duplicate Address Detection (RFC 4862 §5.4) for `hoa` on the
    home link; answer with HomeAgentCore.dad_done(request_id, duplicate, now)."""

    request_id: int
    hoa: IPv6


@dataclass(frozen=True)
class DnsRequest:
    """Ask the DNS server (RFC 2136): add (remove=False) or delete the AAAA record `fqdn` ->
    `hoa` (and the A record -> `hoa4` when given: draft §8, the MN's IPv4 home address in
    the DNS too); answer with HomeAgentCore.dns_done(request_id, ok). `fqdn` is absolute text;
    `why` says what asked for it (register, remove: the R flag, deregister, expiry)."""

    request_id: int
    fqdn: str
    hoa: IPv6
    remove: bool
    why: str = "register"
    hoa4: IPv4 | None = None  # its A record too: the MN's IPv4 home address (dual stack)


@dataclass(frozen=True)
class IPv4Bound:
    """RFC 5555 §4.5: the IPv4 home address of `hoa` is now `address` (None: it has none):
    its packets go through the tunnels of the home address's bindings (§4.5.1)."""

    hoa: IPv6
    address: IPv4 | None


Action = (
    SendBindingAck
    | SendBindingError
    | SendParameterProblem
    | TunnelUp
    | TunnelMoved
    | TunnelDown
    | MulticastChanged
    | DadRequest
    | DnsRequest
    | IPv4Bound
)


# --- The core -------------------------------------------------------------------------------


def seq_newer(seq: int, last: int) -> bool:
    """RFC 6275 §9.5.1: `seq` is greater than `last` modulo 2**16."""
    return 0 < (seq - last) % (1 << 16) < SEQ_WINDOW


def _newer(seq: int, last: int, faults: Faults) -> bool:
    if faults.has(Fault.HA_SEQ_NO_WRAP):
        return seq_newer(seq, last) and seq > last  # 0 after 65535 taken as older
    return seq_newer(seq, last)


def _ntp_now(now: float) -> int:
    seconds = int(now) + NTP_EPOCH_OFFSET
    return (seconds << 32) | int((now % 1) * (1 << 32))


def timestamp_fresh(stamp: int, now: float) -> bool:
    """RFC 4285 §6: a Timestamp (NTP format) close enough to the HA's clock."""
    sent = (stamp >> 32) - NTP_EPOCH_OFFSET + (stamp & 0xFFFFFFFF) / (1 << 32)
    return abs(sent - now) <= REPLAY_WINDOW


def timestamp_valid(stamp: int, last: int | None, now: float) -> bool:
    """RFC 4285 §6: fresh, and greater than every timestamp accepted before (`last`)."""
    return timestamp_fresh(stamp, now) and (last is None or stamp > last)


def unicast_routable(addr: IPv6 | IPv4) -> bool:
    """RFC 6275 §6.1.7: may `addr` be a care-of address at all? Not a multicast,
    link-local, loopback or unspecified address (nor an IPv4-mapped one)."""
    if addr.is_multicast or addr.is_loopback or addr.is_unspecified or addr.is_link_local:
        return False
    return not (isinstance(addr, IPv6) and addr.ipv4_mapped is not None)


class HomeAgentCore:
    def __init__(self, config: HAConfig) -> None:
        self.config = config
        self.nodes: dict[IPv6, MobileNode] = {}
        self._request_ids = itertools.count(1)
        self._pending: dict[int, SendBindingAck] = {}  # BAs waiting for their DNS answer
        # The DNS update under way for each home address, (request id, fqdn, remove): a
        # newer BU asking the same while it runs joins it (RFC 5026 §6, INT-18), its BA
        # replacing the one that waited, so retransmissions never restart the wait.
        self._pending_hoa: dict[IPv6, tuple[int, str, bool]] = {}
        # RFC 6275 §10.3.1: BUs of new home addresses waiting for their DAD, by request id
        # (the newest BU of the home address: a retransmission replaces the one before).
        self._dad: dict[int, tuple[MobilityMessage, IPv6]] = {}
        self._dad_ids: dict[IPv6, int] = {}
        # RFC 5555 §4.2: the UDP/IPv4 path of the last BU of each home address that came so
        self._udp4: dict[IPv6, Udp4] = {}
        # RFC 4285 §6: the last accepted Timestamp of each home address, kept after its
        # bindings are gone (a replayed BU must not be accepted again).
        self._timestamps: dict[IPv6, int] = {}
        # Expiry times as a heap of (expires, hoa, bid), an entry stale once its binding's
        # expires differs; and the home addresses an event touched since the last tick, whose
        # node goes if it holds no binding. Both keep a tick independent of the cache's size.
        self._expiries: list[tuple[float, IPv6, int]] = []
        self._touched: set[IPv6] = set()

    # -- queries -------------------------------------------------------------------------
    def bindings(self) -> list[Binding]:
        return [b for node in self.nodes.values() for b in node.bindings.values()]

    def binding(self, hoa: IPv6, bid: int) -> Binding | None:
        node = self.nodes.get(hoa)
        return node.bindings.get(bid) if node is not None else None

    def udp4_path(self, hoa: IPv6) -> Udp4 | None:
        """The UDP/IPv4 path of the home address's last BU, if it came so (RFC 5555 §4.2)."""
        return self._udp4.get(hoa)

    def next_deadline(self) -> float | None:
        while self._expiries and self._stale(self._expiries[0]):
            heapq.heappop(self._expiries)
        return self._expiries[0][0] if self._expiries else None

    def _stale(self, entry: tuple[float, IPv6, int]) -> bool:
        node = self.nodes.get(entry[1])
        binding = node.bindings.get(entry[2]) if node is not None else None
        return binding is None or binding.expires != entry[0]

    def _expires(self, binding: Binding, when: float) -> None:
        binding.expires = when
        heapq.heappush(self._expiries, (when, binding.hoa, binding.bid))

    # -- events --------------------------------------------------------------------------
    def receive(
        self, packet: bytes, now: float, udp4: tuple[IPv4, int] | None = None
    ) -> list[Action]:
        """An IPv6 packet carrying a Mobility Header arrived; `udp4`: in UDP and IPv4 from
        this (address, port) (RFC 5555 §4.2)."""
        try:
            msg = compact.parse_packet(packet)
        except compact.Malformed:
            return []  # RFC 6275 §9.2: not a message we can process; silently discarded
        reaction = compact.judge_message(msg, self.config.wire)
        src = IPv6(msg.src_raw)
        hoa = IPv6(msg.hoa_raw) if msg.hoa_raw else src
        self._touched.add(hoa)
        if udp4 is not None:
            self._udp4[hoa] = self._udp4_path(msg, udp4)
        else:
            self._udp4.pop(hoa, None)
        return self._over_udp(self._received(msg, packet, reaction, src, hoa, now))

    def _udp4_path(self, msg: MobilityMessage, udp4: tuple[IPv4, int]) -> Udp4:
        """RFC 5555 §4.2: a NAT was in the path when the IPv4 Care-of Address option is not
        the outer source (the reference takes a missing option likewise, INT-21)."""
        options = compact.parse_options(msg.body, compact.FIXED_PART[compact.MHType.BU])
        opt = _first(options, MobOpt.IPV4_CARE_OF_ADDRESS)
        said = IPv4(opt.data[2:6]) if opt is not None and len(opt.data) == 6 else None
        return Udp4(udp4[0], udp4[1], said != udp4[0], bool(msg.bu_flags & FLAG_F))

    def _over_udp(self, actions: list[Action]) -> list[Action]:
        """The BAs of home addresses whose last BU came in UDP/IPv4 go back that way."""
        if not self._udp4:
            return actions
        return [
            dataclasses.replace(a, udp4=self._udp4[a.hoa])
            if isinstance(a, SendBindingAck) and a.hoa in self._udp4
            else a
            for a in actions
        ]

    def _received(
        self,
        msg: MobilityMessage,
        packet: bytes,
        reaction: compact.Reaction,
        src: IPv6,
        hoa: IPv6,
        now: float,
    ) -> list[Action]:
        if reaction.kind is ReactionKind.DISCARD:
            return []
        if reaction.kind is ReactionKind.ICMP_PARAMETER_PROBLEM:
            return [SendParameterProblem(src, reaction.pointer or 0, packet)]
        if reaction.kind is ReactionKind.BINDING_ERROR:
            return [SendBindingError(src, hoa, reaction.status or 2)]
        if reaction.status is not None and reaction.status >= 128:
            return [self._reject(msg, src, hoa, reaction.status)]
        udp = self._udp4.get(hoa)
        return self._binding_update(msg, src, hoa, now, via=udp.address if udp else None)

    def tick(self, now: float) -> list[Action]:
        """Expire bindings whose lifetime ran out (RFC 6275 §10.3.1)."""
        actions: list[Action] = []
        while self._expiries and self._expiries[0][0] <= now:
            entry = heapq.heappop(self._expiries)
            if self._stale(entry) or self.config.faults.has(Fault.HA_NO_EXPIRY):
                continue
            node = self.nodes[entry[1]]
            actions += self._removed(node.bindings.pop(entry[2]))
            self._touched.add(node.hoa)
        why = "expiry" if self.config.dns_remove_on_expiry else ""  # draft §6 MAY
        for hoa in self._touched:
            left = self.nodes.get(hoa)
            if left is not None and not left.bindings:
                actions += self._forget(left, why)
        self._touched.clear()
        return actions

    def dns_done(self, request_id: int, ok: bool) -> list[Action]:
        """The DNS server answered a DnsRequest; release the BA that waited for it."""
        ba = self._pending.pop(request_id, None)
        if ba is None or ba.dns is None:
            return []
        if self._pending_hoa.get(ba.hoa, (None,))[0] == request_id:
            del self._pending_hoa[ba.hoa]
        status = 0 if ok else 130  # RFC 5026 §8.1: 130 DNS update failed
        dns = DnsStatus(status, ba.dns.remove, ba.dns.fqdn)
        return self._over_udp([SendBindingAck(**{**ba.__dict__, "dns": dns})])

    def dad_done(self, request_id: int, duplicate: bool, now: float) -> list[Action]:
        """The DAD of a DadRequest ended: another node answered for the home address
        (duplicate: BA status 134, nothing created) or none did (the BU is processed)."""
        pending = self._dad.pop(request_id, None)
        if pending is None:
            return []
        msg, src = pending
        hoa = IPv6(msg.hoa_raw) if msg.hoa_raw else src
        self._touched.add(hoa)
        self._dad_ids.pop(hoa, None)
        udp = self._udp4.get(hoa)
        via = udp.address if udp else None
        return self._over_udp(self._binding_update(msg, src, hoa, now, dad=not duplicate, via=via))

    # -- Binding Update processing -------------------------------------------------------
    def _reject(self, msg: MobilityMessage, coa: IPv6, hoa: IPv6, status: int) -> SendBindingAck:
        return SendBindingAck(coa, hoa, msg.seq, status, 0)

    def _binding_update(
        self,
        msg: MobilityMessage,
        src: IPv6,
        hoa: IPv6,
        now: float,
        dad: bool | None = None,
        via: IPv4 | None = None,
    ) -> list[Action]:
        """`dad`: None for a BU just received; True once DAD found the home address unique,
        False once it found a duplicate (RFC 6275 §10.3.1). `via`: the outer IPv4 source of
        a BU in UDP/IPv4, the care-of address its packets go to (RFC 5555 §4.2, §4.5)."""
        cfg = self.config
        options = compact.parse_options(msg.body, compact.FIXED_PART[compact.MHType.BU])
        flags = msg.bu_flags  # the Reserved bits are left out (RFC 6275 §6.1.7)
        ack_requested = bool(flags & 0x200)  # A: a home registration is answered regardless
        home = bool(flags & 0x100)  # H
        coa: IPv6 | IPv4 = src
        alt = _first(options, MobOpt.ALTERNATE_COA)
        if alt is not None and len(alt.data) == 16:
            coa = IPv6(alt.data)  # RFC 6275 §6.2.5
        if via is not None:
            coa = via  # RFC 5555 §4.2: V4ADDR, the CoA or the NAT's address
        if not unicast_routable(coa) and not cfg.faults.has(Fault.HA_ACCEPT_BAD_COA):
            return []  # RFC 6275 §6.1.7: silently discarded

        # RFC 4285: authenticate before believing anything else in the message.
        auth = _first(options, MobOpt.MESSAGE_AUTH)
        spi = None
        if auth is not None:
            spi = struct.unpack_from("!I", auth.data, 1)[0] if len(auth.data) >= 5 else None
            key = cfg.keys.get(spi) if spi is not None else None
            if key is None:
                return []  # RFC 4285 §5.1.1: no SA for it, the HA MUST discard the BU
            authentic = cfg.faults.has(Fault.HA_ACCEPT_BAD_AUTH) or _authentic(
                msg, auth, key, coa if isinstance(coa, IPv6) else src, hoa
            )
            if not authentic:
                return [SendBindingAck(coa, hoa, msg.seq, BAStatus.MIPV6_AUTH_FAIL, 0)]
        elif cfg.require_auth and not cfg.faults.has(Fault.HA_ACCEPT_UNAUTH):
            return []  # no authentication where an SA is required: discarded likewise
        replay = _first(options, MobOpt.REPLAY_PROTECTION)
        stamp = None
        if replay is not None and len(replay.data) == 8:
            # RFC 4285 §6, after authentication: close to the HA's clock and greater than
            # every timestamp accepted before for this mobile node.
            stamp = struct.unpack("!Q", replay.data)[0]
            if not self._timestamp_valid(stamp, self._timestamps.get(hoa), now):
                # No binding; the BA carries the HA's time of day in the high-order 32
                # bits and the BU's low-order 32 bits.
                mine = (_ntp_now(now) & ~0xFFFFFFFF) | (stamp & 0xFFFFFFFF)
                return [
                    SendBindingAck(
                        coa,
                        hoa,
                        msg.seq,
                        BAStatus.MIPV6_ID_MISMATCH,
                        0,
                        auth_spi=spi,
                        replay_timestamp=mine,
                    )
                ]
        elif cfg.require_replay_protection:
            return [SendBindingAck(coa, hoa, msg.seq, BAStatus.MIPV6_MESG_ID_REQD, 0, auth_spi=spi)]

        def reply(status: int, **extra: object) -> list[Action]:
            return [SendBindingAck(coa, hoa, msg.seq, status, 0, auth_spi=spi, **extra)]  # type: ignore[arg-type]

        if not home:
            return reply(BAStatus.HOME_REGISTRATION_NOT_SUPPORTED)
        if hoa not in cfg.home_prefix and not cfg.faults.has(Fault.HA_ACCEPT_FOREIGN_HOA):
            return reply(BAStatus.NOT_HOME_SUBNET)
        node = self.nodes.get(hoa)
        newer = cfg.faults.has(Fault.HA_IGNORE_SEQ) or (
            node is not None and _newer(msg.seq, node.last_seq, cfg.faults)
        )
        if node is not None and not newer:
            # RFC 6275 §9.5.1: the BA carries the last accepted sequence number.
            return [
                SendBindingAck(
                    coa, hoa, node.last_seq, BAStatus.SEQUENCE_OUT_OF_WINDOW, 0, auth_spi=spi
                )
            ]

        requested = msg.lifetime * LIFETIME_UNIT
        dereg = requested == 0 or coa == hoa
        granted = 0 if dereg else min(requested, cfg.max_lifetime)
        if node is None:
            if dereg:
                # RFC 6275 §10.3.2: no home registration to remove; rejected, status 133.
                # A registration still waiting on its DAD is superseded by this newer BU:
                # it must not create the binding the MN has just given up.
                running = self._dad_ids.pop(hoa, None)
                if running is not None:
                    self._dad.pop(running, None)
                return reply(BAStatus.NOT_HOME_AGENT)
            if cfg.dad and dad is None:
                # RFC 6275 §10.3.1: DAD for the home address before the BA.
                running = self._dad_ids.get(hoa)
                if running is not None:  # a DAD runs already: it answers this BU instead
                    self._dad[running] = (msg, src)
                    return []
                dad_id = next(self._request_ids)
                self._dad[dad_id] = (msg, src)
                self._dad_ids[hoa] = dad_id
                return [DadRequest(dad_id, hoa)]
            if dad is False:
                return reply(BAStatus.DAD_FAILED)
            node = self.nodes[hoa] = MobileNode(hoa, msg.seq)
        node.last_seq = msg.seq
        node.spi = spi
        if stamp is not None:
            self._timestamps[hoa] = stamp

        actions: list[Action] = []
        bid_opts = [o for o in options if o.otype == MobOpt.BINDING_IDENTIFIER]
        bid_status: list[BidStatus] = []
        targets: list[tuple[int, int, IPv6 | IPv4]] = []  # (bid, bid_pri, coa)
        status: int = BAStatus.ACCEPTED
        if bid_opts:
            # RFC 5648 §6.2: each BID option's status; one alone answers in the BA's.
            bound = {b: x.coa for b, x in node.bindings.items() if b}
            requests = ha_mcoa.bid_requests(bid_opts, bound, dereg, unicast_routable)
            status, each = ha_mcoa.ba_status(requests)
            if 0 in node.bindings and not dereg and not flags & FLAG_O:
                status, each = BAStatus.MCOA_NON_MCOA_BINDING_EXISTS, [0] * len(requests)
            bid_status = [
                BidStatus(r.bid, s, r.bid_pri) for r, s in zip(requests, each, strict=True)
            ]
            if status >= 128:
                return reply(status, bids=tuple(bid_status))
            for r in requests:
                if not r.status:
                    targets.append((r.bid, r.bid_pri, r.coa or node.bindings[r.bid].coa))
            if flags & FLAG_O and not dereg:  # replaces every binding (RFC 5648 §5.9, §6.2)
                keep = {t[0] for t in targets}
                for other in [b for b in node.bindings.values() if b.bid not in keep]:
                    del node.bindings[other.bid]
                    actions += self._removed(other)
        else:
            targets.append((0, 0, coa))
            # RFC 5648 §6.2: a BU without BID replaces every binding of the home address.
            for other in list(node.bindings.values()):
                if other.bid != 0:
                    del node.bindings[other.bid]
                    actions += self._removed(other)

        mcast = [o for o in options if compact.is_multicast_state(o, cfg.wire)]
        if cfg.faults.has(Fault.HA_MCAST_STATE_FIRST_POSITION_ONLY):
            real = [o for o in options if o.otype not in (0, 1)]  # Pad1, PadN
            mcast = mcast if real and compact.is_multicast_state(real[0], cfg.wire) else []
        # OPEN-8: the state is the binding's whose CoA sent the BU (else the first BID's).
        mcast_bid = next((t[0] for t in targets if t[2] == coa), targets[0][0] if targets else 0)
        for bid, pri, target in targets:
            old = node.bindings.get(bid)
            if dereg:
                if old is not None:
                    del node.bindings[bid]
                    actions += self._removed(old)
                continue
            prev_coa = old.coa if old is not None else None
            if old is None:
                binding = Binding(hoa, bid, target, pri, now + granted)
                self._expires(binding, now + granted)
                node.bindings[bid] = binding
                actions.append(TunnelUp(hoa, bid, target))
            else:
                binding = old
                if prev_coa != target:
                    actions.append(TunnelMoved(hoa, bid, old.coa, target))
                binding.coa, binding.bid_pri = target, pri
                self._expires(binding, now + granted)
            before = (dict(binding.multicast.mld.groups), dict(binding.multicast.igmp.groups))
            if mcast and bid == mcast_bid:
                _install_multicast(binding, mcast, cfg.faults)
            after = (binding.multicast.mld.groups, binding.multicast.igmp.groups)
            moved = prev_coa is not None and prev_coa != target and any(after)
            if before != after or moved:
                actions.append(MulticastChanged(hoa, bid, target, binding.multicast))

        echo: tuple[McastEcho, ...] = ()
        if mcast and not dereg and mcast_bid in node.bindings:
            echo = _echo(node.bindings[mcast_bid], mcast)

        flows = self._flows(node, options, dereg and not bid_opts)
        had4 = node.ipv4_hoa
        ipv4 = self._ipv4(node, options, dereg)
        if node.ipv4_hoa != had4:
            actions.append(IPv4Bound(hoa, node.ipv4_hoa))
        ba = SendBindingAck(
            coa,
            hoa,
            msg.seq,
            status,
            granted // LIFETIME_UNIT,
            bids=tuple(bid_status),
            flows=flows,
            multicast=echo,
            ipv4=ipv4,
            data_plane=cfg.data_plane_address if not dereg else None,
            auth_spi=spi,
            replay_timestamp=stamp,
        )
        dns = _first(options, MobOpt.DNS_UPDATE)
        request = self._dns_request(node, dns, dereg) if dns is not None else None
        if dereg and not node.bindings:
            # Draft §6: a deregistration removes the node's DNS entry (the removal its own
            # DNS Update option asks for already cleared node.fqdn).
            actions += self._forget(node, "deregister")
        # A BA waiting for a DNS update is superseded by this newer BU's (RFC 6275 §11.7.3:
        # the MN takes the BA of its latest BU only); asking the same update, this BU joins
        # the one under way instead of restarting it (RFC 5026 §6, INT-18).
        waiting = self._pending_hoa.pop(hoa, None)
        if waiting is not None:
            self._pending.pop(waiting[0], None)
        if dns is not None:
            # Draft §6, RFC 5026 §6: the BA goes out after the DNS update, with its status.
            if isinstance(request, DnsRequest):
                wanted = (request.fqdn, request.remove)
                joins = waiting is not None and waiting[1:] == wanted
                if waiting is not None and joins and not cfg.faults.has(Fault.HA_DNS_RESTART):
                    rid = waiting[0]
                else:
                    rid = request.request_id
                    actions.append(request)
                self._pending[rid] = dataclasses.replace(
                    ba, dns=DnsStatus(0, request.remove, dns.data[2:])
                )
                self._pending_hoa[hoa] = (rid, *wanted)
                return actions
            remove = dereg or (len(dns.data) >= 2 and bool(dns.data[1] & 0x80))
            refused = DnsStatus(request if isinstance(request, int) else 128, remove, dns.data[2:])
            actions.append(dataclasses.replace(ba, dns=refused))
        elif ack_requested or not cfg.faults.has(Fault.HA_NO_BA_WITHOUT_A):
            # RFC 6275 §10.3.1: "Regardless of the setting of the Acknowledge (A) bit".
            actions.append(ba)
        return actions

    # -- pieces ------------------------------------------------------------------------------
    def _timestamp_valid(self, stamp: int, last: int | None, now: float) -> bool:
        faults = self.config.faults
        if faults.has(Fault.HA_ACCEPT_STALE_TIMESTAMP) or faults.has(
            Fault.HA_STALE_TIMESTAMP_BINDS
        ):
            return last is None or stamp > last  # fresh or not
        if faults.has(Fault.HA_ACCEPT_REPLAYED_TIMESTAMP):
            return timestamp_fresh(stamp, now)  # greater or not
        return timestamp_valid(stamp, last, now)

    def _removed(self, binding: Binding) -> list[Action]:
        out: list[Action] = [TunnelDown(binding.hoa, binding.bid, binding.coa)]
        if binding.multicast.mld.groups or binding.multicast.igmp.groups:
            out.append(MulticastChanged(binding.hoa, binding.bid, binding.coa, BindingMulticast()))
        return out

    def _forget(self, node: MobileNode, why: str) -> list[Action]:
        """The node has no binding left: drop it, and with `why` its DNS entry (draft §6)."""
        self.nodes.pop(node.hoa, None)
        out: list[Action] = []
        if node.ipv4_hoa is not None:
            out.append(IPv4Bound(node.hoa, None))  # RFC 5555 §4.5: its IPv4 entry goes too
        if node.fqdn is not None and why:
            rid = next(self._request_ids)
            out.append(DnsRequest(rid, node.fqdn, node.hoa, True, why, node.dns_hoa4))
        return out

    def _dns_request(self, node: MobileNode, opt: Option, dereg: bool) -> DnsRequest | int:
        """The DNS update a DNS Update option asks for (RFC 5026 §6, §8.1), or the status
        that refuses it: 128 for an option or identity that is malformed, 129 for a name the
        HA may not update for this MN (RFC 5026 §9.5) or without a DNS service."""
        if len(opt.data) < 2:
            return 128  # no Status and flags octets
        fqdn = fqdn_from_wire(opt.data[2:])
        if fqdn is None:
            return 128
        if not dns_authorised(fqdn, self.config):
            return 129
        remove = dereg or bool(opt.data[1] & 0x80)  # RFC 5026 §8.1: Status ignored in a BU
        why = "deregister" if dereg else "remove" if remove else "register"
        hoa4 = node.dns_hoa4 if remove else node.ipv4_hoa
        if remove and node.fqdn == fqdn:
            node.fqdn, node.dns_hoa4 = None, None
        elif not remove:
            node.fqdn, node.dns_hoa4 = fqdn, node.ipv4_hoa
        return DnsRequest(next(self._request_ids), fqdn, node.hoa, remove, why, hoa4)

    def _flows(self, node: MobileNode, options: list[Option], dereg: bool) -> tuple[FidStatus, ...]:
        """RFC 6089 §5.3.2-§5.3.4 after the BID options (§5.3.1); `dereg`: an RFC 6275
        deregistration, which deletes every flow binding (§5.3.3)."""
        if dereg:
            node.flows.clear()
            return ()
        bound = {b for b in node.bindings if b}
        node.flows, answers = ha_mcoa.flow_options(node.flows, bound, options)
        # §5.3.5: the BA copies each FID option of the BU, sub-options too, with its Status
        copied: dict[int, bytes] = {}
        if not self.config.faults.has(Fault.HA_BA_FID_WITHOUT_SUBOPTIONS):
            for o in options:
                if o.otype == MobOpt.FLOW_IDENTIFICATION and len(o.data) >= 6:
                    copied[struct.unpack_from("!H", o.data)[0]] = o.data[6:]
        return tuple(FidStatus(f, pri, st, copied.get(f, b"")) for f, pri, st in answers)

    def _ipv4(self, node: MobileNode, options: list[Option], dereg: bool) -> IPv4Ack | None:
        """RFC 5555 §3.1.1, §3.2.1, §4.5: the IPv4 home address of an IPv4 Home Address
        option, static (checked against the other MNs') or dynamic (from the pool); only
        single addresses, never prefixes (133). The answer for the BA's IPv4 Address
        Acknowledgement, or None without the option."""
        opt = _first(options, MobOpt.IPV4_HOME_ADDRESS)
        if opt is None or len(opt.data) != 6:
            return None
        prefix_len, wants_prefix = opt.data[0] >> 2, bool(opt.data[0] & 0x02)
        asked = IPv4(opt.data[2:6])
        pool = self.config.ipv4_pool
        if dereg:
            node.ipv4_hoa = None
            return IPv4Ack(0, prefix_len, asked)
        if prefix_len == 0:
            return IPv4Ack(128, 0, asked)  # §3.1.1: zero is an error
        if pool is None:
            return IPv4Ack(129, 0, asked)  # administratively prohibited: no IPv4 here
        if wants_prefix and node.ipv4_hoa is None:
            return IPv4Ack(133, 0, asked)  # §4.5: no prefix of any length is allocated
        held = {n.ipv4_hoa for n in self.nodes.values() if n is not node}
        if asked != IPv4(0):
            if not valid_home_address(asked):
                return IPv4Ack(131, 0, asked)  # invalid IPv4 address
            if asked not in pool or asked == self.config.ipv4_address or asked in held:
                return IPv4Ack(130, 0, asked)  # §4.5: not this MN's to have (INT-21)
            node.ipv4_hoa = asked
            return IPv4Ack(0, 32, asked)
        if node.ipv4_hoa is None:
            own = self.config.ipv4_address
            free = next((a for a in pool.hosts() if a not in held and a != own), None)
            if free is None:
                return IPv4Ack(132, 0, asked)  # §4.5: dynamic assignment not available
            node.ipv4_hoa = free
        return IPv4Ack(0, 32, node.ipv4_hoa)


MAX_NAME = 255  # RFC 1035 §2.3.4: octets of a name in wire format
MAX_LABEL = 63


def fqdn_from_wire(data: bytes) -> str | None:
    """The MN identity of a DNS Update option as lower-case absolute text: a domain name in
    uncompressed wire format (RFC 1035 §3.1) that fills the field, or the name as text
    (INT-17 (2), INT-18); None when it is neither (a label longer than 63 octets, a name
    over 255, a compression pointer, no root label, octets after it, a label with octets
    that are not printable, the root alone)."""
    return _wire_name(data) or _text_name(data)


def _label(label: bytes) -> str | None:
    if not 0 < len(label) <= MAX_LABEL or not all(0x21 <= c < 0x7F and c != 0x2E for c in label):
        return None
    return label.decode("ascii").lower()


def _wire_name(data: bytes) -> str | None:
    if not data or len(data) > MAX_NAME or data[-1] != 0:
        return None
    labels: list[str] = []
    pos = 0
    while data[pos] != 0:
        size = data[pos]
        label = _label(data[pos + 1 : pos + 1 + size]) if pos + 1 + size < len(data) else None
        if label is None or len(labels) > MAX_NAME:
            return None  # includes 0xC0.. (a pointer is no length of 63 or less)
        labels.append(label)
        pos += 1 + size
    return ".".join(labels) + "." if labels and pos == len(data) - 1 else None


def _text_name(data: bytes) -> str | None:
    text = data[:-1] if data.endswith(b".") else data
    parts = [_label(p) for p in text.split(b".")]
    if not text or len(text) + 2 > MAX_NAME or any(p is None for p in parts):
        return None
    return ".".join(p for p in parts if p) + "."


def dns_authorised(fqdn: str, config: HAConfig) -> bool:
    """RFC 5026 §9.5: may a mobile node of this HA have `fqdn` updated? A name of the
    configured list, else any name strictly below the HA's domain (INT-18)."""
    if config.dns_domain is None:
        return False
    domain = config.dns_domain.lower().rstrip(".") + "."
    if config.dns_names:
        return fqdn in {n.lower().rstrip(".") + "." for n in config.dns_names}
    return fqdn.endswith("." + domain)


def _first(options: list[Option], otype: int) -> Option | None:
    return next((o for o in options if o.otype == otype), None)


def _authentic(msg: MobilityMessage, opt: Option, key: bytes, coa: IPv6, hoa: IPv6) -> bool:
    """RFC 4285 §5.1: HMAC_SHA1 over CoA | HoA | MH up to the SPI, checksum zeroed."""
    if len(opt.data) < 5 + 12:
        return False
    spi_end = opt.offset + 2 + 5
    mh = msg.body[:4] + b"\x00\x00" + msg.body[6:spi_end]
    mac = hmac.new(key, coa.packed + hoa.packed + mh, hashlib.sha1).digest()[:12]
    return hmac.compare_digest(mac, opt.data[5:17])


def served_scope(group: ipaddress.IPv4Address | IPv6, faults: Faults = NO_FAULTS) -> bool:
    """May the HA serve `group` over a tunnel at all? Not when its scope is link-local or
    less (RFC 6275 §10.4.2: such packets MUST NOT be tunnelled; docs/interpretations.md
    OPEN-6: such records are neither installed nor echoed). IPv4: 224.0.0.0/24."""
    if faults.has(Fault.HA_TUNNEL_LINK_LOCAL):
        return True
    if group.version == 6:
        return (group.packed[1] & 0xF) > 2
    return group not in LINK_LOCAL_GROUPS4


LINK_LOCAL_GROUPS4 = ipaddress.IPv4Network("224.0.0.0/24")


def parse_multicast_state(data: bytes, faults: Faults = NO_FAULTS) -> compact.McastState:
    """The body of a Multicast State option as this HA reads it (INT-1): a report whose
    records of an unknown type are ignored, the rest processed (RFC 3810 §5.2.12, RFC 3376
    §4.2.12), whose Reserved fields are ignored (RFC 3810 §5.2.1); counts that overrun the
    body or octets after its records make it malformed. Faults read it otherwise."""
    igmp = data[:1] == bytes([IGMPV3_REPORT])
    if faults.has(Fault.HA_DROP_OPTION_WITH_UNKNOWN_RECORD) or (
        igmp and faults.has(Fault.HA_DROP_IGMP_OPTION_WITH_UNKNOWN_RECORD)
    ):
        state = compact.parse_multicast_state(data)  # an unknown type: the option is malformed
    else:
        state = compact.multicast_state_as_received(data)
    if faults.has(Fault.HA_REJECT_REPORT_RESERVED) and (data[1] or data[4:6] != b"\0\0"):
        raise compact.Malformed("Reserved fields not zero")
    if faults.has(Fault.HA_IGNORE_MCAST_CHECKSUM) or (
        igmp and faults.has(Fault.HA_IGNORE_IGMP_CHECKSUM)
    ):
        state = dataclasses.replace(state, checksum_ok=True)
    if faults.has(Fault.HA_DROP_AUX_RECORDS):
        state = dataclasses.replace(state, records=tuple(r for r in state.records if not r.auxdata))
    return state


# INT-2: the MLD pseudo-header an MN's stack puts under a report it sends (RFC 3810 §5.2.2,
# RFC 8200 §8.1): to ff02::16, from a link-local address with the interface identifier of
# its home or care-of address (RFC 4862 §5.3), or from :: (RFC 3810 §5.2.13).
MLDV2_ROUTERS = IPv6("ff02::16")


def pseudo_header_sources(hoa: IPv6, coa: IPv6 | IPv4) -> list[IPv6]:
    out = [IPv6("::")]
    for addr in (hoa, coa):
        if isinstance(addr, IPv6):
            out.append(IPv6(b"\xfe\x80" + bytes(6) + addr.packed[8:]))
    return out


def checksum_accepted(
    state: compact.McastState, data: bytes, sources: list[IPv6], faults: Faults = NO_FAULTS
) -> bool:
    """INT-2: the option's checksum, without a pseudo-header or (an MN that copies its
    stack's report) with the MLD pseudo-header of one of `sources`."""
    if state.checksum_ok:
        return True
    if state.report_type != MLDV2_REPORT or faults.has(Fault.HA_REFUSE_PSEUDO_HEADER_CHECKSUM):
        return False
    for src in sources:
        pseudo = src.packed + MLDV2_ROUTERS.packed + struct.pack("!I3xB", len(data), 58)
        if compact.parse_report(data, pseudo).checksum_ok:
            return True
    return False


def _install_multicast(binding: Binding, options: list[Option], faults: Faults) -> None:
    states = []
    if faults.has(Fault.HA_FIRST_OPTION_ONLY):
        options = options[:1]
    sources = pseudo_header_sources(binding.hoa, binding.coa)
    for opt in options:
        try:
            state = parse_multicast_state(opt.data, faults)
        except compact.Malformed:
            continue  # INT-2: a malformed option installs nothing
        if checksum_accepted(state, opt.data, sources, faults):
            states.append(state)
    # a fault applies the changes to an empty state instead of the binding's
    binding.multicast.apply(states, from_empty=faults.has(Fault.HA_CHANGES_REPLACE_STATE))
    for family in (binding.multicast.mld, binding.multicast.igmp):
        for group in [g for g in family.groups if not served_scope(g, faults)]:
            del family.groups[group]  # OPEN-6 / RFC 6275 §10.4.2


def _echo(binding: Binding, options: list[Option]) -> tuple[McastEcho, ...]:
    """INT-6: each family the BU carried, with what is installed now (maybe nothing)."""
    families = []
    for opt in options:
        family = opt.data[0] if opt.data else None
        if family in (MLDV2_REPORT, IGMPV3_REPORT) and family not in families:
            families.append(family)
    out = []
    for family in families:
        state = binding.multicast.mld if family == MLDV2_REPORT else binding.multicast.igmp
        out.append(McastEcho(family, tuple(echo_records(state))))
    return tuple(out)
