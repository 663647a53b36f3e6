"""Every registered page at a desk's width (1600 px) and a phone's (390 px), in Chromium: no horizontal overflow,
no chart whose text labels lie on each other, no visible control taken out of the Tab order, and no serious or
critical accessibility violation (axe-core, the copy bundled with axe-selenium-python).

The pages come from dash.page_registry (read in a child process, as the app builds it), so a page added later is
walked without a change here; a page whose path takes an argument gets a real id of the demo plant
(TEMPLATE_VALUES), and a new argument name fails with a message saying where to add one.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import pytest

from tests.pages.conftest import screenshot
from tests.support.auth import browser_login
from tests.support.browser import make_browser
from tests.test_app import ROOT

WIDTHS = (1600, 390)
HEIGHT = 900
SERIOUS = ("serious", "critical")


def registered_pages() -> list[dict]:
    """dash.page_registry as the app builds it (module, path, path_template, name), from a child process: building
    a Dash app with use_pages in the test process would register every page's callbacks a second time."""
    code = ("import json, dash\n"
            "dash.Dash('pages', use_pages=True, pages_folder='pages')\n"
            "print(json.dumps([{k: p.get(k) for k in ('module', 'path', 'path_template', 'name')}\n"
            "                  for p in dash.page_registry.values()]))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


PAGES = registered_pages()


def _template_values(demo_app) -> dict[str, str]:
    """A real id of the demo plant for each path argument a page takes."""
    from tests.support.auth import SessionClient

    client = SessionClient(demo_app.base, demo_app.user("engineer"))
    status, machines = client.call("GET", "/api/plc/machines/")
    assert status == 200, machines
    status, lines = client.call("GET", "/api/config/lines/")
    assert status == 200, lines
    machines = machines["results"] if isinstance(machines, dict) else machines
    lines = lines["results"] if isinstance(lines, dict) else lines
    # /operator/<target>: a machine (a line's terminal first asks which machine)
    return {"machine_id": str(machines[0]["machine_id"]), "line_id": str(lines[0]["id"]),
            "target": str(machines[0]["machine_id"])}


def page_url(page: dict, values: dict[str, str]) -> str:
    template = page.get("path_template")
    if not template:
        return page["path"]

    def fill(match):
        name = match.group(1)
        assert name in values, (f"page {page['module']} takes <{name}>: add a real value for it to "
                                f"tests/pages/test_every_page._template_values")
        return values[name]

    return re.sub(r"<([^>]+)>", fill, template)


@pytest.fixture(scope="module")
def admin_browser(demo_app):
    """A browser of its own, signed in as an admin (every page open to it); the shared one stays anonymous."""
    b = make_browser(WIDTHS[0], HEIGHT)
    browser_login(b, demo_app.base, demo_app.user("admin"))
    yield b
    b.quit()


@pytest.fixture(scope="module")
def template_values(demo_app):
    return _template_values(demo_app)


SETTLED_JS = """
const content = document.getElementById('_pages_content');
if (document.readyState !== 'complete' || !content || !content.children.length) return false;
if (document.querySelector('[data-dash-is-loading="true"]')) return false;
return [document.documentElement.scrollWidth, document.body.scrollHeight,
        document.querySelectorAll('.js-plotly-plot').length];
"""


def open_settled(browser, url: str, timeout: float = 30) -> None:
    """Open a page and wait until Dash has drawn it: no component loading, and the same size at two looks (a page
    whose intervals refresh parts of it every few seconds is loading now and then in between)."""
    browser.get(url)
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        now = browser.execute_script(SETTLED_JS)
        if now and now == last:
            time.sleep(0.5)  # Plotly lays out its text after the figure arrives
            return
        last = now or last
        time.sleep(0.7)
    raise AssertionError(f"{url} did not settle in {timeout} s")


OVERFLOW_JS = """
const w = window.innerWidth;
if (document.documentElement.scrollWidth <= w) return null;
// The elements where the overflow starts: wider than the window while their parent is not, and not inside a
// container that scrolls on its own.
const out = [];
for (const el of document.body.querySelectorAll('*')) {
  const r = el.getBoundingClientRect();
  if (r.right <= w + 1 || r.width === 0) continue;
  const p = el.parentElement;
  if (p && p.getBoundingClientRect().right > w + 1) continue;
  let scrolled = false;
  for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
    const ox = getComputedStyle(a).overflowX;
    if (ox === 'auto' || ox === 'scroll' || ox === 'hidden') { scrolled = true; break; }
  }
  if (scrolled) continue;
  out.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
           (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\\s+/).join('.') : '') +
           ' right=' + Math.round(r.right));
  if (out.length >= 6) break;
}
return {scrollWidth: document.documentElement.scrollWidth, innerWidth: w, offenders: out};
"""

OVERLAP_JS = """
// Text labels of one chart that lie on each other (more than 2 px both ways); hover labels are not drawn yet.
// Each label is the quadrilateral its own box makes on the screen (getBBox through getScreenCTM), so labels that
// Plotly turned (a time axis at 390 px) are compared as drawn, not by their upright bounding rectangles.
function quad(t) {
  const b = t.getBBox(), m = t.getScreenCTM();
  return [[b.x, b.y], [b.x + b.width, b.y], [b.x + b.width, b.y + b.height], [b.x, b.y + b.height]]
    .map(([x, y]) => [m.a * x + m.c * y + m.e, m.b * x + m.d * y + m.f]);
}
function apart(p, q) {  // separating axis test: some edge's normal on which they overlap by 2 px or less
  for (const poly of [p, q]) for (let i = 0; i < 4; i++) {
    const [x1, y1] = poly[i], [x2, y2] = poly[(i + 1) % 4];
    const len = Math.hypot(x2 - x1, y2 - y1);
    if (len < 1e-6) continue;
    const nx = (y1 - y2) / len, ny = (x2 - x1) / len;
    const pa = p.map(([x, y]) => x * nx + y * ny), qa = q.map(([x, y]) => x * nx + y * ny);
    if (Math.min(Math.max(...pa), Math.max(...qa)) - Math.max(Math.min(...pa), Math.min(...qa)) <= 2) return true;
  }
  return false;
}
const found = [];
document.querySelectorAll('.js-plotly-plot').forEach((plot, n) => {
  const boxes = [];
  plot.querySelectorAll('svg text').forEach(t => {
    const s = (t.textContent || '').trim();
    if (!s || t.closest('.hoverlayer')) return;
    const style = getComputedStyle(t);
    if (style.display === 'none' || style.visibility === 'hidden' || style.opacity === '0') return;
    const r = t.getBoundingClientRect();
    if (r.width < 1 || r.height < 1) return;
    boxes.push({s, q: quad(t)});
  });
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    if (!apart(boxes[i].q, boxes[j].q))
      found.push(`chart ${(plot.parentElement && plot.parentElement.id) || n}: "${boxes[i].s}" on "${boxes[j].s}"`);
  }
});
return found.slice(0, 8);
"""


# Controls taken out of the Tab order (Dash's drop-down button is: the search input before it takes the focus).
UNREACHABLE_JS = """
return [...document.querySelectorAll('a[href], button, input, select, textarea, [role=button], [role=tab]')]
  .filter(e => e.offsetParent !== null && !e.disabled && e.tabIndex < 0 && !e.classList.contains('dash-dropdown')
               && !e.closest('.modebar'))
  .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + ' "' + (e.textContent || '').trim().slice(0, 30) + '"')
  .slice(0, 8);
"""


def layout_problems(browser) -> list[str]:
    problems = []
    overflow = browser.execute_script(OVERFLOW_JS)
    if overflow:
        problems.append(f"horizontal overflow: {overflow['scrollWidth']} px wide in a {overflow['innerWidth']} px "
                        f"window, starting at {overflow['offenders']}")
    problems += [f"overlapping labels: {o}" for o in browser.execute_script(OVERLAP_JS)]
    problems += [f"not reachable by keyboard (tabindex -1): {e}" for e in browser.execute_script(UNREACHABLE_JS)]
    return problems


def axe_problems(browser) -> list[str]:
    from axe_selenium_python import Axe

    axe = Axe(browser)
    axe.inject()
    browser.set_script_timeout(60)
    results = axe.run()
    out = []
    for v in results["violations"]:
        if v.get("impact") not in SERIOUS:
            continue
        targets = [" ".join(map(str, node["target"])) for node in v["nodes"][:4]]
        out.append(f"axe {v['impact']} {v['id']} ({v['help']}): {targets}")
    return out


def _name(page: dict) -> str:
    return page["module"].removeprefix("pages.")


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_page_fits_both_widths_and_is_accessible(demo_app, admin_browser, template_values, page):
    url = demo_app.base + page_url(page, template_values)
    problems = []
    for width in WIDTHS:
        admin_browser.set_window_size(width, HEIGHT)
        open_settled(admin_browser, url)
        found = layout_problems(admin_browser)
        if width == WIDTHS[0]:
            found += axe_problems(admin_browser)
        if found:
            screenshot(admin_browser, f"every-page-{_name(page)}-{width}")
        problems += [f"{width} px: {p}" for p in found]
    admin_browser.set_window_size(WIDTHS[0], HEIGHT)
    assert not problems, f"{url}:\n" + "\n".join(problems)


def test_every_page_is_walked():
    """The walk covers the registry: today's pages are all there (a page that fails to import is not silently
    skipped), and each has a URL."""
    modules = {p["module"] for p in PAGES}
    assert {"pages.overview", "pages.downtime", "pages.reports", "pages.plc_monitor", "pages.machine",
            "pages.line", "pages.machine_config.page"} <= modules
    assert len(PAGES) >= 17


def test_phone_navbar_folds_and_opens_by_keyboard_and_log_in_is_readable(demo_app, browser):
    """An anonymous visitor on a phone: the bar is one line with a menu button; Tab reaches the button, Enter opens
    it, and Tab goes on to every link, "Log in" included, which reads on the dark bar (axe's contrast check)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.set_window_size(390, HEIGHT)
    try:
        open_settled(browser, demo_app.base + "/")
        nav = browser.find_element(By.ID, "shell-navbar")
        assert nav.size["height"] < 80, f"the navbar is {nav.size['height']} px high at 390 px"
        login = browser.find_element(By.ID, "shell-login")
        assert not login.is_displayed()
        toggler = browser.find_element(By.ID, "shell-toggler")
        body = browser.find_element(By.TAG_NAME, "body")
        body.send_keys(Keys.TAB)
        for _ in range(5):
            if browser.switch_to.active_element == toggler:
                break
            browser.switch_to.active_element.send_keys(Keys.TAB)
        assert browser.switch_to.active_element == toggler, "Tab does not reach the menu button"
        toggler.send_keys(Keys.ENTER)
        wait_for_displayed = time.monotonic() + 10
        while not login.is_displayed() and time.monotonic() < wait_for_displayed:
            time.sleep(0.2)
        assert login.is_displayed(), "Enter on the menu button does not open the menu"
        for _ in range(30):
            browser.switch_to.active_element.send_keys(Keys.TAB)
            if browser.switch_to.active_element == login:
                break
        assert browser.switch_to.active_element == login, "Tab does not reach 'Log in'"
        problems = layout_problems(browser) + axe_problems(browser)
        assert not problems, problems
        # Following a link closes the menu again (the bar is not drawn anew when a link navigates in the app).
        downtime = next(a for a in browser.find_elements(By.CSS_SELECTOR, "#shell-collapse a.nav-link")
                        if a.text == "Downtime")
        downtime.send_keys(Keys.ENTER)
        deadline = time.monotonic() + 10
        while login.is_displayed() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "/downtime/" in browser.current_url and not login.is_displayed(), "the menu stays open"
    finally:
        browser.set_window_size(1400, HEIGHT)
