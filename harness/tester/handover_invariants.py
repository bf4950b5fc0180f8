"""The invariants of the handover machine, checked on the wire (every access link is
captured) and by the applications after every step; each failure names the clause it
breaks (`fail`). See harness/tester/handover_machine.py for the list.
"""

from __future__ import annotations

import time

from hypothesis.stateful import invariant

from harness.apps.control import AppExpectationFailed, Event, duplicates
from harness.tester.handover_state import (
    GRACE,
    MCAST_DELIVERY,
    MachineState,
    fail,
    fail_by_reading,
    noted,
)
from harness.tester.packets import channel, packet6, tunnelled
from harness.tester.roaming import DELIVERY, LINKS, SLACK, is_data, rtt_ok, through_tunnel
from harness.tester.wirelog import describe_bu
from harness.tester.world import MCAST_PORT


class Invariants(MachineState):
    """What must hold after every step of the machine."""

    # ------------------------------------------------------------------ invariants

    @invariant()
    @noted
    def the_world_holds(self) -> None:
        if self.live:
            self.check()

    def check(self) -> None:
        started = time.monotonic()
        self.sessions_answer()
        self.groups_arrive()
        self.no_stray_data()
        self.no_air_subscription()
        self.registrations_are_needed()
        self.refreshes_in_time()
        self.last_check = started

    def sessions_answer(self) -> None:
        for s in self.sessions:
            s.app.mark()
            try:
                s.app.wait_for(rtt_ok, DELIVERY)
            except AppExpectationFailed as exc:
                fail(
                    "DMM-OVW-8",
                    f"the session of {s.address} (link {s.link}) stopped answering on "
                    f"link {self.mob.link}: {str(exc).splitlines()[0]}",
                )

    def groups_arrive(self) -> None:
        m = self.mob
        here, coa = m.link, m.addresses[m.link]
        for g, j in sorted(self.groups.items()):
            rx = self.rx[g]
            rx.mark()
            away = j.link != here
            ha = m.ha(j.link)
            link = m.links[here]
            since = link.mark()
            if away:  # the HA's part first: without its tunnelled data the MN has nothing
                what = f"a datagram of ({j.source}, {g})"
                try:
                    pkt = link.expect(
                        tunnelled(ha, coa, channel(g, j.source, MCAST_PORT), what),
                        MCAST_DELIVERY,
                        since=since,
                    )
                except AssertionError as exc:
                    fail("DMM-OVW-28", str(exc).splitlines()[0], "ha", self.sut)
                outer = packet6(pkt)
                inner = outer.inner() if outer is not None else None
                if inner is not None and not inner.transport_checksum_ok():
                    fail(
                        "RFC6275-HA-11",
                        f"{ha} tunnels {g} to {coa} with inner UDP checksums that do not "
                        "verify (RFC 8200 §8.1): the MN's kernel drops them",
                        "ha",
                        self.sut,
                    )
            try:
                e = rx.wait_for(is_data(g, j.source), MCAST_DELIVERY)
            except AppExpectationFailed as exc:
                fail(
                    "DMM-OVW-31",
                    f"{g} (joined on link {j.link}) no longer reaches its application on "
                    f"link {here}: {str(exc).splitlines()[0]}",
                    "mn",
                    self.sut,
                )
            if not away:
                continue
            if e.get("ifindex") == m.air_ifindex:
                try:
                    rx.wait_for(through_tunnel(g, j.source, m.air_ifindex), MCAST_DELIVERY)
                except AppExpectationFailed:
                    fail(
                        "DMM-OVW-31",
                        f"on link {here}, {g} (joined on link {j.link}) reaches the "
                        "application only on the air interface, not through the tunnel "
                        f"from {ha}",
                        "mn",
                        self.sut,
                    )
            self.config.judged.add("DMM-OVW-31")

    def no_stray_data(self) -> None:
        for g, rx in self.rx.items():
            events = rx.events()
            new = events[self.rx_seen[g] :]
            self.rx_seen[g] = len(events)
            joined = self.groups.get(g)
            data = [e for e in new if e.get("event") == "data"]
            if joined is None:  # left (or never joined): nothing the kernel took in after
                stray = [e for e in data if self._after_leave(g, e)]
            else:  # joined: its own channel only
                stray = [e for e in data if (e.get("group"), e.get("src")) != (g, joined.source)]
            if stray:
                fail(
                    "DMM-OVW-31",
                    f"an application that is not listening to {stray[0].get('group')} "
                    f"from {stray[0].get('src')} received {len(stray)} datagram(s) of it",
                )
            dups = duplicates(data)
            if dups:  # no clause forbids it; INT-14's attribution of groups to HAs does
                fail_by_reading(
                    "INT-14",
                    "DMM-OVW-31",
                    f"{g}'s application received {len(dups)} datagram(s) twice (natively "
                    "and through a tunnel, or through two tunnels)",
                )

    def _after_leave(self, g: str, e: Event) -> bool:
        """Did the MN's kernel take datagram `e` in after the application left `g`? By the
        kernel's time stamp (SO_TIMESTAMPNS): a datagram queued before the leave may be read,
        and reported, after it."""
        if "kt" in e:
            return float(e["kt"]) > self.left_wall.get(g, 0.0)
        return float(e["mono"]) > self.left_at.get(g, 0.0)

    def no_air_subscription(self) -> None:
        m = self.mob
        m.wire.poll()
        for r in m.wire.reports:
            if r.t < self.last_check or r.mac != m.mac:
                continue
            groups = self.history[self._state_at(r.t)][2]
            elsewhere = [g for g in r.groups if g in groups and groups[g] != r.link]
            if elsewhere:
                fail(
                    "DMM-OVW-31",
                    f"the MN's air interface subscribed to {elsewhere[0]} on link "
                    f"{r.link} (an MLDv2 Report), though it was joined on link "
                    f"{groups[elsewhere[0]]} and is served through that link's HA",
                    "mn",
                    self.sut,
                )

    def registrations_are_needed(self) -> None:
        m = self.mob
        bus = m.wire.bus()
        for bu in bus[self.checked_bus :]:
            arrived = max(
                (t for t, to in m.world.moves if to == bu.link and t <= bu.t), default=0.0
            )
            stale = [a for a in (bu.src, bu.coa) if m.link_of(a) != bu.link]
            if stale and bu.t - arrived > GRACE:
                fail(
                    "DMM-OVW-6",
                    f"a BU sent on link {bu.link}, {bu.t - arrived:.2f} s after the MN came, "
                    f"from an address it no longer has there ({stale[0]}): the BA goes "
                    f"where the MN is not. {describe_bu(bu)}",
                )
            if bu.lifetime == 0:
                continue
            x = next((i for i in LINKS if m.ha(i) == bu.dst), None)
            if x is None:
                fail("DMM-OVW-6", f"a BU to {bu.dst}, which is no home agent: {describe_bu(bu)}")
                continue
            if m.link_of(bu.hoa) != x:
                fail(
                    "DMM-OVW-6",
                    f"a BU registers {bu.hoa} with the HA of link {x}, not with the HA of "
                    f"the link of that address: {describe_bu(bu)}",
                )
            if not self.needed_between(x, bu.t - GRACE, bu.t):
                why = (
                    "the MN is on that link"
                    if bu.link == x
                    else "no session or group of that link is live"
                )
                text = f"a BU to the HA of link {x} while {why}: {describe_bu(bu)}"
                if bu.link != x and self.groups_live_between(bu.t - GRACE, bu.t):
                    # groups joined elsewhere were live: another HA for them is no MUST
                    fail_by_reading("INT-14", "DMM-MN-6", text)
                fail("DMM-MN-6", text)
        self.checked_bus = len(bus)

    def refreshes_in_time(self) -> None:
        m = self.mob
        now = time.monotonic()
        bus = m.wire.bus()
        for ba in m.wire.bas():
            key = (ba.t, ba.src, ba.hoa)
            if ba.status >= 128 or ba.lifetime == 0 or key in self.checked_bas:
                continue
            expiry = ba.t + m.granted(ba.lifetime)
            if expiry + SLACK > now:
                continue
            self.checked_bas.add(key)
            x = next((i for i in LINKS if m.ha(i) == ba.src), None)
            if x is None or not self.needed_throughout(x, ba.t, expiry):
                continue
            renewed = [
                b for b in bus if b.dst == ba.src and b.hoa == ba.hoa and ba.t < b.t <= expiry
            ]
            self.config.judged.add("DMM-MN-3")
            if not renewed:
                text = (
                    f"the binding of {ba.hoa} at {ba.src}, granted {ba.lifetime} units "
                    f"({m.granted(ba.lifetime):g} s) by a BA at "
                    f"+{ba.t - self.history[0][0]:.2f} s, was still needed but no BU "
                    "renewed it before it ran out"
                )
                if not self.sessions_need_throughout(x, ba.t, expiry):
                    fail_by_reading("INT-14", "DMM-MN-3", f"{text} (for its groups)")
                fail("DMM-MN-3", text)
