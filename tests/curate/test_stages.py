"""Each stage's decisions on the synthetic shots against the truth they were made with."""

import numpy as np
import pytest

from genhuman.curate import synthetic
from genhuman.curate.config import DedupConfig, SegmentConfig
from genhuman.curate.dedup import distance, find_duplicates, keyframe_hashes, phash
from genhuman.curate.resume import read_json, state_dir
from genhuman.curate.segments import split_shot
from genhuman.curate.shots import shots_from_cuts


def test_shot_cuts_within_one_frame(local_run, raw):
    plan = read_json(state_dir(local_run.out_dir, local_run.rows[0]["input_id"]) / "plan.json")
    truth = [shot.start for shot in raw[1]][1:]
    assert len(plan["cuts"]) == len(truth)
    assert max(abs(a - b) for a, b in zip(plan["cuts"], truth)) <= 1


def test_one_segment_per_shot_inside_its_shot(local_run, raw):
    assert len(local_run.rows) == len(raw[1])
    for row, shot in zip(local_run.rows, raw[1]):
        assert shot.start < row["start_frame"] < row["stop_frame"] < shot.stop
        assert row["stop_frame"] - row["start_frame"] == 50


@pytest.mark.parametrize("variant", synthetic.VARIANTS)
def test_stage_decisions_match_the_truth(local_run, raw, variant):
    k = [shot.variant for shot in raw[1]].index(variant)
    row = local_run.rows[k]
    expected = synthetic.TRUTH[variant]
    got = {stage: row[f"pass_{stage}"] for stage in expected}
    assert got == expected, row["reasons"]
    assert row["kept"] == (variant in ("clean", "shifted"))


def test_shifted_audio_is_measured_as_ten_frames(local_run, raw):
    k = [shot.variant for shot in raw[1]].index("shifted")
    row = local_run.rows[k]
    assert abs(row["lipsync_best_lag"] - synthetic.SHIFT_FRAMES) <= 1
    assert row["av_offset_frames"] == row["lipsync_best_lag"]
    clean = local_run.rows[[shot.variant for shot in raw[1]].index("clean")]
    assert abs(clean["lipsync_best_lag"]) <= 1 and clean["av_offset_frames"] == clean["lipsync_best_lag"]


def test_split_shot_margins_and_remainder():
    config = SegmentConfig(length_s=2.0, min_length_s=1.0, shot_margin_frames=2)
    assert split_shot(0, 129, 25.0, config) == [(2, 52), (52, 102), (102, 127)]
    assert split_shot(0, 40, 25.0, config) == [(2, 38)]
    assert split_shot(0, 20, 25.0, config) == []
    assert shots_from_cuts([30, 0, 200], 100) == [(0, 30), (30, 100)]


def test_phash_sees_a_copy_and_not_another_picture(base):
    frame = base.frames[0]
    brighter = np.clip(frame.astype(np.int16) + 20, 0, 255).astype(np.uint8)
    assert bin(phash(frame) ^ phash(brighter)).count("1") <= 2
    assert bin(phash(frame) ^ phash(frame[:, ::-1])).count("1") > 12
    config = DedupConfig()
    a = keyframe_hashes(list(base.frames[:50]), config)
    b = keyframe_hashes(list(base.frames[:50, :, ::-1]), config)
    assert distance(a, a) == 0 and distance(a, b) > config.max_hamming
    # the second copy of a goes; a row that failed another stage keeps nothing out
    assert find_duplicates([a, b, a, a], [True, True, False, True], config) == [-1, -1, -1, 0]
