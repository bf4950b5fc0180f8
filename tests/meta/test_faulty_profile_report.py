"""A run against a faulty HA profile fails exactly the clauses of its fault, and the report
shows it in a real browser.

`dmmconf run --role ha --sut PROFILE` as a user types it, PROFILE a copy of the bundled
reference HA's profile with one fault of harness/faults.py switched on (tests/support/killmatrix.py:
the path an external SUT takes), restricted to the tests of the fault's clause and of one
clause the fault leaves alone (to keep it fast: about 15 s). report.json's failing clauses
must be exactly the fault's (harness/faults.py CATALOGUE), the untouched clause must pass,
and report.html opened in headless Chromium (as tests/integration/test_report_browser.py
does) must show the failing clause with its reason and its pcap.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.faults import Fault
from harness.lab import netns
from tests.integration.test_report_browser import _clauses, browse
from tests.support import killmatrix

ROOT = Path(__file__).resolve().parents[2]
FAULT = Fault.HA_NO_BINDING_ERROR  # RFC6275-MH-2: no Binding Error for an unknown MH type
UNTOUCHED = "RFC6275-HA-7"  # the BA's sequence number: the fault leaves it alone


@pytest.mark.needs_root
def test_a_faulty_ha_fails_exactly_its_clause_in_every_output(tmp_path: Path) -> None:
    missing = netns.missing_privileges()
    if missing:
        pytest.skip(f"the lab needs privileges: {missing}")
    clause = FAULT.spec.clause
    profile = killmatrix.mutant_profile("ha", FAULT.label, tmp_path)
    out = tmp_path / "report"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DMMCONF_"))}
    res = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "--role", "ha", "--sut", str(profile),
         "--report-dir", str(out), "--serial", "-q", clause, UNTOUCHED, "--", "suites/ha"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert res.returncode == 1, res.stdout[-3000:] + res.stderr[-3000:]  # a MUST failed
    doc = json.loads((out / "report.json").read_text(encoding="utf-8"))
    verdicts = {c["id"]: c["verdict"] for c in doc["clauses"]}
    failing = {cid for cid, v in verdicts.items() if v == "fail"}
    assert failing == {clause}, failing
    assert verdicts[UNTOUCHED] == "pass"
    entry = next(c for c in doc["clauses"] if c["id"] == clause)
    assert entry["about"] == doc["run"]["sut"]["name"]  # the verdict is the SUT's, by name
    assert entry["about"].endswith(f"mutant {FAULT.label}")
    failed = [t for t in doc["tests"] if t["verdict"] == "fail"]
    assert [t["clauses"] for t in failed] == [[clause]]
    assert doc["run"]["gate"]["blocking"] == [failed[0]["nodeid"]]
    reason = failed[0]["reason"]
    assert reason
    # the browser: filtered to failures, the fault's clause open with its reason and pcap
    dom = browse(out / "report.html", f"verdict=fail&open={clause}", tmp_path / "chr")
    assert 'data-ready="1"' in dom
    tags = _clauses(dom)
    assert "hidden" not in tags[clause] and "open" in tags[clause]
    assert all("hidden" in tag for cid, tag in tags.items() if cid != clause)
    assert '<span id="shown">1</span>' in dom
    opened = dom[dom.index(f'id="{clause}"') :].split("</details>")[0]
    first_line = reason.splitlines()[0][:60]
    assert _text(first_line) in _text(opened), (first_line, opened[:2000])
    assert f"about: {entry['about']}" in _text(opened)
    pcap = re.search(r'<a class="pcap" href="([^"]+)"', opened)
    assert pcap is not None and (out / pcap[1]).is_file()


def _text(html: str) -> str:
    """HTML-escaped characters back to text, whitespace squeezed (for comparing)."""
    import html as html_mod

    return " ".join(html_mod.unescape(html).split())
