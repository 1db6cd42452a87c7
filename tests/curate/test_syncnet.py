"""SyncNet: the official state-dict layout, loading with weights_only, and the evaluation."""

import numpy as np
import pytest
import torch

from genhuman.curate.syncnet import SyncNet, load_syncnet, mfcc, sync_confidence
from genhuman.errors import InputError

# joonson/syncnet_python SyncNetModel.S: Conv/BatchNorm positions inside each Sequential.
AUDIO_CONV, AUDIO_BN = (0, 4, 8, 11, 14, 18), (1, 5, 9, 12, 15, 19)
LIP_CONV, LIP_BN = (0, 4, 8, 11, 14, 18), (1, 5, 9, 12, 15, 19)
FC_LINEAR, FC_BN = (0, 3), (1,)


def official_keys() -> set[str]:
    keys = set()
    bn = ("weight", "bias", "running_mean", "running_var")
    for tower, convs, bns in (("netcnnaud", AUDIO_CONV, AUDIO_BN), ("netcnnlip", LIP_CONV, LIP_BN)):
        keys |= {f"{tower}.{i}.{p}" for i in convs for p in ("weight", "bias")}
        keys |= {f"{tower}.{i}.{p}" for i in bns for p in bn}
    for head in ("netfcaud", "netfclip"):
        keys |= {f"{head}.{i}.{p}" for i in FC_LINEAR for p in ("weight", "bias")}
        keys |= {f"{head}.{i}.{p}" for i in FC_BN for p in bn}
    return keys


def test_state_dict_has_the_official_keys_and_shapes():
    state = SyncNet().state_dict()
    assert {k for k in state if not k.endswith("num_batches_tracked")} == official_keys()
    assert state["netcnnlip.0.weight"].shape == (96, 3, 5, 7, 7)
    assert state["netcnnaud.18.weight"].shape == (512, 256, 5, 4)
    assert state["netfcaud.3.weight"].shape == (1024, 512)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    model = SyncNet()
    for module in model.modules():  # random statistics, as a trained file has
        if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    # the official file predates num_batches_tracked
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path_factory.mktemp("syncnet") / "syncnet_v2.model"
    torch.save(state, path)
    return path, state


def test_loads_the_official_file_with_weights_only(weights):
    path, state = weights
    model = load_syncnet(path)
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    assert not model.training


def test_wrong_layout_is_an_input_error(tmp_path):
    path = tmp_path / "other.model"
    torch.save({"conv.weight": torch.zeros(1)}, path)
    with pytest.raises(InputError, match="does not have SyncNet's layout"):
        load_syncnet(path)
    with pytest.raises(InputError, match="not found"):
        load_syncnet(tmp_path / "missing.model")


def test_confidence_follows_the_official_evaluation(weights):
    model = load_syncnet(weights[0])
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 255, (9, 224, 224, 3), dtype=np.uint8)
    audio = (0.1 * rng.standard_normal(16000 * 9 // 25)).astype(np.float32)
    confidence, offset, minimum = sync_confidence(model, faces, audio)
    # independent recomputation of the official distances
    cc = torch.from_numpy(mfcc(audio))[None, None]
    video = torch.from_numpy(faces).permute(3, 0, 1, 2).float()[None]
    with torch.no_grad():
        lip = torch.cat([model.forward_lip(video[:, :, i:i + 5]) for i in range(4)])
        aud = torch.cat([model.forward_aud(cc[..., 4 * i:4 * i + 20]) for i in range(4)])
    padded = torch.cat([torch.zeros(15, aud.shape[1]), aud, torch.zeros(15, aud.shape[1])])
    dists = torch.stack([torch.stack([torch.norm(lip[i] - padded[i + s] + 1e-6) for s in range(31)])
                         for i in range(4)])
    mean = dists.mean(0)
    assert offset == 15 - int(torch.argmin(mean))
    assert minimum == pytest.approx(float(mean.min()), rel=1e-4)
    assert confidence == pytest.approx(float(mean.median() - mean.min()), rel=1e-3, abs=1e-4)
    assert mfcc(audio).shape[0] == 13
