"""Sub-commands of `dmmconf`. Each module has register(subparsers), which sets `func`."""

from __future__ import annotations

import importlib
from types import ModuleType

# Order is the order of `dmmconf --help`.
_NAMES = (
    "run",
    "report",
    "sut",
    "clauses",
    "decode",
    "vectors",
    "lab",
    "ha",
    "mn",
    "bench",
    "doctor",
)


def all_commands() -> list[ModuleType]:
    modules = []
    for name in _NAMES:
        try:
            modules.append(importlib.import_module(f"harness.commands.{name}"))
        except ModuleNotFoundError as exc:
            if exc.name != f"harness.commands.{name}":
                raise
    return modules
