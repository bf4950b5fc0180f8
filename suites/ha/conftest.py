"""Fixtures of the HA suite: the SUT home agent on ar1, and the tester as its mobile node.

The SUT is whatever `--sut` names (the bundled reference by default), started through its
profile on ar1 of the session's lab; the tests judge only what reaches the wire. The tester
is the mobile node: it sits in the `mn` namespace, moved to access link 2 (a foreign link
for ar1's home agent), with the care-of address of the packet vectors (2001:db8:2::10) added
to its interface, and sends crafted Binding Updates signed with the profile's MN-HA key
(harness/tester/home_agent.py).
Further care-of addresses on the same interface (2001:db8:2::11...) stand for other mobile
nodes, or keep one test's tunnel apart from the others'.

While the SUT runs, the lab's own Router Advertisements on the SUT's link are stopped, so
that the RAs seen there are the SUT's (RFC 6275 §7); they are restored afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.lab.topology import Lab
from harness.pytest_plugin import RunOptions
from harness.sut import adapters
from harness.tester.conversation import Link
from harness.tester.dns import LabDns
from harness.tester.fixtures import Captures
from harness.tester.home_agent import HOME_LINK, HomeAgentUnderTest, home_agent_started
from harness.tester.sources import Wire, open_source
from harness.verdicts import not_applicable


@pytest.fixture(scope="package")
def home_agent(
    lab: Lab, run_options: RunOptions, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HomeAgentUnderTest]:
    """The SUT home agent started on ar1, and the tester's MN placed on access link 2."""
    if run_options.sut_role == "mn":
        not_applicable("the run tests the MN role (--sut-role mn)")
    workdir: Path = tmp_path_factory.mktemp("sut-ha")
    sut = adapters.open_sut(run_options.sut, "ha", workdir)
    with home_agent_started(lab, sut, workdir) as ha:
        yield ha


@pytest.fixture
def mn_link(home_agent: HomeAgentUnderTest, captures: Captures) -> Link:
    """The tester's MN interface (mn0 on access link 2): send BUs, expect the answers."""
    return captures.watch_node(home_agent.lab, "mn", "mn0")


@pytest.fixture
def wire(home_agent: HomeAgentUnderTest, mn_link: Link, captures: Captures) -> Iterator[Wire]:
    lab = home_agent.lab
    ar = f"ar{HOME_LINK}"
    src = open_source(lab, "src", lab.plan.mcast_source.host6)
    cdn = open_source(lab, "cdn", lab.plan.cdn6)
    try:
        yield Wire(
            home_agent,
            mn_link,
            captures.watch_node(lab, ar, "up0"),
            captures.watch_node(lab, ar, "acc0"),
            src,
            cdn,
        )
    finally:
        src.sock.close()
        cdn.sock.close()


@pytest.fixture
def ha_dns(home_agent: HomeAgentUnderTest, request: pytest.FixtureRequest) -> LabDns:
    """The lab's named (the session's `lab_dns`) for the DNS update tests of an HA that
    claims dns_update (RFC 5026 §6); the SUT holds the lab's key (harness/servers/inlab.py).
    Asked for only then: an HA that does not claim it needs no DNS server."""
    home_agent.sut.features.require("dns_update", "the SUT home agent")
    return LabDns(home_agent.lab, request.getfixturevalue("lab_dns"))


@pytest.fixture
def dns_link(ha_dns: LabDns, captures: Captures) -> Link:
    """The DNS server's interface: the RFC 2136 UPDATEs of the HA and their answers."""
    return captures.watch_node(ha_dns.lab, "dns", "eth0")
