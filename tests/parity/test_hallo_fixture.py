"""The official Hallo parity fixture (data/hallo/) is whole and self-consistent.

The weights, inputs and noise regenerate bit for bit (hallo_fixture checks the SHA-256 of the
official run's); the network has the official Net's layout; the trace is what the official
DDIM step makes of its own model outputs, starting from the regenerated noise; the recorded
40-step schedule is the project's diffusers schedule. GenHuman's side of the comparison is
not here.
"""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler

from tests.parity import hallo_fixture as fx
from tests.parity.official_weights import RegenerationError, array_sha256

TINY_PREFIX_COUNTS = {"reference_unet": 436, "denoising_unet": 1224, "face_locator": 16, "imageproj": 4,
                      "audioproj": 8}


@pytest.fixture(scope="module")
def states():
    return fx.states()


def _scheduler(steps: int) -> DDIMScheduler:
    sched = DDIMScheduler(**fx.scheduler_reference()["config"])
    sched.set_timesteps(steps)
    return sched


def test_net_has_the_official_prefixes_in_order(states):
    net = states["net"]
    prefixes = list(dict.fromkeys(k.split(".", 1)[0] for k in net))
    assert tuple(prefixes) == fx.NET_PREFIXES
    assert Counter(k.split(".", 1)[0] for k in net) == TINY_PREFIX_COUNTS
    assert all(t.dtype == torch.float32 for t in net.values())
    den = [k for k in net if k.startswith("denoising_unet.")]
    assert any(".audio_modules." in k for k in den) and any(".motion_modules." in k for k in den)
    assert "audioproj.proj1.weight" in net and "imageproj.proj.weight" in net


def test_weights_follow_the_harness_rule(states):
    net, vae = states["net"], states["vae"]
    pe = {k: t for k, t in net.items() if k.endswith(".pe")}
    assert len(pe) == 26 and all(t.shape[:2] == (1, 32) for t in pe.values())  # PE max length 32
    first = next(iter(pe.values()))
    assert float(first[0, 1, 0]) == pytest.approx(math.sin(1.0), abs=1e-7)  # the sinusoid, not a draw
    drawn = torch.cat([t.flatten() for k, t in net.items() if not k.endswith(".pe")])
    assert float(drawn.std()) == pytest.approx(0.05, rel=1e-3)
    assert float(torch.cat([t.flatten() for t in vae.values()]).std()) == pytest.approx(0.3, rel=1e-3)
    # the seed-1 generator's first draw is the first official parameter (the Net before the VAE)
    first_weight = net["reference_unet.conv_in.weight"]
    assert torch.equal(first_weight, torch.randn(first_weight.shape, generator=torch.Generator().manual_seed(1)) * 0.05)


def test_regenerated_vae_folder_is_byte_identical(tmp_path):
    import hashlib

    folder = fx.regenerate(tmp_path / "hallo")
    recorded = fx.weights_spec()["file_sha256"]
    for rel in ("sd-vae-ft-mse/config.json", "sd-vae-ft-mse/diffusion_pytorch_model.safetensors"):
        assert hashlib.sha256((folder / rel).read_bytes()).hexdigest() == recorded[rel]
    net = torch.load(folder / "net.pth", map_location="cpu", weights_only=True)
    assert len(net) == sum(TINY_PREFIX_COUNTS.values())
    assert json.loads((folder / "tiny_config.json").read_text())["audio_proj"]["context_tokens"] == 32


def test_inputs_regenerate_with_the_official_shapes():
    inputs = fx.inputs()
    assert inputs["src"].shape == (3, 64, 64) and float(inputs["src"].abs().max()) <= 1.0
    assert inputs["audio_emb"].shape == (32, 5, 12, 768) and inputs["face_emb"].shape == (1, 512)
    assert inputs["face_region"].shape == (1, 3, 64, 64)
    for kind in ("full", "face", "lip"):
        assert [tuple(m.shape) for m in inputs[f"{kind}_mask"]] == [(1, 64), (1, 16), (1, 4), (1, 1)]
    for full, face in zip(inputs["full_mask"], inputs["face_mask"]):
        assert torch.equal(full, 1.0 - face)


def test_a_changed_rule_is_caught(monkeypatch):
    spec = fx.weights_spec()
    spec["modules"][0]["scale"] = 0.0501
    monkeypatch.setattr(fx, "weights_spec", lambda: spec)
    with pytest.raises(RegenerationError, match="regenerated Hallo net differs"):
        fx.states()


def test_a_changed_input_is_caught(monkeypatch):
    monkeypatch.setattr(fx, "INPUT_SEED", 3)
    with pytest.raises(RegenerationError, match="input src"):
        fx.inputs()


@pytest.mark.parametrize("run", ["asis", "bank32"])
def test_trace_has_both_clips_every_step(run):
    trace, settings = fx.trace(run), fx.run_settings()
    steps = settings["steps"] * 2
    assert settings["trace_steps"] == steps == 6
    assert trace["timesteps"].tolist() == [999, 666, 332] * 2 == _scheduler(3).timesteps.tolist() * 2
    assert trace["clip"].tolist() == [0, 0, 0, 1, 1, 1]
    for key in ("model_output", "latents"):
        assert trace[key].shape == (steps, 4, 16, 8, 8) and trace[key].dtype == np.float32
        assert np.isfinite(trace[key]).all()
        assert (trace[key].reshape(steps, -1).std(axis=1) > 1e-3).all()


def test_trace_is_the_ddim_step_of_its_own_model_outputs():
    """Each recorded step is diffusers' DDIM step (v-prediction, zero-SNR, trailing) of the
    recorded guided output, from the regenerated noise at each clip's start: exactly."""
    trace, noise = fx.trace("asis"), fx.initial_noise()
    sched = _scheduler(3)
    for i, t in enumerate(trace["timesteps"]):
        before = noise[trace["clip"][i]] if i % 3 == 0 else torch.from_numpy(trace["latents"][i - 1])[None]
        after = sched.step(torch.from_numpy(trace["model_output"][i])[None], int(t), before, return_dict=False)[0]
        assert torch.equal(after[0], torch.from_numpy(trace["latents"][i])), f"step {i}"


def test_fp16_bank_cast_is_below_the_parity_tolerance():
    asis, bank32, settings = fx.trace("asis"), fx.trace("bank32"), fx.run_settings()
    for key in ("model_output", "latents"):
        diff = np.abs(asis[key].astype(np.float64) - bank32[key]).reshape(6, -1).max(axis=1)
        assert diff.tolist() == pytest.approx(settings["asis_minus_bank32"][key], rel=1e-6)
        assert 0 < diff.max() < 2e-6  # the cast is real, and smaller than the 2e-6 per step
        assert max(settings["fp64_floor"][key]) < 2e-6


def test_noise_is_one_draw_per_clip():
    noise = fx.initial_noise()
    assert [tuple(n.shape) for n in noise] == [(1, 4, 16, 8, 8)] * 2
    assert not torch.equal(noise[0], noise[1])
    assert array_sha256(noise[1].numpy()) == fx.run_settings()["noise_sha256"][1]


def test_official_40_step_schedule_is_the_project_schedule():
    ref = fx.scheduler_reference()
    assert ref["diffusers"] == "0.27.2" and ref["config"]["beta_schedule"] == "linear"
    assert ref["timesteps"] == list(range(999, 0, -25)) and ref["prev_timesteps"][-1] == -1
    assert ref["alphas_cumprod"][0] == 0.0  # zero terminal SNR
    sched = _scheduler(40)
    assert sched.timesteps.tolist() == ref["timesteps"]
    assert [float(sched.alphas_cumprod[t]) for t in ref["timesteps"]] == ref["alphas_cumprod"]
    assert float(sched.final_alpha_cumprod) == ref["final_alpha_cumprod"] == 1.0
