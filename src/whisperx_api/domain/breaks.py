"""Where a transcript may be cut: sentence ends, clause ends, phrase starts, per language.

Segmentation (sentence-like segments) and subtitle layout (cues and line breaks) read the same
rules, so a cue boundary and a segment boundary fall at the same kinds of places.
"""

from __future__ import annotations

from collections.abc import Iterable

# Full stops, question and exclamation marks of the scripts Whisper writes: Latin, CJK (full
# and half width), Arabic/Urdu, Devanagari danda and double danda, Armenian, Ethiopic.
_SENTENCE_END = frozenset(".?!…‼⁇⁈⁉。？！｡؟۔।॥։።፧")
_CLAUSE_END = frozenset(",;:、，；：،؛—–")
_CLOSERS = "\"'”’»›)]}」』）】〉》"
_CLAUSE_OPENERS = frozenset("¿¡")
# A full stop after these ends no sentence ("Mr. Smith", "e.g. this").
_ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "e.g", "i.e", "cf", "approx"}
)


def _words(spaced: str) -> frozenset[str]:
    return frozenset(spaced.split())


_SPACELESS_LANGUAGES = frozenset({"zh", "yue", "ja", "th", "lo", "km", "my", "bo"})
"""Languages whose script does not separate words with spaces."""

_PHRASE_STARTS: dict[str, frozenset[str]] = {
    "en": _words(
        "and but or nor so yet because although though while when where which who whom whose "
        "that if unless until since as after before of in on at to for from with without about "
        "into onto over under between through during than like the a an"
    ),
    "fr": _words(
        "et mais ou donc car ni que qui quand si parce puisque lorsque de du des à au aux en "
        "dans sur sous pour par avec sans chez vers le la les un une"
    ),
    "es": _words(
        "y e o u pero sino que porque aunque cuando si como donde de del a al en con sin por "
        "para sobre entre hasta desde el la los las un una"
    ),
    "de": _words(
        "und aber oder denn sondern dass weil wenn als ob obwohl während bevor nachdem mit "
        "ohne für von zu bei nach aus in an auf über unter zwischen durch der die das ein eine"
    ),
}
"""Words a line or cue may naturally start with (conjunctions, prepositions, articles)."""


def spaces_words(language: str) -> bool:
    """False for scripts without spaces between words (zh, ja, th, …)."""
    return language.split("-")[0].lower() not in _SPACELESS_LANGUAGES


def _core(word: str) -> str:
    """The word without surrounding spaces and closing quotes or brackets."""
    return word.strip().rstrip(_CLOSERS)


def ends_sentence(word: str) -> bool:
    """The word closes a sentence (abbreviations and initials like "Dr." or "J." do not)."""
    core = _core(word)
    if not core or core[-1] not in _SENTENCE_END:
        return False
    if core[-1] == "." and not core.endswith(".."):
        stem = core[:-1].lstrip("\"'“‘«(").lower()
        if stem in _ABBREVIATIONS or (len(stem) == 1 and stem.isalpha()):
            return False
    return True


def ends_clause(word: str) -> bool:
    """The word closes a clause: a comma, semicolon, colon, dash, or a sentence end."""
    core = _core(word)
    return bool(core) and (core[-1] in _CLAUSE_END or ends_sentence(word))


def opens_clause(word: str) -> bool:
    """The word opens a clause of its own, as Spanish ¿ and ¡ do."""
    return word.strip()[:1] in _CLAUSE_OPENERS


def starts_phrase(word: str, language: str) -> bool:
    """A line may naturally begin with this word: a conjunction, preposition or article."""
    words = _PHRASE_STARTS.get(language.split("-")[0].lower(), frozenset())
    return word.strip().lower().strip("\"'“‘«(") in words


def join_words(texts: Iterable[str], spaced: bool) -> str:
    """Word texts as one string. Whisper's words carry their own leading space (and those of
    spaceless scripts none); words an aligner stripped are joined by the language's rule."""
    items = list(texts)
    if any(t[:1].isspace() for t in items):
        return "".join(items)
    return (" " if spaced else "").join(t.strip() for t in items)


def cut_score(before: str, after: str, gap: float, share: float, language: str) -> float:
    """How good a place between two words is to end a segment, cue or line: a sentence end
    weighs most, then clause punctuation (or Spanish ¿¡ opening the next word), then a word
    that opens a phrase, then the pause in seconds (the caller caps it); `share` is the part
    of the text before the cut, and very unequal halves are penalised."""
    imbalance = 2.0 * share - 1.0
    return (
        1.0 * ends_sentence(before)
        + 2.0 * (ends_clause(before) or opens_clause(after))
        + 0.5 * starts_phrase(after, language)
        + 4.0 * gap
        - 3.0 * imbalance * imbalance
    )
