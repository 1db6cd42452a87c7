"""Typed configuration of ``genhuman data curate``; one dataclass per stage.

Every threshold's default names its source. "OHV" = the OpenHumanVid pipeline figure
(``assets/pipeline.png`` of fudan-generative-vision/OpenHumanVid, read in
/work/shared/spec/champ_tora_mimicmotion_openhumanvid.md section 4.1); "LatentSync" = its data
processing README/scripts (bytedance/LatentSync); "SyncNet" = joonson/syncnet_python. Where
neither publishes a number (or uses another measure, e.g. CPBD or UniMatch instead of the
Laplacian or DIS flow), the default says "GenHuman" and how it was chosen.

YAML: top-level keys are the section names below, each a mapping of that section's fields.
An unknown section or field is an :class:`InputError` (one line, exit 2).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

from genhuman.errors import InputError


@dataclass
class DecodeConfig:
    analysis_max_side: int = 512  # GenHuman: frames are scored at this size (speed); clips export from the source
    min_fps: float = 15.0  # GenHuman: below this, lip motion is undersampled


@dataclass
class ShotConfig:
    adaptive_threshold: float = 2.0  # LatentSync: AdaptiveDetector(adaptive_threshold=2)
    min_scene_len: int = 8  # GenHuman: frames; PySceneDetect's default is 15, shorter shots are dropped anyway
    window_width: int = 2  # PySceneDetect's AdaptiveDetector default
    min_content_val: float = 15.0  # PySceneDetect's AdaptiveDetector default
    detect_max_side: int = 256  # GenHuman: shot detection on a small copy (HSV differences are size-robust)


@dataclass
class SegmentConfig:
    length_s: float = 5.0  # LatentSync: 5 s segments
    min_length_s: float = 2.0  # OHV: clip duration in [2, 20] s
    shot_margin_frames: int = 2  # GenHuman: frames dropped at each shot edge (cuts are found within +-1)


@dataclass
class TechnicalConfig:
    min_short_side: int = 256  # LatentSync: faces are aligned to 256; smaller footage upsamples
    min_fps: float = 23.0  # GenHuman: the training layout is 25 fps; 24 fps film is the lowest accepted
    max_fps: float = 61.0  # GenHuman
    min_bitrate_kbps: float = 100.0  # GenHuman: below this H.264 at 256 px is blocking artefacts
    max_corrupt_frames: int = 0  # GenHuman: any undecodable frame in the segment rejects it


@dataclass
class LuminanceConfig:
    min_mean: float = 10.0  # OHV: luminance in [10, 210]
    max_mean: float = 210.0  # OHV


@dataclass
class BlurConfig:
    # GenHuman: variance of the Laplacian (OHV uses CPBD in [0.05, 1.0), not comparable).
    # Scored on the analysis copy (<= 512 px); a gaussian blur of sigma 2 px drops a sharp
    # talking head from ~200-600 to below 40 on the synthetic set.
    min_frame_laplacian: float = 30.0
    min_face_laplacian: float = 40.0


@dataclass
class MotionConfig:
    # DIS optical flow (OpenCV, ultrafast preset) on a copy of width flow_width, in pixels of
    # that copy per frame. OHV: UniMatch flow in [0.5, 20] (unstated scale). GenHuman:
    # a still image has a mean flow ~0; a talking head ~0.05-1; a whip pan or shake > 3.
    flow_width: int = 160
    min_mean_flow: float = 0.02
    max_mean_flow: float = 3.0
    max_frozen_share: float = 0.5  # GenHuman: share of frames equal to the previous (frozen video)


@dataclass
class FaceConfig:
    sample_every: int = 1  # GenHuman: every frame (lip sync needs them all)
    min_face_share: float = 0.9  # GenHuman: frames with a face / frames (continuous track)
    min_area_ratio: float = 0.03  # GenHuman: face box / frame area (LatentSync needs a 256 px face on 1080p)
    max_second_face_ratio: float = 0.3  # GenHuman: 2nd face area / 1st below this = one dominant face
    max_abs_yaw_deg: float = 35.0  # GenHuman (LatentSync drops large poses through its affine, no number)
    max_abs_pitch_deg: float = 30.0  # GenHuman
    max_center_jump: float = 0.25  # GenHuman: centre move between frames / face width (a track, not a swap)


@dataclass
class SpeechConfig:
    min_voice_share: float = 0.3  # GenHuman: share of frames with voice (silero VAD) in a talking clip
    use_model: bool = True  # silero model; False = energy detector only


@dataclass
class LipSyncConfig:
    # GenHuman: lags searched. SyncNet searches +-15 (vshift), but on 2-5 s of rhythmic
    # speech (syllables every ~0.5 s) a lag near +-15 often ties lag 0 by chance: on the
    # benchmark set 2 of 6 clean segments peaked at -14/-15 with max_lag 15, none with 12.
    max_lag: int = 12
    min_correlation: float = 0.3  # GenHuman: r(opening, loudness) at the best lag; lite renders ~0.5-0.8
    max_abs_offset: int = 12  # GenHuman: larger offsets (with max_lag > 12) are rejected, not corrected
    correct_offset: bool = True
    syncnet_weights: Optional[str] = None  # path to syncnet_v2.model (joonson/syncnet_python)
    min_syncnet_confidence: float = 3.0  # LatentSync: SyncNet confidence >= 3


@dataclass
class DedupConfig:
    keyframes: int = 3  # GenHuman: first, middle, last frame hashed
    max_hamming: int = 6  # GenHuman: of 64 bits per keyframe (mean over keyframes); pHash's usual 5-10


@dataclass
class PoseConfig:
    enabled: bool = False  # optional: MediaPipe -> OpenPose-18 + hands, saved per kept clip


@dataclass
class CaptionConfig:
    enabled: bool = False
    endpoint: str = ""  # an OpenAI-compatible base URL, e.g. http://localhost:8000/v1
    model: str = ""
    api_key_env: str = "OPENAI_API_KEY"  # name of the variable holding the key, never the key
    prompt: str = "Describe the person, their appearance, expression and motion in one sentence."
    timeout_s: float = 60.0


@dataclass
class OutputConfig:
    fps: int = 25  # the training layout (genhuman data prepare)
    size: int = 512  # side of the square face-centred crop
    crop_dilation: float = 0.5  # EchoMimic's official crop: box grown by half its size per side
    crf: int = 15  # the training layout's H.264 quality
    thumbnails: int = 12  # kept and rejected thumbnails each in the report


@dataclass
class RayConfig:
    object_store_mb: int = 256  # GenHuman: a small store; segments stream through it
    analyze_cpus: float = 1.0
    export_cpus: float = 1.0
    syncnet_gpus: float = 0.0  # >0 puts the SyncNet stage on GPU workers
    batch_size: int = 1  # segments per map_batches call
    concurrency: Optional[int] = None  # workers per stage; None = as many as the CPUs allow


@dataclass
class CurateConfig:
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    shots: ShotConfig = field(default_factory=ShotConfig)
    segments: SegmentConfig = field(default_factory=SegmentConfig)
    technical: TechnicalConfig = field(default_factory=TechnicalConfig)
    luminance: LuminanceConfig = field(default_factory=LuminanceConfig)
    blur: BlurConfig = field(default_factory=BlurConfig)
    motion: MotionConfig = field(default_factory=MotionConfig)
    face: FaceConfig = field(default_factory=FaceConfig)
    speech: SpeechConfig = field(default_factory=SpeechConfig)
    lipsync: LipSyncConfig = field(default_factory=LipSyncConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    pose: PoseConfig = field(default_factory=PoseConfig)
    captions: CaptionConfig = field(default_factory=CaptionConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    ray: RayConfig = field(default_factory=RayConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> "CurateConfig":
        if not isinstance(data, dict):
            raise InputError(f"{source}: expected a mapping of sections, got {type(data).__name__}")
        config = cls()
        sections = {f.name for f in fields(cls)}
        for name, values in data.items():
            if name not in sections:
                raise InputError(f"{source}: unknown section {name!r} (known: {', '.join(sorted(sections))})")
            if values is None:
                continue
            section = getattr(config, name)
            if not isinstance(values, dict):
                raise InputError(f"{source}: section {name!r} must be a mapping")
            known = {f.name: f for f in fields(section)}
            for key, value in values.items():
                if key not in known:
                    raise InputError(f"{source}: unknown key {name}.{key} (known: {', '.join(sorted(known))})")
                setattr(section, key, _coerce(getattr(section, key), value, f"{source}: {name}.{key}"))
        return config

    @classmethod
    def from_yaml(cls, path: str | Path) -> "CurateConfig":
        import yaml

        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise InputError(f"cannot read the config {str(path)!r}: {exc.strerror or exc}") from None
        except yaml.YAMLError as exc:
            raise InputError(f"{str(path)!r} is not valid YAML: {str(exc).splitlines()[0]}") from None
        return cls.from_dict(data, repr(str(path)))


def _coerce(default: Any, value: Any, name: str) -> Any:
    """The YAML value checked against the default's type (ints may stand for floats)."""
    if value is None or default is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise InputError(f"{name} must be true or false, got {value!r}")
        return value
    if isinstance(default, (int, float)) and not isinstance(value, bool) and isinstance(value, (int, float)):
        if isinstance(default, int) and not isinstance(value, int):
            raise InputError(f"{name} must be an integer, got {value!r}")
        return type(default)(value)
    if isinstance(default, str) and isinstance(value, str):
        return value
    raise InputError(f"{name} must be {type(default).__name__}, got {value!r}")
