"""Technical checks of a segment: resolution, fps, duration, bitrate, corrupt frames."""

from __future__ import annotations

from genhuman.curate.config import SegmentConfig, TechnicalConfig
from genhuman.curate.decode import SourceInfo
from genhuman.curate.verdict import Verdict


def check_technical(info: SourceInfo, frames: int, corrupt: int, config: TechnicalConfig,
                    segments: SegmentConfig) -> Verdict:
    duration = frames / info.fps
    scores = {"width": float(info.width), "height": float(info.height), "fps": info.fps, "duration_s": duration,
              "bitrate_kbps": info.bitrate_kbps, "corrupt_frames": float(corrupt)}
    failures = []
    if min(info.width, info.height) < config.min_short_side:
        failures.append(f"short side {min(info.width, info.height)} < {config.min_short_side} px")
    if not config.min_fps <= info.fps <= config.max_fps:
        failures.append(f"fps {info.fps:g} outside [{config.min_fps:g}, {config.max_fps:g}]")
    if duration + 1e-6 < segments.min_length_s:
        failures.append(f"duration {duration:.2f} s < {segments.min_length_s:g} s")
    if info.bitrate_kbps < config.min_bitrate_kbps:
        failures.append(f"bitrate {info.bitrate_kbps:.0f} kb/s < {config.min_bitrate_kbps:g}")
    if corrupt > config.max_corrupt_frames:
        failures.append(f"{corrupt} corrupt frames")
    return Verdict.check("technical", scores, failures)
