"""The ceiling of `dmmconf bench ha`: a bare echo loop where the HA would run.

`python -m harness.bench.ha_echo HA_ADDRESS`, inside the HA's namespace: every BU that
arrives (raw socket of protocol 60: the Destination Options header with the Home Address
option, RFC 6275 §6.3) is answered at once by a ready-made BA (type 2 routing header with
the BU's home address, its sequence number) through IPPROTO_RAW. No parsing beyond fixed
offsets, no state, no checksum: what a loop of two system calls per message costs.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import sys

IPPROTO_DSTOPTS, IPPROTO_ROUTING, IPPROTO_MH = 60, 43, 135


def template(ha: str) -> bytearray:
    rh2 = struct.pack("!BBBB4x", IPPROTO_MH, 2, 2, 1) + bytes(16)
    ba = struct.pack("!BBBBHBBHH", 59, 1, 6, 0, 0, 0, 0, 0, 0xFFFF)
    head = struct.pack("!IHBB", 0x60000000, len(rh2) + len(ba), IPPROTO_ROUTING, 64)
    return bytearray(head + ipaddress.IPv6Address(ha).packed + bytes(16) + rh2 + ba)


def main(argv: list[str]) -> int:
    ha = argv[0]
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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
