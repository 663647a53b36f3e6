"""Machine settings a user sets: calendars on lines, micro-stop thresholds, a fault table per machine

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29

- lines.calendar_id: the shift calendar of the line's machines that have none of their own.
- sites.micro_stop_threshold_s, machines.micro_stop_threshold_s: the micro-stop threshold (NULL: inherit, the
  machine from its site, the site from the 120 s default).
- machine_fault_codes: per machine, what a PLC fault code means (text) and the state it gives (kind: fault,
  planned_stop or changeover).

Columns are added in place on every backend. SQLite cannot add a foreign key to an existing table except inline
with the column (ALTER TABLE ADD COLUMN ... REFERENCES), which keeps the rows: a batch copy of `lines` would drop
the old table, and with foreign keys on that would cascade to its cells and unassign its machines.
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

DOUBLE = sa.Float().with_variant(sa.DOUBLE_PRECISION(), 'postgresql')


def upgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('ALTER TABLE lines ADD COLUMN calendar_id INTEGER CONSTRAINT fk_lines_calendar_id_shift_calendars '
                   'REFERENCES shift_calendars (id) ON DELETE SET NULL')
    else:
        op.add_column('lines', sa.Column('calendar_id', sa.Integer(), nullable=True))
        op.create_foreign_key(op.f('fk_lines_calendar_id_shift_calendars'), 'lines', 'shift_calendars',
                              ['calendar_id'], ['id'], ondelete='SET NULL')
    op.add_column('sites', sa.Column('micro_stop_threshold_s', DOUBLE, nullable=True))
    op.add_column('machines', sa.Column('micro_stop_threshold_s', DOUBLE, nullable=True))
    op.create_table(
        'machine_fault_codes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('machine_id', sa.Integer(), nullable=False),
        sa.Column('code', sa.Integer(), nullable=False),
        sa.Column('text', sa.String(length=200), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(['machine_id'], ['machines.id'],
                                name=op.f('fk_machine_fault_codes_machine_id_machines'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_machine_fault_codes')),
        sa.UniqueConstraint('machine_id', 'code', name='uq_machine_fault_codes_machine_code'),
    )


def downgrade() -> None:
    op.drop_table('machine_fault_codes')
    op.drop_column('machines', 'micro_stop_threshold_s')  # SQLite 3.35+ drops a plain column in place
    op.drop_column('sites', 'micro_stop_threshold_s')
    if op.get_bind().dialect.name == 'sqlite':
        # SQLite cannot drop a column that is in a foreign key; the column stays, unused by older versions.
        return
    op.drop_constraint(op.f('fk_lines_calendar_id_shift_calendars'), 'lines', type_='foreignkey')
    op.drop_column('lines', 'calendar_id')
