"""Hook points at which the reference Home Agent's faults bend what it does (sans-I/O).

The faults themselves are catalogued in harness/faults.py; the daemon hands its `Faults` to
the functions here, which return the core's actions as the faulty HA would carry them out
(a BA with another number, a Binding Error that should not be, none at all...), the extra
multicast service of a fault that keeps state it must not, and the bytes of a faulty Router
Advertisement. With no faults, each returns what it was given.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import struct
from typing import Any

from harness.faults import Fault, Faults
from harness.reference import ha_core, ha_mcoa
from harness.reference import multicast as mcast
from harness.reference.ha_core import (
    Action,
    SendBindingAck,
    SendBindingError,
    SendParameterProblem,
)
from harness.reference.ha_dataplane import Served
from harness.wire import compact
from harness.wire.numbers import BAStatus, MobOpt

BA_ONLY_OPTIONS = (30, 31)  # what vectors/ puts in a BU to be skipped
_BA_FAULTS = (
    Fault.HA_REJECT_RESERVED_BITS,
    Fault.HA_STALE_TIMESTAMP_BINDS,
    Fault.HA_REJECT_MALFORMED_MCAST,
    Fault.HA_REJECT_BA_OPTIONS,
)


def reaction(faults: Faults, packet: bytes, actions: list[Action]) -> list[Action]:
    """The core's answer to `packet` (a BU, or the BU a DAD ends for), judged by the BU."""
    answers_discarded = faults.has(Fault.HA_ANSWER_DISCARDED) or faults.has(
        Fault.HA_ANSWER_DISCARDED_LATE
    )
    if answers_discarded and not actions and len(packet) >= 40:
        src = ipaddress.IPv6Address(packet[8:24])
        return [SendBindingError(src, src, 1)]
    if any(faults.has(f) for f in _IPV4_FAULTS):
        actions = [_ipv4_answer(faults, packet, a) for a in actions]
    if not any(faults.has(f) for f in _BA_FAULTS):
        return actions
    out: list[Action] = []
    for a in actions:
        if isinstance(a, SendBindingAck) and a.status == 0:
            if faults.has(Fault.HA_REJECT_RESERVED_BITS) and _reserved_bits(packet):
                a = dataclasses.replace(a, status=128, lifetime=0)
            if faults.has(Fault.HA_STALE_TIMESTAMP_BINDS) and _stale_timestamp(packet):
                a = dataclasses.replace(
                    a, status=BAStatus.MIPV6_ID_MISMATCH, lifetime=0, multicast=()
                )
            if (
                faults.has(Fault.HA_REJECT_MALFORMED_MCAST)
                and a.multicast
                and not any(e.records for e in a.multicast)
            ):
                a = dataclasses.replace(a, status=128, multicast=())
            if faults.has(Fault.HA_REJECT_BA_OPTIONS) and _has_options(packet, BA_ONLY_OPTIONS):
                a = dataclasses.replace(a, status=128)
        out.append(a)
    return out


_IPV4_FAULTS = (
    Fault.HA_IPV4_NO_ACK,
    Fault.HA_IPV4_NO_DYNAMIC,
    Fault.HA_IPV4_EXHAUSTED_128,
    Fault.HA_IPV4_TAKEN_ACCEPTED,
    Fault.HA_IPV4_ZERO_PREFIX_ACCEPTED,
    Fault.HA_IPV4_FAILURE_PREFIX_LEN,
)


def _ipv4_answer(faults: Faults, packet: bytes, a: Action) -> Action:
    """The IPv4 Address Acknowledgement (RFC 5555 §3.2.1, §4.5) as the faults send it."""
    if not isinstance(a, SendBindingAck) or a.ipv4 is None:
        return a
    ack, asked = a.ipv4, _ipv4_request(packet)
    if faults.has(Fault.HA_IPV4_NO_ACK) and ack.status < 128:
        return dataclasses.replace(a, ipv4=None)
    if faults.has(Fault.HA_IPV4_NO_DYNAMIC) and ack.status < 128 and asked == (32, "0.0.0.0"):
        ack = ha_core.IPv4Ack(132, 0, ack.address)
    elif faults.has(Fault.HA_IPV4_EXHAUSTED_128) and ack.status == 132:
        ack = ha_core.IPv4Ack(128, 0, ack.address)
    elif (faults.has(Fault.HA_IPV4_TAKEN_ACCEPTED) and ack.status == 130) or (
        faults.has(Fault.HA_IPV4_ZERO_PREFIX_ACCEPTED) and asked and asked[0] == 0
    ):
        ack = ha_core.IPv4Ack(0, 32, ack.address)  # the refusal reported as success
    elif faults.has(Fault.HA_IPV4_FAILURE_PREFIX_LEN) and ack.status >= 128:
        ack = ha_core.IPv4Ack(ack.status, 32, ack.address)
    return dataclasses.replace(a, ipv4=ack)


def _ipv4_request(packet: bytes) -> tuple[int, str] | None:
    """(Prefix-len, address) of the BU's IPv4 Home Address option."""
    opt = next((o for o in _bu_options(packet) if o.otype == MobOpt.IPV4_HOME_ADDRESS), None)
    if opt is None or len(opt.data) != 6:
        return None
    return opt.data[0] >> 2, str(ipaddress.IPv4Address(opt.data[2:6]))


def action(faults: Faults, a: Action, now: float) -> Action | None:
    """One action as the faulty HA performs it; None: not at all."""
    if isinstance(a, SendBindingAck):
        if faults.has(Fault.HA_NO_NAT_DETECTION) and a.udp4 is not None and a.udp4.nat:
            a = dataclasses.replace(a, udp4=dataclasses.replace(a.udp4, nat=False))
        if faults.has(Fault.HA_NAT_DET_ONLY_BEHIND_NAT) and a.udp4 is not None:
            a = dataclasses.replace(a, udp4=dataclasses.replace(a.udp4, detection_option=False))
        if faults.has(Fault.HA_WRONG_SEQ) and a.status == 0:
            return dataclasses.replace(a, seq=(a.seq + 1) & 0xFFFF)
        if faults.has(Fault.HA_LONG_LIFETIME) and a.status == 0 and a.lifetime:
            return dataclasses.replace(a, lifetime=a.lifetime + 1)
        if faults.has(Fault.HA_NO_ECHO):
            return dataclasses.replace(a, multicast=())
        if faults.has(Fault.HA_DEREG_LIFETIME) and a.status == 0 and a.lifetime == 0:
            return dataclasses.replace(a, lifetime=1)
        if faults.has(Fault.HA_UNSIGNED_BA):
            return dataclasses.replace(a, auth_spi=None)
        if faults.has(Fault.HA_DEREG_UNKNOWN_ACCEPTED) and a.status == BAStatus.NOT_HOME_AGENT:
            return dataclasses.replace(a, status=0)
        if faults.has(Fault.HA_NO_REPLAY_ECHO) and a.status == 0:
            return dataclasses.replace(a, replay_timestamp=None)
        if faults.has(Fault.HA_REPLAY_ECHO_OWN_TIME) and a.status == BAStatus.MIPV6_ID_MISMATCH:
            return dataclasses.replace(a, replay_timestamp=ha_core._ntp_now(now))
        if a.bids or a.flows:
            a = _mcoa_answer(faults, a)
        elif faults.has(Fault.HA_BAD_BID_LENGTH_ACCEPTED) and a.status == BAStatus.MCOA_MALFORMED:
            return dataclasses.replace(a, status=0)  # the whole BU refused: a BID's length
        if a.dns is not None:
            return _dns_answer(faults, a)
    if faults.has(Fault.HA_NO_BINDING_ERROR) and isinstance(a, SendBindingError):
        return None
    if faults.has(Fault.HA_NO_PARAM_PROBLEM) and isinstance(a, SendParameterProblem):
        return None
    return a


# Statuses of BID (RFC 5648 §6.2) and Flow Identification (RFC 6089 §4.2) options that a
# fault reports as 0 (accepted), or (None) leaves out of the BA.
_MCOA_LIES = {
    Fault.HA_BAD_BID_COA_ACCEPTED: ("bid", BAStatus.MCOA_MALFORMED, 0),
    Fault.HA_UNKNOWN_BID_ACCEPTED: ("bid", BAStatus.MCOA_UNKNOWN_COA, 0),
    Fault.HA_FID_MALFORMED_ACCEPTED: ("fid", 130, 0),
    Fault.HA_FID_UNKNOWN_BID_ACCEPTED: ("fid", 131, 0),
    Fault.HA_FID_NOT_FOUND_UNANSWERED: ("fid", 132, None),
    Fault.HA_FID_PRI_TAKEN_ACCEPTED: ("fid", 129, 0),
}


def _mcoa_answer(faults: Faults, a: SendBindingAck) -> SendBindingAck:
    """The BID and Flow Identification options of a BA as the faults send them."""
    if faults.has(Fault.HA_BA_WITHOUT_BID_OPTIONS):
        a = dataclasses.replace(a, bids=())
    if faults.has(Fault.HA_BULK_STATUS_IN_BA) and a.status == BAStatus.MCOA_NOTCOMPLETE:
        worst = max(b.status for b in a.bids)  # the BA's own Status instead of NOTCOMPLETE
        bids = tuple(dataclasses.replace(b, status=0) for b in a.bids)
        a = dataclasses.replace(a, status=worst, bids=bids)
    for fault, (kind, status, told) in _MCOA_LIES.items():
        if not faults.has(fault):
            continue
        if kind == "bid":
            bids = tuple(
                dataclasses.replace(b, status=0) if b.status == status else b for b in a.bids
            )
            a = dataclasses.replace(a, bids=bids, status=0 if a.status == status else a.status)
        else:
            flows = tuple(
                f if f.status != status or told is None else dataclasses.replace(f, status=told)
                for f in a.flows
                if f.status != status or told is not None
            )
            a = dataclasses.replace(a, flows=flows)
    return a


@dataclasses.dataclass(frozen=True)
class McoaBefore:
    """A home address's bindings with a BID and its flows before a BU, for the faults that
    keep what the BU removes."""

    hoa: ipaddress.IPv6Address
    bindings: dict[int, ha_core.Binding]
    flows: dict[int, Any]


_KEEPING = (Fault.HA_FLOWS_KEPT, Fault.HA_PLAIN_BU_KEEPS_BIDS)


def mcoa_before(
    faults: Faults, nodes: dict[ipaddress.IPv6Address, ha_core.MobileNode], packet: bytes
) -> McoaBefore | None:
    if not any(faults.has(f) for f in _KEEPING):
        return None
    try:
        msg = compact.parse_packet(packet)
    except compact.Malformed:
        return None
    hoa = ipaddress.IPv6Address(msg.hoa_raw or msg.src_raw)
    node = nodes.get(hoa)
    if node is None:
        return None
    return McoaBefore(hoa, {b: x for b, x in node.bindings.items() if b}, dict(node.flows))


def mcoa_after(
    faults: Faults,
    nodes: dict[ipaddress.IPv6Address, ha_core.MobileNode],
    before: McoaBefore | None,
    packet: bytes,
    actions: list[Action],
) -> list[Action]:
    """What a BU did to bindings and flows as the faults have it: flows it does not name
    kept (RFC 6089 §5.3.4 says removed), BID bindings a BU without BID option leaves (RFC
    5648 §6.2 says replaced), flows on BIDs the same BU registers reported 131 (RFC 6089
    §5.3.1: BID options first)."""
    if faults.has(Fault.HA_FLOWS_BEFORE_BIDS):
        actions = [_flows_first(packet, actions, a) for a in actions]
    node = nodes.get(before.hoa) if before is not None else None
    if before is None or node is None:
        return actions
    if faults.has(Fault.HA_FLOWS_KEPT):
        for fid, kept in before.flows.items():
            node.flows.setdefault(fid, kept)
    if faults.has(Fault.HA_PLAIN_BU_KEEPS_BIDS) and 0 in node.bindings:
        back = {b: x for b, x in before.bindings.items() if b not in node.bindings}
        node.bindings.update(back)
        actions = [
            a
            for a in actions
            if not (isinstance(a, ha_core.TunnelDown) and a.hoa == before.hoa and a.bid in back)
        ]
    return actions


def _flows_first(packet: bytes, actions: list[Action], a: Action) -> Action:
    if not isinstance(a, SendBindingAck) or not a.flows:
        return a
    new = {t.bid for t in actions if isinstance(t, ha_core.TunnelUp) and t.hoa == a.hoa}
    refs: dict[int, tuple[int, ...]] = {}
    options = compact.parse_options(compact.parse_packet(packet).body, 12)
    for opt in options:
        if opt.otype == MobOpt.FLOW_IDENTIFICATION and len(opt.data) >= 6:
            bids, _sel, _ok = ha_mcoa.suboptions(opt.data[6:])
            refs[struct.unpack_from("!H", opt.data)[0]] = bids or ()
    flows = tuple(
        dataclasses.replace(f, status=131)
        if f.status == 0 and new & set(refs.get(f.fid, ()))
        else f
        for f in a.flows
    )
    return dataclasses.replace(a, flows=flows)


def _dns_answer(faults: Faults, a: SendBindingAck) -> SendBindingAck:
    """The BA of a DNS Update option (RFC 5026 §8.1, draft §6) as the faults send it."""
    assert a.dns is not None
    if faults.has(Fault.HA_DNS_STATUS_ALWAYS_0):
        return dataclasses.replace(a, dns=dataclasses.replace(a.dns, status=0))
    left_out = Fault.HA_DNS_R_BA_WITHOUT_OPTION if a.dns.remove else Fault.HA_DNS_BA_WITHOUT_OPTION
    return dataclasses.replace(a, dns=None) if faults.has(left_out) else a


def dns_skipped(faults: Faults, request: ha_core.DnsRequest) -> bool:
    """Does a fault leave this DNS update undone (and report it done)?"""
    skipping = {
        "register": Fault.HA_DNS_NO_UPDATE,
        "remove": Fault.HA_DNS_R_KEPT,
        "deregister": Fault.HA_DNS_DEREG_KEPT,
    }
    fault = skipping.get(request.why)
    return fault is not None and faults.has(fault)


def ghosts(
    faults: Faults,
    packet: bytes,
    actions: list[Action],
    before: dict[tuple[Any, int], Served],
    after: set[tuple[Any, int]],
) -> list[Served]:
    """The multicast service a fault keeps although no binding holds it any more: what a
    rejected or deregistering BU carried, and what a removed binding had."""
    rejected = faults.has(Fault.HA_REJECTED_BU_INSTALLS)
    if not faults.has(Fault.HA_GHOST_STATE) and not rejected:
        return []
    out: list[Served] = [] if rejected else expired(faults, before, after, always=True)
    for a in actions:
        if not isinstance(a, SendBindingAck):
            continue
        if (rejected and a.status == BAStatus.MIPV6_AUTH_FAIL) or (
            not rejected and (a.status >= 128 or a.lifetime == 0)
        ):
            carried = _multicast_states(packet)
            if carried:
                ghost = mcast.BindingMulticast()
                ghost.apply(carried)
                out.append(Served(a.coa, ghost))
    return out


def ghosts_kept(faults: Faults, ghosts: list[Served], actions: list[Action]) -> list[Served]:
    """The fault that installs a rejected BU's state replaces it at the next BU it accepts
    from that care-of address."""
    if not faults.has(Fault.HA_REJECTED_BU_INSTALLS):
        return ghosts
    accepted = {a.coa for a in actions if isinstance(a, SendBindingAck) and a.status == 0}
    return [g for g in ghosts if g[0] not in accepted]


def expired(
    faults: Faults,
    before: dict[tuple[Any, int], Served],
    after: set[tuple[Any, int]],
    *,
    always: bool = False,
) -> list[Served]:
    """The multicast service of bindings that are gone, kept by a fault."""
    if not always and not faults.has(Fault.HA_EXPIRY_KEEPS_MULTICAST):
        return []
    return [
        Served(coa, state)
        for key, (coa, state, _node) in before.items()
        if key not in after and (state.mld.groups or state.igmp.groups)
    ]


def router_advertisement(faults: Faults, ra: bytes) -> bytes:
    """The RA (ICMPv6 message) as the faulty HA sends it."""
    without_h = faults.has(Fault.HA_RA_WITHOUT_H)
    zero = faults.has(Fault.HA_RA_ZERO_LIFETIME)
    if len(ra) < 16 or ra[0] != 134 or not (without_h or zero):
        return ra
    out = bytearray(ra)
    if without_h:
        out[5] &= ~0x20 & 0xFF  # RFC 6275 §7.1: the H flag
    pos = 16  # RFC 4861 §4.2: options follow the 16-octet header
    while pos + 2 <= len(out) and out[pos + 1]:
        if out[pos] == 8 and zero:  # Home Agent Information
            struct.pack_into("!H", out, pos + 6, 0)
        pos += 8 * out[pos + 1]
    return bytes(out)


def _bu_options(packet: bytes) -> list[compact.Option]:
    try:
        msg = compact.parse_packet(packet)
        return compact.parse_options(msg.body, compact.FIXED_PART[compact.MHType.BU])
    except (compact.Malformed, KeyError):
        return []


def _has_options(packet: bytes, types: tuple[int, ...]) -> bool:
    return any(o.otype in types for o in _bu_options(packet))


def _reserved_bits(packet: bytes) -> int:
    """The Reserved bits of a BU (RFC 6275 §6.1.7: after the flags, before the Lifetime)."""
    try:
        msg = compact.parse_packet(packet)
    except compact.Malformed:
        return 0
    if msg.mhtype != compact.MHType.BU or len(msg.body) < 10:
        return 0
    return int(struct.unpack_from("!H", msg.body, 8)[0]) & 0x3F


def _stale_timestamp(packet: bytes) -> bool:
    """Does the BU carry a replay protection timestamp far from this host's clock?"""
    import time

    for o in _bu_options(packet):
        if o.otype == MobOpt.REPLAY_PROTECTION and len(o.data) == 8:
            return not ha_core.timestamp_fresh(struct.unpack("!Q", o.data)[0], time.time())
    return False


def _multicast_states(packet: bytes) -> list[compact.McastState]:
    """The Multicast State options of a BU, parsed (malformed ones left out)."""
    from harness.config import WireConfig

    out = []
    for o in _bu_options(packet):
        if compact.is_multicast_state(o, WireConfig.from_env()):
            with contextlib.suppress(compact.Malformed):
                out.append(compact.parse_multicast_state(o.data))
    return out


class BuMemory:
    """The BU each running DAD will answer (the newest of its home address), kept for the
    faults that judge the BA by its BU."""

    def __init__(self) -> None:
        self.packets: dict[int, bytes] = {}

    def remember(
        self, packet: bytes, actions: list[Action], running: dict[int, ipaddress.IPv6Address]
    ) -> None:
        for a in actions:
            if isinstance(a, ha_core.DadRequest):
                self.packets[a.request_id] = packet
        if actions or not running:
            return
        try:
            msg = compact.parse_packet(packet)
        except compact.Malformed:
            return
        for request_id, hoa in running.items():
            if msg.hoa and ipaddress.IPv6Address(msg.hoa) == hoa:
                self.packets[request_id] = packet

    def pop(self, request_id: int) -> bytes | None:
        return self.packets.pop(request_id, None)
