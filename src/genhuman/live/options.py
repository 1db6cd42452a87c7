"""Live conversation options: one place for their types, ranges, defaults and help.

``genhuman live`` and ``genhuman serve`` build their ``--llm-url``, ``--silence`` ... flags
from these specs (:func:`genhuman.cli.animate.add_options`), the server reads them from its
settings, and the session code from the dataclass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from genhuman.request import option, request_options

DEFAULT_PERSONA = ("You are a friendly, helpful assistant talking out loud with a person. "
                   "Answer in one or two short, plain sentences.")


@dataclass(frozen=True)
class LiveOptions:
    persona: str = option(DEFAULT_PERSONA, str, "system prompt of the language model (the avatar's persona; "
                          "the embedded SmolLM2 keeps its own system prompt and reads a persona you set "
                          "before the first question)", metavar="TEXT")
    llm_url: Optional[str] = option(None, str, "an OpenAI-compatible chat server (vLLM, llama.cpp, Ollama), e.g. "
                                    "http://127.0.0.1:8080/v1 (default: the embedded SmolLM2-135M)", metavar="URL")
    llm_model: str = option("default", str, "model name sent to --llm-url", metavar="NAME")
    asr_url: Optional[str] = option(None, str, "an OpenAI-compatible transcription server (default: the embedded "
                                    "pocketsphinx, English)", metavar="URL")
    asr_model: str = option("whisper-1", str, "model name sent to --asr-url", metavar="NAME")
    voice: Optional[str] = option(None, str, "a Piper voice for the avatar: MODEL.onnx with MODEL.onnx.json beside "
                                  "it (default: the bundled en_US voice)", metavar="ONNX")
    silence: float = option(0.45, float, "seconds of silence that end the user's turn", low=0.15, high=3.0,
                            metavar="S")
    max_sessions: int = option(4, int, "conversations at once; more are refused with a clear message",
                               low=1, high=64, metavar="N")
    memory_turns: int = option(8, int, "past turns the language model remembers per session", low=0, high=100,
                               metavar="N")
    max_answer_tokens: int = option(32, int, "longest answer, in tokens", low=4, high=1024, metavar="N")
    live_size: int = option(512, int, "longest side of the avatar's video, pixels", low=128, high=1024,
                            metavar="PX")
    max_session_minutes: float = option(60.0, float, "a conversation is closed after this long", low=1.0,
                                        high=24 * 60.0, metavar="MIN")

    def __post_init__(self) -> None:
        for name, spec in request_options(type(self)):
            object.__setattr__(self, name, spec.check(name, getattr(self, name)))
