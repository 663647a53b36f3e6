"""The simulated controller's tag database: symbols, scopes, templates, addressing.

A :class:`TagDatabase` is built once from the ``{name: LogixTag}`` mapping given to the
server. It assigns symbol instance ids (controller scope and one namespace per program,
as a Logix controller does), registers the structure templates the tags use, resolves
CIP request paths (symbolic names, symbol instance ids, array elements, structure
members) to byte ranges, and encodes and decodes Python values.

All methods that touch values expect the caller to hold :attr:`TagDatabase.lock`,
except the ``api_*`` methods, which take it themselves.
"""

from __future__ import annotations

import re
import struct
import threading
import zlib
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from .status import (
    ATTRIBUTE_NOT_SUPPORTED,
    EXT_BEYOND_END,
    EXT_OUT_OF_RANGE,
    EXT_TYPE_MISMATCH,
    GENERAL_ERROR,
    NOT_ENOUGH_DATA,
    PATH_DESTINATION_UNKNOWN,
    PATH_SEGMENT_ERROR,
    PERMISSION_DENIED,
    TOO_MUCH_DATA,
    CipError,
)
from .types import (
    ATOMIC_TYPES,
    DWORD,
    FIRST_UDT_TEMPLATE_ID,
    LAST_UDT_TEMPLATE_ID,
    STRING_TEMPLATE_ID,
    STRING_TYPE,
    AtomicType,
    LogixUDT,
    StructType,
    check_name,
    is_bool_like,
    resolve_type,
)

__all__ = ["LogixTag", "TagDatabase", "Ref"]

TypeObj = Union[AtomicType, StructType]

BASE_TAG_BIT = 1 << 26  # software control bit: a base tag, not an alias
ACCESS_READ_WRITE = 0
ACCESS_READ_ONLY = 2
SYMBOL_SYSTEM_BIT = 0x1000
SYMBOL_STRUCT_BIT = 0x8000
SYMBOL_ONE_DIM = 0x2000
_INTEGER_FORMATS = set("bBhHiIqQ")


@dataclass
class LogixTag:
    """One controller tag: its type and initial value.

    ``data_type`` is an atomic type name (``"BOOL"``, ``"SINT"``, ``"INT"``, ``"DINT"``,
    ``"LINT"``, ``"USINT"``, ``"UINT"``, ``"UDINT"``, ``"ULINT"``, ``"REAL"``,
    ``"LREAL"``), ``"STRING"`` or a :class:`~plant.enip.types.LogixUDT`. A list value
    makes a one-dimensional array of that length (a BOOL array needs a multiple of 32
    elements and is served as DWORDs, like Logix does). ``None`` means the type's zero
    value. ``read_only=True`` sets External Access to Read Only: clients may read the
    tag but their writes are refused.
    """

    data_type: Union[str, LogixUDT]
    value: Any = None
    read_only: bool = False


@dataclass
class Symbol:
    name: str  # the key the plant uses, e.g. "Program:MainProgram.StepNo"
    local: str  # the name inside its scope, e.g. "StepNo"
    program: Optional[str]
    type: TypeObj  # element type (DWORD for a BOOL array)
    count: int  # array length in elements, 0 for a scalar
    bool_array: bool
    read_only: bool
    data: bytearray = field(repr=False)
    instance_id: int = 0

    @property
    def dims(self) -> int:
        """The array dimension the symbol list reports (bits for a BOOL array)."""
        return self.count * 32 if self.bool_array else self.count

    def encode(self, value: Any) -> bytes:
        if self.bool_array:
            if not isinstance(value, (list, tuple)) or len(value) != self.dims:
                raise ValueError(f"needs a list of {self.dims} bools")
            words = []
            for w in range(self.count):
                bits = 0
                for b in range(32):
                    v = value[w * 32 + b]
                    if not is_bool_like(v):
                        raise TypeError(f"BOOL needs a bool, got {type(v).__name__}")
                    if v:
                        bits |= 1 << b
                words.append(struct.pack("<I", bits))
            return b"".join(words)
        if self.count:
            if not isinstance(value, (list, tuple)) or len(value) != self.count:
                raise ValueError(f"needs a list of {self.count} values")
            return b"".join(self.type.encode(v) for v in value)
        return self.type.encode(value)

    def decode(self) -> Any:
        if self.bool_array:
            return [bool(self.data[i // 8] & (1 << (i % 8))) for i in range(self.dims)]
        if self.count:
            size = self.type.size
            return [self.type.decode(self.data, i * size) for i in range(self.count)]
        return self.type.decode(self.data, 0)


@dataclass
class Ref:
    """A resolved request path: a byte range of one symbol, seen as ``type`` elements."""

    symbol: Symbol
    type: TypeObj
    offset: int
    avail: int  # elements addressable from offset to the end of the array (1 for a scalar)
    array_len: int = 0  # >0 when the path names a whole array (no index given)
    bit: Optional[int] = None  # BOOL member of a structure: bit of the byte at offset


@dataclass
class ListEntry:
    instance_id: int
    name: str
    symbol_type: int
    dims: int = 0
    byte_size: int = 0
    software_control: int = 0
    access: int = ACCESS_READ_WRITE


class Scope:
    """One symbol namespace: the controller, or one program."""

    def __init__(self, name: Optional[str]):
        self.name = name
        self.by_name: Dict[str, Symbol] = {}
        self.by_id: Dict[int, Symbol] = {}
        self.listing: List[ListEntry] = []
        self._next_id = 0

    def next_id(self, name: str) -> int:
        # deterministic ids with small gaps, as a controller's are, so that clients
        # must page by "last id + 1" rather than by counting
        self._next_id += 1 + zlib.crc32(name.encode()) % 4
        return self._next_id


_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d+)\])?")


class TagDatabase:
    def __init__(self, tags: Mapping[str, LogixTag], task_name: str = "MainTask",
                 routine_name: str = "MainRoutine"):
        if not isinstance(tags, Mapping):
            raise TypeError("tags must be a mapping of tag name to LogixTag")
        self.lock = threading.RLock()
        self.symbols: Dict[str, Symbol] = {}
        self.controller = Scope(None)
        self.programs: Dict[str, Scope] = {}
        self.templates: Dict[int, StructType] = {}
        self._template_ids: Dict[int, int] = {}  # id(StructType) -> template instance id
        self._template_names: Dict[str, StructType] = {}
        self._register_template(STRING_TYPE, STRING_TEMPLATE_ID)

        for name, tag in tags.items():
            sym = self._build_symbol(name, tag)
            self.symbols[name] = sym
            scope = self.controller
            if sym.program is not None:
                scope = self.programs.get(sym.program.casefold())
                if scope is None:
                    scope = self.programs[sym.program.casefold()] = Scope(sym.program)
            if sym.local.casefold() in scope.by_name:
                raise ValueError(f"tag {name!r}: another tag in the same scope has this name "
                                 "(Logix names are case-insensitive)")
            sym.instance_id = scope.next_id(sym.local)
            scope.by_name[sym.local.casefold()] = sym
            scope.by_id[sym.instance_id] = sym
            scope.listing.append(self._entry_for(sym))

        # the non-tag symbols a controller lists too; clients use them to find programs
        for prog in self.programs.values():
            self.controller.listing.append(ListEntry(
                self.controller.next_id(prog.name), f"Program:{prog.name}", SYMBOL_SYSTEM_BIT | 0x68))
            prog.listing.append(ListEntry(
                prog.next_id(routine_name), f"Routine:{routine_name}", SYMBOL_SYSTEM_BIT | 0x6D))
        self.controller.listing.append(ListEntry(
            self.controller.next_id(task_name), f"Task:{task_name}", SYMBOL_SYSTEM_BIT | 0x70))

    def edit(self, name: str, tag: Optional[LogixTag]) -> None:
        """An online edit of an existing tag: None deletes it (its name and instance id stop resolving), a LogixTag
        redefines it (another type or value) under the same instance id. Raises KeyError, TypeError, ValueError."""
        with self.lock:
            old = self.symbols[name]
            scope = self.controller if old.program is None else self.programs[old.program.casefold()]
            new = None if tag is None else self._build_symbol(name, tag)
            del scope.by_name[old.local.casefold()]
            del scope.by_id[old.instance_id]
            scope.listing = [e for e in scope.listing if e.instance_id != old.instance_id]
            if new is None:
                del self.symbols[name]
                return
            new.instance_id = old.instance_id
            self.symbols[name] = scope.by_name[new.local.casefold()] = scope.by_id[new.instance_id] = new
            scope.listing.append(self._entry_for(new))

    # -- building ---------------------------------------------------------------------
    def _build_symbol(self, name: Any, tag: Any) -> Symbol:
        if not isinstance(name, str):
            raise TypeError(f"tag name {name!r} must be a str")
        if not isinstance(tag, LogixTag):
            raise TypeError(f"tag {name!r}: value must be a LogixTag, got {type(tag).__name__}")
        program, local = None, name
        if name.startswith("Program:"):
            prog_part, dot, local = name[len("Program:"):].partition(".")
            if not dot:
                raise ValueError(f"tag {name!r}: a program tag is named 'Program:<program>.<tag>'")
            check_name(prog_part, f"tag {name!r}: program name")
            program = prog_part
        check_name(local, f"tag {name!r}: name")
        try:
            typ = resolve_type(tag.data_type)
        except (TypeError, ValueError) as err:
            raise ValueError(f"tag {name!r}: {err}") from None
        self._register_struct_tree(typ, name)

        value = tag.value
        is_array = isinstance(value, (list, tuple))
        bool_array = is_array and typ is ATOMIC_TYPES["BOOL"]
        if is_array:
            if not value:
                raise ValueError(f"tag {name!r}: an array needs at least one element")
            if bool_array and len(value) % 32:
                raise ValueError(f"tag {name!r}: a BOOL array needs a multiple of 32 elements, "
                                 f"got {len(value)}")
        count = (len(value) // 32 if bool_array else len(value)) if is_array else 0
        sym = Symbol(name=name, local=local, program=program, type=DWORD if bool_array else typ,
                     count=count, bool_array=bool_array, read_only=bool(tag.read_only),
                     data=bytearray())
        if value is None:
            value = typ.default()
        try:
            sym.data = bytearray(sym.encode(value))
        except (TypeError, ValueError) as err:
            raise ValueError(f"tag {name!r}: bad initial value: {err}") from None
        return sym

    def _register_struct_tree(self, typ: TypeObj, tag_name: str) -> None:
        if not isinstance(typ, StructType) or id(typ) in self._template_ids:
            return
        for nested in typ.nested_structs():
            self._register_struct_tree(nested, tag_name)
        other = self._template_names.get(typ.name.casefold())
        if other is not None and other is not typ:
            raise ValueError(f"tag {tag_name!r}: two different UDTs are named {typ.name!r}")
        tid = FIRST_UDT_TEMPLATE_ID + len(self.templates) - 1  # STRING is registered first
        if tid > LAST_UDT_TEMPLATE_ID:
            raise ValueError("too many UDTs")
        self._register_template(typ, tid)

    def _register_template(self, typ: StructType, tid: int) -> None:
        self.templates[tid] = typ
        self._template_ids[id(typ)] = tid
        self._template_names[typ.name.casefold()] = typ

    def template_id(self, typ: StructType) -> int:
        return self._template_ids[id(typ)]

    def _entry_for(self, sym: Symbol) -> ListEntry:
        if isinstance(sym.type, StructType):
            symbol_type = SYMBOL_STRUCT_BIT | self.template_id(sym.type)
        else:
            symbol_type = sym.type.code
        if sym.count:
            symbol_type |= SYMBOL_ONE_DIM
        return ListEntry(sym.instance_id, sym.local, symbol_type, dims=sym.dims,
                         byte_size=sym.type.size, software_control=BASE_TAG_BIT,
                         access=ACCESS_READ_ONLY if sym.read_only else ACCESS_READ_WRITE)

    # -- symbol list (class 0x6B, service 0x55) ---------------------------------------
    def scope(self, program: Optional[str]) -> Optional[Scope]:
        if program is None:
            return self.controller
        return self.programs.get(program.casefold())

    @staticmethod
    def encode_entry(entry: ListEntry, attrs: Iterable[int]) -> bytes:
        out = [struct.pack("<I", entry.instance_id)]
        for attr in attrs:
            if attr == 1:
                raw = entry.name.encode("ascii")
                out.append(struct.pack("<H", len(raw)) + raw)
            elif attr == 2:
                out.append(struct.pack("<H", entry.symbol_type))
            elif attr == 3:
                out.append(struct.pack("<I", 0x0020_0000 + entry.instance_id * 0x40))
            elif attr == 5:
                out.append(struct.pack("<I", 0x1F00_0000 + entry.instance_id * 0x100))
            elif attr == 6:
                out.append(struct.pack("<I", entry.software_control))
            elif attr == 7:
                out.append(struct.pack("<H", entry.byte_size))
            elif attr == 8:
                out.append(struct.pack("<III", entry.dims, 0, 0))
            elif attr == 10:
                out.append(struct.pack("<B", entry.access))
            else:
                raise CipError(ATTRIBUTE_NOT_SUPPORTED, message=f"symbol attribute {attr}")
        return b"".join(out)

    # -- path resolution --------------------------------------------------------------
    def resolve(self, segs: List[tuple]) -> Ref:
        """Resolve parsed path segments (see ``cip.parse_path``) to a byte range."""
        if not segs:
            raise CipError(PATH_SEGMENT_ERROR)
        i = 0
        scope = self.controller
        first = segs[0]
        if first[0] == "symbol" and first[1][:8].casefold() == "program:":
            scope = self.programs.get(first[1][8:].casefold())
            if scope is None or len(segs) < 2:
                raise CipError(PATH_SEGMENT_ERROR)
            i = 1
        kind, val = segs[i][0], segs[i][1]
        if kind == "class":
            if val != 0x6B or i + 1 >= len(segs) or segs[i + 1][0] != "instance":
                raise CipError(PATH_DESTINATION_UNKNOWN)
            sym = scope.by_id.get(segs[i + 1][1])
            if sym is None:
                raise CipError(PATH_DESTINATION_UNKNOWN)
            i += 2
        elif kind == "symbol":
            sym = scope.by_name.get(val.casefold())
            if sym is None:
                raise CipError(PATH_SEGMENT_ERROR)
            i += 1
        else:
            raise CipError(PATH_SEGMENT_ERROR)

        typ: TypeObj = sym.type
        offset, avail, array_len, bit = 0, 1, 0, None
        if sym.count:
            i, offset, avail, array_len = self._index(segs, i, sym.count, typ.size, 0)
        while i < len(segs):
            kind, val = segs[i][0], segs[i][1]
            if kind != "symbol" or not isinstance(typ, StructType) or bit is not None or array_len:
                raise CipError(PATH_SEGMENT_ERROR)
            member = typ.member(val)
            if member is None:
                raise CipError(PATH_SEGMENT_ERROR)
            i += 1
            offset += member.offset
            typ = member.type
            if member.bit is not None:
                bit, avail = member.bit, 1
            elif member.count:
                i, offset, avail, array_len = self._index(segs, i, member.count, typ.size, offset)
            else:
                avail = 1
        return Ref(sym, typ, offset, avail, array_len, bit)

    @staticmethod
    def _index(segs, i, count, size, offset):
        if i < len(segs) and segs[i][0] == "element":
            idx = segs[i][1]
            if idx >= count or (i + 1 < len(segs) and segs[i + 1][0] == "element"):
                raise CipError(PATH_DESTINATION_UNKNOWN)  # out of range, or a 2nd dimension
            return i + 1, offset + idx * size, count - idx, 0
        return i, offset, count, count

    # -- tag services -----------------------------------------------------------------
    @staticmethod
    def check_elements(ref: Ref, elements: int) -> int:
        """Byte size of ``elements`` elements at ``ref``, or the Logix error."""
        if elements < 1:
            raise CipError(GENERAL_ERROR, (EXT_OUT_OF_RANGE,))
        if elements > ref.avail:
            raise CipError(GENERAL_ERROR, (EXT_BEYOND_END,))
        return 1 if ref.bit is not None else elements * ref.type.size

    @staticmethod
    def read(ref: Ref, elements: int, byte_offset: int = 0, limit: Optional[int] = None
             ) -> Tuple[bytes, bytes, bool]:
        """(type field, data, more follows) for a read of ``elements`` from ``byte_offset``."""
        total = TagDatabase.check_elements(ref, elements)
        if ref.bit is not None:
            value = ref.symbol.data[ref.offset] >> ref.bit & 1
            return ATOMIC_TYPES["BOOL"].type_bytes, bytes([value]), False
        if byte_offset > total:
            raise CipError(GENERAL_ERROR, (EXT_OUT_OF_RANGE,))
        end = total
        if limit is not None and total - byte_offset > limit:
            step = ref.type.size if ref.type.size <= limit else 1
            end = byte_offset + max(limit // step * step, 1)
        start = ref.offset + byte_offset
        data = bytes(ref.symbol.data[start: ref.offset + end])
        return ref.type.type_bytes, data, end < total

    @staticmethod
    def write(ref: Ref, type_field: bytes, elements: int, data: bytes, byte_offset: int = 0,
              fragmented: bool = False) -> bool:
        """Apply a client write. Returns True when the tag's value is complete (the last
        fragment of a fragmented write, or any plain write)."""
        if ref.symbol.read_only:
            raise CipError(PERMISSION_DENIED)
        expected = ATOMIC_TYPES["BOOL"].type_bytes if ref.bit is not None else ref.type.type_bytes
        if type_field != expected:
            raise CipError(GENERAL_ERROR, (EXT_TYPE_MISMATCH,))
        total = TagDatabase.check_elements(ref, elements)
        if byte_offset + len(data) > total:
            raise CipError(TOO_MUCH_DATA)
        if not data or (not fragmented and len(data) < total):
            raise CipError(NOT_ENOUGH_DATA)
        buf = ref.symbol.data
        if ref.bit is not None:
            if data[0]:
                buf[ref.offset] |= 1 << ref.bit
            else:
                buf[ref.offset] &= ~(1 << ref.bit) & 0xFF
            return True
        if ref.type is ATOMIC_TYPES["BOOL"]:
            data = bytes(1 if b else 0 for b in data)
        start = ref.offset + byte_offset
        buf[start: start + len(data)] = data
        return byte_offset + len(data) >= total

    @staticmethod
    def read_modify_write(ref: Ref, or_mask: bytes, and_mask: bytes) -> None:
        if ref.symbol.read_only:
            raise CipError(PERMISSION_DENIED)
        typ = ref.type
        if (ref.bit is not None or not isinstance(typ, AtomicType)
                or typ.fmt not in _INTEGER_FORMATS or len(or_mask) != typ.size):
            raise CipError(GENERAL_ERROR, (EXT_TYPE_MISMATCH,))
        buf = ref.symbol.data
        old = int.from_bytes(buf[ref.offset: ref.offset + typ.size], "little")
        new = (old & int.from_bytes(and_mask, "little")) | int.from_bytes(or_mask, "little")
        buf[ref.offset: ref.offset + typ.size] = new.to_bytes(typ.size, "little")

    # -- the plant's API ----------------------------------------------------------------
    def _api_ref(self, name: str) -> Ref:
        """Resolve a name the plant uses: a tag key, or one with [index] and .member parts."""
        if not isinstance(name, str):
            raise TypeError(f"tag name must be a str, got {type(name).__name__}")
        sym = self.symbols.get(name)
        if sym is not None:
            return Ref(sym, sym.type, 0, max(sym.count, 1), sym.count)
        segs: List[tuple] = []
        scope, rest = self.controller, name
        if name.startswith("Program:"):
            head, _, rest = name.partition(".")
            scope = self.scope(head[len("Program:"):])
            segs.append(("symbol", head))
        for part in rest.split("."):
            m = _PART.fullmatch(part)
            if m is None or scope is None:
                raise KeyError(name)
            segs.append(("symbol", m.group(1)))
            if m.group(2) is not None:
                segs.append(("element", int(m.group(2))))
        lead = 1 if name.startswith("Program:") else 0
        base = scope.by_name.get(segs[lead][1].casefold())
        if base is not None and base.bool_array and len(segs) == lead + 2 and segs[lead + 1][0] == "element":
            idx = segs[lead + 1][1]  # a BOOL array element is a bit in the plant's view, as in Logix
            if idx >= base.dims:
                raise KeyError(name)
            return Ref(base, ATOMIC_TYPES["BOOL"], idx // 8, 1, 0, idx % 8)
        try:
            return self.resolve(segs)
        except CipError:
            raise KeyError(name) from None

    @staticmethod
    def _encode_at(ref: Ref, value: Any) -> bytes:
        if ref.bit is not None:
            return ATOMIC_TYPES["BOOL"].encode(value)
        if ref.array_len:
            if ref.offset == 0 and ref.type is ref.symbol.type and ref.symbol.count == ref.array_len:
                return ref.symbol.encode(value)
            if not isinstance(value, (list, tuple)) or len(value) != ref.array_len:
                raise ValueError(f"needs a list of {ref.array_len} values")
            return b"".join(ref.type.encode(v) for v in value)
        return ref.type.encode(value)

    @staticmethod
    def _decode_at(ref: Ref) -> Any:
        data = ref.symbol.data
        if ref.bit is not None:
            return bool(data[ref.offset] >> ref.bit & 1)
        if ref.array_len:
            if ref.offset == 0 and ref.type is ref.symbol.type and ref.symbol.count == ref.array_len:
                return ref.symbol.decode()
            size = ref.type.size
            return [ref.type.decode(data, ref.offset + i * size) for i in range(ref.array_len)]
        return ref.type.decode(data, ref.offset)

    @staticmethod
    def _store(ref: Ref, raw: bytes) -> None:
        buf = ref.symbol.data
        if ref.bit is not None:
            if raw[0]:
                buf[ref.offset] |= 1 << ref.bit
            else:
                buf[ref.offset] &= ~(1 << ref.bit) & 0xFF
        else:
            buf[ref.offset: ref.offset + len(raw)] = raw

    def api_get(self, name: str) -> Any:
        with self.lock:
            return self._decode_at(self._api_ref(name))

    def api_set_many(self, values: Mapping[str, Any]) -> None:
        planned = []
        with self.lock:
            for name, value in values.items():
                ref = self._api_ref(name)
                try:
                    planned.append((ref, self._encode_at(ref, value)))
                except (TypeError, ValueError) as err:
                    raise type(err)(f"tag {name!r}: {err}") from None
            for ref, raw in planned:
                self._store(ref, raw)

    def symbol_value(self, name: str) -> Any:
        with self.lock:
            return self.symbols[name].decode()
