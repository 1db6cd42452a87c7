"""The prepared layout (``genhuman data prepare``, see :mod:`genhuman.data.layout`) as training batches.

Every kept clip is read once: its frames go through the frozen VAE (posterior mean times the
scaling factor, as the pipeline encodes the reference) and stay in memory as latents, with
its per-frame whisper tokens and one control mask per clip. The control is what inference
feeds the face locator: one rectangle around the face over the whole clip (the union of the
clip's face masks, dilated as the engine dilates its mask box).

Batches are drawn from a generator seeded with ``(seed, step, process)``: the batch of step
``s`` is the same whether or not the run was interrupted before it (bit-for-bit resume).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from genhuman.data.layout import (CLIPS_DIR, FEATURES_FILE, MASKS_FILE, VIDEO_FILE, PreparedClip,
                                   read_manifest)
from genhuman.errors import InputError
from genhuman.training.model import Batch

log = logging.getLogger(__name__)

MASK_DILATION = 0.1  # the engine's mask-box dilation (engines/echomimic.py)


@dataclass
class Clip:
    clip_id: str
    latents: torch.Tensor  # (T, 4, h, w)
    tokens: torch.Tensor  # (T, tokens, dim)
    mask: torch.Tensor  # (1, H, W) float 0/1

    @property
    def frames(self) -> int:
        return min(self.latents.shape[0], self.tokens.shape[0])


def kept_clip_ids(data_dir: Path) -> list[str]:
    """The manifest's kept clips, in manifest order."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise InputError(f"data folder not found: {str(data_dir)!r}")
    ids = [row.clip_id for row in read_manifest(data_dir) if row.kept]
    if not ids:
        raise InputError(f"{str(data_dir)!r} holds no kept clips")
    return ids


def face_box_mask(face: np.ndarray) -> np.ndarray:
    """One rectangle around every frame's face mask ``(T, H, W)``, dilated by MASK_DILATION: the
    kind of mask inference gives the face locator."""
    h, w = face.shape[-2:]
    any_face = np.asarray(face).reshape(-1, h, w).max(axis=0) > 0
    out = np.zeros((h, w), np.float32)
    ys, xs = np.nonzero(any_face)
    if len(xs) == 0:
        return out + 1.0  # no face found: the whole frame
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    dx, dy = int((x1 - x0) * MASK_DILATION), int((y1 - y0) * MASK_DILATION)
    out[max(0, y0 - dy):min(h, y1 + dy), max(0, x0 - dx):min(w, x1 + dx)] = 1.0
    return out


def read_clip_arrays(folder: Path) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    """(frames uint8 (T,H,W,3), control mask (H,W) float32, tokens (T,N,D) float32) of one clip."""
    clip = PreparedClip(folder)
    for name in (VIDEO_FILE, MASKS_FILE, FEATURES_FILE):
        if not (clip.folder / name).is_file():
            raise InputError(f"prepared clip {clip.clip_id!r} lacks {name}; run `genhuman data prepare` again")
    frames = clip.frames
    if "face" not in clip.masks:
        raise InputError(f"{clip.clip_id}/{MASKS_FILE} has no face mask (keys: {', '.join(clip.masks)})")
    tokens = clip.features.float()
    if tokens.ndim != 3:
        raise InputError(f"{clip.clip_id}/{FEATURES_FILE}: features must be (frames, tokens, dim), "
                         f"got {tuple(tokens.shape)}")
    return frames, face_box_mask(clip.masks["face"]), tokens


@torch.no_grad()
def encode_frames(vae, frames: np.ndarray, batch: int = 16) -> torch.Tensor:
    """uint8 (T,H,W,3) -> (T,4,h,w) latents: the posterior mean times the scaling factor,
    exactly as :meth:`ReferenceVideoPipeline.encode_reference` encodes the portrait."""
    param = next(vae.parameters())
    out = []
    for first in range(0, len(frames), batch):
        chunk = torch.from_numpy(np.ascontiguousarray(frames[first:first + batch])).permute(0, 3, 1, 2)
        pixels = chunk.float().div(255.0).mul(2.0).sub(1.0).to(param.device, param.dtype)
        out.append(vae.encode(pixels).latent_dist.mean.float().cpu() * float(vae.config.scaling_factor))
    return torch.cat(out)


class PreparedDataset:
    """Kept clips of a prepared folder, their latents cached; draws seeded batches."""

    def __init__(self, data_dir: Path, vae, clip_ids: Optional[list[str]] = None, progress: bool = False):
        from tqdm import tqdm

        self.data_dir = Path(data_dir)
        ids = clip_ids if clip_ids is not None else kept_clip_ids(self.data_dir)
        self.clips: list[Clip] = []
        for clip_id in tqdm(ids, desc="encoding clips", disable=not progress, leave=False):
            frames, mask, tokens = read_clip_arrays(self.data_dir / CLIPS_DIR / clip_id)
            self.clips.append(Clip(clip_id, encode_frames(vae, frames), tokens, torch.from_numpy(mask)[None]))
        log.info("data: %d clips, %d frames", len(self.clips), sum(c.frames for c in self.clips))

    @property
    def token_shape(self) -> tuple[int, int]:
        n, d = self.clips[0].tokens.shape[1:]
        return int(n), int(d)

    def batch(self, step: int, size: int, frames: int, audio: bool, *, seed: int, process: int = 0,
              sample_margin: int = 30) -> Batch:
        """The batch of global step ``step``: ``size`` random windows of ``frames`` frames, each with
        a random reference frame of the same clip (stage 1: at most ``sample_margin`` frames away)."""
        rng = np.random.default_rng([seed, step, process])
        refs, targets, masks, tokens = [], [], [], []
        for _ in range(size):
            clip = self.clips[int(rng.integers(len(self.clips)))]
            n = clip.frames
            f = min(frames, n)
            start = int(rng.integers(0, n - f + 1))
            if frames == 1 and sample_margin:
                ref = int(np.clip(start + rng.integers(-sample_margin, sample_margin + 1), 0, n - 1))
            else:
                ref = int(rng.integers(n))
            window = torch.arange(start, start + frames).clamp(max=start + f - 1)  # short clips repeat their end
            refs.append(clip.latents[ref])
            targets.append(clip.latents[window].transpose(0, 1))
            masks.append(clip.mask)
            tokens.append(clip.tokens[window])
        return Batch(reference=torch.stack(refs), latents=torch.stack(targets),
                     mask=torch.stack(masks)[:, :, None], audio=torch.stack(tokens) if audio else None)
