"""Every protocol number the suite uses, in one place.

Values assigned by IANA are constants. The draft leaves two option types
unassigned (draft-sarikaya-mext-multicastdmm-01 §11, draft-perkins-mext-hatunaddr
"TBD"); their defaults live here and are overridden through :mod:`harness.config`
(see docs/interpretations.md for why these defaults).
"""

from __future__ import annotations

from enum import IntEnum


class MHType(IntEnum):
    """Mobility Header message types (RFC 6275 §6.1, RFC 5096 §2)."""

    BRR = 0
    HOTI = 1
    COTI = 2
    HOT = 3
    COT = 4
    BU = 5
    BA = 6
    BE = 7
    EXPERIMENTAL = 11  # RFC 5096


class MobOpt(IntEnum):
    """Mobility option types (RFC 6275 §6.2 and the RFCs named per value)."""

    PAD1 = 0
    PADN = 1
    BINDING_REFRESH_ADVICE = 2
    ALTERNATE_COA = 3
    NONCE_INDICES = 4
    BINDING_AUTH_DATA = 5
    MN_ID = 8  # RFC 4283
    MESSAGE_AUTH = 9  # RFC 4285 §5
    REPLAY_PROTECTION = 10  # RFC 4285 §6
    DNS_UPDATE = 17  # RFC 5026 §8.1
    EXPERIMENTAL = 18  # RFC 5096 §3
    IPV4_HOME_ADDRESS = 29  # RFC 5555 §3.1.1
    IPV4_ADDRESS_ACK = 30  # RFC 5555 §3.2.1
    NAT_DETECTION = 31  # RFC 5555 §3.2.2
    IPV4_CARE_OF_ADDRESS = 32  # RFC 5555 §3.1.2
    BINDING_IDENTIFIER = 35  # RFC 5648 §6.1
    # RFC 6089 §4.2.2 and §4.2 (and Wireshark) give 44 to Flow Summary and 45 to Flow
    # Identification; its IANA section §7 lists them the other way round. The body wins.
    FLOW_SUMMARY = 44
    FLOW_IDENTIFICATION = 45


# Defaults for the option types the drafts leave unassigned (TBA1 / TBD).
DEFAULT_MULTICAST_STATE_TYPE = int(MobOpt.EXPERIMENTAL)
DEFAULT_ALT_HA_TUNNEL_ADDRESS_TYPE = 254

# ICMP / IGMP message types carried in the Multicast State option body.
MLDV2_REPORT = 143  # RFC 3810 §5.2
IGMPV3_REPORT = 0x22  # RFC 3376 §4.2


class McastRecordType(IntEnum):
    """Multicast Address Record types (RFC 3810 §5.2.12, RFC 3376 §4.2.12)."""

    MODE_IS_INCLUDE = 1
    MODE_IS_EXCLUDE = 2
    CHANGE_TO_INCLUDE_MODE = 3
    CHANGE_TO_EXCLUDE_MODE = 4
    ALLOW_NEW_SOURCES = 5
    BLOCK_OLD_SOURCES = 6


BA_STATUS: dict[int, str] = {
    # RFC 6275 §6.1.8
    0: "Binding Update accepted",
    1: "Accepted but prefix discovery necessary",
    128: "Reason unspecified",
    129: "Administratively prohibited",
    130: "Insufficient resources",
    131: "Home registration not supported",
    132: "Not home subnet",
    133: "Not home agent for this mobile node",
    134: "Duplicate Address Detection failed",
    135: "Sequence number out of window",
    136: "Expired home nonce index",
    137: "Expired care-of nonce index",
    138: "Expired nonces",
    139: "Registration type change disallowed",
    # RFC 4285 §8
    144: "MIPV6-ID-MISMATCH",
    145: "MIPV6-MESG-ID-REQD",
    146: "MIPV6-AUTH-FAIL",
    # RFC 5648 §6.2 (also used in the BID option's Status field)
    4: "MCOA NOTCOMPLETE",
    5: "MCOA RETURNHOME WO/NDP",
    164: "MCOA MALFORMED",
    165: "MCOA NON-MCOA BINDING EXISTS",
    166: "MCOA PROHIBITED",
    167: "MCOA UNKNOWN COA",
    168: "MCOA BULK REGISTRATION PROHIBITED",
    169: "MCOA SIMULTANEOUS HOME AND FOREIGN PROHIBITED",
}


class BAStatus(IntEnum):
    ACCEPTED = 0
    MCOA_NOTCOMPLETE = 4
    MCOA_RETURNHOME_WO_NDP = 5
    REASON_UNSPECIFIED = 128
    ADMIN_PROHIBITED = 129
    INSUFFICIENT_RESOURCES = 130
    HOME_REGISTRATION_NOT_SUPPORTED = 131
    NOT_HOME_SUBNET = 132
    NOT_HOME_AGENT = 133
    DAD_FAILED = 134
    SEQUENCE_OUT_OF_WINDOW = 135
    MIPV6_ID_MISMATCH = 144
    MIPV6_MESG_ID_REQD = 145
    MIPV6_AUTH_FAIL = 146
    MCOA_MALFORMED = 164
    MCOA_NON_MCOA_BINDING_EXISTS = 165
    MCOA_PROHIBITED = 166
    MCOA_UNKNOWN_COA = 167
    MCOA_BULK_REGISTRATION_PROHIBITED = 168
    MCOA_SIMULTANEOUS_HOME_AND_FOREIGN_PROHIBITED = 169


BE_STATUS: dict[int, str] = {  # RFC 6275 §6.1.9
    1: "Unknown binding for Home Address destination option",
    2: "Unrecognized MH Type value",
}

DNS_UPDATE_STATUS: dict[int, str] = {  # RFC 5026 §8.1
    0: "DNS update performed",
    128: "Reason unspecified",
    129: "Administratively prohibited",
    130: "DNS update failed",
}

IPV4_HOA_STATUS: dict[int, str] = {  # RFC 5555 §3.2.1
    0: "Success",
    128: "Failure, reason unspecified",
    129: "Administratively prohibited",
    130: "Incorrect IPv4 home address",
    131: "Invalid IPv4 address",
    132: "Dynamic IPv4 home address assignment not available",
    133: "Prefix allocation unauthorized",
}

FID_STATUS: dict[int, str] = {  # RFC 6089 §4.2
    0: "Flow binding successful",
    128: "Administratively prohibited",
    129: "Flow binding rejected, reason unspecified",
    130: "Flow identification mobility option malformed",
    131: "BID not found",
    132: "FID not found",
    133: "Traffic selector format not supported",
}

MN_AUTH_SUBTYPE: dict[int, str] = {1: "MN-HA", 2: "MN-AAA"}  # RFC 4285 §5
MN_ID_SUBTYPE: dict[int, str] = {1: "NAI"}  # RFC 4283 §3

# RFC 6088 §3: traffic selector formats inside the FID option.
TS_FORMAT_IPV4_BINARY = 1
TS_FORMAT_IPV6_BINARY = 2

# RFC 6275 §12: the all-MLDv2-capable-routers group and the MN's UDP port of RFC 5555.
MLDV2_ALL_ROUTERS = "ff02::16"
IGMPV3_ALL_ROUTERS = "224.0.0.22"
DSMIP6_UDP_PORT = 4191  # RFC 5555 §8
