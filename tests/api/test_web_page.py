"""The web page as files: served at `/` under a strict CSP, every asset it names present, no
inline code or styles (the CSP would block them), shipped as package data."""

from __future__ import annotations

import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.conftest import fake_app, running
from tests.fakes import FakeTranscriber
from whisperx_api.config import Settings

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parents[2]
WEB = REPO / "src" / "whisperx_api" / "web"


class Page(HTMLParser):
    """What the CSP cares about: scripts, styles, handlers, and the assets referenced."""

    def __init__(self) -> None:
        super().__init__()
        self.assets: list[str] = []
        self.inline_scripts = 0
        self.style_elements = 0
        self.inline_attributes: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.inline_attributes += [
            f"{tag} {name}" for name, _ in attrs if name == "style" or name.startswith("on")
        ]
        if tag == "script":
            self._in_script = True
            if values.get("src"):
                self.assets.append(str(values["src"]))
        if tag == "style":
            self.style_elements += 1
        if tag == "link" and values.get("href"):
            self.assets.append(str(values["href"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1


async def test_page_is_served_with_a_strict_policy(make_settings: Callable[..., Settings]) -> None:
    app = fake_app(make_settings(api_key="sk-web"), FakeTranscriber())
    async with running(app) as client:
        page = await client.get("/")  # public: it holds no data, the key stays in the browser
        parsed = Page()
        parsed.feed(page.text)
        assets = {path: await client.get(path) for path in parsed.assets}
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = dict(
        part.strip().split(" ", 1) for part in page.headers["content-security-policy"].split(";")
    )
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["media-src"] == "'self' blob:"
    assert policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert set(parsed.assets) == {
        "/web/downloads.js",
        "/web/app.js",
        "/web/live.js",
        "/web/app.css",
        "/web/icon.svg",
    }
    for path, response in assets.items():
        assert response.status_code == 200, path
        assert response.headers["x-content-type-options"] == "nosniff"
    assert (
        assets["/web/app.js"]
        .headers["content-type"]
        .startswith(("text/javascript", "application/javascript"))
    )
    assert assets["/web/app.css"].headers["content-type"].startswith("text/css")


async def test_the_live_mode_s_audio_worklet_is_a_script_of_this_origin(
    make_settings: Callable[..., Settings],
) -> None:
    # script-src 'self' is what lets the page load it: a worklet cannot be inline.
    app = fake_app(make_settings(), FakeTranscriber())
    async with running(app) as client:
        worklet = await client.get("/web/live-worklet.js")
    assert worklet.status_code == 200
    assert worklet.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    assert 'registerProcessor("pcm-tap"' in worklet.text
    assert 'addModule("/web/live-worklet.js")' in (WEB / "live.js").read_text()


def test_no_inline_code_styles_or_remote_assets() -> None:
    parsed = Page()
    parsed.feed((WEB / "index.html").read_text())
    assert parsed.inline_scripts == 0
    assert parsed.style_elements == 0
    assert parsed.inline_attributes == []
    for name in ("index.html", "downloads.js", "app.js", "live.js", "live-worklet.js", "app.css"):
        text = (WEB / name).read_text()
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), name
        assert "innerHTML" not in text, name
        assert "eval(" not in text, name


def test_page_is_small() -> None:
    size = sum(path.stat().st_size for path in WEB.iterdir())
    assert size < 64_000, f"the page weighs {size} bytes"


def test_web_files_are_package_data() -> None:
    pyproject = (REPO / "pyproject.toml").read_text()
    table = r"\[tool\.setuptools\.package-data\]\s*whisperx_api = \[(.*?)\]"
    declared = re.search(table, pyproject)
    assert declared is not None
    patterns = [p.strip().strip('"') for p in declared.group(1).split(",") if p.strip()]
    for path in WEB.iterdir():
        assert any(path.match(pattern.split("/")[-1]) for pattern in patterns), path.name
