"""DHCP options for Mobile IPv6 home information discovery, as scapy layers.

Sources, and what each one fixes:

* RFC 6610 §3 (IANA codes in §6): the DHCPv6 options OPTION_MIP6_HNIDF (49),
  OPTION_MIP6_VDINF (50), OPTION_MIP6_IDINF (69), OPTION_MIP6_UDINF (70),
  OPTION_MIP6_HNP (71), OPTION_MIP6_HAA (72) and OPTION_MIP6_HAF (73). VDINF, IDINF
  and UDINF are containers whose body is a list of further DHCPv6 options (HNIDF,
  HNP, HAA, HAF). scapy 2.8 has none of them (its dhcp6opts tables skip 49, 50 and
  69-73), so they are defined here and registered in scapy's tables.
* draft-xia-mext-hioptv4-01 §4: the DHCPv4 options OPTION_DSMIP6_HNINF and
  OPTION_DSMIP6_RELAY. ONLY REVISION -01 WAS AVAILABLE; draft-sarikaya-mext-
  multicastdmm-01 cites -03 (July 2011), which may differ. The draft leaves both
  codes "TBD", so the codes used here are configurable defaults taken from the
  site-specific range 224-254 (RFC 3942): env DMMCONF_DHCPV4_HNINF_CODE (default
  224) and DMMCONF_DHCPV4_RELAY_CODE (default 225); see :func:`dhcpv4_option_codes`.
* draft-sarikaya-mext-multicastdmm-01 §7 (Id-type 2, "no preferred home network",
  written against draft-ietf-mip6-hiopt-17) and §8 (DHCPv4 in IPv4-only networks).
  In RFC 6610 the hiopt-17 Id-type became the choice of container: Id-type 0 is
  VDINF, 1 is IDINF and 2 is UDINF.

Interpretations of draft-xia-mext-hioptv4-01 (the draft is terse):

* What changes size for DHCPv4 is the option header only: option-code and
  option-length are one octet each (RFC 2132 §2) instead of two. The sub-options
  are "reused" from the DHCPv6 document unchanged, i.e. they keep RFC 6610's
  two-octet code and two-octet length (HNIDF 49, HNP 71, HAA 72, HAF 73).
* Id-type (HNINF only) is two octets: the draft's 16-bit-wide figure draws it as a
  full row. Values: 0 visited domain, 1 target MSP, 2 no preference.
* option-length counts everything after the length octet (Id-type and
  sub-options), as every DHCPv4 option does; the draft's "length of the 'options'
  field" is read that way. Its "MUST be a multiple of four" cannot hold in general
  (an HNP sub-option alone is 21 octets) and no padding sub-option exists, so it is
  not enforced when building; :func:`hninf_issues` reports it.
* A body longer than 255 octets would need RFC 3396 long-option splitting, which
  the draft does not mention; the builders refuse it.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import scapy.layers.dhcp as _scapy_dhcp
import scapy.layers.dhcp6 as _scapy_dhcp6
from scapy.config import conf
from scapy.fields import (
    ByteField,
    Field,
    FieldLenField,
    IP6Field,
    PacketListField,
    ShortEnumField,
    StrLenField,
)
from scapy.layers.dhcp import DHCP
from scapy.layers.dhcp6 import (
    DHCP6,
    DUID_LL,
    DHCP6_InfoRequest,
    DHCP6OptClientId,
    DHCP6OptElapsedTime,
    DHCP6OptOptReq,
    DHCP6OptUnknown,
    _DHCP6OptGuessPayload,
)
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.packet import Packet

from harness.config import ConfigError, env_int

# =====================================================================================
# DHCP protocol numbers. Kept in this module on purpose (numbers.py belongs to the
# Mobility Header side); everything DHCP-specific the suite uses is in this block.
# =====================================================================================

DHCP6_CLIENT_PORT = 546  # RFC 8415 §7.2
DHCP6_SERVER_PORT = 547
DHCP4_SERVER_PORT = 67  # RFC 2131 §4.1
DHCP4_CLIENT_PORT = 68


class Dhcp6Opt(IntEnum):
    """DHCPv6 option codes of RFC 6610 §6 (plus the RFC 8415 ones the helpers use)."""

    CLIENTID = 1
    ORO = 6
    ELAPSED_TIME = 8
    MIP6_HNIDF = 49  # Home Network ID FQDN
    MIP6_VDINF = 50  # Visited Home Network Information (container)
    MIP6_IDINF = 69  # Identified Home Network Information (container)
    MIP6_UDINF = 70  # Unrestricted Home Network Information (container)
    MIP6_HNP = 71  # Home Network Prefix
    MIP6_HAA = 72  # Home Agent Address
    MIP6_HAF = 73  # Home Agent FQDN


class HnInfIdType(IntEnum):
    """Id-type of the DHCPv4 HNINF option (draft-xia-mext-hioptv4-01 §4.1)."""

    VISITED_DOMAIN = 0
    TARGET_MSP = 1
    NO_PREFERENCE = 2  # the value draft-sarikaya-mext-multicastdmm-01 §7 mandates


# Id-type -> the RFC 6610 container that replaced it.
CONTAINER_FOR_ID_TYPE: dict[int, Dhcp6Opt] = {
    HnInfIdType.VISITED_DOMAIN: Dhcp6Opt.MIP6_VDINF,
    HnInfIdType.TARGET_MSP: Dhcp6Opt.MIP6_IDINF,
    HnInfIdType.NO_PREFERENCE: Dhcp6Opt.MIP6_UDINF,
}
HOME_INFO_CONTAINERS = frozenset({Dhcp6Opt.MIP6_VDINF, Dhcp6Opt.MIP6_IDINF, Dhcp6Opt.MIP6_UDINF})
# RFC 6610 §4.1.1: whoever asks for a container MUST also ask for these.
HOME_INFO_SUBOPTION_CODES: tuple[int, ...] = (
    Dhcp6Opt.MIP6_HNIDF,
    Dhcp6Opt.MIP6_HNP,
    Dhcp6Opt.MIP6_HAA,
    Dhcp6Opt.MIP6_HAF,
)

# DHCPv4 (draft-xia-mext-hioptv4-01): codes TBD, these are the configurable defaults.
DEFAULT_DHCPV4_HNINF_CODE = 224
DEFAULT_DHCPV4_RELAY_CODE = 225
DHCPV4_HNINF_NAME = "dsmip6_hninf"
DHCPV4_RELAY_NAME = "dsmip6_relay"
DHCPV4_MAX_OPTION_BODY = 255  # one-octet length (RFC 2132 §2)
HNINF_ID_TYPE_OCTETS = 2

# RFC 2132 §9.6 DHCP message types, and where draft-xia §5 lets each option appear.
DHCPDISCOVER, DHCPOFFER, DHCPREQUEST, DHCPACK, DHCPINFORM = 1, 2, 3, 5, 8
HNINF_ALLOWED_MESSAGE_TYPES = frozenset({DHCPDISCOVER, DHCPOFFER, DHCPREQUEST, DHCPACK, DHCPINFORM})
RELAY_ALLOWED_MESSAGE_TYPES = frozenset({DHCPDISCOVER, DHCPREQUEST, DHCPINFORM})

# RFC 6052 §2.1: the Well-Known Prefix RFC 6610 §3.4 uses for IPv4 home agents.
IPV4_EMBEDDING_WKP = ipaddress.IPv6Network("64:ff9b::/96")

# =====================================================================================


def _dhcpv4_code(env: str, default: int) -> int:
    return env_int(env, default, 1, 254, "a DHCPv4 option code (0 is pad, 255 end)")


def dhcpv4_option_codes() -> tuple[int, int]:
    """(HNINF code, RELAY code) from DMMCONF_DHCPV4_HNINF_CODE / DMMCONF_DHCPV4_RELAY_CODE.

    The draft leaves both codes TBD; the defaults 224 and 225 are in the site-specific
    range of RFC 3942, so they never collide with an IANA-assigned option.
    """
    hninf = _dhcpv4_code("DMMCONF_DHCPV4_HNINF_CODE", DEFAULT_DHCPV4_HNINF_CODE)
    relay = _dhcpv4_code("DMMCONF_DHCPV4_RELAY_CODE", DEFAULT_DHCPV4_RELAY_CODE)
    if hninf == relay:
        raise ConfigError(f"OPTION_DSMIP6_HNINF and OPTION_DSMIP6_RELAY share code {hninf}")
    return hninf, relay


# ---------------------------------------------------------------------------- FQDNs


def encode_fqdn(name: str) -> bytes:
    """RFC 3315 §8 / RFC 1035 §3.1 wire form, uncompressed.

    "ha.example.com." (trailing dot) is fully qualified and ends with the root label;
    "ha.example.com" is a partial name and has no root label; "." is the root alone.
    """
    if name in ("", "."):
        return b"" if name == "" else b"\x00"
    absolute = name.endswith(".")
    labels = (name[:-1] if absolute else name).split(".")
    out = bytearray()
    for label in labels:
        raw = label.encode("ascii")
        if not 1 <= len(raw) <= 63:
            raise ValueError(f"{name!r}: label {label!r} is not 1..63 octets")
        out += bytes([len(raw)]) + raw
    if absolute:
        out += b"\x00"
    return bytes(out)


def decode_fqdn(data: bytes) -> str:
    """Inverse of :func:`encode_fqdn`; ValueError for anything it could not have built."""
    labels: list[str] = []
    i = 0
    while i < len(data):
        n = data[i]
        if n == 0:
            if i != len(data) - 1:
                raise ValueError("octets after the root label")
            return ".".join(labels) + "."
        if n > 63:
            raise ValueError(f"label length {n} (compression is not allowed, RFC 3315 §8)")
        label = data[i + 1 : i + 1 + n]
        if len(label) != n:
            raise ValueError("label runs past the end of the option")
        text = label.decode("ascii")  # UnicodeDecodeError is a ValueError
        if "." in text:
            raise ValueError("label contains a dot")
        labels.append(text)
        i += 1 + n
    return ".".join(labels)  # partial name: no root label


class FQDNField(Field[Any, bytes]):
    """A domain name filling the rest of a DHCPv6 option (RFC 3315 §8 encoding).

    The value is text (see :func:`encode_fqdn`) when the octets decode, and the raw
    octets (``bytes``) when they do not, so malformed input survives a rebuild.
    """

    __slots__ = ["length_from"]

    def __init__(self, name: str, default: str | bytes, length_from: Any) -> None:
        super().__init__(name, default)
        self.length_from = length_from

    def any2i(self, pkt: Any, x: Any) -> Any:
        return x

    def i2m(self, pkt: Any, x: Any) -> bytes:
        if x is None:
            return b""
        if isinstance(x, bytes | bytearray):
            return bytes(x)
        return encode_fqdn(str(x))

    def m2i(self, pkt: Any, x: bytes) -> Any:
        try:
            return decode_fqdn(x)
        except ValueError:
            return bytes(x)

    def i2len(self, pkt: Any, x: Any) -> int:
        return len(self.i2m(pkt, x))

    def addfield(self, pkt: Any, s: bytes, val: Any) -> bytes:
        return s + self.i2m(pkt, val)

    def getfield(self, pkt: Any, s: bytes) -> tuple[bytes, Any]:
        n = self.length_from(pkt)
        return s[n:], self.m2i(pkt, s[:n])

    def i2repr(self, pkt: Any, x: Any) -> str:
        return repr(x)


# ------------------------------------------------------------------ DHCPv6 (RFC 6610)

_DHCP6_OPTION_NAMES = {
    Dhcp6Opt.MIP6_HNIDF: "OPTION_MIP6_HNIDF",
    Dhcp6Opt.MIP6_VDINF: "OPTION_MIP6_VDINF",
    Dhcp6Opt.MIP6_IDINF: "OPTION_MIP6_IDINF",
    Dhcp6Opt.MIP6_UDINF: "OPTION_MIP6_UDINF",
    Dhcp6Opt.MIP6_HNP: "OPTION_MIP6_HNP",
    Dhcp6Opt.MIP6_HAA: "OPTION_MIP6_HAA",
    Dhcp6Opt.MIP6_HAF: "OPTION_MIP6_HAF",
}
_scapy_dhcp6.dhcp6opts.update({int(c): n for c, n in _DHCP6_OPTION_NAMES.items()})


class _MIP6Option(_DHCP6OptGuessPayload):
    """Base: dissect the body within option-len, whatever the fields would like to take.

    A wrong option-len then shows up in this option (a too-short body makes scapy fall
    back to Raw) instead of shifting every later option.
    """

    def do_dissect(self, s: bytes) -> bytes:
        if len(s) >= 4:
            end = 4 + struct.unpack("!H", s[2:4])[0]
            if len(s) >= end:
                return super().do_dissect(s[:end]) + s[end:]
        return super().do_dissect(s)


def _suboption(s: bytes, _parent: Packet | None = None) -> Packet:
    """One DHCPv6 option from the front of ``s``, the rest left as Padding.

    Used for the option lists inside containers, so each list element is exactly one
    option (scapy's own element class chains the following options as payloads).
    """
    if len(s) < 4:
        return conf.raw_layer(s)
    code, olen = struct.unpack("!HH", s[:4])
    name = _scapy_dhcp6.dhcp6opts_by_code.get(code)
    cls = getattr(_scapy_dhcp6, name, DHCP6OptUnknown) if name else DHCP6OptUnknown
    end = 4 + olen
    pkt: Packet = cls(s[:end])
    if len(s) > end:
        pkt.add_payload(conf.padding_layer(s[end:]))
    return pkt


def _optlen(pkt: Packet) -> int:
    return int(pkt.optlen or 0)


class DHCP6OptMIP6HNIDF(_MIP6Option):
    """RFC 6610 §3.1: MIPv6 Home Network ID FQDN."""

    name = "DHCP6 MIPv6 Home Network ID FQDN Option"
    fields_desc = [
        ShortEnumField("optcode", Dhcp6Opt.MIP6_HNIDF, _scapy_dhcp6.dhcp6opts),
        FieldLenField("optlen", None, length_of="fqdn", fmt="!H"),
        FQDNField("fqdn", "", length_from=_optlen),
    ]


class _HomeNetworkInfo(_MIP6Option):
    """RFC 6610 §3.2: a container of further options (HNIDF, HNP, HAA, HAF)."""

    fields_desc = [
        ShortEnumField("optcode", 0, _scapy_dhcp6.dhcp6opts),
        FieldLenField("optlen", None, length_of="hnopts", fmt="!H"),
        PacketListField("hnopts", [], _suboption, length_from=_optlen),
    ]


class DHCP6OptMIP6VDINF(_HomeNetworkInfo):
    """RFC 6610 §3.2.1: MIPv6 Visited Home Network Information."""

    name = "DHCP6 MIPv6 Visited Home Network Information Option"
    optcode = Dhcp6Opt.MIP6_VDINF


class DHCP6OptMIP6IDINF(_HomeNetworkInfo):
    """RFC 6610 §3.2.2: MIPv6 Identified Home Network Information."""

    name = "DHCP6 MIPv6 Identified Home Network Information Option"
    optcode = Dhcp6Opt.MIP6_IDINF


class DHCP6OptMIP6UDINF(_HomeNetworkInfo):
    """RFC 6610 §3.2.3: MIPv6 Unrestricted Home Network Information."""

    name = "DHCP6 MIPv6 Unrestricted Home Network Information Option"
    optcode = Dhcp6Opt.MIP6_UDINF


class DHCP6OptMIP6HNP(_MIP6Option):
    """RFC 6610 §3.3: Prefix-len (1 octet) then the 16-octet Prefix (option-len 17)."""

    name = "DHCP6 MIPv6 Home Network Prefix Option"
    fields_desc = [
        ShortEnumField("optcode", Dhcp6Opt.MIP6_HNP, _scapy_dhcp6.dhcp6opts),
        FieldLenField("optlen", None, length_of="trailing", fmt="!H", adjust=lambda p, x: x + 17),
        ByteField("plen", 64),
        IP6Field("prefix", "::"),
        StrLenField("trailing", b"", length_from=lambda p: max(0, _optlen(p) - 17)),
    ]


class DHCP6OptMIP6HAA(_MIP6Option):
    """RFC 6610 §3.4: a home agent's IPv6 address (option-len 16)."""

    name = "DHCP6 MIPv6 Home Agent Address Option"
    fields_desc = [
        ShortEnumField("optcode", Dhcp6Opt.MIP6_HAA, _scapy_dhcp6.dhcp6opts),
        FieldLenField("optlen", None, length_of="trailing", fmt="!H", adjust=lambda p, x: x + 16),
        IP6Field("addr", "::"),
        StrLenField("trailing", b"", length_from=lambda p: max(0, _optlen(p) - 16)),
    ]


class DHCP6OptMIP6HAF(_MIP6Option):
    """RFC 6610 §3.5: the home agent's FQDN."""

    name = "DHCP6 MIPv6 Home Agent FQDN Option"
    fields_desc = [
        ShortEnumField("optcode", Dhcp6Opt.MIP6_HAF, _scapy_dhcp6.dhcp6opts),
        FieldLenField("optlen", None, length_of="fqdn", fmt="!H"),
        FQDNField("fqdn", "", length_from=_optlen),
    ]


MIP6_OPTION_CLASSES: dict[int, type[Packet]] = {
    Dhcp6Opt.MIP6_HNIDF: DHCP6OptMIP6HNIDF,
    Dhcp6Opt.MIP6_VDINF: DHCP6OptMIP6VDINF,
    Dhcp6Opt.MIP6_IDINF: DHCP6OptMIP6IDINF,
    Dhcp6Opt.MIP6_UDINF: DHCP6OptMIP6UDINF,
    Dhcp6Opt.MIP6_HNP: DHCP6OptMIP6HNP,
    Dhcp6Opt.MIP6_HAA: DHCP6OptMIP6HAA,
    Dhcp6Opt.MIP6_HAF: DHCP6OptMIP6HAF,
}


def _register_dhcpv6() -> None:
    """Put the classes where scapy's DHCPv6 dispatch looks for them.

    scapy maps an option code to a class *name* (dhcp6opts_by_code) and resolves the
    name in the scapy.layers.dhcp6 namespace, so the classes go there too. (The names
    the ORO and optcode fields print went into dhcp6opts above, before the classes,
    because an enum field copies its table when it is created.)
    """
    for code, cls in MIP6_OPTION_CLASSES.items():
        _scapy_dhcp6.dhcp6opts_by_code[int(code)] = cls.__name__
        setattr(_scapy_dhcp6, cls.__name__, cls)


# ------------------------------------------------------- DHCPv4 (draft-xia-hioptv4-01)


class DSMIP6HomeNetworkInfo(Packet):
    """Body of OPTION_DSMIP6_HNINF: Id-type (2 octets) then RFC 6610 sub-options."""

    name = "DSMIPv6 Home Network Information (DHCPv4 option body)"
    fields_desc = [
        ShortEnumField("idtype", HnInfIdType.NO_PREFERENCE, {int(t): t.name for t in HnInfIdType}),
        PacketListField("subopts", [], _suboption),
    ]


class DSMIP6RelayAgent(Packet):
    """Body of OPTION_DSMIP6_RELAY: RFC 6610 sub-options only."""

    name = "DSMIPv6 Relay Agent (DHCPv4 option body)"
    fields_desc = [PacketListField("subopts", [], _suboption)]


_v4_codes: dict[str, int] = {}


def register_dhcpv4_options(hninf_code: int | None = None, relay_code: int | None = None) -> None:
    """Name the two DHCPv4 codes in scapy's DHCPOptions table (default: codes from env).

    Registered as plain names: scapy prints ``("dsmip6_hninf", b"...")`` and builds from
    the same tuple; :func:`parse_hninf` / :func:`parse_relay` give the structure.
    Calling again with other codes moves the registration.
    """
    env_hninf, env_relay = dhcpv4_option_codes()
    wanted = {
        DHCPV4_HNINF_NAME: env_hninf if hninf_code is None else hninf_code,
        DHCPV4_RELAY_NAME: env_relay if relay_code is None else relay_code,
    }
    if wanted[DHCPV4_HNINF_NAME] == wanted[DHCPV4_RELAY_NAME]:
        raise ConfigError("OPTION_DSMIP6_HNINF and OPTION_DSMIP6_RELAY need distinct codes")
    for name, code in wanted.items():
        if not 1 <= code <= 254:
            raise ConfigError(f"{name}: DHCPv4 option code {code} is not 1..254")
        known = _scapy_dhcp.DHCPOptions.get(code)
        if known is not None and known not in (DHCPV4_HNINF_NAME, DHCPV4_RELAY_NAME):
            known_name = known if isinstance(known, str) else getattr(known, "name", known)
            raise ConfigError(f"{name}: DHCPv4 option code {code} is already {known_name!r}")
    for name in wanted:
        old = _v4_codes.pop(name, None)
        if old is not None and _scapy_dhcp.DHCPOptions.get(old) == name:
            del _scapy_dhcp.DHCPOptions[old]
    for name, code in wanted.items():
        _scapy_dhcp.DHCPOptions[code] = name
        _scapy_dhcp.DHCPRevOptions[name] = (code, None)
        _v4_codes[name] = code


def hninf_code() -> int:
    return _v4_codes[DHCPV4_HNINF_NAME]


def relay_code() -> int:
    return _v4_codes[DHCPV4_RELAY_NAME]


def home_info_suboptions(
    *,
    ha_addresses: Iterable[str] = (),
    home_prefixes: Iterable[str] = (),
    ha_fqdns: Iterable[str] = (),
    home_network_id: str | None = None,
) -> list[Packet]:
    """RFC 6610 options for a container or a DHCPv4 body, in the order HNIDF, HNP, HAA, HAF.

    Prefixes are written "2001:db8:1::/64".
    """
    out: list[Packet] = []
    if home_network_id is not None:
        out.append(DHCP6OptMIP6HNIDF(fqdn=home_network_id))
    for text in home_prefixes:
        prefix, _, plen = text.partition("/")
        out.append(DHCP6OptMIP6HNP(plen=int(plen or 128), prefix=prefix))
    out.extend(DHCP6OptMIP6HAA(addr=a) for a in ha_addresses)
    out.extend(DHCP6OptMIP6HAF(fqdn=f) for f in ha_fqdns)
    return out


def _check_v4_body(body: bytes, what: str) -> bytes:
    if len(body) > DHCPV4_MAX_OPTION_BODY:
        raise ValueError(
            f"{what} body is {len(body)} octets; a DHCPv4 option holds at most 255 "
            "(RFC 3396 splitting is not defined by draft-xia-mext-hioptv4)"
        )
    return body


def hninf_option(
    id_type: int = HnInfIdType.NO_PREFERENCE,
    subopts: Sequence[Packet] = (),
    *,
    code: int | None = None,
) -> tuple[int, bytes]:
    """``(code, body)`` for ``DHCP(options=[...])``: OPTION_DSMIP6_HNINF.

    With no sub-options this is the mobile node's request form (draft-sarikaya §7:
    Id-type 2, no preferred home network).
    """
    body = bytes(DSMIP6HomeNetworkInfo(idtype=int(id_type), subopts=list(subopts)))
    return (hninf_code() if code is None else code), _check_v4_body(body, "OPTION_DSMIP6_HNINF")


def relay_option(subopts: Sequence[Packet] = (), *, code: int | None = None) -> tuple[int, bytes]:
    """``(code, body)`` for ``DHCP(options=[...])``: OPTION_DSMIP6_RELAY."""
    body = bytes(DSMIP6RelayAgent(subopts=list(subopts)))
    return (relay_code() if code is None else code), _check_v4_body(body, "OPTION_DSMIP6_RELAY")


def parse_hninf(body: bytes) -> DSMIP6HomeNetworkInfo:
    """Dissect an OPTION_DSMIP6_HNINF body (the octets after code and length)."""
    return DSMIP6HomeNetworkInfo(bytes(body))


def parse_relay(body: bytes) -> DSMIP6RelayAgent:
    """Dissect an OPTION_DSMIP6_RELAY body."""
    return DSMIP6RelayAgent(bytes(body))


def hninf_issues(body: bytes) -> list[str]:
    """Deviations of an HNINF body from the letter of draft-xia-mext-hioptv4-01 §4.1."""
    issues: list[str] = []
    if len(body) < HNINF_ID_TYPE_OCTETS:
        return [f"body of {len(body)} octets has no room for the 2-octet Id-type"]
    if len(body) % 4:
        issues.append(f"option-length {len(body)} is not a multiple of four (§4.1)")
    id_type = struct.unpack("!H", body[:2])[0]
    if id_type not in {int(t) for t in HnInfIdType}:
        issues.append(f"Id-type {id_type} is not 0, 1 or 2")
    for opt in parse_hninf(body).subopts:
        if not isinstance(opt, _MIP6Option) or isinstance(opt, _HomeNetworkInfo):
            issues.append(f"sub-option {opt.summary()!r} is not HNIDF, HNP, HAA or HAF")
    return issues


def _options_v4(pkt: Packet) -> list[Any]:
    layer = pkt.getlayer(DHCP)
    return list(layer.options) if layer is not None else []


def find_dhcpv4_option(pkt: Packet, code: int) -> bytes | None:
    """Body of the first DHCPv4 option with this code (by number or registered name)."""
    names = {code} | {n for n, c in _v4_codes.items() if c == code}
    for opt in _options_v4(pkt):
        if isinstance(opt, tuple) and len(opt) >= 2 and opt[0] in names:
            value = opt[1]
            return value if isinstance(value, bytes) else bytes(value)
    return None


# ------------------------------------------------------------- mobile-node helpers


def build_information_request(
    *,
    trid: int = 0x4D4950,
    client_mac: str = "02:00:00:00:00:01",
    home_network_ids: Sequence[str] = (),
    visited: bool = False,
    elapsed_time: int = 0,
) -> Packet:
    """DHCPv6 Information-request asking for home network information (RFC 6610 §4.1.1).

    Default: the "no preferred home network" form draft-sarikaya §7 requires (its
    Id-type 2), which RFC 6610 spells as an ORO asking for OPTION_MIP6_UDINF (and
    neither VDINF nor IDINF, §4.1.1). ``home_network_ids`` asks for IDINF and sends
    one HNIDF per network; ``visited`` asks for VDINF. Every form also asks for HNIDF,
    HNP, HAA and HAF, as §4.1.1 requires. Returns the DHCPv6 layers only: put it under
    ``IPv6(dst="ff02::1:2")/UDP(sport=546, dport=547)``.
    """
    containers: list[int] = []
    if visited:
        containers.append(Dhcp6Opt.MIP6_VDINF)
    if home_network_ids:
        containers.append(Dhcp6Opt.MIP6_IDINF)
    if not containers:
        containers.append(Dhcp6Opt.MIP6_UDINF)
    oro = [int(c) for c in containers] + [int(c) for c in HOME_INFO_SUBOPTION_CODES]
    msg: Packet = (
        DHCP6_InfoRequest(trid=trid)
        / DHCP6OptClientId(duid=DUID_LL(lladdr=client_mac))
        / DHCP6OptOptReq(reqopts=oro)
        / DHCP6OptElapsedTime(elapsedtime=elapsed_time)
    )
    for hnid in home_network_ids:
        msg = msg / DHCP6OptMIP6HNIDF(fqdn=hnid)
    return msg


@dataclass(frozen=True)
class HomeInfo:
    """What a mobile node learnt, in the server's order (RFC 6610 §4.1.2: use the first
    one that works)."""

    ha_addresses: tuple[str, ...] = ()
    home_prefixes: tuple[str, ...] = ()  # "prefix/len"
    ha_fqdns: tuple[str, ...] = ()
    home_network_ids: tuple[str, ...] = ()

    @property
    def ha_ipv4_addresses(self) -> tuple[str, ...]:
        """Home agents given as IPv4-embedded IPv6 addresses (RFC 6610 §3.4, RFC 6052)."""
        out = []
        for a in self.ha_addresses:
            addr = ipaddress.IPv6Address(a)
            if addr in IPV4_EMBEDDING_WKP:
                out.append(str(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)))
        return tuple(out)

    def __bool__(self) -> bool:
        return bool(self.ha_addresses or self.home_prefixes or self.ha_fqdns)


class _Collector:
    def __init__(self) -> None:
        self.ha: list[str] = []
        self.prefixes: list[str] = []
        self.fqdns: list[str] = []
        self.hnids: list[str] = []

    def add(self, subopts: Iterable[Packet]) -> None:
        for opt in subopts:
            if isinstance(opt, DHCP6OptMIP6HAA):
                self.ha.append(str(opt.addr))
            elif isinstance(opt, DHCP6OptMIP6HNP):
                self.prefixes.append(f"{opt.prefix}/{opt.plen}")
            elif isinstance(opt, DHCP6OptMIP6HAF) and isinstance(opt.fqdn, str):
                self.fqdns.append(opt.fqdn)
            elif isinstance(opt, DHCP6OptMIP6HNIDF) and isinstance(opt.fqdn, str):
                self.hnids.append(opt.fqdn)

    def result(self) -> HomeInfo:
        return HomeInfo(tuple(self.ha), tuple(self.prefixes), tuple(self.fqdns), tuple(self.hnids))


def _usable(subopts: Sequence[Packet]) -> bool:
    # RFC 6610 §4.1.2 discards a container without "complete configuration
    # information"; read here as: it names at least a home agent or a home prefix
    # (a prefix alone is enough for DHAAD, RFC 6610 §1).
    return any(isinstance(o, DHCP6OptMIP6HAA | DHCP6OptMIP6HAF | DHCP6OptMIP6HNP) for o in subopts)


def _as_packet(reply: Packet | bytes) -> Packet:
    if isinstance(reply, Packet):
        return reply
    data = bytes(reply)
    if data and data[0] >> 4 == 6:
        return IPv6(data)
    if data and data[0] >> 4 == 4:
        return IP(data)
    raise ValueError("parse_home_info takes a scapy packet, or the bytes of an IPv6/IPv4 packet")


def _dhcp6_options(pkt: Packet) -> list[Packet]:
    layer: Packet | None = pkt
    while layer is not None and layer.name != "NoPayload" and not isinstance(layer, DHCP6):
        layer = layer.payload if layer.payload else None
    if layer is None or not isinstance(layer, DHCP6):
        return []
    opts = []
    cur = layer.payload
    while cur:
        opts.append(cur)
        cur = cur.payload
    return opts


def parse_home_info(
    reply: Packet | bytes, *, requested_home_network_ids: Sequence[str] | None = None
) -> HomeInfo:
    """Home agent addresses, home prefixes and HA FQDNs from a DHCPv6 Reply or DHCPv4 ACK.

    DHCPv6 follows RFC 6610 §4.1.2: HNP/HAA/HAF outside a container are discarded,
    as is a container with nothing usable in it, and (when the requested networks are
    given) an IDINF without an HNIDF naming one of them. DHCPv4 reads every
    OPTION_DSMIP6_HNINF option (draft-xia-mext-hioptv4-01 §4.1) under the codes
    currently registered.
    """
    pkt = _as_packet(reply)
    acc = _Collector()
    wanted = None
    if requested_home_network_ids is not None:
        wanted = {h.rstrip(".").lower() for h in requested_home_network_ids}
    for opt in _dhcp6_options(pkt):
        if not isinstance(opt, _HomeNetworkInfo):
            continue
        subopts = [o for o in opt.hnopts if isinstance(o, Packet)]
        if not _usable(subopts):
            continue
        if isinstance(opt, DHCP6OptMIP6IDINF) and wanted is not None:
            named = {
                o.fqdn.rstrip(".").lower()
                for o in subopts
                if isinstance(o, DHCP6OptMIP6HNIDF) and isinstance(o.fqdn, str)
            }
            if not named & wanted:
                continue
        acc.add(subopts)
    if pkt.getlayer(DHCP) is not None:
        code = _v4_codes.get(DHCPV4_HNINF_NAME)
        for opt in _options_v4(pkt):
            if not (isinstance(opt, tuple) and len(opt) >= 2):
                continue
            if opt[0] not in (DHCPV4_HNINF_NAME, code):
                continue
            body = parse_hninf(opt[1] if isinstance(opt[1], bytes) else bytes(opt[1]))
            subopts = [o for o in body.subopts if isinstance(o, Packet)]
            if _usable(subopts):
                acc.add(subopts)
    return acc.result()


_register_dhcpv6()
register_dhcpv4_options()
