"""junit.xml from the report document: JUnit that carries the verdict, not pytest's outcome.

  pass            -> a plain <testcase>
  fail            -> <failure message="reason"> with the evidence (a setup error too: the
                     verdict is the one of the report, harness failures are already not-run)
  not-applicable  -> <skipped type="not-applicable" message="not-applicable: reason">
  not-run         -> <skipped type="not-run" message="not-run: reason (hint: ...)">
  inconclusive    -> <skipped type="inconclusive" message="INCONCLUSIVE (nothing judged): ...">

Each test case has the properties clause (one per clause ID), level and section (one per
clause, in the same order) and verdict; attachments are named in <system-out> the way
Jenkins' junit-attachments plugin reads them ([[ATTACHMENT|path]]). Test names are stable:
classname is the test file's dotted path plus any class, name the function with its
parameters, the same under xdist and in a single process.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

_INVALID_XML = dict.fromkeys(c for c in range(0x20) if c not in (0x09, 0x0A, 0x0D))


def _clean(text: str) -> str:
    return text.translate(_INVALID_XML)


def names(nodeid: str) -> tuple[str, str]:
    """(classname, name) of a pytest node ID: ("suites.ha.test_bu.TestX", "test_y[p]")."""
    path, _, rest = nodeid.partition("::")
    module = path.removesuffix(".py").replace("/", ".")
    parts = rest.split("::") if rest else [path]
    return ".".join([module, *parts[:-1]]), parts[-1]


def skip_message(test: Mapping[str, Any]) -> tuple[str, str]:
    """(type, message) of the <skipped> element of a test that was not judged pass or fail."""
    verdict, reason = test["verdict"], test.get("reason") or ""
    if verdict == "inconclusive":
        return verdict, f"INCONCLUSIVE (nothing judged): {reason}"
    if verdict == "interpretation":
        ints = ", ".join(test.get("interpretations") or ())
        return verdict, f"INTERPRETATION (the suite's reading {ints}, not a requirement): {reason}"
    hint = f" (hint: {test['hint']})" if test.get("hint") else ""
    return verdict, f"{verdict}: {reason}{hint}"


def render(doc: Mapping[str, Any]) -> str:
    clauses = {c["id"]: c for c in doc["clauses"]}
    tests = doc["tests"]
    counts = doc["summary"]["tests"]
    skipped = sum(counts.get(v, 0) for v in ("not-applicable", "not-run", "inconclusive"))
    total_time = f"{sum(float(t.get('duration') or 0) for t in tests):.3f}"
    attrs = {
        "name": "dmmconf",
        "tests": str(len(tests)),
        "failures": str(counts.get("fail", 0)),
        "errors": "0",
        "skipped": str(skipped),
        "time": total_time,
    }
    root = ET.Element("testsuites", attrs)
    suite = ET.SubElement(
        root, "testsuite", {**attrs, "timestamp": doc["run"].get("started") or ""}
    )
    for test in tests:
        classname, name = names(test["nodeid"])
        case = ET.SubElement(
            suite,
            "testcase",
            {
                "classname": classname,
                "name": name,
                "file": test["nodeid"].partition("::")[0],
                "time": f"{float(test.get('duration') or 0):.3f}",
            },
        )
        props = ET.SubElement(case, "properties")
        for cid in test["clauses"]:
            ET.SubElement(props, "property", {"name": "clause", "value": cid})
        for cid in test["clauses"]:
            c = clauses.get(cid)
            level = c["level"] if c else "-"
            section = f"{c['source']} {c['section']}" if c else "-"
            ET.SubElement(props, "property", {"name": "level", "value": level})
            ET.SubElement(props, "property", {"name": "section", "value": section})
        for cid in test.get("evidence") or ():
            ET.SubElement(props, "property", {"name": "evidence", "value": cid})
        if test.get("about"):
            ET.SubElement(props, "property", {"name": "about", "value": test["about"]})
        ET.SubElement(props, "property", {"name": "verdict", "value": test["verdict"]})
        verdict = test["verdict"]
        if verdict == "fail":
            failure = ET.SubElement(
                case,
                "failure",
                {"type": "error" if test.get("error") else "fail",
                 "message": _clean(test.get("reason") or "failed")},
            )  # fmt: skip
            failure.text = _clean(test.get("longrepr") or test.get("reason") or "")
        elif verdict != "pass":
            kind, message = skip_message(test)
            ET.SubElement(case, "skipped", {"type": kind, "message": _clean(message)})
        if test.get("attachments"):
            out = ET.SubElement(case, "system-out")
            out.text = "".join(f"[[ATTACHMENT|{p}]]\n" for p in test["attachments"])
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, "unicode") + "\n"
