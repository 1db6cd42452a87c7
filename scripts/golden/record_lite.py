"""Record the lite engine's golden slice (``lite_demo_streaming`` in tests/data/golden.json).

    .venv/bin/python scripts/golden/record_lite.py tests/data/golden.json

The bundled demo (astronaut + speech.wav + its transcript) streamed through ``LiteEngine.stream``
with the default request, frames before encoding. The slice sits on the mouth (where the renderer
does most) in the first, an open, the middle and the last frame; the SHA-256 covers every frame.
Run it again only when the renderer is meant to change, and say so in the commit.
"""
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def main(path: Path) -> None:
    from genhuman.engines.lite import LiteEngine
    from genhuman.face import landmark_indices as idx
    from genhuman.media import load_audio
    from genhuman.request import AnimateRequest
    from genhuman.speech.track import plan_phones

    examples = ROOT / "examples"
    engine = LiteEngine()
    request = engine.validate(AnimateRequest(text=(examples / "speech.txt").read_text()))
    wave = load_audio(examples / "speech.wav")
    avatar = engine.prepare_avatar(examples / "astronaut.png")
    frames = np.ascontiguousarray(np.stack([f.image for f in engine.stream(
        avatar, [wave], request, phones=plan_phones(wave, request.text))]))
    mouth = np.asarray(avatar.arrays["landmarks"])[list(idx.LIPS_OUTER)].mean(axis=0)
    h, w = int(mouth[1]) - 1, int(mouth[0]) - 1
    opened = int(np.argmin(frames[:, h + 1, w + 1].astype(int).sum(axis=1)))  # the darkest mouth
    picks = sorted({0, opened, len(frames) // 2, len(frames) - 1})
    golden = json.loads(path.read_text())
    golden["lite_demo_streaming"] = {
        "shape": list(frames.shape), "sha256": hashlib.sha256(frames.tobytes()).hexdigest(),
        "slice_frames": picks, "slice_at": [h, w],
        "slice": frames[picks, h:h + 3, w:w + 3, :].reshape(-1).tolist(), "mean": float(frames.mean())}
    path.write_text(json.dumps(golden, indent=1) + "\n")
    print(f"lite_demo_streaming: {frames.shape}, frames {picks}, slice at {h},{w}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
