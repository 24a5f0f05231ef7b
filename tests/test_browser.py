"""The search page in Debian's headless Chromium (selenium + the system chromedriver): upload a
clip, see the right first result, play its passage; "not found" and "more like this".

Needs the Debian packages chromium and chromium-driver (`make install` installs them); nothing is
downloaded. Set AUDIO2VEC_SCREENSHOT=FILE.png to save a picture of the page after the first query.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from pathlib import Path

import pytest
import soundfile as sf

from synth import SR, tune

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="needs Debian's chromium and chromium-driver (make install installs them)",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(built_index):
    import uvicorn

    from search_engine import SearchEngine
    from search_engine.service import create_app

    with SearchEngine.open(built_index) as engine:
        port = free_port()
        srv = uvicorn.Server(uvicorn.Config(create_app(engine), host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=srv.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while not srv.started:
            assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/"
        srv.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required", "--mute-audio",
        "--window-size=1280,1000", f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver, what, timeout=60):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: what(d))


def first_row(driver):
    from selenium.webdriver.common.by import By

    rows = driver.find_elements(By.CSS_SELECTOR, "#results tbody tr")
    return rows[0] if rows else None


def test_upload_find_and_play(server, browser, library, engine, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    path, y = list(library.items())[4]
    clip = tmp_path / "from tune four.wav"
    sf.write(clip, y[6 * SR : 9 * SR], SR)
    browser.get(server)
    wait_for(browser, lambda d: "recordings" in d.find_element(By.ID, "index-info").text)
    browser.find_element(By.ID, "clip-input").send_keys(str(clip))
    row = wait_for(browser, lambda d: first_row(d) if first_row(d) and "results for" in d.find_element(By.ID, "status").text else None)
    assert row.find_element(By.CSS_SELECTOR, ".path").text == path
    assert "matched" in row.find_element(By.CSS_SELECTOR, ".found").text
    # the calibrated confidence is shown, as the JSON gives it
    shown = row.find_element(By.CSS_SELECTOR, ".found .confidence").text
    assert re.fullmatch(r"\d{1,3} %", shown), shown
    confidence = engine.query(clip, k=1)[0].confidence
    assert int(shown.split()[0]) == round(100 * confidence)
    verdict = browser.find_element(By.ID, "verdict")
    assert "found" in verdict.get_attribute("class").split() and "Found" in verdict.text
    assert f"confidence {round(100 * confidence)} %" in verdict.text
    # the spectrogram is drawn and the matched region marked
    wait_for(browser, lambda d: d.execute_script("return !document.querySelector('#picture').hidden && !document.querySelector('#region').hidden"))
    if os.environ.get("AUDIO2VEC_SCREENSHOT"):
        browser.save_screenshot(os.environ["AUDIO2VEC_SCREENSHOT"])
    row.find_element(By.CSS_SELECTOR, ".play").click()
    wait_for(browser, lambda d: d.execute_script("return document.querySelector('#player').readyState") >= 2)
    src = browser.execute_script("return document.querySelector('#player').currentSrc")
    from urllib.parse import parse_qs, urlparse

    asked = parse_qs(urlparse(src).query)
    assert urlparse(src).path.endswith("/audio") and float(asked["start"][0]) == pytest.approx(6.0, abs=0.05)
    assert browser.execute_script("return document.querySelector('#player').duration") == pytest.approx(3.0, abs=0.1)
    # keyboard: l = more like this for the selected result
    browser.find_element(By.TAG_NAME, "body").send_keys("l")
    wait_for(browser, lambda d: "· similar ·" in d.find_element(By.ID, "status").text)
    assert first_row(browser).find_element(By.CSS_SELECTOR, ".path").text == path  # itself, at distance 0
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)


def test_not_found_is_said_clearly(server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    clip = tmp_path / "outsider.wav"
    sf.write(clip, tune(4242, 4.0), SR)
    browser.get(server)
    browser.find_element(By.ID, "clip-input").send_keys(str(clip))
    verdict = wait_for(browser, lambda d: d.find_element(By.ID, "verdict") if "results for outsider.wav" in d.find_element(By.ID, "status").text else None)
    assert "not-found" in verdict.get_attribute("class").split() and verdict.text.startswith("Not found")
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"no sound in here" * 10)
    browser.find_element(By.ID, "clip-input").send_keys(str(bad))
    status = wait_for(browser, lambda d: d.find_element(By.ID, "status") if "error" in d.find_element(By.ID, "status").get_attribute("class") else None)
    assert status.text.startswith("broken.wav: ") and browser.find_element(By.ID, "results").get_attribute("hidden")


def test_the_filter_box_narrows_the_search(server, browser, library, tmp_path):
    """The "only" box sends its conditions as ``where`` (the CLI's --where): a bad one is said in
    the status line, a condition no recording passes leaves no result, and one they all pass
    finds the clip's recording again (Enter in the box asks again)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    path, y = list(library.items())[4]
    clip = tmp_path / "filtered.wav"
    sf.write(clip, y[6 * SR : 9 * SR], SR)
    browser.get(server)
    box = browser.find_element(By.ID, "where")
    box.send_keys("colour=red")
    browser.find_element(By.ID, "clip-input").send_keys(str(clip))
    status = wait_for(browser, lambda d: d.find_element(By.ID, "status") if "error" in d.find_element(By.ID, "status").get_attribute("class") else None)
    assert "unknown field 'colour'" in status.text
    box.clear()
    box.send_keys("duration>100000", Keys.ENTER)  # no recording is that long
    wait_for(browser, lambda d: d.find_element(By.ID, "status").text.startswith("0 results for filtered.wav"))
    box.clear()
    box.send_keys("duration>0; channels>=1", Keys.ENTER)
    row = wait_for(browser, lambda d: first_row(d) if re.match(r"[1-9]\d* results for filtered\.wav", d.find_element(By.ID, "status").text) else None)
    assert row.find_element(By.CSS_SELECTOR, ".path").text == path


def test_a_clip_played_fast_says_so_and_plays_the_whole_passage(server, browser, library, tmp_path):
    """10.5 s of a recording played in 10 s (5 % fast, as tape): the verdict says how much faster,
    and the passage played from the recording lasts 10.5 s, not the clip's 10."""
    import soxr
    from selenium.webdriver.common.by import By

    path, y = list(library.items())[5]
    clip = tmp_path / "fast.wav"
    sf.write(clip, soxr.resample(y[6 * SR : int(16.5 * SR)], SR * 1.05, SR), SR)
    browser.get(server)
    browser.find_element(By.ID, "clip-input").send_keys(str(clip))
    row = wait_for(browser, lambda d: first_row(d) if first_row(d) and "results for fast.wav" in d.find_element(By.ID, "status").text else None)
    assert row.find_element(By.CSS_SELECTOR, ".path").text == path
    assert "×1.0" in row.find_element(By.CSS_SELECTOR, ".offset").text
    assert "played 5 % faster" in browser.find_element(By.ID, "verdict").text
    row.find_element(By.CSS_SELECTOR, ".play").click()
    wait_for(browser, lambda d: d.execute_script("return document.querySelector('#player').readyState") >= 2)
    assert browser.execute_script("return document.querySelector('#player').duration") == pytest.approx(10.5, abs=0.2)
