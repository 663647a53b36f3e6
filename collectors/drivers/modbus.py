"""Modbus TCP driver (pymodbus 3.16, synchronous client).

protocol_config (validate_config fills the defaults; keys it does not know are kept and ignored):
  unit_id                   1         the unit (slave) id; behind a gateway, the id of the serial device
  byte_order                "big"     order of the two bytes inside each register ("little" swaps them)
  word_order                "big"     order of the registers of a 32/64-bit value ("big": high word first)
  zero_based                True      HR0 is protocol address 0; False: addresses are 1-based as many manuals
                                      print them (HR1 is protocol address 0, HR0 is refused)
  max_registers_per_request 125       at most 125 (the protocol's limit for function 3/4)
  max_gap                   10        registers between two tags that are still read in one request; for coils
                                      and discrete inputs the gap is counted in bits, 16 per register
  max_bits_per_request      2000      coils / discrete inputs per request (the protocol's limit)

Addresses (case-insensitive, no spaces):
  HR<n>  holding register (function 3)       IR<n>  input register (function 4)
  C<n>   coil (function 1)                   DI<n>  discrete input (function 2)
  HR<n>.<b>, IR<n>.<b>   bit b (0 = least significant) of a register, data type BOOL
  Modicon numbers, always 1-based whatever zero_based says:
      4xxxx / 4xxxxx -> HR (40001 is HR protocol address 0)      3xxxx / 3xxxxx -> IR (30001)
      0xxxx / 0xxxxx -> C  (00001)                               1xxxx / 1xxxxx -> DI (10001)
    five digits reach 9999 registers per table, six digits 65536 (400001 .. 465536); 40006.3 is a bit.
  <unit>:<address>  reads another unit through the same connection, e.g. '3:HR10' (a gateway to a serial line).

Data types: BOOL (coils, discrete inputs, a register bit, or a whole register read as != 0), INT16, UINT16,
INT32, UINT32, FLOAT32 (2 registers), INT64, UINT64, FLOAT64 (4 registers), STRING[n] (n characters, (n+1)//2
registers, byte_order applies and word_order does not; trailing NULs are dropped). Aliases such as INT, DINT,
REAL, WORD and DWORD are accepted and normalised. A 32- or 64-bit type may name its word order, overriding the
connection's word_order for that tag: FLOAT32_ABCD (high word first), FLOAT32_CDAB (low word first); the same for
INT32, UINT32, INT64, UINT64 and FLOAT64 (byte_order still applies inside each register).

Discovery scans a range of one table; with pairs=True (registers only) it also offers each pair of neighbouring
registers that both answered as UINT32, INT32 and FLOAT32 in both word orders, with the value each reading gives
(floats that are not finite left out), so a counter or a float is picked, not typed.

Plan: tags are grouped per (unit, table), sorted, and neighbours are merged into one request while the span stays
within max_registers_per_request (max_bits_per_request for bits) and the hole between them is at most max_gap.
A device's exception reply is a valid answer, never a broken link: the request's tags become BAD (codes 1-3
invalid_address, others device_error) and the link stays up. When a merged request is refused with illegal data
address (2) or illegal data value (3), it is bisected at tag boundaries until every refused part is a single tag;
the split requests replace the merged one in the plan (flag `split`), so the cost is paid once per plan, not per
cycle. A plan keeps its splits until it is rebuilt (configuration reload). Transport failures (refused, reset,
no answer in time) raise DriverError and close the socket. A reply of the wrong length or a value that does not
decode makes the tags BAD (protocol_error), never an exception.
"""
from __future__ import annotations

import logging
import math
import re
import socket
import struct
from dataclasses import dataclass, field
from typing import Any

from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from collectors.base import (
    BAD,
    CANNOT_CONNECT,
    DEVICE_ERROR,
    INVALID_ADDRESS,
    PROTOCOL_ERROR,
    TIMEOUT,
    ConfigError,
    DiagnosticStep,
    DiscoveredTag,
    Driver,
    DriverError,
    Reading,
    Step,
    TagSpec,
    TestResult,
    register,
    tcp_check,
    tcp_connect,
)

log = logging.getLogger(__name__)

TABLES = ("HR", "IR", "C", "DI")
BIT_TABLES = ("C", "DI")
TABLE_NAMES = {"HR": "holding register", "IR": "input register", "C": "coil", "DI": "discrete input"}
MODICON_TABLE = {"4": "HR", "3": "IR", "0": "C", "1": "DI"}
MAX_REGISTERS = 125
MAX_BITS = 2000
MAX_STRING_CHARS = 2 * MAX_REGISTERS

REGISTERS = {"BOOL": 1, "INT16": 1, "UINT16": 1, "INT32": 2, "UINT32": 2, "FLOAT32": 2, "INT64": 4, "UINT64": 4,
             "FLOAT64": 4}
# struct formats of the numeric register types (pymodbus' DATATYPE letters), for ModbusDriver._decoders
NUMERIC_FORMATS = {"INT16": "h", "UINT16": "H", "INT32": "i", "UINT32": "I", "INT64": "q", "UINT64": "Q",
                   "FLOAT32": "f", "FLOAT64": "d"}
ALIASES = {"BIT": "BOOL", "BOOLEAN": "BOOL", "COIL": "BOOL", "INT": "INT16", "SHORT": "INT16", "WORD": "UINT16",
           "UINT": "UINT16", "DINT": "INT32", "LONG": "INT32", "UDINT": "UINT32", "DWORD": "UINT32",
           "REAL": "FLOAT32", "FLOAT": "FLOAT32", "LINT": "INT64", "ULINT": "UINT64", "LWORD": "UINT64",
           "LREAL": "FLOAT64", "DOUBLE": "FLOAT64"}
EXCEPTION_TEXT = {
    1: "illegal function", 2: "illegal data address", 3: "illegal data value", 4: "server device failure",
    5: "acknowledge", 6: "server device busy", 8: "memory parity error", 10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}
ADDRESS_FORMS = ("HR<n>, IR<n>, C<n> or DI<n> (a register bit as HR<n>.<bit>, another unit as <unit>:HR<n>), "
                 "or a Modicon number such as 40001, 30001, 00001, 10001")
UNIT_ID_HINT = ("Check the unit id (unit_id, 1 by default): a gateway answers for the serial devices behind it only "
                "under their own ids, and many devices ignore requests for other ids.")

_ADDR_RE = re.compile(r"^(HR|IR|DI|C)(\d+)(?:\.(\d+))?$")
_MODICON_RE = re.compile(r"^(\d{5,6})(?:\.(\d+))?$")
_STRING_RE = re.compile(r"^STRING\s*\[\s*(\d+)\s*\]$")
WORD_ORDER_SUFFIXES = {"_ABCD": "big", "_CDAB": "little"}  # a tag's own word order (see the data types above)
PAIR_TYPES = ("UINT32", "INT32", "FLOAT32")  # what discovery offers for two neighbouring registers
MAX_PAIR_SCAN = 250  # registers of a scan that get their pairs offered (each pair is six rows)


# --- addresses ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModbusAddress:
    """A parsed tag address. number is as written; offset() gives the protocol address."""

    table: str  # HR, IR, C, DI
    number: int
    data_type: str  # BOOL, INT16, ..., STRING
    bit: int | None = None
    length: int = 0  # characters, STRING only
    unit: int | None = None  # None: the connection's unit_id
    modicon: bool = False  # Modicon numbers are 1-based by definition
    word_order: str | None = None  # the tag's own ("big" / "little"); None: the connection's

    @property
    def size(self) -> int:
        """Registers (or bits, for coils and discrete inputs) the value occupies."""
        if self.table in BIT_TABLES:
            return 1
        if self.data_type == "STRING":
            return (self.length + 1) // 2
        return REGISTERS[self.data_type]

    def offset(self, zero_based: bool = True) -> int:
        return self.number - 1 if self.modicon or not zero_based else self.number

    def label(self) -> str:
        unit = f"{self.unit}:" if self.unit is not None else ""
        bit = f".{self.bit}" if self.bit is not None else ""
        return f"{unit}{self.table}{self.number}{bit}"


def _parse_data_type(data_type: str) -> tuple[str, int]:
    text = (data_type or "").strip().upper()
    m = _STRING_RE.match(text)
    if m:
        n = int(m.group(1))
        if not 1 <= n <= MAX_STRING_CHARS:
            raise ConfigError("data_type", f"STRING[{n}]: a string holds 1 to {MAX_STRING_CHARS} characters "
                                           f"({MAX_REGISTERS} registers)")
        return "STRING", n
    if text == "STRING":
        raise ConfigError("data_type", "STRING needs its length in characters, e.g. STRING[16] (8 registers)")
    text = ALIASES.get(text, text)
    if text not in REGISTERS:
        raise ConfigError("data_type", f"{data_type!r} is not a Modbus data type; use one of "
                                       f"{', '.join(ModbusDriver.data_types)}[n]")
    return text, 0


def _expected(address: str, why: str) -> ConfigError:
    return ConfigError("address", f"{address!r}: {why}; expected {ADDRESS_FORMS}")


def parse_modbus_address(address: str, data_type: str, zero_based: bool = True) -> ModbusAddress:
    raw = address if isinstance(address, str) else ""
    text = raw.strip().upper().replace(" ", "")
    if not text:
        raise _expected(raw, "the address is empty")
    unit = None
    if ":" in text:
        unit_text, _, text = text.partition(":")
        if not unit_text.isdigit() or not 0 <= int(unit_text) <= 255:
            raise _expected(raw, f"unit {unit_text!r} before ':' must be a number from 0 to 255")
        unit = int(unit_text)
    type_text, word_order = (data_type or "").strip().upper(), None
    for suffix, order in WORD_ORDER_SUFFIXES.items():
        if type_text.endswith(suffix):
            type_text, word_order = type_text[:-len(suffix)], order
    dtype, length = _parse_data_type(type_text)
    if word_order is not None and REGISTERS.get(dtype, 1) < 2:
        raise ConfigError("data_type", f"{data_type!r}: a word order (_ABCD, _CDAB) is for the 32- and 64-bit types")
    m = _ADDR_RE.match(text)
    modicon = False
    if m:
        table, number, bit = m.group(1), int(m.group(2)), m.group(3)
        low = 0 if zero_based else 1
        if not low <= number <= 65535 + low:
            first = "HR0" if zero_based else "HR1 (zero_based is false)"
            raise _expected(raw, f"{table} number {number} is out of range {low}..{65535 + low} (the first is {first})")
    else:
        m = _MODICON_RE.match(text)
        if not m:
            if text.isdigit():
                raise _expected(raw, "a bare number is ambiguous; write HR12, or a 5/6-digit Modicon number "
                                     "like 40013")
            raise _expected(raw, "not a Modbus address")
        digits, bit = m.group(1), m.group(2)
        table = MODICON_TABLE.get(digits[0])
        if table is None:
            raise _expected(raw, f"Modicon numbers start with 0, 1, 3 or 4, not {digits[0]}")
        number = int(digits[1:])
        top = 9999 if len(digits) == 5 else 65536
        if not 1 <= number <= top:
            raise _expected(raw, f"Modicon numbers count from 1: {digits[0]}{'0' * (len(digits) - 2)}1 is the first, "
                                 f"{digits[0]}{top:0{len(digits) - 1}d} the last")
        modicon = True
    if bit is not None:
        bit = int(bit)
        if table in BIT_TABLES:
            raise _expected(raw, f"{TABLE_NAMES[table]}s are single bits and take no .bit suffix")
        if not 0 <= bit <= 15:
            raise _expected(raw, f"bit {bit} is out of range 0..15")
        if dtype != "BOOL":
            raise ConfigError("data_type", f"{raw!r} is a register bit: its data type is BOOL, not {data_type}")
    if table in BIT_TABLES and dtype != "BOOL":
        raise ConfigError("data_type", f"{raw!r} is a {TABLE_NAMES[table]}, a single bit: its data type is BOOL, "
                                       f"not {data_type}")
    addr = ModbusAddress(table, number, dtype, bit, length, unit, modicon, word_order)
    if addr.offset(zero_based) + addr.size > 65536:
        raise _expected(raw, f"{dtype} at {addr.label()} runs past the last register (65535)")
    return addr


# --- plan --------------------------------------------------------------------------------------------------------


@dataclass
class PlanItem:
    tag_id: int
    name: str
    address: ModbusAddress
    offset: int  # protocol address of the first register / bit
    size: int

    @property
    def end(self) -> int:
        return self.offset + self.size


@dataclass
class ModbusRequest:
    unit: int
    table: str  # HR, IR, C, DI
    start: int  # protocol address
    count: int  # registers or bits
    items: list[PlanItem]
    split: bool = False  # made by bisecting a merged range the device refused
    # (byte_order, word_order) -> per item how to decode it from the request's bytes: ModbusDriver._decoders
    decoders: dict = field(default_factory=dict, compare=False, repr=False)

    def label(self) -> str:
        last = self.start + self.count - 1
        return f"unit {self.unit} {self.table}{self.start}" + (f"-{self.table}{last}" if last != self.start else "")


@dataclass
class ModbusPlan:
    requests: list[ModbusRequest] = field(default_factory=list)
    splits: int = 0  # merged requests bisected so far

    def describe(self) -> list[str]:
        return [f"{r.label()} ({len(r.items)} tags{', split' if r.split else ''})" for r in self.requests]


def _request_for(unit: int, table: str, items: list[PlanItem], split: bool = False) -> ModbusRequest:
    start = min(i.offset for i in items)
    end = max(i.end for i in items)
    return ModbusRequest(unit, table, start, end - start, sorted(items, key=lambda i: (i.offset, i.tag_id)), split)


def _merge(unit: int, table: str, items: list[PlanItem], max_count: int, max_gap: int) -> list[ModbusRequest]:
    requests: list[ModbusRequest] = []
    group: list[PlanItem] = []
    g_start = g_end = 0
    for item in sorted(items, key=lambda i: (i.offset, i.tag_id)):
        if group and item.offset - g_end <= max_gap and max(g_end, item.end) - g_start <= max_count:
            group.append(item)
            g_end = max(g_end, item.end)
            continue
        if group:
            requests.append(_request_for(unit, table, group))
        group, g_start, g_end = [item], item.offset, item.end
    if group:
        requests.append(_request_for(unit, table, group))
    return requests


# --- the driver --------------------------------------------------------------------------------------------------


@register
class ModbusDriver(Driver):
    protocol = "MODBUS"
    data_types = ("BOOL", "INT16", "UINT16", "INT32", "UINT32", "FLOAT32", "INT64", "UINT64", "FLOAT64", "STRING")

    DEFAULTS = {"unit_id": 1, "byte_order": "big", "word_order": "big", "zero_based": True,
                "max_registers_per_request": MAX_REGISTERS, "max_gap": 10, "max_bits_per_request": MAX_BITS}

    def __init__(self, settings):
        super().__init__(settings)
        self.config = self.validate_config(settings.config)
        self._client: ModbusTcpClient | None = None

    def __repr__(self) -> str:
        return (f"<ModbusDriver {self.settings.host}:{self.settings.port} unit {self.config['unit_id']} "
                f"{'connected' if self._client is not None else 'closed'}>")

    # --- configuration ---

    @classmethod
    def validate_config(cls, config: dict) -> dict:
        out = dict(cls.DEFAULTS)
        out.update({k: v for k, v in (config or {}).items() if v is not None})

        def integer(key: str, low: int, high: int) -> int:
            value = out[key]
            if isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, str) and value.strip().isdigit():
                    value = int(value.strip())
                else:
                    raise ConfigError(key, f"must be a whole number from {low} to {high}, not {value!r}")
            if not low <= value <= high:
                raise ConfigError(key, f"must be from {low} to {high}, not {value}")
            return value

        out["unit_id"] = integer("unit_id", 0, 255)
        out["max_registers_per_request"] = integer("max_registers_per_request", 1, MAX_REGISTERS)
        out["max_bits_per_request"] = integer("max_bits_per_request", 1, MAX_BITS)
        out["max_gap"] = integer("max_gap", 0, MAX_REGISTERS)
        for key in ("byte_order", "word_order"):
            value = str(out[key]).strip().lower()
            if value not in ("big", "little"):
                raise ConfigError(key, f"must be 'big' or 'little', not {out[key]!r}")
            out[key] = value
        zb = out["zero_based"]
        if isinstance(zb, str) and zb.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
            zb = zb.strip().lower() in ("true", "1", "yes")
        if not isinstance(zb, bool):
            raise ConfigError("zero_based", f"must be true or false, not {out['zero_based']!r}")
        out["zero_based"] = zb
        return out

    @classmethod
    def parse_address(cls, address: str, data_type: str, config: dict | None = None) -> ModbusAddress:
        """Parse 'HR10' & co. config (protocol_config) decides zero_based; without it addresses are zero-based."""
        zero_based = True if config is None else bool(cls.validate_config(config)["zero_based"])
        return parse_modbus_address(address, data_type, zero_based)

    def plan(self, tags: list[TagSpec]) -> ModbusPlan:
        cfg = self.config
        groups: dict[tuple[int, str], list[PlanItem]] = {}
        for i, tag in enumerate(tags):
            try:
                addr = parse_modbus_address(tag.address, tag.data_type, cfg["zero_based"])
            except ConfigError as exc:
                raise ConfigError(f"tags[{i}].{exc.field}", f"tag {tag.name or tag.tag_id}: {exc.message}") from None
            limit = cfg["max_bits_per_request"] if addr.table in BIT_TABLES else cfg["max_registers_per_request"]
            if addr.size > limit:
                raise ConfigError(f"tags[{i}].data_type", f"tag {tag.name or tag.tag_id}: {tag.data_type} needs "
                                                          f"{addr.size} registers, more than "
                                                          f"max_registers_per_request ({limit})")
            unit = cfg["unit_id"] if addr.unit is None else addr.unit
            item = PlanItem(tag.tag_id, tag.name, addr, addr.offset(cfg["zero_based"]), addr.size)
            groups.setdefault((unit, addr.table), []).append(item)
        plan = ModbusPlan()
        for (unit, table) in sorted(groups, key=lambda k: (k[0], TABLES.index(k[1]))):
            bits = table in BIT_TABLES
            plan.requests += _merge(unit, table, groups[(unit, table)],
                                    cfg["max_bits_per_request"] if bits else cfg["max_registers_per_request"],
                                    cfg["max_gap"] * 16 if bits else cfg["max_gap"])
        return plan

    # --- link ---

    def connect(self) -> None:
        self.close()
        s = self.settings
        client = ModbusTcpClient(s.host, port=s.port, timeout=s.timeout_s, retries=0)
        # Open the socket here and hand it to pymodbus: one attempt, the precise error kind (refused, timeout,
        # unknown host), and no pymodbus ERROR line per failed attempt while the collector backs off.
        client.socket = tcp_connect(s.host, s.port, s.timeout_s)
        self._client = client

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # never raises
                log.debug("closing the Modbus client failed", exc_info=True)

    def abort(self) -> None:
        """From another thread: shut the socket down under a request that does not end (it then fails at once)."""
        client = self._client
        sock = getattr(client, "socket", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _execute(self, unit: int, table: str, start: int, count: int):
        """One request. Returns the response (possibly an exception response); raises DriverError for the link."""
        client = self._client
        if client is None:
            raise DriverError(CANNOT_CONNECT, "not connected", "connect() first")
        s = self.settings
        fn = {"HR": client.read_holding_registers, "IR": client.read_input_registers, "C": client.read_coils,
              "DI": client.read_discrete_inputs}[table]
        try:
            return fn(start, count=count, device_id=unit)
        except ConnectionException as exc:
            self.close()
            why = "the device closed it" if "closed" in str(exc) else _short(exc)
            raise DriverError(CANNOT_CONNECT, f"connection to {s.host}:{s.port} lost ({why})",
                              "Check that the device is powered and reachable; the collector reconnects.") from None
        except ModbusIOException:
            self.close()  # a late answer must not be taken for the next request's
            raise DriverError(TIMEOUT, f"no answer from unit {unit} at {s.host}:{s.port} within {s.timeout_s:g} s "
                                       f"({table}{start}, {count} {'bits' if table in BIT_TABLES else 'registers'})",
                              UNIT_ID_HINT) from None
        except ModbusException as exc:
            self.close()
            raise DriverError(PROTOCOL_ERROR, f"Modbus error from {s.host}:{s.port}: {_short(exc)}") from None
        except OSError as exc:
            self.close()
            raise DriverError(CANNOT_CONNECT,
                              f"connection to {s.host}:{s.port} failed: {exc.strerror or exc}") from None

    # --- reading ---

    def read(self, plan: ModbusPlan) -> dict[int, Reading]:
        if self._client is None:
            raise DriverError(CANNOT_CONNECT, "not connected", "connect() first")
        out: dict[int, Reading] = {}
        new_requests: list[ModbusRequest] = []
        changed = False
        for req in plan.requests:
            done = self._run(req, out)
            if len(done) != 1 or done[0] is not req:
                changed = True
                plan.splits += 1
            new_requests.extend(done)
        if changed:
            plan.requests = new_requests
        return out

    def _run(self, req: ModbusRequest, out: dict[int, Reading]) -> list[ModbusRequest]:
        """Read one request into out; returns what replaces it in the plan (itself, or its split parts)."""
        resp = self._execute(req.unit, req.table, req.start, req.count)
        if resp.isError():
            code = getattr(resp, "exception_code", None)
            if code in (2, 3) and len(req.items) > 1:
                mid = len(req.items) // 2
                left = _request_for(req.unit, req.table, req.items[:mid], split=True)
                right = _request_for(req.unit, req.table, req.items[mid:], split=True)
                log.info("Modbus %s:%s %s refused with exception %s (%s): split into %s and %s",
                         self.settings.host, self.settings.port, req.label(), code, EXCEPTION_TEXT.get(code, "?"),
                         left.label(), right.label())
                return self._run(left, out) + self._run(right, out)
            reason = _exception_reason(code, req)
            for item in req.items:
                out[item.tag_id] = Reading(None, BAD, reason)
            return [req]
        self._decode(req, resp, out)
        return [req]

    def _decode(self, req: ModbusRequest, resp, out: dict[int, Reading]) -> None:
        if req.table in BIT_TABLES:
            bits = list(getattr(resp, "bits", None) or [])
            if len(bits) < req.count:
                reason = f"{PROTOCOL_ERROR}: reply has {len(bits)} bits, {req.count} were asked ({req.label()})"
                for item in req.items:
                    out[item.tag_id] = Reading(None, BAD, reason)
                return
            for item in req.items:
                out[item.tag_id] = Reading(bool(bits[item.offset - req.start]))
            return
        regs = list(getattr(resp, "registers", None) or [])
        if len(regs) != req.count:
            reason = f"{PROTOCOL_ERROR}: reply has {len(regs)} registers, {req.count} were asked ({req.label()})"
            for item in req.items:
                out[item.tag_id] = Reading(None, BAD, reason)
            return
        try:  # the whole reply as bytes at once, byte_order applied: one pack per request instead of per value
            data = struct.pack(f"{'<' if self.config['byte_order'] == 'little' else '>'}{len(regs)}H", *regs)
        except struct.error:  # a register out of 0..0xFFFF: each item gets its own reason below
            data = None
        for item, unpack, at, size in self._decoders(req):
            if unpack is not None and data is not None:
                if size:  # low word first: the item's registers in reverse order
                    value = unpack(b"".join([data[at + 2 * k: at + 2 * k + 2] for k in range(size - 1, -1, -1)]))[0]
                else:
                    value = unpack(data, at)[0]
                if value.__class__ is float and not math.isfinite(value):
                    out[item.tag_id] = Reading(None, BAD, f"{DEVICE_ERROR}: {item.address.label()} holds {value} "
                                                          "(not a number)")
                else:
                    out[item.tag_id] = Reading(value)
                continue
            lo = item.offset - req.start
            try:
                out[item.tag_id] = self._value(item.address, regs[lo:lo + item.size])
            except Exception as exc:  # a value that does not decode is a bad tag, never a crash
                out[item.tag_id] = Reading(None, BAD, f"{PROTOCOL_ERROR}: cannot decode {item.address.label()} as "
                                                      f"{item.address.data_type}: {exc}")

    def _decoders(self, req: ModbusRequest) -> list[tuple]:
        """Per item of a register request: (item, unpack, byte offset, registers to reverse or 0). unpack is a
        precompiled struct unpack_from (word order as written) or unpack (low word first, given the registers
        reversed), None for what _value decodes (BOOL, STRING). The same values as pymodbus'
        convert_from_registers, which _value uses, without its per-call checks and byte lists (bench.collect:
        the Modbus driver cost 4x the raw library's reads)."""
        key = (self.config["byte_order"], self.config["word_order"])
        table = req.decoders.get(key)
        if table is None:
            table = []
            for item in req.items:
                addr = item.address
                fmt = NUMERIC_FORMATS.get(addr.data_type)
                if fmt is None or addr.size != item.size:
                    table.append((item, None, 0, 0))
                    continue
                swap = addr.size > 1 and (addr.word_order or key[1]) == "little"
                packer = struct.Struct(">" + fmt)
                table.append((item, packer.unpack if swap else packer.unpack_from, 2 * (item.offset - req.start),
                              addr.size if swap else 0))
            req.decoders[key] = table
        return table

    def _value(self, addr: ModbusAddress, regs: list[int]) -> Reading:
        if len(regs) != addr.size or any(not 0 <= r <= 0xFFFF for r in regs):
            return Reading(None, BAD, f"{PROTOCOL_ERROR}: {addr.label()} got {len(regs)} registers, needs {addr.size}")
        if self.config["byte_order"] == "little":
            regs = [((r & 0xFF) << 8) | (r >> 8) for r in regs]
        dt = addr.data_type
        if dt == "BOOL":
            return Reading(bool((regs[0] >> addr.bit) & 1) if addr.bit is not None else regs[0] != 0)
        if dt == "STRING":
            raw = b"".join(r.to_bytes(2, "big") for r in regs)[:addr.length]
            return Reading(raw.split(b"\x00", 1)[0].decode("utf-8", errors="replace"))
        value = ModbusTcpClient.convert_from_registers(regs, ModbusTcpClient.DATATYPE[dt],
                                                       word_order=addr.word_order or self.config["word_order"])
        if isinstance(value, float) and not math.isfinite(value):
            return Reading(None, BAD, f"{DEVICE_ERROR}: {addr.label()} holds {value} (not a number)")
        return Reading(value)

    # --- diagnostics ---

    def test_connection(self, probe_address: str | None = None) -> TestResult:
        """tcp, handshake (none in Modbus TCP), probe_read (HR0 or probe_address), identity (0x2B/0x0E, optional).
        Each step is timed; the first failing step ends the test. Never raises."""
        s = self.settings
        steps: list[DiagnosticStep] = []
        identity: dict[str, Any] = {"unit_id": self.config["unit_id"]}
        try:
            with Step(steps, "tcp") as step:
                step.detail = f"connected to {tcp_check(s.host, s.port, s.timeout_s)}"
            with Step(steps, "handshake") as step:
                step.detail = ("Modbus TCP has no handshake beyond the TCP connection: the probe read is the first "
                               "proof that a Modbus device answers")
            with Step(steps, "probe_read") as step:
                step.detail = self._probe(probe_address)
            with Step(steps, "identity") as step:
                step.detail = self._identity(identity)
        except Exception:  # already recorded as the failed step
            pass
        finally:
            self.close()
        return TestResult(bool(steps) and all(st.ok for st in steps), steps, identity)

    def _probe(self, probe_address: str | None) -> str:
        zb = self.config["zero_based"]
        explicit = probe_address is not None
        text = probe_address if explicit else ("HR0" if zb else "HR1")
        try:
            addr = parse_modbus_address(text, "BOOL" if _looks_bit_table(text) or "." in text else "UINT16", zb)
        except ConfigError as exc:
            raise DriverError(INVALID_ADDRESS, exc.message, f"Use {ADDRESS_FORMS}.") from None
        unit = self.config["unit_id"] if addr.unit is None else addr.unit
        self.connect()
        resp = self._execute(unit, addr.table, addr.offset(zb), 1)
        label = addr.label()
        if resp.isError():
            code = getattr(resp, "exception_code", None)
            text = f"exception {code} ({EXCEPTION_TEXT.get(code, 'unknown code')})"
            if code in (2, 3) and not explicit:
                return (f"unit {unit} answered {label} with {text}: the link and the unit id work; {label} does not "
                        f"exist on this device")
            if code in (4, 10, 11):
                raise DriverError(DEVICE_ERROR, f"unit {unit} answered {label} with {text}", UNIT_ID_HINT)
            if code in (1, 2, 3):
                raise DriverError(INVALID_ADDRESS, f"unit {unit} answered {label} with {text}",
                                  "Check the address against the device's register map (and zero_based).")
            raise DriverError(DEVICE_ERROR, f"unit {unit} answered {label} with {text}",
                              "The device refused the request; check its state and the unit id.")
        if addr.table in BIT_TABLES:
            value: Any = bool((resp.bits or [False])[0])
        else:
            regs = list(resp.registers or [])
            if len(regs) != 1:
                raise DriverError(PROTOCOL_ERROR, f"unit {unit} answered {label} with {len(regs)} registers, not 1")
            value = regs[0]
        return f"unit {unit} answered {label} = {value}"

    def _identity(self, identity: dict) -> str:
        """Read Device Identification (0x2B / 0x0E, basic objects). Optional in Modbus: absence is not a failure."""
        client = self._client
        unit = self.config["unit_id"]
        if client is None:
            return "not connected"
        saved = client.comm_params.timeout_connect
        client.comm_params.timeout_connect = min(saved or 1.0, 1.0)
        try:
            resp = client.read_device_information(read_code=1, object_id=0, device_id=unit)
        except (ModbusException, OSError) as exc:
            self.close()
            return (f"the device does not answer Read Device Identification (0x2B/0x0E), which is optional "
                    f"({_short(exc)})")
        finally:
            client.comm_params.timeout_connect = saved
        if resp.isError():
            code = getattr(resp, "exception_code", None)
            return (f"the device does not support Read Device Identification (0x2B/0x0E), which is optional "
                    f"(exception {code})")
        names = {0: "vendor_name", 1: "product_code", 2: "revision", 3: "vendor_url", 4: "product_name",
                 5: "model_name", 6: "user_application_name"}
        found = {}
        for oid, raw in (getattr(resp, "information", None) or {}).items():
            if isinstance(raw, list):
                raw = b"".join(raw) if all(isinstance(x, bytes) for x in raw) else raw[0]
            text = raw.decode("utf-8", errors="replace") if isinstance(raw, (bytes, bytearray)) else str(raw)
            if text:
                found[names.get(oid, f"object_{oid:#04x}")] = text
        identity.update(found)
        if not found:
            return "the device answered Read Device Identification with no objects"
        return ", ".join(f"{k}={v}" for k, v in found.items())

    # --- discovery ---

    def discover(self, table: str = "HR", start: int | None = None, count: int = 200, unit: int | None = None,
                 block: int | None = None, pairs: bool = False, **_options) -> list[DiscoveredTag]:
        """Scan `count` addresses of one table from `start` (in the configured numbering) in blocks; a block that
        answers with an exception is bisected, so every address that answers is found. Returns one DiscoveredTag
        per answering address with its current raw value (UINT16, or BOOL for bits), then, with pairs (registers
        only, the first MAX_PAIR_SCAN), each pair's readings (_pair_readings). Raises DriverError for the link."""
        table = str(table).upper()
        if table not in TABLES:
            raise ConfigError("table", f"{table!r}: use one of {', '.join(TABLES)}")
        zb = self.config["zero_based"]
        first = (0 if zb else 1) if start is None else int(start)
        count = int(count)
        if count < 1 or count > 65536:
            raise ConfigError("count", "scan 1 to 65536 addresses")
        base = first if zb else first - 1
        if base < 0 or base + count > 65536:
            raise ConfigError("start", f"{table}{first} + {count} addresses is out of range")
        bits = table in BIT_TABLES
        limit = self.config["max_bits_per_request"] if bits else self.config["max_registers_per_request"]
        block = min(int(block or limit), limit)
        unit = self.config["unit_id"] if unit is None else int(unit)
        own = self._client is None
        if own:
            self.connect()
        found: list[DiscoveredTag] = []
        try:
            pending = [(a, min(block, base + count - a)) for a in range(base, base + count, block)]
            while pending:
                a, n = pending.pop(0)
                resp = self._execute(unit, table, a, n)
                if resp.isError():
                    if n > 1:
                        half = n // 2
                        pending[0:0] = [(a, half), (a + half, n - half)]
                    continue
                values = list(resp.bits[:n]) if bits else list(resp.registers)
                if len(values) < n:
                    continue  # a malformed reply: nothing trustworthy in this block
                for k in range(n):
                    number = a + k if zb else a + k + 1
                    name = f"{table}{number}"
                    found.append(DiscoveredTag(
                        address=name if unit == self.config["unit_id"] else f"{unit}:{name}",
                        data_type="BOOL" if bits else "UINT16", name=name,
                        description=f"{TABLE_NAMES[table]} at protocol address {a + k}, unit {unit}",
                        writable=table in ("HR", "C"), value=bool(values[k]) if bits else values[k]))
        finally:
            if own:
                self.close()
        if pairs and not bits:
            found += self._pair_readings(found[:MAX_PAIR_SCAN], table)
        return found

    def _pair_readings(self, registers: list[DiscoveredTag], table: str) -> list[DiscoveredTag]:
        """Each two neighbouring registers that answered, read as UINT32, INT32 and FLOAT32, high word first (_ABCD)
        and low word first (_CDAB), decoded as the collector will (byte_order applies)."""
        by_number = {int(t.name[len(table):]): t for t in registers}
        out = []
        for number, first in sorted(by_number.items()):
            second = by_number.get(number + 1)
            if second is None:
                continue
            words = [first.value, second.value]
            for dtype in PAIR_TYPES:
                for suffix, order in WORD_ORDER_SUFFIXES.items():
                    addr = ModbusAddress(table, number, dtype, word_order=order)
                    reading = self._value(addr, words)
                    if reading.value is None:  # a float that is not a number: not a float tag
                        continue
                    name = f"{first.name}_{dtype}{suffix}"
                    words_text = "high word first" if order == "big" else "low word first"
                    out.append(DiscoveredTag(
                        address=first.address, data_type=f"{dtype}{suffix}", name=name,
                        description=f"{first.name}-{second.name} as {dtype}, {words_text}",
                        writable=first.writable, value=reading.value))
        return out


def _looks_bit_table(address: str) -> bool:
    text = address.strip().upper().split(":")[-1]
    if text.startswith(("C", "DI")):
        return True
    return bool(_MODICON_RE.match(text)) and text[0] in "01"


def _exception_reason(code: int | None, req: ModbusRequest) -> str:
    text = EXCEPTION_TEXT.get(code, "unknown exception code")
    kind = INVALID_ADDRESS if code in (1, 2, 3) else DEVICE_ERROR
    hint = " (check the unit id)" if code in (10, 11) else ""
    return f"{kind}: exception {code} ({text}) for {req.label()}{hint}"


def _short(exc: Exception) -> str:
    text = str(exc)
    return text.replace("Modbus Error: ", "")[:200]
