"""components/download.py: the link pages put beside their charts builds export URLs the server answers."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from components.download import DownloadLinkAIO, _follow_filters, export_url
from tests.export.conftest import T0, H, read_csv


def test_export_url_keeps_the_filters_and_drops_the_rest():
    url = export_url("oee", {"machine": "LINE-001", "start": T0, "end": T0 + 7 * 24 * H, "bucket": "hour",
                             "range": "7d", "refresh": "30s", "line": "", "embed": "1"})
    parts = urlsplit(url)
    assert parts.path == "/export/oee.csv"
    assert parse_qs(parts.query) == {"machine": ["LINE-001"], "start": [repr(T0)], "end": [repr(T0 + 7 * 24 * H)],
                                     "bucket": ["hour"], "bom": ["1"]}
    tags = export_url("tags", {"tag": [3, 4], "resolution": "1m"}, bom=None)
    assert tags == "/export/tags.csv?tag=3%2C4&resolution=1m"
    with pytest.raises(ValueError):
        export_url("pdf", {})


def test_the_link_downloads_the_pages_numbers(sqlite_plant):
    client, _, _ = sqlite_plant
    link = DownloadLinkAIO("m1-oee", "oee", {"machine": "M1", "start": T0, "end": T0 + 8 * H, "bucket": "hour"})
    store, button = link.children
    assert button.download == "" and button.id == DownloadLinkAIO.ids.link("m1-oee")
    df = read_csv(client.get(button.href), encoding="utf-8-sig")
    assert len(df) == 8 and df["total_count"].sum() > 0
    # the page changes its filters: the link follows
    href = _follow_filters(DownloadLinkAIO.data("shift-report", {"line": "Line A", "start": T0, "end": T0 + 8 * H}))
    assert href.startswith("/export/shift-report.csv?line=Line+A&")
    assert len(read_csv(client.get(href), encoding="utf-8-sig")) == 6
    assert store.data == DownloadLinkAIO.data("oee", {"machine": "M1", "start": T0, "end": T0 + 8 * H,
                                                      "bucket": "hour"})
