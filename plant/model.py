"""The machine model: event-driven, in simulated time, deterministic given a seed. No I/O, no wall clock.

Time
    ``t`` (sim time) is seconds since the simulation started (t = 0). The plant calendar (shift changes, breaks)
    is ``sim_epoch + t`` where ``sim_epoch`` is the POSIX time of t = 0, read in the site's time zone. The runtime
    (plant.runtime.Plant) maps sim time onto the wall clock as ``wall = wall_start + t / time_scale``.

Determinism
    Each machine owns a ``random.Random`` seeded from (seed, machine id). Random numbers are drawn only while an
    event is handled, and events are handled strictly in time order, so ``advance_to`` gives the same history
    however the caller chunks time (one call to t = 8 h or 28,800 calls of one second). Process values
    (temperatures, current) are functions of sim time and state, not of the caller's ticks. Writes from clients
    (counter presets, product requests) are applied at the sim time the plant has reached when they arrive.

States (the State tag): 1 running, 2 idle/starved, 3 blocked, 4 faulted, 5 planned stop, 6 changeover.

While running a machine completes a part every ``ideal_cycle_time / speed`` seconds, where the speed factor is
drawn per part around ``1 - speed_loss`` (never above 1) plus, now and then, a micro-stop (a short pause that does
not change the State: a performance loss). Each part is rejected with ``reject_rate`` (higher for the first parts
after a changeover). Unplanned stops (faults per fault code, starved, blocked) arrive as competing exponential
clocks of running time; their durations come from each code's distribution. When an order's quantity of good
parts is reached the machine changes over to its next product (new ProductCode, OrderId and IdealCycleTime at the
start of the changeover). Daily breaks and the shifts the machine does not work are planned stops.

Counters (ProductionCount, GoodCount, RejectCount) are registers: ``(preset + parts since preset) % modulus``.
They reset to 0 at each shift change when ``reset_counters_at_shift`` is set, wrap at ``counter_modulus``, and a
client may preset them (write a value) or reset them all (CounterReset).
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random
from array import array
from dataclasses import asdict
from datetime import datetime, timedelta, timezone

from .calendar import Calendar
from .layout import Layout, MachineSpec, ProductSpec
from .truth import STATE_NAMES, CounterEvent, GroundTruth, ProductRun, ShiftRecord, State, StateInterval

__all__ = [
    "Calendar",
    "CounterEvent",
    "GroundTruth",
    "MachineModel",
    "PlantModel",
    "ProductRun",
    "ShiftRecord",
    "State",
    "StateInterval",
    "STATE_NAMES",
]

INF = math.inf


AMBIENT_C = 22.0
HEAT_TAU_S = 900.0  # thermal time constant of the stations


def derive_seed(seed: int, name: str) -> int:
    """A stable 64-bit seed for one machine (independent of PYTHONHASHSEED and of the machine's position)."""
    return int.from_bytes(hashlib.sha256(f"{seed}/{name}".encode()).digest()[:8], "big")


def _mix64(x: int) -> int:
    """splitmix64 finaliser: a cheap, stable hash of an integer."""
    x = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 31)


def value_noise(key: int, channel: int, t: float, period: float = 5.0) -> float:
    """Smooth deterministic noise in [-1, 1] as a function of sim time (no RNG state, so ticks do not matter)."""
    x = t / period
    k = math.floor(x)
    f = x - k
    base = key ^ (channel * 0x9E3779B1)
    a = _mix64(base ^ (k & 0xFFFFFFFF)) / 2**63 - 1.0
    b = _mix64(base ^ ((k + 1) & 0xFFFFFFFF)) / 2**63 - 1.0
    f = f * f * (3 - 2 * f)
    return a + (b - a) * f


# --------------------------------------------------------------------------------------------------------------
# One machine
# --------------------------------------------------------------------------------------------------------------

_COUNTERS = ("total", "good", "reject")


class MachineModel:
    """One simulated machine. Mutate only through advance_to() and the write methods (the runtime holds a lock)."""

    def __init__(self, spec: MachineSpec, calendar: Calendar, seed: int, *, truth_retention_s: float | None = None):
        self.spec = spec
        self.calendar = calendar
        self.seed = seed
        self.rng = random.Random(derive_seed(seed, spec.id))
        self.noise_key = derive_seed(seed, spec.id + "/noise")
        self.schedule = calendar.schedule(spec.shifts)
        self.retention_s = truth_retention_s
        self.now = 0.0

        # state
        self.state = State.RUNNING
        self.state_since = 0.0
        self.fault_code = 0  # active fault
        self.last_fault_code = 0
        self.fault_history: list[int] = [0] * 10  # newest first
        self.fault_count = 0
        self.last_cycle_time = 0.0
        self._pending_product: int | None = None

        # product / order
        self.product_index = self.rng.randrange(len(spec.products))
        self.order_no = 4_000_000 + 100 * self.rng.randrange(10_000)
        self.order_id = f"ORD-{self.order_no}"
        self.order_qty = self.rng.randint(*spec.order_quantity)
        self.order_good = self.rng.randrange(self.order_qty)  # we join the order somewhere in the middle
        self.parts_since_changeover = spec.startup_reject_parts

        # counters: registers (what the PLC shows) and lifetime totals (what happened)
        self.raw = {k: spec.counter_initial for k in _COUNTERS}
        self.totals = {k: 0 for k in _COUNTERS}

        # scheduled events
        self._state_end = INF
        self._stop_t = INF
        self._stop_kind: tuple[State, int] = (State.IDLE, 0)
        self._part_t = INF
        self._part_start = 0.0
        self._part_micro = 0.0
        shift_idx, _ = calendar.shift_at(0.0)
        self.shift_index = shift_idx
        self._next_shift_t, self._next_shift_idx = calendar.next_shift_change(0.0)
        self._next_planned_t = self.schedule.next_start_after(0.0)

        # thermal state of the stations: heat factor h in [0, 1] relaxes towards 1 (heaters on) or 0 (off)
        self._heat0 = 1.0
        self._heat_t = 0.0
        self._heat_target = 1.0

        # ground truth
        self._states: list[StateInterval] = []
        self._runs: list[ProductRun] = []
        self._shifts: list[ShiftRecord] = [ShiftRecord(self.shift_name, 0.0, None)]
        self._counter_events: list[CounterEvent] = []
        self._part_times = array("d")
        self._reject_times = array("d")
        self._history_start = 0.0
        self._next_prune = 3600.0

        self._open_run()
        w = self.schedule.window_at(0.0)
        if w is not None:
            self._set_state(State.PLANNED_STOP)
            self._state_end = w[1]
        else:
            self._enter_running()

    # -- public read-only view ---------------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def product(self) -> ProductSpec:
        return self.spec.products[self.product_index]

    @property
    def shift_name(self) -> str:
        return self.calendar.shifts[self.shift_index].name

    @property
    def counters(self) -> dict[str, int]:
        """Counter registers as a PLC shows them (wrapped at counter_modulus)."""
        m = self.spec.counter_modulus
        return {k: v % m for k, v in self.raw.items()}

    @property
    def fault_name(self) -> str:
        return self._fault_name(self.fault_code)

    def _fault_name(self, code: int) -> str:
        if not code:
            return ""
        for f in self.spec.faults:
            if f.code == code:
                return f.name
        return f"Fault {code}"

    # -- the event loop ----------------------------------------------------------------------------------------
    def advance_to(self, t: float) -> None:
        """Handle every event up to and including sim time t, then stand at t."""
        if t < self.now:
            raise ValueError(f"{self.spec.id}: cannot go back in time ({t} < {self.now})")
        while True:
            te, kind = self._next_shift_t, 0
            if self._next_planned_t < te:
                te, kind = self._next_planned_t, 1
            if self._state_end < te:
                te, kind = self._state_end, 2
            if self._stop_t < te:
                te, kind = self._stop_t, 3
            if self._part_t < te:
                te, kind = self._part_t, 4
            if te > t:
                break
            self.now = te
            if kind == 4:
                self._on_part()
            elif kind == 3:
                self._on_stop()
            elif kind == 2:
                self._on_state_end()
            elif kind == 1:
                self._on_planned_start()
            else:
                self._on_shift_change()
        self.now = t
        if self.retention_s is not None and t >= self._next_prune:
            self._prune(t - self.retention_s)
            self._next_prune = t + 3600.0

    # -- event handlers ----------------------------------------------------------------------------------------
    def _on_part(self) -> None:
        spec = self.spec
        rate = spec.reject_rate
        if self.parts_since_changeover < spec.startup_reject_parts:
            rate = min(1.0, rate * spec.startup_reject_factor)
        good = self.rng.random() >= rate
        now = self.now
        self.last_cycle_time = now - self._part_start
        self.parts_since_changeover += 1
        self._part_times.append(now)
        if not good:
            self._reject_times.append(now)
        run = self._runs[-1]
        run.total += 1
        self._count("total")
        if good:
            run.good += 1
            self.order_good += 1
            self._count("good")
        else:
            run.reject += 1
            self._count("reject")
        if self._part_micro > 0:
            cur = self._states[-1]
            cur.micro_stops += 1
            cur.micro_stop_s += self._part_micro
        if self.order_good >= self.order_qty:
            self._start_changeover()
        else:
            self._schedule_part()

    def _on_stop(self) -> None:
        kind, code = self._stop_kind
        self._part_t = INF
        self._stop_t = INF
        if kind == State.FAULTED:
            fault = next(f for f in self.spec.faults if f.code == code)
            self.last_fault_code = code
            self.fault_count += 1
            self.fault_history = [code] + self.fault_history[:9]
            self._set_state(State.FAULTED, code)
            self._state_end = self.now + fault.repair.draw(self.rng)
        else:
            stop = self.spec.starved if kind == State.IDLE else self.spec.blocked
            self._set_state(kind)
            self._state_end = self.now + stop.duration.draw(self.rng)

    def _on_state_end(self) -> None:
        self._state_end = INF
        self._resume()

    def _on_planned_start(self) -> None:
        self._next_planned_t = self.schedule.next_start_after(self.now)
        if self.state in (State.RUNNING, State.IDLE, State.BLOCKED):
            w = self.schedule.window_at(self.now)
            if w is not None:
                self._part_t = self._stop_t = INF
                self._set_state(State.PLANNED_STOP)
                self._state_end = w[1]
        # faulted or changing over: the stop goes on; _resume() enters the planned stop if the window is still open

    def _on_shift_change(self) -> None:
        now = self.now
        rec = self._shifts[-1]
        rec.end_sim = now
        self.shift_index = self._next_shift_idx
        self._next_shift_t, self._next_shift_idx = self.calendar.next_shift_change(now)
        self._shifts.append(ShiftRecord(self.shift_name, now, None))
        if self.spec.reset_counters_at_shift:
            before = self.counters
            for k in _COUNTERS:
                self.raw[k] = 0
            self._counter_events.append(CounterEvent(now, "shift_reset", "all", before["total"], 0))

    # -- transitions -------------------------------------------------------------------------------------------
    def _resume(self) -> None:
        if self._pending_product is not None:
            self._start_changeover()
            return
        w = self.schedule.window_at(self.now)
        if w is not None:
            self._set_state(State.PLANNED_STOP)
            self._state_end = w[1]
            return
        self._enter_running()

    def _enter_running(self) -> None:
        self._set_state(State.RUNNING)
        spec = self.spec
        rates: list[tuple[float, State, int]] = [(1.0 / f.mtbf_s, State.FAULTED, f.code) for f in spec.faults]
        if spec.starved is not None:
            rates.append((1.0 / spec.starved.mtbf_s, State.IDLE, 0))
        if spec.blocked is not None:
            rates.append((1.0 / spec.blocked.mtbf_s, State.BLOCKED, 0))
        total = sum(r for r, _, _ in rates)
        if total > 0:
            self._stop_t = self.now + self.rng.expovariate(total)
            u = self.rng.random() * total
            chosen = rates[-1]
            for entry in rates:
                u -= entry[0]
                if u < 0:
                    chosen = entry
                    break
            self._stop_kind = (chosen[1], chosen[2])
        else:
            self._stop_t = INF
        self._schedule_part()

    def _schedule_part(self) -> None:
        spec = self.spec
        ideal = self.product.ideal_cycle_time
        speed = 1.0 - spec.speed_loss
        if spec.cycle_jitter > 0:
            speed += self.rng.gauss(0.0, spec.cycle_jitter)
        speed = min(1.0, max(0.3, speed))
        micro = 0.0
        if spec.micro_stops_per_hour > 0 and self.rng.random() < spec.micro_stops_per_hour * ideal / 3600.0:
            micro = spec.micro_stop.draw(self.rng)
        self._part_start = self.now
        self._part_micro = micro
        self._part_t = self.now + ideal / speed + micro

    def _start_changeover(self) -> None:
        spec = self.spec
        if self._pending_product is not None:
            self.product_index = next(i for i, p in enumerate(spec.products) if p.code == self._pending_product)
            self._pending_product = None
        else:
            self.product_index = (self.product_index + 1) % len(spec.products)
        self.order_no += self.rng.randint(1, 40)
        self.order_id = f"ORD-{self.order_no}"
        self.order_qty = self.rng.randint(*spec.order_quantity)
        self.order_good = 0
        self.parts_since_changeover = 0
        self._part_t = self._stop_t = INF
        self._close_run()
        self._open_run()
        self._set_state(State.CHANGEOVER)
        self._state_end = self.now + spec.changeover.draw(self.rng)

    def _set_state(self, state: State, fault_code: int = 0) -> None:
        now = self.now
        if self._states:
            self._states[-1].end_sim = now
        self.state = state
        self.state_since = now
        self.fault_code = fault_code
        self._states.append(StateInterval(int(state), STATE_NAMES[state], fault_code, self._fault_name(fault_code),
                                          now, None, self.product.code))
        target = 0.0 if state == State.PLANNED_STOP else 1.0
        if target != self._heat_target:
            self._heat0 = self.heat(now)
            self._heat_t = now
            self._heat_target = target

    def _open_run(self) -> None:
        p = self.product
        self._runs.append(ProductRun(p.code, p.name, self.order_id, p.ideal_cycle_time, self.now, None))

    def _close_run(self) -> None:
        if self._runs:
            self._runs[-1].end_sim = self.now

    def _count(self, k: str) -> None:
        self.totals[k] += 1
        self.raw[k] += 1
        shift = self._shifts[-1]
        setattr(shift, k, getattr(shift, k) + 1)
        m = self.spec.counter_modulus
        if self.raw[k] % m == 0:
            self._counter_events.append(CounterEvent(self.now, "rollover", k, m - 1, 0))
            self.raw[k] = 0

    # -- writes from clients (the runtime advances the model to "now" first) ------------------------------------
    def preset_counter(self, counter: str, value: int) -> bool:
        """A client wrote a counter register (an HMI presetting or clearing a counter)."""
        if counter not in _COUNTERS:
            raise ValueError(f"unknown counter {counter!r}")
        value = int(value)
        if not 0 <= value < self.spec.counter_modulus:
            return False
        before = self.counters[counter]
        self.raw[counter] = value
        self._counter_events.append(CounterEvent(self.now, "preset", counter, before, value))
        return True

    def reset_counters(self) -> None:
        """CounterReset: all three counters to 0."""
        before = self.counters["total"]
        for k in _COUNTERS:
            self.raw[k] = 0
        self._counter_events.append(CounterEvent(self.now, "reset", "all", before, 0))

    def request_product(self, code: int) -> bool:
        """A client wrote ProductCode: change over to that product (after the running fault or changeover)."""
        code = int(code)
        if self.spec.product(code) is None:
            return False
        if code == self.product.code and self._pending_product is None:
            return True
        self._pending_product = code
        if self.state in (State.RUNNING, State.IDLE, State.BLOCKED, State.PLANNED_STOP):
            self._state_end = INF
            self._start_changeover()
        return True

    def set_order(self, order_id: str) -> bool:
        """A client wrote OrderId: the current product run ends and one with the new order starts."""
        order_id = str(order_id).strip()[:20]
        if not order_id or order_id == self.order_id:
            return bool(order_id)
        self.order_id = order_id
        digits = "".join(ch for ch in order_id if ch.isdigit())
        self.order_no = int(digits[-9:]) if digits else 0
        self.order_good = 0
        self._close_run()
        self._open_run()
        return True

    # -- process values (pure functions of sim time and state) -------------------------------------------------
    def heat(self, t: float | None = None) -> float:
        t = self.now if t is None else t
        return self._heat_target + (self._heat0 - self._heat_target) * math.exp(-(t - self._heat_t) / HEAT_TAU_S)

    def noise(self, channel: int, period: float = 5.0) -> float:
        return value_noise(self.noise_key, channel, self.now, period)

    def station_temps(self) -> list[float]:
        h = self.heat()
        return [round(AMBIENT_C + h * (sp - AMBIENT_C) + 0.4 * self.noise(10 + i), 2)
                for i, sp in enumerate(self.spec.temperature_setpoints)]

    def speed(self) -> float:
        """Parts per minute now (0 unless running)."""
        if self.state != State.RUNNING or self.last_cycle_time <= 0:
            return 0.0
        return round(60.0 / self.last_cycle_time, 3)

    def speed_pct(self) -> float:
        """Speed as % of ideal (0 unless running)."""
        if self.state != State.RUNNING or self.last_cycle_time <= 0:
            return 0.0
        return round(100.0 * self.product.ideal_cycle_time / self.last_cycle_time, 2)

    def motor_current(self) -> float:
        if self.state == State.RUNNING:
            return round(4.0 + 0.08 * self.speed_pct() + 0.3 * self.noise(1, 2.0), 3)
        if self.state in (State.IDLE, State.BLOCKED, State.CHANGEOVER):
            return round(1.2 + 0.05 * self.noise(1, 2.0), 3)
        return 0.0

    def air_pressure(self) -> float:
        return round(6.2 + 0.08 * self.noise(2, 20.0), 3)

    def vibration(self) -> float:
        if self.state == State.RUNNING:
            return round(2.4 + 0.4 * self.noise(3, 3.0), 3)
        return round(0.15 + 0.05 * self.noise(3, 3.0), 3)

    # -- ground truth ------------------------------------------------------------------------------------------
    def _prune(self, cutoff: float) -> None:
        if cutoff <= self._history_start:
            return
        i = bisect.bisect_right(self._part_times, cutoff)
        if i:
            del self._part_times[:i]
        j = bisect.bisect_right(self._reject_times, cutoff)
        if j:
            del self._reject_times[:j]
        self._states = [s for s in self._states if s.end_sim is None or s.end_sim > cutoff]
        self._runs = [r for r in self._runs if r.end_sim is None or r.end_sim > cutoff]
        self._shifts = [s for s in self._shifts if s.end_sim is None or s.end_sim > cutoff]
        self._counter_events = [e for e in self._counter_events if e.t_sim > cutoff]
        self._history_start = cutoff

    def ground_truth(self, *, time_scale: float = 1.0, wall_start: datetime | None = None) -> GroundTruth:
        """A snapshot (copies) of what happened so far, with wall times filled in."""
        epoch = datetime.fromtimestamp(self.calendar.sim_epoch, timezone.utc)
        wall0 = wall_start or epoch

        def w(t: float | None) -> datetime | None:
            return None if t is None else wall0 + timedelta(seconds=t / time_scale)

        states = [StateInterval(**{**asdict(s), "start_wall": w(s.start_sim), "end_wall": w(s.end_sim)})
                  for s in self._states]
        runs = [ProductRun(**{**asdict(r), "start_wall": w(r.start_sim), "end_wall": w(r.end_sim)})
                for r in self._runs]
        shifts = [ShiftRecord(**{**asdict(s), "start_wall": w(s.start_sim), "end_wall": w(s.end_sim)})
                  for s in self._shifts]
        events = [CounterEvent(**{**asdict(e), "t_wall": w(e.t_sim)}) for e in self._counter_events]
        return GroundTruth(
            machine_id=self.spec.id, seed=self.seed, sim_now=self.now, time_scale=time_scale, sim_epoch=epoch,
            wall_start=wall0, states=states, product_runs=runs, shifts=shifts, counter_events=events,
            totals=dict(self.totals), counters=self.counters, history_start_sim=self._history_start,
            _part_times=array("d", self._part_times), _reject_times=array("d", self._reject_times),
        )


# --------------------------------------------------------------------------------------------------------------
# The plant
# --------------------------------------------------------------------------------------------------------------


def default_sim_start(layout: Layout) -> datetime:
    """Monday 2025-01-06 05:00 plant time: one hour before the morning shift change. Fixed, so tests repeat."""
    return datetime(2025, 1, 6, 5, 0, tzinfo=layout.tz)


class PlantModel:
    """Every machine of a layout, advanced together. Pure: no I/O, no wall clock."""

    def __init__(self, layout: Layout, seed: int = 1, sim_start: datetime | None = None, *,
                 truth_retention_s: float | None = None):
        self.layout = layout
        self.seed = int(seed)
        if sim_start is None:
            sim_start = default_sim_start(layout)
        elif sim_start.tzinfo is None:
            sim_start = sim_start.replace(tzinfo=layout.tz)
        self.sim_start = sim_start
        self.calendar = Calendar(layout.tz, layout.shifts, layout.breaks, sim_start.timestamp())
        self.machines: dict[str, MachineModel] = {
            m.id: MachineModel(m, self.calendar, self.seed, truth_retention_s=truth_retention_s)
            for m in layout.machines
        }
        self.now = 0.0

    def advance_to(self, t: float) -> None:
        if t < self.now:
            raise ValueError(f"cannot go back in time ({t} < {self.now})")
        for m in self.machines.values():
            if t > m.now:  # a client write may have moved one machine ahead already
                m.advance_to(t)
        self.now = t

    def next_counter_reset(self) -> float:
        """Sim time of the next shift change at which some machine's counters reset to 0 (inf when none do)."""
        return min((m._next_shift_t for m in self.machines.values() if m.spec.reset_counters_at_shift),
                   default=INF)

    def machine(self, machine_id: str) -> MachineModel:
        try:
            return self.machines[machine_id]
        except KeyError:
            raise KeyError(f"no machine {machine_id!r} in this plant") from None

    def ground_truth(self, machine_id: str, *, time_scale: float = 1.0,
                     wall_start: datetime | None = None) -> GroundTruth:
        return self.machine(machine_id).ground_truth(time_scale=time_scale, wall_start=wall_start)
