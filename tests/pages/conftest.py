"""What the page tests share: one headless Chromium, and one `python app.py` with the demo plant for the whole
session (starting the plant takes ~20 s; the page modules only read, except /downtime/, which edits reasons of
real stops and compares before and after).

The app frames for one extra origin (FRAMER_ORIGIN) so that the embed tests can show framing allowed there and
refused elsewhere. Screenshots go to OEE_SCREENSHOT_DIR (default data/screenshots, which git ignores).
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.support.browser import make_browser
from tests.support.pgcluster import free_port
from tests.support.plants import demo_plant_without_breaks
from tests.test_app import ROOT, RunningApp

FRAMER_PORT = free_port()
FRAMER_ORIGIN = f"http://127.0.0.1:{FRAMER_PORT}"
SCREENSHOTS = Path(os.environ.get("OEE_SCREENSHOT_DIR", ROOT / "data" / "screenshots"))


@pytest.fixture(scope="session")
def browser():
    b = make_browser()
    yield b
    b.quit()


@pytest.fixture(scope="session")
def demo_app(tmp_path_factory):
    yield from running_demo_app(tmp_path_factory)


def running_demo_app(tmp_path_factory):
    """The demo app the page tests share (a module whose tests need a plant no other test has touched starts its
    own with this)."""
    folder = tmp_path_factory.mktemp("demo")
    # The demo plant without its daily breaks: these tests wait for running machines and unplanned stops.
    app = RunningApp(folder, "--frame-ancestors", f"'self' {FRAMER_ORIGIN}",
                     "--plant-file", str(demo_plant_without_breaks(folder)))
    app.sqlite_path = folder / "data" / "oee.sqlite3"
    try:
        app.wait_healthy(90)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:  # every connection has read a few cycles
            conns = json.loads(app.get("/healthz")[1])["connections"]
            if len(conns) == 16 and all(c.get("cycles", 0) >= 3 for c in conns):
                break
            time.sleep(0.5)
        else:
            raise AssertionError("the demo plant did not start reporting")
        app.started = time.time()
        yield app
    finally:
        app.stop()


def console_errors(browser) -> list[str]:
    """SEVERE browser console entries since the last call (failed requests, exceptions in callbacks)."""
    return [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def screenshot(browser, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height = browser.execute_script("return document.body.scrollHeight")
    width = browser.get_window_size()["width"]
    browser.set_window_size(width, min(max(height + 40, 900), 6000))
    path = SCREENSHOTS / f"{name}.png"
    browser.save_screenshot(str(path))
    browser.set_window_size(width, 900)
    return path


def wait_for(predicate, timeout: float = 20, interval: float = 0.2, message: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as exc:  # the element may be re-rendered between two looks
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {message} (last: {last!r})")


MARGIN_S = 20


def past_range(minutes: int = 10, tz: str = "America/Chicago") -> tuple[str, str]:
    """A custom range that ended at a whole minute at least MARGIN_S ago, in plant time as the URL takes it: by
    then every count row that starts before its end is complete, so a page and the API read the same data (on a
    loaded machine the collectors and the writer can lag; see same_as_api)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    end = (int(time.time() - MARGIN_S) // 60) * 60
    z = ZoneInfo(tz)
    fmt = "%Y-%m-%dT%H:%M"
    return (datetime.fromtimestamp(end - minutes * 60, z).strftime(fmt), datetime.fromtimestamp(end, z).strftime(fmt))


def wait_for_whole_minute_after(t0: float) -> None:
    """Sleep until a whole minute has passed after t0, and MARGIN_S more (see past_range)."""
    target = (int(t0) // 60 + 1) * 60 + MARGIN_S
    if time.time() < target:
        time.sleep(target - time.time())


def same_as_api(read_page, read_api, attempts: int = 3):
    """(page, api) values once they agree. The range has ended, so they must; a disagreement can only come from
    rows of that range still on their way to the database when the page was drawn (a loaded test machine), and
    then the page, drawn again, agrees. Returns the last pair either way; the caller asserts."""
    page = api = None
    for _ in range(attempts):
        page, api = read_page(), read_api()
        if page == api:
            break
        time.sleep(3)
    return page, api


def click(browser, element) -> None:
    """Scroll an element to the middle of the window, then click it (a sticky header or a tooltip can cover it)."""
    from selenium.common.exceptions import ElementClickInterceptedException

    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    time.sleep(0.1)
    try:
        element.click()
    except ElementClickInterceptedException:  # covered by a re-rendering neighbour: click it the DOM's way
        browser.execute_script("arguments[0].click()", element)
