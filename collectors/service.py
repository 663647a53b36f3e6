"""The wizard's and the API's PLC operations, in one place: test a connection, discover tags, read a preview.

No page and no callback talks to a PLC; they call these functions. Each one validates its input with the driver,
runs with a deadline in a worker thread, and never raises: every failure becomes a plain dict in the shared error
vocabulary (collectors.base.ERROR_KINDS, plus "invalid_input" and "unknown") with a readable message and a
suggestion of what to try. The detail of an unexpected failure goes to the log, not to the user.

    test_connection(protocol, host, port, protocol_config, probe_address=None)
        -> {"ok", "error", "error_text", "message", "suggestion", "steps": [...], "identity": {...}}
    discover(protocol, host, port, protocol_config, **options)
        -> {"ok", "tags": [{"address", "data_type", "name", "description", "writable", "value", "children"}],
            "count", "error", ...}
    preview_read(protocol, host, port, protocol_config, tags=[{"name", "address", "data_type"}])
        -> {"ok", "values": {name: {"value", "quality", "reason"}}, "error", ...}
    preview_machine(tags, values, state_code_map, fault_kinds, memory)  (no PLC: a preview read's machine data)
        -> {"state", "fault_code", "counted": {"total", "good", "reject"}, "memory"}
    parse_s7_layout(csv_text, db_number) / parse_register_map(csv_text, config)  (no PLC; editors' CSV)
"""
from __future__ import annotations

import csv
import io
import logging
import math
import threading
import time
from dataclasses import asdict
from typing import Any

from collectors.base import (
    AUTH_FAILED,
    BAD,
    ERROR_KINDS,
    PROTOCOL_DEFAULT_PORTS,
    TIMEOUT,
    ConfigError,
    ConnectionSettings,
    DiscoveredTag,
    DriverError,
    TagSpec,
    driver_class,
    redact_config,
)
from collectors.peers import explain, explain_result
from keys.credentials import CredentialError
from keys.master import ENV as KEY_ENV

log = logging.getLogger(__name__)

INVALID_INPUT = "invalid_input"
UNKNOWN = "unknown"
BUSY = "busy"
ERROR_TEXT = {**ERROR_KINDS, INVALID_INPUT: "The settings are not valid",
              UNKNOWN: "Unexpected error; the details are in the server log",
              BUSY: "Too many PLC operations are running; try again shortly"}
QUALITY_NAMES = {0: "good", 1: "uncertain", 2: "bad"}
MAX_PREVIEW_TAGS = 500
OPTION_FIELDS = ("tags", "csv", "line", "options", "table", "start", "count", "unit", "root", "depth", "limit",
                 "db_number", "program")
# Each operation runs in a thread of its own (daemon: never waited for at exit), not in a fixed pool: a pool's
# workers held by operations that do not end (a PLC that never answers) made every later test queue behind them
# and time out, a healthy PLC's too. A thread past its deadline has its driver aborted (its socket closed under
# it); one that still does not end keeps its slot, so a flood of those cannot make threads without end.
MAX_RUNNING = 32
_slots = threading.BoundedSemaphore(MAX_RUNNING)


def _failure(kind: str, message: str, suggestion: str = "", **extra) -> dict:
    return {"ok": False, "error": kind, "error_text": ERROR_TEXT.get(kind, ERROR_TEXT[UNKNOWN]), "message": message,
            "suggestion": suggestion, **extra}


def _credentials(credentials):
    """The cipher given, else the running app's (inside a request of the Flask server), else None."""
    if credentials is not None:
        return credentials
    try:
        from flask import current_app, has_app_context
    except ImportError:  # pragma: no cover
        return None
    if has_app_context():
        runtime = current_app.extensions.get("oee")
        return getattr(runtime, "credentials", None)
    return None


def open_secrets(protocol_config: dict | None, credentials=None) -> dict:
    """protocol_config with its encrypted secrets (a saved machine's) decrypted for a driver. Raises
    keys.credentials.CredentialError naming the field and OEE_SECRET_KEY when they cannot be."""
    from keys.credentials import CredentialError, has_sealed, is_sealed

    config = dict(protocol_config or {})
    if not has_sealed(config):
        return config
    credentials = _credentials(credentials)
    if credentials is None:
        field = next(k for k, v in config.items() if is_sealed(v))
        raise CredentialError(field, "is stored encrypted and no key is loaded here; set OEE_SECRET_KEY")
    return credentials.open(config)


def _driver(protocol: str, host: str, port: int | None, protocol_config: dict | None, timeout_s: float,
            credentials=None):
    cls = driver_class(protocol)
    config = cls.validate_config(open_secrets(protocol_config, credentials))
    settings = ConnectionSettings(protocol, host, int(port or PROTOCOL_DEFAULT_PORTS[protocol]), config, timeout_s)
    return cls(settings)


class _Call:
    """One operation's drivers, so that the deadline can abort them from outside."""

    def __init__(self):
        self.drivers: list = []

    def driver(self, *args, **kwargs):
        made = _driver(*args, **kwargs)
        self.drivers.append(made)
        return made

    def abort(self) -> None:
        for d in self.drivers:
            try:
                d.abort()
            except Exception:  # noqa: BLE001 - aborting is best effort
                log.debug("aborting the %s driver failed", d.protocol, exc_info=True)


def _explained(fn, protocol: str, host: str, port: int | None, timeout_s: float):
    """fn() with a DriverError made clearer when the port belongs to something else (collectors.peers)."""
    def run():
        try:
            return fn()
        except DriverError as exc:
            target = int(port or PROTOCOL_DEFAULT_PORTS.get(protocol, 0))
            raise explain(exc, protocol, host, target, timeout_s) from None
    return run


def _run(what: str, fn, budget_s: float, context: dict, call: _Call | None = None) -> dict:
    """Run fn() in a thread of its own with a deadline; turn every failure into the error dict."""
    started = time.perf_counter()
    if not _slots.acquire(blocking=False):
        log.warning("%s on %s:%s refused: %d PLC operations still running", what, context.get("host"),
                    context.get("port"), MAX_RUNNING)
        return _failure(BUSY, f"{what} not started: {MAX_RUNNING} PLC operations are still running",
                        "Earlier tests of devices that do not answer are still being stopped; try again in a "
                        "minute.")
    box: dict = {}
    done = threading.Event()

    def work() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            box["error"] = exc
        finally:
            done.set()
            _slots.release()

    threading.Thread(target=work, name=f"plc-service {context.get('host')}:{context.get('port')}",
                     daemon=True).start()
    if not done.wait(budget_s):
        if call is not None:
            call.abort()  # its thread ends as soon as the socket under it closes
        log.warning("%s on %s:%s did not finish within %.0f s; aborted", what, context.get("host"),
                    context.get("port"), budget_s)
        return _failure(TIMEOUT, f"{what} did not finish within {budget_s:g} s",
                        "The device answers too slowly or not at all; check the address and the network, or "
                        "narrow the request.")
    if "error" in box:
        return _error_dict(what, box["error"], context)
    result = box["result"]
    result.setdefault("ok", True)
    result["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def _error_dict(what: str, exc: BaseException, context: dict) -> dict:
    if isinstance(exc, ConfigError):
        field = exc.field if exc.field.startswith(OPTION_FIELDS) else f"protocol_config.{exc.field}"
        return _failure(INVALID_INPUT, exc.message, "Correct the setting and try again.", fields={field: exc.message})
    if isinstance(exc, DriverError):
        return _failure(exc.kind, exc.message, exc.suggestion)
    if isinstance(exc, CredentialError):  # nothing was sent: the stored secret could not be decrypted
        return _failure(AUTH_FAILED, str(exc), f"Set {KEY_ENV} to the key the {exc.field} was stored with, or "
                        f"give the {exc.field} again.", fields={f"protocol_config.{exc.field}": exc.message})
    # the user gets a key and a sentence; the traceback goes to the log
    log.error("%s on %s:%s (%s) failed unexpectedly", what, context.get("host"), context.get("port"),
              redact_config(context.get("protocol_config") or {}), exc_info=exc)
    return _failure(UNKNOWN, f"{what} failed: {exc.__class__.__name__}",
                    "This is a bug or an unusual device answer; the server log has the details.")


def json_safe(value: Any) -> Any:
    """Values as JSON can carry them (numpy scalars, bytes, NaN, datetimes, nested lists)."""
    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict, str, bytes)):
        try:
            value = value.item()
        except Exception:
            value = str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (bytes, bytearray)):
        return value.decode("latin-1", errors="replace")
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def tag_dict(tag: DiscoveredTag) -> dict:
    return {"address": tag.address, "data_type": tag.data_type, "name": tag.name, "description": tag.description,
            "writable": tag.writable, "value": json_safe(tag.value), "children": [tag_dict(c) for c in tag.children]}


def flatten(tags: list[dict], depth: int = 0) -> list[dict]:
    """A discovery tree as rows with their depth, parents before children (for lists with a filter)."""
    out = []
    for t in tags:
        out.append({**{k: v for k, v in t.items() if k != "children"}, "depth": depth,
                    "container": bool(t.get("children"))})
        out.extend(flatten(t.get("children") or [], depth + 1))
    return out


# --- the three operations ----------------------------------------------------------------------------------------


def test_connection(protocol: str, host: str, port: int | None, protocol_config: dict | None, *,
                    probe_address: str | None = None, timeout_s: float = 3.0, credentials=None) -> dict:
    """Diagnostics step by step (tcp, handshake, identity, probe_read). The first failed step names the error
    and what to try."""
    credentials = _credentials(credentials)  # here: the worker thread has no app context
    context = {"host": host, "port": port, "protocol_config": protocol_config}

    call = _Call()

    def work() -> dict:
        driver = call.driver(protocol, host, port, protocol_config, timeout_s, credentials)
        result = driver.test_connection(probe_address) if probe_address else driver.test_connection()
        result = explain_result(result, protocol, host, driver.settings.port, timeout_s)
        body = result.as_dict()
        body["identity"] = json_safe(body["identity"])
        failed = next((s for s in result.steps if not s.ok), None)
        body["error_text"] = ERROR_TEXT.get(body["error"]) if body["error"] else None
        body["message"] = f"{failed.name}: {failed.detail}" if failed else "every step passed"
        body["suggestion"] = failed.suggestion if failed else ""
        return body

    out = _run("the connection test", work, timeout_s * 12 + 5, context, call)
    out.setdefault("steps", [])
    out.setdefault("identity", {})
    return out


def discover(protocol: str, host: str, port: int | None, protocol_config: dict | None, *, timeout_s: float = 3.0,
             credentials=None, **options) -> dict:
    """What the PLC offers: Logix tag list (program=...), OPC-UA browse (root, depth, limit), S7 data blocks
    (db_layouts={n: csv}), Modbus register scan (table, start, count). Options the driver does not know are
    ignored."""
    credentials = _credentials(credentials)  # here: the worker thread has no app context
    context = {"host": host, "port": port, "protocol_config": protocol_config}
    options = {k: v for k, v in options.items() if v is not None}
    if protocol == "S7" and isinstance(options.get("db_layouts"), dict):
        options["db_layouts"] = {int(k): v for k, v in options["db_layouts"].items()}

    call = _Call()

    def work() -> dict:
        driver = call.driver(protocol, host, port, protocol_config, timeout_s, credentials)
        try:
            tags = [tag_dict(t) for t in driver.discover(**options)]
        finally:
            driver.close()
        return {"tags": tags, "count": len(flatten(tags))}

    out = _run("discovery", _explained(work, protocol, host, port, timeout_s), timeout_s * 20 + 10, context, call)
    out.setdefault("tags", [])
    return out


def preview_read(protocol: str, host: str, port: int | None, protocol_config: dict | None, tags: list[dict], *,
                 timeout_s: float = 3.0, credentials=None) -> dict:
    """One read of the chosen tags, as the collector would read them. A tag whose address does not parse comes
    back BAD with the reason; the others are read."""
    credentials = _credentials(credentials)  # here: the worker thread has no app context
    context = {"host": host, "port": port, "protocol_config": protocol_config}
    tags = list(tags or [])[:MAX_PREVIEW_TAGS]

    call = _Call()

    def work() -> dict:
        driver = call.driver(protocol, host, port, protocol_config, timeout_s, credentials)
        values: dict[str, dict] = {}
        specs = []
        for i, t in enumerate(tags):
            name = str(t.get("name") or t.get("address") or i)
            try:
                if protocol == "MODBUS":
                    driver.parse_address(t["address"], t["data_type"], driver.config)
                else:
                    driver.parse_address(t["address"], t["data_type"])
            except (ConfigError, KeyError, TypeError, ValueError) as exc:
                values[name] = {"value": None, "quality": "bad",
                                "reason": f"invalid_input: {getattr(exc, 'message', exc)}"}
                continue
            specs.append((i, name, TagSpec(i, t["address"], t["data_type"], name)))
        if specs:
            try:
                plan = driver.plan([s for _, _, s in specs])
                driver.connect()
                readings = driver.read(plan)
                if driver.pushes:  # values come as they are published: give them the timeout to arrive
                    deadline = time.monotonic() + timeout_s
                    while len(readings) < len(specs) and time.monotonic() < deadline:
                        time.sleep(0.05)
                        readings.update(driver.read(plan))
            finally:
                driver.close()
            for i, name, _spec in specs:
                r = readings.get(i)
                if r is None:
                    values[name] = {"value": None, "quality": "bad", "reason": "no reading"}
                else:
                    values[name] = {"value": None if r.quality == BAD else json_safe(r.value),
                                    "quality": QUALITY_NAMES.get(r.quality, str(r.quality)), "reason": r.reason}
        return {"values": values, "time": time.time()}

    out = _run("the preview read", _explained(work, protocol, host, port, timeout_s), timeout_s * 6 + 5, context,
               call)
    out.setdefault("values", {})
    return out


def preview_machine(tags: list[dict], values: dict[str, dict], state_code_map: dict | None = None,
                    fault_kinds: dict | None = None, memory: dict | None = None, now: float | None = None) -> dict:
    """What the machine model makes of a preview read, before anything is saved: the state, its fault code, and
    the parts counted since the first read of this preview. The same MachineTracker the collectors run is fed the
    previous read (memory, from the last call) and this one, so counter resets and rollovers count as they will.

    tags: [{name, role, data_type, scale, offset, options}] keyed in values by name (values as preview_read gives
    them); good readings of tags with a role are scaled as the poller scales them. memory: None to start."""
    from collectors.machine_model import TYPE_MODULUS, MachineTracker

    now = time.time() if now is None else now
    roles: dict[str, Any] = {}
    moduli = {}
    for t in tags:
        role, v = t.get("role"), values.get(t["name"]) or {}
        if not role:
            continue
        if role.startswith("counter."):
            moduli[role] = (t.get("options") or {}).get("rollover") or TYPE_MODULUS.get(str(t["data_type"]).upper())
        if v.get("quality") != "good" or v.get("value") is None:
            continue
        value = v["value"]
        if not isinstance(value, (str, list)):
            try:  # as the poller does: numbers as floats, then scale and offset
                value = float(value) * float(t.get("scale") or 1.0) + float(t.get("offset") or 0.0)
            except (TypeError, ValueError):
                continue
        roles[role] = value
    tracker = MachineTracker(0, state_code_map=state_code_map, fault_kinds=fault_kinds, counter_moduli=moduli)
    memory = memory or {}
    counted = dict(memory.get("counted") or {"total": 0, "good": 0, "reject": 0})
    if memory.get("roles") is not None:
        tracker.update(memory["t"], memory["roles"])
    tracker.update(now, roles)
    for k in counted:
        counted[k] += tracker.totals[k]
    cur = tracker.current
    return {"state": cur.state if cur else None, "fault_code": cur.fault_code if cur else None, "counted": counted,
            "memory": {"t": now, "roles": roles, "counted": counted}}


# --- the editors' CSV (no PLC involved) ---------------------------------------------------------------------------


def parse_s7_layout(csv_text: str, db_number: int) -> dict:
    """An S7 data block layout as CSV (name,offset,type[,description], as in TIA Portal) -> tags, or the error
    naming the line and column."""
    from collectors.drivers.s7_plan import import_db_layout

    try:
        tags = import_db_layout(csv_text or "", db_number=int(db_number))
    except ConfigError as exc:
        return _failure(INVALID_INPUT, f"{exc.field}: {exc.message}", "Each line is name,offset,type, e.g. "
                        "GoodCount,4,DINT or Running,20.0,BOOL.", fields={exc.field: exc.message})
    except (TypeError, ValueError) as exc:
        return _failure(INVALID_INPUT, str(exc), "Give the DB number as a whole number.",
                        fields={"db_number": str(exc)})
    return {"ok": True, "tags": [tag_dict(t) for t in tags]}


def parse_register_map(csv_text: str, protocol_config: dict | None = None) -> dict:
    """A Modbus register map as CSV: name,address,data_type[,description] (HR0,UINT32 ...), checked against the
    driver's address rules with the connection's numbering (zero_based)."""
    from collectors.drivers.modbus import ModbusDriver

    try:
        config = ModbusDriver.validate_config(dict(protocol_config or {}))
    except ConfigError as exc:
        return _failure(INVALID_INPUT, exc.message, "Correct the Modbus settings first.",
                        fields={f"protocol_config.{exc.field}": exc.message})
    out, seen = [], {}
    for lineno, row in enumerate(csv.reader(io.StringIO(csv_text or "")), start=1):
        cells = [c.strip() for c in row]
        if not cells or not any(cells) or cells[0].startswith("#"):
            continue
        if not out and not seen and cells[0].lower() == "name" and len(cells) > 1 and cells[1].lower() == "address":
            continue
        field = f"line {lineno}"
        if len(cells) < 3:
            message = f"{len(cells)} column(s); each line is name,address,data_type, e.g. GoodCount,HR2,UINT32"
            return _failure(INVALID_INPUT, f"{field}: {message}", "", fields={field: message})
        name, address, dtype = cells[:3]
        if not name:
            return _failure(INVALID_INPUT, f"{field}: the name is empty", "", fields={f"{field}, column 1 (name)":
                                                                                      "the name is empty"})
        if name in seen:
            message = f"{name!r} is already on line {seen[name]}"
            return _failure(INVALID_INPUT, f"{field}: {message}", "", fields={f"{field}, column 1 (name)": message})
        try:
            ModbusDriver.parse_address(address, dtype, config)
        except ConfigError as exc:
            column = "column 3 (data_type)" if exc.field == "data_type" else "column 2 (address)"
            return _failure(INVALID_INPUT, f"{field}, {column}: {exc.message}", "",
                            fields={f"{field}, {column}": exc.message})
        seen[name] = lineno
        out.append(asdict(DiscoveredTag(address.upper(), dtype.upper(), name, cells[3] if len(cells) > 3 else "")))
    return {"ok": True, "tags": out}


# --- what the collectors see now (no PLC involved: the collectors own the latest values) --------------------------


def machine_status(runtime, machine: dict) -> dict:
    """The live state of a saved machine: 'disabled', 'not_polled' (not picked up by a collector here yet),
    'config_error', 'connecting', 'failing', or the machine's own state (running, idle, faulted, ...)."""
    out = {"state": "unknown", "connection_state": None, "last_error": None, "counts": None}
    if not machine.get("enabled"):
        out["state"] = "disabled"
        return out
    collectors = getattr(runtime, "collectors", None)
    cid = machine.get("connection_id")
    if collectors is None or cid is None:
        out["state"] = "not_polled"
        return out
    health = collectors.connection_health(cid)
    if health is None:
        out["state"] = "not_polled"
        return out
    if health["state"] == "config_error":
        out.update(state="config_error", connection_state="config_error",
                   last_error={"error": "invalid_input", "message": health["last_error"]["message"], "suggestion": ""})
        return out
    out["connection_state"] = health["state"]
    out["last_error"] = health["last_error"]
    snap = collectors.snapshot.machine(machine["id"])
    if health["state"] in ("failing", "connecting") or snap is None:
        out["state"] = "failing" if health["state"] == "failing" else "connecting"
    else:
        out["state"] = snap.get("state") or "unknown"
        out["counts"] = dict(snap.get("counts") or {})
    return out


def live_values(runtime, tag_ids) -> dict[int, dict]:
    """tag id -> {"value", "quality", "reason", "time"} from the collectors' latest values."""
    collectors = getattr(runtime, "collectors", None)
    if collectors is None:
        return {}
    out = {}
    for tid, (t, value, quality, reason) in collectors.snapshot.tags(list(tag_ids)).items():
        out[tid] = {"value": json_safe(value), "quality": QUALITY_NAMES.get(quality, str(quality)),
                    "reason": reason, "time": t}
    return out


def reload_collectors(runtime) -> dict:
    """Ask this process's collectors to pick up the configuration now (they also do every few seconds)."""
    collectors = getattr(runtime, "collectors", None)
    if collectors is None:
        return {"reloaded": False, "message": "no collectors run in this process; the collector processes pick up "
                                              "the change at their next reload (every 10 s)"}
    try:
        changes = collectors.reload()
    except Exception as exc:  # the configuration is saved; the collectors retry on their own timer
        log.exception("collectors reload failed")
        return {"reloaded": False, "message": f"saved; the collectors will retry ({exc.__class__.__name__})"}
    return {"reloaded": True, "changes": changes}
