"""When each machine was in service: added, disabled, enabled again

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29

One row per period in service: from the machine's adding (or enabling) to its disabling (end NULL while in
service). Time outside every period is not planned production time for the machine (db/oee_queries.py), so a
machine added today has no "Unknown" loss before it existed, and a disabled one loses nothing while disabled.

Existing machines are backfilled from what was recorded: in service from their first state interval (or from now,
when they have none); a disabled machine's period ends at the last time it was seen (or is empty).
"""
import time

import sqlalchemy as sa
from alembic import op

import db.types

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'machine_lifetime',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('machine_id', sa.Integer(), nullable=False),
        sa.Column('start', db.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column('end', db.types.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['machine_id'], ['machines.id'], name=op.f('fk_machine_lifetime_machine_id_machines'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_machine_lifetime')),
    )
    op.create_index('ix_machine_lifetime_machine_start', 'machine_lifetime', ['machine_id', 'start'])

    bind = op.get_bind()
    now = time.time()
    machines = sa.table('machines', sa.column('id', sa.Integer), sa.column('enabled', sa.Boolean))
    states = sa.table('machine_states', sa.column('machine_id', sa.Integer),
                      sa.column('start', db.types.UtcDateTime(timezone=True)),
                      sa.column('end', db.types.UtcDateTime(timezone=True)))
    lifetime = sa.table('machine_lifetime', sa.column('machine_id', sa.Integer),
                        sa.column('start', db.types.UtcDateTime(timezone=True)),
                        sa.column('end', db.types.UtcDateTime(timezone=True)))
    seen = {mid: (first, last) for mid, first, last in bind.execute(
        sa.select(states.c.machine_id, sa.func.min(states.c.start),
                  sa.func.max(sa.func.coalesce(states.c.end, states.c.start))).group_by(states.c.machine_id))}
    rows = []
    for mid, enabled in bind.execute(sa.select(machines.c.id, machines.c.enabled)):
        first, last = seen.get(mid, (None, None))
        start = first if first is not None else now
        if enabled:
            rows.append({'machine_id': mid, 'start': start, 'end': None})
        else:
            rows.append({'machine_id': mid, 'start': start, 'end': last if last is not None else start})
    if rows:
        op.bulk_insert(lifetime, rows)


def downgrade() -> None:
    op.drop_table('machine_lifetime')
