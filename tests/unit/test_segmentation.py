"""Sentence-like segments from aligned words: where they end, what they carry, every script."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.audio import tone_wav
from tests.fakes import FakeDiarizer, FakeTranscriber
from tests.unit.transcripts import ALIGNED, FIXED, PLAIN
from whisperx_api.domain.breaks import ends_sentence
from whisperx_api.domain.options import TranscriptionOptions
from whisperx_api.domain.transcript import Segment, Task, Transcript, Word
from whisperx_api.pipeline.runner import PipelineRunner
from whisperx_api.pipeline.segmentation import SegmentRules, resegment
from whisperx_api.pipeline.stage import StageContext


def timed(
    *texts: str, start: float = 0.0, step: float = 0.3, gaps: dict[int, float] | None = None
) -> tuple[Word, ...]:
    """Words of `step` seconds each, back to back, with extra silence before the given indexes."""
    words = []
    at = start
    for index, text in enumerate(texts):
        at += (gaps or {}).get(index, 0.0)
        words.append(Word(text, round(at, 3), round(at + step, 3), 0.9))
        at += step
    return tuple(words)


def transcript_of(*segments: tuple[Word, ...], language: str = "en") -> Transcript:
    """One decoder segment per word tuple, text spelled by its words."""
    built = []
    for index, words in enumerate(segments):
        text = "".join(w.text for w in words)
        built.append(
            Segment(
                index,
                words[0].start,
                words[-1].end,
                text,
                words,
                tokens=tuple(range(100 * index, 100 * index + 2 * len(words))),
                avg_logprob=-0.1 * (index + 1),
                no_speech_prob=0.01 * (index + 1),
            )
        )
    end = built[-1].end if built else 0.0
    return Transcript(Task.TRANSCRIBE, language, end + 1.0, tuple(built))


def texts(transcript: Transcript) -> list[str]:
    return [s.text.strip() for s in transcript.segments]


def squashed(text: str) -> str:
    return "".join(text.split())


def test_sentence_ends_cut_segments_and_ids_and_seek_follow() -> None:
    words = timed(" Hello", " there.", " How", " are", " you?", " Fine!", " Good")
    result = resegment(transcript_of(words))
    assert texts(result) == ["Hello there.", "How are you?", "Fine!", "Good"]
    assert [s.id for s in result.segments] == [0, 1, 2, 3]
    assert [s.seek for s in result.segments] == [round(s.start * 100) for s in result.segments]
    assert [(s.start, s.end) for s in result.segments] == [
        (0.0, 0.6),
        (0.6, 1.5),
        (1.5, 1.8),
        (1.8, 2.1),
    ]


def test_the_transcript_text_is_unchanged_but_for_whitespace() -> None:
    first = timed(" One", " sentence.", " And", " the")
    second = timed(" next", " one.", " Then", " more.", start=1.3)
    source = transcript_of(first, second)
    result = resegment(source)
    assert squashed(result.text) == squashed(source.text)
    assert result.text == "One sentence. And the next one. Then more."
    assert result.words == source.words


def test_a_sentence_flows_across_decoder_segments() -> None:
    first = timed(" One", " sentence.", " And", " the")
    second = timed(" next", " one.", start=1.3)
    result = resegment(transcript_of(first, second))
    assert texts(result) == ["One sentence.", "And the next one."]


def test_tokens_are_shared_out_and_statistics_come_from_the_main_source() -> None:
    first = timed(" One", " sentence.", " And", " the")
    second = timed(" next", " one.", " Then", " more.", start=1.3)
    source = transcript_of(first, second)
    result = resegment(source)
    assert [t for s in result.segments for t in s.tokens] == [
        t for s in source.segments for t in s.tokens
    ]
    assert all(s.tokens for s in result.segments)
    # "And the next one." has most of its characters in the second decoder segment.
    middle = result.segments[1]
    assert middle.text == " And the next one."
    assert (middle.avg_logprob, middle.no_speech_prob) == (-0.2, 0.02)
    assert result.segments[0].avg_logprob == pytest.approx(-0.1)


def test_a_pause_cuts_and_its_length_is_configurable() -> None:
    words = timed(" so", " we", " waited", " and", " then", " left", gaps={3: 0.6, 5: 0.5})
    assert texts(resegment(transcript_of(words))) == ["so we waited", "and then left"]
    longer = resegment(transcript_of(words), SegmentRules(pause_seconds=1.0))
    assert texts(longer) == ["so we waited and then left"]
    shorter = resegment(transcript_of(words), SegmentRules(pause_seconds=0.4))
    assert texts(shorter) == ["so we waited", "and then", "left"]


def test_a_speaker_change_cuts_even_mid_sentence() -> None:
    words = timed(" I", " think", " that", " is", " right.")
    labelled = tuple(
        Word(w.text, w.start, w.end, w.score, "SPEAKER_00" if i < 3 else "SPEAKER_01")
        for i, w in enumerate(words)
    )
    result = resegment(transcript_of(labelled))
    assert [(s.text.strip(), s.speaker) for s in result.segments] == [
        ("I think that", "SPEAKER_00"),
        ("is right.", "SPEAKER_01"),
    ]


def test_a_long_sentence_is_cut_at_a_comma_first() -> None:
    texts_in = [
        "",
        "When",
        "the",
        "meeting",
        "ends",
        "at",
        "five",
        "o'clock",
        "tomorrow",
        "afternoon,",
        "everyone",
        "should",
        "leave",
        "the",
        "building",
        "quietly",
        "by",
        "the",
        "back",
        "door",
        "please.",
    ][1:]
    words = timed(*(f" {t}" for t in texts_in), gaps={12: 0.3})
    result = resegment(transcript_of(words))
    assert texts(result) == [
        "When the meeting ends at five o'clock tomorrow afternoon,",
        "everyone should leave the building quietly by the back door please.",
    ]


def test_without_punctuation_a_long_unit_is_cut_at_its_longest_pause() -> None:
    words = timed(*(f" w{i}" for i in range(30)), gaps={11: 0.4, 16: 0.2, 20: 0.1})
    result = resegment(transcript_of(words))
    assert texts(result)[0] == " ".join(f"w{i}" for i in range(11))
    assert all(s.end - s.start <= 7.0 for s in result.segments)


def test_every_piece_fits_the_limits() -> None:
    words = timed(*(f" word{i}" for i in range(80)), step=0.25)
    rules = SegmentRules()
    for segment in resegment(transcript_of(words)).segments:
        assert segment.end - segment.start <= rules.max_seconds
        assert len(segment.text.strip()) <= rules.max_chars


def test_abbreviations_initials_and_decimals_end_no_sentence() -> None:
    words = timed(" Dr.", " J.", " Smith", " paid", " 3.5", " dollars.", " Then", " left.")
    assert texts(resegment(transcript_of(words))) == [
        "Dr. J. Smith paid 3.5 dollars.",
        "Then left.",
    ]
    assert ends_sentence(' "Stop!"')
    assert ends_sentence(" (really?)")
    assert not ends_sentence(" e.g.")


def test_chinese_is_joined_without_spaces() -> None:
    words = timed("你好", "。", "我们", "走", "吧", "。", "好的", "！")
    result = resegment(transcript_of(words, language="zh"))
    assert texts(result) == ["你好。", "我们走吧。", "好的！"]
    assert result.text == "你好。我们走吧。好的！"


def test_japanese_question_and_full_stop() -> None:
    words = timed("元気", "です", "か？", "はい", "、", "元気", "です", "。")
    result = resegment(transcript_of(words, language="ja"))
    assert texts(result) == ["元気ですか？", "はい、元気です。"]


def test_chinese_words_stripped_by_an_aligner_are_still_joined_without_spaces() -> None:
    words = timed("我们", "走吧。", "好的。")
    segment = Segment(0, 0.0, 0.9, "我们走吧。好的。", words)
    result = resegment(Transcript(Task.TRANSCRIBE, "zh", 1.0, (segment,)))
    assert texts(result) == ["我们走吧。", "好的。"]


def test_spanish_inverted_marks() -> None:
    words = timed(" ¿Cómo", " estás?", " ¡Muy", " bien!", " Gracias.")
    assert texts(resegment(transcript_of(words))) == ["¿Cómo estás?", "¡Muy bien!", "Gracias."]


def test_a_long_spanish_sentence_is_cut_before_an_inverted_question_mark() -> None:
    first = " Si mañana por la mañana tienes tiempo libre después del trabajo"
    second = " ¿podrías venir conmigo a la tienda para comprar pan y leche fresca?"
    words = timed(*(f" {t}" for t in (first + second).split()))
    assert texts(resegment(transcript_of(words))) == [first.strip(), second.strip()]


def test_hindi_danda_ends_a_sentence() -> None:
    words = timed(" नमस्ते।", " आप", " कैसे", " हैं?", " मैं", " ठीक", " हूँ॥")
    result = resegment(transcript_of(words, language="hi"))
    assert texts(result) == ["नमस्ते।", "आप कैसे हैं?", "मैं ठीक हूँ॥"]


def test_arabic_question_mark_ends_a_sentence() -> None:
    words = timed(" كيف", " حالك؟", " بخير")
    assert texts(resegment(transcript_of(words, language="ar"))) == ["كيف حالك؟", "بخير"]


def test_without_words_the_decoder_segments_stay() -> None:
    assert resegment(PLAIN) is PLAIN


def test_wordless_segments_stay_among_rebuilt_ones() -> None:
    result = resegment(FIXED)
    assert texts(result) == ["Bonjour à tous.", "Ça\tva\nbien ?", "Une heure plus tard."]
    assert result.segments[1] == FIXED.segments[1]
    assert [s.id for s in result.segments] == [0, 1, 2]


def test_segments_whose_words_do_not_spell_their_text_stay() -> None:
    segment = Segment(0, 0.0, 2.0, " Ten dollars. Paid.", timed(" 10", " dollars.", " Paid."))
    transcript = Transcript(Task.TRANSCRIBE, "en", 2.0, (segment,))
    assert resegment(transcript).segments == (segment,)


def test_aligned_sentences_keep_their_speakers() -> None:
    result = resegment(ALIGNED)
    assert [(s.text, s.speaker) for s in result.segments] == [
        (s.text, s.speaker) for s in ALIGNED.segments
    ]


def test_the_runner_cuts_every_transcript_into_segments(tmp_path: Path) -> None:
    runner = PipelineRunner(FakeTranscriber(), 600.0, diarizer=FakeDiarizer())
    audio = tone_wav(tmp_path / "a.wav", 4.0)
    plain = runner.run(audio, TranscriptionOptions(model=""), StageContext())
    assert texts(plain) == ["hello from the fake backend says goodbye"]
    diarized = runner.run(audio, TranscriptionOptions(model="", diarize=True), StageContext())
    assert len(diarized.segments) > 1
    assert all({w.speaker for w in s.words} == {s.speaker} for s in diarized.segments)
    assert [s.id for s in diarized.segments] == list(range(len(diarized.segments)))
    wordless = TranscriptionOptions(model="", word_timestamps=False)
    assert texts(runner.run(audio, wordless, StageContext())) == [
        "hello from the fake",
        "backend says goodbye",
    ]


# Words and times as Whisper base wrote them for `tests/data/sentence_ends.flac`.
SENTENCE_ENDS = (
    Word(" Neither", 0.0, 0.3, 0.9),
    Word(" did", 0.3, 0.5, 0.9),
    Word(" I.", 0.5, 0.99, 0.9),
    Word(" Okay,", 1.38, 1.8, 0.9),
    Word(" I", 1.9, 2.0, 0.9),
    Word(" thought", 2.0, 2.4, 0.9),
    Word(" so.", 2.4, 3.01, 0.9),
    Word(" And", 3.4, 3.6, 0.9),
    Word(" Dr.", 3.6, 4.0, 0.9),
    Word(" J.", 4.0, 4.3, 0.9),
    Word(" R.", 4.3, 4.6, 0.9),
    Word(" Smith", 4.6, 5.0, 0.9),
    Word(" called.", 5.0, 5.72, 0.9),
)


def test_a_one_letter_word_ends_a_sentence_unless_a_name_follows() -> None:
    result = resegment(transcript_of(SENTENCE_ENDS))
    assert texts(result) == [
        "Neither did I.",
        "Okay, I thought so.",
        "And Dr. J. R. Smith called.",
    ]


@pytest.mark.parametrize(
    ("word", "following", "ends"),
    [
        (" I.", " Okay", True),
        (" I.", " Okay,", True),
        (" I.", None, True),
        (" B.", " Then", True),
        (" a.", " Smith", True),  # a lower-case letter is no initial
        (" I.", " it", True),
        (" J.", " Smith", False),
        (" J.", " R.", False),
        (' "J.', " Smith", False),
        (" W.", " Bush's", False),
    ],
)
def test_one_letter_words_and_initials(word: str, following: str | None, ends: bool) -> None:
    assert ends_sentence(word, following) is ends
