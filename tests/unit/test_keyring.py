"""API_KEYS_FILE loading: a clear startup error, and a broken reload that changes nothing."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from whisperx_api.api.auth import KeyRing
from whisperx_api.errors import AuthenticationFailed, KeyFileError

BEARER = "Bearer {}".format


def keys_file(path: Path, keys: object) -> Path:
    path.write_text(json.dumps(keys), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        ("{not json", "cannot read"),
        ('["sk-a"]', "must be a JSON object"),
        ('{"sk-a": 3}', "must be a JSON object"),
        ('{"": "empty key"}', "must be a JSON object"),
    ],
)
def test_an_unusable_file_is_a_startup_error(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "keys.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(KeyFileError, match=message):
        KeyRing(None, path, enabled=True)


def test_a_removed_key_is_revoked_at_the_next_request(tmp_path: Path) -> None:
    path = keys_file(tmp_path / "keys.json", {"sk-alice": "alice", "sk-bob": "bob"})
    ring = KeyRing("sk-single", path, enabled=True)
    assert ring.identify(BEARER("sk-bob")).name == "bob"
    keys_file(path, {"sk-alice": "alice"})
    with pytest.raises(AuthenticationFailed):
        ring.identify(BEARER("sk-bob"))
    assert ring.identify(BEARER("sk-alice")).name == "alice"
    assert ring.identify(BEARER("sk-single")).name == "default"


def test_a_broken_file_keeps_the_last_good_set_and_logs_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = keys_file(tmp_path / "keys.json", {"sk-alice": "alice"})
    ring = KeyRing(None, path, enabled=True)
    path.write_text('{"sk-alice": "alice", "sk-eve": ', encoding="utf-8")
    with caplog.at_level(logging.ERROR, logger="whisperx_api.api.auth"):
        for _ in range(3):
            assert ring.identify(BEARER("sk-alice")).name == "alice"
        with pytest.raises(AuthenticationFailed):
            ring.identify(BEARER("sk-eve"))
    [record] = caplog.records
    assert "API_KEYS_FILE" in record.getMessage()
    assert "last good key set" in record.getMessage()
    assert "sk-alice" not in record.getMessage()
    path.unlink()  # gone altogether: still the last good set
    assert ring.identify(BEARER("sk-alice")).name == "alice"


def test_a_fix_with_the_same_mtime_and_size_is_picked_up(tmp_path: Path) -> None:
    path = keys_file(tmp_path / "keys.json", {"sk-alice": "alice"})
    ring = KeyRing(None, path, enabled=True)
    broken, fixed = '{"sk-bob": "bob",}', '{"sk-bob": "bob"} '
    assert len(broken) == len(fixed)
    path.write_text(broken, encoding="utf-8")
    stamp = path.stat().st_mtime_ns
    assert ring.identify(BEARER("sk-alice")).name == "alice"  # the broken file was read
    path.write_text(fixed, encoding="utf-8")
    os.utime(path, ns=(stamp, stamp))  # an edit within one timestamp tick
    assert ring.identify(BEARER("sk-bob")).name == "bob"
    with pytest.raises(AuthenticationFailed):
        ring.identify(BEARER("sk-alice"))


def test_a_key_with_a_lone_surrogate_is_refused_at_load_and_the_last_good_set_stays(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    surrogate = '{"sk-\\udc80": "mallory"}'  # valid JSON, but no UTF-8 can encode the key
    path = tmp_path / "keys.json"
    path.write_text(surrogate, encoding="utf-8")
    with pytest.raises(KeyFileError, match="not valid Unicode"):
        KeyRing(None, path, enabled=True)
    keys_file(path, {"sk-alice": "alice"})
    ring = KeyRing(None, path, enabled=True)
    path.write_text(surrogate + " ", encoding="utf-8")  # a different size: a changed file
    with caplog.at_level(logging.ERROR, logger="whisperx_api.api.auth"):
        assert ring.identify(BEARER("sk-alice")).name == "alice"
        with pytest.raises(AuthenticationFailed):
            ring.identify(BEARER("sk-mallory"))
    assert "not valid Unicode" in caplog.records[0].getMessage()


def test_a_surrogate_in_an_environment_key_is_a_startup_error() -> None:
    with pytest.raises(KeyFileError, match="valid Unicode"):
        KeyRing("sk-\udcff", None, enabled=True)
