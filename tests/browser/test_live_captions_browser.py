"""Live captions in a real browser: Debian's headless Chromium with a fake microphone playing a
real two-speaker call, against a real server with the bundled base model. The page mints a
client secret with the typed key, streams the microphone over `/v1/realtime`, and the call's
words must appear on it; the finished transcript downloads as txt/srt/vtt.

The screenshot is kept in `test-artifacts/` (git-ignored) for a person to look at.
"""

from __future__ import annotations

import json
import re
import wave
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import srt
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.audio import DATA
from tests.browser.test_web_page_browser import (
    CHROMEDRIVER,
    CHROMIUM,
    FLAGS,
    csp_violations,
    downloaded,
    open_page,
    screenshot,
)
from tests.realtime_client import pcm16
from tests.server import ServerProcess, live_env, serving
from tests.wer import normalized_wer

pytestmark = pytest.mark.slow

KEY = "sk-live-browser"
CALL = DATA / "conv2.flac"
CAPTIONS_SECONDS = 600  # a 30-s call at real speed, decoded live on a busy 2-core machine
WAV_RATE = 16_000
# Counts the moments a grey draft is on show (they are replaced as their turn completes).
DRAFT_WATCH = """
window.draftsSeen = 0;
const box = document.getElementById("live-transcript");
new MutationObserver(() => {
  if (box.querySelector(".live-turn.draft:not([hidden])")) window.draftsSeen += 1;
}).observe(box, {subtree: true, childList: true, characterData: true, attributes: true});
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("live-browser")
    with serving(live_env(root, KEY), root / "server.log") as running:
        yield running


@pytest.fixture(scope="module")
def file_text(server: ServerProcess) -> str:
    """The same call transcribed as a file by the same server and model."""
    response = httpx.post(
        f"{server.base_url}/v1/audio/transcriptions",
        headers={"Authorization": f"Bearer {KEY}"},
        files={"file": (CALL.name, CALL.read_bytes())},
        data={"model": "whisper-1", "language": "en"},
        timeout=900,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["text"])


def call_wav(folder: Path) -> Path:
    """The call as the 16-bit PCM WAV Chromium's fake microphone plays, with a second of
    silence before it (the page starts listening after the microphone opens)."""
    path = folder / "call.wav"
    pcm = bytes(2 * WAV_RATE) + pcm16(CALL, WAV_RATE) + bytes(2 * WAV_RATE * 2)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(WAV_RATE)
        out.writeframes(pcm)
    return path


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[webdriver.Chrome]:
    """Chromium whose microphone is the call (played once), permission granted."""
    for program in (CHROMIUM, CHROMEDRIVER):
        if not program.is_file():
            pytest.fail(f"{program} is missing: run `make install-system` (as root)")
    monkeypatch.setenv("SE_OFFLINE", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument("--use-fake-ui-for-media-stream")
    options.add_argument("--use-fake-device-for-media-stream")
    options.add_argument(f"--use-file-for-fake-audio-capture={call_wav(tmp_path)}%noloop")
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    # `performance`: the DevTools network events, to read the WebSocket handshake the page sent.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(tmp_path / "driver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        driver.quit()


def shown_draft(driver: webdriver.Chrome) -> bool:
    """Whether a grey draft with words is on show now."""
    selector = "#live-transcript .live-turn.draft:not([hidden])"
    return any(d.text.strip() for d in driver.find_elements(By.CSS_SELECTOR, selector))


def completed_text(driver: webdriver.Chrome) -> str:
    turns = driver.find_elements(By.CSS_SELECTOR, "#live-transcript .live-turn.done")
    return " ".join(re.sub(r"^\d+:\d\d\.\d\s*", "", t.text) for t in turns)


def handshake_protocols(driver: webdriver.Chrome) -> list[str]:
    """The Sec-WebSocket-Protocol header of each /v1/realtime handshake the page has sent."""
    offered = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] != "Network.webSocketWillSendHandshakeRequest":
            continue
        headers = {k.lower(): v for k, v in message["params"]["request"]["headers"].items()}
        offered.append(str(headers.get("sec-websocket-protocol", "")))
    return offered


def test_live_mode_captions_the_microphone_and_downloads_the_transcript(
    browser: webdriver.Chrome, server: ServerProcess, file_text: str, tmp_path: Path
) -> None:
    open_page(browser, server, KEY)
    browser.find_element(By.ID, "language").send_keys("en")
    browser.execute_script(DRAFT_WATCH)
    browser.find_element(By.ID, "live-start").click()
    WebDriverWait(browser, 120).until(
        lambda d: (
            "Listening" in d.find_element(By.ID, "live-state").text
            or d.find_element(By.ID, "error").is_displayed()
        )
    )
    assert not browser.find_element(By.ID, "error").is_displayed(), browser.find_element(
        By.ID, "error"
    ).text
    # The page minted a client secret and opened the socket with it, never with the typed key.
    offered = handshake_protocols(browser)
    assert len(offered) == 1, offered
    assert "openai-insecure-api-key.ek_" in offered[0], offered
    assert KEY not in offered[0], offered
    # Drafts (grey) come while a turn is spoken; completed turns (black) replace them.
    WebDriverWait(browser, CAPTIONS_SECONDS).until(shown_draft)
    screenshot(browser, "live-captions-draft.png")
    WebDriverWait(browser, CAPTIONS_SECONDS).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#live-transcript .live-turn.done")
    )
    # The call lasts 30 s: wait until the captions cover most of the file transcript.
    WebDriverWait(browser, CAPTIONS_SECONDS).until(
        lambda d: normalized_wer(file_text, completed_text(d)) <= 0.25
    )
    screenshot(browser, "live-captions.png")
    browser.find_element(By.ID, "live-stop").click()
    WebDriverWait(browser, 120).until(
        lambda d: "Stopped" in d.find_element(By.ID, "live-state").text
    )
    live = completed_text(browser)
    assert normalized_wer(file_text, live) <= 0.25, (file_text, live)
    assert browser.execute_script("return window.draftsSeen") > 0, "no draft was shown"
    done = browser.find_element(By.CSS_SELECTOR, "#live-transcript .live-turn.done")
    muted = browser.find_element(By.ID, "live-state").value_of_css_property("color")
    assert done.value_of_css_property("color") != muted  # finished turns are not grey
    folder = tmp_path / "downloads"
    txt = downloaded(browser, "live-download-txt", folder)
    assert normalized_wer(file_text, txt) <= 0.25
    cues = list(srt.parse(downloaded(browser, "live-download-srt", folder)))
    assert cues
    assert all(c.end > c.start for c in cues)
    assert normalized_wer(file_text, " ".join(c.content for c in cues)) <= 0.25
    assert [c.start for c in cues] == sorted(c.start for c in cues)
    vtt = downloaded(browser, "live-download-vtt", folder)
    assert vtt.startswith("WEBVTT\n\n")
    assert vtt.count(" --> ") == len(cues)
    assert csp_violations(browser) == []
