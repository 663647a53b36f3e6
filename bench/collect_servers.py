"""Simulated PLCs for bench.collect: one process per protocol, several PLCs with many tags each.

    python -m bench.collect_servers --protocol S7 --plcs 5 --tags-per-plc 1000 --epoch 1764300000 \
        [--probes 4] [--max-seconds 900] [--host 127.0.0.1]

Prints one JSON line on stdout once every server listens:
    {"event": "ready", "protocol": ..., "pid": ..., "plcs": [{"name", "host", "port", "protocol_config",
     "tags": [{"name", "address", "data_type"}], "probes": ["Probe0", ...]}]}
then serves until stdin closes (the bench is done, or died) or --max-seconds have passed, and prints a last line
    {"event": "stopped", "ticks": n, "late_ticks": n, "tick_ms_p50": x, "tick_ms_max": x,
     "probe_changes": [[plc_index, probe_index, value_ms], ...]}.

What the PLCs hold (n = --tags-per-plc, P = --probes; the probes are part of the n tags):
  ETHERNET_IP  plant.enip.LogixServer: controller tags R0000.. (REAL) and D0000.. (DINT), half each, Probe<k> DINT
  S7           snap7 Server, DB1: REALs then DINTs at DBD0, DBD4, ..., the probes (DINT) after them
  MODBUS       pymodbus SimDevice: holding registers HR0, HR2, ...: FLOAT32 then UINT32, the probes (UINT32) after
  OPCUA        asyncua Server, ns=<bench>: s=P<plc>.R0000.. (Double), s=P<plc>.D0000.. (Int32), s=P<plc>.Probe<k>
               (Int32); one server per PLC, so use few PLCs with many nodes (its init takes about 1.5 s of CPU)

Every value changes once a second (a ramp: REAL/Double ((k + i) mod 1000) / 4, DINT/Int32 7k + i at tick k), so
deadband and report-by-exception could not hide work even if they were on; every row the collector stores is a
real change. Probe k of each PLC changes every 2 s at a random moment in [0, 0.9) s of its 2 s period (so changes
are at least 1.1 s apart: a 1 s poll sees each one) to the number of milliseconds since --epoch at that moment.
The collector side needs no clock exchange: the value says when it changed (same host, same clock).

Threads: each LogixServer runs its own loop thread, snap7 its own threads; Modbus and OPC-UA servers run on this
process's asyncio loop, which also runs the ticker. Traffic stays on --host, 127.0.0.1 by default.
"""
from __future__ import annotations

import argparse
import asyncio
import heapq
import json
import logging
import os
import random
import socket
import statistics
import struct
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PROTOCOLS = ("ETHERNET_IP", "S7", "OPCUA", "MODBUS")
PROBE_PERIOD_S = 2.0
PROBE_WINDOW_S = 0.9
NAMESPACE = "urn:oee:bench:collect"


def layout(n: int, probes: int) -> tuple[int, int]:
    """(reals, dints) of a PLC with n tags of which `probes` are probes."""
    values = max(n - probes, 0)
    return values - values // 2, values // 2


def ramp(k: int, reals: int, dints: int) -> tuple[list[float], list[int]]:
    return ([((k + i) % 1000) / 4 for i in range(reals)], [(7 * k + i) % 2_000_000_000 for i in range(dints)])


class PLCs:
    """The PLCs of one protocol: start, tags, set the ramp, set a probe, stop."""

    protocol = ""

    def __init__(self, count: int, n: int, probes: int, host: str):
        self.count, self.n, self.probes, self.host = count, n, probes, host
        self.reals, self.dints = layout(n, probes)

    def describe(self) -> list[dict]:
        raise NotImplementedError


class LogixPLCs(PLCs):
    protocol = "ETHERNET_IP"

    async def start(self) -> None:
        from plant.enip import LogixServer, LogixTag

        self.servers = []
        for p in range(self.count):
            tags = {f"R{i:04d}": LogixTag("REAL", 0.0) for i in range(self.reals)}
            tags.update({f"D{i:04d}": LogixTag("DINT", 0) for i in range(self.dints)})
            tags.update({f"Probe{k}": LogixTag("DINT", 0) for k in range(self.probes)})
            srv = LogixServer(tags, host=self.host, port=0, controller_name=f"Bench_{p}", serial=0xBE00 + p)
            srv.start()
            self.servers.append(srv)
        self._names_r = [f"R{i:04d}" for i in range(self.reals)]
        self._names_d = [f"D{i:04d}" for i in range(self.dints)]

    def describe(self) -> list[dict]:
        out = []
        for p, srv in enumerate(self.servers):
            tags = [{"name": n, "address": n, "data_type": "REAL"} for n in self._names_r]
            tags += [{"name": n, "address": n, "data_type": "DINT"} for n in self._names_d]
            tags += [{"name": f"Probe{k}", "address": f"Probe{k}", "data_type": "DINT"} for k in range(self.probes)]
            out.append({"name": f"BENCH-EIP-{p:02d}", "host": self.host, "port": srv.port,
                        "protocol_config": {"slot": 0}, "tags": tags,
                        "probes": [f"Probe{k}" for k in range(self.probes)]})
        return out

    async def set_ramp(self, k: int) -> None:
        reals, dints = ramp(k, self.reals, self.dints)
        values = dict(zip(self._names_r, reals, strict=True))
        values.update(zip(self._names_d, dints, strict=True))
        for srv in self.servers:
            srv.set_values(values)

    async def set_probe(self, p: int, k: int, value: int) -> None:
        self.servers[p].set_value(f"Probe{k}", value)

    async def stop(self) -> None:
        for srv in self.servers:
            srv.stop()


class S7PLCs(PLCs):
    protocol = "S7"

    async def start(self) -> None:
        import snap7.server
        from snap7.datatypes import S7Area
        from snap7.type import SrvArea

        logging.getLogger("snap7").setLevel(logging.WARNING)
        self.servers, self.areas, self.locks = [], [], []
        size = 4 * self.n
        self._fmt = struct.Struct(f">{self.reals}f{self.dints}i")
        for _p in range(self.count):
            area = bytearray(size)
            srv = snap7.server.Server(log=False)
            srv.register_area(SrvArea.DB, 1, area)
            srv.start_to(self.host, 0)
            self.servers.append(srv)
            self.areas.append(area)
            self.locks.append(srv.area_locks[(S7Area.DB, 1)])

    def describe(self) -> list[dict]:
        out = []
        for p, srv in enumerate(self.servers):
            tags = [{"name": f"R{i:04d}", "address": f"DB1.DBD{4 * i}", "data_type": "REAL"}
                    for i in range(self.reals)]
            tags += [{"name": f"D{i:04d}", "address": f"DB1.DBD{4 * (self.reals + i)}", "data_type": "DINT"}
                     for i in range(self.dints)]
            base = 4 * (self.reals + self.dints)
            tags += [{"name": f"Probe{k}", "address": f"DB1.DBD{base + 4 * k}", "data_type": "DINT"}
                     for k in range(self.probes)]
            out.append({"name": f"BENCH-S7-{p:02d}", "host": self.host,
                        "port": srv.server_socket.getsockname()[1],
                        "protocol_config": {"rack": 0, "slot": 1}, "tags": tags,
                        "probes": [f"Probe{k}" for k in range(self.probes)]})
        return out

    async def set_ramp(self, k: int) -> None:
        reals, dints = ramp(k, self.reals, self.dints)
        raw = self._fmt.pack(*reals, *dints)
        for area, lock in zip(self.areas, self.locks, strict=True):
            with lock:
                area[:len(raw)] = raw

    async def set_probe(self, p: int, k: int, value: int) -> None:
        with self.locks[p]:
            struct.pack_into(">i", self.areas[p], 4 * (self.reals + self.dints + k), value)

    async def stop(self) -> None:
        for srv in self.servers:
            srv.stop()


class ModbusPLCs(PLCs):
    protocol = "MODBUS"

    async def start(self) -> None:
        from pymodbus.server import ModbusTcpServer
        from pymodbus.simulator import DataType, SimData, SimDevice

        logging.getLogger("pymodbus").setLevel(logging.WARNING)
        self.count_regs = 2 * self.n
        self.servers, self.blocks, self.ports = [], [], []
        for _p in range(self.count):
            bits = [SimData(0, values=[False] * 16, datatype=DataType.BITS)]
            regs = [SimData(0, values=[0] * self.count_regs, datatype=DataType.REGISTERS)]
            device = SimDevice(id=1, simdata=(bits, list(bits), regs, list(regs)))
            server = ModbusTcpServer(device, address=(self.host, 0))
            await server.serve_forever(background=True)
            self.servers.append(server)
            self.ports.append(server.transport.sockets[0].getsockname()[1])
            self.blocks.append(server.context.devices[1].block["h"][2])
        self._fmt = struct.Struct(f">{self.reals}f{self.dints}I")
        self._regs = struct.Struct(f">{2 * (self.reals + self.dints)}H")

    def describe(self) -> list[dict]:
        out = []
        for p, port in enumerate(self.ports):
            tags = [{"name": f"R{i:04d}", "address": f"HR{2 * i}", "data_type": "FLOAT32"} for i in range(self.reals)]
            tags += [{"name": f"D{i:04d}", "address": f"HR{2 * (self.reals + i)}", "data_type": "UINT32"}
                     for i in range(self.dints)]
            base = 2 * (self.reals + self.dints)
            tags += [{"name": f"Probe{k}", "address": f"HR{base + 2 * k}", "data_type": "UINT32"}
                     for k in range(self.probes)]
            out.append({"name": f"BENCH-MB-{p:02d}", "host": self.host, "port": port,
                        "protocol_config": {"unit_id": 1, "word_order": "big", "byte_order": "big",
                                            "zero_based": True},
                        "tags": tags, "probes": [f"Probe{k}" for k in range(self.probes)]})
        return out

    async def set_ramp(self, k: int) -> None:
        reals, dints = ramp(k, self.reals, self.dints)
        regs = list(self._regs.unpack(self._fmt.pack(*reals, *dints)))
        for block in self.blocks:
            block[0:len(regs)] = regs  # one slice assignment: atomic for the loop that serves clients

    async def set_probe(self, p: int, k: int, value: int) -> None:
        at = 2 * (self.reals + self.dints + k)
        self.blocks[p][at:at + 2] = [(value >> 16) & 0xFFFF, value & 0xFFFF]

    async def stop(self) -> None:
        for server in self.servers:
            await server.shutdown()


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class OpcUaPLCs(PLCs):
    protocol = "OPCUA"

    async def start(self) -> None:
        from asyncua import Server, ua

        for name in ("asyncua", "asyncua.server", "asyncua.server.server"):
            logging.getLogger(name).setLevel(logging.ERROR)
        self.servers, self.urls, self.nodes, self.ns = [], [], [], []
        for p in range(self.count):
            port = free_port(self.host)
            url = f"opc.tcp://{self.host}:{port}/bench/"
            srv = Server()
            await srv.init()
            srv.set_endpoint(url)
            srv.set_server_name(f"bench PLC {p}")
            srv.set_security_policy([ua.SecurityPolicyType.NoSecurity])
            idx = await srv.register_namespace(NAMESPACE)
            obj = await srv.nodes.objects.add_object(ua.NodeId(f"P{p}", idx), ua.QualifiedName(f"P{p}", idx))
            reals, dints, probes = [], [], []
            for i in range(self.reals):
                nid = ua.NodeId(f"P{p}.R{i:04d}", idx)
                await obj.add_variable(nid, ua.QualifiedName(f"R{i:04d}", idx), 0.0, varianttype=ua.VariantType.Double)
                reals.append(nid)
            for i in range(self.dints):
                nid = ua.NodeId(f"P{p}.D{i:04d}", idx)
                await obj.add_variable(nid, ua.QualifiedName(f"D{i:04d}", idx), 0, varianttype=ua.VariantType.Int32)
                dints.append(nid)
            for k in range(self.probes):
                nid = ua.NodeId(f"P{p}.Probe{k}", idx)
                await obj.add_variable(nid, ua.QualifiedName(f"Probe{k}", idx), 0, varianttype=ua.VariantType.Int32)
                probes.append(nid)
            await srv.start()
            aspace = srv.iserver.aspace
            value = ua.AttributeIds.Value
            self.servers.append(srv)
            self.urls.append(url)
            self.nodes.append(tuple([(nid, aspace._nodes[nid].attributes[value]) for nid in group]
                                    for group in (reals, dints, probes)))
            self.ns.append(idx)

    def describe(self) -> list[dict]:
        out = []
        for p, url in enumerate(self.urls):
            ns = self.ns[p]
            tags = [{"name": f"R{i:04d}", "address": f"ns={ns};s=P{p}.R{i:04d}", "data_type": "Double"}
                    for i in range(self.reals)]
            tags += [{"name": f"D{i:04d}", "address": f"ns={ns};s=P{p}.D{i:04d}", "data_type": "Int32"}
                     for i in range(self.dints)]
            tags += [{"name": f"Probe{k}", "address": f"ns={ns};s=P{p}.Probe{k}", "data_type": "Int32"}
                     for k in range(self.probes)]
            port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
            out.append({"name": f"BENCH-UA-{p:02d}", "host": self.host, "port": port,
                        "protocol_config": {"endpoint": url, "security_policy": "None"}, "tags": tags,
                        "probes": [f"Probe{k}" for k in range(self.probes)]})
        return out

    @staticmethod
    async def _write(srv, node, value, vt, now) -> None:
        """The PLC's memory changes: set the value attribute in place, as write_attribute_value does, without its
        type check and lookups (about a quarter of the cost). Through the server's API when anything listens to
        the node (a subscription), so that notifications still go out."""
        from asyncua import ua

        nid, att = node
        dv = ua.DataValue(ua.Variant(value, vt), SourceTimestamp=now, ServerTimestamp=now)
        if att.datachange_callbacks or att.value_setter is not None:
            await srv.write_attribute_value(nid, dv)
        else:
            att.value = dv

    async def set_ramp(self, k: int) -> None:
        from datetime import datetime, timezone

        from asyncua import ua

        reals, dints = ramp(k, self.reals, self.dints)
        now = datetime.now(timezone.utc)
        for srv, (rn, dn, _pn) in zip(self.servers, self.nodes, strict=True):
            for node, v in zip(rn, reals, strict=True):
                await self._write(srv, node, v, ua.VariantType.Double, now)
            for node, v in zip(dn, dints, strict=True):
                await self._write(srv, node, v, ua.VariantType.Int32, now)

    async def set_probe(self, p: int, k: int, value: int) -> None:
        from datetime import datetime, timezone

        from asyncua import ua

        await self._write(self.servers[p], self.nodes[p][2][k], value, ua.VariantType.Int32,
                          datetime.now(timezone.utc))

    async def stop(self) -> None:
        for srv in self.servers:
            await srv.stop()


KINDS = {"ETHERNET_IP": LogixPLCs, "S7": S7PLCs, "OPCUA": OpcUaPLCs, "MODBUS": ModbusPLCs}


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


async def serve(args) -> None:
    plcs = KINDS[args.protocol](args.plcs, args.tags_per_plc, args.probes, args.host)
    await plcs.start()
    loop = asyncio.get_running_loop()
    done = asyncio.Event()

    def watch_stdin() -> None:  # the bench closes our stdin when it is done (or when it dies)
        try:
            for _line in sys.stdin:
                pass
        finally:
            loop.call_soon_threadsafe(done.set)

    threading.Thread(target=watch_stdin, name="stdin", daemon=True).start()
    loop.call_later(args.max_seconds, done.set)
    rng = random.Random(args.seed)
    t0 = time.time()
    base = t0 + 0.5  # probe periods start here, every PROBE_PERIOD_S
    events: list[tuple[float, int, int, int]] = [(t0 + 1.0 - t0 % 1.0, 0, -1, -1)]  # (due, kind, plc, probe)
    for p in range(args.plcs):
        for k in range(args.probes):
            events.append((base + rng.uniform(0, PROBE_WINDOW_S), 1, p, k))
    heapq.heapify(events)
    await plcs.set_ramp(0)
    emit({"event": "ready", "protocol": args.protocol, "pid": os.getpid(), "plcs": plcs.describe()})
    ticks, late, tick_ms, changes = 0, 0, [], []
    while not done.is_set():
        due, kind, p, k = heapq.heappop(events)
        wait = due - time.time()
        if wait > 0:
            try:
                await asyncio.wait_for(done.wait(), wait)
                break
            except asyncio.TimeoutError:
                pass
        if kind == 0:
            started = time.perf_counter()
            ticks += 1
            await plcs.set_ramp(ticks)
            tick_ms.append((time.perf_counter() - started) * 1000)
            nxt = due + 1.0
            if nxt < time.time():  # the update took longer than a second: skip ahead, count it
                late += 1
                nxt = time.time() + 1.0 - time.time() % 1.0
            heapq.heappush(events, (nxt, 0, -1, -1))
        else:
            value = int((time.time() - args.epoch) * 1000)
            await plcs.set_probe(p, k, value)
            changes.append([p, k, value])
            period = due - (due - base) % PROBE_PERIOD_S  # start of this probe's current period
            heapq.heappush(events, (period + PROBE_PERIOD_S + rng.uniform(0, PROBE_WINDOW_S), 1, p, k))
    await plcs.stop()
    emit({"event": "stopped", "ticks": ticks, "late_ticks": late,
          "tick_ms_p50": round(statistics.median(tick_ms), 2) if tick_ms else None,
          "tick_ms_max": round(max(tick_ms), 2) if tick_ms else None, "probe_changes": changes})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocol", required=True, choices=PROTOCOLS)
    parser.add_argument("--plcs", type=int, default=1)
    parser.add_argument("--tags-per-plc", type=int, default=1000)
    parser.add_argument("--probes", type=int, default=4, help="probe tags per PLC (part of --tags-per-plc)")
    parser.add_argument("--epoch", type=float, required=True, help="probe values are milliseconds since this")
    parser.add_argument("--max-seconds", type=float, default=900, help="stop by itself after this long")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.host != "127.0.0.1":
        parser.error("--host: the bench keeps its traffic on 127.0.0.1")
    if not 1 <= args.plcs <= 100 or not args.probes < args.tags_per_plc <= 16000:
        parser.error("--plcs 1..100, --tags-per-plc above --probes and at most 16000")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s servers %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
