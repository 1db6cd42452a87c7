import json

import numpy as np
import pytest

from genhuman.cli import main
from genhuman.errors import InputError
from genhuman.eval import lipsync_stats, measure_lipsync
from genhuman.eval.lipsync import lagged_correlations
from genhuman.eval.tracks import loudness_track
from genhuman.media import SAMPLE_RATE, VideoWriter, load_image

from .synthetic import burst_envelope, render


@pytest.fixture(scope="module")
def portrait(portrait_path):
    return load_image(portrait_path)


@pytest.fixture(scope="module")
def envelope():
    return burst_envelope(100)


@pytest.fixture(scope="module")
def in_sync(tmp_path_factory, portrait, envelope):
    return render(tmp_path_factory.mktemp("sync") / "sync.mp4", portrait, envelope)


def test_in_sync_video_correlates_at_lag_zero(in_sync, envelope):
    report = measure_lipsync(in_sync)
    assert report.frames == 100 and report.face_frames == 100
    assert report.best_lag == 0
    assert report.correlation > 0.6
    assert set(report.correlation_by_lag) == set(range(-5, 6))
    assert report.silence_runs >= 2
    assert report.closed_in_silence >= 0.95
    # the measured opening follows the drawn one
    assert np.corrcoef(report.opening, envelope)[0, 1] > 0.9


def test_delayed_mouth_gives_that_lag(tmp_path, portrait, envelope):
    report = measure_lipsync(render(tmp_path / "late.mp4", portrait, envelope, mouth_delay=3))
    assert report.best_lag == 3
    assert report.best_correlation > 0.6 > report.correlation


def test_cli_prints_figures(in_sync, capsys):
    assert main(["eval", "lipsync", str(in_sync)]) == 0
    text = capsys.readouterr().out
    assert "best lag            +0 frames" in text and "closed in silence" in text
    assert main(["eval", "lipsync", str(in_sync), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["best_lag"] == 0 and data["frames"] == 100
    assert set(data) == {"frames", "fps", "face_frames", "correlation", "best_lag", "best_correlation",
                         "correlation_by_lag", "silence_runs", "silence_frames", "closed_silence_frames",
                         "closed_in_silence", "closed_threshold", "rest_opening"}


def test_hand_made_silences():
    fps = 25
    loudness = np.full(50, -10.0)
    loudness[10:20] = -80.0  # 400 ms: counts; judged frames 11..18 (one frame trimmed at each end)
    loudness[30:34] = -80.0  # 160 ms: too short to count
    opening = np.tile([0.1, 0.2, 0.3, 0.4], 13)[:50]
    opening[10:20] = 0.0
    opening[[12, 15]] = 0.3  # open during the silence
    opening[19] = 0.4  # trimmed edge frame: not judged
    report = lipsync_stats(opening, loudness, fps)
    assert report.silence_runs == 1
    assert report.silence_frames == 8
    assert report.closed_silence_frames == 6
    assert report.closed_in_silence == pytest.approx(0.75)


def test_a_portrait_that_rests_open_counts_as_closed_at_its_own_rest():
    fps = 25
    loudness = np.full(60, -10.0)
    loudness[20:40] = -80.0  # one 800 ms silence
    rng = np.random.default_rng(0)
    opening = 0.12 + 0.15 * rng.random(60)  # a smile with parted lips, opening wider in speech
    opening[::7] = 0.02  # lips that close fully on m/b/p: below the smile
    opening[20:40] = 0.12 + 0.005 * rng.standard_normal(20)  # back at the smile in the silence
    plain = lipsync_stats(opening, loudness, fps)
    assert plain.closed_in_silence < 0.5  # the 5th percentile is a closure: the smile reads as open
    rest = lipsync_stats(opening, loudness, fps, rest_opening=0.12)
    assert rest.closed_in_silence == 1.0 and rest.rest_opening == 0.12
    top = np.percentile(opening, 95)
    assert rest.closed_threshold == pytest.approx(0.12 + 0.25 * (top - 0.12))
    assert "portrait's opening 0.120" in rest.to_text() and "portrait's" not in plain.to_text()


def test_cli_measures_against_the_portrait(in_sync, portrait_path, capsys):
    assert main(["eval", "lipsync", str(in_sync), "--portrait", str(portrait_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert 0.1 < data["rest_opening"] < 0.13  # the bundled portrait smiles with parted lips


def test_lagged_correlation_matches_numpy():
    rng = np.random.default_rng(1)
    loud = rng.normal(size=60)
    opening = np.roll(loud, 2) + 0.1 * rng.normal(size=60)
    by_lag = lagged_correlations(opening, loud, 5)
    assert by_lag[2] == pytest.approx(np.corrcoef(opening[2:], loud[:-2])[0, 1])
    assert by_lag[-1] == pytest.approx(np.corrcoef(opening[:-1], loud[1:])[0, 1])
    assert max(by_lag, key=by_lag.get) == 2


def test_loudness_track_levels():
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    wave = (0.5 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    wave[SAMPLE_RATE // 2:] = 0
    db = loudness_track(wave, 25, 30)  # 30 frames = 1.2 s: the last 5 lie past the audio
    assert db[:12] == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.05)
    assert (db[13:] == -100.0).all()


def test_errors(tmp_path, portrait):
    silent_video = tmp_path / "mute.mp4"
    with VideoWriter(silent_video, 25) as writer:
        writer.write(portrait)
    with pytest.raises(InputError, match="no audio track"):
        measure_lipsync(silent_video)
    faceless = tmp_path / "faceless.mp4"
    with VideoWriter(faceless, 25, audio=np.zeros(SAMPLE_RATE, np.float32)) as writer:
        for _ in range(10):
            writer.write(np.full((128, 128, 3), 120, np.uint8))
    with pytest.raises(InputError, match="no face could be tracked"):
        measure_lipsync(faceless)


def test_lags_longer_than_a_short_video_are_nan_not_a_crash():
    opening, loudness = np.array([0.0, 1.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0, 1.0])
    by_lag = lagged_correlations(opening, loudness)
    assert by_lag[0] == pytest.approx(1.0)
    assert all(np.isnan(by_lag[lag]) for lag in (-5, -4, 4, 5))
