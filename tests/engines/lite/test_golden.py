"""Golden output slice of the lite engine on the bundled demo (speech.wav + its transcript).

``lite_demo_streaming`` is recorded by scripts/golden/record_lite.py (re-recorded for issue 10's
renderer: one cubic remap, the photo's own mouth at rest; the slice sits on the mouth); ``lite_demo``
in the same file is the whole-clip track of an older renderer, kept for the record. Tolerance: see
tests/golden.py.
"""

from __future__ import annotations

import numpy as np

from genhuman.engines.lite import LiteEngine
from genhuman.media import load_audio
from genhuman.request import AnimateRequest
from genhuman.speech.track import plan_phones
from tests.golden import assert_matches_golden


def test_lite_demo_golden_slice(portrait_path, speech_path, speech_text):
    engine = LiteEngine()
    request = engine.validate(AnimateRequest(text=speech_text))
    wave = load_audio(speech_path)
    frames = np.stack([f.image for f in engine.stream(engine.prepare_avatar(portrait_path), [wave], request,
                                                      phones=plan_phones(wave, request.text))])
    assert_matches_golden("lite_demo_streaming", frames)
