"""SUT profiles: a TOML file that describes an external HA or MN to the harness.

A profile says what the implementation is (``role``, ``name``), where it sits in the lab
(``placement``), how to start and stop it inside its namespace (``[commands]``, templates
with ``{placeholders}`` filled from the lab's address plan), how to know it is ready
(``[ready]``), which optional features it claims (``[features]``: a test of an unclaimed
feature ends not-applicable), which timer values it accepts (``[timers]``) and its MN-HA
security association (``[keys]``). Example (the bundled reference HA's profile is another)::

    role = "ha"
    name = "acme-ha 2.1"
    placement = "ar1"            # the access router whose home agent it replaces

    [commands]
    start = "/opt/acme/bin/ha --dev {iface} --prefix {prefix6} --spi {spi} --key {key_file}"
    stop = "/opt/acme/bin/ha-ctl shutdown"   # optional: SIGTERM, then SIGKILL, otherwise
    stop_timeout = 5                          # optional, seconds

    [ready]                      # exactly one rule, and a deadline
    log_regex = "listening on .*"
    timeout = 10

    [features]                   # unlisted features are not claimed
    ipv4 = true
    mcoa = false

    [timers]                     # the values it accepts (defaults: the RFCs')
    min_bu_lifetime = 4
    ra_max_interval = 0.5

    [keys]                       # RFC 4285 MN-HA mobility SPI and shared key
    spi = 1000
    key = "00112233445566778899aabbccddeeff"

Every problem is refused when the file is loaded, with one line that names the file and
the field: ``profile acme.toml: [commands].start: unknown placeholder {ifce}``. Templates
are run by ``/bin/sh -c`` with every substituted value shell-quoted, so a template may use
shell syntax while the lab's values (paths, names) can never be read as shell code.
"""

from __future__ import annotations

import math
import os
import re
import shlex
import shutil
import string
import sys
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from harness import verdicts
from harness.errors import UserError
from harness.lab import plan as lab_plan

Role = Literal["ha", "mn"]
ROLES: tuple[str, ...] = ("ha", "mn")


class ProfileError(UserError):
    """A profile that cannot be used; the message is one line naming the file and the field."""


# --------------------------------------------------------------------------- features

# Optional features a profile may claim, and what each means (shown in not-applicable
# reasons). Anything not listed here is a typo and refused.
FEATURES: dict[str, str] = {
    "ipv4": "dual stack, IPv4 home address and IPv4 care-of address (RFC 5555, draft §8)",
    "mcoa": "multiple care-of registrations (RFC 5648)",
    "flow_bindings": "flow bindings (RFC 6089)",
    "cp_dp_split": "control/data plane separation (draft §9)",
    "dns_update": "DNS update of the home address (RFC 5026 §8)",
    "dns_remove_on_expiry": "removal of the DNS entry when a binding expires (draft §6 MAY)",
    "dhcp_bootstrap": "home network information from DHCPv6 (RFC 6610)",
    "dns_bootstrap": "home agent discovery by DNS, SRV or the HA's name (RFC 5026 §5.1)",
    "auth_rfc4285": "the Mobile IPv6 Authentication Protocol (RFC 4285)",
    "igmp": "IGMPv3 records in the Multicast State option (draft §8)",
    "nat_traversal": "UDP encapsulation through NAT (RFC 5555 §4.1)",
    "deregistration": "deregistration when the sessions on an HA's link end (draft §7)",
    "multi_interface": "several interfaces attached at once (draft §7.1)",
}


@dataclass(frozen=True)
class Features:
    """The optional features an implementation claims."""

    claimed: frozenset[str] = frozenset()

    def claims(self, feature: str) -> bool:
        if feature not in FEATURES:
            raise KeyError(f"unknown feature {feature!r} (known: {', '.join(FEATURES)})")
        return feature in self.claimed

    def require(self, feature: str, who: str = "the SUT") -> None:
        """End the calling test as not-applicable unless `feature` is claimed."""
        __tracebackhide__ = True
        if not self.claims(feature):
            verdicts.not_applicable(
                f"{who} does not claim {feature} ({FEATURES[feature]}): "
                f"[features].{feature} is not true in its profile"
            )


# ----------------------------------------------------------------------------- timers


@dataclass(frozen=True)
class Timers:
    """Timer values (seconds) the implementation accepts; the lab picks values within them.

    Defaults are the RFCs': RFC 6275 §5.1/§6.1.7 (BU lifetime in 4 s units, 16 bits),
    RFC 4861 §6.2.1 (MaxRtrAdvInterval 600 s, MinRtrAdvInterval 0.33 x that; RFC 6275
    §7.5 allows 0.03/0.07 s), RFC 3810 §9 (Query Interval 125 s, Query Response
    Interval 10 s). ``time_scale`` is the factor the implementation accepts for scaling
    every protocol timer down (1.0: it does not scale).
    """

    time_scale: float = 1.0
    min_bu_lifetime: float = 4.0
    max_bu_lifetime: float = 262140.0
    ra_min_interval: float = 198.0
    ra_max_interval: float = 600.0
    mld_query_interval: float = 125.0
    mld_query_response_interval: float = 10.0
    # Not an RFC timer: how long the HA waits for its DNS server before a BA says 130 (RFC
    # 5026 §8.1); not scaled. Default: a resolver's (resolv.conf(5) timeout, 5 s).
    dns_update_timeout: float = 5.0
    # Not an RFC timer: RFC 6275 gives a home agent no time to answer a BU in, so the HA says
    # how long it takes at most (its DAD and neighbour discovery included); not scaled. A BA
    # later than this fails as "reacted after X ms, allowed Y ms" (INT-15).
    answer_time: float = 2.0

    def as_values(self) -> dict[str, str]:
        return {f.name: _fmt_number(getattr(self, f.name)) for f in fields(self)}


def _fmt_number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


TIMER_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Timers))
# (smaller, larger) pairs that must be ordered
_TIMER_ORDER = (
    ("min_bu_lifetime", "max_bu_lifetime"),
    ("ra_min_interval", "ra_max_interval"),
    ("mld_query_response_interval", "mld_query_interval"),
)


# ------------------------------------------------------------------------------- keys


@dataclass(frozen=True)
class Keys:
    """The MN-HA mobility security association of RFC 4285 §5 (SPI, shared key, MN-ID)."""

    spi: int
    key: bytes = field(repr=False)
    mn_id: str = "mn@" + lab_plan.DOMAIN  # the NAI of RFC 4283 §3
    key_file_format: Literal["hex", "raw"] = "hex"

    def key_file_bytes(self) -> bytes:
        return self.key if self.key_file_format == "raw" else self.key.hex().encode() + b"\n"


# ---------------------------------------------------------------------------- readiness


@dataclass(frozen=True)
class Readiness:
    """How to know the SUT is ready: one rule, and the deadline for it."""

    kind: Literal["log_regex", "udp_port", "tcp_port", "command"]
    value: str | int
    timeout: float

    @property
    def pattern(self) -> re.Pattern[str]:
        assert self.kind == "log_regex"
        return re.compile(str(self.value))

    def describe(self) -> str:
        shown = repr(self.value) if isinstance(self.value, str) else str(self.value)
        return f"[ready].{self.kind} {shown}"


READY_RULES: tuple[str, ...] = ("log_regex", "udp_port", "tcp_port", "command")


# ---------------------------------------------------------------------------- placement


MN_FQDN = "mn." + lab_plan.DOMAIN  # the lab's mobile node's name in the home domain


@dataclass(frozen=True)
class Placement:
    """Where the SUT sits in the lab: the values its command templates may use.

    Built from the address plan (:mod:`harness.lab.plan`) by :meth:`for_ha` and
    :meth:`for_mn`; the lab passes the names it gave the namespace and interfaces.
    Fields that are None do not exist for that role (an MN has no uplink), and a
    template of that role may not use them.
    """

    where: str  # "ar1".."arN" or "mn": what a profile's `placement` names
    netns: str | None  # namespace name under /run/netns; None: the current namespace
    iface: str  # the main interface: an AR's access link, the MN's first interface
    ifaces: tuple[str, ...]  # every interface of the SUT's namespace the SUT should use
    prefix6: str  # the access link's /64 (for an MN: its home link's)
    address6: str  # the SUT's IPv6 address there (an HA's router address, the MN's HoA)
    ha_address: str  # the home agent's address (an HA: its own; an MN: its home HA's)
    dns_server: str
    domain: str
    workdir: str
    prefix4: str | None = None
    address4: str | None = None
    ha_address4: str | None = None
    ha_fqdn: str | None = None
    mn_fqdn: str | None = None  # the MN's own DNS name (RFC 5026 §8.1 MN identity)
    tsig_key_file: str | None = None  # the lab DNS server's update key (RFC 5026 §9.5)
    uplink_iface: str | None = None
    uplink_address6: str | None = None
    uplink_address4: str | None = None
    core_address6: str | None = None  # the next hop towards the core
    core_address4: str | None = None
    # an MN's flow policy (RFC 6089, draft §7.1): "IFACE=PORT" words, the UDP and TCP traffic
    # to destination PORT bound to interface IFACE
    flows: tuple[str, ...] = ()
    # the home agent names an MN is configured with for a lookup by name (RFC 5026 §5.1.1,
    # draft §7): none unless a test configures one; a start command without {ha_names}
    # cannot be given one
    ha_names: tuple[str, ...] = ()
    # an HA whose control and data plane functions are separate (draft §9): the address
    # its data plane function takes (for `[commands].split_args`)
    data_plane6: str | None = None

    @classmethod
    def for_ha(
        cls,
        plan: lab_plan.Plan,
        index: int,
        *,
        netns: str | None,
        iface: str,
        uplink_iface: str,
        workdir: str | os.PathLike[str],
        tsig_key_file: str | None = None,
    ) -> Placement:
        link = plan.link(index)
        return cls(
            where=link.name,
            netns=netns,
            iface=iface,
            ifaces=(iface, uplink_iface),
            prefix6=str(link.prefix6),
            address6=str(link.router6),
            ha_address=str(link.router6),
            dns_server=str(plan.dns.host6),
            domain=lab_plan.DOMAIN,
            workdir=str(workdir),
            prefix4=str(link.subnet4),
            address4=str(link.router4),
            ha_address4=str(link.router4),
            ha_fqdn=link.ha_fqdn,
            mn_fqdn=MN_FQDN,
            tsig_key_file=tsig_key_file,
            uplink_iface=uplink_iface,
            uplink_address6=str(link.ar_uplink6),
            uplink_address4=str(link.ar_uplink4),
            core_address6=str(link.core6),
            core_address4=str(link.core4),
            data_plane6=str(link.data_plane6),
        )

    @classmethod
    def for_mn(
        cls,
        plan: lab_plan.Plan,
        *,
        netns: str | None,
        ifaces: Sequence[str],
        workdir: str | os.PathLike[str],
        home_link: int = 1,
        flows: Sequence[str] = (),
        ha_names: Sequence[str] = (),
    ) -> Placement:
        if not ifaces:
            raise ValueError("an MN placement needs at least one interface")
        link = plan.link(home_link)
        return cls(
            where="mn",
            netns=netns,
            iface=ifaces[0],
            ifaces=tuple(ifaces),
            prefix6=str(link.prefix6),
            address6=str(plan.mn_address(home_link)),
            ha_address=str(link.router6),
            dns_server=str(plan.dns.host6),
            domain=lab_plan.DOMAIN,
            workdir=str(workdir),
            prefix4=str(link.subnet4),
            ha_address4=str(link.router4),
            ha_fqdn=link.ha_fqdn,
            mn_fqdn=MN_FQDN,
            flows=tuple(flows),
            ha_names=tuple(ha_names),
        )


_PLACEMENT_FIELDS = tuple(f.name for f in fields(Placement) if f.name != "where")
_HA_ONLY = frozenset(
    {
        "address4",
        "uplink_iface",
        "uplink_address6",
        "uplink_address4",
        "core_address6",
        "core_address4",
        "data_plane6",
    }
)
_KEY_PLACEHOLDERS = frozenset({"key_file", "spi", "mn_id"})
# Placeholders the adapter itself provides.
_RUNTIME_PLACEHOLDERS = frozenset({"python", "name", "role", "log_file"})


def placeholders(role: str) -> frozenset[str]:
    """Every placeholder a template of this role may use."""
    base = set(_PLACEMENT_FIELDS) | _KEY_PLACEHOLDERS | _RUNTIME_PLACEHOLDERS | set(TIMER_NAMES)
    if role != "ha":
        base -= _HA_ONLY
    return frozenset(base)


# ------------------------------------------------------------------------------ profile


@dataclass(frozen=True)
class Commands:
    start: str
    stop: str | None = None
    stop_timeout: float = 5.0
    move_flows: str | None = None  # an MN told a new flow policy ({flows}) while it runs
    # an HA: the words added to `start` to run it with its control and data plane functions
    # separate (draft §9), the data plane at {data_plane6}
    split_args: str | None = None


@dataclass(frozen=True)
class Profile:
    source: str  # where it was read from (for messages)
    role: Role
    name: str
    placement: str
    commands: Commands
    ready: Readiness
    features: Features = Features()
    timers: Timers = Timers()
    keys: Keys | None = None
    description: str = ""

    def values(
        self,
        placement: Placement,
        *,
        key_file: str | None = None,
        log_file: str | None = None,
        python: str | None = None,
    ) -> dict[str, str | tuple[str, ...]]:
        """The value of every placeholder for this placement (missing ones are left out)."""
        out: dict[str, str | tuple[str, ...]] = {}
        for name in _PLACEMENT_FIELDS:
            value = getattr(placement, name)
            if value is not None:
                out[name] = value
        out.update(self.timers.as_values())
        out["python"] = python or sys.executable
        out["name"] = self.name
        out["role"] = self.role
        if log_file is not None:
            out["log_file"] = log_file
        if self.keys is not None:
            out["spi"] = str(self.keys.spi)
            out["mn_id"] = self.keys.mn_id
            if key_file is not None:
                out["key_file"] = key_file
        return out

    def render(
        self,
        which: Literal["start", "stop", "move_flows"],
        values: Mapping[str, Any],
        *,
        split: bool = False,
    ) -> str:
        """The shell command for `which`, each value shell-quoted (a sequence: one word each);
        `split`: the start command with `[commands].split_args` (draft §9)."""
        template = {
            "start": self.commands.start,
            "stop": self.commands.stop,
            "move_flows": self.commands.move_flows,
        }[which]
        if split:
            if which != "start" or self.commands.split_args is None:
                raise ValueError(f"profile {self.source}: [commands].split_args is not set")
            template = f"{template} {self.commands.split_args}"
        if template is None:
            raise ValueError(f"profile {self.source}: [commands].{which} is not set")
        return render(template, values, where=f"profile {self.source}: [commands].{which}")

    def check_placement(self, placement: Placement) -> None:
        if placement.where != self.placement:
            raise ProfileError(
                f"profile {self.source}: placement = {self.placement!r}, but the lab "
                f"placed it at {placement.where!r}"
            )


def template_fields(template: str, where: str) -> list[str]:
    """The placeholder names of a template; malformed templates are refused."""
    names = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ProfileError(
            f"{where}: bad template: {exc} (write {{{{ and }}}} for braces)"
        ) from None
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name or not name.isidentifier():
            raise ProfileError(f"{where}: bad placeholder {{{name}}}: use a name like {{iface}}")
        if spec or conversion:
            raise ProfileError(
                f"{where}: placeholder {{{name}}} has a format spec or conversion; "
                "only plain {name} is allowed"
            )
        names.append(name)
    return names


def render(template: str, values: Mapping[str, Any], where: str = "template") -> str:
    quoted: dict[str, str] = {}
    for name in template_fields(template, where):
        if name not in values:
            raise ProfileError(f"{where}: no value for placeholder {{{name}}} in this lab")
        value = values[name]
        if isinstance(value, tuple | list):
            quoted[name] = " ".join(shlex.quote(str(v)) for v in value)
        else:
            quoted[name] = shlex.quote(str(value))
    return template.format_map(quoted)


# ------------------------------------------------------------------------------ loading

_TOP_FIELDS = {
    "role",
    "name",
    "placement",
    "description",
    "commands",
    "ready",
    "features",
    "timers",
    "keys",
}
_SECTIONS = ("commands", "ready", "features", "timers", "keys")
_COMMAND_FIELDS = ("start", "stop", "stop_timeout", "move_flows", "split_args")
_KEY_FIELDS = ("spi", "key", "mn_id", "key_file_format")
_PLACEMENT_RE = re.compile(r"^ar([1-9][0-9]?)$")


class _Reader:
    """Typed access to the TOML document, with errors naming the field."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, why: str) -> ProfileError:
        return ProfileError(f"profile {self.source}: {where}: {why}")

    def table(self, doc: Mapping[str, Any], name: str, required: bool) -> dict[str, Any] | None:
        if name not in doc:
            if required:
                raise ProfileError(f"profile {self.source}: [{name}]: missing section")
            return None
        value = doc[name]
        if not isinstance(value, dict):
            raise self.fail(name, f"expected a [{name}] section, got {_tname(value)}")
        return value

    def unknown(self, table: Mapping[str, Any], known: Sequence[str], section: str) -> None:
        for key in table:
            if key not in known:
                where = f"[{section}].{key}" if section else key
                raise self.fail(where, f"unknown field (known: {', '.join(known)})")

    def string(self, table: Mapping[str, Any], key: str, where: str, *, required: bool) -> str:
        if key not in table:
            if required:
                raise self.fail(where, "missing")
            return ""
        value = table[key]
        if not isinstance(value, str):
            raise self.fail(where, f"expected a string, got {_shown(value)}")
        if required and not value.strip():
            raise self.fail(where, "empty")
        return value

    def number(
        self, table: Mapping[str, Any], key: str, where: str, *, positive: bool = True
    ) -> float:
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(where, f"expected a number (seconds), got {_shown(value)}")
        if not math.isfinite(value) or (positive and value <= 0):
            raise self.fail(where, f"expected a number > 0, got {value}")
        return float(value)

    def integer(self, table: Mapping[str, Any], key: str, where: str, low: int, high: int) -> int:
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"expected an integer, got {_shown(value)}")
        if not low <= value <= high:
            raise self.fail(where, f"expected {low}..{high}, got {value}")
        return value


def _tname(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    return _tname(value)


def parse(text: str, source: str = "<profile>") -> Profile:
    """A profile from TOML text; `source` names it in error messages."""
    r = _Reader(source)
    if not text.strip():
        raise ProfileError(
            f"profile {source}: empty file (a profile needs role, name, placement, [commands] "
            "and [ready]; harness/sut/profiles/reference-ha.toml is an example)"
        )
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"profile {source}: not valid TOML: {exc}") from None
    for key in doc:
        if key not in _TOP_FIELDS:
            kind = "section" if isinstance(doc[key], dict) else "field"
            where = f"[{key}]" if kind == "section" else key
            raise r.fail(
                where,
                f"unknown {kind} (known: role, name, placement, description, "
                f"[{'], ['.join(_SECTIONS)}])",
            )

    role = r.string(doc, "role", "role", required=True)
    if role not in ROLES:
        raise r.fail("role", f'expected "ha" or "mn", got "{role}"')
    name = r.string(doc, "name", "name", required=True)
    description = r.string(doc, "description", "description", required=False)
    placement = r.string(doc, "placement", "placement", required=True)
    if role == "mn" and placement != "mn":
        raise r.fail("placement", f'an MN sits at "mn", got "{placement}"')
    if role == "ha":
        m = _PLACEMENT_RE.match(placement)
        if m is None or int(m[1]) > 15:
            raise r.fail(
                "placement", f'an HA replaces an access router "ar1".."ar15", got "{placement}"'
            )

    features = _features(r, doc)
    timers = _timers(r, doc)
    keys = _keys(r, doc, features)
    commands = _commands(r, doc, role, keys)
    ready = _ready(r, doc, role, keys)
    if role == "ha" and features.claims("cp_dp_split") and commands.split_args is None:
        raise r.fail(
            "[commands].split_args",
            "[features].cp_dp_split is claimed: say how to start it split (e.g. "
            '"--data-plane {data_plane6}"), or do not claim it',
        )

    return Profile(
        source=source,
        role=role,  # type: ignore[arg-type]  # checked against ROLES above
        name=name,
        placement=placement,
        commands=commands,
        ready=ready,
        features=features,
        timers=timers,
        keys=keys,
        description=description,
    )


def _check_template(r: _Reader, template: str, where: str, role: str, keys: Keys | None) -> None:
    allowed = placeholders(role)
    for name in template_fields(template, f"profile {r.source}: {where}"):
        if name in allowed:
            if name in _KEY_PLACEHOLDERS and keys is None:
                raise r.fail(where, f"placeholder {{{name}}} needs a [keys] section")
            continue
        if name in placeholders("ha"):
            raise r.fail(where, f"placeholder {{{name}}} does not exist for role {role}")
        raise r.fail(where, f"unknown placeholder {{{name}}} (known: {', '.join(sorted(allowed))})")


def _commands(r: _Reader, doc: Mapping[str, Any], role: str, keys: Keys | None) -> Commands:
    table = r.table(doc, "commands", required=True)
    assert table is not None
    r.unknown(table, _COMMAND_FIELDS, "commands")
    start = r.string(table, "start", "[commands].start", required=True)
    _check_template(r, start, "[commands].start", role, keys)
    stop: str | None = None
    if "stop" in table:
        stop = r.string(table, "stop", "[commands].stop", required=True)
        _check_template(r, stop, "[commands].stop", role, keys)
    stop_timeout = 5.0
    if "stop_timeout" in table:
        stop_timeout = r.number(table, "stop_timeout", "[commands].stop_timeout")
    move_flows: str | None = None
    if "move_flows" in table:
        move_flows = r.string(table, "move_flows", "[commands].move_flows", required=True)
        _check_template(r, move_flows, "[commands].move_flows", role, keys)
    split_args: str | None = None
    if "split_args" in table:
        if role != "ha":
            raise r.fail("[commands].split_args", "only an HA separates control and data planes")
        split_args = r.string(table, "split_args", "[commands].split_args", required=True)
        _check_template(r, split_args, "[commands].split_args", role, keys)
    return Commands(
        start=start,
        stop=stop,
        stop_timeout=stop_timeout,
        move_flows=move_flows,
        split_args=split_args,
    )


def _ready(r: _Reader, doc: Mapping[str, Any], role: str, keys: Keys | None) -> Readiness:
    table = r.table(doc, "ready", required=True)
    assert table is not None
    r.unknown(table, (*READY_RULES, "timeout"), "ready")
    rules = [k for k in READY_RULES if k in table]
    if not rules:
        raise r.fail("[ready]", f"missing: give one of {', '.join(READY_RULES)}")
    if len(rules) > 1:
        raise r.fail("[ready]", f"give one rule only, not {' and '.join(rules)}")
    kind = rules[0]
    where = f"[ready].{kind}"
    if "timeout" not in table:
        raise r.fail("[ready].timeout", f"missing: {where} needs a deadline (seconds)")
    timeout = r.number(table, "timeout", "[ready].timeout")
    value: str | int
    if kind in ("udp_port", "tcp_port"):
        value = r.integer(table, kind, where, 1, 65535)
    else:
        value = r.string(table, kind, where, required=True)
        if kind == "log_regex":
            try:
                re.compile(value)
            except re.error as exc:
                raise r.fail(where, f"not a regular expression: {exc}") from None
        else:
            _check_template(r, value, where, role, keys)
    return Readiness(kind=kind, value=value, timeout=timeout)  # type: ignore[arg-type]


def _features(r: _Reader, doc: Mapping[str, Any]) -> Features:
    table = r.table(doc, "features", required=False)
    if table is None:
        return Features()
    claimed = set()
    for key, value in table.items():
        where = f"[features].{key}"
        if key not in FEATURES:
            raise r.fail(where, f"unknown feature (known: {', '.join(FEATURES)})")
        if not isinstance(value, bool):
            raise r.fail(where, f"expected true/false, got {_shown(value)}")
        if value:
            claimed.add(key)
    return Features(frozenset(claimed))


def _timers(r: _Reader, doc: Mapping[str, Any]) -> Timers:
    table = r.table(doc, "timers", required=False)
    if table is None:
        return Timers()
    r.unknown(table, TIMER_NAMES, "timers")
    values = {key: r.number(table, key, f"[timers].{key}") for key in table}
    # a value left out follows the one given with it, as the RFCs' defaults do: RFC 4861
    # §6.2.1 MinRtrAdvInterval = 0.33 x MaxRtrAdvInterval (not below RFC 6275's 0.03 s)
    if "ra_max_interval" in values and "ra_min_interval" not in values:
        values["ra_min_interval"] = max(0.33 * values["ra_max_interval"], 0.03)
    if "mld_query_interval" in values and "mld_query_response_interval" not in values:
        values["mld_query_response_interval"] = min(10.0, values["mld_query_interval"])
    timers = Timers(**values)
    if timers.time_scale > 1:
        raise r.fail("[timers].time_scale", f"expected a factor in (0, 1], got {timers.time_scale}")
    for small, large in _TIMER_ORDER:
        if getattr(timers, small) > getattr(timers, large):
            raise r.fail(
                f"[timers].{small}",
                f"{getattr(timers, small):g} is larger than [timers].{large} "
                f"{getattr(timers, large):g}",
            )
    if timers.ra_min_interval < 0.03:
        raise r.fail(
            "[timers].ra_min_interval",
            f"{timers.ra_min_interval:g} s is below RFC 6275 §7.5's minimum of 0.03 s",
        )
    return timers


def _keys(r: _Reader, doc: Mapping[str, Any], features: Features) -> Keys | None:
    table = r.table(doc, "keys", required=False)
    if table is None:
        if "auth_rfc4285" in features.claimed:
            raise ProfileError(
                f"profile {r.source}: [keys]: missing section: [features].auth_rfc4285 "
                "needs the MN-HA SPI and key"
            )
        return None
    r.unknown(table, _KEY_FIELDS, "keys")
    for required in ("spi", "key"):
        if required not in table:
            raise r.fail(f"[keys].{required}", "missing")
    # RFC 4285 §5: SPI values 0..255 are reserved
    spi = r.integer(table, "spi", "[keys].spi", 256, 0xFFFFFFFF)
    raw = r.string(table, "key", "[keys].key", required=True)
    try:
        key = bytes.fromhex(raw)
    except ValueError:
        raise r.fail("[keys].key", "expected the shared key as hex digits") from None
    mn_id = "mn@" + lab_plan.DOMAIN
    if "mn_id" in table:
        mn_id = r.string(table, "mn_id", "[keys].mn_id", required=True)
    fmt = "hex"
    if "key_file_format" in table:
        fmt = r.string(table, "key_file_format", "[keys].key_file_format", required=True)
        if fmt not in ("hex", "raw"):
            raise r.fail("[keys].key_file_format", f'expected "hex" or "raw", got "{fmt}"')
    return Keys(spi=spi, key=key, mn_id=mn_id, key_file_format=fmt)  # type: ignore[arg-type]


def load(path: str | os.PathLike[str]) -> Profile:
    """Read and validate the profile file at `path`."""
    p = Path(path)
    if p.is_dir():
        raise ProfileError(f"profile {p}: is a directory, not a profile file")
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(f"profile {p}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ProfileError(
            f"profile {p}: not UTF-8 text (byte {exc.start}: {exc.object[exc.start]:#04x}); "
            "a profile is a TOML file in UTF-8"
        ) from None
    return parse(text, source=str(p))


# ------------------------------------------------------------------------------ checking

# Where the conformance suites put the SUT: the HA suite replaces the home agent of access
# link 1 (suites/ha/conftest.py HOME_LINK), the interop suite every access router's in turn;
# the MN suite puts the SUT in the "mn" namespace.
RUN_PLACEMENT: dict[str, str] = {"ha": "ar1", "mn": "mn"}

# Shell words before the program itself: `exec prog`, `env A=b prog`, `nice prog`.
_PREFIX_WORDS = frozenset({"exec", "env", "nice", "nohup", "setsid", "stdbuf", "command"})
_SHELL_BUILTINS = frozenset(
    {
        "cd",
        ".",
        "source",
        "set",
        "export",
        "true",
        "false",
        ":",
        "test",
        "[",
        "echo",
        "printf",
        "sleep",
        "kill",
        "trap",
        "ulimit",
        "umask",
        "wait",
        "if",
        "for",
        "while",
        "case",
        "{",
        "(",
    }
)


def valid_placements(role: str, plan: lab_plan.Plan | None = None) -> tuple[str, ...]:
    """The placements of this role that exist in the lab plan (default: the default lab)."""
    if role == "mn":
        return ("mn",)
    the_plan = plan or lab_plan.build()
    return tuple(link.name for link in the_plan.access)


def program_of(template: str, where: str) -> str | None:
    """The program a command template runs (its first word after env/exec and VAR=value),
    or None when it is a placeholder or the shell's own (a builtin, a compound command)."""
    try:
        words = shlex.split(template, comments=True)
    except ValueError as exc:
        raise ProfileError(f"{where}: not a shell command: {exc}") from None
    for word in words:
        if word in _PREFIX_WORDS or word.startswith("-"):
            continue
        if re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", word):
            continue
        if word in _SHELL_BUILTINS or "{" in word or "$" in word:
            return None
        return word
    return None


def _check_program(source: str, where: str, template: str) -> None:
    program = program_of(template, f"profile {source}: {where}")
    if program is None:
        return
    if "/" in program:
        path = Path(program)
        if not path.is_file():
            raise ProfileError(f"profile {source}: {where}: {program}: no such file")
        if not os.access(path, os.X_OK):
            raise ProfileError(f"profile {source}: {where}: {program}: not executable")
    elif shutil.which(program) is None:
        raise ProfileError(
            f"profile {source}: {where}: {program!r} not found on PATH "
            "(install it, or give its absolute path)"
        )


def check(
    path: str | os.PathLike[str],
    *,
    role: str | None = None,
    plan: lab_plan.Plan | None = None,
    for_run: bool = False,
) -> Profile:
    """Everything that can be known about a profile without a lab: the file (:func:`load`:
    fields, types, placeholders), its placement against the lab plan, the role a run asks
    for, and the programs its commands run (on PATH, or an executable file). With `for_run`,
    the placement must be where the conformance suites put the SUT (:data:`RUN_PLACEMENT`)."""
    profile = load(path)
    src = profile.source
    choices = valid_placements(profile.role, plan)
    if profile.placement not in choices:
        shown = ", ".join(f'"{c}"' for c in choices)
        raise ProfileError(
            f'profile {src}: placement: "{profile.placement}" is not in the lab plan '
            f"(valid: {shown})"
        )
    if role is not None and profile.role != role:
        raise ProfileError(
            f"profile {src}: role: {profile.role!r}, but the run tests role {role!r}"
        )
    if for_run and profile.placement != RUN_PLACEMENT[profile.role]:
        raise ProfileError(
            f'profile {src}: placement: "{profile.placement}", but the conformance suites put '
            f'the SUT {profile.role.upper()} at "{RUN_PLACEMENT[profile.role]}" (valid: '
            f'"{RUN_PLACEMENT[profile.role]}")'
        )
    _check_program(src, "[commands].start", profile.commands.start)
    if profile.commands.stop is not None:
        _check_program(src, "[commands].stop", profile.commands.stop)
    if profile.ready.kind == "command":
        _check_program(src, "[ready].command", str(profile.ready.value))
    return profile


# ------------------------------------------------------------------- the README's tables

# Every field a profile may hold: (field, type, required, meaning). The README's table is
# generated from this (:func:`markdown_tables`); tests keep it equal to what :func:`parse`
# accepts.
FIELD_DOCS: tuple[tuple[str, str, str, str], ...] = (
    ("role", "string", "yes", '"ha" or "mn": what the implementation is'),
    ("name", "string", "yes", "its name and version, shown in every report"),
    (
        "placement",
        "string",
        "yes",
        'where it runs: "ar1".."arN" for an HA (the access router whose home agent it '
        'replaces; the conformance run uses "ar1"), "mn" for an MN',
    ),
    ("description", "string", "no", "free text, shown in the report"),
    (
        "[commands].start",
        "string",
        "yes",
        "the command that starts it, run by /bin/sh -c inside its namespace (placeholders "
        "below, each value shell-quoted); it must stay in the foreground",
    ),
    ("[commands].stop", "string", "no", "a command that stops it (default: SIGTERM)"),
    ("[commands].stop_timeout", "seconds", "no", "SIGKILL after this long (default 5)"),
    (
        "[commands].split_args",
        "string",
        "with cp_dp_split",
        "an HA: the words added to [commands].start to run it with its control and data plane "
        "functions separate, the data plane at {data_plane6} (draft §9)",
    ),
    (
        "[commands].move_flows",
        "string",
        "no",
        "an MN: a command that gives the running MN a new flow policy, {flows} (RFC 6089 flow "
        "mobility, draft §7.1); without it the tests that move flows are not applicable",
    ),
    (
        "[ready].log_regex",
        "string",
        "one of four",
        "ready when a line of its output matches this regular expression",
    ),
    ("[ready].udp_port", "integer", "one of four", "ready when it listens on this UDP port"),
    ("[ready].tcp_port", "integer", "one of four", "ready when it listens on this TCP port"),
    ("[ready].command", "string", "one of four", "ready when this command exits 0"),
    ("[ready].timeout", "seconds", "yes", "the deadline for the rule above"),
    *(
        (f"[features].{name}", "boolean", "no", f"claims {meaning}")
        for name, meaning in FEATURES.items()
    ),
    ("[timers].time_scale", "number", "no", "the factor (0, 1] it scales protocol timers by"),
    ("[timers].min_bu_lifetime", "seconds", "no", "shortest BU lifetime it accepts (4)"),
    ("[timers].max_bu_lifetime", "seconds", "no", "longest BU lifetime (262140)"),
    ("[timers].ra_min_interval", "seconds", "no", "MinRtrAdvInterval (198, >= 0.03)"),
    ("[timers].ra_max_interval", "seconds", "no", "MaxRtrAdvInterval (600)"),
    ("[timers].mld_query_interval", "seconds", "no", "MLD Query Interval (125)"),
    (
        "[timers].mld_query_response_interval",
        "seconds",
        "no",
        "MLD Query Response Interval (10)",
    ),
    (
        "[timers].dns_update_timeout",
        "seconds",
        "no",
        "how long an HA waits for its DNS server before its BA says 130 (5; not scaled)",
    ),
    (
        "[timers].answer_time",
        "seconds",
        "no",
        "the longest an HA takes to answer a BU, DAD included (2; not scaled)",
    ),
    (
        "[keys].spi",
        "integer",
        "with [keys]",
        "RFC 4285 mobility SPI, 256..4294967295 (needed by [features].auth_rfc4285)",
    ),
    ("[keys].key", "hex string", "with [keys]", "the MN-HA shared key"),
    ("[keys].mn_id", "string", "no", "the MN's NAI (default mn@lab.example)"),
    ("[keys].key_file_format", "string", "no", '"hex" (default) or "raw": {key_file}\'s form'),
)

# Every placeholder: (roles, meaning).
PLACEHOLDER_DOCS: dict[str, tuple[str, str]] = {
    "python": ("both", "the Python interpreter running dmmconf"),
    "name": ("both", "the profile's name"),
    "role": ("both", '"ha" or "mn"'),
    "log_file": ("both", "the file its output goes to"),
    "workdir": ("both", "a directory of its own for this run"),
    "netns": ("both", "the name of its network namespace (under /run/netns)"),
    "iface": ("both", "its main interface: an HA's access link, the MN's first interface"),
    "ifaces": ("both", "every interface it should use, one word each"),
    "prefix6": ("both", "the access link's /64 (an MN: its home link's)"),
    "address6": ("both", "its IPv6 address (an HA: the router's; an MN: its home address)"),
    "ha_address": ("both", "the home agent's IPv6 address (an HA: its own)"),
    "prefix4": ("both", "the access link's IPv4 subnet"),
    "ha_address4": ("both", "the home agent's IPv4 address"),
    "ha_fqdn": ("both", "the home agent's DNS name"),
    "mn_fqdn": ("both", "the mobile node's DNS name (the DNS Update option's MN identity)"),
    "dns_server": ("both", "the lab's DNS server (IPv6)"),
    "domain": ("both", "the lab's DNS domain"),
    "tsig_key_file": (
        "both",
        "the TSIG key the lab's DNS server accepts for updates, as named.conf's key statement",
    ),
    "flows": (
        "both",
        'an MN\'s flows to move (RFC 6089), "IFACE=PORT" words: its sessions with a '
        "correspondent's PORT go through interface IFACE; none unless a test gives the MN "
        "several interfaces",
    ),
    "ha_names": (
        "both",
        "the home agent names an MN is configured with, to look one up by name (RFC 5026 "
        "§5.1.1), one word each; none unless a test configures one (a start command without "
        "it makes such tests not-applicable)",
    ),
    "address4": ("ha", "its IPv4 address on the access link"),
    "uplink_iface": ("ha", "its interface towards the core"),
    "uplink_address6": ("ha", "its IPv6 address on the uplink"),
    "uplink_address4": ("ha", "its IPv4 address on the uplink"),
    "core_address6": ("ha", "the core router's IPv6 address (next hop)"),
    "core_address4": ("ha", "the core router's IPv4 address (next hop)"),
    "data_plane6": (
        "ha",
        "the IPv6 address its data plane function takes when started split (draft §9, "
        "[commands].split_args), on its access link",
    ),
    "spi": ("both", "[keys].spi (needs [keys])"),
    "mn_id": ("both", "[keys].mn_id (needs [keys])"),
    "key_file": ("both", "a file holding [keys].key (needs [keys])"),
    **{name: ("both", f"[timers].{name}") for name in TIMER_NAMES},
}


def markdown_tables() -> str:
    """The README's tables of profile fields and placeholders (generated: do not edit there)."""
    lines = ["| field | type | required | meaning |", "|---|---|---|---|"]
    lines += [f"| `{f}` | {t} | {r} | {m} |" for f, t, r, m in FIELD_DOCS]
    lines += ["", "| placeholder | role | value |", "|---|---|---|"]
    lines += [f"| `{{{n}}}` | {r} | {m} |" for n, (r, m) in PLACEHOLDER_DOCS.items()]
    return "\n".join(lines) + "\n"
