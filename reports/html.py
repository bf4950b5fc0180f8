"""report.html: one self-contained file (inline CSS, no scripts, no external assets).

Everything that comes from tests or the catalog goes through html.escape.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any
from urllib.parse import quote

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em}
table{border-collapse:collapse;width:100%}
th,td{border:1px solid #ddd;padding:.3em .5em;vertical-align:top;text-align:left}
th{background:#f4f4f4}
.v{display:inline-block;padding:.05em .5em;border-radius:.6em;font-weight:600;white-space:nowrap}
.pass{background:#d4f4dd;color:#14532d}.fail{background:#fcd6d6;color:#7f1d1d}
.inconclusive{background:#fdecc8;color:#78350f}.not-run{background:#e5e7eb;color:#374151}
.not-applicable{background:#dbeafe;color:#1e3a8a}.untested{background:#f3f4f6;color:#6b7280}
.cards span{margin-right:1em}
.banner{padding:.6em 1em;background:#fcd6d6;border:1px solid #f87171;margin:1em 0}
pre{white-space:pre-wrap;background:#f8f8f8;padding:.5em;max-height:40em;overflow:auto}
details summary{cursor:pointer}
.muted{color:#666}
"""


def _badge(verdict: str) -> str:
    return f'<span class="v {escape(verdict)}">{escape(verdict)}</span>'


def _counts(counts: Mapping[str, int]) -> str:
    return "".join(f"<span>{_badge(k)} {int(n)}</span>" for k, n in counts.items())


def _test_details(test: Mapping[str, Any]) -> str:
    parts = [f"<p>{_badge(test['verdict'])} {escape(test.get('reason') or '')}</p>"]
    if test.get("hint"):
        parts.append(f"<p>hint: {escape(test['hint'])}</p>")
    if test.get("longrepr"):
        parts.append(f"<pre>{escape(test['longrepr'])}</pre>")
    for path in test.get("attachments") or ():
        href = escape(quote(path))
        parts.append(f'<p>attachment: <a href="{href}">{escape(path)}</a></p>')
    parts.append(f'<p class="muted">duration {float(test.get("duration") or 0):.3f} s</p>')
    return (
        f"<details><summary>{escape(test['nodeid'])} {_badge(test['verdict'])}</summary>"
        f"{''.join(parts)}</details>"
    )


def _run_table(run: Mapping[str, Any]) -> str:
    sut = run.get("sut") or {}
    rows = [
        ("started", run.get("started")),
        ("finished", run.get("finished")),
        ("SUT", f"{sut.get('target')} (role {sut.get('role') or 'ha+mn'})"),
        ("catalog", run.get("catalog")),
        ("command", " ".join(run.get("argv") or ())),
        ("python / pytest", f"{run.get('python')} / {run.get('pytest')}"),
        ("exit status", run.get("exit_status")),
    ]
    return (
        "<table>"
        + "".join(
            f"<tr><th>{escape(k)}</th><td>{escape(str(v if v is not None else '-'))}</td></tr>"
            for k, v in rows
        )
        + "</table>"
    )


def render(doc: Mapping[str, Any]) -> str:
    run, summary = doc["run"], doc["summary"]
    tests_by_id = {t["nodeid"]: t for t in doc["tests"]}
    out = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        "<title>dmmconf conformance report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>dmmconf conformance report</h1>",
    ]
    if run.get("interrupted"):
        out.append('<div class="banner">This run was interrupted: the results are partial.</div>')
    elif not run.get("complete"):
        out.append(
            '<div class="banner">This run has not finished (or was killed): '
            "the results are partial.</div>"
        )
    gate = run.get("gate") or {}
    if gate.get("message"):
        out.append(f"<p><strong>{escape(gate['message'])}</strong></p>")
    if gate.get("no_verdict"):
        out.append(f"<pre class=no-verdict>{escape(gate['no_verdict'])}</pre>")
    out.append(_run_table(run))
    out.append("<h2>Summary</h2>")
    out.append(f'<p class="cards">Tests: {_counts(summary["tests"])}</p>')
    out.append(f'<p class="cards">Clauses: {_counts(summary["clauses"])}</p>')
    uncovered = summary.get("uncovered_mandatory") or []
    out.append(f"<p>MUST clauses with no test: {len(uncovered)}</p>")

    out.append(
        "<h2>Clauses</h2><table><tr><th>ID</th><th>Level</th><th>Roles</th>"
        "<th>Section</th><th>Verdict</th><th>Requirement and tests</th></tr>"
    )
    for c in doc["clauses"]:
        cid = escape(c["id"])
        ident = f'<a href="{escape(c["url"])}">{cid}</a>' if c.get("url") else cid
        tests = "".join(_test_details(tests_by_id[n]) for n in c["tests"] if n in tests_by_id)
        note = f'<p class="muted">{escape(c["note"])}</p>' if c.get("note") else ""
        out.append(
            f'<tr id="{cid}"><td>{ident}</td><td>{escape(c["level"])}</td>'
            f"<td>{escape(', '.join(c['roles']))}</td>"
            f"<td>{escape(c['source'])} {escape(c['section'])}</td><td>{_badge(c['verdict'])}</td>"
            f"<td><p>{escape(c['text'])}</p>{note}{tests}</td></tr>"
        )
    out.append("</table>")

    out.append("<h2>Tests</h2><table><tr><th>Test</th><th>Clauses</th><th>Verdict</th></tr>")
    for t in doc["tests"]:
        links = ", ".join(f'<a href="#{escape(c)}">{escape(c)}</a>' for c in t["clauses"])
        out.append(
            f"<tr><td>{_test_details(t)}</td><td>{links or '-'}</td>"
            f"<td>{_badge(t['verdict'])}</td></tr>"
        )
    out.append("</table></body></html>\n")
    return "\n".join(out)
