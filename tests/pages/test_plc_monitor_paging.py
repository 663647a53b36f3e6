"""/plc-monitor/ with 20,000 tags: the table is one page of PAGE_SIZE rows with a pager (it was every tag in one
table, 44,498 px at 1,424 tags), filters still search every tag, and the page's payload is measured: the catalog of
every tag still comes with the page (the filters run in the browser), so it grows with the tags; this test pins
how much per tag."""
from __future__ import annotations

from sqlalchemy import insert
from sqlalchemy.orm import Session

from db.models import Connection, Machine, Tag

from tests.pages.conftest import click, wait_for
from tests.support.browser import By
from tests.test_app import RunningApp

MACHINES, TAGS_EACH = 20, 1000
PAGE_SIZE = 100  # pages/plc_monitor.PAGE_SIZE (a page module imports only inside a Dash app)
BYTES_PER_TAG = 100  # measured 63 (one list per tag, machine names once); 169 when each tag was an object


def _plant_of_20000_tags(engine) -> None:
    """20 machines of 1,000 tags each, their connections disabled (nothing to poll: the page is what is measured)."""
    with Session(engine) as s, s.begin():
        for m in range(MACHINES):
            machine = Machine(machine_id=f"BIG-{m:02d}", name=f"Big machine {m}", enabled=False)
            s.add(machine)
            s.flush()
            conn = Connection(name=f"BIG-{m:02d}", machine_id=machine.id, protocol="MODBUS", host="127.0.0.1",
                              port=1, protocol_config={"unit_id": 1}, enabled=False)
            s.add(conn)
            s.flush()
            s.execute(insert(Tag), [{"connection_id": conn.id, "machine_id": machine.id, "name": f"Reg{i:04d}",
                                     "address": f"HR{i}", "data_type": "UINT16", "role": None}
                                    for i in range(TAGS_EACH)])


def test_twenty_thousand_tags_are_paged(tmp_path, browser):
    app = RunningApp(tmp_path, "--no-demo")
    try:
        app.wait_healthy()
        _plant_of_20000_tags(app.engine())
        browser.execute_script("performance.clearResourceTimings(); performance.setResourceTimingBufferSize(10000);")
        browser.get(app.base + "/plc-monitor/")
        wait_for(lambda: browser.find_element(By.ID, "plc-count").text.startswith("20,000"), 60, message="the count")
        rows = browser.find_elements(By.CSS_SELECTOR, "#plc-rows tbody tr")
        assert len(rows) == PAGE_SIZE
        assert browser.find_element(By.ID, "plc-rows-shown").text == "Tags 1–100 of 20,000"
        height = browser.execute_script("return document.getElementById('plc-rows').offsetHeight")
        assert height < 5000, height

        click(browser, browser.find_element(By.ID, "plc-next"))
        wait_for(lambda: browser.find_element(By.ID, "plc-rows-shown").text == "Tags 101–200 of 20,000",
                 message="the next page")
        assert browser.find_elements(By.CSS_SELECTOR, "#plc-rows tbody tr td")[1].text == "Reg0100"

        # The filter searches all 20,000 and starts again at the first page.
        browser.find_element(By.ID, "plc-filter").send_keys("BIG-17 Reg09")
        wait_for(lambda: browser.find_element(By.ID, "plc-rows-shown").text == "Tags 1–100 of 100",
                 message="the filtered tags")
        assert not browser.find_element(By.ID, "plc-next").is_displayed()  # one page: no page buttons

        payload = browser.execute_script(
            "return Math.max(0, ...performance.getEntriesByType('resource')"
            ".filter(e => e.name.includes('_dash-update-component')).map(e => e.decodedBodySize))")
        print(f"\nplc-monitor with {MACHINES * TAGS_EACH:,} tags: largest callback response {payload:,} bytes "
              f"({payload / (MACHINES * TAGS_EACH):.0f} per tag), {len(rows)} rows drawn")
        assert 0 < payload < BYTES_PER_TAG * MACHINES * TAGS_EACH, payload
    finally:
        app.stop()
