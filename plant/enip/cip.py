"""CIP request processing: path parsing, the objects a ControlLogix exposes, the services.

:class:`CipProcessor` takes one CIP request (service, request path, data) and returns
the reply bytes. It is transport-agnostic: the encapsulation layer (``encap.py``) hands
it unconnected requests (SendRRData) and connected requests (SendUnitData) along with
a :class:`RequestContext` that says which TCP client is asking and how large a reply may
be. Every error becomes a CIP error reply; nothing a client sends raises out of here.
"""

from __future__ import annotations

import logging
import struct
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from .status import (
    ATTRIBUTE_NOT_SUPPORTED,
    CONNECTION_FAILURE,
    EMBEDDED_SERVICE_ERROR,
    EXT_CONNECTION_IN_USE,
    EXT_CONNECTION_NOT_FOUND,
    EXT_INVALID_CONNECTION_SIZE,
    EXT_INVALID_SEGMENT,
    EXT_LINK_ADDRESS_NOT_AVAILABLE,
    EXT_OUT_OF_CONNECTIONS,
    EXT_OUT_OF_RANGE,
    EXT_PORT_NOT_AVAILABLE,
    EXT_TRANSPORT_NOT_SUPPORTED,
    GENERAL_ERROR,
    NOT_ENOUGH_DATA,
    PARTIAL_TRANSFER,
    PATH_DESTINATION_UNKNOWN,
    PATH_SEGMENT_ERROR,
    REPLY_TOO_LARGE,
    SERVICE_NOT_SUPPORTED,
    SUCCESS,
    CipError,
)
from .tags import TagDatabase

log = logging.getLogger(__name__)

# services
GET_ATTRIBUTES_ALL = 0x01
GET_ATTRIBUTE_LIST = 0x03
SET_ATTRIBUTE_LIST = 0x04
MULTIPLE_SERVICE_PACKET = 0x0A
GET_ATTRIBUTE_SINGLE = 0x0E
READ_TAG = 0x4C
WRITE_TAG = 0x4D
READ_MODIFY_WRITE = 0x4E
READ_TAG_FRAGMENTED = 0x52
WRITE_TAG_FRAGMENTED = 0x53
GET_INSTANCE_ATTRIBUTE_LIST = 0x55
FORWARD_CLOSE = 0x4E
UNCONNECTED_SEND = 0x52
FORWARD_OPEN = 0x54
LARGE_FORWARD_OPEN = 0x5B
# classes
IDENTITY = 0x01
MESSAGE_ROUTER = 0x02
CONNECTION_MANAGER = 0x06
PROGRAM_NAME = 0x64
SYMBOL = 0x6B
TEMPLATE = 0x6C
WALL_CLOCK = 0x8B

UCMM_REPLY_LIMIT = 504  # what a Logix controller answers in one unconnected reply
HARD_REPLY_LIMIT = 65000  # an encapsulation packet carries at most 65535 bytes
MAX_CONNECTION_SIZE = 4002  # largest Large Forward Open connection a 5580 accepts
MIN_CONNECTION_SIZE = 32
MAX_CONNECTIONS_PER_CLIENT = 32
TAG_SERVICES = (READ_TAG, WRITE_TAG, READ_MODIFY_WRITE, READ_TAG_FRAGMENTED, WRITE_TAG_FRAGMENTED)
_LOGICAL_KINDS = {0: "class", 1: "instance", 2: "element", 3: "connpoint", 4: "attribute"}


def reply(service: int, status: int = SUCCESS, ext: Tuple[int, ...] = (), data: bytes = b"") -> bytes:
    if not ext:
        return bytes((service | 0x80, 0, status, 0)) + data
    return bytes((service | 0x80, 0, status, len(ext))) + struct.pack(f"<{len(ext)}H", *ext) + data


def parse_path(buf: bytes, start: int, words: int) -> List[tuple]:
    """Parse a padded EPATH of ``words`` 16-bit words at ``buf[start:]``.

    Segments come back as tuples: ``("port", port, link_bytes)``, ``("class", n)``,
    ``("instance", n)``, ``("element", n)``, ``("attribute", n)``, ``("connpoint", n)``,
    ``("symbol", name)``. A malformed or truncated path raises ``CipError(0x04)``.
    """
    end = start + 2 * words
    if end > len(buf):
        raise CipError(PATH_SEGMENT_ERROR, message="path longer than the request")
    segs: List[tuple] = []
    i = start
    try:
        while i < end:
            b = buf[i]
            kind = b & 0xE0
            if kind == 0x00:  # port segment
                j = i + 1
                size = None
                if b & 0x10:
                    size = buf[j]
                    j += 1
                port = b & 0x0F
                if port == 0x0F:
                    port = struct.unpack_from("<H", buf, j)[0]
                    j += 2
                if size is None:
                    link = bytes(buf[j: j + 1])
                    j += 1
                else:
                    link = bytes(buf[j: j + size])
                    j += size
                j += (j - i) % 2
                segs.append(("port", port, link))
                i = j
            elif kind == 0x20:  # logical segment
                ltype = (b >> 2) & 0x07
                fmt = b & 0x03
                if ltype not in _LOGICAL_KINDS:
                    raise CipError(PATH_SEGMENT_ERROR)
                if fmt == 0:
                    value = buf[i + 1]
                    i += 2
                elif fmt == 1:
                    value = struct.unpack_from("<H", buf, i + 2)[0]
                    i += 4
                else:  # 2 is the 32-bit format; pycomm3 1.2.16 encodes 32-bit ids as 3
                    value = struct.unpack_from("<I", buf, i + 2)[0]
                    i += 6
                segs.append((_LOGICAL_KINDS[ltype], value))
            elif b == 0x91:  # ANSI extended symbol segment
                n = buf[i + 1]
                raw = bytes(buf[i + 2: i + 2 + n])
                if len(raw) != n or not n:
                    raise CipError(PATH_SEGMENT_ERROR)
                segs.append(("symbol", raw.decode("iso-8859-1")))
                i += 2 + n + (n & 1)
            else:
                raise CipError(PATH_SEGMENT_ERROR, message=f"unsupported segment 0x{b:02X}")
    except (IndexError, struct.error):
        raise CipError(PATH_SEGMENT_ERROR, message="truncated path") from None
    if i != end:
        raise CipError(PATH_SEGMENT_ERROR, message="segment runs past the path size")
    return segs


@dataclass
class Identity:
    product_name: str
    revision: Tuple[int, int]
    serial: int
    product_code: int = 166
    vendor: int = 1  # Rockwell Automation/Allen-Bradley
    device_type: int = 0x0E  # Programmable Logic Controller
    status: int = 0x3060  # owned, configured, keyswitch REMOTE RUN
    state: int = 3  # operational
    controller_name: str = "SimLogix"

    def attributes_all(self) -> bytes:
        name = self.product_name.encode("ascii", "replace")[:32]
        return struct.pack("<HHHBBHIB", self.vendor, self.device_type, self.product_code,
                           self.revision[0], self.revision[1], self.status, self.serial,
                           len(name)) + name

    def attribute(self, attr: int) -> bytes:
        if attr == 1:
            return struct.pack("<H", self.vendor)
        if attr == 2:
            return struct.pack("<H", self.device_type)
        if attr == 3:
            return struct.pack("<H", self.product_code)
        if attr == 4:
            return bytes(self.revision)
        if attr == 5:
            return struct.pack("<H", self.status)
        if attr == 6:
            return struct.pack("<I", self.serial)
        if attr == 7:
            name = self.product_name.encode("ascii", "replace")[:32]
            return bytes((len(name),)) + name
        if attr == 8:
            return bytes((self.state,))
        raise CipError(ATTRIBUTE_NOT_SUPPORTED)


@dataclass
class Connection:
    o_t_id: int  # chosen by us, the client addresses its requests with it
    t_o_id: int  # chosen by the client, we address our replies with it
    triple: Tuple[int, int, int]  # connection serial, vendor id, originator serial
    size: int  # T->O connection size: the most bytes one reply may carry (incl. sequence)
    rpi: int


@dataclass
class ClientState:
    """What one TCP client owns: its CIP connections."""

    peer: str
    connections: Dict[int, Connection] = field(default_factory=dict)


@dataclass
class RequestContext:
    client: ClientState
    connected: bool
    limit: int  # the largest CIP reply the transport can carry
    written: List[str] = field(default_factory=list)  # symbols a client changed


class CipProcessor:
    def __init__(self, db: TagDatabase, identity: Identity, slot: int):
        self.db = db
        self.identity = identity
        self.slot = slot
        self.service_counts: Counter = Counter()
        self._clock_offset_us = 0
        self._next_conn_id = int(time.time() * 1000) & 0x0FFF_FFFF | 0x1000_0000

    # -- entry points ---------------------------------------------------------------------
    def execute(self, request: bytes, ctx: RequestContext, nested: bool = False) -> bytes:
        """One CIP request in, its reply out."""
        if len(request) < 2:
            service = request[0] & 0x7F if request else 0
            return reply(service, PATH_SEGMENT_ERROR)
        service = request[0]
        if service & 0x80:
            return reply(service & 0x7F, SERVICE_NOT_SUPPORTED)
        try:
            words = request[1]
            segs = parse_path(request, 2, words)
            data = request[2 + 2 * words:]
            with self.db.lock:
                self.service_counts[service] += 1
                return self._route(service, segs, data, ctx, nested)
        except CipError as err:
            return reply(service, err.status, err.ext, err.data)
        except struct.error:  # request data shorter than its service needs
            return reply(service, NOT_ENOUGH_DATA)
        except Exception:  # a bug of ours must not take the connection down
            log.exception("unexpected error serving CIP service 0x%02X", service)
            return reply(service, GENERAL_ERROR)

    # -- routing --------------------------------------------------------------------------
    def _route(self, service: int, segs: List[tuple], data: bytes, ctx: RequestContext,
               nested: bool) -> bytes:
        if not segs:
            raise CipError(PATH_SEGMENT_ERROR)
        kind = segs[0][0]
        if kind == "symbol":
            if service == GET_INSTANCE_ATTRIBUTE_LIST:
                return self._symbol_list(segs, data, ctx)
            return self._tag_service(service, segs, data, ctx)
        if kind != "class":
            raise CipError(PATH_SEGMENT_ERROR)
        cls = segs[0][1]
        instance = segs[1][1] if len(segs) > 1 and segs[1][0] == "instance" else None
        if cls == SYMBOL:
            if service == GET_INSTANCE_ATTRIBUTE_LIST:
                return self._symbol_list(segs, data, ctx)
            return self._tag_service(service, segs, data, ctx)
        if cls == MESSAGE_ROUTER and service == MULTIPLE_SERVICE_PACKET:
            if nested:
                raise CipError(SERVICE_NOT_SUPPORTED)
            return self._multiple_service(data, ctx)
        if cls == IDENTITY:
            return self._identity(service, instance, segs, data)
        if cls == CONNECTION_MANAGER:
            return self._connection_manager(service, data, ctx, nested)
        if cls == PROGRAM_NAME:
            if instance != 1:
                raise CipError(PATH_DESTINATION_UNKNOWN)
            if service != GET_ATTRIBUTES_ALL:
                raise CipError(SERVICE_NOT_SUPPORTED)
            name = self.identity.controller_name.encode("ascii", "replace")
            return reply(service, data=struct.pack("<H", len(name)) + name)
        if cls == TEMPLATE:
            return self._template(service, instance, data, ctx)
        if cls == WALL_CLOCK:
            return self._wall_clock(service, instance, data)
        if cls == MESSAGE_ROUTER:
            raise CipError(SERVICE_NOT_SUPPORTED)
        raise CipError(PATH_DESTINATION_UNKNOWN)

    # -- Multiple Service Packet (0x0A) -----------------------------------------------------
    def _multiple_service(self, data: bytes, ctx: RequestContext) -> bytes:
        if len(data) < 2:
            raise CipError(NOT_ENOUGH_DATA)
        count = struct.unpack_from("<H", data, 0)[0]
        table_end = 2 + 2 * count
        if len(data) < table_end:
            raise CipError(NOT_ENOUGH_DATA)
        offsets = list(struct.unpack_from(f"<{count}H", data, 2))
        bounds = offsets + [len(data)]
        for a, b in zip(bounds, bounds[1:]):
            if not table_end <= a <= b <= len(data):
                raise CipError(NOT_ENOUGH_DATA, message="bad offset table")
        replies: List[bytes] = []
        size = table_end + 4
        for n in range(count):
            request = data[bounds[n]: bounds[n + 1]]
            answer = self.execute(request, ctx, nested=True)
            if size + len(answer) > HARD_REPLY_LIMIT:
                answer = reply(request[0] if request else 0, REPLY_TOO_LARGE)
            size += len(answer)
            replies.append(answer)
        status = SUCCESS if all(r[2] == SUCCESS for r in replies) else EMBEDDED_SERVICE_ERROR
        table = [struct.pack("<H", count)]
        offset = table_end
        for r in replies:
            table.append(struct.pack("<H", offset))
            offset += len(r)
        return reply(MULTIPLE_SERVICE_PACKET, status, data=b"".join(table + replies))

    # -- tags -------------------------------------------------------------------------------
    def _tag_service(self, service: int, segs: List[tuple], data: bytes, ctx: RequestContext) -> bytes:
        if service not in TAG_SERVICES:
            raise CipError(SERVICE_NOT_SUPPORTED)
        ref = self.db.resolve(segs)
        try:
            if service in (READ_TAG, READ_TAG_FRAGMENTED):
                elements = struct.unpack_from("<H", data, 0)[0]
                if service == READ_TAG:
                    offset, limit = 0, HARD_REPLY_LIMIT
                else:
                    offset, limit = struct.unpack_from("<I", data, 2)[0], ctx.limit
                room = limit - 4 - len(ref.type.type_bytes)
                type_field, payload, more = self.db.read(ref, elements, offset, room)
                return reply(service, PARTIAL_TRANSFER if more else SUCCESS, data=type_field + payload)
            if service in (WRITE_TAG, WRITE_TAG_FRAGMENTED):
                code = struct.unpack_from("<H", data, 0)[0]
                pos = 2
                if code & 0xFF == 0xA0:  # structure: 0xA0, length of what follows, handle
                    pos += code >> 8
                    if len(data) < pos:
                        raise CipError(NOT_ENOUGH_DATA)
                type_field = bytes(data[:pos])
                elements = struct.unpack_from("<H", data, pos)[0]
                pos += 2
                offset = 0
                if service == WRITE_TAG_FRAGMENTED:
                    offset = struct.unpack_from("<I", data, pos)[0]
                    pos += 4
                complete = self.db.write(ref, type_field, elements, bytes(data[pos:]), offset,
                                         fragmented=service == WRITE_TAG_FRAGMENTED)
                if complete:
                    ctx.written.append(ref.symbol.name)
                return reply(service)
            # Read-Modify-Write: mask size, OR mask, AND mask. pycomm3 1.2.16 sends an 8-byte
            # AND mask whatever the size (it slices with the mask value): extra bytes ignored.
            size = struct.unpack_from("<H", data, 0)[0]
            if len(data) < 2 + 2 * size:
                raise CipError(NOT_ENOUGH_DATA)
            self.db.read_modify_write(ref, bytes(data[2: 2 + size]), bytes(data[2 + size: 2 + 2 * size]))
            ctx.written.append(ref.symbol.name)
            return reply(service)
        except struct.error:
            raise CipError(NOT_ENOUGH_DATA) from None

    def _symbol_list(self, segs: List[tuple], data: bytes, ctx: RequestContext) -> bytes:
        program = None
        if segs[0][0] == "symbol":
            name = segs[0][1]
            if name[:8].casefold() != "program:":
                raise CipError(PATH_SEGMENT_ERROR)
            program = name[8:]
            segs = segs[1:]
        if not segs or segs[0] != ("class", SYMBOL) or len(segs) > 2 or (
                len(segs) == 2 and segs[1][0] != "instance"):
            raise CipError(PATH_DESTINATION_UNKNOWN)
        scope = self.db.scope(program)
        if scope is None:
            raise CipError(PATH_DESTINATION_UNKNOWN)
        start = segs[1][1] if len(segs) == 2 else 0
        if len(data) < 2:
            raise CipError(NOT_ENOUGH_DATA)
        count = struct.unpack_from("<H", data, 0)[0]
        if len(data) < 2 + 2 * count:
            raise CipError(NOT_ENOUGH_DATA)
        attrs = struct.unpack_from(f"<{count}H", data, 2)
        room = ctx.limit - 4
        out: List[bytes] = []
        used = 0
        more = False
        for entry in scope.listing:
            if entry.instance_id < start:
                continue
            encoded = self.db.encode_entry(entry, attrs)
            if used + len(encoded) > room:
                more = True
                break
            out.append(encoded)
            used += len(encoded)
        if more and not out:
            raise CipError(REPLY_TOO_LARGE)
        return reply(GET_INSTANCE_ATTRIBUTE_LIST, PARTIAL_TRANSFER if more else SUCCESS, data=b"".join(out))

    # -- templates (class 0x6C) ----------------------------------------------------------
    def _template(self, service: int, instance: Optional[int], data: bytes, ctx: RequestContext) -> bytes:
        typ = self.db.templates.get(instance) if instance else None
        if typ is None:
            raise CipError(PATH_DESTINATION_UNKNOWN)
        definition = typ.template_definition(self.db.template_id)
        if service == GET_ATTRIBUTE_LIST:
            if len(data) < 2:
                raise CipError(NOT_ENOUGH_DATA)
            count = struct.unpack_from("<H", data, 0)[0]
            if len(data) < 2 + 2 * count:
                raise CipError(NOT_ENOUGH_DATA)
            values = {
                1: struct.pack("<H", typ.handle),
                2: struct.pack("<H", len(typ.members)),
                # object definition size in 32-bit words: a client reads (size * 4 - 23) bytes
                4: struct.pack("<I", (len(definition) + 23 + 3) // 4),
                5: struct.pack("<I", typ.size),
            }
            out = [struct.pack("<H", count)]
            for attr in struct.unpack_from(f"<{count}H", data, 2):
                if attr in values:
                    out.append(struct.pack("<HH", attr, SUCCESS) + values[attr])
                else:
                    out.append(struct.pack("<HH", attr, ATTRIBUTE_NOT_SUPPORTED))
            return reply(service, data=b"".join(out))
        if service == READ_TAG:  # Template Read: byte offset, byte count
            if len(data) < 6:
                raise CipError(NOT_ENOUGH_DATA)
            offset, wanted = struct.unpack_from("<IH", data, 0)
            if offset > len(definition):
                raise CipError(GENERAL_ERROR, (EXT_OUT_OF_RANGE,))
            chunk = definition[offset: offset + min(wanted, ctx.limit - 4)]
            more = len(chunk) < min(wanted, len(definition) - offset)  # cut short by the limit
            return reply(service, PARTIAL_TRANSFER if more else SUCCESS, data=chunk)
        raise CipError(SERVICE_NOT_SUPPORTED)

    # -- identity (class 0x01) ------------------------------------------------------------
    def _identity(self, service: int, instance: Optional[int], segs: List[tuple], data: bytes) -> bytes:
        if instance != 1:
            raise CipError(PATH_DESTINATION_UNKNOWN)
        if service == GET_ATTRIBUTES_ALL:
            return reply(service, data=self.identity.attributes_all())
        if service == GET_ATTRIBUTE_SINGLE:
            attrs = [s[1] for s in segs if s[0] == "attribute"]
            if not attrs:
                raise CipError(PATH_SEGMENT_ERROR)
            return reply(service, data=self.identity.attribute(attrs[0]))
        raise CipError(SERVICE_NOT_SUPPORTED)

    # -- wall clock (class 0x8B) ----------------------------------------------------------
    def _wall_clock(self, service: int, instance: Optional[int], data: bytes) -> bytes:
        if instance != 1:
            raise CipError(PATH_DESTINATION_UNKNOWN)
        if service not in (GET_ATTRIBUTE_LIST, SET_ATTRIBUTE_LIST):
            raise CipError(SERVICE_NOT_SUPPORTED)
        try:
            count = struct.unpack_from("<H", data, 0)[0]
            pos = 2
            out = [struct.pack("<H", count)]
            for _ in range(count):
                attr = struct.unpack_from("<H", data, pos)[0]
                pos += 2
                if attr != 6:
                    out.append(struct.pack("<HH", attr, ATTRIBUTE_NOT_SUPPORTED))
                    if service == SET_ATTRIBUTE_LIST:
                        break  # cannot know how long the unknown attribute's value is
                    continue
                if service == GET_ATTRIBUTE_LIST:
                    now = int(time.time() * 1_000_000) + self._clock_offset_us
                    out.append(struct.pack("<HHQ", attr, SUCCESS, now))
                else:
                    wanted = struct.unpack_from("<Q", data, pos)[0]
                    pos += 8
                    self._clock_offset_us = wanted - int(time.time() * 1_000_000)
                    out.append(struct.pack("<HH", attr, SUCCESS))
        except struct.error:
            raise CipError(NOT_ENOUGH_DATA) from None
        return reply(service, data=b"".join(out))

    # -- connection manager (class 0x06) --------------------------------------------------
    def _check_route(self, segs: List[tuple]) -> List[tuple]:
        """Accept a route to this controller: nothing, or backplane port 1 / our slot."""
        rest = list(segs)
        while rest and rest[0][0] == "port":
            _, port, link = rest.pop(0)
            if port != 1:
                raise CipError(CONNECTION_FAILURE, (EXT_PORT_NOT_AVAILABLE,))
            if link != bytes((self.slot,)):
                raise CipError(CONNECTION_FAILURE, (EXT_LINK_ADDRESS_NOT_AVAILABLE,))
        return rest

    def _connection_manager(self, service: int, data: bytes, ctx: RequestContext, nested: bool) -> bytes:
        if ctx.connected or nested:
            raise CipError(SERVICE_NOT_SUPPORTED)
        try:
            if service in (FORWARD_OPEN, LARGE_FORWARD_OPEN):
                return self._forward_open(service, data, ctx)
            if service == FORWARD_CLOSE:
                return self._forward_close(data, ctx)
            if service == UNCONNECTED_SEND:
                return self._unconnected_send(data, ctx)
        except struct.error:
            raise CipError(NOT_ENOUGH_DATA) from None
        raise CipError(SERVICE_NOT_SUPPORTED)

    def _forward_open(self, service: int, data: bytes, ctx: RequestContext) -> bytes:
        large = service == LARGE_FORWARD_OPEN
        (_prio, _ticks, _ot_id, to_id, serial, vendor, orig, _mult) = struct.unpack_from("<BBIIHHIB", data, 0)
        triple = (serial, vendor, orig)
        if large:
            ot_rpi, _ot_np, to_rpi, to_np, transport, words = struct.unpack_from("<IIIIBB", data, 22)
            size, path_at = to_np & 0xFFFF, 40
        else:
            ot_rpi, _ot_np, to_rpi, to_np, transport, words = struct.unpack_from("<IHIHBB", data, 22)
            size, path_at = to_np & 0x01FF, 36
        fail = struct.pack("<HHIBB", serial, vendor, orig, 0, 0)
        try:
            rest = self._check_route(parse_path(data, path_at, words))
        except CipError as err:
            raise CipError(err.status if err.status == CONNECTION_FAILURE else CONNECTION_FAILURE,
                           err.ext or (EXT_INVALID_SEGMENT,), data=fail) from None
        if not rest or rest[0] != ("class", MESSAGE_ROUTER):
            raise CipError(CONNECTION_FAILURE, (EXT_INVALID_SEGMENT,), data=fail)
        if transport & 0x0F != 0x03:
            raise CipError(CONNECTION_FAILURE, (EXT_TRANSPORT_NOT_SUPPORTED,), data=fail)
        if not MIN_CONNECTION_SIZE <= size <= MAX_CONNECTION_SIZE:
            raise CipError(CONNECTION_FAILURE, (EXT_INVALID_CONNECTION_SIZE, MAX_CONNECTION_SIZE), data=fail)
        conns = ctx.client.connections
        if any(c.triple == triple for c in conns.values()):
            raise CipError(CONNECTION_FAILURE, (EXT_CONNECTION_IN_USE,), data=fail)
        if len(conns) >= MAX_CONNECTIONS_PER_CLIENT:
            raise CipError(CONNECTION_FAILURE, (EXT_OUT_OF_CONNECTIONS,), data=fail)
        self._next_conn_id = (self._next_conn_id + 0x1D) & 0xFFFF_FFFF or 1
        conn = Connection(self._next_conn_id, to_id, triple, size, to_rpi)
        conns[conn.o_t_id] = conn
        log.debug("%s: %sForward Open, connection 0x%08X, size %d", ctx.client.peer,
                  "Large " if large else "", conn.o_t_id, size)
        body = struct.pack("<IIHHIIIBB", conn.o_t_id, to_id, serial, vendor, orig, ot_rpi, to_rpi, 0, 0)
        return reply(service, data=body)

    def _forward_close(self, data: bytes, ctx: RequestContext) -> bytes:
        (_prio, _ticks, serial, vendor, orig) = struct.unpack_from("<BBHHI", data, 0)
        triple = (serial, vendor, orig)
        conns = ctx.client.connections
        for cid, conn in list(conns.items()):
            if conn.triple == triple:
                del conns[cid]
                return reply(FORWARD_CLOSE, data=struct.pack("<HHIBB", serial, vendor, orig, 0, 0))
        raise CipError(CONNECTION_FAILURE, (EXT_CONNECTION_NOT_FOUND,),
                       data=struct.pack("<HHIBB", serial, vendor, orig, 0, 0))

    def _unconnected_send(self, data: bytes, ctx: RequestContext) -> bytes:
        _prio, _ticks, size = struct.unpack_from("<BBH", data, 0)
        embedded = data[4: 4 + size]
        if len(embedded) != size:
            raise CipError(NOT_ENOUGH_DATA)
        pos = 4 + size + (size & 1)
        if len(data) < pos + 2:
            raise CipError(NOT_ENOUGH_DATA)
        words = data[pos]
        route = parse_path(data, pos + 2, words)
        try:
            if self._check_route(route):
                raise CipError(CONNECTION_FAILURE, (EXT_INVALID_SEGMENT,))
        except CipError as err:
            raise CipError(err.status, err.ext, data=bytes((words, 0))) from None
        return self.execute(embedded, ctx, nested=False)
