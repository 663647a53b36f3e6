"""The wizard warns when a PLC is already polled by another machine: the same host, port and unit (Modbus), rack
and slot (S7) or slot (EtherNet/IP); an OPC-UA endpoint by its URL (config.store.machines_polling)."""
from __future__ import annotations

import pytest

from config import store as cs
from config.validation import validate_machine
from db.store import open_store


@pytest.fixture
def store(sqlite_url):
    s = open_store(sqlite_url)
    yield s
    s.close()


def _make(store, machine_id, protocol="MODBUS", port=5020, config=None):
    body = {"name": machine_id, "machine_id": machine_id, "protocol": protocol, "ip_address": "127.0.0.1",
            "port": port, "protocol_config": config if config is not None else {"unit_id": 1}}
    return cs.create_machine(store.engine, validate_machine(body))


def test_the_same_modbus_unit_is_found_another_unit_is_not(store):
    first = _make(store, "MB-1")
    assert cs.machines_polling(store.engine, "MODBUS", "127.0.0.1", 5020, {"unit_id": 1}) == ["MB-1"]
    assert cs.machines_polling(store.engine, "MODBUS", "127.0.0.1", 5020, {"unit_id": 2}) == []
    assert cs.machines_polling(store.engine, "MODBUS", "127.0.0.1", 5021, {"unit_id": 1}) == []
    assert cs.machines_polling(store.engine, "MODBUS", "127.0.0.2", 5020, {"unit_id": 1}) == []
    # the machine being edited is not "another machine"
    assert cs.machines_polling(store.engine, "MODBUS", "127.0.0.1", 5020, {"unit_id": 1},
                               except_pk=first["id"]) == []


def test_a_default_port_is_the_same_endpoint_as_the_port_written_out(store):
    _make(store, "MB-502", port=502)
    assert cs.machines_polling(store.engine, "MODBUS", "127.0.0.1", None, {"unit_id": 1}) == ["MB-502"]
