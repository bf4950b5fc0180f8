"""A minimal nfnetlink_log (NFLOG) subscriber: the packets an nftables `log group N` rule
copies to userspace, with the interface they were leaving by.

pyroute2 has no NFLOG client, and the protocol needed here is three messages: bind the
group, ask for whole packets, read NFULNL_MSG_PACKET (linux/netfilter/nfnetlink_log.h).
"""

from __future__ import annotations

import errno
import socket
import struct
from collections.abc import Iterator

NETLINK_NETFILTER = 12
NFNL_SUBSYS_ULOG = 4
NFULNL_MSG_PACKET, NFULNL_MSG_CONFIG = 0, 1
NFULA_CFG_CMD, NFULA_CFG_MODE = 1, 2
NFULNL_CFG_CMD_BIND = 1
NFULNL_COPY_PACKET = 2
NFULA_IFINDEX_OUTDEV, NFULA_PAYLOAD = 5, 9
NLM_F_REQUEST, NLM_F_ACK = 0x1, 0x4
NLMSG_ERROR = 2
_NLMSG = struct.Struct("=IHHII")
_NFGEN = struct.Struct("=BBH")  # family, version, res_id (network order)


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + bytes((-length) % 4)


class NflogGroup:
    """Packets logged to `group` in the current network namespace."""

    def __init__(self, group: int) -> None:
        self.group = group
        self._seq = 0
        self.overruns = 0
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        try:
            self.sock.bind((0, 0))
            # room for a burst of Reports while the daemon is busy elsewhere
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            self._config(_attr(NFULA_CFG_CMD, bytes([NFULNL_CFG_CMD_BIND])))
            mode = struct.pack("!IBB", 0xFFFF, NFULNL_COPY_PACKET, 0)
            self._config(_attr(NFULA_CFG_MODE, mode))
            self.sock.setblocking(False)
        except BaseException:
            self.sock.close()
            raise

    def _config(self, attrs: bytes) -> None:
        self._seq += 1
        body = _NFGEN.pack(socket.AF_UNSPEC, 0, socket.htons(self.group)) + attrs
        kind = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG
        header = _NLMSG.pack(_NLMSG.size + len(body), kind, NLM_F_REQUEST | NLM_F_ACK, self._seq, 0)
        self.sock.send(header + body)
        reply = self.sock.recv(65535)
        length, mtype = struct.unpack_from("=IH", reply)
        if mtype == NLMSG_ERROR:
            (err,) = struct.unpack_from("=i", reply, _NLMSG.size)
            if err:
                raise OSError(-err, f"NFLOG group {self.group}: configuration refused")

    def fileno(self) -> int:
        return self.sock.fileno()

    def packets(self) -> Iterator[tuple[int, bytes]]:
        """(outgoing ifindex or 0, the network-layer packet) of everything waiting. Packets
        the kernel could not queue to a full socket are lost (`overruns` counts the times):
        the reader goes on with what is there."""
        while True:
            try:
                data = self.sock.recv(1 << 17)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # ENOBUFS: the socket overflowed, netlink(7)
                if exc.errno != errno.ENOBUFS:
                    raise
                self.overruns += 1
                continue
            off = 0
            while off + _NLMSG.size <= len(data):
                length, mtype = struct.unpack_from("=IH", data, off)
                if length < _NLMSG.size:
                    break
                if mtype == (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET:
                    yield self._packet(data[off + _NLMSG.size + _NFGEN.size : off + length])
                off += (length + 3) & ~3

    @staticmethod
    def _packet(attrs: bytes) -> tuple[int, bytes]:
        outdev, payload = 0, b""
        pos = 0
        while pos + 4 <= len(attrs):
            alen, kind = struct.unpack_from("=HH", attrs, pos)
            if alen < 4:
                break
            value = attrs[pos + 4 : pos + alen]
            kind &= 0x7FFF  # NLA_F_NESTED / byte-order bits
            if kind == NFULA_IFINDEX_OUTDEV and len(value) >= 4:
                (outdev,) = struct.unpack("!I", value[:4])
            elif kind == NFULA_PAYLOAD:
                payload = value
            pos += (alen + 3) & ~3
        return outdev, payload

    def close(self) -> None:
        self.sock.close()
