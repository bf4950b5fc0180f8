"""Kill matrices: the suites run against one-clause faults of the reference (a "mutant":
the reference with one fault of harness/faults.py switched on).

A mutant is the reference HA or MN started with DMMCONF_<ROLE>_MUTANT=<name> through a copy
of its bundled profile with that variable set, the path an external SUT takes. The suite
tests that judge the clause a mutant breaks run against it in a pytest of their own (own
lab, own report directory); each of them must fail, and the unmutated reference, through
the same kind of copied profile, must pass them all (the control).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from harness.sut import adapters

ROOT = Path(__file__).resolve().parents[2]


def mutant_profile(role: str, name: str, directory: Path) -> Path:
    """The bundled reference profile of `role`, starting mutant `name` ("none": the
    reference itself, the control)."""
    text = (adapters.PROFILES_DIR / f"reference-{role}.toml").read_text(encoding="utf-8")
    start = f'start = """{{python}} -m harness.cli {role}'
    if start not in text:
        raise ValueError(f"reference-{role}.toml does not start with {start!r}")
    if name != "none":
        var = f"DMMCONF_{role.upper()}_MUTANT"
        text = text.replace(start, f'start = """{var}={name} {{python}} -m harness.cli {role}')
    text = re.sub(r'^name = "(.*)"$', rf'name = "\1, mutant {name}"', text, count=1, flags=re.M)
    path = directory / f"mutant-{role}-{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def run_suite(
    role: str, mutant: str, targets: tuple[str, ...], tmp_path: Path, timeout: float = 300
) -> tuple[set[str], str]:
    """Run `targets` against the mutant; the node ids that failed, and the output."""
    profile = mutant_profile(role, mutant, tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DMMCONF_"))}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            "-q",
            "-rA",
            "--sut",
            str(profile),
            "--sut-role",
            role,
            "--report-dir",
            str(tmp_path / "report"),
            *targets,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    out = proc.stdout + proc.stderr
    return set(re.findall(r"^FAILED (\S+)", out, re.M)), out
