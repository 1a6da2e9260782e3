"""One check for every list of labels a form carries (known speakers' names, channel names)."""

from __future__ import annotations

import pytest

from whisperx_api.api.label_fields import checked_labels
from whisperx_api.errors import InvalidValue


def test_labels_come_back_without_surrounding_spaces() -> None:
    assert checked_labels([" agent", "customer "], "channel_names", 8, 64) == ("agent", "customer")
    assert checked_labels([], "channel_names", 8, 64) == ()


@pytest.mark.parametrize(
    ("labels", "why"),
    [
        (["a", "b", "c"], "at most 2 names, got 3"),
        (["a", "  "], "1 to 5 printable characters"),
        (["a", "sixsix"], "1 to 5 printable characters"),
        (["a", "b\x07"], "1 to 5 printable characters"),
        (["Ann", " Ann"], "must differ"),
    ],
)
def test_bad_labels_are_400_naming_the_field(labels: list[str], why: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        checked_labels(labels, "known_speaker_names", 2, 5)
    assert refused.value.param == "known_speaker_names"
    assert why in refused.value.message
