"""`-n 2` gives the same verdicts as a serial run, through the profile path.

The HA conformance run is started twice with `dmmconf run`, as a user would, against a
copy of the bundled reference HA's profile (the README's worked example of an external
SUT): once serially, once on two pytest-xdist workers, each worker with its own lab. The
per-test and per-clause verdicts must be the same.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import suites
from harness.sut import adapters


def _verdicts(report_dir: Path) -> tuple[dict[str, str], dict[str, str]]:
    report = json.loads((report_dir / "report.json").read_text())
    tests = {t["nodeid"]: t["verdict"] for t in report["tests"]}
    clauses = {c["id"]: c["verdict"] for c in report["clauses"]}
    return tests, clauses


def test_serial_and_two_workers_agree(tmp_path: Path) -> None:
    profile = tmp_path / "my-ha.toml"
    shutil.copy(adapters.PROFILES_DIR / "reference-ha.toml", profile)
    # The HA suite only, named as the run's test path (paths replace the default suites; an
    # --ignore does not drop a path given on the command line, and the interop suite, a
    # longer run of its own, ran twice here and brought its own timing into the comparison)
    ha_suite = str(Path(suites.__file__).parent / "ha")
    runs = {}
    for name, extra in (
        ("serial", ["--serial", "--", ha_suite]),
        ("xdist", ["--", "-n", "2", ha_suite]),
    ):
        out = tmp_path / name
        argv = [sys.executable, "-m", "harness.cli", "run", "--role", "ha", "--sut", str(profile)]
        res = subprocess.run(
            [*argv, "--report-dir", str(out), *extra],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert res.returncode in (0, 1), res.stderr[-2000:]
        runs[name] = _verdicts(out)
    serial_tests, serial_clauses = runs["serial"]
    xdist_tests, xdist_clauses = runs["xdist"]
    assert serial_tests, "the serial run judged no test"
    assert xdist_tests == serial_tests
    assert xdist_clauses == serial_clauses


def test_kernel_and_userspace_data_paths_agree(tmp_path: Path) -> None:
    """The HA suite's verdicts are the same on the lab's two multicast data paths.
    Not-run where the kernel has no multicast routing: there is only one path to judge."""
    import os

    from harness.lab import datapath
    from harness.verdicts import not_run

    if why := datapath.kernel_support()["ipv6"]:
        not_run(f"no kernel multicast data path on this machine: {why}")
    skip_interop = f"--ignore={Path(suites.__file__).parent / 'interop'}"
    runs = {}
    for path in (datapath.KERNEL, datapath.USERSPACE):
        out = tmp_path / path
        res = subprocess.run(
            [sys.executable, "-m", "harness.cli", "run", "--role", "ha"]
            + ["--report-dir", str(out), "--", skip_interop],
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, datapath.ENV: path},
        )
        assert res.returncode in (0, 1), res.stderr[-2000:]
        runs[path] = _verdicts(out)
    assert runs[datapath.KERNEL][0], "the kernel-path run judged no test"
    assert runs[datapath.KERNEL] == runs[datapath.USERSPACE]
