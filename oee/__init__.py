"""oee: the OEE engine. Pure math on plain Python values: no database, no network, no wall clock.

Conventions, formulas, every zero-denominator result and a worked example: oee/README.md.

Time is epoch seconds (float, UTC) throughout; wherever a time goes in, a timezone-aware datetime is accepted too
(`to_epoch`, `from_epoch` convert). Fractions: 1.0 = 100 %; None = undefined (a zero denominator). Nothing is
capped: a factor above 1.0 is returned as it is, with a flag.

Formulas (oee.formulas)
    calculate(planned_time_s, run_time_s, total_count, good_count, ideal_cycle_time_s, *, all_time_s=None)
        -> OeeResult(availability, performance, quality, oee, utilization, teep, planned_time_s, run_time_s,
                     total_count, good_count, net_run_time_s, fully_productive_time_s, all_time_s, flags)
    calculate_runs(planned_time_s, run_time_s, runs=[ProductRun(total, good, ideal_cycle_time_s), ...],
                   *, all_time_s=None) -> OeeResult          (per-product ideal speed)
    calculate_times(planned_time_s, run_time_s, total_count, good_count, net_run_time_s,
                    fully_productive_time_s, *, all_time_s=None, extra_flags=()) -> OeeResult
    utilization(planned_time_s, all_time_s), teep(oee, utilization), mtbf(run_time_s, failures),
    mttr(failure_downtime_s, failures) -> float | None
    OeeResult.as_dict() -> JSON-ready dict (with reject_count).

One machine over a range (oee.engine)
    analyze(start, end, *, states, counts=(), calendar=None, ideal_cycle_times=None,
            default_ideal_cycle_time_s=None, ideal_cycle_time_series=None, fault_reasons=None, overrides=(),
            downtime=(), config=Config(), buckets=None) -> Analysis(start, end, totals, buckets=((Bucket, Totals), ...))
        states:  StateInterval(start, end | None, state, fault_code=None, product_code=None)
        counts:  CountIncrement(start, end, total, good, product_code=None)   (rejects = total - good)
        calendar: Calendar | Schedule | None (None: all time is planned production)
        ideal cycle time of a part: ideal_cycle_times[product], else the machine's tag at that time
            (ideal_cycle_time_series: [(time, seconds | None)]), else default_ideal_cycle_time_s
        fault_reasons: {fault_code: Reason}; overrides: [ReasonOverride(start, end, Reason)]
        downtime: [PlannedDowntime(start, end, category='planned_maintenance')]
        config: Config(micro_stop_threshold_s=120.0, micro_stops_as='performance', startup_window_s=300.0,
                       startup_after={'changeover', 'planned'})
    Analysis.as_dict() -> the REST payload (with 'buckets' when asked).

Totals (oee.totals): the additive record. Roll-ups add, then divide; percentages are never averaged.
    Totals + Totals, rollup(iterable) -> Totals; rollup_analyses(analyses) -> Analysis (same range and buckets)
    Totals.result() -> OeeResult (with utilization and TEEP); .waterfall() -> [WaterfallStep(key, label, seconds,
    kind, factor, category)] from all time down to fully productive time; .losses() -> {key: seconds};
    .mtbf_s, .mttr_s, .planned_time_s, .run_time_s, .all_time_s, .reduced_speed_s, ...; .as_dict()

Calendars (oee.shifts)
    Calendar(timezone, shifts=(ShiftDef(name, start: time, end: time, weekdays='0123456',
             breaks=(BreakDef(start: time, duration_s, name),)),), holidays={date}, overrides=(CancelShift(date,
             name), ExtraShift(date, ShiftDef)), planned_downtime=(PlannedDowntime,))
    expand(calendar, start, end, *, downtime=()) -> Schedule(start, end, segments=(Segment(start, end, kind),),
        shifts=(ShiftInstance(name, start, end, date),)); Schedule.production_windows(), .planned_time_s,
        .kind_at(t), .time_by_kind(), .with_downtime(items); Schedule.always(start, end)
        RangeTooLong (a ValueError) when the range spans more than MAX_EXPAND_DAYS (4,000) local days

Buckets (oee.buckets)
    hour_buckets(start, end, tz='UTC', *, limit=None), day_buckets(start, end, tz='UTC', *, limit=None),
    shift_buckets(schedule, *, include_gaps=False, limit=None),
    make_buckets('hour' | 'shift' | 'day', start, end, *, tz, schedule, limit) -> [Bucket(start, end, label)]
    TooManyBuckets (a ValueError) when more than `limit` would be made.

Downtime events (oee.events)
    events_from_states(machine, states, *, fault_reasons=None, overrides=(), micro_stop_threshold_s=120.0)
        -> [DowntimeEvent(machine, start, end, state, fault_code, loss_category, planned, reason, source, minor,
                          note, split_from)]
    split_event(event, at) -> (first, second); assign_reason(event, Reason, note=None) -> DowntimeEvent
    overrides_from_events(events) -> [ReasonOverride]   (what the operators decided, for analyze())
    Reason(code, loss_category, name='', planned=None)

Vocabulary (oee.vocabulary): MACHINE_STATES, LOSS_CATEGORIES, PLANNED_CATEGORIES, STOP_CATEGORIES, UNKNOWN,
STATE_CATEGORY; the same strings as db.models.
"""
from oee.buckets import (
    BUCKET_KINDS,
    Bucket,
    TooManyBuckets,
    day_buckets,
    hour_buckets,
    make_buckets,
    shift_buckets,
)
from oee.engine import DEFAULT_CONFIG, Analysis, Config, CountIncrement, analyze, rollup_analyses
from oee.events import (
    DEFAULT_MICRO_STOP_THRESHOLD_S,
    DowntimeEvent,
    Reason,
    ReasonOverride,
    StateInterval,
    assign_reason,
    events_from_states,
    overrides_from_events,
    split_event,
)
from oee.formulas import (
    OeeResult,
    ProductRun,
    calculate,
    calculate_runs,
    calculate_times,
    mtbf,
    mttr,
    teep,
    utilization,
)
from oee.shifts import (
    PRODUCTION,
    BreakDef,
    Calendar,
    CancelShift,
    ExtraShift,
    PlannedDowntime,
    RangeTooLong,
    Schedule,
    Segment,
    ShiftDef,
    ShiftInstance,
    expand,
)
from oee.timeutil import from_epoch, to_epoch
from oee.totals import DATA_GAP, PRODUCTION_OUTSIDE_PLANNED_TIME, Totals, WaterfallStep, rollup
from oee.vocabulary import (
    LOSS_CATEGORIES,
    MACHINE_STATES,
    PLANNED_CATEGORIES,
    STATE_CATEGORY,
    STOP_CATEGORIES,
    UNKNOWN,
)

__all__ = [
    "BUCKET_KINDS", "DATA_GAP", "DEFAULT_CONFIG", "DEFAULT_MICRO_STOP_THRESHOLD_S", "LOSS_CATEGORIES",
    "MACHINE_STATES", "PLANNED_CATEGORIES", "PRODUCTION", "PRODUCTION_OUTSIDE_PLANNED_TIME", "STATE_CATEGORY",
    "STOP_CATEGORIES", "UNKNOWN",
    "Analysis", "BreakDef", "Bucket", "Calendar", "CancelShift", "Config", "CountIncrement", "DowntimeEvent",
    "ExtraShift", "OeeResult", "PlannedDowntime", "ProductRun", "RangeTooLong", "Reason", "ReasonOverride",
    "Schedule", "Segment", "ShiftDef", "ShiftInstance", "StateInterval", "TooManyBuckets", "Totals", "WaterfallStep",
    "analyze", "assign_reason", "calculate", "calculate_runs", "calculate_times", "day_buckets",
    "events_from_states", "expand", "from_epoch", "hour_buckets", "make_buckets", "mtbf", "mttr",
    "overrides_from_events", "rollup", "rollup_analyses", "shift_buckets", "split_event", "teep", "to_epoch",
    "utilization",
]
