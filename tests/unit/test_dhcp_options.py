"""DHCP home-information options: RFC 6610 (DHCPv6) and draft-xia-mext-hioptv4-01 (DHCPv4)."""

from __future__ import annotations

import ipaddress
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.dhcp import BOOTP, DHCP, DHCPOptions
from scapy.layers.dhcp6 import (
    DUID_LL,
    DHCP6_InfoRequest,
    DHCP6_Reply,
    DHCP6OptClientId,
    DHCP6OptOptReq,
    DHCP6OptRelaySuppliedOpt,
    DHCP6OptServerId,
    dhcp6opts_by_code,
)
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw

from harness.config import ConfigError
from harness.wire import dhcp
from harness.wire import tshark as ts
from harness.wire.dhcp import (
    DHCP6OptMIP6HAA,
    DHCP6OptMIP6HAF,
    DHCP6OptMIP6HNIDF,
    DHCP6OptMIP6HNP,
    DHCP6OptMIP6IDINF,
    DHCP6OptMIP6UDINF,
    DHCP6OptMIP6VDINF,
    DSMIP6HomeNetworkInfo,
    DSMIP6RelayAgent,
    HnInfIdType,
)

HA = "2001:db8:1::1"
PREFIX = "2001:db8:1::"
ADDR_HA = bytes.fromhex("20010db8000100000000000000000001")
ADDR_PREFIX = bytes.fromhex("20010db8000100000000000000000000")
# "ha.example.com." in RFC 1035 §3.1 labels (RFC 3315 §8): 16 octets
FQDN_HA = b"\x02ha\x07example\x03com\x00"
FQDN_NET = b"\x07example\x03net\x00"  # "example.net.", 13 octets
DUID = DUID_LL(lladdr="00:11:22:33:44:55")


def server_reply(*opts: Packet) -> Packet:
    msg: Packet = DHCP6_Reply(trid=0x1234) / DHCP6OptClientId(duid=DUID)
    msg = msg / DHCP6OptServerId(duid=DUID_LL(lladdr="00:aa:bb:cc:dd:ee"))
    for o in opts:
        msg = msg / o
    return IPv6(src="fe80::1", dst="fe80::2") / UDP(sport=547, dport=546) / msg


# -------------------------------------------------------------------- golden bytes
# Written out by hand from the RFC 6610 §3 figures: 2-octet code, 2-octet length.

GOLDEN_V6 = [
    pytest.param(
        DHCP6OptMIP6HNIDF(fqdn="example.net."),
        b"\x00\x31\x00\x0d" + FQDN_NET,
        id="HNIDF-49",
    ),
    pytest.param(
        DHCP6OptMIP6HNP(plen=64, prefix=PREFIX),
        b"\x00\x47\x00\x11" + b"\x40" + ADDR_PREFIX,
        id="HNP-71",
    ),
    pytest.param(DHCP6OptMIP6HAA(addr=HA), b"\x00\x48\x00\x10" + ADDR_HA, id="HAA-72"),
    pytest.param(
        DHCP6OptMIP6HAF(fqdn="ha.example.com."), b"\x00\x49\x00\x10" + FQDN_HA, id="HAF-73"
    ),
    pytest.param(
        DHCP6OptMIP6VDINF(hnopts=[DHCP6OptMIP6HAA(addr=HA)]),
        b"\x00\x32\x00\x14" + b"\x00\x48\x00\x10" + ADDR_HA,
        id="VDINF-50",
    ),
    pytest.param(
        DHCP6OptMIP6IDINF(
            hnopts=[DHCP6OptMIP6HNIDF(fqdn="example.net."), DHCP6OptMIP6HAA(addr=HA)]
        ),
        b"\x00\x45\x00\x25" + b"\x00\x31\x00\x0d" + FQDN_NET + b"\x00\x48\x00\x10" + ADDR_HA,
        id="IDINF-69",
    ),
    pytest.param(
        DHCP6OptMIP6UDINF(
            hnopts=[
                DHCP6OptMIP6HNP(plen=64, prefix=PREFIX),
                DHCP6OptMIP6HAF(fqdn="ha.example.com."),
            ]
        ),
        b"\x00\x46\x00\x29" + b"\x00\x47\x00\x11\x40" + ADDR_PREFIX + b"\x00\x49\x00\x10" + FQDN_HA,
        id="UDINF-70",
    ),
]


@pytest.mark.parametrize(("opt", "wire"), GOLDEN_V6)
def test_dhcpv6_golden_bytes(opt: Packet, wire: bytes) -> None:
    assert bytes(opt) == wire
    # and dissects back through scapy's own dispatch, as the option after a Client ID
    reply = DHCP6_Reply(bytes(DHCP6_Reply(trid=1) / DHCP6OptClientId(duid=DUID)) + wire)
    got = reply[DHCP6OptClientId].payload
    assert type(got) is type(opt)
    assert bytes(got) == wire


def test_dhcpv4_golden_bytes() -> None:
    # draft-xia §4.1: code (1 octet), length (1), Id-type (2), RFC 6610 sub-options
    code, body = dhcp.hninf_option(HnInfIdType.NO_PREFERENCE, [DHCP6OptMIP6HAA(addr=HA)], code=224)
    assert code == 224
    assert body == b"\x00\x02" + b"\x00\x48\x00\x10" + ADDR_HA
    pkt = DHCP(options=[("message-type", "ack"), (code, body), "end"])
    assert bytes(pkt) == b"\x35\x01\x05" + b"\xe0\x16" + body + b"\xff"
    # draft-xia §4.2: no Id-type
    code, body = dhcp.relay_option([DHCP6OptMIP6HAF(fqdn="ha.example.com.")], code=225)
    assert (code, body) == (225, b"\x00\x49\x00\x10" + FQDN_HA)
    # the request form of draft-sarikaya §7: Id-type 2 and nothing else
    assert dhcp.hninf_option(code=224) == (224, b"\x00\x02")


def test_oro_golden_bytes() -> None:
    req = dhcp.build_information_request(trid=0xABCDEF)
    # RFC 8415 §21.7 ORO listing UDINF (70) and HNIDF, HNP, HAA, HAF (RFC 6610 §4.1.1)
    assert b"\x00\x06\x00\x0a\x00\x46\x00\x31\x00\x47\x00\x48\x00\x49" in bytes(req)


# --------------------------------------------------------------------- round trips


ALL_V6: list[Packet] = [cast(Packet, p.values[0]) for p in GOLDEN_V6]


@pytest.mark.parametrize("opt", ALL_V6, ids=[p.id for p in GOLDEN_V6])
def test_dhcpv6_round_trip_through_ipv6(opt: Packet) -> None:
    wire = bytes(server_reply(opt))
    got = IPv6(wire)[type(opt)]
    assert got.fields == type(opt)(bytes(opt)).fields
    for name, value in opt.fields.items():
        if name == "hnopts":
            assert [bytes(o) for o in got.hnopts] == [bytes(o) for o in value]
        else:
            assert got.getfieldval(name) == value
    assert bytes(IPv6(wire)) == wire


def test_registered_in_scapy_tables() -> None:
    for code, cls in dhcp.MIP6_OPTION_CLASSES.items():
        assert dhcp6opts_by_code[code] == cls.__name__
    oro = DHCP6OptOptReq(reqopts=[49, 50, 69, 70, 71, 72, 73])
    assert "OPTION_MIP6_UDINF" in repr(oro)
    assert DHCPOptions[dhcp.hninf_code()] == dhcp.DHCPV4_HNINF_NAME
    assert DHCPOptions[dhcp.relay_code()] == dhcp.DHCPV4_RELAY_NAME


def test_inside_relay_supplied_options() -> None:
    # RFC 6610 §4.2: relays send these inside RFC 6422's Relay-Supplied Options option
    inner = DHCP6OptMIP6VDINF(hnopts=[DHCP6OptMIP6HAA(addr=HA)])
    rso = DHCP6OptRelaySuppliedOpt(bytes(DHCP6OptRelaySuppliedOpt(relaysupplied=[inner])))
    assert isinstance(rso.relaysupplied[0], DHCP6OptMIP6VDINF)
    assert rso.relaysupplied[0].hnopts[0].addr == HA


def test_dhcpv4_round_trip() -> None:
    subs = dhcp.home_info_suboptions(
        ha_addresses=[HA], home_prefixes=["2001:db8:1::/64"], ha_fqdns=["ha.example.com."]
    )
    ack = (
        Ether()
        / IP(src="192.0.2.1", dst="192.0.2.9")
        / UDP(sport=67, dport=68)
        / BOOTP(op=2, yiaddr="192.0.2.9")
        / DHCP(options=[("message-type", "ack"), dhcp.hninf_option(1, subs), "end"])
    )
    got = Ether(bytes(ack))
    name, body = got[DHCP].options[1]
    assert name == "dsmip6_hninf"  # printed by name
    parsed = dhcp.parse_hninf(body)
    assert parsed.idtype == HnInfIdType.TARGET_MSP
    assert [bytes(o) for o in parsed.subopts] == [bytes(o) for o in subs]
    assert bytes(parsed) == body
    relay = dhcp.parse_relay(dhcp.relay_option(subs)[1])
    assert [type(o) for o in relay.subopts] == [DHCP6OptMIP6HNP, DHCP6OptMIP6HAA, DHCP6OptMIP6HAF]
    assert dhcp.find_dhcpv4_option(got, dhcp.hninf_code()) == body


def test_dhcpv4_body_limit() -> None:
    many = [DHCP6OptMIP6HAA(addr=f"2001:db8::{i:x}") for i in range(13)]  # 2 + 13*20 > 255
    with pytest.raises(ValueError, match="255"):
        dhcp.hninf_option(2, many)


def test_hninf_issues() -> None:
    ok = dhcp.hninf_option(2, [DHCP6OptMIP6HAA(addr=HA)])[1]  # 22 octets
    assert dhcp.hninf_issues(ok) == ["option-length 22 is not a multiple of four (§4.1)"]
    assert dhcp.hninf_issues(dhcp.hninf_option(2, [DHCP6OptMIP6HNIDF(fqdn="a")])[1]) == []
    assert any("'Raw'" in i for i in dhcp.hninf_issues(b"\x00\x02\x00\x00"))  # cut sub-option
    bad = b"\x00\x07" + bytes(DHCP6OptMIP6UDINF()) + b"\x00\x00"
    issues = dhcp.hninf_issues(bad)
    assert any("Id-type 7" in i for i in issues)
    assert any("is not HNIDF" in i for i in issues)


# ------------------------------------------------------------ malformed and edges


def test_long_optlen_stays_inside_the_option() -> None:
    # HAA with 4 extra octets: they land in 'trailing', the HAF after it is intact
    haa = DHCP6OptMIP6HAA(addr=HA, trailing=b"\xde\xad\xbe\xef")
    assert bytes(haa)[:4] == b"\x00\x48\x00\x14"
    box = DHCP6OptMIP6UDINF(bytes(DHCP6OptMIP6UDINF(hnopts=[haa, DHCP6OptMIP6HAF(fqdn="a.b.")])))
    assert box.hnopts[0].trailing == b"\xde\xad\xbe\xef"
    assert box.hnopts[1].fqdn == "a.b."


def test_short_optlen_is_raw_not_shifted() -> None:
    # HAA claiming 8 octets: the body cannot hold an address -> scapy gives Raw
    wire = b"\x00\x46\x00\x0c" + b"\x00\x48\x00\x08" + ADDR_HA[:8]
    box = DHCP6OptMIP6UDINF(wire)
    assert len(box.hnopts) == 1
    assert isinstance(box.hnopts[0], Raw)
    assert bytes(box) == wire


@pytest.mark.parametrize(
    ("wire", "value"),
    [
        (FQDN_HA, "ha.example.com."),
        (b"\x02ha\x07example", "ha.example"),  # partial name: no root label
        (b"\x00", "."),
        (b"\x05ha", b"\x05ha"),  # label runs past the end: kept raw
        (b"\xc0\x0c", b"\xc0\x0c"),  # compression pointer: kept raw
        (b"\x01a\x00\x01b", b"\x01a\x00\x01b"),  # octets after the root label
    ],
)
def test_fqdn_field(wire: bytes, value: str | bytes) -> None:
    opt = DHCP6OptMIP6HAF(b"\x00\x49" + len(wire).to_bytes(2, "big") + wire)
    assert opt.fqdn == value
    assert bytes(DHCP6OptMIP6HAF(fqdn=value)) == bytes(opt)


def test_encode_fqdn_rejects_bad_labels() -> None:
    with pytest.raises(ValueError):
        dhcp.encode_fqdn("a..b.")
    with pytest.raises(ValueError):
        dhcp.encode_fqdn("x" * 64 + ".")


# --------------------------------------------------------------- mobile-node helpers


def test_information_request_forms() -> None:
    def oro(pkt: Packet) -> list[int]:
        return list(DHCP6_InfoRequest(bytes(pkt))[DHCP6OptOptReq].reqopts)

    assert oro(dhcp.build_information_request()) == [70, 49, 71, 72, 73]
    assert oro(dhcp.build_information_request(visited=True)) == [50, 49, 71, 72, 73]
    ident = dhcp.build_information_request(home_network_ids=["example.net.", "example.org."])
    assert oro(ident) == [69, 49, 71, 72, 73]
    sent = DHCP6_InfoRequest(bytes(ident))
    hnids = []
    layer = sent[DHCP6OptMIP6HNIDF]
    while isinstance(layer, DHCP6OptMIP6HNIDF):
        hnids.append(layer.fqdn)
        layer = layer.payload
    assert hnids == ["example.net.", "example.org."]
    assert sent.haslayer(DHCP6OptClientId)


def test_parse_home_info_dhcpv6_rules() -> None:
    reply = server_reply(
        DHCP6OptMIP6HAA(addr="2001:db8::bad"),  # outside a container: discarded
        DHCP6OptMIP6VDINF(),  # nothing usable: discarded
        DHCP6OptMIP6UDINF(
            hnopts=dhcp.home_info_suboptions(
                ha_addresses=[HA, "64:ff9b::c000:201"],
                home_prefixes=["2001:db8:1::/64"],
                ha_fqdns=["ha.example.com."],
            )
        ),
        DHCP6OptMIP6IDINF(
            hnopts=dhcp.home_info_suboptions(
                ha_addresses=["2001:db8:2::1"], home_network_id="other."
            )
        ),
    )
    info = dhcp.parse_home_info(bytes(reply))
    assert info.ha_addresses == (HA, "64:ff9b::c000:201", "2001:db8:2::1")
    assert info.home_prefixes == ("2001:db8:1::/64",)
    assert info.ha_fqdns == ("ha.example.com.",)
    assert info.ha_ipv4_addresses == ("192.0.2.1",)
    narrowed = dhcp.parse_home_info(reply, requested_home_network_ids=["example.net"])
    assert "2001:db8:2::1" not in narrowed.ha_addresses
    assert not dhcp.parse_home_info(server_reply(DHCP6OptMIP6HAA(addr=HA)))


def test_parse_home_info_dhcpv4_ack() -> None:
    subs = dhcp.home_info_suboptions(ha_addresses=["64:ff9b::c633:6401"], ha_fqdns=["ha.example."])
    ack = (
        IP(src="192.0.2.1", dst="192.0.2.9")
        / UDP(sport=67, dport=68)
        / BOOTP(op=2)
        / DHCP(options=[("message-type", "ack"), dhcp.hninf_option(2, subs), "end"])
    )
    info = dhcp.parse_home_info(bytes(ack))
    assert info.ha_ipv4_addresses == ("198.51.100.1",)
    assert info.ha_fqdns == ("ha.example.",)


# -------------------------------------------------------------- configurable codes


def test_dhcpv4_codes_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DMMCONF_DHCPV4_HNINF_CODE", "0xf0")
    monkeypatch.setenv("DMMCONF_DHCPV4_RELAY_CODE", "241")
    assert dhcp.dhcpv4_option_codes() == (240, 241)
    try:
        dhcp.register_dhcpv4_options()
        assert DHCPOptions[240] == "dsmip6_hninf"
        assert 224 not in DHCPOptions
        opts = DHCP(bytes(DHCP(options=[dhcp.hninf_option(), "end"]))).options
        assert opts[0] == ("dsmip6_hninf", b"\x00\x02")
    finally:
        monkeypatch.delenv("DMMCONF_DHCPV4_HNINF_CODE")
        monkeypatch.delenv("DMMCONF_DHCPV4_RELAY_CODE")
        dhcp.register_dhcpv4_options()
    assert DHCPOptions[224] == "dsmip6_hninf" and 240 not in DHCPOptions


@pytest.mark.parametrize(
    ("hninf", "relay", "match"),
    [("255", "225", "1..254"), ("x", "225", "not an integer"), ("230", "230", "share code")],
)
def test_dhcpv4_codes_rejected(
    monkeypatch: pytest.MonkeyPatch, hninf: str, relay: str, match: str
) -> None:
    monkeypatch.setenv("DMMCONF_DHCPV4_HNINF_CODE", hninf)
    monkeypatch.setenv("DMMCONF_DHCPV4_RELAY_CODE", relay)
    with pytest.raises(ConfigError, match=match):
        dhcp.dhcpv4_option_codes()


def test_dhcpv4_code_collision_rejected() -> None:
    with pytest.raises(ConfigError, match="message-type"):
        dhcp.register_dhcpv4_options(hninf_code=53)
    assert DHCPOptions[224] == "dsmip6_hninf"


# ------------------------------------------------------------ hypothesis properties

labels = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20)
fqdns = st.lists(labels, min_size=1, max_size=4).map(lambda ls: ".".join(ls) + ".")
v6 = st.integers(min_value=0, max_value=2**128 - 1).map(lambda i: str(ipaddress.IPv6Address(i)))
subopt = st.one_of(
    v6.map(lambda a: DHCP6OptMIP6HAA(addr=a)),
    st.tuples(st.integers(0, 128), v6).map(lambda t: DHCP6OptMIP6HNP(plen=t[0], prefix=t[1])),
    fqdns.map(lambda f: DHCP6OptMIP6HAF(fqdn=f)),
    fqdns.map(lambda f: DHCP6OptMIP6HNIDF(fqdn=f)),
)
containers = st.sampled_from([DHCP6OptMIP6VDINF, DHCP6OptMIP6IDINF, DHCP6OptMIP6UDINF])


def _norm(o: Packet) -> tuple[object, ...]:
    if isinstance(o, DHCP6OptMIP6HAA):
        return ("haa", str(ipaddress.IPv6Address(o.addr)))
    if isinstance(o, DHCP6OptMIP6HNP):
        return ("hnp", o.plen, str(ipaddress.IPv6Address(o.prefix)))
    return (type(o).__name__, o.fqdn)


@settings(max_examples=60, deadline=None)
@given(cls=containers, subs=st.lists(subopt, max_size=6))
def test_container_round_trip_property(cls: type[Packet], subs: list[Packet]) -> None:
    wire = bytes(cls(hnopts=subs))
    assert int.from_bytes(wire[2:4], "big") == len(wire) - 4 == sum(len(bytes(s)) for s in subs)
    got = IPv6(bytes(server_reply(cls(wire))))[cls]
    assert [_norm(o) for o in got.hnopts] == [_norm(o) for o in subs]
    assert bytes(got) == wire
    info = dhcp.parse_home_info(server_reply(cls(hnopts=subs)))
    usable = any(not isinstance(s, DHCP6OptMIP6HNIDF) for s in subs)
    want_ha = [_norm(s)[1] for s in subs if isinstance(s, DHCP6OptMIP6HAA)] if usable else []
    assert [str(ipaddress.IPv6Address(a)) for a in info.ha_addresses] == want_ha


@settings(max_examples=40, deadline=None)
@given(id_type=st.integers(0, 0xFFFF), subs=st.lists(subopt, max_size=4))
def test_dhcpv4_body_round_trip_property(id_type: int, subs: list[Packet]) -> None:
    body = bytes(DSMIP6HomeNetworkInfo(idtype=id_type, subopts=subs))
    got = dhcp.parse_hninf(body)
    assert got.idtype == id_type
    assert [_norm(o) for o in got.subopts] == [_norm(o) for o in subs]
    relay = DSMIP6RelayAgent(bytes(DSMIP6RelayAgent(subopts=subs)))
    assert [_norm(o) for o in relay.subopts] == [_norm(o) for o in subs]


# ------------------------------------------------------------------ tshark oracle


@pytest.fixture(scope="module")
def tshark_frames() -> tuple[list[Packet], list[ts.Frame]]:
    if not ts.available():
        pytest.skip("not-run: tshark missing; apt-get install tshark")
    packets = [
        server_reply(*ALL_V6),
        IPv6(src="fe80::2", dst="ff02::1:2")
        / UDP(sport=546, dport=547)
        / dhcp.build_information_request(home_network_ids=["example.net."]),
    ]
    return packets, ts.dissect(packets)


def test_tshark_agrees_on_rfc6610_reply(
    tshark_frames: tuple[list[Packet], list[ts.Frame]],
) -> None:
    packets, frames = tshark_frames
    frame = frames[0]
    assert ts.malformed(frame) == []
    # every top-level option: same codes, same lengths, in the same order
    ours = _top_options(IPv6(bytes(packets[0])))
    assert frame.ints("dhcpv6.option.type") == [o.optcode for o in ours]
    assert frame.ints("dhcpv6.option.length") == [o.optlen for o in ours]
    names = frame["dhcpv6.option.type_str"][2:]  # after Client and Server Identifier
    assert names == [ts.DHCPV6_OPTION_NAMES[o.optcode] for o in ALL_V6]
    assert frame.ints("dhcpv6.msgtype") == [7]
    assert frame.first("dhcpv6.xid") == "0x001234"


def test_tshark_agrees_on_information_request(
    tshark_frames: tuple[list[Packet], list[ts.Frame]],
) -> None:
    _, frames = tshark_frames
    frame = frames[1]
    assert ts.malformed(frame) == []
    assert frame.ints("dhcpv6.msgtype") == [11]
    assert frame.ints("dhcpv6.requested_option_code") == [69, 49, 71, 72, 73]
    assert 49 in frame.ints("dhcpv6.option.type")


def _top_options(pkt: Packet) -> list[Packet]:
    opts = []
    cur = pkt[DHCP6_Reply].payload
    while cur:
        opts.append(cur)
        cur = cur.payload
    return opts
