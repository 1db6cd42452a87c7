"""Outputs, resume and bad inputs of the local path."""

import json
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

from genhuman.curate import curate, manifest
from genhuman.curate import work as work_module
from genhuman.curate.resume import row_path, state_dir
from genhuman.eval.lipsync import lagged_correlations
from genhuman.eval.tracks import loudness_track, mouth_opening_track
from genhuman.media import SAMPLE_RATE, load_audio, read_video_info

from .conftest import small_config


def test_manifest_schema_and_rows(local_run):
    table = pq.read_table(local_run.out_dir / "manifest.parquet")
    assert table.schema.equals(manifest.SCHEMA)
    assert table.num_rows == 10
    data = table.to_pylist()
    assert [r["segment_id"] for r in data] == [r["segment_id"] for r in local_run.rows]
    for row in data:
        assert row["kept"] == (row["rejected_by"] == "") == (row["reasons"] == "")
        assert row["kept"] == bool(row["clip"])
    inputs = pq.read_table(local_run.out_dir / "inputs.parquet").to_pylist()
    assert inputs == [{**inputs[0], "status": "done", "reason": "", "segments": 10, "kept": 2}]


def test_kept_clips_are_the_training_layout(local_run):
    kept = [r for r in local_run.rows if r["kept"]]
    assert len(kept) == 2
    for row in kept:
        info = read_video_info(local_run.out_dir / row["clip"])
        assert (info.width, info.height, info.fps, info.frames) == (128, 128, 25.0, 50)
        assert info.has_audio and abs(info.audio_duration - 2.0) < 0.05
        assert row["crop_x1"] - row["crop_x0"] == row["crop_y1"] - row["crop_y0"] > 0
    assert sorted(p.name for p in (local_run.out_dir / "clips").iterdir()) == sorted(
        r["segment_id"] + ".mp4" for r in kept)


def test_offset_is_corrected_in_the_clip(local_run, raw):
    k = [shot.variant for shot in raw[1]].index("shifted")
    clip = local_run.out_dir / local_run.rows[k]["clip"]
    opening = mouth_opening_track(clip)
    loudness = loudness_track(load_audio(clip, SAMPLE_RATE), 25.0, len(opening))
    by_lag = {lag: r for lag, r in lagged_correlations(opening, loudness, 12).items() if np.isfinite(r)}
    best = max(by_lag, key=by_lag.get)
    assert abs(best) <= 1, by_lag  # was +10 in the source


def test_second_run_skips_finished_inputs(local_run, raw):
    again = curate(str(raw[0]), local_run.out_dir, small_config(), use_ray=False, progress=False, report=False)
    assert again.processed == 0 and again.skipped_inputs == 1
    assert again.rows == local_run.rows


def test_killed_run_loses_only_segments_in_flight(tmp_path, local_run, raw, monkeypatch):
    out = tmp_path / "out"
    shutil.copytree(local_run.out_dir, out)
    ident = local_run.rows[0]["input_id"]
    lost = [r["segment_id"] for r in local_run.rows[-3:]]
    for segment_id in lost:
        row_path(out, ident, segment_id).unlink()
    (state_dir(out, ident) / "done.json").unlink()
    for name in ("clips", "thumbs"):
        for path in (out / name).glob("*"):
            if any(path.name.startswith(s) for s in lost):
                path.unlink()
    real = work_module.export_segment
    calls = []

    def killed_on_the_second(row, seg, config, out_dir):
        calls.append(row["segment_id"])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(row, seg, config, out_dir)

    monkeypatch.setattr(work_module, "export_segment", killed_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        curate(str(raw[0]), out, small_config(), use_ray=False, progress=False, report=False)
    assert row_path(out, ident, lost[0]).is_file() and not row_path(out, ident, lost[1]).is_file()
    monkeypatch.setattr(work_module, "export_segment", real)
    resumed = curate(str(raw[0]), out, small_config(), use_ray=False, progress=False, report=False)
    assert resumed.processed == 2  # the one in flight and the one never started
    assert [r["segment_id"] for r in resumed.rows] == [r["segment_id"] for r in local_run.rows]
    drop = {"clip", "thumbnail"}
    assert [{k: v for k, v in r.items() if k not in drop} for r in resumed.rows] == [
        {k: v for k, v in r.items() if k not in drop} for r in local_run.rows]
    assert sorted(p.name for p in (out / "clips").iterdir()) == sorted(
        p.name for p in (local_run.out_dir / "clips").iterdir())


def test_bad_inputs_are_logged_per_input_and_do_not_stop_the_run(listing_local_run):
    result = listing_local_run
    status = {entry["input_uri"].split("/")[-1]: (entry["status"], entry["reason"]) for entry in result.inputs}
    assert status["good.mp4"] == ("done", "")
    assert status["corrupt.mp4"][0] == "error" and "not a readable video" in status["corrupt.mp4"][1]
    assert status["empty.mp4"][0] == "error" and "empty" in status["empty.mp4"][1]
    assert status["missing.mp4"][0] == "error" and "cannot open" in status["missing.mp4"][1]
    assert [r["kept"] for r in result.rows] == [True, False]
    assert [r["rejected_by"] for r in result.rows] == ["", "face"]
    table = pq.read_table(result.out_dir / "inputs.parquet").to_pylist()
    assert [row["status"] for row in table] == ["error", "error", "error", "done"]
    json.dumps(result.inputs)  # plain data


def test_bad_inputs_are_logged_as_warnings(tmp_path, caplog):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "inputs.txt").write_text("empty.mp4\nmemory://nowhere/clip.mp4\n")
    result = curate(str(tmp_path / "inputs.txt"), tmp_path / "out", small_config(), use_ray=False, progress=False)
    assert result.rows == [] and [i["status"] for i in result.inputs] == ["error", "error"]
    assert sum("skipped" in message for message in caplog.messages) == 2
    assert (tmp_path / "out" / "report" / "index.html").is_file()


def test_report_has_a_plot_per_score_and_thumbnails(local_run):
    folder = local_run.out_dir / "report"
    html = (folder / "index.html").read_text()
    assert (folder / "scores.png").stat().st_size > 10_000 and (folder / "stages.png").stat().st_size > 2000
    for column in ("luma_mean", "blur_frame_laplacian", "motion_mean_flow", "face_area_ratio", "speech_share",
                   "lipsync_best_correlation"):
        assert column in html
    assert "10 segments from 1 inputs: <b>2 kept</b>, 8 rejected" in html
    assert html.count("<figure>") == 2 + 4  # both kept, 4 of the rejected (thumbnails=4)
