"""Unit tests: no privileges, no lab (codec, parsers, cores, catalog, reports, CLI)."""
