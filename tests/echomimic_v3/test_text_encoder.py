"""Wan's umT5 file as transformers' UMT5EncoderModel: the official tiny encoder's outputs, reproduced."""

from __future__ import annotations

import pytest
import torch

from genhuman.checkpoints.echomimic_v3 import umt5_from_official
from genhuman.errors import InputError

from .official import fixture, official_umt5_weights, standin_token_ids

PROMPT, NEGATIVE = "A person is speaking.", "Gesture is bad. Bad hands."


def test_umt5_matches_the_official_encoder():
    model = umt5_from_official(official_umt5_weights())
    data, _ = fixture("preview")
    for prompt, expected in ((PROMPT, data["prompt"]), (NEGATIVE, data["negative"])):
        ids, mask = standin_token_ids(prompt)
        with torch.no_grad():
            out = model(input_ids=ids, attention_mask=mask).last_hidden_state[0, : int(mask.sum())]
        assert out.shape == expected.shape
        scale = float(expected.abs().max())
        assert float((out - expected).abs().max()) <= 2e-6 * max(scale, 1.0)


def test_umt5_refuses_other_files():
    state = official_umt5_weights()
    state["blocks.0.extra.weight"] = torch.zeros(1)
    with pytest.raises(InputError, match="unexpected key blocks.0.extra.weight"):
        umt5_from_official(state)
    del state["blocks.0.extra.weight"], state["blocks.1.ffn.fc2.weight"]
    with pytest.raises(InputError, match="lacks 1 key"):
        umt5_from_official(state)
