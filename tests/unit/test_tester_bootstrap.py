"""The tester's readers of an MN's bootstrapping traffic (harness/tester/bootstrap.py) against
what the reference MN sends (harness/reference/mn_packets.py) and dnspython: two opinions of
the same bytes, and the faults they must tell apart."""

from __future__ import annotations

import ipaddress

import dns.message
from scapy.layers.inet import UDP
from scapy.layers.inet6 import IPv6

from harness.faults import NO_FAULTS, Fault, Faults
from harness.reference import mn_core as m
from harness.reference import mn_packets
from harness.tester import bootstrap as boot
from harness.wire import compact

A = ipaddress.IPv6Address
MAC = "02:00:00:00:00:01"
LL = "fe80::1"


def info_request(faults: Faults = NO_FAULTS) -> boot.InformationRequest:
    body = mn_packets.information_request(m.RequestHomeInfo("mn0", 0xABCDEF, 1.0), MAC, faults)
    pkt = IPv6(bytes(IPv6(src=LL, dst="ff02::1:2") / UDP(sport=546, dport=547) / body))
    req = boot.information_request_of(pkt)
    assert req is not None
    return req


def test_the_information_request_asks_for_udinf_and_its_suboptions() -> None:
    req = info_request()
    assert req.transaction_id == 0xABCDEF
    assert req.requested == [boot.UDINF, boot.HNIDF, boot.HNP, boot.HAA, boot.HAF]
    assert req.options[boot.OPTION_ELAPSED_TIME] == [b"\x00\x64"]  # 1 s in 1/100 s
    assert boot.OPTION_CLIENTID in req.options


def test_the_dhcp_faults_show_in_the_oro() -> None:
    assert boot.VDINF in info_request(Faults.of(Fault.MN_DHCP_ID_TYPE_0)).requested
    assert boot.HAF not in info_request(Faults.of(Fault.MN_DHCP_ORO_INCOMPLETE)).requested


def test_a_dns_query_is_read() -> None:
    query = dns.message.make_query("_mip6._ipv6.lab.example.", "SRV")
    pkt = IPv6(src="2001:db8:2::100", dst="2001:db8:c3::10") / UDP(dport=53) / query.to_wire()
    q = boot.dns_query_of(IPv6(bytes(pkt)))
    assert q is not None
    assert (q.qname, q.qtype, q.qid) == ("_mip6._ipv6.lab.example.", "SRV", query.id)
    assert boot.dns_query("_MIP6._ipv6.lab.example.", "SRV")(IPv6(bytes(pkt)))
    assert not boot.dns_query(qtype="AAAA")(IPv6(bytes(pkt)))
    assert mn_packets.srv_query_name(q.qname, Faults.of(Fault.MN_SRV_WRONG_NAME)).startswith(
        "_mip6._udp."
    )


def _dns_option(faults: Faults, remove: bool = False) -> boot.DnsUpdateOption:
    bu = m.SendBindingUpdate(
        "mn0",
        A("2001:db8:1::1"),
        A("2001:db8:1::100"),
        A("2001:db8:2::100"),
        9,
        0 if remove else 100,
        None,
        m.DnsUpdate("mn.lab.example", remove),
    )
    msg = compact.parse_packet(mn_packets.binding_update(bu, faults=faults))
    [opt] = boot.dns_update_options(msg)
    return opt


def test_the_dns_update_option_as_the_tester_reads_it() -> None:
    opt = _dns_option(Faults())
    assert (opt.status, opt.remove, opt.reserved) == (0, False, 0)
    assert opt.names("mn.lab.example") and opt.names("MN.lab.example.")
    assert not opt.names("ha1.lab.example")
    assert _dns_option(Faults(), remove=True).remove


def test_the_dns_update_faults_are_told_apart() -> None:
    assert _dns_option(Faults.of(Fault.MN_DNS_UPDATE_R_SET)).remove
    assert _dns_option(Faults.of(Fault.MN_DNS_STATUS_NONZERO)).status == 130
    assert not _dns_option(Faults.of(Fault.MN_DNS_IDENTITY_ADDRESS)).names("mn.lab.example")


def test_text_identity_is_accepted() -> None:
    """INT-17: the name as text is read as the FQDN too."""
    assert boot.DnsUpdateOption(0, False, 0, b"mn.lab.example").names("mn.lab.example")
