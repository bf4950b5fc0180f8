"""Sub-commands of `dmmconf`. Each module has register(subparsers) setting `func`."""

from types import ModuleType

COMMANDS: list[ModuleType] = []
