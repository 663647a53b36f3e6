"""The plant's configuration as the collectors read it: enabled connections with their tags (secrets decrypted),
a fingerprint per connection for reloads, and the state intervals a previous run left open. Writes of the
configuration go through config/ (config.store for the wizard, the API and the YAML file)."""
from __future__ import annotations

import hashlib
import json

from sqlalchemy import String, case, cast, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from db.models import AuditEntry, Connection, Fault, Machine, MachineFaultCode, MachineState, Tag, samples


def _open_config(conn: Connection, credentials) -> tuple[dict, str | None]:
    """The connection's protocol_config with its secrets decrypted for the driver, or (without the secrets, the
    error) when they cannot be: the connection then reports the error instead of sending ciphertext to a PLC."""
    from keys.credentials import CredentialError, has_sealed, is_sealed

    config = dict(conn.protocol_config or {})
    if not has_sealed(config):
        return config, None
    try:
        if credentials is None:
            raise CredentialError(next(k for k, v in config.items() if is_sealed(v)),
                                  "is stored encrypted and this process has no key; set OEE_SECRET_KEY")
        return credentials.open(config), None
    except CredentialError as exc:
        return {k: v for k, v in config.items() if not is_sealed(v)}, str(exc)


def load_collector_config(engine: Engine, credentials=None) -> list[dict]:
    """Every enabled connection with its enabled tags and the machines they feed, as plain data. credentials
    (keys.credentials.Credentials) decrypts the stored secrets; a connection whose secrets cannot be decrypted
    carries "credential_error" (naming OEE_SECRET_KEY) and no secrets.

    Four Core queries, no ORM objects: the collectors reload this every 10 s, and at 20,000 tags loading them as
    ORM objects (one lazy load of each connection's tags) took 6 % of the collector's CPU and held the GIL for
    up to 4.5 s per reload (bench.collect), stalling every poller and the writer."""
    with engine.connect() as c:
        machines = {r.id: r for r in c.execute(select(Machine.id, Machine.machine_id, Machine.state_code_map,
                                                      Machine.enabled))}
        fault_kinds: dict[int, dict[str, str]] = {}  # text keys: the fingerprint's JSON keeps them as they are
        for f in c.execute(select(MachineFaultCode.machine_id, MachineFaultCode.code, MachineFaultCode.kind)
                           .order_by(MachineFaultCode.code)):
            fault_kinds.setdefault(f.machine_id, {})[str(f.code)] = f.kind
        conns = c.execute(select(Connection.id, Connection.name, Connection.protocol, Connection.host,
                                 Connection.port, Connection.protocol_config, Connection.poll_interval_ms,
                                 Connection.collector_node, Connection.machine_id)
                          .where(Connection.enabled.is_(True)).order_by(Connection.id)).all()
        conn_machine = {conn.id: conn.machine_id for conn in conns}
        tags_by_conn: dict[int, list] = {}
        # Fetched whole and unpacked by position: rows one at a time and Row attributes by name cost 3x as much
        for (conn_id, tid, name, address, data_type, scale, offset, deadband, rbe, role, machine_id, options,
             sampling) in c.execute(select(Tag.connection_id, Tag.id, Tag.name, Tag.address, Tag.data_type,
                                           Tag.scale, Tag.offset, Tag.deadband, Tag.report_by_exception, Tag.role,
                                           Tag.machine_id, Tag.options, Tag.sampling_interval_ms)
                                    .where(Tag.enabled.is_(True)).order_by(Tag.connection_id, Tag.id)).all():
            if conn_id not in conn_machine:
                continue  # a disabled connection's tag
            tags_by_conn.setdefault(conn_id, []).append({
                "id": tid, "name": name, "address": address, "data_type": data_type, "scale": scale,
                "offset": offset, "deadband": deadband, "report_by_exception": rbe, "role": role,
                "machine_id": machine_id or conn_machine[conn_id], "options": options or {},
                "sampling_interval_ms": sampling})
    out = []
    for conn in conns:
        tags = tags_by_conn.get(conn.id, [])
        machine_ids = {t["machine_id"] for t in tags if t["machine_id"]}
        config, credential_error = _open_config(conn, credentials)
        out.append({
            "id": conn.id, "name": conn.name, "protocol": conn.protocol, "host": conn.host, "port": conn.port,
            "protocol_config": config, "credential_error": credential_error,
            "poll_interval_ms": conn.poll_interval_ms,
            "collector_node": conn.collector_node, "machine_id": conn.machine_id, "tags": tags,
            "machines": {
                mid: {"machine_id": machines[mid].machine_id, "state_code_map": machines[mid].state_code_map,
                      "fault_kinds": fault_kinds.get(mid, {}), "enabled": machines[mid].enabled}
                for mid in machine_ids if mid in machines
            },
        })
    return out


def config_stamp(engine: Engine) -> tuple:
    """A cheap summary of everything load_collector_config reads, for the collectors' timed reload to skip the
    full read (0.3-0.5 s of CPU and up to 4 s of wall at 50,000 tags) when it has not changed: the connections,
    machines and fault codes whole (hundreds of rows), and of the tags one row of aggregates computed by the
    database (counts, newest id, sums of every column read, text columns by length), plus the audit log's newest
    id. Any save through config.store moves it, and so does nearly any edit by hand; one that keeps every sum
    (two tags' addresses swapped by hand) is caught by the manager's periodic full reload."""
    def total(value):
        return func.coalesce(func.sum(value), 0)

    def length(column):
        return total(func.length(cast(column, String)))

    tags = select(func.count(), func.max(Tag.id), total(Tag.connection_id), total(Tag.machine_id),
                  total(case((Tag.enabled.is_(True), Tag.id), else_=0)),
                  total(case((Tag.report_by_exception.is_(True), Tag.id), else_=0)),
                  total(Tag.scale * Tag.id), total(Tag.offset * Tag.id), total(Tag.deadband * Tag.id),
                  total(Tag.sampling_interval_ms), length(Tag.name), length(Tag.address), length(Tag.data_type),
                  length(Tag.role), length(Tag.options))
    with engine.connect() as c:
        return (tuple(c.execute(tags).one()),
                tuple(tuple(r) for r in c.execute(select(Connection).order_by(Connection.id)
                                                  .with_only_columns(*Connection.__table__.c))),
                tuple(tuple(r) for r in c.execute(select(Machine.id, Machine.machine_id, Machine.state_code_map,
                                                         Machine.enabled).order_by(Machine.id))),
                tuple(tuple(r) for r in c.execute(select(MachineFaultCode.machine_id, MachineFaultCode.code,
                                                         MachineFaultCode.kind).order_by(MachineFaultCode.id))),
                c.execute(select(func.max(AuditEntry.id))).scalar())


def seal_stored_secrets(engine: Engine, credentials) -> int:
    """Encrypt the plain-text secrets still stored in connections.protocol_config (a database of an older
    version, or one written without a key). Idempotent: sealed values are left alone. Returns how many
    connections changed."""
    from db import audit
    from keys.credentials import has_plain_secrets, is_sealed

    changed = 0
    with Session(engine) as session, session.begin():
        for conn in session.scalars(select(Connection).order_by(Connection.id)):
            if has_plain_secrets(conn.protocol_config):
                before = dict(conn.protocol_config)
                conn.protocol_config = credentials.seal(conn.protocol_config)
                keys = sorted(k for k, v in conn.protocol_config.items() if is_sealed(v) and not is_sealed(before[k]))
                audit.record(session, audit.SYSTEM, "connection.credentials.encrypt", f"connection {conn.name}",
                             {"protocol_config": before}, {"protocol_config": conn.protocol_config,
                                                           "encrypted": keys})
                changed += 1
    return changed


def fingerprint(connection: dict) -> str:
    """Changes when anything a poller depends on changes, so that a reload restarts only what changed."""
    return hashlib.sha1(json.dumps(connection, sort_keys=True, default=str).encode()).hexdigest()


def close_open_states(engine: Engine, backend: str, machine_ids: list[int]) -> int:
    """At start: intervals left open by a previous run end at the last sample seen of that machine's tags.

    One UPDATE per machine on the open rows: the rows are not loaded and written back through the ORM, whose
    UPDATE would look them up by a start time that does not survive the round trip through a datetime exactly
    (SQLite keeps epoch floats), match nothing and fail the start of the app (StaleDataError).
    """
    table = MachineState.__table__
    closed = 0
    with engine.begin() as conn:
        for mid in machine_ids:
            is_open = (table.c.machine_id == mid) & table.c["end"].is_(None)
            tag_ids = list(conn.execute(select(Tag.id).where(Tag.machine_id == mid)).scalars())
            last = None
            if tag_ids:
                last = conn.execute(select(func.max(samples.c.time)).where(samples.c.tag_id.in_(tag_ids))).scalar()
            if last is not None:
                closed += conn.execute(update(table).where(is_open & (table.c.start <= last))
                                       .values({"end": last})).rowcount
            closed += conn.execute(update(table).where(is_open).values({"end": table.c.start})).rowcount
            # A fault left open ends where the machine's state interval it belonged to ended.
            faults = Fault.__table__
            open_fault = (faults.c.machine_id == mid) & faults.c["end"].is_(None)
            ended = select(func.max(table.c["end"])).where(table.c.machine_id == mid).scalar_subquery()
            conn.execute(update(faults).where(open_fault).values({"end": func.coalesce(ended, faults.c.start)}))
            conn.execute(update(faults).where(open_fault | (faults.c["end"] < faults.c.start))
                         .values({"end": faults.c.start}))
    return closed
