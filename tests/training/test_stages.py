"""Stage-1/stage-2 trainers: a step reduces the loss, resume is bit for bit, trainable sets."""

from __future__ import annotations

import csv

import pytest
import torch
from safetensors.torch import load_file

from genhuman.training.config import TrainConfig
from genhuman.training.runner import load_components, prepare_bundle, stage_loss, train


def _config(weights, **kw) -> TrainConfig:
    values = dict(init=str(weights), steps=4, batch_size=2, frames=4, learning_rate=1e-3, log_every=1)
    values.update(kw)
    return TrainConfig(**values)


class _Ctx:
    class accelerator:  # noqa: N801 - the attribute the loss reads
        process_index = 0
        device = torch.device("cpu")

    step = 0


@pytest.mark.parametrize("stage", ["stage1", "stage2"])
def test_one_step_reduces_the_loss_on_a_fixed_batch(weights, dataset, stage):
    from genhuman.sampling import echomimic_scheduler

    config = _config(weights, stage=stage, uncond_ref_ratio=0, uncond_audio_ratio=0, uncond_all_ratio=0)
    bundle = prepare_bundle(config, load_components(config.init))
    loss_fn = stage_loss(config, dataset, echomimic_scheduler())
    params = [p for p in bundle.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.05)

    def fixed() -> torch.Tensor:
        return loss_fn(bundle, torch.Generator().manual_seed(7), _Ctx())

    before = fixed()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = fixed()
    assert after.item() < before.item() * 0.999


def test_stage_trainable_sets(weights):
    components = load_components(str(weights))
    one = {n for n, p in prepare_bundle(_config(weights, stage="stage1"), components).named_parameters()
           if p.requires_grad}
    components = load_components(str(weights))
    two = {n for n, p in prepare_bundle(_config(weights, stage="stage2"), components).named_parameters()
           if p.requires_grad}
    assert one and two and not one & two
    assert all("motion_modules" in n or ".attn2." in n or ".norm2." in n for n in two)
    assert any(n.startswith("reference_unet.") for n in one) and any(n.startswith("condition_encoder.") for n in one)
    assert not any("motion_modules" in n for n in one)


RESUMED = dict(stage="stage2", ema_decay=0.9)


@pytest.fixture(scope="module")
def full(weights, prepared, dataset, tmp_path_factory):
    """An uninterrupted 4-step stage-2 run with EMA."""
    return train(_config(weights, **RESUMED), prepared, tmp_path_factory.mktemp("full"), progress=False,
                 dataset=dataset)


def test_resume_reproduces_the_uninterrupted_run_bit_for_bit(weights, prepared, dataset, full, tmp_path):
    config = _config(weights, **RESUMED)
    part = train(config, prepared, tmp_path / "part", progress=False, stop_after=2, dataset=dataset)
    assert part.steps == 2
    rest = train(config, prepared, tmp_path / "part", resume="latest", progress=False, dataset=dataset)
    assert rest.steps == 4 and full.losses[2:] == rest.losses
    a = load_file(str(full.checkpoint / "genhuman" / "denoising_unet" / "model.safetensors"))
    b = load_file(str(rest.checkpoint / "genhuman" / "denoising_unet" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with (tmp_path / "part" / "logs" / "train.csv").open() as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [1, 2, 3, 4]
    assert (tmp_path / "part" / "logs" / "tensorboard").is_dir()
    assert (rest.checkpoint / "training_config.json").is_file()


def test_checkpoint_animates_the_portrait_from_both_layouts(full, weights, portrait_path, speech_path, tmp_path,
                                                            capsys):
    from genhuman.checkpoints import load_echomimic
    from genhuman.cli import main
    from genhuman.media import load_audio, read_video_info, save_wav

    official, converted = load_echomimic(full.checkpoint / "official"), load_echomimic(full.checkpoint / "genhuman")
    start = load_echomimic(weights)
    for name in ("reference_unet", "denoising_unet", "condition_encoder"):
        a, b = getattr(official, name).state_dict(), getattr(converted, name).state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    moved = [not torch.equal(v, start.denoising_unet.state_dict()[k])
             for k, v in official.denoising_unet.state_dict().items()]
    assert any(moved)  # the trained weights, not the initial ones
    speech = tmp_path / "short.wav"
    save_wav(speech, load_audio(speech_path)[:8000])
    for layout in ("official", "genhuman"):
        out = tmp_path / f"{layout}.mp4"
        code = main(["animate", str(portrait_path), str(speech), "--engine", "echomimic", "--weights",
                     str(full.checkpoint / layout), "-o", str(out), "--steps", "2", "--width", "64", "--no-progress"])
        assert code == 0, capsys.readouterr().err
        info = read_video_info(out)
        assert (info.width, info.height, info.frames) == (64, 64, 12)
