"""Siemens S7 (S7-300/400/1200/1500, classic S7comm over ISO-on-TCP) with python-snap7 3.3.0 (pure Python).

protocol_config (validate_config fills the defaults):
  cpu_type       S7-300, S7-400, S7-1200 (default) or S7-1500; gives the default slot.
  rack           0..7, default 0.
  slot           0..31. Default by CPU: S7-1200 and S7-1500 slot 1 (the CPU sits in slot 1 of its rack),
                 S7-300 slot 2 (slot 1 is the power supply), S7-400 slot 3 (after a two-slot power supply;
                 check the CPU's slot in HW Config).
  pdu_size       the PDU length asked for at setup, 240..960, default 480. The CPU answers with what it
                 grants (S7-300 and S7-1200 usually 240, S7-400 480, S7-1500 960; the simulator 480); reads
                 are planned for pdu_size and planned again for the granted length when it is smaller.
  string_length  characters of a plain STRING (254 is the S7 default). Unset (the default): the driver reads
                 the string's own maximum-length byte from the PLC once per connection and plans for it.
                 A data type STRING[n] always wins.
S7-1200/1500: PUT/GET access must be allowed in the CPU's protection settings and the DBs must not use
optimized block access, else the CPU refuses the reads.

Addresses (case-insensitive; E/A are accepted for I/Q):
  DB1.DBX12.0  BOOL                  DB1.DBB6   BYTE, SINT, USINT, CHAR, STRING / STRING[n]
  DB1.DBW4     INT, WORD, UINT       DB1.DBD0   DINT, DWORD, UDINT, REAL
  M10.1 / MB10 / MW10 / MD10, I0.1 / IB0 / IW0 / ID0, Q0.0 / QB0 / QW0 / QD0 the same way.
STRING is the S7 layout: maximum length byte, actual length byte, then the characters (Latin-1).

The plan: see collectors/drivers/s7_plan.py.

Errors: a DB that does not exist (return code 0x0A "Object does not exist") makes the tags of that DB BAD with
invalid_address and is left out of the requests until the connection is made again or RECHECK_CYCLES cycles
have passed; an address past the end of a DB (0x05) likewise for that tag alone; a reply shorter than asked for
is BAD (protocol_error) for the tags it should have held. Socket errors and timeouts raise DriverError.
"""
from __future__ import annotations

import logging
import re
import struct
from typing import Any

import snap7
from snap7.error import (
    S7ConnectionError,
    S7Error,
    S7PacketLostError,
    S7ProtocolError,
    S7StalePacketError,
    S7TimeoutError,
)
from snap7.type import Block

from collectors.base import (
    BAD,
    CANNOT_CONNECT,
    DEVICE_ERROR,
    INVALID_ADDRESS,
    PROTOCOL_DEFAULT_PORTS,
    PROTOCOL_ERROR,
    TIMEOUT,
    UNCERTAIN,
    ConfigError,
    ConnectionSettings,
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
)
from collectors.drivers.s7_plan import (
    ADDRESS_FORMS,
    AREA_RE,
    AREAS,
    CPU_TYPES,
    DATA_TYPES,
    DB_RE,
    DEFAULT_CPU,
    DEFAULT_PDU,
    FORMATS,
    MAX_STRING,
    RECHECK_CYCLES,
    TYPES_BY_WIDTH,
    WIDTH_NAMES,
    S7Address,
    S7Item,
    S7Plan,
    S7Range,
    S7Request,
    build_requests,
    default_type,
    import_db_layout,
    parse_type,
)

_RETURN_CODE = re.compile(r"\(0x(?P<code>[0-9a-fA-F]{2})\)")
log = logging.getLogger(__name__)

def _return_code(exc: BaseException) -> int | None:
    m = _RETURN_CODE.search(str(exc))
    return int(m.group("code"), 16) if m else None


def _link_error(exc: BaseException) -> bool:
    """Errors after which the connection cannot be trusted: socket trouble, timeouts, lost packets."""
    return isinstance(exc, (S7ConnectionError, S7TimeoutError, S7PacketLostError, S7StalePacketError, OSError))


@register
class S7Driver(Driver):
    """S7 data through one python-snap7 client connection."""

    protocol = "S7"
    data_types = DATA_TYPES

    def __init__(self, settings: ConnectionSettings):
        super().__init__(settings)
        self.config = self.validate_config(settings.config)
        self._client: snap7.client.Client | None = None
        self._pdu: int | None = None
        self._reset_connection_state()

    def _reset_connection_state(self) -> None:
        self._bad_regions: dict[tuple[str, int], str] = {}
        self._bad_items: dict[str, str] = {}
        self._string_lengths: dict[str, int] = {}
        self._effective: dict[tuple, tuple[S7Plan, S7Plan]] = {}  # key -> (configured plan, its effective plan)
        self._cycles = 0

    # -- configuration ----------------------------------------------------------------------------------------------
    @classmethod
    def validate_config(cls, config: dict) -> dict:
        cfg = dict(config or {})
        cpu_in = cfg.get("cpu_type") or DEFAULT_CPU
        key = re.sub(r"[\s_-]", "", str(cpu_in)).upper()  # 'S7-1200', 's7 1200', '1200'
        key = key[2:] if key.startswith("S7") else key
        cpu = f"S7-{key}" if f"S7-{key}" in CPU_TYPES else None
        if cpu is None:
            raise ConfigError("cpu_type", f"{cpu_in!r} is not supported; use one of {', '.join(CPU_TYPES)}")
        rack = cls._int(cfg.get("rack", 0), "rack", 0, 7, "the rack number (0 for a single rack)")
        default_slot = CPU_TYPES[cpu]
        slot = cls._int(cfg.get("slot", default_slot), "slot", 0, 31,
                        f"the CPU's slot in its rack ({cpu}: usually {default_slot})")
        pdu = cls._int(cfg.get("pdu_size", cfg.get("pdu", DEFAULT_PDU)), "pdu_size", 240, 960,
                       "the PDU length to ask for, 240 to 960 bytes")
        string_length = cfg.get("string_length")
        if string_length is not None:
            string_length = cls._int(string_length, "string_length", 1, MAX_STRING,
                                     f"characters of a STRING, 1 to {MAX_STRING}")
        cfg.update(cpu_type=cpu, rack=rack, slot=slot, pdu_size=pdu, string_length=string_length)
        cfg.pop("pdu", None)
        return cfg

    @staticmethod
    def _int(value: Any, name: str, lo: int, hi: int, what: str) -> int:
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise ConfigError(name, f"{value!r} is out of range: {what}, {lo} to {hi}")
        return value

    @classmethod
    def parse_address(cls, address: str, data_type: str) -> S7Address:
        dtype, length = parse_type(data_type)
        if not isinstance(address, str) or not address.strip():
            raise ConfigError("address", f"the address is empty; {ADDRESS_FORMS}")
        text = address.strip().upper()
        m = DB_RE.match(text)
        if m:
            area, db = "DB", int(m.group("db"))
            if not 1 <= db <= 65535:
                raise ConfigError("address", f"{address!r}: DB numbers run from 1 to 65535")
        else:
            m = AREA_RE.match(text)
            if not m:
                hint = ""
                if text.startswith("DB") and "." not in text:
                    hint = " (a DB address has two parts: DB1.DBW4)"
                elif re.match(r"DB\d+\.[XBWD]\d", text):
                    hint = " (the second part repeats DB: DB1.DBW4, not DB1.W4)"
                elif re.match(r"[TCZ]\d", text):
                    hint = " (timers and counters are not supported)"
                raise ConfigError("address", f"{address!r} is not an S7 address{hint}; {ADDRESS_FORMS}")
            area = {"E": "I", "A": "Q"}.get(m.group("area"), m.group("area"))
            db = 0
        width = m.group("w") or "X"
        offset = int(m.group("off"))
        if offset > 65535:
            raise ConfigError("address", f"{address!r}: byte offset {offset} is out of range (0 to 65535)")
        bit = m.group("bit")
        prefix = f"DB{db}.DB" if area == "DB" else area
        if width == "X":
            if bit is None:
                raise ConfigError("address", f"{address!r}: a bit address needs the bit number, "
                                             f"e.g. {prefix}{'X' if area == 'DB' else ''}{offset}.0")
            bit = int(bit)
            if bit > 7:
                raise ConfigError("address", f"{address!r}: bit {bit} is out of range; bits are 0 to 7")
        elif bit is not None:
            raise ConfigError("address", f"{address!r}: only a bit address (DBX, or M/I/Q without B/W/D) has "
                                         f".<bit>; use {prefix}{width}{offset}")
        else:
            bit = None
        if dtype not in TYPES_BY_WIDTH[width]:
            raise ConfigError("data_type", f"{address!r} is {WIDTH_NAMES[width]}: its data type is one of "
                                           f"{', '.join(TYPES_BY_WIDTH[width])}, not {data_type}"
                                           + ("; a STRING starts at a byte address, e.g. DB1.DBB20"
                                              if dtype == "STRING" else ""))
        if area == "DB":
            canonical = f"DB{db}.DB{width}{offset}" + (f".{bit}" if bit is not None else "")
        else:
            canonical = f"{area}{'' if width == 'X' else width}{offset}" + (f".{bit}" if bit is not None else "")
        return S7Address(canonical, area, db, offset, bit, dtype, length)

    def plan(self, tags: list[TagSpec]) -> S7Plan:
        items: dict[tuple, S7Item] = {}
        for i, tag in enumerate(tags):
            try:
                addr = self.parse_address(tag.address, tag.data_type)
            except ConfigError as exc:
                raise ConfigError(f"tags[{i}].{exc.field}", f"tag {tag.name or tag.tag_id}: {exc.message}") from None
            if addr.data_type == "STRING" and addr.length is None and self.config["string_length"]:
                addr = S7Address(addr.text, addr.area, addr.db, addr.offset, None, "STRING",
                                 self.config["string_length"])
            key = (addr.text, addr.data_type, addr.length)
            if key in items:
                items[key].tag_ids.append(tag.tag_id)
            else:
                items[key] = S7Item(addr, [tag.tag_id], addr.size())
        item_list = list(items.values())
        pdu = self.config["pdu_size"]
        return S7Plan(pdu, build_requests(item_list, pdu), item_list)

    # -- link -----------------------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self.settings.port or PROTOCOL_DEFAULT_PORTS[self.protocol]

    @property
    def connected(self) -> bool:
        return self._client is not None

    @property
    def pdu_length(self) -> int | None:
        """The PDU length the CPU granted on this connection."""
        return self._pdu

    def _rack_slot_suggestion(self) -> str:
        c = self.config
        return (f"The device accepted TCP on port {self.port} but refused the S7 connection to rack {c['rack']}, "
                f"slot {c['slot']}: check rack and slot (S7-1200/1500: rack 0, slot 1; S7-300: rack 0, slot 2; "
                "S7-400: the CPU's slot in HW Config, often 3). S7-1200/1500 also need PUT/GET access allowed "
                "in the CPU's protection settings.")

    def _open(self) -> snap7.client.Client:
        s, c = self.settings, self.config
        client = snap7.client.Client()
        client.pdu_length = c["pdu_size"]  # asked for in the S7 setup; the CPU answers with what it grants
        client.max_parallel = 1  # the CPU grants one job at a time (max AMQ 1): never several PDUs in flight
        try:
            client.connect(s.host, c["rack"], c["slot"], self.port)
        except S7Error as exc:
            self._safe_disconnect(client)
            text = str(exc)
            if "TCP connection failed" in text or isinstance(exc, OSError):
                tcp_check(s.host, self.port, s.timeout_s)  # raises the precise refused / timeout / DNS error
            if isinstance(exc, S7TimeoutError) or "timed out" in text:
                raise DriverError(TIMEOUT, f"no S7 answer from {s.host}:{self.port} ({text})",
                                  self._rack_slot_suggestion()) from None
            raise DriverError(CANNOT_CONNECT, f"S7 connection to rack {c['rack']}, slot {c['slot']} refused "
                                              f"({text})", self._rack_slot_suggestion()) from None
        except OSError as exc:
            self._safe_disconnect(client)
            tcp_check(s.host, self.port, s.timeout_s)
            raise DriverError(CANNOT_CONNECT, f"{s.host}:{self.port}: {exc}", self._rack_slot_suggestion()) from None
        if client.connection is not None:  # the library connects with 5 s; reads use our timeout
            client.connection.timeout = s.timeout_s
            if client.connection.socket is not None:
                client.connection.socket.settimeout(s.timeout_s)
        return client

    def connect(self) -> None:
        self.close()
        client = self._open()
        self._client = client
        self._pdu = client.get_pdu_length()
        self._reset_connection_state()
        log.info("connected to S7 %s:%s rack %s slot %s, PDU %s", self.settings.host, self.port,
                 self.config["rack"], self.config["slot"], self._pdu)

    @staticmethod
    def _safe_disconnect(client) -> None:
        try:
            client.disconnect()
        except Exception:  # noqa: BLE001 - close never raises
            log.debug("S7 disconnect failed", exc_info=True)

    def close(self) -> None:
        client, self._client = self._client, None
        self._pdu = None
        if client is not None:
            self._safe_disconnect(client)

    def _require(self) -> snap7.client.Client:
        if self._client is None:
            raise DriverError(CANNOT_CONNECT, f"not connected to {self.settings.host}:{self.port}",
                              "Call connect() first.")
        return self._client

    def _link_lost(self, exc: BaseException, action: str) -> DriverError:
        self.close()
        if isinstance(exc, (S7TimeoutError, TimeoutError)):
            return DriverError(TIMEOUT, f"{action}: {self.settings.host} did not answer within "
                                        f"{self.settings.timeout_s:g} s",
                               "Check the network and that the PLC is powered and reachable.")
        if isinstance(exc, (S7PacketLostError, S7StalePacketError)):
            return DriverError(PROTOCOL_ERROR, f"{action}: replies out of sequence ({exc})",
                               "The collector reconnects.")
        return DriverError(CANNOT_CONNECT, f"{action}: the connection to {self.settings.host}:{self.port} was lost "
                                           f"({exc})", "The PLC closed the connection or went away; the collector "
                                                       "reconnects.")

    # -- reading ------------------------------------------------------------------------------------------------------
    def _effective_plan(self, plan: S7Plan) -> S7Plan:
        """The plan this connection runs: for the granted PDU, learned string lengths, without what is missing."""
        pdu = min(plan.pdu, self._pdu or plan.pdu)
        key = (id(plan), pdu, tuple(sorted(self._bad_regions)), tuple(sorted(self._bad_items)),
               tuple(sorted(self._string_lengths.items())))
        hit = self._effective.get(key)
        if hit is not None and hit[0] is plan:
            return hit[1]
        if (pdu == plan.pdu and not self._bad_regions and not self._bad_items
                and not any(i.address.data_type == "STRING" and i.address.length is None for i in plan.items)):
            eff = plan
        else:
            items = []
            for item in plan.items:
                a = item.address
                if a.region in self._bad_regions or a.text in self._bad_items:
                    continue
                size = item.size
                if a.data_type == "STRING" and a.length is None:
                    learned = self._string_lengths.get(a.text)
                    if learned is None:
                        continue  # its length is not known yet (the header read failed this cycle)
                    size = a.size(learned)
                items.append(S7Item(a, item.tag_ids, size))
            eff = S7Plan(pdu, build_requests(items, pdu, plan.max_gap), items, plan.max_gap)
        if len(self._effective) > 32:
            self._effective.clear()
        self._effective[key] = (plan, eff)
        return eff

    def _learn_string_lengths(self, plan: S7Plan) -> None:
        """Read the maximum-length byte of each STRING whose length the configuration leaves to the PLC."""
        todo = [i for i in plan.items if i.address.data_type == "STRING" and i.address.length is None
                and i.address.text not in self._string_lengths and i.address.region not in self._bad_regions
                and i.address.text not in self._bad_items]
        if not todo:
            return
        headers = [S7Item(i.address, i.tag_ids, 2) for i in todo]
        for req in build_requests(headers, min(plan.pdu, self._pdu or plan.pdu), max_gap=0):
            results = self._execute(req)
            for rng, result in zip(req.ranges, results, strict=False):
                for item in rng.items:
                    data = self._item_bytes(rng, item, result)
                    if isinstance(data, bytes) and len(data) == 2:
                        self._string_lengths[item.address.text] = min(data[0], MAX_STRING)

    def read(self, plan: S7Plan) -> dict[int, Reading]:
        self._require()
        self._cycles += 1
        if self._cycles % RECHECK_CYCLES == 0 and (self._bad_regions or self._bad_items):
            log.info("S7 %s: trying again %d missing DBs and %d missing addresses", self.settings.host,
                     len(self._bad_regions), len(self._bad_items))
            self._bad_regions.clear()
            self._bad_items.clear()
        self._learn_string_lengths(plan)
        eff = self._effective_plan(plan)
        out: dict[int, Reading] = {}
        for req in eff.requests:
            results = self._execute(req)
            for rng, result in zip(req.ranges, results, strict=False):
                if result.__class__ is bytes and len(result) == rng.size:
                    self._decode_range(rng, result, out)
                    continue
                for item in rng.items:
                    reading = self._decode(item, self._item_bytes(rng, item, result))
                    for tag_id in item.tag_ids:
                        out[tag_id] = reading
        for item in plan.items:  # left out: missing DB or address, or a string whose length is unknown
            if item.tag_ids[0] in out:
                continue
            a = item.address
            reason = (self._bad_regions.get(a.region) or self._bad_items.get(a.text)
                      or f"{PROTOCOL_ERROR}: {a.text}: the STRING's length could not be read")
            reading = Reading(None, BAD, reason)
            for tag_id in item.tag_ids:
                out[tag_id] = reading
        return out

    def _execute(self, req: S7Request) -> list[Any]:
        """Run one request. Per range: the bytes, or a dict {address text: bytes or reason} when the range had to
        be read item by item, or a reason (str) for all its items. Raises DriverError for the link."""
        client = self._require()
        try:
            if len(req.ranges) == 1:
                r = req.ranges[0]
                return [bytes(client.read_area(AREAS[r.area], r.db, r.start, r.size))]
            _code, data = client.read_multi_vars([
                {"area": AREAS[r.area], "db_number": r.db, "start": r.start, "size": r.size} for r in req.ranges])
            return [bytes(d) for d in data]
        except S7ProtocolError as exc:
            if _link_error(exc):
                raise self._link_lost(exc, "read") from None
            if len(req.ranges) == 1:
                return [self._range_failed(req.ranges[0], exc)]
            return [self._read_alone(r) for r in req.ranges]  # which item failed? ask range by range
        except (S7Error, OSError) as exc:
            raise self._link_lost(exc, "read") from None

    def _read_alone(self, rng: S7Range) -> Any:
        client = self._require()
        try:
            return bytes(client.read_area(AREAS[rng.area], rng.db, rng.start, rng.size))
        except S7ProtocolError as exc:
            if _link_error(exc):
                raise self._link_lost(exc, "read") from None
            return self._range_failed(rng, exc)
        except (S7Error, OSError) as exc:
            raise self._link_lost(exc, "read") from None

    def _range_failed(self, rng: S7Range, exc: S7ProtocolError) -> Any:
        code = _return_code(exc)
        first = rng.items[0].address
        if code == 0x0A:
            reason = f"{INVALID_ADDRESS}: {first.region_name} does not exist in the PLC"
            self._bad_regions[first.region] = reason
            log.warning("S7 %s: %s (%d tags BAD until it is checked again)", self.settings.host, reason[17:],
                        len(rng.items))
            return reason
        if code == 0x05:
            if len(rng.items) == 1:
                reason = (f"{INVALID_ADDRESS}: {first.text} ({rng.size} bytes) is beyond the end of "
                          f"{first.region_name}")
                self._bad_items[first.text] = reason
                return reason
            out = {}
            for item in rng.items:  # which of them lie past the end?
                alone = S7Range(rng.area, rng.db, item.start, item.size, [item])
                result = self._read_alone(alone)
                out[item.address.text] = result if isinstance(result, (bytes, str)) else result.get(item.address.text)
            return out
        if code == 0x03:
            return (f"{DEVICE_ERROR}: the PLC does not allow reading {first.region_name} ({exc}); S7-1200/1500: "
                    "allow PUT/GET access and switch off optimized block access for the DB")
        if "protocol error (class=" in str(exc):
            return (f"{DEVICE_ERROR}: the PLC refused the read of {rng.name} ({exc}); S7-1200/1500: allow PUT/GET "
                    "access in the CPU's protection settings")
        return f"{PROTOCOL_ERROR}: {rng.name}: {exc}"

    @staticmethod
    def _item_bytes(rng: S7Range, item: S7Item, result: Any) -> bytes | str:
        if isinstance(result, str):
            return result
        if isinstance(result, dict):
            return result.get(item.address.text, f"{PROTOCOL_ERROR}: {item.address.text}: not read")
        if len(result) != rng.size:  # a short (or long) reply: where its bytes belong cannot be trusted
            return (f"{PROTOCOL_ERROR}: {item.address.text}: short reply, the PLC sent {len(result)} of the "
                    f"{rng.size} bytes of {rng.name}")
        local = item.start - rng.start
        return result[local: local + item.size]

    def _decode_range(self, rng: S7Range, data: bytes, out: dict[int, Reading]) -> None:
        """A whole range's reply: numbers unpacked in place with precompiled struct unpackers (no slice per
        value), the rest through _decode. The same readings as _decode of each item's bytes."""
        table = rng.decoders
        if table is None:
            table = rng.decoders = [
                (item, struct.Struct(FORMATS[item.address.data_type]).unpack_from
                 if item.address.data_type in FORMATS and item.size == struct.calcsize(FORMATS[item.address.data_type])
                 else None, item.start - rng.start, item.address.data_type == "REAL")
                for item in rng.items]
        for item, unpack, local, real in table:
            if unpack is None:
                reading = self._decode(item, data[local: local + item.size])
            else:
                value = unpack(data, local)[0]
                reading = Reading(float(value) if real else value)
            for tag_id in item.tag_ids:
                out[tag_id] = reading

    @staticmethod
    def _decode(item: S7Item, data: bytes | str) -> Reading:
        if isinstance(data, str):
            return Reading(None, BAD, data)
        a = item.address
        t = a.data_type
        if t == "BOOL":
            return Reading(bool(data[0] >> a.bit & 1))
        if t == "CHAR":
            return Reading(data[:1].decode("latin-1"))
        if t == "STRING":
            declared = item.size - 2
            maximum, actual = data[0], data[1]
            text = data[2: 2 + min(actual, declared)].decode("latin-1")
            if actual > declared or (maximum and actual > maximum):
                return Reading(text, UNCERTAIN, f"{PROTOCOL_ERROR}: {a.text}: the string says {actual} characters "
                                                f"(maximum {maximum}), {declared} read")
            return Reading(text)
        value = struct.unpack(FORMATS[t], data)[0]
        if t == "REAL":
            return Reading(float(value))
        return Reading(int(value))

    # -- diagnostics --------------------------------------------------------------------------------------------------
    def test_connection(self, probe_address: str | None = None, probe_data_type: str | None = None) -> TestResult:
        """tcp, handshake (COTP connection to rack/slot + S7 setup), identity (CPU info, state, order code),
        probe_read (probe_address, else the first byte of the first DB, else MB0)."""
        s, c = self.settings, self.config
        steps: list[DiagnosticStep] = []
        identity: dict = {}
        holder: dict = {}

        def run(name, fn) -> bool:
            try:
                with Step(steps, name) as st:
                    fn(st)
                return True
            except Exception:  # noqa: BLE001 - recorded in the step
                return False

        def tcp(st):
            st.detail = f"connected to {tcp_check(s.host, self.port, s.timeout_s)}"

        def handshake(st):
            client = holder["client"] = self._open()
            st.detail = (f"COTP connection to rack {c['rack']}, slot {c['slot']} accepted; S7 setup: PDU "
                         f"{client.get_pdu_length()} bytes (asked {c['pdu_size']})")
            identity["pdu_length"] = client.get_pdu_length()

        def ident(st):
            client = holder["client"]
            missing = []
            try:
                state = client.get_cpu_state()
            except S7ProtocolError as exc:
                raise DriverError(PROTOCOL_ERROR, f"the device does not answer S7 requests ({exc})",
                                  "Check that it is a Siemens S7 CPU (or a CP of one) and the rack and slot.") \
                    from None
            except (S7Error, OSError) as exc:
                raise self._link_lost(exc, "identity") from None
            identity["cpu_state"] = {"S7CpuStatusRun": "RUN", "S7CpuStatusStop": "STOP"}.get(state, state)
            for what, fn in (("cpu_info", client.get_cpu_info), ("order_code", client.get_order_code),
                             ("cp_info", client.get_cp_info)):
                try:
                    value = fn()
                except S7ProtocolError as exc:  # not every CPU gives every SZL list
                    missing.append(f"{what} ({exc})")
                    continue
                except (S7Error, OSError) as exc:
                    raise self._link_lost(exc, "identity") from None
                if what == "cpu_info":
                    identity.update(module_type=_text(value.ModuleTypeName), serial=_text(value.SerialNumber),
                                    as_name=_text(value.ASName), module_name=_text(value.ModuleName),
                                    copyright=_text(value.Copyright))
                elif what == "order_code":
                    identity.update(order_code=_text(value.OrderCode),
                                    firmware=f"V{value.V1}.{value.V2}.{value.V3}")
                else:
                    identity.update(max_connections=value.MaxConnections)
            identity.update(cpu_type=c["cpu_type"], rack=c["rack"], slot=c["slot"])
            st.detail = (f"{identity.get('module_type', 'CPU')} {identity.get('order_code', '')} "
                         f"{identity.get('firmware', '')}, serial {identity.get('serial', '?')}, "
                         f"{identity['cpu_state']}").replace("  ", " ")
            if missing:
                st.detail += "; not available: " + "; ".join(missing)

        def probe(st):
            client = holder["client"]
            prober = S7Driver(self.settings)  # reads through this connection without touching our own
            prober._client, prober._pdu = client, client.get_pdu_length()
            try:
                if probe_address:
                    address, dtype = probe_address, probe_data_type or default_type(probe_address)
                else:
                    dbs = client.list_blocks_of_type(Block.DB, 1)
                    address, dtype = (f"DB{dbs[0]}.DBB0", "BYTE") if dbs else ("MB0", "BYTE")
                plan = prober.plan([TagSpec(0, address, dtype, "probe")])
                reading = prober.read(plan)[0]
            except (S7Error, OSError) as exc:
                raise self._link_lost(exc, "probe read") from None
            if reading.quality == BAD:
                kind = reading.reason.split(":", 1)[0] if reading.reason else PROTOCOL_ERROR
                raise DriverError(kind, f"probe read of {address}: {reading.reason}",
                                  "Check the address; S7-1200/1500: allow PUT/GET and use DBs without optimized "
                                  "block access.")
            st.detail = f"{address} = {reading.value!r} ({dtype})"

        try:
            run("tcp", tcp) and run("handshake", handshake) and run("identity", ident) and run("probe_read", probe)
        finally:
            if "client" in holder:
                self._safe_disconnect(holder["client"])
        return TestResult(all(step.ok for step in steps), steps, identity)

    # -- discovery --------------------------------------------------------------------------------------------------
    def discover(self, db_layouts: dict[int, str] | None = None, max_dbs: int = 1024,
                 **_options) -> list[DiscoveredTag]:
        """The data blocks with their sizes (classic S7 has no symbols). db_layouts maps a DB number to a CSV
        layout (see import_db_layout) whose tags become that DB's children."""
        temporary = self._client is None
        if temporary:
            self.connect()
        try:
            client = self._require()
            try:
                numbers = client.list_blocks_of_type(Block.DB, max_dbs)
            except S7ProtocolError as exc:
                if _link_error(exc):
                    raise self._link_lost(exc, "discover") from None
                raise DriverError(DEVICE_ERROR, f"the PLC does not list its blocks ({exc})",
                                  "Some CPUs refuse the block list; enter the DB numbers and a layout instead.") \
                    from None
            out = []
            for n in sorted(numbers):
                size: int | None = None
                note = ""
                try:
                    info = client.get_block_info(Block.DB, n)
                    size = int(info.MC7Size) or None
                    author = _text(info.Author)
                    note = f", author {author}" if author else ""
                except S7ProtocolError as exc:
                    if _link_error(exc):
                        raise self._link_lost(exc, "discover") from None
                    note = f", size unknown ({exc})"
                desc = f"data block, {size} bytes{note}" if size else f"data block{note}"
                node = DiscoveredTag(f"DB{n}", "DB", f"DB{n}", desc, None)
                if db_layouts and n in db_layouts:
                    node.children = import_db_layout(db_layouts[n], db_number=n)
                out.append(node)
            return out
        except (S7Error, OSError) as exc:
            raise self._link_lost(exc, "discover") from None
        finally:
            if temporary:
                self.close()


def _text(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return value.split(b"\x00", 1)[0].decode("latin-1").strip()
    return str(value).strip()


