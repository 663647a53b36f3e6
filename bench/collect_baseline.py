"""bench.collect's baseline: the same reads as the app's, done with the raw protocol libraries (pycomm3,
python-snap7, asyncua, pymodbus) and then through the app's own drivers, so that the app's CPU is compared with
what the libraries alone spend on the same work, in the same run."""
from __future__ import annotations

import statistics
import time


def _specs(plc: dict):
    from collectors.base import TagSpec

    return [TagSpec(i, t["address"], t["data_type"], t["name"]) for i, t in enumerate(plc["tags"])]


def _driver(proto: str, plc: dict):
    from collectors.base import ConnectionSettings, driver_class

    cls = driver_class(proto)
    return cls(ConnectionSettings(proto, plc["host"], plc["port"], cls.validate_config(plc["protocol_config"])))


def _baseline_readers(proto: str, plcs: list[dict]):
    """(one read cycle over every PLC, close), with the raw library and the app's request shapes."""
    if proto == "ETHERNET_IP":
        from pycomm3 import LogixDriver

        conns = []
        for plc in plcs:
            drv = LogixDriver(f"{plc['host']}:{plc['port']}/0", init_tags=True, init_program_tags=False)
            drv.open()
            chunks = [c.names for c in _driver(proto, plc).plan(_specs(plc)).chunks]
            conns.append((drv, chunks))

        def cycle():
            for drv, chunks in conns:
                for names in chunks:
                    drv.read(*names)

        return cycle, lambda: [d.close() for d, _ in conns]
    if proto == "S7":
        import snap7

        from collectors.drivers.s7_plan import AREAS, build_requests

        conns = []
        for plc in plcs:
            client = snap7.client.Client()
            client.connect(plc["host"], 0, 1, plc["port"])
            plan = _driver(proto, plc).plan(_specs(plc))
            conns.append((client, build_requests(plan.items, min(plan.pdu, client.get_pdu_length()))))

        def cycle():
            for client, requests in conns:
                for req in requests:
                    if len(req.ranges) == 1:
                        r = req.ranges[0]
                        client.read_area(AREAS[r.area], r.db, r.start, r.size)
                    else:
                        client.read_multi_vars([{"area": AREAS[r.area], "db_number": r.db, "start": r.start,
                                                 "size": r.size} for r in req.ranges])

        return cycle, lambda: [c.disconnect() for c, _ in conns]
    if proto == "MODBUS":
        from pymodbus.client import ModbusTcpClient

        conns = []
        for plc in plcs:
            client = ModbusTcpClient(plc["host"], port=plc["port"], timeout=3, retries=0)
            client.connect()
            conns.append((client, _driver(proto, plc).plan(_specs(plc)).requests))

        def cycle():
            for client, requests in conns:
                for r in requests:
                    client.read_holding_registers(r.start, count=r.count, device_id=r.unit)

        return cycle, lambda: [c.close() for c, _ in conns]
    if proto == "OPCUA":
        import asyncio

        from asyncua import Client, ua

        loop = asyncio.new_event_loop()
        conns = []
        for plc in plcs:
            client = Client(plc["protocol_config"]["endpoint"], timeout=5)
            loop.run_until_complete(client.connect())
            plan = _driver(proto, plc).plan(_specs(plc))
            ids = [ua.NodeId.from_string(n.key) for n in plan.nodes]
            conns.append((client, [[ids[i] for i in chunk] for chunk in plan.chunks]))

        async def one_cycle():
            for client, chunks in conns:
                await asyncio.gather(*(client.uaclient.read_attributes(c, ua.AttributeIds.Value) for c in chunks))

        def close():
            for client, _ in conns:
                loop.run_until_complete(client.disconnect())
            loop.close()

        return (lambda: loop.run_until_complete(one_cycle())), close
    raise ValueError(proto)


def _driver_readers(proto: str, plcs: list[dict]):
    """(one read cycle over every PLC, close) through the app's own drivers: connect, plan, read(plan)."""
    from collectors.base import TagSpec

    drivers = []
    for plc in plcs:
        drv = _driver(proto, plc)
        drv.connect()
        specs = [TagSpec(1 + i, t["address"], t["data_type"], t["name"]) for i, t in enumerate(plc["tags"])]
        drivers.append((drv, drv.plan(specs)))

    def cycle():
        for drv, plan in drivers:
            drv.read(plan)

    return cycle, lambda: [d.close() for d, _ in drivers]


def _measure(readers, cycles: int, max_s: float) -> tuple[float, float, int]:
    cycle, close = readers
    try:
        for _ in range(2):
            cycle()  # warm: first requests, lazy imports, caches, resolutions
        cpu, wall = [], []
        deadline = time.monotonic() + max_s
        while len(cpu) < cycles and time.monotonic() < deadline:
            c0, w0 = time.process_time(), time.perf_counter()
            cycle()
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
    finally:
        close()
    return statistics.median(cpu), statistics.median(wall), len(cpu)


def _measure_retrying(make_readers, cycles: int, max_s: float, proto: str) -> tuple[float, float, int]:
    """_measure with fresh connections once more when a link broke: on a busy machine an asyncua session of the
    baseline was dropped ("client is disconnected") and took the whole 50,000-tag run with it."""
    try:
        return _measure(make_readers(), cycles, max_s)
    except Exception as exc:  # noqa: BLE001 - any link failure; the second try raises
        print(f"  baseline {proto}: {exc.__class__.__name__}: {exc}; measuring again on new connections", flush=True)
        return _measure(make_readers(), cycles, max_s)


def baseline(servers: dict, cycles: int = 10, max_s: float = 6.0) -> dict[str, dict]:
    """Per protocol, CPU and wall seconds of one read cycle over all its PLCs (medians): the raw library ("cpu_s",
    "wall_s"), and the app's driver alone without poller, writer or database ("driver_cpu_s", "driver_wall_s")."""
    out = {}
    for proto, (_child, info) in servers.items():
        cpu, wall, n = _measure_retrying(lambda: _baseline_readers(proto, info["plcs"]), cycles, max_s, proto)
        dcpu, dwall, _n = _measure_retrying(lambda: _driver_readers(proto, info["plcs"]), cycles, max_s, proto)
        out[proto] = {"tags": sum(len(p["tags"]) for p in info["plcs"]), "cpu_s": cpu, "wall_s": wall, "cycles": n,
                      "driver_cpu_s": dcpu, "driver_wall_s": dwall}
    return out
