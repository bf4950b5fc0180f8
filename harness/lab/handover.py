"""Handover: the MN's interfaces attached to, moved between and detached from the access
links (carrier down, the port to another bridge, carrier up, exactly what the MN's kernel
sees on a real link change), and interfaces added and removed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time

from harness.lab import netns, rtnl
from harness.lab.impair import Impairments
from harness.lab.nodes import SETTLE_TIMEOUT, LabError, MnIface, Nodes, mac
from harness.lab.wiring import Wiring


class Handover:
    """Moves `nodes`' MN interfaces; re-addresses them (`wiring`) and re-applies the
    link impairments (`impairments`) as their ports move."""

    def __init__(self, nodes: Nodes, wiring: Wiring, impairments: Impairments) -> None:
        self.nodes = nodes
        self.wiring = wiring
        self.impairments = impairments

    def mn_links(self) -> dict[str, int | None]:
        """Each MN interface and the access link it is attached to (None: detached)."""
        return {name: iface.link for name, iface in self.nodes.mn.items()}

    def bridge_ports(self, link: int) -> list[str]:
        """The ports of link's bridge, as the kernel has them."""
        self.nodes.check_link(link)
        with rtnl.Rtnl(self.nodes.ns("sw")) as nl:
            links = nl.links()
        br = self.nodes.ifindex("sw", f"br{link}")
        return sorted(s.name for s in links.values() if s.master == br)

    def attach(self, iface: str, link: int, timeout: float = SETTLE_TIMEOUT) -> float:
        """Attach a (detached) MN interface to an access link; moves it if it is elsewhere."""
        self.nodes.check_link(link)
        i = self.nodes.iface(iface)
        if i.link is not None:
            return self.move(iface, link, timeout)
        return self._relink(i, link, timeout)

    def move(self, iface: str, to_link: int, timeout: float = SETTLE_TIMEOUT) -> float:
        """Handover: carrier down, port to the new link's bridge, carrier up. Seconds taken."""
        self.nodes.check_link(to_link)
        i = self.nodes.iface(iface)
        if i.link is None:
            raise LabError(f"{iface} is detached: attach() it first")
        return self._relink(i, to_link, timeout)

    def detach(self, iface: str, timeout: float = SETTLE_TIMEOUT) -> float:
        """Take an MN interface off its link (carrier down, port out of the bridge)."""
        return self._relink(self.nodes.iface(iface), None, timeout)

    def attach_new(self, iface: str, link: int, timeout: float = SETTLE_TIMEOUT) -> float:
        """A new MN interface (a new veth) attached to an access link. Seconds taken."""
        self.nodes.check_link(link)
        if iface in self.nodes.mn:
            raise LabError(f"the MN has an interface {iface!r} already")
        used = {i.number for i in self.nodes.mn.values()}
        free = [k for k in range(len(self.nodes.plan.mn_iids)) if k not in used]
        if not free:
            raise LabError(
                f"the plan has host parts for {len(self.nodes.plan.mn_iids)} MN interfaces"
            )
        t0 = time.perf_counter()
        new = MnIface(iface, free[0], f"p-{iface}"[:15], link)
        br = self.nodes.ifindex("sw", f"br{link}")
        mac_no = self.nodes.nodes.index("mn") + 1
        with contextlib.ExitStack() as stack:
            fd_sw = os.open(netns.path(self.nodes.ns("sw")), os.O_RDONLY | os.O_CLOEXEC)
            stack.callback(os.close, fd_sw)
            fd_mn = os.open(netns.path(self.nodes.ns("mn")), os.O_RDONLY | os.O_CLOEXEC)
            stack.callback(os.close, fd_mn)
            watch = stack.enter_context(rtnl.LinkWatch(self.nodes.ns("mn")))
            with rtnl.Rtnl() as nl:
                nl.request(
                    rtnl.new_veth(
                        rtnl.End(new.port, fd_sw, 0, None, br),
                        rtnl.End(iface, fd_mn, 0, mac(mac_no, 0x100 + new.number), up=False),
                    ),
                    f"MN interface {iface}",
                )
            self.nodes.mn[iface] = new
            index = self.nodes.ifindex("mn", iface)
            if self.impairments.loss:
                self.impairments.apply()
            with rtnl.Rtnl(self.nodes.ns("mn")) as nl:
                nl.request(rtnl.set_link(index, up=True), f"{iface} up")
            self._wait_carrier(watch, index, True, timeout)
        if self.wiring.configure_addresses:
            with rtnl.Rtnl(self.nodes.ns("mn")) as nl:
                self.wiring.mn_config(nl, new, link)
                nl.commit()
        return time.perf_counter() - t0

    def remove_iface(self, iface: str) -> None:
        """Delete an MN interface (and its bridge port) altogether."""
        i = self.nodes.iface(iface)
        with rtnl.Rtnl(self.nodes.ns("mn")) as nl:
            nl.request(
                rtnl.del_link(self.nodes.ifindex("mn", iface)),
                f"delete {iface}",
                ignore=(errno.ENODEV,),
            )
        del self.nodes.mn[iface]
        self.nodes.ifindexes.pop(("mn", iface), None)
        self.nodes.ifindexes.pop(("sw", i.port), None)

    def _wait_carrier(
        self, watch: rtnl.LinkWatch, index: int, carrier: bool, timeout: float
    ) -> None:
        def ok(s: rtnl.LinkState) -> bool:
            return s.carrier == carrier and (s.operstate == "up") == carrier

        watch.wait(index, ok, timeout, current=self.nodes.link_state("mn", index))

    def _relink(self, i: MnIface, link: int | None, timeout: float) -> float:
        """Carrier down, change of bridge (or none), carrier up; all as the MN sees it."""
        t0 = time.perf_counter()
        port = self.nodes.ifindex("sw", i.port)
        mn_index = self.nodes.ifindex("mn", i.name)
        with rtnl.LinkWatch(self.nodes.ns("mn")) as watch, rtnl.Rtnl(self.nodes.ns("sw")) as sw:
            if i.link is not None:
                sw.request(rtnl.set_link(port, up=False), f"{i.port} down")
                self._wait_carrier(watch, mn_index, False, timeout)
            master = 0 if link is None else self.nodes.ifindex("sw", f"br{link}")
            sw.request(rtnl.set_link(port, master=master), f"{i.port} to br{link}")
            i.link = link
            if self.wiring.configure_addresses:
                with rtnl.Rtnl(self.nodes.ns("mn")) as mn:
                    self.wiring.mn_config(mn, i, link)
                    mn.commit(ignore=(errno.ESRCH, errno.ENOENT, errno.EADDRNOTAVAIL))
            if self.impairments.loss:  # before carrier is back: no frame slips through
                self.impairments.apply()
            if link is not None:
                sw.request(rtnl.set_link(port, up=True), f"{i.port} up")
                self._wait_carrier(watch, mn_index, True, timeout)
        return time.perf_counter() - t0
