"""`dmmconf vectors list | export --pcap FILE`: the golden and malformed vectors."""

from __future__ import annotations

import argparse
from typing import Any

from scapy.utils import RawPcapWriter

import vectors
from harness.errors import UserError
from harness.wire import layers as _layers  # noqa: F401  (scapy dissects with every project layer)

LINKTYPE_IPV6 = 229


def register(sub: Any) -> None:
    p = sub.add_parser("vectors", help="list the packet vectors or export them as a pcap")
    vsub = p.add_subparsers(dest="action", required=True)
    ls = vsub.add_parser("list", help="one line per vector: kind, name, source")
    ls.set_defaults(func=list_vectors)
    ex = vsub.add_parser("export", help="write every vector, golden then malformed, to a pcap")
    ex.add_argument("--pcap", metavar="FILE", required=True, help="the pcap file to write")
    ex.set_defaults(func=export)


def list_vectors(args: argparse.Namespace) -> int:
    for v in vectors.everything():
        print(f"{v.kind:9} {v.name:40} {v.source}")
    return 0


def export(args: argparse.Namespace) -> int:
    everything = vectors.everything()
    try:
        writer = RawPcapWriter(args.pcap, linktype=LINKTYPE_IPV6, sync=True)
    except OSError as exc:
        raise UserError(f"cannot write {args.pcap}: {exc.strerror or exc}") from None
    with writer:
        for v in everything:
            writer.write(v.raw)
    print(f"wrote {len(everything)} vectors to {args.pcap}")
    return 0
