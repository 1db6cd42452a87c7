"""``genhuman data prepare VIDEOS_DIR OUT_DIR``: talking-head videos -> a family's training layout
(:mod:`genhuman.data.layout`).

Per video: the frames at 25 fps (the source frame nearest each 25 fps instant), cropped as the
family's inference crops its portrait (:func:`~genhuman.data.features.family_crop`, from the first
frame's face); the audio at 16 kHz mono; the face, lip and union masks of each frame's tracked
landmarks; the family's audio features; Hallo's face embedding. A video whose 25 fps frame count
and audio feature frame count differ by more than 3 is dropped (so is one that cannot be read, has
no audio or no face), with the reason in the manifest and the log. Kept clips are trimmed to the
shorter of the two counts, so video, masks and features have the same T.

Resumable: a clip folder whose meta.json names the same source (path, size, mtime), family and
size is reused; any other folder of that clip is redone. Dropped videos leave a folder with only
meta.json, so they are not retried either. ``workers`` > 1 runs clips in worker processes (each
loads the audio model once); only the parent writes the manifest.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from genhuman.data import layout
from genhuman.data.features import AudioModel, family_crop, frame_masks, load_audio_model
from genhuman.errors import InputError

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v"})
MIN_SIZE = 32
VIDEO_CRF = 15


@dataclass
class PrepareConfig:
    family: str = "echomimic"
    size: Optional[int] = None  # None: the family's training size
    audio_model: Optional[Path] = None  # the family's weights folder (its audio encoder; Hallo: + face analysis)
    workers: int = 1
    max_mismatch: int = layout.MAX_FRAME_MISMATCH

    def resolved(self) -> "PrepareConfig":
        """The config with the size filled in; InputError for an unknown family, a bad size or worker count."""
        if self.family not in layout.FAMILIES:
            raise InputError(f"unknown family {self.family!r}; choose one of: {', '.join(layout.FAMILIES)}")
        size = layout.TRAINING_SIZE[self.family] if self.size is None else int(self.size)
        multiple = 64 if self.family == "hallo" else 8  # Hallo's square token grids; the VAE's stride
        if size < MIN_SIZE or size % multiple:
            raise InputError(f"--size must be a multiple of {multiple} of at least {MIN_SIZE} for {self.family}, "
                             f"got {size}")
        if self.workers < 1:
            raise InputError(f"--workers must be at least 1, got {self.workers}")
        if self.max_mismatch < 0:
            raise InputError(f"the frame mismatch limit must be >= 0, got {self.max_mismatch}")
        return PrepareConfig(self.family, size, self.audio_model, self.workers, self.max_mismatch)


@dataclass
class Job:
    source: str
    clip_id: str
    folder: str
    family: str
    size: int
    max_mismatch: int
    signature: dict[str, Any]


@dataclass
class PrepareReport:
    rows: list[layout.ManifestRow]
    skipped: int = 0
    seconds: float = 0.0
    manifest: Optional[Path] = None

    @property
    def kept(self) -> int:
        return sum(row.kept for row in self.rows)

    @property
    def dropped(self) -> int:
        return len(self.rows) - self.kept


@dataclass
class _Outcome:
    row: layout.ManifestRow
    skipped: bool = False


class Dropped(InputError):
    """A video that is read but not kept; carries the figures for its manifest row."""

    def __init__(self, reason: str, **figures: Any):
        super().__init__(reason)
        self.figures = figures


# ---------------------------------------------------------------- inputs


def find_videos(videos_dir: Path) -> list[Path]:
    videos_dir = Path(videos_dir)
    if not videos_dir.is_dir():
        raise InputError(f"videos folder not found: {str(videos_dir)!r}")
    videos = sorted(p for p in videos_dir.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
    if not videos:
        raise InputError(f"no videos in {str(videos_dir)!r} (looked for {', '.join(sorted(VIDEO_EXTENSIONS))})")
    return videos


def clip_ids(videos: list[Path], root: Path) -> list[str]:
    """A stable, file-system-safe id per video: its path under ``root`` without the suffix."""
    ids: list[str] = []
    seen: set[str] = set()
    for video in videos:
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", "__".join(video.relative_to(root).with_suffix("").parts)) or "clip"
        name, n = base, 1
        while name in seen:
            n += 1
            name = f"{base}-{n}"
        seen.add(name)
        ids.append(name)
    return ids


def signature(path: Path) -> dict[str, Any]:
    stat = path.stat()
    return {"path": str(path.resolve()), "bytes": stat.st_size, "mtime": stat.st_mtime}


# ---------------------------------------------------------------- one clip


def prepare_clip(job: Job, model: AudioModel) -> _Outcome:
    """The clip's folder (or the reused one) and its manifest row."""
    folder = Path(job.folder)
    reused = _reusable(folder, job)
    if reused is not None:
        return _Outcome(reused, skipped=True)
    if folder.exists():
        shutil.rmtree(folder)  # half-written or made from another source/config: redo
    folder.mkdir(parents=True)
    base = dict(clip_id=job.clip_id, source=job.source, family=job.family, size=job.size, fps=layout.FPS)
    try:
        row, meta = _build(job, model, folder)
    except InputError as exc:
        figures = exc.figures if isinstance(exc, Dropped) else {}
        shutil.rmtree(folder)
        folder.mkdir(parents=True)
        row = layout.ManifestRow(status=layout.DROPPED, reason=str(exc), **base, **figures)  # type: ignore[arg-type]
        meta = {"family": job.family, "size": job.size, "fps": layout.FPS}
        log.warning("dropped %s: %s", job.source, exc)
    meta.update(source=job.signature, row=asdict(row))
    layout.write_atomic(folder / layout.META_FILE, json.dumps(meta, indent=1, sort_keys=True))
    return _Outcome(row)


def _reusable(folder: Path, job: Job) -> Optional[layout.ManifestRow]:
    if not layout.is_complete(folder):
        return None
    try:
        meta = json.loads((folder / layout.META_FILE).read_text())
        same = (meta.get("source") == job.signature and meta.get("family") == job.family
                and meta.get("size") == job.size and meta["row"].get("source") == job.source)
        return layout.ManifestRow.from_dict(meta["row"]) if same else None
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
        return None


def _frames_at_25(source: Path, crop_size: int, family: str):
    """(crops at 25 fps, crop box in the source, the first frame's square, source fps, source frames)."""
    from genhuman.media.video_reader import iter_video_frames, read_video_info

    info = read_video_info(source)
    if not info.fps or info.fps <= 0:
        raise InputError(f"{source.name}: the video has no frame rate")
    crops: list[np.ndarray] = []
    cut, box, square = None, [0, 0, 0, 0], np.zeros((1, 1, 3), np.uint8)
    read = 0
    for index, frame in enumerate(iter_video_frames(source)):
        read = index + 1
        if cut is None:
            cut, box, square = family_crop(family, frame, crop_size)
        # every 25 fps instant k/25 whose nearest source frame is this one
        while int(np.floor(len(crops) * info.fps / layout.FPS + 0.5)) == index:
            crops.append(cut(frame))
    if not crops:
        raise InputError(f"{source.name}: no frames could be decoded")
    return crops, box, square, info.fps, read


def _track(crops: list[np.ndarray], family: str, size: int) -> tuple[dict[str, np.ndarray], int]:
    """Per-frame masks from landmarks tracked in the crops; frames without a face take the nearest tracked one."""
    from genhuman.face.tracker import FaceTracker

    with FaceTracker() as tracker:
        found = [tracker.track(frame) for frame in crops]
    tracked = [i for i, face in enumerate(found) if face is not None]
    if not tracked:
        raise InputError("no face was found in the cropped frames")
    faces, lips, boxes = [], [], []
    for i in range(len(crops)):
        nearest = found[min(tracked, key=lambda j: abs(j - i))]
        assert nearest is not None
        face, lip, box = frame_masks(family, nearest.landmarks, size)
        faces.append(face)
        lips.append(lip)
        boxes.append(box)
    face_arr, lip_arr = np.stack(faces), np.stack(lips)
    return {"face": face_arr, "lip": lip_arr, "union": np.maximum(face_arr, lip_arr),
            layout.BOXES_KEY: np.asarray(boxes, np.int32)}, len(tracked)


def _build(job: Job, model: AudioModel, folder: Path) -> tuple[layout.ManifestRow, dict[str, Any]]:
    import torch
    from safetensors.torch import save_file

    from genhuman.media import load_audio, save_wav
    from genhuman.media.video_writer import VideoWriter

    source = Path(job.source)
    crops, crop_box, square, source_fps, source_frames = _frames_at_25(source, job.size, job.family)
    wave = load_audio(source)
    duration = len(wave) / layout.SAMPLE_RATE
    features_source, audio_frames = model.encode(wave)
    difference = len(crops) - audio_frames
    checks: dict[str, Any] = {"source_fps": round(float(source_fps), 3), "source_frames": source_frames,
                              "video_frames": len(crops), "audio_frames": audio_frames,
                              "frame_difference": difference, "frames_match": abs(difference) <= job.max_mismatch}
    if abs(difference) > job.max_mismatch:
        raise Dropped(f"{len(crops)} video frames at 25 fps but the audio covers {audio_frames} "
                      f"(difference {difference:+d}, more than {job.max_mismatch})", duration_s=duration,
                      num_frames=len(crops), num_feature_frames=audio_frames, checks=checks)
    frames = min(len(crops), audio_frames)
    crops = crops[:frames]
    masks, tracked = _track(crops, job.family, job.size)
    features = model.per_frame(features_source, frames)
    checks.update(faces_tracked=tracked, face_area=round(float(masks["face"].mean()), 4),
                  lip_area=round(float(masks["lip"].mean()), 4))

    with VideoWriter(folder / layout.VIDEO_FILE, layout.FPS, crf=VIDEO_CRF) as writer:
        for crop in crops:
            writer.write(crop)
    save_wav(folder / layout.AUDIO_FILE, wave)
    np.savez_compressed(folder / layout.MASKS_FILE, **masks)
    save_file({layout.FEATURES_KEY: features.float(), layout.FRAMES_KEY: torch.tensor(frames, dtype=torch.int64)},
              str(folder / layout.FEATURES_FILE))
    if model.face_embedder is not None:
        embedding, _ = model.face_embedder.embed(square)
        np.save(folder / layout.EMBEDDING_FILE, np.asarray(embedding, np.float32))
        checks["face_embedding"] = bool(np.any(embedding))
    row = layout.ManifestRow(clip_id=job.clip_id, source=job.source, family=job.family, status=layout.KEPT,
                             reason=None, duration_s=round(duration, 4), num_frames=frames,
                             num_feature_frames=int(features.shape[0]), size=job.size, fps=layout.FPS, checks=checks)
    meta = {"fps": layout.FPS, "size": job.size, "num_frames": frames, "num_audio_frames": audio_frames,
            "family": job.family, "crop_box": [int(v) for v in crop_box],
            "feature_shape": list(features.shape)}
    return row, meta


# ---------------------------------------------------------------- workers

_WORKER_MODEL: dict[str, AudioModel] = {}


def _init_worker(family: str, audio_model: Optional[str], log_level: int) -> None:
    import torch

    torch.set_num_threads(1)  # one core per worker process
    logging.basicConfig(level=log_level, format="%(levelname)s %(name)s: %(message)s")
    _WORKER_MODEL["model"] = load_audio_model(family, Path(audio_model) if audio_model else None)


def _run_in_worker(job: Job) -> _Outcome:
    return prepare_clip(job, _WORKER_MODEL["model"])


# ---------------------------------------------------------------- the whole folder


def prepare(videos_dir: Path, out_dir: Path, config: PrepareConfig, model: Optional[AudioModel] = None,
            progress: bool = True) -> PrepareReport:
    """Prepare every video under ``videos_dir`` into ``out_dir``; ``model`` overrides
    ``config.audio_model`` (in-process runs only: workers load their own from the folder)."""
    from tqdm import tqdm

    start = time.perf_counter()
    config = config.resolved()
    assert config.size is not None
    videos_dir, out_dir = Path(videos_dir), Path(out_dir)
    videos = find_videos(videos_dir)
    if config.workers > 1 and config.audio_model is None:
        raise InputError("--workers > 1 needs --audio-model (each worker loads it)")
    if model is not None and model.family != config.family:
        raise InputError(f"the audio model is for {model.family}, not {config.family}")
    jobs = [Job(str(video), clip_id, str(layout.clip_dir(out_dir, clip_id)), config.family, config.size,
                config.max_mismatch, signature(video))
            for video, clip_id in zip(videos, clip_ids(videos, videos_dir))]
    outcomes: dict[str, _Outcome] = {}
    for job in jobs:  # finished clips need no model: a run with nothing to do loads none
        reused = _reusable(Path(job.folder), job)
        if reused is not None:
            outcomes[job.clip_id] = _Outcome(reused, skipped=True)
    pending = [job for job in jobs if job.clip_id not in outcomes]
    if pending and model is None:  # bad weights fail here, in one line, before any output
        model = load_audio_model(config.family, config.audio_model)
    (out_dir / layout.CLIPS_DIR).mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=len(pending), desc=f"prepare ({config.family})", unit="video", disable=not progress or not pending)
    if config.workers == 1 or len(pending) <= 1:
        for job in pending:
            assert model is not None
            outcomes[job.clip_id] = prepare_clip(job, model)
            bar.update()
    else:
        import multiprocessing

        with ProcessPoolExecutor(min(config.workers, len(pending)), mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_init_worker,
                                 initargs=(config.family, str(config.audio_model),
                                           logging.getLogger().getEffectiveLevel())) as pool:
            futures = {pool.submit(_run_in_worker, job): job.clip_id for job in pending}
            for future in as_completed(futures):
                outcomes[futures[future]] = future.result()
                bar.update()
    bar.close()
    rows = [outcomes[job.clip_id].row for job in jobs]
    report = PrepareReport(rows, skipped=sum(o.skipped for o in outcomes.values()))
    report.manifest = layout.write_manifest(out_dir, rows)
    report.seconds = time.perf_counter() - start
    log.info("prepared %d videos in %.1f s: %d kept, %d dropped, %d reused", len(rows), report.seconds,
             report.kept, report.dropped, report.skipped)
    return report


__all__ = ["Dropped", "PrepareConfig", "PrepareReport", "find_videos", "prepare", "prepare_clip"]
