"""Live sessions: opening, the limit, and freeing everything when one ends.

:class:`LiveSessions` is built once per server. It owns what sessions share: the language
model (loaded once), the prepared avatars (one per portrait, reused), and two bounded
thread pools: ``media`` (renders and microphone processing, short calls) and ``replies``
(language model and TTS, long calls, one per session at most). Each session owns only its
:class:`~genhuman.live.conversation.Conversation` and
:class:`~genhuman.live.webrtc.LiveConnection`; closing it (tab closed, connection failed,
time limit, server shutdown) cancels its tasks and drops both, so nothing accumulates
across connect/disconnect cycles.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from genhuman.errors import InputError
from genhuman.live.options import LiveOptions
from genhuman.live.priority import lower_thread_priority

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
MAX_PORTRAITS = 200
MAX_OFFER_CHARS = 64 * 1024


class SessionLimit(Exception):
    """The server holds as many live sessions as it allows."""


def find_portraits(paths: list[Path]) -> dict[str, Path]:
    """name -> image for each file given and each image in each folder given (sorted)."""
    found: dict[str, Path] = {}
    for path in paths:
        path = Path(path)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        elif path.is_file():
            files = [path]
        else:
            raise InputError(f"portrait not found: {str(path)!r}")
        for file in files[:MAX_PORTRAITS]:
            name = file.stem
            while name in found:
                name += "_"
            found[name] = file
    return found


@dataclass
class LiveSession:
    id: str
    owner: str
    portrait: str
    conversation: Any
    connection: Any
    timer: Optional[asyncio.Task] = None
    stats: dict = field(default_factory=dict)


class LiveSessions:
    def __init__(self, options: LiveOptions, portraits: dict[str, Path], ice_servers: Optional[list[str]] = None,
                 ice_username: Optional[str] = None, ice_credential: Optional[str] = None, llm: Any = None,
                 recognizer_factory: Any = None, speak: Any = None):
        self.options = options
        self.portraits = dict(portraits)
        self.ice_servers = list(ice_servers or [])
        self.ice_username, self.ice_credential = ice_username, ice_credential
        self.sessions: dict[str, LiveSession] = {}
        self._llm = llm
        self._recognizer_factory = recognizer_factory
        self._speak = speak
        self._avatars: dict[str, Any] = {}
        self._avatar_lock = threading.Lock()
        self._llm_lock = threading.Lock()
        self._opening = 0
        self.ready = True  # False while warm_up runs
        self._seed = 0
        self.media = ThreadPoolExecutor(max_workers=4, thread_name_prefix="live-media")
        self.replies = ThreadPoolExecutor(max_workers=options.max_sessions + 1, thread_name_prefix="live-reply",
                                          initializer=lower_thread_priority)

    # -- shared parts -------------------------------------------------------------------

    @property
    def default_portrait(self) -> Optional[str]:
        return next(iter(self.portraits), None)

    def llm(self):
        with self._llm_lock:
            if self._llm is None:
                if self.options.llm_url:
                    from genhuman.live.llm import OpenAIChatLLM

                    self._llm = OpenAIChatLLM(self.options.llm_url, model=self.options.llm_model)
                else:
                    from genhuman.live.llm import embedded_llm
                    from genhuman.live.options import DEFAULT_PERSONA

                    # SmolLM2-135M answers best under its own system prompt: a persona is
                    # passed on only when the user chose one (it goes before the first question)
                    # in a process of its own: beside the media clock and the WebRTC loop it
                    # would wait for the interpreter lock (genhuman.live.runners)
                    self._llm = embedded_llm(max_new_tokens=self.options.max_answer_tokens,
                                             use_persona=self.options.persona != DEFAULT_PERSONA,
                                             separate_process=True)
            return self._llm

    def warm_up(self) -> None:
        """Load the language model, the voice and the default avatar (server start-up, in a thread)."""
        self.ready = False
        try:
            model = self.llm()
            load = getattr(model, "load", None)
            if load is not None:
                load()
            self.speak("Hello.")
            if self.default_portrait is not None:
                self.avatar(self.default_portrait)
            log.info("live: warmed up")
        except Exception as exc:  # the first session will report it
            log.warning("live: warm-up failed: %s", exc)
        finally:
            self.ready = True

    def recognizer(self):
        if self._recognizer_factory is not None:
            return self._recognizer_factory()
        if self.options.asr_url:
            from genhuman.live.asr import OpenAITranscriber

            return OpenAITranscriber(self.options.asr_url, model=self.options.asr_model)
        from genhuman.live.asr import SphinxRecognizer

        return SphinxRecognizer()

    def speak(self, text: str):
        if self._speak is not None:
            return self._speak(text)
        from genhuman.live.voice import speak

        return speak(text, voice_model=self.options.voice)

    def avatar(self, portrait: str):
        """The prepared lite avatar of a portrait (made once, shared read-only by sessions)."""
        from genhuman.engines.lite import LiteEngine

        if portrait not in self.portraits:
            raise InputError(f"no portrait named {portrait[:60]!r}; choose one of: {', '.join(self.portraits)}")
        with self._avatar_lock:
            avatar = self._avatars.get(portrait)
            if avatar is None:
                avatar = LiteEngine().prepare_avatar(self.portraits[portrait], max_size=self.options.live_size)
                self._avatars[portrait] = avatar
            return avatar

    # -- sessions -----------------------------------------------------------------------

    def conversation(self, portrait: str, emit) -> Any:
        """A new Conversation on a portrait (blocking: prepares the avatar the first time)."""
        from genhuman.engines.lite import LiteEngine
        from genhuman.live.avatar import LiveAvatar
        from genhuman.live.conversation import Conversation
        from genhuman.request import AnimateRequest

        self._seed += 1
        request = LiteEngine().validate(AnimateRequest(seed=self._seed))
        live_avatar = LiveAvatar(self.avatar(portrait), request)
        return Conversation(live_avatar, self.llm(), self.recognizer(), self.speak, self.options, emit,
                            self.replies)

    async def open(self, offer_sdp: str, portrait: Optional[str], owner: str) -> tuple[str, str]:
        """(session id, answer SDP) for a browser's offer; SessionLimit past the limit."""
        from aiortc import RTCPeerConnection

        from genhuman.live.webrtc import LiveConnection, ice_configuration

        if not isinstance(offer_sdp, str) or not offer_sdp.startswith("v=") or len(offer_sdp) > MAX_OFFER_CHARS:
            raise InputError("the offer is not an SDP description")
        portrait = portrait or self.default_portrait
        if portrait is None:
            raise InputError("this server has no portrait for live sessions (start it with a portrait)")
        if portrait not in self.portraits:
            raise InputError(f"no portrait named {portrait[:60]!r}; choose one of: {', '.join(self.portraits)}")
        if len(self.sessions) + self._opening >= self.options.max_sessions:
            raise SessionLimit(f"{self.options.max_sessions} live sessions are running, the most this server "
                               f"allows; try again when one ends")
        self._opening += 1
        session_id = secrets.token_hex(8)
        pc = RTCPeerConnection(ice_configuration(self.ice_servers, self.ice_username, self.ice_credential))
        try:
            holder: dict[str, Any] = {}

            def emit(event: dict) -> None:
                connection = holder.get("connection")
                if connection is not None:
                    connection.emit(event)

            loop = asyncio.get_running_loop()
            conversation = await loop.run_in_executor(self.media, self.conversation, portrait, emit)
            fps = float(getattr(conversation.avatar, "fps", 25.0))
            connection = LiveConnection(conversation, pc, self.media, fps, lambda: self._forget(session_id))
            holder["connection"] = connection
            answer = await connection.answer(offer_sdp)
        except BaseException:
            await pc.close()
            raise
        finally:
            self._opening -= 1
        session = LiveSession(session_id, owner, portrait, conversation, connection)
        session.timer = asyncio.ensure_future(self._expire(session))
        self.sessions[session_id] = session
        emit(self._hello(session_id, portrait, conversation))
        emit({"type": "state", "state": conversation.state})
        log.info("live: session %s opened on %s (%d running)", session_id, portrait, len(self.sessions))
        return session_id, answer

    def _hello(self, session_id: str, portrait: str, conversation: Any) -> dict:
        """The first event: what the page (and a scripted client) should know about the video."""
        from genhuman.live.client import box_of_lips

        avatar = self.avatar(portrait)
        width, height = int(avatar.meta["width"]) // 2 * 2, int(avatar.meta["height"]) // 2 * 2
        box = box_of_lips(avatar.arrays["landmarks"], width, height)
        return {"type": "hello", "session": session_id, "portrait": portrait, "width": width, "height": height,
                "fps": float(getattr(conversation.avatar, "fps", 25.0)), "mouth_box": list(box),
                "silence_s": self.options.silence}

    async def _expire(self, session: LiveSession) -> None:
        await asyncio.sleep(self.options.max_session_minutes * 60.0)
        log.info("live: session %s reached its time limit", session.id)
        session.connection.emit({"type": "error", "message": "the session reached its time limit"})
        await asyncio.sleep(0.2)
        await session.connection.close()

    def _forget(self, session_id: str) -> None:
        session = self.sessions.pop(session_id, None)
        if session is not None:
            if session.timer is not None and session.timer is not asyncio.current_task():
                session.timer.cancel()
            log.info("live: session %s closed (%d running)", session_id, len(self.sessions))
            # aiortc's peer objects form reference cycles; until the collector breaks them, each
            # closed session keeps its H.264 encoder and with it libx264's native threads
            self.media.submit(gc.collect)

    async def close(self, session_id: str, owner: Optional[str] = None) -> bool:
        session = self.sessions.get(session_id)
        if session is None or (owner is not None and session.owner != owner):
            return False
        await session.connection.close()
        return True

    async def close_all(self) -> None:
        for session_id in list(self.sessions):
            await self.close(session_id)

    def shutdown(self) -> None:
        self.media.shutdown(wait=False, cancel_futures=True)
        self.replies.shutdown(wait=False, cancel_futures=True)
