"""The units of work both runners (local and Ray Data) call: plan an input, analyze a
segment, score it with SyncNet, export it. Each takes and returns plain dicts (manifest
rows), so a Ray batch is just a list of them."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Optional

import cv2
import numpy as np

from genhuman.curate import resume
from genhuman.curate.blur import check_blur
from genhuman.curate.config import CurateConfig
from genhuman.curate.decode import (
    FrameReader, SourceInfo, audio_window, extract_audio, input_id, localize, probe,
)
from genhuman.curate.dedup import keyframe_hashes
from genhuman.curate.face import check_face, track_faces, union_box
from genhuman.curate.lipsync import check_lipsync
from genhuman.curate.luminance import check_luminance
from genhuman.curate.motion import check_motion
from genhuman.curate.segments import plan_segments
from genhuman.curate.shots import detect_cuts, shots_from_cuts
from genhuman.curate.speech import check_speech
from genhuman.curate.technical import check_technical
from genhuman.curate.verdict import STAGE_ORDER, Verdict
from genhuman.errors import InputError
from genhuman.face import Face, crop_with_transform, face_box_square

log = logging.getLogger(__name__)

THUMB_SIDE = 128
INFO_FIELDS = ("width", "height", "fps", "frames", "duration", "bitrate_kbps", "has_audio")


# -- plan -------------------------------------------------------------------------------
def plan_input(uri: str, order: int, out_dir: Path, config: CurateConfig) -> dict[str, Any]:
    """Probe, find the shots and cut them into segments; the plan is cached in the state dir.
    Returns {"input": ..., "segments": [...]} or, for a bad input, {"error": reason}."""
    ident = input_id(uri)
    folder = resume.state_dir(out_dir, ident)
    cached = resume.read_json(folder / "plan.json")
    if cached is not None:
        return cached
    base = {"input_uri": uri, "input_id": ident, "input_order": order}
    try:
        path = localize(uri, folder)
        info = probe(path)
        cuts = detect_cuts(iter(FrameReader(path, info.fps, max_side=config.shots.detect_max_side)), config.shots)
        audio_file = folder / "audio.f32"
        extract_audio(path, audio_file, info.has_audio)
    except InputError as exc:
        plan = {**base, "error": str(exc), "segments": []}
        resume.write_json(folder / "plan.json", plan)
        return plan
    shots = shots_from_cuts(cuts, info.frames)
    segments = []
    for k, (shot, start, stop) in enumerate(plan_segments(shots, info.fps, config.segments)):
        segments.append({**base, "segment_id": f"{ident}_{start:06d}_{stop:06d}", "shot_index": shot,
                         "segment_index": k, "start_frame": start, "stop_frame": stop,
                         "start_s": start / info.fps, "duration_s": (stop - start) / info.fps,
                         "source": str(path), "audio_file": str(audio_file),
                         **{f"src_{name}": getattr(info, name) for name in INFO_FIELDS}})
    plan = {**base, "error": "", "cuts": cuts, "source": str(path),
            **{f"src_{name}": getattr(info, name) for name in INFO_FIELDS}, "segments": segments}
    resume.write_json(folder / "plan.json", plan)
    return plan


def _info(seg: dict[str, Any]) -> SourceInfo:
    return SourceInfo(*(seg[f"src_{name}"] for name in INFO_FIELDS))


# -- analyze ----------------------------------------------------------------------------
def analyze_segment(seg: dict[str, Any], config: CurateConfig, out_dir: Path) -> dict[str, Any]:
    """Every score of one segment and every stage's decision (dedup and SyncNet come later)."""
    info = _info(seg)
    reader = FrameReader(Path(seg["source"]), info.fps, seg["start_frame"], seg["stop_frame"],
                         max_side=config.decode.analysis_max_side)
    frames = [frame for _, frame in reader]
    audio = audio_window(Path(seg["audio_file"]), seg["start_s"], seg["start_s"] + seg["duration_s"])
    verdicts = [check_technical(info, len(frames), reader.corrupt, config.technical, config.segments)]
    row: dict[str, Any] = {k: v for k, v in seg.items() if not k.startswith("src_") and k not in ("source",
                                                                                                  "audio_file")}
    row["phash"] = ""
    if len(frames) >= 2:
        track = track_faces(frames)
        verdicts += [check_luminance(frames, config.luminance), check_blur(frames, track.boxes, config.blur),
                     check_motion(frames, config.motion), check_face(track, frames[0].shape, config.face),
                     check_speech(audio, info.fps, len(frames), config.speech),
                     check_lipsync(track.faces, audio, info.fps, config.lipsync)]
        row["phash"] = keyframe_hashes(frames, config.dedup)
        _crop_box(row, union_box(track), frames[0].shape, info, config)
        row["thumbnail"] = _thumbnail(frames[len(frames) // 2], out_dir, seg["segment_id"])
    else:
        verdicts += [Verdict(stage, False, "no frames decoded") for stage in
                     ("luminance", "blur", "motion", "face", "speech", "lipsync")]
    for verdict in verdicts:
        row.update(verdict.scores)
        row[f"pass_{verdict.stage}"] = verdict.passed
        if not verdict.passed:
            row.setdefault("_reasons", []).append(f"{verdict.stage}: {verdict.reason}")
    row.update(pass_syncnet=True, pass_dedup=True, syncnet_confidence=math.nan, syncnet_offset=math.nan,
               syncnet_min_dist=math.nan, duplicate_of="", clip="", pose="", caption="")
    lag = int(row.get("lipsync_best_lag") or 0)
    row["av_offset_frames"] = lag if (config.lipsync.correct_offset and row.get("pass_lipsync")) else 0
    return _decide(row)


def _crop_box(row: dict, box, shape, info: SourceInfo, config: CurateConfig) -> None:
    """The face-centred square (genhuman.face.face_box_square) around the union of the
    segment's face boxes, in source pixels; side = box x (1 + 2 x crop_dilation), as
    EchoMimic's crop grows the box by half its size on each side. It may reach past the
    frame: the export pads by repeating the edge (genhuman.face.crop_with_transform)."""
    if box is None:
        return
    scale = info.width / shape[1]
    corners = np.array([[box[0], box[1]], [box[2], box[3]]], np.float32) * scale
    square = face_box_square(Face(corners, np.zeros(2, np.float32)), 1.0 + 2.0 * config.output.crop_dilation)
    row["crop_x0"], row["crop_y0"], row["crop_x1"], row["crop_y1"] = square


def _thumbnail(frame: np.ndarray, out_dir: Path, segment_id: str) -> str:
    target = out_dir / "thumbs" / f"{segment_id}.jpg"
    target.parent.mkdir(parents=True, exist_ok=True)
    height, width = frame.shape[:2]
    factor = THUMB_SIDE / max(height, width)
    small = cv2.resize(frame, (max(1, round(width * factor)), max(1, round(height * factor))),
                       interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(target), cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
    return str(target.relative_to(out_dir))


def _decide(row: dict[str, Any]) -> dict[str, Any]:
    reasons = row.pop("_reasons", None)
    if reasons is not None:
        row["reasons"] = " | ".join(reasons)
    row.setdefault("reasons", "")
    failed = [stage for stage in STAGE_ORDER if not row.get(f"pass_{stage}", True)]
    row["rejected_by"] = failed[0] if failed else ""
    row["kept"] = not failed
    return row


# -- SyncNet ----------------------------------------------------------------------------
_SYNCNET: dict[str, Any] = {}


def syncnet_segment(row: dict[str, Any], seg: dict[str, Any], config: CurateConfig, device: str = "cpu") -> dict:
    """SyncNet confidence and offset on the fixed face crop; judged only with weights."""
    from genhuman.curate.syncnet import crop_faces, load_syncnet, sync_confidence

    weights = config.lipsync.syncnet_weights
    if not weights or not row.get("pass_face") or row.get("crop_x1") is None:
        return row
    model = _SYNCNET.get(weights) or _SYNCNET.setdefault(weights, load_syncnet(weights, device))
    info = _info(seg)
    box = (row["crop_x0"], row["crop_y0"], row["crop_x1"], row["crop_y1"])
    frames = [f for _, f in FrameReader(Path(seg["source"]), info.fps, seg["start_frame"], seg["stop_frame"])]
    audio = audio_window(Path(seg["audio_file"]), seg["start_s"], seg["start_s"] + seg["duration_s"])
    try:
        confidence, offset, minimum = sync_confidence(model, crop_faces(frames, box), audio, device=device)
    except ValueError as exc:
        row["reasons"] = " | ".join(filter(None, [row["reasons"], f"syncnet: {exc}"]))
        row["pass_syncnet"] = False
        return _decide(row)
    row.update(syncnet_confidence=confidence, syncnet_offset=float(offset), syncnet_min_dist=minimum)
    if confidence < config.lipsync.min_syncnet_confidence:
        row["pass_syncnet"] = False
        row["reasons"] = " | ".join(filter(None, [row["reasons"], f"syncnet: confidence {confidence:.2f} < "
                                                  f"{config.lipsync.min_syncnet_confidence:g}"]))
    return _decide(row)


# -- export -----------------------------------------------------------------------------
def export_segment(row: dict[str, Any], seg: dict[str, Any], config: CurateConfig, out_dir: Path) -> dict:
    """Kept segments become clips: the face-centred crop at ``output.size``, ``output.fps``,
    the audio delayed by the measured lag; then the row is recorded (the segment is done)."""
    if row["kept"]:
        row["clip"] = write_clip(row, seg, config, out_dir)
    resume.write_json(resume.row_path(out_dir, row["input_id"], row["segment_id"]), row)
    return row


def write_clip(row: dict[str, Any], seg: dict[str, Any], config: CurateConfig, out_dir: Path) -> str:
    from genhuman.media import VideoWriter

    info = _info(seg)
    out = config.output
    start, stop = seg["start_frame"], seg["stop_frame"]
    count = max(1, int(round((stop - start) / info.fps * out.fps)))
    wanted = [min(stop - 1, start + int(k * info.fps / out.fps + 1e-9)) for k in range(count)]
    lag_s = row.get("av_offset_frames", 0) / info.fps
    begin = seg["start_s"] - lag_s  # the mouth lags the sound: frame t gets the sound of t - lag
    audio = audio_window(Path(seg["audio_file"]), begin, begin + count / out.fps)
    x0, y0, x1, y1 = row["crop_x0"], row["crop_y0"], row["crop_x1"], row["crop_y1"]
    target = out_dir / "clips" / f"{row['segment_id']}.mp4"
    crops = []
    cursor = 0
    with VideoWriter(target, out.fps, audio=audio, crf=out.crf) as writer:
        for index, frame in FrameReader(Path(seg["source"]), info.fps, start, stop):
            while cursor < count and wanted[cursor] == index:
                crop = crop_with_transform(frame, (x0, y0, x1, y1), out.size)[0]
                writer.write(crop)
                if config.pose.enabled or (config.captions.enabled and cursor == count // 2):
                    crops.append(crop)
                cursor += 1
        while cursor < count:  # the source ended early: hold the last frame
            writer.write(crop)
            cursor += 1
    if config.pose.enabled and crops:
        from genhuman.curate.pose import save_clip_pose

        row["pose"] = str(save_clip_pose(crops, out.fps, target.with_suffix(".pose.npz")).relative_to(out_dir))
    if config.captions.enabled and crops:
        from genhuman.curate.captions import caption_frame

        row["caption"] = caption_frame(crops[len(crops) // 2], config.captions)
    return str(target.relative_to(out_dir))


def analyze_and_export(seg: dict[str, Any], config: CurateConfig, out_dir: Path,
                       device: Optional[str] = None) -> dict[str, Any]:
    row = analyze_segment(seg, config, out_dir)
    row = syncnet_segment(row, seg, config, device or "cpu")
    return export_segment(row, seg, config, out_dir)
