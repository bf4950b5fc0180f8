"""The Mobile Node's multicast listener state as its kernel holds it, and its mirror on the tunnel.

Issue 4, "Reference Mobile Node": the MN learns what its applications listen to from the
kernel and moves that state to the tunnel device so that they keep receiving. Three parts:

* `InterfaceListenerState` (sans-I/O): one interface's listener state (RFC 3810 §4.2, a
  filter mode and a source list per group), kept from the MLDv2 Reports the kernel itself
  sends on that interface. Those describe the interface state exactly, which /proc does
  not (below). It takes the ICMPv6 message alone, from its Type octet on, with no IPv6
  header: the same body the Multicast State option carries (draft §4.1);
  `report_from_packet` finds it in a whole IPv6 packet.
* `KernelListenerWatch` (I/O): an AF_PACKET socket that sees the kernel's outgoing
  Reports on the air interfaces, plus /proc/net/igmp6 and /proc/net/mcfilter6 to start
  from and to drop groups that are gone. Open it inside the MN's namespace.
* `TunnelMirror` (I/O): holds, on the TUN device, the memberships the applications hold
  on the air interface. docs/lab-facts.md: the kernel delivers a multicast packet written into a
  TUN device to an application's socket only if the TUN device itself listens to the
  group and the source (the receiving interface's filter, then the socket's own filter).

Which groups are carried: only those of a scope wider than link-local (RFC 4291 §2.7).
Interface- and link-local groups, the solicited-node groups among them, belong to the
link and are never tunnelled (RFC 6275 §10.4.2; docs/interpretations.md OPEN-6), so
they are not part of the state the MN moves.

Why not /proc alone: /proc/net/igmp6 lists the groups and their user counts per
interface and /proc/net/mcfilter6 counts, per source, the sockets that include and that
exclude it, but not how many sockets are in EXCLUDE mode. An ASM socket mixed with an SSM
socket on one group (EXCLUDE {}) and two SSM sockets with different sources (INCLUDE
{S1, S2}) can look alike there. `infer_filter` decides only what the counts determine;
the rest stays "unknown" until a Report says (a Current-State record answering the
querier's next General Query at the latest).

MLDv1 messages are ignored (an MLDv1 querier makes the kernel drop source filters; the
lab's queriers speak MLDv2).

IPv4 groups (draft §8: the IGMPv3 form of the Multicast State option) come from
/proc/net/igmp and /proc/net/mcfilter alone, with the same `infer_filter` (the kernel's
IGMPv3 Reports are not read): a group whose counts do not determine its filter stays
unknown, and so is not carried, until they do. Their filter is inferred afresh at every
look, since no Report tells its changes.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import os
import socket
import struct
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from scapy.packet import Packet

from harness.netproto import igmp, mld, sockopts
from harness.reference.multicast import (
    Address,
    GroupState,
    ListenerState,
    Mode,
    apply_records,
    echo_records,
)
from harness.wire import compact
from harness.wire.compact import McastRecord
from harness.wire.mobility import IgmpGroupRecord, MldAddressRecord
from harness.wire.numbers import MLDV2_ALL_ROUTERS, MLDV2_REPORT

IPv6 = ipaddress.IPv6Address
IPv4 = ipaddress.IPv4Address

# Linux ABI (linux/in.h, linux/if_packet.h, linux/filter.h, asm-generic/socket.h)
MCAST_MSFILTER = 48
MCAST_EXCLUDE, MCAST_INCLUDE = 0, 1
ETH_P_ALL, ETH_P_IPV6 = 0x0003, 0x86DD
SOL_PACKET, PACKET_STATISTICS = 263, 6
SO_ATTACH_FILTER = 26
SKF_AD_OFF, SKF_AD_PROTOCOL, SKF_AD_PKTTYPE = -0x1000, 0, 4

PROC_IGMP6 = "/proc/thread-self/net/igmp6"  # the calling thread's namespace, not the process's
PROC_MCFILTER6 = "/proc/thread-self/net/mcfilter6"
PROC_MLD_MAX_MSF = "/proc/sys/net/ipv6/mld_max_msf"
PROC_IGMP = "/proc/thread-self/net/igmp"  # IPv4 (draft §8)
PROC_MCFILTER = "/proc/thread-self/net/mcfilter"
PROC_IGMP_MAX_MSF = "/proc/sys/net/ipv4/igmp_max_msf"

# Record types that state a whole filter: IS_IN, IS_EX, TO_IN, TO_EX (RFC 3810 §5.2.12)
_SETS_FILTER = frozenset(range(1, 5))


def carried(group: Address) -> bool:
    """Is this group part of the state the MN moves (scope wider than link-local; for
    IPv4, outside the Local Network Control Block, RFC 5771 §4)?"""
    if isinstance(group, IPv4):
        return igmp.routable(group)
    return mld.routable(group)


def merge_filters(filters: Iterable[GroupState]) -> GroupState | None:
    """One filter that admits what any of `filters` admits (RFC 3810 §4.2), None for none.

    The rule by which the kernel merges its sockets' filters into the interface's, used
    here also to merge several interfaces into one node-wide state."""
    excluded: list[frozenset[Address]] = []
    included: set[Address] = set()
    for f in filters:
        if f.mode is Mode.EXCLUDE:
            excluded.append(f.sources)
        else:
            included |= f.sources
    if excluded:
        return GroupState(Mode.EXCLUDE, frozenset.intersection(*excluded) - included)
    return GroupState(Mode.INCLUDE, frozenset(included)) if included else None


def merge_states(states: Iterable[ListenerState]) -> ListenerState:
    """The union of several listener states, group by group (`merge_filters`)."""
    by_group: dict[Address, list[GroupState]] = {}
    for state in states:
        for group, f in state.groups.items():
            by_group.setdefault(group, []).append(f)
    out: dict[Address, GroupState] = {}
    for group, filters in by_group.items():
        merged = merge_filters(filters)
        if merged is not None:
            out[group] = merged
    return ListenerState(out)


def option_records(state: ListenerState, version: int = 6) -> list[Packet]:
    """The state's groups of one IP version as Current-State records (types 1 and 2),
    sorted, for harness.wire.mobility.multicast_state_options: MLDv2 records (draft
    §4.1), or with `version` 4 IGMPv3 Group Records (draft §8, RFC 3376 §4.2.4)."""
    record = MldAddressRecord if version == 6 else IgmpGroupRecord
    return [
        record(rtype=r.rtype, maddr=r.maddr, sources=list(r.sources))
        for r in echo_records(state)
        if ipaddress.ip_address(r.maddr).version == version
    ]


# ---------------------------------------------------------------- /proc (pure parsers)


@dataclass(frozen=True)
class Igmp6Entry:
    """One group an interface has joined, and its users: a line of /proc/net/igmp6 (or,
    an IPv4 group, of /proc/net/igmp)."""

    ifindex: int
    ifname: str
    group: Address
    users: int


@dataclass(frozen=True)
class McFilter6Entry:
    """How many sockets include / exclude one source: a line of /proc/net/mcfilter6 (or
    /proc/net/mcfilter)."""

    ifindex: int
    ifname: str
    group: Address
    source: Address
    include: int
    exclude: int


@dataclass(frozen=True)
class ProcGroup:
    """What /proc says about one group on one interface."""

    users: int
    counts: Mapping[Address, tuple[int, int]] = field(default_factory=dict)  # (include, exclude)


def _hex_address(text: str) -> IPv6:
    if len(text) != 32:
        raise ValueError(f"not a 32-digit IPv6 address: {text!r}")
    return IPv6(bytes.fromhex(text))


def _fields(text: str, count: int) -> Iterator[list[str]]:
    for line in text.splitlines():
        if len(f := line.split()) >= count:
            yield f


def parse_igmp6(text: str) -> list[Igmp6Entry]:
    """Lines `idx name group(32 hex) users flags timer`; malformed lines are skipped."""
    out = []
    for f in _fields(text, 4):
        with contextlib.suppress(ValueError):
            out.append(Igmp6Entry(int(f[0]), f[1], _hex_address(f[2]), int(f[3])))
    return out


def parse_mcfilter6(text: str) -> list[McFilter6Entry]:
    """Lines `idx name group source inc exc` after a header line, which is skipped."""
    out = []
    for f in _fields(text, 6):
        with contextlib.suppress(ValueError):
            g, s = _hex_address(f[2]), _hex_address(f[3])
            out.append(McFilter6Entry(int(f[0]), f[1], g, s, int(f[4]), int(f[5])))
    return out


def _be32(text: str) -> IPv4:
    """/proc/net/igmp's group: the network-order word printed as a host-order number."""
    return IPv4(struct.pack("=I", int(text, 16)))


def parse_igmp(text: str) -> list[Igmp6Entry]:
    """/proc/net/igmp: a line `idx name : count querier` per interface, then one
    `group(8 hex) users timer reporter` line per group it joined (RFC 3376 §3's
    interface state); the header and malformed lines are skipped."""
    out: list[Igmp6Entry] = []
    iface: tuple[int, str] | None = None
    for line in text.splitlines():
        f = line.split()
        if not f:
            continue
        if not line[:1].isspace():
            iface = (int(f[0]), f[1]) if f[0].isdigit() and len(f) >= 2 else None
            continue
        if iface is not None and len(f) >= 2:
            with contextlib.suppress(ValueError):
                out.append(Igmp6Entry(iface[0], iface[1], _be32(f[0]), int(f[1])))
    return out


def parse_mcfilter(text: str) -> list[McFilter6Entry]:
    """/proc/net/mcfilter: `idx name 0xGROUP 0xSOURCE inc exc` (host-order numbers of the
    addresses) after a header line, which is skipped."""
    out = []
    for f in _fields(text, 6):
        with contextlib.suppress(ValueError):
            g, s = IPv4(int(f[2], 16)), IPv4(int(f[3], 16))
            out.append(McFilter6Entry(int(f[0]), f[1], g, s, int(f[4]), int(f[5])))
    return out


def proc_groups(
    igmp6: Iterable[Igmp6Entry], mcfilter6: Iterable[McFilter6Entry], ifindex: int
) -> dict[Address, ProcGroup]:
    """One interface's groups with their users and source counts."""
    counts: dict[Address, dict[Address, tuple[int, int]]] = {}
    for m in mcfilter6:
        if m.ifindex == ifindex:
            counts.setdefault(m.group, {})[m.source] = (m.include, m.exclude)
    return {
        e.group: ProcGroup(e.users, counts.get(e.group, {})) for e in igmp6 if e.ifindex == ifindex
    }


def infer_filter(proc: ProcGroup) -> GroupState | None:
    """The interface filter when /proc's counts determine it, None when they do not.

    Each user is one socket in INCLUDE or EXCLUDE mode (RFC 3810 §3), so with X the
    number of EXCLUDE-mode sockets: users = X + (INCLUDE-mode sockets) and every INCLUDE
    socket lists at least one source; X >= the largest exclude count and X <= users - the
    largest include count. The interface is in EXCLUDE mode iff X > 0 and excludes the
    sources that every EXCLUDE socket excludes and no INCLUDE socket includes (§4.2).
    """
    if not proc.counts:
        # no source anywhere: no INCLUDE-mode socket (INCLUDE {} is no membership)
        return GroupState(Mode.EXCLUDE, frozenset()) if proc.users > 0 else None
    max_inc = max(i for i, _ in proc.counts.values())
    max_exc = max(x for _, x in proc.counts.values())
    high = proc.users - max_inc
    if high < max_exc:
        return None  # the two files were read at different moments
    if max_exc == 0:
        if high == 0:  # no room for an EXCLUDE socket
            return GroupState(
                Mode.INCLUDE, frozenset(s for s, (i, _) in proc.counts.items() if i > 0)
            )
        return None  # INCLUDE (the sources) or an extra EXCLUDE {} socket
    if high != max_exc:
        return None  # more EXCLUDE sockets than the counts show, or not
    return GroupState(
        Mode.EXCLUDE,
        frozenset(s for s, (i, x) in proc.counts.items() if i == 0 and x == max_exc),
    )


# ---------------------------------------------------------------- one interface (sans-I/O)


def report_from_packet(packet: bytes) -> bytes | None:
    """The ICMPv6 MLDv2 Report inside an IPv6 packet (after its extension headers), or None."""
    found = compact.report_in_packet(packet)
    return found[0] if found is not None and found[0][0] == MLDV2_REPORT else None


@dataclass(frozen=True)
class Snapshot:
    """One interface's listener state: the groups whose filter is known, and those the
    kernel lists whose filter no Report nor /proc has told yet."""

    state: ListenerState
    unknown: frozenset[Address]


class InterfaceListenerState:
    """One interface's listener state, as the kernel's own MLDv2 Reports tell it.

    A record acts on its group (RFC 3810 §6.1 read backwards, the rules of
    harness.reference.multicast.apply_records for one listener): a Current-State record
    (1, 2) or a filter-mode change (3, 4) states the new filter; ALLOW (5) and BLOCK (6)
    change the previous one's source list; INCLUDE {} is not listening. A group not
    listed is not listened to, so a fresh instance assumes nothing is joined: call
    `reconcile` with /proc's view first when the kernel may already hold memberships.
    ALLOW and BLOCK cannot be applied to a group whose filter is unknown: it stays unknown.
    """

    def __init__(self) -> None:
        self._known: dict[Address, GroupState] = {}
        self._unknown: set[Address] = set()

    @property
    def state(self) -> ListenerState:
        groups: dict[Address, GroupState] = {g: f for g, f in self._known.items()}
        return ListenerState(groups)

    @property
    def unknown(self) -> frozenset[Address]:
        return frozenset(self._unknown)

    def snapshot(self) -> Snapshot:
        return Snapshot(self.state, self.unknown)

    def feed(self, message: bytes) -> bool:
        """Apply one ICMPv6 MLDv2 Report (from the Type octet on). True if the state changed."""
        if not message or message[0] != MLDV2_REPORT:
            return False
        return self.apply(mld.parse_report(message))

    def apply(self, records: Iterable[mld.Record]) -> bool:
        """Apply records in their order (the last one about a group wins)."""
        before = self.snapshot()
        for rec in records:
            group = rec.group
            if not carried(group) or rec.rtype not in range(1, 7):
                continue
            if group in self._unknown:
                if rec.rtype not in _SETS_FILTER:
                    continue
                self._unknown.discard(group)
            old = self._known.get(group)
            mcast = McastRecord(rec.rtype, str(group), tuple(str(s) for s in rec.sources))
            # a one-group state, so a Current-State record's "snapshot" touches this group only
            previous: dict[Address, GroupState] = {group: old} if old is not None else {}
            new = apply_records(ListenerState(previous), [mcast]).groups.get(group)
            if new is None:
                self._known.pop(group, None)
            else:
                self._known[group] = new
        return self.snapshot() != before

    def reconcile(self, present: Mapping[Address, ProcGroup], infer: bool = True) -> bool:
        """Bring the group list in line with /proc's (`proc_groups`): groups gone there are
        dropped; groups there that no Report described get the filter `infer_filter`
        finds (with `infer`), or are unknown. IPv4 groups, of which no Report is read,
        get it at every call (a known one keeps its filter while the counts do not tell).
        True if the state changed."""
        before = self.snapshot()
        listed = {g for g in present if carried(g)}
        for group in list(self._known):
            if group not in listed:
                del self._known[group]
        self._unknown &= listed
        for group in listed:
            if group in self._known and group.version == 6:
                continue  # its Reports tell its changes
            guess = infer_filter(present[group]) if infer else None
            if guess is not None:
                self._unknown.discard(group)
                self._known[group] = guess
            elif group not in self._known:
                self._unknown.add(group)
        return self.snapshot() != before

    def forget(self) -> bool:
        """Reports were lost: no filter is known any more (until /proc or a Report says)."""
        before = self.snapshot()
        self._unknown |= self._known.keys()
        self._known.clear()
        return self.snapshot() != before


# ---------------------------------------------------------------- the kernel (I/O)


def _bpf(program: list[tuple[int, int, int, int]]) -> tuple[bytes, Any]:
    """struct sock_fprog for SO_ATTACH_FILTER, and the buffer it points to (keep it alive)."""
    raw = b"".join(struct.pack("=HBBI", c, jt, jf, k & 0xFFFFFFFF) for c, jt, jf, k in program)
    buf = ctypes.create_string_buffer(raw, len(raw))
    return struct.pack("HL", len(program), ctypes.addressof(buf)), buf


def _outgoing_reports_filter() -> list[tuple[int, int, int, int]]:
    """Classic BPF: pass only IPv6 packets this host sends to ff02::16 (where MLDv2 Reports
    go, RFC 3810 §5.2.14), so the daemon is not woken by data packets."""
    ld_w, jeq, ret = 0x20, 0x15, 0x06  # BPF_LD|BPF_W|BPF_ABS, BPF_JMP|BPF_JEQ|BPF_K, BPF_RET
    words = struct.unpack("!4I", IPv6(MLDV2_ALL_ROUTERS).packed)
    prog = [
        (ld_w, 0, 0, SKF_AD_OFF + SKF_AD_PKTTYPE),
        (jeq, 0, 11, socket.PACKET_OUTGOING),
        (ld_w, 0, 0, SKF_AD_OFF + SKF_AD_PROTOCOL),
        (jeq, 0, 9, ETH_P_IPV6),
    ]
    for n, word in enumerate(words):  # destination address, octets 24-39
        prog += [(ld_w, 0, 0, 24 + 4 * n), (jeq, 0, 7 - 2 * n, word)]
    return [*prog, (ret, 0, 0, 0xFFFF), (ret, 0, 0, 0)]


def _one_moment(groups: int, filters: int) -> tuple[str, str, bool]:
    """A group file and its filter file read as of one moment: the group list the same
    before and after the filters (else, after five tries, False)."""
    for _ in range(5):
        first = _read_all(groups)
        counts = _read_all(filters)
        if _read_all(groups) == first:
            return first, counts, True
    return first, counts, False


def _read_all(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks).decode("ascii", "replace")


class KernelListenerWatch:
    """The kernel's listener state of some interfaces, kept from its own outgoing Reports.

    Create it with the calling thread inside the namespace to watch (the daemon's whole
    process is; a test uses harness.lab.netns.entered): its socket and /proc files stay
    bound to that namespace, so it may then be used from any thread. `select` on it,
    call `drain()` when it is readable.
    """

    def __init__(self, ifaces: Sequence[str]) -> None:
        self.ifindex = {name: socket.if_nametoindex(name) for name in ifaces}
        self._states = {name: InterfaceListenerState() for name in ifaces}
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
        try:
            fprog, self._prog = _bpf(_outgoing_reports_filter())
            self._sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            self._sock.setblocking(False)
            self._igmp6 = os.open(PROC_IGMP6, os.O_RDONLY | os.O_CLOEXEC)
            self._mcfilter6 = os.open(PROC_MCFILTER6, os.O_RDONLY | os.O_CLOEXEC)
            self._igmp = os.open(PROC_IGMP, os.O_RDONLY | os.O_CLOEXEC)
            self._mcfilter = os.open(PROC_MCFILTER, os.O_RDONLY | os.O_CLOEXEC)
        except BaseException:
            self._sock.close()
            raise
        self._drops()  # reset the counters
        self.refresh()

    def fileno(self) -> int:
        return self._sock.fileno()

    def watch(self, name: str) -> bool:
        """Watch interface `name` too (one that appeared since, draft §7.1): its Reports
        and its /proc entries from now on, what it has joined already from the next
        `refresh()`. True if it was not watched yet."""
        if name in self._states:
            return False
        self.ifindex[name] = socket.if_nametoindex(name)
        self._states[name] = InterfaceListenerState()
        return True

    def drain(self) -> bool:
        """Apply the Reports waiting on the socket, then /proc's group list. True if any
        watched interface's state (known filters or unknown groups) changed."""
        changed = False
        while True:
            try:
                packet, addr = self._sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                break
            state = self._states.get(addr[0])
            if state is None or addr[2] != socket.PACKET_OUTGOING:
                continue
            message = report_from_packet(packet)
            if message is not None:
                changed |= state.feed(message)
        if self._drops():
            for state in self._states.values():
                changed |= state.forget()
        return self.refresh() or changed

    def feed(self, iface: str, message: bytes) -> bool:
        """Apply a Report of `iface` that reached the caller another way (the MN daemon
        gets the kernel's Reports from NFLOG when it holds them back from the link)."""
        state = self._states.get(iface)
        return state.feed(message) if state is not None else False

    def refresh(self) -> bool:
        """Reconcile with /proc (groups gone, groups no Report described; IPv4 groups from
        /proc alone). True if changed."""
        groups6, filters6, stable6 = _one_moment(self._igmp6, self._mcfilter6)
        groups4, filters4, stable4 = _one_moment(self._igmp, self._mcfilter)
        igmp6, mcfilter6 = parse_igmp6(groups6), parse_mcfilter6(filters6)
        igmp4, mcfilter4 = parse_igmp(groups4), parse_mcfilter(filters4)
        changed = False
        for name, state in self._states.items():
            index = self.ifindex[name]
            present = proc_groups(igmp6, mcfilter6, index)
            present.update(proc_groups(igmp4, mcfilter4, index))
            changed |= state.reconcile(present, infer=stable6 and stable4)
        return changed

    def snapshot(self, iface: str) -> Snapshot:
        return self._states[iface].snapshot()

    def state(self) -> ListenerState:
        """The known filters of all watched interfaces, merged (`merge_states`)."""
        return merge_states(s.state for s in self._states.values())

    def unknown(self) -> frozenset[Address]:
        """Groups some watched interface has joined with a filter not known yet."""
        return frozenset().union(*(s.unknown for s in self._states.values()))

    def _drops(self) -> int:
        """Packets the socket dropped since the last call (struct tpacket_stats)."""
        try:
            raw = self._sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
        except OSError:
            return 0
        return int(struct.unpack("=II", raw)[1])

    def close(self) -> None:
        self._sock.close()
        for fd in (self._igmp6, self._mcfilter6, self._igmp, self._mcfilter):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> KernelListenerWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------- the tunnel device (I/O)


def _sockaddr(addr: Address) -> bytes:
    return sockopts.group_req(0, addr)[8:]  # its struct sockaddr_storage part


def group_filter(ifindex: int, group: Address, f: GroupState) -> bytes:
    """struct group_filter for MCAST_MSFILTER (RFC 3678 §5.2.1, linux/in.h), of either
    family (the sources of the group's)."""
    mode = MCAST_INCLUDE if f.mode is Mode.INCLUDE else MCAST_EXCLUDE
    same = [a for a in f.sources if a.version == group.version]
    sources = sorted(same, key=lambda a: a.packed)
    return (
        sockopts.group_req(ifindex, group)
        + struct.pack("=II", mode, len(sources))
        + b"".join(_sockaddr(s) for s in sources)
    )


def _max_sources(path: str = PROC_MLD_MAX_MSF, default: int = 64) -> int:
    try:
        with open(path, encoding="ascii") as f:
            return int(f.read())
    except (OSError, ValueError):
        return default  # the kernel's default


class TunnelMirror:
    """Memberships on the TUN device (by its ifindex) that mirror a listener state.

    One socket, opened in the calling thread's namespace, holds them all. A group new to
    the mirror is joined with MCAST_JOIN_GROUP (EXCLUDE mode) or MCAST_JOIN_SOURCE_GROUP
    (INCLUDE mode, its first source); its exact filter is then set, and later changed,
    with MCAST_MSFILTER, the full-state API (RFC 3678 §5.2), which changes mode and sources
    in one step, so the device never listens to nothing or to everything in between; a
    group no longer wanted is left with MCAST_LEAVE_GROUP. A filter over the kernel's
    per-socket limit (net.ipv6.mld_max_msf, net.ipv4.igmp_max_msf) is widened, never
    narrowed: EXCLUDE keeps the first sources it can, INCLUDE becomes EXCLUDE {}; the
    application's own socket filter still drops what it did not ask for. IPv4 groups
    (draft §8) are held the same way on a socket of their own.
    """

    def __init__(self, ifindex: int) -> None:
        self.ifindex = ifindex
        self._socks = {
            6: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM),
            4: socket.socket(socket.AF_INET, socket.SOCK_DGRAM),
        }
        self._limits = {6: _max_sources(), 4: _max_sources(PROC_IGMP_MAX_MSF, 10)}
        self._installed: dict[Address, GroupState] = {}

    @property
    def installed(self) -> ListenerState:
        groups: dict[Address, GroupState] = {g: f for g, f in self._installed.items()}
        return ListenerState(groups)

    def _fit(self, group: Address, f: GroupState) -> GroupState:
        if len(f.sources) <= self._limits[group.version]:
            return f
        if f.mode is Mode.INCLUDE:
            return GroupState(Mode.EXCLUDE, frozenset())
        keep = sorted(f.sources, key=lambda a: a.packed)[: self._limits[group.version]]
        return GroupState(Mode.EXCLUDE, frozenset(keep))

    def _set(self, group: Address, opt: int, value: bytes) -> None:
        level = socket.IPPROTO_IPV6 if group.version == 6 else socket.IPPROTO_IP
        self._socks[group.version].setsockopt(level, opt, value)  # MCAST_*: same numbers

    def sync(self, desired: ListenerState) -> dict[Address, OSError]:
        """Make the memberships equal `desired` (its carried groups), touching only the
        groups that differ. Returns the groups the kernel refused, with why; those are
        retried by the next sync."""
        want: dict[Address, GroupState] = {
            g: self._fit(g, f) for g, f in desired.groups.items() if carried(g)
        }
        failed: dict[Address, OSError] = {}
        for group in [g for g in self._installed if g not in want]:
            try:
                self._set(
                    group, sockopts.MCAST_LEAVE_GROUP, sockopts.group_req(self.ifindex, group)
                )
            except OSError as exc:
                failed[group] = exc
            del self._installed[group]  # a failed leave: the membership is gone anyway
        for group, f in want.items():
            old = self._installed.get(group)
            if old == f:
                continue
            try:
                if old is None:
                    self._join(group, f)
                else:
                    self._set(group, MCAST_MSFILTER, group_filter(self.ifindex, group, f))
                self._installed[group] = f
            except OSError as exc:
                failed[group] = exc
        return failed

    def _join(self, group: Address, f: GroupState) -> None:
        same = [s for s in f.sources if s.version == group.version]
        first = min(same, key=lambda a: a.packed, default=None)
        if f.mode is Mode.INCLUDE and first is not None:
            self._set(
                group,
                sockopts.MCAST_JOIN_SOURCE_GROUP,
                sockopts.group_source_req(self.ifindex, group, first),
            )
            joined = GroupState(Mode.INCLUDE, frozenset([first]))
        else:
            self._set(group, sockopts.MCAST_JOIN_GROUP, sockopts.group_req(self.ifindex, group))
            joined = GroupState(Mode.EXCLUDE, frozenset())
        if joined != f:
            try:
                self._set(group, MCAST_MSFILTER, group_filter(self.ifindex, group, f))
            except OSError:
                leave = sockopts.group_req(self.ifindex, group)
                with contextlib.suppress(OSError):
                    self._set(group, sockopts.MCAST_LEAVE_GROUP, leave)
                raise

    def close(self) -> None:
        """Leave every group (closing the sockets drops their memberships)."""
        self._installed.clear()
        for sock in self._socks.values():
            sock.close()

    def __enter__(self) -> TunnelMirror:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
