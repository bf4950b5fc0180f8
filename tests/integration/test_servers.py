"""The real servers: BIND 9 (RFC 5026 DNS bootstrapping, RFC 2136 + TSIG) and Kea (RFC 6610
DHCPv6, draft-xia-mext-hioptv4 DHCPv4), in the lab, asked by the mobile node over real
sockets: DNS across the access router and the core, DHCPv6 through the AR's relay.

Needs root (network namespaces) and the Debian packages bind9, kea-dhcp6-server,
kea-dhcp4-server and isc-dhcp-relay; without them these tests end not-run with the
install hint. The MN is on access link 1 (where the lab brings it up) unless a test moves
it (`clean_lab` puts it back).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import dns.rcode
import pytest
from scapy.layers.dhcp import DHCP

from harness.lab import netns as _netns
from harness.lab import plan as lab_plan
from harness.lab.topology import Lab
from harness.servers import ServerUnavailable
from harness.servers.bind import (
    NamedServer,
    SrvTarget,
    TsigKey,
    ZoneData,
    dns_remove,
    dns_update,
    lookup_a,
    lookup_aaaa,
    lookup_srv,
)
from harness.servers.fixtures import not_run_if_unavailable
from harness.servers.inlab import LabDhcp, lab_named
from harness.servers.kea import (
    HomeNetworkInfo,
    KeaDhcp4Server,
    KeaDhcp6Server,
    LinkSubnet,
    dhcp4_option_config,
    dhcp6_option_config,
    dhcp_inform,
    information_request,
)
from harness.servers.relay import DhcpRelay6
from harness.verdicts import Verdict, decode
from harness.wire import dhcp

PLAN = lab_plan.build()
DOMAIN = lab_plan.DOMAIN
needs_root = pytest.mark.needs_root


# ----------------------------------------------------------------- the checks
# One function per property, used by the positive test and by the negative one that
# proves the check can fail.


def check_srv_home_agents(targets: Sequence[SrvTarget], plan: lab_plan.Plan) -> None:
    """RFC 5026 §5.1.2: the SRV set names every home agent, with its AAAA as additional data."""
    assert targets, f"no _mip6._ipv6.{DOMAIN} SRV records"
    by_name = {f"{link.ha_fqdn}.": link for link in plan.access}
    assert sorted(t.target for t in targets) == sorted(by_name)
    for t in targets:
        link = by_name[t.target]
        assert t.port == 0, "RFC 5026 names no port: Mobile IPv6 is not a transport protocol"
        assert t.addresses == (str(link.router6),), f"additional AAAA for {t.target}"


def check_home_info(info: dhcp.HomeInfo, links: Sequence[lab_plan.AccessLink]) -> None:
    """The Reply/ACK names exactly these access routers as home agents, with their prefixes."""
    assert info.ha_addresses == tuple(str(link.router6) for link in links)
    assert info.home_prefixes == tuple(str(link.prefix6) for link in links)
    assert info.ha_fqdns == tuple(f"{link.ha_fqdn}." for link in links)


# ---------------------------------------------------------------- no root needed


def test_zone_file_has_srv_set_and_home_agents() -> None:
    text = ZoneData(ns6=PLAN.dns.host6).text()
    for link in PLAN.access:
        assert f"ha{link.index} IN AAAA {link.router6}" in text
        assert f"_mip6._ipv6 IN SRV 0 1 0 {link.ha_fqdn}." in text
    assert "SRV" not in ZoneData(ns6=PLAN.dns.host6, srv=False).text()


def test_tsig_keys_are_fresh_per_server() -> None:
    a, b = TsigKey.generate(), TsigKey.generate()
    assert a.secret != b.secret and a.algorithm == "hmac-sha256"
    assert 'allow-update { key "dmmconf-update"; }' in NamedServer(
        "unused", [PLAN.dns.host6], key=a
    ).named_conf(Path("/x"))


def test_kea_option_config_native_and_binary() -> None:
    one = HomeNetworkInfo.from_plan(PLAN, links=[1])
    defs, data = dhcp6_option_config(one, [dhcp.Dhcp6Opt.MIP6_UDINF])
    assert {"name": "mip6-udinf", "code": 70, "space": "dhcp6", "type": "empty",
            "encapsulate": "mip6-hni"} in defs  # fmt: skip
    assert {"name": "mip6-hnp", "space": "mip6-hni", "data": "64, 2001:db8:1::"} in data
    every = HomeNetworkInfo.from_plan(PLAN)
    with pytest.raises(ValueError, match="one option per code"):
        dhcp6_option_config(every, [dhcp.Dhcp6Opt.MIP6_UDINF])
    _, data = dhcp6_option_config(every, [dhcp.Dhcp6Opt.MIP6_UDINF], encoding="harness")
    body = bytes.fromhex(data[0]["data"])
    assert body == b"".join(bytes(o) for o in every.suboptions())
    defs4, data4 = dhcp4_option_config(one, code=224)
    assert defs4[0]["code"] == 224 and data4[0]["csv-format"] is False
    assert dhcp.parse_hninf(bytes.fromhex(data4[0]["data"])).idtype == 2


@pytest.mark.parametrize(
    ("server", "hint"),
    [
        (NamedServer("unused", [PLAN.dns.host6], binary="/nonexistent/named"), "bind9"),
        (
            KeaDhcp6Server("unused", "eth0", PLAN.dhcp.prefix6, binary="/nonexistent/kea-dhcp6"),
            "kea-dhcp6-server",
        ),  # fmt: skip
        (
            KeaDhcp4Server("unused", "eth0", PLAN.dhcp.subnet4, binary="/nonexistent/kea-dhcp4"),
            "kea-dhcp4-server",
        ),  # fmt: skip
        (
            DhcpRelay6("unused", "acc0", "up0", PLAN.dhcp.host6, binary="/nonexistent/dhcrelay"),
            "isc-dhcp-relay",
        ),  # fmt: skip
    ],
    ids=["named", "kea-dhcp6", "kea-dhcp4", "dhcrelay"],
)
def test_missing_binary_is_not_run_with_install_hint(server: object, hint: str) -> None:
    with pytest.raises(ServerUnavailable) as exc:
        server.start()  # type: ignore[attr-defined]
    assert exc.value.hint == f"apt-get install {hint}"
    # ... and the fixtures turn that into a not-run verdict carrying the hint.
    with pytest.raises(pytest.skip.Exception) as skipped, not_run_if_unavailable():
        raise exc.value
    verdict, _, got_hint = decode(str(skipped.value))
    assert verdict == Verdict.NOT_RUN and got_hint == f"apt-get install {hint}"


# ----------------------------------------------------------------------- named


def _dns(lab: Lab, family: int = 6) -> str:
    return str(lab.plan.dns.host6 if family == 6 else lab.plan.dns.host4)


@needs_root
@pytest.mark.parametrize("family", [6, 4])
def test_srv_lookup_returns_the_home_agents(lab: Lab, lab_dns: NamedServer, family: int) -> None:
    with _netns.entered(lab.ns("mn")):
        targets = lookup_srv(_dns(lab, family), DOMAIN)
    check_srv_home_agents(targets, lab.plan)


@needs_root
def test_aaaa_and_a_of_ha1_are_the_plan_addresses(lab: Lab, lab_dns: NamedServer) -> None:
    with _netns.entered(lab.ns("mn")):
        aaaa = lookup_aaaa(_dns(lab), f"ha1.{DOMAIN}")
        a = lookup_a(_dns(lab), f"ha1.{DOMAIN}")
    assert aaaa == [str(PLAN.link(1).router6)]
    assert a == [str(PLAN.link(1).router4)]


@needs_root
def test_tsig_update_adds_and_removal_deletes(lab: Lab, lab_dns: NamedServer) -> None:
    server, fqdn = _dns(lab), f"mn-add.{DOMAIN}"
    hoa = PLAN.mn_address(2)
    # The home agent updates the zone (RFC 5026 §9.5): ask from ar1.
    with _netns.entered(lab.ns("ar1")):
        assert lookup_aaaa(server, fqdn) == []
        assert dns_update(server, DOMAIN, lab_dns.key, fqdn, hoa, ttl=30).ok
        assert lookup_aaaa(server, fqdn) == [str(hoa)]
        assert dns_remove(server, DOMAIN, lab_dns.key, fqdn, hoa).ok
        assert lookup_aaaa(server, fqdn) == []


@needs_root
@pytest.mark.parametrize(
    ("key_kind", "rcode", "tsig_error"),
    [
        ("none", dns.rcode.REFUSED, None),
        ("wrong-secret", dns.rcode.NOTAUTH, "BADSIG"),
        ("unknown-name", dns.rcode.NOTAUTH, "BADKEY"),
    ],
)
def test_update_without_the_key_is_refused_and_changes_nothing(
    lab: Lab,
    lab_dns: NamedServer,
    key_kind: str,
    rcode: dns.rcode.Rcode,
    tsig_error: str | None,
) -> None:
    server, fqdn = _dns(lab), f"mn-{key_kind}.{DOMAIN}"
    key = {
        "none": None,
        "wrong-secret": TsigKey.generate(name=lab_dns.key.name),  # same name, other secret
        "unknown-name": TsigKey.generate(name="not-the-key"),
    }[key_kind]
    with _netns.entered(lab.ns("mn")):
        result = dns_update(server, DOMAIN, key, fqdn, PLAN.mn_address(1), check=False)
        assert (result.rcode, result.tsig_error) == (rcode, tsig_error), str(result)
        assert lookup_aaaa(server, fqdn) == []
        # ... nor may it remove what the key holder put there.
        dns_update(server, DOMAIN, lab_dns.key, fqdn, PLAN.mn_address(1))
        assert not dns_remove(server, DOMAIN, key, fqdn, check=False).ok
        assert lookup_aaaa(server, fqdn) == [str(PLAN.mn_address(1))]
        dns_remove(server, DOMAIN, lab_dns.key, fqdn)


@needs_root
def test_srv_check_fails_on_a_zone_without_srv(lab: Lab) -> None:
    """The SRV check is not vacuous: against a zone without the SRV set it fails."""
    p = lab.plan
    zone = ZoneData(ns6=p.dns.host6, srv=False)
    with not_run_if_unavailable():
        server = lab_named(lab, zone=zone, port=5353)
    try:
        with _netns.entered(lab.ns("mn")):
            targets = lookup_srv(_dns(lab), DOMAIN, port=5353)
            assert lookup_aaaa(_dns(lab), f"ha1.{DOMAIN}", port=5353)  # zone is served
    finally:
        server.stop()
    assert targets == []
    with pytest.raises(AssertionError, match="no _mip6._ipv6"):
        check_srv_home_agents(targets, PLAN)
    # A zone missing one home agent is caught too.
    with pytest.raises(AssertionError):
        check_srv_home_agents(
            [SrvTarget(0, 1, 0, f"ha1.{DOMAIN}.", (str(PLAN.link(1).router6),))], PLAN
        )


# ------------------------------------------------------------------------- Kea


@needs_root
def test_information_request_gets_the_plans_home_network(lab: Lab, lab_dhcp: LabDhcp) -> None:
    """From the MN on link 1, to ff02::1:2 from port 546: through ar1's relay to Kea."""
    with _netns.entered(lab.ns("mn")):
        reply = information_request("mn0")
    assert reply.getlayer(dhcp.DHCP6OptMIP6UDINF) is not None
    assert reply.getlayer(dhcp.DHCP6OptMIP6VDINF) is None  # not asked for (ORO)
    check_home_info(dhcp.parse_home_info(reply), [PLAN.link(1)])


@needs_root
def test_kea_encodes_the_container_as_our_encoder_does(lab: Lab, lab_dhcp: LabDhcp) -> None:
    """Kea's own encoding (option-def, encapsulated space) equals harness/wire/dhcp.py's."""
    assert lab_dhcp.v6.encoding == "kea"
    with _netns.entered(lab.ns("mn")):
        reply = information_request("mn0", visited=True)
    got = reply.getlayer(dhcp.DHCP6OptMIP6VDINF)
    assert got is not None and reply.getlayer(dhcp.DHCP6OptMIP6UDINF) is None
    ours = dhcp.DHCP6OptMIP6VDINF(hnopts=lab_dhcp.home_info(1).suboptions())
    assert bytes(got)[: 4 + got.optlen] == bytes(ours)


@needs_root
def test_several_home_agents_and_the_check_notices_a_difference(lab: Lab) -> None:
    """All ARs in one container (harness encoding), from a Kea asked on its own link with
    no relay (the cn link, the core as client); the single-AR check then fails."""
    p = lab.plan
    every = HomeNetworkInfo.from_plan(PLAN)
    server = KeaDhcp6Server(lab.ns("cn"), "eth0", p.cn.prefix6, info=every, encoding="harness")
    with not_run_if_unavailable(), server, _netns.entered(lab.ns("core")):
        info = dhcp.parse_home_info(information_request("cn"))
    check_home_info(info, PLAN.access)
    with pytest.raises(AssertionError):
        check_home_info(info, [PLAN.link(1)])


@needs_root
def test_dhcpinform_gets_the_hninf_option(lab: Lab, lab_dhcp: LabDhcp) -> None:
    """A DHCPINFORM from the MN on link 1 straight to the server: link 1's subnet by ciaddr."""
    p = lab.plan
    assert lab_dhcp.v4 is not None
    with _netns.entered(lab.ns("mn")):
        ack = dhcp_inform("mn0", str(p.mn_address4(1)), str(p.dhcp.host4))
    assert ("message-type", dhcp.DHCPACK) in ack[DHCP].options
    body = dhcp.find_dhcpv4_option(ack, lab_dhcp.v4.code)
    assert body is not None, f"no option {lab_dhcp.v4.code} in {ack[DHCP].options}"
    assert dhcp.parse_hninf(body).idtype == dhcp.HnInfIdType.NO_PREFERENCE
    assert dhcp.hninf_issues(body) == []
    check_home_info(dhcp.parse_home_info(ack), [PLAN.link(1)])


def test_kea_configures_one_subnet_per_relayed_link() -> None:
    """Every option is per subnet: the relayed links' subnets carry their own AR."""
    links = [LinkSubnet.for_access_link(link) for link in PLAN.access]
    server = KeaDhcp6Server("unused", "eth0", PLAN.dhcp.prefix6, links=links, unicast="2001:db8::1")
    section = server.kea_config(Path("/x"))["Dhcp6"]
    assert section["interfaces-config"]["interfaces"] == ["eth0/2001:db8::1"]
    assert "option-data" not in section
    subnets = {s["subnet"]: s for s in section["subnet6"]}
    assert "interface" not in subnets["2001:db8:2::/64"]
    assert {"name": "mip6-haa", "space": "mip6-hni", "data": "2001:db8:2::1"} in subnets[
        "2001:db8:2::/64"
    ]["option-data"]
    assert server.info_for("2001:db8:3::1").ha_addresses == (PLAN.link(3).router6,)
    v4 = KeaDhcp4Server(
        "unused", "eth0", PLAN.dhcp.subnet4, links=[LinkSubnet.for_access_link(PLAN.link(2), 4)]
    )
    assert [s["subnet"] for s in v4.kea_config(Path("/x"))["Dhcp4"]["subnet4"]] == [
        str(PLAN.dhcp.subnet4),
        "10.0.2.0/24",
    ]
    with pytest.raises(ValueError, match="not an IPv6 prefix"):
        KeaDhcp6Server(
            "unused",
            "eth0",
            PLAN.dhcp.prefix6,
            links=[LinkSubnet(PLAN.dhcp.subnet4, links[0].info)],
        )


@needs_root
def test_servers_run_in_the_lab_namespaces(
    lab: Lab, lab_dns: NamedServer, lab_dhcp: LabDhcp
) -> None:
    """named in dns, Kea in dhcp, a relay in each AR: each daemon is in its node."""
    where = {
        lab_dns.pid: "dns",
        lab_dhcp.v6.pid: "dhcp",
        **({lab_dhcp.v4.pid: "dhcp"} if lab_dhcp.v4 else {}),
        **{relay.pid: f"ar{i}" for i, relay in lab_dhcp.relays.items()},
    }
    for pid, node in where.items():
        assert pid is not None and pid in _netns.pids_in(lab.ns(node)), (pid, node)
