"""EtherNet/IP encapsulation: the 24-byte header, sessions, common packet format items.

:class:`EncapSession` holds the state of one TCP client and turns one request packet
into at most one reply packet. It does no I/O, so the server can drive it from any
loop and tests can feed it bytes.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
from dataclasses import dataclass
from typing import List, Optional, Tuple

from .cip import UCMM_REPLY_LIMIT, ClientState, CipProcessor, RequestContext
from .status import (
    ENCAP_BAD_DATA,
    ENCAP_INVALID_COMMAND,
    ENCAP_INVALID_LENGTH,
    ENCAP_INVALID_SESSION,
    ENCAP_SUCCESS,
    ENCAP_UNSUPPORTED_PROTOCOL,
)

log = logging.getLogger(__name__)

HEADER = struct.Struct("<HHII8sI")  # command, length, session, status, context, options
HEADER_SIZE = HEADER.size  # 24

NOP = 0x0000
LIST_SERVICES = 0x0004
LIST_IDENTITY = 0x0063
LIST_INTERFACES = 0x0064
REGISTER_SESSION = 0x0065
UNREGISTER_SESSION = 0x0066
SEND_RR_DATA = 0x006F
SEND_UNIT_DATA = 0x0070

ITEM_NULL = 0x0000
ITEM_CONNECTED_ADDRESS = 0x00A1
ITEM_CONNECTED_DATA = 0x00B1
ITEM_UNCONNECTED_DATA = 0x00B2
ITEM_IDENTITY = 0x000C
ITEM_SERVICES = 0x0100

WRITE_TAG = 0x4D


@dataclass
class Outcome:
    reply: Optional[bytes]  # bytes to send back, None for no reply
    close: bool = False  # close the TCP connection after sending
    written: Tuple[str, ...] = ()  # tags a client wrote (for on_write)


def parse_items(body: bytes, start: int) -> List[Tuple[int, bytes]]:
    """Common packet format items after interface handle and timeout."""
    count = struct.unpack_from("<H", body, start)[0]
    pos = start + 2
    items = []
    for _ in range(count):
        typ, length = struct.unpack_from("<HH", body, pos)
        pos += 4
        data = body[pos: pos + length]
        if len(data) != length:
            raise ValueError("item runs past the packet")
        items.append((typ, data))
        pos += length
    return items


def build_items(*items: Tuple[int, bytes]) -> bytes:
    out = [struct.pack("<IHH", 0, 0, len(items))]
    for typ, data in items:
        out.append(struct.pack("<HH", typ, len(data)) + data)
    return b"".join(out)


def undo_pycomm3_double_write(payload: bytes) -> bytes:
    """pycomm3 1.2.16 sends a single-tag Write Tag (0x4D) twice in one connected data item.

    ``LogixDriver._write_build_single_request`` calls ``build_message()`` and then resets
    ``_msg_setup``, so the request is set up a second time when it is sent: the data item
    becomes ``sequence + request + sequence + request``. A controller that rejected the
    trailing copy would make every single write from our collectors fail, so when the
    item is exactly two identical halves holding a Write Tag, only the first half is
    served. Multi-tag writes (Multiple Service Packet) are not affected.
    """
    half = len(payload) // 2
    if half > 2 and len(payload) % 2 == 0 and payload[2] == WRITE_TAG and payload[:half] == payload[half:]:
        return payload[:half]
    return payload


class EncapSession:
    def __init__(self, processor: CipProcessor, peer: str, local: Tuple[str, int]):
        self.processor = processor
        self.client = ClientState(peer)
        self.local = local
        self.handle = 0

    def handle_packet(self, header: bytes, body: bytes) -> Outcome:
        command, _length, session, _status, context, _options = HEADER.unpack(header)

        def answer(status: int = ENCAP_SUCCESS, data: bytes = b"", handle: Optional[int] = None) -> bytes:
            return HEADER.pack(command, len(data), self.handle if handle is None else handle,
                               status, context, 0) + data

        if command == NOP:
            return Outcome(None)
        if command == LIST_IDENTITY:
            return Outcome(answer(data=struct.pack("<H", 1) + self._identity_item(), handle=session))
        if command == LIST_SERVICES:
            item = struct.pack("<HHHH", ITEM_SERVICES, 20, 1, 0x0120) + b"Communications\x00\x00"
            return Outcome(answer(data=struct.pack("<H", 1) + item, handle=session))
        if command == LIST_INTERFACES:
            return Outcome(answer(data=struct.pack("<H", 0), handle=session))
        if command == REGISTER_SESSION:
            if len(body) != 4:
                return Outcome(answer(ENCAP_INVALID_LENGTH, handle=0), close=True)
            version, _flags = struct.unpack("<HH", body)
            if version != 1:
                return Outcome(answer(ENCAP_UNSUPPORTED_PROTOCOL, struct.pack("<HH", 1, 0), handle=0))
            if self.handle:
                return Outcome(answer(ENCAP_INVALID_COMMAND, handle=session))
            self.handle = struct.unpack("<I", os.urandom(4))[0] or 1
            return Outcome(answer(data=struct.pack("<HH", 1, 0)))
        if command == UNREGISTER_SESSION:
            return Outcome(None, close=True)
        if command not in (SEND_RR_DATA, SEND_UNIT_DATA):
            return Outcome(answer(ENCAP_INVALID_COMMAND, handle=session))
        if not self.handle or session != self.handle:
            return Outcome(answer(ENCAP_INVALID_SESSION, handle=session))
        try:
            items = parse_items(body, 6)
        except (ValueError, struct.error):
            return Outcome(answer(ENCAP_BAD_DATA))
        if command == SEND_RR_DATA:
            return self._send_rr_data(items, answer)
        return self._send_unit_data(items, answer)

    def _send_rr_data(self, items, answer) -> Outcome:
        if len(items) != 2 or items[0][0] != ITEM_NULL or items[1][0] != ITEM_UNCONNECTED_DATA:
            return Outcome(answer(ENCAP_BAD_DATA))
        ctx = RequestContext(self.client, connected=False, limit=UCMM_REPLY_LIMIT)
        cip_reply = self.processor.execute(items[1][1], ctx)
        data = build_items((ITEM_NULL, b""), (ITEM_UNCONNECTED_DATA, cip_reply))
        return Outcome(answer(data=data), written=tuple(ctx.written))

    def _send_unit_data(self, items, answer) -> Outcome:
        if (len(items) != 2 or items[0][0] != ITEM_CONNECTED_ADDRESS or len(items[0][1]) != 4
                or items[1][0] != ITEM_CONNECTED_DATA or len(items[1][1]) < 2):
            return Outcome(answer(ENCAP_BAD_DATA))
        conn = self.client.connections.get(struct.unpack("<I", items[0][1])[0])
        if conn is None:  # a controller drops such packets; an error reply fails faster
            return Outcome(answer(ENCAP_BAD_DATA))
        payload = undo_pycomm3_double_write(items[1][1])
        ctx = RequestContext(self.client, connected=True, limit=conn.size - 2)
        cip_reply = self.processor.execute(payload[2:], ctx)
        data = build_items((ITEM_CONNECTED_ADDRESS, struct.pack("<I", conn.t_o_id)),
                           (ITEM_CONNECTED_DATA, payload[:2] + cip_reply))
        return Outcome(answer(data=data), written=tuple(ctx.written))

    def _identity_item(self) -> bytes:
        ident = self.processor.identity
        host, port = self.local
        try:
            addr = socket.inet_aton(host)
        except OSError:
            addr = bytes(4)
        sockaddr = struct.pack(">hH4s8x", socket.AF_INET, port, addr)
        body = (struct.pack("<H", 1) + sockaddr + ident.attributes_all()
                + bytes((ident.state,)))
        return struct.pack("<HH", ITEM_IDENTITY, len(body)) + body
