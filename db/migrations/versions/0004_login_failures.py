"""Failed logins, for the login rate limit shared by every web process

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28

One row per failed login and per key it counts against ('user:<name>' and 'ip:<address>'); rows older than the
rate-limit window are deleted as new failures arrive. In the database so that gunicorn workers (and several web
hosts on one PostgreSQL) count together.
"""
import sqlalchemy as sa
from alembic import op

import db.types

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'login_failures',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('time', db.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_login_failures')),
    )
    op.create_index(op.f('ix_login_failures_key_time'), 'login_failures', ['key', 'time'])


def downgrade() -> None:
    op.drop_table('login_failures')
