"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-28
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

import db.types
from db import backend as backends

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('machine_states',
    sa.Column('machine_id', sa.Integer(), nullable=False),
    sa.Column('start', db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('end', db.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('fault_code', sa.Integer(), nullable=True),
    sa.Column('product_code', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('machine_id', 'start', name=op.f('pk_machine_states'))
    )
    op.create_table('oee_meta',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_oee_meta'))
    )
    op.create_table('production_counts',
    sa.Column('machine_id', sa.Integer(), nullable=False),
    sa.Column('start', db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('end', db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('product_code', sa.String(length=64), nullable=True),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('good', sa.Integer(), nullable=False),
    sa.Column('reject', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('machine_id', 'start', name=op.f('pk_production_counts'))
    )
    op.create_table('products',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('ideal_cycle_time_s', sa.Float().with_variant(sa.DOUBLE_PRECISION(), 'postgresql'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_products')),
    sa.UniqueConstraint('code', name=op.f('uq_products_code'))
    )
    op.create_table('reason_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('planned', sa.Boolean(), nullable=False),
    sa.Column('loss_category', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reason_codes')),
    sa.UniqueConstraint('code', name=op.f('uq_reason_codes_code'))
    )
    op.create_table('rollup_watermarks',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('upto', db.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_rollup_watermarks'))
    )
    op.create_table('samples',
    sa.Column('time', db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('tag_id', sa.Integer(), nullable=False),
    sa.Column('value', sa.Float().with_variant(sa.DOUBLE_PRECISION(), 'postgresql'), nullable=True),
    sa.Column('value_text', sa.Text(), nullable=True),
    sa.Column('quality', sa.SmallInteger(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True)
    )
    with op.batch_alter_table('samples', schema=None) as batch_op:
        batch_op.create_index('ix_samples_tag_time', ['tag_id', 'time'], unique=False)

    op.create_table('shift_calendars',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shift_calendars')),
    sa.UniqueConstraint('name', name=op.f('uq_shift_calendars_name'))
    )
    op.create_table('sites',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sites')),
    sa.UniqueConstraint('name', name=op.f('uq_sites_name'))
    )
    op.create_table('writer_batches',
    sa.Column('batch_id', sa.String(length=40), nullable=False),
    sa.Column('committed_at', db.types.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('batch_id', name=op.f('pk_writer_batches'))
    )
    with op.batch_alter_table('writer_batches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_writer_batches_committed_at'), ['committed_at'], unique=False)

    op.create_table('areas',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_areas_site_id_sites'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_areas')),
    sa.UniqueConstraint('site_id', 'name', name='uq_areas_site_name')
    )
    op.create_table('shifts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('calendar_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('start_time', sa.Time(), nullable=False),
    sa.Column('end_time', sa.Time(), nullable=False),
    sa.Column('weekdays', sa.String(length=7), nullable=False),
    sa.ForeignKeyConstraint(['calendar_id'], ['shift_calendars.id'], name=op.f('fk_shifts_calendar_id_shift_calendars'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shifts'))
    )
    op.create_table('lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('area_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['area_id'], ['areas.id'], name=op.f('fk_lines_area_id_areas'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lines')),
    sa.UniqueConstraint('area_id', 'name', name='uq_lines_area_name')
    )
    op.create_table('shift_breaks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('shift_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('start_time', sa.Time(), nullable=False),
    sa.Column('duration_s', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['shift_id'], ['shifts.id'], name=op.f('fk_shift_breaks_shift_id_shifts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shift_breaks'))
    )
    op.create_table('cells',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('line_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['line_id'], ['lines.id'], name=op.f('fk_cells_line_id_lines'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cells')),
    sa.UniqueConstraint('line_id', 'name', name='uq_cells_line_name')
    )
    op.create_table('machines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('machine_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('line_id', sa.Integer(), nullable=True),
    sa.Column('cell_id', sa.Integer(), nullable=True),
    sa.Column('calendar_id', sa.Integer(), nullable=True),
    sa.Column('ideal_cycle_time_s', sa.Float().with_variant(sa.DOUBLE_PRECISION(), 'postgresql'), nullable=True),
    sa.Column('state_code_map', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['calendar_id'], ['shift_calendars.id'], name=op.f('fk_machines_calendar_id_shift_calendars'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['cell_id'], ['cells.id'], name=op.f('fk_machines_cell_id_cells'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['line_id'], ['lines.id'], name=op.f('fk_machines_line_id_lines'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_machines')),
    sa.UniqueConstraint('machine_id', name=op.f('uq_machines_machine_id'))
    )
    op.create_table('connections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('machine_id', sa.Integer(), nullable=True),
    sa.Column('protocol', sa.String(length=16), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('port', sa.Integer(), nullable=False),
    sa.Column('protocol_config', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('poll_interval_ms', sa.Integer(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('collector_node', sa.String(length=100), nullable=True),
    sa.Column('updated_at', db.types.UtcDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['machine_id'], ['machines.id'], name=op.f('fk_connections_machine_id_machines'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_connections')),
    sa.UniqueConstraint('name', name=op.f('uq_connections_name'))
    )
    op.create_table('downtime_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('machine_id', sa.Integer(), nullable=False),
    sa.Column('start', db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('end', db.types.UtcDateTime(timezone=True), nullable=True),
    sa.Column('reason_id', sa.Integer(), nullable=True),
    sa.Column('planned', sa.Boolean(), nullable=False),
    sa.Column('loss_category', sa.String(length=32), nullable=True),
    sa.Column('fault_code', sa.Integer(), nullable=True),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('split_from_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['machine_id'], ['machines.id'], name=op.f('fk_downtime_events_machine_id_machines'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reason_id'], ['reason_codes.id'], name=op.f('fk_downtime_events_reason_id_reason_codes'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['split_from_id'], ['downtime_events.id'], name=op.f('fk_downtime_events_split_from_id_downtime_events'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_downtime_events'))
    )
    with op.batch_alter_table('downtime_events', schema=None) as batch_op:
        batch_op.create_index('ix_downtime_events_machine_start', ['machine_id', 'start'], unique=True)

    op.create_table('planned_downtime',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('calendar_id', sa.Integer(), nullable=True),
    sa.Column('machine_id', sa.Integer(), nullable=True),
    sa.Column('start', db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('end', db.types.UtcDateTime(timezone=True), nullable=False),
    sa.Column('reason_id', sa.Integer(), nullable=True),
    sa.Column('note', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['calendar_id'], ['shift_calendars.id'], name=op.f('fk_planned_downtime_calendar_id_shift_calendars'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['machine_id'], ['machines.id'], name=op.f('fk_planned_downtime_machine_id_machines'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reason_id'], ['reason_codes.id'], name=op.f('fk_planned_downtime_reason_id_reason_codes'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_planned_downtime'))
    )
    op.create_table('tags',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('connection_id', sa.Integer(), nullable=False),
    sa.Column('machine_id', sa.Integer(), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('address', sa.String(length=255), nullable=False),
    sa.Column('data_type', sa.String(length=16), nullable=False),
    sa.Column('scale', sa.Float().with_variant(sa.DOUBLE_PRECISION(), 'postgresql'), nullable=False),
    sa.Column('offset', sa.Float().with_variant(sa.DOUBLE_PRECISION(), 'postgresql'), nullable=False),
    sa.Column('deadband', sa.Float().with_variant(sa.DOUBLE_PRECISION(), 'postgresql'), nullable=False),
    sa.Column('sampling_interval_ms', sa.Integer(), nullable=True),
    sa.Column('report_by_exception', sa.Boolean(), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=True),
    sa.Column('options', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['connection_id'], ['connections.id'], name=op.f('fk_tags_connection_id_connections'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['machine_id'], ['machines.id'], name=op.f('fk_tags_machine_id_machines'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tags')),
    sa.UniqueConstraint('connection_id', 'name', name='uq_tags_connection_name')
    )


    # Hypertables, policies and continuous aggregates, or rollup tables: see db/backend.py.
    backends.create_time_series_objects(op.get_bind(), op.get_context().config.attributes['backend'])

def downgrade() -> None:
    for name, _ in backends.ROLLUPS:
        op.execute(f'DROP MATERIALIZED VIEW IF EXISTS {name} CASCADE' if op.get_bind().dialect.name == 'postgresql' and op.get_context().config.attributes['backend'] == backends.TIMESCALEDB else f'DROP TABLE IF EXISTS {name}')
    op.drop_table('tags')
    op.drop_table('planned_downtime')
    with op.batch_alter_table('downtime_events', schema=None) as batch_op:
        batch_op.drop_index('ix_downtime_events_machine_start')

    op.drop_table('downtime_events')
    op.drop_table('connections')
    op.drop_table('machines')
    op.drop_table('cells')
    op.drop_table('shift_breaks')
    op.drop_table('lines')
    op.drop_table('shifts')
    op.drop_table('areas')
    with op.batch_alter_table('writer_batches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_writer_batches_committed_at'))

    op.drop_table('writer_batches')
    op.drop_table('sites')
    op.drop_table('shift_calendars')
    with op.batch_alter_table('samples', schema=None) as batch_op:
        batch_op.drop_index('ix_samples_tag_time')

    op.drop_table('samples')
    op.drop_table('rollup_watermarks')
    op.drop_table('reason_codes')
    op.drop_table('products')
    op.drop_table('production_counts')
    op.drop_table('oee_meta')
    op.drop_table('machine_states')
