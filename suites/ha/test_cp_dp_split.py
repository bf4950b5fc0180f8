"""Control and data plane separation (draft §9): a home agent whose control plane function
takes the Binding Updates and whose data plane function carries the tunnels.

The SUT is started split, through its profile's `[commands].split_args` (the data plane at
the lab's `{data_plane6}`), on the home link's router of a lab of this module's own: the HA
suite's other modules keep theirs on the session's lab. The tester is the mobile node, as in
the rest of the suite. What is judged is on the wire: the BA names the data plane function's
address (DMM-CPDP-9; an Alternate Home Agent Tunnel Address option or an Alternate Care-of
Address option, INT-9), and data for the home address comes from that address and the
reverse tunnel to it is taken, for the care-of address the control plane accepted last
(DMM-CPDP-2: the two functions share the binding cache; DMM-CPDP-4, -6).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from scapy.layers.inet import UDP
from scapy.layers.inet6 import IPv6

from harness import verdicts
from harness.lab.fixtures import bring_up, require_privileges
from harness.lab.topology import Lab
from harness.pytest_plugin import RunOptions
from harness.sut import adapters
from harness.tester.conversation import ExpectationFailed, Link, from_src, is_udp_to, to_dst
from harness.tester.fixtures import Captures
from harness.tester.home_agent import (
    Bound,
    HomeAgentUnderTest,
    binding,
    home_agent_started,
    register,
)
from harness.wire import compact

TRIES = 3  # the first packet of a path may wait for neighbour discovery on the way


@pytest.fixture(scope="module")
def split_home_agent(
    run_options: RunOptions, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HomeAgentUnderTest]:
    """The SUT home agent started split on ar1 of a lab of this module's own."""
    if run_options.sut_role == "mn":
        verdicts.not_applicable("the run tests the MN role (--sut-role mn)")
    workdir = tmp_path_factory.mktemp("sut-ha-split")
    sut = adapters.open_sut(run_options.sut, "ha", workdir)
    sut.features.require("cp_dp_split", "the SUT home agent")
    if not isinstance(sut, adapters.ProfileSut):
        verdicts.not_applicable("only a profile says how to start the SUT split")
    require_privileges()
    lab = bring_up(Lab())
    try:
        with home_agent_started(lab, sut, workdir, split=True) as ha:
            yield ha
    finally:
        lab.down()


@pytest.fixture
def mn_link(split_home_agent: HomeAgentUnderTest, captures: Captures) -> Link:
    return captures.watch_node(split_home_agent.lab, "mn", "mn0")


def named_data_plane(ba: compact.MobilityMessage) -> str | None:
    address = compact.data_plane_address(ba.options)
    return str(address) if address is not None else None


def data_plane_of(bound: Bound) -> str:
    """The data plane address the binding's BA named; inconclusive without one (the BA's
    own test judges that)."""
    named = named_data_plane(bound.ba)
    if named is None:
        verdicts.inconclusive(
            "the BA named no data plane address (judged by "
            "test_the_ba_names_the_data_plane_function): nothing to check the data against"
        )
    return named


def expect_through(link: Link, want: Any, send: Any) -> Any:
    """`send()` until `want` shows on `link` (the first may wait for neighbour discovery)."""
    for _ in range(TRIES - 1):
        send()
        try:
            return link.expect(want, within=1.0)
        except ExpectationFailed:
            continue
    send()
    return link.expect(want, within=1.0)


@pytest.mark.clause("DMM-CPDP-9")
def test_the_ba_names_the_data_plane_function(
    split_home_agent: HomeAgentUnderTest, mn_link: Link
) -> None:
    """Draft §9: the MN sends its BU to the control plane function and the BA that accepts
    it carries the data plane function's address (INT-9: either option)."""
    with binding(split_home_agent, mn_link) as bound:
        named = named_data_plane(bound.ba)
        kinds = sorted({o.otype for o in bound.ba.options})
        assert named is not None, (
            "the BA accepting the binding names no data plane function: no Alternate Home "
            f"Agent Tunnel Address or Alternate Care-of Address option (options {kinds})"
        )
        address = ipaddress.IPv6Address(named)
        assert not (address.is_unspecified or address.is_multicast or address.is_loopback), (
            f"the BA names {named} as the data plane function's address: no unicast address"
        )


@pytest.mark.clause("DMM-CPDP-2", "DMM-CPDP-4", "DMM-CPDP-6")
def test_the_data_plane_serves_what_the_control_plane_registered(
    split_home_agent: HomeAgentUnderTest, mn_link: Link, captures: Captures
) -> None:
    """Draft §9: a binding the control plane accepted is the data plane's too (the common
    binding cache): a correspondent's packet for the home address reaches the care-of
    address tunnelled from the data plane's address, a packet the MN reverse-tunnels to
    that address reaches the correspondent, and after the MN moves (a BU to the control
    plane for another care-of address) the data follows to the new care-of address."""
    ha = split_home_agent
    lab = ha.lab
    cn = str(lab.plan.cn.host6)
    cn_link = captures.watch_node(lab, "cn", "eth0")
    with binding(ha, mn_link) as bound, lab.socket("cn", socket.AF_INET6, socket.SOCK_DGRAM) as s:
        dp = data_plane_of(bound)

        def to_hoa(port: int) -> Any:
            return lambda: s.sendto(b"to the home address", (bound.hoa, port))

        def tunnelled(coa: str, port: int) -> Any:
            return from_src(dp) & to_dst(coa) & is_udp_to(bound.hoa, port, tunnelled=True)

        expect_through(mn_link, tunnelled(bound.coa, 9981), to_hoa(9981))
        reverse = (
            IPv6(src=bound.coa, dst=dp)
            / IPv6(src=bound.hoa, dst=cn)
            / UDP(sport=9982, dport=9983)
            / b"from the home address"
        )
        arrived = from_src(bound.hoa) & is_udp_to(cn, 9983, tunnelled=False)
        expect_through(cn_link, arrived, lambda: mn_link.send(reverse))
        # The move: the control plane accepts another care-of address for the home address.
        moved = ha.other_coas[0]
        ba = register(ha, mn_link, bound.hoa, bound.next_seq(), coa=moved)
        dp_after = named_data_plane(ba) or dp
        after = from_src(dp_after) & to_dst(moved) & is_udp_to(bound.hoa, 9984, tunnelled=True)
        expect_through(mn_link, after, to_hoa(9984))
