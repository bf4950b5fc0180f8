"""The ceilings of `dmmconf bench ha` and `dmmconf bench fanout`, run inside a lab node.

* `python -m harness.bench.ha_echo echo HA_ADDRESS`, in the HA's namespace: every BU that
  arrives (raw socket of protocol 60: the Destination Options header with the Home Address
  option, RFC 6275 §6.3) is answered at once by a ready-made BA (type 2 routing header with
  the BU's home address, its sequence number) through IPPROTO_RAW. No parsing beyond fixed
  offsets, no state, no checksum: what a loop of two system calls per message costs.
* `... flood-raw DST HEX SECONDS`: the packet HEX (a whole IPv6 packet) sent to DST through
  IPPROTO_RAW in a bare loop for SECONDS (the fan-out ceiling, from the HA's namespace).
* `... flood-udp GROUP PORT IFNAME SECONDS`: UDP datagrams to GROUP out of IFNAME in a bare
  loop (the multicast source of the fan-out benchmark).

Each prints "ready" once its sockets are open.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
import sys
import time
from collections.abc import Callable

IPPROTO_DSTOPTS, IPPROTO_ROUTING, IPPROTO_MH = 60, 43, 135
PAYLOAD = bytes(100)


def template(ha: str) -> bytearray:
    rh2 = struct.pack("!BBBB4x", IPPROTO_MH, 2, 2, 1) + bytes(16)
    ba = struct.pack("!BBBBHBBHH", 59, 1, 6, 0, 0, 0, 0, 0, 0xFFFF)
    head = struct.pack("!IHBB", 0x60000000, len(rh2) + len(ba), IPPROTO_ROUTING, 64)
    return bytearray(head + ipaddress.IPv6Address(ha).packed + bytes(16) + rh2 + ba)


def echo(ha: str) -> None:
    rx = socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_DSTOPTS)
    tx = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
    out = template(ha)
    print("ready", flush=True)
    while True:
        data, addr = rx.recvfrom(2048)
        if len(data) < 32:
            continue
        coa = addr[0].split("%", 1)[0]
        out[24:40] = socket.inet_pton(socket.AF_INET6, coa)
        out[48:64] = data[8:24]  # the Home Address option's address
        out[72:74] = data[30:32]  # the BU's sequence number
        tx.sendto(out, (coa, 0))


def _loop(send: Callable[[], object], seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for _ in range(64):
            with contextlib.suppress(OSError):  # ENOBUFS: a full queue drops, the loop goes on
                send()


def flood_raw(dst: str, packet: bytes, seconds: float) -> None:
    tx = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
    print("ready", flush=True)
    _loop(lambda: tx.sendto(packet, (dst, 0)), seconds)


def flood_udp(group: str, port: int, ifname: str, seconds: float) -> None:
    tx = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    index = socket.if_nametoindex(ifname)
    tx.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
    tx.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 16)
    print("ready", flush=True)
    _loop(lambda: tx.sendto(PAYLOAD, (group, port)), seconds)


def main(argv: list[str]) -> int:
    if argv[:1] == ["echo"]:
        echo(argv[1])
    elif argv[:1] == ["flood-raw"]:
        flood_raw(argv[1], bytes.fromhex(argv[2]), float(argv[3]))
    elif argv[:1] == ["flood-udp"]:
        flood_udp(argv[1], int(argv[2]), argv[3], float(argv[4]))
    else:
        print(f"usage: {__doc__}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
