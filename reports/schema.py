"""The schema of report.json ("dmmconf-report/1"), as a JSON Schema (a subset: type, enum,
properties, required, additionalProperties, items), and a small validator for that subset.

docs/report-schema.md describes every field; tests keep the two and real reports equal.
The `jsonschema` package, where installed, accepts SCHEMA as it is (draft 2020-12).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

VERDICTS = ["pass", "fail", "not-applicable", "inconclusive", "not-run", "interpretation"]
CLAUSE_VERDICTS = [
    "fail", "interpretation", "inconclusive", "not-run", "not-applicable", "pass", "untested"
]  # fmt: skip
LEVELS = ["MUST", "MUST NOT", "SHOULD", "SHOULD NOT", "MAY", "BEHAVIOUR"]

_STR = {"type": "string"}
_OSTR = {"type": ["string", "null"]}
_STRS = {"type": "array", "items": _STR}
_NUM = {"type": "number"}
_ONUM = {"type": ["number", "null"]}
_BOOL = {"type": "boolean"}


def _obj(props: dict[str, Any], optional: tuple[str, ...] = (), closed: bool = True) -> dict:
    return {
        "type": "object",
        "properties": props,
        "required": [k for k in props if k not in optional],
        "additionalProperties": not closed,
    }


def _counts(keys: list[str]) -> dict[str, Any]:
    return _obj({k: {"type": "integer"} for k in keys})


GATE = _obj(
    {
        "strict": _BOOL,
        "strict_interpretations": _BOOL,
        "blocking": _STRS,
        "tolerated": _STRS,
        "pytest_exit_status": {"type": "integer"},
        "message": _OSTR,
        "no_verdict": _OSTR,
    }
)

RUN = _obj(
    {
        "tool": {"enum": ["dmmconf"]},
        "version": _STR,
        "started": _STR,
        "finished": _OSTR,
        "duration": _ONUM,
        "argv": _STRS,
        "pytest_args": _STRS,
        "cwd": _STR,
        "sut": _obj(
            {"role": {"enum": ["ha", "mn", None]}, "target": _STR, "name": _STR},
            optional=("name",),
        ),
        "catalog": _STR,
        "python": _STR,
        "pytest": _STR,
        "platform": _STR,
        "xdist_workers": {"type": ["integer", "string", "null"]},
        "complete": _BOOL,
        "interrupted": _BOOL,
        "stop_reason": _OSTR,
        "exit_status": {"type": ["integer", "null"]},
        "collection_errors": {"type": "integer"},
        "gate": {"anyOf": [{"type": "null"}, GATE]},
    },
    optional=("collection_errors",),  # set when the run finishes
)

TEST = _obj(
    {
        "nodeid": _STR,
        "clauses": _STRS,
        "evidence": _STRS,
        "about": _OSTR,
        "verdict": {"enum": VERDICTS},
        "reason": _STR,
        "interpretations": _STRS,
        "hint": _OSTR,
        "error": _BOOL,
        "xfail": _BOOL,
        "duration": _NUM,
        "start": _ONUM,
        "stop": _ONUM,
        "longrepr": _OSTR,
        "attachments": _STRS,
    }
)

CLAUSE = _obj(
    {
        "id": _STR,
        "level": {"enum": LEVELS},
        "mandatory": _BOOL,
        "roles": _STRS,
        "source": _STR,
        "document": _STR,
        "section": _STR,
        "section_title": _OSTR,
        "url": _OSTR,
        "features": _STRS,
        "text": _STR,
        "note": _STR,
        "interpretations": _STRS,
        "verdict": {"enum": CLAUSE_VERDICTS},
        "about": _OSTR,
        "tests": _STRS,
        "evidence": _STRS,
    }
)

SUMMARY = _obj(
    {
        "tests": _counts(VERDICTS),
        "clauses": _counts(CLAUSE_VERDICTS),
        "uncovered_mandatory": _STRS,
    }
)

_OBJ = {"type": "object"}
PCTR = _obj(
    {
        "identification": _obj(
            {
                "report": _STR,
                "test_laboratory": _OSTR,
                "test_tool": _STR,
                "protocol": _STR,
                "test_suite": _STR,
                "iut": _OSTR,
                "iut_role": _STR,
            }
        ),
        "iut_status": _obj(
            {
                "status": {"enum": ["conformant", "non-conformant", "not established"]},
                "reason": _STR,
            }
        ),  # fmt: skip
        "static": _obj(
            {
                "pics": {
                    "type": "array",
                    "items": _obj(
                        {
                            "role": _STR,
                            "implementation": _STR,
                            "features": {
                                "type": "array",
                                "items": _obj(
                                    {
                                        "feature": _STR,
                                        "description": _STR,
                                        "claimed": {"type": ["boolean", "null"]},
                                    }
                                ),
                            },
                        }
                    ),
                },
                "pixit": {
                    "type": "array",
                    "items": _obj(
                        {"role": _STR, "profile": _STR, "values": {"type": ["object", "null"]}}
                    ),
                },
            }
        ),
        "dynamic": _obj({"tests": _OBJ, "clauses": _OBJ, "clauses_by_level": _OBJ}),
        "campaign": _obj(
            {
                "started": _OSTR,
                "finished": _OSTR,
                "duration": _ONUM,
                "command": _STR,
                "tests_run": {"type": "integer"},
                "exit_status": {"type": ["integer", "null"]},
                "complete": {"type": ["boolean", "null"]},
            }
        ),
        "observations": _STRS,
    }
)

BASELINE = _obj(
    {
        "file": _STR,
        "started": _OSTR,
        "classes": _OBJ,
        "counts": _OBJ,
        "regressions": _STRS,
    }
)

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "dmmconf-report/1",
    **_obj(
        {
            "schema": {"enum": ["dmmconf-report/1"]},
            "run": RUN,
            "summary": SUMMARY,
            "tests": {"type": "array", "items": TEST},
            "clauses": {"type": "array", "items": CLAUSE},
            "pctr": PCTR,
            "baseline": BASELINE,
        },
        optional=("baseline",),
    ),
}

_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


def _is(value: Any, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, _TYPES[kind])


def errors(value: Any, schema: dict[str, Any], path: str = "$") -> Iterator[str]:
    """Every way `value` breaks `schema` (the subset above), as "path: problem"."""
    if "anyOf" in schema:
        if all(any(True for _ in errors(value, s, path)) for s in schema["anyOf"]):
            yield f"{path}: matches none of the alternatives"
        return
    if "enum" in schema and value not in schema["enum"]:
        yield f"{path}: {value!r} not one of {schema['enum']}"
        return
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(_is(value, k) for k in kinds):
            yield f"{path}: {type(value).__name__} where {'/'.join(kinds)} is wanted"
            return
    if isinstance(value, dict) and "properties" in schema:
        for key in schema.get("required", ()):
            if key not in value:
                yield f"{path}: missing {key!r}"
        for key, sub in value.items():
            if key in schema["properties"]:
                yield from errors(sub, schema["properties"][key], f"{path}.{key}")
            elif schema.get("additionalProperties") is False:
                yield f"{path}: unexpected {key!r}"
    if isinstance(value, list) and "items" in schema:
        for n, item in enumerate(value):
            yield from errors(item, schema["items"], f"{path}[{n}]")


def validate(doc: Any) -> list[str]:
    """The problems of a report.json document; [] when it follows the schema."""
    return list(errors(doc, SCHEMA))


def field_paths(schema: dict[str, Any] = SCHEMA, prefix: str = "") -> Iterator[str]:
    """Every field of the schema as a dotted path ("run.gate.no_verdict", "tests[].verdict")."""
    for alt in schema.get("anyOf", ()):
        yield from field_paths(alt, prefix)
    for key, sub in schema.get("properties", {}).items():
        path = f"{prefix}{key}"
        yield path
        if "items" in sub:
            yield from field_paths(sub["items"], f"{path}[].")
        else:
            yield from field_paths(sub, f"{path}.")
