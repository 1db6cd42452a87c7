from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.fakes import write_prepared


@pytest.fixture(scope="session")
def weights(tmp_path_factory) -> Path:
    from genhuman.checkpoints.tiny import save_tiny_official_checkpoint

    return save_tiny_official_checkpoint(tmp_path_factory.mktemp("init") / "weights")


@pytest.fixture(scope="session")
def prepared(tmp_path_factory) -> Path:
    return write_prepared(tmp_path_factory.mktemp("prepared"))


@pytest.fixture(scope="session")
def dataset(weights, prepared):
    from genhuman.checkpoints import load_echomimic
    from genhuman.training.dataset import PreparedDataset

    return PreparedDataset(prepared, load_echomimic(weights).vae)
