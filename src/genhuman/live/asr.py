"""Speech recognition of the user's turns: partial hypotheses while they talk, the final text
at the end of the turn.

    recognizer = SphinxRecognizer()             # or OpenAITranscriber(url)
    recognizer.start()                          # a new utterance
    partial = recognizer.push(chunk)            # 16 kHz mono float32; new partial text or None
    text = recognizer.finish()                  # the final text, "" when nothing was recognised

:class:`SphinxRecognizer` is embedded (pocketsphinx's en-us model and language model, English
only, ~0.3 x real time on one core); :class:`OpenAITranscriber` sends the turn to any
OpenAI-compatible ``/v1/audio/transcriptions`` server (whisper.cpp, faster-whisper, vLLM,
OpenAI) when it ends, so it gives no partials. A recognizer handles one audio stream, from
one thread at a time.
"""

from __future__ import annotations

import io
import json
import logging
import re
import socket
import urllib.error
import urllib.request
import uuid
import wave
from typing import Any, Optional, Protocol

import numpy as np

from genhuman.errors import GenHumanError, InputError
from genhuman.media import SAMPLE_RATE
from genhuman.speech.streaming import as_samples

logger = logging.getLogger(__name__)

PARTIAL_EVERY_S = 0.25  # audio between two partial hypotheses (each costs a backtrace)
MAX_UPLOAD_S = 600.0  # audio an OpenAITranscriber keeps per utterance (~19 MB of WAV)
_VARIANT = re.compile(r"\(\d+\)$")  # pocketsphinx's pronunciation variants: "capital(2)"


class ASRError(GenHumanError):
    """Speech recognition failed (server unreachable, bad answer, decoder error): one sentence."""


class Recognizer(Protocol):
    def start(self) -> None:
        """Begin a new utterance (any unfinished one is dropped)."""

    def push(self, samples: np.ndarray) -> Optional[str]:
        """Feed 16 kHz mono float32 audio; the new partial hypothesis when it changed, else None."""

    def finish(self) -> str:
        """End the utterance; its final text, "" when nothing was recognised."""


def to_pcm16(samples: np.ndarray) -> np.ndarray:
    """Little-endian 16-bit PCM of float samples in [-1, 1] (clipped)."""
    return (np.clip(as_samples(samples), -1.0, 1.0) * 32767.0).astype("<i2")


def clean_hypothesis(text: str) -> str:
    """Words only: fillers (<sil>, [NOISE], +BREATH+) and variant marks removed."""
    words = (_VARIANT.sub("", w) for w in text.split())
    return " ".join(w for w in words if w and w[0] not in "<[+")


class SphinxRecognizer:
    """pocketsphinx 5 streaming decoder with its bundled en-us acoustic and language models.

    A partial hypothesis is read at most every ``partial_every_s`` of audio. ``second_pass``
    runs pocketsphinx's flat-lexicon pass at the end of the utterance: ~0.04 s more per
    second of speech spent in :meth:`finish` (the end-of-turn latency) for little gain on
    short turns, so it is off by default. The decoder loads (~0.5 s) on first use or
    :meth:`load`.
    """

    name = "pocketsphinx"

    def __init__(self, *, partial_every_s: float = PARTIAL_EVERY_S, second_pass: bool = False):
        if not 0.0 < partial_every_s <= 10.0:
            raise InputError(f"partial_every_s must be between 0 and 10 seconds, not {partial_every_s!r}")
        self._partial_every = int(partial_every_s * SAMPLE_RATE)
        self._second_pass = bool(second_pass)
        self._decoder: Any = None  # pocketsphinx.Decoder, made by load()
        self._in_utterance = False
        self._since_partial = 0
        self._partial = ""

    def load(self) -> None:
        """Make the decoder now (it is otherwise made by the first utterance)."""
        if self._decoder is not None:
            return
        try:
            import pocketsphinx

            self._decoder = pocketsphinx.Decoder(fwdflat=self._second_pass, loglevel="FATAL")
        except Exception as exc:  # a broken install: say what failed, in one sentence
            raise ASRError(f"the embedded speech recognizer (pocketsphinx) could not load: {exc}") from exc

    def start(self) -> None:
        self.load()
        if self._in_utterance:
            self._decoder.end_utt()  # drop the unfinished one
        self._decoder.start_utt()
        self._in_utterance = True
        self._since_partial = 0
        self._partial = ""

    def hypothesis_now(self) -> str:
        """The hypothesis of everything pushed so far, read now (the conversation's
        speculative answer on a pause needs the words up to the pause, not the last partial)."""
        return self._hypothesis() if self._in_utterance else ""

    def push(self, samples: np.ndarray) -> Optional[str]:
        if not self._in_utterance:
            self.start()
        pcm = to_pcm16(samples)
        if not len(pcm):
            return None
        try:
            self._decoder.process_raw(pcm.tobytes(), False, False)
        except RuntimeError as exc:
            raise ASRError(f"pocketsphinx failed on the audio: {exc}") from exc
        self._since_partial += len(pcm)
        if self._since_partial < self._partial_every:
            return None
        self._since_partial = 0
        text = self._hypothesis()
        if not text or text == self._partial:
            return None
        self._partial = text
        return text

    def finish(self) -> str:
        if not self._in_utterance:
            return ""
        self._in_utterance = False
        try:
            self._decoder.end_utt()
        except RuntimeError as exc:
            raise ASRError(f"pocketsphinx failed at the end of the utterance: {exc}") from exc
        return self._hypothesis()

    def _hypothesis(self) -> str:
        hyp = self._decoder.hyp()
        return clean_hypothesis(hyp.hypstr) if hyp is not None else ""


def transcriptions_endpoint(url: str) -> str:
    """``{url}/v1/audio/transcriptions`` for a server URL given with or without ``/v1``."""
    if not isinstance(url, str) or not re.match(r"https?://[^/\s]+", url.strip()):
        raise InputError(f"the transcription server URL must start with http:// or https://, not {url!r}")
    base = url.strip().rstrip("/")
    if base.endswith("/audio/transcriptions"):
        return base
    if not base.endswith("/v1"):
        base += "/v1"
    return base + "/audio/transcriptions"


def wav_bytes(samples: np.ndarray) -> bytes:
    """A 16 kHz mono 16-bit PCM WAV file in memory."""
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(SAMPLE_RATE)
        writer.writeframes(to_pcm16(samples).tobytes())
    return out.getvalue()


def multipart_body(fields: dict[str, str], wav: bytes, boundary: str) -> bytes:
    """multipart/form-data with text ``fields`` and ``wav`` as the file field "file"."""
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="speech.wav"\r\n'
                 "Content-Type: audio/wav\r\n\r\n".encode() + wav + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode()


class OpenAITranscriber:
    """The turn's audio, buffered, sent as a WAV to an OpenAI-compatible transcription
    server when it ends; :meth:`push` never returns a partial."""

    name = "openai"

    def __init__(self, url: str, model: str = "whisper-1", api_key: Optional[str] = None,
                 timeout_s: float = 20.0, language: Optional[str] = None):
        self.endpoint = transcriptions_endpoint(url)
        self.url = url
        self.model = model
        self.api_key = api_key
        self.language = language
        if not 0.0 < timeout_s <= 600.0:
            raise InputError(f"timeout_s must be between 0 and 600 seconds, not {timeout_s!r}")
        self.timeout_s = float(timeout_s)
        self._chunks: list[np.ndarray] = []
        self._held = 0

    def start(self) -> None:
        self._chunks, self._held = [], 0

    def push(self, samples: np.ndarray) -> Optional[str]:
        wave_ = as_samples(samples)[: max(int(MAX_UPLOAD_S * SAMPLE_RATE) - self._held, 0)]
        if len(wave_):
            self._chunks.append(wave_)
            self._held += len(wave_)
        return None

    def finish(self) -> str:
        chunks, self._chunks, self._held = self._chunks, [], 0
        if not chunks:
            return ""
        fields = {"model": self.model, "response_format": "json"}
        if self.language:
            fields["language"] = self.language
        boundary = uuid.uuid4().hex
        request = urllib.request.Request(
            self.endpoint, data=multipart_body(fields, wav_bytes(np.concatenate(chunks)), boundary),
            method="POST", headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        if self.api_key:
            request.add_header("Authorization", f"Bearer {self.api_key}")
        return self._text_of(self._send(request))

    def _send(self, request: urllib.request.Request) -> bytes:
        where = f"the transcription server at {self.url}"
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            raise ASRError(f"{where} answered HTTP {exc.code}: {_error_message(exc)}") from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, (TimeoutError, socket.timeout)):
                raise ASRError(f"{where} did not answer within {self.timeout_s:g} s") from None
            if isinstance(reason, ConnectionRefusedError):
                raise ASRError(f"could not reach {where}: connection refused (is it running?)") from None
            raise ASRError(f"could not reach {where}: {reason}") from None
        except (TimeoutError, socket.timeout):
            raise ASRError(f"{where} did not answer within {self.timeout_s:g} s") from None
        except OSError as exc:  # reset connections and the like
            raise ASRError(f"the connection to {where} failed: {exc}") from None

    def _text_of(self, body: bytes) -> str:
        try:
            answer = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ASRError(f"the transcription server at {self.url} did not answer with JSON") from None
        if not isinstance(answer, dict) or not isinstance(answer.get("text"), str):
            raise ASRError(f"the transcription server at {self.url} sent no \"text\" in its answer")
        return " ".join(answer["text"].split())


def _error_message(exc: urllib.error.HTTPError) -> str:
    """The server's own message ({"error": {"message": ...}} or plain text), short."""
    try:
        body = exc.read().decode("utf-8", "replace")
    except OSError:
        body = ""
    try:
        error = json.loads(body).get("error")
        message = error.get("message") if isinstance(error, dict) else error
    except (json.JSONDecodeError, AttributeError):
        message = body
    message = " ".join(str(message or exc.reason).split())
    return message[:200] or str(exc.reason)
