"""Golden and malformed packet vectors (vectors/*.json, written by vectors/generate.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class Vector:
    kind: str  # "golden" or "malformed"
    name: str
    description: str
    source: str
    raw: bytes
    expect: dict[str, Any]  # golden: expected fields; malformed: expected reaction


def _read(name: str) -> dict[str, Any]:
    text = resources.files("vectors").joinpath(name).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def golden() -> tuple[Vector, ...]:
    return tuple(
        Vector(
            "golden", v["name"], v["description"], v["source"], bytes.fromhex(v["hex"]), v["expect"]
        )
        for v in _read("golden.json")["packets"]
    )


@cache
def hand_options() -> tuple[dict[str, str], ...]:
    return tuple(_read("golden.json")["options"])


@cache
def malformed() -> tuple[Vector, ...]:
    return tuple(
        Vector(
            "malformed",
            v["name"],
            v["description"],
            v["source"],
            bytes.fromhex(v["hex"]),
            v["reaction"],
        )
        for v in _read("malformed.json")["packets"]
    )


def everything() -> tuple[Vector, ...]:
    return golden() + malformed()
