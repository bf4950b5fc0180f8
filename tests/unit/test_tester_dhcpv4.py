"""The tester's DHCPv4 side (harness/tester/dhcpv4.py) without a lab: a missing kea-dhcp4 is
the environment's not-run, and the HNINF reader names what is malformed."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from harness.lab import plan
from harness.servers import _process, kea
from harness.tester import dhcpv4 as v4
from harness.verdicts import Verdict, decode
from harness.wire import dhcp


class _PlanOnly:
    """What visited_dhcp4 asks of a lab: its plan and its namespace names."""

    def __init__(self) -> None:
        self.plan = plan.build(3, ipv4_only=(3,))

    def ns(self, node: str) -> str:
        return f"nowhere-{node}"


def test_a_missing_kea_dhcp4_is_not_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str, package: str, explicit: str | None = None) -> str:
        raise _process.ServerUnavailable(
            f"{name} is not installed", hint=f"apt-get install {package}"
        )

    monkeypatch.setattr(kea, "find_binary", missing)
    lab: Any = _PlanOnly()
    with pytest.raises(pytest.skip.Exception) as skipped, v4.visited_server(lab, 3):
        pass
    verdict, reason, hint = decode(str(skipped.value))
    assert verdict is Verdict.NOT_RUN and "kea-dhcp4 is not installed" in reason
    assert hint == "apt-get install kea-dhcp4-server"


def test_visited_dhcp4_refuses_a_dual_stack_link() -> None:
    from harness.servers.inlab import visited_dhcp4

    lab: Any = _PlanOnly()
    with pytest.raises(ValueError, match="not IPv4-only"):
        visited_dhcp4(lab, 2)


def _sub(code: int, value: bytes, length: int | None = None) -> bytes:
    return struct.pack("!HH", code, len(value) if length is None else length) + value


def test_hninf_reader() -> None:
    good = struct.pack("!H", 2) + b"".join(
        bytes(o)
        for o in dhcp.home_info_suboptions(
            ha_addresses=["2001:db8:1::1"], ha_fqdns=["ha1.lab.example."]
        )
    )
    read = v4.HnInf.read(good)
    assert read.id_type == 2 and not read.problems and [c for c, _ in read.suboptions] == [72, 73]
    assert v4.HnInf.read(b"\x00").problems  # no room for the Id-type
    assert v4.HnInf.read(b"\x00\x02\x00\x48").problems  # a truncated header
    assert v4.HnInf.read(b"\x00\x02" + _sub(72, b"\x00" * 16, 20)).problems  # runs past the end
    assert v4.HnInf.read(b"\x00\x02" + _sub(72, b"\x00" * 4)).problems  # HAA not 16 octets
    assert v4.HnInf.read(b"\x00\x02" + _sub(70, b"")).problems  # a container is no sub-option
