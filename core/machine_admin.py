"""Saving and deleting machines as the wizard and the API both do it: validated input to the database in one
transaction, then the collectors of this process told at once (no restart), and, for a delete, the poller stopped
and the writer drained first so that no sample of the machine arrives after its history is gone."""
from __future__ import annotations

import logging

from collectors import service
from db import config_store as cs

log = logging.getLogger(__name__)


def save_machine(runtime, clean: dict, pk: int | None = None) -> dict:
    """Create (pk None) or update a machine from core.machine_config.validate_machine output. Raises
    ValidationError (nothing saved) or config_store.NotFound. Returns the stored machine."""
    engine, backend = runtime.store.engine, runtime.store.backend_name
    if pk is None:
        machine = cs.create_machine(engine, clean, backend=backend)
    else:
        machine = cs.update_machine(engine, pk, clean, backend=backend)
    service.reload_collectors(runtime)
    return machine


def set_enabled(runtime, pk: int, enabled: bool) -> dict:
    machine = cs.set_machine_enabled(runtime.store.engine, pk, enabled)
    service.reload_collectors(runtime)
    return machine


def delete_machine(runtime, pk: int) -> dict:
    """Stop polling the machine, write what its poller already read, then delete it with its tags and history in
    one transaction. Returns what was removed (config_store.deletion_impact)."""
    engine = runtime.store.engine
    was = cs.get_machine(engine, pk)
    if was["enabled"]:
        cs.set_machine_enabled(engine, pk, False)
        service.reload_collectors(runtime)  # the poller stops (after a cycle in progress)
    writer = getattr(runtime, "writer", None)
    if writer is not None and not writer.flush(timeout=10):
        log.warning("deleting machine %s while the writer still holds rows; a few samples may outlive it",
                    was["machine_id"])
    try:
        removed = cs.delete_machine(engine, pk, backend=runtime.store.backend_name)
    except Exception:
        if was["enabled"]:
            cs.set_machine_enabled(engine, pk, True)
            service.reload_collectors(runtime)
        raise
    service.reload_collectors(runtime)
    return removed
