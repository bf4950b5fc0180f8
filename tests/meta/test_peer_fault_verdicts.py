"""Verdict truth of the suite itself (issue 10, item 6): a faulty reference on the *other*
side must not change the SUT's verdicts, except where the faulty peer makes a verdict
impossible (then inconclusive, with the reason).

The MN side: the reference MN is the SUT, through its profile (role mn), among the reference
HAs the MN suite starts (harness/tester/world.py, `World.start_home_agents`, which runs
`dmmconf ha` with this process's environment), once as they are and once with an HA fault of
harness/faults.py switched on (DMMCONF_HA_MUTANT). Each clause judged about the MN keeps its
verdict (or becomes inconclusive with a reason); the HA clauses the tests touch are evidence
about the reference peer in both runs, never the MN's verdict.

The HA side has no such test: the HA suite has no reference peer (the tester itself plays
the mobile node, crafting and judging every packet), so there is no other side to break.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.faults import Fault, env_var
from harness.lab import netns
from harness.sut import adapters

ROOT = Path(__file__).resolve().parents[2]
MN = "suites/mn/test_mobile_node.py::"
# A few MN tests that exchange BUs and BAs with the home agents (about 6 s each).
TESTS = (
    MN + "test_bu_is_authenticated",
    MN + "test_bu_carries_every_group_joined_on_the_link",
)
# The home agent leaves the Multicast State option out of its BAs (draft §4.1, INT-6):
# a fault of the HA, which the MN's verdicts must not inherit.
PEER_FAULT = Fault.HA_NO_ECHO


def _run(tmp_path: Path, name: str, fault: Fault | None) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DMMCONF_"))}
    if fault is not None:
        env[env_var(fault.role)] = fault.label
    out = tmp_path / name
    res = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "--sut",
         str(adapters.PROFILES_DIR / "reference-mn.toml"), "--report-dir", str(out),
         "--serial", "-q", "--", *TESTS],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert res.returncode in (0, 1), res.stdout[-3000:] + res.stderr[-3000:]
    return dict(json.loads((out / "report.json").read_text(encoding="utf-8")))


@pytest.mark.needs_root
def test_a_faulty_reference_ha_does_not_change_the_mns_verdicts(tmp_path: Path) -> None:
    missing = netns.missing_privileges()
    if missing:
        pytest.skip(f"the lab needs privileges: {missing}")
    control = _run(tmp_path, "control", None)
    faulty = _run(tmp_path, "faulty-peer", PEER_FAULT)
    assert control["run"]["sut"]["role"] == faulty["run"]["sut"]["role"] == "mn"
    before = {c["id"]: c for c in control["clauses"] if c["tests"]}
    after = {c["id"]: c for c in faulty["clauses"]}
    assert before and all(c["verdict"] == "pass" for c in before.values()), before
    reasons = {t["nodeid"]: t["reason"] for t in faulty["tests"]}
    for cid, c in before.items():
        now = after[cid]
        assert now["about"] in (c["about"], None)
        if now["verdict"] != c["verdict"]:  # only where the peer made a verdict impossible
            assert now["verdict"] == "inconclusive", (cid, now["verdict"])
            assert all(reasons[n] for n in now["tests"]), (cid, now["tests"])
    # the clauses of the HA's fault are never the MN's verdict, in either run
    for doc in (control, faulty):
        peer = {c["id"] for c in doc["clauses"] if c["evidence"] and not c["tests"]}
        for t in doc["tests"]:
            assert not set(t["clauses"]) & peer
    # the fault's own clause (DMM-OPT-1, of both roles): about the MN it keeps its verdict
    ha_clause = PEER_FAULT.spec.clause
    assert after[ha_clause]["verdict"] == control_verdict(control, ha_clause)


def control_verdict(doc: dict[str, Any], cid: str) -> str:
    return str(next(c["verdict"] for c in doc["clauses"] if c["id"] == cid))
