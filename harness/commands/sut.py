"""`dmmconf sut`: SUT profiles without a lab: `check` one, or print the `fields` it may hold."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "sut",
        help="check a SUT profile without a lab, or list the fields a profile may hold",
        description="Work with SUT profiles (TOML files describing an external HA or MN).",
    )
    sub = p.add_subparsers(dest="sut_command", required=True)
    c = sub.add_parser(
        "check",
        help="validate a profile completely, as `dmmconf run` does before the lab starts",
        description="Validate a profile: every field and its type, the placeholders of its "
        "commands, its placement against the lab plan (and where the conformance run puts "
        "the SUT), and the programs its commands run (on PATH or an executable file). One "
        "line naming the field and exit status 2 when something is wrong; exit 0 when the "
        "run would accept it.",
    )
    c.add_argument("profile", metavar="PROFILE", help="the profile file (TOML)")
    c.add_argument("--role", choices=("ha", "mn"), help="the role the run will test")
    c.set_defaults(func=check)
    f = sub.add_parser(
        "fields",
        help="every profile field and placeholder (the README's tables, as markdown)",
    )
    f.set_defaults(func=fields)


def check(args: argparse.Namespace) -> int:
    from harness.sut import profile as profile_mod

    p = profile_mod.check(args.profile, role=args.role, for_run=True)
    claimed = ", ".join(sorted(p.features.claimed)) or "none"
    print(
        f"profile {p.source}: ok: {p.role} {p.name!r} at {p.placement}; ready by "
        f"{p.ready.describe()} within {p.ready.timeout:g} s; claims: {claimed}"
    )
    return 0


def fields(args: argparse.Namespace) -> int:
    from harness.sut import profile as profile_mod

    sys.stdout.write(profile_mod.markdown_tables())
    return 0
