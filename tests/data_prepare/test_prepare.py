"""genhuman data prepare: the manifest holds what the files hold; the drop rule; resume; workers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from genhuman.data import layout
from genhuman.data.prepare import PrepareConfig, prepare
from tests.data_prepare.conftest import FRAMES, SIZE

KEPT_IDS = {"a", "nested__b"}


@pytest.fixture(scope="module")
def prepared(videos, echo_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared") / "out"
    report = prepare(videos, out, PrepareConfig(family="echomimic", size=SIZE), model=echo_model, progress=False)
    return out, report


def test_rows_and_statuses(prepared):
    out, report = prepared
    rows = layout.read_manifest(out)
    assert [r.clip_id for r in rows] == ["a", "nested__b", "short"]  # sorted paths, nested joined by __
    assert {r.clip_id for r in rows if r.kept} == KEPT_IDS
    assert (report.kept, report.dropped, report.skipped) == (2, 1, 0)
    line = json.loads((out / layout.MANIFEST_FILE).read_text().splitlines()[0])
    assert set(line) == {"clip_id", "source", "family", "status", "reason", "duration_s", "num_frames",
                         "num_feature_frames", "size", "fps", "checks"}


def test_manifest_holds_what_the_files_hold(prepared, echo_model):
    from genhuman.media import load_audio

    out, _ = prepared
    for row in layout.read_manifest(out):
        if not row.kept:
            continue
        clip = layout.PreparedClip(layout.clip_dir(out, row.clip_id))
        t = row.num_frames
        assert row.num_feature_frames == t == clip.num_frames == clip.meta["num_frames"]
        assert clip.frames.shape == (t, SIZE, SIZE, 3) and clip.frames.dtype == np.uint8
        assert clip.features.shape == (t, 50, echo_model.encoder.config.d_model)  # 10 windows x 5 levels
        from safetensors.torch import load_file

        assert int(load_file(str(clip.folder / layout.FEATURES_FILE))[layout.FRAMES_KEY]) == t
        for key in layout.MASK_KEYS:
            assert clip.masks[key].shape == (t, SIZE, SIZE) and set(np.unique(clip.masks[key])) <= {0, 1}
        assert clip.masks[layout.BOXES_KEY].shape == (t, 4)
        assert np.array_equal(clip.masks["union"], np.maximum(clip.masks["face"], clip.masks["lip"]))
        assert clip.face_embedding is None  # EchoMimic uses none
        assert abs(len(clip.audio) / 16000 - row.duration_s) < 1e-3
        assert row.checks["video_frames"] - row.checks["audio_frames"] == row.checks["frame_difference"]
        assert abs(row.checks["frame_difference"]) <= layout.MAX_FRAME_MISMATCH
        # the features are the whisper windows of the source's audio, as inference makes them
        levels, _ = echo_model.encode(load_audio(row.source))
        assert torch.equal(clip.features, echo_model.per_frame(levels, t))


def test_frames_are_the_inference_crop(prepared, videos):
    """Video a's frames equal the EchoMimic engine's crop of each source frame (up to H.264)."""
    from genhuman.engines.echomimic import CROP_DILATION, MASK_DILATION
    from genhuman.face import face_landmarks
    from genhuman.media.video_reader import iter_video_frames
    from genhuman.pipelines.face_crop import FaceCrop

    out, _ = prepared
    source = list(iter_video_frames(videos / "a.mp4"))
    face = face_landmarks(source[0])
    crop = FaceCrop.official(face.box, source[0].shape[1], source[0].shape[0], CROP_DILATION, MASK_DILATION)
    clip = layout.PreparedClip(layout.clip_dir(out, "a"))
    assert clip.meta["crop_box"] == list(crop.box)
    expected = np.stack([crop.crop(f, SIZE) for f in source]).astype(np.float64)
    mse = np.mean((clip.frames.astype(np.float64) - expected) ** 2)
    assert 10 * np.log10(255 ** 2 / mse) > 30


def test_masks_match_their_boxes(prepared):
    out, _ = prepared
    clip = layout.PreparedClip(layout.clip_dir(out, "a"))
    for face, (x0, y0, x1, y1) in zip(clip.masks["face"], clip.masks[layout.BOXES_KEY]):
        ys, xs = np.nonzero(face)
        assert (xs.min(), ys.min()) == (max(0, x0), max(0, y0))
        assert (xs.max() + 1, ys.max() + 1) == (min(SIZE, x1), min(SIZE, y1))
    lip_rows = np.nonzero(clip.masks["lip"][0].any(axis=1))[0]
    face_rows = np.nonzero(clip.masks["face"][0].any(axis=1))[0]
    assert face_rows.min() < lip_rows.min() and lip_rows.mean() > face_rows.mean()  # lips in the lower face


def test_resampled_and_trimmed(prepared):
    out, _ = prepared
    b = {r.clip_id: r for r in layout.read_manifest(out)}["nested__b"]
    assert b.checks["source_fps"] == 30 and b.checks["source_frames"] == FRAMES * 6 // 5
    assert b.checks["video_frames"] == FRAMES  # 36 frames at 30 fps = 30 at 25
    assert b.num_frames == min(b.checks["video_frames"], b.checks["audio_frames"]) < FRAMES


def test_drop_rule(prepared):
    """A video whose audio is 10 frames shorter is dropped, with the reason, and leaves only meta.json."""
    out, _ = prepared
    row = {r.clip_id: r for r in layout.read_manifest(out)}["short"]
    assert row.status == layout.DROPPED and row.checks["frame_difference"] > layout.MAX_FRAME_MISMATCH
    assert "more than 3" in row.reason and f"{row.num_frames} video frames" in row.reason
    assert sorted(p.name for p in layout.clip_dir(out, "short").iterdir()) == [layout.META_FILE]
    assert [c.clip_id for c in layout.prepared_clips(out)] == ["a", "nested__b"]  # the loader lists kept clips only


def test_resume_skips_done_and_redoes_half_written(prepared, videos, echo_model, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(prepared[0], out)
    first = (out / layout.MANIFEST_FILE).read_text()
    stamp = (layout.clip_dir(out, "a") / layout.VIDEO_FILE).stat().st_mtime_ns
    again = prepare(videos, out, PrepareConfig(size=SIZE), model=None, progress=False)  # loads no model
    assert again.skipped == 3 and (out / layout.MANIFEST_FILE).read_text() == first
    assert (layout.clip_dir(out, "a") / layout.VIDEO_FILE).stat().st_mtime_ns == stamp

    half = layout.clip_dir(out, "nested__b")
    (half / layout.META_FILE).unlink()  # as if killed before meta.json
    (half / "junk.tmp").write_text("x")
    third = prepare(videos, out, PrepareConfig(size=SIZE), model=echo_model, progress=False)
    assert third.skipped == 2 and not (half / "junk.tmp").exists() and layout.is_complete(half)
    assert (out / layout.MANIFEST_FILE).read_text() == first


def test_other_size_family_or_source_is_not_reused(prepared, videos):
    from dataclasses import replace

    from genhuman.data.prepare import Job, _reusable, signature

    out, _ = prepared
    source = videos / "a.mp4"
    job = Job(str(source), "a", str(layout.clip_dir(out, "a")), "echomimic", SIZE, 3, signature(source))
    assert _reusable(Path(job.folder), job) is not None
    assert _reusable(Path(job.folder), replace(job, size=2 * SIZE)) is None
    assert _reusable(Path(job.folder), replace(job, family="hallo")) is None
    assert _reusable(Path(job.folder), replace(job, signature={**job.signature, "mtime": 0.0})) is None


@pytest.mark.slow  # two spawned worker processes each import torch and mediapipe
def test_workers_give_the_same_manifest(prepared, videos, echo_weights, tmp_path):
    """--workers 2 (spawned processes, each loading the model from the folder): the same manifest."""
    one, two = prepared[0], tmp_path / "two"
    report = prepare(videos, two, PrepareConfig(size=SIZE, audio_model=echo_weights, workers=2), progress=False)
    assert (report.kept, report.dropped, report.skipped) == (2, 1, 0)
    assert (one / layout.MANIFEST_FILE).read_text() == (two / layout.MANIFEST_FILE).read_text()
    a1, a2 = (layout.PreparedClip(layout.clip_dir(d, "a")) for d in (one, two))
    assert torch.equal(a1.features, a2.features) and np.array_equal(a1.masks["face"], a2.masks["face"])
