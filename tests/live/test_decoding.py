"""genhuman.live.decoding: the step-by-step decoder equals transformers' generate, and a kept
prefix cache changes which tokens are computed, never which tokens come out."""

from __future__ import annotations

import pytest
import torch

from genhuman.live.decoding import PrefixCache, Sampling, TextPieces, decode


@pytest.fixture(scope="module")
def tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         eos_token_id=96, bos_token_id=1, pad_token_id=0)
    return LlamaForCausalLM(config).eval()


class CountingModel:
    """Counts the tokens run through the model (prefill + decode)."""

    def __init__(self, model) -> None:
        self.model, self.tokens = model, 0

    def __call__(self, input_ids, **kwargs):
        self.tokens += input_ids.shape[1]
        return self.model(input_ids, **kwargs)


PROMPT = [5, 17, 42, 8, 8, 23, 61, 3]


@pytest.mark.parametrize("penalty", [1.0, 1.3])
def test_greedy_decoding_equals_generate(tiny_llama, penalty):
    expected = tiny_llama.generate(torch.tensor([PROMPT]), attention_mask=torch.ones(1, len(PROMPT), dtype=torch.long),
                                   max_new_tokens=12, do_sample=False, repetition_penalty=penalty,
                                   eos_token_id=None, pad_token_id=0)[0, len(PROMPT):].tolist()
    got = list(decode(tiny_llama, PROMPT, Sampling(max_new_tokens=12, repetition_penalty=penalty), frozenset()))
    assert got == expected


def test_stop_tokens_end_the_answer_and_are_not_yielded(tiny_llama):
    free = list(decode(tiny_llama, PROMPT, Sampling(max_new_tokens=12), frozenset()))
    stop = free[4]
    assert list(decode(tiny_llama, PROMPT, Sampling(max_new_tokens=12), frozenset({stop}))) == \
        free[:free.index(stop)]


def test_a_kept_prefix_is_not_computed_again_and_the_answer_is_the_same(tiny_llama):
    cache = PrefixCache()
    first = CountingModel(tiny_llama)
    answer = list(decode(first, PROMPT, Sampling(max_new_tokens=6), frozenset(), cache=cache))
    assert first.tokens == len(PROMPT) + 5  # the prompt, then each answer token but the last
    follow_up = PROMPT + answer + [11, 12, 13]  # the next turn: history + new question
    cold = list(decode(tiny_llama, follow_up, Sampling(max_new_tokens=6), frozenset()))
    warm_model = CountingModel(tiny_llama)
    warm = list(decode(warm_model, follow_up, Sampling(max_new_tokens=6), frozenset(), cache=cache))
    assert warm == cold
    # the cache held the prompt and the first 5 answer tokens: the last answer token and the question run
    assert warm_model.tokens == 1 + 3 + 5


def test_a_diverging_prompt_reuses_only_the_shared_beginning(tiny_llama):
    cache = PrefixCache()
    list(decode(tiny_llama, PROMPT, Sampling(max_new_tokens=3), frozenset(), cache=cache))
    other = PROMPT[:5] + [70, 71]
    counting = CountingModel(tiny_llama)
    got = list(decode(counting, other, Sampling(max_new_tokens=4), frozenset(), cache=cache))
    assert got == list(decode(tiny_llama, other, Sampling(max_new_tokens=4), frozenset()))
    assert counting.tokens == 2 + 3  # the two new prompt tokens, then 3 of the 4 answer tokens


def test_the_same_prompt_again_runs_one_token_for_its_logits(tiny_llama):
    cache = PrefixCache()
    once = list(decode(tiny_llama, PROMPT, Sampling(max_new_tokens=4), frozenset(), cache=cache))
    counting = CountingModel(tiny_llama)
    assert list(decode(counting, PROMPT, Sampling(max_new_tokens=4), frozenset(), cache=cache)) == once
    assert counting.tokens == 1 + 3


def test_stopping_between_tokens_keeps_a_consistent_cache(tiny_llama):
    cache = PrefixCache()
    calls = []
    got = list(decode(tiny_llama, PROMPT, Sampling(max_new_tokens=10), frozenset(), cache=cache,
                      should_stop=lambda: calls.append(1) or len(calls) > 3))
    assert len(got) == 3
    again = list(decode(tiny_llama, PROMPT, Sampling(max_new_tokens=10), frozenset(), cache=cache))
    assert again == list(decode(tiny_llama, PROMPT, Sampling(max_new_tokens=10), frozenset()))


def test_the_cache_keeps_the_latest_generations_only(tiny_llama):
    cache = PrefixCache(size=2)
    answers = {start: list(decode(tiny_llama, [start, 1, 2], Sampling(max_new_tokens=2), frozenset(), cache=cache))
               for start in (10, 20, 30)}
    assert len(cache) == 2
    assert cache.take([10, 1, 2])[0] == 0  # the oldest was dropped
    assert cache.take([30, 1, 2, answers[30][0], 96])[0] == 4  # prompt + the first answer token (run)


def test_sampling_is_seeded_and_stays_in_the_vocabulary(tiny_llama):
    def run(seed: int) -> list[int]:
        generator = torch.Generator().manual_seed(seed)
        return list(decode(tiny_llama, PROMPT, Sampling(max_new_tokens=8, temperature=1.0, top_p=0.9),
                           frozenset(), generator=generator))

    assert run(1) == run(1)
    assert all(0 <= t < 97 for t in run(2))


class ByteTokenizer:
    """Token i is byte i: a multi-byte character spans tokens."""

    def decode(self, ids, **kwargs) -> str:
        return bytes(ids).decode("utf-8", errors="replace")


def test_text_pieces_wait_for_a_whole_character():
    pieces = TextPieces(ByteTokenizer())
    out = [pieces.push(b) for b in "é ok".encode()]
    assert out == ["", "é", " ", "o", "k"]
