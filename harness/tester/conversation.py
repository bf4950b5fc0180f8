"""Talk to a system under test on a link, in the spirit of tlsfuzzer's conversations.

An `Endpoint` is a place on a link (a namespace and an interface) that can `send` a
crafted scapy packet: a whole frame (Ether / ...) goes out as is through an AF_PACKET
socket; an IPv6 or IPv4 packet goes out through a raw IPPROTO_RAW socket of the namespace
(the kernel routes it and resolves the neighbour, but sends the header and every extension
header exactly as built: a Home Address option, a type 2 routing header), or, with
`l2=True`, inside an Ethernet header made of the interface's MAC and the neighbour's.

A `Link` is an endpoint that also watches the wire (a `capture.Capture`): `expect`
waits for a frame matching a predicate until a deadline (on a condition variable fed by
the capture thread, never by polling) and returns it as a scapy packet; if none comes it
raises `ExpectationFailed` with what was expected, the deadline, and what was seen on the
link meanwhile. `expect_none` is the converse: nothing matching may appear.

Expectations consume the link's frames in order: each `expect` looks at the frames after
the previous match (or after `mark()`), including frames that arrived before the call, so
an answer faster than the test's own next line is never missed.

Predicates are plain callables on scapy packets; the helpers here (`is_mh`, `is_udp_to`,
`from_src`, ...) return `Predicate` objects that describe themselves in failure messages
and combine with `&`, `|` and `~`.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from harness.lab.netns import entered as in_netns
from harness.tester.capture import Capture, Frame
from harness.wire import compact, numbers
from harness.wire import layers as _layers  # noqa: F401  (scapy dissects with every project layer)

ETH_P_IP, ETH_P_ARP, ETH_P_IPV6, ETH_P_8021Q = 0x0800, 0x0806, 0x86DD, 0x8100
SUMMARY_FRAMES = 12  # frames listed in a failure message
MAX_LINE = 220


class ExpectationFailed(AssertionError):
    """An expectation on a link was not met; the message says what was seen instead."""

    def __init__(self, message: str, *, link: str, what: str, seen: list[str], total: int) -> None:
        super().__init__(message)
        self.link = link
        self.what = what
        self.seen = seen  # one line per frame, the last SUMMARY_FRAMES of the window
        self.total = total  # frames in the window


# --- Predicates -------------------------------------------------------------------------------


class Predicate:
    """A test on a packet that can say what it tests."""

    def __init__(self, fn: Callable[[Any], Any], description: str) -> None:
        self.fn = fn
        self.description = description

    def __call__(self, pkt: Any) -> bool:
        return bool(self.fn(pkt))

    def __and__(self, other: Callable[[Any], Any]) -> Predicate:
        o = as_predicate(other)
        return Predicate(lambda p: self(p) and o(p), f"{self} and {o}")

    def __or__(self, other: Callable[[Any], Any]) -> Predicate:
        o = as_predicate(other)
        return Predicate(lambda p: self(p) or o(p), f"({self} or {o})")

    def __invert__(self) -> Predicate:
        return Predicate(lambda p: not self(p), f"not ({self})")

    def __str__(self) -> str:
        return self.description

    def __repr__(self) -> str:
        return f"<Predicate {self.description}>"


def as_predicate(fn: Callable[[Any], Any]) -> Predicate:
    if isinstance(fn, Predicate):
        return fn
    name = getattr(fn, "__name__", None) or repr(fn)
    return Predicate(fn, "a packet matching " + ("a lambda" if name == "<lambda>" else name))


def all_of(*preds: Callable[[Any], Any]) -> Predicate:
    ps = [as_predicate(p) for p in preds]
    return Predicate(lambda pkt: all(p(pkt) for p in ps), " and ".join(map(str, ps)))


def any_of(*preds: Callable[[Any], Any]) -> Predicate:
    ps = [as_predicate(p) for p in preds]
    return Predicate(lambda pkt: any(p(pkt) for p in ps), "(" + " or ".join(map(str, ps)) + ")")


def _norm(addr: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    return str(ipaddress.ip_address(str(addr)))


def _ip_layers(pkt: Any) -> list[Any]:
    """The IPv6 / IPv4 headers of a packet, outermost first (tunnels give several).

    The packet an ICMP error quotes is not part of it: a Destination Unreachable that
    quotes a datagram to port 5000 is not a datagram to port 5000.
    """
    from scapy.layers.inet import IP, IPerror
    from scapy.layers.inet6 import IPerror6, IPv6

    out = []
    for layer in pkt.iterpayloads():
        if isinstance(layer, IPerror6 | IPerror):
            break
        if isinstance(layer, IPv6 | IP):
            out.append(layer)
    return out


def _layer_bytes(layer: Any) -> bytes:
    """The bytes a dissected layer was made from (exactly as on the wire), else built."""
    original = getattr(layer, "original", None)
    return bytes(original) if original else bytes(layer)


def ipv6_bytes(pkt: Any) -> bytes | None:
    """The outermost IPv6 packet inside `pkt`, as bytes, or None."""
    from scapy.layers.inet6 import IPv6

    layer = pkt.getlayer(IPv6) if pkt is not None else None
    return _layer_bytes(layer) if layer is not None else None


def mobility_message(pkt: Any) -> compact.MobilityMessage | None:
    """The Mobility Header message in a packet, parsed by the compact codec, or None."""
    raw = ipv6_bytes(pkt)
    if raw is None:
        return None
    try:
        return compact.parse_packet(raw)
    except compact.Malformed:
        return None


def _mhtype(value: int | str) -> int:
    if isinstance(value, str):
        return int(numbers.MHType[value.upper()])
    return int(value)


def _mhname(value: int) -> str:
    try:
        return numbers.MHType(value).name
    except ValueError:
        return f"MH type {value}"


def is_mh(
    type: int | str | None = None,
    seq: int | None = None,
    status: int | None = None,
    *,
    checksum_ok: bool | None = None,
) -> Predicate:
    """A Mobility Header message: of MH `type` (5, "BU", "BA"...), sequence `seq` (BU/BA),
    `status` (BA/BE), and with a right (or wrong) checksum."""
    want = _mhtype(type) if type is not None else None

    def test(pkt: Any) -> bool:
        msg = mobility_message(pkt)
        if msg is None:
            return False
        if want is not None and msg.mhtype != want:
            return False
        if seq is not None and (msg.mhtype not in (5, 6) or msg.seq != seq):
            return False
        if status is not None and (msg.mhtype not in (6, 7) or msg.body[6] != status):
            return False
        return checksum_ok is None or msg.checksum_ok == checksum_ok

    parts = [f"a {_mhname(want)}" if want is not None else "a Mobility Header message"]
    if status is not None:
        parts.append(f"with status {status}")
    if seq is not None:
        parts.append(f"for seq {seq}")
    if checksum_ok is not None:
        parts.append("with a good checksum" if checksum_ok else "with a bad checksum")
    return Predicate(test, " ".join(parts))


def is_udp_to(
    group: str | ipaddress.IPv4Address | ipaddress.IPv6Address,
    port: int | None = None,
    *,
    tunnelled: bool | None = None,
) -> Predicate:
    """UDP to `group` (a multicast group or any address), port `port`.

    tunnelled=None: native or inside an IP-in-IP tunnel; True: only tunnelled; False: only native.
    """
    from scapy.layers.inet import UDP

    addr = _norm(group)

    def test(pkt: Any) -> bool:
        ips = _ip_layers(pkt)
        for depth, ip in enumerate(ips):
            udp = ip.payload
            if not isinstance(udp, UDP) or _norm(ip.dst) != addr:
                continue
            if port is not None and udp.dport != port:
                continue
            if tunnelled is None or tunnelled == (depth > 0):
                return True
        return False

    where = {None: "", True: " inside a tunnel", False: " (not tunnelled)"}[tunnelled]
    return Predicate(test, f"UDP to [{addr}]{f':{port}' if port is not None else ''}{where}")


def from_src(addr: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> Predicate:
    """An IP packet whose (outermost) source address is `addr`."""
    a = _norm(addr)

    def test(pkt: Any) -> bool:
        ips = _ip_layers(pkt)
        return bool(ips) and _norm(ips[0].src) == a

    return Predicate(test, f"from {a}")


def to_dst(addr: str | ipaddress.IPv4Address | ipaddress.IPv6Address) -> Predicate:
    """An IP packet whose (outermost) destination address is `addr`."""
    a = _norm(addr)

    def test(pkt: Any) -> bool:
        ips = _ip_layers(pkt)
        return bool(ips) and _norm(ips[0].dst) == a

    return Predicate(test, f"to {a}")


def is_icmp6(type: int | None = None, code: int | None = None) -> Predicate:
    """An ICMPv6 message of `type` (e.g. 4, Parameter Problem) and `code`."""

    from scapy.layers.inet6 import _ICMPv6

    def test(pkt: Any) -> bool:
        # The first ICMPv6 header: an error message quotes the offending packet after it.
        icmp = next((lay for lay in pkt.iterpayloads() if isinstance(lay, _ICMPv6)), None)
        if icmp is None:
            return False
        return (type is None or icmp.type == type) and (code is None or icmp.code == code)

    desc = "an ICMPv6 message" + (f" of type {type}" if type is not None else "")
    return Predicate(test, desc + (f" code {code}" if code is not None else ""))


inbound = Predicate(lambda p: getattr(p, "direction", None) == 1, "received on the link")
outbound = Predicate(lambda p: getattr(p, "direction", None) == 2, "sent from the link")


# --- One-line summaries -----------------------------------------------------------------------


def mh_brief(msg: compact.MobilityMessage) -> str:
    """type/seq/status of a mobility message, for a summary line."""
    parts = [_mhname(msg.mhtype)]
    try:
        if msg.mhtype == numbers.MHType.BU:
            parts.append(f"seq={msg.seq} lifetime={msg.lifetime}")
        elif msg.mhtype == numbers.MHType.BA:
            name = numbers.BA_STATUS.get(msg.ba_status)
            parts.append(f"status={msg.ba_status}{f' ({name})' if name else ''} seq={msg.seq}")
        elif msg.mhtype == numbers.MHType.BE:
            parts.append(f"status={msg.body[6]}")
    except (struct.error, IndexError):
        parts.append("(truncated)")
    if msg.hoa:
        parts.append(f"hoa={msg.hoa}")
    if msg.rh2_hoa:
        parts.append(f"rh2={msg.rh2_hoa}")
    if not msg.checksum_ok:
        parts.append("BAD CHECKSUM")
    return " ".join(parts)


def describe(frame: Frame, t0: float) -> str:
    """`#seq +t s in|out <scapy summary> [MH BA status=0 seq=7]`, on one line."""
    way = "out" if frame.outgoing else "in "
    try:
        pkt = frame.packet
        text = pkt.summary()
        msg = mobility_message(pkt)
        if msg is not None:
            text += f" [{mh_brief(msg)}]"
    except Exception as exc:  # noqa: BLE001 - a summary must never fail
        text = f"{len(frame.data)} bytes (undecodable: {exc!r})"
    line = f"#{frame.seq:<4} {frame.mono - t0:+8.3f} s {way} {text}"
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 3] + "..."


# --- Endpoints and links ----------------------------------------------------------------------


def _multicast_mac(addr: str) -> str | None:
    ip = ipaddress.ip_address(addr)
    if not ip.is_multicast:
        return None
    if ip.version == 6:
        return "33:33:" + ":".join(f"{b:02x}" for b in ip.packed[-4:])
    low = ip.packed[1:]
    return "01:00:5e:" + ":".join(f"{b:02x}" for b in (low[0] & 0x7F, low[1], low[2]))


def _ethertype(frame: bytes) -> tuple[int, int]:
    """(ethertype, offset of the payload) of an Ethernet frame, past one VLAN tag."""
    etype = int.from_bytes(frame[12:14], "big")
    if etype == ETH_P_8021Q and len(frame) >= 18:
        return int.from_bytes(frame[16:18], "big"), 18
    return etype, 14


class Endpoint:
    """A place on a link from which crafted packets are sent: namespace + interface."""

    def __init__(self, ns: str | None, iface: str, label: str | None = None) -> None:
        self.ns = ns
        self.iface = iface
        self.label = label or (f"{ns}:{iface}" if ns else iface)
        self._mac: str | None = None
        self._ifindex: int | None = None
        self._socks: dict[str, socket.socket] = {}
        self._send_lock = threading.Lock()
        self.transcript: list[tuple[float, str]] = []  # (monotonic, what happened)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.label} ({self.ns or '-'}/{self.iface})>"

    def note(self, text: str) -> None:
        self.transcript.append((time.monotonic(), f"[{self.label}] {text}"))

    # -- interface facts -----------------------------------------------------------------------
    def _probe(self) -> None:
        with in_netns(self.ns):
            with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as s:
                s.bind((self.iface, 0))
                addr = s.getsockname()
            self._ifindex = socket.if_nametoindex(self.iface)
        self._mac = ":".join(f"{b:02x}" for b in addr[4][:6])

    @property
    def mac(self) -> str:
        if self._mac is None:
            self._probe()
        assert self._mac is not None
        return self._mac

    @property
    def ifindex(self) -> int:
        if self._ifindex is None:
            self._probe()
        assert self._ifindex is not None
        return self._ifindex

    def _sock(self, kind: str) -> socket.socket:
        sock = self._socks.get(kind)
        if sock is not None:
            return sock
        with in_netns(self.ns):
            if kind == "l2":
                sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # sends, reads nothing
                sock.bind((self.iface, 0))
            else:
                family = socket.AF_INET6 if kind == "ip6" else socket.AF_INET
                sock = socket.socket(family, socket.SOCK_RAW, socket.IPPROTO_RAW)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.iface.encode())
        self._socks[kind] = sock
        return sock

    def close(self) -> None:
        for sock in self._socks.values():
            sock.close()
        self._socks.clear()

    # -- sending -------------------------------------------------------------------------------
    def send(
        self,
        pkt: Any,
        *,
        l2: bool | None = None,
        dst_mac: str | None = None,
        resolve_within: float = 1.0,
    ) -> bytes:
        """Send `pkt` on this endpoint's interface; returns the bytes that went out.

        An Ether packet (or bytes, taken as a frame) goes out as is. An IPv6/IPv4 packet goes
        through a raw IPPROTO_RAW socket (l2=None/False), or with l2=True inside an Ethernet
        header from this interface's MAC to `dst_mac` (default: the multicast MAC of the
        destination, else the neighbour's, resolved with an NS or ARP request if unknown).
        """
        from scapy.layers.inet import IP
        from scapy.layers.inet6 import IPv6
        from scapy.layers.l2 import Ether

        if isinstance(pkt, bytes | bytearray):
            if l2 is False:
                raise ValueError("bytes are sent as a whole frame; build a scapy packet for L3")
            return self._send_frame(bytes(pkt), "frame")
        if isinstance(pkt, Ether):
            # Left unset, scapy would look the addresses up in the *test process's*
            # namespace (and solicit there); fill them in from this link instead.
            if "src" not in pkt.fields or "dst" not in pkt.fields:
                pkt = pkt.copy()
                if "src" not in pkt.fields:
                    pkt.src = self.mac
                if "dst" not in pkt.fields:
                    ip = pkt.payload if isinstance(pkt.payload, IPv6 | IP) else None
                    if ip is None:
                        raise ValueError("an Ether frame without dst= and without an IP payload")
                    pkt.dst = _multicast_mac(ip.dst) or self.resolve(ip.dst, resolve_within)
            return self._send_frame(bytes(pkt), pkt.summary())
        if not isinstance(pkt, IPv6 | IP):
            raise TypeError(f"send() takes Ether, IPv6 or IP packets (or bytes), not {pkt!r}")
        if l2:
            mac = dst_mac or _multicast_mac(pkt.dst) or self.resolve(pkt.dst, resolve_within)
            frame = Ether(src=self.mac, dst=mac) / pkt
            return self._send_frame(bytes(frame), frame.summary())
        data = bytes(pkt)
        dst = _norm(pkt.dst)
        with self._send_lock:
            if isinstance(pkt, IPv6):
                ip6 = ipaddress.IPv6Address(dst)
                scope = self.ifindex if ip6.is_link_local or ip6.is_multicast else 0
                self._sock("ip6").sendto(data, (dst, 0, 0, scope))
            else:
                self._sock("ip4").sendto(data, (dst, 0))
        self.note(f"sent (L3, raw socket) {pkt.summary()}")
        return data

    def _send_frame(self, frame: bytes, what: str) -> bytes:
        with self._send_lock:
            self._sock("l2").send(frame)
        self.note(f"sent (L2) {what}")
        return frame

    def resolve(self, addr: str, within: float = 1.0) -> str:
        """The MAC of neighbour `addr` on this link: the kernel's entry, else ask (NS/ARP)."""
        found = self._neighbour_entry(addr)
        if found:
            return found
        return self._solicit(_norm(addr), within)

    def _neighbour_entry(self, addr: str) -> str | None:
        from pyroute2 import IPRoute

        want = _norm(addr)
        with in_netns(self.ns):
            ipr = IPRoute()
        try:
            for msg in ipr.neigh("dump", ifindex=self.ifindex):
                dst, mac = msg.get("NDA_DST"), msg.get("NDA_LLADDR")
                # NUD_INCOMPLETE 0x01, NUD_FAILED 0x20: no usable address yet
                if dst and mac and _norm(dst) == want and not msg["state"] & 0x21:
                    return str(mac)
        finally:
            ipr.close()
        return None

    def _own_address(self, version: int) -> str | None:
        from pyroute2 import IPRoute

        with in_netns(self.ns):
            ipr = IPRoute()
        try:
            addrs = [str(m.get("IFA_ADDRESS")) for m in ipr.addr("dump", index=self.ifindex)]
        finally:
            ipr.close()
        addrs = [a for a in addrs if ipaddress.ip_address(a).version == version]
        if version == 6:  # a link-local source is what ND uses
            addrs.sort(key=lambda a: not ipaddress.IPv6Address(a).is_link_local)
        return addrs[0] if addrs else None

    def _solicit(self, addr: str, within: float) -> str:
        """Send an NS (or ARP request) for `addr` and wait for the answer's source MAC."""
        from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6NDOptSrcLLAddr, IPv6
        from scapy.layers.l2 import ARP, Ether
        from scapy.utils6 import in6_getnsma, in6_getnsmac

        ip = ipaddress.ip_address(addr)
        if ip.version == 6:
            src = self._own_address(6) or "::"
            nsma = socket.inet_ntop(socket.AF_INET6, in6_getnsma(ip.packed))
            query = (
                Ether(src=self.mac, dst=in6_getnsmac(socket.inet_pton(socket.AF_INET6, nsma)))
                / IPv6(src=src, dst=nsma, hlim=255)
                / ICMPv6ND_NS(tgt=addr)
                / ICMPv6NDOptSrcLLAddr(lladdr=self.mac)
            )
            proto = ETH_P_IPV6
        else:
            query = Ether(src=self.mac, dst="ff:ff:ff:ff:ff:ff") / ARP(
                op=1, hwsrc=self.mac, psrc=self._own_address(4) or "0.0.0.0", pdst=addr
            )
            proto = ETH_P_ARP
        with in_netns(self.ns):
            listener = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(proto))
        with listener:
            listener.bind((self.iface, proto))
            deadline = time.monotonic() + within
            self._send_frame(bytes(query), f"neighbour solicitation for {addr}")
            while (left := deadline - time.monotonic()) > 0:
                listener.settimeout(left)  # a blocking receive with a deadline
                try:
                    data = listener.recv(65535)
                except TimeoutError:
                    break
                answer = Ether(data)
                if ip.version == 6:
                    na = answer.getlayer(ICMPv6ND_NA)
                    if na is not None and _norm(na.tgt) == addr:
                        return str(answer.src)
                else:
                    arp = answer.getlayer(ARP)
                    if arp is not None and arp.op == 2 and arp.psrc == addr:
                        return str(arp.hwsrc)
        raise LookupError(
            f"no neighbour {addr} answered on {self.label} within {within} s; "
            "pass dst_mac= or send at L3 (l2=False)"
        )


class Link(Endpoint):
    """An endpoint that watches its link: send, then `expect` what comes back."""

    def __init__(
        self,
        ns: str | None,
        iface: str,
        label: str | None = None,
        *,
        pcap: Any = None,
        capture: Capture | None = None,
        max_frames: int = 200_000,
    ) -> None:
        super().__init__(ns, iface, label)
        self.capture = capture or Capture(ns, iface, pcap, label=self.label)
        self.max_frames = max_frames
        self._cond = threading.Condition()
        self._frames: list[Frame] = []
        self._base = 0  # seq of _frames[0] (old frames are dropped past max_frames)
        self._cursor = 0  # seq where the next expectation starts looking
        self._unsubscribe = self.capture.subscribe(self._on_frame)

    # -- life cycle ----------------------------------------------------------------------------
    def start(self) -> Link:
        self.capture.start()
        if self.capture.mac:
            self._mac, self._ifindex = self.capture.mac, self.capture.ifindex
        return self

    def stop(self, drain: float = 0.5) -> None:
        self.capture.stop(drain)

    def close(self) -> None:
        self.stop()
        self._unsubscribe()
        super().close()

    def __enter__(self) -> Link:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the frames ----------------------------------------------------------------------------
    def _on_frame(self, frame: Frame) -> None:  # on the capture thread: quick
        with self._cond:
            self._frames.append(frame)
            if len(self._frames) > self.max_frames:
                drop = len(self._frames) // 2
                del self._frames[:drop]
                self._base += drop
            self._cond.notify_all()

    def _end(self) -> int:
        return self._base + len(self._frames)

    def frames(self, since: int = 0) -> list[Frame]:
        """The frames captured so far, from seq `since` on."""
        with self._cond:
            return self._frames[max(since - self._base, 0) :]

    def packets(self, since: int = 0) -> list[Any]:
        return [f.packet for f in self.frames(since)]

    def mark(self) -> int:
        """Forget what came before: later expectations look only at frames from now on."""
        with self._cond:
            self._cursor = self._end()
            return self._cursor

    @property
    def cursor(self) -> int:
        return self._cursor

    def summary(self, since: int = 0, t0: float | None = None, last: int = SUMMARY_FRAMES) -> str:
        frames = self.frames(since)
        t = t0 if t0 is not None else (frames[0].mono if frames else time.monotonic())
        return "\n".join(describe(f, t) for f in frames[-last:])

    # -- expectations ----------------------------------------------------------------------------
    def _batches(self, start: int, deadline: float) -> Iterator[list[Frame]]:
        """Yield lists of new frames from seq `start` until the deadline passes."""
        pos = start
        while True:
            with self._cond:
                while self._end() <= pos:  # woken by the capture thread's notify_all
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                batch = self._frames[max(pos - self._base, 0) :]
            if batch:
                pos = batch[-1].seq + 1
                yield batch
            elif time.monotonic() >= deadline:
                return

    def _check_running(self) -> None:
        if not self.capture.running and self.capture.error is None:
            raise RuntimeError(f"link {self.label}: capture not started (call start())")

    def expect(
        self,
        predicate: Callable[[Any], Any],
        within: float = 1.0,
        what: str | None = None,
        *,
        since: int | None = None,
    ) -> Any:
        """The first frame after the cursor (or seq `since`) matching `predicate`, waiting
        at most `within` seconds; as a scapy packet. Raises ExpectationFailed otherwise."""
        __tracebackhide__ = True
        self._check_running()
        pred = as_predicate(predicate)
        what = what or str(pred)
        t0 = time.monotonic()
        start = self._cursor if since is None else since
        errors: list[str] = []
        for batch in self._batches(start, t0 + within):
            for frame in batch:
                if self._matches(pred, frame, errors):
                    with self._cond:
                        self._cursor = max(self._cursor, frame.seq + 1)
                    took = (time.monotonic() - t0) * 1000
                    self.note(f"expected {what}: got #{frame.seq} after {took:.1f} ms")
                    return frame.packet
        self.note(f"expected {what} within {within} s: NOT SEEN")
        raise self._failure(
            f"expected {what} on link {self._where()} within {within:g} s; "
            f"the deadline passed (+{within:.3f} s) and nothing matched.",
            what,
            start,
            t0,
            errors,
        )

    def expect_none(
        self,
        predicate: Callable[[Any], Any],
        during: float = 1.0,
        what: str | None = None,
        *,
        since: int | None = None,
    ) -> None:
        """No frame after the cursor (or seq `since`) may match `predicate` until `during`
        seconds from now; fails at the first one that does."""
        __tracebackhide__ = True
        self._check_running()
        pred = as_predicate(predicate)
        what = what or str(pred)
        t0 = time.monotonic()
        start = self._cursor if since is None else since
        errors: list[str] = []
        for batch in self._batches(start, t0 + during):
            for frame in batch:
                if self._matches(pred, frame, errors):
                    self.note(f"expected no {what}: got #{frame.seq}")
                    raise self._failure(
                        f"expected no {what} on link {self._where()} during {during:g} s, "
                        f"but one came at {frame.mono - t0:+.3f} s:\n  {describe(frame, t0)}",
                        what,
                        start,
                        t0,
                        errors,
                    )
        self.note(f"expected no {what} during {during} s: none seen")

    def _matches(self, pred: Predicate, frame: Frame, errors: list[str]) -> bool:
        try:
            return pred(frame.packet)
        except Exception as exc:  # noqa: BLE001 - e.g. pkt[UDP] on a frame with no UDP
            if len(errors) < 3:
                errors.append(f"#{frame.seq}: {type(exc).__name__}: {exc}")
            return False

    def _where(self) -> str:
        return f"'{self.label}' ({self.ns + '/' if self.ns else ''}{self.iface})"

    def _failure(
        self, head: str, what: str, start: int, t0: float, errors: list[str]
    ) -> ExpectationFailed:
        frames = self.frames(start)
        seen = [describe(f, t0) for f in frames[-SUMMARY_FRAMES:]]
        lines = [head]
        if not frames:
            lines.append("Nothing at all was seen on the link in that window.")
        else:
            shown = f"the last {len(seen)}" if len(seen) < len(frames) else "all"
            lines.append(
                f"Seen on the link in the window ({len(frames)} frames, {shown}; "
                "times from the start of the wait):"
            )
            lines.extend(f"  {line}" for line in seen)
        if errors:
            lines.append("The predicate raised on some frames (counted as no match): ")
            lines.extend(f"  {e}" for e in errors)
        if self.capture.error is not None:
            lines.append(f"The capture itself failed: {self.capture.error!r}")
        if self.capture.pcap is not None:
            lines.append(f"Full capture: {self.capture.pcap}")
        return ExpectationFailed(
            "\n".join(lines), link=self.label, what=what, seen=seen, total=len(frames)
        )


__all__ = [
    "Endpoint",
    "ExpectationFailed",
    "Link",
    "Predicate",
    "all_of",
    "any_of",
    "as_predicate",
    "describe",
    "from_src",
    "inbound",
    "ipv6_bytes",
    "is_icmp6",
    "is_mh",
    "is_udp_to",
    "mh_brief",
    "mobility_message",
    "outbound",
    "to_dst",
]
