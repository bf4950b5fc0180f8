"""pytest fixtures for the real servers in the lab: `lab_dns`, `lab_dhcp`.

Loaded by the root conftest's plugin list. Both run in the session's `lab` (one per
pytest-xdist worker, harness.lab.fixtures) and live as long as it does:

* `lab_dns`: named in the lab's `dns` namespace on plan.dns.host6/host4, the home
  domain with the plan's home agents (harness.servers.inlab.lab_named);
* `lab_dhcp`: Kea DHCPv6 and DHCPv4 in the `dhcp` namespace, one subnet per access
  link, and a DHCPv6 relay in every AR (harness.servers.inlab.LabDhcp): an MN on link
  i asks on its link and is told about ar i.

Without root (no lab), or without a server's binary, the tests that need them end
not-run with the hint (harness.verdicts.not_run), never with a traceback.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from harness.lab.topology import Lab
from harness.servers._process import ServerUnavailable, reap_dirs
from harness.servers.bind import NamedServer
from harness.servers.inlab import LabDhcp, lab_named
from harness.verdicts import not_run


@contextlib.contextmanager
def not_run_if_unavailable() -> Iterator[None]:
    """A ServerUnavailable in the block ends the test not-run, with the install hint."""
    try:
        yield
    except ServerUnavailable as exc:
        not_run(str(exc), hint=exc.hint)


@pytest.fixture(scope="session")
def lab_dns(lab: Lab) -> Iterator[NamedServer]:
    """named in the lab's dns namespace, serving the home domain (the plan's HAs)."""
    reap_dirs()
    with not_run_if_unavailable():
        server = lab_named(lab)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def lab_dhcp(lab: Lab) -> Iterator[LabDhcp]:
    """Kea DHCPv6/DHCPv4 in the lab's dhcp namespace, a DHCPv6 relay in every AR."""
    reap_dirs()
    servers = LabDhcp(lab)
    with not_run_if_unavailable():
        servers.start()
    try:
        yield servers
    finally:
        servers.stop()


__all__ = ["lab_dhcp", "lab_dns", "not_run_if_unavailable"]
