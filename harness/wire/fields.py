"""A scapy packet as plain JSON data, field by field (for `dmmconf decode`, vectors and reports)."""

from __future__ import annotations

from typing import Any

from scapy.fields import EnumField, FlagsField, PacketListField
from scapy.packet import NoPayload, Packet

from harness.wire import layers as _layers  # noqa: F401  (scapy dissects with every project layer)

JSONValue = Any


def _value(pkt: Packet, fld: Any, val: Any) -> JSONValue:
    if isinstance(val, Packet):
        return layer_dict(val)
    if isinstance(val, list):
        return [_value(pkt, fld, v) for v in val]
    if isinstance(val, bytes):
        return val.hex()
    if isinstance(fld, FlagsField):
        return int(val)
    if val is None or isinstance(val, (int, str, float, bool)):
        return val
    return str(val)


def layer_dict(layer: Packet) -> dict[str, JSONValue]:
    """One layer (without its payload): its name and each field's value."""
    out: dict[str, JSONValue] = {"layer": layer.name}
    for fld in layer.fields_desc:
        if fld.name == "autopad":
            continue
        if hasattr(fld, "_find_fld_pkt"):
            fld = fld._find_fld_pkt(layer)  # MultipleTypeField / ConditionalField resolve
        present = getattr(fld, "cond", None)
        if present is not None and not present(layer):
            continue
        val = layer.getfieldval(fld.name)
        out[fld.name] = _value(layer, fld, val)
        inner = getattr(fld, "fld", fld)
        if (
            isinstance(inner, EnumField)
            and isinstance(val, int)
            and not isinstance(inner, PacketListField)
        ):
            text = inner.i2repr(layer, val)
            if text != str(val):
                out[f"{fld.name}_text"] = text
    return out


def to_json(pkt: Packet) -> list[dict[str, JSONValue]]:
    """Every layer of a packet, outermost first."""
    layers = []
    layer: Packet = pkt
    while not isinstance(layer, NoPayload):
        layers.append(layer_dict(layer))
        layer = layer.payload
    return layers
