"""Profiles checked first: `dmmconf sut check`, the same check in `dmmconf run` and
`pytest --sut` before any lab, the README's field tables, and its worked example as written."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import cli
from harness.sut import adapters, profile

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
REFERENCE_HA = adapters.PROFILES_DIR / "reference-ha.toml"
REFERENCE = REFERENCE_HA.read_text(encoding="utf-8")


def _sub(old: str, new: str) -> str:
    assert old in REFERENCE, old
    return REFERENCE.replace(old, new, 1)


# (file name, content (bytes, str, or None for a directory), what the one line must say)
BAD = [
    pytest.param("e.toml", "", "profile {p}: empty file", id="empty"),
    pytest.param("w.toml", "  \n\n", "profile {p}: empty file", id="whitespace"),
    pytest.param("t.toml", 'role = "ha\n', "profile {p}: not valid TOML: ", id="invalid-toml"),
    pytest.param("u.toml", b'role = "h\xe9"\n', "profile {p}: not UTF-8 text", id="not-utf8"),
    pytest.param("d.toml", None, "profile {p}: is a directory, not a profile file", id="directory"),
    pytest.param(
        "a9.toml",
        _sub('placement = "ar1"', 'placement = "ar9"'),
        'profile {p}: placement: "ar9" is not in the lab plan (valid: "ar1", "ar2", "ar3")',
        id="placement-not-in-plan",
    ),
    pytest.param(
        "a2.toml",
        _sub('placement = "ar1"', 'placement = "ar2"'),
        'profile {p}: placement: "ar2", but the conformance suites put the SUT HA at "ar1"',
        id="placement-not-the-runs",
    ),
    pytest.param(
        "c.toml",
        _sub('placement = "ar1"', 'placement = "core"'),
        'profile {p}: placement: an HA replaces an access router "ar1".."ar15", got "core"',
        id="placement-syntax",
    ),
    pytest.param(
        "np.toml",
        _sub("{python} -m harness.cli ha", "acme-ha-not-installed"),
        "profile {p}: [commands].start: 'acme-ha-not-installed' not found on PATH",
        id="program-not-on-path",
    ),
    pytest.param(
        "nf.toml",
        _sub("{python} -m harness.cli ha", "/opt/no/such/ha"),
        "profile {p}: [commands].start: /opt/no/such/ha: no such file",
        id="program-no-such-file",
    ),
    pytest.param(
        "q.toml",
        _sub("{python} -m harness.cli ha", "'{python}"),
        "profile {p}: [commands].start: not a shell command: No closing quotation",
        id="unbalanced-quote",
    ),
    pytest.param(
        "ph.toml",
        _sub("--iface {iface}", "--iface {ifce}"),
        "profile {p}: [commands].start: unknown placeholder {{ifce}}",
        id="placeholder",
    ),
    pytest.param(
        "port.toml",
        _sub('log_regex = "^dmmconf ha: ready"', "port = 5000"),
        "profile {p}: [ready].port: unknown field",
        id="ready-port",
    ),
    pytest.param(
        "ty.toml",
        _sub("timeout = 10", 'timeout = "10"'),
        'profile {p}: [ready].timeout: expected a number (seconds), got "10"',
        id="type",
    ),
]


def _write(tmp_path: Path, name: str, content: str | bytes | None) -> Path:
    path = tmp_path / name
    if content is None:
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


@pytest.mark.parametrize("command", ["sut", "run"])
@pytest.mark.parametrize(("name", "content", "message"), BAD)
def test_a_bad_profile_is_refused_with_one_line_naming_the_field(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: str,
    name: str,
    content: str | bytes | None,
    message: str,
) -> None:
    """`dmmconf sut check` and `dmmconf run` (before pytest, so before any lab) alike."""
    path = _write(tmp_path, name, content)
    argv = ["sut", "check", str(path)]
    if command == "run":
        argv = ["run", "--sut", str(path), "--report-dir", str(tmp_path / "out")]
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith(f"dmmconf {command}: " + message.format(p=path)), err


def test_a_program_that_is_not_executable_is_refused(tmp_path: Path) -> None:
    program = tmp_path / "my-ha"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o644)
    path = _write(tmp_path, "x.toml", _sub("{python} -m harness.cli ha", f"exec {program}"))
    with pytest.raises(profile.ProfileError, match=f"start: {program}: not executable$"):
        profile.check(path)
    program.chmod(0o755)
    assert profile.check(path).commands.start.startswith(f"exec {program} ")


def test_run_checks_the_role(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mn = adapters.PROFILES_DIR / "reference-mn.toml"
    assert cli.main(["run", "--role", "ha", "--sut", str(mn), "--report-dir", str(tmp_path)]) == 2
    assert "role: 'mn', but the run tests role 'ha'" in capsys.readouterr().err


def test_pytest_sut_checks_the_profile_at_configure(tmp_path: Path) -> None:
    bad = _write(tmp_path, "a9.toml", _sub('placement = "ar1"', 'placement = "ar9"'))
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "--sut", str(bad), "tests/unit/test_catalog.py"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == pytest.ExitCode.USAGE_ERROR, res.stdout + res.stderr
    assert '"ar9" is not in the lab plan (valid: "ar1", "ar2", "ar3")' in res.stderr


@pytest.mark.parametrize("name", ["reference-ha.toml", "reference-mn.toml"])
def test_bundled_profiles_pass_the_check(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["sut", "check", str(adapters.PROFILES_DIR / name)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"profile {adapters.PROFILES_DIR / name}: ok: ")
    claimed = out.rsplit("claims: ", 1)[1].strip().split(", ")
    assert claimed == sorted(claimed), claimed  # the claims, in order
    bundled = adapters.reference_profile(name.removeprefix("reference-").removesuffix(".toml"))
    assert claimed == sorted(f for f in profile.FEATURES if bundled.features.claims(f))


def test_program_of_finds_the_program() -> None:
    cases = {
        "exec /opt/x -a": "/opt/x",
        "env A=b acme --x": "acme",
        "FOO=1 acme": "acme",
        "{python} -m x": None,
        "cd {workdir} && acme": None,
        "acme --dev {iface}": "acme",
    }
    for template, program in cases.items():
        assert profile.program_of(template, "w") == program, template


# ------------------------------------------------------------------ the README's tables


def _accepted_fields() -> set[str]:
    top = {"role", "name", "placement", "description"}
    sections = {
        "commands": profile._COMMAND_FIELDS,
        "ready": (*profile.READY_RULES, "timeout"),
        "features": tuple(profile.FEATURES),
        "timers": profile.TIMER_NAMES,
        "keys": profile._KEY_FIELDS,
    }
    assert set(sections) == set(profile._SECTIONS)
    assert top | set(sections) == profile._TOP_FIELDS
    return top | {f"[{s}].{k}" for s, keys in sections.items() for k in keys}


def test_field_docs_are_every_field_the_parser_accepts() -> None:
    documented = [f for f, *_ in profile.FIELD_DOCS]
    assert len(documented) == len(set(documented))
    assert set(documented) == _accepted_fields()


def test_placeholder_docs_are_every_placeholder() -> None:
    assert set(profile.PLACEHOLDER_DOCS) == profile.placeholders("ha")
    ha_only = {n for n, (role, _) in profile.PLACEHOLDER_DOCS.items() if role == "ha"}
    assert ha_only == profile.placeholders("ha") - profile.placeholders("mn")


def test_readme_tables_are_generated_from_the_code(capsys: pytest.CaptureFixture[str]) -> None:
    text = README.read_text(encoding="utf-8")
    m = re.search(r"<!-- profile-fields:begin -->\n(.*?)<!-- profile-fields:end -->", text, re.S)
    assert m is not None, "README lost its profile-fields markers"
    assert m[1] == profile.markdown_tables(), "README's tables differ: paste `dmmconf sut fields`"
    assert cli.main(["sut", "fields"]) == 0
    assert capsys.readouterr().out == profile.markdown_tables()


# ---------------------------------------------------------------- the worked example


def _worked_example() -> tuple[str, str]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("**Worked example.**") :]
    toml = re.search(r"```toml\n(.*?)```", section, re.S)
    sh = re.search(r"```sh\n(.*?)```", section, re.S)
    assert toml is not None and sh is not None
    return toml[1], sh[1]


def test_readme_worked_example_is_the_bundled_profile() -> None:
    toml, _ = _worked_example()
    assert "..." not in toml
    shown = profile.parse(toml, "README")
    bundled = profile.load(REFERENCE_HA)
    assert dataclasses.replace(shown, source=bundled.source) == bundled


@pytest.mark.needs_root
def test_readme_worked_example_runs_as_written(tmp_path: Path) -> None:
    """The README's three commands, run by /bin/sh in a directory holding the checkout's
    harness/ as the checkout does: the profile checks, and the HA run judges every test."""
    if os.geteuid() != 0:
        pytest.skip("needs root: the run builds the lab's network namespaces")
    _, commands = _worked_example()
    (tmp_path / "harness").symlink_to(ROOT / "harness")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    assert shutil.which("dmmconf", path=env["PATH"])
    res = subprocess.run(
        ["/bin/sh", "-ec", commands], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert res.returncode in (0, 1), res.stdout[-3000:] + res.stderr[-3000:]
    assert "my-ha.toml: ok: ha 'dmmconf reference HA' at ar1" in res.stdout
    import json

    report = json.loads((tmp_path / "my-report" / "report.json").read_text())
    verdicts = {t["verdict"] for t in report["tests"]}
    assert report["tests"] and verdicts <= {"pass", "fail", "not-applicable", "inconclusive"}
