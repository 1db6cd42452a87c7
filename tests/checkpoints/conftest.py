import pytest

from genhuman.checkpoints.tiny import save_tiny_official_checkpoint


@pytest.fixture(scope="session")
def official(tmp_path_factory):
    """A tiny random V1 audio checkpoint in the official layout, inside a repo-clone-like folder."""
    return save_tiny_official_checkpoint(tmp_path_factory.mktemp("echomimic") / "pretrained_weights")
