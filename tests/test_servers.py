"""The real servers: BIND 9 (RFC 5026 DNS bootstrapping, RFC 2136 + TSIG) and Kea (RFC 6610
DHCPv6, draft-xia-mext-hioptv4 DHCPv4), asked from a client namespace over real sockets.

Needs root (network namespaces) and the Debian packages bind9, kea-dhcp6-server and
kea-dhcp4-server; without them these tests end not-run with the install hint.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import dns.rcode
import pytest
from scapy.layers.dhcp import DHCP

from harness.lab import netns as _netns
from harness.lab import plan as lab_plan
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
from harness.servers.kea import (
    HomeNetworkInfo,
    KeaDhcp4Server,
    KeaDhcp6Server,
    dhcp4_option_config,
    dhcp6_option_config,
    dhcp_inform,
    information_request,
)
from harness.servers.testnet import ServerNet, not_run_if_unavailable, run_prefix
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
    ],
    ids=["named", "kea-dhcp6", "kea-dhcp4"],
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


@needs_root
@pytest.mark.parametrize("family", [6, 4])
def test_srv_lookup_returns_the_home_agents(
    server_net: ServerNet, dns_server: NamedServer, family: int
) -> None:
    side = server_net.side("dns")
    server = str(side.server6 if family == 6 else side.server4)
    with _netns.entered(server_net.client):
        targets = lookup_srv(server, DOMAIN)
    check_srv_home_agents(targets, PLAN)


@needs_root
def test_aaaa_and_a_of_ha1_are_the_plan_addresses(
    server_net: ServerNet, dns_server: NamedServer
) -> None:
    server = str(server_net.side("dns").server6)
    with _netns.entered(server_net.client):
        aaaa = lookup_aaaa(server, f"ha1.{DOMAIN}")
        a = lookup_a(server, f"ha1.{DOMAIN}")
    assert aaaa == [str(PLAN.link(1).router6)]
    assert a == [str(PLAN.link(1).router4)]


@needs_root
def test_tsig_update_adds_and_removal_deletes(
    server_net: ServerNet, dns_server: NamedServer
) -> None:
    server, fqdn = str(server_net.side("dns").server6), f"mn-add.{DOMAIN}"
    hoa = PLAN.mn_address(2)
    with _netns.entered(server_net.client):
        assert lookup_aaaa(server, fqdn) == []
        assert dns_update(server, DOMAIN, dns_server.key, fqdn, hoa, ttl=30).ok
        assert lookup_aaaa(server, fqdn) == [str(hoa)]
        assert dns_remove(server, DOMAIN, dns_server.key, fqdn, hoa).ok
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
    server_net: ServerNet,
    dns_server: NamedServer,
    key_kind: str,
    rcode: dns.rcode.Rcode,
    tsig_error: str | None,
) -> None:
    server, fqdn = str(server_net.side("dns").server6), f"mn-{key_kind}.{DOMAIN}"
    key = {
        "none": None,
        "wrong-secret": TsigKey.generate(name=dns_server.key.name),  # same name, other secret
        "unknown-name": TsigKey.generate(name="not-the-key"),
    }[key_kind]
    with _netns.entered(server_net.client):
        result = dns_update(server, DOMAIN, key, fqdn, PLAN.mn_address(1), check=False)
        assert (result.rcode, result.tsig_error) == (rcode, tsig_error), str(result)
        assert lookup_aaaa(server, fqdn) == []
        # ... nor may it remove what the key holder put there.
        dns_update(server, DOMAIN, dns_server.key, fqdn, PLAN.mn_address(1))
        assert not dns_remove(server, DOMAIN, key, fqdn, check=False).ok
        assert lookup_aaaa(server, fqdn) == [str(PLAN.mn_address(1))]
        dns_remove(server, DOMAIN, dns_server.key, fqdn)


@needs_root
def test_srv_check_fails_on_a_zone_without_srv(
    server_net: ServerNet, dns_server: NamedServer
) -> None:
    """The SRV check is not vacuous: against a zone without the SRV set it fails."""
    side = server_net.side("dns")
    zone = ZoneData(ns6=side.server6, srv=False)
    server = NamedServer(side.netns, [side.server6], zone=zone, port=5353)
    with not_run_if_unavailable(), server, _netns.entered(server_net.client):
        targets = lookup_srv(str(side.server6), DOMAIN, port=5353)
        assert lookup_aaaa(str(side.server6), f"ha1.{DOMAIN}", port=5353)  # zone is served
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
def test_information_request_gets_the_plans_home_network(
    server_net: ServerNet, dhcp6_server: KeaDhcp6Server
) -> None:
    side = server_net.side("dhcp")
    with _netns.entered(server_net.client):
        reply = information_request(side.client_if)  # to ff02::1:2, from port 546
    assert reply.getlayer(dhcp.DHCP6OptMIP6UDINF) is not None
    assert reply.getlayer(dhcp.DHCP6OptMIP6VDINF) is None  # not asked for (ORO)
    check_home_info(dhcp.parse_home_info(reply), [PLAN.link(1)])


@needs_root
def test_kea_encodes_the_container_as_our_encoder_does(
    server_net: ServerNet, dhcp6_server: KeaDhcp6Server
) -> None:
    """Kea's own encoding (option-def, encapsulated space) equals harness/wire/dhcp.py's."""
    assert dhcp6_server.encoding == "kea"
    with _netns.entered(server_net.client):
        reply = information_request(server_net.side("dhcp").client_if, visited=True)
    got = reply.getlayer(dhcp.DHCP6OptMIP6VDINF)
    assert got is not None and reply.getlayer(dhcp.DHCP6OptMIP6UDINF) is None
    ours = dhcp.DHCP6OptMIP6VDINF(hnopts=dhcp6_server.info.suboptions())
    assert bytes(got)[: 4 + got.optlen] == bytes(ours)


@needs_root
def test_several_home_agents_and_the_check_notices_a_difference(
    server_net: ServerNet, dhcp6_server: KeaDhcp6Server
) -> None:
    """All ARs in one container (harness encoding); the single-AR check then fails."""
    every = HomeNetworkInfo.from_plan(PLAN)
    with ServerNet([PLAN.dhcp], prefix=f"{run_prefix()}m-") as net:
        side = net.side("dhcp")
        server = KeaDhcp6Server(
            side.netns, side.server_if, side.link.prefix6, info=every, encoding="harness"
        )
        with not_run_if_unavailable(), server, _netns.entered(net.client):
            info = dhcp.parse_home_info(information_request(side.client_if))
    check_home_info(info, PLAN.access)
    with pytest.raises(AssertionError):
        check_home_info(info, [PLAN.link(1)])


@needs_root
def test_dhcpinform_gets_the_hninf_option(
    server_net: ServerNet, dhcp4_server: KeaDhcp4Server
) -> None:
    side = server_net.side("dhcp")
    with _netns.entered(server_net.client):
        ack = dhcp_inform(side.client_if, str(side.client4), str(side.server4))
    assert ("message-type", dhcp.DHCPACK) in ack[DHCP].options
    body = dhcp.find_dhcpv4_option(ack, dhcp4_server.code)
    assert body is not None, f"no option {dhcp4_server.code} in {ack[DHCP].options}"
    assert dhcp.parse_hninf(body).idtype == dhcp.HnInfIdType.NO_PREFERENCE
    assert dhcp.hninf_issues(body) == []
    check_home_info(dhcp.parse_home_info(ack), [PLAN.link(1)])


@needs_root
def test_our_namespaces_are_tagged_with_our_pid(server_net: ServerNet) -> None:
    """Our names carry this process's id; none is a lab ("dmm-") name."""
    ours = [n for n in os.listdir(_netns.NETNS_RUN_DIR) if n.startswith(run_prefix())]
    assert sorted(ours) == sorted(
        [server_net.client, *(s.netns for s in server_net.sides.values())]
    )
    assert not any(n.startswith("dmm-") for n in ours)
