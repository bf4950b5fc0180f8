"""Network protocol helpers shared by the lab, the reference daemons, the tester and the
tests: what a router or host of this draft's networks says and how its sockets are set
up, independent of who runs it.

* :mod:`~harness.netproto.sockopts`: IPv6 and IPv4 multicast membership, MRT6, ICMPv6
  filter and IPv4 pktinfo socket options and their structs (sans-I/O).
* :mod:`~harness.netproto.mld`: MLD messages, records, timers, the report reader
  (sans-I/O).
* :mod:`~harness.netproto.igmp`: IGMPv3 queries, the IGMP report reader (sans-I/O).
* :mod:`~harness.netproto.ra`: the Router Advertisement message and Router Solicitation
  validation (sans-I/O).
* :mod:`~harness.netproto.icmp6`: raw ICMPv6 sockets in a namespace, an interface's MAC
  and link-local address.
* :mod:`~harness.netproto.advertiser`: the router side of RAs, a thread per interface.

The lab's daemons (the MLD and IGMP proxy process, each access router's advertiser) are built on
these; the wire codecs of the messages under test are in :mod:`harness.wire`.
"""
