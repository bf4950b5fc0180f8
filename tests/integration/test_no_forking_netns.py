"""pyroute2's own namespace helpers (netns.create, NetNS, IPRoute(netns=...)) fork the calling
process. A fork of a pytest-xdist worker copies only one thread and can outlive it: orphaned
copies kept the run's stdout open (so CI never saw it end) and a worker took a stray
KeyboardInterrupt. harness.lab.netns does the same without forking; this keeps it that way."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORKING = re.compile(r"from pyroute2 import .*\b(netns|NetNS)\b|pyroute2\.netns|\bnetns\s*=")


def test_nothing_uses_pyroute2_forking_namespace_helpers() -> None:
    offenders = []
    for path in sorted([*ROOT.glob("harness/**/*.py"), *ROOT.glob("tests/**/*.py")]):
        if path.name == Path(__file__).name:
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            code = line.split("#", 1)[0]
            if (
                FORKING.search(code)
                and "IPRoute" in code
                or re.search(r"from pyroute2 import .*\b(netns|NetNS)\b|pyroute2\.netns", code)
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert offenders == [], "use harness.lab.netns instead:\n" + "\n".join(offenders)
