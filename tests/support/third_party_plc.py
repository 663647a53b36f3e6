"""A "third-party PLC" for end-to-end tests: real protocol servers on 127.0.0.1 that are NOT the demo plant, with their
own tag names, their own state codes (1 = run, 3 = fault, 7 = changeover) and an ideal-cycle-time tag, running a
known schedule, so that A, P, Q, OEE and the equipment-failure loss are known in advance.

The schedule (wall clock, from `t0`, a whole minute): every `cycle_s` (30 s) the machine runs `run_s` (20 s) at its
ideal speed, a part every `ideal_s` (0.1 s), then is faulted (code 42) for the rest of the cycle. Every
`reject_every`-th part (10th) is a reject. So over whole cycles: A = 20/30, P = 1, Q = 0.9, OEE = 0.6, and the
equipment-failure loss is 10 s of every 30 s. Before t0 the machine is in changeover (code 7).

Servers: Modbus TCP (pymodbus, unit 1, zero-based addresses) and OPC-UA (asyncua, its own namespace and object),
both on one asyncio loop in a thread, and EtherNet/IP (the repository's own ControlLogix server, plant.enip, with
program-scope tags of its own); their values are recomputed from the schedule every 10 ms. `tags(protocol)`
gives each server's tags as a user maps them in the API (name, address, data type, canonical role).
"""
from __future__ import annotations

import asyncio
import math
import struct
import threading
import time
from dataclasses import dataclass

RUN, FAULT, CHANGEOVER = 1, 3, 7  # the vendor's state codes, not the demo plant's
FAULT_CODE = 42
OPCUA_NAMESPACE = "urn:acme:filler"
UPDATE_S = 0.01


@dataclass(frozen=True)
class Schedule:
    t0: float
    run_s: float = 20.0
    cycle_s: float = 30.0
    ideal_s: float = 0.1
    reject_every: int = 10

    @property
    def availability(self) -> float:
        return self.run_s / self.cycle_s

    @property
    def quality(self) -> float:
        return 1 - 1 / self.reject_every

    @property
    def oee(self) -> float:
        return self.availability * self.quality

    @property
    def failure_share(self) -> float:
        """The equipment-failure loss as a share of planned time."""
        return 1 - self.availability

    def at(self, t: float) -> dict:
        """What the PLC shows at wall time t: state code, fault code, running, good and scrap counters."""
        if t < self.t0:
            return {"state": CHANGEOVER, "fault": 0, "running": False, "good": 0, "scrap": 0}
        k, into = divmod(t - self.t0, self.cycle_s)
        per_cycle = round(self.run_s / self.ideal_s)
        made = int(k) * per_cycle + min(per_cycle, math.floor(into / self.ideal_s + 1e-9))
        scrap = made // self.reject_every
        running = into < self.run_s
        return {"state": RUN if running else FAULT, "fault": 0 if running else FAULT_CODE, "running": running,
                "good": made - scrap, "scrap": scrap}


# Modbus map: the vendor's own names and addresses (zero-based).
MODBUS_TAGS = [
    {"name": "PartsGood", "address": "HR100", "data_type": "UINT32", "role": "counter.good"},
    {"name": "PartsScrap", "address": "HR102", "data_type": "UINT32", "role": "counter.reject"},
    {"name": "MachineStatus", "address": "HR110", "data_type": "UINT16", "role": "state.code"},
    {"name": "AlarmNo", "address": "HR111", "data_type": "UINT16", "role": "fault.code"},
    {"name": "NominalCycle_s", "address": "HR120", "data_type": "FLOAT32", "role": "cycle.ideal_time"},
    {"name": "InProduction", "address": "C20", "data_type": "BOOL", "role": "state.running"},
    {"name": "AlarmActive", "address": "C21", "data_type": "BOOL", "role": "state.faulted"},
]
OPCUA_VARS = [  # (browse name, variant type, role)
    ("GoodParts", "UInt32", "counter.good"),
    ("ScrapParts", "UInt32", "counter.reject"),
    ("Status", "Int16", "state.code"),
    ("AlarmNumber", "Int16", "fault.code"),
    ("TargetCycleTime", "Double", "cycle.ideal_time"),
    ("InProduction", "Boolean", "state.running"),
    ("AlarmActive", "Boolean", "state.faulted"),
]
LOGIX_TAGS = [  # program-scope tags of the vendor's own program
    ("Program:Filler.GoodParts", "DINT", "counter.good"),
    ("Program:Filler.ScrapParts", "DINT", "counter.reject"),
    ("Program:Filler.Status", "INT", "state.code"),
    ("Program:Filler.AlarmNo", "INT", "fault.code"),
    ("Program:Filler.NominalCycle", "REAL", "cycle.ideal_time"),
    ("Program:Filler.InProduction", "BOOL", "state.running"),
    ("Program:Filler.AlarmActive", "BOOL", "state.faulted"),
]
REGISTERS, COILS = 130, 32


def _modbus_registers(v: dict, ideal_s: float) -> dict[int, int]:
    out = {}
    for addr, value in ((100, v["good"]), (102, v["scrap"])):
        out[addr], out[addr + 1] = value >> 16 & 0xFFFF, value & 0xFFFF  # high word first
    out[110], out[111] = v["state"], v["fault"]
    hi, lo = struct.unpack(">HH", struct.pack(">f", ideal_s))
    out[120], out[121] = hi, lo
    return out


class ThirdPartyPlc:
    """Both servers of one third-party PLC, on free ports of 127.0.0.1. Use as a context manager or start/stop."""

    def __init__(self, schedule: Schedule, host: str = "127.0.0.1"):
        self.schedule = schedule
        self.host = host
        self.modbus_port: int | None = None
        self.opcua_port: int | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="third-party-plc", daemon=True)
        self._modbus = None
        self._blocks: dict = {}
        self._opcua = None
        self._nodes: dict = {}
        self._ticker = None
        self._logix = None
        self.logix_port: int | None = None

    # --- life --------------------------------------------------------------------------------------------------

    def start(self) -> ThirdPartyPlc:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(30)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    async def _start(self) -> None:
        from plant.enip import LogixServer, LogixTag

        self._logix = LogixServer({name: LogixTag(t, 0.0 if t == "REAL" else (False if t == "BOOL" else 0),
                                                  read_only=True) for name, t, _role in LOGIX_TAGS},
                                  host=self.host, port=0, controller_name="ACME_Filler")
        self._logix.start()
        self.logix_port = self._logix.port
        await self._start_modbus()
        await self._start_opcua()
        await self._update()
        self._ticker = asyncio.get_running_loop().create_task(self._tick())

    async def _stop(self) -> None:
        if self._ticker:
            self._ticker.cancel()
        if self._modbus is not None:
            await self._modbus.shutdown()
        if self._opcua is not None:
            await self._opcua.stop()
        if self._logix is not None:
            self._logix.stop()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(UPDATE_S)
            await self._update()

    async def _update(self) -> None:
        v = self.schedule.at(time.time())
        if self._blocks:
            h = self._blocks["h"]
            for addr, word in _modbus_registers(v, self.schedule.ideal_s).items():
                h[addr] = word
            alarm = not v["running"] and v["state"] == FAULT  # as on the other two servers: not in changeover
            self._blocks["c"][1] = (1 if v["running"] else 0) << 4 | (1 if alarm else 0) << 5  # C20, C21
        if self._logix is not None:
            self._logix.set_values({
                "Program:Filler.GoodParts": v["good"], "Program:Filler.ScrapParts": v["scrap"],
                "Program:Filler.Status": v["state"], "Program:Filler.AlarmNo": v["fault"],
                "Program:Filler.NominalCycle": self.schedule.ideal_s, "Program:Filler.InProduction": v["running"],
                "Program:Filler.AlarmActive": not v["running"] and v["state"] == FAULT})
        if self._opcua is not None:
            from asyncua import ua

            values = {"GoodParts": v["good"], "ScrapParts": v["scrap"], "Status": v["state"],
                      "AlarmNumber": v["fault"], "TargetCycleTime": self.schedule.ideal_s,
                      "InProduction": v["running"], "AlarmActive": not v["running"] and v["state"] == FAULT}
            for name, (node_id, vt) in self._nodes.items():
                await self._opcua.write_attribute_value(node_id, ua.DataValue(ua.Variant(values[name], vt)))

    # --- Modbus TCP ------------------------------------------------------------------------------------------

    async def _start_modbus(self) -> None:
        from pymodbus.server import ModbusTcpServer
        from pymodbus.simulator import DataType, SimData, SimDevice

        def bits():
            return [SimData(0, values=[False] * COILS, datatype=DataType.BITS)]

        def regs():
            return [SimData(0, values=[0] * REGISTERS, datatype=DataType.REGISTERS)]

        device = SimDevice(id=1, simdata=(bits(), bits(), regs(), regs()))
        server = ModbusTcpServer(device, address=(self.host, 0))
        await server.serve_forever(background=True)
        self._modbus = server
        self.modbus_port = server.transport.sockets[0].getsockname()[1]
        runtime = server.context.devices[1]
        self._blocks = {k: runtime.block[k][2] for k in ("c", "h")}

    # --- OPC-UA ----------------------------------------------------------------------------------------------

    async def _start_opcua(self) -> None:
        import socket

        from asyncua import Server, ua

        with socket.socket() as s:  # the endpoint URL carries the port: choose a free one first
            s.bind((self.host, 0))
            self.opcua_port = s.getsockname()[1]
        srv = Server()
        await srv.init()
        srv.set_endpoint(self.opcua_url)
        srv.set_server_name("ACME filler controller")
        srv.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        ns = await srv.register_namespace(OPCUA_NAMESPACE)
        self.opcua_ns = ns
        obj = await srv.nodes.objects.add_object(ua.NodeId("Filler", ns), ua.QualifiedName("Filler", ns))
        for name, vtype, _role in OPCUA_VARS:
            vt = getattr(ua.VariantType, vtype)
            initial = {"UInt32": 0, "Int16": 0, "Double": 0.0, "Boolean": False}[vtype]
            node_id = ua.NodeId(f"Filler/{name}", ns)
            await obj.add_variable(node_id, ua.QualifiedName(name, ns), ua.Variant(initial, vt))
            self._nodes[name] = (node_id, vt)
        await srv.start()
        self._opcua = srv

    @property
    def opcua_url(self) -> str:
        return f"opc.tcp://{self.host}:{self.opcua_port}/acme/"

    # --- what a user types into the API ----------------------------------------------------------------------

    def machine_body(self, protocol: str, machine_id: str, **extra) -> dict:
        """A POST /api/plc/machines/ body: this PLC's connection and its tags with their roles."""
        if protocol == "MODBUS":
            conn = {"ip_address": self.host, "port": self.modbus_port,
                    "protocol_config": {"unit_id": 1, "word_order": "big", "byte_order": "big", "zero_based": True}}
            tags = [dict(t) for t in MODBUS_TAGS]
        elif protocol == "OPCUA":
            conn = {"ip_address": self.host, "port": self.opcua_port,
                    "protocol_config": {"endpoint": self.opcua_url, "security_policy": "None"}}
            tags = [{"name": name, "address": f"nsu={OPCUA_NAMESPACE};s=Filler/{name}", "data_type": vtype,
                     "role": role} for name, vtype, role in OPCUA_VARS]
        elif protocol == "ETHERNET_IP":
            conn = {"ip_address": self.host, "port": self.logix_port, "protocol_config": {"slot": 0}}
            tags = [{"name": name, "address": name, "data_type": t, "role": role} for name, t, role in LOGIX_TAGS]
        else:
            raise ValueError(f"no {protocol} server in this harness")
        return {"name": f"ACME filler ({protocol})", "machine_id": machine_id, "protocol": protocol,
                "poll_interval_ms": 100, **conn, "tags": tags, **extra}
