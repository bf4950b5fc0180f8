"""Real applications for the MN, interop and benchmark suites: small stdlib-only programs.

Each runs as a process of its own, inside a lab namespace (`lab.exec_in(node, argv)`):

    python -m harness.apps.mcast_recv --iface mn0 --group ff3e::8000:1 --source 2001:db8:c2::10
    python -m harness.apps.mcast_send --group ff3e::8000:1 --rate 100 --stream s1
    python -m harness.apps.tcp_echo                  (at the CN: TCP and UDP echo on port 7000)
    python -m harness.apps.tcp_session --connect 2001:db8:c1::10
    python -m harness.apps.udp_session --connect 2001:db8:c1::10

They use ordinary sockets exactly as any application would (the kernel's MLDv2/IGMPv3 host
stack does the signalling), print one JSON object a line on stdout per event (`ready` first
once they are usable), take commands as lines on stdin, and exit cleanly on `quit`, on
SIGTERM or SIGINT, and when stdin closes: start them with stdin a pipe (App does), or with
`--no-stdin` when nothing will drive them (an inherited /dev/null would end them at once).
Each is one process (nsenter execs it: the Popen's pid is the application's) and starts no
children. Started with `python -S` and only light stdlib modules, each is ready in about
35-45 ms (measured in the lab, nsenter included).

`harness.apps.control` is the test side: `App` starts and drives one, and the pure helpers
(`gaps`, `duplicates`, `summary`) read what a receiver saw. This package's __init__ stays
empty of imports so that `python -m harness.apps.<name>` starts fast.
"""
