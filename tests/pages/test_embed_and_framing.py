"""Embed mode on every page, and framing only for the origins in --frame-ancestors (Content-Security-Policy)."""
from __future__ import annotations

import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from flask import Flask

from auth.web import install_frame_policy
from processes.settings import SettingsError, parse_frame_ancestors
from tests.pages.conftest import FRAMER_ORIGIN, FRAMER_PORT, console_errors, wait_for
from tests.support.browser import By
from tests.support.pgcluster import free_port

PAGES = ("/", "/machine/LINE-001", "/line/1", "/downtime/", "/reports/", "/plc-monitor/", "/dataflow-monitor/")


def test_every_page_embeds_without_navigation(demo_app, browser):
    console_errors(browser)
    for path in PAGES:
        browser.get(f"http://127.0.0.1:{demo_app.port}{path}?embed=1&range=today&refresh=30")
        wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, ".page-title"), 30, message=path)
        assert not browser.find_element(By.ID, "shell-nav").is_displayed(), path
        for picker in browser.find_elements(By.CSS_SELECTOR, ".range-picker"):
            assert not picker.is_displayed(), path
    assert console_errors(browser) == []


def serve_frame(port: int, src: str) -> ThreadingHTTPServer:
    class Page(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = f'<html><body><iframe id="f" src="{src}" width="1200" height="800"></iframe></body></html>'
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def framed_title(browser, origin: str, timeout: float) -> str | None:
    browser.get(origin + "/")
    browser.switch_to.frame(browser.find_element(By.ID, "f"))
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = browser.find_elements(By.ID, "machine-title-id")
            if found and found[0].text:
                return found[0].text
            time.sleep(0.3)
        return None
    finally:
        browser.switch_to.default_content()


def test_framing_is_allowed_for_the_configured_origin_and_refused_for_others(demo_app, browser):
    with urllib.request.urlopen(f"http://127.0.0.1:{demo_app.port}/machine/LINE-001?embed=1") as resp:
        # the app's own policy (auth/web.py) first, then the frame-ancestors of --frame-ancestors
        assert resp.headers["Content-Security-Policy"].endswith(f"; frame-ancestors 'self' {FRAMER_ORIGIN}")
        assert resp.headers.get("X-Frame-Options") is None  # it cannot name another origin; CSP says it all
    src = f"http://127.0.0.1:{demo_app.port}/machine/LINE-001?embed=1&range=hour"
    allowed = serve_frame(FRAMER_PORT, src)
    other_port = free_port()
    refused = serve_frame(other_port, src)
    try:
        assert framed_title(browser, FRAMER_ORIGIN, 30) == "LINE-001"
        console_errors(browser)
        assert framed_title(browser, f"http://127.0.0.1:{other_port}", 6) is None
        logs = " ".join(console_errors(browser))
        assert "frame-ancestors" in logs or "Refused" in logs or logs == ""  # Chromium says why, when it logs
    finally:
        allowed.shutdown()
        refused.shutdown()


def test_the_frame_policy_setting():
    assert parse_frame_ancestors("'self'") == ("'self'",)
    assert parse_frame_ancestors("self, https://grafana.example.com:3000 http://*.plant.local") == (
        "'self'", "https://grafana.example.com:3000", "http://*.plant.local")
    for bad in ("", "https://grafana.example.com/d/abc", "'none' 'self'", "grafana.example.com;script-src"):
        with pytest.raises(SettingsError) as err:
            parse_frame_ancestors(bad)
        assert "--frame-ancestors [OEE_FRAME_ANCESTORS]" in str(err.value)

    server = Flask(__name__)
    install_frame_policy(server, ("'none'",))

    @server.get("/x")
    def x():
        return "x", 200, {"Content-Security-Policy": "default-src 'self'"}

    resp = server.test_client().get("/x")
    assert resp.headers["Content-Security-Policy"] == "default-src 'self'; frame-ancestors 'none'"
    assert resp.headers["X-Frame-Options"] == "DENY"
