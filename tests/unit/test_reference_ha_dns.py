"""The reference HA's DNS update decisions (RFC 5026 §6, §8.1, §9.5; draft §6; INT-17),
sans-I/O: the core with the tester's scapy-built BUs, and the key file both sides read."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import dns.name
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness import strategies
from harness.faults import Fault, Faults
from harness.reference.ha_core import (
    DnsRequest,
    HomeAgentCore,
    SendBindingAck,
    dns_authorised,
    fqdn_from_wire,
)
from harness.reference.ha_hooks import dns_skipped
from harness.servers.bind import TsigKey
from harness.wire.mobility import MIP6OptDNSUpdate
from tests.unit.test_reference_ha_core import NOW, bu, core, only

NAME = "mn.lab.example."
WIRE = b"\x02mn\x03lab\x07example\x00"


def dns_core(**kw: object) -> HomeAgentCore:
    return core(dns_domain="lab.example", dns_names=frozenset({NAME}), **kw)


def answer(actions: Sequence[object]) -> SendBindingAck:
    (ba,) = only(actions, SendBindingAck)
    return ba


def test_registration_then_r_flag_then_deregistration() -> None:
    ha = dns_core()
    (req,) = only(ha.receive(bu(MIP6OptDNSUpdate(mn_identity=WIRE)), NOW), DnsRequest)
    assert (req.fqdn, req.remove, req.why) == (NAME, False, "register")
    assert answer(ha.dns_done(req.request_id, ok=True)).dns.status == 0  # type: ignore[union-attr]
    (rm,) = only(
        ha.receive(bu(MIP6OptDNSUpdate(flags=1, mn_identity=WIRE), seq=2), NOW), DnsRequest
    )
    assert (rm.remove, rm.why) == (True, "remove")
    ba = answer(ha.dns_done(rm.request_id, ok=True))
    assert ba.dns is not None and ba.dns.status == 0 and ba.dns.remove
    # R cleared the entry: a deregistration has nothing left to remove.
    assert not only(ha.receive(bu(seq=3, lifetime=0), NOW), DnsRequest)


def test_deregistration_without_the_option_removes_the_registered_entry() -> None:
    ha = dns_core()
    (req,) = only(ha.receive(bu(MIP6OptDNSUpdate(mn_identity=WIRE)), NOW), DnsRequest)
    ha.dns_done(req.request_id, ok=True)
    dereg = ha.receive(bu(seq=2, lifetime=0), NOW)
    (rm,) = only(dereg, DnsRequest)
    assert (rm.fqdn, rm.remove, rm.why) == (NAME, True, "deregister")
    assert answer(dereg).status == 0  # the BA does not wait for that removal


@pytest.mark.parametrize("on_expiry", [True, False])
def test_expiry_removes_the_entry_only_when_configured(on_expiry: bool) -> None:
    ha = dns_core(dns_remove_on_expiry=on_expiry)
    (req,) = only(ha.receive(bu(MIP6OptDNSUpdate(mn_identity=WIRE), lifetime=1), NOW), DnsRequest)
    ha.dns_done(req.request_id, ok=True)
    removals = only(ha.tick(NOW + 5), DnsRequest)
    assert [(r.remove, r.why) for r in removals] == ([(True, "expiry")] if on_expiry else [])


@pytest.mark.parametrize(
    ("identity", "status"),
    [
        (b"\x02mn\x09elsewhere\x07example\x00", 129),  # outside the domain
        (b"\x03ha1\x03lab\x07example\x00", 129),  # not a name of this MN
        (b"\x05mn\x00", 128),  # a label overruns the field
        (b"\x40" + b"a" * 64 + b"\x03lab\x07example\x00", 128),  # a label over 63
        (WIRE[:-1], 128),  # no root label
        (b"\x02mn\xc0\x0c", 128),  # a compression pointer
        (b"", 128),
    ],
)
def test_refused_names_get_their_status_and_no_request(identity: bytes, status: int) -> None:
    actions = dns_core().receive(bu(MIP6OptDNSUpdate(mn_identity=identity)), NOW)
    assert not only(actions, DnsRequest)
    ba = answer(actions)
    assert ba.status == 0 and ba.dns is not None and ba.dns.status == status


def test_without_a_dns_service_the_answer_is_129() -> None:
    actions = core().receive(bu(MIP6OptDNSUpdate(mn_identity=WIRE)), NOW)
    assert not only(actions, DnsRequest) and answer(actions).dns.status == 129  # type: ignore[union-attr]


def test_status_of_the_bu_option_is_ignored() -> None:
    actions = dns_core().receive(bu(MIP6OptDNSUpdate(status=130, mn_identity=WIRE)), NOW)
    (req,) = only(actions, DnsRequest)
    assert not req.remove


@given(strategies.fqdn())
def test_wire_names_read_as_dnspython_reads_them(wire: bytes) -> None:
    assert fqdn_from_wire(wire) == dns.name.from_wire(wire, 0)[0].to_text().lower()


@given(st.binary(max_size=40))
def test_fqdn_reader_never_raises(data: bytes) -> None:
    name = fqdn_from_wire(data)
    if name is not None:  # the wire form, else the text form (INT-17 (2))
        wire = dns.name.from_text(name).to_wire()
        assert wire == data.lower() or name.encode() == data.lower().rstrip(b".") + b"."


def test_the_name_as_text_is_read_too() -> None:
    assert fqdn_from_wire(b"MN.lab.example") == fqdn_from_wire(b"mn.lab.example.") == NAME
    assert fqdn_from_wire(b"mn..lab") is None and fqdn_from_wire(b"mn lab") is None


def test_authorisation_by_list_or_by_domain() -> None:
    listed = dns_core().config
    assert dns_authorised(NAME, listed) and not dns_authorised("ha1.lab.example.", listed)
    anyname = core(dns_domain="lab.example.").config
    assert dns_authorised("ha1.lab.example.", anyname)
    assert not dns_authorised("lab.example.", anyname)
    assert not dns_authorised("mn.labexample.", anyname)


def test_faults_skip_only_their_kind_of_update() -> None:
    hoa = ipaddress.IPv6Address("2001:db8:1::10")
    faults = Faults.of(Fault.HA_DNS_R_KEPT)
    assert dns_skipped(faults, DnsRequest(1, NAME, hoa, True, "remove"))
    assert not dns_skipped(faults, DnsRequest(2, NAME, hoa, True, "deregister"))
    assert not dns_skipped(Faults(), DnsRequest(3, NAME, hoa, False))


def test_key_file_round_trip() -> None:
    key = TsigKey.generate("dmmconf-update")
    assert TsigKey.from_conf(key.named_conf()) == key
    with pytest.raises(ValueError):
        TsigKey.from_conf("secret nothing;")


# --- retransmissions while an update is pending (RFC 5026 §6, INT-18) --------------------


def test_a_retransmission_joins_the_pending_update_and_gets_its_ba() -> None:
    """The MN retransmits (newer sequence numbers) while the server has not answered: no
    new update starts, and when the pending one ends the newest BU alone is answered."""
    ha = dns_core()
    (req,) = only(ha.receive(bu(MIP6OptDNSUpdate(mn_identity=WIRE), seq=1), NOW), DnsRequest)
    for seq in (2, 3):
        again = ha.receive(bu(MIP6OptDNSUpdate(mn_identity=WIRE), seq=seq), NOW + seq / 10)
        assert not only(again, DnsRequest) and not only(again, SendBindingAck)
    ba = answer(ha.dns_done(req.request_id, ok=False))
    assert ba.seq == 3 and ba.status == 0
    assert ba.dns is not None and ba.dns.status == 130
    assert not ha.dns_done(req.request_id, ok=False)  # answered once


def test_another_update_or_a_plain_bu_supersedes_the_pending_ba() -> None:
    ha = dns_core()
    (first,) = only(ha.receive(bu(MIP6OptDNSUpdate(mn_identity=WIRE), seq=1), NOW), DnsRequest)
    (rm,) = only(
        ha.receive(bu(MIP6OptDNSUpdate(flags=1, mn_identity=WIRE), seq=2), NOW), DnsRequest
    )
    assert rm.remove and rm.request_id != first.request_id
    assert not ha.dns_done(first.request_id, ok=True)  # its BU is no longer the latest
    plain = ha.receive(bu(seq=3), NOW)
    assert answer(plain).seq == 3 and answer(plain).dns is None
    assert not ha.dns_done(rm.request_id, ok=True)


def test_the_restart_fault_starts_an_update_per_retransmission() -> None:
    ha = dns_core(faults=Faults.of(Fault.HA_DNS_RESTART))
    requests = [
        only(ha.receive(bu(MIP6OptDNSUpdate(mn_identity=WIRE), seq=s), NOW), DnsRequest)
        for s in (1, 2)
    ]
    assert [len(r) for r in requests] == [1, 1]
    assert not ha.dns_done(requests[0][0].request_id, ok=False)
    assert answer(ha.dns_done(requests[1][0].request_id, ok=False)).seq == 2


@given(st.lists(st.sampled_from(["register", "remove", "plain", "done"]), max_size=12))
def test_every_latest_bu_with_an_update_is_answered_exactly_once(ops: list[str]) -> None:
    """Model: whatever the interleaving of BUs and DNS answers, each DNS answer releases at
    most one BA, only ever for the latest BU, and a BU that waits is answered at most once."""
    ha = dns_core()
    seq, latest, waiting = 0, 0, False
    open_ids: list[int] = []
    for op in ops:
        if op == "done":
            if not open_ids:
                continue
            out = ha.dns_done(open_ids.pop(0), ok=True)
            bas = only(out, SendBindingAck)
            assert len(bas) <= 1
            if bas:
                assert waiting and bas[0].seq == latest
                waiting = False
            continue
        seq += 1
        opts = [] if op == "plain" else [MIP6OptDNSUpdate(flags=op == "remove", mn_identity=WIRE)]
        out = ha.receive(bu(*opts, seq=seq), NOW)
        latest = seq
        open_ids += [r.request_id for r in only(out, DnsRequest)]
        waiting = not only(out, SendBindingAck)
    while open_ids:
        bas = only(ha.dns_done(open_ids.pop(0), ok=True), SendBindingAck)
        assert all(b.seq == latest for b in bas)
        if bas:
            assert waiting
            waiting = False
    assert not waiting, "a BU that waited for the DNS was never answered"
