"""`dmmconf mn ...`: the reference Mobile Node daemon, run inside the MN's namespace.

The options are the contract of harness/sut/profiles/reference-mn.toml; what the daemon does
is described in harness/reference/mn_daemon.py.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from harness.errors import UserError

# Accepted for the profile contract, not used: features the reference MN does not claim.
_IGNORED = ("mn_id",)


def register(sub: Any) -> None:
    p = sub.add_parser("mn", help="run the reference Mobile Node (inside the MN's namespace)")
    p.add_argument("--ifaces", nargs="+", required=True, help="the air interfaces to manage")
    p.add_argument("--spi", type=int, default=None, help="RFC 4285 mobility SPI of the MN-HA SA")
    p.add_argument("--key-file", default=None, help="the MN-HA shared key (hex text)")
    p.add_argument("--mn-id", default=None, help="the MN's NAI / FQDN (not used yet)")
    p.add_argument(
        "--dns-server", default=None, help="DNS server: find home agents by DNS (RFC 5026 §5)"
    )
    p.add_argument("--domain", default=None, help="DNS domain of the SRV lookup (RFC 5026 §5.1.2)")
    p.add_argument(
        "--ha-fqdn",
        nargs="?",
        default=None,
        const=None,
        help="look this home agent name up instead of SRV (given bare: none)",
    )
    p.add_argument(
        "--fqdn", default=None, help="the MN's FQDN: DNS Update option in its BUs (RFC 5026 §8.1)"
    )
    p.add_argument(
        "--dhcp",
        action="store_true",
        help="find home agents by DHCPv6 Information-request (RFC 6610, draft §7)",
    )
    p.add_argument(
        "--dhcpv4",
        action="store_true",
        help="on a link without IPv6: an IPv4 address and home network information by DHCPv4 "
        "(draft §8, draft-xia-mext-hioptv4)",
    )
    p.add_argument(
        "--bu-lifetime",
        type=float,
        default=400.0,
        help="the binding lifetime its BUs ask for, protocol seconds (sent in 4 s units)",
    )
    p.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="real seconds per protocol second (binding lifetimes, BA timeouts)",
    )
    p.add_argument(
        "--no-deregister", action="store_true", help="keep bindings when their sessions end"
    )
    p.add_argument(
        "--flows",
        nargs="*",
        default=[],
        metavar="IFACE=PORT",
        help="bind the sessions with a correspondent's PORT to interface IFACE (RFC 6089)",
    )
    p.add_argument(
        "--workdir",
        default=None,
        help="working directory: a new flow policy written to its file 'flows' (IFACE=PORT "
        "words) is taken while the MN runs",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.reference import ha_daemon, mn_core, mn_daemon

    if (args.spi is None) != (args.key_file is None):
        raise UserError("--spi and --key-file go together")
    key = None
    if args.key_file is not None:
        try:
            key = ha_daemon.read_key(args.key_file)
        except OSError as exc:
            raise UserError(f"cannot read {args.key_file}: {exc.strerror or exc}") from None
    units = -(-int(args.bu_lifetime) // 4)  # RFC 6275 §6.1.7: 4 s units, rounded up
    if not 1 <= units <= 0xFFFF:
        raise UserError(f"--bu-lifetime: 4..262140 s, not {args.bu_lifetime:g}")
    if not args.time_scale > 0:
        raise UserError(f"--time-scale must be positive, not {args.time_scale}")
    ignored = [f"--{n.replace('_', '-')}" for n in _IGNORED if getattr(args, n) is not None]
    if ignored:
        print(f"dmmconf mn: note: accepted but not used: {', '.join(ignored)}", flush=True)
    flows = []
    for word in args.flows:
        iface, _, port = word.partition("=")
        if iface not in args.ifaces or not port.isdigit() or not 0 < int(port) < 0x10000:
            raise UserError(f"--flows: {word!r} is not IFACE=PORT with IFACE in --ifaces")
        flows.append(mn_core.FlowPolicy(iface, int(port)))
    opts = mn_daemon.Options(
        ifaces=tuple(args.ifaces),
        spi=args.spi,
        key=key,
        mn_id=args.mn_id,
        bu_lifetime=units,
        time_scale=args.time_scale,
        deregister=not args.no_deregister,
        fqdn=args.fqdn,
        dns_server=args.dns_server,
        domain=args.domain,
        ha_fqdn=args.ha_fqdn,
        dhcp=args.dhcp,
        dhcpv4=args.dhcpv4,
        flows=tuple(flows),
        flows_file=None if args.workdir is None else os.path.join(args.workdir, "flows"),
        faults=mn_daemon.faults_from_env(),
    )
    return mn_daemon.main(opts)
