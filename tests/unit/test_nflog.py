"""The NFLOG reader (harness/reference/nflog.py) outlives an overflowed socket: ENOBUFS
from netlink means messages were lost, not that the reader must stop (netlink(7))."""

from __future__ import annotations

import errno
import struct

import pytest

from harness.reference import nflog


class _Socket:
    def __init__(self, results: list[bytes | OSError]) -> None:
        self.results = results

    def recv(self, _size: int) -> bytes:
        if not self.results:
            raise BlockingIOError
        r = self.results.pop(0)
        if isinstance(r, OSError):
            raise r
        return r


def _message(payload: bytes, outdev: int) -> bytes:
    attrs = nflog._attr(nflog.NFULA_IFINDEX_OUTDEV, struct.pack("!I", outdev))
    attrs += nflog._attr(nflog.NFULA_PAYLOAD, payload)
    body = nflog._NFGEN.pack(10, 0, 0) + attrs
    kind = (nflog.NFNL_SUBSYS_ULOG << 8) | nflog.NFULNL_MSG_PACKET
    return nflog._NLMSG.pack(nflog._NLMSG.size + len(body), kind, 0, 0, 0) + body


def _reader(results: list[bytes | OSError]) -> nflog.NflogGroup:
    group = nflog.NflogGroup.__new__(nflog.NflogGroup)
    group.group, group._seq, group.overruns = 7, 0, 0
    group.sock = _Socket(results)  # type: ignore[assignment]
    return group


def test_packets_after_an_overrun_are_read() -> None:
    group = _reader(
        [_message(b"first", 2), OSError(errno.ENOBUFS, "overrun"), _message(b"after", 3)]
    )
    assert list(group.packets()) == [(2, b"first"), (3, b"after")]
    assert group.overruns == 1


def test_other_socket_errors_are_not_hidden() -> None:
    group = _reader([OSError(errno.EBADF, "closed")])
    with pytest.raises(OSError):
        list(group.packets())
