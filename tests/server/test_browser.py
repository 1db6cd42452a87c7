"""The web page in real headless Chromium (Debian package), driven by Playwright:
upload the example portrait and speech, wait for the video, check that it plays, with the
server's Content-Security-Policy in force (a violation in the console fails the test)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        if os.geteuid() != 0:
            pytest.skip("needs /usr/bin/chromium; run `sudo scripts/install_browser.sh` (apt: chromium chromium-driver)")
        pytest.fail("/usr/bin/chromium is missing; `make test` installs it with scripts/install_browser.sh")
    return CHROMIUM


def wait_until(page, expression: str, seconds: float) -> None:
    """Poll ``expression`` from here: Playwright's wait_for_function evaluates a string in the
    page, which the page's Content-Security-Policy (no 'unsafe-eval') rightly refuses."""
    deadline = time.monotonic() + seconds
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"still false after {seconds} s: {expression}"
        time.sleep(0.1)


@pytest.mark.browser
def test_page_makes_and_plays_a_video(chromium, start_server, portrait_path, speech_path, tmp_path):
    from playwright.sync_api import sync_playwright

    from genhuman.media import load_audio, save_wav

    speech = tmp_path / "speech26.wav"  # the example's first 2.6 s: 65 frames (a short job)
    save_wav(speech, load_audio(speech_path)[:41600])

    server = start_server()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 900, "height": 1250})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(server.url + "/")
        page.on("console", lambda message: errors.append(message.text) if "Content Security Policy" in message.text
                else None)
        page.wait_for_selector("#engine option", state="attached")
        assert page.locator("#engine").input_value() == "lite"
        page.set_input_files("#image", str(portrait_path))
        page.set_input_files("#audio", str(speech))
        page.click("#submit")
        page.wait_for_selector("#video:not([hidden])", timeout=180_000)
        wait_until(page, "document.querySelector('#video').readyState >= 2", 30)
        assert page.locator("#status").inner_text() == "succeeded"
        assert page.locator("#message").inner_text().startswith("65 frames, 512×512, 2.6 s of video")
        duration = page.evaluate("document.querySelector('#video').duration")
        assert 2.4 < duration < 3.0  # the 2.6 s of speech
        page.evaluate("() => { const v = document.querySelector('#video'); v.muted = true; return v.play(); }")
        wait_until(page, "document.querySelector('#video').currentTime > 0.5", 15)
        page.evaluate("() => { const v = document.querySelector('#video'); v.pause(); v.currentTime = 2.0; }")
        wait_until(page, "document.querySelector('#video').readyState >= 2", 10)
        assert page.locator("#download").get_attribute("href").endswith("download=1")
        page.wait_for_selector("#jobs tbody tr .badge.succeeded")  # the recent-jobs list shows it
        shot = tmp_path / "page.png"
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert not errors, errors
    if os.environ.get("GENHUMAN_SCREENSHOT"):  # refresh docs/screenshot.png on request (256 colours: small)
        from PIL import Image

        Image.open(shot).convert("RGB").quantize(256).save(os.environ["GENHUMAN_SCREENSHOT"], optimize=True)
