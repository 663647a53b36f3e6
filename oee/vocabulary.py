"""The words oee/ shares with the rest of the app (the same strings as db.models, which oee/ must not import).

tests/oee/test_vocabulary.py checks that these stay equal to db.models.
"""
from __future__ import annotations

MACHINE_STATES = ("running", "idle", "blocked", "faulted", "planned_stop", "changeover", "offline", "unknown")

# The Six Big Losses.
LOSS_CATEGORIES = (
    "equipment_failure",
    "setup_adjustment",
    "idling_minor_stops",
    "reduced_speed",
    "process_defects",
    "startup_rejects",
)
# Planned downtime: comes off all time before planned production time (and OEE) starts.
PLANNED_CATEGORIES = ("planned_maintenance", "break", "no_production_scheduled")

# A stop (time the machine is not running) can only be one of these: the other three loss categories are
# about speed and parts, not stops. UNKNOWN is ours: time we have no trustworthy state for (offline, unknown,
# or a gap in the data). It counts as an unplanned availability loss and raises the 'data_gap' flag.
UNKNOWN = "unknown"
STOP_CATEGORIES = ("equipment_failure", "setup_adjustment", "idling_minor_stops")

# The category a stop gets from its machine state when no reason says otherwise.
STATE_CATEGORY = {
    "faulted": "equipment_failure",
    "changeover": "setup_adjustment",
    "idle": "idling_minor_stops",  # starved
    "blocked": "idling_minor_stops",
    "planned_stop": "planned_maintenance",
    "offline": UNKNOWN,
    "unknown": UNKNOWN,
}

LABELS = {
    "all_time": "All time",
    "planned_production_time": "Planned production time",
    "run_time": "Run time",
    "net_run_time": "Net run time",
    "fully_productive_time": "Fully productive time",
    "no_production_scheduled": "No production scheduled",
    "break": "Breaks",
    "planned_maintenance": "Planned maintenance",
    "equipment_failure": "Equipment failure",
    "setup_adjustment": "Setup and adjustment",
    "idling_minor_stops": "Idling and minor stops",
    "reduced_speed": "Reduced speed",
    "process_defects": "Process defects",
    "startup_rejects": "Startup rejects",
    UNKNOWN: "Unknown (no data)",
}
