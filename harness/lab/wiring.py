"""Bring-up of the lab's fabric: every namespace's sysctls, every link (veth pairs and the
access links' bridges in `sw`), every address and route of the plan, and the MN's
addresses and default routes for the link each of its interfaces is on.
"""

from __future__ import annotations

import os

from harness.lab import netns, rtnl
from harness.lab.impair import nft_path
from harness.lab.nodes import SERVICE_NODES, LabError, MnIface, Nodes, mac
from harness.lab.plan import AccessLink

MN_METRIC = 1024  # the MN's default route metric for mn0; mn<k> gets MN_METRIC + k
NAT_TABLE = "dmmconf_nat"  # the NAT of an IPv4-only access link, in its AR


class Wiring:
    """Builds the links and addresses of `nodes`' lab (in `up()` order: `sysctls`, `links`,
    `addresses`) and swaps the MN's addresses on handover (`mn_config`)."""

    def __init__(
        self,
        nodes: Nodes,
        *,
        configure_addresses: bool,
        mn_accept_ra: int,
        mcast_snooping: bool,
        initial_mn_links: tuple[int, ...],
    ) -> None:
        self.nodes = nodes
        self.configure_addresses = configure_addresses
        self.mn_accept_ra = mn_accept_ra
        self.mcast_snooping = mcast_snooping
        self.initial_mn_links = initial_mn_links
        self._peers: list[tuple[str, int]] = []  # veth ends created down, to bring up

    def sysctls(self) -> None:
        common = {
            "net.ipv6.conf.all.accept_dad": 0,
            "net.ipv6.conf.default.accept_dad": 0,
        }
        router = {
            **common,
            "net.ipv6.conf.all.forwarding": 1,
            "net.ipv6.conf.default.forwarding": 1,
            "net.ipv6.conf.all.accept_ra": 0,
            "net.ipv6.conf.default.accept_ra": 0,
            "net.ipv4.ip_forward": 1,
            "net.ipv4.conf.all.rp_filter": 0,
            "net.ipv4.conf.default.rp_filter": 0,
        }
        host = {
            **common,
            "net.ipv6.conf.all.accept_ra": 0,
            "net.ipv6.conf.default.accept_ra": 0,
            "net.ipv4.ip_forward": 0,
        }
        mn = {
            **host,
            "net.ipv6.conf.all.accept_ra": self.mn_accept_ra,
            "net.ipv6.conf.default.accept_ra": self.mn_accept_ra,
            "net.ipv4.conf.all.rp_filter": 0,  # multi-homed: replies may come in elsewhere
            "net.ipv4.conf.default.rp_filter": 0,
        }
        switch = {  # the bridges are not hosts: no IPv6 of their own (no RS, MLD, NDP noise)
            "net.ipv6.conf.all.disable_ipv6": 1,
            "net.ipv6.conf.default.disable_ipv6": 1,
        }
        for node in self.nodes.nodes:
            if node == "sw":
                values: dict[str, int] = switch
            elif node == "core" or node in self.nodes.routers:
                values = router
            elif node == "mn":
                values = mn
            else:
                values = host
            with netns.entered(self.nodes.ns(node)):
                for key, value in values.items():
                    netns.write_sysctl(key, value)

    def links(self) -> None:
        """Every link of the topology, each end created directly in its namespace, up."""
        fds = {
            node: os.open(netns.path(self.nodes.ns(node)), os.O_RDONLY | os.O_CLOEXEC)
            for node in self.nodes.nodes
        }
        numbers = {node: i for i, node in enumerate(self.nodes.nodes, start=1)}
        counters = dict.fromkeys(self.nodes.nodes, 1)  # lo is 1 in a new namespace

        def end(node: str, name: str, master: int | None = None, peer: bool = False) -> rtnl.End:
            counters[node] += 1
            index = counters[node]
            self.nodes.ifindexes[(node, name)] = index
            if peer:  # created down: brought up by its namespace's batch in _addresses
                self._peers.append((node, index))
            return rtnl.End(name, fds[node], index, mac(numbers[node], index), master, not peer)

        try:
            with rtnl.Rtnl() as nl:
                for i in range(1, self.nodes.n + 1):
                    counters["sw"] += 1
                    self.nodes.ifindexes[("sw", f"br{i}")] = counters["sw"]
                    nl.add(
                        rtnl.new_bridge(
                            f"br{i}",
                            index=counters["sw"],
                            nsfd=fds["sw"],
                            mac=mac(numbers["sw"], counters["sw"]),
                            mcast_snooping=self.mcast_snooping,
                        ),
                        f"bridge br{i}",
                    )
                for i in range(1, self.nodes.n + 1):
                    ar, br = f"ar{i}", self.nodes.ifindexes[("sw", f"br{i}")]
                    nl.add(
                        rtnl.new_veth(end("sw", f"p-{ar}", br), end(ar, "acc0", peer=True)),
                        f"{ar} access link",
                    )
                    nl.add(
                        rtnl.new_veth(end(ar, "up0"), end("core", ar, peer=True)), f"{ar} uplink"
                    )
                for svc in SERVICE_NODES:
                    nl.add(
                        rtnl.new_veth(end(svc, "eth0"), end("core", svc, peer=True)), f"{svc} link"
                    )
                nl.add(
                    rtnl.new_veth(
                        end("sw", "p-cdn", self.nodes.ifindexes[("sw", "br1")]),
                        end("cdn", "eth0", peer=True),
                    ),
                    "cdn link",
                )
                for k, link in enumerate(self.initial_mn_links):
                    iface = MnIface(f"mn{k}", k, f"p-mn{k}", link)
                    self.nodes.mn[iface.name] = iface
                    br = self.nodes.ifindexes[("sw", f"br{link}")]
                    nl.add(
                        rtnl.new_veth(end("sw", iface.port, br), end("mn", iface.name, peer=True)),
                        f"MN {iface.name}",
                    )
                nl.commit()
        finally:
            for fd in fds.values():
                os.close(fd)

    def addresses(self) -> None:
        p = self.nodes.plan
        batches: dict[str, list[tuple[rtnl.Msg, str]]] = {node: [] for node in self.nodes.nodes}

        def add(node: str, ifname: str, address: object, plen: int) -> None:
            batches[node].append(
                (
                    rtnl.addr(self.nodes.ifindexes[(node, ifname)], address, plen),
                    f"address {address}/{plen} on {ifname}",
                )
            )

        def default(node: str, gw: object, metric: int | None = None) -> None:
            batches[node].append((rtnl.route(None, gateway=gw, metric=metric), f"default via {gw}"))

        for link in p.access:
            ar = link.name
            if not link.ipv4_only:
                add(ar, "acc0", link.router6, link.prefix6.prefixlen)
            add(ar, "acc0", link.router4, link.subnet4.prefixlen)
            add(ar, "up0", link.ar_uplink6, link.uplink6.prefixlen)
            add(ar, "up0", link.ar_uplink4, link.uplink4.prefixlen)
            default(ar, link.core6)
            default(ar, link.core4)
            add("core", ar, link.core6, link.uplink6.prefixlen)
            add("core", ar, link.core4, link.uplink4.prefixlen)
            if link.ipv4_only:  # behind its NAT: nothing outside routes to the link
                continue
            batches["core"].append(
                (rtnl.route(str(link.prefix6), gateway=link.ar_uplink6), f"route {link.prefix6}")
            )
            batches["core"].append(
                (rtnl.route(str(link.subnet4), gateway=link.ar_uplink4), f"route {link.subnet4}")
            )
        for svc in SERVICE_NODES:
            s = {"cn": p.cn, "src": p.mcast_source, "dns": p.dns, "dhcp": p.dhcp}[svc]
            add(svc, "eth0", s.host6, s.prefix6.prefixlen)
            add(svc, "eth0", s.host4, s.subnet4.prefixlen)
            default(svc, s.core6)
            default(svc, s.core4)
            add("core", svc, s.core6, s.prefix6.prefixlen)
            add("core", svc, s.core4, s.subnet4.prefixlen)
        l1 = p.link(1)
        add("cdn", "eth0", p.cdn6, l1.prefix6.prefixlen)
        add("cdn", "eth0", p.cdn4, l1.subnet4.prefixlen)
        default("cdn", l1.router6)
        default("cdn", l1.router4)
        for link in p.access:
            if link.ipv4_only:
                self.ipv4_only(link)
        for node in self.nodes.nodes:
            with rtnl.Rtnl(self.nodes.ns(node)) as nl:
                nl.add(rtnl.set_link(1, up=True), "lo up")
                for peer_node, index in self._peers:
                    if peer_node == node:
                        nl.add(rtnl.set_link(index, up=True), f"link {index} up")
                if node == "mn":
                    for iface in self.nodes.mn.values():
                        if self.configure_addresses and iface.link is not None:
                            self.mn_config(nl, iface, iface.link)
                for msg, what in batches[node]:
                    nl.add(msg, what)
                nl.commit()

    def ipv4_only(self, link: AccessLink) -> None:
        """Make `link` an IPv4-only network behind a NAT (plan.AccessLink.ipv4_only): its AR
        gets no IPv6 on the access interface (the kernel's own link-local, MLD and NDP
        included) and masquerades the link's subnet on its uplink (nftables)."""
        ns = self.nodes.ns(link.name)
        with netns.entered(ns):
            netns.write_sysctl("net.ipv6.conf.acc0.disable_ipv6", 1)
        nft = nft_path()
        script = (
            f"table ip {NAT_TABLE} {{\n"
            "  chain postrouting {\n"
            "    type nat hook postrouting priority srcnat; policy accept;\n"
            f'    ip saddr {link.subnet4} oifname "up0" masquerade\n'
            "  }\n"
            "}\n"
        )
        res = netns.run(ns, [nft, "-f", "-"], input=script)
        if res.returncode != 0:
            raise LabError(f"{link.name}: nft refused the NAT: {res.stderr.strip()}")

    def mn_config(self, nl: rtnl.Rtnl, iface: MnIface, link: int | None) -> None:
        """Queue on `nl` (in mn) the swap of iface's addresses and default routes to `link`.

        Deletions may find nothing to delete (commit with ENOENT/ESRCH/EADDRNOTAVAIL ignored).
        """
        index = self.nodes.ifindex("mn", iface.name)
        metric = MN_METRIC + iface.number
        n = iface.number
        old = iface.configured
        if old is not None and old != link:
            was = self.nodes.plan.link(old)
            for gw in self._gateways(was):
                nl.add(
                    rtnl.route(None, gateway=gw, oif=index, metric=metric, delete=True),
                    f"delete default via {gw} on {iface.name}",
                )
            for address, plen in self._mn_addresses(was, n):
                nl.add(rtnl.addr(index, address, plen, delete=True), f"delete {address}")
        if link is not None and old != link:
            new = self.nodes.plan.link(link)
            for address, plen in self._mn_addresses(new, n):
                nl.add(rtnl.addr(index, address, plen), f"address {address} on {iface.name}")
            for gw in self._gateways(new):
                nl.add(
                    rtnl.route(None, gateway=gw, oif=index, metric=metric),
                    f"default via {gw} on {iface.name}",
                )
        iface.configured = link

    @staticmethod
    def _gateways(link: AccessLink) -> tuple[object, ...]:
        return (link.router4,) if link.ipv4_only else (link.router6, link.router4)

    def _mn_addresses(self, link: AccessLink, n: int) -> list[tuple[object, int]]:
        plan = self.nodes.plan
        out: list[tuple[object, int]] = [(plan.mn_address4(link.index, n), link.subnet4.prefixlen)]
        if not link.ipv4_only:
            out.insert(0, (plan.mn_address(link.index, n), link.prefix6.prefixlen))
        return out

    def layout(self) -> tuple[list[str], dict[str, list[str]]]:
        """The links and each node's addresses, as `dmmconf lab up` shows them."""
        p = self.nodes.plan
        addrs: dict[str, list[str]] = {node: [] for node in self.nodes.nodes}
        links: list[str] = []
        for link in p.access:
            ar = link.name
            v6 = "" if link.ipv4_only else f"{link.router6}/64 "
            addrs[ar] += [
                f"acc0 {v6}{link.router4}/{link.subnet4.prefixlen}",
                f"up0 {link.ar_uplink6}/64 {link.ar_uplink4}/30",
            ]
            addrs["core"].append(f"{ar} {link.core6}/64 {link.core4}/30")
            what = (
                f"IPv4-only {link.subnet4} behind {ar}'s NAT"
                if link.ipv4_only
                else f"{link.prefix6} {link.subnet4}"
            )
            links += [
                f"{ar}:acc0 -- sw:p-{ar} (br{link.index}, access link {link.index}: {what})",
                f"{ar}:up0 -- core:{ar}",
            ]
        for svc, s in zip(SERVICE_NODES, p.services(), strict=True):
            addrs[svc].append(f"eth0 {s.host6}/64 {s.host4}/{s.subnet4.prefixlen}")
            addrs["core"].append(f"{svc} {s.core6}/64 {s.core4}/{s.subnet4.prefixlen}")
            links.append(f"{svc}:eth0 -- core:{svc} ({s.prefix6} {s.subnet4})")
        addrs["cdn"].append(f"eth0 {p.cdn6}/64 {p.cdn4}/24")
        links.append("cdn:eth0 -- sw:p-cdn (br1)")
        for iface in self.nodes.mn.values():
            where = f"br{iface.link}" if iface.link else "detached"
            links.append(f"mn:{iface.name} -- sw:{iface.port} ({where})")
            if iface.configured:
                mine = self._mn_addresses(p.link(iface.configured), iface.number)
                addrs["mn"].append(" ".join([iface.name, *(f"{a}/{plen}" for a, plen in mine)]))
        return links, {k: v for k, v in addrs.items() if v}
