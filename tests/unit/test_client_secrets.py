"""The client-secret store's memory: what it remembers about spent and expired secrets, for how
long, and that it stays bounded whatever clients do."""

from __future__ import annotations

import pytest

from whisperx_api.api import client_secrets
from whisperx_api.api.auth import Client
from whisperx_api.api.client_secrets import ClientSecrets
from whisperx_api.errors import ClientSecretRefused
from whisperx_api.realtime.session_config import SessionConfig

CONFIG = SessionConfig(model="base")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def client(n: int) -> Client:
    return Client(name=f"client-{n}", owner=f"owner-{n}")


def test_values_are_unguessable_and_never_stored() -> None:
    store = ClientSecrets(4)
    value, _ = store.mint(client(1), 60, CONFIG)
    other, _ = store.mint(client(1), 60, CONFIG)
    assert value != other
    assert value.startswith("ek_")
    assert len(value) >= 40
    assert value not in repr(store._records)


def test_a_spent_secret_is_remembered_past_expiry_then_forgotten() -> None:
    clock = Clock()
    store = ClientSecrets(4, clock=clock)
    value, _ = store.mint(client(1), 60, CONFIG)
    assert store.redeem(value).client == client(1)
    with pytest.raises(ClientSecretRefused, match="already used"):
        store.check(value)
    clock.now += 60 + 3000
    with pytest.raises(ClientSecretRefused, match="already used"):
        store.check(value)
    clock.now += 700
    store.mint(client(2), 60, CONFIG)  # minting sweeps what is long past its expiry
    with pytest.raises(ClientSecretRefused, match="Unknown"):
        store.check(value)


def test_the_records_stay_bounded_dropping_spent_ones_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(client_secrets, "_MAX_RECORDS", 10)
    store = ClientSecrets(2)
    live = [store.mint(client(n), 600, CONFIG)[0] for n in range(5)]
    for n in range(5, 50):  # many keys mint and spend at once
        store.redeem(store.mint(client(n), 600, CONFIG)[0])
        assert len(store._records) <= 10
    for value in live:  # unused secrets are kept
        assert store.check(value).expires_at > 0
