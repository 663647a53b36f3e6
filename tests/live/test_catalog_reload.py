"""The live service's timed catalog reload reads every machine and tag (0.26 s of CPU at 50,000 tags, every 30 s in
every process): it is skipped while the configuration's stamp stays, and read again when the stamp moves or the
last read is older than CATALOG_FULL_READ_S."""
from __future__ import annotations

from types import SimpleNamespace

from sqlalchemy import update

import live.service as live_service
from db.models import Tag
from db.store import open_store
from live.service import LiveService
from tests.storage.test_collector_config import _plant


def test_the_timed_catalog_reload_reads_only_when_the_configuration_moved(sqlite_url):
    store = open_store(sqlite_url)
    try:
        _plant(store.engine)
        settings = SimpleNamespace(role="collector", ws_heartbeat_s=15.0, ws_stall_timeout_s=10.0)
        service = LiveService(SimpleNamespace(settings=settings, collects=True, store=store))
        assert not service._catalog_unchanged()  # never read
        assert service._load_catalog()
        version = service.catalog.version
        assert service._catalog_unchanged()
        assert service._catalog_unchanged()  # asking twice changes nothing

        with store.engine.begin() as c:  # by hand: the stamp sees the name's length move
            c.execute(update(Tag).where(Tag.id == 30).values(name="Renamed by hand"))
        assert not service._catalog_unchanged()
        assert service._load_catalog() and service.catalog.version == version + 1
        assert service.catalog.tags[30]["name"] == "Renamed by hand"
        assert service._catalog_unchanged()

        # Nothing moved, but the last full read is older than the limit: read anyway.
        service._catalog_read_at -= live_service.CATALOG_FULL_READ_S + 1
        assert not service._catalog_unchanged()
    finally:
        store.close()
