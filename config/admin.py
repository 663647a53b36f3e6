"""Saving and deleting machines as the wizard and the API both do it: validated input to the database in one
transaction, then the collectors of this process told at once (no restart), and, for a delete, the poller stopped
and the writer drained first so that no sample of the machine arrives after its history is gone."""
from __future__ import annotations

import logging

import yaml

from collectors import service
from config import store as cs
from config.fields import ValidationError
from config.plant_file import validate_document
from db.types import MAX_DEPTH, document_problem

log = logging.getLogger(__name__)
# More values than a 5 MiB file can spell out (two bytes each at the least): only aliases expand past it.
MAX_DOCUMENT_VALUES = 3_000_000


def save_machine(runtime, clean: dict, pk: int | None = None) -> dict:
    """Create (pk None) or update a machine from config.validation.validate_machine output. Raises
    ValidationError (nothing saved) or config_store.NotFound. Returns the stored machine."""
    engine, backend = runtime.store.engine, runtime.store.backend_name
    credentials = getattr(runtime, "credentials", None)  # secrets are stored encrypted with it
    if pk is None:
        machine = cs.create_machine(engine, clean, backend=backend, credentials=credentials)
    else:
        machine = cs.update_machine(engine, pk, clean, backend=backend, credentials=credentials)
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
        cs.set_machine_enabled(engine, pk, False, audited=False)  # the delete is the audited change
        service.reload_collectors(runtime)  # the poller stops (after a cycle in progress)
    writer = getattr(runtime, "writer", None)
    if writer is not None and not writer.flush(timeout=10):
        log.warning("deleting machine %s while the writer still holds rows; a few samples may outlive it",
                    was["machine_id"])
    try:
        removed = cs.delete_machine(engine, pk, backend=runtime.store.backend_name)
    except Exception:
        if was["enabled"]:
            cs.set_machine_enabled(engine, pk, True, audited=False)
            service.reload_collectors(runtime)
        raise
    service.reload_collectors(runtime)
    return removed


def import_text(raw: str | bytes, engine, *, backend: str, dry_run: bool = False, credentials=None) -> dict:
    """Parse, validate and (unless dry_run) apply a YAML or JSON document. Raises ValidationError naming the path
    of every error; nothing is written unless all of it is valid. Shared by the API and the transfer page.
    credentials: keys.credentials.Credentials, to store the document's passwords encrypted."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    try:
        doc = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "the file"
        raise ValidationError({where: f"not valid YAML: {getattr(exc, 'problem', None) or exc}"},
                                 "the file is not valid YAML") from None
    except RecursionError:  # PyYAML builds nested collections recursively
        raise ValidationError({"": f"nested more than {MAX_DEPTH} levels deep; send a flatter document"},
                              "the file is nested too deeply") from None
    if doc is None:
        raise ValidationError({"": "the file is empty"})
    found = document_problem(doc, root="", max_values=MAX_DOCUMENT_VALUES)
    if found:  # NUL (PostgreSQL refuses it), lone surrogates, aliases that expand without end: before any check
        raise ValidationError({found[0]: found[1]})
    clean = validate_document(doc, **cs.import_context(engine))
    summary = None if dry_run else cs.import_document(engine, clean, backend=backend, credentials=credentials)
    counts = {k: len(clean[k]) for k in ("sites", "products", "reason_codes", "calendars", "machines")}
    return {"valid": True, "applied": not dry_run, "document": counts, "summary": summary}
