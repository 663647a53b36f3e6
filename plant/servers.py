"""One protocol server per simulated PLC, fed from the model's canonical values (plant.tags).

Each endpoint: ``start`` binds (``port`` is then the real port), ``push(values)`` publishes a machine's canonical
values, ``stop`` frees the port. Client writes go to ``plant._client_write(machine_id, name, value)``, which
applies them to the model and returns whether they were accepted; the endpoint then republishes the machine.

Threads: S7 servers run their own threads (python-snap7), ControlLogix servers their own loop thread
(plant.enip); Modbus and OPC-UA servers run on the plant's asyncio loop. ``push`` of S7, Modbus and ControlLogix
is called with the plant lock held; OPC-UA publishes with ``await push_async`` on the plant loop.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Protocol

from . import tags as T
from .layout import MachineSpec

log = logging.getLogger("plant")


class PlantHost(Protocol):
    """What an endpoint needs of the plant that runs it (plant.runtime.Plant), named here so that the servers do
    not import the runtime that imports them."""

    lock: Any  # held while a client's write changes the model
    model: Any  # plant.model.PlantModel

    def snapshot(self, machine_id: str) -> dict[str, Any]: ...

    def _client_write(self, machine_id: str, name: str, value: Any, *, protocol: str = "") -> bool: ...

    def _refresh(self, machine_id: str) -> None: ...


class Endpoint:
    protocol = ""

    def __init__(self, plant: PlantHost, spec: MachineSpec, host: str, port: int):
        self.plant = plant
        self.spec = spec
        self.host = host
        self.requested_port = port
        self.port: int | None = None

    @property
    def machine_id(self) -> str:
        return self.spec.id

    def protocol_config(self) -> dict[str, Any]:
        return {}

    def summary(self) -> str:
        return ""

    def tags(self) -> list[dict[str, Any]]:
        return T.endpoint_tags(self.spec)


# --------------------------------------------------------------------------------------------------------------
# Siemens S7 (python-snap7's pure Python server)
# --------------------------------------------------------------------------------------------------------------


def _s7_server_class():
    import snap7.server

    class PlantS7Server(snap7.server.Server):
        """snap7's server, told about client writes with the written bytes (its event only has offsets), and
        binding without SO_REUSEPORT: snap7 sets it, so a second server on a port already taken binds silently and
        clients land on either one (PROTOCOLS.md). Without it a taken port fails to bind, at once."""

        def __init__(self, on_write):
            super().__init__(log=False)
            self._plant_on_write = on_write

        def start(self, tcp_port: int = 102) -> int:
            """snap7.server.Server.start (python-snap7 3.3.0) without SO_REUSEPORT; a taken port raises OSError
            EADDRINUSE. Port 0 takes a free port, bound once and kept (self.port is then the real one)."""
            import socket
            import threading

            from snap7.server import EVC_SERVER_STARTED, CPUState, ServerState

            if self.running:
                raise RuntimeError("the S7 server is already running")
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT only, never a listening port
            try:
                sock.bind((self.host, tcp_port))
                sock.listen(5)
            except OSError:
                sock.close()
                raise
            self.server_socket = sock
            self.port = sock.getsockname()[1]
            self.running = True
            self.state = ServerState.RUNNING
            self.cpu_state = CPUState.RUN
            self.server_thread = threading.Thread(target=self._server_loop, daemon=True)
            self.server_thread.start()
            self._emit_event(EVC_SERVER_STARTED)
            return 0

        def _write_to_memory_area(self, area, db_number, start, write_data):  # noqa: D401 - snap7 override
            ok = super()._write_to_memory_area(area, db_number, start, write_data)
            if ok:
                try:
                    self._plant_on_write(area, db_number, start, bytes(write_data))
                except Exception:  # noqa: BLE001 - a bad write must not kill the client's thread
                    log.exception("S7 write handler failed")
            return ok

    return PlantS7Server


class S7Endpoint(Endpoint):
    protocol = "S7"

    def __init__(self, plant, spec, host, port):
        super().__init__(plant, spec, host, port)
        self.db = spec.options["db"]
        self.server = None
        self.image = bytearray(T.S7_DB_SIZE)
        self.area = bytearray(T.S7_DB_SIZE)  # registered with the server: what clients read and write

    def start(self) -> None:
        from snap7.type import SrvArea

        srv = _s7_server_class()(self._on_write)
        srv.register_area(SrvArea.DB, self.db, self.area)
        srv.start_to(self.host, self.requested_port)
        self.server = srv
        self.port = srv.server_socket.getsockname()[1]

    def _area_key(self):
        from snap7.datatypes import S7Area

        return (S7Area.DB, self.db)

    def push(self, values: dict[str, Any]) -> None:
        T.s7_encode(values, self.image)
        srv = self.server
        if srv is None:
            return
        with srv.area_locks[self._area_key()]:
            self.area[:] = self.image

    def _on_write(self, area, db_number, start, data: bytes) -> None:
        from snap7.datatypes import S7Area

        if area != S7Area.DB or db_number != self.db:
            return
        with self.plant.lock:
            merged = bytearray(self.image)
            merged[start:start + len(data)] = data[: max(0, len(merged) - start)]
            for f in T.s7_fields_touched(start, len(data)):
                if f.name not in T.WRITABLE:
                    continue
                new = T.s7_decode(f, merged)
                if new != T.s7_decode(f, self.image):
                    self.plant._client_write(self.spec.id, f.name, new, protocol="S7")
            self.plant._refresh(self.spec.id)

    def stop(self) -> None:
        srv, self.server = self.server, None
        if srv is not None:
            srv.stop()

    def protocol_config(self) -> dict[str, Any]:
        return {"rack": self.spec.options["rack"], "slot": self.spec.options["s7_slot"], "db": self.db,
                "db_size": T.S7_DB_SIZE}

    def summary(self) -> str:
        return (f"DB{self.db} ({T.S7_DB_SIZE} bytes): counters DB{self.db}.DBD0/4/8 DINT, State DBW12, "
                f"bits DBX20.0-20.7, OrderId STRING[20] at DBB64")


# --------------------------------------------------------------------------------------------------------------
# Modbus TCP (pymodbus simulator datastore)
# --------------------------------------------------------------------------------------------------------------

_HR_WRITABLE = {a for f in T.MODBUS_HR if f.name in T.WRITABLE for a in range(f.address, f.address + f.count)}
_COIL_WRITABLE = {f.address for f in T.MODBUS_COILS if f.name in T.WRITABLE}
_COIL_BY_ADDR = {f.address: f for f in T.MODBUS_COILS}


def _one_unit_core(device):
    """pymodbus' simulator datastore, but a request to another unit id raises NoSuchIdException, which the server
    answers with exception 0x0B (gateway target failed to respond) instead of logging a KeyError traceback and
    answering 0x04 (device failure)."""
    from pymodbus.exceptions import NoSuchIdException
    from pymodbus.simulator.simcore import SimCore

    class OneUnitCore(SimCore):
        async def async_getValues(self, device_id, func_code, address, count=1):
            if device_id not in self.devices:
                raise NoSuchIdException(f"unit id {device_id}")
            return await super().async_getValues(device_id, func_code, address, count)

        async def async_setValues(self, device_id, func_code, address, values):
            if device_id not in self.devices:
                raise NoSuchIdException(f"unit id {device_id}")
            return await super().async_setValues(device_id, func_code, address, values)

    return OneUnitCore(device)


class ModbusEndpoint(Endpoint):
    protocol = "MODBUS"

    def __init__(self, plant, spec, host, port):
        super().__init__(plant, spec, host, port)
        self.unit_id = spec.options["unit_id"]
        self.server = None
        self._blocks: dict[str, list[int]] = {}
        self.regs = [0] * T.MODBUS_HR_COUNT

    async def start(self) -> None:
        from pymodbus.server import ModbusTcpServer
        from pymodbus.simulator import DataType, SimData, SimDevice

        def bits():
            return [SimData(0, values=[False] * T.MODBUS_COIL_COUNT, datatype=DataType.BITS)]

        def regs():
            return [SimData(0, values=[0] * T.MODBUS_HR_COUNT, datatype=DataType.REGISTERS)]

        device = SimDevice(id=self.unit_id, simdata=(bits(), bits(), regs(), regs()), action=self._action)
        server = ModbusTcpServer(device, address=(self.host, self.requested_port))
        server.context = _one_unit_core(device)  # another unit id: exception 0x0B, as a gateway answers
        bind_error: list[OSError] = []
        create = server.call_create

        async def create_keeping_the_error():  # pymodbus logs a failed bind and raises without its errno
            try:
                return await create()
            except OSError as exc:
                bind_error.append(exc)
                raise

        server.call_create = create_keeping_the_error
        try:
            await server.serve_forever(background=True)
        except RuntimeError:
            if bind_error:
                raise bind_error[0] from None
            raise
        self.server = server
        self.port = server.transport.sockets[0].getsockname()[1]
        runtime = server.context.devices[self.unit_id]
        self._blocks = {k: runtime.block[k][2] for k in ("c", "d", "h", "i")}

    def push(self, values: dict[str, Any]) -> None:
        regs = T.modbus_registers(values)
        self.regs = regs
        if not self._blocks:
            return
        word = 0
        for i, bit in enumerate(T.modbus_coils(values)):
            if bit:
                word |= 1 << i
        h, i_ = self._blocks["h"], self._blocks["i"]
        h[0:T.MODBUS_HR_COUNT] = regs  # one slice assignment: atomic for the loop that serves clients
        i_[0:T.MODBUS_HR_COUNT] = regs
        self._blocks["c"][0] = word
        self._blocks["d"][0] = word

    async def _action(self, function_code, start_address, address, count, registers, set_values):
        """pymodbus calls this on every access; writes are checked and handed to the model."""
        if not set_values:
            return None
        from pymodbus.constants import ExcCodes

        if function_code in (5, 15):  # coils: address is the first bit, set_values the bits written
            written = range(address, address + len(set_values))
            if any(a not in _COIL_WRITABLE for a in written):
                return ExcCodes.ILLEGAL_ADDRESS
            with self.plant.lock:
                for k, a in enumerate(written):
                    if set_values[k]:
                        self.plant._client_write(self.spec.id, _COIL_BY_ADDR[a].name, True, protocol="MODBUS")
                    set_values[k] = False  # a command coil reads back 0
                self.plant._refresh(self.spec.id)
            return None
        if function_code not in (6, 16, 22, 23):
            return ExcCodes.ILLEGAL_FUNCTION
        written = range(address, address + len(set_values))
        if any(a not in _HR_WRITABLE for a in written):
            return ExcCodes.ILLEGAL_ADDRESS
        with self.plant.lock:
            merged = list(self.regs)
            for k, a in enumerate(written):
                merged[a] = int(set_values[k]) & 0xFFFF
            for f in T.MODBUS_HR:
                if f.name not in T.WRITABLE or not (f.address < written.stop and written.start < f.address + f.count):
                    continue
                new = T.modbus_decode(f, merged)
                if new != T.modbus_decode(f, self.regs):
                    if not self.plant._client_write(self.spec.id, f.name, new, protocol="MODBUS"):
                        return ExcCodes.ILLEGAL_VALUE
            self.plant._refresh(self.spec.id)
            for k, a in enumerate(written):
                set_values[k] = self.regs[a]
        return None

    async def stop_async(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            await server.shutdown()

    def protocol_config(self) -> dict[str, Any]:
        return {"unit_id": self.unit_id, "word_order": "big", "byte_order": "big", "zero_based": True,
                "holding_registers": T.MODBUS_HR_COUNT, "coils": T.MODBUS_COIL_COUNT}

    def summary(self) -> str:
        return (f"unit {self.unit_id}: HR0-{T.MODBUS_HR_COUNT - 1} (counters HR0/2/4 UINT32, State HR6, 32-bit "
                f"high word first), coils C0-C7 (Running, Faulted, Stopped, ..., CounterReset C7)")


# --------------------------------------------------------------------------------------------------------------
# OPC-UA (asyncua)
# --------------------------------------------------------------------------------------------------------------


class OpcUaEndpoint(Endpoint):
    protocol = "OPCUA"

    def __init__(self, plant, spec, host, port):
        super().__init__(plant, spec, host, port)
        self.server = None
        self.ns = 2
        self._nodes: dict[str, Any] = {}  # name -> ua.NodeId
        self._vtypes: dict[str, Any] = {}
        self._last: dict[str, Any] = {}
        self._names_by_id: dict[str, str] = {}

    @property
    def url(self) -> str:
        return f"opc.tcp://{self.host}:{self.port}/oee/"

    async def start(self) -> None:
        from asyncua import Server, ua
        from asyncua.common.callback import CallbackType

        # Port 0: the server binds a free port itself and keeps it; the endpoint URL is set to the real port once
        # it listens (a port picked first and bound later can be taken in between).
        self.port = self.requested_port
        srv = Server()
        await srv.init()
        srv.set_endpoint(self.url)
        srv.set_server_name(f"OEE plant simulator {self.spec.id}")
        srv.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        await srv.set_application_uri(f"urn:oee:plant:{self.spec.id}")
        self.ns = await srv.register_namespace(T.OPCUA_NAMESPACE)
        obj = await srv.nodes.objects.add_object(ua.NodeId(self.spec.id, self.ns),
                                                 ua.QualifiedName(self.spec.id, self.ns))
        await obj.write_attribute(ua.AttributeIds.DisplayName,
                                  ua.DataValue(ua.Variant(ua.LocalizedText(f"{self.spec.id} {self.spec.name}"),
                                                          ua.VariantType.LocalizedText)))
        for name, t in T.OPCUA_VARS:
            if t.endswith("]"):
                vt = getattr(ua.VariantType, t.split("[")[0])
                initial: Any = [0.0] * int(t.split("[")[1][:-1])
            else:
                vt = getattr(ua.VariantType, t)
                initial = {"Int32": 0, "Boolean": False, "Double": 0.0, "String": ""}[t]
            node_id = ua.NodeId(f"{self.spec.id}.{name}", self.ns)
            var = await obj.add_variable(node_id, ua.QualifiedName(name, self.ns), initial, varianttype=vt)
            await var.set_writable()
            self._nodes[name] = node_id
            self._vtypes[name] = vt
            self._names_by_id[node_id.Identifier] = name
        srv.subscribe_server_callback(CallbackType.PostWrite, self._post_write)
        await srv.start()
        self.server = srv
        if not self.port:
            self.port = srv.bserver.port  # asyncua reads it from the socket it bound (port 0)
            srv.set_endpoint(self.url)
            for description in srv.iserver.endpoints:  # what GetEndpoints and FindServers answer
                description.EndpointUrl = self.url
                description.Server.DiscoveryUrls = [self.url]

    async def push_async(self, values: dict[str, Any]) -> None:
        srv = self.server
        if srv is None:
            return
        from asyncua import ua

        now = datetime.now(timezone.utc)
        for name, node_id in self._nodes.items():
            v = values[name]
            if self._last.get(name, ...) == v:
                continue
            self._last[name] = v
            await srv.write_attribute_value(
                node_id, ua.DataValue(ua.Variant(v, self._vtypes[name]), SourceTimestamp=now, ServerTimestamp=now))

    async def _post_write(self, event, _dispatcher) -> None:
        from asyncua import ua

        params = event.request_params
        results = event.response_params or []
        touched = False
        for k, wv in enumerate(params.NodesToWrite):
            if wv.AttributeId != ua.AttributeIds.Value or wv.NodeId.NamespaceIndex != self.ns:
                continue
            name = self._names_by_id.get(wv.NodeId.Identifier)
            if name is None or (k < len(results) and not results[k].is_good()):
                continue
            touched = True
            self._last.pop(name, None)  # whatever was written, the next push restates the PLC's value
            if name in T.WRITABLE and wv.Value is not None and wv.Value.Value is not None:
                value = wv.Value.Value.Value
                if name == "CounterReset" and not value:
                    continue
                with self.plant.lock:
                    self.plant._client_write(self.spec.id, name, value, protocol="OPCUA")
        if touched:
            await self.push_async(self.plant.snapshot(self.spec.id))

    async def stop_async(self) -> None:
        srv, self.server = self.server, None
        if srv is not None:
            await srv.stop()

    def protocol_config(self) -> dict[str, Any]:
        return {"endpoint": self.url, "namespace": T.OPCUA_NAMESPACE, "namespace_index": self.ns,
                "security_policy": "None", "object": f"ns={self.ns};s={self.spec.id}"}

    def tags(self) -> list[dict[str, Any]]:
        return T.endpoint_tags(self.spec, opcua_ns=self.ns)

    def summary(self) -> str:
        return (f"{self.url} Objects/{self.spec.id}/<Name>, ns={self.ns};s={self.spec.id}.<Name> "
                f"({len(T.OPCUA_VARS)} variables)")


# --------------------------------------------------------------------------------------------------------------
# ControlLogix over EtherNet/IP (plant.enip)
# --------------------------------------------------------------------------------------------------------------


class LogixEndpoint(Endpoint):
    protocol = "ETHERNET_IP"

    def __init__(self, plant, spec, host, port):
        super().__init__(plant, spec, host, port)
        self.server = None
        self._last: dict[str, Any] = {}
        self._model = plant.model.machine(spec.id)

    def start(self) -> None:
        from .enip import LogixServer, LogixTag

        tags = {name: LogixTag(t, T.logix_default(t, n), read_only=name not in T.WRITABLE)
                for name, (t, n) in T.logix_tag_defs().items()}
        o = self.spec.options
        srv = LogixServer(tags, host=self.host, port=self.requested_port, product_name=o["product_name"],
                          revision=tuple(o["revision"]), serial=o["serial"], slot=o["slot"],
                          on_write=self._on_write, controller_name=self.spec.id.replace("-", "_"))
        srv.start()
        self.server = srv
        self.port = srv.port

    def push(self, values: dict[str, Any]) -> None:
        srv = self.server
        if srv is None:
            return
        lv = T.logix_values(self._model, values)
        changed = {k: v for k, v in lv.items() if self._last.get(k, ...) != v}
        if changed:
            srv.set_values(changed)
            self._last.update(changed)

    def _on_write(self, name: str, value: Any) -> None:
        with self.plant.lock:
            self._last.pop(name, None)
            if name in T.WRITABLE and not (name == "CounterReset" and not value):
                self.plant._client_write(self.spec.id, name, value, protocol="ETHERNET_IP")
            self.plant._refresh(self.spec.id)

    def stop(self) -> None:
        srv, self.server = self.server, None
        if srv is not None:
            srv.stop()

    def protocol_config(self) -> dict[str, Any]:
        o = self.spec.options
        return {"slot": o["slot"], "product_name": o["product_name"], "revision": list(o["revision"]),
                "path": f"{self.host}:{self.port}/{o['slot']}"}

    def summary(self) -> str:
        return (f"slot {self.spec.options['slot']}: {len(T.logix_tag_defs())} tags (ProductionCount DINT, "
                f"StationTemps REAL[8], FaultHistory DINT[10], Stn01_..Stn08_*, Program:MainProgram.StepNo, ...)")

