"""The data model: one set of SQLAlchemy models for SQLite, PostgreSQL and TimescaleDB.

Configuration (hierarchy, connections, tags, products, calendars, reasons) is ordinary ORM tables. Time series
(samples, machine state intervals, production counts) are tables keyed by time so that TimescaleDB can make them
hypertables; `samples` is a Core table without a surrogate key because it is written by COPY at high rates.
Enumerations are stored as short strings and checked here, so the same values travel to the API and the pages.
"""
from __future__ import annotations

from datetime import datetime, time

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from db.types import Double, Json, UtcDateTime

# Stable constraint names make migrations reproducible on every backend.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

PROTOCOLS = ("ETHERNET_IP", "S7", "OPCUA", "MODBUS", "SPARKPLUG_B", "MQTT")

# Canonical roles: the only vocabulary the machine model understands.
TAG_ROLES = (
    "state.running",
    "state.faulted",
    "state.stopped",
    "state.code",
    "counter.total",
    "counter.good",
    "counter.reject",
    "fault.code",
    "cycle.time",
    "cycle.ideal_time",
    "product.code",
    "order.id",
)

MACHINE_STATES = ("running", "idle", "blocked", "faulted", "planned_stop", "changeover", "offline", "unknown")
# What a PLC fault code means when it is active (machine_fault_codes.kind): the state it puts the machine in.
FAULT_KINDS = ("fault", "planned_stop", "changeover")

# The Six Big Losses, and the planned categories that come off calendar time before OEE starts.
LOSS_CATEGORIES = (
    "equipment_failure",
    "setup_adjustment",
    "idling_minor_stops",
    "reduced_speed",
    "process_defects",
    "startup_rejects",
)
PLANNED_CATEGORIES = ("planned_maintenance", "break", "no_production_scheduled")

# Sample quality, small integers so that a sample row stays narrow.
QUALITY_GOOD = 0
QUALITY_UNCERTAIN = 1
QUALITY_BAD = 2


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


# --- ISA-95 hierarchy -----------------------------------------------------------------------------------------


class Site(Base):
    __tablename__ = "sites"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    micro_stop_threshold_s: Mapped[float | None] = mapped_column(Double)  # its machines' default; None: 120 s
    areas: Mapped[list["Area"]] = relationship(back_populates="site", cascade="all, delete-orphan")


class Area(Base):
    __tablename__ = "areas"
    __table_args__ = (UniqueConstraint("site_id", "name", name="uq_areas_site_name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    site: Mapped[Site] = relationship(back_populates="areas")
    lines: Mapped[list["Line"]] = relationship(back_populates="area", cascade="all, delete-orphan")


class Line(Base):
    __tablename__ = "lines"
    __table_args__ = (UniqueConstraint("area_id", "name", name="uq_lines_area_name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    calendar_id: Mapped[int | None] = mapped_column(ForeignKey("shift_calendars.id", ondelete="SET NULL"))
    area: Mapped[Area] = relationship(back_populates="lines")
    calendar: Mapped["ShiftCalendar | None"] = relationship()  # its machines' calendar where they have none
    cells: Mapped[list["Cell"]] = relationship(back_populates="line", cascade="all, delete-orphan")
    machines: Mapped[list["Machine"]] = relationship(back_populates="line")


class Cell(Base):
    __tablename__ = "cells"
    __table_args__ = (UniqueConstraint("line_id", "name", name="uq_cells_line_name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("lines.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    line: Mapped[Line] = relationship(back_populates="cells")


class Machine(Base):
    __tablename__ = "machines"
    id: Mapped[int] = mapped_column(primary_key=True)
    machine_id: Mapped[str] = mapped_column(String(64), unique=True)  # stable, human id such as LINE-001
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    line_id: Mapped[int | None] = mapped_column(ForeignKey("lines.id", ondelete="SET NULL"))
    cell_id: Mapped[int | None] = mapped_column(ForeignKey("cells.id", ondelete="SET NULL"))
    # None in the settings below means "inherit": the line's calendar (else none: every hour is planned), the
    # default state codes (collectors.machine_model), the site's micro-stop threshold (else 120 s).
    calendar_id: Mapped[int | None] = mapped_column(ForeignKey("shift_calendars.id", ondelete="SET NULL"))
    ideal_cycle_time_s: Mapped[float | None] = mapped_column(Double)  # fallback when no product or tag gives it
    state_code_map: Mapped[dict | None] = mapped_column(Json)  # PLC state code (text) -> MACHINE_STATES value
    micro_stop_threshold_s: Mapped[float | None] = mapped_column(Double)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    line: Mapped[Line | None] = relationship(back_populates="machines")
    connections: Mapped[list["Connection"]] = relationship(back_populates="machine")
    fault_codes: Mapped[list["MachineFaultCode"]] = relationship(
        back_populates="machine", cascade="all, delete-orphan", order_by="MachineFaultCode.code")


class MachineFaultCode(Base):
    """One entry of a machine's fault table: what its PLC's fault code means (text) and what state it gives."""

    __tablename__ = "machine_fault_codes"
    __table_args__ = (UniqueConstraint("machine_id", "code", name="uq_machine_fault_codes_machine_code"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"))
    code: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16), default="fault")  # one of FAULT_KINDS
    machine: Mapped[Machine] = relationship(back_populates="fault_codes")


class MachineLifetime(Base):
    """A period in which a machine was in service: from when it was added (or enabled) to when it was disabled
    (end None: still in service). Time outside every period cannot be the machine's loss: it is not planned
    production time. A machine with no period at all (made before this record existed, or by hand) is in service
    always."""

    __tablename__ = "machine_lifetime"
    __table_args__ = (Index("ix_machine_lifetime_machine_start", "machine_id", "start"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"))
    start: Mapped[datetime] = mapped_column(UtcDateTime)
    end: Mapped[datetime | None] = mapped_column(UtcDateTime)


# --- Connections and tags -------------------------------------------------------------------------------------


class Connection(Base):
    __tablename__ = "connections"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    machine_id: Mapped[int | None] = mapped_column(ForeignKey("machines.id", ondelete="SET NULL"))
    protocol: Mapped[str] = mapped_column(String(16))  # one of PROTOCOLS
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)
    protocol_config: Mapped[dict] = mapped_column(Json, default=dict)
    poll_interval_ms: Mapped[int] = mapped_column(Integer, default=1000)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    collector_node: Mapped[str | None] = mapped_column(String(100))  # explicit assignment to a collector process
    updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    machine: Mapped[Machine | None] = relationship(back_populates="connections")
    tags: Mapped[list["Tag"]] = relationship(back_populates="connection", cascade="all, delete-orphan")


class Tag(Base):
    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("connection_id", "name", name="uq_tags_connection_name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    machine_id: Mapped[int | None] = mapped_column(ForeignKey("machines.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(255))
    data_type: Mapped[str] = mapped_column(String(16))
    scale: Mapped[float] = mapped_column(Double, default=1.0)
    offset: Mapped[float] = mapped_column(Double, default=0.0)
    deadband: Mapped[float] = mapped_column(Double, default=0.0)
    sampling_interval_ms: Mapped[int | None] = mapped_column(Integer)  # None: the connection's poll interval
    report_by_exception: Mapped[bool] = mapped_column(Boolean, default=False)
    role: Mapped[str | None] = mapped_column(String(32))  # one of TAG_ROLES, or None for a plain process value
    options: Mapped[dict | None] = mapped_column(Json)  # e.g. {"rollover": 1000000} for a counter
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    connection: Mapped[Connection] = relationship(back_populates="tags")


# --- Products, reasons, calendars -----------------------------------------------------------------------------


class Product(Base):
    __tablename__ = "products"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    ideal_cycle_time_s: Mapped[float] = mapped_column(Double)


class ReasonCode(Base):
    __tablename__ = "reason_codes"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    planned: Mapped[bool] = mapped_column(Boolean, default=False)
    loss_category: Mapped[str] = mapped_column(String(32))  # LOSS_CATEGORIES or PLANNED_CATEGORIES


class ShiftCalendar(Base):
    __tablename__ = "shift_calendars"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    shifts: Mapped[list["Shift"]] = relationship(back_populates="calendar", cascade="all, delete-orphan")


class Shift(Base):
    __tablename__ = "shifts"
    id: Mapped[int] = mapped_column(primary_key=True)
    calendar_id: Mapped[int] = mapped_column(ForeignKey("shift_calendars.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    start_time: Mapped[time] = mapped_column(Time)  # local time of the calendar's time zone
    end_time: Mapped[time] = mapped_column(Time)  # may be earlier than start: the shift crosses midnight
    weekdays: Mapped[str] = mapped_column(String(7), default="0123456")  # Monday = 0
    calendar: Mapped[ShiftCalendar] = relationship(back_populates="shifts")
    breaks: Mapped[list["ShiftBreak"]] = relationship(back_populates="shift", cascade="all, delete-orphan")


class ShiftBreak(Base):
    __tablename__ = "shift_breaks"
    id: Mapped[int] = mapped_column(primary_key=True)
    shift_id: Mapped[int] = mapped_column(ForeignKey("shifts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64), default="Break")
    start_time: Mapped[time] = mapped_column(Time)
    duration_s: Mapped[int] = mapped_column(Integer)
    shift: Mapped[Shift] = relationship(back_populates="breaks")


class PlannedDowntime(Base):
    __tablename__ = "planned_downtime"
    id: Mapped[int] = mapped_column(primary_key=True)
    calendar_id: Mapped[int | None] = mapped_column(ForeignKey("shift_calendars.id", ondelete="CASCADE"))
    machine_id: Mapped[int | None] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"))
    start: Mapped[datetime] = mapped_column(UtcDateTime)
    end: Mapped[datetime] = mapped_column(UtcDateTime)
    reason_id: Mapped[int | None] = mapped_column(ForeignKey("reason_codes.id", ondelete="SET NULL"))
    note: Mapped[str] = mapped_column(Text, default="")


# --- Events ---------------------------------------------------------------------------------------------------


class DowntimeEvent(Base):
    __tablename__ = "downtime_events"
    __table_args__ = (Index("ix_downtime_events_machine_start", "machine_id", "start", unique=True),)
    id: Mapped[int] = mapped_column(primary_key=True)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"))
    start: Mapped[datetime] = mapped_column(UtcDateTime)
    end: Mapped[datetime | None] = mapped_column(UtcDateTime)  # None while the machine is still down
    reason_id: Mapped[int | None] = mapped_column(ForeignKey("reason_codes.id", ondelete="SET NULL"))
    planned: Mapped[bool] = mapped_column(Boolean, default=False)
    loss_category: Mapped[str | None] = mapped_column(String(32))
    fault_code: Mapped[int | None] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(Text, default="")
    split_from_id: Mapped[int | None] = mapped_column(ForeignKey("downtime_events.id", ondelete="SET NULL"))


# --- Time series ----------------------------------------------------------------------------------------------

# Written by COPY at tens of thousands of rows a second: no surrogate key, no foreign key (a deleted tag's
# history is removed by the app, in bulk). value holds numbers and booleans; value_text holds strings and
# arrays (JSON).
samples = Table(
    "samples",
    Base.metadata,
    Column("time", UtcDateTime, nullable=False),
    Column("tag_id", Integer, nullable=False),
    Column("value", Double),
    Column("value_text", Text),
    Column("quality", SmallInteger, nullable=False, default=QUALITY_GOOD),
    Column("reason", Text),  # why quality is not good (invalid_address: DB9 does not exist); NULL when good
    Index("ix_samples_tag_time", "tag_id", "time"),
)


class MachineState(Base):
    """A state interval: [start, end). The open interval of a machine has end = None."""

    __tablename__ = "machine_states"
    machine_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    start: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True)
    end: Mapped[datetime | None] = mapped_column(UtcDateTime)
    state: Mapped[str] = mapped_column(String(16))  # one of MACHINE_STATES
    fault_code: Mapped[int | None] = mapped_column(Integer)
    product_code: Mapped[str | None] = mapped_column(String(64))


class ProductionCount(Base):
    """Count increments of one machine over [start, end): what was made, not the raw counter."""

    __tablename__ = "production_counts"
    machine_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    start: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True)
    end: Mapped[datetime] = mapped_column(UtcDateTime)
    product_code: Mapped[str | None] = mapped_column(String(64))
    total: Mapped[int] = mapped_column(Integer, default=0)
    good: Mapped[int] = mapped_column(Integer, default=0)
    reject: Mapped[int] = mapped_column(Integer, default=0)


# --- Bookkeeping ----------------------------------------------------------------------------------------------


class WriterBatch(Base):
    """Ledger of committed writer batches: a batch replayed after an ambiguous commit is skipped, not doubled."""

    __tablename__ = "writer_batches"
    batch_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    committed_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class Meta(Base):
    """Facts about this database that outlive the process, such as the time-series backend it was built for."""

    __tablename__ = "oee_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class RollupWatermark(Base):
    """For app-maintained rollups: buckets before `upto` are complete unless data older than it arrives."""

    __tablename__ = "rollup_watermarks"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    upto: Mapped[datetime] = mapped_column(UtcDateTime)


# --- Users, tokens and the audit trail ------------------------------------------------------------------------

USER_ROLES = ("viewer", "operator", "engineer", "admin")  # each role can do what the one before it can, and more


class User(Base):
    """A person who logs in. The password is stored only as an argon2 hash."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))  # one of USER_ROLES
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class ApiToken(Base):
    """A user's token for scripts: only a hash of the secret is kept; the prefix lets a user tell tokens apart."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class AuditEntry(Base):
    """Who changed what and when: every configuration change (before and after) and every PLC write.

    before and after are JSON with secrets already replaced by '***'. actor is a user name, 'token:<user>/<name>',
    'anonymous' or 'system'."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    time: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))  # e.g. machine.update, tag.write, user.create
    target: Mapped[str] = mapped_column(String(200))  # e.g. machine LINE-001
    before: Mapped[dict | None] = mapped_column(Json)
    after: Mapped[dict | None] = mapped_column(Json)
    source_ip: Mapped[str | None] = mapped_column(String(64))


class LoginFailure(Base):
    """One failed login counted against one key ('user:<name>' or 'ip:<address>'): the login rate limit, in the
    database so that every web process counts the same failures."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_key_time", "key", "time"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200))
    time: Mapped[datetime] = mapped_column(UtcDateTime)


# --- Faults, alert rules and alerts ---------------------------------------------------------------------------

ALERT_KINDS = ("machine_stopped", "oee_below", "connection_failing", "writer_spooling")
ALERT_STATES = ("active", "acknowledged", "resolved")


class Fault(Base):
    """One fault of a machine: from when it showed faulted with this code to when it stopped (end None: active).

    Written by the collecting process through the writer (collectors.machine_model emits the rows); who
    acknowledged it and when is set from the pages or the API and never touched by the writer."""

    __tablename__ = "faults"
    __table_args__ = (Index("ix_faults_machine_start", "machine_id", "start", unique=True),
                      Index("ix_faults_start", "start"))
    id: Mapped[int] = mapped_column(primary_key=True)
    # No foreign key, as machine_states: a writer batch for a machine deleted meanwhile must still commit.
    machine_id: Mapped[int] = mapped_column(Integer)
    code: Mapped[int | None] = mapped_column(Integer)  # None: faulted without a fault code
    start: Mapped[datetime] = mapped_column(UtcDateTime)
    end: Mapped[datetime | None] = mapped_column(UtcDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class AlertRule(Base):
    """What to watch and whom to tell (api/alerts.py; the body is validated by config/alert_rules.py).

    Scope: exactly one of machine_id, line_id, area_id, site_id. webhook_secret is sealed with the master key
    (keys/credentials.py) and never shown back; last_error and last_sent say how the last notification went."""

    __tablename__ = "alert_rules"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(32))  # one of ALERT_KINDS
    machine_id: Mapped[int | None] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"))
    line_id: Mapped[int | None] = mapped_column(ForeignKey("lines.id", ondelete="CASCADE"))
    area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id", ondelete="CASCADE"))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    for_s: Mapped[float] = mapped_column(Double, default=0.0)  # the condition must hold this long (the delay)
    reset_s: Mapped[float] = mapped_column(Double, default=0.0)  # and be gone this long before the alert resolves
    threshold: Mapped[float | None] = mapped_column(Double)  # oee_below: a fraction 0..1
    metric: Mapped[str | None] = mapped_column(String(16))  # oee_below: oee, availability, performance, quality
    window: Mapped[str | None] = mapped_column(String(8))  # oee_below: hour or shift
    webhook_url: Mapped[str | None] = mapped_column(Text)
    webhook_secret: Mapped[dict | None] = mapped_column(Json)  # sealed; None: derived from the master key
    email_to: Mapped[list | None] = mapped_column(Json)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    last_sent: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Alert(Base):
    """One firing of a rule for one subject (a machine, or the rule's whole scope): active, then maybe
    acknowledged, then resolved. At most one unresolved alert per (rule, subject)."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_rule_subject", "rule_id", "subject"), Index("ix_alerts_started", "started_at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("alert_rules.id", ondelete="CASCADE"))
    subject: Mapped[str] = mapped_column(String(100))  # machine:<id>, connection:<id>, writer, or scope
    machine_id: Mapped[int | None] = mapped_column(ForeignKey("machines.id", ondelete="SET NULL"))
    state: Mapped[str] = mapped_column(String(16))  # one of ALERT_STATES
    message: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
