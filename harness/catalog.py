"""The requirement catalog: suites/requirements.toml, loaded and checked.

One entry per normative statement (MUST/SHOULD/MAY) or observable behaviour
of the draft, plus the requirements of the RFCs the draft makes mandatory.

Schema of one ``[[clause]]`` table:

``id``       (required) e.g. ``DMM-HA-4`` or ``RFC6275-MH-2``: upper-case words
             and digits joined by ``-``; unique in the file.
``level``    (required) one of :data:`LEVELS`.
``role``     (required) one of :data:`ROLES` or a non-empty list of them.
``source``   (required) ``"draft"`` (draft-sarikaya-mext-multicastdmm-01),
             ``"RFC <n>"`` or another Internet-Draft's name (``"draft-..."``).
``section``  (required) a string, e.g. ``"4.1"`` (a TOML float would lose "7.10").
``text``     (required) the quoted sentence(s); whitespace is normalised.
``note``     (optional) how a tester observes the clause, caveats.
``interpretations`` (optional) list of IDs of docs/interpretations.md
             (``INT-n`` decided, ``OPEN-n`` proposed) that the clause depends on.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

LEVELS = ("MUST", "MUST NOT", "SHOULD", "SHOULD NOT", "MAY", "BEHAVIOUR")
ROLES = ("HA", "MN", "CN", "CP", "DP", "AR", "DNS", "DHCP", "ANY")  # AR: a plain access router

_ID = re.compile(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$")
_SOURCE = re.compile(r"^(draft|RFC [1-9][0-9]*|draft-[a-z0-9-]+)$")
_INTERP = re.compile(r"^(INT|OPEN)-[1-9][0-9]*$")
_REQUIRED = ("id", "level", "role", "source", "section", "text")
_OPTIONAL = ("note", "interpretations")


class CatalogError(ValueError):
    """The catalog file is malformed."""


def normalise(text: str) -> str:
    """Whitespace runs (line breaks included) become one space; ends are stripped."""
    return " ".join(text.split())


@dataclass(frozen=True)
class Clause:
    id: str
    level: str
    roles: tuple[str, ...]
    source: str  # "draft" or "RFC 6275" ...
    section: str
    text: str
    note: str = ""
    interpretations: tuple[str, ...] = ()

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

    def __iter__(self) -> Iterator[Clause]:
        return iter(self.clauses.values())

    def __len__(self) -> int:
        return len(self.clauses)


def _string(entry: dict[str, Any], key: str, where: str) -> str:
    value = entry[key]
    if not isinstance(value, str) or not value.strip():
        raise CatalogError(f"{where}: {key} must be a non-empty string, not {value!r}")
    return value


def _clause(entry: Any, where: str) -> Clause:
    if not isinstance(entry, dict):
        raise CatalogError(f"{where}: a clause must be a table")
    if isinstance(entry.get("id"), str):
        where = f"{where} ({entry['id']})"
    missing = set(_REQUIRED) - entry.keys()
    if missing:
        raise CatalogError(f"{where}: missing {', '.join(sorted(missing))}")
    unknown = entry.keys() - set(_REQUIRED) - set(_OPTIONAL)
    if unknown:
        raise CatalogError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    clause_id = _string(entry, "id", where)
    if not _ID.match(clause_id):
        raise CatalogError(f"{where}: id {clause_id!r} is not like DMM-HA-4 or RFC6275-MH-2")
    if entry["level"] not in LEVELS:
        raise CatalogError(f"{where}: level {entry['level']!r} not in {LEVELS}")
    roles = entry["role"] if isinstance(entry["role"], list) else [entry["role"]]
    if not roles:
        raise CatalogError(f"{where}: role list is empty")
    bad = [r for r in roles if r not in ROLES]
    if bad:
        raise CatalogError(f"{where}: role {bad} not in {ROLES}")
    if len(set(roles)) != len(roles):
        raise CatalogError(f"{where}: role {roles} names a role twice")
    source = _string(entry, "source", where)
    if not _SOURCE.match(source):
        raise CatalogError(f"{where}: source {source!r} is not 'draft', 'RFC <n>' or 'draft-...'")
    section = entry["section"]
    if not isinstance(section, str) or not section.strip():
        raise CatalogError(f'{where}: section must be a string such as "4.1", not {section!r}')
    text = _string(entry, "text", where)
    note = entry.get("note", "")
    if not isinstance(note, str):
        raise CatalogError(f"{where}: note must be a string")
    interps = entry.get("interpretations", [])
    if not isinstance(interps, list) or not all(
        isinstance(i, str) and _INTERP.match(i) for i in interps
    ):
        raise CatalogError(f'{where}: interpretations must be a list like ["INT-5", "OPEN-2"]')
    return Clause(
        id=clause_id,
        level=entry["level"],
        roles=tuple(roles),
        source=source,
        section=section.strip(),
        text=normalise(text),
        note=normalise(note),
        interpretations=tuple(interps),
    )


def parse(text: str) -> Catalog:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"requirements.toml: {exc}") from None
    if data and "clause" not in data:  # (an empty file is an empty catalog)
        others = ", ".join(sorted(data)) or "nothing"
        raise CatalogError(
            f"requirements.toml: not a requirement catalog: no [[clause]] table (it holds {others})"
        )
    entries = data.get("clause", [])
    if not isinstance(entries, list):
        raise CatalogError("requirements.toml: 'clause' must be an array of tables ([[clause]])")
    clauses: dict[str, Clause] = {}
    for n, entry in enumerate(entries, start=1):
        clause = _clause(entry, f"requirements.toml clause #{n}")
        if clause.id in clauses:
            raise CatalogError(f"requirements.toml clause #{n}: duplicate id {clause.id}")
        clauses[clause.id] = clause
    return Catalog(clauses)


@cache
def load() -> Catalog:
    text = resources.files("suites").joinpath("requirements.toml").read_text(encoding="utf-8")
    return parse(text)
