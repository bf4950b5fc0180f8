"""Wire codecs. Importing this package registers the scapy layers in scapy's tables."""

from harness.wire import dhcp, mcast_reports, mobility  # noqa: F401  (registration is the import's effect)
