"""The access routers' Router Advertisements in a lab: one
:class:`~harness.netproto.advertiser.RouterAdvertiser` thread per AR on its access
interface, started once the interface is operationally up, changed by tests while they
run (`get(i)`), paused while a SUT on that AR sends its own, reset to how they started.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

from harness.lab import rtnl
from harness.lab.nodes import SETTLE_TIMEOUT, LabError, Nodes
from harness.netproto import advertiser, ra

# The ARs' Router Advertisements run on RFC 4861's timers scaled down for tests:
# MaxRtrAdvInterval 600 s -> 1 s (MinRtrAdvInterval keeps its 0.33 ratio, Router
# Lifetime its 3 x MaxRtrAdvInterval), MAX_RA_DELAY_TIME 0.5 s -> ~1 ms.
RA_SCALE = 1 / 600


class Advertisers:
    """The RouterAdvertisers of `nodes`' access routers, by access link number."""

    def __init__(
        self,
        nodes: Nodes,
        intervals: tuple[float, float],
        ha_info: ra.HaInfo | None,
        manual: bool,
    ) -> None:
        self.nodes = nodes
        self.intervals = intervals
        self.ha_info = ha_info
        self.manual = manual
        self.running: dict[int, advertiser.RouterAdvertiser] = {}
        self._params: dict[int, ra.RaParams] = {}

    def start(self) -> None:
        """A RouterAdvertiser on each AR's access interface, once that interface is
        operationally up (before that the kernel drops what is sent on a veth, for up to
        about 1 s: the first RAs would be lost)."""
        speaking = [link for link in self.nodes.plan.access if not link.ipv4_only]
        for ar in (link.name for link in speaking):
            index = self.nodes.ifindex(ar, "acc0")
            with rtnl.LinkWatch(self.nodes.ns(ar)) as watch:
                watch.wait(
                    index,
                    lambda s: s.operstate == "up",
                    SETTLE_TIMEOUT,
                    current=self.nodes.link_state(ar, index),
                )
        min_i, max_i = self.intervals
        for link in speaking:  # an IPv4-only link hears no RA (plan.AccessLink.ipv4_only)
            params = ra.params_for_link(link, ha=self.ha_info, max_interval=max_i)
            adv = advertiser.RouterAdvertiser(
                "acc0",
                params,
                netns=self.nodes.ns(link.name),
                min_interval=min_i,
                max_interval=max_i,
                max_ra_delay=ra.MAX_RA_DELAY_TIME * RA_SCALE,
                final_ra=False,  # tear-down: nobody is left to hear it
                name=f"ra-{self.nodes.runid}-{link.name}",
            )
            self.running[link.index] = adv
            self._params[link.index] = params
            adv.start(timeout=SETTLE_TIMEOUT)

    @contextlib.contextmanager
    def paused(self, link: int) -> Iterator[None]:
        """Access link `link`'s RAs stopped (no final RA) while a SUT on that AR sends its
        own; then a fresh advertiser with the same settings takes over (a stopped one
        cannot start again). A lab without advertisers is left as it is."""
        if link not in self.running:
            yield
            return
        adv = self.running[link]
        adv.stop(final=False)
        try:
            yield
        finally:
            fresh = advertiser.RouterAdvertiser(
                adv.iface,
                adv.params,
                netns=adv.netns,
                min_interval=adv.min_interval,
                max_interval=adv.max_interval,
                jitter=adv.jitter,
                max_ra_delay=adv.max_ra_delay,
                final_ra=adv.final_ra,
                name=adv.name,
            )
            self.running[link] = fresh.start(timeout=SETTLE_TIMEOUT)

    def get(self, link: int) -> advertiser.RouterAdvertiser:
        """The RouterAdvertiser of access link `link`'s AR: `lab.ra(2).set_ha_info(False)`
        takes the home agent out of ar2's next RAs (reset() puts it back)."""
        self.nodes.check_link(link)
        if self.nodes.plan.link(link).ipv4_only:
            raise LabError(f"access link {link} is IPv4-only: no Router Advertisements there")
        if link not in self.running:
            why = "a manual lab has none" if self.manual else "router_advertisements=False"
            raise LabError(f"no Router Advertisements in this lab ({why})")
        return self.running[link]

    def stop(self) -> None:
        for adv in self.running.values():
            with contextlib.suppress(ra.RaError):
                adv.stop(final=False)
        self.running.clear()

    def reset(self) -> None:
        min_i, max_i = self.intervals
        for index, adv in self.running.items():
            if (adv.min_interval, adv.max_interval) != (min_i, max_i):
                adv.set_interval(min_i, max_i)
            now = adv.params
            want = dataclasses.replace(
                self._params[index], max_interval=now.max_interval, lladdr=now.lladdr
            )
            if now != want:
                changes = {
                    f.name: getattr(want, f.name)
                    for f in dataclasses.fields(want)
                    if f.name != "max_interval"
                }
                adv.set_params(**changes)
