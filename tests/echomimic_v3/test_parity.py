"""Step-by-step parity with the official EchoMimicV3 pipelines (tiny config, fp32), from the committed trace.

Tolerances: twice the official code's own fp32-vs-fp64 floor (spec §4): model outputs preview 5e-6, Flash
1.4e-5; latents preview 1.9e-6, Flash 1.1e-5.
"""

from __future__ import annotations

import pytest
import torch

from genhuman.checkpoints.echomimic_v3 import load_transformer
from genhuman.pipelines.echomimic_v3 import (EchoMimicV3Pipeline, FlashOptions, PreviewOptions, TeaCache,
                                             V3Conditions)

from .official import audio_input, fixture, initial_noise, pad_text, write_official_folder

FLOOR = {"preview": (5e-6, 1.9e-6), "flash": (1.4e-5, 1.1e-5)}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("ev3")
    return {kind: load_transformer(write_official_folder(root / kind, kind), flash=(kind == "flash"))
            for kind in ("preview", "flash")}


def run(models, variant: str, cache: TeaCache | None = None):
    data, meta = fixture(variant)
    kind = "flash" if variant.startswith("flash") else "preview"
    pipe = EchoMimicV3Pipeline(models[kind])
    steps: list[tuple[float, torch.Tensor, torch.Tensor]] = []

    def record(i, t, pred, latents):
        steps.append((t, pred.flatten()[data["index"]], latents))

    prompt = pad_text(data["prompt"])
    if kind == "flash":
        cond = V3Conditions(prompt, prompt, data["clip"], data["condition"])
        pipe.sample_flash(cond, audio_input(variant), initial_noise(variant), FlashOptions(), record, cache=cache)
    else:
        cond = V3Conditions(prompt, pad_text(data["negative"]), data["clip"], data["condition"])
        long = variant == "preview_long"
        options = PreviewOptions(steps=4, long_video=long, window_latents=3, overlap_latents=1)
        pipe.sample_preview(cond, audio_input(variant), initial_noise(variant), data["face_mask"], options, record)
    return data, meta, steps


@pytest.mark.parametrize("variant", ["preview", "preview_long", "flash", "flash_teacache"])
def test_every_step_matches_official(models, variant):
    cache = TeaCache(8, 0.1, 5) if variant == "flash_teacache" else None
    data, meta, steps = run(models, variant, cache)
    kind = "flash" if variant.startswith("flash") else "preview"
    out_tol, lat_tol = (2 * f for f in FLOOR[kind])
    assert len(steps) == meta["steps"]
    windows = 2 if variant == "preview_long" else 1  # 5 latent frames in windows of 3 overlapping by 1
    assert [t for t, _, _ in steps] == pytest.approx([t for t in meta["timesteps"] for _ in range(windows)], abs=1e-3)
    worst = []
    for i, (_, pred, latents) in enumerate(steps):
        d_out = float((pred - data[f"model_output_{i}"]).abs().max())
        d_lat = float((latents.flatten()[data["index"]] - data[f"latents_{i}"]).abs().max())
        worst.append((d_out, d_lat))
        assert d_out <= out_tol, (i, d_out)
        assert d_lat <= lat_tol, (i, d_lat)
    assert float((steps[-1][2] - data["final_latents"]).abs().max()) <= lat_tol
    print(variant, "per-step max |model output|, |latents| differences:",
          ", ".join(f"{a:.1e}/{b:.1e}" for a, b in worst))
    if cache is not None:
        # the official flag is read after the call, when the counter's reset at call 8 and 16 has set it True
        official = meta["teacache_should_calc_after_call"]
        assert [c for i, c in enumerate(cache.calls) if i not in (7, 15)] == \
            [c for i, c in enumerate(official) if i not in (7, 15)]
        assert [i for i, c in enumerate(cache.calls) if not c] == [5, 6, 7, 13, 14, 15]


def test_corrected_teacache_decides_per_step_and_differs(models):
    cache = TeaCache(8, 0.1, 5, per_step=True)
    _, _, steps = run(models, "flash_teacache", cache)
    assert len(cache.calls) == 16
    assert all(cache.calls[2 * i] == cache.calls[2 * i + 1] for i in range(8))  # one decision per step
    assert cache.calls[:10] == [True] * 10  # five real steps are computed, not five calls
    quirk = TeaCache(8, 0.1, 5)
    _, _, quirk_steps = run(models, "flash_teacache", quirk)
    assert float((steps[-1][2] - quirk_steps[-1][2]).abs().max()) > 1e-4
