"""report.html grouped by document and section, with filters, evidence shown once, Hypothesis
reproductions and the PCTR; on a small fake run (the plugins on a synthetic suite)."""

from __future__ import annotations

import re

import pytest

from reports import html
from tests.unit.test_verdicts_and_reports import MIXED, lab, run, write

__all__ = ["lab"]  # the fixture, imported for the tests below
pytest_plugins = ["pytester"]

FAILURES = """
    import pytest
    from hypothesis import given, settings, strategies as st

    @pytest.mark.clause("T-SHOULD-1")
    @pytest.mark.parametrize("n", range(3))
    def test_same(n):
        assert 0, "the same failure"

    @pytest.mark.clause("T-MUST-2")
    @settings(database=None, derandomize=True)
    @given(st.integers())
    def test_property(x):
        assert x < 10, "too big"

    @pytest.mark.clause("T-MUST-2")
    def test_with_pcap(attach, tmp_path):
        pcap = tmp_path / "link1.pcap"
        pcap.write_bytes(b"pcap")
        attach(pcap)
        assert False, "no Binding Ack on link 1"
"""


@pytest.fixture
def page(lab: pytest.Pytester) -> str:
    write(lab, "suites/test_mixed.py", MIXED)
    write(lab, "suites/test_failures.py", FAILURES)
    run(lab)
    return (lab.path / "out" / "report.html").read_text(encoding="utf-8")


def test_grouped_by_document_and_section_with_titles(page: str) -> None:
    draft = page.index(">draft-sarikaya-mext-multicastdmm-01</h2>")
    rfc = page.index(">RFC 6275</h2>")
    assert draft < rfc  # the draft first, then the RFCs
    assert "§4 Option Format" in page and "§5 Correspondent Node Operation" in page
    assert "§11.7.1 Sending Binding Updates to the Home Agent" in page
    assert "§3.1 " in page  # a section the contents do not list keeps its number
    group = page[page.index("§4 Option Format") :].split("</h3>")[0]
    assert 'class="v fail">fail</span> 1' in group  # counts per section


def test_filters_and_clause_data(page: str) -> None:
    for name in ("verdict", "level", "role", "feature"):
        assert f'<select id="f-{name}">' in page
    must2 = re.search(r'<details class=clause id="T-MUST-2"[^>]*>', page)
    assert must2 is not None
    assert 'data-verdict="fail"' in must2[0] and 'data-level="MUST NOT"' in must2[0]
    assert 'data-roles="MN"' in must2[0] and 'data-features="core"' in must2[0]
    assert page.count("<script>") == 1 and "src=" not in page and "<link" not in page


def test_evidence_is_shown_once_with_a_count(page: str) -> None:
    assert page.count("the same failure</pre>") <= 1
    (evidence,) = re.findall(r"#(\d+): 3 test\(s\)", page)
    assert page.count(f'href="#ev-{evidence}"') == 3
    assert "(the same for 3 tests)" in page


def test_reason_pcap_and_hypothesis_reproduction(page: str) -> None:
    clause = page[page.index('id="T-MUST-2"') :].split("</details>")[0]
    assert "no Binding Ack on link 1" in clause
    assert re.search(r'pcap: <a class=pcap href="attachments/[^"]*link1.pcap"', clause)
    assert "Hypothesis reproduction:" in clause
    assert re.search(r"(Falsifying example|Failing test case): test_property\(\s+x=10,", clause)


def test_pctr_section(page: str) -> None:
    pctr = page[page.index("Protocol Conformance Test Report") : page.index("id=clauses")]
    for heading in (
        "Identification summary",
        "IUT conformance status",
        "Static conformance summary (PICS",
        "PIXIT",
        "Dynamic conformance summary",
        "Test campaign report",
        "Observations",
    ):
        assert heading in pctr
    assert "non-conformant" in pctr and "T-MUST-2" in pctr
    assert "<td>ipv4</td>" in pctr


def test_hypothesis_reproduction_lines() -> None:
    longrepr = (
        "E   AssertionError: too big\nE   Falsifying example: test_p(\nE       x=10,\nE   )\n"
        "\nsuites/test_p.py:5: AssertionError\n"
        "You can reproduce this example by temporarily adding @reproduce_failure('6.1', b'AA')"
    )
    repro = html.hypothesis_reproduction(longrepr)
    assert repro is not None
    assert repro.startswith("Falsifying example: test_p(") and "x=10," in repro
    assert "@reproduce_failure('6.1', b'AA')" in repro
    assert html.hypothesis_reproduction("E   assert 0") is None


def test_evidence_key_ignores_parameters() -> None:
    a = "[call] n = 0\n\n>  assert 0\nE   AssertionError: same\n\nx.py:6: AssertionError"
    b = "[call] n = 1\n\n>  assert 0\nE   AssertionError: same\n\nx.py:6: AssertionError"
    assert html.evidence_key(a) == html.evidence_key(b)
    assert html.evidence_key(a) != html.evidence_key(a.replace("same", "other"))
