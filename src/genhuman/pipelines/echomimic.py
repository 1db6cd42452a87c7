"""EchoMimic V1: the shared reference-net + 3D-UNet core with V1's controls.

V1 is driven by a face mask (the audio model: one feature map for every frame) or by face
landmarks (the pose model: renderings drawn and encoded per window, never for the whole
video). Everything else (reference, sampler, windows, uncond semantics, decoding) is the
core's; see :mod:`genhuman.pipelines.core` and spec echomimic.md §3.1-3.3.
"""

from __future__ import annotations

import numpy as np
import torch

from genhuman.errors import InputError
from genhuman.pipelines.core import ReferenceVideoPipeline
from genhuman.pipelines.landmarks import render_landmarks


class EchoMimicPipeline(ReferenceVideoPipeline):
    """EchoMimic V1 (audio, landmark-pose, accelerated: the weights differ, not the code)."""

    @property
    def uses_landmarks(self) -> bool:
        """3-channel condition encoder = the landmark-pose model; 1 channel = face mask."""
        return self.condition_channels == 3

    @torch.no_grad()
    def mask_control(self, mask: np.ndarray) -> "MaskControl":
        """(H, W) float face mask in [0, 1], what the official pipeline feeds the face locator."""
        if self.uses_landmarks:
            raise InputError("these weights are the landmark-pose model: give a pose folder or driving video")
        pixels = torch.as_tensor(np.asarray(mask, dtype=np.float32)).to(self.device, self.dtype)
        return MaskControl(self.condition_encoder(pixels[None, None, None]))

    def landmark_control(self, landmarks: np.ndarray, size: int) -> "LandmarkControl":
        """(n, 478, 2) landmarks in pixels of the ``size`` crop; frame i uses the ping-pong
        extension of the sequence (any frame index is answered)."""
        if not self.uses_landmarks:
            raise InputError("a pose input needs the landmark-pose weights")
        return LandmarkControl(self.condition_encoder, landmarks, size, self.device, self.dtype)


class MaskControl:
    """Audio-driven mode: one face-mask feature map broadcast over every frame."""

    def __init__(self, features: torch.Tensor):
        self._features = features  # (1, C0, 1, h, w)

    def features(self, frames: torch.Tensor) -> torch.Tensor:
        return self._features.expand(frames.shape[0], -1, -1, -1, -1)


class LandmarkControl:
    """Landmark-pose mode: renderings drawn and encoded per window."""

    def __init__(self, encoder, landmarks: np.ndarray, size: int, device, dtype):
        landmarks = np.asarray(landmarks)
        if landmarks.ndim != 3 or landmarks.shape[2] < 2 or len(landmarks) == 0:
            raise InputError("landmarks must be a non-empty (frames, 478, 2) array")
        self.encoder, self.size, self.device, self.dtype = encoder, size, device, dtype
        self.landmarks = landmarks[:, :, :2]

    def _frame(self, index: int) -> np.ndarray:
        from genhuman.pose.extend import pingpong_indices

        n = len(self.landmarks)
        return self.landmarks[int(pingpong_indices(n, index + 1)[index])]

    def features(self, frames: torch.Tensor) -> torch.Tensor:
        images = np.stack([[render_landmarks(self._frame(i), self.size) for i in row]
                           for row in frames.tolist()])  # (n, F, H, W, 3)
        x = torch.from_numpy(images).to(self.device, self.dtype).permute(0, 4, 1, 2, 3)
        return self.encoder(x)
