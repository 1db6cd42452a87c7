"""A tiny prepared folder in the data layout (manifest.jsonl + clips/<id>/...), made in-process."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from genhuman.media.video_writer import VideoWriter


def write_prepared(root: Path, clips: int = 2, frames: int = 10, size: int = 32, dim: int = 64,
                   seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(clips):
        clip_id = f"clip{i:03d}"
        d = root / "clips" / clip_id
        d.mkdir(parents=True)
        base = rng.integers(0, 255, (1, size, size, 3)).astype(np.float32)
        video = np.clip(base + rng.normal(0, 8, (frames, size, size, 3)), 0, 255).astype(np.uint8)
        with VideoWriter(d / "video.mp4", 25, crf=15) as w:
            for frame in video:
                w.write(frame)
        face = np.zeros((frames, size, size), np.uint8)
        face[:, size // 4: 3 * size // 4, size // 4: 3 * size // 4] = 1
        np.savez_compressed(d / "masks.npz", face=face, lip=face, union=face,
                            boxes=np.tile([size // 4, size // 4, 3 * size // 4, 3 * size // 4], (frames, 1)))
        save_file({"features": torch.randn(frames, 50, dim, generator=torch.Generator().manual_seed(i))},
                  str(d / "audio_features.safetensors"))
        (d / "meta.json").write_text(json.dumps({"fps": 25, "size": size, "num_frames": frames}))
        rows.append({"clip_id": clip_id, "source": f"{clip_id}.mp4", "family": "echomimic", "status": "kept",
                     "reason": None, "duration_s": frames / 25, "num_frames": frames,
                     "num_feature_frames": frames, "size": size, "fps": 25, "checks": {}})
    rows.append({"clip_id": "bad", "source": "bad.mp4", "family": "echomimic", "status": "dropped",
                 "reason": "frames and features differ by 9", "duration_s": 1.0, "num_frames": 25,
                 "num_feature_frames": 16, "size": size, "fps": 25, "checks": {}})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root
