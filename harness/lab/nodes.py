"""Where everything of one lab is: its nodes, their namespaces, their interfaces' indexes,
the MN's interfaces and the links they are on; and the lab's errors.

Every part of the lab (bring-up, the multicast proxy, the Router Advertisements,
handover, impairments) works on one :class:`Nodes`.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.lab import netns, plan, registry, rtnl

SERVICE_NODES = ("cn", "src", "dns", "dhcp")
SETTLE_TIMEOUT = 3.0  # link-state waits in handover


class LabUnavailable(RuntimeError):
    """The lab cannot be built here; `hint` says how to get what is missing."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class LabError(RuntimeError):
    """Something in the lab did not go as it should (a bug, or the kernel refused)."""


class Unreachable(LabError):
    """A probe got no answer within its deadline."""


@dataclass
class MnIface:
    name: str
    number: int  # index into plan.mn_iids: which host part its addresses use
    port: str  # its bridge port's name in sw
    link: int | None = None  # access link it is attached to, None when detached
    configured: int | None = None  # link whose addresses the Lab configured on it


def mac(node_no: int, index: int) -> str:
    return f"02:dd:{node_no:02x}:00:{index >> 8 & 0xFF:02x}:{index & 0xFF:02x}"


def check_link(n: int, link: int) -> None:
    if not 1 <= link <= n:
        raise ValueError(f"no access link {link} (links are 1..{n})")


class Nodes:
    """The nodes of one lab (run `runid`, address plan `the_plan`) and where they are."""

    def __init__(self, the_plan: plan.Plan, runid: str) -> None:
        self.plan = the_plan
        self.n = len(the_plan.access)
        self.runid = runid
        self.routers = [f"ar{i}" for i in range(1, self.n + 1)]
        self.nodes = ["sw", "core", *self.routers, *SERVICE_NODES, "cdn", "mn"]
        self.mn: dict[str, MnIface] = {}
        self.ifindexes: dict[tuple[str, str], int] = {}  # (node, ifname) -> ifindex

    def ns(self, node: str) -> str:
        """The namespace name of a node ("mn", "ar1", "core", "sw", ...)."""
        if node not in self.nodes:
            raise ValueError(f"no node {node!r} in this lab (nodes: {', '.join(self.nodes)})")
        return registry.ns_name(self.runid, node)

    @property
    def namespaces(self) -> dict[str, str]:
        return {node: self.ns(node) for node in self.nodes}

    def ifindex(self, node: str, ifname: str) -> int:
        key = (node, ifname)
        if key not in self.ifindexes:
            self.ifindexes[key] = netns.if_nametoindex(self.ns(node), ifname)
        return self.ifindexes[key]

    def check_link(self, link: int) -> None:
        check_link(self.n, link)

    def link_state(self, node: str, index: int) -> rtnl.LinkState | None:
        """The kernel's view of interface `index` of `node` now."""
        with rtnl.Rtnl(self.ns(node)) as nl:
            return nl.links().get(index)

    def iface(self, name: str) -> MnIface:
        try:
            return self.mn[name]
        except KeyError:
            raise ValueError(
                f"no MN interface {name!r} (have {', '.join(self.mn) or 'none'})"
            ) from None
