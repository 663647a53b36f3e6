"""From tag values with canonical roles to machine data: state intervals, count increments, fault, product.

This is the only place that knows what Running, Faulted or GoodCount mean. It has no I/O: the poller feeds it
each cycle's values with their time and hands what it emits to the writer.

Counters: PLC counters are cumulative, reset at shift change (or by an operator) and roll over at a modulus (2^16,
2^32, or a round number such as 1,000,000 set in the tag's options as {"rollover": N}). A counter that goes down is
a rollover when it was in the top half of the modulus and is now in the bottom half, otherwise a reset to zero; a
reset counts what was made since the reset (the new value). Nothing is counted from the first value seen.

States, first rule that applies:
1. state.code: looked up in the machine's state_code_map (codes as text: {"3": "faulted"}), else in
   DEFAULT_STATE_CODES; a code nobody mapped is "unknown", never guessed.
2. state.faulted true: faulted. state.running true: running.
3. Not running, no fault bit, and a non-zero fault.code: faulted. A fault bit, where there is one, is the
   authority: a "last fault" code often stays set after the fault is cleared.
4. state.stopped true: planned_stop; else idle.
Then a non-zero fault code whose entry in the machine's fault table has kind planned_stop or changeover turns
"faulted" into that state (a PLC that signals a cleaning stop as fault 900). The interval keeps the code.

Parts at a stop's edges. A read gives the counters and the state as they are now; the parts it shows were made
after the PLC showed the values read before, i.e. after the read before the counters last changed. Parts read
together with a stop (running before, not now) were made before it: they are written as one row at that read
(or at the running's start, if later), so the OEE engine places them in the running time before the stop, not in
the break that began meanwhile (with a PLC that publishes late, or a late read, the stop is seen after the
break's start, and so may be the read at which the counters last changed). Parts read together with a start were
made after it: the count row they start begins at that read (not at the start of the minute, in the stop, with
its rows of zeros), and ends with its minute, as every row does.
"""
from __future__ import annotations

from dataclasses import dataclass, field

# The simulated plant's and a common convention; a machine can override it (machines.state_code_map).
DEFAULT_STATE_CODES = {1: "running", 2: "idle", 3: "blocked", 4: "faulted", 5: "planned_stop", 6: "changeover"}
# PackML (ISA-TR88.00.02 StateCurrent, 0 Undefined ... 17 Complete) to our states. Execute and Completing make
# parts; a stop by command or for outside conditions is idle (an availability loss unless the calendar plans
# it); Aborting/Aborted/Clearing and Holding/Held/Unholding (the machine's own condition) are faulted.
PACKML_STATE_CODES = {1: "faulted", 2: "idle", 3: "idle", 4: "idle", 5: "idle", 6: "running", 7: "idle",
                      8: "faulted", 9: "faulted", 10: "faulted", 11: "faulted", 12: "faulted", 13: "idle",
                      14: "idle", 15: "idle", 16: "running", 17: "idle"}
PACKML_NAMES = {0: "Undefined", 1: "Clearing", 2: "Stopped", 3: "Starting", 4: "Idle", 5: "Suspended", 6: "Execute",
                7: "Stopping", 8: "Aborting", 9: "Aborted", 10: "Holding", 11: "Held", 12: "Unholding",
                13: "Suspending", 14: "Unsuspending", 15: "Resetting", 16: "Completing", 17: "Complete"}


@dataclass(frozen=True)
class StatePreset:
    """A common way PLCs tell their state: the roles to map and, for a state code, the code table it fills in.
    A preset is only a filled-in state_code_map (None: the roles are bits, no code table)."""

    key: str
    label: str
    roles: tuple[str, ...]
    codes: dict[int, str] | None


STATE_PRESETS = {p.key: p for p in (
    StatePreset("demo", "State code 1 running, 2 idle, 3 blocked, 4 faulted, 5 planned stop, 6 changeover "
                        "(the simulated plant's)", ("state.code",), DEFAULT_STATE_CODES),
    StatePreset("packml", "PackML state (ISA-TR88: 6 Execute running, 2 Stopped / 4 Idle / 5 Suspended idle, "
                          "8 Aborting / 9 Aborted / 11 Held faulted, ...)", ("state.code",), PACKML_STATE_CODES),
    StatePreset("running_fault_bit", "A running bit and a fault bit (a stopped bit: planned stop)",
                ("state.running", "state.faulted"), None),
    StatePreset("running_fault_code", "A running bit and a fault code (not running with a code: faulted)",
                ("state.running", "fault.code"), None),
)}
# What an unsigned view of a counter of this type rolls over at, unless the tag says otherwise.
TYPE_MODULUS = {"INT": 2**16, "INT16": 2**16, "UINT16": 2**16, "WORD": 2**16, "UINT": 2**16,
                "DINT": 2**32, "INT32": 2**32, "UINT32": 2**32, "DWORD": 2**32, "UDINT": 2**32,
                "LINT": 2**64, "INT64": 2**64, "UINT64": 2**64}
COUNT_BUCKET_S = 60.0


def counter_delta(previous: int | None, current: int, modulus: int | None) -> int:
    if previous is None:
        return 0
    if modulus:
        previous %= modulus  # a signed DINT that wrapped to negative is the same count seen unsigned
        current %= modulus
    if current >= previous:
        return current - previous
    if modulus and previous >= modulus // 2 and current < modulus // 2:
        return modulus - previous + current  # rolled over
    return current  # reset to zero, then counted up to current


@dataclass
class StateInterval:
    start: float
    state: str
    fault_code: int | None
    product_code: str | None


@dataclass
class CountBucket:
    start: float
    product_code: str | None
    total: int = 0
    good: int = 0
    reject: int = 0
    last_time: float = 0.0
    emitted: bool = False  # a row exists for this bucket: further rows only when something was made
    made: bool = False  # parts were counted in it: then it ends at the last read that brought parts

    def due(self) -> bool:
        return bool(self.total or self.good or self.reject or not self.emitted)


@dataclass
class MachineOutput:
    states: list[tuple] = field(default_factory=list)  # rows for Writer.submit_states
    counts: list[tuple] = field(default_factory=list)  # rows for Writer.submit_counts
    faults: list[tuple] = field(default_factory=list)  # rows for Writer.submit_faults


class MachineTracker:
    def __init__(self, machine_id: int, *, state_code_map: dict | None = None, fault_kinds: dict | None = None,
                 counter_moduli: dict[str, int | None] | None = None, count_bucket_s: float = COUNT_BUCKET_S):
        self.machine_id = machine_id
        self.configure(state_code_map, fault_kinds)
        self.counter_moduli = counter_moduli or {}  # role -> modulus
        self.count_bucket_s = count_bucket_s
        self.current: StateInterval | None = None
        self.fault: tuple[float, int | None] | None = None  # the active fault: (start, code)
        self.fault_code: int | None = None
        self.product_code: str | None = None
        self.order_id: str | None = None
        self.ideal_cycle_time_s: float | None = None
        self.last_cycle_time_s: float | None = None
        self._counters: dict[str, int | None] = {}
        # The read before the one at which the counters last changed: the PLC still showed the old values then.
        self._counts_changed_from: float | None = None
        self._last_read: float | None = None
        self._bucket: CountBucket | None = None
        self._next_bucket_not_before = 0.0
        self.totals = {"total": 0, "good": 0, "reject": 0}  # since this tracker started, for the live view

    def configure(self, state_code_map: dict | None = None, fault_kinds: dict | None = None) -> None:
        """The machine's own state codes (None: DEFAULT_STATE_CODES) and fault table (code -> kind). Applies from
        the next update: a saved change reaches a running tracker without losing its counters."""
        codes = state_code_map or DEFAULT_STATE_CODES
        self.state_codes = {int(k): v for k, v in codes.items()}
        self.fault_kinds = {int(k): v for k, v in (fault_kinds or {}).items()}

    # --- feeding ---------------------------------------------------------------------------------------------

    def _fault_in(self, values: dict) -> int | None:
        """The fault code of this cycle (the last one known when the tag did not answer); 0 is no fault."""
        if "fault.code" not in values:
            return self.fault_code
        try:
            return int(values["fault.code"]) or None
        except (TypeError, ValueError):
            return self.fault_code

    def derive_state(self, values: dict) -> str | None:
        """values: role -> value for this cycle (only GOOD readings). None when the roles cannot tell. The rules
        are in the module's docstring."""
        return self._derive(values)[0]

    def _derive(self, values: dict) -> tuple[str | None, int | None]:
        """(state, the fault code that goes with it or None)."""
        fault = self._fault_in(values)
        code = values.get("state.code")
        if code is not None:
            try:
                state = self.state_codes.get(int(code), "unknown")
            except (TypeError, ValueError):
                state = "unknown"
        elif "state.faulted" in values or "state.running" in values:
            if values.get("state.faulted"):
                state = "faulted"
            elif values.get("state.running"):
                state = "running"
            elif fault is not None and "state.faulted" not in values:
                state = "faulted"
            else:
                state = "planned_stop" if values.get("state.stopped") else "idle"
        else:
            return None, None
        if state == "faulted" and fault is not None:
            state = {"planned_stop": "planned_stop", "changeover": "changeover"}.get(self.fault_kinds.get(fault),
                                                                                      state)
            return state, fault
        return state, None

    def update(self, t: float, values: dict) -> MachineOutput:
        out = MachineOutput()
        self.fault_code = self._fault_in(values)
        product = values.get("product.code")
        if isinstance(product, float) and product.is_integer():
            product = int(product)  # numeric tags arrive as floats; product 101 is "101", not "101.0"
        if product is not None and str(product) != self.product_code:
            self._close_bucket(out)
            self._next_bucket_not_before = t  # the new product's counts get a row (and key) of their own
            self.product_code = str(product)
        if "order.id" in values:
            self.order_id = str(values["order.id"])
        if values.get("cycle.ideal_time") is not None:
            self.ideal_cycle_time_s = float(values["cycle.ideal_time"])
        if values.get("cycle.time") is not None:
            self.last_cycle_time_s = float(values["cycle.time"])
        state, fault = self._derive(values)
        was_running = self.current is not None and self.current.state == "running"
        stopped = state is not None and was_running and state != "running"
        if state == "running" and not was_running:
            self._close_bucket(out)
            self._next_bucket_not_before = t  # the parts read from now on were made after the start
        made_at = None
        if stopped:
            made_at = self._counts_changed_from if self._counts_changed_from is not None else self._last_read
            if made_at is not None and self.current is not None:
                made_at = max(made_at, self.current.start)
        self._count(t, values, out, made_at)
        if state is not None:
            self._set_state(t, state, out, fault)
        if stopped:
            b = self._bucket
            if b is not None and b.made and made_at is not None:
                # its parts too were made by then (a row is placed at its middle)
                b.last_time = max(b.start, min(b.last_time, made_at))
            self._close_bucket(out)
            self._next_bucket_not_before = t
        self._last_read = t
        return out

    def offline(self, t: float) -> MachineOutput:
        """The link to the PLC is down: what the machine does is unknown from t on."""
        out = MachineOutput()
        self._set_state(t, "offline", out)
        self._close_bucket(out)
        self._counters = {}  # the counters may reset while we cannot see them; count again from the next value
        self._counts_changed_from = None
        return out

    def flush(self, t: float) -> MachineOutput:
        """Emit the running count bucket (called every few seconds, and at shutdown)."""
        out = MachineOutput()
        if self._bucket and self._bucket.due():
            b = self._bucket
            out.counts.append((self.machine_id, b.start, max(b.last_time, b.start), b.product_code,
                               b.total, b.good, b.reject))
            b.total = b.good = b.reject = 0  # further increments with the same start add up in the database
            b.emitted = True
        if self._bucket and t >= self._slot_end(self._bucket.start):
            self._bucket = None
        return out

    # --- internals -------------------------------------------------------------------------------------------

    def _set_state(self, t: float, state: str, out: MachineOutput, fault: int | None = None) -> None:
        cur = self.current
        if cur is not None and cur.state == state and cur.fault_code == fault and cur.product_code == self.product_code:
            return
        if cur is not None:
            out.states.append((self.machine_id, cur.start, t, cur.state, cur.fault_code, cur.product_code))
        self.current = StateInterval(t, state, fault, self.product_code)
        out.states.append((self.machine_id, t, None, state, fault, self.product_code))
        self._track_fault(t, state, fault, out)

    def _track_fault(self, t: float, state: str, fault: int | None, out: MachineOutput) -> None:
        """A fault lasts while the machine shows faulted with the same code (a product change inside it is the
        same fault); a fault code whose kind makes it a planned stop or a changeover is no fault."""
        if self.fault is not None and (state != "faulted" or fault != self.fault[1]):
            out.faults.append((self.machine_id, self.fault[1], self.fault[0], t))
            self.fault = None
        if state == "faulted" and self.fault is None:
            self.fault = (t, fault)
            out.faults.append((self.machine_id, fault, t, None))

    def _count(self, t: float, values: dict, out: MachineOutput, made_at: float | None = None) -> None:
        """The counters' increments since the last read, into the running bucket; made_at: the parts were made
        by then (read with a stop): one row of their own at that instant."""
        deltas = {}
        for role in ("counter.total", "counter.good", "counter.reject"):
            if role not in values:
                continue
            try:
                current = int(values[role])
            except (TypeError, ValueError):
                continue
            deltas[role] = counter_delta(self._counters.get(role), current, self.counter_moduli.get(role))
            self._counters[role] = current
        if not deltas:
            return
        total, good, reject = deltas.get("counter.total"), deltas.get("counter.good"), deltas.get("counter.reject")
        if total is None and good is not None:
            total = good + (reject or 0)
        if good is None and total is not None:
            good = max(total - (reject or 0), 0)
        reject = reject or 0
        made = bool(total or good or reject)
        if made:
            self._counts_changed_from = self._last_read
        if made and made_at is not None and made_at < t:
            out.counts.append((self.machine_id, made_at, made_at, self.product_code, total or 0, good or 0, reject))
            self._add_totals(total, good, reject)
            return
        # A bucket exists as soon as the counters were seen in it, even when nothing was made: a row of zeros says
        # "counted, none made", which is not the same as "not counted".
        if self._bucket is None or t >= self._slot_end(self._bucket.start):
            self._close_bucket(out)
            start = max(t - (t % self.count_bucket_s), self._next_bucket_not_before)
            self._bucket = CountBucket(start, self.product_code)
        b = self._bucket
        b.total += total or 0
        b.good += good or 0
        b.reject += reject
        # Reads that bring nothing do not stretch a row with parts (its middle is where its parts go: past a stop
        # that followed them, into a break); a row of zeros spans the reads that saw nothing made.
        if made or not b.made:
            b.last_time = t
        b.made = b.made or made
        self._add_totals(total, good, reject)

    def _add_totals(self, total, good, reject) -> None:
        self.totals["total"] += total or 0
        self.totals["good"] += good or 0
        self.totals["reject"] += reject or 0

    def _slot_end(self, start: float) -> float:
        """Where the bucket that began at `start` ends: the end of its minute (count_bucket_s), also for one that
        began mid-minute (at a start or a product change), so that no row crosses a minute, nor an hour."""
        return start - (start % self.count_bucket_s) + self.count_bucket_s

    def _close_bucket(self, out: MachineOutput) -> None:
        if self._bucket is None:
            return
        b = self._bucket
        if b.due():
            out.counts.append((self.machine_id, b.start, max(b.last_time, b.start), b.product_code,
                               b.total, b.good, b.reject))
        self._bucket = None

    def snapshot(self) -> dict:
        cur = self.current
        return {
            "state": cur.state if cur else "unknown",
            "since": cur.start if cur else None,
            "fault_code": cur.fault_code if cur else None,
            "product_code": self.product_code,
            "order_id": self.order_id,
            "ideal_cycle_time_s": self.ideal_cycle_time_s,
            "last_cycle_time_s": self.last_cycle_time_s,
            "counts": dict(self.totals),
        }
