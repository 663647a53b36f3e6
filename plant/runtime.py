"""The running plant: the model on a clock, one protocol server per machine, ground truth on request.

    plant = Plant(load_layout("plant/default_plant.yaml"), seed=1, time_scale=60)
    plant.start()            # every server listening when it returns
    plant.endpoints()        # where to connect, and the tag map of each machine
    plant.ground_truth("LINE-011")
    plant.stop()

Time: sim time ``t`` is seconds since start (t = 0 at construction). While the clock runs,
``t = (monotonic() - start) * time_scale`` and ``wall = wall_start + t / time_scale`` (UTC). The plant calendar
(shift changes at 06:00/14:00/22:00 plant time, breaks) is ``sim_start + t``, where ``sim_start`` defaults to the
wall time at construction, so at time_scale 1 the simulated shifts change when the real ones do.

A background asyncio thread advances the model every ``tick_s`` (0.2 s) and pushes the values into the servers.
With ``run_clock=False`` nothing moves by itself: tests call :meth:`Plant.advance_to`.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import math
import socket
import threading
import time
from contextlib import suppress
from datetime import datetime, timedelta, timezone
from typing import Any

from .layout import Layout, MachineSpec, default_layout
from .model import GroundTruth, MachineModel, PlantModel
from .servers import Endpoint, LogixEndpoint, ModbusEndpoint, OpcUaEndpoint, S7Endpoint
from .sparkplug_edge import SparkplugEndpoint, broker_available
from .tags import canonical_values

log = logging.getLogger("plant")

__all__ = ["Plant", "PlantStartError", "PortInUseError", "enip_available"]

START_TIMEOUT_S = 60.0


class _NoSecurityNotice(logging.Filter):
    """asyncua warns at every start that a NoSecurity-only server has no signing/encryption policy: we know."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not (msg.startswith("No signing policy available") or msg.startswith("No encrypting policy available"))


logging.getLogger("asyncua.server.server").addFilter(_NoSecurityNotice())


RESET_HOLD_S = 1e-6  # sim seconds before a counter reset where a tick that crosses it stops


class PlantStartError(RuntimeError):
    """A server could not start; the message names the machine, protocol, host and port."""


class PortInUseError(PlantStartError, OSError):
    """The port chosen for a machine is taken (and port_fallback is off, or no free port was found)."""

    def __init__(self, machine_id: str, protocol: str, host: str, port: int, hint: str = ""):
        self.machine_id = machine_id
        self.protocol = protocol
        self.host = host
        self.port = port
        msg = f"machine {machine_id} ({protocol}): port {port} on {host} is already in use"
        if hint:
            msg += f"; {hint}"
        OSError.__init__(self, errno.EADDRINUSE, msg)

    def __str__(self) -> str:
        return self.strerror


def enip_available() -> bool:
    """True when plant.enip (the ControlLogix server) can be imported."""
    try:
        from . import enip  # noqa: F401
    except ImportError:
        return False
    return True


def port_is_free(host: str, port: int) -> bool:
    """Can we bind host:port? Without SO_REUSEPORT, so a snap7 server (which sets it) counts as a holder."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


_ENDPOINT_CLASSES = {"S7": S7Endpoint, "MODBUS": ModbusEndpoint, "OPCUA": OpcUaEndpoint, "ETHERNET_IP": LogixEndpoint,
                     "SPARKPLUG_B": SparkplugEndpoint}


class Plant:
    """The simulated plant. See the module docstring."""

    def __init__(
        self,
        layout: Layout | None = None,
        seed: int = 1,
        time_scale: float = 1.0,
        host: str = "127.0.0.1",
        base_port: int = 0,
        port_fallback: bool = False,
        *,
        sim_start: datetime | None = None,
        tick_s: float = 0.2,
        run_clock: bool = True,
        truth_retention_s: float | None = 2 * 86400.0,
    ):
        self.layout = layout if layout is not None else default_layout()
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an integer, got {seed!r}")
        if isinstance(time_scale, bool) or not isinstance(time_scale, (int, float)) or not (
                math.isfinite(time_scale) and time_scale > 0):
            raise ValueError(f"time_scale must be a number greater than 0, got {time_scale!r}")
        if not 0.01 <= tick_s <= 5:
            raise ValueError(f"tick_s must be between 0.01 and 5 seconds, got {tick_s!r}")
        self.host = self._check_host(host)
        n = len(self.layout.machines)
        if isinstance(base_port, bool) or not isinstance(base_port, int) or not (
                base_port == 0 or 1 <= base_port <= 65536 - n):
            raise ValueError(f"base_port must be 0 (ephemeral ports) or 1..{65536 - n} for {n} machines, "
                             f"got {base_port!r}")
        self.seed = seed
        self.time_scale = float(time_scale)
        self.base_port = base_port
        self.port_fallback = bool(port_fallback)
        self.tick_s = float(tick_s)
        self.run_clock = bool(run_clock)
        now = datetime.now(timezone.utc)
        if sim_start is None:
            sim_start = now.astimezone(self.layout.tz)
        self.model = PlantModel(self.layout, seed, sim_start, truth_retention_s=truth_retention_s)
        self.sim_start = self.model.sim_start
        self.wall_start = now  # reset by start(): wall time at t = 0
        self.lock = threading.RLock()
        self._endpoints: list[Endpoint] = []
        self._skipped: list[MachineSpec] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._ticker: asyncio.Task | None = None
        self._mono0 = 0.0
        self._t0 = 0.0
        self._started = False
        self._stopped = False
        self._clock_on = False
        self._tick_failing = False
        self.stats = {"ticks": 0, "tick_max_s": 0.0, "writes": 0, "writes_refused": 0}

    # -- lifecycle ---------------------------------------------------------------------------------------------
    @staticmethod
    def _check_host(host: str) -> str:
        if host == "localhost":
            host = "127.0.0.1"
        try:
            addr = ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError(f"host must be an IPv4 address such as 127.0.0.1, got {host!r}") from None
        if not addr.is_loopback:
            log.warning("the simulated plant listens on %s: reachable from other hosts (no authentication)", host)
        return host

    def start(self) -> "Plant":
        """Start every server; returns when all listen. Raises PortInUseError / PlantStartError (nothing left
        running) naming the machine and port."""
        if self._started:
            if self._stopped:
                raise PlantStartError("a stopped plant cannot be started again; create a new Plant")
            return self
        self._started = True
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _plan_ports(self, specs: list[MachineSpec]) -> dict[str, int]:
        """The port each machine asks for: 0 (a free one, chosen by the server as it binds), its port from the
        plant file, or base_port + index. Conflicts inside the plant are found here; a port taken by another
        process is found when the server binds it (never checked first and bound later: it could be taken in
        between)."""
        taken: set[int] = {s.port for s in specs if s.port}
        plan: dict[str, int] = {}
        for spec in specs:
            want = spec.port or (self.base_port + spec.index if self.base_port else 0)
            if want and (want in plan.values() or (not spec.port and want in taken)):
                owner = next((s.id for s in specs if s is not spec and (plan.get(s.id) == want or s.port == want)),
                             None)
                if not self.port_fallback:
                    raise PortInUseError(spec.id, spec.protocol, self.host, want,
                                         f"machine {owner} has it in the plant file; choose another base port, "
                                         "or use port_fallback=True (--next-free-port)")
                port = want + 1
                while port <= 65535 and (port in taken or port in plan.values()):
                    port += 1
                if port > 65535:
                    raise PortInUseError(spec.id, spec.protocol, self.host, want, "no free port above it")
                log.warning("machine %s (%s): port %d is in use, took %d", spec.id, spec.protocol, want, port)
                want = port
            plan[spec.id] = want
        return plan

    def _bind_endpoint(self, spec: MachineSpec, port: int, reserved: set[int]) -> Endpoint:
        """Start the machine's server on port (0: a free one); with port_fallback, a taken port moves it to the
        next one that binds. The server binds the port itself and keeps it."""
        want = port
        while True:
            ep = _ENDPOINT_CLASSES[spec.protocol](self, spec, self.host, port)
            try:
                if isinstance(ep, (ModbusEndpoint, OpcUaEndpoint)):
                    self._run_coro(ep.start())
                else:
                    ep.start()
                return ep
            except Exception as exc:
                in_use = (isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE) or "in use" in str(exc)
                if not in_use:
                    raise PlantStartError(f"machine {spec.id} ({spec.protocol}): cannot start its server on "
                                          f"{self.host} port {port}: {exc}") from exc
                self._stop_endpoint(ep)
                if not port or not self.port_fallback:
                    raise PortInUseError(spec.id, spec.protocol, self.host, port,
                                         "stop what holds it, choose another base port, or let the plant take the "
                                         "next free port (port_fallback=True, --next-free-port)") from exc
            port += 1
            while port <= 65535 and port in reserved:
                port += 1
            if port > 65535:
                raise PortInUseError(spec.id, spec.protocol, self.host, want, "no free port above it")
            if port == want + 1:
                log.warning("machine %s (%s): port %d is in use, trying the next ones", spec.id, spec.protocol, want)

    def _stop_endpoint(self, ep: Endpoint) -> None:
        with suppress(Exception):
            if isinstance(ep, (ModbusEndpoint, OpcUaEndpoint)):
                self._run_coro(ep.stop_async(), timeout=10)
            else:
                ep.stop()

    def _start(self) -> None:
        specs = list(self.layout.machines)
        if any(s.protocol == "ETHERNET_IP" for s in specs) and not enip_available():
            log.warning("plant.enip is not importable: the ControlLogix machines are simulated without a server")
            self._skipped = [s for s in specs if s.protocol == "ETHERNET_IP"]
            specs = [s for s in specs if s.protocol != "ETHERNET_IP"]
        if any(s.protocol == "SPARKPLUG_B" for s in specs) and not broker_available():
            log.warning("mosquitto is not installed: the Sparkplug B machines are simulated without their broker "
                        "(Debian: apt-get install mosquitto)")
            self._skipped += [s for s in specs if s.protocol == "SPARKPLUG_B"]
            specs = [s for s in specs if s.protocol != "SPARKPLUG_B"]
        plan = self._plan_ports(specs)

        self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run_loop() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.call_soon(ready.set)
            self._loop.run_forever()

        self._loop_thread = threading.Thread(target=run_loop, name="plant-loop", daemon=True)
        self._loop_thread.start()
        ready.wait(10)

        reserved = {p for p in plan.values() if p} | {s.port for s in specs if s.port}
        for spec in specs:
            ep = self._bind_endpoint(spec, plan[spec.id], reserved)
            reserved.add(ep.port)
            self._endpoints.append(ep)
            log.debug("machine %s: %s on %s:%s", spec.id, spec.protocol, self.host, ep.port)

        # t = 0 is now: publish the initial values, then let the clock run
        self.wall_start = datetime.now(timezone.utc) - timedelta(seconds=self.model.now / self.time_scale)
        self._mono0 = time.monotonic()
        self._t0 = self.model.now
        self._publish()
        if self.run_clock:
            self._clock_on = True
            self._run_coro(self._start_ticker())
        log.info("plant %s started: %d machines, seed %s, time scale %g", self.layout.site_id,
                 len(self._endpoints), self.seed, self.time_scale)

    def stop(self) -> None:
        """Stop the clock and every server; frees every port. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._clock_on = False
        loop = self._loop
        if loop is not None and loop.is_running():
            with suppress(Exception):
                self._run_coro(self._shutdown_async(), timeout=30)
        for ep in self._endpoints:
            if isinstance(ep, (S7Endpoint, LogixEndpoint, SparkplugEndpoint)):
                try:
                    ep.stop()
                except Exception:  # noqa: BLE001 - stop the others anyway
                    log.exception("machine %s: stopping its server failed", ep.machine_id)
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
            if self._loop_thread is not None:
                self._loop_thread.join(10)
            with suppress(Exception):
                loop.close()
        self._loop = None

    async def _shutdown_async(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await self._ticker
        for ep in self._endpoints:
            if isinstance(ep, (ModbusEndpoint, OpcUaEndpoint)):
                try:
                    await ep.stop_async()
                except Exception:  # noqa: BLE001
                    log.exception("machine %s: stopping its server failed", ep.machine_id)

    def __enter__(self) -> "Plant":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._started and not self._stopped

    # -- the clock ---------------------------------------------------------------------------------------------
    def _run_coro(self, coro, timeout: float = START_TIMEOUT_S):
        assert self._loop is not None
        if threading.current_thread() is self._loop_thread:
            raise RuntimeError("called from the plant loop")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _start_ticker(self) -> None:
        self._ticker = asyncio.get_running_loop().create_task(self._tick_loop())

    def clock_now(self) -> float:
        """Sim time now: from the wall clock while it runs, else where the model stands."""
        if self._clock_on:
            return self._t0 + (time.monotonic() - self._mono0) * self.time_scale
        return self.model.now

    async def _tick_loop(self) -> None:
        next_at = time.monotonic()
        while True:
            next_at += self.tick_s
            delay = next_at - time.monotonic()
            if delay < 0:  # we fell behind (a slow box): do not try to catch up with a burst of ticks
                next_at = time.monotonic()
                delay = 0
            await asyncio.sleep(delay)
            began = time.perf_counter()
            try:
                snaps = self._advance_and_push(None)
                await self._push_opcua(snaps)
                if self._tick_failing:
                    log.info("plant tick recovered")
                    self._tick_failing = False
            except Exception:  # noqa: BLE001 - one log line when it starts failing, the plant keeps going
                if not self._tick_failing:
                    log.exception("plant tick failed")
                    self._tick_failing = True
            took = time.perf_counter() - began
            self.stats["ticks"] += 1
            self.stats["tick_max_s"] = max(self.stats["tick_max_s"], took)

    def _tick_target(self, t: float) -> float:
        """Where a tick advances the model to: t, unless counters reset at a shift change before it. Then this tick
        stops just before the reset, so the PLC shows the shift's last counts for a tick, as a real one shows them
        right up to the reset. Without it a client read the count of up to a tick before (12 s of plant time at
        a time scale of 60, more when a tick was late) and the parts made in between were lost with the reset."""
        hold = self.model.next_counter_reset() - RESET_HOLD_S
        if self.model.now < hold and t > hold:
            return hold
        return t

    def _advance_and_push(self, t: float | None) -> dict[str, dict[str, Any]]:
        with self.lock:
            if t is None:
                t = self._tick_target(self.clock_now())
            if t > self.model.now:
                self.model.advance_to(t)
            snaps = {mid: canonical_values(m) for mid, m in self.model.machines.items()}
            for ep in self._endpoints:
                if not isinstance(ep, OpcUaEndpoint):
                    ep.push(snaps[ep.machine_id])
        return snaps

    async def _push_opcua(self, snaps: dict[str, dict[str, Any]]) -> None:
        for ep in self._endpoints:
            if isinstance(ep, OpcUaEndpoint):
                await ep.push_async(snaps[ep.machine_id])

    def _publish(self) -> None:
        snaps = self._advance_and_push(self.model.now)
        if any(isinstance(ep, OpcUaEndpoint) for ep in self._endpoints):
            if threading.current_thread() is self._loop_thread:
                asyncio.get_running_loop().create_task(self._push_opcua(snaps))
            else:
                self._run_coro(self._push_opcua(snaps))

    def advance_to(self, t: float) -> None:
        """Manual clock (run_clock=False): handle every event up to sim time t and publish the values."""
        if self._clock_on:
            raise RuntimeError("the plant clock is running; create the Plant with run_clock=False to drive it")
        if t < self.model.now:
            raise ValueError(f"sim time only goes forward ({t} < {self.model.now})")
        with self.lock:
            self.model.advance_to(t)
        if self.running:
            self._publish()

    def advance(self, seconds: float) -> None:
        """Manual clock: advance by so many sim seconds."""
        self.advance_to(self.model.now + seconds)

    @property
    def sim_now(self) -> float:
        return self.model.now

    def wall_time(self, t_sim: float) -> datetime:
        """wall = wall_start + t / time_scale (UTC)."""
        return self.wall_start + timedelta(seconds=t_sim / self.time_scale)

    def sim_time(self, wall: datetime) -> float:
        return (wall - self.wall_start).total_seconds() * self.time_scale

    def plant_time(self, t_sim: float) -> datetime:
        """The plant calendar (site time zone) at sim time t."""
        return self.sim_start + timedelta(seconds=t_sim)

    # -- writes from clients -----------------------------------------------------------------------------------
    def _client_write(self, machine_id: str, name: str, value: Any, *, protocol: str = "") -> bool:
        """Apply a client's write to the model (caller holds the lock). Returns False when refused."""
        with self.lock:
            m = self.model.machine(machine_id)
            t = self.clock_now()
            if t > m.now:
                m.advance_to(t)
            ok = False
            try:
                if name in ("ProductionCount", "GoodCount", "RejectCount"):
                    ok = m.preset_counter({"ProductionCount": "total", "GoodCount": "good",
                                           "RejectCount": "reject"}[name], int(value))
                elif name == "CounterReset":
                    if value:
                        m.reset_counters()
                    ok = True
                elif name == "ProductCode":
                    ok = m.request_product(int(value))
                elif name == "OrderId":
                    ok = m.set_order(str(value))
                elif name == "OrderNumber":
                    ok = m.set_order(f"ORD-{int(value)}")
            except (TypeError, ValueError):
                ok = False
            self.stats["writes" if ok else "writes_refused"] += 1
            log.info("machine %s: %s client wrote %s = %r%s", machine_id, protocol, name, value,
                     "" if ok else " (refused)")
            return ok

    def _refresh(self, machine_id: str) -> None:
        """Republish one machine after a write (sync servers now, OPC-UA on the loop)."""
        with self.lock:
            values = canonical_values(self.model.machine(machine_id))
            for ep in self._endpoints:
                if ep.machine_id == machine_id and not isinstance(ep, OpcUaEndpoint):
                    ep.push(values)

    # -- what the app and tests use ----------------------------------------------------------------------------
    def endpoints(self) -> list[dict[str, Any]]:
        """Where each machine listens and its tag map (protocol's natural addressing). Real ports after start()."""
        out = []
        for ep in self._endpoints:
            spec = ep.spec
            out.append({
                "machine_id": spec.id, "name": spec.name, "protocol": spec.protocol, "host": self.host,
                "port": ep.port, "site": self.layout.site_id, "site_name": self.layout.site_name,
                "area": spec.area, "line": spec.line, "protocol_config": ep.protocol_config(),
                "summary": ep.summary(), "tags": ep.tags(),
            })
        return out

    def skipped_machines(self) -> list[str]:
        """Machines simulated without a server (ControlLogix when plant.enip is missing, Sparkplug B without
        Mosquitto)."""
        return [s.id for s in self._skipped]

    def machine(self, machine_id: str) -> MachineModel:
        """The live model object (state, counters). Read it under ``plant.lock`` for a consistent view."""
        return self.model.machine(machine_id)

    def snapshot(self, machine_id: str) -> dict[str, Any]:
        """The values the machine's PLC shows now (canonical names), taken under the lock."""
        with self.lock:
            return canonical_values(self.model.machine(machine_id))

    def ground_truth(self, machine_id: str) -> GroundTruth:
        """What really happened on a machine up to now (sim and wall UTC times). See plant.model.GroundTruth."""
        with self.lock:
            m = self.model.machine(machine_id)
            t = self.clock_now()
            if t > m.now:
                m.advance_to(t)
            return m.ground_truth(time_scale=self.time_scale, wall_start=self.wall_start)
