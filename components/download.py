"""A "Download CSV" link for pages: /export/<kind>.csv with the page's current filters.

    from components.download import DownloadLinkAIO, export_url

    # in a layout: the link, with the filters the page opens with
    DownloadLinkAIO("machine-oee", "oee", {"machine": "LINE-001", "start": start, "end": end, "bucket": "hour"})

    # in the page's callback that already resolves its range and scope: keep the link in step
    Output(DownloadLinkAIO.ids.params("machine-oee"), "data")  ->  return DownloadLinkAIO.data("oee", {...})

kind: oee | tags | downtime | shift-report. Parameters are those of the export (api/csv_export.py): machine, line,
area, site, start, end (epoch seconds or ISO 8601), bucket, tag, resolution, the downtime filters (category, reason,
minor, planned, min_duration_s), tz, delimiter, decimal; empty ones are left out. The link asks for a UTF-8 byte
order mark (bom=1) by default, so that Excel opens names like "Füller" correctly; pass bom=None to leave it out.
Behind a proxy the path keeps the app's prefix (dash.get_relative_path).
"""
from __future__ import annotations

import math
from urllib.parse import urlencode

import dash_bootstrap_components as dbc
from dash import MATCH, Input, Output, callback, dcc, get_relative_path, html

KINDS = ("oee", "tags", "downtime", "shift-report")
PARAMS = ("machine", "line", "area", "site", "tag", "start", "end", "bucket", "resolution", "category", "reason",
          "minor", "planned", "min_duration_s", "tz", "delimiter", "decimal", "bom")


def _value(value) -> str | None:
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(round(value, 3)) if math.isfinite(value) else None
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def export_url(kind: str, params: dict | None = None, *, bom: bool | None = True) -> str:
    """/export/<kind>.csv?... from the filters; unknown keys are dropped here rather than refused there."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r}: use one of {', '.join(KINDS)}")
    query = {}
    for key in PARAMS:
        value = _value((params or {}).get(key))
        if value is not None:
            query[key] = value
    if bom and "bom" not in query:
        query["bom"] = "1"
    path = f"/export/{kind}.csv"
    try:
        path = get_relative_path(path)
    except Exception:  # outside a Dash app (tests, scripts): the plain path
        pass
    return path + ("?" + urlencode(query) if query else "")


class DownloadLinkAIO(html.Span):
    """A button-styled link whose href follows a dcc.Store of {"kind", "params"} (see the module's docstring)."""

    class ids:
        link = staticmethod(lambda aio_id: {"component": "DownloadLinkAIO", "subcomponent": "link", "aio_id": aio_id})
        params = staticmethod(
            lambda aio_id: {"component": "DownloadLinkAIO", "subcomponent": "params", "aio_id": aio_id})

    ids = ids

    @staticmethod
    def data(kind: str, params: dict, *, bom: bool | None = True) -> dict:
        return {"kind": kind, "params": dict(params), "bom": bom}

    def __init__(self, aio_id: str, kind: str, params: dict | None = None, label: str = "Download CSV", *,
                 bom: bool | None = True, className: str = "no-print"):
        data = self.data(kind, params or {}, bom=bom)
        super().__init__([
            dcc.Store(id=self.ids.params(aio_id), data=data),
            dbc.Button(label, id=self.ids.link(aio_id), href=export_url(kind, params, bom=bom), external_link=True,
                       download="", color="secondary", outline=True, size="sm",
                       title="The numbers shown here as a spreadsheet (CSV, UTF-8)"),
        ], className=className)


@callback(Output(DownloadLinkAIO.ids.link(MATCH), "href"), Input(DownloadLinkAIO.ids.params(MATCH), "data"))
def _follow_filters(data):
    data = data or {}
    return export_url(data.get("kind", "oee"), data.get("params"), bom=data.get("bom", True))
