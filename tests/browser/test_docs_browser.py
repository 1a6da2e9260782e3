"""A person in `/docs`: headless Chromium authorizes with the API key, picks a file in "Try it
out" on `POST /v1/audio/transcriptions`, executes, and reads the transcript. Real server, bundled
base model, no internet (Swagger UI's scripts come from the server itself). Debian's Chromium
and chromedriver come from `make install-system`."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.audio import DATA
from tests.openapi_forms import form_schema
from tests.server import serving
from tests.wer import normalized_wer

pytestmark = pytest.mark.slow

KEY = "sk-docs"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
OPERATION = "#operations-openai-create_transcription_v1_audio_transcriptions_post"


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebDriver]:
    for program in (CHROMIUM, CHROMEDRIVER):
        if not program.is_file():
            pytest.fail(f"{program} is missing: run `make install-system` (as root)")
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must never fetch a browser
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    chrome = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        yield chrome
    finally:
        chrome.quit()


def test_a_person_uploads_a_file_in_docs_and_reads_the_transcript(
    browser: WebDriver, tmp_path: Path
) -> None:
    env = {
        "API_KEY": KEY,
        "WHISPER_TMP_FILES": str(tmp_path / "data"),
        "WHISPER__CACHE_DIR": str(tmp_path / "cache"),
        "WHISPER__MODEL": "base",
    }
    with serving(env, tmp_path / "server.log") as server:
        browser.get(f"{server.base_url}/docs")
        wait = WebDriverWait(browser, 120)
        authorize(browser, wait)
        operation = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, OPERATION)))
        operation.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
        wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, f"{OPERATION} .try-out__btn")))
        operation.find_element(By.CSS_SELECTOR, ".try-out__btn").click()
        upload = wait.until(
            ec.presence_of_element_located((By.CSS_SELECTOR, f"{OPERATION} input[type=file]"))
        )
        upload.send_keys(str(DATA / "en_espeak.flac"))
        operation.find_element(By.CSS_SELECTOR, "button.execute").click()
        body = WebDriverWait(browser, 300).until(
            ec.presence_of_element_located(
                (
                    By.CSS_SELECTOR,
                    f"{OPERATION} .live-responses-table .response-col_description pre",
                )
            )
        )
        status = operation.find_element(
            By.CSS_SELECTOR, ".live-responses-table tr.response .response-col_status"
        ).text
        text = body.text
        curl = operation.find_element(By.CSS_SELECTOR, ".curl-command").text
        schema = httpx.get(f"{server.base_url}/openapi.json").json()
    assert status.strip() == "200", text
    # Swagger UI sent the file, the documented defaults and nothing made up (optional fields
    # start empty, and an empty field means "not given"; an empty list default sends nothing).
    properties = form_schema(schema, "/v1/audio/transcriptions")["properties"]
    defaults = {name for name, prop in properties.items() if prop.get("default", []) != []}
    sent = dict(re.findall(r"-F '([^=]+)=([^']*)'", curl))
    assert {name for name, value in sent.items() if value} == defaults | {"file"}, curl
    transcript = json.loads(text)["text"]
    assert normalized_wer((DATA / "en_espeak.txt").read_text(), transcript) <= 0.10, transcript


def authorize(browser: WebDriver, wait: WebDriverWait[WebDriver]) -> None:
    """The "Authorize" dialog with the bearer key, as a person fills it in."""
    wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, ".btn.authorize"))).click()
    field = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".auth-container input")))
    field.send_keys(KEY)
    browser.find_element(By.CSS_SELECTOR, ".auth-btn-wrapper .modal-btn.authorize").click()
    browser.find_element(By.CSS_SELECTOR, ".auth-btn-wrapper .btn-done").click()
