"""genhuman.live.runners: the child-process runner gives the tokens a thread runner gives,
stops within a token on cancel, and a dead child is an error for that answer, not a hang."""

from __future__ import annotations

import time

import pytest

from genhuman.live.decoding import Sampling
from genhuman.live.runners import ProcessRunner, RunnerError, ThreadRunner, load_model

CONFIG = dict(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=512, eos_token_id=96, bos_token_id=1, pad_token_id=0)
PROMPT = [5, 17, 42, 8, 8, 23, 61, 3]


@pytest.fixture(scope="module")
def child():
    runner = ProcessRunner(("tiny-llama", CONFIG, 0, 0.02), ready_timeout_s=120)
    yield runner
    runner.close()


def test_the_child_gives_the_tokens_the_thread_gives(child):
    sampling = Sampling(max_new_tokens=10, repetition_penalty=1.2)
    here = list(ThreadRunner(load_model(("tiny-llama", CONFIG, 0, 0.0))).start(PROMPT, sampling, frozenset()).tokens())
    assert list(child.start(PROMPT, sampling, frozenset()).tokens()) == here
    # again, now from its prefix cache
    assert list(child.start(PROMPT, sampling, frozenset()).tokens()) == here
    assert child.info["eos_token_id"] == 96
    # a plain subprocess (a multiprocessing child would re-run the parent's main script)
    assert child.process.args[1:3] == ["-m", "genhuman.live.runners"]


def test_cancel_stops_the_child_within_a_token_and_the_next_answer_is_clean(child):
    generation = child.start(PROMPT, Sampling(max_new_tokens=400), frozenset())
    tokens = generation.tokens()
    next(tokens)
    started = time.monotonic()
    generation.cancel()
    rest = list(tokens)
    assert time.monotonic() - started < 0.5
    assert len(rest) <= 3  # tokens already on their way
    assert len(list(child.start(PROMPT, Sampling(max_new_tokens=5), frozenset()).tokens())) == 5


def test_should_stop_cancels_from_the_consumer_side(child):
    out: list[int] = []
    for token in child.start(PROMPT, Sampling(max_new_tokens=400), frozenset()).tokens(
            should_stop=lambda: len(out) >= 3, poll_s=0.005):
        out.append(token)
    assert len(out) == 3


def test_a_model_that_cannot_load_is_one_error():
    import multiprocessing

    from genhuman.live.runners import _serve

    parent, child_end = multiprocessing.Pipe()
    parent.send(("load", 0, (("nothing",), 1, 0)))
    _serve(child_end)  # the child's code, here
    assert parent.recv() == ("failed", 0, "the language model could not be loaded: unknown model spec 'nothing'")


def test_a_child_that_dies_mid_answer_is_an_error_not_a_hang(child):  # last: it kills the child
    tokens = child.start(PROMPT, Sampling(max_new_tokens=400), frozenset()).tokens()
    next(tokens)
    child.process.kill()
    with pytest.raises(RunnerError, match="stopped"):
        list(tokens)
    assert not child.alive
    with pytest.raises(RunnerError, match="has stopped"):
        child.start(PROMPT, Sampling(), frozenset())
