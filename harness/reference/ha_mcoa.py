"""The reference Home Agent's multiple care-of addresses (RFC 5648 §6.2) and flow binding
list (RFC 6089 §4.3, §5.3) decisions, sans-I/O; ha_core.py calls them while it processes a
Binding Update, ha_dataplane.steer reads their state per packet.

* BID options: each gets a status of its own (164 a CoA that is not unicast routable, 133 a
  deregistration of an unknown BID, 167 a Length-4 refresh of an unknown BID); one BID option
  alone answers with its status in the BA, a bulk registration with 4 (MCOA NOTCOMPLETE) and
  the statuses in the options (RFC 5648 §6.2).
* Flow Identification options (RFC 6089 §5.3.2): new FIDs need a traffic selector (130), a
  supported format (133), a binding reference (130) of bound BIDs (131); known FIDs are
  modified field by field; two options with one FID reject both (130); a FID-PRI another
  flow holds is refused (129, INT-19). Flow Summary FIDs are refreshed or answered 132
  (§5.3.3). Every FID the BU does not name is removed (§5.3.4).
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable
from dataclasses import dataclass

from harness.wire import compact
from harness.wire import traffic_selector as ts
from harness.wire.compact import Option
from harness.wire.numbers import BAStatus, MobOpt

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# RFC 6089 §4.2 Status values of the Flow Identification option.
FID_OK, FID_REJECTED, FID_MALFORMED, FID_BID_NOT_FOUND, FID_NOT_FOUND, FID_TS_FORMAT = (
    0,
    129,
    130,
    131,
    132,
    133,
)
SUB_BINDING_REFERENCE, SUB_TRAFFIC_SELECTOR = 2, 3  # RFC 6089 §4.2.1.3, §4.2.1.4


@dataclass(frozen=True)
class Flow:
    """An entry of the flow binding list (RFC 6089 §4.3); active while one BID is bound."""

    fid: int
    fid_pri: int
    bids: tuple[int, ...]
    selector: ts.Selector


@dataclass(frozen=True)
class BidRequest:
    """One BID option of a BU as the HA will act on it."""

    bid: int
    bid_pri: int
    coa: Address | None  # None: the binding's own (Length 4)
    status: int  # 0, or the status of this BID (RFC 5648 §6.2)


def bid_requests(
    options: list[Option],
    bound: dict[int, Address],
    dereg: bool,
    routable: Callable[[Address], bool],
) -> list[BidRequest]:
    """RFC 5648 §6.2, each BID option of the BU (whose lengths judge_message checked)."""
    out = []
    for opt in options:
        if opt.otype != MobOpt.BINDING_IDENTIFIER:
            continue
        ident = compact.parse_binding_identifier(opt.data)
        coa = ipaddress.ip_address(ident.coa) if ident.coa else None
        status = 0
        if coa is not None and not routable(coa):
            status = BAStatus.MCOA_MALFORMED
        elif dereg and ident.bid not in bound:
            status = BAStatus.NOT_HOME_AGENT
        elif coa is None and ident.bid not in bound:
            status = BAStatus.MCOA_UNKNOWN_COA
        out.append(BidRequest(ident.bid, ident.bid_pri, coa, status))
    return out


def ba_status(requests: list[BidRequest]) -> tuple[int, list[int]]:
    """(the BA's Status, each BID option's Status) (RFC 5648 §6.2, last paragraph)."""
    failed = [r.status for r in requests if r.status]
    if not failed:
        return 0, [0] * len(requests)
    if len(requests) == 1:
        return failed[0], [0]
    return BAStatus.MCOA_NOTCOMPLETE, [r.status for r in requests]


def suboptions(data: bytes) -> tuple[tuple[int, ...] | None, tuple[int, bytes] | None, bool]:
    """(the BIDs of the Binding Reference, (TS Format, selector) of the Traffic Selector,
    well-formed) of a FID option's sub-options (RFC 6089 §4.2.1): unknown types skipped;
    a sub-option past the end, or two of a kind, is malformed."""
    bids: tuple[int, ...] | None = None
    selector: tuple[int, bytes] | None = None
    pos = 0
    while pos < len(data):
        stype = data[pos]
        if stype == 0:  # Pad1
            pos += 1
            continue
        if pos + 2 > len(data) or pos + 2 + data[pos + 1] > len(data):
            return bids, selector, False
        body = data[pos + 2 : pos + 2 + data[pos + 1]]
        pos += 2 + len(body)
        if stype == SUB_BINDING_REFERENCE:
            if bids is not None or not body or len(body) % 2:
                return bids, selector, False
            bids = struct.unpack(f"!{len(body) // 2}H", body)
        elif stype == SUB_TRAFFIC_SELECTOR:
            if selector is not None or len(body) < 2 or body[0] == 0:
                return bids, selector, False
            selector = (body[0], body[2:])
    return bids, selector, True


def flow_options(
    flows: dict[int, Flow], bound: set[int], options: list[Option]
) -> tuple[dict[int, Flow], list[tuple[int, int, int]]]:
    """The flow binding list after a valid BU (BID options already applied, RFC 6089
    §5.3.1), and the (FID, FID-PRI, Status) of each option the BA copies."""
    fid_opts = [o for o in options if o.otype == MobOpt.FLOW_IDENTIFICATION]
    heads = [struct.unpack_from("!HH", o.data) if len(o.data) >= 6 else (0, 0) for o in fid_opts]
    counts: dict[int, int] = {}
    for fid, _pri in heads:
        counts[fid] = counts.get(fid, 0) + 1
    named = {fid for fid, _ in heads if fid}
    out: dict[int, Flow] = {}
    answers = []
    for opt, (fid, pri) in zip(fid_opts, heads, strict=True):
        status, flow = _one(opt, fid, pri, flows, bound, counts)
        answers.append((fid, pri, status))
        if flow is not None:
            out[fid] = flow
        elif fid in flows:
            out[fid] = flows[fid]  # named but refused: kept as it was
    for opt in options:
        if opt.otype != MobOpt.FLOW_SUMMARY:
            continue
        for (fid,) in struct.iter_unpack("!H", opt.data[: len(opt.data) // 2 * 2]):
            if fid in flows:
                out.setdefault(fid, flows[fid])  # §5.3.3: refreshed as it is
            elif fid not in named and (fid, 0, FID_NOT_FOUND) not in answers:
                answers.append((fid, 0, FID_NOT_FOUND))
    # INT-19: two flows may not share a FID-PRI (RFC 6089 §4.2): a new or modified flow
    # whose FID-PRI another holds is refused (the one that held it stays).
    taken = {f.fid_pri for f in out.values() if flows.get(f.fid) == f}
    for flow in sorted(out.values(), key=lambda f: f.fid):
        if flows.get(flow.fid) == flow:
            continue
        if flow.fid_pri in taken:
            del out[flow.fid]
            if flow.fid in flows:
                out[flow.fid] = flows[flow.fid]
            answers = [(f, p, FID_REJECTED if f == flow.fid else s) for f, p, s in answers]
        else:
            taken.add(flow.fid_pri)
    return out, answers


def _one(
    opt: Option,
    fid: int,
    pri: int,
    flows: dict[int, Flow],
    bound: set[int],
    counts: dict[int, int],
) -> tuple[int, Flow | None]:
    if len(opt.data) < 6 or fid == 0 or pri == 0 or counts[fid] > 1:
        return FID_MALFORMED, None  # §4.2 reserved values; §5.3.2 the same FID twice
    bids, sel, ok = suboptions(opt.data[6:])
    if not ok:
        return FID_MALFORMED, None
    old = flows.get(fid)
    selector = old.selector if old is not None else None
    if sel is not None:
        if not ts.supported(sel[0]):
            return FID_TS_FORMAT, None
        try:
            selector = ts.parse(*sel)
        except ts.SelectorMalformed:
            return FID_MALFORMED, None
    if selector is None:
        return FID_MALFORMED, None  # §5.3.2.1: a new FID without a traffic selector
    if bids is None:
        if old is None:
            return FID_MALFORMED, None  # §5.3.2.1: a new FID without a binding reference
        bids = old.bids
    elif any(b not in bound for b in bids):
        return FID_BID_NOT_FOUND, None
    return FID_OK, Flow(fid, pri, tuple(bids), selector)


def ordered(flows: dict[int, Flow]) -> list[Flow]:
    """The flow binding list in its order (RFC 6089 §4.3: by FID-PRI, lowest first)."""
    return sorted(flows.values(), key=lambda f: f.fid_pri)
