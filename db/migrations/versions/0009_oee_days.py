"""Exact OEE summaries per plant day, the sums of the hours (oee_hours) of each whole day

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07

oee_days: one row per machine and day of the plant's time zone (start, end in epoch seconds: local midnights),
the sum of that day's oee_hours rows, written by the refresher when a day's last hour is summarized
(db/oee_hours_refresh.py). A report over 30 days adds 30 rows a machine instead of 720. The reader relies on
every whole day inside a machine's summarized hours having its row, so the upgrade empties the hourly summaries
of a database that has some: the refresher computes them again (reports read raw rows meanwhile, as before).
"""
import sqlalchemy as sa
from alembic import op

import db.types

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

TOTALS = ("no_production_scheduled_s", "break_s", "planned_maintenance_s", "equipment_failure_s",
          "setup_adjustment_s", "idling_minor_stops_s", "unknown_s", "running_s", "minor_stops_s", "total_count",
          "good_count", "net_run_time_s", "fully_productive_time_s", "startup_reject_count",
          "startup_reject_time_s", "missing_ideal_count", "outside_total_count", "outside_good_count",
          "stop_count", "minor_stop_count", "failure_count")


def upgrade() -> None:
    op.create_table(
        'oee_days',
        sa.Column('machine_id', sa.Integer(), nullable=False),
        sa.Column('start', sa.BigInteger(), nullable=False),
        sa.Column('end', sa.BigInteger(), nullable=False),
        *[sa.Column(name, db.types.Double, nullable=False) for name in TOTALS],
        sa.Column('notes', sa.String(200), nullable=False),
        sa.ForeignKeyConstraint(['machine_id'], ['machines.id'], name=op.f('fk_oee_days_machine_id_machines'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('machine_id', 'start', name=op.f('pk_oee_days')),
    )
    # Summaries made before this revision have no day rows: computed again with them.
    op.execute("DELETE FROM oee_hour_horizons")
    op.execute("DELETE FROM oee_hours")


def downgrade() -> None:
    op.drop_table('oee_days')
