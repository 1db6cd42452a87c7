"""Conversation.draft: the text box, read ahead after a pause in typing. Sending the same text
plays the answer already made; a different text or no text at all never plays it."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import numpy as np
import pytest

from genhuman.live import conversation as conversation_module
from genhuman.live.conversation import Conversation
from genhuman.live.options import LiveOptions


class FakeAvatar:
    """Plays each said utterance for one tick."""

    def __init__(self) -> None:
        self.said: list[str] = []
        self._queue: list = []

    @property
    def speaking(self) -> bool:
        return bool(self._queue)

    def say(self, utterance) -> None:
        self.said.append(utterance.text)
        self._queue.append(utterance)

    def cut(self) -> None:
        self._queue.clear()

    def next_tick(self):
        started = self._queue.pop(0) if self._queue else None
        return SimpleNamespace(started=started, finished=started, interrupted=None)


class CountingLLM:
    """Answers "answer to <question>", recording each question it was asked."""

    name = "counting"

    def __init__(self, delay_s: float = 0.0) -> None:
        self.asked: list[str] = []
        self.delay_s = delay_s

    def stream(self, messages, cancel):
        question = messages[-1]["content"]
        self.asked.append(question)
        for word in f"answer to {question}.".split():
            if cancel.wait(self.delay_s) if self.delay_s else cancel.is_set():
                return
            yield word + " "


def speak(text: str):
    return SimpleNamespace(text=text, samples=np.zeros(640, np.float32), phones=(), duration_s=0.04)


@pytest.fixture
def talk():
    pool = ThreadPoolExecutor(max_workers=4)
    events: list[dict] = []
    llm = CountingLLM()
    avatar = FakeAvatar()
    conversation = Conversation(avatar, llm, recognizer=None, speak=speak, options=LiveOptions(),
                                emit=events.append, replies=pool, detector=SimpleNamespace(reset=lambda: None))
    yield conversation, llm, avatar, events
    conversation.close()
    pool.shutdown(wait=True, cancel_futures=True)


def wait_until(condition, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_sending_the_drafted_text_plays_the_answer_made_while_typing(talk):
    conversation, llm, avatar, events = talk
    conversation.draft("  hi there ")
    wait_until(lambda: llm.asked == ["hi there"])
    time.sleep(0.05)
    assert avatar.said == []  # nothing plays before the message is sent
    conversation.type_text("hi there")
    wait_until(lambda: len(avatar.said) == 2)
    assert llm.asked == ["hi there"]  # asked once, at the draft
    assert avatar.said == ["answer to hi,", "there."]  # three words first, with a rising comma
    conversation.tick()
    latency = next(e for e in events if e["type"] == "latency")
    assert latency["source"] == "text" and latency["turn"] == 1 and latency["text_to_frame_ms"] >= 0
    assert [e["text"] for e in events if e["type"] == "transcript"] == ["hi there"]


def test_a_different_message_cancels_the_drafts_answer(talk):
    conversation, llm, avatar, events = talk
    llm.delay_s = 0.02
    conversation.draft("what is")
    wait_until(lambda: llm.asked == ["what is"])
    conversation.type_text("what is up")
    wait_until(lambda: any(e["type"] == "answer" and e.get("final") for e in events))
    assert llm.asked == ["what is", "what is up"]
    assert " ".join(avatar.said) == "answer to what, is up."


def test_a_newer_draft_replaces_the_older(talk):
    conversation, llm, avatar, events = talk
    llm.delay_s = 0.02
    conversation.draft("tell me")
    conversation.draft("tell me")  # the same draft again: not asked twice
    wait_until(lambda: llm.asked == ["tell me"])
    conversation.draft("tell me a joke")
    wait_until(lambda: llm.asked == ["tell me", "tell me a joke"])
    conversation.type_text("tell me a joke")
    wait_until(lambda: any(e["type"] == "answer" and e.get("final") for e in events))
    assert " ".join(avatar.said) == "answer to tell, me a joke."


def test_a_draft_never_sent_expires_and_never_plays(talk, monkeypatch):
    monkeypatch.setattr(conversation_module, "DRAFT_WAIT_S", 0.1)
    conversation, llm, avatar, events = talk
    conversation.draft("never mind")
    wait_until(lambda: conversation._reply is None)
    assert avatar.said == [] and not any(e["type"] == "answer" for e in events)


def test_drafts_are_ignored_while_the_avatar_answers(talk):
    conversation, llm, avatar, events = talk
    llm.delay_s = 0.05
    conversation.type_text("first")
    wait_until(lambda: llm.asked == ["first"])
    conversation.draft("second")
    time.sleep(0.1)
    assert llm.asked == ["first"]


@pytest.mark.parametrize("bad", [None, 5, "", "   ", "x" * 501])
def test_bad_drafts_are_ignored(talk, bad):
    conversation, llm, _, _ = talk
    conversation.draft(bad)
    time.sleep(0.02)
    assert llm.asked == [] and conversation._reply is None


def test_a_draft_waits_without_holding_a_lock(talk):
    conversation, llm, _, _ = talk
    conversation.draft("hello")
    wait_until(lambda: llm.asked == ["hello"])
    done = threading.Event()
    threading.Thread(target=lambda: (conversation.busy(), done.set())).start()
    assert done.wait(1.0)
