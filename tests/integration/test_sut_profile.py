"""SUT profiles (harness.sut.profile) and the adapters that run them (harness.sut.adapters).

The process tests run a tiny Python program as the "SUT" inside a namespace of their own
(`dmmp-<pid>-<n>`, deleted afterwards) and need root; without it they end not-run.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from harness import verdicts
from harness.errors import UserError
from harness.lab import plan as lab_plan
from harness.sut import adapters, profile
from harness.sut.profile import Placement, ProfileError

GOOD = """\
role = "ha"
name = "acme-ha"
placement = "ar1"

[commands]
start = "acme-ha --dev {iface} --prefix {prefix6} --addr {address6} --spi {spi} --key {key_file}"
stop = "acme-ctl stop --dev {iface}"
stop_timeout = 2

[ready]
log_regex = "^acme ready"
timeout = 5

[features]
ipv4 = true
mcoa = false

[timers]
time_scale = 0.1
min_bu_lifetime = 4
ra_max_interval = 0.5
ra_min_interval = 0.1

[keys]
spi = 1000
key = "00112233445566778899aabbccddeeff"
"""


def sub(old: str, new: str, text: str = GOOD) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def test_good_profile_loads() -> None:
    p = profile.parse(GOOD, "x.toml")
    assert (p.role, p.name, p.placement) == ("ha", "acme-ha", "ar1")
    assert p.commands.stop == "acme-ctl stop --dev {iface}" and p.commands.stop_timeout == 2
    assert (p.ready.kind, p.ready.value, p.ready.timeout) == ("log_regex", "^acme ready", 5)
    assert p.features.claims("ipv4") and not p.features.claims("mcoa")
    assert not p.features.claims("flow_bindings")  # unlisted: not claimed
    assert p.timers.ra_max_interval == 0.5 and p.timers.mld_query_interval == 125  # default
    assert p.keys is not None and p.keys.spi == 1000 and p.keys.key == bytes(range(0, 256, 17))


BAD = [
    pytest.param(sub('role = "ha"\n', ""), "role: missing", id="missing-role"),
    pytest.param(
        sub('role = "ha"', 'role = "router"'),
        'role: expected "ha" or "mn", got "router"',
        id="bad-role",
    ),
    pytest.param(sub('role = "ha"', "role = 1"), "role: expected a string, got 1", id="role-type"),
    pytest.param(sub('name = "acme-ha"\n', ""), "name: missing", id="missing-name"),
    pytest.param(
        sub('placement = "ar1"', 'placement = "core"'),
        'placement: an HA replaces an access router "ar1".."ar15", got "core"',
        id="bad-placement",
    ),
    pytest.param(
        sub('role = "ha"', 'role = "mn"'), 'placement: an MN sits at "mn", got "ar1"', id="mn-at-ar"
    ),
    pytest.param(
        sub("[commands]\nstart = ", "[commands]\nbegin = "),
        "[commands].begin: unknown field",
        id="unknown-command-field",
    ),
    pytest.param(GOOD, None, id="control-good"),
    pytest.param(
        GOOD.replace(
            'start = "acme-ha --dev {iface} --prefix {prefix6} --addr {address6} '
            '--spi {spi} --key {key_file}"\n',
            "",
        ),
        "[commands].start: missing",
        id="missing-start",
    ),
    pytest.param(
        sub("--dev {iface} --prefix", "--dev {ifce} --prefix"),
        "[commands].start: unknown placeholder {ifce} (known:",
        id="unknown-placeholder",
    ),
    pytest.param(
        sub("acme-ctl stop --dev {iface}", "acme-ctl stop --dev {device}"),
        "[commands].stop: unknown placeholder {device}",
        id="unknown-placeholder-stop",
    ),
    pytest.param(
        sub('placement = "ar1"', 'placement = "mn"', sub('role = "ha"', 'role = "mn"')).replace(
            "--dev {iface}", "--dev {uplink_iface}", 1
        ),
        "[commands].start: placeholder {uplink_iface} does not exist for role mn",
        id="placeholder-of-other-role",
    ),
    pytest.param(
        sub("{prefix6}", "{prefix6!r}"),
        "[commands].start: placeholder {prefix6} has a format spec or conversion",
        id="conversion",
    ),
    pytest.param(sub("{prefix6}", "{prefix6"), "[commands].start: bad template", id="brace"),
    pytest.param(
        GOOD.split("[keys]")[0],
        "[commands].start: placeholder {spi} needs a [keys] section",
        id="key-placeholder-without-keys",
    ),
    pytest.param(
        sub("mcoa = false", 'mcoa = "yes"'),
        '[features].mcoa: expected true/false, got "yes"',
        id="feature-type",
    ),
    pytest.param(
        sub("mcoa = false", "teleport = true"), "[features].teleport: unknown feature", id="feature"
    ),
    pytest.param(
        GOOD + "\n[extras]\nx = 1\n", "[extras]: unknown section (known:", id="unknown-section"
    ),
    pytest.param('colour = "red"\n' + GOOD, "colour: unknown field", id="unknown-top-field"),
    pytest.param(sub("[ready]", "[ready"), "not valid TOML", id="toml-syntax"),
    pytest.param(sub("timeout = 5\n", ""), "[ready].timeout: missing", id="ready-no-deadline"),
    pytest.param(
        sub("timeout = 5", "timeout = -1"),
        "[ready].timeout: expected a number > 0, got -1",
        id="ready-negative-deadline",
    ),
    pytest.param(
        sub('log_regex = "^acme ready"\n', ""), "[ready]: missing: give one of", id="ready-no-rule"
    ),
    pytest.param(
        sub("timeout = 5", "timeout = 5\nudp_port = 4191"),
        "[ready]: give one rule only, not log_regex and udp_port",
        id="ready-two-rules",
    ),
    pytest.param(
        sub('log_regex = "^acme ready"', "udp_port = 70000"),
        "[ready].udp_port: expected 1..65535, got 70000",
        id="ready-port-range",
    ),
    pytest.param(
        sub('log_regex = "^acme ready"', 'log_regex = "(unclosed"'),
        "[ready].log_regex: not a regular expression",
        id="ready-regex",
    ),
    pytest.param(
        sub('log_regex = "^acme ready"', 'command = "ping {hostt}"'),
        "[ready].command: unknown placeholder {hostt}",
        id="ready-command-placeholder",
    ),
    pytest.param(
        sub('[ready]\nlog_regex = "^acme ready"\ntimeout = 5\n', ""),
        "[ready]: missing section",
        id="missing-ready",
    ),
    pytest.param(
        sub("min_bu_lifetime = 4", 'min_bu_lifetime = "4"'),
        '[timers].min_bu_lifetime: expected a number (seconds), got "4"',
        id="timer-type",
    ),
    pytest.param(
        sub("min_bu_lifetime = 4", "min_bu_lifetime = true"),
        "[timers].min_bu_lifetime: expected a number (seconds), got true",
        id="timer-bool",
    ),
    pytest.param(
        sub("min_bu_lifetime = 4", "bu_lifetime = 4"),
        "[timers].bu_lifetime: unknown field",
        id="timer-unknown",
    ),
    pytest.param(
        sub("ra_min_interval = 0.1", "ra_min_interval = 0.6"),
        "[timers].ra_min_interval: 0.6 is larger than [timers].ra_max_interval 0.5",
        id="timer-order",
    ),
    pytest.param(
        sub("ra_min_interval = 0.1", "ra_min_interval = 0.01"),
        "[timers].ra_min_interval: 0.01 s is below RFC 6275 §7.5's minimum of 0.03 s",
        id="timer-below-rfc",
    ),
    pytest.param(
        sub("time_scale = 0.1", "time_scale = 2"),
        "[timers].time_scale: expected a factor in (0, 1], got 2.0",
        id="time-scale",
    ),
    pytest.param(sub("spi = 1000\n", ""), "[keys].spi: missing", id="keys-no-spi"),
    pytest.param(
        sub("spi = 1000", "spi = 255"),
        "[keys].spi: expected 256..4294967295, got 255",
        id="keys-reserved-spi",
    ),
    pytest.param(
        sub('key = "0011', 'key = "zz11'),
        "[keys].key: expected the shared key as hex digits",
        id="keys-hex",
    ),
    pytest.param(
        GOOD.split("[keys]")[0].replace("{spi}", "1").replace("{key_file}", "k"),
        None,
        id="no-keys-good",
    ),
    pytest.param(
        GOOD.split("[keys]")[0]
        .replace("{spi}", "1")
        .replace("{key_file}", "k")
        .replace("ipv4 = true", "auth_rfc4285 = true"),
        "[keys]: missing section: [features].auth_rfc4285 needs the MN-HA SPI and key",
        id="auth-without-keys",
    ),
    pytest.param(
        sub("mcoa = false", "cp_dp_split = true"),
        "[commands].split_args: [features].cp_dp_split is claimed: say how to start it split",
        id="split-without-args",
    ),
    pytest.param(
        sub("stop_timeout = 2", 'stop_timeout = 2\nsplit_args = "--dp {data_plane}"'),
        "[commands].split_args: unknown placeholder {data_plane}",
        id="split-args-placeholder",
    ),
    pytest.param(
        sub("mcoa = false", "cp_dp_split = true").replace(
            "stop_timeout = 2", 'stop_timeout = 2\nsplit_args = "--dp {data_plane6}"'
        ),
        None,
        id="split-good",
    ),
]


@pytest.mark.parametrize(("text", "expected"), BAD)
def test_bad_profile_is_refused_naming_the_field(text: str, expected: str | None) -> None:
    if expected is None:  # a control: the mutation machinery itself leaves a valid profile
        profile.parse(text, "x.toml")
        return
    with pytest.raises(ProfileError) as info:
        profile.parse(text, "x.toml")
    message = str(info.value)
    assert message.startswith("profile x.toml: "), message
    assert expected in message, message
    assert "\n" not in message
    assert isinstance(info.value, UserError) and info.value.exit_status == 2


def test_the_ba_deadline_is_the_has_answer_time() -> None:
    """RFC 6275 gives a home agent no time to answer a BU in: the profile says it, and the
    HA suite waits that long (plus the lab's margin) for every BA."""
    from harness.tester.home_agent import MARGIN, HomeAgentUnderTest

    def within(text: str) -> float:
        timers = profile.parse(text, "x.toml").timers
        ha = HomeAgentUnderTest(None, None, "2001:db8:1::1", None, None, timers)  # type: ignore[arg-type]
        return ha.answer_within

    assert within(GOOD) == pytest.approx(2.0 + MARGIN)  # the default
    slow = sub("time_scale = 0.1\n", "time_scale = 0.1\nanswer_time = 4.5\n")
    assert within(slow) == pytest.approx(4.5 + MARGIN)


def test_a_split_start_adds_the_split_args() -> None:
    """Draft §9: started split, the start command gains [commands].split_args, with the
    lab's data plane address (the plan's, one home for it)."""
    from harness.lab import plan as lab_plan

    text = sub("mcoa = false", "cp_dp_split = true").replace(
        "stop_timeout = 2", 'stop_timeout = 2\nsplit_args = "--dp {data_plane6}"'
    )
    p = profile.parse(text, "x.toml")
    lab = lab_plan.build()
    placement = profile.Placement.for_ha(
        lab, 1, netns=None, iface="acc0", uplink_iface="up0", workdir="/tmp"
    )
    values = p.values(placement, key_file="/k")
    plain, split = p.render("start", values), p.render("start", values, split=True)
    assert split == f"{plain} --dp {lab.link(1).data_plane6}"


def test_load_reads_a_file_and_names_it(tmp_path: Path) -> None:
    path = tmp_path / "acme.toml"
    path.write_text(GOOD, encoding="utf-8")
    assert profile.load(path).name == "acme-ha"
    path.write_text(sub("mcoa = false", "mcoa = 1"), encoding="utf-8")
    with pytest.raises(ProfileError, match=r"^profile .*acme\.toml: \[features\]\.mcoa: expected"):
        profile.load(path)
    with pytest.raises(ProfileError, match=r"missing\.toml: cannot read: No such file"):
        profile.load(tmp_path / "missing.toml")


def _ha_placement(workdir: str | Path, netns: str | None = "ns-ar1") -> Placement:
    return Placement.for_ha(
        lab_plan.build(), 1, netns=netns, iface="acc0", uplink_iface="up0", workdir=workdir
    )


def test_render_substitutes_the_labs_values() -> None:
    p = profile.parse(GOOD, "x.toml")
    values = p.values(_ha_placement("/w"), key_file="/w/ha.key", python="/py")
    cmd = p.render("start", values)
    assert cmd == (
        "acme-ha --dev acc0 --prefix 2001:db8:1::/64 --addr 2001:db8:1::1 --spi 1000 "
        "--key /w/ha.key"
    )
    assert p.render("stop", values) == "acme-ctl stop --dev acc0"
    assert values["ha_address"] == "2001:db8:1::1" and values["dns_server"] == "2001:db8:c3::10"
    assert values["time_scale"] == "0.1" and values["min_bu_lifetime"] == "4"
    mn = Placement.for_mn(lab_plan.build(), netns="m", ifaces=["e0", "e1"], workdir="/w")
    text = (
        'role = "mn"\nname = "m"\nplacement = "mn"\n[commands]\nstart = "mn {ifaces} {address6}"\n'
    )
    text += '[ready]\ncommand = "true"\ntimeout = 1\n'
    pm = profile.parse(text, "m.toml")
    assert pm.render("start", pm.values(mn)) == "mn e0 e1 2001:db8:1::100"


def test_rendered_values_are_shell_quoted(tmp_path: Path) -> None:
    text = 'role = "ha"\nname = "q"\nplacement = "ar1"\n[commands]\n'
    text += 'start = "printf \'%s|\' {workdir} {ifaces}"\n[ready]\ncommand = "true"\ntimeout = 1\n'
    p = profile.parse(text, "q.toml")
    evil = str(tmp_path / "a b;touch pwned;$(touch pwned2)")
    values = p.values(_ha_placement(evil))
    out = subprocess.run(
        ["/bin/sh", "-c", p.render("start", values)], capture_output=True, text=True, cwd=tmp_path
    )
    assert out.stdout == f"{evil}|acc0|up0|"
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "pwned2").exists()


def test_placement_mismatch_is_refused() -> None:
    p = profile.parse(GOOD, "x.toml")
    other = Placement.for_ha(
        lab_plan.build(), 2, netns="n", iface="a", uplink_iface="u", workdir="/w"
    )
    with pytest.raises(ProfileError, match="placement = 'ar1', but the lab placed it at 'ar2'"):
        p.check_placement(other)


def test_unclaimed_feature_is_not_applicable() -> None:
    p = profile.parse(GOOD, "x.toml")
    sut = adapters.ProfileSut(p, "/nonexistent")
    sut.require("ipv4")  # claimed: the test goes on
    with pytest.raises(pytest.skip.Exception) as info:
        sut.require("mcoa")
    verdict, reason, _hint = verdicts.decode(str(info.value.msg))
    assert verdict is verdicts.Verdict.NOT_APPLICABLE
    assert "does not claim mcoa" in reason and "[features].mcoa" in reason
    with pytest.raises(KeyError, match="unknown feature 'teleport'"):
        sut.claims("teleport")


def test_reference_profiles_load() -> None:
    for role in ("ha", "mn"):
        p = adapters.reference_profile(role)
        assert p.role == role and "{python} -m harness.cli " + role in p.commands.start


def test_open_sut_checks_the_role(tmp_path: Path) -> None:
    path = tmp_path / "acme.toml"
    path.write_text(GOOD, encoding="utf-8")
    assert isinstance(adapters.open_sut(str(path), "ha", tmp_path), adapters.ProfileSut)
    assert isinstance(adapters.open_sut("reference", "mn", tmp_path), adapters.ReferenceSut)
    with pytest.raises(ProfileError, match="role: 'ha', but the run tests role 'mn'"):
        adapters.open_sut(str(path), "mn", tmp_path)


def test_missing_namespace_is_refused(tmp_path: Path) -> None:
    p = profile.parse(sub("timeout = 5", "timeout = 1"), "x.toml")
    sut = adapters.ProfileSut(p, tmp_path)
    with pytest.raises(adapters.SutError, match="namespace 'dmmp-no-such' does not exist"):
        sut.start(_ha_placement(tmp_path, netns="dmmp-no-such"))


# ------------------------------------------------------------------ real processes

_counter = itertools.count()

SUT_PROGRAM = textwrap.dedent(
    """\
    import os, signal, socket, subprocess, sys, time
    mode, workdir = sys.argv[1], sys.argv[2]
    if "ignore-term" in mode:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if "exit" in mode:
        print("failing on purpose", flush=True)
        sys.exit(3)
    print("netns", os.stat("/proc/self/ns/net").st_ino, flush=True)
    if "detach" in mode and os.fork() == 0:  # leaves the session, keeps the output
        os.setsid()
        with open(os.path.join(workdir, "detached"), "w") as f:
            f.write(str(os.getpid()))
        time.sleep(60)
        os._exit(0)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    with open(os.path.join(workdir, "pids"), "w") as f:
        f.write(f"{os.getpid()} {child.pid}")
    time.sleep(0.2)  # not ready at once: the rules must wait
    if "silent" not in mode:
        open(os.path.join(workdir, "ready.flag"), "w").close()
        u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        u.bind(("::", 47001))
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.bind(("0.0.0.0", 47002))
        t.listen()
        print("sut ready", flush=True)
    time.sleep(60)
    """
)


def _alive(pid: int) -> bool:
    st = adapters._proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X")


@pytest.fixture
def netns() -> object:
    if os.geteuid() != 0:
        verdicts.not_run("creating a network namespace needs root", hint="run the tests as root")
    if shutil.which("ip") is None:
        verdicts.not_run("iproute2's ip is missing", hint="apt-get install iproute2")
    name = f"dmmp-{os.getpid()}-{next(_counter)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def _sut(tmp_path: Path, rule: str, mode: str = "normal", extra: str = "") -> adapters.ProfileSut:
    (tmp_path / "sut.py").write_text(SUT_PROGRAM, encoding="utf-8")
    text = textwrap.dedent(
        f"""\
        role = "ha"
        name = "tiny"
        placement = "ar1"
        [commands]
        start = "{{python}} {{workdir}}/sut.py {mode} {{workdir}}"
        stop_timeout = 0.5
        {extra}
        [ready]
        {rule}
        """
    )
    return adapters.ProfileSut(profile.parse(text, "tiny.toml"), tmp_path)


@pytest.mark.parametrize(
    "rule",
    [
        'log_regex = "^sut ready$"\ntimeout = 5',
        "udp_port = 47001\ntimeout = 5",
        "tcp_port = 47002\ntimeout = 5",
        'command = "test -e {workdir}/ready.flag"\ntimeout = 5',
    ],
    ids=["log_regex", "udp_port", "tcp_port", "command"],
)
def test_profile_sut_runs_in_its_namespace_and_stops_clean(
    netns: str, tmp_path: Path, rule: str
) -> None:
    sut = _sut(tmp_path, rule)
    started = time.monotonic()
    sut.start(_ha_placement(tmp_path, netns=netns))
    assert time.monotonic() - started >= 0.2  # the SUT sleeps 0.2 s before it is ready
    sid = sut.pid
    assert sid is not None
    try:
        assert sut.is_ready()
        assert (tmp_path / "ready.flag").exists()  # readiness was not declared early
        pid, child = map(int, (tmp_path / "pids").read_text().split())
        log = sut.log_path
        assert log is not None
        inode = next(
            int(line.split()[1])
            for line in log.read_text().splitlines()
            if line.startswith("netns ")
        )
        assert inode == os.stat(f"/run/netns/{netns}").st_ino != os.stat("/proc/self/ns/net").st_ino
        assert _alive(pid) and _alive(child)
    finally:
        outcome = sut.stop()
    assert outcome == "terminated"
    assert not _alive(pid) and not _alive(child)
    assert adapters.session_members(sid) == []
    assert not sut.is_ready() and sut.stop() == "not-running"


def test_sut_that_ignores_sigterm_is_killed(netns: str, tmp_path: Path) -> None:
    sut = _sut(tmp_path, 'log_regex = "ready"\ntimeout = 5', mode="ignore-term")
    sut.start(_ha_placement(tmp_path, netns=netns))
    pid, child = map(int, (tmp_path / "pids").read_text().split())
    started = time.monotonic()
    assert sut.stop() == "killed"
    assert time.monotonic() - started < 3
    assert not _alive(pid) and not _alive(child)


def test_detached_child_is_stopped_too(netns: str, tmp_path: Path) -> None:
    sut = _sut(tmp_path, 'log_regex = "ready"\ntimeout = 5', mode="detach")
    sut.start(_ha_placement(tmp_path, netns=netns))
    detached = int((tmp_path / "detached").read_text())
    assert _alive(detached) and adapters._proc_stat(detached)[2] != sut.pid  # type: ignore[index]
    assert sut.stop() == "terminated"
    assert not _alive(detached)


def test_stop_command_is_used(netns: str, tmp_path: Path) -> None:
    stop = 'stop = "kill $(cut -d\\" \\" -f1 {workdir}/pids)"'
    sut = _sut(tmp_path, 'log_regex = "ready"\ntimeout = 5', extra=stop)
    sut.start(_ha_placement(tmp_path, netns=netns))
    pid, child = map(int, (tmp_path / "pids").read_text().split())
    # the stop command ends the SUT; its orphaned child is then terminated with the session
    assert sut.stop() == "terminated"
    assert not _alive(pid) and not _alive(child)


@pytest.mark.parametrize(
    ("rule", "named"),
    [
        ('log_regex = "never printed"\ntimeout = 0.6', "[ready].log_regex 'never printed' never"),
        ("udp_port = 47999\ntimeout = 0.6", "[ready].udp_port 47999: nothing bound UDP port"),
    ],
    ids=["log_regex", "udp_port"],
)
def test_sut_never_ready_fails_within_its_deadline(
    netns: str, tmp_path: Path, rule: str, named: str
) -> None:
    sut = _sut(tmp_path, rule, mode="silent")
    started = time.monotonic()
    with pytest.raises(adapters.SutNotReady) as info:
        sut.start(_ha_placement(tmp_path, netns=netns))
    elapsed = time.monotonic() - started
    assert 0.6 <= elapsed < 3.0, elapsed
    assert "tiny: not ready within 0.6 s: " in str(info.value) and named in str(info.value)
    pid, child = map(int, (tmp_path / "pids").read_text().split())
    assert not _alive(pid) and not _alive(child)  # a failed start leaves nothing behind


def test_sut_that_exits_before_ready_is_reported(netns: str, tmp_path: Path) -> None:
    sut = _sut(tmp_path, 'log_regex = "ready"\ntimeout = 5', mode="exit")
    with pytest.raises(
        adapters.SutExited,
        match=r"exited with status 3 before it was ready "
        r"\(\[ready\]\.log_regex 'ready'\); last output: 'failing on purpose'",
    ):
        sut.start(_ha_placement(tmp_path, netns=netns))
    assert sut.stop() == "not-running"


def test_python_is_this_interpreter() -> None:
    p = profile.parse(GOOD, "x.toml")
    assert p.values(_ha_placement("/w"))["python"] == sys.executable


def test_documented_example_is_a_valid_profile() -> None:
    doc = profile.__doc__ or ""
    example = textwrap.dedent("    " + doc[doc.index("role = ") : doc.index("Every problem")])
    p = profile.parse(example, "example.toml")
    assert p.name == "acme-ha 2.1" and p.features.claims("ipv4")
    # a timer left out follows the one given: MinRtrAdvInterval = 0.33 x MaxRtrAdvInterval
    assert p.timers.ra_min_interval == pytest.approx(0.165)
