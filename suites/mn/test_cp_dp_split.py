"""The mobile node with home agents whose control and data planes are separate (draft §9).

Every access router's reference home agent is started split (`split_ha_mn`): it takes BUs at
the router's address (the control plane function) and its BAs name the data plane
function's address (`plan.data_plane6`, INT-9), where its tunnels end. Judged on the MN's
interface: the MN's data goes to the data plane address the BA named (DMM-CPDP-4, -9), and
its later BUs, the refresh and those after another move, still go to the control plane
(DMM-CPDP-7, -5). A BA of the reference HA that names no data plane address leaves the test
inconclusive: that would be the peer's fault, never the MN's.
"""

from __future__ import annotations

from typing import Any

import pytest
from scapy.layers.inet import TCP
from scapy.layers.inet6 import IPv6

from harness.tester.conversation import Predicate, mobility_message
from harness.tester.mobile_node import (
    TCP_INITIAL_RTO,
    MobileNodeUnderTest,
    ba_for,
    options_of,
    session_then_move,
)
from harness.verdicts import inconclusive
from harness.wire import compact

SECOND_MOVE = 3  # the link of the move after the first one


def registered_with_a_split_ha(mn: MobileNodeUnderTest) -> tuple[Any, compact.MobilityMessage, str]:
    """A session from link 1, a move to link 2, the BU to link 1's control plane and the
    BA that accepts it: (the session, the BA, the data plane address the BA named)."""
    session = session_then_move(mn)
    bu = mn.expect_bu(to=mn.ha_address(1))
    pkt = mn.link.expect(ba_for(bu.seq), mn.deadlines.ba, f"the HA's BA for seq {bu.seq}")
    ba = mobility_message(pkt)
    assert ba is not None
    if ba.ba_status >= 128:
        inconclusive(f"the reference HA refused the binding (status {ba.ba_status})")
    dp = compact.data_plane_address(options_of(ba))
    if dp is None:
        inconclusive("the reference HA's BA named no data plane function (the peer's fault)")
    return session, ba, str(dp)


@pytest.mark.clause("DMM-CPDP-4", "DMM-CPDP-9")
def test_data_goes_to_the_data_plane_the_ba_named(split_ha_mn: MobileNodeUnderTest) -> None:
    """The session's segments leave reverse-tunnelled to the data plane function's
    address the BA named (draft §9), not to the control plane's."""
    mn = split_ha_mn
    session, _ba, dp = registered_with_a_split_ha(mn)
    home, cn = str(mn.home), str(mn.lab.plan.cn.host6)
    lport = int(session.events("connected")[0]["lport"])

    def to_data_plane(pkt: Any) -> bool:
        ip = pkt.getlayer(IPv6)
        if ip is None or ip.nh != 41 or ip.dst != dp:
            return False
        inner = ip.payload.getlayer(IPv6)
        if inner is None or (inner.src, inner.dst) != (home, cn):
            return False
        tcp = inner.getlayer(TCP)
        return tcp is not None and tcp.sport == lport

    mn.link.expect(
        Predicate(to_data_plane, f"the session's packets tunnelled to the data plane {dp}"),
        mn.deadlines.data + 3 * TCP_INITIAL_RTO,
    )


@pytest.mark.clause("DMM-CPDP-7", "DMM-CPDP-5", "DMM-CPDP-3", "DMM-CPDP-8")
def test_later_bus_still_go_to_the_control_plane(split_ha_mn: MobileNodeUnderTest) -> None:
    """The MN's first BU goes to the control plane (no IKE here: the BU is its first
    signalling, DMM-CPDP-3/-8), and after a BA that named a data plane function the MN
    keeps the control plane's address for its signalling (draft §9): the refresh of the
    binding, and the BU after a move to another link, go to it, not to the data plane."""
    mn = split_ha_mn
    _session, ba, dp = registered_with_a_split_ha(mn)
    cp = mn.ha_address(1)
    granted = mn.lifetime_seconds(ba.lifetime)
    refresh = mn.expect_bu(granted, "a refresh before the granted lifetime ends", hoa=str(mn.home))
    assert refresh.dst == cp, (
        f"the refresh went to {refresh.dst}, the data plane function the BA named ({dp}); "
        f"the control plane is {cp}"
    )
    mn.link.mark()
    mn.world.move(SECOND_MOVE)
    moved = mn.expect_bu(hoa=str(mn.home))
    assert moved.dst == cp, (
        f"after the move to link {SECOND_MOVE} the BU for {mn.home} went to {moved.dst}, not "
        f"to the control plane {cp} (the BA had named the data plane {dp})"
    )
