"""`dmmconf doctor`: what this machine offers the lab, the reference daemons and the suites.

A thin shell over harness.lab.probes: one table (or --json), exit status 1 only when
something without a fallback is missing.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "doctor",
        help="check this machine: privileges, kernel features, Debian tools, Python packages",
        description="Probes everything the lab, the reference daemons and the suites use "
        "(kernel features in throw-away network namespaces; nothing of the host changes) and "
        "prints, for each item, ok, missing (with the fix) or fallback (in use). Exit status "
        "1 when something without a fallback is missing, else 0.",
    )
    p.add_argument("--json", action="store_true", help="the findings as JSON")
    p.add_argument(
        "--datapath",
        choices=("auto", "kernel", "userspace"),
        default=None,
        help="check this multicast data path request (default: DMMCONF_DATAPATH, else auto)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.lab import probes

    start = time.monotonic()
    findings = probes.run_all(args.datapath)
    elapsed = time.monotonic() - start
    blocking = probes.blocking(findings)
    if args.json:
        print(
            json.dumps(
                {
                    "ok": not blocking,
                    "seconds": round(elapsed, 3),
                    "findings": [f.as_dict() for f in findings],
                },
                indent=2,
            )
        )
    else:
        print(probes.table(findings))
        if blocking:
            print(f"missing: {', '.join(f.name for f in blocking)} (see the fix under each)")
    return 1 if blocking else 0
