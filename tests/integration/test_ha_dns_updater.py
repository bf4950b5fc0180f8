"""The reference HA's DNS update shell (harness/reference/ha_dns.py) against real sockets on
the loopback: a server that is not there and one that never answers each end an update with
a failure within its deadline, and the daemon's wake callback fires for each (never a hang)."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from harness.reference.ha_core import DnsRequest
from harness.reference.ha_dns import DnsResult, DnsUpdater
from harness.servers.bind import TsigKey

HOA = ipaddress.IPv6Address("2001:db8:1::10")
TIMEOUT = 0.3


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A UDP socket that receives and never answers."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    try:
        yield s.getsockname()[1]
    finally:
        s.close()


def closed_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def one_result(port: int) -> tuple[DnsResult, float]:
    woken = threading.Event()
    updater = DnsUpdater(
        "127.0.0.1", "lab.example", TsigKey.generate(), woken.set, timeout=TIMEOUT, port=port
    )
    try:
        began = time.monotonic()
        updater.submit(DnsRequest(7, "mn.lab.example.", HOA, False))
        assert woken.wait(TIMEOUT + 2.0), "the updater never woke the daemon"
        took = time.monotonic() - began
        (result,) = updater.results()
        return result, took
    finally:
        updater.close()


def test_a_server_that_never_answers_fails_within_the_deadline(silent_port: int) -> None:
    result, took = one_result(silent_port)
    assert (result.request_id, result.ok) == (7, False)
    assert TIMEOUT * 0.9 <= took < TIMEOUT + 1.0, f"took {took:.2f} s, deadline {TIMEOUT} s"


def test_a_server_that_is_not_there_fails_at_once() -> None:
    result, took = one_result(closed_port())
    assert not result.ok and took < TIMEOUT + 1.0, result
