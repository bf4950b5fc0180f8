"""`dmmconf`: the suite's command line. Each sub-command lives in harness/commands/."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from harness.commands import all_commands
from harness.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dmmconf",
        description="Conformance suite for DMM with multicast "
        "(draft-sarikaya-mext-multicastdmm-01)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for module in all_commands():
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"dmmconf {args.command}: {exc}", file=sys.stderr)
        return exc.exit_status
    except BrokenPipeError:  # `dmmconf clauses | head`
        return 0
    except KeyboardInterrupt:
        print(f"dmmconf {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug of ours: one line, unless the user asks for the trace
        if os.environ.get("DMMCONF_DEBUG"):
            raise
        print(
            f"dmmconf {args.command}: internal error: {type(exc).__name__}: {exc} "
            "(set DMMCONF_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 3


if __name__ == "__main__":
    sys.exit(main())
