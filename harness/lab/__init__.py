"""The network lab: namespaces, links, handover, captures (docs/architecture.md)."""
