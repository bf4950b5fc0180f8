"""A DHCPv6 relay agent (RFC 8415 §19) in an access router: ISC's dhcrelay.

Why a relay: a mobile node on access link i asks for its home network information
the way RFC 6610 §4.1.1 says, an Information-request to All_DHCP_Relay_Agents_and_Servers
(ff02::1:2) on its link. That group is link-scoped: only something on the link hears
it. A real network puts a relay agent in the router, which wraps the message in a
Relay-forward whose link-address is the router's global address on the link, and sends
it to the server; the server picks the link's subnet by that link-address (so its answer
is the link's own home network), and the Relay-reply comes back the same way.

Which relay: Kea has no relay agent. Debian's isc-dhcp-relay (`dhcrelay -6`) does
exactly this; ISC ended maintenance of ISC DHCP in 2022, but the relay is small, still
packaged (bookworm: 4.4.3-P1) and all the lab needs. It runs in the foreground (-d) with
its log on stdout: "Relaying Information-request from ... going up" per message.

    dhcrelay -6 -d --no-pid -l acc0 -u 2001:db8:c4::10%up0

`-l` is the lower (client) interface, whose first global address becomes the
link-address; `-u` the server's address and the upper interface it is reached through.
"""

from __future__ import annotations

import ipaddress
import re
import time
from pathlib import Path

from harness.servers._process import (
    ManagedServer,
    ServerError,
    ServerProcess,
    find_binary,
    private_dir,
    wait_until,
)

INSTALL_HINT = "apt-get install isc-dhcp-relay"
DHCP6_RELAY_PORT = 547


def _udp6_port_bound(pid: int, port: int) -> bool:
    try:
        lines = Path(f"/proc/{pid}/net/udp6").read_text().splitlines()[1:]
    except OSError:
        return False
    want = f":{port:04X}"
    return any(len(f := line.split()) > 1 and f[1].endswith(want) for line in lines)


class DhcpRelay6(ManagedServer):
    """dhcrelay -6 in namespace `netns`: from `lower` (the access link) to `server` via
    `upper`. `link_address` overrides the address dhcrelay would take from `lower`."""

    def __init__(
        self,
        netns: str,
        lower: str,
        upper: str,
        server: ipaddress.IPv6Address | str,
        *,
        link_address: ipaddress.IPv6Address | str | None = None,
        binary: str | None = None,
        ready_timeout: float = 5.0,
    ) -> None:
        self.netns = netns
        self.lower = lower
        self.upper = upper
        self.server = ipaddress.IPv6Address(str(server))
        self.link_address = (
            ipaddress.IPv6Address(str(link_address)) if link_address is not None else None
        )
        self.binary = binary
        self.ready_timeout = ready_timeout
        self.startup_seconds: float | None = None
        self.dir: Path | None = None
        self._proc: ServerProcess | None = None

    def argv(self, binary: str) -> list[str]:
        lower = f"{self.link_address}%{self.lower}" if self.link_address else self.lower
        return [binary, "-6", "-d", "--no-pid", "-l", lower, "-u", f"{self.server}%{self.upper}"]

    def start(self) -> DhcpRelay6:
        binary = find_binary("dhcrelay", "isc-dhcp-relay", self.binary)
        if self._proc is not None:
            raise ServerError("dhcrelay already started")
        self.dir = private_dir("dhcrelay")
        try:
            began = time.monotonic()
            self._proc = ServerProcess(
                "dhcrelay",
                self.argv(binary),
                netns=self.netns,
                workdir=self.dir,
                # It sets up the upper interface, then the lower: "Sending on Socket/acc0".
                ready_line=re.compile(rf"Sending on\s+Socket/{re.escape(self.lower)}\s*$"),
            )
            self._proc.start(self.ready_timeout)
            pid = self._proc.pid
            wait_until(
                lambda: _udp6_port_bound(pid, DHCP6_RELAY_PORT),
                max(0.0, began + self.ready_timeout - time.monotonic()),
                f"dhcrelay binding UDP port {DHCP6_RELAY_PORT} in {self.netns}",
            )
            self.startup_seconds = time.monotonic() - began
        except BaseException:
            self.stop()
            raise
        return self


__all__ = ["DhcpRelay6", "INSTALL_HINT"]
