"""The lab's multicast routing: the MLD and IGMP proxy process (harness.lab.mldproxy) that
serves the core and every AR for IPv6 and IPv4 groups, started with its configuration,
waited for, asked for its state, told to query or to let a router go, and stopped.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from typing import Any

from harness.lab import mldproxy, registry, supervisor
from harness.lab.nodes import LabError, Nodes
from harness.netproto import mld

STOP_TIMEOUT = 1.0


class MulticastRouting:
    """The MLD proxy of `nodes`' routers, on the `datapath` chosen at bring-up."""

    def __init__(self, nodes: Nodes, timers: mld.Timers) -> None:
        self.nodes = nodes
        self.timers = timers
        self.datapath: str | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.control: str | None = None
        self.log_path: str | None = None  # the proxy's stderr (and debug log)

    def config(self) -> dict[str, Any]:
        routers = [
            {
                "ns": self.nodes.ns("core"),
                "upstream": "src",
                "downstream": [*self.nodes.routers, "cn", "dns", "dhcp"],
            }
        ]
        routers += [
            {
                "ns": self.nodes.ns(link.name),
                "upstream": "up0",
                "downstream": ["acc0"],
                "ipv4_only": ["acc0"] if link.ipv4_only else [],
            }
            for link in self.nodes.plan.access
        ]
        t = self.timers
        return {
            "datapath": self.datapath,
            "routers": routers,
            "timers": {
                "query_interval": t.query_interval,
                "query_response_interval": t.query_response_interval,
                "robustness": t.robustness,
                "last_listener_query_interval": t.last_listener_query_interval,
            },
        }

    def start(self, record: registry.RunRecord, datapath: str, manual: bool) -> None:
        """Start the proxy process (it prints "ready" once its sockets are set up: see
        `wait_ready`), recorded in the run's `record` for the reaper; one that is not
        `manual` dies with this process."""
        self.datapath = datapath
        base = registry.REGISTRY_DIR / self.nodes.runid
        config = self.config()
        self.control = f"{base}.mld.sock"
        config["control"] = self.control
        if not manual:
            config["parent_pid"] = os.getpid()
        cfg_path = f"{base}.mldproxy.json"
        self.log_path = log_path = f"{base}.mldproxy.log"
        with open(cfg_path, "w", encoding="utf-8") as f:
            json.dump(config, f, indent=1)
        record.files += [cfg_path, log_path, self.control]
        with open(log_path, "ab") as log:
            self.proc = supervisor.start(
                [sys.executable, "-m", "harness.lab.mldproxy", cfg_path],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,  # a terminal's Ctrl-C reaches the lab, which stops it
                close_fds=True,
            )
        pid = self.proc.pid
        record.helpers.append(registry.Helper(pid, registry.process_start(pid), "mldproxy"))
        record.save()

    def wait_ready(self, timeout: float = 5.0) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        out = self.proc.stdout
        ready = select.select([out], [], [], timeout)[0]
        line = out.readline() if ready else b""
        out.close()
        if line.strip() != b"ready":
            self.proc.kill()
            self.proc.wait()
            why = "did not start in time" if not ready else "failed"
            raise LabError(f"the MLD proxy {why}: {self.log_tail(2000)}")

    def state(self) -> dict[str, Any]:
        """The proxies' listener state, upstream memberships and forwarding entries, by node:
        IPv6 and IPv4 groups in the same lists; "datapath" is IPv6's, "datapath4" IPv4's
        (always userspace)."""
        reply = self.request({"op": "state"})
        by_ns = {v: k for k, v in self.nodes.namespaces.items()}
        return {by_ns.get(ns, ns): st for ns, st in reply["routers"].items()}

    def trouble(self) -> str | None:
        """Why the proxy cannot be trusted to route right now, or None: it has exited, it
        does not answer, or one of its handlers raised (logged, see mldproxy.Proxy.guarded).
        A wait for multicast that fails then is the lab's failure, not the SUT's."""
        if self.proc is None or self.control is None:
            return None
        rc = self.proc.poll()
        if rc is not None:
            return f"the MLD proxy exited with status {rc}: {self.log_tail()}"
        try:
            errors = int(self.request({"op": "state"}).get("errors", 0))
        except (OSError, ValueError, LabError) as exc:
            return f"the MLD proxy does not answer: {exc}"
        if errors:
            return f"the MLD proxy's handlers raised {errors} time(s): {self.log_tail()}"
        return None

    def log_tail(self, size: int = 1500) -> str:
        """The end of the proxy's log, for a message."""
        if self.log_path is None:
            return "no log"
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()[-size:].strip() or "no output"
        except OSError:
            return "no log"

    def query(self, link: int, version: int = 6) -> None:
        """Make link's AR send a General Query now, MLDv2 (version 6) or IGMPv3 (version
        4); listeners answer with reports."""
        self.nodes.check_link(link)
        ns = self.nodes.ns(f"ar{link}")
        self.request({"op": "query", "ns": ns, "ifname": "acc0", "version": version})

    def release(self, node: str) -> None:
        """Stop proxying on `node` (close its MRT6 socket), e.g. for a SUT that routes itself."""
        self.request({"op": "release", "ns": self.nodes.ns(node)})

    def request(self, req: dict[str, Any]) -> dict[str, Any]:
        if self.control is None:
            raise LabError("multicast routing is off in this lab (multicast_routing=False)")
        reply = mldproxy.request(self.control, req)
        if not reply.get("ok"):
            raise LabError(f"MLD proxy: {reply.get('error')}")
        return reply

    def stop(self) -> None:
        """SIGTERM, SIGKILL after STOP_TIMEOUT."""
        if self.proc is None:
            return
        supervisor.terminate(self.proc, STOP_TIMEOUT)
        self.proc = None

    def forget(self) -> None:
        """Leave the proxy running after this process exits (a lab kept up)."""
        self.proc = None
