"""The /live page in real headless Chromium against a real live server: Chromium's fake
microphone plays a Piper question ("what is the capital of France"), pocketsphinx hears it,
a scripted language model answers, and the page must show the transcript and the answer,
receive moving video while the avatar speaks and audible sound, with the page's
Content-Security-Policy in force (a violation or a script error fails the test).

``GENHUMAN_LIVE_SCREENSHOTS=docs/img`` also saves live_desktop.png (1100 px) and
live_390.png (390 px) taken while the avatar answers."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests.server import test_browser

pytestmark = [pytest.mark.browser, pytest.mark.slow]

chromium = test_browser.chromium  # the page test's fixture: skip without Chromium, fail under make test

ANSWER = "The capital of France is Paris. It is a lovely city on the river Seine."  # two sentences: ~4 s
FAKE_MEDIA_ARGS = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                   "--autoplay-policy=no-user-gesture-required"]


def question_wav(path: Path) -> Path:
    """Piper's "What is the capital of France?" at 48 kHz mono: 1 s of silence before, 3 s after."""
    from genhuman.media import load_audio, save_wav
    from genhuman.speech.tts import synthesize_to_file

    spoken = load_audio(synthesize_to_file("What is the capital of France?", path.with_suffix(".22k.wav")),
                        sample_rate=48000)
    silence = np.zeros(48000, np.float32)
    save_wav(path, np.concatenate([silence, spoken, silence, silence, silence]), sample_rate=48000)
    return path


def live_state(page) -> dict:
    return page.evaluate("() => JSON.parse(JSON.stringify(window.genhumanLive))")


def wait_live(page, condition: str, seconds: float) -> None:
    """Wait for ``condition`` on ``live`` (window.genhumanLive); a timeout shows the page's state."""
    try:
        test_browser.wait_until(page, f"(live => {condition})(window.genhumanLive)", seconds)
    except AssertionError:
        raise AssertionError(f"still false after {seconds} s: {condition}; the page: {live_state(page)}") from None


def page_problems(page) -> list[str]:
    """Script errors, failed requests and CSP violations from now on (the console says only
    "Failed to load resource" for an HTTP error: the responses name the URL)."""
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
    page.on("console", lambda message: problems.append(f"{message.type}: {message.text}")
            if (message.type == "error" and "Failed to load resource" not in message.text)
            or "Content Security Policy" in message.text else None)
    page.on("response", lambda response: problems.append(f"{response.status} {response.request.method} {response.url}")
            if response.status >= 400 else None)
    return problems


def save_screenshots(page, folder: str) -> None:
    from PIL import Image

    shots = [Path(folder) / "live_desktop.png", Path(folder) / "live_390.png"]
    for width, shot in zip((1100, 390), shots):  # both while the avatar still speaks
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(150)  # one layout pass and a fresh video frame
        page.screenshot(path=str(shot), full_page=True)
    page.set_viewport_size({"width": 1100, "height": 900})
    for shot in shots:
        Image.open(shot).convert("RGB").quantize(256).save(shot, optimize=True)  # 256 colours: small


def test_live_page_hears_a_question_and_shows_the_spoken_answer(chromium, live_server, tmp_path):
    from playwright.sync_api import sync_playwright

    from genhuman.live.asr import SphinxRecognizer
    from genhuman.live.llm import ScriptedLLM

    wav = question_wav(tmp_path / "question.wav")
    recognizer = SphinxRecognizer()
    recognizer.load()
    server = live_server(llm=ScriptedLLM(ANSWER), recognizer=recognizer)
    server.live.avatar(server.live.default_portrait)  # prepared before the microphone starts playing

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), headless=True,
                                    args=[*test_browser.CHROMIUM_ARGS, *FAKE_MEDIA_ARGS,
                                          f"--use-file-for-fake-audio-capture={wav}%noloop"])
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        problems = page_problems(page)
        page.goto(server.url + "/live?portrait=astronaut")
        page.wait_for_selector("#portrait option", state="attached")
        assert page.locator("#portrait").input_value() == "astronaut"
        page.click("#start")
        wait_live(page, "live.connected", 10)
        wait_live(page, "live.states.includes('speaking') && live.answers.length > 0", 20)
        if os.environ.get("GENHUMAN_LIVE_SCREENSHOTS"):
            save_screenshots(page, os.environ["GENHUMAN_LIVE_SCREENSHOTS"])
        wait_live(page, "live.latencies.length > 0", 15)
        wait_live(page, "live.state === 'listening'", 10)
        live = live_state(page)
        page_state_badge = page.locator("#state").inner_text()
        log = page.locator("#log").inner_text()
        latency_row = page.locator("#latency tbody tr").first.inner_text()
        wide = []
        for width in (1100, 390):  # no horizontal scrolling on a desktop or a phone
            page.set_viewport_size({"width": width, "height": 900})
            page.wait_for_timeout(100)
            wide += page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        page.click("#stop")
        wait_live(page, "live.state === 'idle'", 5)
        browser.close()

    assert not problems, problems
    assert live["errors"] == []
    assert live["micAvailable"] and not live["audioBlocked"]
    heard = live["transcripts"][0]
    assert {"what", "capital", "france"} & set(heard.split()), live["transcripts"]  # pocketsphinx: roughly
    assert live["partials"], "no partial hypothesis while the question was spoken"
    assert live["answers"] == [ANSWER]
    assert heard.lower() in log.lower() and ANSWER in log
    states = live["states"]
    assert "hearing" in states and states.index("hearing") < states.index("speaking"), states  # the badge followed
    assert page_state_badge == "listening"
    assert live["framesReceived"] > 50  # 25 fps over the seconds of the conversation
    assert live["videoChangesSpeaking"] > 0  # the picture moves while it answers
    assert live["audioLevelMax"] > 0.01 and live["audioEnergy"] > 0  # the answer is heard, not silence
    turn = live["latencies"][0]
    assert turn["turn"] == 1 and turn["speech_end_to_audio_ms"] > 0
    assert latency_row.split()[0] == "1" and str(int(turn["speech_end_to_audio_ms"] + 0.5)) in latency_row  # Math.round
    assert wide == [1100, 1100, 390, 390], wide
