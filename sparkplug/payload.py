"""Sparkplug B payloads: encode and decode the protobuf message, and the metric datatypes.

The schema is the part of the Sparkplug B specification's `Payload` message we use (payload timestamp, metrics, seq,
uuid, body; a metric's name, alias, timestamp, datatype, historical/transient/null flags and scalar value), built
here as a protobuf descriptor so no generated file is needed. Fields we do not model (metadata, properties, data
sets, templates, extensions) are skipped when decoding, as protobuf skips any unknown field.
"""
from __future__ import annotations

import enum
import math
import time
from dataclasses import dataclass, field

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError


class PayloadError(ValueError):
    """Bytes that are not a Sparkplug B payload, or a metric whose value does not fit its datatype."""


class DataType(enum.IntEnum):
    """Sparkplug B metric datatypes (the specification's numbers). The array, data set and template types are
    recognised by number but their values are not decoded."""
    UNKNOWN = 0
    INT8 = 1
    INT16 = 2
    INT32 = 3
    INT64 = 4
    UINT8 = 5
    UINT16 = 6
    UINT32 = 7
    UINT64 = 8
    FLOAT = 9
    DOUBLE = 10
    BOOLEAN = 11
    STRING = 12
    DATETIME = 13
    TEXT = 14
    UUID = 15
    DATASET = 16
    BYTES = 17
    FILE = 18
    TEMPLATE = 19


# (protobuf value field, bits, signed) for the integer types; signed values travel as two's complement.
_INTEGERS = {
    DataType.INT8: ("int_value", 8, True), DataType.INT16: ("int_value", 16, True),
    DataType.INT32: ("int_value", 32, True), DataType.UINT8: ("int_value", 8, False),
    DataType.UINT16: ("int_value", 16, False), DataType.UINT32: ("int_value", 32, False),
    DataType.INT64: ("long_value", 64, True), DataType.UINT64: ("long_value", 64, False),
    DataType.DATETIME: ("long_value", 64, False),
}
_OTHERS = {
    DataType.FLOAT: "float_value", DataType.DOUBLE: "double_value", DataType.BOOLEAN: "boolean_value",
    DataType.STRING: "string_value", DataType.TEXT: "string_value", DataType.UUID: "string_value",
    DataType.BYTES: "bytes_value", DataType.FILE: "bytes_value",
}
SCALAR_TYPES = frozenset(_INTEGERS) | frozenset(_OTHERS)
NUMERIC_TYPES = frozenset(_INTEGERS) | {DataType.FLOAT, DataType.DOUBLE, DataType.BOOLEAN}


@dataclass(frozen=True)
class Metric:
    name: str | None
    datatype: DataType
    value: object = None            # None when is_null, or a type we do not decode
    alias: int | None = None
    timestamp: int | None = None    # milliseconds since the epoch, UTC
    is_null: bool = False
    is_historical: bool = False
    is_transient: bool = False


@dataclass(frozen=True)
class Payload:
    metrics: list[Metric] = field(default_factory=list)
    timestamp: int | None = None    # milliseconds since the epoch, UTC
    seq: int | None = None
    uuid: str | None = None
    body: bytes | None = None


def now_ms() -> int:
    return int(time.time() * 1000)


def _build_message_class():
    F = descriptor_pb2.FieldDescriptorProto
    opt, rep = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    fdp = descriptor_pb2.FileDescriptorProto(name="oee_sparkplug_b.proto", package="oee.sparkplug_b",
                                             syntax="proto2")
    payload = fdp.message_type.add(name="Payload")
    metric = payload.nested_type.add(name="Metric")
    metric.oneof_decl.add(name="value")
    for name, number, kind, in_oneof in [
        ("name", 1, F.TYPE_STRING, False), ("alias", 2, F.TYPE_UINT64, False),
        ("timestamp", 3, F.TYPE_UINT64, False), ("datatype", 4, F.TYPE_UINT32, False),
        ("is_historical", 5, F.TYPE_BOOL, False), ("is_transient", 6, F.TYPE_BOOL, False),
        ("is_null", 7, F.TYPE_BOOL, False),
        ("int_value", 10, F.TYPE_UINT32, True), ("long_value", 11, F.TYPE_UINT64, True),
        ("float_value", 12, F.TYPE_FLOAT, True), ("double_value", 13, F.TYPE_DOUBLE, True),
        ("boolean_value", 14, F.TYPE_BOOL, True), ("string_value", 15, F.TYPE_STRING, True),
        ("bytes_value", 16, F.TYPE_BYTES, True),
    ]:
        f = metric.field.add(name=name, number=number, type=kind, label=opt)
        if in_oneof:
            f.oneof_index = 0
    payload.field.add(name="timestamp", number=1, type=F.TYPE_UINT64, label=opt)
    payload.field.add(name="metrics", number=2, type=F.TYPE_MESSAGE, label=rep,
                      type_name=".oee.sparkplug_b.Payload.Metric")
    payload.field.add(name="seq", number=3, type=F.TYPE_UINT64, label=opt)
    payload.field.add(name="uuid", number=4, type=F.TYPE_STRING, label=opt)
    payload.field.add(name="body", number=5, type=F.TYPE_BYTES, label=opt)
    payload.extension_range.add(start=6, end=536870912)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("oee.sparkplug_b.Payload"))


_Payload = _build_message_class()


def datatype_of(value: object) -> DataType:
    """The datatype a Python value is published as when none is given."""
    if isinstance(value, bool):
        return DataType.BOOLEAN
    if isinstance(value, int):
        return DataType.INT64
    if isinstance(value, float):
        return DataType.DOUBLE
    if isinstance(value, str):
        return DataType.STRING
    if isinstance(value, (bytes, bytearray)):
        return DataType.BYTES
    raise PayloadError(f"no Sparkplug datatype for a value of type {type(value).__name__}")


def metric(name: str | None, value: object, datatype: DataType | int | None = None, **kw) -> Metric:
    """A metric, its datatype taken from the value when not given."""
    kind = DataType(datatype) if datatype is not None else datatype_of(value)
    return Metric(name=name, datatype=kind, value=value, is_null=value is None, **kw)


def _put_value(pb, m: Metric) -> None:
    where = f"metric {m.name or m.alias!r}"
    if m.datatype in _INTEGERS:
        slot, bits, signed = _INTEGERS[m.datatype]
        if isinstance(m.value, bool) or not isinstance(m.value, int):
            raise PayloadError(f"{where}: {m.datatype.name} needs an integer, not {m.value!r}")
        low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
        if not low <= m.value <= high:
            raise PayloadError(f"{where}: {m.value} is outside {m.datatype.name}")
        width = 32 if slot == "int_value" else 64
        setattr(pb, slot, m.value & ((1 << width) - 1))
    elif m.datatype in _OTHERS:
        slot = _OTHERS[m.datatype]
        ok = {"float_value": (int, float), "double_value": (int, float), "boolean_value": (bool,),
              "string_value": (str,), "bytes_value": (bytes, bytearray)}[slot]
        if not isinstance(m.value, ok) or (slot != "boolean_value" and isinstance(m.value, bool)):
            raise PayloadError(f"{where}: {m.datatype.name} cannot hold {m.value!r}")
        setattr(pb, slot, bytes(m.value) if slot == "bytes_value" else m.value)
    else:
        raise PayloadError(f"{where}: datatype {m.datatype.name} is not supported for publishing")


def encode(payload: Payload) -> bytes:
    pb = _Payload()
    if payload.timestamp is not None:
        pb.timestamp = payload.timestamp
    if payload.seq is not None:
        pb.seq = payload.seq
    if payload.uuid is not None:
        pb.uuid = payload.uuid
    if payload.body is not None:
        pb.body = payload.body
    for m in payload.metrics:
        out = pb.metrics.add()
        if m.name is not None:
            out.name = m.name
        if m.alias is not None:
            out.alias = m.alias
        if m.timestamp is not None:
            out.timestamp = m.timestamp
        if m.datatype is not DataType.UNKNOWN:  # left out, a DATA metric's type is the one its BIRTH gave
            out.datatype = int(m.datatype)
        if m.is_historical:
            out.is_historical = True
        if m.is_transient:
            out.is_transient = True
        if m.is_null or m.value is None:
            out.is_null = True
        elif m.datatype is DataType.UNKNOWN:
            _put_value(out, Metric(m.name, datatype_of(m.value), m.value, m.alias))
        else:
            _put_value(out, m)
    return pb.SerializeToString()


def _value(pb, kind: DataType):
    if pb.is_null:
        return None
    which = pb.WhichOneof("value")
    if which is None:
        return None
    raw = getattr(pb, which)
    if kind in _INTEGERS:
        slot, bits, signed = _INTEGERS[kind]
        if which not in ("int_value", "long_value"):  # either integer field: edge nodes differ in which they use
            raise PayloadError(f"metric {pb.name or pb.alias!r}: {kind.name} value sent in {which}")
        raw &= (1 << bits) - 1
        if signed and raw >= 1 << (bits - 1):
            raw -= 1 << bits
        return raw
    if kind in _OTHERS:
        if which != _OTHERS[kind] and {which, _OTHERS[kind]} != {"float_value", "double_value"}:
            raise PayloadError(f"metric {pb.name or pb.alias!r}: {kind.name} value sent in {which}")
        if kind is DataType.FLOAT and math.isfinite(raw):
            return float(f"{raw:.7g}")  # the float32 as it was written, not its double widening
        return raw
    return raw  # UNKNOWN datatype (allowed in DATA messages): the value as sent


def decode(data: bytes, datatypes: dict[str, DataType] | None = None) -> Payload:
    """A payload from its bytes. A DATA message's metrics may omit the datatype (the BIRTH gave it): pass the BIRTH's
    datatypes by name or alias (as str) so those are read as their type."""
    pb = _Payload()
    try:
        pb.ParseFromString(bytes(data))
    except (DecodeError, ValueError, TypeError) as exc:
        raise PayloadError(f"not a Sparkplug B payload: {exc}") from None
    metrics = []
    for m in pb.metrics:
        name = m.name if m.HasField("name") else None
        alias = m.alias if m.HasField("alias") else None
        raw_type = m.datatype if m.HasField("datatype") else 0
        if raw_type == 0 and datatypes:
            raw_type = int(datatypes.get(name if name is not None else str(alias), 0))
        try:
            kind = DataType(raw_type)
        except ValueError:
            kind = DataType.UNKNOWN
        metrics.append(Metric(name=name, datatype=kind, value=_value(m, kind), alias=alias,
                              timestamp=m.timestamp if m.HasField("timestamp") else None, is_null=m.is_null,
                              is_historical=m.is_historical, is_transient=m.is_transient))
    return Payload(metrics=metrics, timestamp=pb.timestamp if pb.HasField("timestamp") else None,
                   seq=pb.seq if pb.HasField("seq") else None, uuid=pb.uuid if pb.HasField("uuid") else None,
                   body=pb.body if pb.HasField("body") else None)
