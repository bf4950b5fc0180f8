"""A hypothesis state machine over the reference HA core: any sequence of registrations,
moves, refreshes, stale BUs, multicast changes, deregistrations and time passing keeps the
HA's tunnels, bindings and multicast forwarding equal to a simple model of RFC 6275 and
the draft. Shrinking gives the shortest sequence that breaks it."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from scapy.layers.inet6 import HAO, IPv6, IPv6ExtHdrDestOpt

from harness.reference.ha_core import (
    HAConfig,
    HomeAgentCore,
    MulticastChanged,
    SendBindingAck,
    TunnelDown,
    TunnelMoved,
    TunnelUp,
)
from harness.wire.mobility import BindingUpdate, MIP6OptMulticastState, MldAddressRecord

HA = ipaddress.IPv6Address("2001:db8:1::1")
HOA = ipaddress.IPv6Address("2001:db8:1::10")
COAS = [ipaddress.IPv6Address(f"2001:db8:{i}::10") for i in (2, 3, 4)]
GROUPS = ["ff3e::8000:1", "ff3e::8000:2", "ff0e::1", "ff02::db8:1"]
LINK_LOCAL = {"ff02::db8:1"}  # never installed, never echoed (RFC 6275 §10.4.2, OPEN-6)
SOURCE = "2001:db8:c2::10"
MAX_LIFETIME = 40


def bu_bytes(
    coa: ipaddress.IPv6Address, seq: int, lifetime: int, groups: list[str] | None
) -> bytes:
    options = []
    if groups is not None:
        options.append(
            MIP6OptMulticastState(
                records=[MldAddressRecord(rtype=1, maddr=g, sources=[SOURCE]) for g in groups]
            )
        )
    return bytes(
        IPv6(src=str(coa), dst=str(HA))
        / IPv6ExtHdrDestOpt(options=[HAO(hoa=str(HOA))])
        / BindingUpdate(seq=seq, mhtime=lifetime, options=options)
    )


class HomeAgentMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.ha = HomeAgentCore(
            HAConfig(
                address=HA,
                home_prefix=ipaddress.IPv6Network("2001:db8:1::/64"),
                max_lifetime=MAX_LIFETIME,
            )
        )
        self.now = 1000.0
        self.seq = 0
        # The model: where the binding points, until when, and which groups are served.
        self.coa: ipaddress.IPv6Address | None = None
        self.expires = 0.0
        self.groups: set[str] = set()
        # What the HA's actions built, as a daemon would: tunnels and forwarding.
        self.tunnels: dict[tuple[object, int], ipaddress.IPv4Address | ipaddress.IPv6Address] = {}
        self.forwarding: dict[ipaddress.IPv4Address | ipaddress.IPv6Address, set[str]] = {}

    def _apply(self, actions: Sequence[object]) -> list[SendBindingAck]:
        for a in actions:
            key = (getattr(a, "hoa", None), getattr(a, "bid", 0))
            if isinstance(a, TunnelUp):
                assert key not in self.tunnels, f"tunnel of {key} brought up twice"
                self.tunnels[key] = a.coa
            elif isinstance(a, TunnelMoved):
                assert self.tunnels.get(key) == a.old, f"tunnel of {key} moved from {a.old}"
                self.tunnels[key] = a.coa
                self.forwarding.pop(a.old, None)
            elif isinstance(a, TunnelDown):
                assert self.tunnels.get(key) == a.coa, f"tunnel to {a.coa} taken down but not up"
                del self.tunnels[key]
                self.forwarding.pop(a.coa, None)
            elif isinstance(a, MulticastChanged):
                self.forwarding = {c: g for c, g in self.forwarding.items() if c == a.coa}
                self.forwarding[a.coa] = {str(g) for g in a.state.mld.groups}
        return [a for a in actions if isinstance(a, SendBindingAck)]

    def _send(
        self, coa: ipaddress.IPv6Address, seq: int, lifetime: int, groups: list[str] | None
    ) -> SendBindingAck:
        (ba,) = self._apply(self.ha.receive(bu_bytes(coa, seq, lifetime, groups), self.now))
        return ba

    @rule(
        coa=st.sampled_from(COAS),
        lifetime=st.integers(1, 30),
        groups=st.none() | st.lists(st.sampled_from(GROUPS), unique=True),
    )
    def register_or_move(
        self, coa: ipaddress.IPv6Address, lifetime: int, groups: list[str] | None
    ) -> None:
        self.seq = (self.seq + 1) % 65536
        ba = self._send(coa, self.seq, lifetime, groups)
        assert ba.status == 0 and ba.seq == self.seq
        granted = min(lifetime * 4, MAX_LIFETIME)
        assert ba.lifetime * 4 == granted
        if self.coa is None:
            self.groups = set()
        self.coa, self.expires = coa, self.now + granted
        if groups is not None:
            self.groups = set(groups) - LINK_LOCAL
            assert {r.maddr for r in ba.multicast[0].records} == self.groups

    @precondition(lambda self: self.coa is not None)
    @rule(back=st.integers(0, 5))
    def stale_sequence_is_refused(self, back: int) -> None:
        ba = self._send(COAS[0], (self.seq - back) % 65536, 10, None)
        assert ba.status == 135 and ba.seq == self.seq

    @rule()
    def deregister(self) -> None:
        self.seq = (self.seq + 1) % 65536
        coa = self.coa or COAS[0]
        ba = self._send(coa, self.seq, 0, None)
        # RFC 6275 §10.3.2: no binding to deregister is status 133 (NOT_HOME_AGENT)
        assert ba.status == (0 if self.coa is not None else 133) and ba.lifetime == 0
        if self.coa is None:
            self.seq = (self.seq - 1) % 65536  # a refused BU is not the last valid number
        self.coa, self.groups = None, set()

    @rule(seconds=st.floats(0.5, 60))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds
        self._apply(self.ha.tick(self.now))
        if self.coa is not None and self.expires <= self.now:
            self.coa, self.groups = None, set()

    @invariant()
    def tunnels_follow_the_binding(self) -> None:
        assert set(self.tunnels.values()) == ({self.coa} if self.coa else set())
        assert [b.coa for b in self.ha.bindings()] == ([self.coa] if self.coa else [])

    @invariant()
    def multicast_reaches_only_the_current_coa(self) -> None:
        served = {c: g for c, g in self.forwarding.items() if g}
        assert served == ({self.coa: self.groups} if self.coa and self.groups else {})


HomeAgentMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=25, deadline=None
)
TestHomeAgentMachine = HomeAgentMachine.TestCase
