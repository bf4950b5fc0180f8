"""Router Advertisements of the home agent (RFC 6275 §7) as the tester reads them."""

from __future__ import annotations

from typing import Any

from scapy.layers.inet6 import ICMPv6ND_RA, ICMPv6NDOptHAInfo

from harness.tester.conversation import Predicate


def ra(pkt: Any) -> Any:
    """The Router Advertisement of a packet, or None."""
    return pkt.getlayer(ICMPv6ND_RA)


def ha_info(pkt: Any) -> Any:
    """The Home Agent Information option of a packet (RFC 6275 §7.4), or None."""
    return pkt.getlayer(ICMPv6NDOptHAInfo)


is_ra = Predicate(lambda p: ra(p) is not None, "a Router Advertisement")
