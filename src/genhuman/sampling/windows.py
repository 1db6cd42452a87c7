"""Context windows over the frame axis and the blending of their predictions.

Official scheme (Moore-AnimateAnyone ``context.uniform`` at step 0, closed loop): windows
of ``size`` frames start every ``size - overlap`` frames, indices taken mod L, so the
last windows wrap round to the start; at denoising step i every index is shifted by
``i * shift`` (mod L). Unlike the official non-acc pipelines, predictions are always
averaged per frame by how many windows covered it, with and without guidance.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class WindowSchedule:
    size: int = 12
    overlap: int = 3
    shift: int = 2  # frames per step: 2 for V1 audio, 3 for V1 pose and V2
    circular: bool = True  # official; False keeps windows inside [0, L) and never shifts

    def __post_init__(self) -> None:
        if self.size < 1 or not 0 <= self.overlap < self.size:
            raise ValueError(f"bad window schedule: size {self.size}, overlap {self.overlap}")

    def windows(self, num_frames: int, step_index: int = 0) -> list[list[int]]:
        """Frame indices of every window at denoising step ``step_index``."""
        if num_frames < 1:
            raise ValueError("need at least one frame")
        stride = self.size - self.overlap
        if not self.circular:
            if num_frames <= self.size:
                return [list(range(num_frames))]
            starts = list(range(0, num_frames - self.size, stride)) + [num_frames - self.size]
            return [list(range(s, s + self.size)) for s in starts]
        offset = step_index * self.shift
        if num_frames <= self.size:
            return [[(e + offset) % num_frames for e in range(num_frames)]]
        return [[(e + offset) % num_frames for e in range(start, start + self.size)]
                for start in range(0, num_frames, stride)]


class WindowBlender:
    """Sums window predictions into per-frame totals and divides by the per-frame count."""

    def __init__(self, like: torch.Tensor, frame_dim: int = 2):
        self.frame_dim = frame_dim
        self.total = torch.zeros_like(like, dtype=torch.float32)
        self.count = torch.zeros(like.shape[frame_dim], dtype=torch.float32, device=like.device)

    def add(self, prediction: torch.Tensor, frames: torch.Tensor) -> None:
        """``prediction`` has the window's frames on ``frame_dim``; ``frames`` their indices."""
        self.total.index_add_(self.frame_dim, frames, prediction.float())
        self.count.index_add_(0, frames, torch.ones(len(frames), device=self.count.device))

    def result(self) -> torch.Tensor:
        if bool((self.count == 0).any()):
            missing = torch.nonzero(self.count == 0).flatten().tolist()
            raise RuntimeError(f"frames not covered by any window: {missing[:10]}")
        shape = [1] * self.total.dim()
        shape[self.frame_dim] = -1
        return self.total / self.count.view(shape)
