"""Regression: a restart on an existing database crashed in close_open_states with StaleDataError on SQLite.

The open intervals were loaded and written back through the ORM, whose UPDATE looked each row up by a start time
that had been through a datetime and no longer equalled the stored epoch float, so it matched nothing.
"""
from __future__ import annotations

from sqlalchemy import text

from db import backend as backends
from db.collector_config import close_open_states
from db.store import open_store


def test_open_states_close_at_the_last_sample_after_a_restart(any_url):
    store = open_store(any_url)
    name = store.backend_name
    try:
        t0 = 1795840509.8543274  # a start with digits a datetime cannot hold exactly as a float
        with store.engine.begin() as conn:
            conn.execute(text("INSERT INTO sites (id, name, timezone) VALUES (1, 'S', 'UTC')"))
            conn.execute(text("INSERT INTO machines (id, machine_id, name, description, enabled) "
                              "VALUES (1, 'M-1', 'M', '', true), (2, 'M-2', 'N', '', true)"))
            conn.execute(text("INSERT INTO connections (id, name, machine_id, protocol, host, port, protocol_config, "
                              "poll_interval_ms, enabled) VALUES (1, 'C', 1, 'MODBUS', '127.0.0.1', 502, '{}', 1000, "
                              "true)"))
            conn.execute(text("INSERT INTO tags (id, connection_id, machine_id, name, address, data_type, scale, "
                              "\"offset\", deadband, report_by_exception, enabled) VALUES (1, 1, 1, 'Run', '1', "
                              "'BOOL', 1, 0, 0, false, true)"))
            conn.execute(text("INSERT INTO samples (time, tag_id, value, quality) VALUES (:t, 1, 1, 0)"),
                         {"t": backends.db_time(name, t0 + 42.123457)})
            for mid, start in ((1, t0), (2, t0 + 1.000001)):
                conn.execute(text('INSERT INTO machine_states (machine_id, start, "end", state) '
                                  "VALUES (:m, :s, NULL, 'running')"), {"m": mid, "s": backends.db_time(name, start)})
        assert close_open_states(store.engine, name, [1, 2]) == 2
        with store.engine.connect() as conn:
            rows = {m: (backends.epoch_of(s), backends.epoch_of(e)) for m, s, e in conn.execute(text(
                'SELECT machine_id, start, "end" FROM machine_states'))}
        assert abs(rows[1][1] - (t0 + 42.123457)) < 1e-3  # machine 1: at its last sample
        assert rows[2][1] == rows[2][0]  # machine 2 has no samples: the interval ends where it began
        assert close_open_states(store.engine, name, [1, 2]) == 0
    finally:
        store.close()
