"""`dmmconf lab up|status|down`: build the lab by hand, look at it, remove it."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from harness.errors import UserError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "lab",
        help="build, show or remove a network lab to explore by hand (needs root)",
        description="A persistent lab (the default topology of harness/lab/plan.py in network "
        "namespaces) that stays up after the command returns, for exploring with "
        "`ip netns exec`, tcpdump, and so on. Tests build their own labs.",
    )
    actions = p.add_subparsers(dest="action", required=True)
    up = actions.add_parser("up", help="build a lab and leave it up; print how to enter it")
    up.add_argument(
        "--access-routers",
        type=int,
        default=None,
        metavar="N",
        help="number of access routers/links (default 3)",
    )
    up.add_argument(
        "--mn-links",
        default="1",
        metavar="L[,L...]",
        help="the access link of each MN interface at start (default 1: mn0 on link 1)",
    )
    up.add_argument(
        "--ipv4-only",
        default="",
        metavar="L[,L...]",
        help="access links (2..N) that are IPv4-only networks behind a NAT in their AR: no "
        "IPv6 address, RA or MLD there (default: none)",
    )
    up.add_argument(
        "--no-multicast-routing", action="store_true", help="no MLD proxy in the routers"
    )
    up.add_argument(
        "--datapath",
        choices=("auto", "kernel", "userspace"),
        default=None,
        help="the routers' multicast data path: the kernel's multicast routing, or the "
        "userspace forwarder that needs no optional kernel feature (default: "
        "DMMCONF_DATAPATH, else auto: kernel where this kernel has it)",
    )
    up.add_argument("--json", action="store_true", help="print the description as JSON")
    st = actions.add_parser("status", help="the labs on this machine, and their state")
    st.add_argument("--run", metavar="RUNID", help="only this run")
    st.add_argument("--json", action="store_true", help="as JSON")
    down = actions.add_parser("down", help="remove the manual lab(s), and what dead runs left")
    down.add_argument("--run", metavar="RUNID", help="only this run (any run, manual or not)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.lab import registry, topology

    if args.action == "up":
        return _up(args, topology)
    if args.action == "status":
        return _status(args, registry, topology)
    return _down(args, registry)


def _link_list(text: str, option: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise UserError(f"{option}: a comma-separated list of link numbers, not {text!r}") from None


def _up(args: argparse.Namespace, topology: Any) -> int:
    links = _link_list(args.mn_links, "--mn-links")
    try:
        lab = topology.Lab(
            access_routers=args.access_routers,
            ipv4_only=_link_list(args.ipv4_only, "--ipv4-only"),
            mn_links=links,
            multicast_routing=not args.no_multicast_routing,
            datapath=args.datapath,
            manual=True,
        )
        lab.up()
    except topology.LabUnavailable as exc:
        hint = f" ({exc.hint})" if exc.hint else ""
        raise UserError(f"{exc}{hint}") from None
    except ValueError as exc:
        raise UserError(str(exc)) from None
    info = lab.describe()
    lab.keep()
    if args.json:
        json.dump(info, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    out = sys.stdout.write
    out(f"lab {info['runid']} is up ({info['timings']['up']:.3f} s)\n\nnamespaces:\n")
    for node, ns in info["namespaces"].items():
        out(f"  {node:5} {ns}\n")
    out("\nlinks:\n")
    for line in info["links"]:
        out(f"  {line}\n")
    out("\naddresses:\n")
    for node, rows in info["addresses"].items():
        for row in rows:
            out(f"  {node:5} {row}\n")
    out(f"\nmulticast routing: {info['multicast_routing']}\n")
    out(f"\nenter a node:  {info['enter']}   (any node: ip netns exec <namespace> <command>)\n")
    out(f"look at it:    dmmconf lab status --run {info['runid']}\n")
    out(f"remove it:     dmmconf lab down --run {info['runid']}   (or: dmmconf lab down)\n")
    return 0


def _status(args: argparse.Namespace, registry: Any, topology: Any) -> int:
    records = [r for r in registry.records() if args.run in (None, r.runid)]
    if args.run and not records:
        raise UserError(f"no lab with run id {args.run!r} (see `dmmconf lab status`)")
    report: list[dict[str, Any]] = []
    for r in records:
        entry: dict[str, Any] = {
            "runid": r.runid,
            "manual": r.manual,
            "owner_pid": r.pid,
            "owner_alive": r.owner_alive(),
            "namespaces": r.namespaces,
            "helpers": [
                {"pid": h.pid, "what": h.what, "alive": registry.alive(h.pid, h.start)}
                for h in r.helpers
            ],
        }
        if args.run or r.manual:
            try:
                entry["kernel"] = topology.inspect(r.namespaces)
            except PermissionError as exc:
                entry["kernel"] = f"cannot look inside: {exc} (run as root)"
        report.append(entry)
    unclaimed = (
        sorted(
            set(registry.netns.list_names(registry.PREFIX))
            - {n for r in records for n in r.namespaces}
        )
        if not args.run
        else []
    )
    if args.json:
        json.dump({"runs": report, "unclaimed_namespaces": unclaimed}, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    out = sys.stdout.write
    if not report:
        out("no lab on this machine (build one with `dmmconf lab up`)\n")
    for e in report:
        kind = "manual" if e["manual"] else ("running" if e["owner_alive"] else "left over")
        out(f"lab {e['runid']} ({kind}, made by pid {e['owner_pid']})\n")
        for h in e["helpers"]:
            out(f"  helper {h['what']} pid {h['pid']}: {'running' if h['alive'] else 'gone'}\n")
        kernel = e.get("kernel")
        if isinstance(kernel, str):
            out(f"  {kernel}\n")
        elif kernel is None:
            out(f"  namespaces: {' '.join(e['namespaces'])}\n")
        else:
            for ns, rows in kernel.items():
                if not rows:
                    out(f"  {ns}: missing\n")
                    continue
                out(f"  {ns}   (enter: ip netns exec {ns} bash)\n")
                for row in rows:
                    if row["ifname"] == "lo":
                        continue
                    master = f" master {row['master']}" if row["master"] else ""
                    addrs = " ".join(a for a in row["addresses"] if not a.startswith("fe80"))
                    line = f"    {row['ifname']:8} {row['state']:15}{master} {addrs}"
                    out(line.rstrip() + "\n")
    if unclaimed:
        out(f"dmm- namespaces no run claims (the next lab reaps them): {' '.join(unclaimed)}\n")
    return 0


def _down(args: argparse.Namespace, registry: Any) -> int:
    removed: list[str] = []
    chosen: list[Any] = []
    try:
        with registry.locked():
            chosen = [
                r
                for r in registry.records()
                if (args.run is None and r.manual) or args.run == r.runid
            ]
            if args.run and not chosen:
                raise UserError(f"no lab with run id {args.run!r} (see `dmmconf lab status`)")
            for r in chosen:
                removed += registry.destroy(r)
                print(f"removed lab {r.runid} ({len(r.namespaces)} namespaces)")
    except PermissionError as exc:
        raise UserError(f"cannot remove the lab: {exc} (run as root)") from None
    try:
        reaped = registry.reap()
    except PermissionError as exc:
        raise UserError(f"cannot remove namespaces: {exc} (run as root)") from None
    if reaped:
        print(f"reaped {len(reaped)} namespace(s) of dead runs")
    if not chosen and not reaped:
        print("nothing to remove")
    return 0
