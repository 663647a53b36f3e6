"""The users and tokens pages in real Chromium, end to end: an admin makes a user, the user signs in with the
one-time password, must choose their own, makes an API token (shown once), uses it, and revokes it."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.support.auth import browser_login
from tests.support.browser import By, WebDriverWait, make_browser, wait_text
from tests.test_app import RunningApp


def api_status(app, path: str, token: str) -> int:
    req = urllib.request.Request(app.base + path, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    running = RunningApp(tmp_path_factory.mktemp("accounts"), "--no-demo", "--anonymous-viewing", "off")
    running.wait_healthy()
    yield running
    running.stop()


def test_a_new_user_from_the_users_page_to_a_revoked_token(app):
    browser = make_browser()
    wait = WebDriverWait(browser, 20)
    try:
        browser_login(browser, app.base, app.user("admin"), next_path="/settings/users/")
        wait_text(browser, "h2", "Users")
        browser.find_element(By.ID, "users-name").send_keys("shift-lead")
        browser.find_element(By.CSS_SELECTOR, "#users-role option[value='operator']").click()
        browser.find_element(By.ID, "users-create").click()
        wait.until(lambda b: b.find_elements(By.ID, "users-one-time"))
        one_time = browser.find_element(By.ID, "users-one-time").text
        wait_text(browser, "#users-list", "shift-lead")
        assert one_time not in browser.find_element(By.ID, "users-list").text
        browser.find_element(By.ID, "shell-logout").click()
        wait.until(lambda b: "/login" in b.current_url)

        browser_login(browser, app.base, "shift-lead", one_time, next_path="/account/tokens/")
        wait.until(lambda b: b.find_elements(By.ID, "password-forced"))  # their own password first
        browser.find_element(By.ID, "password-current").send_keys(one_time)
        browser.find_element(By.ID, "password-new").send_keys("shift lead's own")
        browser.find_element(By.ID, "password-repeat").send_keys("shift lead's own")
        browser.find_element(By.ID, "password-submit").click()
        wait_text(browser, "h2", "Your API tokens")
        assert browser.find_element(By.ID, "shell-user").text == "shift-lead · operator"
        browser.find_element(By.ID, "tokens-name").send_keys("andon board")
        browser.find_element(By.ID, "tokens-create").click()
        wait.until(lambda b: b.find_elements(By.ID, "tokens-secret"))
        secret = browser.find_element(By.ID, "tokens-secret").text
        wait_text(browser, "#tokens-list", "andon board")
        assert secret[:12] in browser.find_element(By.ID, "tokens-list").text
        assert secret not in browser.find_element(By.ID, "tokens-list").text
        assert api_status(app, "/api/oee/?site=x", secret) != 401
        assert api_status(app, "/api/plc/machines/", secret) == 403  # an operator's token is an operator
        browser.get(app.base + "/account/tokens/")  # a reload: the secret is gone for good
        wait_text(browser, "#tokens-list", "andon board")
        assert secret not in browser.page_source
        browser.find_element(By.CSS_SELECTOR, "#tokens-list button").click()
        wait_text(browser, "#tokens-list", "revoked")
        assert api_status(app, "/api/oee/?site=x", secret) == 401
        # an operator does not see the users page, nor reach it
        assert not [a for a in browser.find_elements(By.CSS_SELECTOR, "#shell-navbar a") if a.text == "Users"]
        browser.get(app.base + "/settings/users/")
        wait.until(lambda b: b.find_elements(By.ID, "refused"))
        assert "needs the role admin" in browser.find_element(By.ID, "refused").text
        errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"
                  and "/settings/users/" not in e["message"]]
        assert not errors, errors
    finally:
        browser.quit()
    log = app.output()
    assert one_time not in log and secret not in log
    with urllib.request.urlopen(urllib.request.Request(app.base + "/api/auth/tokens/", headers={
            "Authorization": f"Bearer {app.token('admin')}"})) as resp:
        assert secret not in json.dumps(json.load(resp))


def test_an_engineer_makes_an_embed_link_on_its_page_and_a_kiosk_opens_it(app):
    from tests.config.conftest import Client

    api = Client(app.port, app.token("engineer"))
    status, _ = api.post("/api/plc/machines/", {"name": "Kiosk press", "machine_id": "KIOSK-1", "protocol": "MODBUS",
                                                "ip_address": "127.0.0.1", "port": 1, "enabled": False})
    assert status == 201
    browser = make_browser()
    wait = WebDriverWait(browser, 20)
    try:
        browser_login(browser, app.base, app.user("engineer"), next_path="/settings/embed-links/")
        wait_text(browser, "h2", "Embed links")
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#embed-key option[value='KIOSK-1']"))
        browser.find_element(By.CSS_SELECTOR, "#embed-key option[value='KIOSK-1']").click()
        days = browser.find_element(By.ID, "embed-days")
        days.clear()
        days.send_keys("2")
        browser.find_element(By.ID, "embed-make").click()
        wait.until(lambda b: b.find_elements(By.ID, "embed-url"))
        url = browser.find_element(By.ID, "embed-url").text
        assert url.startswith(f"{app.base}/machine/KIOSK-1?embed=1&embed_token=")
        browser.delete_all_cookies()  # the kiosk: nobody signed in, anonymous viewing off
        browser.get(url)
        wait.until(lambda b: b.find_elements(By.ID, "machine-title-id"))
        assert browser.find_element(By.ID, "machine-title-id").text == "KIOSK-1"
        browser.get(app.base + "/machine/KIOSK-1")  # the same page without the link: a login
        wait.until(lambda b: "/login" in b.current_url)
    finally:
        browser.quit()
