"""ISC Kea (DHCPv6 and DHCPv4) serving home network information, and the client side.

DHCPv6, RFC 6610: stateless service (Information-request -> Reply, RFC 8415 §18.2.6)
carrying the Home Network Information containers. Kea 2.2 has no definitions for
codes 49, 50 and 69-73, so they are defined here (see `dhcp6_option_config`); two
encodings:

* ``"kea"`` (default): Kea encodes everything itself. The containers VDINF (50),
  IDINF (69) and UDINF (70) are ``empty`` options that encapsulate an option space
  ``mip6-hni`` holding HNIDF (49, ``fqdn``), HNP (71, ``record`` of ``uint8,
  ipv6-address``: Kea's own ``ipv6-prefix`` type would truncate the prefix to its
  significant octets, while RFC 6610 §3.3 has a fixed 16-octet field), HAA (72,
  ``ipv6-address``) and HAF (73, ``fqdn``). DHCPv6 sub-options have the same two-octet
  code and length as top-level options, so Kea's encapsulation is exactly RFC 6610's
  container format. Decoding Kea's bytes with our parser is then a check of that parser
  against an independent encoder. Limit (seen with Kea 2.2.0): when Kea fills an
  encapsulating option from the configured sub-options it adds one option per code, so
  a second HAA/HNP/HAF is silently dropped; `dhcp6_option_config` refuses such a
  configuration instead. One home network per container is what draft-sarikaya §7
  describes ("home agent address and home network prefix"), and is the default: access
  link 1 of the plan.
* ``"harness"``: each container is a ``binary`` option (``csv-format: false``) whose hex
  is the sub-options as harness/wire/dhcp.py encodes them: one encoder, any number of
  home agents (e.g. every AR of the plan in one container).

Kea sends a container only when the client's ORO asks for it (RFC 8415 §21.7), which is
what RFC 6610 §4.1.1 has the mobile node do.

DHCPv4, draft-xia-mext-hioptv4-01 (draft §8): OPTION_DSMIP6_HNINF under the code from
harness/wire/dhcp.py (site-specific range, default 224). Kea cannot encode its body
natively: a Kea option space encapsulated in a DHCPv4 option gets DHCPv4 sub-option
headers (one-octet code and length, RFC 2132 §2), while the draft reuses RFC 6610's
sub-options with their two-octet code and length after a two-octet Id-type. So the
option is ``binary`` with ``csv-format: false`` and the hex from
``harness.wire.dhcp.hninf_option`` (Id-type 2, "no preference", draft-sarikaya §7).
Kea returns it to a client whose Parameter Request List (option 55) asks for the code,
e.g. in the ACK to a DHCPINFORM (RFC 2131 §3.4).

Subnets and relays (the lab): besides the subnet of its own link (selected by the
receiving interface), a server takes `links`, one `LinkSubnet` per access link, each
with its own home network information: kea-dhcp6 selects the subnet whose prefix holds
the link-address of the relay that forwarded the message (a DHCPv6 relay in each access
router, harness/servers/relay.py), kea-dhcp4 the one holding giaddr or, for a
DHCPINFORM sent straight to it, the client's ciaddr (RFC 2131 §3.4). Every option is
configured per subnet, none globally, so an answer always names the asking link's home
agent. Relayed messages arrive at the server's unicast address, which kea-dhcp6 only
listens on when told (`unicast`: interface "eth0/2001:db8:c4::10").

Each server runs in the foreground in a private directory: the generated JSON, the
control socket, the pid and lock files (KEA_PIDFILE_DIR, KEA_LOCKFILE_DIR), the server
DUID file; leases are in memory only (memfile, persist false); the log goes to stdout,
which the harness follows (ready line DHCP6_STARTED / DHCP4_STARTED), and then the
control socket must answer and the DHCP port be bound.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import random
import re
import socket
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.dhcp6 import DHCP6_Reply
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.packet import Packet, Raw

from harness.lab import plan as lab_plan
from harness.servers._process import (
    ManagedServer,
    ServerError,
    ServerProcess,
    find_binary,
    private_dir,
    wait_until,
)
from harness.wire import dhcp

INSTALL_HINT6 = "apt-get install kea-dhcp6-server"
INSTALL_HINT4 = "apt-get install kea-dhcp4-server"
HNI_SPACE = "mip6-hni"  # the option space the RFC 6610 containers encapsulate
Encoding = Literal["kea", "harness"]
DEFAULT_HOME_LINK = 1  # the servers hand out access link 1's home network unless told

_CONTAINER_NAMES = {
    dhcp.Dhcp6Opt.MIP6_VDINF: "mip6-vdinf",
    dhcp.Dhcp6Opt.MIP6_IDINF: "mip6-idinf",
    dhcp.Dhcp6Opt.MIP6_UDINF: "mip6-udinf",
}
# RFC 6610 §3.1, §3.3-3.5 in Kea's option definition language.
_SUBOPTION_DEFS: tuple[dict[str, Any], ...] = (
    {"name": "mip6-hnidf", "code": int(dhcp.Dhcp6Opt.MIP6_HNIDF), "type": "fqdn"},
    {
        "name": "mip6-hnp",
        "code": int(dhcp.Dhcp6Opt.MIP6_HNP),
        "type": "record",
        "record-types": "uint8, ipv6-address",
    },
    {"name": "mip6-haa", "code": int(dhcp.Dhcp6Opt.MIP6_HAA), "type": "ipv6-address"},
    {"name": "mip6-haf", "code": int(dhcp.Dhcp6Opt.MIP6_HAF), "type": "fqdn"},
)


@dataclass(frozen=True)
class HomeNetworkInfo:
    """What the servers hand out: RFC 6610 §3.3-3.5 contents, in this order."""

    ha_addresses: tuple[ipaddress.IPv6Address, ...]
    home_prefixes: tuple[ipaddress.IPv6Network, ...]
    ha_fqdns: tuple[str, ...] = ()  # absolute, "ha1.lab.example."
    home_network_id: str | None = None  # HNIDF (RFC 6610 §3.1), absolute

    @classmethod
    def from_plan(
        cls, plan: lab_plan.Plan | None = None, links: Sequence[int] | None = None
    ) -> HomeNetworkInfo:
        """Every access router of the plan (or those numbered in `links`) as home agent."""
        plan = plan or lab_plan.build()
        chosen = [plan.link(i) for i in links] if links is not None else list(plan.access)
        return cls(
            ha_addresses=tuple(link.router6 for link in chosen),
            home_prefixes=tuple(link.prefix6 for link in chosen),
            ha_fqdns=tuple(f"{link.ha_fqdn}." for link in chosen),
        )

    def suboptions(self) -> list[Packet]:
        """The RFC 6610 options, encoded by harness/wire/dhcp.py (HNIDF, HNP, HAA, HAF)."""
        return dhcp.home_info_suboptions(
            ha_addresses=[str(a) for a in self.ha_addresses],
            home_prefixes=[str(p) for p in self.home_prefixes],
            ha_fqdns=self.ha_fqdns,
            home_network_id=self.home_network_id,
        )


@dataclass(frozen=True)
class LinkSubnet:
    """A link a server answers for through a relay (or, DHCPv4, by the client's ciaddr):
    its prefix or subnet, and the home network information handed out there."""

    subnet: ipaddress.IPv6Network | ipaddress.IPv4Network
    info: HomeNetworkInfo

    @classmethod
    def for_access_link(cls, link: lab_plan.AccessLink, family: int = 6) -> LinkSubnet:
        """Access link `link` of the plan, whose AR is the home agent it names."""
        info = HomeNetworkInfo(
            ha_addresses=(link.router6,),
            home_prefixes=(link.prefix6,),
            ha_fqdns=(f"{link.ha_fqdn}.",),
        )
        return cls(link.prefix6 if family == 6 else link.subnet4, info)


# ---------------------------------------------------------------- configuration


def dhcp6_option_config(
    info: HomeNetworkInfo,
    containers: Sequence[int] = (dhcp.Dhcp6Opt.MIP6_UDINF,),
    encoding: Encoding = "kea",
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Kea ``option-def`` and ``option-data`` lists serving `info` in `containers`."""
    defs: list[dict[str, Any]] = []
    data: list[dict[str, Any]] = []
    for code in containers:
        name = _CONTAINER_NAMES[dhcp.Dhcp6Opt(code)]
        if encoding == "kea":
            defs.append(
                {
                    "name": name,
                    "code": int(code),
                    "space": "dhcp6",
                    "type": "empty",
                    "encapsulate": HNI_SPACE,
                }
            )
            data.append({"name": name, "space": "dhcp6"})
        else:
            body = b"".join(bytes(o) for o in info.suboptions())
            defs.append({"name": name, "code": int(code), "space": "dhcp6", "type": "binary"})
            data.append({"name": name, "space": "dhcp6", "csv-format": False, "data": body.hex()})
    if encoding == "kea":
        crowded = [
            what
            for what, values in (
                ("home agent addresses", info.ha_addresses),
                ("home prefixes", info.home_prefixes),
                ("home agent FQDNs", info.ha_fqdns),
            )
            if len(values) > 1
        ]
        if crowded:
            raise ValueError(
                f"several {' and '.join(crowded)}: Kea 2.2 puts one option per code into an "
                "encapsulating container (it drops the other HAA/HNP/HAF instances); "
                'use encoding="harness" to serve several home agents in one container'
            )
        defs.extend({**d, "space": HNI_SPACE} for d in _SUBOPTION_DEFS)

        def sub(name: str, value: str) -> dict[str, Any]:
            return {"name": name, "space": HNI_SPACE, "data": value}

        if info.home_network_id is not None:
            data.append(sub("mip6-hnidf", info.home_network_id))
        data.extend(
            sub("mip6-hnp", f"{p.prefixlen}, {p.network_address}") for p in info.home_prefixes
        )
        data.extend(sub("mip6-haa", str(a)) for a in info.ha_addresses)
        data.extend(sub("mip6-haf", f) for f in info.ha_fqdns)
    return defs, data


def dhcp4_option_config(
    info: HomeNetworkInfo, code: int | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Kea ``option-def``/``option-data`` for OPTION_DSMIP6_HNINF (binary, our encoder)."""
    code, body = dhcp.hninf_option(dhcp.HnInfIdType.NO_PREFERENCE, info.suboptions(), code=code)
    name = dhcp.DHCPV4_HNINF_NAME.replace("_", "-")
    return (
        [{"name": name, "code": code, "space": "dhcp4", "type": "binary"}],
        [{"name": name, "space": "dhcp4", "csv-format": False, "data": body.hex()}],
    )


def _loggers(name: str) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "output_options": [{"output": "stdout", "pattern": "%D{%H:%M:%S.%q} %-5p [%c] %m\n"}],
            "severity": "INFO",
        }
    ]


# ----------------------------------------------------------------------- servers


def control_command(socket_path: str | Path, command: str, timeout: float = 2.0) -> dict[str, Any]:
    """One command over a Kea control socket (JSON over a Unix stream socket)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(socket_path))
        s.sendall(json.dumps({"command": command}).encode())
        buf = b""
        while chunk := s.recv(65536):  # Kea closes the connection after its answer
            buf += chunk
    if not buf:
        raise ServerError(f"no answer to {command!r} on {socket_path}")
    answer = json.loads(buf)
    if isinstance(answer, list):  # some Kea versions wrap answers in a list
        answer = answer[0]
    if not isinstance(answer, dict):
        raise ServerError(f"odd answer to {command!r}: {answer!r}")
    return answer


def _udp_port_bound(pid: int, port: int, v6: bool) -> bool:
    """Is any UDP socket in `pid`'s network namespace bound to `port`?"""
    table = f"/proc/{pid}/net/udp6" if v6 else f"/proc/{pid}/net/udp"
    try:
        lines = Path(table).read_text().splitlines()[1:]
    except OSError:
        return False
    want = f":{port:04X}"
    return any(line.split()[1].endswith(want) for line in lines if len(line.split()) > 1)


class _KeaServer(ManagedServer):
    family = 6
    daemon = "kea-dhcp6"
    package = "kea-dhcp6-server"
    section = "Dhcp6"
    server_port = dhcp.DHCP6_SERVER_PORT

    def __init__(
        self,
        netns: str,
        interface: str,
        *,
        info: HomeNetworkInfo | None = None,
        links: Sequence[LinkSubnet] = (),
        binary: str | None = None,
        ready_timeout: float = 10.0,
    ) -> None:
        self.netns = netns
        self.interface = interface
        self.info = info or HomeNetworkInfo.from_plan(links=[DEFAULT_HOME_LINK])
        self.links = tuple(links)
        self.binary = binary
        self.ready_timeout = ready_timeout
        self.startup_seconds: float | None = None
        self.dir: Path | None = None
        self.config: dict[str, Any] | None = None
        self._proc: ServerProcess | None = None

    # subclasses fill in the DHCP part of the configuration
    def _section(self, directory: Path) -> dict[str, Any]:
        raise NotImplementedError

    @property
    def socket_path(self) -> Path:
        assert self.dir is not None
        return self.dir / f"kea{self.family}.sock"

    def _listen(self) -> str:
        return self.interface

    def info_for(
        self, address: str | ipaddress.IPv4Address | ipaddress.IPv6Address
    ) -> HomeNetworkInfo:
        """What the server hands out to a client (or relay link-address) at `address`."""
        addr = ipaddress.ip_address(str(address))
        for link in self.links:
            if addr.version == link.subnet.version and addr in link.subnet:
                return link.info
        return self.info

    def kea_config(self, directory: Path) -> dict[str, Any]:
        section = self._section(directory)
        section.setdefault("interfaces-config", {})
        section["interfaces-config"].update(
            {
                "interfaces": [self._listen()],
                # An address still tentative (DAD) cannot be bound yet: retry, don't give up.
                "service-sockets-max-retries": 100,
                "service-sockets-retry-wait-time": 100,
            }
        )
        section["lease-database"] = {"type": "memfile", "persist": False}
        section["control-socket"] = {
            "socket-type": "unix",
            "socket-name": str(directory / f"kea{self.family}.sock"),
        }
        section["loggers"] = _loggers(self.daemon)
        return {self.section: section}

    def start(self) -> _KeaServer:
        binary = find_binary(self.daemon, self.package, self.binary)
        if self._proc is not None:
            raise ServerError(f"{self.daemon} already started")
        self.dir = private_dir(self.daemon)
        try:
            self.config = self.kea_config(self.dir)
            conf = self.dir / f"{self.daemon}.json"
            conf.write_text(json.dumps(self.config, indent=2))
            env = dict(os.environ)
            env.update(
                KEA_PIDFILE_DIR=str(self.dir),
                KEA_LOCKFILE_DIR=str(self.dir),
                KEA_LOGGER_DESTINATION="stdout",
            )
            began = time.monotonic()
            self._proc = ServerProcess(
                self.daemon,
                [binary, "-c", str(conf)],
                netns=self.netns,
                workdir=self.dir,
                ready_line=dhcp_started(self.family),
                env=env,
            )
            self._proc.start(self.ready_timeout)
            self._confirm(began + self.ready_timeout)
            self.startup_seconds = time.monotonic() - began
        except BaseException:
            self.stop()
            raise
        return self

    def _confirm(self, deadline: float) -> None:
        assert self._proc is not None
        left = max(0.1, deadline - time.monotonic())
        answer = control_command(self.socket_path, "config-get", timeout=left)
        if answer.get("result") != 0:
            raise ServerError(f"{self.daemon} control socket: {answer}; output:\n{self.tail()}")
        pid = self._proc.pid
        try:
            wait_until(
                lambda: _udp_port_bound(pid, self.server_port, self.family == 6),
                max(0.0, deadline - time.monotonic()),
                f"{self.daemon} binding UDP port {self.server_port} on {self.interface}",
            )
        except ServerError as exc:
            raise ServerError(f"{exc}; its output:\n{self.tail()}") from None


def dhcp_started(family: int) -> re.Pattern[str]:
    """The line Kea logs once configured and serving (DHCP6_STARTED / DHCP4_STARTED)."""
    return re.compile(rf"\bDHCP{family}_STARTED\b")


class KeaDhcp6Server(_KeaServer):
    """kea-dhcp6 on `interface` in `netns`: stateless RFC 6610 home network information.

    `subnet` is the prefix of the server's own link (selected by the receiving
    interface; its clients get `info`); each of `links` is a link behind a relay
    (selected by the relay's link-address; its clients get that link's info). With
    `unicast`, Kea also listens on that address of `interface`, where relays send.
    """

    def __init__(
        self,
        netns: str,
        interface: str,
        subnet: ipaddress.IPv6Network | str,
        *,
        info: HomeNetworkInfo | None = None,
        links: Sequence[LinkSubnet] = (),
        unicast: ipaddress.IPv6Address | str | None = None,
        containers: Sequence[int] = (dhcp.Dhcp6Opt.MIP6_UDINF, dhcp.Dhcp6Opt.MIP6_VDINF),
        encoding: Encoding = "kea",
        binary: str | None = None,
        ready_timeout: float = 10.0,
    ) -> None:
        super().__init__(
            netns, interface, info=info, links=links, binary=binary, ready_timeout=ready_timeout
        )
        self.subnet = ipaddress.IPv6Network(subnet)
        self.unicast = ipaddress.IPv6Address(str(unicast)) if unicast is not None else None
        self.containers = tuple(containers)
        self.encoding: Encoding = encoding
        for link in self.links:
            if link.subnet.version != 6:
                raise ValueError(f"kea-dhcp6: {link.subnet} is not an IPv6 prefix")

    def _listen(self) -> str:
        return f"{self.interface}/{self.unicast}" if self.unicast else self.interface

    def _section(self, directory: Path) -> dict[str, Any]:
        defs, data = dhcp6_option_config(self.info, self.containers, self.encoding)
        subnets = [
            {
                "id": 1,
                "subnet": str(self.subnet),
                "interface": self.interface,
                "option-data": data,
            }
        ]
        for n, link in enumerate(self.links, start=2):
            _, link_data = dhcp6_option_config(link.info, self.containers, self.encoding)
            subnets.append({"id": n, "subnet": str(link.subnet), "option-data": link_data})
        return {
            "data-directory": str(directory),  # the server DUID file goes here
            "option-def": defs,
            "subnet6": subnets,
        }


class KeaDhcp4Server(_KeaServer):
    """kea-dhcp4 on `interface` in `netns`: OPTION_DSMIP6_HNINF for `subnet`'s clients."""

    family = 4
    daemon = "kea-dhcp4"
    package = "kea-dhcp4-server"
    section = "Dhcp4"
    server_port = dhcp.DHCP4_SERVER_PORT

    def __init__(
        self,
        netns: str,
        interface: str,
        subnet: ipaddress.IPv4Network | str,
        *,
        info: HomeNetworkInfo | None = None,
        links: Sequence[LinkSubnet] = (),
        code: int | None = None,
        pool: tuple[str, str] | None = None,
        router: ipaddress.IPv4Address | str | None = None,
        lease_seconds: int = 3600,
        binary: str | None = None,
        ready_timeout: float = 10.0,
    ) -> None:
        super().__init__(
            netns, interface, info=info, links=links, binary=binary, ready_timeout=ready_timeout
        )
        self.subnet = ipaddress.IPv4Network(subnet)
        self.code = dhcp.hninf_code() if code is None else code
        # Addresses to lease on the server's own link (DISCOVER/REQUEST, RFC 2131 §3.1),
        # e.g. ("10.0.3.100", "10.0.3.199"), with `router` as option 3; none: stateless only.
        self.pool = pool
        self.router = ipaddress.IPv4Address(str(router)) if router is not None else None
        self.lease_seconds = lease_seconds
        for link in self.links:
            if link.subnet.version != 4:
                raise ValueError(f"kea-dhcp4: {link.subnet} is not an IPv4 subnet")

    def _section(self, directory: Path) -> dict[str, Any]:
        defs, data = dhcp4_option_config(self.info, self.code)
        own: dict[str, Any] = {
            "id": 1,
            "subnet": str(self.subnet),
            "interface": self.interface,
            "option-data": data,
        }
        if self.pool is not None:
            own["pools"] = [{"pool": f"{self.pool[0]} - {self.pool[1]}"}]
            own["valid-lifetime"] = self.lease_seconds
        if self.router is not None:
            own["option-data"] = [*data, {"name": "routers", "data": str(self.router)}]
        subnets = [own]
        for n, link in enumerate(self.links, start=2):
            _, link_data = dhcp4_option_config(link.info, self.code)
            subnets.append({"id": n, "subnet": str(link.subnet), "option-data": link_data})
        return {
            # raw: Kea's default, which also serves clients without an address yet.
            "interfaces-config": {"dhcp-socket-type": "raw"},
            "option-def": defs,
            "subnet4": subnets,
        }


# ------------------------------------------------------------------------ clients
#
# Real clients over kernel UDP sockets, in the calling thread's network namespace (wrap
# them in harness.lab.netns.entered(...)). They return the reply as a scapy packet
# rebuilt with its IP and UDP headers, which is what dhcp.parse_home_info takes.

ALL_DHCP_RELAY_AGENTS_AND_SERVERS = "ff02::1:2"  # RFC 8415 §7.1


def information_request(
    interface: str,
    *,
    server: str = ALL_DHCP_RELAY_AGENTS_AND_SERVERS,
    timeout: float = 2.0,
    trid: int | None = None,
    **build: Any,
) -> Packet:
    """Send an RFC 6610 Information-request on `interface`; the matching Reply.

    From UDP port 546 to `server` port 547 (default the All_DHCP_Relay_Agents_and_Servers
    group on the link). `build` goes to dhcp.build_information_request. TimeoutError
    when no Reply with our transaction id arrives in time.
    """
    trid = random.getrandbits(24) if trid is None else trid
    msg = dhcp.build_information_request(trid=trid, client_mac=_hwaddr(interface), **build)
    ifindex = socket.if_nametoindex(interface)
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)  # learn the Reply's dst
        s.bind(("::", dhcp.DHCP6_CLIENT_PORT, 0, ifindex))
        s.sendto(bytes(msg), (server, dhcp.DHCP6_SERVER_PORT, 0, ifindex))
        data, peer, dst = _receive(
            s, timeout, lambda d: len(d) >= 4 and d[0] == 7 and d[1:4] == trid.to_bytes(3, "big")
        )
    src = peer[0].split("%")[0]
    pkt = IPv6(src=src, dst=dst or "::") / UDP(sport=peer[1], dport=dhcp.DHCP6_CLIENT_PORT)
    pkt = pkt / Raw(data)
    reply = IPv6(bytes(pkt))
    if reply.getlayer(DHCP6_Reply) is None:
        raise ValueError(f"not a DHCPv6 Reply: {reply.summary()}")
    return reply


def dhcp_inform(
    interface: str,
    client: str,
    server: str,
    *,
    request_codes: Sequence[int] | None = None,
    timeout: float = 2.0,
    xid: int | None = None,
) -> Packet:
    """Send a DHCPINFORM (RFC 2131 §3.4) from `client`:68 to `server`:67; the DHCPACK.

    The Parameter Request List asks for OPTION_DSMIP6_HNINF (default), and the message
    carries the mobile node's HNINF with Id-type 2 (draft-sarikaya §7, no preference).
    """
    xid = random.getrandbits(32) if xid is None else xid
    codes = [dhcp.hninf_code()] if request_codes is None else list(request_codes)
    mac = _hwaddr(interface)
    msg = BOOTP(
        op=1, htype=1, hlen=6, xid=xid, ciaddr=client, chaddr=bytes.fromhex(mac.replace(":", ""))
    ) / DHCP(
        options=[
            ("message-type", "inform"),
            ("param_req_list", codes),
            dhcp.hninf_option(dhcp.HnInfIdType.NO_PREFERENCE),
            "end",
        ]
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
        s.bind((client, dhcp.DHCP4_CLIENT_PORT))
        s.sendto(bytes(msg), (server, dhcp.DHCP4_SERVER_PORT))
        data, peer, _ = _receive(
            s, timeout, lambda d: len(d) >= 8 and d[0] == 2 and d[4:8] == xid.to_bytes(4, "big")
        )
    pkt = IP(src=peer[0], dst=client) / UDP(sport=peer[1], dport=dhcp.DHCP4_CLIENT_PORT) / Raw(data)
    reply = IP(bytes(pkt))
    if reply.getlayer(DHCP) is None:
        raise ValueError(f"not a DHCP message: {reply.summary()}")
    return reply


def _receive(
    s: socket.socket, timeout: float, match: Callable[[bytes], bool]
) -> tuple[bytes, Any, str | None]:
    """The first datagram `match` accepts before the deadline (others are ignored).

    Returns (data, peer, destination address when the socket reports IPV6_PKTINFO).
    """
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no matching reply within {timeout:g} s")
        s.settimeout(left)
        try:
            data, ancillary, _flags, peer = s.recvmsg(65535, socket.CMSG_SPACE(20))
        except TimeoutError:
            raise TimeoutError(f"no matching reply within {timeout:g} s") from None
        if match(data):
            dst = next(
                (
                    socket.inet_ntop(socket.AF_INET6, cdata[:16])
                    for level, kind, cdata in ancillary
                    if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO
                ),
                None,
            )
            return data, peer, dst


SIOCGIFHWADDR = 0x8927


def _hwaddr(interface: str) -> str:
    """The interface's MAC, asked of the kernel in the current namespace (not /sys)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        info = fcntl.ioctl(s.fileno(), SIOCGIFHWADDR, struct.pack("256s", interface.encode()[:15]))
    return ":".join(f"{b:02x}" for b in info[18:24])


__all__ = [
    "HomeNetworkInfo",
    "LinkSubnet",
    "KeaDhcp4Server",
    "KeaDhcp6Server",
    "control_command",
    "dhcp4_option_config",
    "dhcp6_option_config",
    "dhcp_inform",
    "information_request",
]
