"""WSGI entry point: `gunicorn -w 2 --threads 64 -b 127.0.0.1:8050 wsgi:application`.

Settings come from the OEE_* environment variables (`python app.py --help` lists them); the role defaults to `web`,
so that N workers do not each start collectors and a simulated plant: run those as `python app.py --role collector`
beside gunicorn. Live updates reach every worker over PostgreSQL LISTEN/NOTIFY (or Redis with OEE_REDIS_URL).
Each worker is a process with its own runtime; do not use gunicorn's --preload (threads do not survive a fork).
gunicorn.conf.py, read by gunicorn from this folder, closes the WebSockets when a worker is told to stop.
"""
from __future__ import annotations

import os

from app import configure_logging, create_app, first_start, start_runtime
from processes.settings import SettingsError, from_args

os.environ.setdefault("OEE_ROLE", "web")
try:
    settings = from_args([])  # the environment only: gunicorn's command line is not ours
except SettingsError as exc:
    raise RuntimeError(str(exc)) from None
configure_logging(settings.log_level, settings.log_format, settings.role)
try:
    runtime = start_runtime(settings)
except SystemExit:
    # start_runtime printed the one-line reason; a RuntimeError makes gunicorn stop ("Worker failed to boot")
    # instead of starting the worker again and again.
    raise RuntimeError("cannot start the app: see the error above") from None
first_start(runtime)  # the first worker to get there makes the first admin; the others see it
app = create_app(runtime)
runtime.tune_garbage_collector()  # as app.py does: fewer collections, the started heap frozen out of their sight
application = app.server
