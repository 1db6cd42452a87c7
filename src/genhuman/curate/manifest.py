"""The Parquet manifest: one row per segment (kept or not) with every score, each stage's
decision, the rejection reason and, for kept segments, the clip; and the per-input table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from genhuman.curate.verdict import STAGE_ORDER

IDENTITY = [
    ("segment_id", pa.string()), ("input_uri", pa.string()), ("input_id", pa.string()),
    ("input_order", pa.int32()), ("shot_index", pa.int32()), ("segment_index", pa.int32()),
    ("start_frame", pa.int32()), ("stop_frame", pa.int32()), ("start_s", pa.float64()), ("duration_s", pa.float64()),
]
SCORES = [
    "width", "height", "fps", "bitrate_kbps", "corrupt_frames",
    "luma_mean", "luma_min", "luma_max", "blur_frame_laplacian", "blur_face_laplacian",
    "motion_mean_flow", "motion_p95_flow", "motion_frozen_share",
    "face_share", "face_area_ratio", "face_second_ratio", "face_max_count", "face_yaw_deg", "face_pitch_deg",
    "face_max_jump", "speech_share", "audio_rms_db",
    "lipsync_correlation", "lipsync_best_lag", "lipsync_best_correlation", "lipsync_closed_in_silence",
    "syncnet_confidence", "syncnet_offset", "syncnet_min_dist",
]
OUTCOME = [
    ("kept", pa.bool_()), ("rejected_by", pa.string()), ("reasons", pa.string()),
    ("av_offset_frames", pa.int32()), ("duplicate_of", pa.string()), ("phash", pa.string()),
    ("crop_x0", pa.int32()), ("crop_y0", pa.int32()), ("crop_x1", pa.int32()), ("crop_y1", pa.int32()),
    ("clip", pa.string()), ("thumbnail", pa.string()), ("pose", pa.string()), ("caption", pa.string()),
]
SCHEMA = pa.schema([*IDENTITY, *[(name, pa.float64()) for name in SCORES],
                    *[(f"pass_{stage}", pa.bool_()) for stage in STAGE_ORDER], *OUTCOME])

INPUT_SCHEMA = pa.schema([("input_uri", pa.string()), ("input_id", pa.string()), ("input_order", pa.int32()),
                          ("status", pa.string()), ("reason", pa.string()), ("segments", pa.int32()),
                          ("kept", pa.int32()), ("duration_s", pa.float64())])


def _column(rows: list[dict[str, Any]], name: str, kind: pa.DataType) -> list:
    values = [row.get(name) for row in rows]
    if kind == pa.float64():
        return [float("nan") if v is None else float(v) for v in values]
    if kind == pa.bool_():
        return [bool(v) for v in values]
    if kind == pa.int32():
        return [0 if v is None else int(v) for v in values]
    return ["" if v is None else str(v) for v in values]


def to_table(rows: list[dict[str, Any]], schema: pa.Schema = SCHEMA) -> pa.Table:
    return pa.table({f.name: pa.array(_column(rows, f.name, f.type), f.type) for f in schema}, schema=schema)


def write(rows: list[dict[str, Any]], path: Path, schema: pa.Schema = SCHEMA) -> pa.Table:
    table = to_table(rows, schema)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)
    return table


def read(path: Path) -> pa.Table:
    return pq.read_table(path)
