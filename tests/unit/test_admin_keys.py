"""Admin keys: `ADMIN_API_KEY` and keys-file entries `{"name": ..., "admin": true}`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from whisperx_api.api.auth import KeyRing
from whisperx_api.errors import AuthenticationFailed, KeyFileError


def write_keys(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_the_admin_key_is_an_admin_and_the_single_key_is_not(tmp_path: Path) -> None:
    ring = KeyRing("sk-user", None, enabled=True, admin_key="sk-admin")
    admin = ring.identify("Bearer sk-admin")
    user = ring.identify("Bearer sk-user")
    assert (admin.name, admin.admin) == ("admin", True)
    assert (user.name, user.admin) == ("default", False)
    assert admin.owner != user.owner


def test_keys_file_values_make_clients_or_admins(tmp_path: Path) -> None:
    keys = write_keys(
        tmp_path / "keys.json",
        {
            "sk-alice": "alice",
            "sk-ops": {"name": "ops", "admin": True},
            "sk-bob": {"name": "bob", "admin": False},
            "sk-carol": {"name": "carol"},
        },
    )
    ring = KeyRing(None, keys, enabled=True)
    found = {
        key: (c.name, c.admin)
        for key in ("sk-alice", "sk-ops", "sk-bob", "sk-carol")
        for c in [ring.identify(f"Bearer {key}")]
    }
    assert found == {
        "sk-alice": ("alice", False),
        "sk-ops": ("ops", True),
        "sk-bob": ("bob", False),
        "sk-carol": ("carol", False),
    }
    with pytest.raises(AuthenticationFailed):
        ring.identify("Bearer ops")


@pytest.mark.parametrize(
    "value",
    [
        {"name": "ops", "admin": "yes"},
        {"admin": True},
        {"name": 3, "admin": True},
        {"name": "ops", "admin": True, "role": "root"},
        ["ops"],
        7,
        None,
    ],
)
def test_a_malformed_entry_is_a_clear_key_file_error(tmp_path: Path, value: object) -> None:
    keys = write_keys(tmp_path / "keys.json", {"sk-ok": "ok", "sk-bad": value})
    with pytest.raises(KeyFileError, match="admin"):
        KeyRing(None, keys, enabled=True)


def test_without_auth_everyone_is_anonymous_and_not_an_admin(tmp_path: Path) -> None:
    ring = KeyRing(None, None, enabled=False, admin_key=None)
    client = ring.identify(None)
    assert (client.name, client.admin, client.owner) == ("anonymous", False, None)


def test_an_admin_key_alone_turns_auth_on_and_max_loaded_is_read(tmp_path: Path) -> None:
    from whisperx_api.errors import ConfigError
    from whisperx_api.settings_loader import load_settings

    settings = load_settings({"ADMIN_API_KEY": "sk-admin", "MODELS__MAX_LOADED": "3"}, cwd=tmp_path)
    assert settings.auth_enabled
    assert settings.models.max_loaded == 3
    assert load_settings({}, cwd=tmp_path).models.max_loaded == 2
    with pytest.raises(ConfigError, match="MODELS__MAX_LOADED"):
        load_settings({"MODELS__MAX_LOADED": "0"}, cwd=tmp_path)
