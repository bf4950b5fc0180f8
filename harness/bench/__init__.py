"""Benchmarks: measurements of the reference (or a profile SUT) in the lab, not tests.

`handover`: the multicast gap an application sees across handovers and the BU->BA round
trip (`dmmconf bench handover`).
"""
