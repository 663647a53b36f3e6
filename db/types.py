"""Column types that behave the same on SQLite and PostgreSQL.

Time is stored in UTC. PostgreSQL gets a real ``timestamptz`` (TimescaleDB partitions on it); SQLite gets the
Unix epoch as a REAL, which is compact, sorts correctly, is cheap to write in bulk and makes time buckets plain
arithmetic. Either way Python sees timezone-aware UTC datetimes.
"""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import JSON, DateTime, Float
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import TypeDecorator

UTC = timezone.utc


def to_utc(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC (the house rule); aware ones are converted."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class UtcDateTime(TypeDecorator):
    """A point in time: timestamptz on PostgreSQL, epoch seconds (REAL) on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Float())
        return dialect.type_descriptor(postgresql.TIMESTAMP(timezone=True))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, (int, float)):
            value = datetime.fromtimestamp(value, UTC)
        value = to_utc(value)
        if dialect.name == "sqlite":
            return value.timestamp()
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, (int, float)):
            return datetime.fromtimestamp(value, UTC)
        return to_utc(value)


# Double precision on PostgreSQL (plain Float there is only 'float' = double anyway, but say it).
Double = Float().with_variant(postgresql.DOUBLE_PRECISION(), "postgresql")

# JSONB where available: indexable and compact; plain JSON text on SQLite.
Json = JSON().with_variant(postgresql.JSONB(), "postgresql")
