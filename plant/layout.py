"""Plant layout: the YAML file that describes the simulated site, validated once.

A layout names the site (id, name, time zone), the shift pattern and daily breaks, a product catalogue, a
fault catalogue, defaults for every machine, and the areas -> lines -> machines tree. See
``plant/default_plant.yaml`` for a commented example and ``plant/README.md`` for the field reference.

Every error raises :class:`PlantFileError` naming the file, the YAML line and the field at fault, e.g.::

    default_plant.yaml, line 88: areas[1].lines[0].machines[0].protocol (machine LINE-005): unknown protocol
    'S8'; expected one of ETHERNET_IP, S7, OPCUA, MODBUS
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

__all__ = [
    "PROTOCOLS",
    "BreakSpec",
    "Distribution",
    "FaultSpec",
    "Layout",
    "MachineSpec",
    "PlantFileError",
    "ProductSpec",
    "ShiftSpec",
    "StopSpec",
    "default_layout",
    "default_layout_path",
    "load_layout",
    "parse_layout",
]

PROTOCOLS = ("ETHERNET_IP", "S7", "OPCUA", "MODBUS", "SPARKPLUG_B")
DINT_MODULUS = 2**31  # a DINT counter counts 0 .. 2,147,483,647 and then starts again at 0
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
_HHMM_RE = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class PlantFileError(ValueError):
    """An invalid plant layout. ``str(err)`` names the file, the line and the field."""

    def __init__(self, message: str, *, source: str = "<plant>", line: int | None = None, field: str | None = None):
        self.source = source
        self.line = line
        self.field = field
        self.reason = message
        where = source if line is None else f"{source}, line {line}"
        text = f"{where}: {field}: {message}" if field else f"{where}: {message}"
        super().__init__(text)


# --------------------------------------------------------------------------------------------------------------
# Specs (immutable; the model only reads them)
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Distribution:
    """A duration distribution in seconds: exponential(mean_s), lognormal(median_s, sigma), uniform(min_s, max_s)
    or fixed(value_s)."""

    kind: str
    a: float  # exponential: mean; lognormal: median; uniform: min; fixed: value
    b: float = 0.0  # lognormal: sigma; uniform: max

    def draw(self, rng) -> float:
        if self.kind == "exponential":
            return rng.expovariate(1.0 / self.a)
        if self.kind == "lognormal":
            return rng.lognormvariate(math.log(self.a), self.b)
        if self.kind == "uniform":
            return rng.uniform(self.a, self.b)
        return self.a

    @property
    def mean(self) -> float:
        if self.kind == "exponential":
            return self.a
        if self.kind == "lognormal":
            return self.a * math.exp(self.b * self.b / 2)
        if self.kind == "uniform":
            return (self.a + self.b) / 2
        return self.a

    def describe(self) -> str:
        if self.kind == "exponential":
            return f"exponential(mean {self.a:g} s)"
        if self.kind == "lognormal":
            return f"lognormal(median {self.a:g} s, sigma {self.b:g})"
        if self.kind == "uniform":
            return f"uniform({self.a:g}..{self.b:g} s)"
        return f"fixed({self.a:g} s)"


@dataclass(frozen=True)
class ProductSpec:
    code: int
    name: str
    ideal_cycle_time: float  # seconds per part at 100 % speed


@dataclass(frozen=True)
class FaultSpec:
    code: int
    name: str
    mtbf_s: float  # mean RUNNING time between two occurrences of this fault
    repair: Distribution


@dataclass(frozen=True)
class StopSpec:
    """Starved (idle) or blocked stops: mean running time between them and how long they last."""

    mtbf_s: float
    duration: Distribution


@dataclass(frozen=True)
class ShiftSpec:
    name: str
    start_minute: int  # minutes after local midnight


@dataclass(frozen=True)
class BreakSpec:
    name: str
    start_minute: int
    duration_s: float


@dataclass(frozen=True)
class MachineSpec:
    id: str
    name: str
    protocol: str
    area: str
    line: str
    index: int  # position in the layout (0-based); base_port + index is its default port
    port: int | None
    products: tuple[ProductSpec, ...]
    faults: tuple[FaultSpec, ...]
    starved: StopSpec | None
    blocked: StopSpec | None
    changeover: Distribution
    order_quantity: tuple[int, int]
    speed_loss: float  # mean fraction below ideal speed while running (0.05 = 5 % slower)
    cycle_jitter: float  # standard deviation of the speed factor
    micro_stops_per_hour: float
    micro_stop: Distribution
    reject_rate: float
    startup_reject_parts: int  # after a changeover the first N parts are rejected at startup_reject_factor x rate
    startup_reject_factor: float
    counter_modulus: int
    counter_initial: int
    reset_counters_at_shift: bool
    shifts: tuple[str, ...]  # names of the shifts this machine works; the others are planned stops
    temperature_setpoints: tuple[float, ...]  # one per station (StationTemps)
    options: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)  # protocol options

    def product(self, code: int) -> ProductSpec | None:
        for p in self.products:
            if p.code == code:
                return p
        return None


@dataclass(frozen=True)
class Layout:
    site_id: str
    site_name: str
    timezone: str
    shifts: tuple[ShiftSpec, ...]
    breaks: tuple[BreakSpec, ...]
    machines: tuple[MachineSpec, ...]
    source: str = "<plant>"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def machine(self, machine_id: str) -> MachineSpec:
        for m in self.machines:
            if m.id == machine_id:
                return m
        raise KeyError(machine_id)

    @property
    def areas(self) -> list[str]:
        seen: list[str] = []
        for m in self.machines:
            if m.area not in seen:
                seen.append(m.area)
        return seen


# --------------------------------------------------------------------------------------------------------------
# Loading with line numbers
# --------------------------------------------------------------------------------------------------------------

Path_ = tuple  # a path into the document: ("areas", 0, "lines", 1, "name")


def _path_text(path: Path_) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "<document>"


class _Doc:
    """The YAML document as plain data plus the line of every node, so errors can name line and field."""

    def __init__(self, text: str, source: str):
        self.source = source
        self.lines: dict[Path_, int] = {}
        self.key_lines: dict[Path_, int] = {}
        self.context: dict[Path_, str] = {}  # path prefix -> "machine LINE-001", shown in errors
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            data = yaml.safe_load(text)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else None
            problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
            raise PlantFileError(f"invalid YAML: {problem}", source=source, line=line) from None
        except yaml.YAMLError as exc:
            raise PlantFileError(f"invalid YAML: {exc}", source=source) from None
        self.data = data
        if node is not None:
            self._walk(node, ())

    def _walk(self, node: yaml.Node, path: Path_) -> None:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key_node, value_node in node.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
                if key == "<<":
                    continue
                line = key_node.start_mark.line + 1
                if key in seen:
                    raise PlantFileError(
                        f"duplicate key '{key}' (first at line {seen[key]})",
                        source=self.source,
                        line=line,
                        field=_path_text(path + (key,)),
                    )
                seen[key] = line
                self.key_lines[path + (key,)] = line
                self._walk(value_node, path + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._walk(item, path + (i,))

    def line(self, path: Path_) -> int | None:
        p = tuple(path)
        while True:
            if p in self.key_lines and p not in self.lines:
                return self.key_lines[p]
            if p in self.lines:
                return self.lines[p]
            if not p:
                return None
            p = p[:-1]

    def fail(self, path: Path_, message: str) -> PlantFileError:
        ctx = ""
        for i in range(len(path), 0, -1):
            if path[:i] in self.context:
                ctx = f" ({self.context[path[:i]]})"
                break
        return PlantFileError(message, source=self.source, line=self.line(path), field=_path_text(path) + ctx)


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


class _Reader:
    """Typed access to the document; every failure names the path and line."""

    def __init__(self, doc: _Doc):
        self.doc = doc

    def mapping(self, value: Any, path: Path_, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> dict:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise self.doc.fail(path, f"expected a mapping, got {_type_name(value)}")
        for key in value:
            if not isinstance(key, str) or key not in allowed:
                hint = difflib.get_close_matches(str(key), allowed, n=1)
                extra = f" (did you mean '{hint[0]}'?)" if hint else f"; allowed: {', '.join(allowed)}"
                raise self.doc.fail(path + (str(key),), f"unknown field '{key}'{extra}")
        for key in required:
            if key not in value or value[key] is None:
                raise self.doc.fail(path, f"missing required field '{key}'")
        return value

    def seq(self, value: Any, path: Path_, *, min_len: int = 0) -> list:
        if value is None:
            value = []
        if not isinstance(value, list):
            raise self.doc.fail(path, f"expected a list, got {_type_name(value)}")
        if len(value) < min_len:
            raise self.doc.fail(path, f"expected at least {min_len} item(s)")
        return value

    def text(self, value: Any, path: Path_, *, pattern: re.Pattern | None = None, what: str = "") -> str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            raise self.doc.fail(path, f"expected text, got {_type_name(value)}")
        value = value.strip()
        if pattern is not None and not pattern.match(value):
            raise self.doc.fail(path, f"invalid {what or 'value'} '{value}'")
        return value

    def integer(self, value: Any, path: Path_, *, lo: int | None = None, hi: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise self.doc.fail(path, f"expected an integer, got {_type_name(value)} ({value!r})")
        if lo is not None and value < lo:
            raise self.doc.fail(path, f"must be >= {lo}, got {value}")
        if hi is not None and value > hi:
            raise self.doc.fail(path, f"must be <= {hi}, got {value}")
        return value

    def number(self, value: Any, path: Path_, *, lo: float | None = None, hi: float | None = None,
               positive: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.doc.fail(path, f"expected a number, got {_type_name(value)} ({value!r})")
        value = float(value)
        if positive and value <= 0:
            raise self.doc.fail(path, f"must be greater than 0, got {value:g}")
        if lo is not None and value < lo:
            raise self.doc.fail(path, f"must be >= {lo:g}, got {value:g}")
        if hi is not None and value > hi:
            raise self.doc.fail(path, f"must be <= {hi:g}, got {value:g}")
        return value

    def boolean(self, value: Any, path: Path_) -> bool:
        if not isinstance(value, bool):
            raise self.doc.fail(path, f"expected true or false, got {_type_name(value)} ({value!r})")
        return value

    def hhmm(self, value: Any, path: Path_) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
            # YAML 1.1 reads an unquoted 06:00 as the sexagesimal integer 360: that is minutes after midnight.
            return value
        text = self.text(value, path)
        m = _HHMM_RE.match(text)
        if not m:
            raise self.doc.fail(path, f"expected a time of day 'HH:MM', got '{text}'")
        return int(m.group(1)) * 60 + int(m.group(2))

    def distribution(self, value: Any, path: Path_) -> Distribution:
        value = self.mapping(value, path, ("dist", "mean_s", "median_s", "sigma", "min_s", "max_s", "value_s"),
                             required=("dist",))
        kind = self.text(value["dist"], path + ("dist",))
        kinds = ("exponential", "lognormal", "uniform", "fixed")
        if kind not in kinds:
            raise self.doc.fail(path + ("dist",), f"unknown distribution '{kind}'; expected one of {', '.join(kinds)}")
        need = {"exponential": ("mean_s",), "lognormal": ("median_s", "sigma"), "uniform": ("min_s", "max_s"),
                "fixed": ("value_s",)}[kind]
        for key in value:
            if key != "dist" and key not in need:
                raise self.doc.fail(path + (key,), f"field '{key}' does not apply to a {kind} distribution "
                                                   f"(it takes {', '.join(need)})")
        for key in need:
            if key not in value:
                raise self.doc.fail(path, f"a {kind} distribution needs '{key}'")
        if kind == "exponential":
            return Distribution(kind, self.number(value["mean_s"], path + ("mean_s",), positive=True))
        if kind == "lognormal":
            return Distribution(kind, self.number(value["median_s"], path + ("median_s",), positive=True),
                                self.number(value["sigma"], path + ("sigma",), lo=0.0, hi=3.0))
        if kind == "uniform":
            lo = self.number(value["min_s"], path + ("min_s",), lo=0.0)
            hi = self.number(value["max_s"], path + ("max_s",), positive=True)
            if hi < lo:
                raise self.doc.fail(path + ("max_s",), f"max_s ({hi:g}) is below min_s ({lo:g})")
            return Distribution(kind, lo, hi)
        return Distribution(kind, self.number(value["value_s"], path + ("value_s",), positive=True))


_TOP_KEYS = ("site", "shifts", "breaks", "products", "faults", "machine_defaults", "areas")
_MACHINE_KEYS = (
    "id", "name", "protocol", "port", "products", "faults", "starved", "blocked", "changeover", "order_quantity",
    "speed_loss", "cycle_jitter", "micro_stops", "reject_rate", "startup_rejects", "counter_modulus",
    "counter_initial", "reset_counters_at_shift", "shifts", "temperature_setpoints", "logix", "s7", "modbus",
    "opcua",
)
_DEFAULTABLE = tuple(k for k in _MACHINE_KEYS if k not in ("id", "name", "protocol", "port"))

_BUILTIN_DEFAULTS: dict[str, Any] = {
    "starved": None,
    "blocked": None,
    "changeover": {"dist": "lognormal", "median_s": 900, "sigma": 0.3},
    "order_quantity": [2000, 6000],
    "speed_loss": 0.05,
    "cycle_jitter": 0.02,
    "micro_stops": {"per_hour": 6, "duration": {"dist": "exponential", "mean_s": 8}},
    "reject_rate": 0.01,
    "startup_rejects": {"parts": 20, "factor": 4},
    "counter_modulus": DINT_MODULUS,
    "counter_initial": 0,
    "reset_counters_at_shift": True,
    "temperature_setpoints": [45, 50, 55, 60, 65, 60, 55, 50],
    "logix": {},
    "s7": {},
    "modbus": {},
    "opcua": {},
}


def parse_layout(text: str, source: str = "<plant>") -> Layout:
    """Parse and validate a layout from YAML text. Raises PlantFileError naming line and field."""
    doc = _Doc(text, source)
    r = _Reader(doc)
    top = r.mapping(doc.data, (), _TOP_KEYS, required=("site", "areas"))

    site = r.mapping(top["site"], ("site",), ("id", "name", "timezone"), required=("id", "timezone"))
    site_id = r.text(site["id"], ("site", "id"), pattern=_ID_RE, what="site id")
    site_name = r.text(site.get("name", site_id), ("site", "name"))
    tz_name = r.text(site["timezone"], ("site", "timezone"))
    try:
        ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise doc.fail(("site", "timezone"), f"unknown time zone '{tz_name}' (use an IANA name such as "
                                             f"'Europe/Berlin' or 'UTC')") from None

    # shifts: plant-local start times; counters reset at each start
    shift_items = r.seq(top.get("shifts", [{"name": "A", "start": "06:00"}, {"name": "B", "start": "14:00"},
                                           {"name": "C", "start": "22:00"}]), ("shifts",), min_len=1)
    shifts: list[ShiftSpec] = []
    for i, item in enumerate(shift_items):
        p = ("shifts", i)
        item = r.mapping(item, p, ("name", "start"), required=("name", "start"))
        name = r.text(item["name"], p + ("name",))
        if any(s.name == name for s in shifts):
            raise doc.fail(p + ("name",), f"duplicate shift name '{name}'")
        start = r.hhmm(item["start"], p + ("start",))
        if any(s.start_minute == start for s in shifts):
            raise doc.fail(p + ("start",), "two shifts start at the same time")
        shifts.append(ShiftSpec(name, start))
    shifts.sort(key=lambda s: s.start_minute)

    breaks: list[BreakSpec] = []
    for i, item in enumerate(r.seq(top.get("breaks"), ("breaks",))):
        p = ("breaks", i)
        item = r.mapping(item, p, ("name", "start", "minutes"), required=("start", "minutes"))
        breaks.append(BreakSpec(r.text(item.get("name", "Break"), p + ("name",)), r.hhmm(item["start"], p + ("start",)),
                                60.0 * r.number(item["minutes"], p + ("minutes",), positive=True, hi=24 * 60)))

    products: dict[int, ProductSpec] = {}
    for i, item in enumerate(r.seq(top.get("products"), ("products",))):
        p = ("products", i)
        item = r.mapping(item, p, ("code", "name", "ideal_cycle_time"), required=("code", "ideal_cycle_time"))
        code = r.integer(item["code"], p + ("code",), lo=1, hi=32767)
        if code in products:
            raise doc.fail(p + ("code",), f"duplicate product code {code}")
        products[code] = ProductSpec(code, r.text(item.get("name", f"Product {code}"), p + ("name",)),
                                     r.number(item["ideal_cycle_time"], p + ("ideal_cycle_time",), positive=True,
                                              hi=86400))

    fault_catalogue: dict[int, tuple[str, Path_]] = {}
    fault_defs: dict[int, dict] = {}
    for i, item in enumerate(r.seq(top.get("faults"), ("faults",))):
        p = ("faults", i)
        item = r.mapping(item, p, ("code", "name", "mtbf_min", "repair"), required=("code",))
        code = r.integer(item["code"], p + ("code",), lo=1, hi=32767)
        if code in fault_catalogue:
            raise doc.fail(p + ("code",), f"duplicate fault code {code}")
        fault_catalogue[code] = (r.text(item.get("name", f"Fault {code}"), p + ("name",)), p)
        fault_defs[code] = dict(item)

    defaults_raw = r.mapping(top.get("machine_defaults"), ("machine_defaults",), _DEFAULTABLE)
    defaults: dict[str, tuple[Any, Path_]] = {k: (v, ("<built-in default>",)) for k, v in _BUILTIN_DEFAULTS.items()}
    for key, value in defaults_raw.items():
        defaults[key] = (value, ("machine_defaults", key))

    machines: list[MachineSpec] = []
    seen_ids: dict[str, Path_] = {}
    seen_ports: dict[int, str] = {}
    areas = r.seq(top["areas"], ("areas",), min_len=1)
    for ai, area in enumerate(areas):
        ap = ("areas", ai)
        area = r.mapping(area, ap, ("name", "lines"), required=("name", "lines"))
        area_name = r.text(area["name"], ap + ("name",))
        for li, line in enumerate(r.seq(area["lines"], ap + ("lines",), min_len=1)):
            lp = ap + ("lines", li)
            line = r.mapping(line, lp, ("name", "machines"), required=("name", "machines"))
            line_name = r.text(line["name"], lp + ("name",))
            for mi, mach in enumerate(r.seq(line["machines"], lp + ("machines",), min_len=1)):
                mp = lp + ("machines", mi)
                if isinstance(mach, dict) and isinstance(mach.get("id"), str):
                    doc.context[mp] = f"machine {mach['id']}"
                mach = r.mapping(mach, mp, _MACHINE_KEYS, required=("id", "protocol"))
                mid = r.text(mach["id"], mp + ("id",), pattern=_ID_RE, what="machine id (letters, digits, - and _)")
                doc.context[mp] = f"machine {mid}"
                if mid in seen_ids:
                    raise doc.fail(mp + ("id",), f"duplicate machine id '{mid}' (first at line "
                                                 f"{doc.line(seen_ids[mid] + ('id',))})")
                seen_ids[mid] = mp
                machines.append(_machine(r, mach, mp, mid, area_name, line_name, len(machines), products,
                                         fault_catalogue, fault_defs, defaults, shifts, seen_ports))
    return Layout(site_id, site_name, tz_name, tuple(shifts), tuple(breaks), tuple(machines), source)


def _machine(r: _Reader, mach: dict, mp: Path_, mid: str, area: str, line: str, index: int,
             products: dict[int, ProductSpec], fault_catalogue: dict, fault_defs: dict,
             defaults: dict[str, tuple[Any, Path_]], shifts: list[ShiftSpec],
             seen_ports: dict[int, str]) -> MachineSpec:
    doc = r.doc

    def get(key: str) -> tuple[Any, Path_]:
        if key in mach:
            return mach[key], mp + (key,)
        return defaults[key] if key in defaults else (None, mp + (key,))

    name = r.text(mach.get("name", mid), mp + ("name",))
    protocol = r.text(mach["protocol"], mp + ("protocol",)).upper().replace("-", "_")
    protocol = {"ENIP": "ETHERNET_IP", "ETHERNETIP": "ETHERNET_IP", "OPC_UA": "OPCUA", "SPARKPLUG": "SPARKPLUG_B",
                "SPBV1_0": "SPARKPLUG_B"}.get(protocol, protocol)
    if protocol not in PROTOCOLS:
        raise doc.fail(mp + ("protocol",), f"unknown protocol '{mach['protocol']}'; expected one of "
                                           f"{', '.join(PROTOCOLS)}")
    port = None
    if mach.get("port") is not None:
        port = r.integer(mach["port"], mp + ("port",), lo=1, hi=65535)
        if port in seen_ports:
            raise doc.fail(mp + ("port",), f"port {port} is already used by machine {seen_ports[port]}")
        seen_ports[port] = mid

    # products: codes from the catalogue, or {code, ideal_cycle_time} overrides
    raw, pp = get("products")
    if raw is None:
        if not products:
            raise doc.fail(mp, "no products: define a top-level 'products' catalogue or give the machine 'products'")
        raw, pp = list(products), mp + ("products",)
    mprods: list[ProductSpec] = []
    for i, item in enumerate(r.seq(raw, pp, min_len=1)):
        ip = pp + (i,)
        if isinstance(item, dict):
            item = r.mapping(item, ip, ("code", "name", "ideal_cycle_time"), required=("code",))
            code = r.integer(item["code"], ip + ("code",), lo=1, hi=32767)
            base = products.get(code)
            ict = item.get("ideal_cycle_time", base.ideal_cycle_time if base else None)
            if ict is None:
                raise doc.fail(ip, f"product {code} is not in the catalogue: give its ideal_cycle_time")
            pname = r.text(item.get("name", base.name if base else f"Product {code}"), ip + ("name",))
            spec = ProductSpec(code, pname, r.number(ict, ip + ("ideal_cycle_time",), positive=True, hi=86400))
        else:
            code = r.integer(item, ip, lo=1, hi=32767)
            if code not in products:
                raise doc.fail(ip, f"unknown product code {code} (not in the 'products' catalogue)")
            spec = products[code]
        if any(p.code == spec.code for p in mprods):
            raise doc.fail(ip, f"product {spec.code} listed twice")
        mprods.append(spec)

    # faults: a list of {code, mtbf_min, repair} (code from the catalogue gives name and defaults)
    raw, fp = get("faults")
    if raw is None:
        raw, fp = [{"code": c} for c, d in fault_defs.items() if "mtbf_min" in d and "repair" in d], ("faults",)
    faults: list[FaultSpec] = []
    for i, item in enumerate(r.seq(raw, fp)):
        ip = fp + (i,)
        item = r.mapping(item, ip, ("code", "name", "mtbf_min", "repair"), required=("code",))
        code = r.integer(item["code"], ip + ("code",), lo=1, hi=32767)
        base = fault_defs.get(code, {})
        base_path = fault_catalogue[code][1] if code in fault_catalogue else ip
        fname = item.get("name", fault_catalogue[code][0] if code in fault_catalogue else f"Fault {code}")
        mtbf, mtbf_path = (item["mtbf_min"], ip + ("mtbf_min",)) if "mtbf_min" in item else (
            base.get("mtbf_min"), base_path + ("mtbf_min",))
        repair, repair_path = (item["repair"], ip + ("repair",)) if "repair" in item else (
            base.get("repair"), base_path + ("repair",))
        if mtbf is None or repair is None:
            raise doc.fail(ip, f"fault {code} needs mtbf_min and repair (here or in the 'faults' catalogue)")
        if any(f.code == code for f in faults):
            raise doc.fail(ip + ("code",), f"fault code {code} listed twice")
        faults.append(FaultSpec(code, r.text(fname, ip + ("name",)),
                                60.0 * r.number(mtbf, mtbf_path, positive=True),
                                r.distribution(repair, repair_path)))

    def stop_spec(key: str) -> StopSpec | None:
        raw, p = get(key)
        if raw is None or raw is False:
            return None
        raw = r.mapping(raw, p, ("mtbf_min", "duration"), required=("mtbf_min", "duration"))
        return StopSpec(60.0 * r.number(raw["mtbf_min"], p + ("mtbf_min",), positive=True),
                        r.distribution(raw["duration"], p + ("duration",)))

    raw, p = get("order_quantity")
    oq = r.seq(raw, p)
    if len(oq) != 2:
        raise doc.fail(p, "expected [min, max] good parts per order")
    oq_lo = r.integer(oq[0], p + (0,), lo=1)
    oq_hi = r.integer(oq[1], p + (1,), lo=oq_lo)

    raw, p = get("micro_stops")
    ms = r.mapping(raw, p, ("per_hour", "duration"), required=("per_hour",))
    micro_per_hour = r.number(ms["per_hour"], p + ("per_hour",), lo=0.0, hi=3600.0)
    micro_dist = r.distribution(ms.get("duration", {"dist": "exponential", "mean_s": 8}), p + ("duration",))

    raw, p = get("startup_rejects")
    sr = r.mapping(raw, p, ("parts", "factor"))
    startup_parts = r.integer(sr.get("parts", 0), p + ("parts",), lo=0)
    startup_factor = r.number(sr.get("factor", 1), p + ("factor",), lo=1.0, hi=100.0)

    raw, p = get("counter_modulus")
    modulus = r.integer(raw, p, lo=10, hi=DINT_MODULUS)
    raw, p = get("counter_initial")
    initial = r.integer(raw, p, lo=0)
    if initial >= modulus:
        raise doc.fail(p, f"counter_initial ({initial}) must be below counter_modulus ({modulus})")

    raw, p = get("shifts")
    shift_names = tuple(s.name for s in shifts)
    if raw is None:
        worked = shift_names
    else:
        worked_list = []
        for i, item in enumerate(r.seq(raw, p, min_len=1)):
            nm = r.text(item, p + (i,))
            if nm not in shift_names:
                raise doc.fail(p + (i,), f"unknown shift '{nm}'; the site has {', '.join(shift_names)}")
            worked_list.append(nm)
        worked = tuple(worked_list)

    raw, p = get("temperature_setpoints")
    temps = tuple(r.number(v, p + (i,), lo=-50, hi=400) for i, v in enumerate(r.seq(raw, p, min_len=1)))
    if len(temps) > 8:
        raise doc.fail(p, "at most 8 stations")

    options: dict[str, Any] = {}
    raw, p = get("logix")
    lx = r.mapping(raw, p, ("slot", "product_name", "revision", "serial"))
    options["slot"] = r.integer(lx.get("slot", 0), p + ("slot",), lo=0, hi=16)
    options["product_name"] = r.text(lx.get("product_name", "1756-L83E/B"), p + ("product_name",))
    rev = r.seq(lx.get("revision", [33, 11]), p + ("revision",))
    if len(rev) != 2:
        raise doc.fail(p + ("revision",), "expected [major, minor]")
    options["revision"] = (r.integer(rev[0], p + ("revision", 0), lo=1, hi=255),
                           r.integer(rev[1], p + ("revision", 1), lo=0, hi=255))
    options["serial"] = r.integer(lx.get("serial", 0x6000_0000 + 0x100 * index), p + ("serial",), lo=0,
                                  hi=0xFFFF_FFFF)
    raw, p = get("s7")
    s7 = r.mapping(raw, p, ("rack", "slot", "db"))
    options["rack"] = r.integer(s7.get("rack", 0), p + ("rack",), lo=0, hi=7)
    options["s7_slot"] = r.integer(s7.get("slot", 1), p + ("slot",), lo=0, hi=31)
    options["db"] = r.integer(s7.get("db", 1), p + ("db",), lo=1, hi=65535)
    raw, p = get("modbus")
    mb = r.mapping(raw, p, ("unit_id",))
    options["unit_id"] = r.integer(mb.get("unit_id", 1), p + ("unit_id",), lo=1, hi=247)
    raw, p = get("opcua")
    _ = r.mapping(raw, p, ())

    raw, p = get("changeover")
    changeover = r.distribution(raw, p)
    raw, p = get("speed_loss")
    speed_loss = r.number(raw, p, lo=0.0, hi=0.9)
    raw, p = get("cycle_jitter")
    jitter = r.number(raw, p, lo=0.0, hi=0.5)
    raw, p = get("reject_rate")
    reject_rate = r.number(raw, p, lo=0.0, hi=1.0)
    raw, p = get("reset_counters_at_shift")
    reset = r.boolean(raw, p)

    return MachineSpec(
        id=mid, name=name, protocol=protocol, area=area, line=line, index=index, port=port,
        products=tuple(mprods), faults=tuple(faults), starved=stop_spec("starved"), blocked=stop_spec("blocked"),
        changeover=changeover, order_quantity=(oq_lo, oq_hi), speed_loss=speed_loss, cycle_jitter=jitter,
        micro_stops_per_hour=micro_per_hour, micro_stop=micro_dist, reject_rate=reject_rate,
        startup_reject_parts=startup_parts, startup_reject_factor=startup_factor, counter_modulus=modulus,
        counter_initial=initial, reset_counters_at_shift=reset, shifts=worked, temperature_setpoints=temps,
        options=options,
    )


def load_layout(path: str | Path) -> Layout:
    """Load and validate a plant layout YAML file. Raises PlantFileError (file, line, field)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlantFileError(f"cannot read plant file: {exc.strerror or exc}", source=str(path)) from None
    except UnicodeDecodeError as exc:
        raise PlantFileError(f"plant file is not UTF-8 text: {exc}", source=str(path)) from None
    return parse_layout(text, source=str(path))


def default_layout_path() -> Path:
    return Path(__file__).with_name("default_plant.yaml")


def default_layout() -> Layout:
    """The demo plant shipped as plant/default_plant.yaml."""
    return load_layout(default_layout_path())

