"""Every command and example of the README is run by a test.

`test_every_readme_command_has_a_test` reads the README's commands (the `dmmconf` command
table, the shell blocks, the `$ ...` examples, the inline `dmmconf run ...` examples) and
requires each to be in RUN_BY, which names the test that runs it (checked to exist and to
mention the command). The cheap ones without a lab are run here, as the README writes them.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness import catalog
from reports import model

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")

# command (its first words) -> (the test file that runs it, a string that file holds)
RUN_BY: dict[str, tuple[str, str]] = {
    # the ./dev jobs are what CI runs (.ci/run: ./dev test, whose set-up is ./dev setup, and
    # ./dev lint); ./dev conformance is `dmmconf run` against the bundled reference
    "./dev conformance": ("dev", "conformance"),
    "./dev test": (".ci/run", "./dev test"),
    "./dev lint": (".ci/run", "./dev lint"),
    "./dev setup": ("dev", "setup"),
    "dmmconf run": ("tests/unit/test_verdicts_and_reports.py", "test_dmmconf_run_end_to_end"),
    "dmmconf run --list": ("tests/unit/test_run_selection.py", '"run", "--list"'),
    "dmmconf run --role": ("tests/meta/test_faulty_profile_report.py", '"--role", "ha"'),
    "dmmconf run --baseline": ("tests/unit/test_report_baseline.py", '"--baseline"'),
    "dmmconf run DMM-HA-1": ("tests/meta/test_faulty_profile_report.py", "clause, UNTOUCHED"),
    "dmmconf report diff": ("tests/integration/test_readme_commands.py", '"report", "diff"'),
    "dmmconf report merge": ("tests/integration/test_readme_commands.py", '"report", "merge"'),
    "dmmconf sut check": ("tests/integration/test_profile_check.py", "sut check"),
    "dmmconf sut fields": ("tests/integration/test_readme_commands.py", '"sut", "fields"'),
    "dmmconf clauses": ("tests/integration/test_readme_commands.py", '"clauses", "--level"'),
    "dmmconf decode": ("tests/integration/test_readme_commands.py", '"decode", hexa'),
    "dmmconf decode --pcap": ("tests/unit/test_decode_wording.py", "--pcap"),
    "dmmconf vectors list": ("tests/integration/test_readme_commands.py", '"vectors", "list"'),
    "dmmconf vectors export": ("tests/integration/test_readme_commands.py", '"vectors", "export"'),
    "dmmconf ha": ("tests/meta/test_faulty_profile_report.py", "mutant_profile"),  # its profile
    "dmmconf mn": ("tests/meta/test_peer_fault_verdicts.py", "reference-mn.toml"),  # its profile
    "dmmconf doctor": ("tests/integration/test_readme_commands.py", '"doctor", "--json"'),
    "dmmconf lab up": ("tests/integration/test_lab.py", "lab"),
    "dmmconf lab status": ("tests/integration/test_lab.py", "lab"),
    "dmmconf lab down": ("tests/integration/test_lab.py", "lab"),
    "dmmconf bench handover": ("tests/integration/test_bench.py", "handover"),
    "dmmconf bench datapath": ("tests/integration/test_bench.py", "datapath"),
    "dmmconf bench all": ("tests/integration/test_bench.py", '_bench(\n        tmp_path, "all"'),
    "dmmconf bench fanout": ("tests/integration/test_bench.py", '"fanout", "--tunnels"'),
    "dmmconf bench ha": ("tests/integration/test_bench.py", "registrations.run("),
    "dmmconf bench codec": ("tests/unit/test_bench_codec.py", '"bench", "codec"'),
    "pytest tests/meta/test_ha_mutants.py": ("tests/meta/test_ha_mutants.py", "KILLS"),
    "pytest tests/meta/test_mn_mutants.py": ("tests/meta/test_mn_mutants.py", "KILLS"),
    "pytest suites": ("tests/meta/test_parallel_verdicts.py", "suites"),
    "pytest --sut": ("tests/integration/test_profile_check.py", '"--sut"'),
    "cp harness/sut/profiles/reference-ha.toml": (
        "tests/integration/test_profile_check.py",
        "_worked_example",
    ),
    "unshare": ("tests/integration/test_doctor.py", "unshare"),
    # a Java tool, not bundled: only named
    "allure serve": ("tests/integration/test_readme_commands.py", "allure serve"),
}


def readme_commands() -> set[str]:
    """The README's commands, each as the key RUN_BY knows it by."""
    found: set[str] = set()
    lines: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", README, re.S):
        lines += block.splitlines()
    lines += [m[1] for m in re.finditer(r"^\$ (.+)$", README, re.M)]
    lines += [m[1] for m in re.finditer(r"^\| `(dmmconf [^`]+)`", README, re.M)]
    lines += [
        " ".join(m.split()) for m in re.findall(r"`((?:dmmconf|pytest|allure)\s[^`]+)`", README)
    ]
    for line in lines:
        line = line.split("#")[0].strip()
        if not line:
            continue
        key = max((k for k in RUN_BY if line.startswith(k)), key=len, default=line)
        found.add(key)
    return found


def test_every_readme_command_has_a_test() -> None:
    commands = readme_commands()
    assert "dmmconf doctor" in commands and "dmmconf report merge" in commands  # it reads them
    # `pytest tests/...`: the command runs a test file of the project itself; it must exist
    files = {c for c in commands if c.startswith("pytest tests/")}
    for command in files:
        assert (ROOT / command.split()[1]).is_file(), f"{command}: no such test file"
    missing = sorted(c for c in commands - files if c not in RUN_BY)
    assert not missing, f"README commands no test runs (add them to RUN_BY): {missing}"
    for command, (path, needle) in RUN_BY.items():
        text = (ROOT / path).read_text(encoding="utf-8")
        assert needle in text, f"{command}: {path} does not mention {needle!r}"


def dmmconf(*args: str, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode in ok, (args, res.returncode, res.stdout[-2000:], res.stderr[-2000:])
    return res


def test_clauses_uncovered_as_json() -> None:
    """`--uncovered` keeps exactly the rows of the same listing that no test covers (the
    list itself may be empty: every HA MUST has a test today)."""
    args = ("clauses", "--level", "MUST", "--role", "HA", "--json")
    every = json.loads(dmmconf(*args).stdout)
    rows = json.loads(dmmconf(*args, "--uncovered").stdout)
    cat = catalog.load()
    assert every and all(cat[r["id"]].level == "MUST" for r in every)
    assert all("HA" in cat[r["id"]].roles or "ANY" in cat[r["id"]].roles for r in every)
    assert [r["id"] for r in rows] == [r["id"] for r in every if not r["covered_by"]]


def test_vectors_list_and_export(tmp_path: Path) -> None:
    res = dmmconf("vectors", "list")
    assert res.stdout.startswith("golden") and "malformed" in res.stdout
    pcap = tmp_path / "vectors.pcap"
    dmmconf("vectors", "export", "--pcap", str(pcap))
    assert pcap.stat().st_size > 100


def test_decode_a_vector_and_judge_it() -> None:
    golden = json.loads((ROOT / "vectors" / "golden.json").read_text(encoding="utf-8"))
    hexa = golden["packets"][0]["hex"]
    fields = json.loads(dmmconf("decode", hexa).stdout)
    assert fields
    judged = dmmconf("decode", hexa, "--judge")
    assert json.loads(judged.stdout)
    bad = dmmconf("decode", "abc", ok=(2,))  # odd hex: unusable input
    assert bad.stderr.count("\n") == 1


def test_doctor_json() -> None:
    res = dmmconf("doctor", "--json", ok=(0, 1))
    findings = json.loads(res.stdout)
    rows = findings if isinstance(findings, list) else findings.get("findings", [])
    assert rows and all({"name", "status", "detail", "fix"} <= set(r) for r in rows)


def test_sut_fields() -> None:
    res = dmmconf("sut", "fields")
    assert "| `role` |" in res.stdout and "| `{iface}` |" in res.stdout


def _report(tmp_path: Path, name: str, verdict: str) -> Path:
    test = {"nodeid": f"suites/x.py::test_{name}", "clauses": ["DMM-HA-1"], "verdict": verdict}
    run = {"sut": {"role": None, "target": "reference", "name": name}}
    doc = model.build(run, [test], catalog.load())
    out = tmp_path / name
    out.mkdir()
    (out / "report.json").write_text(model.dumps(doc), encoding="utf-8")
    return out


def test_report_diff_and_merge(tmp_path: Path) -> None:
    a, b = _report(tmp_path, "a", "pass"), _report(tmp_path, "b", "fail")
    res = dmmconf("report", "diff", str(a), str(b), "--json")
    rows = json.loads(res.stdout)
    assert "DMM-HA-1" in json.dumps(rows) and "regression" in json.dumps(rows)
    out = tmp_path / "matrix"
    dmmconf("report", "merge", str(a), str(b), "--out", str(out))
    assert (out / "matrix.html").is_file() and (out / "matrix.json").is_file()


@pytest.mark.parametrize("words", [["allure", "serve"]])
def test_allure_serve_is_named_not_run(words: list[str]) -> None:
    """`allure serve reports/out/allure-results` needs the allure tool (Java, not bundled):
    the README says so next to it, and `dmmconf run` writes what it reads (tests/
    test_report_outputs.py checks allure-results)."""
    i = README.index(" ".join(words))
    assert "not bundled" in README[i : i + 300]
