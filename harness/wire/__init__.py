"""Wire codecs. The byte-level modules (ipv6, ipv4, compact, numbers, auth) import nothing
of scapy, so the lab's processes start fast; the scapy layers (mobility with its report
layers, dhcp) register themselves in scapy's tables when imported."""
