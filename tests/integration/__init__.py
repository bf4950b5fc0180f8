"""Integration tests: the lab, real servers and applications, the reference daemons (root)."""
