"""The languages a transcript's segments were decoded in: the main one, and where it switches.

The top-level `language` is the one spoken longest, not the first chunk's: a call that opens
with an English greeting and goes on in German is German. Every stretch in another language is
reported as a `language_switch` warning, so a caller knows the transcript holds several.
"""

from __future__ import annotations

from collections.abc import Sequence

from whisperx_api.domain.transcript import Segment, TranscriptWarning, WarningCode


def spoken_longest(
    segments: Sequence[Segment],
    probabilities: Sequence[float],
    fallback: tuple[str, float],
) -> tuple[str, float]:
    """The language with the most segment time, and the detector's probability for it
    (averaged over its segments by duration); `fallback` when no segment names a language."""
    spoken: dict[str, float] = {}
    weighted: dict[str, float] = {}
    for segment, probability in zip(segments, probabilities, strict=True):
        if segment.language is not None:
            length = max(segment.end - segment.start, 0.0)
            spoken[segment.language] = spoken.get(segment.language, 0.0) + length
            weighted[segment.language] = weighted.get(segment.language, 0.0) + length * probability
    if not spoken:
        return fallback
    main = max(spoken, key=lambda language: spoken[language])
    if main == fallback[0] or spoken[main] <= 0:
        return main, fallback[1] if main == fallback[0] else 0.0
    return main, weighted[main] / spoken[main]


def language_switches(segments: Sequence[Segment], main: str) -> tuple[TranscriptWarning, ...]:
    """One warning per run of consecutive segments in a language other than `main`."""
    warnings: list[TranscriptWarning] = []
    run: list[Segment] = []
    for segment in (*segments, None):
        language = segment.language if segment is not None else None
        if run and (segment is None or language != run[-1].language):
            warnings.append(_switch(run, main))
            run = []
        if segment is not None and language is not None and language != main:
            run.append(segment)
    return tuple(warnings)


def _switch(run: Sequence[Segment], main: str) -> TranscriptWarning:
    language = run[0].language or main
    return TranscriptWarning(
        WarningCode.LANGUAGE_SWITCH,
        f"Speech in '{language}'; the transcript's main language is '{main}'.",
        run[0].start,
        run[-1].end,
    )
