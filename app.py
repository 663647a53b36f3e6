"""OEE analytics: the composition root.

`python app.py` opens the database (SQLite under ./data/ unless told otherwise), starts the writer, the scheduler,
the simulated plant (unless --no-demo) and the collectors, and serves the Dash pages, /healthz and the WebSocket
on http://127.0.0.1:8050. `python app.py --help` lists the options; each has an OEE_* environment variable.
"""
from __future__ import annotations

import sys

if __name__ == "__main__":
    # The demo's simulated plant needs seconds to start its servers: let it start now, while the imports below
    # take theirs (processes/plant_process.py imports only the standard library and the plant's layout reader).
    from processes.plant_process import launch_early

    launch_early(sys.argv[1:])

import logging  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402

import dash
from dash import _callback as dash_callbacks
from flask import Flask

import api
from api.csv_export import register as register_exports
from api.health import register_routes
from auth.web import install as install_auth
from components.shell import shell_layout
from db.engine import DatabaseConfigError
from db.migrate import SchemaTooNewError
from live.websocket import install as install_websockets
from processes.runtime import Runtime
from processes.settings import Settings, SettingsError, from_args

log = logging.getLogger("oee")
# SIGTERM to exit, whatever the PLCs and the database do (docker stop and systemd kill after 10 s / 90 s). The stop
# is orderly and bounded (each driver call aborted, the collector process given 7 s); past this, exit anyway.
STOP_DEADLINE_S = 9.0
CHILD_STOP_DEADLINE_S = 6.0  # the collector process: its parent waits 7 s for it (processes/collector_process.py)


def create_app(runtime: Runtime) -> dash.Dash:
    server = Flask(__name__)
    server.extensions["oee"] = runtime
    app = dash.Dash(
        __name__,
        server=server,
        use_pages=True,
        pages_folder="pages",
        external_stylesheets=[],  # Bootstrap is served from assets/: plant networks are often offline
        suppress_callback_exceptions=True,
        title="OEE",
        update_title=None,
        add_log_handler=False,  # its lines go through the app's own handler (and format), once
    )
    app.index_string = app.index_string.replace("<html>", '<html lang="en">', 1)  # screen readers pick the voice
    app.layout = shell_layout
    _share_page_callbacks(app)
    install_auth(app, runtime)  # first: its before_request decides every request (auth/rules.py)
    register_routes(server, runtime)
    install_websockets(server, runtime)
    api.register(server)
    register_exports(server)
    return app


_PAGE_CALLBACKS: tuple[dict, list] | None = None


def _share_page_callbacks(app: dash.Dash) -> None:
    """Dash moves the callbacks registered with dash.callback (all of ours, when the pages are imported, once per
    process) into the first app that serves a request, and empties its global registry. A process that builds
    several apps (the tests, tools) gives each the same set as it starts serving; a gunicorn worker builds one."""
    global _PAGE_CALLBACKS
    if _PAGE_CALLBACKS is None:
        _PAGE_CALLBACKS = (dict(dash_callbacks.GLOBAL_CALLBACK_MAP), list(dash_callbacks.GLOBAL_CALLBACK_LIST))
    saved_map, saved_list = _PAGE_CALLBACKS

    def refill() -> None:
        if not app._got_first_request["setup_server"]:
            dash_callbacks.GLOBAL_CALLBACK_MAP.clear()
            dash_callbacks.GLOBAL_CALLBACK_MAP.update(saved_map)
            dash_callbacks.GLOBAL_CALLBACK_LIST[:] = saved_list

    app.server.before_request_funcs.setdefault(None, []).insert(0, refill)  # before Dash's own set-up


def configure_logging(level: str, fmt: str = "text", role: str = "all") -> None:
    """Text (default) or one JSON object a line (--log-format json): processes/logs.py."""
    from processes import logs

    logs.configure(level, fmt, role)


def start_runtime(settings: Settings, argv: list[str] | None = None) -> Runtime:
    """Start everything but the web server; exits with one clear line when the database cannot be used."""
    runtime = Runtime(settings, collector_argv=argv)
    try:
        runtime.start()
    except (DatabaseConfigError, SchemaTooNewError, RuntimeError) as exc:
        runtime.stop()
        if settings.log_format == "json":
            log.error("error: %s", exc)
        else:
            print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    return runtime


def first_start(runtime: Runtime) -> None:
    """No users yet: make 'admin' with a one-time password and print it once, to stdout only (never the log)."""
    from auth.users import FIRST_ADMIN, ensure_first_admin

    password = ensure_first_admin(runtime.store.engine)
    if password:
        s = runtime.settings
        print(f"\nFirst start: created the user {FIRST_ADMIN!r} with the one-time password {password}\n"
              f"Log in at http://{s.host}:{s.port}/login and choose your own; this is shown only once "
              "(`python app.py create-admin --username NAME` makes another admin).\n", flush=True)


def stop_when_parent_goes() -> None:
    """The collector process of `python app.py`: its parent holds our standard input; when it closes (the parent
    stopped us, or died however it died) stop as on SIGTERM."""
    def watch() -> None:
        while sys.stdin.buffer.read(4096):
            pass
        # To the main thread itself: os.kill() may deliver the signal to this thread, and then the main thread
        # sleeps on in signal.pause() (seen under load: the collector process did not stop until killed).
        signal.pthread_kill(threading.main_thread().ident, signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def exit_on_sigterm(deadline_s: float) -> None:
    """SIGTERM ends the main loop (SystemExit, so that `finally` stops the runtime in order); a stop that has not
    ended deadline_s later ends the process anyway, saying which threads held it. A second SIGTERM changes
    nothing."""
    def force_exit() -> None:
        stuck = sorted(t.name for t in threading.enumerate()
                       if t is not threading.current_thread() and t.is_alive() and not t.daemon)
        log.error("did not stop within %.0f s of SIGTERM (still running: %s); exiting now", deadline_s,
                  ", ".join(stuck) or "daemon threads only")
        logging.shutdown()
        os._exit(1)

    def on_sigterm(*_):
        if getattr(on_sigterm, "stopping", False):
            return
        on_sigterm.stopping = True
        timer = threading.Timer(deadline_s, force_exit)
        timer.name = "stop-deadline"
        timer.daemon = True
        timer.start()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_sigterm)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["grafana-role"]:  # python app.py grafana-role --password ...: see commands/grafana.py
        from commands.grafana import main as grafana_role

        sys.exit(grafana_role(argv[1:]))
    if argv[:1] == ["oee-summary"]:  # python app.py oee-summary --days 90: see commands/grafana.py
        from commands.grafana import summary_main

        sys.exit(summary_main(argv[1:]))
    if argv[:1] == ["create-admin"]:  # python app.py create-admin --username NAME: see commands/create_admin.py
        from commands.create_admin import create_admin

        sys.exit(create_admin(argv[1:]))
    try:
        settings = from_args(argv)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    configure_logging(settings.log_level, settings.log_format, settings.role)
    runtime = start_runtime(settings, argv)
    runtime.tune_garbage_collector()
    exit_on_sigterm(CHILD_STOP_DEADLINE_S if os.environ.get("OEE_STOP_ON_STDIN_EOF") == "1" else STOP_DEADLINE_S)
    if os.environ.get("OEE_STOP_ON_STDIN_EOF") == "1":
        # Ctrl+C in a terminal reaches the whole process group: the parent stops us (standard input) once it has
        # stopped serving, rather than us vanishing first and being reported as a crash.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop_when_parent_goes()
    try:
        if settings.role == "collector":
            if settings.metrics_port:
                from processes.collector_http import CollectorHttp

                try:
                    CollectorHttp(runtime, settings.host, settings.metrics_port).start()
                except OSError as exc:
                    print(f"error: --metrics-port [OEE_METRICS_PORT]: cannot listen on {settings.host}:"
                          f"{settings.metrics_port}: {exc.strerror or exc}; choose a free port", file=sys.stderr)
                    sys.exit(2)
            if os.environ.get("OEE_STOP_ON_STDIN_EOF") != "1":
                log.info("collector role: no web pages; Ctrl+C to stop")
            signal.pause()
        else:
            first_start(runtime)
            app = create_app(runtime)
            if settings.log_format == "json":  # standard output and error carry nothing but the log's lines
                import flask.cli

                flask.cli.show_server_banner = lambda *_args, **_kwargs: None
            log.info("serving on http://%s:%d/", settings.host, settings.port)
            app.run(host=settings.host, port=settings.port, debug=False, threaded=True)
    except KeyboardInterrupt:
        pass
    finally:
        runtime.stop()


if __name__ == "__main__":
    main()
