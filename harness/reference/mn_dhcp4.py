"""The reference Mobile Node on an IPv4-only link (draft §8): DHCPv4, sans-I/O.

On a link where no Router Advertisement answers the MN's Router Solicitations (RFC 4861
§6.3.7: MAX_RTR_SOLICITATIONS x RTR_SOLICITATION_INTERVAL, scaled like every timer of the
MN), the link has no IPv6: the MN takes an IPv4 address by DHCPv4 (DISCOVER, OFFER, REQUEST,
ACK; RFC 2131 §3.1) as its IPv4 care-of address (draft §8, DMM-V4-6), then asks for home
network information by stateless DHCP (DMM-V4-10): a DHCPINFORM (RFC 2131 §3.4) from that
address, unicast to the server that leased it, carrying the DHCPv4 Home Network
Information option of draft-xia-mext-hioptv4 (OPTION_DSMIP6_HNINF, code from
DMMCONF_DHCPV4_HNINF_CODE, default 224; INT-11) with Id-type 2, "no preferred home network"
(draft §7, INT-10), and no sub-options, and asking for that code in its Parameter Request
List (DMM-V4-11). The home agents the DHCPACK names are recorded (`home_info`) and handed
on (`Ipv4Link`): registering the IPv4 care-of address with them is the mobile node core's
decision (RFC 5555 §4.2, `MobileNodeCore.ipv4_link`).

`Dhcp4Client` is fed carrier changes, "an RA came on this interface", the server's replies
(parsed by `parse_reply`) and the passing of time; it answers with actions that
harness/reference/mn_daemon.py carries out (frames built by `build_frame`, sent on an
AF_PACKET socket: a client without an address cannot use a UDP socket). Retransmission
follows RFC 2131 §4.1 (4 s, doubled up to 64 s), scaled; a DHCPNAK starts over. Leases are
not renewed (the lab's last an hour of real time).
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, field
from enum import Enum

from harness.faults import NO_FAULTS, Fault, Faults
from harness.reference.mn_core import Log
from harness.wire import dhcp

IPv4 = ipaddress.IPv4Address

# RFC 4861 §10: MAX_RTR_SOLICITATIONS (3) x RTR_SOLICITATION_INTERVAL (4 s): with no RA by
# then, the link has no IPv6 router.
NO_RA_AFTER = 3 * 4.0
FIRST_TIMEOUT, MAX_TIMEOUT = 4.0, 64.0  # RFC 2131 §4.1
MAX_TRIES = 6  # per message, before starting over from DISCOVER
BROADCAST = IPv4("255.255.255.255")
# RFC 2132 option codes
OPT_SUBNET_MASK, OPT_ROUTER, OPT_REQUESTED_ADDR, OPT_SERVER_ID = 1, 3, 50, 54
OPT_LEASE_TIME = 51


class State(Enum):
    WAIT_RA = "waiting for an RA"
    SELECTING = "selecting"  # DISCOVER sent
    REQUESTING = "requesting"  # REQUEST sent
    INFORMING = "informing"  # bound, DHCPINFORM sent
    BOUND = "bound"
    DUAL_STACK = "an IPv6 link"  # an RA came: nothing for DHCPv4 to do


@dataclass(frozen=True)
class Dhcp4Config:
    time_scale: float = 1.0
    min_timer: float = 0.25  # as MNConfig: no scaled timer is shorter
    seed: int | None = None
    faults: Faults = NO_FAULTS

    def scaled(self, protocol_seconds: float) -> float:
        return max(self.min_timer, protocol_seconds * self.time_scale)


@dataclass(frozen=True)
class SendDhcp4:
    """A DHCPv4 message from `iface`: DISCOVER (1), REQUEST (3) or INFORM (8)."""

    iface: str
    kind: int
    xid: int
    elapsed: int = 0  # secs (RFC 2131 §2)
    ciaddr: IPv4 | None = None
    requested: IPv4 | None = None  # option 50
    server: IPv4 | None = None  # option 54, and the INFORM's destination
    server_mac: str | None = None  # where a unicast INFORM goes on the link


@dataclass(frozen=True)
class AddAddress4:
    iface: str
    address: IPv4
    prefixlen: int
    router: IPv4 | None


@dataclass(frozen=True)
class RemoveAddress4:
    iface: str
    address: IPv4
    prefixlen: int


@dataclass(frozen=True)
class Ipv4Link:
    """`iface` is settled on an IPv4-only link: its IPv4 care-of address and what the
    DHCPINFORM taught of the home network (empty when it taught nothing). The mobile node
    core decides what to register (RFC 5555 §4.2, draft §8)."""

    iface: str
    address: IPv4
    home: dhcp.HomeInfo


Action = SendDhcp4 | AddAddress4 | RemoveAddress4 | Ipv4Link | Log


@dataclass(frozen=True)
class Reply:
    """What the client needs of a server's message (`parse_reply` makes it)."""

    xid: int
    kind: int  # 2 OFFER, 5 ACK, 6 NAK
    yiaddr: IPv4
    server: IPv4 | None
    server_mac: str
    prefixlen: int = 24
    router: IPv4 | None = None
    home: dhcp.HomeInfo = dhcp.HomeInfo()
    has_hninf: bool = False


@dataclass
class _Link:
    state: State
    due: float | None  # the next retransmission (or the end of the RA wait)
    xid: int = 0
    tries: int = 0
    started: float = 0.0
    offer: Reply | None = None
    lease: Reply | None = None


@dataclass
class Dhcp4Client:
    config: Dhcp4Config = field(default_factory=Dhcp4Config)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.config.seed)
        self.links: dict[str, _Link] = {}
        self.home_info: dict[str, dhcp.HomeInfo] = {}  # by interface: what DHCPINFORM taught

    # ------------------------------------------------------------------ events

    def carrier(self, now: float, iface: str, up: bool) -> list[Action]:
        """Carrier up: a new link; unless an RA comes within the wait, it is IPv4-only.
        Carrier down: the lease of the link left is dropped with its address."""
        out = self._drop(iface)
        if up:
            wait = self.config.scaled(NO_RA_AFTER)
            self.links[iface] = _Link(State.WAIT_RA, now + wait)
            out.append(Log(f"{iface}: carrier up; IPv4-only unless an RA comes within {wait:g} s"))
        return out

    def ipv6_router(self, now: float, iface: str) -> list[Action]:
        """An RA came on `iface`: the link has IPv6 and the MN's IPv6 machinery serves it
        (a DHCPv4 exchange that a lost RA started stops; a lease already taken stays)."""
        link = self.links.get(iface)
        if link is None or link.state in (State.WAIT_RA, State.SELECTING, State.REQUESTING):
            self.links[iface] = _Link(State.DUAL_STACK, None)
        return []

    def reply(self, now: float, iface: str, r: Reply) -> list[Action]:
        link = self.links.get(iface)
        if link is None or r.xid != link.xid:
            return []
        if r.kind == 6:  # DHCPNAK (RFC 2131 §4.4.1): start over
            gone = self._drop(iface)
            return [*gone, Log(f"{iface}: DHCPNAK from {r.server}"), *self._discover(now, iface)]
        if link.state is State.SELECTING and r.kind == 2:
            link.offer = r
            return self._send(now, link, iface, State.REQUESTING)
        if link.state is State.REQUESTING and r.kind == 5:
            link.lease = r
            out: list[Action] = [
                Log(f"{iface}: IPv4 care-of address {r.yiaddr}/{r.prefixlen} from {r.server}"),
                AddAddress4(iface, r.yiaddr, r.prefixlen, r.router),
            ]
            if self.config.faults.has(Fault.MN_NO_DHCPINFORM):
                link.state, link.due = State.BOUND, None
                return [*out, Ipv4Link(iface, r.yiaddr, dhcp.HomeInfo())]
            return out + self._send(now, link, iface, State.INFORMING)
        if link.state is State.INFORMING and r.kind == 5:
            link.state, link.due = State.BOUND, None
            self.home_info[iface] = r.home
            assert link.lease is not None
            settled = Ipv4Link(iface, link.lease.yiaddr, r.home)
            if not r.has_hninf:
                return [
                    Log(f"{iface}: the DHCPACK to DHCPINFORM has no home network information"),
                    settled,
                ]
            return [
                settled,
                Log(
                    f"{iface}: home agents {', '.join(r.home.ha_addresses) or 'none'}"
                    f" (IPv4 {', '.join(r.home.ha_ipv4_addresses) or 'none'}),"
                    f" home prefixes {', '.join(r.home.home_prefixes) or 'none'}"
                ),
            ]
        return []

    def tick(self, now: float) -> list[Action]:
        out: list[Action] = []
        for iface, link in list(self.links.items()):
            if link.due is None or link.due > now:
                continue
            if link.state is State.WAIT_RA:
                out.append(Log(f"{iface}: no RA, an IPv4-only link: DHCPv4"))
                out += self._discover(now, iface)
            elif link.tries >= MAX_TRIES:
                out.append(Log(f"{iface}: no answer to DHCPv4 {link.state.value}: starting over"))
                out += self._drop(iface) + self._discover(now, iface)
            else:
                out += self._send(now, link, iface, link.state, again=True)
        return out

    def next_deadline(self) -> float | None:
        return min((ln.due for ln in self.links.values() if ln.due is not None), default=None)

    # ------------------------------------------------------------------ internals

    def _discover(self, now: float, iface: str) -> list[Action]:
        if self.config.faults.has(Fault.MN_NO_DHCPV4):
            self.links[iface] = _Link(State.BOUND, None)
            return []
        self.links[iface] = link = _Link(State.SELECTING, None, started=now)
        return self._send(now, link, iface, State.SELECTING)

    def _send(
        self, now: float, link: _Link, iface: str, state: State, again: bool = False
    ) -> list[Action]:
        if not again:
            link.tries = 0
            if state is not State.REQUESTING:  # RFC 2131 §4.4.1: the REQUEST keeps the xid
                link.xid, link.started = self._rng.getrandbits(32), now
        link.state = state
        link.tries += 1
        timeout = min(FIRST_TIMEOUT * 2 ** (link.tries - 1), MAX_TIMEOUT)
        link.due = now + self.config.scaled(timeout)
        elapsed = min(int(now - link.started), 0xFFFF)
        if state is State.SELECTING:
            return [SendDhcp4(iface, dhcp.DHCPDISCOVER, link.xid, elapsed)]
        if state is State.REQUESTING:
            assert link.offer is not None
            offer = link.offer
            return [
                SendDhcp4(
                    iface, dhcp.DHCPREQUEST, link.xid, elapsed, None, offer.yiaddr, offer.server
                )
            ]
        assert link.lease is not None
        lease = link.lease
        return [
            SendDhcp4(
                iface,
                dhcp.DHCPINFORM,
                link.xid,
                elapsed,
                ciaddr=lease.yiaddr,
                server=lease.server,
                server_mac=lease.server_mac,
            )
        ]

    def _drop(self, iface: str) -> list[Action]:
        link = self.links.pop(iface, None)
        self.home_info.pop(iface, None)
        if link is None or link.lease is None:
            return []
        lease = link.lease
        return [RemoveAddress4(iface, lease.yiaddr, lease.prefixlen)]


def ha_ipv4_addresses(home: dhcp.HomeInfo) -> dict[ipaddress.IPv6Address, IPv4]:
    """The IPv4 address of each dual-stack home agent the home network information names
    (INT-22): its IPv6 addresses and its IPv4-embedded ones (RFC 6610 §3.4) paired in the
    server's order."""
    v6 = [
        ipaddress.IPv6Address(a)
        for a in home.ha_addresses
        if ipaddress.IPv6Address(a) not in dhcp.IPV4_EMBEDDING_WKP
    ]
    v4 = [IPv4(a) for a in home.ha_ipv4_addresses]
    return dict(zip(v6, v4, strict=False))


# ---------------------------------------------------------------------- the wire


def hninf_code(faults: Faults = NO_FAULTS) -> int:
    """The code the MN puts its HNINF under (the configured one, INT-11)."""
    code = dhcp.hninf_code()
    if faults.has(Fault.MN_HNINF_WRONG_CODE):
        return code + 1 if code < 254 else code - 1
    return code


def build_frame(a: SendDhcp4, mac: str, faults: Faults = NO_FAULTS) -> bytes:
    """The Ethernet frame of `a` from `mac`: broadcast, except a DHCPINFORM, which goes from
    its ciaddr to the server that leased it (RFC 2131 §4.4.3)."""
    from scapy.layers.dhcp import BOOTP, DHCP
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    names = {dhcp.DHCPDISCOVER: "discover", dhcp.DHCPREQUEST: "request", dhcp.DHCPINFORM: "inform"}
    options: list[object] = [("message-type", names[a.kind])]
    if a.requested is not None:
        options.append(("requested_addr", str(a.requested)))
    if a.server is not None and a.kind == dhcp.DHCPREQUEST:
        options.append(("server_id", str(a.server)))
    code = hninf_code(faults)
    if a.kind == dhcp.DHCPINFORM:
        id_type = (
            dhcp.HnInfIdType.VISITED_DOMAIN
            if faults.has(Fault.MN_HNINF_ID_TYPE_0)
            else dhcp.HnInfIdType.NO_PREFERENCE
        )
        asked = [OPT_ROUTER] if faults.has(Fault.MN_HNINF_NOT_REQUESTED) else [code]
        options += [("param_req_list", asked), dhcp.hninf_option(id_type, code=code)]
    else:
        options.append(("param_req_list", [OPT_SUBNET_MASK, OPT_ROUTER, OPT_LEASE_TIME]))
    options.append("end")
    chaddr = bytes.fromhex(mac.replace(":", ""))
    unicast = a.kind == dhcp.DHCPINFORM and a.server is not None and a.server_mac is not None
    bootp = BOOTP(
        op=1,
        xid=a.xid,
        secs=a.elapsed,
        flags=0 if unicast else 0x8000,  # no address yet: answers come broadcast
        ciaddr=str(a.ciaddr) if a.ciaddr is not None else "0.0.0.0",
        chaddr=chaddr,
    )
    src = str(a.ciaddr) if a.ciaddr is not None else "0.0.0.0"
    dst = str(a.server) if unicast else str(BROADCAST)
    frame = (
        Ether(src=mac, dst=a.server_mac if unicast else "ff:ff:ff:ff:ff:ff")
        / IP(src=src, dst=dst, ttl=64)
        / UDP(sport=dhcp.DHCP4_CLIENT_PORT, dport=dhcp.DHCP4_SERVER_PORT)
        / bootp
        / DHCP(options=options)
    )
    return bytes(frame)


def parse_reply(frame: bytes, mac: str) -> Reply | None:
    """A server's OFFER, ACK or NAK for `mac` (a BOOTREPLY to port 68), else None."""
    from scapy.layers.dhcp import BOOTP, DHCP
    from scapy.layers.inet import UDP
    from scapy.layers.l2 import Ether

    try:
        pkt = Ether(frame)
    except Exception:  # noqa: BLE001 - anything that does not dissect is not ours
        return None
    udp, bootp, layer = pkt.getlayer(UDP), pkt.getlayer(BOOTP), pkt.getlayer(DHCP)
    if udp is None or bootp is None or layer is None or udp.dport != dhcp.DHCP4_CLIENT_PORT:
        return None
    if bootp.op != 2 or bytes(bootp.chaddr)[:6] != bytes.fromhex(mac.replace(":", "")):
        return None
    opts = {o[0]: o[1] for o in layer.options if isinstance(o, tuple) and len(o) >= 2}
    kind = opts.get("message-type")
    if kind not in (2, 5, 6):
        return None
    mask = opts.get("subnet_mask")
    prefixlen = ipaddress.IPv4Network(f"0.0.0.0/{mask}").prefixlen if mask else 24
    router = opts.get("router")
    server = opts.get("server_id")
    home = dhcp.parse_home_info(pkt)
    return Reply(
        xid=int(bootp.xid),
        kind=int(kind),
        yiaddr=IPv4(bootp.yiaddr),
        server=IPv4(server) if server else None,
        server_mac=str(pkt.src),
        prefixlen=prefixlen,
        router=IPv4(router) if router else None,
        home=home,
        has_hninf=dhcp.find_dhcpv4_option(pkt, dhcp.hninf_code()) is not None,
    )
