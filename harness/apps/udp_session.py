"""`python -m harness.apps.udp_session --connect CN ...`: a UDP flow (see session.py)."""

from __future__ import annotations

from harness.apps import session

if __name__ == "__main__":
    raise SystemExit(session.main("udp"))
