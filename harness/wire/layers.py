"""Import this for scapy dissection with every project layer registered in scapy's tables
(the mobility options and messages, the MLDv2/IGMPv3 reports, the DHCP options)."""

from harness.wire import dhcp, mobility  # noqa: F401  (registration is the import's effect)
