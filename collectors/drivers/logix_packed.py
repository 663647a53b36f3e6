"""A chunk's read sent as bytes built once (the Logix driver's steady-state read path).

pycomm3's LogixDriver.read() parses every tag name, builds every request path and packet, and decodes every reply
through its type classes on every call: about 35 us a tag, most of a collector's CPU at 12,500 Logix tags a
second. A plan's chunks do not change between cycles, so pycomm3 builds a chunk's Multiple Service Packet once
(its own parsing, tag list and grouping) and each cycle sends those bytes again under a new sequence number
through pycomm3's own connection (LogixDriver.send), and the reply is checked and decoded with one struct.

Only a chunk whose every tag reads one atomic value (no bits, no BOOL arrays, no strings or structures, no
fragmented reads) and fits one packet is packed. A reply not shaped exactly as expected (a tag's error status,
another type, another length) is parsed by pycomm3's own response classes from the same bytes, so its readings
and error texts are those pycomm3's read() gives, without a second request.
"""
from __future__ import annotations

import struct

from pycomm3.cip.data_types import (BOOL, DINT, INT, LINT, LREAL, REAL, SINT, UDINT, UINT, ULINT, USINT, ArrayType,
                                    BitArrayType)
from pycomm3.packets.ethernetip import SendUnitDataRequestPacket
from pycomm3.packets.logix import MultiServiceRequestPacket, MultiServiceResponsePacket
from pycomm3.tag import Tag

# pycomm3's atomic type classes -> struct codes of the same little-endian decoding (BOOL: any byte but 0 is True)
STRUCT_CODES = {BOOL: "?", SINT: "b", INT: "h", DINT: "i", LINT: "q", USINT: "B", UINT: "H", UDINT: "I",
                ULINT: "Q", REAL: "f", LREAL: "d"}
VALUE_CLASSES = {"?": bool, "f": float, "d": float, **{c: int for c in "bhiqBHIQ"}}
READ_TAG_REPLY = 0x4C | 0x80
MULTIPLE_SERVICE_REPLY = 0x0A | 0x80
DATA_AT = 50  # the reply's data: 24 header, 20 common packet format, 2 sequence count, 4 service reply header
_SEQUENCE = struct.Struct("<H")
_OK = bytes(4)


class _PackedRequest(SendUnitDataRequestPacket):
    """The kept bytes under this request's sequence number."""

    def __init__(self, sequence, body: bytes):
        super().__init__(sequence)
        self.body = body

    def build_message(self) -> bytes:
        self.message = _SEQUENCE.pack(self._sequence) + self.body
        return self.message


class PackedChunk:
    """One chunk's Multiple Service Packet, built once; read() returns each tag's value, or pycomm3's Tag results
    when the reply is not the expected one."""

    __slots__ = ("multi", "names", "body", "classes", "layout", "head", "headers", "size")

    def __init__(self, multi: MultiServiceRequestPacket, names: tuple[str, ...], body: bytes, codes: list[str],
                 type_codes: list[int]):
        self.multi, self.names, self.body = multi, names, body
        self.classes = tuple(VALUE_CLASSES[c] for c in codes)  # what each value comes back as
        n = len(names)
        self.layout = struct.Struct("<" + "H" * (1 + n) + "".join("6s" + c for c in codes))
        offsets, at = [], 2 + 2 * n
        for c in codes:
            offsets.append(at)
            at += 6 + struct.calcsize("<" + c)
        self.head = (n, *offsets)  # the reply count and where each reply starts
        self.headers = tuple(bytes((READ_TAG_REPLY, 0, 0, 0, code, 0)) for code in type_codes)  # status 0, type
        self.size = DATA_AT + self.layout.size

    @classmethod
    def build(cls, plc, names: list[str]) -> PackedChunk | None:
        """The packed form of reading `names` (pycomm3's request strings) on this connection, or None when any of
        them is not one atomic value or pycomm3 would not send them as one Multiple Service Packet."""
        names = tuple(names)
        if len(names) < 2 or plc._micro800:  # one name is a single request, not a Multiple Service Packet
            return None
        parsed = plc._parse_requested_tags(names, "r")
        codes, type_codes = [], []
        for i in range(len(names)):
            tag = parsed.get(i)
            if not tag or tag.get("error") or tag.get("bit") is not None or tag.get("bool_elements") is not None \
                    or tag.get("elements") != 1:
                return None
            info = tag["tag_info"]
            kind = info.get("type_class")
            if info.get("tag_type") != "atomic" or info.get("data_type_name") == "DWORD" or kind is None:
                return None
            if isinstance(kind, type) and issubclass(kind, ArrayType):
                if issubclass(kind, BitArrayType):
                    return None
                kind = kind.element_type
            code = STRUCT_CODES.get(kind)
            if code is None:
                return None
            codes.append(code)
            type_codes.append(kind.code)
        requests = plc._read_build_requests(parsed)
        if len(requests) != 1 or type(requests[0]) is not MultiServiceRequestPacket:
            return None
        multi = requests[0]
        if [r.request_id for r in multi.requests] != list(range(len(names))):
            return None
        message = multi.build_message()  # once: it appends to the packet's parts
        return cls(multi, names, message[2:], codes, type_codes)  # the sequence count is new for each send

    def read(self, plc) -> tuple[bool, tuple]:
        """(True, values in the names' order) or (False, pycomm3 Tag results in the names' order)."""
        raw = plc.send(_PackedRequest(plc._sequence, self.body)).raw
        if raw is not None and len(raw) == self.size and raw[46] == MULTIPLE_SERVICE_REPLY and raw[48] == 0 \
                and raw[49] == 0 and raw[8:12] == _OK:
            values = self.layout.unpack_from(raw, DATA_AT)
            k = len(self.head)
            if values[:k] == self.head and values[k::2] == self.headers:
                return True, values[k + 1::2]
        return False, self.parsed(raw)

    def parsed(self, raw: bytes | None) -> list[Tag]:
        """pycomm3's own reading of the reply, as its read() would give it (LogixDriver._send_requests, then read's
        mapping by request id; no bits or BOOL arrays in a packed chunk)."""
        response = MultiServiceResponsePacket(self.multi, raw)
        results = {}
        for resp in response.responses:
            req = resp.request
            results[req.request_id] = (Tag(resp.tag, resp.value, resp.data_type, None) if resp
                                       else Tag(req.tag, None, None, req.error or resp.error))
        out = []
        for i, name in enumerate(self.names):
            result = results.get(i)
            if result is None:
                out.append(Tag(name, None, None, f"Invalid tag request - {KeyError(i)!r}"))
            else:
                out.append(result if result else Tag(name, None, None, result.error))
        return out
