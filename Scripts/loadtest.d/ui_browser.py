"""The browser half of `Scripts/loadtest ui-soak`: keeps the dashboard's
overview open in headless Chromium (Selenium + chromedriver, Debian's
python3-selenium, so it runs under /usr/bin/python3) and samples it.

Usage: ui_browser.py URL USER PASSWORD DURATION_S INTERVAL_S
Prints one JSON object per sample:
  {"t": s since the overview opened, "updates": live updates the page applied
   (the CPU chart's data-updates), "heap_bytes": V8 heap in use after a forced
   collection (the least of three collect-then-read pairs: live messages keep
   arriving between them), "dom_nodes": nodes in the document (elements and
   text), "listeners": JS event listeners (Memory.getDOMCounters)}
and finally {"done": true}, or {"error": "..."} and exit status 1. The user
must not have a password change pending (the page would ask for it first)."""

import json
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

COUNT_NODES = """
const w = document.createTreeWalker(document, NodeFilter.SHOW_ALL);
let n = 0;
while (w.nextNode()) n++;
return n;"""


def say(**kw):
    print(json.dumps(kw), flush=True)


def main():
    url, user, password = sys.argv[1:4]
    duration, interval = float(sys.argv[4]), float(sys.argv[5])
    opts = Options()
    opts.binary_location = "/usr/bin/chromium"
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1280,900", "--disable-extensions", "--no-first-run"]:
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    try:
        css = lambda sel: driver.find_elements(By.CSS_SELECTOR, sel)
        until = lambda s, f, what: WebDriverWait(driver, s, poll_frequency=0.1).until(
            lambda d: f(), message=f"timed out waiting for {what}")
        driver.get(url.rstrip("/") + "/ui/")
        until(15, lambda: css("#login-form"), "the sign-in form")
        css("#username")[0].send_keys(user)
        css("#password")[0].send_keys(password)
        css("#login-form button")[0].click()
        until(15, lambda: css("#cpu-chart") or css("#password-form") or css("#login-form .error"), "the overview")
        if not css("#cpu-chart"):
            raise RuntimeError("sign-in did not reach the overview (wrong password, or a password change is pending)")
        started = time.time()
        while True:
            heap = []
            for _ in range(3):
                driver.execute_cdp_cmd("HeapProfiler.collectGarbage", {})
                heap.append(driver.execute_cdp_cmd("Runtime.getHeapUsage", {})["usedSize"])
            counters = driver.execute_cdp_cmd("Memory.getDOMCounters", {})
            say(t=round(time.time() - started, 2),
                updates=int(css("#cpu-chart")[0].get_attribute("data-updates") or 0),
                heap_bytes=min(heap), dom_nodes=driver.execute_script(COUNT_NODES),
                listeners=counters["jsEventListeners"])
            if time.time() - started >= duration:
                break
            time.sleep(interval)
        say(done=True)
    except Exception as e:  # noqa: BLE001 - reported to the scenario as one line
        say(error=str(e).strip().splitlines()[0] if str(e).strip() else repr(e))
        sys.exit(1)
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
