"""Real servers for the lab: BIND 9 and ISC Kea.

* `bind.NamedServer`: the home domain zone (RFC 5026 §5: AAAA of the home agents, SRV
  ``_mip6._ipv6.<domain>``), TSIG-protected RFC 2136 updates; client helpers
  `dns_update`, `dns_remove`, `lookup_srv`, `lookup_aaaa`.
* `kea.KeaDhcp6Server` / `kea.KeaDhcp4Server`: RFC 6610 home network information
  (DHCPv6) and draft-xia-mext-hioptv4's OPTION_DSMIP6_HNINF (DHCPv4); client helpers
  `information_request`, `dhcp_inform`.
* `relay.DhcpRelay6`: ISC dhcrelay -6 in an access router, so that a mobile node's
  Information-request to ff02::1:2 on its link reaches Kea (and is answered per link).
* `inlab`: where each goes in a running lab (`lab_named`, `LabDhcp`).
* `fixtures`: pytest fixtures (`lab_dns`, `lab_dhcp`).

The server classes take a network namespace name (/run/netns/<name>) and addresses;
they do not care who made the namespace. A missing binary raises `ServerUnavailable`
whose `hint` is the apt-get command.
"""

from harness.servers._process import ServerError, ServerUnavailable

__all__ = ["ServerError", "ServerUnavailable"]
