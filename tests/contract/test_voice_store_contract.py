"""The saved-voice store contract: both adapters (SQLite, S3 on moto) keep voices per owner,
bounded, embeddings only, and never show one owner's voice to another."""

from __future__ import annotations

import pytest

from tests.contract.conftest import OpenVoiceStore
from whisperx_api.domain.voices import SavedVoice, new_voice_id
from whisperx_api.errors import Conflict
from whisperx_api.voices.ports import VoiceStore


def voice(owner: str, name: str = "Alice", created_at: int = 1_700_000_000) -> SavedVoice:
    return SavedVoice(
        id=new_voice_id(),
        owner=owner,
        name=name,
        created_at=created_at,
        seconds=4.5,
        embedding=(0.25, -1.5, 3.0e-7),
    )


def test_a_saved_voice_reads_back_whole_from_another_handle(
    open_voice_store: OpenVoiceStore,
) -> None:
    saved = voice("key-a", name="Zoë Ünal")
    assert open_voice_store().add_voice(saved, limit=10)
    other = open_voice_store()
    assert other.get_voice("key-a", saved.id) == saved
    assert other.list_voices("key-a") == [saved]


def test_another_owner_sees_nothing(voice_store: VoiceStore) -> None:
    saved = voice("key-a")
    assert voice_store.add_voice(saved, limit=10)
    assert voice_store.get_voice("key-b", saved.id) is None
    assert voice_store.list_voices("key-b") == []
    assert not voice_store.delete_voice("key-b", saved.id)
    assert voice_store.get_voice("key-a", saved.id) == saved


def test_voices_list_oldest_first_per_owner(voice_store: VoiceStore) -> None:
    later, earlier = voice("k", "B", created_at=20), voice("k", "A", created_at=10)
    for saved in (later, earlier, voice("other", "C", created_at=5)):
        assert voice_store.add_voice(saved, limit=10)
    assert [v.name for v in voice_store.list_voices("k")] == ["A", "B"]


def test_the_limit_is_per_owner(voice_store: VoiceStore) -> None:
    assert voice_store.add_voice(voice("k"), limit=2)
    assert voice_store.add_voice(voice("k"), limit=2)
    refused = voice("k")
    assert not voice_store.add_voice(refused, limit=2)
    assert voice_store.get_voice("k", refused.id) is None
    assert len(voice_store.list_voices("k")) == 2
    assert voice_store.add_voice(voice("someone-else"), limit=2)


def test_delete_frees_a_place_and_is_final(voice_store: VoiceStore) -> None:
    first = voice("k")
    assert voice_store.add_voice(first, limit=1)
    assert voice_store.delete_voice("k", first.id)
    assert not voice_store.delete_voice("k", first.id)
    assert voice_store.get_voice("k", first.id) is None
    assert voice_store.add_voice(voice("k"), limit=1)


def test_an_id_cannot_be_saved_twice(voice_store: VoiceStore) -> None:
    saved = voice("k")
    assert voice_store.add_voice(saved, limit=10)
    with pytest.raises(Conflict):
        voice_store.add_voice(saved, limit=10)
    assert voice_store.list_voices("k") == [saved]


@pytest.mark.parametrize("bad", ["", "../jobs/x/record", "spk_../../x", "spk_" + "g" * 24])
def test_malformed_ids_are_simply_unknown(voice_store: VoiceStore, bad: str) -> None:
    assert voice_store.add_voice(voice("k"), limit=10)
    assert voice_store.get_voice("k", bad) is None
    assert not voice_store.delete_voice("k", bad)


def test_deleting_an_owners_voices_leaves_the_others(open_voice_store: OpenVoiceStore) -> None:
    voice_store = open_voice_store()
    mine = [voice("key-a", name=n) for n in ("Ann", "Cy", "Di")]
    theirs = voice("key-b", name="Bo")
    for saved in (*mine, theirs):
        assert voice_store.add_voice(saved, limit=10)
    assert sorted(open_voice_store().delete_voices("key-a")) == sorted(v.id for v in mine)
    assert voice_store.list_voices("key-a") == []
    assert all(voice_store.get_voice("key-a", v.id) is None for v in mine)
    assert voice_store.list_voices("key-b") == [theirs]
    assert voice_store.delete_voices("key-a") == []
    assert voice_store.add_voice(voice("key-a"), limit=1)  # the limit counts what is left: none
