"""The network lab: namespaces, links, handover, captures (issue 3)."""
