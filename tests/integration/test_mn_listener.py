"""The reference MN's view of its kernel's multicast listener state (reference/mn_listener.py).

Pure part: the Report and /proc readers against a model of a host's sockets (RFC 3810 §3,
§4.2) that emits the State-Change Reports of §6.1 and the Current-State Reports of §5.2.12;
the watch must never hold a wrong filter, only possibly "unknown", and must know all after a
General Query's answer. Lab part (root; not-run otherwise): real sockets in the MN's
namespace join, block and leave groups on mn0 and the watch reports exactly the interface
state; a TUN device receives multicast for an application only through the mirror.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import select
import socket
import struct
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.lab import netns
from harness.lab.topology import Lab
from harness.netproto import mld, sockopts
from harness.reference.mn_listener import (
    PROC_IGMP6,
    PROC_MCFILTER6,
    Igmp6Entry,
    InterfaceListenerState,
    KernelListenerWatch,
    McFilter6Entry,
    ProcGroup,
    Snapshot,
    TunnelMirror,
    carried,
    infer_filter,
    merge_filters,
    merge_states,
    option_records,
    parse_igmp,
    parse_igmp6,
    parse_mcfilter,
    parse_mcfilter6,
    proc_groups,
    report_from_packet,
)
from harness.reference.multicast import Address, GroupState, ListenerState, Mode
from harness.wire.mobility import MIP6OptMulticastState, multicast_state_options

IPv6 = ipaddress.IPv6Address
EX, IN = Mode.EXCLUDE, Mode.INCLUDE
IS_IN, IS_EX, TO_IN, TO_EX, ALLOW, BLOCK = 1, 2, 3, 4, 5, 6
MCAST_BLOCK_SOURCE, MCAST_UNBLOCK_SOURCE = 43, 44  # linux/in.h


def f(mode: Mode, *sources: Address) -> GroupState:
    return GroupState(mode, frozenset(sources))


# ---------------------------------------------------------------- pure: /proc parsers

IGMP6_SAMPLE = """\
1    lo              ff020000000000000000000000000001     1 0000000C 0
3    mn0             ff3e0000000000000000000080000001     1 00000004 0
3    mn0             ff0e000000000000000000000db80001     2 00000004 0
3    mn0             ff0200000000000000000001ff18347d     1 00000004 0
3    mn0             ff020000000000000000000000000001     1 0000000C 0
4    dmmmn0          ff0e000000000000000000000db80001     1 00000004 0
"""
MCFILTER6_SAMPLE = """\
Idx Device                Multicast Address                   Source Address    INC    EXC
  3    mn0 ff3e0000000000000000000080000001 20010db800c200000000000000000011      1      0
  3    mn0 ff0e000000000000000000000db80001 20010db800c200000000000000000010      0      1
  3    mn0 ff0e000000000000000000000db80001 20010db800c200000000000000000011      1      0
"""
G_ASM, G_SSM = IPv6("ff0e::db8:1"), IPv6("ff3e::8000:1")
S10, S11 = IPv6("2001:db8:c2::10"), IPv6("2001:db8:c2::11")


def test_proc_parsers_read_the_kernel_format() -> None:
    igmp6 = parse_igmp6(IGMP6_SAMPLE + "garbage line\n")
    assert len(igmp6) == 6
    assert (igmp6[2].ifindex, igmp6[2].ifname, igmp6[2].group, igmp6[2].users) == (
        3,
        "mn0",
        G_ASM,
        2,
    )
    mcf = parse_mcfilter6(MCFILTER6_SAMPLE)
    assert len(mcf) == 3  # the header line is not an entry
    assert (mcf[1].group, mcf[1].source, mcf[1].include, mcf[1].exclude) == (G_ASM, S10, 0, 1)
    groups = proc_groups(igmp6, mcf, 3)
    assert set(groups) == {G_SSM, G_ASM, IPv6("ff02::1:ff18:347d"), IPv6("ff02::1")}
    assert groups[G_ASM] == ProcGroup(2, {S10: (0, 1), S11: (1, 0)})
    assert groups[G_SSM] == ProcGroup(1, {S11: (1, 0)})
    assert proc_groups(igmp6, mcf, 4) == {G_ASM: ProcGroup(1, {})}


# /proc/net/igmp and /proc/net/mcfilter as a 6.x kernel prints them (d0: an SSM socket on
# 232.1.1.1 with source 198.51.100.10, an ASM socket on 239.1.1.1)
IGMP_SAMPLE = """Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter
1\tlo        :     1      V3
\t\t\t\t010000E0     1 0:00000000\t\t0
3\td0        :     3      V3
\t\t\t\t010101EF     1 0:00000000\t\t0
\t\t\t\t010101E8     1 0:00000000\t\t0
\t\t\t\t010000E0     1 0:00000000\t\t0
"""
MCFILTER_SAMPLE = """Idx Device        MCA        SRC    INC    EXC
  3     d0 0xe8010101 0xc633640a      1      0
"""


def test_ipv4_proc_parsers_and_reconcile() -> None:
    """Draft §8: the IPv4 groups from /proc alone; 224.0.0.1 is not carried (RFC 5771)."""
    g_ssm, g_asm, src = (ipaddress.IPv4Address(a) for a in ("232.1.1.1", "239.1.1.1",
                                                          "198.51.100.10"))  # fmt: skip
    igmp, mcf = parse_igmp(IGMP_SAMPLE), parse_mcfilter(MCFILTER_SAMPLE)
    assert [(e.ifindex, e.ifname, str(e.group), e.users) for e in igmp][1:3] == [
        (3, "d0", "239.1.1.1", 1),
        (3, "d0", "232.1.1.1", 1),
    ]
    assert [(m.group, m.source, m.include, m.exclude) for m in mcf] == [(g_ssm, src, 1, 0)]
    state = InterfaceListenerState()
    assert state.reconcile(proc_groups(igmp, mcf, 3))
    assert state.state == ListenerState({g_ssm: f(IN, src), g_asm: f(EX)})
    # no Report tells an IPv4 group's change: the next look at /proc does
    assert state.reconcile(proc_groups(igmp, [], 3))
    assert state.state.groups[g_ssm] == f(EX)


def test_reconcile_with_proc_infers_what_the_counts_determine() -> None:
    state = InterfaceListenerState()
    groups = proc_groups(parse_igmp6(IGMP6_SAMPLE), parse_mcfilter6(MCFILTER6_SAMPLE), 3)
    assert state.reconcile(groups)
    # one socket including S11: exact; ff0e::db8:1 = (EXCLUDE {S10}) + (INCLUDE {S11}) is
    # exact too (2 users, 1 includes, so 1 excludes: the one that excludes S10).
    # Link-local groups are not carried (RFC 6275 §10.4.2).
    assert state.snapshot() == Snapshot(
        ListenerState({G_SSM: f(IN, S11), G_ASM: f(EX, S10)}), frozenset()
    )
    # ... until the counts are ambiguous: 3 users, perhaps an extra EXCLUDE {} socket
    groups[G_ASM] = ProcGroup(3, groups[G_ASM].counts)
    del groups[G_SSM]
    fresh = InterfaceListenerState()
    fresh.reconcile(groups)
    assert fresh.snapshot() == Snapshot(ListenerState(), frozenset({G_ASM}))
    # a Report settles it; /proc no longer listing the group removes it
    assert fresh.apply([mld.Record(IS_EX, G_ASM, ())])
    assert fresh.state == ListenerState({G_ASM: f(EX)})
    assert fresh.reconcile({})
    assert fresh.snapshot() == Snapshot(ListenerState(), frozenset())


def test_infer_filter_examples() -> None:
    assert infer_filter(ProcGroup(1, {})) == f(EX)
    assert infer_filter(ProcGroup(2, {S10: (1, 0)})) is None  # IN{S10}+EX{}, or IN{S10}+IN{S11..}
    assert infer_filter(ProcGroup(2, {S10: (1, 0), S11: (1, 0)})) is None
    assert infer_filter(ProcGroup(2, {S10: (2, 0), S11: (1, 0)})) == f(IN, S10, S11)
    assert infer_filter(ProcGroup(2, {S10: (0, 2), S11: (0, 1)})) == f(EX, S10)
    assert infer_filter(ProcGroup(1, {S10: (2, 0)})) is None  # torn read: counts > users


# ---------------------------------------------------------------- pure: Reports


def test_merge_filters_follows_rfc3810_section_4_2_examples() -> None:
    a, b, c, d, e, f_ = (IPv6(f"2001:db8::{n}") for n in "abcdef")
    assert merge_filters([f(EX, a, b, c, d), f(EX, b, c, d, e), f(IN, d, e, f_)]) == f(EX, b, c)
    assert merge_filters([f(EX, a, b, c, d), f(EX, b, c, d, e), f(IN, d, e, f_), f(EX)]) == f(EX)
    assert merge_filters([f(IN, a, b, c), f(IN, b, c, d), f(IN, e, f_)]) == f(IN, a, b, c, d, e, f_)
    assert merge_filters([]) is None
    one = ListenerState({G_ASM: f(EX, a, b), G_SSM: f(IN, a)})
    two = ListenerState({G_ASM: f(IN, a), IPv6("ff0e::3"): f(IN, c)})
    assert merge_states([one, two]) == ListenerState(
        {G_ASM: f(EX, b), G_SSM: f(IN, a), IPv6("ff0e::3"): f(IN, c)}
    )


Rec = tuple[int, Address, list[Address]]


def ordered(sources: Iterable[Address]) -> list[Address]:
    return sorted(sources, key=lambda a: a.packed)


def report(records: list[Rec], aux: bool = False) -> bytes:
    """An ICMPv6 MLDv2 Report (RFC 3810 §5.2), written plainly; checksum left zero."""
    body = b""
    for rtype, group, sources in records:
        extra = b"\x00\x00\x00\x2a" if aux else b""
        body += struct.pack("!BBH", rtype, len(extra) // 4, len(sources)) + group.packed
        body += b"".join(s.packed for s in sources) + extra
    return struct.pack("!BBHHH", 143, 0, 0, 0, len(records)) + body


def test_report_from_packet_skips_the_hop_by_hop_header() -> None:
    from scapy.layers.inet6 import (
        ICMPv6MLDMultAddrRec,
        ICMPv6MLReport2,
        IPv6ExtHdrHopByHop,
        RouterAlert,
    )
    from scapy.layers.inet6 import (
        IPv6 as IPv6Header,
    )

    rec = ICMPv6MLDMultAddrRec(rtype=TO_EX, dst=str(G_ASM), sources=[str(S10)])
    pkt = bytes(
        IPv6Header(src="fe80::1", dst="ff02::16", hlim=1)
        / IPv6ExtHdrHopByHop(options=[RouterAlert(value=0)])
        / ICMPv6MLReport2(records=[rec])
    )
    message = report_from_packet(pkt)
    assert message is not None and message[0] == 143
    state = InterfaceListenerState()
    assert state.feed(message)
    assert state.state == ListenerState({G_ASM: f(EX, S10)})
    assert report_from_packet(pkt[:45]) is None
    assert report_from_packet(bytes(IPv6Header(dst="ff02::16") / IPv6ExtHdrHopByHop())) is None


def test_records_for_the_option_round_trip() -> None:
    state = ListenerState({G_SSM: f(IN, S11, S10), G_ASM: f(EX)})
    options = multicast_state_options(option_records(state))
    parsed = MIP6OptMulticastState(bytes(options[0]))
    assert [(r.rtype, r.maddr, list(r.sources)) for r in parsed.records] == [
        (IS_EX, str(G_ASM), []),
        (IS_IN, str(G_SSM), [str(S10), str(S11)]),
    ]


# A model host: sockets with their own filters (RFC 3810 §3), the interface state merged
# from them (§4.2), the records an interface state change sends (§6.1).

GROUPS = [G_ASM, G_SSM, IPv6("ff02::1:ff00:1")]  # the last is link-local: never carried
SOURCES = [S10, S11, IPv6("2001:db8:c2::12")]


@dataclass
class Host:
    sockets: list[dict[IPv6, GroupState]] = field(default_factory=lambda: [{}, {}, {}])

    def interface(self) -> dict[IPv6, GroupState]:
        out = {}
        for g in GROUPS:
            merged = merge_filters([s[g] for s in self.sockets if g in s])
            if merged is not None:
                out[g] = merged
        return out

    def do(self, op: str, i: int, g: IPv6, s: IPv6) -> None:
        """One socket operation; an operation the kernel would refuse changes nothing."""
        sock = self.sockets[i]
        cur = sock.get(g)
        if op == "join-asm" and cur is None:
            sock[g] = f(EX)
        elif op == "join-source" and (cur is None or cur.mode is IN):
            sock[g] = GroupState(IN, frozenset({s}) | (cur.sources if cur else frozenset()))
        elif op == "leave-source" and cur is not None and cur.mode is IN and s in cur.sources:
            rest = cur.sources - {s}
            if rest:
                sock[g] = GroupState(IN, rest)
            else:
                del sock[g]  # INCLUDE {} is leaving (RFC 3678 §4.1.2 as Linux does it)
        elif op == "block" and cur is not None and cur.mode is EX:
            sock[g] = GroupState(EX, cur.sources | {s})
        elif op == "unblock" and cur is not None and cur.mode is EX:
            sock[g] = GroupState(EX, cur.sources - {s})
        elif op == "leave":
            sock.pop(g, None)
        elif op == "close":
            sock.clear()

    def proc(self) -> dict[Address, ProcGroup]:
        """The interface's groups as /proc shows them, through the parsers."""
        igmp6, mcf = self.proc_text()
        return proc_groups(parse_igmp6(igmp6), parse_mcfilter6(mcf), 3)

    def proc_text(self) -> tuple[str, str]:
        """/proc/net/igmp6 and /proc/net/mcfilter6 as the kernel would print them (ifindex 3)."""
        igmp6, mcf = "", "Idx Device  Multicast Address  Source Address  INC  EXC\n"
        for g in GROUPS:
            users = [s[g] for s in self.sockets if g in s]
            if not users:
                continue
            igmp6 += f"3 mn0 {g.packed.hex()} {len(users)} 00000004 0\n"
            for src in SOURCES:
                inc = sum(1 for u in users if u.mode is IN and src in u.sources)
                exc = sum(1 for u in users if u.mode is EX and src in u.sources)
                if inc or exc:
                    mcf += f"3 mn0 {g.packed.hex()} {src.packed.hex()} {inc} {exc}\n"
        return igmp6, mcf


def change_records(old: dict[IPv6, GroupState], new: dict[IPv6, GroupState]) -> list[Rec]:
    """RFC 3810 §6.1's table: the State-Change records for an interface state change."""
    out: list[Rec] = []
    for g in GROUPS:
        o, n = old.get(g, f(IN)), new.get(g, f(IN))
        if o == n:
            continue
        if o.mode is n.mode:
            allow, block = (n.sources - o.sources, o.sources - n.sources)
            if o.mode is EX:
                allow, block = block, allow
            out += [(ALLOW, g, ordered(allow))] if allow else []
            out += [(BLOCK, g, ordered(block))] if block else []
        else:
            out.append((TO_EX if n.mode is EX else TO_IN, g, ordered(n.sources)))
    return out


def current_records(state: dict[IPv6, GroupState]) -> list[Rec]:
    """The answer to a General Query (RFC 3810 §6.2 case 1)."""
    return [(IS_EX if s.mode is EX else IS_IN, g, ordered(s.sources)) for g, s in state.items()]


def carried_model(state: dict[IPv6, GroupState]) -> dict[Address, GroupState]:
    return {g: s for g, s in state.items() if carried(g)}


OPS = st.tuples(
    st.sampled_from(
        ["join-asm", "join-source", "leave-source", "block", "unblock", "leave", "close", "query"]
    ),  # fmt: skip
    st.integers(0, 2),
    st.sampled_from(GROUPS),
    st.sampled_from(SOURCES),
    st.booleans(),  # /proc read before the step's Reports arrive (they are late)
    st.integers(1, 3),  # the step's records cut into this many Reports
    st.booleans(),  # each Report sent twice (RFC 3810 §6.1 retransmissions)
)


@settings(max_examples=500, deadline=None)
@given(st.lists(OPS, max_size=40), st.integers(0, 20), st.booleans())
def test_watch_equals_the_model_host(
    steps: list[tuple[str, int, IPv6, IPv6, bool, int, bool]], start: int, aux: bool
) -> None:
    """Replaying the host's Reports (with /proc reconciliation, a late start, split and
    repeated Reports) never gives a wrong filter; a Query's answer leaves nothing unknown."""
    host = Host()
    watch: InterfaceListenerState | None = None

    def reconcile() -> None:
        assert watch is not None
        watch.reconcile(host.proc())

    for n, (op, i, g, s, proc_first, cuts, twice) in enumerate(steps):
        if n == start:  # the daemon starts now: /proc first
            watch = InterfaceListenerState()
            reconcile()
        old = host.interface()
        if op == "query":
            records = current_records(old)
        else:
            host.do(op, i, g, s)
            records = change_records(old, host.interface())
        truth = carried_model(host.interface())
        for group, proc in host.proc().items():  # what /proc is said to determine, it does
            guess = infer_filter(proc)
            assert guess is None or guess == host.interface()[IPv6(str(group))]
        if watch is None:
            continue
        if proc_first:
            reconcile()
        per = max(1, -(-len(records) // cuts))
        for k in range(0, len(records), per):
            message = report(records[k : k + per], aux)
            for _ in range(2 if twice else 1):
                watch.feed(message)
        reconcile()
        snap = watch.snapshot()
        assert set(snap.state.groups) | snap.unknown == set(truth)
        assert not set(snap.state.groups) & snap.unknown
        for held, known in snap.state.groups.items():
            assert known == truth[held], f"wrong filter for {held} after {op}"
        if op == "query":
            assert snap == Snapshot(ListenerState(truth), frozenset())


SOCKET_FILTER = st.one_of(
    st.builds(
        lambda s: GroupState(IN, frozenset(s)), st.sets(st.sampled_from(SOURCES), min_size=1)
    ),
    st.builds(lambda s: GroupState(EX, frozenset(s)), st.sets(st.sampled_from(SOURCES))),
)


@settings(max_examples=500, deadline=None)
@given(st.lists(SOCKET_FILTER, min_size=1, max_size=5))
def test_infer_filter_is_never_wrong(sockets: list[GroupState]) -> None:
    """Whatever the sockets, what /proc's counts are said to determine is the merged filter."""
    counts = {
        s: (
            sum(1 for f_ in sockets if f_.mode is IN and s in f_.sources),
            sum(1 for f_ in sockets if f_.mode is EX and s in f_.sources),
        )
        for s in SOURCES
    }
    proc = ProcGroup(len(sockets), {s: c for s, c in counts.items() if c != (0, 0)})
    guess = infer_filter(proc)
    assert guess is None or guess == merge_filters(sockets)


def test_each_row_of_the_state_change_table() -> None:
    """RFC 3810 §6.1: the records an interface state change sends lead back to the new state."""
    s12 = IPv6("2001:db8:c2::12")
    rows: list[tuple[GroupState | None, list[tuple[int, list[Address]]], GroupState | None]] = [
        (f(IN, S10, S11), [(ALLOW, [s12]), (BLOCK, [S10])], f(IN, S11, s12)),
        (f(EX, S10, S11), [(ALLOW, [S10]), (BLOCK, [s12])], f(EX, S11, s12)),
        (f(IN, S10), [(TO_EX, [S11])], f(EX, S11)),
        (f(EX, S10), [(TO_IN, [S11])], f(IN, S11)),
        (f(IN, S10), [(BLOCK, [S10])], None),  # the last source left: not listening
        (f(EX), [(TO_IN, [])], None),
        (None, [(ALLOW, [S10])], f(IN, S10)),  # from INCLUDE {}
        (None, [(TO_EX, [])], f(EX)),
    ]
    for old, records, new in rows:
        state = InterfaceListenerState()
        if old is not None:
            rtype = IS_IN if old.mode is IN else IS_EX
            state.feed(report([(rtype, G_ASM, ordered(old.sources))]))
        state.feed(report([(t, G_ASM, srcs) for t, srcs in records]))
        assert state.state.groups.get(G_ASM) == new, (old, records)


def test_feed_ignores_link_local_groups() -> None:
    """RFC 6275 §10.4.2: link-local groups (solicited-node ones too) are not carried."""
    state = InterfaceListenerState()
    solicited, all_nodes = IPv6("ff02::1:ff00:1"), IPv6("ff02::1")
    assert not state.feed(report([(TO_EX, solicited, []), (IS_EX, all_nodes, [])]))
    assert state.feed(report([(TO_EX, solicited, []), (ALLOW, G_SSM, [S10])]))
    assert state.snapshot() == Snapshot(ListenerState({G_SSM: f(IN, S10)}), frozenset())


def test_unknown_group_ignores_allow_and_block_until_a_mode_is_stated() -> None:
    state = InterfaceListenerState()
    state.reconcile({G_ASM: ProcGroup(2, {S10: (1, 0)})})  # ambiguous
    assert not state.apply([mld.Record(ALLOW, G_ASM, (S11,))])
    assert state.unknown == {G_ASM}
    assert state.apply([mld.Record(TO_IN, G_ASM, (S10, S11))])
    assert state.state == ListenerState({G_ASM: f(IN, S10, S11)}) and not state.unknown
    assert state.forget() and state.unknown == {G_ASM}


# ---------------------------------------------------------------- lab: the real kernel

TUNSETIFF, IFF_TUN, IFF_NO_PI = 0x400454CA, 0x0001, 0x1000
DEADLINE = 5.0


@dataclass
class Names:
    """Groups and sources of these tests, from the lab's address plan."""

    asm: IPv6
    ssm: IPv6
    other: IPv6
    s1: IPv6
    s2: IPv6
    s3: IPv6

    @classmethod
    def of(cls, lab: Lab) -> Names:
        p = lab.plan
        return cls(
            p.asm_group6,
            p.ssm_group6,
            IPv6(int(p.asm_group6) + 0x10),
            p.mcast_source.host6,
            p.cn.host6,
            p.cdn6,
        )

    @property
    def groups(self) -> set[IPv6]:
        return {self.asm, self.ssm, self.other}


@contextlib.contextmanager
def watching(lab: Lab, iface: str = "mn0") -> Iterator[KernelListenerWatch]:
    with netns.entered(lab.ns("mn")):
        watch = KernelListenerWatch([iface])
    try:
        yield watch
    finally:
        watch.close()


def restricted(snap: Snapshot, groups: set[IPv6]) -> Snapshot:
    return Snapshot(
        ListenerState({g: s for g, s in snap.state.groups.items() if g in groups}),
        frozenset(snap.unknown & groups),
    )


def expect(
    watch: KernelListenerWatch,
    names: Names,
    known: dict[Address, GroupState],
    unknown: frozenset[IPv6] = frozenset(),
    iface: str = "mn0",
    query: Callable[[], None] | None = None,
) -> None:
    """Wait (on the watch's socket, with a deadline) until its view of our groups is this.
    `query`, if given, is called once when the watch shows a group as unknown that should
    be known: sockets joined faster than their reports came make /proc ambiguous, and
    only the kernel's answer to a Query settles it (as the link's querier would)."""
    want = Snapshot(ListenerState(known), unknown)
    deadline = time.monotonic() + DEADLINE
    while True:
        watch.drain()
        got = restricted(watch.snapshot(iface), names.groups)
        if query is not None and got.unknown - unknown:
            query()
            query = None
        if got == want:
            merged = {g: s for g, s in watch.state().groups.items() if g in names.groups}
            assert merged == known and watch.unknown() & names.groups == unknown
            return
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"the watch shows {got}, expected {want}")
        select.select([watch], [], [], left)


class App:
    """Application sockets in the MN's namespace (what a real receiver does)."""

    def __init__(self, lab: Lab, iface: str = "mn0") -> None:
        self.lab, self.ifindex = lab, lab.ifindex("mn", iface)
        self.socks: list[socket.socket] = []

    def new_socket(self) -> socket.socket:
        sock = self.lab.socket("mn")
        self.socks.append(sock)
        return sock

    def asm(self, group: IPv6, *blocked: IPv6) -> socket.socket:
        sock = self.new_socket()
        sock.setsockopt(41, sockopts.MCAST_JOIN_GROUP, sockopts.group_req(self.ifindex, group))
        for s in blocked:
            self.opt(sock, MCAST_BLOCK_SOURCE, group, s)
        return sock

    def ssm(self, group: IPv6, *sources: IPv6) -> socket.socket:
        sock = self.new_socket()
        for s in sources:
            self.opt(sock, sockopts.MCAST_JOIN_SOURCE_GROUP, group, s)
        return sock

    def opt(self, sock: socket.socket, opt: int, group: IPv6, source: IPv6) -> None:
        sock.setsockopt(41, opt, sockopts.group_source_req(self.ifindex, group, source))

    def close(self) -> None:
        for s in self.socks:
            s.close()


def test_lab_watch_sees_asm_ssm_and_blocked_sources(lab: Lab) -> None:
    n = Names.of(lab)
    with watching(lab) as watch, contextlib.closing(App(lab)) as a:
        expect(watch, n, {})
        asm = a.asm(n.asm)
        expect(watch, n, {n.asm: f(EX)})
        ssm = a.ssm(n.ssm, n.s1)
        expect(watch, n, {n.asm: f(EX), n.ssm: f(IN, n.s1)})
        ex = a.asm(n.other, n.s2)
        expect(watch, n, {n.asm: f(EX), n.ssm: f(IN, n.s1), n.other: f(EX, n.s2)})
        a.opt(ssm, sockopts.MCAST_JOIN_SOURCE_GROUP, n.ssm, n.s2)
        a.opt(ex, MCAST_BLOCK_SOURCE, n.other, n.s3)
        expect(watch, n, {n.asm: f(EX), n.ssm: f(IN, n.s1, n.s2), n.other: f(EX, n.s2, n.s3)})
        asm.close()
        a.opt(ssm, sockopts.MCAST_LEAVE_SOURCE_GROUP, n.ssm, n.s1)
        a.opt(ex, MCAST_UNBLOCK_SOURCE, n.other, n.s2)
        expect(watch, n, {n.ssm: f(IN, n.s2), n.other: f(EX, n.s3)})
        ssm.close()
        ex.close()
        expect(watch, n, {})


def test_lab_watch_merges_mixed_sockets_as_the_kernel_does(lab: Lab) -> None:
    n = Names.of(lab)
    g = n.asm
    link = lab.mn_links()["mn0"]
    assert link is not None

    def query() -> None:
        lab.mld_query(link)

    with watching(lab) as watch, contextlib.closing(App(lab)) as a:
        first = a.ssm(g, n.s1)
        second = a.ssm(g, n.s2)
        expect(watch, n, {g: f(IN, n.s1, n.s2)}, query=query)
        third = a.asm(g, n.s1, n.s3)  # EXCLUDE {s1, s3} minus the included s1, s2
        expect(watch, n, {g: f(EX, n.s3)}, query=query)
        fourth = a.asm(g, n.s2, n.s3)  # intersection {s3}
        expect(watch, n, {g: f(EX, n.s3)}, query=query)
        third.close()  # EXCLUDE {s2, s3} minus {s1, s2}
        expect(watch, n, {g: f(EX, n.s3)}, query=query)
        first.close()
        second.close()  # only the EXCLUDE {s2, s3} socket is left
        expect(watch, n, {g: f(EX, n.s2, n.s3)}, query=query)
        fourth.close()
        expect(watch, n, {})


def test_lab_watch_started_late_learns_from_proc_then_from_a_query(lab: Lab) -> None:
    n = Names.of(lab)
    link = lab.mn_links()["mn0"]
    assert link is not None
    with contextlib.closing(App(lab)) as a:
        a.ssm(n.ssm, n.s1)  # one socket: /proc determines it
        a.asm(n.asm)
        a.ssm(n.asm, n.s1)  # EXCLUDE {} or INCLUDE {s1}? /proc cannot tell
        with watching(lab) as watch:
            expect(watch, n, {n.ssm: f(IN, n.s1)}, frozenset({n.asm}))
            lab.mld_query(link)  # the kernel answers with Current-State records
            expect(watch, n, {n.ssm: f(IN, n.s1), n.asm: f(EX)})
            a.close()
            expect(watch, n, {})


def send_into(fd: int, source: IPv6, group: IPv6, port: int, tag: bytes) -> None:
    from scapy.layers.inet import UDP
    from scapy.layers.inet6 import IPv6 as IPv6Header

    os.write(fd, bytes(IPv6Header(src=str(source), dst=str(group), hlim=8) / UDP(
        sport=5000, dport=port) / tag))  # fmt: skip


def received(sock: socket.socket, timeout: float) -> list[bytes]:
    """What reaches the application within `timeout` (a deadline, no sleep)."""
    out = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0 and select.select([sock], [], [], left)[0]:
        out.append(sock.recv(2048))
    return out


def proc_text() -> tuple[list[Igmp6Entry], list[McFilter6Entry]]:
    """/proc/net/igmp6 and mcfilter6 of the calling thread's namespace, parsed."""
    with open(PROC_IGMP6) as a, open(PROC_MCFILTER6) as b:
        return parse_igmp6(a.read()), parse_mcfilter6(b.read())


def test_lab_tunnel_mirror_lets_the_application_receive_from_the_tun(lab: Lab) -> None:
    n = Names.of(lab)
    g, name = n.asm, "lstnmir0"
    with netns.entered(lab.ns("mn")):
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
        try:
            fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
            tun = socket.if_nametoindex(name)
            mirror = TunnelMirror(tun)
        except BaseException:
            os.close(fd)
            raise
    try:
        with lab.ipr("mn") as ipr:
            ipr.link("set", index=tun, state="up")
        with contextlib.closing(App(lab)) as a:
            rx = a.asm(g)  # the application listens on the air interface only
            rx.bind(("::", 0))
            port = rx.getsockname()[1]
            send_into(fd, n.s1, g, port, b"no-mirror")
            assert received(rx, 0.3) == [], "delivered without the TUN's membership"
            mirror.sync(ListenerState({g: f(EX, n.s1)}))
            send_into(fd, n.s1, g, port, b"excluded")
            send_into(fd, n.s2, g, port, b"admitted")
            assert received(rx, 0.5) == [b"admitted"]
            assert mirror.sync(ListenerState({g: f(IN, n.s1)})) == {}  # mode change in place
            send_into(fd, n.s2, g, port, b"not-included")
            send_into(fd, n.s1, g, port, b"included")
            assert received(rx, 0.5) == [b"included"]
            igmp6, mcf = lab.run_in("mn", proc_text)
            assert proc_groups(igmp6, mcf, tun)[g] == ProcGroup(1, {n.s1: (1, 0)})
            mirror.sync(ListenerState())
            send_into(fd, n.s1, g, port, b"left")
            assert received(rx, 0.3) == []
    finally:
        mirror.close()
        os.close(fd)
