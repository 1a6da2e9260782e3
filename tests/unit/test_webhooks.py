"""Webhooks without a network: the delivery state machine, the event, the signature, the URL
guard, the secret setting, and the SQLite store's outbox."""

from __future__ import annotations

import ipaddress
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from tests.webhook_receiver import SECRET
from whisperx_api.config import Settings
from whisperx_api.domain.job import JobRecord, JobSpec, JobStatus
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.domain.webhook import WebhookState, backoff_seconds, ended, message_id
from whisperx_api.errors import ConfigError, InvalidRequest
from whisperx_api.jobs.store import SqliteJobStore
from whisperx_api.jobs.webhooks import admit_webhook_url, signed_headers
from whisperx_api.net_guard import Target, check_url, check_url_syntax, is_public, pin
from whisperx_api.settings_loader import load_settings

URL = "https://hooks.example.com/whisper"


def spec(webhook: str | None = URL) -> JobSpec:
    return JobSpec(options=TranscriptionOptions(model="base"), webhook_url=webhook)


def test_backoff_follows_the_documented_schedule() -> None:
    delays = [backoff_seconds(n, 5.0) for n in range(1, 10)]
    assert delays == [5, 30, 120, 600, 1800, 3600, 3600, 3600, 3600]
    assert [backoff_seconds(n, 0.1) for n in (1, 2, 3)] == pytest.approx([0.1, 0.6, 2.4])


def state() -> WebhookState:
    return WebhookState(url="https://x.example/h", message_id="msg_1", body="{}", next_at=0.0)


def test_an_attempt_schedules_the_next_or_settles() -> None:
    failed = state().after_attempt(500, 100.0, 3, 5.0)
    assert (failed.attempts, failed.last_status, failed.next_at) == (1, 500, 105.0)
    assert failed.pending
    unanswered = failed.after_attempt(None, 200.0, 3, 5.0)
    assert (unanswered.attempts, unanswered.last_status, unanswered.next_at) == (2, None, 230.0)
    redirected = unanswered.after_attempt(302, 300.0, 3, 5.0)  # not 2xx: a failure
    assert redirected.gave_up
    assert not redirected.delivered
    assert redirected.next_at is None
    assert not redirected.due(10**9)
    ok = state().after_attempt(201, 1.0, 3, 5.0)
    assert ok.delivered
    assert not ok.pending
    assert ok.public() == {"attempts": 1, "last_status": 201, "delivered": True}


def test_the_event_of_a_completed_job() -> None:
    record = JobRecord(
        id="0b7c8f9e-1111-2222-3333-444455556666",
        status=JobStatus.COMPLETED,
        spec=spec(),
        created_at=0.0,
        finished_at=1_700_000_000.25,
    )
    hook = ended(record, 5.0)
    assert hook is not None
    assert hook.message_id == message_id(record.id) == "msg_0b7c8f9e111122223333444455556666"
    assert hook.next_at == 5.0
    assert json.loads(hook.body) == {
        "type": "transcription.completed",
        "timestamp": "2023-11-14T22:13:20.250000Z",
        "data": {
            "job_id": record.id,
            "status": "Completed",
            "status_url": f"/transcription/{record.id}",
            "result_url": f"/transcription/{record.id}/result",
        },
    }
    running = JobRecord(id="x", status=JobStatus.PROCESSING, spec=spec(), created_at=0.0)
    assert ended(running, 0.0) is None


def test_signed_headers_verify_with_the_standard_library_and_detect_tampering() -> None:
    hook = state()
    headers = signed_headers(Webhook(SECRET), hook, datetime.now(UTC))
    assert headers["webhook-id"] == "msg_1"
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(SECRET).verify(hook.body, headers) == {}
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify('{"forged": true}', headers)
    other = "whsec_" + "QUJD" * 8
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(hook.body, headers)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104 (an address under test, not a bind)
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",
    ],
)
def test_non_public_addresses(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9/x", "http://[::1]/x", "http://169.254.169.254/", "http://localhost/"],
)
@pytest.mark.anyio
async def test_private_targets_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        await check_url(url, False, param="webhook_url")
    assert refused.value.param == "webhook_url"
    assert refused.value.code == "url_not_allowed"
    assert await check_url(url, True, param="webhook_url")


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/x", "file:///etc/passwd", "example.com/hook", "http://", "http://h:x/"],
)
def test_only_absolute_http_urls(url: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        check_url_syntax(url, "webhook_url")
    assert refused.value.param == "webhook_url"


@pytest.mark.anyio
async def test_webhook_url_is_refused_without_a_secret(tmp_path: Path) -> None:
    settings = Settings(jobs={"data_dir": tmp_path})
    with pytest.raises(InvalidRequest) as refused:
        await admit_webhook_url("https://hooks.example.com/x", settings)
    assert refused.value.code == "webhooks_disabled"


@pytest.mark.parametrize("bad", ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_!!!!", "whsec_QUJD"])
def test_an_invalid_secret_fails_at_startup_naming_the_variable(bad: str) -> None:
    with pytest.raises(ConfigError, match="WEBHOOKS__SECRET"):
        load_settings(environ={"WEBHOOKS__SECRET": bad})


def test_a_valid_secret_and_the_other_settings_load() -> None:
    settings = load_settings(
        environ={
            "WEBHOOKS__SECRET": SECRET,
            "WEBHOOKS__MAX_ATTEMPTS": "3",
            "WEBHOOKS__BACKOFF_SECONDS": "0.5",
            "FETCH__ALLOW_PRIVATE_NETWORKS": "true",
        }
    )
    assert settings.webhooks.secret is not None
    assert settings.webhooks.secret.get_secret_value() == SECRET
    assert (settings.webhooks.max_attempts, settings.webhooks.backoff_seconds) == (3, 0.5)
    assert settings.fetch.allow_private_networks


def test_a_store_from_before_webhooks_gains_the_table_and_keeps_its_jobs(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, "
        "owner TEXT, status TEXT NOT NULL, spec TEXT NOT NULL, attempts INTEGER NOT NULL "
        "DEFAULT 0, progress REAL, error TEXT, error_code TEXT, created_at REAL NOT NULL, "
        "started_at REAL, finished_at REAL, result TEXT);"
    )
    old.execute(
        "INSERT INTO jobs (id, status, spec, created_at) VALUES (?, ?, ?, ?)",
        ("old", "Queued", json.dumps({"v": 1, **_old_spec()}), 1.0),
    )
    old.commit()
    old.close()
    store = SqliteJobStore(path)
    record = store.get("old")
    assert record is not None
    assert record.spec.webhook_url is None
    assert record.webhook is None
    assert store.claim_due_webhooks("a", 10.0) == []


def _old_spec() -> dict[str, object]:
    from dataclasses import asdict

    data = asdict(spec(None))
    del data["webhook_url"]
    return data


@pytest.mark.parametrize(
    ("url", "address", "pinned", "host", "sni"),
    [
        (
            "http://hooks.test/a?b=1",
            "93.184.216.34",
            "http://93.184.216.34/a?b=1",
            "hooks.test",
            None,
        ),
        (
            "https://hooks.test:8443/a",
            "2606:4700::1",
            "https://[2606:4700::1]:8443/a",
            "hooks.test:8443",
            "hooks.test",
        ),
        ("http://127.0.0.1:9/x", "127.0.0.1", "http://127.0.0.1:9/x", "127.0.0.1:9", None),
    ],
)
def test_a_pinned_request_goes_to_the_checked_address_under_the_original_name(
    url: str, address: str, pinned: str, host: str, sni: str | None
) -> None:
    parts = urlsplit(url)
    assert parts.hostname is not None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    checked = Target(url, parts.scheme, parts.hostname, port, ipaddress.ip_address(address))
    target = pin(checked)
    assert target.url == pinned
    assert target.headers == {"host": host}
    assert target.extensions.get("sni_hostname") == sni
