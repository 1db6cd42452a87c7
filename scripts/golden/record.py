"""Record golden output slices of the tiny pipelines and the lite engine (run once, before a refactor).

The frames are captured before encoding (MP4 is lossy), and stored as a few pixel slices plus a
SHA-256 of every frame's bytes, so a later run can prove it is bit-identical.
Usage: python scripts/golden/record.py tests/data/golden.json

It drives the pipelines' API as it was before the tensor-level refactor, so it runs at commit
f7825f8 (PYTHONPATH=that checkout's src); tests/pipelines/test_golden.py replays the same cases
through the engines' public path today.
"""
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "pipelines"))


def summary(frames: np.ndarray) -> dict:
    frames = np.ascontiguousarray(frames)
    picks = sorted({0, len(frames) // 2, len(frames) - 1})
    h, w = frames.shape[1] // 2, frames.shape[2] // 2
    return {"shape": list(frames.shape), "sha256": hashlib.sha256(frames.tobytes()).hexdigest(),
            "slice_frames": picks, "slice_at": [h, w],
            "slice": frames[picks, h:h + 3, w:w + 3, :].reshape(-1).tolist(),
            "mean": float(frames.mean())}


class Capture:
    frames: list = []

    def __init__(self, *a, **k):
        Capture.frames = []

    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False

    def write(self, frame):
        Capture.frames.append(np.array(frame))


def main(out: str) -> None:
    torch.set_num_threads(1)
    import genhuman.engines.lite.engine as lite_mod
    import genhuman.media as media
    import genhuman.pipelines.echomimic as v1
    import genhuman.pipelines.echomimic_v2 as v2
    from genhuman.media import load_audio, load_image
    from genhuman.pipelines import EchoMimicPipeline, EchoMimicSettings
    from genhuman.pipelines.echomimic_v2 import EchoMimicV2Pipeline, EchoMimicV2Settings
    from genhuman.sampling import WindowSchedule
    from tiny_echomimic import tiny_components

    v1.VideoWriter = v2.VideoWriter = media.VideoWriter = Capture
    image = load_image(ROOT / "examples/astronaut.png")
    wave = load_audio(ROOT / "examples/speech.wav")[:12000]
    result = {}

    pipe = EchoMimicPipeline(**tiny_components())
    pipe(image, wave, "x.mp4", EchoMimicSettings(size=128, steps=2, guidance_scale=2.5))
    result["v1_audio_cfg"] = summary(np.stack(Capture.frames))
    pipe(image, wave, "x.mp4", EchoMimicSettings(size=128, steps=2, guidance_scale=1.0))
    result["v1_audio_nocfg"] = summary(np.stack(Capture.frames))
    pipe(image, wave, "x.mp4", EchoMimicSettings(size=128, steps=2, guidance_scale=2.5, paste_back=True))
    result["v1_paste_back"] = summary(np.stack(Capture.frames))

    pose_pipe = EchoMimicPipeline(**tiny_components(conditioning_channels=3))
    rng = np.random.default_rng(5)
    landmarks = 30 + rng.uniform(0, 68, size=(7, 478, 2))
    pose_pipe(image, wave, "x.mp4", EchoMimicSettings(size=128, steps=2, guidance_scale=2.5, clamp_noise=None,
                                                  context=WindowSchedule(12, 3, 3)),  # official pose shift
              landmarks=landmarks)
    result["v1_landmarks"] = summary(np.stack(Capture.frames))

    v2_pipe = EchoMimicV2Pipeline(**tiny_components(conditioning_channels=3))
    v2_pipe(image, wave, "x.mp4", EchoMimicV2Settings(width=96, height=128, steps=2, guidance_scale=2.5))
    result["v2_generated_pose"] = summary(np.stack(Capture.frames))

    lite_mod.VideoWriter = Capture
    from genhuman.engines.base import AnimateRequest
    from genhuman.engines.lite import LiteEngine

    text = (ROOT / "examples/speech.txt").read_text().strip()
    LiteEngine().animate(ROOT / "examples/astronaut.png", ROOT / "examples/speech.wav", "x.mp4",
                         AnimateRequest(text=text))
    result["lite_demo"] = summary(np.stack(Capture.frames))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(result, indent=1))
    for k, v in result.items():
        print(k, v["shape"], v["sha256"][:16], round(v["mean"], 3))


if __name__ == "__main__":
    main(sys.argv[1])
