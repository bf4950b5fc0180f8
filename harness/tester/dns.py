"""The tester's side of the DNS updates a home agent makes for its mobile nodes (RFC 5026
§6, §8.1, §9.5; draft §6; docs/interpretations.md INT-18): the lab's named, asked by real
queries what the zone holds, and stopped, paused or given another key to be a DNS server
that fails the home agent; the DNS Update options of the tester's BUs and of the HA's BAs;
the RFC 2136 UPDATEs the HA sends, read off the DNS server's link.

What the lab's named does wrong is the harness's failure: a server that does not start or
does not answer the tester ends the test not-run, never the SUT's fail.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.message
import dns.name
import dns.opcode
import dns.rdatatype
from scapy.layers.inet import UDP
from scapy.layers.inet6 import MIP6OptUnknown
from scapy.packet import Packet

from harness.lab import netns
from harness.lab.topology import Lab
from harness.servers import bind
from harness.servers._process import ServerError
from harness.servers.inlab import lab_tsig_key
from harness.tester.conversation import Link, Predicate, inbound, is_mh
from harness.tester.ha_registration import for_hoa, message
from harness.tester.home_agent import HomeAgentUnderTest, expect_in_time
from harness.verdicts import not_run
from harness.wire import compact
from harness.wire.mobility import MIP6OptDNSUpdate
from harness.wire.numbers import MobOpt

QUERY_TIMEOUT = 1.0  # the lab's named answers in milliseconds; more is the lab's trouble


def wire_name(fqdn: str) -> bytes:
    """A name in uncompressed wire format (RFC 1035 §3.1), the MN identity of INT-18."""
    wire = dns.name.from_text(fqdn).to_wire()
    assert wire is not None
    return wire


def dns_option(fqdn: str | bytes, *, remove: bool = False, status: int = 0) -> Packet:
    """A BU's DNS Update option (RFC 5026 §8.1): a name, or the identity's raw octets."""
    identity = wire_name(fqdn) if isinstance(fqdn, str) else fqdn
    return MIP6OptDNSUpdate(status=status, flags=int(remove), mn_identity=identity)


def raw_dns_option(data: bytes) -> Packet:
    """A DNS Update option with exactly `data` after its Length (a malformed one)."""
    return MIP6OptUnknown(otype=int(MobOpt.DNS_UPDATE), olen=len(data), odata=data)


@dataclass(frozen=True)
class DnsAnswer:
    """The DNS Update option of a BA: its Status, R flag and MN identity."""

    status: int
    remove: bool
    identity: bytes

    @property
    def performed(self) -> bool:
        return self.status < 128  # RFC 5026 §8.1


def dns_answer(ba: compact.MobilityMessage) -> DnsAnswer | None:
    for opt in ba.options:
        if opt.otype == MobOpt.DNS_UPDATE and len(opt.data) >= 2:
            return DnsAnswer(opt.data[0], bool(opt.data[1] & 0x80), opt.data[2:])
    return None


def ba_deadline(ha: HomeAgentUnderTest) -> float:
    """The BA of a BU with a DNS Update option: after the update (draft §6), so within the
    HA's declared DNS timeout and the reaction window (INT-15, INT-18)."""
    return ha.timers.dns_update_timeout + ha.reaction_window


# ----------------------------------------------------------------- the lab's named


class LabDns:
    """The lab's named (the session's `lab_dns`, harness/servers/fixtures.py), as the HA
    suite uses it: what the zone holds (real queries, from the server's own namespace), and
    the failures it can be made to have."""

    def __init__(self, lab: Lab, server: bind.NamedServer) -> None:
        self.lab = lab
        self.server = server
        self.address = server.address
        self.domain = server.domain

    def _restart(self, key: bind.TsigKey) -> None:
        self.server.stop()
        self.server.key = key
        try:
            self.server.start()
        except (ServerError, OSError) as exc:
            not_run(f"the lab's named did not start again: {exc}")

    def _ask(self, name: str, rdtype: str) -> list[str]:
        try:
            with netns.entered(self.lab.ns("dns")):
                if rdtype == "AAAA":
                    return bind.lookup_aaaa(self.address, name, timeout=QUERY_TIMEOUT)
                return [r.to_text() for r in bind.query(self.address, name, rdtype).answer]
        except (dns.exception.DNSException, OSError) as exc:
            not_run(f"the lab's named did not answer the tester ({name} {rdtype}): {exc}")

    def aaaa(self, fqdn: str) -> set[ipaddress.IPv6Address]:
        """The AAAA records the server holds for `fqdn` now."""
        return {ipaddress.IPv6Address(a) for a in self._ask(fqdn, "AAAA")}

    def a(self, fqdn: str) -> set[ipaddress.IPv4Address]:
        """The A records the server holds for `fqdn` now (a dual-stack MN's, draft §8)."""
        try:
            with netns.entered(self.lab.ns("dns")):
                found = bind.lookup_a(self.address, fqdn, timeout=QUERY_TIMEOUT)
        except (dns.exception.DNSException, OSError) as exc:
            not_run(f"the lab's named did not answer the tester ({fqdn} A): {exc}")
        return {ipaddress.IPv4Address(a) for a in found}

    def healthy(self) -> None:
        """The server answers for its zone (else the test cannot judge the HA: not-run)."""
        if not self._ask(self.domain, "SOA"):
            not_run(f"the lab's named has no SOA for {self.domain}")

    def forget(self, fqdn: str, *addresses: str) -> None:
        """Remove records the tester made the HA put there (with the lab's key), so the
        next test starts from a zone without them."""
        with netns.entered(self.lab.ns("dns")), contextlib.suppress(dns.exception.DNSException):
            for address in addresses:
                bind.dns_remove(
                    self.address, self.domain, lab_tsig_key(self.lab), fqdn, address,
                    timeout=QUERY_TIMEOUT, check=False,
                )  # fmt: skip

    @contextlib.contextmanager
    def rekeyed(self) -> Iterator[None]:
        """named restarted with a key of the same name and another secret: the HA's key is
        now wrong (RFC 8945 §5.2: BADSIG, NOTAUTH); the lab's key again afterwards."""
        self._restart(bind.TsigKey.generate(lab_tsig_key(self.lab).name))
        try:
            yield
        finally:
            self._restart(lab_tsig_key(self.lab))

    @contextlib.contextmanager
    def silent(self) -> Iterator[None]:
        """named stopped (SIGSTOP) for the block: it receives, and answers nothing."""
        pid = self.server.pid
        if pid is None:
            not_run("the lab's named is not running")
        os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(pid, signal.SIGCONT)


# ----------------------------------------------------------------- on the DNS link


@dataclass(frozen=True)
class SeenUpdate:
    """An RFC 2136 UPDATE (or its answer) seen on the DNS server's link."""

    response: bool
    zone: str
    signed: bool  # it carries a TSIG record (RFC 8945)
    changes: tuple[tuple[str, str, str], ...]  # (name, type, rdata) of its update section


def seen_update(pkt: Any) -> SeenUpdate | None:
    if UDP not in pkt or 53 not in (pkt[UDP].dport, pkt[UDP].sport):
        return None
    try:
        msg = dns.message.from_wire(bytes(pkt[UDP].payload), keyring=False)
    except dns.exception.DNSException:
        return None
    if msg.opcode() != dns.opcode.UPDATE:
        return None
    zone = msg.question[0].name.to_text() if msg.question else ""
    changes = tuple(
        (rrset.name.to_text(), dns.rdatatype.to_text(rrset.rdtype), rd.to_text())
        for rrset in getattr(msg, "update", msg.authority)
        for rd in (rrset or [None])
        if rd is not None
    )
    return SeenUpdate(bool(msg.flags & 0x8000), zone, msg.had_tsig, changes)


def update_request(fqdn: str) -> Predicate:
    """An UPDATE to the server whose update section touches `fqdn`."""
    name = fqdn.lower().rstrip(".") + "."

    def test(pkt: Any) -> bool:
        seen = seen_update(pkt)
        return (
            seen is not None
            and not seen.response
            and any(n.lower() == name for n, _, _ in seen.changes)
        )

    return Predicate(test, f"an RFC 2136 UPDATE of {name}")


UPDATE_ANSWER = Predicate(
    lambda p: (s := seen_update(p)) is not None and s.response, "the answer to an UPDATE"
)


def settled(
    dns_link: Link, since: int, within: float, until: Callable[[], bool] | None = None
) -> None:
    """Wait for the server's answer to an UPDATE sent since mark `since` (the HA's update
    has been applied, or refused); none within `within` is left to the zone's verdict.
    With `until`, wait for answer after answer (an HA may send one UPDATE per record)
    until `until()` holds or `within` has passed."""
    deadline = time.monotonic() + within
    start: int | None = since
    while until is None or not until():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        try:
            dns_link.expect(UPDATE_ANSWER, within=left, since=start)
        except AssertionError:
            return
        if until is None:
            return
        start = None  # the next answer after this one


# ----------------------------------------------------------------- the BUs


def answered(
    ha: HomeAgentUnderTest,
    link: Link,
    hoa: str,
    seq: int,
    lifetime: int,
    *options: Packet,
    within: float | None = None,
) -> compact.MobilityMessage:
    """Send a BU for `hoa` and return the HA's BA for it, due within `within` (default:
    ba_deadline, the update first); a late one fails as late (INT-15)."""
    mark = link.mark()
    link.send(ha.bu(hoa, seq, lifetime, options))
    allowed = ba_deadline(ha) if within is None else within
    pkt = expect_in_time(link, inbound & is_mh("BA") & for_hoa(hoa), allowed, since=mark)
    return message(pkt)
