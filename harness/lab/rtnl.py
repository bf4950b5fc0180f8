"""A minimal rtnetlink client for the lab's hot path: batched requests and link events.

Bring-up sends many small requests (links, addresses, routes). pyroute2 (used by
netns.NetNS for everything else: inspection, status) answers one request per round trip,
and its 0.9 API cannot set the ifinfomsg header (index, IFF_UP) of a veth's peer. This
module encodes just the messages the lab needs with `struct` and sends a whole batch in
one sendmsg(2), then collects the acknowledgements: one round trip per namespace and
phase. Errors name the request that failed.

It also parses RTM_NEWLINK notifications (`LinkWatch`), so handover waits on the
kernel's link-state events instead of sleeping.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import select
import socket
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from harness.lab import netns

NETLINK_ROUTE = 0
RTMGRP_LINK = 1

NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_ROOT = 0x100
NLM_F_MATCH = 0x200
NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_DELADDR = 20, 21
RTM_NEWROUTE, RTM_DELROUTE = 24, 25

IFF_UP = 0x1
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MASTER = 1, 3, 10
IFLA_OPERSTATE, IFLA_LINKINFO, IFLA_NET_NS_FD, IFLA_CARRIER = 16, 18, 28, 33
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFLA_BR_FORWARD_DELAY, IFLA_BR_STP_STATE = 1, 5
IFLA_BR_MCAST_SNOOPING, IFLA_BR_MCAST_QUERIER, IFLA_BR_MCAST_MLD_VERSION = 23, 25, 44

IFA_ADDRESS, IFA_LOCAL, IFA_FLAGS = 1, 2, 8
IFA_F_NODAD = 0x02

RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PRIORITY = 1, 4, 5, 6
RT_TABLE_MAIN = 254
RTPROT_STATIC = 4
RT_SCOPE_UNIVERSE = 0
RTN_UNICAST = 1

OPERSTATES = ("unknown", "notpresent", "down", "lowerlayerdown", "testing", "dormant", "up")


class NetlinkError(OSError):
    pass


def _attr(kind: int, payload: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(payload), kind) + payload
    return raw + b"\0" * (-len(raw) % 4)


def _u8(kind: int, v: int) -> bytes:
    return _attr(kind, struct.pack("=B", v))


def _u32(kind: int, v: int) -> bytes:
    return _attr(kind, struct.pack("=I", v))


def _str(kind: int, v: str) -> bytes:
    return _attr(kind, v.encode() + b"\0")


def _mac(v: str) -> bytes:
    return bytes(int(x, 16) for x in v.split(":"))


def ifinfomsg(index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return struct.pack("=BxHiII", socket.AF_UNSPEC, 0, index, flags, change)


# ------------------------------------------------------------------ message builders
# Each returns (type, flags, body) for Batch.add.

Msg = tuple[int, int, bytes]
CREATE = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL


def new_bridge(
    name: str,
    *,
    index: int = 0,
    nsfd: int | None = None,
    mac: str | None = None,
    mcast_snooping: bool = False,
    up: bool = True,
) -> Msg:
    data = (
        _u32(IFLA_BR_FORWARD_DELAY, 0)
        + _u32(IFLA_BR_STP_STATE, 0)
        + _u8(IFLA_BR_MCAST_SNOOPING, int(mcast_snooping))
    )
    if mcast_snooping:  # MLDv2-aware; the ARs (MLD proxies) are the link's queriers
        data += _u8(IFLA_BR_MCAST_MLD_VERSION, 2)
    attrs = _str(IFLA_IFNAME, name)
    if nsfd is not None:
        attrs += _u32(IFLA_NET_NS_FD, nsfd)
    if mac:
        attrs += _attr(IFLA_ADDRESS, _mac(mac))
    attrs += _attr(IFLA_LINKINFO, _str(IFLA_INFO_KIND, "bridge") + _attr(IFLA_INFO_DATA, data))
    f = IFF_UP if up else 0
    return RTM_NEWLINK, CREATE, ifinfomsg(index, f, IFF_UP) + attrs


@dataclass(frozen=True)
class End:
    """One end of a veth pair: its name, namespace (an open fd), and optional details."""

    name: str
    nsfd: int | None = None
    index: int = 0
    mac: str | None = None
    master: int | None = None  # ifindex of a bridge in the same namespace
    up: bool = True

    def attrs(self) -> bytes:
        a = _str(IFLA_IFNAME, self.name)
        if self.nsfd is not None:
            a += _u32(IFLA_NET_NS_FD, self.nsfd)
        if self.mac:
            a += _attr(IFLA_ADDRESS, _mac(self.mac))
        if self.master:
            a += _u32(IFLA_MASTER, self.master)
        return a

    def header(self) -> bytes:
        return ifinfomsg(self.index, IFF_UP if self.up else 0, IFF_UP)


def new_veth(a: End, b: End) -> Msg:
    """A veth pair, each end created directly in its namespace with its index and MAC.

    The first end may be enslaved (`a.master`) and brought up at creation. The peer may
    not: the kernel configures the peer before the pair is linked, and opening a veth
    without a peer fails (ENOTCONN); bring it up afterwards with set_link in its namespace.
    """
    if b.master or b.up:
        raise ValueError("the second end of a veth is created down and unenslaved")
    peer = _attr(VETH_INFO_PEER, b.header() + b.attrs())
    info = _str(IFLA_INFO_KIND, "veth") + _attr(IFLA_INFO_DATA, peer)
    return RTM_NEWLINK, CREATE, a.header() + a.attrs() + _attr(IFLA_LINKINFO, info)


def set_link(index: int, *, up: bool | None = None, master: int | None = None) -> Msg:
    """Change a link: state (up/down) and/or master (0: leave the bridge)."""
    flags = change = 0
    if up is not None:
        change, flags = IFF_UP, IFF_UP if up else 0
    attrs = b"" if master is None else _u32(IFLA_MASTER, master)
    return RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, ifinfomsg(index, flags, change) + attrs


def del_link(index: int) -> Msg:
    return RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK, ifinfomsg(index)


def _ip(addr: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> tuple[int, bytes]:
    ip = ipaddress.ip_address(str(addr))
    return (socket.AF_INET6 if ip.version == 6 else socket.AF_INET), ip.packed


def addr(index: int, address: object, prefixlen: int, *, delete: bool = False) -> Msg:
    """Add (or delete) an address; IPv6 ones without DAD (usable at once)."""
    family, raw = _ip(address)  # type: ignore[arg-type]
    body = struct.pack("=BBBBI", family, prefixlen, 0, RT_SCOPE_UNIVERSE, index)
    body += _attr(IFA_LOCAL, raw) + _attr(IFA_ADDRESS, raw)
    if family == socket.AF_INET6:
        body += _u32(IFA_FLAGS, IFA_F_NODAD)
    if delete:
        return RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK, body
    return RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE, body


def route(
    dst: str | None,
    *,
    gateway: object | None = None,
    oif: int | None = None,
    metric: int | None = None,
    family: int | None = None,
    delete: bool = False,
) -> Msg:
    """A unicast route in the main table ('default' or None for the default route)."""
    if dst in (None, "default"):
        fam = family if family is not None else _ip(gateway)[0]  # type: ignore[arg-type]
        dst_raw, plen = b"", 0
    else:
        net = ipaddress.ip_network(dst)
        fam = socket.AF_INET6 if net.version == 6 else socket.AF_INET
        dst_raw, plen = net.network_address.packed, net.prefixlen
    body = struct.pack(
        "=BBBBBBBBI",
        fam,
        plen,
        0,
        0,
        RT_TABLE_MAIN,
        RTPROT_STATIC,
        RT_SCOPE_UNIVERSE,
        RTN_UNICAST,
        0,
    )
    if dst_raw:
        body += _attr(RTA_DST, dst_raw)
    if gateway is not None:
        body += _attr(RTA_GATEWAY, _ip(gateway)[1])  # type: ignore[arg-type]
    if oif:
        body += _u32(RTA_OIF, oif)
    if metric is not None:
        body += _u32(RTA_PRIORITY, metric)
    if delete:
        return RTM_DELROUTE, NLM_F_REQUEST | NLM_F_ACK, body
    return RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE, body


# ------------------------------------------------------------------ the socket


def _socket(ns: str | None, groups: int = 0) -> socket.socket:
    if ns is None:
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
    else:
        s = netns.socket_in(ns, socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.bind((0, groups))
    return s


def _messages(data: bytes) -> Iterator[tuple[int, int, int, bytes]]:
    off = 0
    while off + 16 <= len(data):
        length, mtype, flags, seq, _ = struct.unpack_from("=IHHII", data, off)
        if length < 16:
            break
        yield mtype, flags, seq, data[off + 16 : off + length]
        off += (length + 3) & ~3


class Rtnl:
    """An rtnetlink socket in one namespace (None: this thread's own). Use as a context."""

    def __init__(self, ns: str | None = None) -> None:
        self.ns = ns
        self.sock = _socket(ns)
        self.seq = int(time.monotonic() * 1000) & 0xFFFFFF
        self.pending: list[tuple[int, str, bytes]] = []

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def add(self, msg: Msg, what: str = "") -> None:
        """Queue a request; `what` names it in an error message."""
        mtype, flags, body = msg
        self.seq += 1
        raw = struct.pack("=IHHII", 16 + len(body), mtype, flags, self.seq, 0) + body
        self.pending.append((self.seq, what or f"request type {mtype}", raw))

    def commit(self, ignore: tuple[int, ...] = ()) -> None:
        """Send every queued request in one go; raise on the first error not in `ignore`."""
        batch, self.pending = self.pending, []
        if not batch:
            return
        waiting = {seq: what for seq, what, _ in batch}
        self.sock.sendall(b"".join(raw for _, _, raw in batch))
        errors: list[str] = []
        first_errno = 0
        while waiting:
            data = self.sock.recv(1 << 16)
            for mtype, _, seq, payload in _messages(data):
                if mtype != NLMSG_ERROR or seq not in waiting:
                    continue
                (err,) = struct.unpack_from("=i", payload)
                what = waiting.pop(seq)
                if err and -err not in ignore:
                    first_errno = first_errno or -err
                    where = f" in {self.ns}" if self.ns else ""
                    errors.append(f"{what}{where}: {os.strerror(-err)}")
        if errors:
            raise NetlinkError(first_errno, "; ".join(errors))

    def request(self, msg: Msg, what: str = "", ignore: tuple[int, ...] = ()) -> None:
        self.add(msg, what)
        self.commit(ignore)

    def links(self) -> dict[int, LinkState]:
        """Every link of the namespace (one dump)."""
        self.seq += 1
        body = ifinfomsg()
        self.sock.sendall(
            struct.pack(
                "=IHHII", 16 + len(body), RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, self.seq, 0
            )
            + body
        )
        out: dict[int, LinkState] = {}
        while True:
            data = self.sock.recv(1 << 16)
            for mtype, _, seq, payload in _messages(data):
                if seq != self.seq:
                    continue
                if mtype == NLMSG_DONE:
                    return out
                if mtype == NLMSG_ERROR:
                    (err,) = struct.unpack_from("=i", payload)
                    raise NetlinkError(-err, f"link dump: {os.strerror(-err)}")
                if mtype == RTM_NEWLINK:
                    state = LinkState.parse(payload)
                    out[state.index] = state


@dataclass(frozen=True)
class LinkState:
    index: int
    name: str
    up: bool  # administratively (IFF_UP)
    carrier: bool
    operstate: str
    master: int

    @classmethod
    def parse(cls, payload: bytes) -> LinkState:
        _, _, index, flags, _ = struct.unpack_from("=BxHiII", payload)
        name, carrier, oper, master = "", False, "unknown", 0
        off = 16
        while off + 4 <= len(payload):
            alen, atype = struct.unpack_from("=HH", payload, off)
            if alen < 4:
                break
            value = payload[off + 4 : off + alen]
            atype &= 0x3FFF
            if atype == IFLA_IFNAME:
                name = value.rstrip(b"\0").decode()
            elif atype == IFLA_CARRIER and value:
                carrier = bool(value[0])
            elif atype == IFLA_OPERSTATE and value:
                oper = OPERSTATES[value[0]] if value[0] < len(OPERSTATES) else str(value[0])
            elif atype == IFLA_MASTER and len(value) >= 4:
                master = struct.unpack_from("=I", value)[0]
            off += (alen + 3) & ~3
        return cls(index, name, bool(flags & IFF_UP), carrier, oper, master)


class LinkWatch:
    """RTM_NEWLINK notifications of one namespace; subscribe *before* making the change."""

    def __init__(self, ns: str | None) -> None:
        self.ns = ns
        self.sock = _socket(ns, RTMGRP_LINK)

    def __enter__(self) -> LinkWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def drain(self) -> list[LinkState]:
        """Every link notification received so far, in order (does not block)."""
        seen: list[LinkState] = []
        while select.select([self.sock], [], [], 0)[0]:
            data = self.sock.recv(1 << 16)
            seen += [LinkState.parse(p) for t, _, _, p in _messages(data) if t == RTM_NEWLINK]
        return seen

    def wait(
        self,
        index: int,
        predicate: Callable[[LinkState], bool],
        timeout: float,
        current: LinkState | None = None,
    ) -> LinkState:
        """Until link `index` satisfies `predicate` (checked on `current` first)."""
        if current is not None and predicate(current):
            return current
        deadline = time.monotonic() + timeout
        last = current
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                where = f" in {self.ns}" if self.ns else ""
                raise TimeoutError(
                    f"link {index}{where} did not reach the expected state within "
                    f"{timeout:.1f} s (last seen: {last})"
                )
            with contextlib.suppress(BlockingIOError):
                data = self.sock.recv(1 << 16, socket.MSG_DONTWAIT)
                for mtype, _, _, payload in _messages(data):
                    if mtype != RTM_NEWLINK:
                        continue
                    state = LinkState.parse(payload)
                    if state.index == index:
                        last = state
                        if predicate(state):
                            return state
