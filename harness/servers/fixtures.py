"""pytest fixtures for the real servers: `server_net`, `dns_server`, `dhcp6_server`, `dhcp4_server`.

Use with ``pytest_plugins = ["harness.servers.fixtures"]`` (in a test module, or in the
root conftest once the lab hosts the servers).

For now they bring their own network (harness.servers.testnet.ServerNet: a client
namespace, and a dns and a dhcp server namespace, ``dmms-<pid>-...``), one per pytest
process, so pytest-xdist workers never meet. The servers run once per test module.

Without root, or without a server's binary, the tests that need them end not-run with
the hint (harness.verdicts.not_run), never with a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from harness.lab import plan as lab_plan
from harness.servers.bind import NamedServer
from harness.servers.kea import KeaDhcp4Server, KeaDhcp6Server
from harness.servers.testnet import ServerNet, not_run_if_unavailable, reap_stale
from harness.verdicts import not_run

ROOT_HINT = "run the tests as root (network namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN)"


def _require_root() -> None:
    if os.geteuid() != 0:
        not_run("real servers need network namespaces, which need root", hint=ROOT_HINT)


@pytest.fixture(scope="session")
def server_net() -> Iterator[ServerNet]:
    """Client namespace + dns and dhcp server namespaces for this pytest process."""
    _require_root()
    reap_stale()
    plan = lab_plan.build()
    with ServerNet([plan.dns, plan.dhcp]) as net:
        yield net


@pytest.fixture(scope="module")
def dns_server(server_net: ServerNet) -> Iterator[NamedServer]:
    """named for plan.DOMAIN on the dns link's host addresses (IPv6 first)."""
    side = server_net.side("dns")
    with not_run_if_unavailable():
        server = NamedServer(side.netns, [side.server6, side.server4]).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def dhcp6_server(server_net: ServerNet) -> Iterator[KeaDhcp6Server]:
    """kea-dhcp6 on the dhcp link: access link 1's home network (RFC 6610, Kea-encoded)."""
    side = server_net.side("dhcp")
    with not_run_if_unavailable():
        server = KeaDhcp6Server(side.netns, side.server_if, side.link.prefix6)
        server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def dhcp4_server(server_net: ServerNet) -> Iterator[KeaDhcp4Server]:
    """kea-dhcp4 on the dhcp link: access link 1's home network in OPTION_DSMIP6_HNINF."""
    side = server_net.side("dhcp")
    with not_run_if_unavailable():
        server = KeaDhcp4Server(side.netns, side.server_if, side.link.subnet4)
        server.start()
    try:
        yield server
    finally:
        server.stop()


__all__ = ["dhcp4_server", "dhcp6_server", "dns_server", "server_net"]
