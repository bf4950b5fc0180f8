"""A datagram the lab must deliver (harness/tester/roaming.py: delivered): missing while
the lab's own multicast routing is broken, the test is inconclusive (the lab's failure,
never the SUT's); missing otherwise, it fails and shows what the lab's routers held."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from harness import verdicts
from harness.apps.control import AppExpectationFailed
from harness.tester import roaming


class _Rx:
    def wait_for(self, *_args: Any) -> Any:
        raise AppExpectationFailed("expected 1 x a datagram, got 0")


@dataclass
class _Lab:
    trouble: str | None

    def mcast_trouble(self) -> str | None:
        return self.trouble

    def mcast_state(self) -> dict[str, Any]:
        return {
            "ar1": {
                "listeners": [
                    {"ifname": "acc0", "group": "ff3e::1", "sources": {"2001:db8::1": 3}}
                ],
                "joined_upstream": ["2001:db8::1,ff3e::1"],
                "mfc": [],
            }
        }


@dataclass
class _Mobility:
    lab: _Lab


def _delivered(trouble: str | None) -> None:
    m = _Mobility(_Lab(trouble))
    roaming.delivered(m, _Rx(), lambda e: True, "the first datagram")  # type: ignore[arg-type]


def test_a_broken_lab_makes_it_inconclusive() -> None:
    with pytest.raises(pytest.skip.Exception) as exc:
        _delivered("the MLD proxy exited with status -9: no log")
    verdict, reason, _ = verdicts.decode(str(exc.value))
    assert verdict is verdicts.Verdict.INCONCLUSIVE
    assert "exited" in reason and "the first datagram" in reason


def test_a_working_lab_leaves_the_failure_with_the_routers_state() -> None:
    with pytest.raises(AppExpectationFailed) as exc:
        _delivered(None)
    text = str(exc.value)
    assert (
        "got 0" in text and "ar1: listeners acc0 ff3e::1 from 2001:db8::1 | joined upstream" in text
    )
