"""Logix data types as the simulated controller stores and describes them.

Every tag value lives in the server as raw little-endian bytes, laid out the way a
ControlLogix lays them out, so a read is a slice and a client write is a byte copy.
This module knows how to turn Python values into those bytes and back, and how to
describe structures (Logix STRING and user-defined types) as CIP templates
(class 0x6C) so that a client can upload their definitions.
"""

from __future__ import annotations

import math
import numbers
import struct
import zlib
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

__all__ = [
    "AtomicType",
    "StructType",
    "LogixUDT",
    "ATOMIC_TYPES",
    "DWORD",
    "STRING_TYPE",
    "resolve_type",
]

STRUCT_TYPE_PREFIX = b"\xa0\x02"  # "abbreviated structure type" in read/write tag services
STRING_LEN = 82  # characters in a Logix STRING
STRING_TEMPLATE_ID = 0x0FCE  # template instance and structure handle of the built-in STRING
FIRST_UDT_TEMPLATE_ID = 0x0100  # user templates live in 0x100..0xEFF
LAST_UDT_TEMPLATE_ID = 0x0EFF


def _is_bool_like(value: Any) -> bool:
    """bool, int and numpy's bool (which is not a numbers.Integral)."""
    kind = type(value)
    return isinstance(value, numbers.Integral) or (kind.__module__ == "numpy" and "bool" in kind.__name__)


is_bool_like = _is_bool_like


@dataclass(frozen=True)
class AtomicType:
    """An elementary CIP type (BOOL, SINT, ..., REAL)."""

    name: str
    code: int
    size: int
    fmt: str  # struct format character, '' for BOOL

    @property
    def align(self) -> int:
        return self.size

    @property
    def type_bytes(self) -> bytes:
        """The type field that prefixes read replies and write requests."""
        return struct.pack("<H", self.code)

    def default(self) -> Any:
        if self.name == "BOOL":
            return False
        return 0.0 if self.fmt in "fd" else 0

    def encode(self, value: Any) -> bytes:
        if self.name == "BOOL":
            if not _is_bool_like(value):
                raise TypeError(f"BOOL needs a bool, got {type(value).__name__}")
            return b"\x01" if value else b"\x00"
        if self.fmt in "fd":
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"{self.name} needs a number, got {type(value).__name__}")
            value = float(value)
            if self.fmt == "f" and math.isfinite(value) and abs(value) > 3.4028234663852886e38:
                raise ValueError(f"{value!r} is out of range for REAL")
            return struct.pack("<" + self.fmt, value)
        if not isinstance(value, numbers.Integral):
            raise TypeError(f"{self.name} needs an int, got {type(value).__name__}")
        value = int(value)
        try:
            return struct.pack("<" + self.fmt, value)
        except struct.error:
            raise ValueError(f"{value!r} is out of range for {self.name}") from None

    def decode(self, data: bytes, offset: int = 0) -> Any:
        if self.name == "BOOL":
            return data[offset] != 0
        return struct.unpack_from("<" + self.fmt, data, offset)[0]


ATOMIC_TYPES: Dict[str, AtomicType] = {
    t.name: t
    for t in (
        AtomicType("BOOL", 0xC1, 1, ""),
        AtomicType("SINT", 0xC2, 1, "b"),
        AtomicType("INT", 0xC3, 2, "h"),
        AtomicType("DINT", 0xC4, 4, "i"),
        AtomicType("LINT", 0xC5, 8, "q"),
        AtomicType("USINT", 0xC6, 1, "B"),
        AtomicType("UINT", 0xC7, 2, "H"),
        AtomicType("UDINT", 0xC8, 4, "I"),
        AtomicType("ULINT", 0xC9, 8, "Q"),
        AtomicType("REAL", 0xCA, 4, "f"),
        AtomicType("LREAL", 0xCB, 8, "d"),
    )
}

# A Logix BOOL[n] array is stored and served as DWORD[n/32]: 32 bits per element.
DWORD = AtomicType("DWORD", 0xD3, 4, "I")


@dataclass(frozen=True)
class Member:
    """One member of a structure, at a byte offset of its parent."""

    name: str
    type: Union[AtomicType, "StructType"]
    offset: int
    count: int = 0  # array length, 0 for a scalar member
    bit: Optional[int] = None  # BOOL members are bits of a hidden SINT host
    hidden: bool = False

    @property
    def size(self) -> int:
        return self.type.size * max(self.count, 1)


class StructType:
    """A structure: the built-in STRING or a user-defined type (see :class:`LogixUDT`)."""

    def __init__(self, name: str, members: List[Member], size: int, align: int,
                 handle: int, is_string: bool = False):
        self.name = name
        self.members = members
        self.size = size
        self.align = align
        self.handle = handle
        self.is_string = is_string
        self._by_name = {m.name.casefold(): m for m in members}

    def __repr__(self) -> str:
        return f"StructType({self.name!r}, size={self.size})"

    @property
    def type_bytes(self) -> bytes:
        return STRUCT_TYPE_PREFIX + struct.pack("<H", self.handle)

    def member(self, name: str) -> Optional[Member]:
        return self._by_name.get(name.casefold())

    def public_members(self) -> List[Member]:
        return [m for m in self.members if not m.hidden]

    def nested_structs(self) -> List["StructType"]:
        return [m.type for m in self.members if isinstance(m.type, StructType)]

    def default(self) -> Any:
        if self.is_string:
            return ""
        return {m.name: _member_default(m) for m in self.public_members()}

    def encode(self, value: Any) -> bytes:
        if self.is_string:
            if not isinstance(value, str):
                raise TypeError(f"STRING needs a str, got {type(value).__name__}")
            try:
                raw = value.encode("iso-8859-1")
            except UnicodeEncodeError:
                raise ValueError(f"STRING {value!r} is not Latin-1 text") from None
            if len(raw) > STRING_LEN:
                raise ValueError(f"STRING is {len(raw)} characters long, at most {STRING_LEN} fit")
            return struct.pack("<i", len(raw)) + raw.ljust(self.size - 4, b"\x00")
        if not isinstance(value, dict):
            raise TypeError(f"{self.name} needs a dict of members, got {type(value).__name__}")
        unknown = [k for k in value if self.member(k) is None or self.member(k).hidden]
        if unknown:
            raise ValueError(f"{self.name} has no member {unknown[0]!r}")
        buf = bytearray(self.size)
        given = {k.casefold(): v for k, v in value.items()}
        for m in self.public_members():
            v = given.get(m.name.casefold(), _member_default(m))
            try:
                _write_member(buf, m, v)
            except (TypeError, ValueError) as err:
                raise type(err)(f"member {m.name!r}: {err}") from None
        return bytes(buf)

    def decode(self, data: bytes, offset: int = 0) -> Any:
        if self.is_string:
            n = struct.unpack_from("<i", data, offset)[0]
            n = min(max(n, 0), STRING_LEN)
            return bytes(data[offset + 4: offset + 4 + n]).decode("iso-8859-1")
        return {m.name: _read_member(data, offset, m) for m in self.public_members()}

    # -- template object (class 0x6C) -------------------------------------------------
    def template_definition(self, type_code_of) -> bytes:
        """The bytes served by Template Read: member descriptors, then names.

        ``type_code_of(struct_type)`` gives the template instance id of a nested struct
        in the serving controller.
        """
        out = bytearray()
        for m in self.members:
            if m.bit is not None:
                info, code = m.bit, m.type.code
            elif isinstance(m.type, StructType):
                info, code = m.count, 0x8000 | type_code_of(m.type)
            else:
                info, code = m.count, m.type.code
            out += struct.pack("<HHI", info, code, m.offset)
        out += f"{self.name};n\x00".encode("ascii")
        for m in self.members:
            out += m.name.encode("ascii") + b"\x00"
        return bytes(out)


def _member_default(m: Member) -> Any:
    d = m.type.default()
    return [d] * m.count if m.count else d


def _write_member(buf: bytearray, m: Member, value: Any) -> None:
    if m.bit is not None:
        if not _is_bool_like(value):
            raise TypeError(f"BOOL needs a bool, got {type(value).__name__}")
        if value:
            buf[m.offset] |= 1 << m.bit
        else:
            buf[m.offset] &= ~(1 << m.bit) & 0xFF
        return
    if m.count:
        if not isinstance(value, (list, tuple)) or len(value) != m.count:
            raise ValueError(f"needs a list of {m.count} values")
        raw = b"".join(m.type.encode(v) for v in value)
    else:
        raw = m.type.encode(value)
    buf[m.offset: m.offset + len(raw)] = raw


def _read_member(data: bytes, base: int, m: Member) -> Any:
    if m.bit is not None:
        return bool(data[base + m.offset] & (1 << m.bit))
    if m.count:
        size = m.type.size
        return [m.type.decode(data, base + m.offset + i * size) for i in range(m.count)]
    return m.type.decode(data, base + m.offset)


def _align(offset: int, align: int) -> int:
    return (offset + align - 1) // align * align


def _build_string_type() -> StructType:
    members = [
        Member("LEN", ATOMIC_TYPES["DINT"], 0),
        Member("DATA", ATOMIC_TYPES["SINT"], 4, count=STRING_LEN),
    ]
    return StructType("STRING", members, size=_align(4 + STRING_LEN, 4), align=4,
                      handle=STRING_TEMPLATE_ID, is_string=True)


STRING_TYPE = _build_string_type()

MemberSpec = Union[Tuple[str, Any], Tuple[str, Any, int]]


class LogixUDT:
    """A user-defined structure type, laid out like Logix Designer lays it out.

    >>> Station = LogixUDT("Station", [("Running", "BOOL"), ("Count", "DINT"),
    ...                                ("Rate", "REAL"), ("Temps", "REAL", 3), ("Name", "STRING")])

    A member is ``(name, type)`` or ``(name, type, array_length)``; a type is an atomic
    type name, ``"STRING"`` or another :class:`LogixUDT`. Consecutive BOOL members are
    packed as bits of a hidden SINT, as in a real controller. BOOL array members are
    not supported.
    """

    def __init__(self, name: str, members: Sequence[MemberSpec]):
        _check_name(name, "UDT name")
        if not members:
            raise ValueError(f"UDT {name!r}: needs at least one member")
        self.name = name
        self.struct = self._layout(name, members)

    def __repr__(self) -> str:
        return f"LogixUDT({self.name!r}, size={self.struct.size})"

    @staticmethod
    def _layout(udt_name: str, specs: Sequence[MemberSpec]) -> StructType:
        members: List[Member] = []
        seen = set()
        offset = 0
        max_align = 4
        host: Optional[Tuple[int, int]] = None  # (offset, next free bit) of the open BOOL host
        for index, spec in enumerate(specs):
            if not isinstance(spec, (tuple, list)) or len(spec) not in (2, 3):
                raise ValueError(f"UDT {udt_name!r}: member #{index} must be (name, type[, length])")
            mname, mtype = spec[0], spec[1]
            count = spec[2] if len(spec) == 3 else 0
            _check_name(mname, f"UDT {udt_name!r} member name")
            if mname.casefold() in seen:
                raise ValueError(f"UDT {udt_name!r}: member {mname!r} appears twice")
            seen.add(mname.casefold())
            try:
                typ = resolve_type(mtype)
            except (TypeError, ValueError) as err:
                raise ValueError(f"UDT {udt_name!r} member {mname!r}: {err}") from None
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise ValueError(f"UDT {udt_name!r} member {mname!r}: bad array length {count!r}")
            if typ is ATOMIC_TYPES["BOOL"]:
                if count:
                    raise ValueError(f"UDT {udt_name!r} member {mname!r}: BOOL arrays in UDTs are not supported")
                if host is None or host[1] == 8:
                    host = (offset, 0)
                    members.append(Member(f"ZZZZZZZZZZ{udt_name}{index}", ATOMIC_TYPES["SINT"],
                                          offset, hidden=True))
                    offset += 1
                members.append(Member(mname, typ, host[0], bit=host[1]))
                host = (host[0], host[1] + 1)
                continue
            host = None
            offset = _align(offset, typ.align)
            members.append(Member(mname, typ, offset, count=count))
            offset += typ.size * max(count, 1)
            max_align = max(max_align, typ.align)
        size = _align(max(offset, 1), max_align)
        digest = zlib.crc32(repr([(m.name, m.type.name, m.offset, m.count, m.bit) for m in members]).encode())
        handle = (digest ^ (digest >> 16)) & 0xFFFF
        return StructType(udt_name, members, size=size, align=max_align, handle=handle)


def resolve_type(data_type: Any) -> Union[AtomicType, StructType]:
    """Map a user-facing type (``"DINT"``, ``"STRING"``, a :class:`LogixUDT`) to its type object."""
    if isinstance(data_type, LogixUDT):
        return data_type.struct
    if isinstance(data_type, StructType):
        return data_type
    if not isinstance(data_type, str):
        raise TypeError(f"data type must be a type name or a LogixUDT, got {type(data_type).__name__}")
    key = data_type.strip().upper()
    if key == "STRING":
        return STRING_TYPE
    if key in ATOMIC_TYPES:
        return ATOMIC_TYPES[key]
    raise ValueError(f"unknown data type {data_type!r} (known: {', '.join(ATOMIC_TYPES)}, STRING or a LogixUDT)")


def _check_name(name: Any, what: str) -> None:
    if not isinstance(name, str) or not name or len(name) > 40 or not (
        (name[0].isascii() and (name[0].isalpha() or name[0] == "_"))
        and all(c.isascii() and (c.isalnum() or c == "_") for c in name)
    ):
        raise ValueError(f"{what} {name!r} is not a valid Logix name "
                         "(letters, digits and _, at most 40, not starting with a digit)")


check_name = _check_name
