"""The golden and malformed vectors: decoded fields, hand-computed option bytes, receiver
reactions, and Wireshark's view. Mutant tests show the vector checks catch a wrong codec."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet6 import IPv6
from scapy.packet import Packet

import vectors
from harness.wire import compact, mobility, tshark
from harness.wire.fields import layer_dict
from tests.unit.test_wire_properties import PADDING, _aux_in_bytes
from vectors import generate

# Wireshark 4.0 calls an Experimental option with no data malformed; RFC 5096 does not.
WIRESHARK_QUIRKS = {"bu-experimental-empty"}


def _same(want: Any, got: Any) -> bool:
    if isinstance(want, dict):
        return isinstance(got, dict) and all(_same(v, got.get(k)) for k, v in want.items())
    if isinstance(want, list):
        return (
            isinstance(got, list)
            and len(want) == len(got)
            and all(_same(a, b) for a, b in zip(want, got, strict=True))
        )
    if isinstance(want, str) and isinstance(got, str):
        try:
            return ipaddress.ip_address(want) == ipaddress.ip_address(got)
        except ValueError:
            return want == got
    return bool(want == got)


def _mh(pkt: Packet) -> Packet:
    for cls in (mobility.BindingUpdate, mobility.BindingAck, mobility.BindingError):
        if cls in pkt:
            return pkt[cls]
    raise AssertionError("no mobility message")


def check_golden(vec: vectors.Vector) -> None:
    mh = _mh(IPv6(vec.raw))
    got = layer_dict(mh)
    for key, value in vec.expect["mh"].items():
        assert _same(value, got.get(key)), f"{vec.name}: MH field {key}: {got.get(key)!r}"
    options = [layer_dict(o) for o in mh.options if not isinstance(o, PADDING)]
    assert len(options) == len(vec.expect["options"]), f"{vec.name}: option count"
    for i, (want, have) in enumerate(zip(vec.expect["options"], options, strict=True)):
        assert _same(want, have), f"{vec.name}: option {i}: want {want}, got {have}"
    msg = compact.parse_packet(vec.raw)
    assert msg.checksum_ok, f"{vec.name}: MH checksum"
    if msg.mhtype in (5, 6):
        types = [o.otype for o in compact.parse_options(msg.body, 12)]
        assert types == [o["otype"] for o in vec.expect["options"]], vec.name


@pytest.mark.parametrize("vec", vectors.golden(), ids=lambda v: v.name)
def test_golden_vector_decodes_to_its_fields(vec: vectors.Vector) -> None:
    check_golden(vec)


@pytest.mark.parametrize("opt", vectors.hand_options(), ids=lambda o: o["name"])
def test_encoder_matches_option_bytes_written_from_the_rfc(opt: dict[str, str]) -> None:
    build = {n: b for n, _s, _h, b in generate.HAND_OPTIONS}[opt["name"]]
    assert bytes(build()).hex() == opt["hex"]


@pytest.mark.parametrize("vec", vectors.malformed(), ids=lambda v: v.name)
def test_malformed_vector_gets_the_rfc_reaction(vec: vectors.Vector) -> None:
    want = compact.Reaction.from_json(vec.expect)
    got = compact.judge(vec.raw)
    assert got.same_verdict(want), (
        f"{vec.name}: want {want.to_json()}, got {got.to_json()} ({got.reason})"
    )
    IPv6(vec.raw).summary()  # the scapy layers must survive it too


def test_vector_files_are_up_to_date() -> None:
    here = Path(vectors.__file__).parent
    assert json.loads((here / "golden.json").read_text()) == {
        "packets": generate.golden(),
        "options": generate.hand_options(),
    }, "run: python -m vectors.generate"
    assert json.loads((here / "malformed.json").read_text()) == {"packets": generate.malformed()}


@pytest.mark.skipif(
    not tshark.available(), reason="not-run: tshark missing (apt-get install tshark)"
)
def test_wireshark_reads_every_golden_vector_cleanly() -> None:
    vecs = [v for v in vectors.golden() if v.name not in WIRESHARK_QUIRKS]
    for vec, frame in zip(vecs, tshark.dissect([v.raw for v in vecs]), strict=True):
        assert tshark.malformed(frame) == [], vec.name
        assert [str(e) for e in tshark.problems(frame)] == [], vec.name


@pytest.mark.skipif(
    not tshark.available(), reason="not-run: tshark missing (apt-get install tshark)"
)
def test_wireshark_quirks_are_still_quirks() -> None:
    # When a newer Wireshark stops objecting, the exception above should go.
    vecs = [v for v in vectors.golden() if v.name in WIRESHARK_QUIRKS]
    for vec, frame in zip(vecs, tshark.dissect([v.raw for v in vecs]), strict=True):
        assert tshark.malformed(frame), vec.name


# --- The vector checks fail on a wrong codec or a wrong receiver ------------------------------


def test_golden_check_catches_aux_len_in_octets() -> None:
    vec = next(v for v in vectors.golden() if v.name == "bu-registration-multicast-state-mld")
    with _aux_in_bytes():
        rebuilt = bytes(generate.GOLDEN[0][3]())
    with pytest.raises(AssertionError):
        check_golden(vectors.Vector("golden", vec.name, "", "", rebuilt, vec.expect))


def test_reaction_check_catches_a_receiver_that_ignores_checksums(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    vec = next(v for v in vectors.malformed() if v.name == "mh-checksum-wrong")
    monkeypatch.setattr(compact, "mh_checksum", lambda src, dst, mh: int.from_bytes(mh[4:6], "big"))
    got = compact.judge(vec.raw)
    assert not got.same_verdict(compact.Reaction.from_json(vec.expect))
