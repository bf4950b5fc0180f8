"""Run-time settings that a user may change without editing code.

Only values the drafts leave open belong here (option types marked TBA/TBD).
They are read from the environment so that every process of a run (pytest
workers, daemons, the CLI) agrees without passing flags around.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


class ConfigError(ValueError):
    """A setting has a value the suite cannot use."""


def env_int(env: str, default: int, low: int, high: int, what: str) -> int:
    """An integer setting from the environment; out of range is refused, naming the variable."""
    raw = os.environ.get(env)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw, 0)
    except ValueError:
        raise ConfigError(f"{env}={raw!r}: not an integer") from None
    if not low <= value <= high:
        raise ConfigError(f"{env}={value}: {what} is {low}..{high}")
    return value


def _option_type(env: str, default: int) -> int:
    return env_int(env, default, 2, 255, "a mobility option type (0 and 1 are padding)")


@dataclass(frozen=True)
class WireConfig:
    multicast_state_type: int
    alt_ha_tunnel_address_type: int

    @classmethod
    def from_env(cls) -> WireConfig:
        from harness.wire import numbers  # here, not at the top: harness.wire imports us

        mcast = _option_type("DMMCONF_MCAST_OPTION_TYPE", numbers.DEFAULT_MULTICAST_STATE_TYPE)
        hatun = _option_type(
            "DMMCONF_HATUN_OPTION_TYPE", numbers.DEFAULT_ALT_HA_TUNNEL_ADDRESS_TYPE
        )
        if mcast == hatun:
            raise ConfigError(f"Multicast State and Alternate HA Tunnel Address share type {mcast}")
        return cls(multicast_state_type=mcast, alt_ha_tunnel_address_type=hatun)
