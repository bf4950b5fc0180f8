"""Systems under test: profiles describing an HA or MN implementation, and the adapters
that start one in its lab namespace (see :mod:`harness.sut.profile` for the format)."""

from harness.sut.adapters import (
    ProfileSut,
    ReferenceSut,
    SutAdapter,
    SutError,
    SutExited,
    SutNotReady,
    open_sut,
)
from harness.sut.profile import Features, Placement, Profile, ProfileError, Timers, load, parse

__all__ = [
    "Features",
    "Placement",
    "Profile",
    "ProfileError",
    "ProfileSut",
    "ReferenceSut",
    "SutAdapter",
    "SutError",
    "SutExited",
    "SutNotReady",
    "Timers",
    "load",
    "open_sut",
    "parse",
]
