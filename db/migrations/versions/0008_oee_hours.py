"""Exact OEE summaries: each machine's oee.Totals per hour, and how far they are valid

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

oee_hours: one row per machine and hour of the plant's time zone (start, end in epoch seconds) holding every
field of oee.totals.Totals, computed by the OEE engine from the raw rows (db/oee_hours.py). Reports of long
ranges add these up instead of reading the raw rows.
oee_hour_horizons: per machine, the hours [from_s, until_s) that are summarized, the fingerprint of the settings
they were computed with, the operators' reasons they saw (a read compares both with today's), and the longest
state and count rows seen (a read of the raw rest need not scan further back).
"""
import sqlalchemy as sa
from alembic import op

import db.types

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

T = db.types.UtcDateTime(timezone=True)
TOTALS = ("no_production_scheduled_s", "break_s", "planned_maintenance_s", "equipment_failure_s",
          "setup_adjustment_s", "idling_minor_stops_s", "unknown_s", "running_s", "minor_stops_s", "total_count",
          "good_count", "net_run_time_s", "fully_productive_time_s", "startup_reject_count",
          "startup_reject_time_s", "missing_ideal_count", "outside_total_count", "outside_good_count",
          "stop_count", "minor_stop_count", "failure_count")


def upgrade() -> None:
    op.create_table(
        'oee_hours',
        sa.Column('machine_id', sa.Integer(), nullable=False),
        sa.Column('start', sa.BigInteger(), nullable=False),
        sa.Column('end', sa.BigInteger(), nullable=False),
        *[sa.Column(name, db.types.Double, nullable=False) for name in TOTALS],
        sa.Column('notes', sa.String(200), nullable=False),
        sa.ForeignKeyConstraint(['machine_id'], ['machines.id'], name=op.f('fk_oee_hours_machine_id_machines'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('machine_id', 'start', name=op.f('pk_oee_hours')),
    )
    op.create_table(
        'oee_hour_horizons',
        sa.Column('machine_id', sa.Integer(), nullable=False),
        sa.Column('from_s', sa.BigInteger(), nullable=False),
        sa.Column('until_s', sa.BigInteger(), nullable=False),
        sa.Column('fingerprint', sa.String(64), nullable=False),
        sa.Column('overrides', sa.Text(), nullable=False),
        sa.Column('computed_at', T, nullable=False),
        sa.Column('generation', sa.BigInteger(), nullable=False),  # moved on by every late batch (db.oee_hours)
        sa.Column('max_state_s', db.types.Double, nullable=True),  # the longest closed state row seen; None: unknown
        sa.Column('max_count_s', db.types.Double, nullable=True),  # the longest count row seen
        sa.ForeignKeyConstraint(['machine_id'], ['machines.id'],
                                name=op.f('fk_oee_hour_horizons_machine_id_machines'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('machine_id', name=op.f('pk_oee_hour_horizons')),
    )


def downgrade() -> None:
    op.drop_table('oee_hour_horizons')
    op.drop_table('oee_hours')
