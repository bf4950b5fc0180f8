"""Fixtures of the MN suite: the SUT mobile node among reference home agents.

The SUT is whatever `--sut` names (the bundled reference MN by default), started through
its profile in the `mn` namespace of a mobility lab (harness/tester/world.py: the lab
configures no address on the MN, which forms its own from the RAs). A reference home agent
runs on every access router. The stimuli are real: applications in the MN's namespace join
groups and talk to the correspondent node, and the lab moves the MN's interface. What is
judged is what the MN sends on its interface (captured), its kernel state and what its
applications receive.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.lab.fixtures import bring_up
from harness.lab.topology import Lab
from harness.pytest_plugin import RunOptions
from harness.sut.adapters import SutAdapter
from harness.sut.profile import template_fields
from harness.tester import bootstrap, multi_interface
from harness.tester import world as mobility
from harness.tester.bootstrap import CONFIGURED_HA_LINK, DnsServerState
from harness.tester.fixtures import Captures
from harness.tester.mobile_node import MobileNodeUnderTest
from harness.verdicts import not_applicable


@pytest.fixture(scope="module")
def mobility_lab() -> Iterator[Lab]:
    lab = bring_up(mobility.mobility_lab())
    try:
        yield lab
    finally:
        lab.down()


@pytest.fixture(scope="module")
def lab_dns_server(mobility_lab: Lab) -> Iterator[DnsServerState]:
    """The lab's named, where the home agents send the DNS updates the MN asks for (draft
    §6, RFC 5026 §6): started for every MN test, so that an HA's BA never waits for a DNS
    server that is not there. Without it (no named), the tests that need it end not-run."""
    with bootstrap.optional_dns_server(mobility_lab) as state:
        yield state


@pytest.fixture
def mn(
    mobility_lab: Lab,
    lab_dns_server: DnsServerState,
    run_options: RunOptions,
    captures: Captures,
    tmp_path: Path,
) -> Iterator[MobileNodeUnderTest]:
    """The SUT MN on access link 1 with its first address formed, reference HAs on every
    AR (fresh for each test: no binding left from an earlier one), mn0 captured."""
    yield from _mobile_node(mobility_lab, run_options, captures, tmp_path)


@pytest.fixture
def multi_mn(
    mobility_lab: Lab,
    lab_dns_server: DnsServerState,
    run_options: RunOptions,
    captures: Captures,
    tmp_path: Path,
) -> Iterator[MobileNodeUnderTest]:
    """As `mn`, the SUT told of a second interface the lab adds later and of the flows to
    bind (harness/tester/multi_interface.py); not applicable unless it claims
    multi_interface."""

    def claimed(sut: SutAdapter) -> None:
        sut.features.require("multi_interface", "the SUT mobile node")

    yield from _mobile_node(
        mobility_lab,
        run_options,
        captures,
        tmp_path,
        ifaces=(mobility.MN_IFACE, multi_interface.SECOND_IFACE),
        flows=multi_interface.FLOWS,
        before_start=claimed,
    )


@pytest.fixture
def named_ha_mn(
    mobility_lab: Lab,
    lab_dns_server: DnsServerState,
    run_options: RunOptions,
    captures: Captures,
    tmp_path: Path,
) -> Iterator[MobileNodeUnderTest]:
    """As `mn`, the SUT configured with the FQDN of access link 2's home agent ({ha_names}
    of its profile); not applicable unless it claims dns_bootstrap and its start command
    takes {ha_names}."""

    def claimed(sut: SutAdapter) -> None:
        sut.features.require("dns_bootstrap", "the SUT mobile node")
        profile = getattr(sut, "profile", None)
        start = profile.commands.start if profile is not None else ""
        if "ha_names" not in template_fields(start, "[commands].start"):
            not_applicable(
                f"{sut.name}: its profile's [commands].start has no {{ha_names}}: it cannot be "
                "configured with a home agent name (RFC 5026 §5.1.1)"
            )

    yield from _mobile_node(
        mobility_lab,
        run_options,
        captures,
        tmp_path,
        before_start=claimed,
        ha_names=(mobility_lab.plan.link(CONFIGURED_HA_LINK).ha_fqdn,),
    )


@pytest.fixture
def split_ha_mn(
    mobility_lab: Lab,
    lab_dns_server: DnsServerState,
    run_options: RunOptions,
    captures: Captures,
    tmp_path: Path,
) -> Iterator[MobileNodeUnderTest]:
    """As `mn`, among reference home agents whose control and data plane functions are
    separate (draft §9: BUs to the router's address, tunnels to `plan.data_plane6`); not
    applicable unless the SUT claims cp_dp_split (OPEN-14)."""

    def claimed(sut: SutAdapter) -> None:
        sut.features.require("cp_dp_split", "the SUT mobile node")

    yield from _mobile_node(
        mobility_lab, run_options, captures, tmp_path, before_start=claimed, split_has=True
    )


def _mobile_node(
    lab: Lab,
    run_options: RunOptions,
    captures: Captures,
    tmp_path: Path,
    ifaces: tuple[str, ...] = (mobility.MN_IFACE,),
    flows: tuple[str, ...] = (),
    before_start: Callable[[SutAdapter], None] | None = None,
    ha_names: tuple[str, ...] = (),
    split_has: bool = False,
) -> Iterator[MobileNodeUnderTest]:
    if run_options.sut_role == "ha":
        not_applicable("the run tests the HA role (--sut-role ha)")
    w = mobility.World(lab, tmp_path)
    try:
        w.start_home_agents(split=split_has)
        link = captures.watch_node(lab, "mn", mobility.MN_IFACE)
        sut = w.start_mobile_node(run_options.sut, ifaces, flows, before_start, ha_names)
        home = w.mn_address(1)
        w.echo_server()
        yield MobileNodeUnderTest(w, sut, link, home)
    finally:
        # the logs of the MN and the reference HAs, evidence beside the captures if it fails
        for node in [*([w.mn] if w.mn is not None else []), *w.home_agents.values()]:
            captures.keep_if_failed(node.log_path)
        w.close()
        lab.reset()
        lab.exec_in("mn", ["ip", "-6", "addr", "flush", "dev", "mn0", "scope", "global"]).wait()
