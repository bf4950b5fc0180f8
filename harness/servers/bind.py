"""BIND 9 (`named`) serving the lab's home domain, and the DNS client side the suite uses.

RFC 5026 bootstrapping, as draft-sarikaya-mext-multicastdmm-01 §7 uses it:

* §5.1.1 lookup by home agent name: AAAA (and A, for dual stack) records for ha1..haN,
  the access routers' addresses from the plan (every AR is a home agent);
* §5.1.2 lookup by service name: SRV records ``_mip6._ipv6.<domain>`` naming the home
  agents. RFC 5026 fixes no port (Mobile IPv6 is not a transport protocol), so the
  port field is 0. ``minimal-responses no`` makes named put the targets' AAAA records
  in the additional section, as §5.1.2 RECOMMENDS;
* §9.5 dynamic DNS update of the mobile node's home address by the home agent (RFC 2136)
  with a security association: a TSIG key (hmac-sha256, a fresh random secret per
  server), and ``allow-update`` for that key only, so an unsigned update is REFUSED and a
  wrongly signed one NOTAUTH.

`NamedServer` writes named.conf and the zone files into a private directory and runs
``named -g`` (foreground, log on stderr) in the given network namespace, listening only
on the given addresses; no system configuration is read or written (``controls {}``
turns off rndc, so /etc/bind/rndc.key is not needed either).
"""

from __future__ import annotations

import base64
import ipaddress
import re
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.reversename
import dns.tsig
import dns.update

from harness.lab import netns as _netns
from harness.lab import plan as lab_plan
from harness.servers._process import (
    ManagedServer,
    ServerError,
    ServerProcess,
    find_binary,
    private_dir,
)

INSTALL_HINT = "apt-get install bind9"
DNS_PORT = 53
MIP6_SRV_LABEL = "_mip6._ipv6"  # RFC 5026 §5.1.2: service "mip6", protocol "ipv6"
DEFAULT_TTL = 60
DEFAULT_KEY_NAME = "dmmconf-update"
_READY = re.compile(r"\brunning\s*$")  # named -g prints "running" once it serves

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


# ------------------------------------------------------------------------ records


@dataclass(frozen=True)
class TsigKey:
    """A TSIG key (RFC 8945) as both named and dnspython want it."""

    name: str
    secret: str  # base64
    algorithm: str = "hmac-sha256"

    @classmethod
    def generate(cls, name: str = DEFAULT_KEY_NAME, algorithm: str = "hmac-sha256") -> TsigKey:
        """A fresh random 256-bit secret."""
        return cls(name, base64.b64encode(secrets.token_bytes(32)).decode("ascii"), algorithm)

    def keyring(self) -> dns.tsig.Key:
        return dns.tsig.Key(self.name, self.secret, self.algorithm)

    def named_conf(self) -> str:
        """The key statement of named.conf, also the key file `nsupdate -k` reads."""
        return (
            f'key "{self.name}" {{\n    algorithm {self.algorithm};\n'
            f'    secret "{self.secret}";\n}};\n'
        )

    @classmethod
    def from_conf(cls, text: str) -> TsigKey:
        """The key of a key statement as named_conf() writes it (and tsig-keygen)."""
        m = _KEY_STATEMENT.search(text)
        if m is None:
            raise ValueError('no key statement (key "name" { algorithm ...; secret ...; };)')
        return cls(m["name"], m["secret"], m["algorithm"])


_KEY_STATEMENT = re.compile(
    r'key\s+"?(?P<name>[^"\s{]+)"?\s*\{\s*algorithm\s+(?P<algorithm>[\w.-]+)\s*;'
    r'\s*secret\s+"(?P<secret>[^"]+)"\s*;\s*\}\s*;',
    re.S,
)


@dataclass(frozen=True)
class HomeAgentRecord:
    """One home agent in the zone: its name, addresses and SRV preference."""

    fqdn: str  # absolute or relative to nothing: "ha1.lab.example"
    address6: ipaddress.IPv6Address
    address4: ipaddress.IPv4Address | None = None
    priority: int = 0
    weight: int = 1


def home_agents(plan: lab_plan.Plan | None = None) -> tuple[HomeAgentRecord, ...]:
    """The plan's access routers as home agents ha1..haN (all equal in the SRV set)."""
    plan = plan or lab_plan.build()
    return tuple(HomeAgentRecord(link.ha_fqdn, link.router6, link.router4) for link in plan.access)


def _abs(name: str) -> str:
    return name if name.endswith(".") else name + "."


def _rel(name: str, origin: str) -> str:
    """`name` relative to `origin` when inside it (zone files read better), else absolute."""
    n, o = _abs(name).lower(), _abs(origin).lower()
    if n == o:
        return "@"
    if n.endswith("." + o):
        return _abs(name)[: -len(o) - 1]
    return _abs(name)


@dataclass(frozen=True)
class ZoneData:
    """What the home domain zone holds; `text()` is the master file (RFC 1035 §5)."""

    domain: str = lab_plan.DOMAIN
    home_agents: tuple[HomeAgentRecord, ...] = field(default_factory=home_agents)
    ns6: ipaddress.IPv6Address | None = None  # the name server's own addresses (ns1)
    ns4: ipaddress.IPv4Address | None = None
    srv: bool = True  # the _mip6._ipv6 SRV set (off: a zone to prove the SRV test can fail)
    ttl: int = DEFAULT_TTL

    def text(self) -> str:
        origin = _abs(self.domain)
        lines = [
            f"$ORIGIN {origin}",
            f"$TTL {self.ttl}",
            f"@ IN SOA ns1 hostmaster 1 3600 600 86400 {self.ttl}",
            "@ IN NS ns1",
        ]
        if self.ns6 is not None:
            lines.append(f"ns1 IN AAAA {self.ns6}")
        if self.ns4 is not None:
            lines.append(f"ns1 IN A {self.ns4}")
        if self.ns6 is None and self.ns4 is None:
            raise ValueError("the zone's name server needs an address (ns6 or ns4)")
        for ha in self.home_agents:
            owner = _rel(ha.fqdn, origin)
            lines.append(f"{owner} IN AAAA {ha.address6}")
            if ha.address4 is not None:
                lines.append(f"{owner} IN A {ha.address4}")
        if self.srv:
            for ha in self.home_agents:
                # RFC 2782: priority weight port target; RFC 5026 has no port: 0.
                lines.append(f"{MIP6_SRV_LABEL} IN SRV {ha.priority} {ha.weight} 0 {_abs(ha.fqdn)}")
        return "\n".join(lines) + "\n"

    def reverse_zones(self) -> dict[str, str]:
        """Reverse zones (origin -> master file) with PTRs for the home agents.

        One zone per family, cut at the documentation prefix (2001:db8::/32) and at the
        first octet of the IPv4 addresses: enough for the lab's plan.
        """
        zones: dict[str, list[str]] = {}
        for ha in self.home_agents:
            addrs: list[IPAddress] = [ha.address6]
            if ha.address4 is not None:
                addrs.append(ha.address4)
            for addr in addrs:
                ptr = dns.reversename.from_address(str(addr))
                if addr.version == 6:
                    cut = ipaddress.IPv6Network((int(addr) >> 96 << 96, 32))
                    origin = dns.reversename.from_address(str(cut.network_address))
                    origin = dns.name.Name(origin.labels[32 - 8 :])
                else:
                    origin = dns.name.Name(ptr.labels[3:])
                zones.setdefault(origin.to_text(), []).append(
                    f"{ptr.relativize(origin).to_text()} IN PTR {_abs(ha.fqdn)}"
                )
        ns = f"ns1.{_abs(self.domain)}"
        return {
            origin: "\n".join(
                [
                    f"$ORIGIN {origin}",
                    f"$TTL {self.ttl}",
                    f"@ IN SOA {ns} hostmaster.{_abs(self.domain)} 1 3600 600 86400 {self.ttl}",
                    f"@ IN NS {ns}",
                    *ptrs,
                ]
            )
            + "\n"
            for origin, ptrs in zones.items()
        }


# ------------------------------------------------------------------------- server


def _split(addresses: Iterable[str | IPAddress]) -> tuple[list[str], list[str]]:
    v4: list[str] = []
    v6: list[str] = []
    for a in addresses:
        addr = ipaddress.ip_address(str(a))
        (v6 if addr.version == 6 else v4).append(str(addr))
    return v4, v6


class NamedServer(ManagedServer):
    """named for the home domain, in network namespace `netns`, listening on `addresses`.

    Use as a context manager, or call start() and stop(). `startup_seconds` is from
    spawning named to its first answered SOA query.
    """

    def __init__(
        self,
        netns: str,
        addresses: Sequence[str | IPAddress],
        *,
        zone: ZoneData | None = None,
        key: TsigKey | None = None,
        reverse: bool = True,
        port: int = DNS_PORT,
        binary: str | None = None,
        ready_timeout: float = 10.0,
    ) -> None:
        if not addresses:
            raise ValueError("named needs at least one address to listen on")
        self.netns = netns
        self.addresses = [str(ipaddress.ip_address(str(a))) for a in addresses]
        v4, v6 = _split(self.addresses)
        if zone is None:
            zone = ZoneData(
                ns6=ipaddress.IPv6Address(v6[0]) if v6 else None,
                ns4=ipaddress.IPv4Address(v4[0]) if v4 else None,
            )
        self.zone = zone
        self.key = key or TsigKey.generate()
        self.reverse = reverse
        self.port = port
        self.binary = binary
        self.ready_timeout = ready_timeout
        self.startup_seconds: float | None = None
        self.dir: Path | None = None
        self._proc: ServerProcess | None = None

    @property
    def domain(self) -> str:
        return self.zone.domain

    @property
    def address(self) -> str:
        """The address clients use by default (the first one given)."""
        return self.addresses[0]

    def named_conf(self, directory: Path) -> str:
        v4, v6 = _split(self.addresses)

        def listen(addrs: list[str]) -> str:
            return " ".join(f"{a};" for a in addrs) if addrs else "none;"

        zones = {_abs(self.domain): f"{_abs(self.domain)}zone"}
        if self.reverse:
            zones.update({origin: f"{origin}zone" for origin in self.zone.reverse_zones()})
        zone_blocks = "".join(
            f'zone "{origin}" {{\n    type primary;\n    file "{fname}";\n'
            f'    allow-update {{ key "{self.key.name}"; }};\n}};\n'
            for origin, fname in zones.items()
        )
        return (
            "// generated by harness.servers.bind; private to one test run\n"
            "options {\n"
            f'    directory "{directory}";\n'
            f'    pid-file "{directory}/named.pid";\n'
            f'    session-keyfile "{directory}/session.key";\n'
            f'    managed-keys-directory "{directory}";\n'
            f'    bindkeys-file "{directory}/bind.keys";\n'  # not /etc/bind's (no DNSSEC)
            f"    listen-on port {self.port} {{ {listen(v4)} }};\n"
            f"    listen-on-v6 port {self.port} {{ {listen(v6)} }};\n"
            "    recursion no;\n"
            "    allow-query { any; };\n"
            "    allow-transfer { none; };\n"
            "    dnssec-validation no;\n"
            "    notify no;\n"
            "    minimal-responses no;\n"
            "    automatic-interface-scan no;\n"
            "};\n"
            "controls { };\n" + self.key.named_conf() + zone_blocks
        )

    def _write_config(self, directory: Path) -> Path:
        (directory / f"{_abs(self.domain)}zone").write_text(self.zone.text())
        if self.reverse:
            for origin, text in self.zone.reverse_zones().items():
                (directory / f"{origin}zone").write_text(text)
        (directory / "bind.keys").write_text("// no trust anchors: dnssec-validation no\n")
        conf = directory / "named.conf"
        conf.write_text(self.named_conf(directory))
        return conf

    def start(self) -> NamedServer:
        binary = find_binary("named", "bind9", self.binary)
        if self._proc is not None:
            raise ServerError("named already started")
        self.dir = private_dir("named")
        try:
            conf = self._write_config(self.dir)
            began = time.monotonic()
            # -g: foreground, log to stderr; -n 1: one worker thread is plenty here.
            self._proc = ServerProcess(
                "named",
                [binary, "-g", "-n", "1", "-c", str(conf)],
                netns=self.netns,
                workdir=self.dir,
                ready_line=_READY,
            )
            self._proc.start(self.ready_timeout)
            self._confirm(began + self.ready_timeout)
            self.startup_seconds = time.monotonic() - began
        except BaseException:
            self.stop()
            raise
        return self

    def _confirm(self, deadline: float) -> None:
        """Each listen address answers a SOA query for the zone (asked from its namespace)."""
        with _netns.entered(self.netns):
            for addr in self.addresses:
                while True:
                    try:
                        reply = query(addr, self.domain, "SOA", port=self.port, timeout=0.5)
                    except (dns.exception.Timeout, OSError) as exc:
                        if time.monotonic() >= deadline:
                            raise ServerError(
                                f"named does not answer on [{addr}]:{self.port}: {exc}; "
                                f"its output:\n{self.tail()}"
                            ) from None
                        continue  # a timed-out query is the wait; no sleep needed
                    if reply.rcode() != dns.rcode.NOERROR or not reply.answer:
                        raise ServerError(
                            f"named on {addr} answers SOA {self.domain} with "
                            f"{dns.rcode.to_text(reply.rcode())}; its output:\n{self.tail()}"
                        )
                    break


# ------------------------------------------------------------------------- client
#
# Plain functions over dnspython, sending from whatever namespace the calling thread is
# in (wrap them in harness.lab.netns.entered(...) to ask from elsewhere). The
# reference home agent uses dns_update/dns_remove for RFC 5026 §9.5.


def query(
    server: str, name: str, rdtype: str | int, *, port: int = DNS_PORT, timeout: float = 2.0
) -> dns.message.Message:
    """One non-recursive query over UDP (TCP when truncated); the whole reply."""
    msg = dns.message.make_query(name, dns.rdatatype.RdataType.make(rdtype))
    msg.flags &= ~dns.flags.RD
    reply, _ = dns.query.udp_with_fallback(msg, server, timeout=timeout, port=port)
    return reply


def _answer(reply: dns.message.Message, name: str, rdtype: int) -> list[str]:
    rrset = reply.get_rrset(
        reply.answer, dns.name.from_text(name), dns.rdataclass.IN, dns.rdatatype.RdataType(rdtype)
    )
    return [r.to_text() for r in rrset] if rrset is not None else []


def lookup_aaaa(server: str, name: str, *, port: int = DNS_PORT, timeout: float = 2.0) -> list[str]:
    """RFC 5026 §5.1.1 (lookup by home agent name): the AAAA records of `name`."""
    reply = query(server, name, "AAAA", port=port, timeout=timeout)
    return [str(ipaddress.IPv6Address(a)) for a in _answer(reply, name, dns.rdatatype.AAAA)]


def lookup_a(server: str, name: str, *, port: int = DNS_PORT, timeout: float = 2.0) -> list[str]:
    reply = query(server, name, "A", port=port, timeout=timeout)
    return _answer(reply, name, dns.rdatatype.A)


@dataclass(frozen=True)
class SrvTarget:
    priority: int
    weight: int
    port: int
    target: str  # absolute, with the trailing dot
    addresses: tuple[str, ...] = ()  # AAAA records the server added (RFC 5026 §5.1.2)


def lookup_srv(
    server: str,
    domain: str = lab_plan.DOMAIN,
    *,
    port: int = DNS_PORT,
    timeout: float = 2.0,
) -> list[SrvTarget]:
    """RFC 5026 §5.1.2 (lookup by service name): ``_mip6._ipv6.<domain>`` SRV, by priority.

    Each target carries the AAAA records the server put in the additional section.
    An empty list when the name or the SRV set does not exist.
    """
    qname = f"{MIP6_SRV_LABEL}.{_abs(domain)}"
    reply = query(server, qname, "SRV", port=port, timeout=timeout)
    rrset = reply.get_rrset(
        reply.answer, dns.name.from_text(qname), dns.rdataclass.IN, dns.rdatatype.SRV
    )
    if rrset is None:
        return []
    extra: dict[str, list[str]] = {}
    for rr in reply.additional:
        if rr.rdtype == dns.rdatatype.AAAA:
            extra.setdefault(rr.name.to_text().lower(), []).extend(r.to_text() for r in rr)
    out = [
        SrvTarget(
            r.priority,
            r.weight,
            r.port,
            r.target.to_text(),
            tuple(extra.get(r.target.to_text().lower(), ())),
        )
        for r in rrset
    ]
    return sorted(out, key=lambda t: (t.priority, -t.weight, t.target))


@dataclass(frozen=True)
class UpdateResult:
    """How the server answered an RFC 2136 update."""

    rcode: dns.rcode.Rcode
    tsig_error: str | None = None  # BADKEY / BADSIG / BADTIME, from the TSIG record

    @property
    def ok(self) -> bool:
        return self.rcode == dns.rcode.NOERROR and self.tsig_error is None

    def __str__(self) -> str:
        text = dns.rcode.to_text(self.rcode)
        return f"{text} (TSIG {self.tsig_error})" if self.tsig_error else text


class DnsUpdateError(RuntimeError):
    def __init__(self, result: UpdateResult, what: str) -> None:
        super().__init__(f"{what}: {result}")
        self.result = result


_TSIG_ERRORS: dict[type[Exception], str] = {
    dns.tsig.PeerBadKey: "BADKEY",
    dns.tsig.PeerBadSignature: "BADSIG",
    dns.tsig.PeerBadTime: "BADTIME",
    dns.tsig.PeerBadTruncation: "BADTRUNC",
}


def _send_update(
    server: str,
    update: dns.update.UpdateMessage,
    *,
    port: int,
    timeout: float,
    check: bool,
    what: str,
) -> UpdateResult:
    try:
        reply, _ = dns.query.udp_with_fallback(update, server, timeout=timeout, port=port)
        result = UpdateResult(dns.rcode.Rcode(reply.rcode()))
    except dns.tsig.PeerError as exc:
        # The server refused our signature and said why in its (unverifiable) TSIG RR.
        tsig = next((v for k, v in _TSIG_ERRORS.items() if isinstance(exc, k)), type(exc).__name__)
        result = UpdateResult(dns.rcode.NOTAUTH, tsig)
    if check and not result.ok:
        raise DnsUpdateError(result, what)
    return result


def _update_message(zone: str, key: TsigKey | None) -> dns.update.UpdateMessage:
    if key is None:
        return dns.update.UpdateMessage(_abs(zone))
    return dns.update.UpdateMessage(_abs(zone), keyring=key.keyring())


def dns_update(
    server: str,
    zone: str,
    key: TsigKey | None,
    fqdn: str,
    address: str | IPAddress,
    ttl: int = DEFAULT_TTL,
    *,
    port: int = DNS_PORT,
    timeout: float = 2.0,
    check: bool = True,
    replace: bool = True,
) -> UpdateResult:
    """RFC 2136 update: `fqdn` now has exactly this AAAA (or A) record (replace=False:
    this record too, beside the ones it has).

    Signed with `key` (TSIG, RFC 8945); None sends it unsigned. With `check`, anything
    but NOERROR raises DnsUpdateError; without, the result says what the server said.
    """
    addr = ipaddress.ip_address(str(address))
    rdtype = "AAAA" if addr.version == 6 else "A"
    update = _update_message(zone, key)
    if replace:
        update.replace(_abs(fqdn), ttl, rdtype, str(addr))
    else:
        update.add(_abs(fqdn), ttl, rdtype, str(addr))
    return _send_update(
        server, update, port=port, timeout=timeout, check=check, what=f"update {fqdn} {rdtype}"
    )


def dns_remove(
    server: str,
    zone: str,
    key: TsigKey | None,
    fqdn: str,
    address: str | IPAddress | None = None,
    *,
    port: int = DNS_PORT,
    timeout: float = 2.0,
    check: bool = True,
) -> UpdateResult:
    """RFC 2136 update: delete this AAAA/A record of `fqdn` (None: all its AAAA and A)."""
    update = _update_message(zone, key)
    if address is None:
        update.delete(_abs(fqdn), "AAAA")
        update.delete(_abs(fqdn), "A")
    else:
        addr = ipaddress.ip_address(str(address))
        update.delete(_abs(fqdn), "AAAA" if addr.version == 6 else "A", str(addr))
    return _send_update(
        server, update, port=port, timeout=timeout, check=check, what=f"remove {fqdn}"
    )
