"""The Sparkplug B codec and topic names, without a broker."""
from __future__ import annotations

import math

import pytest

from sparkplug.payload import DataType, Metric, Payload, PayloadError, decode, encode, metric
from sparkplug.topics import (BD_SEQ, MessageType, Topic, TopicError, check_id, is_next, next_seq, node_filter,
                              state_topic)


@pytest.mark.parametrize("kind, value", [
    (DataType.INT8, -128), (DataType.INT8, 127), (DataType.INT16, -2), (DataType.INT32, -2_000_000_000),
    (DataType.INT64, -(1 << 63)), (DataType.UINT8, 255), (DataType.UINT16, 65535), (DataType.UINT32, 4_000_000_000),
    (DataType.UINT64, (1 << 64) - 1), (DataType.DOUBLE, 0.1), (DataType.FLOAT, 1.5), (DataType.BOOLEAN, True),
    (DataType.BOOLEAN, False), (DataType.STRING, "Füller 4"), (DataType.BYTES, b"\x00\xff"),
    (DataType.DATETIME, 1_765_000_000_000), (DataType.TEXT, "long text"),
])
def test_every_scalar_type_round_trips(kind, value):
    data = encode(Payload(metrics=[metric("m", value, kind)], timestamp=5, seq=7))
    got = decode(data)
    assert (got.seq, got.timestamp) == (7, 5)
    assert got.metrics[0].datatype is kind and got.metrics[0].value == value and got.metrics[0].name == "m"


def test_float32_reads_as_written_not_widened():
    got = decode(encode(Payload(metrics=[metric("speed", 0.1, DataType.FLOAT)])))
    assert got.metrics[0].value == 0.1


def test_null_alias_and_timestamps():
    data = encode(Payload(metrics=[Metric(name=None, alias=3, datatype=DataType.INT32, value=None, is_null=True,
                                          timestamp=99)]))
    m = decode(data).metrics[0]
    assert (m.name, m.alias, m.is_null, m.value, m.timestamp) == (None, 3, True, None, 99)


def test_data_without_datatype_reads_with_the_birth_types():
    # A DDATA may leave the datatype out; the BIRTH's types are applied by name.
    raw = encode(Payload(metrics=[metric("temp", -5, DataType.INT16)]))
    m = decode(raw)
    assert m.metrics[0].value == -5
    stripped = bytearray(raw)
    # The datatype field (number 4, varint) is b'\x20\x02' in the metric; take it out and fix the lengths.
    idx = stripped.index(b"\x20\x02")
    del stripped[idx:idx + 2]
    stripped[1] -= 2
    assert decode(bytes(stripped)).metrics[0].datatype is DataType.UNKNOWN
    assert decode(bytes(stripped), {"temp": DataType.INT16}).metrics[0].value == -5


@pytest.mark.parametrize("kind, value", [
    (DataType.INT8, 128), (DataType.UINT16, -1), (DataType.INT32, 1.5), (DataType.INT64, True),
    (DataType.BOOLEAN, 1), (DataType.STRING, 3), (DataType.DOUBLE, "x"), (DataType.DATASET, 1),
])
def test_a_value_that_does_not_fit_its_type_is_refused_naming_the_metric(kind, value):
    with pytest.raises(PayloadError, match="metric 'bad'"):
        encode(Payload(metrics=[metric("bad", value, kind)]))


@pytest.mark.parametrize("data", [b"{\"json\": 1}", b"\xff\xff\xff", b"\x12\x05ab"])
def test_bytes_that_are_not_sparkplug_are_refused(data):
    with pytest.raises(PayloadError, match="not a Sparkplug B payload"):
        decode(data)


def test_inferred_types_and_nan():
    assert metric("a", True).datatype is DataType.BOOLEAN
    assert metric("a", 3).datatype is DataType.INT64
    assert metric("a", 3.0).datatype is DataType.DOUBLE
    assert metric("a", "x").datatype is DataType.STRING
    assert math.isnan(decode(encode(Payload(metrics=[metric("n", math.nan, DataType.FLOAT)]))).metrics[0].value)
    with pytest.raises(PayloadError):
        metric("a", object())


def test_topics_build_and_parse():
    t = Topic("Plant1", MessageType.DDATA, "edge-7", "filler")
    assert str(t) == "spBv1.0/Plant1/DDATA/edge-7/filler"
    assert Topic.parse(str(t)) == t
    assert Topic.parse("spBv1.0/Plant1/NBIRTH/edge-7") == Topic("Plant1", MessageType.NBIRTH, "edge-7")
    assert state_topic("scada") == "spBv1.0/STATE/scada"
    assert node_filter("g", "e") == ["spBv1.0/g/+/e", "spBv1.0/g/+/e/+"]
    for bad in ["spAv1.0/g/NDATA/e", "spBv1.0/g/NDATA/e/d", "spBv1.0/g/DDATA/e", "spBv1.0/g/XDATA/e", "x"]:
        with pytest.raises(TopicError):
            Topic.parse(bad)
    for bad in ["a/b", "a+", "#", ""]:
        with pytest.raises(TopicError, match="group_id"):
            check_id(bad, "group_id")
    with pytest.raises(TopicError):
        Topic("g", MessageType.NDATA, "e", "d")


def test_seq_wraps_at_255():
    assert next_seq(254) == 255 and next_seq(255) == 0
    assert is_next(255, 0) and is_next(3, 4)
    assert not is_next(3, 5) and not is_next(None, 0) and not is_next(3, None)
    assert BD_SEQ == "bdSeq"


def test_a_data_metric_without_type_is_read_with_its_birth_type():
    raw = encode(Payload(metrics=[Metric(None, DataType.UNKNOWN, 70000, alias=4)]))
    assert decode(raw).metrics[0].datatype is DataType.UNKNOWN
    assert decode(raw, {"4": DataType.UINT32}).metrics[0].value == 70000
    with pytest.raises(PayloadError, match="BOOLEAN value sent in long_value"):
        decode(raw, {"4": DataType.BOOLEAN})
