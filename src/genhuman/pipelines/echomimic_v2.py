"""EchoMimic V2: a half-body photo + speech (+ optional hand pose) -> a talking MP4.

The network, sampler, windows and uncond semantics are V1's (spec echomimic.md §3.4-3.5):
for the unconditional half the audio tokens and the *encoded* pose are zero and the
reference tokens are dropped; windows shift by 3 frames per step. What V2 adds lives in
``genhuman.pose``; this file only wires it in:

- the reference is aligned automatically (the demo notebook's crop), not hand-made;
- the control is the exact hands-only ``draw_pose_select_v2`` rendering, drawn and
  encoded per window (cached while the cache is small), never for the whole video at once;
- the video lasts as long as the audio: a short pose track is extended (ping-pong),
  a missing one is generated from the speech rhythm, a driving pose is retargeted to
  the reference's body size and position;
- any ``width x height`` (multiples of 64 at full size); the official canvas is square-only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch

from genhuman.audio_features.whisper import SAMPLE_RATE, frame_count, frame_tokens, whisper_features
from genhuman.errors import InputError
from genhuman.media import VideoWriter
from genhuman.pipelines.echomimic import EchoMimicPipeline, PipelineResult
from genhuman.pipelines.vae_io import decode_frames, encode_image
from genhuman.pose.align import align_reference, retarget
from genhuman.pose.extend import extend_pose
from genhuman.pose.format import PoseSequence
from genhuman.pose.generate import generate_pose
from genhuman.pose.render import control_frames, scale_draw_params
from genhuman.progress import CancelFn, Laps, ProgressFn, Stage, check_cancel, report
from genhuman.sampling import WindowSchedule, denoise, echomimic_scheduler, initial_noise

log = logging.getLogger(__name__)


@dataclass
class EchoMimicV2Settings:
    """Per-video settings; defaults are the official infer.py ones (768x768, 30 steps, cfg 2.5)."""

    width: int = 768
    height: int = 768
    steps: int = 30
    guidance_scale: float = 2.5
    fps: float = 24.0
    seed: int = 3407
    context: WindowSchedule = field(default_factory=lambda: WindowSchedule(12, 3, 3))
    window_batch: int = 2
    decode_batch: int = 8
    max_frames: Optional[int] = None
    clamp_noise: Optional[float] = 1.5
    align: bool = True  # crop the photo like the training data (False: fit it whole)
    retarget: bool = True  # move/scale a given pose onto the reference's body
    pose_extension: str = "pingpong"  # or "loop" (cross-faded seams)
    cached_pose_frames: int = 256  # encoded pose frames kept in memory between steps


class EchoMimicV2Pipeline(EchoMimicPipeline):
    """V1's networks with a 3-channel PoseEncoder; ``__call__`` makes one video."""

    @torch.no_grad()
    def __call__(self, image: np.ndarray, wave_16k: np.ndarray, output: Union[str, Path],  # type: ignore[override]
                 settings: Optional[EchoMimicV2Settings] = None, pose: Optional[PoseSequence] = None,
                 progress: Optional[ProgressFn] = None, should_cancel: Optional[CancelFn] = None,
                 ) -> PipelineResult:
        """``image`` HxWx3 uint8 RGB half-body photo; ``wave_16k`` mono float32 speech at 16 kHz;
        ``pose`` a crop-normalised track (official folder or driving video), or None to generate one."""
        s = settings or EchoMimicV2Settings()
        for side in (s.width, s.height):
            if side % self.size_multiple:
                raise InputError(f"width and height must be multiples of {self.size_multiple}, got {s.width}x{s.height}")
        if self.condition_encoder.config.conditioning_channels != 3:
            raise InputError("these weights have no 3-channel pose encoder; they are not EchoMimic V2 weights")
        lap = Laps()

        reference = align_reference(image, s.height, s.width, align=s.align)
        lap("align")
        report(progress, 0.01, "reference aligned")

        features = whisper_features(self.audio_encoder, wave_16k)
        # official infer.py: L = min(L, int(audio duration x fps), ...), truncated
        num_frames = min(frame_count(features.shape[0], s.fps), max(1, int(len(wave_16k) / SAMPLE_RATE * s.fps)))
        if s.max_frames:
            num_frames = min(num_frames, s.max_frames)
        audio_tokens = frame_tokens(features, s.fps, num_frames).to(self.device, self.dtype)
        track = self._pose_track(pose, reference.pose, wave_16k, num_frames, s)
        lap("audio_and_pose")
        report(progress, 0.04, "audio encoded, pose ready")
        check_cancel(should_cancel)

        ref_latent = encode_image(self.vae, reference.image, self.device, self.dtype)
        bank = self.reference_unet(ref_latent.to(self.dtype), 0)
        reference_kv = self.denoising_unet.prepare_reference(bank)
        del bank
        control = _PoseControl(self.condition_encoder, track, s.height, s.width, self.device, self.dtype,
                               s.cached_pose_frames)
        lap("reference")
        report(progress, 0.06, "reference encoded")

        f = self.vae_factor
        latents = initial_noise((1, 4, num_frames, s.height // f, s.width // f), s.seed, s.clamp_noise, self.device)

        predict = self._predictor(audio_tokens, control, reference_kv)
        latents = denoise(latents, echomimic_scheduler(), predict, steps=s.steps, guidance_scale=s.guidance_scale,
                          schedule=s.context, window_batch=s.window_batch, progress=Stage(progress, 0.06, 0.92),
                          should_cancel=should_cancel)
        lap("denoise")

        decode_stage = Stage(progress, 0.92, 1.0)
        with VideoWriter(output, s.fps, s.width, s.height, audio=wave_16k, sample_rate=SAMPLE_RATE) as writer:
            for i, frame in enumerate(decode_frames(self.vae, latents, s.decode_batch, self.dtype)):
                writer.write(frame)
                if (i + 1) % s.decode_batch == 0:
                    check_cancel(should_cancel)
                    decode_stage((i + 1) / num_frames, "decoding")
        lap("decode")
        report(progress, 1.0, "done")
        return PipelineResult(num_frames, s.fps, s.width, s.height, lap.timings)

    @staticmethod
    def _pose_track(pose: Optional[PoseSequence], reference_pose: Optional[PoseSequence], wave_16k: np.ndarray,
                    num_frames: int, s: EchoMimicV2Settings) -> PoseSequence:
        """The hand track for every frame, drawn in the (height, width) canvas."""
        if pose is None:
            canvas = (s.height, s.width, 0, s.height, 0, s.width)
            track = generate_pose(num_frames, s.fps, wave_16k, seed=s.seed, rest=reference_pose, draw_params=canvas)
            log.info("no pose given: generated %d frames of hand motion", num_frames)
            return track
        on_canvas = False  # retargeting puts the pose in the reference's canvas already
        if s.retarget and reference_pose is not None:
            try:
                pose, on_canvas = retarget(pose, reference_pose), True
            except InputError as exc:
                log.warning("pose not retargeted (%s)", exc)
        if len(pose) < num_frames:
            log.info("pose track of %d frames extended to %d (%s)", len(pose), num_frames, s.pose_extension)
        track = extend_pose(pose, num_frames, mode=s.pose_extension)
        if not on_canvas:
            track.draw_params = scale_draw_params(track.draw_params, s.height, s.width)
        return track


class _PoseControl:
    """Hands-only renderings encoded by the PoseEncoder, per window; recent frames cached."""

    def __init__(self, encoder, pose: PoseSequence, height: int, width: int, device, dtype, cache_frames: int):
        self.encoder, self.pose, self.height, self.width = encoder, pose, height, width
        self.device, self.dtype, self.cache_frames = device, dtype, cache_frames
        self._cache: dict[int, torch.Tensor] = {}

    def _encode(self, indices: list[int]) -> torch.Tensor:
        images = control_frames(self.pose, indices, self.height, self.width, self.pose.draw_params)  # (3, F, H, W)
        x = torch.from_numpy(images)[None].to(self.device, self.dtype)
        return self.encoder(x)[0].transpose(0, 1)  # (F, C, h, w): the encoder works per frame

    def features(self, frames: torch.Tensor) -> torch.Tensor:
        """(windows, F) frame indices -> (windows, C, F, h, w) pose features."""
        wanted = sorted(set(frames.flatten().tolist()))
        missing = [i for i in wanted if i not in self._cache]
        fresh = dict(zip(missing, self._encode(missing))) if missing else {}
        if len(self._cache) + len(fresh) <= self.cache_frames:
            self._cache.update(fresh)
        table = {**self._cache, **fresh}
        rows = [torch.stack([table[i] for i in row], dim=1) for row in frames.tolist()]
        return torch.stack(rows)
