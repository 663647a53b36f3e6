"""Grafana: the oee_summary table (OEE by hour and shift, written by the app) and the grafana_* views

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28

The views are what a Grafana data source reads (grafana/dashboards/oee.json) and all a read-only role for it is
granted (`python app.py grafana-role`): views run with their owner's rights, so the role sees no table.

- grafana_machines: machine, name, line, area, site (for Grafana's variables).
- grafana_oee_hourly, grafana_oee_shift: the OEE engine's numbers (the same as GET /api/oee/ for that machine,
  hour or shift), kept in oee_summary by the app (db/oee_summary.py): the last two hours every minute, the last
  7 days every half hour. Times and counts are there as well as the ratios, so a line's OEE is summed then divided:
  sum(fully_productive_time_s) / sum(planned_time_s).
- grafana_machine_states: every state interval (an open one lasts until now).
- grafana_downtime_events: every interval in which a machine did not run, with its loss category and reason in
  the engine's order (operator's reason, then the fault code's, then the state's). Unlike the app's event list
  (oee.events_from_states), contiguous intervals are not merged and the micro-stop rule is not applied.

SQL views on PostgreSQL and TimescaleDB only: Grafana's PostgreSQL data source cannot read the app's SQLite file,
so on SQLite only the table is created (it stays empty) and the views are skipped.
"""
import sqlalchemy as sa
from alembic import op

import db.types

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

LOSS_COLUMNS = (
    "loss_planned_no_production_scheduled_s", "loss_planned_break_s", "loss_planned_planned_maintenance_s",
    "loss_availability_equipment_failure_s", "loss_availability_setup_adjustment_s",
    "loss_availability_idling_minor_stops_s", "loss_availability_unknown_s",
    "loss_performance_idling_minor_stops_s", "loss_performance_reduced_speed_s",
    "loss_quality_process_defects_s", "loss_quality_startup_rejects_s",
)
NUMBERS = ("availability", "performance", "quality", "oee", "planned_time_s", "run_time_s", "net_run_time_s",
           "fully_productive_time_s", "total_count", "good_count", "reject_count", "stop_count", "failure_count")
VIEWS = ("grafana_machines", "grafana_oee_hourly", "grafana_oee_shift", "grafana_machine_states",
         "grafana_downtime_events")

_HIERARCHY = ("JOIN machines m ON m.id = {alias}.machine_id LEFT JOIN lines l ON l.id = m.line_id "
              "LEFT JOIN areas a ON a.id = l.area_id LEFT JOIN sites s ON s.id = a.site_id")
_NAMES = "m.machine_id AS machine, m.name AS machine_name, l.name AS line, a.name AS area, s.name AS site"


def _oee_view(kind: str) -> str:
    numbers = ", ".join(f"o.{c}" for c in NUMBERS + LOSS_COLUMNS)
    return (f"SELECT o.start AS time, o.\"end\" AS end_time, o.label AS {'hour' if kind == 'hour' else 'shift'}, "
            f"{_NAMES}, {numbers}, o.flags, o.computed_at "
            f"FROM oee_summary o {_HIERARCHY.format(alias='o')} WHERE o.kind = '{kind}'")


MACHINES_VIEW = (f"SELECT {_NAMES}, m.enabled, m.ideal_cycle_time_s FROM machines m "
                 "LEFT JOIN lines l ON l.id = m.line_id LEFT JOIN areas a ON a.id = l.area_id "
                 "LEFT JOIN sites s ON s.id = a.site_id")

STATES_VIEW = (
    f"SELECT ms.start AS time, ms.\"end\" AS end_time, ms.\"end\" IS NULL AS ongoing, "
    f"EXTRACT(EPOCH FROM COALESCE(ms.\"end\", now()) - ms.start)::double precision AS duration_s, {_NAMES}, "
    f"ms.state, ms.fault_code, ms.product_code "
    f"FROM machine_states ms {_HIERARCHY.format(alias='ms')}"
)

_CATEGORY = (
    "COALESCE(op.loss_category, fr.loss_category, CASE ms.state WHEN 'faulted' THEN 'equipment_failure' "
    "WHEN 'changeover' THEN 'setup_adjustment' WHEN 'idle' THEN 'idling_minor_stops' "
    "WHEN 'blocked' THEN 'idling_minor_stops' WHEN 'planned_stop' THEN 'planned_maintenance' ELSE 'unknown' END)"
)
DOWNTIME_VIEW = (
    "SELECT d.*, d.loss_category IN ('planned_maintenance', 'break', 'no_production_scheduled') AS planned FROM ("
    f"SELECT ms.start AS time, ms.\"end\" AS end_time, ms.\"end\" IS NULL AS ongoing, "
    f"EXTRACT(EPOCH FROM COALESCE(ms.\"end\", now()) - ms.start)::double precision AS duration_s, {_NAMES}, "
    f"ms.state, ms.fault_code, ms.product_code, {_CATEGORY} AS loss_category, "
    "CASE WHEN op.code IS NOT NULL THEN 'operator' WHEN fr.code IS NOT NULL THEN 'fault_code' ELSE 'state' "
    "END AS source, COALESCE(op.code, fr.code) AS reason_code, COALESCE(op.name, fr.name) AS reason_name "
    f"FROM machine_states ms {_HIERARCHY.format(alias='ms')} "
    "LEFT JOIN reason_codes fr ON ms.fault_code IS NOT NULL AND fr.code = CAST(ms.fault_code AS TEXT) "
    "AND fr.loss_category IN ('equipment_failure', 'setup_adjustment', 'idling_minor_stops', "
    "'planned_maintenance', 'break', 'no_production_scheduled') "
    "LEFT JOIN LATERAL (SELECT rc.code, rc.name, rc.loss_category FROM downtime_events de "
    "JOIN reason_codes rc ON rc.id = de.reason_id WHERE de.machine_id = ms.machine_id AND de.start <= ms.start "
    "AND (de.\"end\" IS NULL OR de.\"end\" > ms.start) ORDER BY de.start DESC LIMIT 1) op ON true "
    "WHERE ms.state <> 'running') d"
)


def upgrade() -> None:
    columns = [sa.Column(c, sa.Float().with_variant(sa.DOUBLE_PRECISION(), 'postgresql'), nullable=True)
               for c in NUMBERS + LOSS_COLUMNS]
    op.create_table(
        'oee_summary',
        sa.Column('machine_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('start', db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column('end', db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column('label', sa.String(length=100), nullable=False),
        *columns,
        sa.Column('flags', sa.Text(), nullable=False),
        sa.Column('computed_at', db.types.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['machine_id'], ['machines.id'], name=op.f('fk_oee_summary_machine_id_machines'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('machine_id', 'kind', 'start', name=op.f('pk_oee_summary')),
    )
    if op.get_bind().dialect.name != 'postgresql':
        return  # SQLite: no views (see the docstring)
    op.execute(f"CREATE VIEW grafana_machines AS {MACHINES_VIEW}")
    op.execute(f"CREATE VIEW grafana_oee_hourly AS {_oee_view('hour')}")
    op.execute(f"CREATE VIEW grafana_oee_shift AS {_oee_view('shift')}")
    op.execute(f"CREATE VIEW grafana_machine_states AS {STATES_VIEW}")
    op.execute(f"CREATE VIEW grafana_downtime_events AS {DOWNTIME_VIEW}")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for name in reversed(VIEWS):
            op.execute(f"DROP VIEW IF EXISTS {name}")
    op.drop_table('oee_summary')
