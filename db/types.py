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


# --- text the databases can store -----------------------------------------------------------------------------

def text_problem(value: str, max_len: int | None = None) -> str | None:
    """Why this text cannot be stored or compared as it is, in words, or None. PostgreSQL refuses a NUL character
    in text and JSON (SQLite would store it), and no database can encode a lone UTF-16 surrogate (\\ud800), which
    JSON can carry; max_len: a sensible length for the field."""
    if "\x00" in value:
        return "must not contain a NUL character (\\u0000)"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text: it holds a lone surrogate (such as \\ud800)"
    if max_len is not None and len(value) > max_len:
        return f"at most {max_len:,} characters, not {len(value):,}"
    return None


MAX_DEPTH = 200  # levels of nesting in a JSON body or an imported document: far more than any of ours has


def document_problem(doc, *, root: str = "body", max_depth: int = MAX_DEPTH,
                     max_values: int | None = None) -> tuple[str, str] | None:
    """(path, problem) for the first string of a parsed JSON or YAML document (keys too) the database cannot store,
    the first level nested deeper than max_depth, or more than max_values values in all (YAML aliases can make a
    small file expand without end); None when it is all storable. Walks without recursion."""
    stack = [(doc, root, 1)]
    seen = 0
    while stack:
        node, path, depth = stack.pop()
        seen += 1
        if max_values is not None and seen > max_values:
            return root, f"more than {max_values:,} values (anchors and aliases expand to too much); send less"
        if depth > max_depth:
            return path, f"nested more than {max_depth} levels deep; send a flatter document"
        if isinstance(node, str):
            problem = text_problem(node)
            if problem:
                return path, problem
        elif isinstance(node, dict):
            for key, value in node.items():
                name = key if isinstance(key, str) else str(key)
                problem = text_problem(name)
                if problem:
                    return path, f"a key {problem}"
                stack.append((value, f"{path}.{name}"[:200] if path else name[:200], depth + 1))
        elif isinstance(node, list):
            stack.extend((value, f"{path}[{i}]"[:200], depth + 1) for i, value in enumerate(node))
    return None
