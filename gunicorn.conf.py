"""gunicorn settings read from this folder: threads for WebSockets, and a clean stop of each worker's runtime.

Each open WebSocket holds a thread (two with simple-websocket's reader): give --threads room for the sockets plus
the page requests. gunicorn waits up to graceful_timeout for running requests when a worker stops; open sockets
are told to close at once (1001 going away) so that a stop takes a moment, not the whole timeout.
"""
import signal

worker_class = "gthread"
threads = 64
preload_app = False  # each worker starts its own runtime (threads do not survive a fork)
graceful_timeout = 10
# Access log lines (when --access-logfile is given) name the path without its query string (%(U)s, not the request
# line %(r)s): embed links and WebSocket clients carry their tokens as ?embed_token= and ?access_token=.
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(f)s" "%(a)s"'


def _runtime():
    import sys

    module = sys.modules.get("wsgi")
    return getattr(module, "runtime", None)


def post_worker_init(worker):
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum, frame):
        runtime = _runtime()
        if runtime is not None and runtime.live is not None:
            runtime.live.close_clients()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, on_term)


def worker_int(worker):
    runtime = _runtime()
    if runtime is not None and runtime.live is not None:
        runtime.live.close_clients()


def worker_exit(server, worker):
    runtime = _runtime()
    if runtime is not None:
        runtime.stop()
