"""S7 addresses, data types and read planning, and DB layouts imported as CSV (no PLC here: the driver in
collectors/drivers/s7.py runs the plan).

The plan (see S7Plan): items grouped by area and DB, sorted by offset, neighbours merged into one range when the
gap between them is at most MERGE_GAP bytes (the gap then costs no more than the 12 + 4 bytes a separate item
costs) and the range stays within one PDU's payload (pdu - 18 bytes: 462 at 480). Ranges are then packed, first
fit by decreasing size, into requests that respect the PDU both ways (request 14 + 12 per item, reply 14 + 4 +
even length per item) and at most 20 items. A request with one range is one read_area; with several it is one
read_multi_vars (one S7 PDU; the library's own optimizer finds nothing left to merge and sends one packet). A
range longer than the payload (a STRING[254] on a 240-byte PDU) is one read_area, which the library splits.

Measured against snap7's server on 127.0.0.1 (2 cores, shared; test_s7_driver.py::test_bench_100_tag_plans prints
the current figures), per read cycle of 100 tags:
  100 REALs back to back in one DB  -> 1 range of 400 bytes, 1 read_area                  0.2-0.45 ms
  100 REALs in 10 ranges over 3 DBs -> 1 read_multi_vars                                  0.5-1.0 ms
  the same 10 ranges, one read_area each                                                   0.7-0.9 ms
  the same 100 tags, one request per tag (no merging)                                      ~13 ms
  with 2 ms of PLC answer time per request: 1 read_multi_vars 2.7-3.3 ms, 10 read_area 24-25 ms
On loopback the Python work per request hides the difference between one multi-variable request and ten single
ones; with any real answer time the round trips are what costs. So: merge first, then pack what is left into
multi-variable requests.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field

from snap7.type import Area

from collectors.base import ConfigError, DiscoveredTag

CPU_TYPES = {"S7-300": 2, "S7-400": 3, "S7-1200": 1, "S7-1500": 1}  # cpu type -> default slot
DEFAULT_CPU = "S7-1200"
DEFAULT_PDU = 480
MAX_ITEMS = 20  # items per read_multi_vars request (python-snap7's MAX_VARS; S7-300 CPUs allow about as many)
REQUEST_OVERHEAD = 14  # S7 header 12 + function and item count
ITEM_REQUEST = 12  # one address specification
ITEM_REPLY = 4  # return code, transport size, length
READ_OVERHEAD = 18  # a single read's reply: header 12, parameters 2, item header 4
MERGE_GAP = ITEM_REQUEST + ITEM_REPLY  # bytes of gap cheaper to read than a separate item
RECHECK_CYCLES = 100  # retry DBs and addresses found missing after this many cycles
MAX_STRING = 254

AREAS = {"DB": Area.DB, "M": Area.MK, "I": Area.PE, "Q": Area.PA}
WIDTHS = {"X": 1, "B": 1, "W": 2, "D": 4}
TYPES_BY_WIDTH = {
    "X": ("BOOL",),
    "B": ("BYTE", "SINT", "USINT", "CHAR", "STRING"),
    "W": ("INT", "WORD", "UINT"),
    "D": ("DINT", "DWORD", "UDINT", "REAL"),
}
DATA_TYPES = ("BOOL", "BYTE", "SINT", "USINT", "CHAR", "INT", "WORD", "UINT", "DINT", "DWORD", "UDINT", "REAL",
              "STRING")
WIDTH_NAMES = {"X": "a bit", "B": "a byte", "W": "a word (2 bytes)", "D": "a double word (4 bytes)"}
FORMATS = {"SINT": ">b", "BYTE": ">B", "USINT": ">B", "INT": ">h", "WORD": ">H", "UINT": ">H", "DINT": ">i",
            "DWORD": ">I", "UDINT": ">I", "REAL": ">f"}

DB_RE = re.compile(r"DB(?P<db>\d+)\.DB(?P<w>[XBWD])(?P<off>\d+)(?:\.(?P<bit>\d+))?\Z", re.I)
AREA_RE = re.compile(r"(?P<area>[MIEQA])(?P<w>[XBWD]?)(?P<off>\d+)(?:\.(?P<bit>\d+))?\Z", re.I)
STRING_RE = re.compile(r"STRING\s*(?:\[\s*(?P<n>\d+)\s*\])?\Z", re.I)
ADDRESS_FORMS = ("expected DB<n>.DBX<byte>.<bit> (BOOL), DB<n>.DBB<byte> (BYTE, SINT, USINT, CHAR, STRING), "
                 "DB<n>.DBW<byte> (INT, WORD, UINT), DB<n>.DBD<byte> (DINT, DWORD, UDINT, REAL), or the M, I and "
                 "Q areas the same way: M10.1, MB10, MW10, MD10, I0.1, IB0, QW2")
# TIA Portal spellings -> ours, for import_db_layout
TIA_TYPES = {"BOOL": "BOOL", "BYTE": "BYTE", "SINT": "SINT", "USINT": "USINT", "CHAR": "CHAR", "INT": "INT",
              "WORD": "WORD", "UINT": "UINT", "DINT": "DINT", "DWORD": "DWORD", "UDINT": "UDINT", "REAL": "REAL"}


@dataclass(frozen=True)
class S7Address:
    text: str  # canonical: DB1.DBD0, MW10, I0.1
    area: str  # DB, M, I, Q
    db: int  # 0 outside DBs
    offset: int  # byte
    bit: int | None
    data_type: str  # BOOL ... REAL, STRING
    length: int | None = None  # STRING characters; None: read the maximum length from the PLC

    @property
    def region(self) -> tuple[str, int]:
        return self.area, self.db

    @property
    def region_name(self) -> str:
        return f"DB{self.db}" if self.area == "DB" else f"the {self.area} area"

    def size(self, length: int | None = None) -> int:
        if self.data_type == "STRING":
            n = length if length is not None else self.length
            return 2 + (n if n is not None else 0)
        return {"BOOL": 1, "BYTE": 1, "SINT": 1, "USINT": 1, "CHAR": 1, "INT": 2, "WORD": 2, "UINT": 2}.get(
            self.data_type, 4)


@dataclass
class S7Item:
    """One distinct address and the tag ids it serves; size is what is read for it."""

    address: S7Address
    tag_ids: list[int]
    size: int

    @property
    def start(self) -> int:
        return self.address.offset

    @property
    def end(self) -> int:
        return self.address.offset + self.size


@dataclass
class S7Range:
    """Contiguous bytes of one area/DB read as one item."""

    area: str
    db: int
    start: int
    size: int
    items: list[S7Item] = field(default_factory=list)
    # per item (item, unpack_from or None, offset in the range, is REAL): S7Driver._range_decoders
    decoders: list | None = field(default=None, compare=False, repr=False)

    @property
    def end(self) -> int:
        return self.start + self.size

    @property
    def name(self) -> str:
        where = f"DB{self.db}.DBB" if self.area == "DB" else f"{self.area}B"
        return f"{where}{self.start}+{self.size}"


@dataclass
class S7Request:
    """One round trip: read_area for one range, read_multi_vars for several."""

    ranges: list[S7Range] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return "read_area" if len(self.ranges) == 1 else "read_multi_vars"

    @property
    def request_bytes(self) -> int:
        return REQUEST_OVERHEAD + ITEM_REQUEST * len(self.ranges)

    @property
    def reply_bytes(self) -> int:
        return REQUEST_OVERHEAD + sum(ITEM_REPLY + r.size + r.size % 2 for r in self.ranges)


@dataclass
class S7Plan:
    pdu: int  # the PDU length the requests fit
    requests: list[S7Request]
    items: list[S7Item]  # every distinct address, for planning again (other PDU, learned string lengths)
    max_gap: int = MERGE_GAP

    @property
    def payload(self) -> int:
        return self.pdu - READ_OVERHEAD

    def describe(self) -> list[str]:
        return [f"{r.kind}: " + ", ".join(x.name for x in r.ranges) for r in self.requests]


def request_cost(size: int) -> int:
    return ITEM_REPLY + size + size % 2


def build_requests(items: list[S7Item], pdu: int, max_gap: int = MERGE_GAP) -> list[S7Request]:
    """Merge items into ranges and pack the ranges into requests that fit pdu. Pure: used by plan() and again
    per connection when the PDU granted is smaller, strings have their length, or addresses were found missing."""
    payload = pdu - READ_OVERHEAD
    ranges: list[S7Range] = []
    by_region: dict[tuple[str, int], list[S7Item]] = {}
    for item in items:
        by_region.setdefault(item.address.region, []).append(item)
    for (area, db), group in sorted(by_region.items(), key=lambda kv: (list(AREAS).index(kv[0][0]), kv[0][1])):
        group.sort(key=lambda it: (it.start, -it.size))
        current: S7Range | None = None
        for item in group:
            if current is not None:
                gap = item.start - current.end
                new_size = max(current.end, item.end) - current.start
                if gap <= max_gap and new_size <= payload:
                    current.size = new_size
                    current.items.append(item)
                    continue
                ranges.append(current)
            current = S7Range(area, db, item.start, item.size, [item])
        if current is not None:
            ranges.append(current)
    # first fit, decreasing: the big ranges first, each into the first request with room both ways
    requests: list[S7Request] = []
    for rng in sorted(ranges, key=lambda r: -r.size):
        if rng.size > payload:  # one oversized item (a long STRING on a small PDU): alone; the library splits it
            requests.append(S7Request([rng]))
            continue
        for req in requests:
            if (len(req.ranges) < MAX_ITEMS and req.ranges[0].size <= payload
                    and req.request_bytes + ITEM_REQUEST <= pdu and req.reply_bytes + request_cost(rng.size) <= pdu):
                req.ranges.append(rng)
                break
        else:
            requests.append(S7Request([rng]))
    order = {id(r): i for i, r in enumerate(ranges)}
    for req in requests:
        req.ranges.sort(key=lambda r: order[id(r)])
    requests.sort(key=lambda req: order[id(req.ranges[0])])
    return requests


def parse_type(data_type: str) -> tuple[str, int | None]:
    dtype = str(data_type or "").strip().upper()
    m = STRING_RE.match(dtype)
    if m:
        n = m.group("n")
        if n is None:
            return "STRING", None
        if not 1 <= int(n) <= MAX_STRING:
            raise ConfigError("data_type", f"{data_type!r}: an S7 STRING holds 1 to {MAX_STRING} characters")
        return "STRING", int(n)
    if dtype not in DATA_TYPES:
        raise ConfigError("data_type", f"{data_type!r} is not an S7 data type; use one of "
                                       f"{', '.join(DATA_TYPES)} (or STRING[n])")
    return dtype, None


def default_type(address: str) -> str:
    m = DB_RE.match(address.strip().upper()) or AREA_RE.match(address.strip().upper())
    width = (m.group("w") or "X").upper() if m else "B"
    return {"X": "BOOL", "B": "BYTE", "W": "WORD", "D": "DWORD"}[width]


def import_db_layout(csv_text: str, db_number: int = 1) -> list[DiscoveredTag]:
    """Tags of one DB from a CSV of name, offset, type[, description], as copied from the DB editor:
        ProductionCount,0,DINT
        Running,12.0,Bool
        OrderId,64,String[20]
    A header line (name,offset,type) and lines starting with # are skipped. Offsets are bytes, or byte.bit
    (BOOL needs the bit; other types accept .0). Types are ours or TIA Portal's spelling (Int, DInt, Real,
    String[20], ...). Errors raise ConfigError whose field names the CSV line and column."""
    if not 1 <= int(db_number) <= 65535:
        raise ConfigError("db_number", f"{db_number!r}: DB numbers run from 1 to 65535")
    out: list[DiscoveredTag] = []
    seen: dict[str, int] = {}
    for lineno, row in enumerate(csv.reader(io.StringIO(csv_text)), start=1):
        cells = [c.strip() for c in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        if not out and not seen and cells[0].lower() == "name" and len(cells) > 1 and \
                cells[1].lower() == "offset":
            continue  # header
        if len(cells) < 3:
            raise ConfigError(f"line {lineno}", f"{len(cells)} column(s); each line is name,offset,type, e.g. "
                                                "ProductionCount,0,DINT")
        name, offset_text, type_text = cells[:3]
        description = cells[3] if len(cells) > 3 else ""
        if not name:
            raise ConfigError(f"line {lineno}, column 1 (name)", "the name is empty")
        if name in seen:
            raise ConfigError(f"line {lineno}, column 1 (name)", f"{name!r} is already on line {seen[name]}")
        m = re.fullmatch(r"(\d+)(?:\.(\d+))?", offset_text)
        if not m:
            raise ConfigError(f"line {lineno}, column 2 (offset)", f"{offset_text!r} is not an offset; use bytes "
                                                                   "(4) or byte.bit (12.0)")
        byte, bit = int(m.group(1)), (int(m.group(2)) if m.group(2) is not None else None)
        if byte > 65535:
            raise ConfigError(f"line {lineno}, column 2 (offset)", f"{offset_text!r}: byte offset above 65535")
        try:
            dtype, length = parse_type(type_text)
        except ConfigError:
            dtype, length = TIA_TYPES.get(type_text.upper().replace(" ", "")), None
            if dtype is None:
                raise ConfigError(f"line {lineno}, column 3 (type)", f"{type_text!r} is not an S7 type; use one of "
                                                                     f"{', '.join(DATA_TYPES)} (or STRING[n])") \
                    from None
        if dtype == "BOOL":
            if bit is None:
                raise ConfigError(f"line {lineno}, column 2 (offset)", f"a Bool needs byte.bit, e.g. {byte}.0")
            if bit > 7:
                raise ConfigError(f"line {lineno}, column 2 (offset)", f"{offset_text!r}: bits are 0 to 7")
            address = f"DB{db_number}.DBX{byte}.{bit}"
        else:
            if bit not in (None, 0):
                raise ConfigError(f"line {lineno}, column 2 (offset)", f"{offset_text!r}: a {dtype} starts at a "
                                                                       f"whole byte ({byte}.0)")
            width = next(w for w, types in TYPES_BY_WIDTH.items() if dtype in types)
            address = f"DB{db_number}.DB{width}{byte}"
        shown_type = f"STRING[{length}]" if dtype == "STRING" and length else dtype
        seen[name] = lineno
        where = f"DB{db_number} offset {byte}.{bit or 0}"
        out.append(DiscoveredTag(address, shown_type, name, f"{where}; {description}" if description else where))
    return out
