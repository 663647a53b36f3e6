"""The OPC-UA driver's Read service with its reply decoded for plain numbers.

asyncua's read_attributes() makes a ReadValueId object per node and decodes every DataValue of the reply into
Variant, StatusCode and datetime objects: about 30 us a value in all (decoding ~57 %, serializing the request
~35 %), most of a collector's CPU at 12,500 OPC-UA values a second. Here a chunk keeps its ReadValueIds, and the
reply's DataValues that hold one scalar number (Boolean to Double, with or without a status code and timestamps)
are read with struct. Any other DataValue (a string, an array, a null, picoseconds, a structure) is decoded by
asyncua from the same bytes, so its result is the one read_attributes() gives. The request goes through asyncua's
own client (UaClient._send_request: its request semaphore, observer, secure channel, timeout), so signing and
encryption apply unchanged; asyncua still serializes the request.
"""
from __future__ import annotations

import struct
from typing import Any

from asyncua import ua
from asyncua.common.utils import Buffer
from asyncua.ua.ua_binary import nodeid_from_binary, struct_from_binary

# Variant built-in type ids of scalar numbers -> the struct that decodes them as asyncua does
SCALARS = {1: struct.Struct("<?"), 2: struct.Struct("<b"), 3: struct.Struct("<B"), 4: struct.Struct("<h"),
           5: struct.Struct("<H"), 6: struct.Struct("<i"), 7: struct.Struct("<I"), 8: struct.Struct("<q"),
           9: struct.Struct("<Q"), 10: struct.Struct("<f"), 11: struct.Struct("<d")}
HAS_VALUE, HAS_STATUS, HAS_SOURCE_TIME, HAS_SERVER_TIME, HAS_PICOSECONDS = 0x01, 0x02, 0x04, 0x08, 0x30
_INT32 = struct.Struct("<i")
_UINT32 = struct.Struct("<I")
READ_RESPONSE = ua.FourByteNodeId(ua.ObjectIds.ReadResponse_Encoding_DefaultBinary)


class KeptRead:
    """One chunk's Read request: its ReadValueIds made once; the reply decoded by decode_read_response()."""

    __slots__ = ("nodes",)

    def __init__(self, node_ids: list[ua.NodeId]):
        self.nodes = [ua.ReadValueId(NodeId=nid, AttributeId=ua.AttributeIds.Value) for nid in node_ids]

    async def send(self, uaclient) -> list[Any]:
        """Each node's result in order: a (status code or None, number) pair for a plain number, else asyncua's
        DataValue. Raises what asyncua's read_attributes() raises (a bad service result, a closed connection)."""
        request = ua.ReadRequest()
        request.Parameters.NodesToRead = self.nodes  # serialized, never changed, by asyncua
        data = await uaclient._send_request(request)  # asyncua's own send: semaphore, observer, channel, timeout
        return decode_read_response(bytes(data), len(self.nodes))


def decode_read_response(raw: bytes, expected: int) -> list[Any]:
    buf = Buffer(raw)
    if nodeid_from_binary(buf) != READ_RESPONSE:
        raise ua.UaError("the server's answer to a Read request is not a ReadResponse")
    header = struct_from_binary(ua.ResponseHeader, buf)
    header.ServiceResult.check()  # as read_attributes() does
    pos = buf.cur_pos
    (count,) = _INT32.unpack_from(raw, pos)
    pos += 4
    if count != expected:
        raise ua.UaError(f"the server answered {max(count, 0)} results for {expected} nodes")
    out: list[Any] = []
    append = out.append
    scalars = SCALARS
    for _ in range(count):
        start = pos
        mask = raw[pos]
        vt = raw[pos + 1] if mask & HAS_VALUE else 0
        kind = scalars.get(vt) if not mask & HAS_PICOSECONDS else None
        if kind is None:  # not one plain number: asyncua decodes this DataValue
            part = Buffer(raw, start)
            append(struct_from_binary(ua.DataValue, part))
            pos = part.cur_pos
            continue
        pos += 2
        (value,) = kind.unpack_from(raw, pos)
        pos += kind.size
        status = None
        if mask & HAS_STATUS:
            (status,) = _UINT32.unpack_from(raw, pos)
            pos += 4
        if mask & HAS_SOURCE_TIME:
            pos += 8
        if mask & HAS_SERVER_TIME:
            pos += 8
        append((status, value))
    if pos > len(raw):
        raise ua.UaError("the server's ReadResponse ends before its results do")
    return out
