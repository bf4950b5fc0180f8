"""A real browser on report.html: headless Chromium (Debian `chromium`, installed by ./dev
setup) loads a report generated from a tiny fake run, filters it to failures and opens a
failing clause through the page's own controls (the address sets them: the page's script
selects the filter and clicks the clause open), and the DOM it leaves shows the reason and the
pcap link; a run whose lab could not start shows no failure at all. The screenshot is kept
in reports/out/artifacts/ (or $DMMCONF_ARTIFACTS)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.verdicts import not_run
from tests.unit.test_report_html import FAILURES
from tests.unit.test_verdicts_and_reports import MIXED, lab, run, write

__all__ = ["lab"]  # the fixture, imported for the tests below
pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
NO_LAB = """
    import pytest
    from harness.verdicts import LAB_UNAVAILABLE, not_run

    @pytest.mark.clause("T-MUST-1")
    def test_a():
        not_run(LAB_UNAVAILABLE + ": no CAP_NET_ADMIN", hint="run as root")

    @pytest.mark.clause("T-MUST-2")
    def test_b():
        not_run(LAB_UNAVAILABLE + ": no CAP_NET_ADMIN", hint="run as root")
"""
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    not_run("no chromium on PATH", hint="apt-get install chromium (./dev setup does)")


def browse(report: Path, fragment: str, profile: Path, screenshot: Path | None = None) -> str:
    """The DOM of report.html#fragment after its script ran (and a screenshot if asked)."""
    url = report.resolve().as_uri() + "#" + fragment
    base = [_chromium(), *FLAGS, f"--user-data-dir={profile}", "--window-size=1280,2400"]
    dom = subprocess.run(
        [*base, "--dump-dom", url], capture_output=True, text=True, timeout=90, check=True
    ).stdout
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [*base, f"--screenshot={screenshot}", url + "&scroll=no"],
            capture_output=True,
            timeout=90,
            check=True,
        )
    return dom


def _clauses(dom: str) -> dict[str, str]:
    return {m[1]: m[0] for m in re.finditer(r'<details class="clause" id="([^"]+)"[^>]*>', dom)}


def test_browser_filters_to_failures_and_opens_one(lab: pytest.Pytester) -> None:
    write(lab, "suites/test_mixed.py", MIXED)
    write(lab, "suites/test_failures.py", FAILURES)
    run(lab)
    artifacts = Path(os.environ.get("DMMCONF_ARTIFACTS", ROOT / "reports" / "out" / "artifacts"))
    shot = artifacts / "report-browser-failures.png"
    dom = browse(
        lab.path / "out" / "report.html", "verdict=fail&open=T-MUST-2", lab.path / "chr", shot
    )
    assert 'data-ready="1"' in dom and 'data-filtered="fail|||"' in dom  # the script ran
    clauses = _clauses(dom)
    assert "hidden" not in clauses["T-MUST-2"] and "open" in clauses["T-MUST-2"]
    assert "hidden" not in clauses["T-SHOULD-1"]  # a failure too, left closed
    for other in ("T-MUST-1", "T-MAY-1"):  # not failures: filtered out
        assert "hidden" in clauses[other]
    opened = dom[dom.index('id="T-MUST-2"') :].split("</details>")[0]
    assert "no Binding Ack on link 1" in opened
    pcap = re.search(r'<a class="pcap" href="([^"]+)"', opened)
    assert pcap is not None and pcap[1].endswith("link1.pcap")
    assert (lab.path / "out" / pcap[1]).read_bytes() == b"pcap"  # the link leads to the file
    assert '<span id="shown">2</span>' in dom
    assert shot.stat().st_size > 10_000  # a real picture, kept as the test's artifact


def test_browser_a_run_without_lab_shows_no_failure(lab: pytest.Pytester) -> None:
    write(lab, "suites/test_no_lab.py", NO_LAB)
    _, doc = run(lab)
    assert doc["summary"]["tests"]["fail"] == 0
    report = lab.path / "out" / "report.html"
    dom = browse(report, "verdict=fail", lab.path / "chr")
    assert '<span id="shown">0</span>' in dom
    assert all("hidden" in tag for tag in _clauses(dom).values())
    dom = browse(report, "verdict=not-run&open=T-MUST-1", lab.path / "chr")
    opened = dom[dom.index('id="T-MUST-1"') :].split("</details>")[0]
    assert "the network lab is unavailable: no CAP_NET_ADMIN" in opened
    assert "no verdict possible for 2 test(s)" in dom
