"""Problems found along a scenario, each under the clause it breaks: checks of different
clauses in one scenario are collected so that a failure names every clause that went
wrong, not only the first."""

from __future__ import annotations


class Findings:
    """Problems found along a scenario, each under the clause it breaks."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, clause: str, text: str) -> None:
        self.items.append(f"[{clause}] {text}")

    def check(self) -> None:
        __tracebackhide__ = True
        if self.items:
            raise AssertionError(
                f"{len(self.items)} problem(s):\n" + "\n".join(f"- {i}" for i in self.items)
            )
