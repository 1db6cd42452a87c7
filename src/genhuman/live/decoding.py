"""Token-by-token decoding of a causal language model, with the prompt's cache kept for next time.

A conversation's prompts share their beginning: the system prompt, then the history, which
only grows until the memory drops its oldest exchange. :class:`PrefixCache` keeps the key/value
cache of the last few generations (prompt and answer), and :func:`decode` prefills only the
tokens after the longest prefix a kept cache already holds. On a 2-core CPU a prompt token
costs ~5-15 ms to prefill, so the first word of the answer comes that much sooner.

The decoding is what ``model.generate`` does for greedy or top-p sampling with a repetition
penalty (transformers' own logits processors), one step at a time so that the caller can stop
between any two tokens (tested against ``generate``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional, Sequence


@dataclass
class _Entry:
    ids: list[int]  # the tokens the cache holds, in order
    cache: Any  # transformers DynamicCache


class PrefixCache:
    """The key/value caches of the last ``size`` generations, found by their token prefix."""

    def __init__(self, size: int = 4):
        self.size = size
        self._entries: list[_Entry] = []
        self._lock = threading.Lock()

    def take(self, ids: Sequence[int]) -> tuple[int, Any]:
        """(tokens of ``ids`` already in the returned cache, cache or None). The entry is removed:
        the caller extends it and :meth:`put` s it back. At least one token is left to run, since
        its logits are needed."""
        with self._lock:
            best, shared = None, 0
            for entry in self._entries:
                common = _common_prefix(entry.ids, ids)
                if common > shared:
                    best, shared = entry, common
            if best is None:
                return 0, None
            self._entries.remove(best)
        shared = min(shared, len(ids) - 1)
        held = best.cache.get_seq_length()
        if shared <= 0:
            return 0, None
        if held > shared:
            best.cache.crop(shared - held)  # a negative count: drop that many from the end
        return shared, best.cache

    def put(self, ids: Sequence[int], cache: Any) -> None:
        with self._lock:
            self._entries.insert(0, _Entry(list(ids), cache))
            del self._entries[self.size:]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


@dataclass
class Sampling:
    """How the next token is chosen: greedy when ``temperature`` is 0."""

    max_new_tokens: int = 80
    temperature: float = 0.0
    top_p: float = 0.9
    repetition_penalty: float = 1.0

    def processors(self) -> list[Callable]:
        from transformers import RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper, TopPLogitsWarper

        chain: list[Callable] = []
        if self.repetition_penalty != 1.0:
            chain.append(RepetitionPenaltyLogitsProcessor(self.repetition_penalty))
        if self.temperature > 0:
            chain += [TemperatureLogitsWarper(self.temperature), TopPLogitsWarper(self.top_p)]
        return chain


def decode(model, prompt: Sequence[int], sampling: Sampling, stop_ids: frozenset[int],
           cache: Optional[PrefixCache] = None, should_stop: Callable[[], bool] = lambda: False,
           generator=None) -> Iterator[int]:
    """The new token ids after ``prompt``, one at a time (stop tokens are not yielded).

    ``should_stop`` is asked before every model call. The cache of prompt + answer goes back
    into ``cache`` when the generator finishes or is closed.
    """
    import torch

    processors = sampling.processors()
    held, past = cache.take(prompt) if cache is not None else (0, None)
    if past is None:
        from transformers import DynamicCache

        past, held = DynamicCache(), 0
    tokens = list(prompt)
    pending = tokens[held:]  # not yet in the cache
    try:
        for _ in range(sampling.max_new_tokens):
            if should_stop():
                return
            with torch.inference_mode():
                out = model(torch.tensor([pending]), past_key_values=past, use_cache=True)
            past = out.past_key_values
            scores = out.logits[:, -1, :].float()
            ids = torch.tensor([tokens])
            for process in processors:
                scores = process(ids, scores)
            if sampling.temperature > 0:
                probs = torch.softmax(scores, dim=-1)
                token = int(torch.multinomial(probs, 1, generator=generator)[0, 0])
            else:
                token = int(scores.argmax(dim=-1)[0])
            tokens.append(token)
            pending = [token]
            if token in stop_ids:
                return
            yield token
    finally:
        if cache is not None:
            # the cache holds every token but the last one chosen (never run through the model)
            cache.put(tokens[:past.get_seq_length()], past)


class TextPieces:
    """Token ids -> new text, a piece per token once its characters are complete (a token may
    end inside a multi-byte character: its text waits for the next one)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.sent = 0  # characters already given out

    def push(self, token: int) -> str:
        self.ids.append(token)
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):
            return ""
        piece, self.sent = text[self.sent:], len(text)
        return piece
