"""`dmmconf doctor` (harness/lab/probes.py): every item, the exit status, fixes, no tracebacks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import cli
from harness.lab import datapath, netns, probes

ROOT = Path(__file__).resolve().parents[2]
DMMCONF = [sys.executable, "-m", "harness.cli", "doctor"]


def _names() -> list[str]:
    names = [p.name for p in probes.other_probes()]
    return names[:1] + [p.name for p in probes.kernel_probes()] + names[1:]


def _env(**changes: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DMMCONF_TSHARK", datapath.ENV)}
    env.update(changes)
    return env


def _doctor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DMMCONF, *args], capture_output=True, text=True, timeout=30, cwd=ROOT, env=env or _env()
    )


def test_json_has_every_item_and_passes_here() -> None:
    start = time.monotonic()
    res = _doctor("--json")
    elapsed = time.monotonic() - start
    assert "Traceback" not in res.stderr
    report = json.loads(res.stdout)
    found = {f["name"]: f for f in report["findings"]}
    assert [f["name"] for f in report["findings"]] == _names()
    for expected in (
        "privileges", "netns", "veth", "bridge", "tun", "nftables", "nflog", "raw-ipv6-41",
        "raw-ipv6-60", "raw-ipv6-raw", "af-packet", "mrt6", "mrt", "datapath", "tshark",
        "named", "kea-dhcp6", "kea-dhcp4", "dhcrelay", "nsenter", "ip", "nft", "python",
        "python:scapy", "python:pyroute2",
    ):  # fmt: skip
        assert expected in found
    for f in report["findings"]:
        assert f["status"] in probes.STATUSES and f["detail"], f
        if f["status"] == probes.MISSING:
            assert f["fix"], f
    missing = [f["name"] for f in report["findings"] if f["status"] == probes.MISSING]
    assert res.returncode == (1 if missing else 0)
    assert report["ok"] is not missing
    # Kernel multicast routing missing is a fallback, not an error.
    if datapath.kernel_support()["ipv6"] is not None:
        assert found["mrt6"]["status"] == probes.FALLBACK
        assert "userspace" in found["mrt6"]["detail"]
        assert "userspace" in found["datapath"]["detail"]
    if netns.missing_privileges() is None:  # root, set up by ./dev setup: nothing missing
        assert res.returncode == 0, probes.table([probes.Finding(**f) for f in found.values()])
    # About 0.7 s of probing here (1.0 s for the whole command); the margin is for a
    # machine busy with the rest of `./dev test -n auto`. A probe at its deadline takes 5 s.
    assert report["seconds"] < 3.0, report["seconds"]
    assert elapsed < 5.0


def test_text_table_is_aligned_and_says_the_datapath() -> None:
    res = _doctor()
    assert "Traceback" not in res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["item", "status", "detail"]
    column = lines[0].index("status")
    for name in _names():
        row = next(line for line in lines if line.split()[:1] == [name])
        assert row[column:].split()[0] in probes.STATUSES
    assert f"{datapath.ENV}=kernel|userspace" in res.stdout


def test_a_missing_tool_fails_with_its_fix() -> None:
    res = _doctor(env=_env(PATH=str(Path(sys.executable).parent)))  # no /usr/bin: no tshark
    assert res.returncode == 1, res.stdout
    assert "Traceback" not in res.stderr
    row = next(line for line in res.stdout.splitlines() if line.split()[:1] == ["tshark"])
    assert "missing" in row
    assert "fix: apt-get install tshark" in res.stdout
    assert "missing: tshark" in res.stdout


def test_a_probe_that_errors_is_missing_with_the_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken() -> tuple[str, ...]:
        raise RuntimeError("packet sockets are broken today")

    monkeypatch.setattr(probes, "_af_packet", broken)
    monkeypatch.setattr(probes, "tshark_binary", lambda: None)
    assert cli.main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "RuntimeError: packet sockets are broken today" in out
    assert "fix: apt-get install tshark" in out
    assert "missing: af-packet, tshark" in out


def test_a_fallback_alone_exits_0(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    found = [
        probes.Finding("mrt6", probes.FALLBACK, "userspace data path in use", "nothing to do"),
        probes.Finding("tshark", probes.OK, "/usr/bin/tshark"),
    ]
    monkeypatch.setattr(probes, "run_all", lambda *a, **k: found)
    assert cli.main(["doctor", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True


def test_a_probe_that_hangs_is_cut_at_the_deadline() -> None:
    def hang() -> tuple[str, str]:
        time.sleep(5)
        return ("ok", "")

    slow = probes.Probe("slow", "x", hang, "the fix")
    start = time.monotonic()
    (found,) = probes.run_probes([slow], timeout=0.2)
    assert time.monotonic() - start < 1.0
    assert (found.status, found.detail, found.fix) == (
        probes.MISSING,
        "no answer within 0.2 s",
        "the fix",
    )


def test_without_privileges_nor_user_namespaces(monkeypatch: pytest.MonkeyPatch) -> None:
    """No root and no user namespace: the privilege finding has the fix, the kernel probes
    say why they were not run (the child's unshare is made to fail)."""
    monkeypatch.setattr(netns, "missing_privileges", lambda: "the lab needs root privileges")
    monkeypatch.setattr(
        probes, "unshare_works", lambda: "unshare -rn true: Operation not permitted"
    )
    monkeypatch.setattr(probes, "CLONE_NEWUSER", probes.CLONE_NEWUSER | 1)  # EINVAL
    found = {f.name: f for f in probes.run_all(timeout=3)}
    priv = found["privileges"]
    assert priv.status == probes.MISSING
    assert "Operation not permitted" in priv.detail
    assert netns.PRIVILEGE_HINT in priv.fix and "unprivileged_userns_clone" in priv.fix
    for name in ("netns", "tun", "mrt6", "datapath"):
        assert found[name].status == probes.MISSING
        assert found[name].detail.startswith("not probed: no user namespace"), found[name]
        assert found[name].fix == "see privileges"


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv"
)
def test_as_nobody_the_privilege_finding_has_a_fix_and_no_traceback() -> None:
    argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *DMMCONF]
    res = subprocess.run(
        [*argv, "--json"], capture_output=True, text=True, timeout=30, cwd=ROOT, env=_env()
    )
    if "Permission denied" in res.stderr and not res.stdout:
        pytest.skip(f"nobody cannot run this interpreter: {res.stderr.strip()}")
    assert "Traceback" not in res.stderr, res.stderr
    assert res.returncode in (0, 1)
    found = {f["name"]: f for f in json.loads(res.stdout)["findings"]}
    priv = found["privileges"]
    assert priv["status"] in (probes.FALLBACK, probes.MISSING)
    assert "uid 65534" in priv["detail"] or "65534" in priv["detail"]
    assert "unshare --user --map-root-user" in priv["fix"]
    text = subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd=ROOT, env=_env())
    assert "Traceback" not in text.stderr
    row = next(line for line in text.stdout.splitlines() if line.split()[:1] == ["privileges"])
    assert priv["status"] in row
    assert ("note: run as root" in text.stdout) or ("fix: run as root" in text.stdout)
