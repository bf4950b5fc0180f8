"""Impairments of the access links: a share of the frames crossing a link dropped, by
nftables rules in the switch namespace (rewritten when a port moves, as on handover).
Delay is not available (this kernel has no netem).
"""

from __future__ import annotations

import os
import shutil

from harness.lab import netns, rtnl
from harness.lab.nodes import LabError, LabUnavailable, Nodes

NFT_TABLE = "dmm_impair"


def nft_path() -> str:
    """The nft program (Debian keeps it in /usr/sbin, which a user's PATH may lack)."""
    nft = shutil.which("nft", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"]))
    if nft is None:
        raise LabUnavailable("nft (nftables) is not installed", hint="apt-get install nftables")
    return nft


class Impairments:
    """The loss on each access link of `nodes`' lab (`loss`: link -> share dropped)."""

    def __init__(self, nodes: Nodes) -> None:
        self.nodes = nodes
        self.loss: dict[int, float] = {}

    def set(self, link: int, loss: float = 0.0, delay: float | None = None) -> None:
        """Drop a share `loss` (0..1) of the frames crossing access link `link` (nftables)."""
        self.nodes.check_link(link)
        if delay:
            raise NotImplementedError(
                "delay: this kernel has no netem (CONFIG_NET_SCH_NETEM is not set), and "
                "nftables cannot hold packets back; a userspace relay on the link would be "
                "the way, and it is not built"
            )
        if not 0.0 <= loss <= 1.0:
            raise ValueError(f"loss is a share between 0 and 1, not {loss}")
        if loss == 0.0:
            self.loss.pop(link, None)
        else:
            self.loss[link] = loss
        self.apply()

    def clear(self) -> None:
        self.loss.clear()
        self.apply()

    def apply(self) -> None:
        nft = nft_path()
        # Create-then-delete makes the delete safe when the table is not there; the whole
        # script is one transaction, so the new rules replace the old ones atomically.
        script = [f"table bridge {NFT_TABLE} {{}}", f"delete table bridge {NFT_TABLE}"]
        if self.loss:
            # The kernel lacks `meta ibrname` (CONFIG_NFT_BRIDGE_META), so the rule names
            # the link's ports; the MN's port moves, so handovers rewrite the rules.
            with rtnl.Rtnl(self.nodes.ns("sw")) as nl:
                links = nl.links()
            rules = []
            for link, loss in sorted(self.loss.items()):
                br = self.nodes.ifindex("sw", f"br{link}")
                ports = sorted(f'"{s.name}"' for s in links.values() if s.master == br)
                if not ports:
                    continue
                match = f"iifname {{ {', '.join(ports)} }}"
                if loss >= 1.0:
                    rules.append(f"{match} counter drop")
                else:
                    share = round(loss * 1_000_000)
                    rules.append(f"{match} numgen random mod 1000000 < {share} counter drop")
            script += [
                f"table bridge {NFT_TABLE} {{",
                "  chain forward {",
                "    type filter hook forward priority 0; policy accept;",
                *(f"    {rule}" for rule in rules),
                "  }",
                "}",
            ]
        res = netns.run(self.nodes.ns("sw"), [nft, "-f", "-"], input="\n".join(script) + "\n")
        if res.returncode != 0:
            raise LabError(f"nft refused the impairment rules: {res.stderr.strip()}")
