"""Golden output slice of the lite engine on the bundled demo (speech.wav + its transcript).

Recorded with the streaming mouth track (``lite_demo_streaming``; ``lite_demo`` in the same
file is the whole-clip track before it, kept for the record). Tolerance: 2 uint8 levels,
since float rounding differs between CPUs; bit-identical on the recording machine
(``GOLDEN_EXACT=1`` checks the SHA-256 of every frame).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from genhuman.engines.lite import LiteEngine
from genhuman.media import load_audio
from genhuman.request import AnimateRequest
from genhuman.speech.track import plan_phones

GOLDEN = json.loads((Path(__file__).parents[2] / "data" / "golden.json").read_text())["lite_demo_streaming"]


def test_lite_demo_golden_slice(portrait_path, speech_path, speech_text):
    engine = LiteEngine()
    request = engine.validate(AnimateRequest(text=speech_text))
    wave = load_audio(speech_path)
    frames = np.stack([f.image for f in engine.stream(engine.prepare_avatar(portrait_path), [wave], request,
                                                      phones=plan_phones(wave, request.text))])
    assert list(frames.shape) == GOLDEN["shape"]
    picks, (h, w) = GOLDEN["slice_frames"], GOLDEN["slice_at"]
    got = frames[picks, h:h + 3, w:w + 3, :].reshape(-1).astype(int)
    assert np.abs(got - np.array(GOLDEN["slice"])).max() <= 2, got.tolist()
    assert abs(float(frames.mean()) - GOLDEN["mean"]) <= 0.5
    if os.environ.get("GOLDEN_EXACT") == "1":
        assert hashlib.sha256(np.ascontiguousarray(frames).tobytes()).hexdigest() == GOLDEN["sha256"]
