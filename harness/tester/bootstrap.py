"""The tester's side of home agent bootstrapping and DNS update by a mobile node (draft §3,
§7; RFC 5026 §5.1, §8.1; RFC 6610 §4.1): the real servers of a mobility lab, the
predicates that find the MN's DNS queries and DHCPv6 Information-requests on the wire, and
readers of the DNS Update option of its BUs.

The servers are the lab's own (harness/servers/inlab.py): named serving the home domain
with the ARs as home agents (SRV ``_mip6._ipv6``), Kea with a DHCPv6 relay in every AR. A
server that cannot start ends the test not-run (the environment's failure, never the SUT's).
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from harness.lab.topology import Lab
from harness.servers._process import ServerError, ServerUnavailable, reap_dirs
from harness.servers.bind import MIP6_SRV_LABEL, NamedServer
from harness.servers.inlab import LabDhcp, lab_named
from harness.sut.profile import MN_FQDN
from harness.tester.conversation import Predicate, mobility_message
from harness.tester.mobile_node import MobileNodeUnderTest, options_of
from harness.verdicts import not_run
from harness.wire import compact
from harness.wire.numbers import MobOpt

DNS_PORT = 53
DHCP6_CLIENT_PORT, DHCP6_SERVER_PORT = 546, 547  # RFC 8415 §7.2
ALL_DHCP_RELAY_AGENTS_AND_SERVERS = "ff02::1:2"  # RFC 8415 §7.1
INFORMATION_REQUEST = 11  # RFC 8415 §7.3
OPTION_CLIENTID, OPTION_ORO, OPTION_ELAPSED_TIME = 1, 6, 8  # RFC 8415 §21
HNIDF, VDINF, IDINF, UDINF, HNP, HAA, HAF = 49, 50, 69, 70, 71, 72, 73  # RFC 6610 §6
DNS_UPDATE = int(MobOpt.DNS_UPDATE)
# The home agent whose name a test configures the MN with (RFC 5026 §5.1.1, {ha_names}):
# access link 2's, whose AAAA the lab's named holds (harness/servers/bind.py)
CONFIGURED_HA_LINK = 2


# ----------------------------------------------------------------------- servers


@contextlib.contextmanager
def lab_servers_or_not_run(what: str) -> Iterator[None]:
    """A server that is missing or does not come up ends the test not-run, with why."""
    try:
        yield
    except ServerUnavailable as exc:
        not_run(str(exc), hint=exc.hint)
    except (ServerError, OSError, TimeoutError) as exc:
        not_run(f"{what} did not start in the lab: {exc}")


@dataclass(frozen=True)
class DnsServerState:
    """The lab's named when it started, else why not."""

    server: NamedServer | None
    why_not: str = ""
    hint: str | None = None

    def require(self) -> NamedServer:
        """The server, or the calling test ends not-run (the environment's failure)."""
        if self.server is None:
            not_run(f"named did not start in the lab: {self.why_not}", hint=self.hint)
        return self.server


@contextlib.contextmanager
def optional_dns_server(lab: Lab) -> Iterator[DnsServerState]:
    """named in the lab's dns namespace, with the lab's TSIG key (harness/servers/inlab.py),
    or the reason it did not start."""
    reap_dirs()
    try:
        server = lab_named(lab)
    except ServerUnavailable as exc:
        yield DnsServerState(None, str(exc), exc.hint)
        return
    except (ServerError, OSError, TimeoutError) as exc:
        yield DnsServerState(None, str(exc))
        return
    try:
        yield DnsServerState(server)
    finally:
        server.stop()


@contextlib.contextmanager
def dhcp_servers(lab: Lab) -> Iterator[LabDhcp]:
    reap_dirs()
    servers = LabDhcp(lab, dhcp4=False)
    with lab_servers_or_not_run("Kea or a DHCPv6 relay"):
        servers.start()
    try:
        yield servers
    finally:
        servers.stop()


# Every RA with the H flag (RFC 6275 §7.1: the flags octet is the 6th of the ICMPv6
# message) leaving an AR is dropped: the lab's advertiser withholds its home agent part, and
# a home agent running there (whose own RAs announce it) is silenced the same way.
NFT_TABLE = "dmmconf_no_ha"
NFT_WITHHOLD = f"""table ip6 {NFT_TABLE} {{
  chain out {{
    type filter hook output priority 0; policy accept;
    icmpv6 type nd-router-advert @th,40,8 & 0x20 == 0x20 drop
  }}
}}
"""
NFT_TIMEOUT = 5.0


def _nft(lab: Lab, node: str, script: str) -> str | None:
    """Run an nft script in `node`'s namespace: None, or why it failed."""
    import subprocess

    try:
        proc = lab.exec_in(
            node,
            ["nft", "-f", "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        out, _ = proc.communicate(script.encode(), timeout=NFT_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return None if proc.returncode == 0 else out.decode(errors="replace").strip()


@contextlib.contextmanager
def home_agents_withheld(mn: MobileNodeUnderTest, *links: int) -> Iterator[None]:
    """The ARs of `links` advertise no home agent: no H flag, no HA Information option,
    no R flag, whoever sends their RAs (draft §3: a link that needs bootstrapping). The
    lab's reset() restores its advertisers; the filters go when the block ends."""
    installed: list[str] = []
    try:
        for link in links:
            mn.lab.ra(link).set_ha_info(False)
            node = f"ar{link}"
            why = _nft(mn.lab, node, NFT_WITHHOLD)
            if why is not None:
                not_run(f"cannot filter the home agent's RAs on {node} with nft: {why}")
            installed.append(node)
        yield
    finally:
        for node in installed:
            _nft(mn.lab, node, f"delete table ip6 {NFT_TABLE}\n")


def srv_name(lab: Lab) -> str:
    from harness.lab.plan import DOMAIN

    del lab
    return f"{MIP6_SRV_LABEL}.{DOMAIN}."


# ----------------------------------------------------------------------- DNS queries


@dataclass(frozen=True)
class DnsQuery:
    src: str
    dst: str
    qid: int
    qname: str  # absolute, lower case
    qtype: str


def dns_query_of(pkt: Any) -> DnsQuery | None:
    """The MN's DNS query in a frame (UDP to port 53), read by dnspython."""
    import dns.exception
    import dns.flags
    import dns.message
    import dns.rdatatype
    from scapy.layers.inet import UDP
    from scapy.layers.inet6 import IPv6

    ip, udp = pkt.getlayer(IPv6), pkt.getlayer(UDP)
    if ip is None or udp is None or udp.dport != DNS_PORT:
        return None
    try:
        msg = dns.message.from_wire(bytes(udp.payload))
    except dns.exception.DNSException:
        return None
    if msg.flags & dns.flags.QR or len(msg.question) != 1:
        return None
    q = msg.question[0]
    return DnsQuery(
        ip.src, ip.dst, msg.id, q.name.to_text().lower(), dns.rdatatype.to_text(q.rdtype)
    )


def dns_query(qname: str | None = None, qtype: str | None = None) -> Predicate:
    def test(pkt: Any) -> bool:
        q = dns_query_of(pkt)
        if q is None:
            return False
        if qname is not None and q.qname != qname.lower():
            return False
        return qtype is None or q.qtype == qtype

    what = "a DNS query" + (f" for {qname}" if qname else "") + (f" {qtype}" if qtype else "")
    return Predicate(test, what)


# ----------------------------------------------------------------------- DHCPv6


@dataclass(frozen=True)
class InformationRequest:
    src: str
    dst: str
    sport: int
    dport: int
    transaction_id: int
    options: dict[int, list[bytes]]  # code -> bodies, in order

    @property
    def requested(self) -> list[int]:
        """The codes of the Option Request option (RFC 8415 §21.7)."""
        out: list[int] = []
        for body in self.options.get(OPTION_ORO, []):
            out += [int.from_bytes(body[i : i + 2], "big") for i in range(0, len(body) - 1, 2)]
        return out


def information_request_of(pkt: Any) -> InformationRequest | None:
    """A DHCPv6 Information-request in a frame, its options read octet by octet (RFC 8415
    §21.1: code and length of two octets), independently of the scapy layers."""
    from scapy.layers.inet import UDP
    from scapy.layers.inet6 import IPv6

    ip, udp = pkt.getlayer(IPv6), pkt.getlayer(UDP)
    if ip is None or udp is None or udp.dport != DHCP6_SERVER_PORT:
        return None
    data = bytes(udp.payload)
    if len(data) < 4 or data[0] != INFORMATION_REQUEST:
        return None
    options: dict[int, list[bytes]] = {}
    off = 4
    while off + 4 <= len(data):
        code = int.from_bytes(data[off : off + 2], "big")
        length = int.from_bytes(data[off + 2 : off + 4], "big")
        options.setdefault(code, []).append(data[off + 4 : off + 4 + length])
        off += 4 + length
    return InformationRequest(
        ip.src, ip.dst, udp.sport, udp.dport, int.from_bytes(data[1:4], "big"), options
    )


def information_request() -> Predicate:
    return Predicate(
        lambda pkt: information_request_of(pkt) is not None, "a DHCPv6 Information-request"
    )


def bootstrap_query() -> Predicate:
    """Either way of asking for a home agent (draft §7)."""
    dns_q, dhcp_q = dns_query(), information_request()
    return Predicate(lambda p: dns_q(p) or dhcp_q(p), "a DNS query or DHCPv6 Information-request")


# ----------------------------------------------------------------------- DNS Update option


@dataclass(frozen=True)
class DnsUpdateOption:
    status: int
    remove: bool  # the R flag
    reserved: int
    identity: bytes

    def names(self, fqdn: str) -> bool:
        """Does the MN identity field hold `fqdn` (RFC 5026 §8.1 "in FQDN format"): as a
        DNS name in wire format (how the suite's vectors write it) or as its text?"""
        import dns.name

        wire = dns.name.from_text(fqdn).to_wire() or b""
        text = fqdn.rstrip(".").lower().encode()
        return self.identity.lower() == wire.lower() or self.identity.rstrip(b".").lower() == text

    def shown(self) -> str:
        return f"Status {self.status}, R {int(self.remove)}, MN identity {self.identity!r}"


def dns_update_options(msg: compact.MobilityMessage) -> list[DnsUpdateOption]:
    out = []
    for o in options_of(msg):
        if o.otype == DNS_UPDATE and len(o.data) >= 2:
            out.append(
                DnsUpdateOption(o.data[0], bool(o.data[1] & 0x80), o.data[1] & 0x7F, o.data[2:])
            )
    return out


def reverse_name(address: str) -> str:
    """The ip6.arpa name of an address (OPEN-3 accepts it as the removal's identity)."""
    import dns.reversename

    return dns.reversename.from_address(address).to_text()


def mn_fqdn(mn: MobileNodeUnderTest) -> str:
    """The MN's FQDN as its profile was given it ({mn_fqdn}, harness/sut/profile.py)."""
    del mn
    return MN_FQDN


def aaaa_of(lab: Lab, server: NamedServer, name: str) -> list[str]:
    """What the lab's named answers for `name` AAAA now (a real query from its own
    namespace); a server that does not answer ends the test not-run."""
    import dns.exception

    from harness.lab import netns
    from harness.servers import bind

    try:
        with netns.entered(lab.ns("dns")):
            return bind.lookup_aaaa(server.address, name, timeout=1.0)
    except (dns.exception.DNSException, OSError) as exc:
        not_run(f"the lab's named did not answer the tester ({name} AAAA): {exc}")


def ha_on(lab: Lab, link: int) -> ipaddress.IPv6Address:
    return lab.plan.link(link).router6


__all__ = [
    "DnsQuery",
    "aaaa_of",
    "DnsUpdateOption",
    "InformationRequest",
    "bootstrap_query",
    "dhcp_servers",
    "dns_query",
    "dns_query_of",
    "DnsServerState",
    "optional_dns_server",
    "dns_update_options",
    "ha_on",
    "information_request",
    "information_request_of",
    "mn_fqdn",
    "mobility_message",
    "reverse_name",
    "srv_name",
    "home_agents_withheld",
]
