"""Problems found along a scenario, each under the clause it breaks and the side whose
behaviour it judges: checks of different clauses in one scenario are collected so that a
failure names every clause that went wrong, not only the first.

Role-true verdicts (issue 10): in a run against one SUT (`sut` "mn" or "ha") a problem of
the other side's behaviour is a problem of the bundled reference, the SUT's peer. It never
fails the SUT; it is kept as evidence and makes the test inconclusive (the SUT could not be
judged on a peer that misbehaved). With both sides the reference (`sut` None) every
problem is judged.
"""

from __future__ import annotations

from typing import Literal

from harness import verdicts

Side = Literal["mn", "ha"]


class Findings:
    """Problems found along a scenario, each under the clause it breaks."""

    def __init__(self, sut: Side | None = None) -> None:
        self.sut = sut
        self.items: list[str] = []  # problems of the SUT's behaviour (or of both references)
        self.peer: list[str] = []  # problems of the reference peer's behaviour: evidence

    def judges(self, about: Side | None) -> bool:
        """Does a check of `about`'s behaviour judge the SUT in this run?"""
        return about is None or self.sut is None or about == self.sut

    def add(self, clause: str, text: str, about: Side | None = None) -> None:
        """A problem of `about`'s behaviour (None: the SUT's, whichever side it plays)."""
        if self.judges(about):
            self.items.append(f"[{clause}] {text}")
        else:
            self.peer.append(f"[{clause}] the reference {str(about).upper()}: {text}")

    def check(self) -> None:
        __tracebackhide__ = True
        if self.items:
            raise AssertionError(
                f"{len(self.items)} problem(s):\n" + "\n".join(f"- {i}" for i in self.items)
            )
        if self.peer:
            verdicts.inconclusive(
                "the reference peer misbehaved, so the SUT could not be judged throughout: "
                + "; ".join(self.peer)
            )
