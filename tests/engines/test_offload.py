"""ModelOffload: one model on the execution device at a time, nothing moved when disabled."""

from __future__ import annotations

import torch
from torch import nn

from genhuman.engines.offload import ModelOffload


class Spy(nn.Module):
    """Records where it is sent instead of going (no GPU here)."""

    def __init__(self):
        super().__init__()
        self.moves: list[str] = []

    def to(self, device, *args, **kwargs):  # type: ignore[override]
        self.moves.append(str(device))
        return self


def test_one_model_on_the_device_at_a_time():
    offload = ModelOffload(torch.device("cuda:1"), enabled=True)
    assert offload.load_device == torch.device("cpu")
    a, b, c = Spy(), Spy(), Spy()
    for module in (a, a, b, a, c):
        with offload.use(module) as used:
            assert used is module
    assert a.moves == ["cuda:1", "cpu", "cuda:1", "cpu"]
    assert b.moves == ["cuda:1", "cpu"]
    assert c.moves == ["cuda:1"]
    offload.release(c)  # freed: the next model moves in without sending c back
    with offload.use(b):
        pass
    assert c.moves == ["cuda:1"] and b.moves == ["cuda:1", "cpu", "cuda:1"]


def test_disabled_moves_nothing():
    offload = ModelOffload(torch.device("cuda"), enabled=False)
    assert offload.load_device == torch.device("cuda")
    a, b = Spy(), Spy()
    for module in (a, b, a):
        with offload.use(module):
            pass
    assert a.moves == [] and b.moves == []
