"""SIGTERM stops `python app.py` within 10 s, whatever its PLC drivers are doing.

Regression for "[harden] No request, PLC or database can take the app down" (item A): with a machine whose
EtherNet/IP port answered HTTP, the web process ignored SIGTERM for 60 s and its collector child was killed (a
driver thread spun for ever, and the stop waited for it). Here: saved machines on ports that answer HTTP, say
nothing, or close at once, a connection test in flight in the web process, then SIGTERM.
"""
from __future__ import annotations

import json
import signal
import threading
import time
import urllib.request

from config.demo_plant import sync_demo_plant
from db.store import open_store
from tests.support.listeners import Listener
from tests.test_app import RunningApp

STOP_WITHIN_S = 10.0


def machine_on(port: int, name: str, protocol: str = "ETHERNET_IP") -> dict:
    tags = {"ETHERNET_IP": [{"name": "Count", "address": "ProductionCount", "data_type": "DINT",
                             "role": "counter.total"}],
            "MODBUS": [{"name": "Count", "address": "HR0", "data_type": "UINT32", "role": "counter.total"}]}
    return {"machine_id": name, "name": name, "protocol": protocol, "host": "127.0.0.1", "port": port,
            "area": "Stop area", "line": "Stop line", "protocol_config": {}, "poll_interval_ms": 500,
            "tags": tags[protocol]}


def test_sigterm_stops_the_app_within_10_s_whatever_the_drivers_do(tmp_path):
    listeners = {kind: Listener(kind).start() for kind in ("http", "silent", "close")}
    data = tmp_path / "data"
    store = open_store(f"sqlite:///{data / 'oee.sqlite3'}")
    sync_demo_plant(store.engine, {"name": "Stop site"}, [
        machine_on(listeners["http"].port, "STOP-HTTP"),
        machine_on(listeners["silent"].port, "STOP-SILENT"),
        machine_on(listeners["close"].port, "STOP-CLOSE"),
        machine_on(listeners["silent"].port, "STOP-MB-SILENT", "MODBUS"),
    ], [])
    store.close()
    app = RunningApp(tmp_path, "--no-demo")
    try:
        app.wait_healthy()
        # the collector process has met each of them
        for _ in range(100):
            health = json.loads(app.get("/healthz")[1])
            if len(health["connections"]) == 4 and listeners["http"].accepted and listeners["close"].accepted:
                break
            time.sleep(0.2)
        # a connection test of the HTTP port in flight in the web process (the wizard's)
        token = app.token("engineer")
        body = json.dumps({"protocol": "ETHERNET_IP", "ip_address": "127.0.0.1", "port": listeners["http"].port,
                           "timeout_s": 3}).encode()

        def test_connection():
            req = urllib.request.Request(f"{app.base}/api/plc/test-connection/", data=body, method="POST",
                                         headers={"Authorization": f"Bearer {token}",
                                                  "Content-Type": "application/json"})
            try:
                urllib.request.urlopen(req, timeout=60).read()
            except OSError:
                pass

        threading.Thread(target=test_connection, daemon=True).start()
        time.sleep(1.0)
        started = time.monotonic()
        app.proc.send_signal(signal.SIGTERM)
        try:
            code = app.proc.wait(STOP_WITHIN_S)
        except Exception:
            raise AssertionError(f"the app did not exit within {STOP_WITHIN_S} s of SIGTERM:\n"
                                 + app.output()[-4000:]) from None
        took = time.monotonic() - started
        print(f"SIGTERM to exit: {took:.2f} s, exit code {code}")
        assert code == 0, app.output()[-4000:]
        assert "did not stop within" not in app.output()  # orderly, not the last resort
    finally:
        if app.proc.poll() is None:
            app.proc.kill()
        app.stop()
        for listener in listeners.values():
            listener.stop()
