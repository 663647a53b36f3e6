"""What each simulated PLC exposes, in each protocol's natural addressing. The single source of the address maps:
the servers, endpoints() and the tables in plant/README.md (``python -m plant --print-maps``) all come from here.

Every machine first gets a set of *canonical values* (:func:`canonical_values`); each protocol maps them:

* S7: one data block (DB1 unless the layout says otherwise), big-endian, the layout in ``S7_FIELDS``.
* Modbus TCP: holding registers ``MODBUS_HR`` and coils ``MODBUS_COILS``, zero-based, unit id 1; 32-bit values
  take two registers, high word first ("big" word order), big-endian bytes in each register. Discrete inputs
  mirror the coils and input registers mirror the holding registers (read-only copies).
* OPC-UA: ``Objects/<machine id>/<name>``, node ids ``ns=<urn:oee:plant>;s=<machine id>.<name>`` (``OPCUA_VARS``).
* EtherNet/IP (ControlLogix): controller tags, per-station tags and program tags (:func:`logix_tag_defs`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from .layout import MachineSpec
from .model import AMBIENT_C, MachineModel, State

DINT_MAX = 2**31 - 1
N_STATIONS = 8

ROLES: dict[str, str] = {
    "Running": "state.running",
    "Faulted": "state.faulted",
    "Stopped": "state.stopped",
    "State": "state.code",
    "ProductionCount": "counter.total",
    "GoodCount": "counter.good",
    "RejectCount": "counter.reject",
    "LastFaultCode": "fault.code",
    "CycleTime": "cycle.time",
    "IdealCycleTime": "cycle.ideal_time",
    "ProductCode": "product.code",
    "OrderId": "order.id",
    "OrderNumber": "order.id",
}

# Values a client may write and the model acts on (everything else is overwritten by the PLC at the next tick).
WRITABLE = ("ProductionCount", "GoodCount", "RejectCount", "ProductCode", "OrderId", "OrderNumber", "CounterReset")

DESCRIPTIONS: dict[str, str] = {
    "ProductionCount": "units made (good + reject) since the last reset; write to preset",
    "GoodCount": "good units since the last reset; write to preset",
    "RejectCount": "rejected units since the last reset; write to preset",
    "State": "1 running, 2 idle/starved, 3 blocked, 4 faulted, 5 planned stop, 6 changeover",
    "LastFaultCode": "code of the latest fault (kept after it is cleared)",
    "ActiveFaultCode": "code of the fault now active, 0 when not faulted",
    "FaultText": "name of the active fault",
    "FaultCount": "faults since the PLC started",
    "ProductCode": "product now made; write a code of the machine's product list to change over",
    "ProductName": "name of the product",
    "OrderId": "work order now running; write to start a new order",
    "OrderNumber": "numeric part of OrderId; write to start order ORD-<n>",
    "OrderQuantity": "good units the order asks for",
    "OrderGood": "good units made on the order",
    "ShiftNumber": "1-based index of the shift now running (A=1, ...)",
    "ShiftName": "name of the shift now running",
    "Running": "state 1",
    "Faulted": "state 4",
    "Stopped": "states 2, 3, 5, 6 (stopped, not faulted)",
    "Starved": "state 2",
    "Blocked": "state 3",
    "PlannedStop": "state 5",
    "Changeover": "state 6",
    "CounterReset": "write 1/true: all three counters to 0 (reads back 0)",
    "Heartbeat": "sim seconds, wrapping",
    "CycleTime": "seconds the last unit took (micro-stops included)",
    "IdealCycleTime": "seconds per unit at 100 % speed for this product",
    "Speed": "units per minute (0 when not running)",
    "SpeedPct": "speed in % of ideal (0 when not running)",
    "MotorCurrent": "main drive current, A",
    "Temperature1": "station 1 temperature, degC",
    "Temperature2": "station 2 temperature, degC",
    "AirPressure": "supply air, bar",
    "Vibration": "main drive vibration, mm/s",
    "StationTemps": "temperatures of stations 1..8, degC",
}


def canonical_values(m: MachineModel) -> dict[str, Any]:
    """Everything a simulated PLC shows about one machine, by canonical name."""
    st = m.state
    c = m.counters
    temps = m.station_temps()
    temps += [AMBIENT_C] * (N_STATIONS - len(temps))
    return {
        "ProductionCount": c["total"],
        "GoodCount": c["good"],
        "RejectCount": c["reject"],
        "State": int(st),
        "Running": st == State.RUNNING,
        "Faulted": st == State.FAULTED,
        "Stopped": st not in (State.RUNNING, State.FAULTED),
        "Starved": st == State.IDLE,
        "Blocked": st == State.BLOCKED,
        "PlannedStop": st == State.PLANNED_STOP,
        "Changeover": st == State.CHANGEOVER,
        "CounterReset": False,
        "LastFaultCode": m.last_fault_code,
        "ActiveFaultCode": m.fault_code,
        "FaultText": m.fault_name,
        "FaultCount": m.fault_count % (DINT_MAX + 1),
        "FaultHistory": list(m.fault_history),
        "ProductCode": m.product.code,
        "ProductName": m.product.name,
        "OrderId": m.order_id,
        "OrderNumber": m.order_no % 2**32,
        "OrderQuantity": m.order_qty,
        "OrderGood": min(m.order_good, DINT_MAX),
        "ShiftNumber": m.shift_index + 1,
        "ShiftName": m.shift_name,
        "Heartbeat": int(m.now),
        "CycleTime": round(m.last_cycle_time, 4),
        "IdealCycleTime": m.product.ideal_cycle_time,
        "Speed": m.speed(),
        "SpeedPct": m.speed_pct(),
        "MotorCurrent": m.motor_current(),
        "Temperature1": temps[0],
        "Temperature2": temps[1],
        "AirPressure": m.air_pressure(),
        "Vibration": m.vibration(),
        "StationTemps": temps,
        "StateSeconds": m.now - m.state_since,
        "TotalParts": m.totals["total"],
        "TotalRejects": m.totals["reject"],
    }


# --------------------------------------------------------------------------------------------------------------
# S7: one data block
# --------------------------------------------------------------------------------------------------------------

S7_STRING_LEN = 20


@dataclass(frozen=True)
class S7Field:
    name: str
    offset: int
    data_type: str  # DINT, INT, REAL, BOOL, BYTE, STRING
    bit: int = 0
    length: int = 0  # STRING: maximum characters

    @property
    def size(self) -> int:
        return {"DINT": 4, "INT": 2, "REAL": 4, "BOOL": 1, "BYTE": 1, "STRING": 2 + self.length}[self.data_type]

    def address(self, db: int) -> str:
        if self.data_type == "BOOL":
            return f"DB{db}.DBX{self.offset}.{self.bit}"
        if self.data_type in ("BYTE", "STRING"):
            return f"DB{db}.DBB{self.offset}"
        if self.data_type == "INT":
            return f"DB{db}.DBW{self.offset}"
        return f"DB{db}.DBD{self.offset}"


S7_FIELDS: tuple[S7Field, ...] = (
    S7Field("ProductionCount", 0, "DINT"),
    S7Field("GoodCount", 4, "DINT"),
    S7Field("RejectCount", 8, "DINT"),
    S7Field("State", 12, "INT"),
    S7Field("LastFaultCode", 14, "INT"),
    S7Field("ProductCode", 16, "INT"),
    S7Field("ShiftNumber", 18, "INT"),
    S7Field("Running", 20, "BOOL", 0),
    S7Field("Faulted", 20, "BOOL", 1),
    S7Field("Stopped", 20, "BOOL", 2),
    S7Field("Starved", 20, "BOOL", 3),
    S7Field("Blocked", 20, "BOOL", 4),
    S7Field("PlannedStop", 20, "BOOL", 5),
    S7Field("Changeover", 20, "BOOL", 6),
    S7Field("CounterReset", 20, "BOOL", 7),
    S7Field("Heartbeat", 21, "BYTE"),
    S7Field("CycleTime", 22, "REAL"),
    S7Field("IdealCycleTime", 26, "REAL"),
    S7Field("Speed", 30, "REAL"),
    S7Field("SpeedPct", 34, "REAL"),
    S7Field("MotorCurrent", 38, "REAL"),
    S7Field("Temperature1", 42, "REAL"),
    S7Field("Temperature2", 46, "REAL"),
    S7Field("AirPressure", 50, "REAL"),
    S7Field("Vibration", 54, "REAL"),
    S7Field("ActiveFaultCode", 58, "INT"),
    S7Field("FaultCount", 60, "DINT"),
    S7Field("OrderId", 64, "STRING", length=S7_STRING_LEN),
    S7Field("OrderQuantity", 86, "DINT"),
    S7Field("OrderGood", 90, "DINT"),
)
S7_DB_SIZE = 96  # bytes 94..95 are spare


def _clamp_int(v: int, lo: int, hi: int) -> int:
    return lo if v < lo else hi if v > hi else v


def s7_encode(values: dict[str, Any], image: bytearray) -> None:
    """Write the canonical values into a DB image (big-endian, S7 STRING = max len, actual len, chars)."""
    for f in S7_FIELDS:
        v = values[f.name]
        o = f.offset
        t = f.data_type
        if t == "DINT":
            struct.pack_into(">i", image, o, _clamp_int(int(v), -(2**31), DINT_MAX))
        elif t == "INT":
            struct.pack_into(">h", image, o, _clamp_int(int(v), -32768, 32767))
        elif t == "REAL":
            struct.pack_into(">f", image, o, float(v))
        elif t == "BYTE":
            image[o] = int(v) & 0xFF
        elif t == "BOOL":
            if v:
                image[o] |= 1 << f.bit
            else:
                image[o] &= ~(1 << f.bit) & 0xFF
        elif t == "STRING":
            raw = str(v).encode("latin-1", "replace")[: f.length]
            image[o] = f.length
            image[o + 1] = len(raw)
            image[o + 2: o + 2 + f.length] = raw.ljust(f.length, b"\x00")


def s7_decode(f: S7Field, image: bytes | bytearray) -> Any:
    o = f.offset
    t = f.data_type
    if t == "DINT":
        return struct.unpack_from(">i", image, o)[0]
    if t == "INT":
        return struct.unpack_from(">h", image, o)[0]
    if t == "REAL":
        return struct.unpack_from(">f", image, o)[0]
    if t == "BYTE":
        return image[o]
    if t == "BOOL":
        return bool(image[o] >> f.bit & 1)
    n = min(image[o + 1], f.length)
    return bytes(image[o + 2: o + 2 + n]).decode("latin-1")


def s7_fields_touched(start: int, length: int) -> list[S7Field]:
    """The fields a write of ``length`` bytes at ``start`` overlaps (for a BOOL: its byte)."""
    end = start + length
    return [f for f in S7_FIELDS if f.offset < end and start < f.offset + f.size]


# --------------------------------------------------------------------------------------------------------------
# Modbus: holding registers and coils
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModbusField:
    name: str
    address: int  # zero-based
    data_type: str  # UINT16, INT16, UINT32, INT32, FLOAT32, BOOL (coil)

    @property
    def count(self) -> int:
        return 2 if self.data_type in ("UINT32", "INT32", "FLOAT32") else 1


MODBUS_HR: tuple[ModbusField, ...] = (
    ModbusField("ProductionCount", 0, "UINT32"),
    ModbusField("GoodCount", 2, "UINT32"),
    ModbusField("RejectCount", 4, "UINT32"),
    ModbusField("State", 6, "UINT16"),
    ModbusField("LastFaultCode", 7, "UINT16"),
    ModbusField("ProductCode", 8, "UINT16"),
    ModbusField("ShiftNumber", 9, "UINT16"),
    ModbusField("CycleTime", 10, "FLOAT32"),
    ModbusField("IdealCycleTime", 12, "FLOAT32"),
    ModbusField("Speed", 14, "FLOAT32"),
    ModbusField("SpeedPct", 16, "FLOAT32"),
    ModbusField("MotorCurrent", 18, "FLOAT32"),
    ModbusField("Temperature1", 20, "FLOAT32"),
    ModbusField("Temperature2", 22, "FLOAT32"),
    ModbusField("AirPressure", 24, "FLOAT32"),
    ModbusField("Vibration", 26, "FLOAT32"),
    ModbusField("OrderNumber", 28, "UINT32"),
    ModbusField("ActiveFaultCode", 30, "UINT16"),
    ModbusField("Heartbeat", 31, "UINT16"),
    ModbusField("OrderQuantity", 32, "UINT32"),
    ModbusField("OrderGood", 34, "UINT32"),
)
MODBUS_HR_COUNT = 36  # HR0..HR35; any read beyond answers exception 2 (illegal data address)

MODBUS_COILS: tuple[ModbusField, ...] = (
    ModbusField("Running", 0, "BOOL"),
    ModbusField("Faulted", 1, "BOOL"),
    ModbusField("Stopped", 2, "BOOL"),
    ModbusField("Starved", 3, "BOOL"),
    ModbusField("Blocked", 4, "BOOL"),
    ModbusField("PlannedStop", 5, "BOOL"),
    ModbusField("Changeover", 6, "BOOL"),
    ModbusField("CounterReset", 7, "BOOL"),
)
MODBUS_COIL_COUNT = 16  # C0..C15 (C8..C15 spare, read 0); beyond: exception 2


def modbus_registers(values: dict[str, Any]) -> list[int]:
    regs = [0] * MODBUS_HR_COUNT
    for f in MODBUS_HR:
        v = values[f.name]
        a = f.address
        t = f.data_type
        if t == "UINT16":
            regs[a] = int(v) & 0xFFFF
        elif t == "INT16":
            regs[a] = _clamp_int(int(v), -32768, 32767) & 0xFFFF
        elif t in ("UINT32", "INT32"):
            x = int(v) & 0xFFFFFFFF
            regs[a], regs[a + 1] = x >> 16, x & 0xFFFF
        else:  # FLOAT32, big-endian bytes, high word first
            hi, lo = struct.unpack(">HH", struct.pack(">f", float(v)))
            regs[a], regs[a + 1] = hi, lo
    return regs


def modbus_decode(f: ModbusField, regs: list[int], base: int = 0) -> Any:
    a = f.address - base
    t = f.data_type
    if t == "UINT16":
        return regs[a]
    if t == "INT16":
        return regs[a] - 0x10000 if regs[a] & 0x8000 else regs[a]
    x = (regs[a] << 16) | regs[a + 1]
    if t == "UINT32":
        return x
    if t == "INT32":
        return x - 2**32 if x & 0x80000000 else x
    return struct.unpack(">f", struct.pack(">I", x))[0]


def modbus_coils(values: dict[str, Any]) -> list[bool]:
    bits = [False] * MODBUS_COIL_COUNT
    for f in MODBUS_COILS:
        bits[f.address] = bool(values[f.name])
    return bits


# --------------------------------------------------------------------------------------------------------------
# OPC-UA: one object per machine
# --------------------------------------------------------------------------------------------------------------

OPCUA_NAMESPACE = "urn:oee:plant"

OPCUA_VARS: tuple[tuple[str, str], ...] = (  # (browse name, OPC-UA built-in type)
    ("ProductionCount", "Int32"),
    ("GoodCount", "Int32"),
    ("RejectCount", "Int32"),
    ("State", "Int32"),
    ("Running", "Boolean"),
    ("Faulted", "Boolean"),
    ("Stopped", "Boolean"),
    ("Starved", "Boolean"),
    ("Blocked", "Boolean"),
    ("PlannedStop", "Boolean"),
    ("Changeover", "Boolean"),
    ("CounterReset", "Boolean"),
    ("CycleTime", "Double"),
    ("IdealCycleTime", "Double"),
    ("LastFaultCode", "Int32"),
    ("ActiveFaultCode", "Int32"),
    ("FaultText", "String"),
    ("FaultCount", "Int32"),
    ("ProductCode", "Int32"),
    ("ProductName", "String"),
    ("OrderId", "String"),
    ("OrderQuantity", "Int32"),
    ("OrderGood", "Int32"),
    ("ShiftNumber", "Int32"),
    ("ShiftName", "String"),
    ("Speed", "Double"),
    ("SpeedPct", "Double"),
    ("MotorCurrent", "Double"),
    ("AirPressure", "Double"),
    ("Vibration", "Double"),
    ("Temperature1", "Double"),
    ("Temperature2", "Double"),
    ("StationTemps", "Double[8]"),
)


def opcua_node_id(ns: int, machine_id: str, name: str) -> str:
    return f"ns={ns};s={machine_id}.{name}"


# --------------------------------------------------------------------------------------------------------------
# ControlLogix: controller tags, per-station tags, program tags
# --------------------------------------------------------------------------------------------------------------

_LOGIX_CONTROLLER: tuple[tuple[str, str, int], ...] = (  # (tag, type, array length or 0)
    ("ProductionCount", "DINT", 0),
    ("GoodCount", "DINT", 0),
    ("RejectCount", "DINT", 0),
    ("State", "DINT", 0),
    ("Running", "BOOL", 0),
    ("Faulted", "BOOL", 0),
    ("Stopped", "BOOL", 0),
    ("Starved", "BOOL", 0),
    ("Blocked", "BOOL", 0),
    ("PlannedStop", "BOOL", 0),
    ("Changeover", "BOOL", 0),
    ("CounterReset", "BOOL", 0),
    ("CycleTime", "REAL", 0),
    ("IdealCycleTime", "REAL", 0),
    ("LastFaultCode", "DINT", 0),
    ("ActiveFaultCode", "DINT", 0),
    ("FaultCount", "DINT", 0),
    ("FaultHistory", "DINT", 10),
    ("ProductCode", "DINT", 0),
    ("OrderId", "STRING", 0),
    ("OrderQuantity", "DINT", 0),
    ("OrderGood", "DINT", 0),
    ("ShiftNumber", "DINT", 0),
    ("Heartbeat", "DINT", 0),
    ("Speed", "REAL", 0),
    ("SpeedPct", "REAL", 0),
    ("MotorCurrent", "REAL", 0),
    ("AirPressure", "REAL", 0),
    ("Vibration", "REAL", 0),
    ("StationTemps", "REAL", N_STATIONS),
)
_LOGIX_STATION: tuple[tuple[str, str], ...] = (
    ("Running", "BOOL"),
    ("PartPresent", "BOOL"),
    ("Faulted", "BOOL"),
    ("Count", "DINT"),
    ("CycleTime", "REAL"),
    ("Temp", "REAL"),
    ("MotorCurrent", "REAL"),
    ("Vibration", "REAL"),
)
_LOGIX_PROGRAM: tuple[tuple[str, str], ...] = (
    ("Program:MainProgram.StepNo", "INT"),
    ("Program:MainProgram.SeqTimer", "DINT"),
    ("Program:MainProgram.AutoMode", "BOOL"),
    ("Program:MainProgram.CycleStart", "BOOL"),
    ("Program:Conveyor.Speed", "REAL"),
    ("Program:Conveyor.Running", "BOOL"),
    ("Program:Conveyor.JamDetected", "BOOL"),
    ("Program:Quality.RejectRate", "REAL"),
    ("Program:Quality.RejectTotal", "DINT"),
    ("Program:Safety.EStopOK", "BOOL"),
    ("Program:Safety.GuardsClosed", "BOOL"),
    ("Program:Recipe.Name", "STRING"),
    ("Program:Recipe.Number", "DINT"),
    ("Program:Recipe.TargetQty", "DINT"),
)
_STEP_NO = {State.RUNNING: 100, State.IDLE: 20, State.BLOCKED: 30, State.FAULTED: 900, State.PLANNED_STOP: 0,
            State.CHANGEOVER: 500}
_JAM_CODES = (101, 103, 602)


def station_tag(i: int, suffix: str) -> str:
    return f"Stn{i + 1:02d}_{suffix}"


def logix_tag_defs() -> dict[str, tuple[str, int]]:
    """{tag name: (Logix type, array length or 0)} of every controller and program tag (108 tags)."""
    out: dict[str, tuple[str, int]] = {name: (t, n) for name, t, n in _LOGIX_CONTROLLER}
    for i in range(N_STATIONS):
        for suffix, t in _LOGIX_STATION:
            out[station_tag(i, suffix)] = (t, 0)
    for name, t in _LOGIX_PROGRAM:
        out[name] = (t, 0)
    return out


def logix_default(t: str, n: int) -> Any:
    one = {"BOOL": False, "DINT": 0, "INT": 0, "REAL": 0.0, "STRING": ""}[t]
    return [one] * n if n else one


def logix_values(m: MachineModel, v: dict[str, Any]) -> dict[str, Any]:
    """Values of every Logix tag from the canonical values (and the model for per-station detail)."""
    out: dict[str, Any] = {name: v[name] for name, _t, _n in _LOGIX_CONTROLLER}
    out["Heartbeat"] = v["Heartbeat"] % (DINT_MAX + 1)
    st = m.state
    running = st == State.RUNNING
    faulted = st == State.FAULTED
    total = v["TotalParts"]
    temps = v["StationTemps"]
    for i in range(N_STATIONS):
        out[station_tag(i, "Running")] = running
        out[station_tag(i, "PartPresent")] = running and (total + i) % 3 != 0
        out[station_tag(i, "Faulted")] = faulted and m.fault_code % N_STATIONS == i
        out[station_tag(i, "Count")] = total % (DINT_MAX + 1)
        out[station_tag(i, "CycleTime")] = round(v["CycleTime"] * (0.62 + 0.04 * i), 4)
        out[station_tag(i, "Temp")] = temps[i]
        out[station_tag(i, "MotorCurrent")] = round(v["MotorCurrent"] * (0.35 + 0.05 * (i % 4)), 3)
        out[station_tag(i, "Vibration")] = round(v["Vibration"] * (0.8 + 0.05 * (i % 5)), 3)
    shift_total = v["ProductionCount"]
    out["Program:MainProgram.StepNo"] = _STEP_NO[st]
    out["Program:MainProgram.SeqTimer"] = min(int(v["StateSeconds"] * 1000), DINT_MAX)
    out["Program:MainProgram.AutoMode"] = st not in (State.PLANNED_STOP, State.CHANGEOVER)
    out["Program:MainProgram.CycleStart"] = running
    out["Program:Conveyor.Speed"] = round(v["Speed"] * 0.25, 3)
    out["Program:Conveyor.Running"] = st in (State.RUNNING, State.BLOCKED)
    out["Program:Conveyor.JamDetected"] = faulted and m.fault_code in _JAM_CODES
    out["Program:Quality.RejectRate"] = round(100.0 * v["RejectCount"] / shift_total, 3) if shift_total else 0.0
    out["Program:Quality.RejectTotal"] = v["TotalRejects"] % (DINT_MAX + 1)
    out["Program:Safety.EStopOK"] = not (faulted and m.fault_code == 302)
    out["Program:Safety.GuardsClosed"] = not (faulted and m.fault_code == 301)
    out["Program:Recipe.Name"] = v["ProductName"]
    out["Program:Recipe.Number"] = v["ProductCode"]
    out["Program:Recipe.TargetQty"] = v["OrderQuantity"]
    return out


# --------------------------------------------------------------------------------------------------------------
# Endpoint tag lists
# --------------------------------------------------------------------------------------------------------------


def _tag(name: str, address: str, data_type: str, **extra: Any) -> dict[str, Any]:
    base = name.split("[")[0]
    return {"name": name, "address": address, "data_type": data_type, "role": ROLES.get(base),
            "writable": base in WRITABLE, **extra}


# Sparkplug B (plant.sparkplug_edge): the scalar OPC-UA variables as device metrics by name, Sparkplug type names.
_SPARKPLUG_TYPES = {"Int32": "INT32", "Boolean": "BOOLEAN", "Double": "DOUBLE", "String": "STRING"}
SPARKPLUG_VARS: tuple[tuple[str, str], ...] = tuple(
    (name, _SPARKPLUG_TYPES[t]) for name, t in OPCUA_VARS if t in _SPARKPLUG_TYPES)


def endpoint_tags(spec: MachineSpec, *, opcua_ns: int = 2) -> list[dict[str, Any]]:
    """[{name, address, data_type, role, writable}] in the protocol's natural addressing."""
    p = spec.protocol
    if p == "SPARKPLUG_B":
        return [{**_tag(name, name, t), "writable": False} for name, t in SPARKPLUG_VARS]
    if p == "S7":
        db = spec.options.get("db", 1)
        return [_tag(f.name, f.address(db), f.data_type, **({"length": f.length} if f.length else {}))
                for f in S7_FIELDS]
    if p == "MODBUS":
        tags = [_tag(f.name, f"HR{f.address}", f.data_type) for f in MODBUS_HR]
        tags += [_tag(f.name, f"C{f.address}", "BOOL") for f in MODBUS_COILS]
        return tags
    if p == "OPCUA":
        out = []
        for name, t in OPCUA_VARS:
            out.append(_tag(name, opcua_node_id(opcua_ns, spec.id, name), t))
        return out
    out = []
    for name, (t, n) in logix_tag_defs().items():
        if n:
            out.extend(_tag(f"{name}[{i}]", f"{name}[{i}]", t) for i in range(n))
        else:
            out.append(_tag(name, name, t))
    return out


# --------------------------------------------------------------------------------------------------------------
# Documentation tables (plant/README.md embeds this output; tests/plant/test_docs.py keeps them in step)
# --------------------------------------------------------------------------------------------------------------


def markdown_maps() -> str:
    lines = ["### S7 data block (DB1 unless the machine's `s7.db` says otherwise; big-endian)", "",
             "| Address | Type | Name | Role | Writable | Meaning |", "|---|---|---|---|---|---|"]
    for f in S7_FIELDS:
        t = f"STRING[{f.length}]" if f.data_type == "STRING" else f.data_type
        lines.append(f"| {f.address(1)} | {t} | {f.name} | {ROLES.get(f.name) or ''} | "
                     f"{'yes' if f.name in WRITABLE else ''} | {DESCRIPTIONS.get(f.name, '')} |")
    lines += ["", f"DB length {S7_DB_SIZE} bytes. STRING is the S7 format: byte 0 maximum length "
                  f"({S7_STRING_LEN}), byte 1 actual length, then the characters (read it with "
                  "`read_tag('DB1:64:STRING[20]')` or `db_read_string`).", ""]
    lines += ["### Modbus TCP (unit id 1, zero-based addresses, 32-bit values high word first)", "",
              "| Address | Type | Name | Role | Writable | Meaning |", "|---|---|---|---|---|---|"]
    for f in MODBUS_HR:
        addr = f"HR{f.address}" if f.count == 1 else f"HR{f.address}-{f.address + 1}"
        lines.append(f"| {addr} | {f.data_type} | {f.name} | {ROLES.get(f.name) or ''} | "
                     f"{'yes' if f.name in WRITABLE else ''} | {DESCRIPTIONS.get(f.name, '')} |")
    for f in MODBUS_COILS:
        lines.append(f"| C{f.address} | coil | {f.name} | {ROLES.get(f.name) or ''} | "
                     f"{'yes' if f.name in WRITABLE else ''} | {DESCRIPTIONS.get(f.name, '')} |")
    lines += ["", f"Holding registers HR0..HR{MODBUS_HR_COUNT - 1} and coils C0..C{MODBUS_COIL_COUNT - 1} exist "
                  "(C8..C15 spare, read 0); reading past them answers exception 2 (illegal data address), as does "
                  "writing a read-only register or coil. Input registers mirror the holding registers and discrete "
                  "inputs mirror the coils (read-only). Decode 32-bit values with "
                  "`ModbusTcpClient.convert_from_registers(regs, DATATYPE.UINT32, word_order=\"big\")`.", ""]
    lines += ["### OPC-UA (namespace `urn:oee:plant`, node ids `ns=<index>;s=<machine id>.<name>`)", "",
              "| Browse name | Type | Role | Model acts on writes | Meaning |", "|---|---|---|---|---|"]
    for name, t in OPCUA_VARS:
        lines.append(f"| {name} | {t} | {ROLES.get(name) or ''} | {'yes' if name in WRITABLE else ''} | "
                     f"{DESCRIPTIONS.get(name, '')} |")
    defs = logix_tag_defs()
    lines += ["", "### ControlLogix (EtherNet/IP, slot 0)", "",
              f"{len(defs)} tags: controller tags, eight stations (`Stn01_` .. `Stn08_`) and program tags.", "",
              "| Tag | Type | Role | Writable |", "|---|---|---|---|"]
    for name, t, n in _LOGIX_CONTROLLER:
        lines.append(f"| {name} | {t}{f'[{n}]' if n else ''} | {ROLES.get(name) or ''} | "
                     f"{'yes' if name in WRITABLE else ''} |")
    lines.append("| Stn01_*..Stn08_* | " + ", ".join(f"{s} {t}" for s, t in _LOGIX_STATION) + " | | |")
    for name, t in _LOGIX_PROGRAM:
        lines.append(f"| {name} | {t} | | |")
    return "\n".join(lines) + "\n"
