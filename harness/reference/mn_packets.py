"""The reference Mobile Node's packets (sans-I/O): the Binding Updates it sends, the Router
Advertisements it reads, the MLDv2 Reports it sends on a link, and the few decisions about
them (which records of the kernel's reports stay on the air, which packets from the tunnel
device go to a home agent). Faults (harness/faults.py) bend them at the hook points here.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable, Mapping
from typing import Any

from harness.faults import NO_FAULTS, Fault, Faults
from harness.reference import mn_core
from harness.reference.multicast import ListenerState, Mode
from harness.wire import ipv6, traffic_selector
from harness.wire.numbers import IGMPV3_REPORT

IPPROTO_IPV6_IN_IPV6 = 41
ND_RA = 134
MLDV2_ROUTERS = "ff02::16"


def binding_update(
    bu: mn_core.SendBindingUpdate,
    key: bytes | None = None,
    spi: int | None = None,
    faults: Faults = NO_FAULTS,
    mn_id: str | None = None,
) -> bytes:
    """The Binding Update (RFC 6275 §11.7.1): H and A set, a Home Address option, the CoA
    in an Alternate Care-of Address option, the Multicast State (draft §4.1), and, when
    there is a key, the MN's NAI in a Mobile Node Identifier option (RFC 4283 §3.2: before
    any authentication option) and the MN-HA authentication option last (RFC 4285)."""
    from scapy.layers.inet6 import (
        HAO,
        IPv6,
        IPv6ExtHdrDestOpt,
        MIP6OptAltCoA,
        MIP6OptMNID,
        MIP6OptMsgAuth,
    )

    from harness.reference.mn_listener import option_records
    from harness.wire import auth
    from harness.wire.mobility import BindingUpdate, multicast_state_options

    options: list[Any] = []
    bids = () if faults.has(Fault.MN_NO_BID_OPTION) else bu.bids
    if bu.coa4 is None and (not bids or faults.has(Fault.MN_ALT_COA_WITH_BID)):
        options.append(MIP6OptAltCoA(acoa=str(bu.coa)))  # RFC 5648 §5.2: not with BIDs
    options += ipv4_options(bu, faults)  # RFC 5555 §4.2: the IPv4 home and care-of addresses
    options += [*mcoa_options(bids), *flow_options(bu.flows)]
    if bu.multicast is not None and not faults.has(Fault.MN_NO_MCAST_OPTION):
        options += multicast_state_options(option_records(bu.multicast))
    if bu.multicast4 is not None:  # draft §8: the IPv4 groups, IGMPv3 form (RFC 3376 §4.2)
        records4 = option_records(bu.multicast4, version=4)
        options += multicast_state_options(records4, report_type=IGMPV3_REPORT)
    dns_option = dns_update_option(bu, faults)
    if dns_option is not None:
        options.append(dns_option)  # no alignment rule (RFC 5026 §8.1): after the others
    signed = key is not None and spi is not None and not faults.has(Fault.MN_NO_AUTH)
    nai = [MIP6OptMNID(subtype=1, id=mn_id)] if signed and mn_id else []  # RFC 4283 §3
    if not faults.has(Fault.MN_MN_ID_AFTER_AUTH):
        options += nai
        nai = []
    if signed:
        options.append(MIP6OptMsgAuth(subtype=1, mspi=spi, authdata=b"\x00" * 12))
    options += nai
    ack = 0 if faults.has(Fault.MN_NO_ACK_FLAG) else 0x200
    flags = 0x100 | ack  # H, A (RFC 6275 §11.7.1)
    if bu.overwrite and bids:
        flags |= 0x001  # O (RFC 5648 §4.2, §5.9)
    if faults.has(Fault.MN_RESERVED_BITS):
        flags |= 0x01
    mh = BindingUpdate(seq=bu.seq, mhtime=bu.lifetime, flags=flags, options=options)
    pkt: Any
    if bu.coa4 is not None:
        # RFC 5555 §4.2: in UDP/IPv4 the IPv6 source is the home address, no HAO
        pkt = IPv6(src=str(bu.hoa), dst=str(bu.ha)) / mh
    elif faults.has(Fault.MN_NO_HAO):
        pkt = IPv6(src=str(bu.coa), dst=str(bu.ha)) / mh
    else:
        pkt = (
            IPv6(src=str(bu.coa), dst=str(bu.ha))
            / IPv6ExtHdrDestOpt(options=[HAO(hoa=str(bu.hoa))])
            / mh
        )
    if signed:
        assert key is not None
        pkt = auth.sign(pkt, key)
    return bytes(pkt)


def ipv4_options(bu: mn_core.SendBindingUpdate, faults: Faults = NO_FAULTS) -> list[Any]:
    """RFC 5555 §4.2, §4.4.2: the IPv4 Home Address option (the MN's IPv4 home address, or
    0.0.0.0 to be given one; a single address, prefix length 32) and, from an IPv4 care-of
    address, the IPv4 Care-of Address option."""
    from harness.wire.mobility import MIP6OptIPv4CareOfAddress, MIP6OptIPv4HomeAddress

    out: list[Any] = []
    if bu.hoa4 is not None and not faults.has(Fault.MN_NO_IPV4_HOA_OPTION):
        out.append(MIP6OptIPv4HomeAddress(prefix_len=32, flags=0, address=str(bu.hoa4)))
    if bu.coa4 is not None:
        out.append(MIP6OptIPv4CareOfAddress(address=str(bu.coa4)))
    return out


def mcoa_options(bids: Iterable[mn_core.BidEntry]) -> list[Any]:
    """The BID options of a BU (RFC 5648 §4.3, BID-PRI of RFC 6089 §4.1)."""
    from harness.wire.mobility import MIP6OptBindingIdentifier

    return [
        MIP6OptBindingIdentifier(
            bid=e.bid, bid_pri=e.bid_pri, coa=None if e.coa is None else str(e.coa)
        )
        for e in bids
    ]


def flow_options(flows: Iterable[mn_core.FlowEntry]) -> list[Any]:
    """The Flow Identification options of a BU (RFC 6089 §4.2): a Binding Reference and an
    IPv6 binary traffic selector of the correspondent's (source) port (RFC 6088 §3.2)."""
    from harness.wire.mobility import (
        FIDSubOptBindingReference,
        FIDSubOptTrafficSelector,
        IPv6BinaryTrafficSelector,
        MIP6OptFlowIdentification,
    )

    return [
        MIP6OptFlowIdentification(
            fid=f.fid,
            fid_pri=f.fid_pri,
            suboptions=[
                FIDSubOptBindingReference(bids=list(f.bids)),
                FIDSubOptTrafficSelector(
                    selector=[IPv6BinaryTrafficSelector(start_sport=f.port, end_sport=f.port)]
                ),
            ],
        )
        for f in flows
    ]


def dns_update_option(bu: mn_core.SendBindingUpdate, faults: Faults = NO_FAULTS) -> Any:
    """The DNS Update mobility option (RFC 5026 §8.1): Status 0 in a BU, R as the core
    says, the MN identity its FQDN in DNS wire format (as the suite's vectors write it)."""
    import dns.name
    import dns.reversename

    from harness.wire.mobility import MIP6OptDNSUpdate

    if bu.dns is None:
        return None
    remove = bu.dns.remove
    if not remove and faults.has(Fault.MN_NO_DNS_UPDATE):
        return None
    if remove and faults.has(Fault.MN_NO_DNS_REMOVE):
        return None
    name = dns.name.from_text(bu.dns.fqdn)
    if not remove and faults.has(Fault.MN_DNS_IDENTITY_ADDRESS):
        name = dns.reversename.from_address(str(bu.hoa))
    if faults.has(Fault.MN_DNS_UPDATE_R_SET):
        remove = True
    status = 130 if faults.has(Fault.MN_DNS_STATUS_NONZERO) else 0
    return MIP6OptDNSUpdate(status=status, flags=int(remove), mn_identity=name.to_wire())


def srv_query_name(qname: str, faults: Faults = NO_FAULTS) -> str:
    """The QNAME the MN asks for (RFC 5026 §5.1.2); a fault only changes the protocol label."""
    if faults.has(Fault.MN_SRV_WRONG_NAME) and qname.startswith("_mip6._ipv6."):
        return "_mip6._udp." + qname[len("_mip6._ipv6.") :]
    return qname


def dns_answer(data: bytes) -> tuple[int, mn_core.DnsAnswer | None] | None:
    """(id, what the core uses) of a DNS response: SRV targets and every AAAA record of the
    answer and additional sections (RFC 2782 allows the targets' addresses there); None for
    the answer when the rcode is an error; None for what is not a DNS response."""
    import dns.exception
    import dns.flags
    import dns.message
    import dns.rcode
    import dns.rdatatype

    try:
        msg = dns.message.from_wire(data)
    except dns.exception.DNSException:
        return None
    if not msg.flags & dns.flags.QR:
        return None
    if msg.rcode() != dns.rcode.NOERROR:
        return msg.id, None
    srv: list[mn_core.SrvTarget] = []
    addresses: list[tuple[str, ipaddress.IPv6Address]] = []
    ttls: list[float] = []
    for rrset in [*msg.answer, *msg.additional]:
        owner = rrset.name.to_text().lower()
        if rrset.rdtype == dns.rdatatype.SRV:
            ttls.append(rrset.ttl)
            srv += [
                mn_core.SrvTarget(r.priority, r.weight, r.target.to_text().lower()) for r in rrset
            ]
        elif rrset.rdtype == dns.rdatatype.AAAA:
            ttls.append(rrset.ttl)
            addresses += [(owner, ipaddress.IPv6Address(r.address)) for r in rrset]
    ttl = float(min(ttls)) if ttls else None
    return msg.id, mn_core.DnsAnswer(tuple(srv), tuple(addresses), ttl)


def information_request(q: mn_core.RequestHomeInfo, mac: str, faults: Faults = NO_FAULTS) -> bytes:
    """The DHCPv6 Information-request of RFC 6610 §4.1.1 with no preferred home network
    (UDINF: the draft's Id-type 2, INT-10); Elapsed Time in hundredths (RFC 8415 §21.9)."""
    from harness.wire import dhcp

    elapsed = min(0xFFFF, int(q.elapsed * 100))
    visited = faults.has(Fault.MN_DHCP_ID_TYPE_0)
    msg = dhcp.build_information_request(
        trid=q.transaction_id, client_mac=mac, visited=visited, elapsed_time=elapsed
    )
    if faults.has(Fault.MN_DHCP_ORO_INCOMPLETE):
        from scapy.layers.dhcp6 import DHCP6OptOptReq

        oro = msg[DHCP6OptOptReq]
        oro.reqopts = [c for c in oro.reqopts if c != dhcp.Dhcp6Opt.MIP6_HAF]
        oro.optlen = None
    return bytes(msg)


def home_info_reply(data: bytes) -> tuple[int, tuple[ipaddress.IPv6Address, ...]] | None:
    """(transaction id, home agents in the server's order) of a DHCPv6 Reply (RFC 6610
    §4.1.2), or None for anything else."""
    from scapy.layers.dhcp6 import DHCP6_Reply

    from harness.wire import dhcp

    if len(data) < 4 or data[0] != 7:  # RFC 8415 §7.3: Reply
        return None
    try:
        info = dhcp.parse_home_info(DHCP6_Reply(data))
    except Exception:
        return None
    agents = tuple(ipaddress.IPv6Address(a) for a in info.ha_addresses)
    return int.from_bytes(data[1:4], "big"), agents


def parse_ra(data: bytes, src: str, iface: str) -> mn_core.RouterAdvert | None:
    """The parts of an RA the core uses (RFC 4861 §4.2, RFC 6275 §7.1, §7.2, §7.4)."""
    from scapy.layers.inet6 import (
        ICMPv6ND_RA,
        ICMPv6NDOptDNSSL,
        ICMPv6NDOptHAInfo,
        ICMPv6NDOptPrefixInfo,
    )

    try:
        ra = ICMPv6ND_RA(data)
    except Exception:
        return None
    if ra.type != ND_RA:
        return None
    prefix = ha_address = None
    opt = ra.getlayer(ICMPv6NDOptPrefixInfo)
    k = 1
    while opt is not None:
        if opt.prefixlen == 64 and opt.A:
            prefix = ipaddress.IPv6Network(f"{opt.prefix}/64", strict=False)
            if opt.R and ra.H:
                ha_address = ipaddress.IPv6Address(opt.prefix)
        k += 1
        opt = ra.getlayer(ICMPv6NDOptPrefixInfo, k)
    if prefix is None:
        return None
    ha_lifetime: float | None = None
    if ha_address is not None:
        info = ra.getlayer(ICMPv6NDOptHAInfo)
        ha_lifetime = float(info.lifetime if info is not None else ra.routerlifetime)
        if ha_address == prefix.network_address:
            ha_address = None  # an R flag without a full address: not usable
    domains: list[str] = []  # RFC 8106 §5.2 DNS Search List, lifetime 0: no longer valid
    k = 1
    while (dnssl := ra.getlayer(ICMPv6NDOptDNSSL, k)) is not None:
        if dnssl.lifetime:
            domains += [str(d).rstrip(".") for d in dnssl.searchlist if str(d).strip(".")]
        k += 1
    return mn_core.RouterAdvert(
        iface=iface,
        router=ipaddress.IPv6Address(src.split("%", 1)[0]),
        prefix=prefix,
        ha_address=ha_address,
        ha_lifetime=ha_lifetime,
        domains=tuple(domains),
    )


def mld_report(state: ListenerState, src: str) -> bytes:
    """An MLDv2 Report of Current-State records (RFC 3810 §5.2) from `src`."""
    from harness.netproto.mld import Record

    records = []
    for group in sorted((g for g in state.groups if g.version == 6), key=lambda a: a.packed):
        g = state.groups[group]
        sources = tuple(sorted(g.sources, key=lambda a: a.packed))
        records.append(Record(1 if g.mode is Mode.INCLUDE else 2, group, sources))  # type: ignore[type-var]
    return mld_report_records(records, src)


def mld_report_records(records: Iterable[Any], src: str) -> bytes:
    """An MLDv2 Report (RFC 3810 §5.2) of the given records (rtype, group, sources)."""
    from scapy.layers.inet6 import (
        ICMPv6MLDMultAddrRec,
        ICMPv6MLReport2,
        IPv6,
        IPv6ExtHdrHopByHop,
        RouterAlert,
    )

    recs = [
        ICMPv6MLDMultAddrRec(rtype=r.rtype, dst=str(r.group), sources=[str(s) for s in r.sources])
        for r in records
    ]
    pkt = (
        IPv6(src=src, dst=MLDV2_ROUTERS, hlim=1)
        / IPv6ExtHdrHopByHop(options=[RouterAlert(value=0)])
        / ICMPv6MLReport2(records=recs)
    )
    return bytes(pkt)


def igmp_report(records: Iterable[Any]) -> bytes:
    """An IGMPv3 Membership Report (RFC 3376 §4.2) of the given records (rtype, group,
    sources), checksum filled in; the kernel adds the IPv4 header."""
    from harness.wire.ipv4 import internet_checksum

    recs = list(records)
    body = struct.pack("!BBHHH", IGMPV3_REPORT, 0, 0, 0, len(recs)) + b"".join(
        struct.pack("!BBH4s", r.rtype, 0, len(r.sources), r.group.packed)
        + b"".join(s.packed for s in r.sources)
        for r in recs
    )
    return body[:2] + struct.pack("!H", internet_checksum(body)) + body[4:]


def ipv6_header(payload_len: int, nh: int, src: str, dst: str, hlim: int = 64) -> bytes:
    return struct.pack(
        "!IHBB16s16s",
        6 << 28,
        payload_len,
        nh,
        hlim,
        ipaddress.IPv6Address(src).packed,
        ipaddress.IPv6Address(dst).packed,
    )


def air_report(
    records: Iterable[Any], src: str, home: ipaddress.IPv6Address | None, faults: Faults
) -> bytes:
    """The MLDv2 Report the MN sends on its visited link for `records`."""
    report = mld_report_records(records, src)
    if faults.has(Fault.MN_REPORT_WITH_HAO) and home is not None:
        report = _with_home_address(report, home)
    return report


def _with_home_address(report: bytes, hoa: ipaddress.IPv6Address) -> bytes:
    """A fault only: the report with a Home Address option (RFC 6275 §11.3.4 forbids it on
    the visited link)."""
    from scapy.layers.inet6 import HAO, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop

    pkt = IPv6(report)
    hbh = pkt[IPv6ExtHdrHopByHop]
    rest = hbh.payload
    hbh.remove_payload()
    hbh.nh = 60  # a Destination Options header follows now
    out = (
        IPv6(src=pkt.src, dst=pkt.dst, hlim=1)
        / hbh
        / IPv6ExtHdrDestOpt(options=[HAO(hoa=str(hoa))])
        / rest
    )
    return bytes(IPv6(bytes(out)))


def ipv4_ack(msg: Any) -> mn_core.Ipv4Ack:
    """What a BA in UDP/IPv4 says of RFC 5555: its IPv4 Address Acknowledgement (§3.2.1:
    Status, Pref-len in the high six bits, the address) and the refresh time of its NAT
    Detection option (§3.2.2)."""
    from harness.wire import compact
    from harness.wire.numbers import MobOpt

    status, address, prefixlen, refresh = None, None, 32, None
    for opt in compact.parse_options(msg.body, compact.FIXED_PART[compact.MHType.BA]):
        if opt.otype == MobOpt.IPV4_ADDRESS_ACK and len(opt.data) == 6:
            status, prefixlen = opt.data[0], opt.data[1] >> 2
            address = ipaddress.IPv4Address(opt.data[2:6])
        elif opt.otype == MobOpt.NAT_DETECTION and len(opt.data) == 6:
            refresh = struct.unpack_from("!I", opt.data, 2)[0]
    return mn_core.Ipv4Ack(status, address, prefixlen, refresh)


def ipv4_for_device(
    packet: bytes, home4: Iterable[ipaddress.IPv4Address], faults: Faults = NO_FAULTS
) -> bool:
    """Does an IPv4 packet the home agent tunnelled in UDP go to the tunnel device? One to
    an IPv4 home address (RFC 5555 §4.5.1), or multicast data beyond the Local Network
    Control Block (draft §8: the IPv4 groups moved to the tunnel; the device's
    memberships then decide which reach a socket)."""
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return False
    dst = ipaddress.IPv4Address(packet[16:20])
    if dst.is_multicast:
        from harness.netproto import igmp

        return igmp.routable(dst) and not faults.has(Fault.MN_V4_MCAST_NOT_DELIVERED)
    return dst in set(home4)


def ba_ignored(msg: Any, faults: Faults = NO_FAULTS) -> bool:
    """Does the MN drop this BA before the core sees it? Only when a fault says so."""
    if faults.has(Fault.MN_IGNORE_135) and msg.ba_status == 135:
        return True
    return faults.has(Fault.MN_STRICT_BA_OPTIONS) and _unknown_options(msg)


def _unknown_options(msg: Any) -> bool:
    """Does the BA carry an option type outside RFC 6275's and RFC 4285's (and the
    Multicast State option's)?"""
    from harness.config import WireConfig
    from harness.wire import compact

    known = {0, 1, 2, 3, 4, 5, 6, 9, 10, WireConfig.from_env().multicast_state_type}
    options = compact.parse_options(msg.body, compact.FIXED_PART[compact.MHType.BA])
    return any(o.otype not in known for o in options)


def is_mld_report(packet: bytes) -> bool:
    """An MLD Report (v1 or v2) behind a Hop-by-Hop header (how the kernel sends them)."""
    p = ipv6.parse(packet)
    return (
        p is not None
        and p.raw[6] == ipv6.HOPOPTS
        and p.upper == ipv6.ICMPV6
        and p.payload[:1] in (b"\x83", b"\x8f")  # MLDv1 Report 131, MLDv2 Report 143
    )


def air_records(records: Iterable[Any], moved: set[Any], faults: Faults = NO_FAULTS) -> list[Any]:
    """Draft §3 last paragraph: of the records of a report the kernel sends on an air
    interface, those of groups now served through a tunnel (`moved`) are not sent there."""
    if faults.has(Fault.MN_REPORT_ON_AIR):
        moved = set()
    return [r for r in records if r.group not in moved]


def reverse_tunnel(
    inner: bytes,
    routes: dict[ipaddress.IPv6Address, tuple[ipaddress.IPv6Address, ipaddress.IPv6Address]],
    faults: Faults = NO_FAULTS,
    flows: Mapping[tuple[ipaddress.IPv6Address, int], tuple[Any, Any]] | None = None,
) -> bytes | None:
    """What an application sent into the tunnel device, encapsulated to its home agent
    (RFC 6275 §11.3.1, draft §3), or None: not from a registered home address (the BA
    completes the registration, §3), or an MLD Report (none tunnelled, §11.3.4, INT-7).
    A packet to the port of a flow bound to an interface leaves from that interface's
    care-of address (draft §7.1, RFC 6089)."""
    if len(inner) < 40 or inner[0] >> 4 != 6:
        return None
    route = routes.get(ipaddress.IPv6Address(inner[8:24]))
    if route is None:
        return None
    if inner[6] == 0 and is_mld_report(inner):
        return None
    if faults.has(Fault.MN_NO_REVERSE_TUNNEL):
        return None
    ha, coa = route
    if flows and not faults.has(Fault.MN_FLOW_TUNNEL_PRIMARY):
        fields = traffic_selector.packet_fields(inner)
        port = fields.dport if fields is not None else None
        hoa = ipaddress.IPv6Address(inner[8:24])
        if port is not None and (hoa, port) in flows:
            ha, coa = flows[(hoa, port)]
    return ipv6_header(len(inner), IPPROTO_IPV6_IN_IPV6, str(coa), str(ha)) + inner


def care_of_test_init(coa: ipaddress.IPv6Address, peer: ipaddress.IPv6Address) -> bytes:
    """A Care-of Test Init (RFC 6275 §6.1.4) from the care-of address, as route
    optimisation would start it (a fault only: the draft disables it)."""
    from scapy.layers.inet6 import IPv6, MIP6MH_CoTI

    return bytes(IPv6(src=str(coa), dst=str(peer)) / MIP6MH_CoTI(cookie=b"\x01" * 8))


def home_test_init(hoa: ipaddress.IPv6Address, peer: ipaddress.IPv6Address) -> bytes:
    """A Home Test Init (RFC 6275 §6.1.3) from the home address, as route optimisation
    would start it through the reverse tunnel (a fault only: the draft disables it)."""
    from scapy.layers.inet6 import IPv6, MIP6MH_HoTI

    return bytes(IPv6(src=str(hoa), dst=str(peer)) / MIP6MH_HoTI(cookie=b"\x02" * 8))
