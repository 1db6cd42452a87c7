"""Hallo's vocal separation before wav2vec (spec hallo.md §1.4 step 1), when it can run.

The official ``AudioProcessor`` runs ``audio_separator.Separator(output_single_stem="vocals")``
with ``Kim_Vocal_2.onnx`` (MDX-Net) on the driving audio file as it is, then resamples the vocals
stem to 16 kHz (``ffmpeg -ar 16000``: 16-bit PCM WAV) and loads it as mono. The muxed video keeps
the original audio. Here the same happens when the weights folder has
``audio_separator/Kim_Vocal_2.onnx`` *and* the optional ``audio-separator`` package is installed
(it is not a GenHuman dependency); otherwise the audio is used as it is and one line says why.
"""

from __future__ import annotations

import importlib.util
import logging
import wave as wave_module
from pathlib import Path
from typing import Optional, Union, overload

import numpy as np

from genhuman.errors import GenHumanError
from genhuman.media.audio import open_audio, save_wav
from genhuman.media.audio_clip import SAMPLE_RATE

log = logging.getLogger(__name__)

PACKAGE = "audio_separator"
CHUNK_SECONDS = 30.0  # the 16 kHz copy is written in pieces: memory stays flat for long audio


def skip_reason(model: Optional[Path]) -> Optional[str]:
    """Why separation cannot run (None: it can)."""
    if model is None:
        return "the weights folder has no audio_separator/Kim_Vocal_2.onnx"
    if not Path(model).is_file():
        return f"{str(model)!r} does not exist"
    if importlib.util.find_spec(PACKAGE) is None:
        return "the optional audio-separator package is not installed (pip install audio-separator)"
    return None


@overload
def separate_vocals(audio: Union[str, Path], model: Optional[Path], work_dir: Union[str, Path]) -> Union[str, Path]:
    ...


@overload
def separate_vocals(audio: np.ndarray, model: Optional[Path], work_dir: Union[str, Path]) -> np.ndarray:
    ...


def separate_vocals(audio: Union[str, Path, np.ndarray], model: Optional[Path],
                    work_dir: Union[str, Path]) -> Union[str, Path, np.ndarray]:
    """The vocals of ``audio``, or ``audio`` itself (logged once) when separation cannot run.

    ``audio``: a file (separated as it is, like the official code) or a 16 kHz mono array.
    ``model``: ``HalloComponents.vocal_separator``. A file gives a 16 kHz mono WAV in ``work_dir``,
    an array an array; ``load_audio`` / ``open_audio`` read either."""
    reason = skip_reason(model)
    if reason is not None:
        log.info("vocal separation skipped: %s; the audio is used as it is", reason)
        return audio
    assert model is not None
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    if isinstance(audio, np.ndarray):
        save_wav(work / "input.wav", audio)
        with open_audio(_separate(work / "input.wav", Path(model), work)) as clip:
            return clip.to_array()
    return _separate(Path(audio), Path(model), work)


def _separate(source: Path, model: Path, work: Path) -> Path:
    from audio_separator.separator import Separator

    try:
        separator = Separator(output_dir=str(work), output_single_stem="vocals", model_file_dir=str(model.parent))
        separator.load_model(model.name)
        outputs = separator.separate(str(source))
    except Exception as exc:  # the package's own failures: one line, not its traceback
        raise GenHumanError(f"vocal separation with {str(model)!r} failed: {exc}") from exc
    if not outputs:
        raise GenHumanError(f"vocal separation with {str(model)!r} wrote no vocals for {str(source)!r}")
    vocals = work / outputs[0]  # a bare name (older versions) or a full path
    return _to_16k_wav(vocals, work / f"{vocals.stem}-16k.wav")


def _to_16k_wav(source: Path, target: Path) -> Path:
    """``source`` as 16 kHz mono 16-bit PCM, as the official ffmpeg resampling writes it."""
    with open_audio(source) as clip, wave_module.open(str(target), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        for chunk in clip.chunks(CHUNK_SECONDS):
            out.writeframes((np.clip(chunk, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes())
    return target
