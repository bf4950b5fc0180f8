"""The reference Home Agent's DNS updates (I/O only; what to update, and the BA's status, are
ha_core.py's): RFC 5026 §6 and draft §6, an RFC 2136 UPDATE to the home domain's server,
signed with TSIG (RFC 5026 §9.5, RFC 8945), with a deadline.

The daemon's loop must never wait on the DNS server (RFC 5026 §6: the BA waits for the
update, the HA's other mobile nodes do not), so the updates run on one worker thread, in
the order they were asked for; each has its deadline from the moment it was asked, and an
update whose deadline passed is failed without being sent. A result is queued and the
daemon woken (its wake socket), which hands it to HomeAgentCore.dns_done.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dns.exception

from harness.reference.ha_core import DnsRequest
from harness.servers import bind

DEFAULT_TIMEOUT = 1.0  # seconds an update may take before its BA says 130


@dataclass(frozen=True)
class DnsResult:
    request_id: int
    ok: bool
    why: str  # what the server said, or why no answer came


def read_tsig_key(path: str) -> bind.TsigKey:
    """A key file in named.conf's form (what `tsig-keygen` writes, and the lab gives)."""
    with open(path, encoding="ascii") as f:
        return bind.TsigKey.from_conf(f.read())


class DnsUpdater:
    """RFC 2136 updates of AAAA records on `server` in `zone`, one worker thread.

    `key` signs them (None: unsigned, which a server with a security association refuses);
    `remove_all` deletes every AAAA and A record of the name instead of the one address
    (a fault's way, never the reference's)."""

    def __init__(
        self,
        server: str,
        zone: str,
        key: bind.TsigKey | None,
        wake: Callable[[], None],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        remove_all: bool = False,
        port: int = bind.DNS_PORT,
    ) -> None:
        self.server, self.zone, self.key, self.port = server, zone, key, port
        self.timeout = timeout
        self.remove_all = remove_all
        self._wake = wake
        self._todo: queue.Queue[tuple[DnsRequest, float] | None] = queue.Queue()
        self._done: queue.Queue[DnsResult] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="dmmconf-ha-dns", daemon=True)
        self._thread.start()

    def submit(self, request: DnsRequest) -> None:
        self._todo.put((request, time.monotonic() + self.timeout))

    def results(self) -> list[DnsResult]:
        """The updates that ended since the last call."""
        out = []
        with contextlib.suppress(queue.Empty):
            while True:
                out.append(self._done.get_nowait())
        return out

    def close(self) -> None:
        self._todo.put(None)
        self._thread.join(timeout=self.timeout + 1.0)

    def _work(self) -> None:
        while (item := self._todo.get()) is not None:
            request, deadline = item
            self._done.put(self._update(request, deadline))
            self._wake()

    def _update(self, request: DnsRequest, deadline: float) -> DnsResult:
        rid = request.request_id
        if deadline - time.monotonic() <= 0:
            return DnsResult(rid, False, "deadline passed before it could be sent")
        # the AAAA record, then the A record of a dual-stack MN's IPv4 home address (draft §8)
        addresses = [a for a in (request.hoa, request.hoa4) if a is not None]
        whys = []
        for address in addresses:
            result = self._one(request, address, deadline - time.monotonic())
            if not result.ok:
                return result
            whys.append(result.why)
        return DnsResult(rid, True, "; ".join(whys))

    def _one(self, request: DnsRequest, address: Any, remaining: float) -> DnsResult:
        rid = request.request_id
        if remaining <= 0:
            return DnsResult(rid, False, "deadline passed before it could be sent")
        try:
            if not request.remove:
                result = bind.dns_update(
                    self.server, self.zone, self.key, request.fqdn, address,
                    port=self.port, timeout=remaining, check=False, replace=False,
                )  # fmt: skip
            else:
                which = None if self.remove_all else address
                result = bind.dns_remove(
                    self.server, self.zone, self.key, request.fqdn, which,
                    port=self.port, timeout=remaining, check=False,
                )  # fmt: skip
        except dns.exception.Timeout:
            return DnsResult(rid, False, f"no answer from {self.server} in {remaining:.2f} s")
        except (OSError, dns.exception.DNSException) as exc:
            return DnsResult(rid, False, f"{type(exc).__name__}: {exc}")
        return DnsResult(rid, result.ok, str(result))
