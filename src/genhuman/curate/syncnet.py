"""SyncNet (Chung & Zisserman 2016) as released in joonson/syncnet_python, to score the
user's ``syncnet_v2.model`` weights: a lip tower on 5 RGB face frames (224 px, values 0-255)
and an audio tower on 13 x 20 MFCCs (python_speech_features defaults, 100 per second), each
ending in a 1024-d embedding. Written from the published layout; module names match the
official state-dict keys (``netcnnaud.0.weight`` ...) so the file loads as is.

Confidence and offset follow the official evaluation: embedding distances at video shifts
-15..15, averaged over windows; offset = 15 - argmin, confidence = median - min.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from genhuman.errors import InputError

VSHIFT = 15
WINDOW = 5  # video frames per lip input
MFCC_PER_FRAME = 4  # 100 MFCC steps per second / 25 fps
MFCC_WINDOW = 20
FACE_SIZE = 224


def _conv2d(cin: int, cout: int, kernel, stride=(1, 1), padding=(1, 1)) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel, stride, padding), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def _conv3d(cin: int, cout: int, kernel, stride=(1, 1, 1), padding=(0, 0, 0)) -> list[nn.Module]:
    return [nn.Conv3d(cin, cout, kernel, stride, padding), nn.BatchNorm3d(cout), nn.ReLU(inplace=True)]


def _head(width: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, width))


class SyncNet(nn.Module):
    def __init__(self, embedding: int = 1024):
        super().__init__()
        self.netcnnaud = nn.Sequential(
            *_conv2d(1, 64, (3, 3)), nn.MaxPool2d((1, 1), (1, 1)),
            *_conv2d(64, 192, (3, 3)), nn.MaxPool2d((3, 3), (1, 2)),
            *_conv2d(192, 384, (3, 3)), *_conv2d(384, 256, (3, 3)), *_conv2d(256, 256, (3, 3)),
            nn.MaxPool2d((3, 3), (2, 2)),
            *_conv2d(256, 512, (5, 4), padding=(0, 0)),
        )
        self.netfcaud = _head(embedding)
        self.netfclip = _head(embedding)
        self.netcnnlip = nn.Sequential(
            *_conv3d(3, 96, (5, 7, 7), (1, 2, 2)), nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
            *_conv3d(96, 256, (1, 5, 5), (1, 2, 2), (0, 1, 1)), nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
            *_conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), *_conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)),
            *_conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), nn.MaxPool3d((1, 3, 3), (1, 2, 2)),
            *_conv3d(256, 512, (1, 6, 6)),
        )

    def forward_aud(self, mfcc: torch.Tensor) -> torch.Tensor:
        """(B, 1, 13, 20) -> (B, embedding)."""
        return self.netfcaud(self.netcnnaud(mfcc).flatten(1))

    def forward_lip(self, faces: torch.Tensor) -> torch.Tensor:
        """(B, 3, 5, 224, 224), 0-255 -> (B, embedding)."""
        return self.netfclip(self.netcnnlip(faces).flatten(1))


def load_syncnet(path: str | Path, device: str = "cpu") -> SyncNet:
    """The official weights (a state dict; files saved before PyTorch 0.4.1 lack
    ``num_batches_tracked``, which is then left at 0)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"SyncNet weights not found: {str(path)!r}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(f"{str(path)!r} is not a loadable SyncNet state dict ({type(exc).__name__})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    model = SyncNet()
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise InputError(f"{str(path)!r} does not have SyncNet's layout "
                         f"({len(missing)} missing keys, {len(unexpected)} unexpected, e.g. "
                         f"{(missing + list(unexpected))[0]})")
    return model.eval().to(device)


def mfcc(audio: np.ndarray, sample_rate: int = 16000) -> np.ndarray:
    """(13, steps): python_speech_features' defaults, as the official evaluation calls it."""
    import python_speech_features

    return np.asarray(python_speech_features.mfcc(audio, sample_rate), np.float32).T


@torch.no_grad()
def sync_confidence(model: SyncNet, faces: np.ndarray, audio: np.ndarray, batch: int = 20,
                    device: str = "cpu") -> tuple[float, int, float]:
    """(confidence, offset in frames, min distance) of (T, 224, 224, 3) uint8 faces and their audio."""
    cc = mfcc(audio)
    frames = min(len(faces), len(audio) // 640)  # official: whole 40 ms audio frames at 16 kHz
    last = min(frames - WINDOW, (cc.shape[1] - MFCC_WINDOW) // MFCC_PER_FRAME + 1)
    if last < 1:
        raise ValueError("too few frames for SyncNet")
    video = torch.from_numpy(np.ascontiguousarray(faces[:frames])).permute(3, 0, 1, 2).float()[None]  # 1,3,T,H,W
    audio_t = torch.from_numpy(cc)[None, None]
    lips, auds = [], []
    for first in range(0, last, batch):
        idx = range(first, min(last, first + batch))
        lips.append(model.forward_lip(torch.cat([video[:, :, i:i + WINDOW] for i in idx]).to(device)).cpu())
        auds.append(model.forward_aud(torch.cat([audio_t[:, :, :, MFCC_PER_FRAME * i:MFCC_PER_FRAME * i + MFCC_WINDOW]
                                                 for i in idx]).to(device)).cpu())
    lip, aud = torch.cat(lips), torch.cat(auds)
    padded = nn.functional.pad(aud, (0, 0, VSHIFT, VSHIFT))
    dists = torch.stack([nn.functional.pairwise_distance(lip[[i]].repeat(2 * VSHIFT + 1, 1),
                                                         padded[i:i + 2 * VSHIFT + 1]) for i in range(len(lip))])
    mean = dists.mean(0)
    minval, minidx = torch.min(mean, 0)
    return float(torch.median(mean) - minval), int(VSHIFT - minidx), float(minval)


def crop_faces(frames: list[np.ndarray], box: Optional[tuple[int, int, int, int]]) -> np.ndarray:
    """The fixed face square of each frame at 224 x 224 (edges repeated past the frame)."""
    from genhuman.face import crop_with_transform

    if box is None:
        raise ValueError("no face box")
    return np.stack([crop_with_transform(f, box, FACE_SIZE)[0] for f in frames])
