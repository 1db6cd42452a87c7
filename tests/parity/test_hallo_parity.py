"""GenHuman's Hallo pipeline against the official Hallo, every step (issue 11 item 8).

The fixture (``data/hallo/``, see ``hallo_fixture.py``) is one run of the official pipeline
(2 clips of 16 frames chained by 2 motion frames, 3 DDIM steps, CFG 3.5, masks at 4 levels).
Its weights are regenerated, written in the official layout and loaded through GenHuman's
public path (``load_hallo_net`` on ``net.pth``, ``load_vae`` on ``sd-vae-ft-mse/``); its inputs
and each clip's noise go into :class:`HalloPipeline`, and every DDIM step of both clips (the
guided model output and the latents after the step) must match the official trace within
2e-6. "bank32" is the official run with its reference bank in fp32 (GenHuman in fp32);
"asis" is the harness's own run, whose bank the official rounds to fp16 (GenHuman with
``bank_dtype=torch.float16``). Clip 2 depends on clip 1's decoded frames, so this also
covers decoding, the motion frames' re-encoding and the reference pass. ``pytest -s`` prints
the per-step maxima.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genhuman.checkpoints.hallo import load_hallo_net
from genhuman.checkpoints.vae import load_vae
from genhuman.models.audio_attention import HalloMasks
from genhuman.pipelines.hallo import HalloPipeline
from genhuman.sampling.scheduler import HALLO_SCHEDULER, hallo_scheduler
from tests.parity import hallo_fixture as fx

TOLERANCE = 2e-6  # issue 11, per step
BANKS = {"bank32": None, "asis": torch.float16}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    folder = fx.regenerate(tmp_path_factory.mktemp("hallo_official"))
    net = load_hallo_net(folder / "net.pth")
    vae = load_vae(folder / "sd-vae-ft-mse")
    return HalloPipeline(vae, net, hallo_scheduler())


@pytest.fixture(scope="module")
def inputs():
    return fx.inputs()


def _run(pipeline: HalloPipeline, inputs, bank_dtype) -> dict[str, np.ndarray]:
    run = fx.run_settings()
    masks = HalloMasks(inputs["full_mask"], inputs["face_mask"], inputs["lip_mask"])
    portrait = pipeline.portrait(inputs["src"], inputs["face_region"], inputs["face_emb"], masks)
    steps: dict[str, list] = {"timesteps": [], "model_output": [], "latents": []}

    def record(i, t, latents, model_output):
        steps["timesteps"].append(int(t))
        steps["model_output"].append(model_output[0].numpy().copy())
        steps["latents"].append(latents[0].numpy().copy())

    out = pipeline(portrait, inputs["audio_emb"], steps=run["steps"], guidance_scale=run["cfg"],
                   motion_scale=run["motion_scale"], noise=fx.initial_noise(), bank_dtype=bank_dtype,
                   clip_length=run["clip"], motion_frames=run["n_motion_frames"], callback_on_step_end=record)
    assert out.frames.shape == (run["clip"] * 2, run["H"], run["W"], 3)
    video = pipeline.decode_pixels(out.latents)  # (32, 3, H, W) in [0, 1], the official video's values
    return {**{k: np.stack(v) for k, v in steps.items()}, "video": video.double().mean(dim=(2, 3)).numpy()}


def test_the_fixture_schedule_is_the_pipelines():
    official = fx.tiny_config()["scheduler"]  # the rest are diffusers' defaults, as in HALLO_SCHEDULER
    assert official == {k: HALLO_SCHEDULER[k] for k in official}


@pytest.fixture(scope="module")
def runs():
    return {}  # name -> GenHuman's steps, filled by the parity test, read by the bank test


@pytest.mark.parametrize("name", list(BANKS))
def test_every_step_matches_the_official_trace(pipeline, inputs, runs, name):
    official = fx.trace(name)
    mine = runs[name] = _run(pipeline, inputs, BANKS[name])
    assert mine["timesteps"].tolist() == official["timesteps"].tolist()
    maxima = {key: np.abs(mine[key].astype(np.float64) - official[key]).reshape(len(mine[key]), -1).max(axis=1)
              for key in ("model_output", "latents")}
    print(f"\nhallo parity vs official {name!r} (bank {BANKS[name]}): per-step max |GenHuman - official|")
    print("step  clip  t     model_output  latents")
    for i, t in enumerate(official["timesteps"]):
        print(f"{i:4d}  {official['clip'][i]:4d}  {t:4d}  {maxima['model_output'][i]:12.2e}  {maxima['latents'][i]:8.2e}")
    for key, values in maxima.items():
        assert values.max() < TOLERANCE, f"{key}: {values.tolist()}"
        assert np.abs(official[key]).max() > 0.1  # a trace worth comparing
    if name == "asis":  # the harness's own video: its per-frame channel means are recorded
        video = np.abs(mine["video"] - np.array(fx.run_settings()["video_frame_mean"])).max()
        print(f"decoded video, per-frame channel means: max diff {video:.2e}")
        assert video < 1e-6


def test_the_fp16_bank_changes_the_run(runs):
    """bank_dtype=float16 is not a no-op in fp32: the two runs differ as the official two do."""
    if set(runs) != set(BANKS):
        pytest.skip("needs both parity runs of this module")
    official = fx.run_settings()["asis_minus_bank32"]["latents"]
    gap = np.abs(runs["asis"]["latents"].astype(np.float64) - runs["bank32"]["latents"]).reshape(6, -1).max(axis=1)
    assert (gap > 0).all() and gap.max() < 4 * max(official)
