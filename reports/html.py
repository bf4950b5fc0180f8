"""report.html: one self-contained file (inline CSS and a small inline script, no external
assets; works offline, and without scripts everything is shown).

  the PCTR (identification, IUT conformance status, static conformance = PICS and PIXIT,
  dynamic conformance, test campaign, observations), then the clauses grouped by document and
  section (titles from the documents' tables of contents) with counts per section, filters
  (verdict, level, role, feature), each clause opening to its text, its tests, their reasons,
  pcap links and Hypothesis reproductions; a failure's evidence (longrepr) is shown once in
  "Evidence" with the number of tests that share it.

The filters can be set from the address: report.html#verdict=fail&open=DMM-HA-4 (also what
the browser test uses). Everything from tests or the catalog goes through html.escape.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from html import escape
from typing import Any
from urllib.parse import quote

from reports import sections

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.5em}h2{font-size:1.25em;margin-top:1.6em}h3{font-size:1.05em;margin:1em 0 .3em}
table{border-collapse:collapse}
th,td{border:1px solid #ddd;padding:.25em .5em;vertical-align:top;text-align:left}
th{background:#f4f4f4}
.v{display:inline-block;padding:.05em .5em;border-radius:.6em;font-weight:600;white-space:nowrap}
.pass{background:#d4f4dd;color:#14532d}.fail{background:#fcd6d6;color:#7f1d1d}
.inconclusive{background:#fdecc8;color:#78350f}.interpretation{background:#ede9fe;color:#4c1d95}.not-run{background:#e5e7eb;color:#374151}
.not-applicable{background:#dbeafe;color:#1e3a8a}.untested{background:#f3f4f6;color:#6b7280}
.cards span{margin-right:1em}
.banner{padding:.6em 1em;background:#fcd6d6;border:1px solid #f87171;margin:1em 0}
pre{white-space:pre-wrap;background:#f8f8f8;padding:.5em;max-height:40em;overflow:auto}
details summary{cursor:pointer}
details.clause{border-bottom:1px solid #eee;padding:.2em 0}
details.clause>div{margin:.3em 0 .8em 1.5em}
.test{border-left:3px solid #ddd;padding-left:.6em;margin:.5em 0}
.test.peer{border-left-style:dashed;opacity:.8}.about{font-size:.85em;color:#555}
.muted{color:#666}.filters{position:sticky;top:0;background:#fff;padding:.4em 0;
border-bottom:1px solid #ddd}.filters label{margin-right:1em}
.status-conformant{color:#14532d}.status-non-conformant{color:#7f1d1d}
"""

# Filters: every clause element carries data-verdict, data-level, data-roles, data-features;
# apply() hides what does not match and the sections left empty. The address can set them.
_JS = """
(function(){
var F=['verdict','level','role','feature'];
function sel(n){return document.getElementById('f-'+n);}
function apply(){
  var want={};F.forEach(function(n){want[n]=sel(n).value;});
  var shown=0;
  document.querySelectorAll('details.clause').forEach(function(c){
    var ok=(!want.verdict||c.dataset.verdict===want.verdict)&&
      (!want.level||c.dataset.level===want.level)&&
      (!want.role||(' '+c.dataset.roles+' ').indexOf(' '+want.role+' ')>=0)&&
      (!want.feature||(' '+c.dataset.features+' ').indexOf(' '+want.feature+' ')>=0);
    c.hidden=!ok; if(ok){shown++;}
  });
  document.querySelectorAll('section.group').forEach(function(s){
    s.hidden=!s.querySelector('details.clause:not([hidden])');
  });
  document.querySelectorAll('section.doc').forEach(function(s){
    s.hidden=!s.querySelector('section.group:not([hidden])');
  });
  document.getElementById('shown').textContent=shown;
  document.body.dataset.filtered=F.map(function(n){return want[n];}).join('|');
}
F.forEach(function(n){sel(n).addEventListener('change',apply);});
var h=new URLSearchParams(location.hash.slice(1));
apply();
F.forEach(function(n){if(h.get(n)){sel(n).value=h.get(n);
  sel(n).dispatchEvent(new Event('change'));}});
var o=h.get('open');
if(o){var c=document.getElementById(o);
  if(c&&c.tagName==='DETAILS'){c.querySelector('summary').click();
    if(h.get('scroll')!=='no'){c.scrollIntoView();}}}
document.body.dataset.ready='1';
})();
"""


def _badge(verdict: str) -> str:
    return f'<span class="v {escape(verdict)}">{escape(verdict)}</span>'


def _counts(counts: Mapping[str, int]) -> str:
    return "".join(f"<span>{_badge(k)} {int(n)}</span>" for k, n in counts.items() if n)


def _table(rows: list[tuple[str, Any]]) -> str:
    cells = "".join(
        f"<tr><th>{escape(k)}</th><td>{escape(str(v if v is not None else '-'))}</td></tr>"
        for k, v in rows
    )
    return f"<table>{cells}</table>"


def hypothesis_reproduction(longrepr: str) -> str | None:
    """The failing example ("Falsifying example:", newer Hypothesis "Failing test case:") and
    @reproduce_failure lines of a Hypothesis failure."""
    lines = longrepr.splitlines()
    out: list[str] = []
    for n, line in enumerate(lines):
        text = line.lstrip("E ").rstrip()
        if text.startswith(("Falsifying example", "Failing test case")):
            block = [text]
            for more in lines[n + 1 :]:
                more = more.lstrip("E").rstrip()
                if not more.strip() or more.lstrip().startswith(("Traceback", "Explanation")):
                    break
                block.append(more)
            out.extend(block)
        elif "reproduce_failure(" in text or "--hypothesis-seed" in text:
            out.append(text.strip())
    return "\n".join(dict.fromkeys(out)) or None


def evidence_key(longrepr: str) -> str:
    """What makes two failures the same: the error lines ("E ...") and where it was raised,
    not the parameters pytest prints above the source."""
    lines = [ln for ln in longrepr.strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("E ")]
    return "\n".join([*errors, lines[-1]]) if lines else ""


class _Evidence:
    """Distinct failures, each shown once (the first test's longrepr) with the tests that
    share it."""

    def __init__(self, tests: list[Mapping[str, Any]]) -> None:
        self.ids: dict[str, int] = {}
        self.first: dict[int, str] = {}
        self.users: dict[int, list[str]] = {}
        for t in tests:
            text = t.get("longrepr")
            if text:
                n = self.ids.setdefault(evidence_key(text), len(self.ids) + 1)
                self.first.setdefault(n, text)
                self.users.setdefault(n, []).append(t["nodeid"])

    def link(self, test: Mapping[str, Any]) -> str:
        text = test.get("longrepr")
        if not text:
            return ""
        n = self.ids[evidence_key(text)]
        share = len(self.users[n])
        others = f" (the same for {share} tests)" if share > 1 else ""
        return f'<p>evidence: <a href="#ev-{n}">#{n}</a>{others}</p>'

    def render(self) -> str:
        if not self.ids:
            return ""
        out = ["<h2 id=evidence>Evidence</h2>"]
        for n, text in self.first.items():
            users = self.users[n]
            names = "".join(f"<li>{escape(u)}</li>" for u in users)
            out.append(
                f'<details class=evidence id="ev-{n}"><summary>#{n}: {len(users)} test(s)'
                f"</summary><ul>{names}</ul><pre>{escape(text)}</pre></details>"
            )
        return "".join(out)


def _test(test: Mapping[str, Any], evidence: _Evidence, peer: bool = False) -> str:
    about = test.get("about")
    who = f' <span class="about">about: {escape(about)}</span>' if about else ""
    parts = [
        f'<div class="test{" peer" if peer else ""}" data-verdict="{escape(test["verdict"])}">'
        f"<p>{escape(test['nodeid'])} {_badge(test['verdict'])}{who} "
        f'<span class="muted">{float(test.get("duration") or 0):.2f} s</span></p>'
    ]
    if test.get("verdict") == "interpretation" and test.get("interpretations"):
        ints = ", ".join(test["interpretations"])
        parts.append(
            f"<p class=interp>a failure by the suite's interpretation {escape(ints)} "
            "(docs/interpretations.md), not by a requirement</p>"
        )
    if test.get("reason"):
        parts.append(f"<p class=reason>{escape(test['reason'])}</p>")
    if test.get("hint"):
        parts.append(f"<p>hint: {escape(test['hint'])}</p>")
    for path in test.get("attachments") or ():
        href = escape(quote(path))
        parts.append(f'<p>pcap: <a class=pcap href="{href}">{escape(path)}</a></p>')
    repro = hypothesis_reproduction(test.get("longrepr") or "")
    if repro:
        parts.append(f"<p>Hypothesis reproduction:</p><pre class=repro>{escape(repro)}</pre>")
    parts.append(evidence.link(test))
    parts.append("</div>")
    return "".join(parts)


def _clause(
    c: Mapping[str, Any],
    tests: list[Mapping[str, Any]],
    evidence: _Evidence,
    classes: Mapping[str, str] | None = None,
    peer_tests: list[Mapping[str, Any]] | None = None,
) -> str:
    cid = escape(c["id"])
    cls = f" <em class=class>{escape(classes[c['id']])}</em>" if classes else ""
    roles = " ".join(c["roles"])
    features = " ".join(c.get("features") or ()) or "core"
    text = c["text"]
    short = text if len(text) <= 110 else text[:107] + "..."
    link = f'<p><a href="{escape(c["url"])}">read the section</a></p>' if c.get("url") else ""
    note = f'<p class="muted">{escape(c["note"])}</p>' if c.get("note") else ""
    body = "".join(_test(t, evidence) for t in tests) or '<p class="muted">no test yet</p>'
    if c.get("about"):
        body = f"<p class=about>verdict about: {escape(c['about'])}</p>" + body
    if c.get("interpretations"):
        ints = ", ".join(c["interpretations"])
        note += f'<p class="muted">depends on the interpretations {escape(ints)}</p>'
    if peer_tests:
        body += (
            "<p class=peer-head>evidence about the reference peer (not a verdict of this "
            "clause: the SUT does not play its role)</p>"
            + "".join(_test(t, evidence, peer=True) for t in peer_tests)
        )
    return (
        f'<details class=clause id="{cid}" data-verdict="{escape(c["verdict"])}" '
        f'data-level="{escape(c["level"])}" data-roles="{escape(roles)}" '
        f'data-features="{escape(features)}">'
        f"<summary><strong>{cid}</strong> {_badge(c['verdict'])}{cls} {escape(c['level'])} "
        f'<span class="muted">{escape(roles)}</span> {escape(short)}</summary>'
        f"<div><p class=text>{escape(text)}</p>{note}{link}"
        f'<p class="muted">features: {escape(features)}</p>{body}</div></details>'
    )


def _select(name: str, label: str, values: list[str]) -> str:
    opts = "".join(f'<option value="{escape(v)}">{escape(v)}</option>' for v in values)
    return (
        f'<label>{escape(label)} <select id="f-{name}"><option value="">all</option>'
        f"{opts}</select></label>"
    )


def _filters(clauses: list[Mapping[str, Any]]) -> str:
    verdicts = [
        "fail", "interpretation", "inconclusive", "not-run", "not-applicable", "pass", "untested"
    ]  # fmt: skip
    levels = list(dict.fromkeys(c["level"] for c in clauses))
    roles = sorted({r for c in clauses for r in c["roles"]})
    features = sorted({f for c in clauses for f in (c.get("features") or ())}) + ["core"]
    return (
        "<div class=filters>"
        + _select("verdict", "verdict", verdicts)
        + _select("level", "level", levels)
        + _select("role", "role", roles)
        + _select("feature", "feature", features)
        + f"<span class=muted><span id=shown>{len(clauses)}</span> of {len(clauses)} clauses"
        "</span></div>"
    )


def _grouped(doc: Mapping[str, Any], evidence: _Evidence) -> str:
    tests_by_id = {t["nodeid"]: t for t in doc["tests"]}
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for c in doc["clauses"]:
        groups.setdefault((c["source"], c["section"]), []).append(c)
    by_doc: dict[str, list[tuple[str, str]]] = {}
    for key in groups:
        by_doc.setdefault(key[0], []).append(key)
    out = []
    for source in sorted(by_doc, key=sections.document_key):
        name = sections.document(source)
        out.append(f'<section class=doc><h2 id="doc-{escape(quote(name))}">{escape(name)}</h2>')
        for key in sorted(by_doc[source], key=lambda k: sections.sort_key(k[1])):
            clauses = groups[key]
            counts: dict[str, int] = {}
            for c in clauses:
                counts[c["verdict"]] = counts.get(c["verdict"], 0) + 1
            out.append(
                f"<section class=group><h3>§{escape(sections.label(*key))} "
                f'<span class="cards">{_counts(counts)}</span></h3>'
            )
            for c in clauses:
                mine = [tests_by_id[n] for n in c["tests"] if n in tests_by_id]
                peer = [tests_by_id[n] for n in c.get("evidence") or () if n in tests_by_id]
                classes = (doc.get("baseline") or {}).get("classes")
                out.append(_clause(c, mine, evidence, classes, peer))
            out.append("</section>")
        out.append("</section>")
    return "".join(out)


def _pctr(p: Mapping[str, Any]) -> str:
    ident = p["identification"]
    status = p["iut_status"]
    out = [
        "<h2 id=pctr>Protocol Conformance Test Report</h2>",
        "<h3>1 Identification summary</h3>",
        _table([(k.replace("_", " "), v) for k, v in ident.items()]),
        "<h3>2 IUT conformance status</h3>",
        f'<p class="status-{escape(status["status"])}"><strong>{escape(status["status"])}'
        f"</strong>: {escape(status['reason'])}</p>",
        "<h3>3 Static conformance summary (PICS: the features the profile claims)</h3>",
    ]
    for pics in p["static"]["pics"]:
        rows = "".join(
            f"<tr><td>{escape(f['feature'])}</td><td>"
            f"{'yes' if f['claimed'] else ('unknown' if f['claimed'] is None else 'no')}"
            f"</td><td>{escape(f['description'])}</td></tr>"
            for f in pics["features"]
        )
        claims = ", ".join(f["feature"] for f in pics["features"] if f["claimed"]) or "none"
        out.append(
            f"<details><summary>{escape(pics['role'].upper())}: "
            f"{escape(str(pics['implementation']))}: claims {escape(claims)}</summary>"
            f"<table><tr><th>feature</th><th>claimed</th><th>meaning</th></tr>{rows}</table>"
            "</details>"
        )
    out.append("<details><summary>PIXIT: the SUT profile(s)</summary>")
    for pixit in p["static"]["pixit"]:
        out.append(
            f"<p>{escape(pixit['role'].upper())}: {escape(pixit['profile'])}</p>"
            f"<pre>{escape(json.dumps(pixit['values'], indent=2, ensure_ascii=False))}</pre>"
        )
    out.append("</details>")
    dyn = p["dynamic"]
    out.append("<h3>4 Dynamic conformance summary</h3>")
    out.append(f'<p class="cards">Tests: {_counts(dyn["tests"])}</p>')
    out.append(f'<p class="cards">Clauses: {_counts(dyn["clauses"])}</p>')
    rows = "".join(
        f"<tr><th>{escape(lv)}</th><td class=cards>{_counts(c)}</td></tr>"
        for lv, c in dyn["clauses_by_level"].items()
    )
    out.append(f"<table>{rows}</table>")
    out.append("<h3>5 Test campaign report</h3>")
    out.append(_table([(k.replace("_", " "), v) for k, v in p["campaign"].items()]))
    out.append("<h3>6 Observations</h3>")
    obs = "".join(f"<li><pre>{escape(o)}</pre></li>" for o in p["observations"])
    out.append(f"<ul>{obs}</ul>" if obs else "<p>none</p>")
    return "".join(out)


def render(doc: Mapping[str, Any]) -> str:
    run = doc["run"]
    evidence = _Evidence(doc["tests"])
    out = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        "<title>dmmconf conformance report</title>",
        f"<style>{CSS}</style></head><body>",
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
    summary = doc["summary"]
    out.append(f'<p class="cards">Tests: {_counts(summary["tests"])}</p>')
    out.append(f'<p class="cards">Clauses: {_counts(summary["clauses"])}</p>')
    out.append(
        '<p><a href="#pctr">PCTR</a> · <a href="#clauses">clauses by section</a> · '
        '<a href="#evidence">evidence</a></p>'
    )
    if doc.get("baseline"):
        b = doc["baseline"]
        counts = ", ".join(f"{escape(k)} {int(n)}" for k, n in sorted(b["counts"].items()))
        regressions = ", ".join(escape(r) for r in b["regressions"]) or "none"
        out.append(
            f"<p class=baseline>Against the baseline {escape(b['file'])}: {counts}. "
            f"Regressions: {regressions}</p>"
        )
    if "pctr" in doc:
        out.append(_pctr(doc["pctr"]))
    out.append("<h2 id=clauses>Clauses by document and section</h2>")
    out.append(_filters(doc["clauses"]))
    out.append(_grouped(doc, evidence))
    loose = [t for t in doc["tests"] if not t["clauses"] and not t.get("evidence")]
    if loose:
        out.append("<h2>Tests without a clause</h2>")
        out.extend(_test(t, evidence) for t in loose)
    out.append(evidence.render())
    out.append(f"<script>{_JS}</script></body></html>\n")
    return "\n".join(out)
