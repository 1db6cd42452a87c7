"""The speech models do not serialise the engine workers behind one global lock: TTS and
VAD run concurrently (onnxruntime sessions are thread-safe, piper locks espeak-ng
itself), and each thread has its own pocketsphinx decoders. Concurrent calls give exactly
the serial results."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from genhuman.speech import phonemes, tts, vad


class Overlap:
    """Wraps a session's ``run`` and records the most calls that were inside it at once."""

    def __init__(self, run, pause: float = 0.05):
        self.run, self.pause, self.inside, self.most = run, pause, 0, 0
        self.lock = threading.Lock()

    def __call__(self, *args, **kwargs):
        with self.lock:
            self.inside += 1
            self.most = max(self.most, self.inside)
        try:
            time.sleep(self.pause)  # long enough for the other thread to arrive
            return self.run(*args, **kwargs)
        finally:
            with self.lock:
                self.inside -= 1


def test_tts_runs_in_two_threads_at_once(monkeypatch):
    voice = tts._voice()
    overlap = Overlap(voice.session.run)
    monkeypatch.setattr(voice, "session", type("S", (), {"run": staticmethod(overlap)})())
    text = "The quick brown fox jumps over the lazy dog."
    with ThreadPoolExecutor(2) as pool:
        spoken = list(pool.map(tts.synthesize, [text, text]))
    assert overlap.most == 2  # no lock of ours around the model
    # piper samples its noise: each call differs a little; both are about 2.8 s of speech
    assert all(2.2 < len(w) / rate < 3.4 and np.isfinite(w).all() and np.abs(w).max() > 0.1 for w, rate in spoken)


def test_vad_in_two_threads_is_the_serial_result(speech_path):
    from genhuman.media import load_audio

    wave = load_audio(speech_path)
    serial = vad.speech_probability(wave)
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(vad.speech_probability, [wave, wave]))
    for got in together:
        np.testing.assert_array_equal(got, serial)


def test_each_thread_aligns_with_its_own_decoder(speech_path):
    from genhuman.media import load_audio

    wave = load_audio(speech_path)[:3 * 16000]
    text = (speech_path.with_suffix(".txt")).read_text()
    serial = phonemes.recognize(wave)
    decoders: list[int] = []
    lock = threading.Lock()
    both = threading.Barrier(2)  # both calls in flight at once: the pool cannot run them on one thread

    def run(_):
        both.wait(timeout=30)
        with lock:
            decoders.append(id(phonemes._recognizer()))
        return phonemes.recognize(wave)

    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(run, range(2)))
    assert together == [serial, serial]
    assert len(set(decoders)) == 2 and id(phonemes._recognizer()) not in decoders

    full = load_audio(speech_path)
    aligned = phonemes.align(full, text)
    assert aligned and any(p.word == "hello" for p in aligned)
    with ThreadPoolExecutor(2) as pool:
        assert list(pool.map(lambda _: phonemes.align(full, text), range(2))) == [aligned, aligned]
