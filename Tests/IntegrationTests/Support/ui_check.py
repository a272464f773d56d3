"""Drives the dashboard in headless Chromium (Selenium + chromedriver) for
DashboardBrowserTests: signs in through the cookie (changing the generated
first-admin password on the way), waits for the overview's chart to receive
live samples, opens every page and saves a screenshot of each at desktop and phone widths. Fails on any
console error, failed request or CSP violation except the expected ones
(the signed-out session probe's 401, and 404 from routes this server lacks).

Usage: ui_check.py BASE_URL USER PASSWORD NEW_PASSWORD SCREENSHOT_DIR NGINX_PID_FILE
(nginx is reloaded once, which closes every live subscriber: the page must
reconnect and its charts keep moving).
Prints one JSON object per line; the last is {"result": "ok", ...} or
{"result": "fail", "error": ...}; exits 0 only when it is ok."""

import json
import os
import signal
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

base, user, password, new_password, shots, nginx_pid_file = sys.argv[1:7]
os.makedirs(shots, exist_ok=True)

# Console lines that are expected: the probe of /api/auth/me while signed
# out, and the optional pages' routes that later releases add.
EXPECTED = ["/api/auth/me - Failed to load resource: the server responded with a status of 401",
            "/api/services - Failed to load resource: the server responded with a status of 404",
            "/api/alerts - Failed to load resource: the server responded with a status of 404"]


def say(**kw):
    print(json.dumps(kw), flush=True)


opts = Options()
opts.binary_location = "/usr/bin/chromium"
for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
          "--window-size=1280,900", "--disable-extensions", "--no-first-run"]:
    opts.add_argument(a)
opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
problems = []


def check_console(step):
    for entry in driver.get_log("browser"):
        if entry["level"] != "SEVERE" and "Content Security Policy" not in entry["message"]:
            continue
        if any(e in entry["message"] for e in EXPECTED):
            continue
        problems.append({"step": step, "console": entry["message"]})


def wait(seconds, cond, what):
    def attempt(d):
        try:
            return cond(d)
        except (StaleElementReferenceException, IndexError):
            return False  # the page re-rendered under the check: try again
    try:
        return WebDriverWait(driver, seconds, poll_frequency=0.1).until(attempt)
    except TimeoutException:
        raise AssertionError(f"timed out waiting for {what}")


def css(sel):
    return driver.find_elements(By.CSS_SELECTOR, sel)


def shot(name, phone=False):
    driver.save_screenshot(os.path.join(shots, f"{name}.png"))
    if phone:  # the same page at a phone's width
        driver.set_window_size(390, 844)
        driver.save_screenshot(os.path.join(shots, f"{name}-phone.png"))
        driver.set_window_size(1280, 900)


def page(name, ready, what):
    driver.execute_script(f"location.hash = '#/{name}'")
    wait(15, lambda d: ready(), what)
    shot(name, phone=True)
    check_console(name)
    say(step=name, ok=True)


try:
    started = time.time()
    driver.get(base + "/")
    wait(15, lambda d: "/ui/" in d.current_url and css("#login-form"), "the sign-in form at /ui/")
    # First load (signed out): every file the page needs, as the browser
    # fetched them (compressed sizes); the target is under 300 KB.
    loaded = driver.execute_script("""
        const nav = performance.getEntriesByType('navigation')[0];
        const res = performance.getEntriesByType('resource');
        return [nav.transferSize + res.reduce((n, r) => n + r.transferSize, 0), res.length,
                nav.loadEventEnd - nav.startTime];""")
    say(step="redirect", url=driver.current_url, first_load_bytes=loaded[0], files=loaded[1] + 1,
        load_ms=round(loaded[2]))
    if loaded[0] > 300 * 1024:
        raise AssertionError(f"first load transferred {loaded[0]} bytes (target: under 300 KB)")
    shot("login")
    check_console("login")

    css("#username")[0].send_keys(user)
    css("#password")[0].send_keys(password)
    css("#login-form button")[0].click()
    wait(15, lambda d: css("#password-form"), "the change-password form (generated password)")
    css("#current-password")[0].send_keys(password)
    css("#new-password")[0].send_keys(new_password)
    css("#password-form button")[0].click()
    wait(15, lambda d: css("#cpu-chart"), "the overview")
    check_console("sign-in")

    cookies = {c["name"]: c for c in driver.get_cookies()}
    session = cookies.get("cc_session")
    if not session or not session.get("httpOnly"):
        raise AssertionError(f"no HttpOnly cc_session cookie: {cookies}")
    stored = driver.execute_script(
        "return [document.cookie, localStorage.length, sessionStorage.length]")
    if "cc_session" in stored[0] or stored[1] or stored[2]:
        raise AssertionError(f"the session is readable by scripts or stored: {stored}")
    say(step="cookie", http_only=True, same_site=session.get("sameSite"))

    # Live: the CPU chart gains samples from /ws while the page stays open.
    points = lambda: int(css("#cpu-chart")[0].get_attribute("data-points") or 0)
    first = points()
    wait(20, lambda d: points() >= first + 3, "three live samples on the CPU chart")
    live_state = css("#live")[0].get_attribute("data-state")
    if live_state != "live":
        raise AssertionError(f"live indicator says {live_state}")
    redraws_in_order = driver.execute_script(
        "return performance.getEntriesByName('cc-redraw').map(m => Math.round(m.duration * 10) / 10)")
    redraws = sorted(redraws_in_order)
    p95 = redraws[min(len(redraws) - 1, int(len(redraws) * 0.95))]
    if p95 > 50:
        raise AssertionError(f"a live update took {p95:.1f} ms of main-thread time at p95 (limit 50 ms): {redraws}")
    shot("overview", phone=True)
    check_console("overview")
    say(step="overview", points_before=first, points_after=points(), redraws=len(redraws), redraw_ms=redraws_in_order,
        redraw_p95_ms=round(p95, 2))

    # An nginx reload closes every WebSocket (1001): the page reconnects on its own.
    connected = css("#live")[0].get_attribute("title")
    with open(nginx_pid_file) as f:
        os.kill(int(f.read().strip()), signal.SIGHUP)
    before = points()
    wait(20, lambda d: css("#live")[0].get_attribute("title") != connected, "a new connection after an nginx reload")
    wait(20, lambda d: points() >= before + 3 and css("#live")[0].get_attribute("data-state") == "live",
         "live samples again after an nginx reload")
    check_console("reconnect")
    say(step="reconnect", points_before=before, points_after=points())

    page("processes", lambda: len(css("#process-list tbody tr")) > 0, "process rows")
    rows = len(css("#process-list tbody tr"))
    # Sorted by PID, the first row is a process that lives as long as the test (PID 1).
    Select(css("#sort")[0]).select_by_value("pid")
    wait(10, lambda d: css("#process-list tbody tr")[0].get_attribute("data-pid") == "1", "PID 1 first")
    css("#process-list tbody tr")[0].click()
    wait(10, lambda d: css("#process-detail dl"), "the process detail")
    shot("processes-detail")
    css("#process-detail-close")[0].click()
    css("#filter-name")[0].send_keys("no-such-process-name")
    driver.find_element(By.CSS_SELECTOR, "form[role=search] button[type=submit]").click()
    wait(10, lambda d: css("#process-list .empty"), "the empty state for a filter that matches nothing")
    shot("processes-empty")
    check_console("process-detail")
    say(step="process-detail", rows=rows)

    page("network", lambda: "lo" in [td.text for td in css("#interfaces tbody td:first-child")]
         and (css("#connections table") or css("#connections .empty")), "interfaces and connections")
    page("events", lambda: len(css("#event-list tbody tr")) > 0, "events (the sign-in wrote audit events)")
    all_events = len(css("#event-list tbody tr"))
    css("#event-q")[0].send_keys("password changed")
    driver.find_element(By.CSS_SELECTOR, "form[role=search] button[type=submit]").click()
    wait(10, lambda d: 0 < len(css("#event-list tbody tr")) < all_events
         and all("password changed" in td.text for td in css("#event-list tbody td:last-child")), "the search's events")
    check_console("event-search")
    say(step="event-search", all=all_events, found=len(css("#event-list tbody tr")))
    page("users", lambda: any(td.text == user for td in css("#user-list tbody td")), "the admin in the user list")
    # A write through the page: the cookie plus the page's CSRF header.
    css("#new-username")[0].send_keys("ui-viewer")
    css("#new-user-password")[0].send_keys("a-viewer-password-1")
    css("#user-form button")[0].click()
    wait(10, lambda d: any(td.text == "ui-viewer" for td in css("#user-list tbody td")), "the created user in the list")
    check_console("create-user")
    say(step="create-user", ok=True)
    page("services", lambda: css("#services-list table, #services-list .empty"), "services or its empty state")
    page("alerts", lambda: css("#alerts-list table, #alerts-list .empty"), "alerts or its empty state")

    # Dark mode (prefers-color-scheme): the overview, re-rendered with the dark palette.
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia",
                           {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    driver.execute_script("location.hash = '#/overview'")
    first = points()
    wait(20, lambda d: points() >= first + 2, "live samples on the dark overview")
    shot("overview-dark")
    check_console("overview-dark")

    css("#logout")[0].click()
    wait(15, lambda d: css("#login-form"), "the sign-in form after logging out")
    if driver.get_cookie("cc_session"):
        raise AssertionError("cc_session survived logout")
    check_console("logout")

    if problems:
        raise AssertionError(f"console errors: {problems}")
    say(result="ok", seconds=round(time.time() - started, 1), process_rows=rows)
except Exception as e:  # noqa: BLE001 - every failure is reported the same way
    try:
        shot("failure")
        check_console("failure")
    except Exception:
        pass
    say(result="fail", error=str(e), problems=problems)
    sys.exit(1)
finally:
    driver.quit()
