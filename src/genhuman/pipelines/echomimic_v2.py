"""EchoMimic V2: the shared core with a hands-only pose control (spec echomimic.md §3.4-3.5).

For the unconditional half the audio tokens and the *encoded* pose are zero and the
reference tokens are dropped, as in V1; windows shift by 3 frames per step. The control is
the exact ``draw_pose_select_v2`` rendering, drawn and encoded per window (recent frames
cached), never for the whole video at once. Pose preparation (alignment, retargeting,
extension, generation) is the engine's, in :mod:`genhuman.engines.echomimic_v2`.
"""

from __future__ import annotations

import torch

from genhuman.errors import InputError
from genhuman.pipelines.core import ReferenceVideoPipeline
from genhuman.pose.format import PoseSequence
from genhuman.pose.render import control_frames


class EchoMimicV2Pipeline(ReferenceVideoPipeline):
    """V1's networks with a 3-channel PoseEncoder, at any width x height (multiples of
    :attr:`size_multiple`); the official canvas is square-only."""

    def pose_control(self, pose: PoseSequence, height: int, width: int, cache_frames: int = 256) -> "PoseControl":
        """Frame i is drawn from ``pose[i]``, or its ping-pong extension past the end."""
        if self.condition_channels != 3:
            raise InputError("these weights have no 3-channel pose encoder; they are not EchoMimic V2 weights")
        return PoseControl(self.condition_encoder, pose, height, width, self.device, self.dtype, cache_frames)


class PoseControl:
    """Hands-only renderings encoded by the PoseEncoder, per window; recent frames cached."""

    def __init__(self, encoder, pose: PoseSequence, height: int, width: int, device, dtype, cache_frames: int):
        self.encoder, self.pose, self.height, self.width = encoder, pose, height, width
        self.device, self.dtype, self.cache_frames = device, dtype, cache_frames
        self._cache: dict[int, torch.Tensor] = {}

    def _source(self, index: int) -> int:
        from genhuman.pose.extend import pingpong_indices

        return int(pingpong_indices(len(self.pose), index + 1)[index])

    def _encode(self, indices: list[int]) -> torch.Tensor:
        images = control_frames(self.pose, [self._source(i) for i in indices], self.height, self.width,
                                self.pose.draw_params)  # (3, F, H, W)
        x = torch.from_numpy(images)[None].to(self.device, self.dtype)
        return self.encoder(x)[0].transpose(0, 1)  # (F, C, h, w): the encoder works per frame

    def features(self, frames: torch.Tensor) -> torch.Tensor:
        """(windows, F) frame indices -> (windows, C, F, h, w) pose features."""
        wanted = sorted(set(frames.flatten().tolist()))
        missing = [i for i in wanted if i not in self._cache]
        fresh = dict(zip(missing, self._encode(missing))) if missing else {}
        if len(self._cache) + len(fresh) <= self.cache_frames:
            self._cache.update(fresh)
        elif len(fresh) <= self.cache_frames:  # streaming: keep the newest frames
            self._cache = fresh
        table = {**self._cache, **fresh}
        rows = [torch.stack([table[i] for i in row], dim=1) for row in frames.tolist()]
        return torch.stack(rows)
