"""`dmmconf ha ...`: the reference Home Agent daemon, run inside an access router's namespace.

The options are the contract of harness/sut/profiles/reference-ha.toml. Options for features
the reference does not implement yet are accepted and noted on start-up (see
harness/reference/ha_daemon.py for what is done). Timers given explicitly are used as they
are; those left out take the RFC's default multiplied by --time-scale.
"""

from __future__ import annotations

import argparse
import ipaddress
from typing import Any

from harness.errors import UserError

_IGNORED = ("mn_id", "min_bu_lifetime")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, not {text}")
    return value


def _interval_pair(text: str) -> tuple[float, float]:
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected MIN,MAX (seconds), not {text!r}")
    low, high = (_positive(p) for p in parts)
    return low, high


def register(sub: Any) -> None:
    p = sub.add_parser("ha", help="run the reference Home Agent (inside an AR's namespace)")
    p.add_argument("--iface", required=True, help="the access link interface")
    p.add_argument("--uplink", default=None, help="the uplink interface (towards the core)")
    p.add_argument("--prefix", required=True, help="the home network prefix (IPv6 /64)")
    p.add_argument("--address", required=True, help="the home agent's own IPv6 address")
    p.add_argument(
        "--data-plane",
        default=None,
        metavar="ADDRESS",
        help="separate the control and data plane functions (draft §9): the data plane "
        "tunnels from ADDRESS (added to --iface while it runs), and each BA names it in an "
        "Alternate Home Agent Tunnel Address option; BUs still go to --address",
    )
    p.add_argument(
        "--address4",
        default=None,
        help="its IPv4 address on the home link (dual stack, RFC 5555): with it the HA hands "
        "out IPv4 home addresses from --ipv4-pool",
    )
    p.add_argument(
        "--ipv4-pool",
        default=None,
        help="the IPv4 home addresses it may assign (CIDR; default: the second eighth of the "
        "home link's IPv4 subnet that --address4 is on, read from --iface)",
    )
    p.add_argument(
        "--dns-server", default=None, help="the DNS server it updates (RFC 5026 §6, RFC 2136)"
    )
    p.add_argument("--domain", default=None, help="the home domain, the zone it updates")
    p.add_argument(
        "--tsig-key-file",
        default=None,
        help="the TSIG key of the updates, in named.conf's key statement form (RFC 5026 §9.5)",
    )
    p.add_argument(
        "--dns-timeout",
        type=_positive,
        default=1.0,
        help="seconds a DNS update may take before the BA says 130 (DNS update failed)",
    )
    p.add_argument(
        "--mn-fqdn",
        action="append",
        default=[],
        help="a name its mobile nodes may have updated (repeatable; none: any in --domain)",
    )
    p.add_argument(
        "--dns-remove-on-expiry",
        action="store_true",
        help="remove the DNS entry when a binding expires (draft §6 MAY)",
    )
    p.add_argument("--spi", type=int, default=None, help="RFC 4285 mobility SPI of the MN-HA SA")
    p.add_argument("--key-file", default=None, help="the MN-HA shared key (hex text)")
    p.add_argument("--mn-id", default=None, help="the MN's NAI (accepted, not checked yet)")
    p.add_argument("--max-lifetime", type=int, default=420, help="seconds granted at most")
    p.add_argument("--min-bu-lifetime", type=float, default=None, help="accepted, not used")
    p.add_argument(
        "--mld-query-interval",
        type=_positive,
        default=None,
        help="seconds between MLD General Queries to each MN (RFC 3810 §9.2: 125 x time scale)",
    )
    p.add_argument(
        "--mld-query-response-interval",
        type=_positive,
        default=None,
        help="Maximum Response Delay of the queries, seconds (RFC 3810 §9.3: 10 x time scale)",
    )
    p.add_argument(
        "--ra-interval",
        type=_interval_pair,
        default=None,
        metavar="MIN,MAX",
        help="send Router Advertisements with the Home Agent Information option on --iface "
        "every MIN..MAX seconds (RFC 6275 §7.5 allows 0.03,0.07 at least); none without it",
    )
    p.add_argument(
        "--time-scale",
        type=_positive,
        default=1.0,
        help="factor for the RFC default of every timer not given (lifetimes are not scaled)",
    )
    p.add_argument("--workdir", default=None, help="working directory (accepted)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.netproto import advertiser
    from harness.reference import ha_daemon

    try:
        prefix = ipaddress.IPv6Network(args.prefix, strict=False)
        address = ipaddress.IPv6Address(args.address)
        data_plane = ipaddress.IPv6Address(args.data_plane) if args.data_plane else None
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
    scale = args.time_scale
    if scale > 1:
        raise UserError(f"--time-scale: a factor in (0, 1], not {scale:g}")
    query = args.mld_query_interval or ha_daemon.DEFAULT_QUERY_INTERVAL * scale
    response = args.mld_query_response_interval or min(
        ha_daemon.DEFAULT_QUERY_RESPONSE_INTERVAL * scale, query
    )
    if response > query:  # RFC 3810 §9.3
        raise UserError(
            f"--mld-query-response-interval {response:g} s exceeds the query interval {query:g} s"
        )
    if args.ra_interval is not None:
        try:
            advertiser.RouterAdvertiser.check_intervals(*args.ra_interval)
        except ValueError as exc:
            raise UserError(f"--ra-interval: {exc}") from None
    tsig_key = None
    if args.tsig_key_file is not None:
        from harness.reference import ha_dns

        try:
            tsig_key = ha_dns.read_tsig_key(args.tsig_key_file)
        except (OSError, ValueError) as exc:
            raise UserError(f"--tsig-key-file {args.tsig_key_file}: {exc}") from None
    if (args.dns_server is None) != (args.domain is None):
        raise UserError("--dns-server and --domain go together")
    address4, pool = _ipv4(args)
    ignored = [f"--{n.replace('_', '-')}" for n in _IGNORED if getattr(args, n) is not None]
    if ignored:
        print(f"dmmconf ha: note: accepted but not used yet: {', '.join(ignored)}", flush=True)
    opts = ha_daemon.Options(
        iface=args.iface,
        uplink=args.uplink,
        prefix=prefix,
        address=address,
        keys=keys,
        max_lifetime=args.max_lifetime,
        faults=ha_daemon.faults_from_env(),
        mld_query_interval=query,
        mld_query_response_interval=response,
        ra_interval=args.ra_interval,
        time_scale=scale,
        dns_server=args.dns_server,
        domain=args.domain,
        tsig_key=tsig_key,
        dns_timeout=args.dns_timeout,
        mn_fqdns=tuple(args.mn_fqdn),
        dns_remove_on_expiry=args.dns_remove_on_expiry,
        address4=address4,
        ipv4_pool=pool,
        data_plane=data_plane,
    )
    return ha_daemon.main(opts)


def _ipv4(args: argparse.Namespace) -> tuple[Any, Any]:
    """--address4 and --ipv4-pool: (address, pool), either None without IPv4."""
    from harness.reference import ha_io

    if args.address4 is None:
        if args.ipv4_pool is not None:
            raise UserError("--ipv4-pool needs --address4")
        return None, None
    try:
        address4 = ipaddress.IPv4Address(args.address4)
        if args.ipv4_pool is not None:
            return address4, ipaddress.IPv4Network(args.ipv4_pool, strict=False)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    subnet = ha_io.ipv4_subnet(args.iface, address4)
    if subnet is None:
        print(f"dmmconf ha: note: {address4} is not on {args.iface}: no IPv4 pool", flush=True)
        return address4, None
    return address4, ha_io.default_ipv4_pool(subnet)
