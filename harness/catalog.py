"""The requirement catalog: suites/requirements.toml, loaded and checked.

One entry per normative statement (MUST/SHOULD/MAY) or observable behaviour
of the draft, plus the requirements of the RFCs the draft makes mandatory.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

LEVELS = ("MUST", "MUST NOT", "SHOULD", "SHOULD NOT", "MAY", "BEHAVIOUR")
ROLES = ("HA", "MN", "CN", "CP", "DP", "ANY")


class CatalogError(ValueError):
    """The catalog file is malformed."""


@dataclass(frozen=True)
class Clause:
    id: str
    level: str
    roles: tuple[str, ...]
    source: str  # "draft" or "RFC 6275" ...
    section: str
    text: str
    note: str = ""

    @property
    def mandatory(self) -> bool:
        return self.level in ("MUST", "MUST NOT")


@dataclass(frozen=True)
class Catalog:
    clauses: dict[str, Clause] = field(default_factory=dict)

    def __contains__(self, clause_id: object) -> bool:
        return clause_id in self.clauses

    def __getitem__(self, clause_id: str) -> Clause:
        return self.clauses[clause_id]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.clauses.values())

    def __len__(self) -> int:
        return len(self.clauses)


def parse(text: str) -> Catalog:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"requirements.toml: {exc}") from None
    clauses: dict[str, Clause] = {}
    for n, entry in enumerate(data.get("clause", []), start=1):
        where = f"requirements.toml clause #{n}"
        missing = {"id", "level", "role", "source", "section", "text"} - entry.keys()
        if missing:
            raise CatalogError(f"{where}: missing {', '.join(sorted(missing))}")
        roles = entry["role"] if isinstance(entry["role"], list) else [entry["role"]]
        if entry["level"] not in LEVELS:
            raise CatalogError(f"{where} ({entry['id']}): level {entry['level']!r} not in {LEVELS}")
        bad = [r for r in roles if r not in ROLES]
        if bad:
            raise CatalogError(f"{where} ({entry['id']}): role {bad} not in {ROLES}")
        if entry["id"] in clauses:
            raise CatalogError(f"{where}: duplicate id {entry['id']}")
        clauses[entry["id"]] = Clause(
            id=entry["id"],
            level=entry["level"],
            roles=tuple(roles),
            source=entry["source"],
            section=str(entry["section"]),
            text=" ".join(entry["text"].split()),
            note=entry.get("note", ""),
        )
    return Catalog(clauses)


@cache
def load() -> Catalog:
    text = resources.files("suites").joinpath("requirements.toml").read_text(encoding="utf-8")
    return parse(text)
