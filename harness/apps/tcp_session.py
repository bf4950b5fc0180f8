"""`python -m harness.apps.tcp_session --connect CN ...`: a TCP session (see session.py)."""

from __future__ import annotations

from harness.apps import session

if __name__ == "__main__":
    raise SystemExit(session.main("tcp"))
