"""Phone timings from pocketsphinx: forced alignment with a transcript, phone recognition without.

Input is 16 kHz mono float32. pocketsphinx works in 10 ms frames; times returned here
are seconds relative to the start of the given wave.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass

import numpy as np

from genhuman.media import SAMPLE_RATE
from genhuman.speech.g2p import word_to_arpabet
from genhuman.speech.visemes import SILENCE

logger = logging.getLogger(__name__)

FRAME_S = 0.01  # pocketsphinx frame shift
# Silence added around the audio: speech that starts or ends right at the edge of the
# clip (typical of TTS) otherwise leaves no room for the aligner's boundary silences.
EDGE_PAD_S = 0.25
PIECE_S = 20.0  # length of the pieces the phone-level alignment pass works on
MIN_CUT_PAUSE_S = 0.25  # pieces are cut only in pauses this long (word edges are fuzzy)

# Filler and noise models of the en-us acoustic model: no articulation to show.
NON_SPEECH = frozenset({"SIL", "+NSN+", "+SPN+", "+BREATH+", "+COUGH+", "+NOISE+", "+UM+"})

_WORD_RE = re.compile(r"[^\W_]+(?:'[^\W_]+)*")  # letters/digits, inner apostrophes
_VARIANT_RE = re.compile(r"\(\d+\)$")

# pocketsphinx decoders are not thread-safe, and ``fresh=False`` continues from the
# previous call's feature state: each thread gets its own decoders (made on first use,
# a few MB each), so engine workers align in parallel and one job's pieces continue
# from that job's previous piece. Only the engine workers (and the CLI) call these.
_decoders = threading.local()


@dataclass(frozen=True)
class Phone:
    phone: str  # ARPAbet without stress, or "SIL"
    start: float  # seconds
    end: float  # seconds, exclusive
    word: str | None = None  # the transcript word it belongs to (forced alignment only)

    @property
    def is_speech(self) -> bool:
        return self.phone not in NON_SPEECH


def _aligner():
    decoder = getattr(_decoders, "aligner", None)
    if decoder is None:
        import pocketsphinx

        # No language model: alignment only needs the dictionary (and loads 4x faster).
        decoder = _decoders.aligner = pocketsphinx.Decoder(lm=None, loglevel="FATAL")
    return decoder


def _recognizer():
    decoder = getattr(_decoders, "recognizer", None)
    if decoder is None:
        import pocketsphinx

        decoder = _decoders.recognizer = pocketsphinx.Decoder(
            allphone=pocketsphinx.get_model_path("en-us/en-us-phone.lm.bin"),
            lw=2.0, beam=1e-20, pbeam=1e-20, loglevel="FATAL",
        )
    return decoder


def _to_pcm(wave: np.ndarray) -> bytes:
    pad = np.zeros(int(EDGE_PAD_S * SAMPLE_RATE), dtype="<i2")
    pcm = (np.clip(wave, -1.0, 1.0) * 32767.0).astype("<i2")
    return np.concatenate([pad, pcm, pad]).tobytes()


def _phone(name: str, start_frame: int, end_frame: int, offset: float, duration: float,
           word: str | None = None) -> Phone | None:
    """A Phone in clip seconds (padding removed, clipped to the clip); None if outside it."""
    start = min(max(start_frame * FRAME_S - EDGE_PAD_S, 0.0), duration)
    end = min(max(end_frame * FRAME_S - EDGE_PAD_S, 0.0), duration)
    if end <= start:
        return None
    return Phone(_normalise(name), offset + start, offset + end, word)


def transcript_words(text: str) -> list[str]:
    """Lower-cased words of a transcript, punctuation removed ("Hello, moon!" -> hello moon)."""
    return _WORD_RE.findall(text.lower())


def _ensure_in_dictionary(decoder, words: list[str]) -> list[str]:
    """Add letter-to-sound pronunciations for unknown words; drop words with none."""
    known = []
    for word in words:
        if decoder.lookup_word(word) is None:
            phones = word_to_arpabet(word)
            if not phones:
                logger.info("no pronunciation for %r; leaving it out of the alignment", word)
                continue
            decoder.add_word(word, " ".join(phones), True)
        known.append(word)
    return known


def _decode(decoder, pcm: bytes, fresh: bool = False) -> None:
    """One utterance (the caller holds the decoder's lock). pocketsphinx starts each
    utterance from the previous one's cepstral mean, so the same audio would decode a
    little differently depending on what this process decoded before; ``fresh`` starts
    from the model's initial mean instead (the first utterance of each decode sequence)."""
    if fresh:
        _reset_features(decoder)
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()


def _reset_features(decoder) -> None:
    try:
        decoder.reinit_feat()  # the feature extraction as new (0.1 ms)
    except Exception as exc:  # an older pocketsphinx: results only depend a little on history
        logger.debug("could not reset the feature extraction: %s", exc)


def align(wave: np.ndarray, text: str, offset: float = 0.0, *, fresh: bool = True) -> list[Phone] | None:
    """Force-align a transcript; None when the words cannot be aligned to this audio.

    Two passes: word boundaries for the whole clip (memory stays flat with length), then
    phone boundaries piece by piece (this pass keeps every frame's states, so its memory
    grows with length), the pieces cut in silences the first pass found. ``fresh``: start
    from the model's initial feature state rather than what earlier decodes left (so that
    the result does not depend on them).
    """
    words = transcript_words(text)
    if not words:
        return None
    decoder = _aligner()
    words = _ensure_in_dictionary(decoder, words)
    if not words:
        return None
    try:
        decoder.set_align_text(" ".join(words))
        _decode(decoder, _to_pcm(wave), fresh=fresh)
        found = decoder.seg()
        if found is None:  # no path through the words at all
            logger.info("forced alignment found no path through the transcript")
        segments = [(s.word, s.start_frame, s.end_frame + 1) for s in found or ()]
        pieces = _pieces(segments, len(wave))
        if len(pieces) == 1:  # the first pass already holds this audio: reuse it
            decoder.set_alignment()
            _decode(decoder, _to_pcm(wave))
            return _phones_of(decoder, wave, offset)
    except RuntimeError as exc:
        logger.info("forced alignment failed: %s", exc)
        return None
    phones: list[Phone] = []
    for start, end, piece_words in pieces:
        piece = wave[start:end]
        piece_phones = _align_piece(decoder, piece, piece_words, offset + start / SAMPLE_RATE)
        if piece_phones is None:  # one bad piece should not lose the whole transcript
            logger.info("piece at %.1f s did not align; recognising its phones", start / SAMPLE_RATE)
            piece_phones = recognize(piece, offset + start / SAMPLE_RATE)
        phones += piece_phones
    return phones or None


def _align_piece(decoder, piece: np.ndarray, words: list[str], offset: float) -> list[Phone] | None:
    pcm = _to_pcm(piece)
    try:
        decoder.set_align_text(" ".join(words))
        _decode(decoder, pcm)
        decoder.set_alignment()
        _decode(decoder, pcm)
    except RuntimeError:
        return None
    return _phones_of(decoder, piece, offset)


def _pieces(segments: list[tuple[str, int, int]], n_samples: int) -> list[tuple[int, int, list[str]]]:
    """(start_sample, end_sample, words) pieces of about PIECE_S, cut mid-silence."""
    pad = int(EDGE_PAD_S * SAMPLE_RATE)
    hop = int(FRAME_S * SAMPLE_RATE)
    pieces, start, words = [], 0, []
    for word, first, last in segments:
        name = _word_name(word)
        if name:
            words.append(name)
        cut = min(max((first + last) // 2 * hop - pad, 0), n_samples)
        long_pause = name is None and last - first >= MIN_CUT_PAUSE_S / FRAME_S
        if long_pause and words and cut - start >= PIECE_S * SAMPLE_RATE:
            pieces.append((start, cut, words))
            start, words = cut, []
    if words:
        pieces.append((start, n_samples, words))
    elif pieces:
        pieces[-1] = (pieces[-1][0], n_samples, pieces[-1][2])
    return pieces


def _phones_of(decoder, wave: np.ndarray, offset: float) -> list[Phone] | None:
    alignment = decoder.get_alignment()
    if alignment is None:
        return None
    duration = len(wave) / SAMPLE_RATE
    phones = [
        _phone(p.name, p.start, p.start + p.duration, offset, duration, _word_name(w.name))
        for w in alignment.words()
        for p in w
    ]
    return [p for p in phones if p is not None] or None


def recognize(wave: np.ndarray, offset: float = 0.0, *, fresh: bool = True) -> list[Phone]:
    """Phone recognition (allphone search with the bundled phonetic language model); empty
    when pocketsphinx finds no hypothesis. ``fresh``: start from the model's initial feature
    state; False continues from the previous call's (the later pieces of one recording)."""
    pcm = _to_pcm(wave)
    decoder = _recognizer()
    _decode(decoder, pcm, fresh=fresh)
    duration = len(wave) / SAMPLE_RATE
    phones = [_phone(s.word, s.start_frame, s.end_frame + 1, offset, duration)
              for s in decoder.seg() or ()]
    return [p for p in phones if p is not None]


def _word_name(name: str) -> str | None:
    """'an(2)' -> 'an' (pronunciation variant); fillers such as '<sil>' -> None."""
    name = _VARIANT_RE.sub("", name)
    return None if name.startswith("<") or name.startswith("+") else name


def _normalise(name: str) -> str:
    name = name.upper()
    return SILENCE if name in ("<SIL>", "SIL", "<S>", "</S>") else name.rstrip("012")
