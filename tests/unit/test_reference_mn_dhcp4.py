"""The reference MN's DHCPv4 client on an IPv4-only link (harness/reference/mn_dhcp4.py),
without a network: the exchange it drives, the frames it builds, and its faults."""

from __future__ import annotations

import ipaddress

import pytest
from scapy.layers.dhcp import BOOTP
from scapy.layers.inet import IP
from scapy.layers.l2 import Ether

from harness.faults import Fault, Faults
from harness.reference import mn_dhcp4 as m
from harness.tester import dhcpv4 as v4
from harness.wire import dhcp

MAC, SERVER_MAC = "02:00:00:00:01:00", "02:00:00:00:00:01"
SERVER, LEASED = ipaddress.IPv4Address("10.0.3.1"), ipaddress.IPv4Address("10.0.3.100")


def _client(*faults: Fault) -> m.Dhcp4Client:
    return m.Dhcp4Client(m.Dhcp4Config(time_scale=0.01, seed=1, faults=Faults(frozenset(faults))))


NOTHING = dhcp.HomeInfo()


def _reply(sent: m.SendDhcp4, kind: int, home: dhcp.HomeInfo = NOTHING) -> m.Reply:
    return m.Reply(sent.xid, kind, LEASED, SERVER, SERVER_MAC, 24, SERVER, home, bool(home))


def _sends(actions: list[m.Action]) -> list[m.SendDhcp4]:
    return [a for a in actions if isinstance(a, m.SendDhcp4)]


def _to_inform(c: m.Dhcp4Client) -> tuple[list[m.Action], m.SendDhcp4 | None]:
    c.carrier(0.0, "mn0", True)
    [discover] = _sends(c.tick(1.0))
    [request] = _sends(c.reply(1.0, "mn0", _reply(discover, 2)))
    assert request.xid == discover.xid and request.requested == LEASED
    acked = c.reply(1.1, "mn0", _reply(request, 5))
    informs = _sends(acked)
    return acked, informs[0] if informs else None


def test_no_ra_means_dhcpv4_then_an_inform_from_the_leased_address() -> None:
    c = _client()
    assert c.carrier(0.0, "mn0", True) and c.next_deadline() == 0.25  # RS wait, scaled
    acked, inform = _to_inform(c)
    assert m.AddAddress4("mn0", LEASED, 24, SERVER) in acked
    assert inform is not None and inform.kind == dhcp.DHCPINFORM and inform.ciaddr == LEASED
    home = dhcp.HomeInfo(ha_addresses=("2001:db8:1::1",))
    c.reply(1.2, "mn0", _reply(inform, 5, home))
    assert c.home_info["mn0"] == home and c.next_deadline() is None
    assert c.carrier(2.0, "mn0", False) == [m.RemoveAddress4("mn0", LEASED, 24)]


def test_an_ra_keeps_dhcpv4_off() -> None:
    c = _client()
    c.carrier(0.0, "mn0", True)
    c.ipv6_router(0.1, "mn0")
    assert not _sends(c.tick(5.0)) and c.next_deadline() is None


def test_unanswered_messages_are_retransmitted_with_back_off() -> None:
    c = m.Dhcp4Client(m.Dhcp4Config(time_scale=0.1, seed=1))  # RFC 2131 §4.1: 4 s, 8 s, ...
    c.carrier(0.0, "mn0", True)
    assert c.next_deadline() == pytest.approx(1.2)  # 3 x RTR_SOLICITATION_INTERVAL, scaled
    [first] = _sends(c.tick(1.2001))
    assert c.next_deadline() == pytest.approx(1.6001)
    [again] = _sends(c.tick(1.6002))
    assert again.xid == first.xid and again.kind == dhcp.DHCPDISCOVER
    assert c.next_deadline() == pytest.approx(2.4002)


def test_the_inform_frame_carries_hninf_with_id_type_2_and_asks_for_it() -> None:
    _, inform = _to_inform(_client())
    assert inform is not None
    pkt = Ether(m.build_frame(inform, MAC))
    assert pkt[IP].src == str(LEASED) and pkt[IP].dst == str(SERVER) and pkt.dst == SERVER_MAC
    assert pkt[BOOTP].ciaddr == str(LEASED)
    [body] = v4.options_with_code(pkt, dhcp.hninf_code())
    hninf = v4.HnInf.read(body)
    assert hninf.id_type == 2 and not hninf.problems and not hninf.suboptions
    assert dhcp.hninf_code() in v4.requested_codes(pkt)


def test_the_faults_break_one_thing_each() -> None:
    _, inform = _to_inform(_client(Fault.MN_NO_DHCPINFORM))
    assert inform is None
    c = _client(Fault.MN_NO_DHCPV4)
    c.carrier(0.0, "mn0", True)
    assert not _sends(c.tick(1.0))
    _, inform = _to_inform(_client())
    assert inform is not None
    code = dhcp.hninf_code()
    wrong = Ether(m.build_frame(inform, MAC, Faults(frozenset({Fault.MN_HNINF_WRONG_CODE}))))
    assert not v4.options_with_code(wrong, code)
    zero = Ether(m.build_frame(inform, MAC, Faults(frozenset({Fault.MN_HNINF_ID_TYPE_0}))))
    assert v4.HnInf.read(v4.options_with_code(zero, code)[0]).id_type == 0
    unasked = Ether(m.build_frame(inform, MAC, Faults(frozenset({Fault.MN_HNINF_NOT_REQUESTED}))))
    assert code not in v4.requested_codes(unasked)


def test_parse_reply_reads_a_servers_ack() -> None:
    from scapy.layers.dhcp import DHCP
    from scapy.layers.inet import UDP

    info = dhcp.home_info_suboptions(ha_addresses=["2001:db8:1::1", "64:ff9b::a00:101"])
    frame = (
        Ether(src=SERVER_MAC, dst=MAC)
        / IP(src=str(SERVER), dst=str(LEASED))
        / UDP(sport=67, dport=68)
        / BOOTP(op=2, xid=7, yiaddr=str(LEASED), chaddr=bytes.fromhex(MAC.replace(":", "")))
        / DHCP(
            options=[
                ("message-type", "ack"),
                ("server_id", str(SERVER)),
                ("subnet_mask", "255.255.255.0"),
                ("router", str(SERVER)),
                dhcp.hninf_option(2, info),
                "end",
            ]
        )
    )
    r = m.parse_reply(bytes(frame), MAC)
    assert r is not None and (r.kind, r.xid, r.yiaddr, r.prefixlen) == (5, 7, LEASED, 24)
    assert r.has_hninf and r.home.ha_ipv4_addresses == ("10.0.1.1",)
    assert m.parse_reply(bytes(frame), "02:00:00:00:09:09") is None  # another client's
