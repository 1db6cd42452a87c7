"""The turn loop of one conversation, independent of the transport.

Three callers, each on its own thread:
- the microphone side calls :meth:`Conversation.hear` with 16 kHz audio in order (voice
  activity, end of turn, speech recognition);
- the media clock calls :meth:`Conversation.tick` once per frame (one video frame and 40 ms of
  audio, from :class:`~genhuman.live.avatar.LiveAvatar`);
- a reply runs on the ``replies`` executor: the language model's tokens are cut into
  sentences, each spoken by Piper and queued on the avatar as soon as it is ready.
Events for the page (state, partial and final transcripts, answer text, latencies) go to
``emit`` as JSON-ready dicts. The user speaking while the avatar answers is a barge-in:
the reply is cancelled (the language model stops within a token), the avatar's audio is cut
at the next tick and its mouth closes over ~120 ms.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from genhuman.errors import InputError
from genhuman.live.options import LiveOptions

log = logging.getLogger(__name__)

Emit = Callable[[dict], None]
MAX_TYPED_CHARS = 500  # one typed message; a TTS answer to more would be a monologue
# A pause this long inside a turn starts the answer on the partial transcript, before the
# end of the turn is certain (silence_s): the language model and the voice get a head start.
# Playback waits for the end; speech resuming or a different final transcript cancels it.
SPECULATE_AFTER_S = 0.2
# The first piece spoken may end at a comma once this long, or else after this many words:
# the voice starts after ~3 words instead of a whole sentence (each token of the embedded
# model costs ~65 ms on one core).
FIRST_PIECE_CHARS = 12
FIRST_PIECE_WORDS = 3
# A draft's answer (see Conversation.draft) waits this long for the message to be sent.
DRAFT_WAIT_S = 30.0


@dataclass
class TurnTiming:
    """Wall-clock marks of one turn (``time.monotonic`` seconds), for the latency figures."""

    turn: int
    source: str  # "speech" or "text"
    user_end: float  # last sound of the user's speech, or the moment the text arrived
    asr_done: Optional[float] = None
    asked: Optional[float] = None  # the language model was asked (earlier than asr_done when speculative)
    llm_first: Optional[float] = None  # first piece of the answer's text
    tts_first: Optional[float] = None  # first sentence spoken (queued on the avatar)
    first_tick: Optional[float] = None  # the tick that starts the answer's audio and frames
    reported: bool = False

    def figures(self) -> dict:
        def ms(mark: Optional[float], since: Optional[float]) -> Optional[float]:
            return None if mark is None or since is None else round((mark - since) * 1000.0, 1)

        to_first = ms(self.first_tick, self.user_end)
        return {"type": "latency", "turn": self.turn, "source": self.source,
                "speech_end_to_audio_ms": to_first if self.source == "speech" else None,
                "text_to_frame_ms": to_first if self.source == "text" else None,
                "asr_ms": ms(self.asr_done, self.user_end), "llm_first_ms": ms(self.llm_first, self.asked),
                "tts_first_ms": ms(self.tts_first, self.llm_first),
                "speculative": self.asked is not None and self.asr_done is not None and self.asked < self.asr_done}


@dataclass
class _Reply:
    question: str = ""
    cancel: threading.Event = field(default_factory=threading.Event)
    # set when the user's turn has really ended; a speculative reply (started on a pause)
    # generates and speaks into a buffer until then, and plays nothing
    confirmed: threading.Event = field(default_factory=threading.Event)
    text: str = ""
    expires: Optional[float] = None  # a draft's reply waits this long (monotonic) to be sent


class Conversation:
    """One session: ``hear(samples)``, ``type_text(text)``, ``tick()``, ``close()``.

    ``llm``: a :class:`~genhuman.live.llm.LanguageModel`; ``recognizer``: a
    :class:`~genhuman.live.asr.Recognizer`; ``speak``: text -> Utterance
    (:func:`genhuman.live.voice.speak`); ``replies``: where replies run (their blocking
    model calls must not hold the event loop or the media clock).
    """

    def __init__(self, avatar, llm, recognizer, speak: Callable, options: LiveOptions, emit: Emit,
                 replies: Executor, detector=None):
        from genhuman.live.llm import ChatMemory
        from genhuman.live.turns import TurnDetector

        self.avatar = avatar
        self.llm = llm
        self.recognizer = recognizer
        self.speak = speak
        self.options = options
        self.emit = emit
        self.replies = replies
        self.detector = detector or TurnDetector(silence_s=options.silence)
        # a model may ask for less memory than the option allows (a CPU model pays for every token each turn)
        self.memory = ChatMemory(options.persona, max_turns=options.memory_turns,
                                 max_chars=int(getattr(llm, "memory_chars", 6000)))
        self._lock = threading.Lock()
        self._reply: Optional[_Reply] = None
        self._timing: Optional[TurnTiming] = None
        self._turns = 0
        self._hearing = False
        self._partial = ""  # the latest partial transcript of the turn being heard
        self._speculated = False  # a speculative answer was tried in this pause
        self._heard_s = 0.0  # audio pushed to the detector, seconds (its clock)
        self._muted = False
        self._closed = False
        self._state = ""
        self.barge_ins: list[float] = []  # speech onset -> the avatar's audio cut, ms, per barge-in
        self._cut_onset: Optional[float] = None
        self.latencies: list[dict] = []
        self._set_state("listening")

    # -- the microphone -----------------------------------------------------------------

    def hear(self, samples: np.ndarray) -> None:
        """The user's audio, 16 kHz mono float32, in order. Runs detection and recognition."""
        if self._closed or self._muted:
            return
        now = time.monotonic()
        self._heard_s += len(samples) / 16000.0
        started = False
        for event in self.detector.push(samples):
            if event.kind == "start":
                self._on_speech_start(len(samples))
                started = True
            elif event.kind == "end" and self._hearing:
                # the detector's clock says how long ago the last sound was
                last_sound = now - max(self._heard_s - (event.time_s - self.options.silence), 0.0)
                self._on_speech_end(last_sound)
        if self._hearing:
            partial = self.recognizer.push(samples) if not started else None
            if partial:
                self._partial = partial
                self.emit({"type": "partial", "text": partial})
            self._speculate(now)

    def _on_speech_start(self, chunk: int) -> None:
        self._hearing = True
        self._partial = ""
        preroll = self.detector.utterance()  # the onset, heard before the detector was sure
        if self.busy():
            # the speech began (preroll excluded) this long before now: the barge-in's own latency
            since_onset = max(len(preroll) - getattr(self.detector, "preroll_samples", 0), 0) / 16000.0
            self.interrupt(onset=time.monotonic() - since_onset)
        self.recognizer.start()
        if len(preroll):
            self.recognizer.push(preroll)  # it ends with this call's chunk: not pushed again
        self._set_state("hearing")

    def _speculate(self, now: float) -> None:
        """On a pause, start answering the partial transcript; cancel when speech resumes."""
        quiet = float(getattr(self.detector, "quiet_s", 0.0))
        with self._lock:
            reply = self._reply
        speculative = reply is not None and not reply.confirmed.is_set()
        if reply is not None and speculative and quiet < SPECULATE_AFTER_S:  # the user goes on speaking
            reply.cancel.set()
            with self._lock:
                if self._reply is reply:
                    self._reply = None
        elif not speculative and quiet >= SPECULATE_AFTER_S and self._reply is None and not self._speculated:
            self._speculated = True  # once per pause
            now_text = getattr(self.recognizer, "hypothesis_now", None)
            text = (now_text() if now_text is not None else self._partial).strip()
            if text:
                self._start_reply(text, TurnTiming(self._turns + 1, "speech", now - quiet), confirmed=False)
        if quiet < SPECULATE_AFTER_S:
            self._speculated = False

    def _on_speech_end(self, last_sound: float) -> None:
        self._hearing = False
        text = self.recognizer.finish().strip()
        with self._lock:
            reply = self._reply
        speculative = reply if reply is not None and not reply.confirmed.is_set() else None
        if not text:
            if speculative is not None:
                speculative.cancel.set()
            log.info("live: a turn with no recognised words; still listening")
            self._set_state("listening")
            return
        self.emit({"type": "transcript", "text": text})
        if speculative is not None and speculative.question == text:
            timing = self._timing
            if timing is not None:
                timing.turn = self._next_turn()
                timing.user_end = last_sound
                timing.asr_done = time.monotonic()
            speculative.confirmed.set()  # its sentences may play now
            return
        if speculative is not None:
            speculative.cancel.set()
        self._start_reply(text, TurnTiming(self._next_turn(), "speech", last_sound, asr_done=time.monotonic()))

    # -- typed text, mute ---------------------------------------------------------------

    def type_text(self, text: str) -> None:
        if not isinstance(text, str) or not text.strip():
            raise InputError("the message is empty")
        if len(text) > MAX_TYPED_CHARS:
            raise InputError(f"the message is too long: {len(text)} characters, at most {MAX_TYPED_CHARS}")
        now = time.monotonic()
        with self._lock:
            reply = self._reply
        speculative = reply if reply is not None and not reply.confirmed.is_set() else None
        if speculative is not None and speculative.question == text.strip():  # its draft, read ahead
            timing = self._timing
            if timing is not None:
                timing.turn, timing.user_end, timing.asr_done = self._next_turn(), now, now
            self.emit({"type": "transcript", "text": text.strip()})
            self._set_state("thinking")
            speculative.confirmed.set()
            return
        if speculative is not None:
            speculative.cancel.set()
        if self.busy():
            self.interrupt()
        self.emit({"type": "transcript", "text": text.strip()})
        self._start_reply(text.strip(), TurnTiming(self._next_turn(), "text", now, asr_done=now))

    def draft(self, text) -> None:
        """The text box after a pause in typing: its answer starts now, as a speculative reply
        (generated and spoken into a buffer, played only when the message is sent as it is;
        a different draft or message cancels it). Ignored while the avatar answers or hears."""
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_TYPED_CHARS:
            return
        text = text.strip()
        if self.busy() or self._hearing or self._closed:
            return
        with self._lock:
            reply = self._reply
        if reply is not None and not reply.confirmed.is_set():
            if reply.question == text:
                return  # already answering this very text
            reply.cancel.set()
        self._start_reply(text, TurnTiming(self._turns + 1, "text", time.monotonic()), confirmed=False,
                          expires_s=DRAFT_WAIT_S)

    def mute(self, muted: bool) -> None:
        self._muted = bool(muted)
        if self._muted:
            self.detector.reset()
            self._hearing = False

    # -- replies ------------------------------------------------------------------------

    def busy(self) -> bool:
        """The avatar is answering: a reply is being generated or its audio is playing."""
        with self._lock:
            replying = (self._reply is not None and not self._reply.cancel.is_set()
                        and self._reply.confirmed.is_set())
        return replying or bool(self.avatar.speaking)

    def interrupt(self, onset: Optional[float] = None) -> None:
        """Barge-in: stop the language model and the avatar's speech now (its audio stops at
        the next tick). ``onset``: when the user's speech began (monotonic), for the figure."""
        with self._lock:
            reply, self._reply = self._reply, None
            self._cut_onset = onset if onset is not None else time.monotonic()
        if reply is not None:
            reply.cancel.set()
        self.avatar.cut()

    def _next_turn(self) -> int:
        self._turns += 1
        return self._turns

    def _start_reply(self, text: str, timing: TurnTiming, confirmed: bool = True,
                     expires_s: Optional[float] = None) -> None:
        reply = _Reply(question=text, expires=None if expires_s is None else time.monotonic() + expires_s)
        if confirmed:
            reply.confirmed.set()
        with self._lock:
            if self._reply is not None:
                self._reply.cancel.set()
            self._reply = reply
            self._timing = timing
        if confirmed:
            self._set_state("thinking")
        self.replies.submit(self._run_reply, text, reply, timing)

    def _run_reply(self, text: str, reply: _Reply, timing: TurnTiming) -> None:
        from genhuman.live.llm import speakable_pieces
        from genhuman.live.voice import trim_leading_silence

        try:
            timing.asked = time.monotonic()
            messages = self.memory.messages() + [{"role": "user", "content": text}]

            def pieces():
                for piece in self.llm.stream(messages, reply.cancel):
                    if timing.llm_first is None:
                        timing.llm_first = time.monotonic()
                    reply.text += piece
                    yield piece

            for sentence in speakable_pieces(pieces(), first_min_chars=FIRST_PIECE_CHARS,
                                             first_max_words=FIRST_PIECE_WORDS):
                if reply.cancel.is_set():
                    break
                try:
                    utterance = self.speak(sentence)
                except InputError as exc:  # a sentence the voice cannot read: skip it
                    log.info("live: skipped a sentence the voice cannot speak (%s)", exc)
                    continue
                if timing.tts_first is None:
                    utterance = trim_leading_silence(utterance)  # the answer starts at its first sound
                    timing.tts_first = time.monotonic()
                while not reply.confirmed.wait(0.01):  # a speculative reply waits for the end of the turn
                    if reply.expires is not None and time.monotonic() > reply.expires:
                        reply.cancel.set()  # a draft never sent
                    if reply.cancel.is_set():
                        break
                if reply.cancel.is_set():
                    break
                self.avatar.say(utterance)
                self.emit({"type": "answer", "text": reply.text.strip(), "final": False})
        except Exception as exc:  # the model server went away, ...: one line to the page, the session lives on
            log.warning("live: the reply failed: %s", exc)
            if reply.confirmed.is_set():
                self.emit({"type": "error", "message": str(exc) or type(exc).__name__})
        finally:
            answer = reply.text.strip()
            if reply.confirmed.is_set():
                self.memory.add_user(text)
                if answer:
                    self.memory.add_assistant(answer if not reply.cancel.is_set() else answer + " …")
                    self.emit({"type": "answer", "text": answer, "final": True})
            with self._lock:
                if self._reply is reply:
                    self._reply = None
            if reply.confirmed.is_set() and not self.avatar.speaking and not self._hearing:
                self._set_state("listening")

    # -- the media clock ----------------------------------------------------------------

    def tick(self):
        """The next avatar tick (one frame + 1/fps of audio); marks the turn's first frame."""
        tick = self.avatar.next_tick()
        if getattr(tick, "interrupted", None) is not None or self._cut_onset is not None and not self.avatar.speaking:
            with self._lock:
                onset, self._cut_onset = self._cut_onset, None
            if onset is not None:  # this tick is the first without the interrupted speech
                cut_ms = round((time.monotonic() - onset) * 1000.0, 1)
                self.barge_ins.append(cut_ms)
                self.emit({"type": "interrupted", "onset_to_cut_ms": cut_ms})
        if tick.started is not None:
            with self._lock:
                timing = self._timing
            if timing is not None and timing.first_tick is None:
                timing.first_tick = time.monotonic()
                figures = timing.figures()
                self.latencies.append(figures)
                self.emit(figures)
            if self._state != "speaking":
                self._set_state("speaking")
        elif tick.finished is not None and not self.avatar.speaking and not self.busy():
            self._set_state("hearing" if self._hearing else "listening")
        return tick

    def _set_state(self, state: str) -> None:
        if state != self._state:
            self._state = state
            self.emit({"type": "state", "state": state})

    @property
    def state(self) -> str:
        return self._state

    def close(self) -> None:
        self._closed = True
        with self._lock:
            reply, self._reply = self._reply, None
        if reply is not None:
            reply.cancel.set()
