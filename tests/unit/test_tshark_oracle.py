"""The tshark oracle: it must see good packets as good, and bad ones as bad."""

from __future__ import annotations

import socket
import struct

import pytest
from scapy.layers.inet import UDP
from scapy.layers.inet6 import MIP6MH_BA, MIP6MH_BU, IPv6, MIP6OptUnknown
from scapy.packet import Packet

from harness.wire import tshark as ts

needs_tshark = pytest.mark.skipif(
    not ts.available(), reason="not-run: tshark missing; apt-get install tshark"
)

V6 = "2001:db8::5"


def _v6(a: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6, a)


def _v4(a: str) -> bytes:
    return socket.inet_pton(socket.AF_INET, a)


def _opt(otype: int, data: bytes) -> MIP6OptUnknown:
    return MIP6OptUnknown(otype=otype, odata=data)


# ------------------------------------------------------------- no tshark needed


def test_parse_json_keeps_duplicate_keys() -> None:
    text = """[{"_source": {"layers": {
        "udp": {"udp.port": "1", "udp.port": "2",
                "t": {"_ws.expert": {"x.y": "", "_ws.expert.message": "bad",
                                     "_ws.expert.severity": "8388608",
                                     "_ws.expert.group": "117440512"}}},
        "arr": {"a.b": ["3", "4"]}}}}]"""
    (frame,) = ts.parse_json(text)
    assert frame["udp.port"] == ["1", "2"]
    assert frame["a.b"] == ["3", "4"]
    assert [str(e) for e in frame.experts] == ["[error] x.y: bad"]
    assert ts.malformed(frame) == ["[error] x.y: bad"]
    # the plain-dict form rebuilds the same verdict from the flattened fields
    assert ts.malformed(dict(frame)) == ["bad"]


def test_parse_json_rejects_garbage() -> None:
    with pytest.raises(ts.TsharkError):
        ts.parse_json("Running as user root")


def test_missing_tshark_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DMMCONF_TSHARK", "/nonexistent/tshark")
    assert ts.available() is False
    with pytest.raises(ts.TsharkError, match="not found"):
        ts.dissect([IPv6()])


# ------------------------------------------------------------------- with tshark


@needs_tshark
def test_plain_udp_is_clean_and_truncated_is_malformed() -> None:
    good = IPv6(src=V6, dst="2001:db8::1") / UDP(sport=1000, dport=2000) / b"hello"
    raw = bytes(good)
    frames = ts.dissect([good, raw[:30], raw[:45]])
    assert len(frames) == 3
    clean, cut_header, cut_payload = frames
    assert ts.malformed(clean) == []
    assert ts.problems(clean) == []
    assert clean.ints("udp.srcport") == [1000]
    assert clean.first("ipv6.dst") == "2001:db8::1"
    # the oracle can fail: a cut IPv6 header, and a UDP datagram cut mid-payload
    assert ts.malformed(cut_header), cut_header
    assert ts.malformed(cut_payload), cut_payload
    assert any("Malformed" in m for m in ts.malformed(cut_payload))


@needs_tshark
def test_bad_exit_and_timeout_raise() -> None:
    with pytest.raises(ts.TsharkError, match="exited with status"):
        ts.dissect([IPv6()], extra_args=["-Y", "((("])
    with pytest.raises(ts.TsharkError, match="did not finish"):
        ts.dissect([IPv6()], timeout=0.001)


def _bu_with_every_mapped_option() -> Packet:
    opts = [
        _opt(3, _v6("2001:db8::7")),
        _opt(8, b"\x01mn@example.com"),
        _opt(9, b"\x01" + struct.pack("!I", 256) + b"A" * 12),
        _opt(10, struct.pack("!Q", 0x0102030405060708)),
        _opt(17, b"\x00\x80" + b"\x02mn\x07example\x03com\x00"),
        _opt(18, b"abcdefgh"),
        _opt(29, bytes([24 << 2 | 0x02, 0]) + _v4("192.0.2.1")),
        _opt(30, bytes([0, 24 << 2]) + _v4("192.0.2.1")),
        _opt(31, struct.pack("!HI", 0x8000, 110)),
        _opt(32, b"\x00\x00" + _v4("198.51.100.7")),
        _opt(35, struct.pack("!HBB", 7, 0, 0x80) + _v6("2001:db8::99")),
        _opt(44, struct.pack("!HH", 3, 4)),
        _opt(45, struct.pack("!HHBB", 3, 10, 0, 0)),
    ]
    return IPv6(src=V6, dst="2001:db8::1") / MIP6MH_BU(seq=42, flags="AH", mhtime=100, options=opts)


@pytest.fixture(scope="module")
def mh_frames() -> list[ts.Frame]:
    if not ts.available():
        pytest.skip("not-run: tshark missing; apt-get install tshark")
    ba = IPv6(src="2001:db8::1", dst=V6) / MIP6MH_BA(status=0, seq=42, mhtime=100, flags="K")
    return ts.dissect([_bu_with_every_mapped_option(), ba])


def test_mapping_names_fields_tshark_really_shows(mh_frames: list[ts.Frame]) -> None:
    bu, ba = mh_frames
    assert ts.malformed(bu) == [] and ts.malformed(ba) == []
    for concept, spec in ts.MOBILITY_OPTIONS.items():
        if spec.protocol is not None:
            assert spec.protocol in bu, concept
        for ours, theirs in spec.fields.items():
            if ours == "coa_ipv4":  # our BID carries an IPv6 CoA
                continue
            assert theirs in bu, f"{concept}.{ours} -> {theirs}"
    for theirs in ts.BU_FIELDS.values():
        assert theirs in bu, theirs
    for theirs in ts.BA_FIELDS.values():
        assert theirs in ba, theirs


def test_values_match_the_rfc_fields(mh_frames: list[ts.Frame]) -> None:
    bu, ba = mh_frames
    f = ts.MOBILITY_OPTIONS
    assert bu.ints(ts.BU_FIELDS["seq"]) == [42]
    assert bu.ints(ts.BU_FIELDS["lifetime"]) == [100]
    assert bu.ints(ts.BU_FIELDS["flag_a"]) == [1] and bu.ints(ts.BU_FIELDS["flag_h"]) == [1]
    assert ba.ints(ts.BA_FIELDS["status"]) == [0] and ba.ints(ts.BA_FIELDS["flag_k"]) == [1]
    assert bu.ints(f["binding_identifier"].fields["bid"]) == [7]
    assert bu.ints(f["binding_identifier"].fields["flag_h"]) == [1]
    assert bu.first(f["binding_identifier"].fields["coa_ipv6"]) == "2001:db8::99"
    assert bu.ints(f["dns_update"].fields["flag_r"]) == [1]
    assert bu.first(f["mn_id"].fields["identifier"]) == "mn@example.com"
    assert bu.ints(f["message_auth"].fields["spi"]) == [256]
    assert bu.first(f["alternate_coa"].fields["address"]) == "2001:db8::7"
    assert bu.ints(f["ipv4_home_address"].fields["flag_p"]) == [1]
    # option 30 reuses option 29's field names: two values, HoA option first
    assert bu[f["ipv4_address_ack"].fields["address"]] == ["192.0.2.1", "192.0.2.1"]
    assert bu.ints(f["nat_detection"].fields["refresh_time"]) == [110]
    assert bu.first(f["ipv4_coa"].fields["address"]) == "198.51.100.7"
    assert bu.ints("mip6.mobility_opt") == [44, 45]


@pytest.mark.skipif(
    not ts.available() or " 4.0." not in ts.version(),
    reason="not-run: the recorded quirks are those of tshark 4.0",
)
def test_recorded_wireshark_deviations(mh_frames: list[ts.Frame]) -> None:
    """The notes in MOBILITY_OPTIONS are true of the installed tshark."""
    bu, _ = mh_frames
    f = ts.MOBILITY_OPTIONS

    def octets(name: str) -> int:
        value = bu.first(name) or ""
        return len(value.split(":")) if value else 0

    assert octets(f["message_auth"].fields["authentication_data"]) == 12 - 2
    assert octets(f["dns_update"].fields["mn_identity"]) == 16 - 2
    assert octets(f["experimental"].fields["data"]) == 8 - 2
    # 44/45 undissected, with a note-level expert; their "length" is the MH Header Len
    assert sum(e.field == "mip6.ie_not_dissected" for e in bu.experts) == 2
    hlen = bu.ints("mip6.hlen")[0]
    lengths = bu.ints("mip6.mobility_opt.len")
    sent = IPv6(bytes(_bu_with_every_mapped_option()))[MIP6MH_BU].options
    assert len(lengths) == len(sent)  # one length per option, padding included
    shown = {o.otype: n for o, n in zip(sent, lengths, strict=True)}
    assert shown[35] == 20  # a dissected option: its real Length octet
    assert shown[44] == shown[45] == hlen  # the real ones are 4 and 6
