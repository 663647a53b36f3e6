"""/dataflow-monitor/: is the data getting through? Collector health per connection, the writer, the database.

All of it is the runtime's health (the same document as /healthz and /metrics): what fails now and why (the
problems list), connections (state, poll rate, latency, cycles, skipped cycles, bad tags, last success, failures,
backoff, last error), the writer (queue, spool, drops, rows written), the database backend and, on TimescaleDB,
how the last run of each of our policies went.
"""
from __future__ import annotations

import time

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, callback, dcc, html

from components import context, timerange
from components.format import ago, count, duration, local, plural

dash.register_page(__name__, path="/dataflow-monitor/", name="Data flow", title="OEE · Data flow", order=40)

TICK_MS = 2000
STATE_BADGE = {"connected": "success", "connecting": "info", "failing": "danger", "stopped": "secondary",
               "config_error": "danger"}


def layout(**query):
    query = timerange.normalize(query)
    refresh = timerange.parse_refresh(query.get("refresh"), TICK_MS // 1000)
    embed = timerange.is_embed(query)
    return html.Div([
        html.H2("Data flow", className="page-title"),
        html.Div("PLC → collectors → writer → database: where the data is now, and what is stuck.",
                 className="text-muted mb-3"),
        dcc.Interval(id="dataflow-tick", interval=(refresh or 3600) * 1000, disabled=refresh is None),
        dbc.Row([
            dbc.Col(html.Div(id="dataflow-database"), lg=4, className="mb-3"),
            dbc.Col(html.Div(id="dataflow-writer"), lg=8, className="mb-3"),
        ]),
        html.Div(id="dataflow-connections"),
    ], className="dataflow" + (" embedded" if embed else ""))


def _collector_process(stats: dict | None):
    """The child `python app.py` polls its PLCs in (processes/collector_process.py), if this process started one."""
    if not stats:
        return None
    state = f"process {stats['pid']}" if stats["running"] else "not running"
    restarts = stats.get("restarts") or 0
    return html.Div([f"Collectors: {state}",
                     html.Span(f" · restarted {restarts} time{'s' if restarts != 1 else ''} (exit code "
                               f"{stats.get('last_exit_code')})" if restarts else "",
                               className="text-warning")], className="small", id="dataflow-collector-process")


def _jobs(jobs: dict | None, tz, now: float):
    """Our TimescaleDB policies: the last run of each (they can fail on every run while their work is done)."""
    if not jobs:
        return None
    if not jobs.get("jobs"):
        return html.Div(jobs.get("detail") or "no TimescaleDB jobs", className="text-muted small mt-2",
                        id="dataflow-jobs")
    rows = []
    for j in jobs["jobs"]:
        ok = j.get("last_run_ok")
        badge = dbc.Badge({True: "ok", False: "failed", None: "not run yet"}[ok],
                          color={True: "success", False: "danger", None: "secondary"}[ok])
        last = j.get("last_successful_finish")
        rows.append(html.Tr([html.Td(f"{j['job']} {j['hypertable']}"), html.Td(badge),
                             html.Td(f"{j['total_failures']} / {j['total_runs']}", className="num"),
                             html.Td(f"{local(last, tz, '%H:%M:%S')} ({ago(now - last)})" if last else "never",
                                     className="num"),
                             html.Td(j.get("error") or "", className="small text-danger")]))
    head = html.Thead(html.Tr([html.Th(h) for h in ("TimescaleDB job", "Last run", "Failed / runs",
                                                    "Last success", "Error")]))
    return html.Div([dbc.Table([head, html.Tbody(rows)], size="sm", className="monitor-table mb-0"),
                     html.Div(jobs.get("detail") or "", className="text-muted small")],
                    className="mt-2", id="dataflow-jobs")


def _problems(problems: list[dict]):
    if not problems:
        return None
    return dbc.Alert([html.Strong(f"{len(problems)} problem{'s' if len(problems) != 1 else ''}: "),
                      html.Ul([html.Li([html.Strong(p["component"]), f": {p['error']}"]) for p in problems],
                              className="mb-0")], color="danger", id="dataflow-problems")


def _stat(label: str, value, id_=None, tone: str = "") -> html.Div:
    return html.Div([html.Span(label, className="fact-label"),
                     html.Span(value, className=f"fact-value {tone}", **({"id": id_} if id_ else {}))],
                    className="fact")


@callback(
    Output("dataflow-database", "children"),
    Output("dataflow-writer", "children"),
    Output("dataflow-connections", "children"),
    Input("dataflow-tick", "n_intervals"),
)
def _refresh(_n):
    rt = context.runtime()
    health = rt.health()
    tz = context.tz()
    now = time.time()
    db = health["database"]
    w = health.get("writer")
    ok = bool(db["backend"]) and (w is None or w.get("database_ok", True))
    database = dbc.Card([
        dbc.CardHeader([html.Span("Database"),
                        dbc.Badge("OK" if ok else "DEGRADED", color="success" if ok else "danger", className="ms-2",
                                  id="dataflow-status")]),
        dbc.CardBody([
            html.Div([html.Strong(db["backend"] or "none", id="dataflow-backend"),
                      f" · schema {db['schema_version']}"], className="fs-5"),
            html.Div(db.get("detail") or "", className="text-muted small"),
            html.Div(db.get("url") or "", className="text-muted small text-break"),
            html.Div(f"Role {health['role']} · version {health['version']} · up {duration(health['uptime_s'])}",
                     className="small mt-2"),
            _collector_process(health.get("collector_process")),
            _jobs(health.get("timescaledb_jobs"), tz, now),
        ]),
    ])
    remote = getattr(rt.collectors, "remote", False)
    if w is None:
        writer = dbc.Card([dbc.CardHeader("Writer"), dbc.CardBody(
            "No collector process has reported in the last 10 s: its writer's numbers are unknown."
            if remote else "This process does not collect (role web): the writer runs in the collector processes.",
            id="dataflow-writer-none")])
    else:
        writer = dbc.Card([
            dbc.CardHeader([html.Span("Writer"),
                            dbc.Badge("database reachable" if w.get("database_ok") else "database away: spooling",
                                      color="success" if w.get("database_ok") else "warning", className="ms-2")]),
            dbc.CardBody(html.Div([
                _stat("Queued rows", count(w.get("queue_rows")), "dataflow-queue"),
                _stat("Spooled rows", count(w.get("spooled_rows")), "dataflow-spool",
                      "text-warning" if w.get("spooled_rows") else ""),
                _stat("Spool size", f"{(w.get('spooled_bytes') or 0) / 1e6:,.1f} MB"),
                _stat("Dropped rows", count(w.get("dropped_rows")), "dataflow-drops",
                      "text-danger" if w.get("dropped_rows") else ""),
                _stat("Rows written", count(w.get("written_rows")), "dataflow-written"),
                _stat("Replays skipped", count(w.get("duplicate_batches_skipped"))),
            ], className="facts")),
        ])
    conns = health.get("connections") or []
    if not conns:
        if remote and not rt.collectors.reporting:
            body = dbc.Alert("Waiting for the collector process: none has reported in the last 10 s. "
                             + ("It is starting, or restarting after a failure (the log says why)."
                                if rt.collector_process is not None else
                                "Check that `python app.py --role collector` runs with the same database and "
                                "--live-channel as this process."),
                             color="warning", id="dataflow-no-collector-report")
        elif rt.collectors is None:
            body = dbc.Alert("This process does not collect (role web): see the collector processes' /healthz.",
                             color="info", id="dataflow-no-collectors")
        else:
            body = dbc.Alert(["No connections configured. Add one in the ",
                              dcc.Link("configuration wizard", href=dash.get_relative_path("/machine-config/")), "."],
                             color="info", id="dataflow-no-connections")
        return database, writer, [_problems(health.get("problems")), body]
    rows = []
    for c in sorted(conns, key=lambda c: (c.get("state") != "failing", c.get("name") or "")):
        err = c.get("last_error") or {}
        interval = c.get("poll_interval_ms")
        rate = f"{1000 / interval:.1f}/s" if interval else "—"
        last = c.get("last_success")
        rows.append(html.Tr([
            html.Td(html.Strong(c.get("name") or f"#{c.get('connection_id')}")),
            html.Td(c.get("protocol") or ""),
            html.Td(f"{c.get('host')}:{c.get('port')}" if c.get("host") else ""),
            html.Td(dbc.Badge(c.get("state"), color=STATE_BADGE.get(c.get("state"), "secondary"))),
            html.Td(f"{interval} ms ({rate})" if interval else "—", className="num"),
            html.Td("—" if c.get("latency_ms") is None else f"{c['latency_ms']:.1f} ms", className="num"),
            html.Td(count(c.get("cycles")), className="num"),
            html.Td(count(c.get("skipped_cycles")),
                    className="num" + (" text-warning" if c.get("skipped_cycles") else "")),
            html.Td(f"{c.get('bad_tags', 0)} / {c.get('tags', 0)}" if c.get("tags") is not None else "—",
                    className="num" + (" text-danger" if c.get("bad_tags") else "")),
            html.Td(f"{local(last, tz, '%H:%M:%S')} ({ago(now - last)})" if last else "never", className="num"),
            html.Td(str(c.get("consecutive_failures") or 0), className="num"),
            html.Td("—" if c.get("retry_in_s") is None else f"{c['retry_in_s']:.0f} s", className="num"),
            html.Td((f"{err.get('error')}: " if err.get("error") else "") + (err.get("message") or ""),
                    className="small text-danger"),
        ], className=f"conn-row conn-{c.get('state')}"))
    head = html.Thead(html.Tr([html.Th(h) for h in (
        "Connection", "Protocol", "Address", "State", "Poll", "Latency", "Cycles", "Skipped", "Bad tags",
        "Last success", "Failures", "Retry in", "Last error")]))
    failing = sum(1 for c in conns if c.get("state") in ("failing", "config_error"))
    body = dbc.Card([
        dbc.CardHeader([html.Span(f"Collectors: {plural(len(conns), 'connection')}"),
                        dbc.Badge(f"{failing} failing" if failing else "all reporting",
                                  color="danger" if failing else "success", className="ms-2",
                                  id="dataflow-failing")]),
        dbc.CardBody(dbc.Table([head, html.Tbody(rows)], size="sm", hover=True, responsive=True,
                               className="monitor-table mb-0", id="dataflow-table"), className="p-0"),
    ])
    return database, writer, [_problems(health.get("problems")), body]
