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
_OPENERS = "\"'“‘«("


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

_SENTENCE_STARTS = frozenset().union(*_PHRASE_STARTS.values()) | _words(
    "i i'm i've i'll i'd me my we we're our you your he his she her it it's its they their "
    "this these those there then now here what why how yes yeah no not okay ok oh well right "
    "sure so thanks thank please let let's maybe also just one two three first next last "
    "is are was were do does did have has had can could will would should shall may might must "
    "je tu il elle nous vous ils elles oui non alors ich du er sie es wir ihr ja nein yo tú él "
    "ella nosotros sí bueno pues"
)
"""Words that commonly open a sentence, so a capitalised one after "X." is no name."""


def spaces_words(language: str) -> bool:
    """False for scripts without spaces between words (zh, ja, th, …)."""
    return language.split("-")[0].lower() not in _SPACELESS_LANGUAGES


def _core(word: str) -> str:
    """The word without surrounding spaces and closing quotes or brackets."""
    return word.strip().rstrip(_CLOSERS)


def ends_sentence(word: str, following: str | None = None) -> bool:
    """The word closes a sentence. Abbreviations ("Dr.", "e.g.") never do; a one-letter word
    ("I.", "J.") does unless `following`, the next word, is what an initial stands before: a
    capitalised name ("J. Smith") or another initial ("J. R. R."), never a word that commonly
    starts a sentence ("Neither did I. Okay", "It was plan B. Then").
    """
    core = _core(word)
    if not core or core[-1] not in _SENTENCE_END:
        return False
    if core[-1] == "." and not core.endswith(".."):
        stem = core[:-1].lstrip(_OPENERS).lower()
        if stem in _ABBREVIATIONS:
            return False
        if len(stem) == 1 and stem.isalpha():
            return not _initial_before(core[:-1].lstrip(_OPENERS), following)
    return True


def _initial_before(letter: str, following: str | None) -> bool:
    """A capital letter and a full stop stand before a name or another initial."""
    if following is None or not letter.isupper():
        return False
    core = _core(following).lstrip(_OPENERS)
    if not core[:1].isupper():
        return False
    stem = core.rstrip(".")
    if len(stem) == 1 and core.endswith("."):
        return True  # "J. R. R. Tolkien"
    return _plain(core).lower() not in _SENTENCE_STARTS


def _plain(word: str) -> str:
    """The word without trailing punctuation ("Okay," -> "Okay")."""
    end = len(word)
    while end and not word[end - 1].isalnum():
        end -= 1
    return word[:end]


def ends_clause(word: str, following: str | None = None) -> bool:
    """The word closes a clause: a comma, semicolon, colon, dash, or a sentence end."""
    core = _core(word)
    return bool(core) and (core[-1] in _CLAUSE_END or ends_sentence(word, following))


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
        1.0 * ends_sentence(before, after)
        + 2.0 * (ends_clause(before, after) or opens_clause(after))
        + 0.5 * starts_phrase(after, language)
        + 4.0 * gap
        - 3.0 * imbalance * imbalance
    )
