"""The lab's MLD/IGMP proxy outlives a handler that raises (harness/lab/mldproxy.py,
Proxy.guarded): one bad packet or timer is logged with its traceback and counted, and the
proxy goes on serving every router of the lab."""

from __future__ import annotations

import io
import socket
import threading
from pathlib import Path

from harness.lab import mldproxy
from harness.lab.mldproxy import Proxy


def _proxy() -> Proxy:
    proxy = Proxy.__new__(Proxy)
    proxy.log_file = io.StringIO()
    proxy.errors = 0
    return proxy


def test_a_raising_handler_is_logged_and_counted() -> None:
    proxy = _proxy()
    with proxy.guarded("dmm-x-ar1: MLD message"):
        raise IndexError("a report cut short")
    after = []
    with proxy.guarded("dmm-x-core: MLD timers"):
        after.append("served")
    assert proxy.errors == 1 and after == ["served"]
    log = proxy.log_file.getvalue()
    assert "dmm-x-ar1: MLD message" in log and "IndexError: a report cut short" in log


def test_askers_that_give_up_leave_the_proxy_serving(tmp_path: Path) -> None:
    """A control client that hangs up before the answer (its own timeout, on a loaded
    machine) or never sends its request costs nothing: the next request is answered."""
    path = str(tmp_path / "mld.sock")
    proxy = Proxy({"routers": [], "control": path})
    proxy.log_file = io.StringIO()
    server = threading.Thread(target=proxy.serve, daemon=True)
    server.start()
    try:
        for request in (b'{"op": "state"}\n', b""):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(path)
                s.sendall(request)  # and hang up at once
        assert request_state(path)["errors"] == 0
    finally:
        proxy.running = False
        server.join(5)
        proxy.close()
    assert not server.is_alive()


def request_state(path: str) -> dict[str, object]:
    return mldproxy.request(path, {"op": "state"}, timeout=5.0)
