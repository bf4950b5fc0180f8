"""DNS update of the home address by the SUT home agent (draft §6; RFC 5026 §6, §8.1, §9.5;
RFC 2136; docs/interpretations.md INT-18), judged on the wire and by the lab's real named.

The tester, as the mobile node, sends BUs with DNS Update options (valid, R flag, on a
deregistration, for names it may not have, malformed) and checks the Status of the BA's
DNS Update option and, by real queries, what the DNS server holds afterwards. The DNS
server is made to fail the HA by stopping it answering, and by a key the HA does not hold.
An HA profile that does not claim dns_update makes every test here not-applicable; a lab
DNS server that does not work makes them not-run.
"""

from __future__ import annotations

import contextlib
import ipaddress
import math
import time
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from harness import verdicts
from harness.sut.profile import MN_FQDN
from harness.tester.conversation import ExpectationFailed, Link, Predicate, inbound, is_mh
from harness.tester.dns import (
    LabDns,
    answered,
    ba_deadline,
    dns_answer,
    dns_option,
    raw_dns_option,
    seen_update,
    settled,
    update_request,
    wire_name,
)
from harness.tester.ha_registration import for_hoa, message
from harness.tester.home_agent import LIFETIME, LIFETIME_UNIT, HomeAgentUnderTest

FQDN = MN_FQDN + "."  # the tester's MN's name in the home domain (the profile's {mn_fqdn})
ELSEWHERE = "mn.elsewhere.example."  # a name outside the home domain


def v6(addr: str) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address(addr)


def removed(ha_dns: LabDns, hoa: str) -> Callable[[], bool]:
    """Does named no longer hold `hoa` for FQDN? (what `settled` waits for, answer after
    answer: the UPDATE of another binding may be answered first)"""
    return lambda: v6(hoa) not in ha_dns.aaaa(FQDN)


@contextlib.contextmanager
def cleaned(ha: HomeAgentUnderTest, link: Link, ha_dns: LabDns, *hoas: str) -> Iterator[None]:
    """Afterwards: the home addresses deregistered (a refusal or silence is let pass: the
    test has its verdict) and their records gone from the zone."""
    try:
        yield
    finally:
        for hoa in hoas:
            with contextlib.suppress(ExpectationFailed, AssertionError):
                answered(ha, link, hoa, 60000, 0)
        ha_dns.forget(FQDN, *hoas)


def registered(ha: HomeAgentUnderTest, link: Link, hoa: str, seq: int) -> None:
    ba = answered(ha, link, hoa, seq, LIFETIME, dns_option(FQDN))
    answer = dns_answer(ba)
    if ba.ba_status != 0 or answer is None or not answer.performed:
        verdicts.inconclusive(
            f"the registration of {hoa} in the DNS, a precondition, did not succeed "
            f"(BA status {ba.ba_status}, DNS Update option {answer})"
        )


@pytest.mark.clause(
    "DMM-HA-2", "DMM-HA-3", "DMM-HA-4", "RFC5026-1", "DMM-OVW-16", "DMM-OVW-18", "DMM-MN-19"
)
def test_dns_update_option_registers_the_home_address(
    home_agent: HomeAgentUnderTest, mn_link: Link, ha_dns: LabDns, dns_link: Link
) -> None:
    """A BU with the DNS Update option (R clear, the MN's FQDN): the HA sends a signed RFC
    2136 UPDATE adding AAAA FQDN -> the Home Address option's address, then the BA with the
    DNS Update option, Status 0; named answers the new record."""
    ha, hoa = home_agent, home_agent.fresh_hoa()
    ha_dns.healthy()
    mark = dns_link.mark()
    with cleaned(ha, mn_link, ha_dns, hoa):
        ba = answered(ha, mn_link, hoa, 1, LIFETIME, dns_option(FQDN))
        assert ba.ba_status == 0, f"BA status {ba.ba_status}: the registration was refused"
        answer = dns_answer(ba)
        assert answer is not None, "the BA carries no DNS Update option (draft §6)"
        assert answer.status == 0, (
            f"DNS Update Status {answer.status} for an authorised name and a working server"
        )
        held = ha_dns.aaaa(FQDN)
        assert v6(hoa) in held, f"named holds {sorted(map(str, held))} for {FQDN}, not {hoa}"
        update = seen_update(
            dns_link.expect(update_request(FQDN), within=ha.reaction_window, since=mark)
        )
        assert update is not None
        assert update.signed, "the DNS UPDATE carries no TSIG record (draft §6: secure)"
        assert any(t == "AAAA" and v6(rd) == v6(hoa) for _, t, rd in update.changes), (
            f"the UPDATE's update section is {update.changes}, not the AAAA of {hoa}"
        )


@pytest.mark.clause("DMM-HA-5", "DMM-HA-6", "RFC5026-2", "RFC5026-4")
def test_r_flag_removes_that_home_address_only(
    home_agent: HomeAgentUnderTest, mn_link: Link, ha_dns: LabDns
) -> None:
    """Two home addresses of one name in the DNS; a BU for the first with R set: the BA
    carries the DNS Update option with a Status below 128, and named holds the second
    address only (the entry of the FQDN and that HoA, RFC 5026 §6, OPEN-3)."""
    ha = home_agent
    first, second = ha.fresh_hoa(), ha.fresh_hoa()
    with cleaned(ha, mn_link, ha_dns, first, second):
        registered(ha, mn_link, first, 1)
        registered(ha, mn_link, second, 1)
        ba = answered(ha, mn_link, first, 2, LIFETIME, dns_option(FQDN, remove=True))
        answer = dns_answer(ba)
        assert answer is not None, "the BA to a BU with R set carries no DNS Update option"
        assert answer.performed, f"DNS Update Status {answer.status} for a removal named allows"
        held = ha_dns.aaaa(FQDN)
        assert v6(first) not in held, f"named still holds {first} for {FQDN} after R"
        assert v6(second) in held, f"the removal of {first} took {second} of the same name too"


@pytest.mark.clause("DMM-HA-7")
@pytest.mark.parametrize("with_option", [False, True], ids=["plain", "with-dns-update-option"])
def test_deregistration_removes_the_dns_entry(
    home_agent: HomeAgentUnderTest,
    mn_link: Link,
    ha_dns: LabDns,
    dns_link: Link,
    with_option: bool,
) -> None:
    """A deregistration BU (Lifetime 0; plain, or with the DNS Update option, R clear) for a
    home address the HA registered in the DNS: the AAAA record is gone within the HA's DNS
    timeout; with the option, its BA says the removal was made (Status < 128)."""
    ha, hoa = home_agent, home_agent.fresh_hoa()
    with cleaned(ha, mn_link, ha_dns, hoa):
        registered(ha, mn_link, hoa, 1)
        mark = dns_link.mark()
        options = (dns_option(FQDN),) if with_option else ()
        ba = answered(ha, mn_link, hoa, 2, 0, *options)
        assert ba.ba_status == 0, f"the deregistration got BA status {ba.ba_status}"
        settled(dns_link, mark, ba_deadline(ha), until=removed(ha_dns, hoa))
        held = ha_dns.aaaa(FQDN)
        assert v6(hoa) not in held, f"named still holds {hoa} for {FQDN} after deregistration"
        if with_option:
            answer = dns_answer(ba)
            assert answer is not None and answer.performed, f"the BA's DNS Update: {answer}"


@pytest.mark.clause("DMM-HA-8")
def test_binding_expiry_removes_the_dns_entry(
    home_agent: HomeAgentUnderTest, mn_link: Link, ha_dns: LabDns, dns_link: Link
) -> None:
    """For an HA that claims the draft's MAY (dns_remove_on_expiry): a binding left to
    expire takes its AAAA record with it, within the granted lifetime, the reaction window
    and the DNS timeout."""
    ha = home_agent
    ha.sut.features.require("dns_remove_on_expiry", "the SUT home agent")
    hoa = ha.fresh_hoa()
    units = max(1, math.ceil(ha.timers.min_bu_lifetime / LIFETIME_UNIT))
    with cleaned(ha, mn_link, ha_dns, hoa):
        ba = answered(ha, mn_link, hoa, 1, units, dns_option(FQDN))
        answer = dns_answer(ba)
        if ba.ba_status != 0 or answer is None or not answer.performed:
            verdicts.inconclusive(f"the registration in the DNS did not succeed: {answer}")
        if v6(hoa) not in ha_dns.aaaa(FQDN):
            verdicts.inconclusive(f"named does not hold {hoa}: nothing to see removed")
        removal = dns_link.mark()
        granted = ba.lifetime * LIFETIME_UNIT
        settled(dns_link, removal, granted + ba_deadline(ha), until=removed(ha_dns, hoa))
        held = ha_dns.aaaa(FQDN)
        assert v6(hoa) not in held, (
            f"named still holds {hoa} for {FQDN} after its binding expired ({granted:g} s)"
        )


@pytest.mark.clause("DMM-HA-4", "RFC5026-3", "RFC5026-5")
def test_name_outside_the_home_domain_is_not_reported_updated(
    home_agent: HomeAgentUnderTest, mn_link: Link, ha_dns: LabDns
) -> None:
    """A name in a domain whose DNS the HA cannot update (RFC 5026 §6): the BA's DNS
    Update option says the update was not completed (Status >= 128)."""
    ha, hoa = home_agent, home_agent.fresh_hoa()
    with cleaned(ha, mn_link, ha_dns, hoa):
        ba = answered(ha, mn_link, hoa, 1, LIFETIME, dns_option(ELSEWHERE))
        answer = dns_answer(ba)
        assert answer is not None, "the BA carries no DNS Update option (draft §6)"
        assert not answer.performed, (
            f"DNS Update Status {answer.status} (performed) for {ELSEWHERE}, outside the "
            f"home domain {ha_dns.domain}"
        )


@pytest.mark.clause("RFC5026-5")
@pytest.mark.interpretation("INT-18")
def test_home_agents_own_name_is_not_updated_for_a_mobile_node(
    home_agent: HomeAgentUnderTest, mn_link: Link, ha_dns: LabDns
) -> None:
    """RFC 5026 §9.5: the MN's authorisation for the name is checked before the update;
    the home agent's own name is never an MN's (INT-18): Status >= 128, and the name
    keeps exactly its addresses."""
    ha, hoa = home_agent, home_agent.fresh_hoa()
    own = ha.lab.plan.link(1).ha_fqdn.rstrip(".") + "."
    before = ha_dns.aaaa(own)
    if not before:
        verdicts.not_run(f"the lab's zone has no AAAA for the home agent {own}")
    with cleaned(ha, mn_link, ha_dns, hoa):
        ba = answered(ha, mn_link, hoa, 1, LIFETIME, dns_option(own))
        answer = dns_answer(ba)
        after = ha_dns.aaaa(own)
        if v6(hoa) in after:
            ha_dns.forget(own, hoa)
        assert after == before, f"{own} now has {sorted(map(str, after))}: an MN changed it"
        assert answer is None or not answer.performed, (
            f"DNS Update Status {answer.status} for the home agent's own name {own}"
        )


MALFORMED = {
    "no-status-octets": raw_dns_option(b"\x00"),
    "empty-identity": raw_dns_option(b"\x00\x00"),
    "label-overruns-the-option": dns_option(b"\x05mn\x00"),
    "label-over-63-octets": dns_option(b"\x40" + b"a" * 64 + wire_name("lab.example")),
    "no-root-label": dns_option(wire_name(FQDN)[:-1]),
    "compression-pointer": dns_option(b"\x02mn\xc0\x0c"),
}


@pytest.mark.clause("DMM-HA-4", "RFC5026-3")
@pytest.mark.parametrize("option", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_dns_update_option_is_not_reported_performed(
    home_agent: HomeAgentUnderTest, mn_link: Link, ha_dns: LabDns, option: object
) -> None:
    """A DNS Update option whose MN identity is no domain name (RFC 1035 §3.1, INT-18), or
    that has no Status and flags: the BU is still answered, no record for the home address
    appears, and a DNS Update option in the BA says Status >= 128."""
    ha, hoa = home_agent, home_agent.fresh_hoa()
    with cleaned(ha, mn_link, ha_dns, hoa):
        ba = answered(ha, mn_link, hoa, 1, LIFETIME, option)  # type: ignore[arg-type]
        answer = dns_answer(ba)
        assert v6(hoa) not in ha_dns.aaaa(FQDN), f"named holds {hoa} for {FQDN}"
        assert answer is None or not answer.performed, (
            f"DNS Update Status {answer.status} (performed) for a malformed option"
        )


@pytest.mark.clause("RFC5026-3")
def test_status_in_a_bu_is_ignored(
    home_agent: HomeAgentUnderTest, mn_link: Link, ha_dns: LabDns
) -> None:
    """RFC 5026 §8.1: the Status of a BU's DNS Update option is ignored by the receiver; a
    BU that says 130 there is processed like one that says 0."""
    ha, hoa = home_agent, home_agent.fresh_hoa()
    with cleaned(ha, mn_link, ha_dns, hoa):
        ba = answered(ha, mn_link, hoa, 1, LIFETIME, dns_option(FQDN, status=130))
        answer = dns_answer(ba)
        assert answer is not None and answer.performed, f"DNS Update option in the BA: {answer}"
        assert v6(hoa) in ha_dns.aaaa(FQDN), f"named does not hold {hoa} for {FQDN}"


def failure_status(answer: object) -> None:
    """The BA's DNS Update option after a DNS failure: not completed (>= 128, RFC 5026
    §8.1), and by INT-18 the value for it, 130 DNS update failed."""
    assert answer is not None, "the BA carries no DNS Update option (draft §6)"
    status = answer.status  # type: ignore[attr-defined]
    assert status >= 128, f"DNS Update Status {status} (performed) although the update failed"
    with verdicts.by_interpretation("INT-18"):
        assert status == 130, f"DNS Update Status {status} for a failed update, not 130"


@pytest.mark.clause("DMM-HA-4", "RFC5026-3")
def test_silent_dns_server_gives_130_in_time(
    home_agent: HomeAgentUnderTest, mn_link: Link, ha_dns: LabDns
) -> None:
    """named receives the update and never answers: the HA gives up within its declared
    DNS timeout and answers the BU with the DNS update failed, never a BA that hangs."""
    ha, hoa = home_agent, home_agent.fresh_hoa()
    ha_dns.healthy()
    with cleaned(ha, mn_link, ha_dns, hoa):
        with ha_dns.silent():
            ba = answered(ha, mn_link, hoa, 1, LIFETIME, dns_option(FQDN))
        failure_status(dns_answer(ba))


RETRANSMISSIONS = 4  # BUs the tester sends per DNS timeout while the server is silent


@pytest.mark.clause("DMM-HA-4", "RFC5026-3")
@pytest.mark.interpretation("INT-18")
def test_retransmitted_bus_do_not_restart_a_pending_update(
    home_agent: HomeAgentUnderTest, mn_link: Link, ha_dns: LabDns
) -> None:
    """named silent; the tester retransmits its BU as an MN does (RFC 6275 §11.8: each with
    the next sequence number), RETRANSMISSIONS times per DNS timeout, before that timeout
    ends: the BA for its latest BU (or the one before, sent as the BA left) still comes
    within the timeout and the reaction window of the first BU, with the failure status.
    An HA that started the update afresh for every retransmission answers only BUs the MN
    has since replaced (INT-18)."""
    ha, hoa = home_agent, home_agent.fresh_hoa()
    timeout = ha.timers.dns_update_timeout
    interval = timeout / RETRANSMISSIONS
    ha_dns.healthy()
    sent = [0]

    def latest(pkt: object) -> bool:
        return message(pkt).seq in (sent[-1], sent[-1] - 1)

    wanted = inbound & is_mh("BA") & for_hoa(hoa) & Predicate(latest, "for the latest BU")
    with cleaned(ha, mn_link, ha_dns, hoa), ha_dns.silent():
        start = mn_link.mark()
        t0 = time.monotonic()
        deadline = t0 + ba_deadline(ha) + interval
        ba = None
        while ba is None and time.monotonic() < deadline:
            sent.append(sent[-1] + 1)
            mn_link.send(ha.bu(hoa, sent[-1], LIFETIME, (dns_option(FQDN),)))
            with contextlib.suppress(ExpectationFailed):
                ba = message(mn_link.expect(wanted, within=interval, since=start))
        seen = [message(p).seq for p in mn_link.packets(start) if (inbound & is_mh("BA"))(p)]
        assert ba is not None, (
            f"no BA for the latest of {len(sent) - 1} BUs (sequence {sent[-1]}) within "
            f"{(deadline - t0) * 1000:.0f} ms while named was silent; BAs seen for sequence "
            f"numbers {seen}"
        )
        assert ba.ba_status == 0, f"BA status {ba.ba_status}: the registration was refused"
        failure_status(dns_answer(ba))


@pytest.mark.clause("DMM-HA-4", "RFC5026-3")
def test_wrong_tsig_key_gives_the_failure_status(
    home_agent: HomeAgentUnderTest, mn_link: Link, ha_dns: LabDns
) -> None:
    """named now holds another secret under the key's name: it rejects the HA's signature
    (NOTAUTH, BADSIG), the zone is unchanged, and the BA says the DNS update failed."""
    ha, hoa = home_agent, home_agent.fresh_hoa()
    with cleaned(ha, mn_link, ha_dns, hoa), ha_dns.rekeyed():
        ha_dns.healthy()
        ba = answered(ha, mn_link, hoa, 1, LIFETIME, dns_option(FQDN))
        assert v6(hoa) not in ha_dns.aaaa(FQDN), "named took an update with a wrong key"
        failure_status(dns_answer(ba))


OPS = st.lists(
    st.tuples(st.sampled_from(["register", "remove", "refresh", "deregister"]), st.integers(0, 2)),
    min_size=1,
    max_size=8,
)


@pytest.mark.clause("DMM-HA-2", "DMM-HA-5", "DMM-HA-7", "RFC5026-1", "RFC5026-2")
def test_zone_holds_exactly_the_registered_home_addresses(
    home_agent: HomeAgentUnderTest, mn_link: Link, ha_dns: LabDns, dns_link: Link
) -> None:
    """Random sequences of registrations (R clear), removals (R set), refreshes without the
    option and deregistrations for three home addresses of one name: after each step named
    holds exactly the addresses registered and not removed since, no stale one."""
    ha = home_agent
    ha_dns.healthy()

    @settings(
        max_examples=5,
        deadline=None,
        derandomize=True,  # the same sequences on every run (and in CI)
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(ops=OPS)
    @example(
        ops=[
            ("register", 0),
            ("register", 1),
            ("remove", 0),
            ("refresh", 1),
            ("register", 0),
            ("deregister", 1),
            ("deregister", 0),
        ]
    )
    def check(ops: list[tuple[str, int]]) -> None:
        hoas = [ha.fresh_hoa() for _ in range(3)]
        seq, bound, in_dns = [0, 0, 0], [False] * 3, [False] * 3
        done: list[str] = []
        with cleaned(ha, mn_link, ha_dns, *hoas):
            for op, i in ops:
                if op != "register" and not bound[i]:
                    continue  # R, a refresh or a deregistration need a binding
                seq[i] += 1
                mark = dns_link.mark()
                if op == "deregister":
                    ba = answered(ha, mn_link, hoas[i], seq[i], 0)
                    settled(dns_link, mark, ba_deadline(ha), until=removed(ha_dns, hoas[i]))
                    bound[i] = in_dns[i] = False
                else:
                    opts = () if op == "refresh" else (dns_option(FQDN, remove=op == "remove"),)
                    ba = answered(ha, mn_link, hoas[i], seq[i], LIFETIME, *opts)
                    bound[i] = True
                    in_dns[i] = {"register": True, "remove": False}.get(op, in_dns[i])
                done.append(f"{op} {i}")
                assert ba.ba_status == 0, f"after {done}: BA status {ba.ba_status}"
                held = ha_dns.aaaa(FQDN) & {v6(h) for h in hoas}
                want = {v6(h) for h, d in zip(hoas, in_dns, strict=True) if d}
                assert held == want, (
                    f"after {done}: named holds {sorted(map(str, held))}, the registered "
                    f"home addresses are {sorted(map(str, want))}"
                )

    check()
