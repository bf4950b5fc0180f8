"""The tester's side of a mobile node on an IPv4-only link (draft §8): the visited network's
DHCPv4 server, and the predicates and readers that judge the MN's DHCPv4 messages on the
wire (RFC 2131, draft-xia-mext-hioptv4-01, RFC 6610 sub-options; INT-10, INT-11).

Everything here reads captured frames (scapy's BOOTP/DHCP layers), never the reference's
internals. The HNINF option is read under the code the run is configured with
(DMMCONF_DHCPV4_HNINF_CODE, default 224: harness/wire/dhcp.py).
"""

from __future__ import annotations

import contextlib
import ipaddress
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, UDP

from harness.lab.topology import Lab
from harness.servers._process import reap_dirs
from harness.servers.inlab import visited_dhcp4
from harness.servers.kea import KeaDhcp4Server
from harness.tester.bootstrap import lab_servers_or_not_run
from harness.tester.conversation import Predicate
from harness.wire import dhcp

DISCOVER, OFFER, REQUEST, ACK, NAK, INFORM = 1, 2, 3, 5, 6, 8  # RFC 2132 §9.6
KINDS = {1: "DHCPDISCOVER", 2: "DHCPOFFER", 3: "DHCPREQUEST", 5: "DHCPACK", 6: "DHCPNAK"}
KINDS[INFORM] = "DHCPINFORM"
PARAM_REQUEST_LIST = 55
SUBOPTION_CODES = frozenset(int(c) for c in dhcp.HOME_INFO_SUBOPTION_CODES)  # 49, 71, 72, 73


@contextlib.contextmanager
def visited_server(lab: Lab, link: int) -> Iterator[KeaDhcp4Server]:
    """kea-dhcp4 of IPv4-only access link `link` (harness/servers/inlab.py), started; a
    missing or failing kea-dhcp4 ends the test not-run."""
    reap_dirs()
    server = visited_dhcp4(lab, link)
    with lab_servers_or_not_run("kea-dhcp4 of the IPv4-only link"):
        server.start()
    try:
        yield server
    finally:
        server.stop()


def _options(pkt: Any) -> list[Any]:
    layer = pkt.getlayer(DHCP)
    return list(layer.options) if layer is not None else []


def message_type(pkt: Any) -> int | None:
    for opt in _options(pkt):
        if isinstance(opt, tuple) and opt[0] == "message-type":
            return int(opt[1])
    return None


def _from_client(kind: int) -> Predicate:
    def test(pkt: Any) -> bool:
        udp = pkt.getlayer(UDP)
        return (
            getattr(pkt, "direction", 2) == 2
            and udp is not None
            and (udp.sport, udp.dport) == (dhcp.DHCP4_CLIENT_PORT, dhcp.DHCP4_SERVER_PORT)
            and pkt.getlayer(BOOTP) is not None
            and message_type(pkt) == kind
        )

    return Predicate(test, f"a {KINDS[kind]} from the MN")


def _to_client(kinds: tuple[int, ...], xid: int) -> Predicate:
    def test(pkt: Any) -> bool:
        bootp = pkt.getlayer(BOOTP)
        return (
            getattr(pkt, "direction", 1) == 1
            and bootp is not None
            and bootp.op == 2
            and int(bootp.xid) == xid
            and message_type(pkt) in kinds
        )

    names = " or ".join(KINDS[k] for k in kinds)
    return Predicate(test, f"a {names} for transaction {xid:#x}")


def discover() -> Predicate:
    return _from_client(DISCOVER)


def request() -> Predicate:
    return _from_client(REQUEST)


def inform() -> Predicate:
    return _from_client(INFORM)


def offer_to(pkt: Any) -> Predicate:
    """The server's DHCPOFFER to the MN's DHCPDISCOVER `pkt` (same xid)."""
    return _to_client((OFFER,), int(pkt[BOOTP].xid))


def answer_to(pkt: Any) -> Predicate:
    """The server's ACK or NAK to the MN's message `pkt` (same xid)."""
    return _to_client((ACK, NAK), int(pkt[BOOTP].xid))


def from_ipv4(address: str) -> Predicate:
    """Any IPv4 packet the MN sends from `address`."""

    def test(pkt: Any) -> bool:
        ip = pkt.getlayer(IP)
        return getattr(pkt, "direction", 2) == 2 and ip is not None and ip.src == address

    return Predicate(test, f"an IPv4 packet from {address}")


def xid(pkt: Any) -> int:
    return int(pkt[BOOTP].xid)


def yiaddr(pkt: Any) -> str:
    return str(pkt[BOOTP].yiaddr)


def ciaddr(pkt: Any) -> str:
    return str(pkt[BOOTP].ciaddr)


def requested_codes(pkt: Any) -> list[int]:
    """The Parameter Request List (option 55), as codes."""
    for opt in _options(pkt):
        if isinstance(opt, tuple) and opt[0] == "param_req_list":
            value = opt[1]
            return [int(c) for c in (value if isinstance(value, list | tuple) else [value])]
    return []


def options_with_code(pkt: Any, code: int) -> list[bytes]:
    """The bodies of every option with this code, however scapy named it."""
    from scapy.layers.dhcp import DHCPRevOptions

    names = {code} | {n for n, (c, _) in DHCPRevOptions.items() if c == code}
    out = []
    for opt in _options(pkt):
        if isinstance(opt, tuple) and len(opt) >= 2 and opt[0] in names:
            value = opt[1]
            out.append(value if isinstance(value, bytes) else bytes(value))
    return out


@dataclass(frozen=True)
class HnInf:
    """An OPTION_DSMIP6_HNINF body as the MN sent it, read without scapy's help."""

    id_type: int | None
    suboptions: tuple[tuple[int, bytes], ...]
    problems: tuple[str, ...]

    @classmethod
    def read(cls, body: bytes) -> HnInf:
        """Id-type (2 octets) then RFC 6610 sub-options (2-octet code and length, INT-11),
        which must fill the body exactly and be HNIDF, HNP, HAA or HAF with their sizes."""
        if len(body) < dhcp.HNINF_ID_TYPE_OCTETS:
            return cls(None, (), (f"{len(body)} octets: no room for the 2-octet Id-type",))
        (id_type,) = struct.unpack("!H", body[:2])
        subs: list[tuple[int, bytes]] = []
        problems: list[str] = []
        rest = body[2:]
        while rest:
            if len(rest) < 4:
                problems.append(f"{len(rest)} trailing octets: not a sub-option header")
                break
            code, length = struct.unpack("!HH", rest[:4])
            if len(rest) < 4 + length:
                problems.append(f"sub-option {code}: length {length} runs past the option")
                break
            value = rest[4 : 4 + length]
            subs.append((code, value))
            rest = rest[4 + length :]
            if code not in SUBOPTION_CODES:
                problems.append(f"sub-option {code} is not HNIDF, HNP, HAA or HAF (RFC 6610)")
            elif code == dhcp.Dhcp6Opt.MIP6_HAA and length != 16:
                problems.append(f"HAA of {length} octets, not 16 (RFC 6610 §3.4)")
            elif code == dhcp.Dhcp6Opt.MIP6_HNP and length != 17:
                problems.append(f"HNP of {length} octets, not 17 (RFC 6610 §3.3)")
            elif code in (dhcp.Dhcp6Opt.MIP6_HNIDF, dhcp.Dhcp6Opt.MIP6_HAF):
                try:
                    dhcp.decode_fqdn(value)
                except ValueError as exc:
                    problems.append(f"sub-option {code}: not a domain name ({exc})")
        return cls(id_type, tuple(subs), tuple(problems))


def in_subnet(address: str, subnet: ipaddress.IPv4Network) -> bool:
    return ipaddress.IPv4Address(address) in subnet


# ----------------------------------------------------------------- RFC 5555 from the MN (§4.2)

DSMIP_PORT = 4191  # RFC 5555 §8
IPV4_HOME_ADDRESS, IPV4_CARE_OF_ADDRESS = 29, 32  # RFC 5555 §3.1.1, §3.1.2
IPV4_ADDRESS_ACK, NAT_DETECTION = 30, 31  # RFC 5555 §3.2.1, §3.2.2 (OPEN-13)
NO_KEEPALIVE = 0xFFFFFFFF  # §3.2.2: no NAT, no keepalives needed


def _udp4_mobility(pkt: Any, outbound: bool) -> Any:
    """The Mobility Header message inside a frame's UDP/IPv4 payload to (outbound) or from
    port 4191, or None."""
    from harness.wire import compact

    ip, udp = pkt.getlayer(IP), pkt.getlayer(UDP)
    if (
        ip is None
        or udp is None
        or getattr(pkt, "direction", 2 if outbound else 1) != (2 if outbound else 1)
    ):
        return None
    if (udp.dport if outbound else udp.sport) != DSMIP_PORT:
        return None
    data = bytes(udp.payload)
    if len(data) < 40 or data[0] >> 4 != 6:
        return None
    try:
        return compact.parse_packet(data)
    except compact.Malformed:
        return None


def bu_in_udp4(ha4: str) -> Predicate:
    """A Binding Update the MN sends in UDP/IPv4 to `ha4` port 4191 (RFC 5555 §4.2)."""
    from harness.wire.numbers import MHType

    def test(pkt: Any) -> bool:
        msg = _udp4_mobility(pkt, outbound=True)
        return msg is not None and msg.mhtype == MHType.BU and pkt[IP].dst == ha4

    return Predicate(test, f"a Binding Update in UDP/IPv4 to {ha4} port {DSMIP_PORT}")


def ba_in_udp4(ha4: str, seq: int) -> Predicate:
    """The BA of sequence number `seq` from `ha4` port 4191, in UDP/IPv4."""
    from harness.wire.numbers import MHType

    def test(pkt: Any) -> bool:
        msg = _udp4_mobility(pkt, outbound=False)
        return msg is not None and msg.mhtype == MHType.BA and msg.seq == seq and pkt[IP].src == ha4

    return Predicate(test, f"a Binding Acknowledgement (seq {seq}) in UDP/IPv4 from {ha4}")


def mobility(pkt: Any) -> Any:
    """The Mobility Header message a `bu_in_udp4`/`ba_in_udp4` frame carries."""
    msg = _udp4_mobility(pkt, outbound=getattr(pkt, "direction", 2) == 2)
    assert msg is not None
    return msg


def option_data(msg: Any, otype: int) -> list[bytes]:
    """The data of each option of type `otype` in a BU or BA."""
    from harness.wire import compact

    fixed = compact.FIXED_PART[compact.MHType(msg.mhtype)]
    return [o.data for o in compact.parse_options(msg.body, fixed) if o.otype == otype]


def igmp_state_options(msg: Any) -> list[bytes]:
    """The data of the BU's Multicast State options of IGMPv3 form (draft §8: the body an
    IGMPv3 Membership Report, type 0x22, RFC 3376 §4.2), for compact.parse_multicast_state."""
    from harness.config import WireConfig
    from harness.wire import compact
    from harness.wire.numbers import IGMPV3_REPORT

    config = WireConfig.from_env()
    fixed = compact.FIXED_PART[compact.MHType(msg.mhtype)]
    return [
        o.data
        for o in compact.parse_options(msg.body, fixed)
        if compact.is_multicast_state(o, config) and o.data[:1] == bytes([IGMPV3_REPORT])
    ]


@dataclass(frozen=True)
class Ipv4HoaOption:
    """An IPv4 Home Address option (RFC 5555 §3.1.1): Prefix-len (6 bits), P, the address."""

    prefix_len: int
    p_flag: bool
    address: str


def ipv4_hoa_options(msg: Any) -> list[Ipv4HoaOption]:
    return [
        Ipv4HoaOption(d[0] >> 2, bool(d[0] & 0x02), str(ipaddress.IPv4Address(d[2:6])))
        for d in option_data(msg, IPV4_HOME_ADDRESS)
        if len(d) == 6
    ]


def ipv4_coa_options(msg: Any) -> list[str]:
    """The addresses of the IPv4 Care-of Address options (RFC 5555 §3.1.2)."""
    found = option_data(msg, IPV4_CARE_OF_ADDRESS)
    return [str(ipaddress.IPv4Address(d[2:6])) for d in found if len(d) == 6]


def assigned_ipv4(ba: Any) -> tuple[int, str] | None:
    """(Status, address) of a BA's IPv4 Address Acknowledgement (RFC 5555 §3.2.1)."""
    for d in option_data(ba, IPV4_ADDRESS_ACK):
        if len(d) == 6:
            return d[0], str(ipaddress.IPv4Address(d[2:6]))
    return None


def nat_refresh(ba: Any) -> int | None:
    """The refresh time (seconds) of a BA's NAT Detection option (RFC 5555 §3.2.2)."""
    for d in option_data(ba, NAT_DETECTION):
        if len(d) == 6:
            return int(struct.unpack_from("!I", d, 2)[0])
    return None


def node_ipv4_addresses(lab: Lab, node: str) -> set[str]:
    """Every IPv4 address configured on any interface of `node` (its kernel's state)."""
    import socket as _socket

    from pyroute2 import IPRoute

    from harness.lab import netns

    with netns.entered(lab.ns(node)), IPRoute() as ipr:
        return {str(a.get_attr("IFA_ADDRESS")) for a in ipr.get_addr(family=_socket.AF_INET)}


def udp4_to(ha4: str) -> Predicate:
    """Any datagram the MN sends to `ha4` port 4191 (a BU or tunnelled data: either
    refreshes the NAT's binding, RFC 5555 §4.3)."""

    def test(pkt: Any) -> bool:
        ip, udp = pkt.getlayer(IP), pkt.getlayer(UDP)
        return (
            getattr(pkt, "direction", 2) == 2
            and ip is not None
            and udp is not None
            and ip.dst == ha4
            and udp.dport == DSMIP_PORT
        )

    return Predicate(test, f"a datagram from the MN to {ha4} port {DSMIP_PORT}")


def tunnelled_in_udp4(ha4: str, src: str, dst: str, sport: int | None = None) -> Predicate:
    """An IPv6 packet from `src` to `dst` (not a Mobility Header; with `sport`, a TCP or UDP
    segment from that port right after the IPv6 header) that the MN sends inside UDP/IPv4 to
    `ha4` port 4191 (RFC 5555 §4.1: the reverse tunnel from an IPv4 care-of address)."""

    def test(pkt: Any) -> bool:
        if not udp4_to(ha4)(pkt):
            return False
        data = bytes(pkt[UDP].payload)
        if len(data) < 40 or data[0] >> 4 != 6 or data[6] == 135:
            return False
        if sport is not None and (
            data[6] not in (6, 17) or len(data) < 42 or int.from_bytes(data[40:42], "big") != sport
        ):
            return False
        return (
            str(ipaddress.IPv6Address(data[8:24])) == src
            and str(ipaddress.IPv6Address(data[24:40])) == dst
        )

    port = f" port {sport}" if sport is not None else ""
    return Predicate(
        test, f"a packet from {src}{port} to {dst} in UDP/IPv4 to {ha4} port {DSMIP_PORT}"
    )


def ipv4_tunnelled_in_udp4(ha4: str, src: str, dst: str) -> Predicate:
    """An IPv4 packet from `src` to `dst` that the MN sends inside UDP/IPv4 to `ha4` port
    4191 (RFC 5555 §4.1: IPv4 traffic of an IPv4 home address from an IPv4 care-of
    address)."""

    def test(pkt: Any) -> bool:
        if not udp4_to(ha4)(pkt):
            return False
        data = bytes(pkt[UDP].payload)
        if len(data) < 20 or data[0] >> 4 != 4:
            return False
        return (
            str(ipaddress.IPv4Address(data[12:16])) == src
            and str(ipaddress.IPv4Address(data[16:20])) == dst
        )

    return Predicate(test, f"an IPv4 packet from {src} to {dst} in UDP to {ha4} port {DSMIP_PORT}")


def ipv4_in_udp4_from(ha4: str, dst: str) -> Predicate:
    """An IPv4 packet to `dst` that reaches the MN inside UDP/IPv4 from `ha4` port 4191
    (RFC 5555 §4.5.1, behind a NAT)."""

    def test(pkt: Any) -> bool:
        ip, udp = pkt.getlayer(IP), pkt.getlayer(UDP)
        if getattr(pkt, "direction", 1) != 1 or ip is None or udp is None:
            return False
        if ip.src != ha4 or udp.sport != DSMIP_PORT:
            return False
        data = bytes(udp.payload)
        return (
            len(data) >= 20 and data[0] >> 4 == 4 and str(ipaddress.IPv4Address(data[16:20])) == dst
        )

    return Predicate(test, f"an IPv4 packet to {dst} in UDP from {ha4} port {DSMIP_PORT}")
