"""Properties of the wire codec: build -> bytes -> dissect gives the same fields, lengths and
checksums agree, padding meets every option's alignment, and the scapy layers agree with the
independent struct codec. `test_mutant_is_caught` proves each property fails on a wrong encoder.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from scapy.layers.inet6 import HAO, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrRouting, Pad1, PadN
from scapy.packet import Packet

from harness import strategies as gen
from harness.wire import auth, compact, mobility
from harness.wire.mobility import (
    BindingAck,
    BindingUpdate,
    MIP6OptBindingIdentifier,
    MIP6OptMulticastState,
    MldAddressRecord,
)
from harness.wire.numbers import MobOpt

CONFIG = mobility.active_config()
PROPERTY = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

MN_COA, MN_HOA, HA = "2001:db8:2::10", "2001:db8:1::10", "2001:db8:1::1"


def bu_packet(bu: Packet) -> Packet:
    return IPv6(src=MN_COA, dst=HA) / IPv6ExtHdrDestOpt(options=[HAO(hoa=MN_HOA)]) / bu


def ba_packet(ba: Packet) -> Packet:
    return IPv6(src=HA, dst=MN_COA) / IPv6ExtHdrRouting(type=2, segleft=1, addresses=[MN_HOA]) / ba


def _norm(value: object) -> object:
    if isinstance(value, str):
        try:
            return ipaddress.ip_address(value)
        except ValueError:
            return value
    if isinstance(value, bytes):
        return value
    return value


def assert_same_fields(sent: Packet, got: Packet, where: str) -> None:
    """Every field the builder set explicitly comes back with the same value."""
    assert type(got) is type(sent), f"{where}: sent {type(sent).__name__}, got {type(got).__name__}"
    for name, value in sent.fields.items():
        back = got.getfieldval(name)
        if isinstance(value, list) and value and isinstance(value[0], Packet):
            back = [b for b in back if not isinstance(b, PADDING)]
            assert len(back) == len(value), f"{where}.{name}: {len(value)} sent, {len(back)} back"
            for i, (a, b) in enumerate(zip(value, back, strict=True)):
                assert_same_fields(a, b, f"{where}.{name}[{i}]")
        elif isinstance(value, list):
            assert [_norm(v) for v in back] == [_norm(v) for v in value], f"{where}.{name}"
        else:
            assert _norm(back) == _norm(value), f"{where}.{name}: sent {value!r}, got {back!r}"


PADDING = (Pad1, PadN, mobility.FIDSubOptPad1, mobility.FIDSubOptPadN)


def real_options(mh: Packet) -> list[Packet]:
    return [o for o in mh.options if not isinstance(o, PADDING)]


def check_roundtrip(pkt: Packet, cls: type[Packet]) -> None:
    raw = bytes(pkt)
    back = IPv6(raw)
    assert bytes(back) == raw, "re-encoding the dissected packet changed its bytes"
    sent, got = pkt[cls], back[cls]
    assert len(real_options(got)) == len(real_options(sent)), "option count changed"
    for i, (a, b) in enumerate(zip(real_options(sent), real_options(got), strict=True)):
        assert_same_fields(a, b, f"option[{i}]")
    for name in ("seq", "mhtime", "flags"):
        if name in sent.fields:
            assert got.getfieldval(name) == sent.getfieldval(name), name


def check_lengths_checksums_alignment(raw: bytes) -> None:
    msg = compact.parse_packet(raw)
    assert msg.checksum_ok, "Mobility Header checksum does not verify"
    assert len(msg.body) == msg.header_len, "Header Len disagrees with the octets sent"
    start = compact.FIXED_PART[compact.MHType(msg.mhtype)]
    options = compact.parse_options(msg.body, start)
    assert compact.misaligned(options, CONFIG) == []
    assert compact.padding_problems(msg.body, start) == []
    for opt in options:
        if compact.is_multicast_state(opt, CONFIG):
            state = compact.parse_multicast_state(opt.data)
            assert state.checksum_ok, "Multicast State report checksum does not verify"
            assert opt.data[6:8] == len(state.records).to_bytes(2, "big")


def check_codecs_agree(pkt: Packet, cls: type[Packet]) -> None:
    """The scapy layers and the struct codec read the same values from the same bytes."""
    raw = bytes(pkt)
    msg = compact.parse_packet(raw)
    options = compact.parse_options(msg.body, 12)
    scapy_opts = real_options(IPv6(raw)[cls])
    assert [o.otype for o in options] == [o.otype for o in scapy_opts]
    for opt, sopt in zip(options, scapy_opts, strict=True):
        if isinstance(sopt, MIP6OptMulticastState):
            state = compact.parse_multicast_state(opt.data)
            ours = [(r.rtype, r.maddr, r.sources, r.auxdata) for r in state.records]
            theirs = [
                (
                    r.rtype,
                    str(ipaddress.ip_address(r.maddr)),
                    tuple(str(ipaddress.ip_address(s)) for s in r.sources),
                    r.auxdata,
                )
                for r in sopt.records
            ]
            assert ours == theirs
        elif isinstance(sopt, MIP6OptBindingIdentifier):
            bid = compact.parse_binding_identifier(opt.data)
            assert (bid.bid, bid.status, bid.h_flag, bid.bid_pri) == (
                sopt.bid,
                sopt.status,
                bool(sopt.flags),
                sopt.bid_pri,
            )
            assert bid.coa == (None if sopt.coa is None else str(ipaddress.ip_address(sopt.coa)))


def check_state_split(family_records: tuple[int, list[Packet]]) -> None:
    family, records = family_records
    report = 143 if family == 6 else 0x22
    options = mobility.multicast_state_options(records, report)
    merged: dict[tuple[int, str], list[object]] = {}
    for opt in options:
        raw = bytes(opt)
        assert len(raw) - 2 <= 255, "an option exceeds the 8-bit Option Length"
        state = compact.parse_multicast_state(raw[2:])
        assert state.checksum_ok
        for rec in state.records:
            merged.setdefault((rec.rtype, rec.maddr), []).extend(rec.sources)
    expected: dict[tuple[int, str], list[object]] = {}
    for sent in records:
        expected.setdefault((sent.rtype, str(ipaddress.ip_address(sent.maddr))), []).extend(
            str(ipaddress.ip_address(s)) for s in sent.sources
        )
    assert merged == expected


def check_encoder_is_scapy(pkt: Packet) -> None:
    """The fast encoder, given the fields compact reads back, builds scapy's bytes exactly."""
    raw = bytes(pkt)
    msg = compact.parse_packet(raw)
    flags, lifetime = (int.from_bytes(msg.body[i : i + 2], "big") for i in (8, 10))
    ours = compact.encode_binding_update(
        src=msg.src,
        dst=msg.dst,
        hoa=msg.hoa,
        seq=msg.seq,
        lifetime=lifetime,
        flags=flags,
        options=[(o.otype, o.data) for o in msg.options],
        config=CONFIG,
    )
    assert ours == raw, f"compact encoder:\n{ours.hex()}\nscapy:\n{raw.hex()}"


def check_encoder_signs_like_auth(pkt: Packet) -> None:
    """With an MN-HA key the fast encoder signs as harness.wire.auth does (RFC 4285 §5.1)."""
    key, spi = b"\x5a" * 20, 0x1234
    msg = compact.parse_packet(bytes(pkt))
    kept = [(o.otype, o.data) for o in msg.options if o.otype != MobOpt.MESSAGE_AUTH]

    def encode(options: list[tuple[int, bytes]], mn_ha_key: tuple[int, bytes] | None) -> bytes:
        word = int.from_bytes(msg.body[8:10], "big")
        lifetime = int.from_bytes(msg.body[10:12], "big")
        return compact.encode_binding_update(
            src=msg.src, dst=msg.dst, hoa=msg.hoa, seq=msg.seq, lifetime=lifetime, flags=word,
            options=options, mn_ha_key=mn_ha_key, config=CONFIG,
        )  # fmt: skip

    zeroed = (MobOpt.MESSAGE_AUTH, b"\x01" + spi.to_bytes(4, "big") + bytes(12))
    assert encode(kept, (spi, key)) == bytes(auth.sign(IPv6(encode([*kept, zeroed], None)), key))


def check_state_encoder(opt: Packet) -> None:
    data = bytes(opt)[2:]
    state = compact.parse_multicast_state(data)
    assert compact.encode_multicast_state(state.report_type, state.records) == data


def _state_bu(opt: Packet) -> Packet:
    return BindingUpdate(options=[opt])


# name -> (strategy, check): each becomes a property test, and the mutants below reuse them.
# Each check takes what its own strategy draws; the table holds pairs of different types.
PROPERTIES: dict[str, tuple[st.SearchStrategy[Any], Callable[[Any], None]]] = {
    "bu-roundtrip": (
        gen.binding_update().map(bu_packet),
        lambda p: check_roundtrip(p, BindingUpdate),
    ),
    "ba-roundtrip": (
        gen.binding_ack().map(ba_packet),
        lambda p: check_roundtrip(p, BindingAck),
    ),
    "multicast-state-roundtrip": (
        gen.multicast_state_option().map(_state_bu).map(bu_packet),
        lambda p: check_roundtrip(p, BindingUpdate),
    ),
    "lengths-checksums-alignment": (
        st.one_of(
            gen.binding_update().map(bu_packet),
            gen.binding_ack().map(ba_packet),
            gen.multicast_state_option().map(_state_bu).map(bu_packet),
        ),
        lambda p: check_lengths_checksums_alignment(bytes(p)),
    ),
    "codecs-agree": (
        st.one_of(gen.binding_update(), gen.multicast_state_option().map(_state_bu)).map(bu_packet),
        lambda p: check_codecs_agree(p, BindingUpdate),
    ),
    "encoder-is-scapy": (
        st.one_of(gen.binding_update(), gen.multicast_state_option().map(_state_bu)).map(bu_packet),
        check_encoder_is_scapy,
    ),
    "state-encoder": (gen.multicast_state_option(), check_state_encoder),
    "encoder-signs-like-auth": (gen.binding_update().map(bu_packet), check_encoder_signs_like_auth),
    "state-split": (
        st.sampled_from([4, 6]).flatmap(
            lambda f: st.lists(gen.multicast_record(f, max_sources=40), max_size=12).map(
                lambda r: (f, r)
            )
        ),
        check_state_split,
    ),
}


@pytest.mark.parametrize("name", sorted(PROPERTIES))
def test_property(name: str) -> None:
    strategy, check = PROPERTIES[name]
    PROPERTY(given(strategy)(check))()


def test_option_data_limit_is_enforced() -> None:
    too_many = MldAddressRecord(
        maddr="ff3e::8000:1", sources=[f"2001:db8::{i:x}" for i in range(1, 16)]
    )
    with pytest.raises(mobility.MobilityOptionTooLong):
        bytes(MIP6OptMulticastState(records=[too_many]))


@pytest.mark.parametrize(
    "option",
    [
        mobility.MIP6OptDNSUpdate(
            mn_identity=b"\x3f"
            + b"a" * 63
            + b"\x3f"
            + b"b" * 63
            + b"\x3f"
            + b"c" * 63
            + b"\x3c"
            + b"d" * 60
        ),
        mobility.MIP6OptExperimental(data=bytes(range(255))),
    ],
    ids=["dns-update", "experimental"],
)
def test_option_of_exactly_255_octets_round_trips(option: Packet) -> None:
    assert len(bytes(option)) - 2 == 255
    pkt = bu_packet(BindingUpdate(options=[option]))
    check_roundtrip(pkt, BindingUpdate)
    check_lengths_checksums_alignment(bytes(pkt))
    too_long = option.copy()
    if isinstance(too_long, mobility.MIP6OptExperimental):
        too_long.data += b"x"
    else:
        too_long.mn_identity += b"x"
    with pytest.raises(mobility.MobilityOptionTooLong):
        bytes(too_long)


def test_largest_option_is_252_octets() -> None:
    # Records are whole 32-bit words after an 8-octet header, so 255 cannot be hit exactly.
    rec = MldAddressRecord(maddr="ff3e::8000:1", sources=[f"2001:db8::{i:x}" for i in range(1, 15)])
    assert len(bytes(MIP6OptMulticastState(records=[rec]))) - 2 == 252


# --- Each property must fail against a deliberately wrong encoder ---------------------------


@contextmanager
def _patched(obj: object, name: str, value: object) -> Iterator[None]:
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


def _aux_in_bytes() -> AbstractContextManager[None]:
    # scapy's own MLD record bug: Aux Data Len counted in octets instead of 32-bit words.
    fld = next(f for f in MldAddressRecord.fields_desc if f.name == "auxlen")
    return _patched(fld, "adjust", lambda pkt, x: x)


def _bad_report_checksum() -> AbstractContextManager[None]:
    return _patched(mobility, "report_checksum", lambda body: 0x1234)


def _misaligned_state() -> AbstractContextManager[None]:
    return _patched(MIP6OptMulticastState, "y", 0)


def _bid_coa_never_sent() -> AbstractContextManager[None]:
    return _patched(mobility._BIDCareOfAddressField, "i2m", lambda self, pkt, x: b"")


def _dns_identity_one_octet_short() -> AbstractContextManager[None]:
    fld = next(f for f in mobility.MIP6OptDNSUpdate.fields_desc if f.name == "mn_identity")
    return _patched(fld, "length_from", lambda pkt: max(pkt.olen - 3, 0))


def _encoder_ignores_alignment() -> AbstractContextManager[None]:
    return _patched(compact, "_alignment_delta", lambda x, y, pos: 0)


def _encoder_sources_before_group() -> AbstractContextManager[None]:
    real = compact.encode_report_records

    def swapped(records: Any, report_type: int) -> bytes:
        return real(
            [
                dataclasses.replace(r, maddr=r.sources[0], sources=(r.maddr, *r.sources[1:]))
                if r.sources
                else r
                for r in records
            ],
            report_type,
        )

    return _patched(compact, "encode_report_records", swapped)


def _split_ignores_limit() -> AbstractContextManager[None]:
    return _patched(mobility, "MAX_OPTION_DATA", 1000)


MUTANTS: dict[str, tuple[Callable[[], AbstractContextManager[None]], str]] = {
    "aux-len-in-octets/roundtrip": (_aux_in_bytes, "multicast-state-roundtrip"),
    "aux-len-in-octets/codecs-agree": (_aux_in_bytes, "codecs-agree"),
    "bad-report-checksum": (_bad_report_checksum, "lengths-checksums-alignment"),
    "multicast-state-misaligned": (_misaligned_state, "lengths-checksums-alignment"),
    "bid-coa-dropped/bu-roundtrip": (_bid_coa_never_sent, "bu-roundtrip"),
    "split-ignores-255": (_split_ignores_limit, "state-split"),
    "encoder-ignores-alignment": (_encoder_ignores_alignment, "encoder-is-scapy"),
    "encoder-sources-before-group": (_encoder_sources_before_group, "state-encoder"),
    "dns-identity-short/ba-roundtrip": (_dns_identity_one_octet_short, "ba-roundtrip"),
}

PROPERTY_FAILURES = (AssertionError, compact.Malformed, mobility.MobilityOptionTooLong)

# Generation only: a mutant needs one counterexample, not a shrunk one.
MUTANT_RUN = settings(
    PROPERTY, max_examples=200, phases=[Phase.generate], report_multiple_bugs=False
)


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_mutant_is_caught(mutant: str) -> None:
    patch, name = MUTANTS[mutant]
    strategy, check = PROPERTIES[name]
    # The failure must be the property's own verdict, not a crash of the mutant.
    with patch(), pytest.raises(PROPERTY_FAILURES):
        MUTANT_RUN(given(strategy)(check))()
