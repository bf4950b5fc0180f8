"""pytest fixtures for evidence: a pcap of every link a test watches, in its report entry.

Use in a test (the module is a pytest plugin: `-p harness.tester.fixtures`, or
`pytest_plugins = ["harness.tester.fixtures"]` in the root conftest)::

    def test_ba(lab, captures):
        access1 = captures.watch_link(lab, 1)  # br1 in the lab's sw namespace: link 1 whole
        ha = captures.watch_node(lab, "ar1", "acc0")  # or one node's interface
        # or any namespace and interface: captures.watch(ns, iface, label)
        access1.send(IPv6(...) / BindingUpdate(seq=7))
        access1.expect(is_mh("BA", seq=7, status=0), within=1.0)

Each watched link is captured from `watch()` to the end of the test into
`<report dir>/captures/<test>/<test>.<label>.pcap` (pytest's tmp_path when the dmmconf
plugin, which owns --report-dir, is not loaded), together with a transcript of what the
test sent and expected. At teardown the files are attached to the test's report entry
(the `attach` fixture: report.json/html link them, allure gets them as attachments).

--keep-captures=always (default) keeps them for every test; =failed deletes them when the
test passed (the environment variable DMMCONF_KEEP_CAPTURES says the same when this module
is not loaded as a plugin, so the option does not exist).

Without the privileges for network namespaces the fixture ends the test as not-run,
naming what is missing.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from harness import verdicts
from harness.lab import netns as _netns
from harness.tester.conversation import Link

if TYPE_CHECKING:
    from harness.lab.topology import Lab

KEEP_CHOICES = ("always", "failed")
KEEP_ENV = "DMMCONF_KEEP_CAPTURES"
CAPTURES_SUBDIR = "captures"
_FAILED = pytest.StashKey[bool]()
_RECORDER = "dmmconf-capture-outcomes"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dmmconf", "DMM multicast conformance")
    group.addoption(
        "--keep-captures",
        choices=KEEP_CHOICES,
        default=None,
        help=f"keep each test's pcaps always (default) or only when it failed (${KEEP_ENV})",
    )


def keep_policy(config: pytest.Config) -> str:
    value = config.getoption("keep_captures", default=None) or os.environ.get(KEEP_ENV)
    value = (value or "always").strip().lower()
    if value not in KEEP_CHOICES:
        raise pytest.UsageError(f"{KEEP_ENV}={value!r}: use one of {', '.join(KEEP_CHOICES)}")
    return value


def _safe(text: str, limit: int) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_.") or "x"
    if len(safe) <= limit:
        return safe
    digest = hashlib.sha1(text.encode()).hexdigest()[:8]
    return f"{safe[: limit - 9]}-{digest}"


class Captures:
    """The links one test watches; `watch()` starts a capture, the fixture ends them all."""

    def __init__(self, directory: Path, stem: str) -> None:
        self.directory = directory
        self.stem = stem
        self.links: dict[str, Link] = {}
        self.transcript_path = directory / f"{stem}.transcript.txt"
        self._t0 = time.monotonic()
        self.logs: list[Path] = []  # kept as evidence only if the test failed

    def keep_if_failed(self, path: str | os.PathLike[str] | None) -> None:
        """A log (a SUT's, a reference peer's) to attach to the test's report entry if the
        test fails: what the node under test did, beside the captures."""
        if path is not None:
            self.logs.append(Path(path))

    def watch(self, ns: str | None, iface: str, label: str | None = None) -> Link:
        """Capture every frame on `iface` in namespace `ns` from now on; the link to talk on.

        Watching the same (ns, iface) twice returns the same link.
        """
        for link in self.links.values():
            if (link.ns, link.iface) == (ns, iface):
                return link
        label = _safe(label or (f"{ns}-{iface}" if ns else iface), 60)
        if label in self.links:
            raise ValueError(f"captures: label {label!r} already names another link")
        pcap = self.directory / f"{self.stem}.{label}.pcap"
        link = Link(ns, iface, label, pcap=pcap)
        link.start()
        self.links[label] = link
        return link

    def watch_link(self, lab: Lab, link: int, label: str | None = None) -> Link:
        """Capture access link `link` of `lab` whole: its bridge in the `sw` namespace
        (every frame between the AR, the MN's interfaces and any host on the link).
        Label `access<link>` unless told."""
        if not 1 <= link <= len(lab.plan.access):
            raise ValueError(f"no access link {link} in this lab (1..{len(lab.plan.access)})")
        return self.watch(lab.ns("sw"), f"br{link}", label or f"access{link}")

    def watch_node(self, lab: Lab, node: str, iface: str, label: str | None = None) -> Link:
        """Capture interface `iface` of lab node `node` ("ar1", "mn", "core"...); what
        that node sends and receives there. Label `<node>-<iface>` unless told."""
        return self.watch(lab.ns(node), iface, label or f"{node}-{iface}")

    def __getitem__(self, label: str) -> Link:
        return self.links[label]

    def __iter__(self) -> Iterator[Link]:
        return iter(list(self.links.values()))

    def __len__(self) -> int:
        return len(self.links)

    @property
    def paths(self) -> list[Path]:
        """The pcap of each link, in the order they were watched."""
        return [link.capture.pcap for link in self.links.values() if link.capture.pcap]

    def close(self) -> None:
        """Stop every capture (each drains what is queued) and write the transcript."""
        for link in self.links.values():
            link.close()
        entries = sorted(e for link in self.links.values() for e in link.transcript)
        if entries:
            lines = [f"{t - self._t0:+9.3f} s {text}" for t, text in entries]
            self.transcript_path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def files(self) -> list[Path]:
        out = list(self.paths)
        if self.transcript_path.exists():
            out.append(self.transcript_path)
        return [p for p in out if p.exists()]


class _OutcomeRecorder:
    """Marks an item whose setup, call or teardown failed (xfail included: evidence wanted)."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, Any, Any]:
        report = yield
        if report.failed or (report.skipped and hasattr(report, "wasxfail")):
            item.stash[_FAILED] = True
        return report


def _capture_dir(request: pytest.FixtureRequest) -> Path:
    from harness.pytest_plugin import STATE

    st = request.config.stash.get(STATE, None)
    if st is None:
        base = Path(request.getfixturevalue("tmp_path"))
    else:
        base = st.options.report_dir / CAPTURES_SUBDIR
    return base / _safe(request.node.nodeid, 150)


def _attacher(request: pytest.FixtureRequest) -> Callable[[Path], None]:
    try:
        attach: Callable[[Path], None] = request.getfixturevalue("attach")
        return attach
    except pytest.FixtureLookupError:
        pass

    def fallback(path: Path) -> None:  # the dmmconf plugin is not loaded: do what it would
        resolved = str(Path(path).resolve())
        request.node.user_properties.append(("attachment", resolved))
        with contextlib.suppress(Exception):
            import allure

            allure.attach.file(resolved, name=Path(resolved).name)

    return fallback


@pytest.fixture
def captures(request: pytest.FixtureRequest) -> Iterator[Captures]:
    """Capture the links this test watches (`captures.watch(ns, iface, label)`) as evidence."""
    missing = _netns.missing_privileges()
    if missing:
        verdicts.not_run(f"cannot capture on lab links: {missing}", hint=_netns.PRIVILEGE_HINT)
    policy = keep_policy(request.config)
    if not request.config.pluginmanager.has_plugin(_RECORDER):
        request.config.pluginmanager.register(_OutcomeRecorder(), _RECORDER)
    directory = _capture_dir(request)
    shutil.rmtree(directory, ignore_errors=True)  # a previous run's files for this test
    directory.mkdir(parents=True, exist_ok=True)
    attach = _attacher(request)
    item = request.node
    caps = Captures(directory, _safe(item.name, 60))
    try:
        yield caps
    finally:
        caps.close()
        failed = item.stash.get(_FAILED, False)
        if policy == "always" or failed:
            for path in caps.files():
                attach(path)
        else:
            shutil.rmtree(directory, ignore_errors=True)
        if failed:  # the nodes' logs: evidence of a failure only (they can be large)
            for path in caps.logs:
                if path.is_file():
                    attach(path)
