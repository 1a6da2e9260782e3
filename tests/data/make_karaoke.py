"""Regenerate the karaoke word-timing fixtures: `karaoke_*.flac` and their truth `karaoke.json`.

Run with the project venv from the repository root::

    .venv/bin/python tests/data/make_karaoke.py [tuned | held-out]

Unlike `make_word_timing.py`, words are not synthesised one by one: every phrase is spoken
whole by libespeak-ng, so words run into each other as in fluent speech (co-articulation, no
gap between words). libespeak-ng reports a WORD event with the exact output sample at which
each word begins, and a PHONEME event for each phoneme, pauses (`_`, `_:`, ...) included. So a
word starts at its WORD event and ends where the next word starts, or where the first pause
phoneme after it begins. Each phrase is cut from its first word's start to its last word's end
and the phrases are joined with seeded gaps of digital silence (350-1000 ms), so the first word
of each phrase follows a known pause. Faint seeded white noise (about -74 dBFS) goes over the
whole file; SoX resamples espeak-ng's 22,050 Hz output to 16 kHz mono.

The truth is `{fixture: {"language", "voice", "rate", "words": [{"word", "start", "end",
"gap"}]}}` in seconds (millisecond precision); `gap` is the silence before the word, 0.0 inside
a phrase and the inserted pause for a phrase's first word (the lead-in for the file's first).

Needs the Debian packages `espeak-ng` (1.51, for `libespeak-ng.so.1`) and `sox` (14.4.2); the
output is deterministic for fixed tool versions (SoX runs without dither, in repeatable mode).
"""

from __future__ import annotations

import ctypes
import json
import random
import subprocess
import sys
import tempfile
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

OUT_DIR = Path(__file__).resolve().parent
SAMPLE_RATE = 16_000
SOX = ("sox", "-R", "-D", "-V1")
GAP_S = (0.35, 1.0)
EDGE_S = 0.5
NOISE_RMS = 0.0002
SEED = 20_261_130

Samples = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Fixture:
    """One file: a voice at a speaking rate, and its phrases (joined with pauses)."""

    name: str
    language: str
    voice: str
    rate: int  # words per minute
    sentences: tuple[str, ...]  # "|" marks a pause inside a sentence

    @property
    def phrases(self) -> list[str]:
        """The stretches spoken without a pause."""
        return [part.strip() for s in self.sentences for part in s.split("|")]


FIXTURES: tuple[Fixture, ...] = (
    Fixture(
        "en_us_160",
        "en",
        "en-us",
        160,
        (
            "The old fisherman carried his nets | down to the harbour every morning",
            "Nobody in the village | remembered when he had started doing it",
            "On cold days the water looked grey | and heavy like melted lead",
            "Still he rowed out past the rocks and waited | for the tide to turn",
            "In the evening he sold what he caught | to the woman who ran the inn",
            "She always paid him | a little more than the fish were worth",
        ),
    ),
    Fixture(
        "en_gb_rp_f_200",
        "en",
        "en-gb-x-rp+f3",
        200,
        (
            "Please remember to switch off the lights | before you leave the office",
            "The cleaners will arrive at seven | and they need the back door open",
            "If anyone asks about the delivery | tell them it was moved to Thursday",
            "We are still waiting for the new printer | to be installed upstairs",
            "Thank you all for your patience | during these busy weeks",
        ),
    ),
    Fixture(
        "en_us_m_130",
        "en",
        "en-us+m3",
        130,
        (
            "My brother bought a small boat | last summer",
            "He painted it blue | and named it after our grandmother",
            "Every weekend we sail along the coast | looking for quiet beaches",
            "Last time a storm came in | and we had to turn back early",
            "Next year we want to cross the bay | and visit the island",
        ),
    ),
    Fixture(
        "de_160",
        "de",
        "de",
        160,
        (
            "Meine Schwester wohnt seit vielen Jahren | in einer kleinen Stadt am Meer",
            "Jeden Morgen geht sie mit ihrem Hund | am Strand spazieren",
            "Im Sommer kommen viele Touristen | und die Straßen sind voll",
            "Im Winter ist es dort sehr ruhig | und oft auch ziemlich kalt",
            "Wir besuchen sie gern zu Weihnachten | und bleiben eine Woche",
        ),
    ),
    Fixture(
        "fr_160",
        "fr",
        "fr",
        160,
        (
            "Tous les samedis nous allons au marché | pour acheter des légumes",
            "Ma mère choisit toujours | les tomates les plus rouges",
            "Mon père préfère parler avec le boulanger | pendant des heures",
            "Après le marché | nous mangeons ensemble dans un petit café",
            "Le soir nous préparons une grande soupe | pour toute la famille",
        ),
    ),
    Fixture(
        "es_170",
        "es",
        "es",
        170,
        (
            "Mi abuelo tenía una pequeña tienda de libros | en el centro de la ciudad",
            "Los domingos por la mañana yo le ayudaba | a ordenar las estanterías",
            "Muchos clientes venían solamente | para hablar con él",
            "Siempre tenía una historia nueva | sobre sus viajes por el mundo",
            "Ahora la tienda está cerrada | pero todavía recuerdo su olor",
        ),
    ),
    # Added after the aligner's connected-speech share was chosen on the six above.
    Fixture(
        "en_us_f_180",
        "en",
        "en-us+f2",
        180,
        (
            "Our neighbour grows tomatoes | in a long green house behind the garage",
            "Every autumn she gives us | more than we could ever eat",
            "Last year my father made soup | for the whole street",
            "This year we will try | to make sauce and keep it for winter",
            "The children already asked | if they can help with the jars",
        ),
    ),
    Fixture(
        "en_sc_150",
        "en",
        "en-gb-scotland",
        150,
        (
            "The bus to the airport leaves | from the north side of the station",
            "You can buy a ticket from the driver | or from the machine",
            "On weekends the first bus | leaves half an hour later",
            "If you miss it | there is a taxi rank across the road",
            "Remember to keep your receipt | for the journey back",
        ),
    ),
    Fixture(
        "it_150",
        "it",
        "it",
        150,
        (
            "Ogni estate andiamo al mare | con tutta la famiglia",
            "Mio padre guida la macchina | e mia madre prepara i panini",
            "Arriviamo sempre verso mezzogiorno | quando fa molto caldo",
            "Nel pomeriggio giochiamo sulla spiaggia | fino al tramonto",
            "La sera mangiamo il pesce | in un piccolo ristorante",
        ),
    ),
    Fixture(
        "nl_150",
        "nl",
        "nl",
        150,
        (
            "Mijn oom woont in een oud huis | aan de rand van het bos",
            "Elke zondag wandelen wij samen | naar het meer",
            "Hij vertelt dan verhalen | over zijn jeugd op de boerderij",
            "In de winter is het pad | vaak nat en glad",
            "Daarna drinken wij warme chocolade | bij de open haard",
        ),
    ),
    # Added with the held-out set below, to tune on slow and fast speech as well.
    Fixture(
        "en_us_m7_110",
        "en",
        "en-us+m7",
        110,
        (
            "The old clock in the hall | stopped working last winter",
            "Nobody could find a person | who knew how to repair it",
            "One day a man from the village | knocked on our door",
            "He opened the case carefully | and cleaned every small wheel",
            "Now it rings again | every hour of the day",
        ),
    ),
    Fixture(
        "en_rp_f5_125",
        "en",
        "en-gb-x-rp+f5",
        125,
        (
            "We planted an apple tree | when my daughter was born",
            "For years it gave no fruit | and we almost cut it down",
            "Then one spring it was covered | in white flowers",
            "That autumn we picked | three full baskets of apples",
            "My daughter still says | it is her tree",
        ),
    ),
    Fixture(
        "en_rp_230",
        "en",
        "en-gb-x-rp",
        230,
        (
            "The train was delayed again | so I called the office",
            "My colleague said the meeting | would start without me",
            "When I finally arrived | everyone was already at lunch",
            "We moved the discussion | to the afternoon",
            "In the end we agreed on a plan | before six o'clock",
        ),
    ),
    Fixture(
        "es_m2_120",
        "es",
        "es+m2",
        120,
        (
            "Mi vecino tiene un huerto | detrás de su casa",
            "Allí cultiva fresas | y muchos tomates",
            "Cada verano nos invita | a recoger la fruta",
            "Los niños comen más fresas | de las que recogen",
            "Por la noche hacemos mermelada | todos juntos",
        ),
    ),
)

# Held out: voices, variants and rates the boundary refiner was never tuned or checked on, for
# `bench/word_timing.py` to report on their own (`karaoke_heldout.json`, `karaoke_heldout_*`).
HELD_OUT: tuple[Fixture, ...] = (
    Fixture(
        "en_lancs_140",
        "en",
        "en-gb-x-gbclan",
        140,
        (
            "The library opens at nine | on every weekday",
            "Students usually come in the afternoon | when the lectures are over",
            "The quiet room upstairs | is always full before the exams",
            "Books can be borrowed for three weeks | and then returned at the desk",
            "Please switch your phone to silent | before you go inside",
        ),
    ),
    Fixture(
        "en_029_170",
        "en",
        "en-029",
        170,
        (
            "The boat to the island leaves | early in the morning",
            "Fishermen sell their catch | on the beach beside the market",
            "In the afternoon the wind gets stronger | and the waves grow high",
            "Most visitors stay | in the small hotels near the harbour",
            "At night you can hear music | from the bars along the shore",
        ),
    ),
    Fixture(
        "en_us_f4_210",
        "en",
        "en-us+f4",
        210,
        (
            "I forgot my umbrella on the train | and got completely wet",
            "The meeting started without me | so I missed the first part",
            "My manager did not seem to mind | because the numbers were good",
            "After lunch we talked about the budget | for the next quarter",
            "Tomorrow I will leave the house earlier | and take the bus",
        ),
    ),
    Fixture(
        "en_wmids_m5_120",
        "en",
        "en-gb-x-gbcwmd+m5",
        120,
        (
            "My grandfather kept bees | at the bottom of his garden",
            "He wore a white hat with a net | whenever he opened the hives",
            "In August we helped him | collect the honey in big jars",
            "The kitchen smelled sweet | for days afterwards",
            "He gave a jar to every family | on our street",
        ),
    ),
    Fixture(
        "pt_150",
        "pt",
        "pt",
        150,
        (
            "A minha tia mora numa casa antiga | perto do rio",
            "Todas as manhãs ela compra pão fresco | na padaria da esquina",
            "Depois do almoço gosta de ler | no jardim das traseiras",
            "No verão os netos vêm visitá-la | durante duas semanas",
            "À noite jantamos todos juntos | e contamos histórias",
        ),
    ),
    Fixture(
        "de_f3_190",
        "de",
        "de+f3",
        190,
        (
            "Unser Nachbar repariert gern alte Fahrräder | in seiner Garage",
            "Am Wochenende kommen oft Kinder vorbei | und bringen ihre Räder mit",
            "Er zeigt ihnen geduldig | wie man einen Reifen wechselt",
            "Danach trinken alle zusammen Limonade | auf der Terrasse",
            "Im Herbst verkauft er die Räder | auf dem Flohmarkt",
        ),
    ),
)


# --- libespeak-ng through ctypes ----------------------------------------------------------------

_SYNCHRONOUS = 2  # AUDIO_OUTPUT_SYNCHRONOUS
_PHONEME_EVENTS = 0x0001  # espeakINITIALIZE_PHONEME_EVENTS
_CHARS_UTF8 = 1
_RATE = 1  # espeakRATE
_EVENT_WORD = 1
_EVENT_PHONEME = 7


class _Event(ctypes.Structure):
    _fields_ = (
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    )


_Callback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


class Espeak:
    """Synchronous libespeak-ng: the samples of a phrase and its word/phoneme events."""

    def __init__(self) -> None:
        self._lib = ctypes.CDLL("libespeak-ng.so.1")
        self.rate = int(self._lib.espeak_Initialize(_SYNCHRONOUS, 0, None, _PHONEME_EVENTS))
        self._chunks: list[npt.NDArray[np.int16]] = []
        self._events: list[tuple[int, int, int, str]] = []
        self._callback = _Callback(self._collect)
        self._lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav: ctypes._Pointer[ctypes.c_short], count: int, events: object) -> int:
        if wav and count > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        pointer = ctypes.cast(events, ctypes.POINTER(_Event))
        index = 0
        while pointer[index].type != 0:
            event = pointer[index]
            name = bytes(event.id).split(b"\0")[0].decode("latin-1")
            self._events.append((event.type, event.sample, event.text_position, name))
            index += 1
        return 0

    def speak(
        self, voice: str, rate: int, text: str
    ) -> tuple[Samples, list[tuple[int, int, int, str]]]:
        """The phrase's samples (espeak's own rate) and its (type, sample, text position, id)
        events."""
        self._chunks, self._events = [], []
        if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise RuntimeError(f"espeak-ng has no voice {voice!r}")
        self._lib.espeak_SetParameter(_RATE, rate, 0)
        data = text.encode("utf-8")
        self._lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, _CHARS_UTF8, None, None)
        self._lib.espeak_Synchronize()
        samples = np.concatenate(self._chunks).astype(np.float32) / 32768.0
        return samples.astype(np.float32), self._events


@dataclass(frozen=True)
class Span:
    """One word in a phrase, in samples; None where espeak-ng gave no boundary."""

    start: int | None
    end: int | None
    gap: int  # pause (silence phonemes) just before the word


def word_spans(
    words: Sequence[str], events: Sequence[tuple[int, int, int, str]], total: int
) -> tuple[list[Span], int]:
    """Each word's span and where the phrase's speech ends.

    A word starts at its WORD event and ends at the next WORD event or at the first pause
    phoneme before it. espeak-ng sometimes speaks a short word as one unit with the word before
    it ("of a", "in the"); such a word has no event of its own, so its start and the end of the
    word before it are unknown (None).
    """
    offsets, position = [], 1  # WORD events give 1-based character positions
    for word in words:
        offsets.append(position)
        position += len(word) + 1
    starts: dict[int, int] = {}
    for kind, sample, text_position, _ in events:
        if kind == _EVENT_WORD and text_position in offsets:  # not the final empty one
            starts[offsets.index(text_position)] = sample
    if 0 not in starts:
        raise RuntimeError(f"no word event for the first word of {words}")
    pauses = [s for kind, s, _, name in events if kind == _EVENT_PHONEME and name.startswith("_")]
    ordered = sorted(starts.items())
    ends: dict[int, int] = {}
    gaps: dict[int, int] = {}
    speech_end = total
    for rank, (index, start) in enumerate(ordered):
        limit = ordered[rank + 1][1] if rank + 1 < len(ordered) else total
        end = min([p for p in pauses if start < p < limit], default=limit)
        if rank + 1 < len(ordered):
            gaps[ordered[rank + 1][0]] = limit - end
        else:
            speech_end = end
        if index + 1 in starts or index == len(words) - 1:
            ends[index] = end
    if len(words) - 1 not in starts:
        raise RuntimeError(f"no word event for the last word of {words}")
    spans = [Span(starts.get(i), ends.get(i), gaps.get(i, 0)) for i in range(len(words))]
    return spans, speech_end


# --- assembling a file --------------------------------------------------------------------------


def run(cmd: Sequence[str | Path]) -> None:
    """Run a command, failing loudly."""
    subprocess.run([str(c) for c in cmd], check=True)


def write_wav(path: Path, samples: Samples, rate: int) -> None:
    """float32 samples -> 16-bit mono WAV."""
    pcm = np.clip(np.round(samples * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())


def build(
    engine: Espeak, fixture: Fixture, rng: random.Random
) -> tuple[Samples, list[dict[str, float | str | None]]]:
    """Phrases cut to their words and joined with known pauses; the samples and the truth."""
    rate = engine.rate
    lead = int(EDGE_S * rate)
    parts: list[Samples] = [np.zeros(lead, dtype=np.float32)]
    cursor, gap = lead, EDGE_S
    truth: list[dict[str, float | str | None]] = []
    for number, phrase in enumerate(fixture.phrases):
        if number:
            gap = round(rng.uniform(*GAP_S), 3)
            parts.append(np.zeros(int(gap * rate), dtype=np.float32))
            cursor += len(parts[-1])
            gap = len(parts[-1]) / rate
        words = phrase.split()
        samples, events = engine.speak(fixture.voice, fixture.rate, phrase)
        spans, last = word_spans(words, events, len(samples))
        first = spans[0].start or 0
        for index, (word, span) in enumerate(zip(words, spans, strict=True)):
            truth.append(
                {
                    "word": word,
                    "start": _seconds(cursor, span.start, first, rate),
                    "end": _seconds(cursor, span.end, first, rate),
                    "gap": round(gap if index == 0 else span.gap / rate, 3),
                }
            )
        parts.append(samples[first:last])
        cursor += last - first
    parts.append(np.zeros(lead, dtype=np.float32))
    return np.concatenate(parts), truth


def _seconds(cursor: int, sample: int | None, first: int, rate: int) -> float | None:
    return None if sample is None else round((cursor + sample - first) / rate, 3)


def add_noise(samples: Samples, seed: int) -> Samples:
    """Faint seeded white noise, so silence is quiet rather than exactly zero."""
    noise = np.random.default_rng(seed).normal(0.0, NOISE_RMS, len(samples))
    return (samples + noise).astype(np.float32)


def write_set(engine: Espeak, fixtures: Sequence[Fixture], prefix: str, seed: int) -> None:
    """Write `<prefix>_<name>.flac` for every fixture and `<prefix>.json` beside this script."""
    rng = random.Random(seed)
    truths: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        for number, fixture in enumerate(fixtures):
            samples, words = build(engine, fixture, rng)
            joined = tmp / "joined.wav"
            write_wav(joined, add_noise(samples, seed + number), engine.rate)
            out = OUT_DIR / f"{prefix}_{fixture.name}.flac"
            run([*SOX, joined, "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", out])
            truths[fixture.name] = {
                "language": fixture.language,
                "voice": fixture.voice,
                "rate": fixture.rate,
                "words": words,
            }
            print(f"{out.name}: {len(words)} words, {len(samples) / engine.rate:.2f} s")
    text = json.dumps(truths, indent=1, ensure_ascii=False) + "\n"
    (OUT_DIR / f"{prefix}.json").write_text(text, encoding="utf-8")


def main() -> None:
    """Both sets, or the one named: `tuned` (karaoke_*) or `held-out` (karaoke_heldout_*)."""
    chosen = sys.argv[1] if len(sys.argv) > 1 else "all"
    engine = Espeak()
    if chosen in ("all", "tuned"):
        write_set(engine, FIXTURES, "karaoke", SEED)
    if chosen in ("all", "held-out"):
        write_set(engine, HELD_OUT, "karaoke_heldout", SEED + 1)


if __name__ == "__main__":
    main()
