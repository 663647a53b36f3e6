"""Faults of machines, alert rules and alerts

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07

faults: one row per fault of a machine (start, end, who acknowledged it), written by the collecting process.
alert_rules: what to watch (machine_stopped, oee_below, connection_failing, writer_spooling) and whom to tell.
alerts: each firing of a rule, active -> acknowledged -> resolved, kept across restarts.
"""
import sqlalchemy as sa
from alembic import op

import db.types

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

T = db.types.UtcDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'faults',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('machine_id', sa.Integer(), nullable=False),
        sa.Column('code', sa.Integer(), nullable=True),
        sa.Column('start', T, nullable=False),
        sa.Column('end', T, nullable=True),
        sa.Column('acknowledged_by', sa.String(200), nullable=True),
        sa.Column('acknowledged_at', T, nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_faults')),
    )
    op.create_index('ix_faults_machine_start', 'faults', ['machine_id', 'start'], unique=True)
    op.create_index('ix_faults_start', 'faults', ['start'])
    op.create_table(
        'alert_rules',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(200), nullable=False),
        sa.Column('kind', sa.String(32), nullable=False),
        sa.Column('machine_id', sa.Integer(), nullable=True),
        sa.Column('line_id', sa.Integer(), nullable=True),
        sa.Column('area_id', sa.Integer(), nullable=True),
        sa.Column('site_id', sa.Integer(), nullable=True),
        sa.Column('for_s', db.types.Double, nullable=False),
        sa.Column('reset_s', db.types.Double, nullable=False),
        sa.Column('threshold', db.types.Double, nullable=True),
        sa.Column('metric', sa.String(16), nullable=True),
        sa.Column('window', sa.String(8), nullable=True),
        sa.Column('webhook_url', sa.Text(), nullable=True),
        sa.Column('webhook_secret', db.types.Json, nullable=True),
        sa.Column('email_to', db.types.Json, nullable=True),
        sa.Column('enabled', sa.Boolean(), nullable=False),
        sa.Column('last_sent', T, nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('last_error_at', T, nullable=True),
        sa.ForeignKeyConstraint(['machine_id'], ['machines.id'], name=op.f('fk_alert_rules_machine_id_machines'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['line_id'], ['lines.id'], name=op.f('fk_alert_rules_line_id_lines'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['area_id'], ['areas.id'], name=op.f('fk_alert_rules_area_id_areas'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_alert_rules_site_id_sites'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_rules')),
        sa.UniqueConstraint('name', name=op.f('uq_alert_rules_name')),
    )
    op.create_table(
        'alerts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('rule_id', sa.Integer(), nullable=False),
        sa.Column('subject', sa.String(100), nullable=False),
        sa.Column('machine_id', sa.Integer(), nullable=True),
        sa.Column('state', sa.String(16), nullable=False),
        sa.Column('message', sa.Text(), nullable=False),
        sa.Column('started_at', T, nullable=False),
        sa.Column('acknowledged_by', sa.String(200), nullable=True),
        sa.Column('acknowledged_at', T, nullable=True),
        sa.Column('resolved_at', T, nullable=True),
        sa.ForeignKeyConstraint(['rule_id'], ['alert_rules.id'], name=op.f('fk_alerts_rule_id_alert_rules'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['machine_id'], ['machines.id'], name=op.f('fk_alerts_machine_id_machines'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_alerts')),
    )
    op.create_index('ix_alerts_rule_subject', 'alerts', ['rule_id', 'subject'])
    op.create_index('ix_alerts_started', 'alerts', ['started_at'])


def downgrade() -> None:
    op.drop_table('alerts')
    op.drop_table('alert_rules')
    op.drop_table('faults')
