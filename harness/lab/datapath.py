"""Which multicast data path the lab's routers use: the kernel's multicast routing or ours.

The kernel path (MRT6/MRT, CONFIG_IPV6_MROUTE / CONFIG_IP_MROUTE) exists on some kernel
builds only; the userspace path (AF_PACKET in, AF_PACKET out, see mldproxy.py) needs
nothing optional. `choose()` resolves a request ("auto", "kernel" or "userspace", from a
Lab parameter, `dmmconf lab up --datapath` or DMMCONF_DATAPATH) against what this kernel
has, probed at run time in a throw-away network namespace of our own.

That choice is IPv6's only. IPv4 multicast (the IGMP proxy's) always takes the userspace
path, whatever is chosen here and whatever the kernel has: the kernel's IPv4 multicast
routing (MRT) is never set up, so nothing is forwarded twice.
"""

from __future__ import annotations

import errno
import functools
import os
import socket

KERNEL = "kernel"
USERSPACE = "userspace"
AUTO = "auto"
CHOICES = (AUTO, KERNEL, USERSPACE)
ENV = "DMMCONF_DATAPATH"  # forces a data path for a whole run

# linux/mroute6.h and linux/mroute.h: the option that turns a raw socket into the
# multicast routing socket (one per namespace, so probe where nobody else holds it).
MRT6_INIT = 200
MRT_INIT = 200


class DatapathUnavailable(RuntimeError):
    """The kernel data path was asked for and this kernel has no multicast routing."""


def _probe(family: int) -> str | None:
    """None when the kernel accepts MRT(6)_INIT, else why not."""
    level, proto, opt = (
        (socket.IPPROTO_IPV6, socket.IPPROTO_ICMPV6, MRT6_INIT)
        if family == socket.AF_INET6
        else (socket.IPPROTO_IP, socket.IPPROTO_IGMP, MRT_INIT)
    )
    try:
        sock = socket.socket(family, socket.SOCK_RAW, proto)
    except OSError as exc:
        return f"raw socket: {exc.strerror or exc}"
    try:
        sock.setsockopt(level, opt, 1)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return None  # someone in this namespace routes multicast already: it exists
        if exc.errno == errno.ENOPROTOOPT:
            name = "CONFIG_IPV6_MROUTE" if family == socket.AF_INET6 else "CONFIG_IP_MROUTE"
            return f"kernel built without {name} ({exc.strerror})"
        return exc.strerror or str(exc)
    finally:
        sock.close()
    return None


@functools.cache
def kernel_support() -> dict[str, str | None]:
    """{"ipv6": None or why not, "ipv4": None or why not}, probed once per process.

    Probed in a private network namespace when we may make one (a namespace holds one
    multicast routing socket at most; the caller's may be taken), else in the current one.
    """
    from harness.lab import netns  # late: netns loads libc, not needed for the constants

    def run() -> dict[str, str | None]:
        return {"ipv6": _probe(socket.AF_INET6), "ipv4": _probe(socket.AF_INET)}

    if not netns.missing_privileges():
        try:
            return netns.in_private_namespace(run)
        except OSError:
            pass
    return run()


def choose(requested: str | None = None) -> str:
    """The data path to use: the request, else DMMCONF_DATAPATH, else auto.

    auto takes the kernel path where the kernel has IPv6 multicast routing, else the
    userspace one; an explicit "kernel" on a kernel without it is DatapathUnavailable.
    """
    want = (requested or os.environ.get(ENV) or AUTO).strip().lower()
    if want not in CHOICES:
        raise ValueError(
            f"unknown multicast data path {want!r} (from {ENV} or the caller); "
            f"choose one of {', '.join(CHOICES)}"
        )
    if want == USERSPACE:
        return USERSPACE
    why_not = kernel_support()["ipv6"]
    if want == KERNEL and why_not is not None:
        raise DatapathUnavailable(
            f"the kernel multicast data path was asked for, but {why_not}; "
            f"use --datapath userspace or {ENV}=userspace (or auto)"
        )
    return KERNEL if why_not is None else USERSPACE
