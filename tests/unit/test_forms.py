"""`parse_form`: the spellings a form model's fields arrive in (lists, `name[]`, comma-joined
values, `name[key]` object members) become one validated model."""

from __future__ import annotations

import pytest
from starlette.datastructures import FormData

from whisperx_api.api.forms import form_fields, parse_form
from whisperx_api.api.schemas import JobForm, TranscriptionForm
from whisperx_api.errors import InvalidRequest

REFERENCE = "data:audio/wav;base64,UklGRg=="  # a data URL holds a comma


def test_list_fields_take_every_spelling_and_split_only_token_lists() -> None:
    form = FormData(
        [
            ("timestamp_granularities[]", "segment,word"),
            ("include", "logprobs"),
            ("known_speaker_names[]", "Smith, Ann"),
            ("known_speaker_references[]", REFERENCE),
            ("known_speaker_references", REFERENCE),
        ]
    )
    parsed = parse_form(TranscriptionForm, form)
    assert parsed.timestamp_granularities == ("segment", "word")
    assert parsed.include == ("logprobs",)
    assert parsed.known_speaker_names == ("Smith, Ann",)
    assert parsed.known_speaker_references == (REFERENCE, REFERENCE)


def test_object_members_fold_into_the_field_and_win_over_a_plain_value() -> None:
    form = FormData(
        [
            ("chunking_strategy", "auto"),
            ("chunking_strategy[type]", "server_vad"),
            ("chunking_strategy[threshold]", "0.3"),
            ("chunking_strategy[]", "ignored"),
            ("other[threshold]", "0.9"),
        ]
    )
    parsed = parse_form(TranscriptionForm, form)
    assert parsed.chunking_strategy == {"type": "server_vad", "threshold": "0.3"}
    plain = parse_form(TranscriptionForm, FormData([("chunking_strategy", "auto")]))
    assert plain.chunking_strategy == "auto"


def test_only_object_fields_have_members() -> None:
    with_members = {f.key for f in form_fields(TranscriptionForm) if f.has_members}
    assert with_members == {"chunking_strategy", "replacements"}
    parsed = parse_form(JobForm, FormData([("model[name]", "tiny"), ("audio_url", "http://x")]))
    assert parsed.model == "whisper-1"


def test_a_constraint_violation_names_its_field() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_form(JobForm, FormData([("webhook_url", "https://x/" + "a" * 2048)]))
    assert caught.value.param == "webhook_url"
