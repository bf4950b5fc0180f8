"""`dmmconf ha ...`: the reference Home Agent daemon, run inside an access router's namespace.

The options are the contract of harness/sut/profiles/reference-ha.toml. Options for features
the reference does not implement yet are accepted and noted on start-up (see
harness/reference/ha_daemon.py for what is done).
"""

from __future__ import annotations

import argparse
import ipaddress
from typing import Any

from harness.errors import UserError

_IGNORED = ("address4", "dns_server", "domain", "mn_id", "min_bu_lifetime", "mld_query_interval")


def register(sub: Any) -> None:
    p = sub.add_parser("ha", help="run the reference Home Agent (inside an AR's namespace)")
    p.add_argument("--iface", required=True, help="the access link interface")
    p.add_argument("--uplink", default=None, help="the uplink interface (towards the core)")
    p.add_argument("--prefix", required=True, help="the home network prefix (IPv6 /64)")
    p.add_argument("--address", required=True, help="the home agent's own IPv6 address")
    p.add_argument("--address4", default=None, help="IPv4 address (accepted, not used yet)")
    p.add_argument("--dns-server", default=None, help="DNS server (accepted, not used yet)")
    p.add_argument("--domain", default=None, help="DNS domain (accepted, not used yet)")
    p.add_argument("--spi", type=int, default=None, help="RFC 4285 mobility SPI of the MN-HA SA")
    p.add_argument("--key-file", default=None, help="the MN-HA shared key (hex text)")
    p.add_argument("--mn-id", default=None, help="the MN's NAI (accepted, not checked yet)")
    p.add_argument("--max-lifetime", type=int, default=420, help="seconds granted at most")
    p.add_argument("--min-bu-lifetime", type=float, default=None, help="accepted, not used")
    p.add_argument("--mld-query-interval", type=float, default=None, help="accepted, not used")
    p.add_argument("--time-scale", type=float, default=1.0, help="accepted, not used yet")
    p.add_argument("--workdir", default=None, help="working directory (accepted)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.reference import ha_daemon

    try:
        prefix = ipaddress.IPv6Network(args.prefix, strict=False)
        address = ipaddress.IPv6Address(args.address)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    keys: dict[int, bytes] = {}
    if (args.spi is None) != (args.key_file is None):
        raise UserError("--spi and --key-file go together")
    if args.key_file is not None:
        try:
            keys[args.spi] = ha_daemon.read_key(args.key_file)
        except OSError as exc:
            raise UserError(f"cannot read {args.key_file}: {exc.strerror or exc}") from None
    ignored = [f"--{n.replace('_', '-')}" for n in _IGNORED if getattr(args, n) is not None]
    if args.time_scale != 1.0:
        ignored.append("--time-scale")
    if ignored:
        print(f"dmmconf ha: note: accepted but not used yet: {', '.join(ignored)}", flush=True)
    opts = ha_daemon.Options(
        iface=args.iface,
        uplink=args.uplink,
        prefix=prefix,
        address=address,
        keys=keys,
        max_lifetime=args.max_lifetime,
        mutant=ha_daemon.mutant_from_env(),
    )
    return ha_daemon.main(opts)
