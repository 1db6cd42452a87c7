"""``genhuman train stage1|stage2 --config FILE --data DIR --out DIR [--resume latest]``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from genhuman.cli.common import int_range

STAGES = ("stage1", "stage2")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train EchoMimic V1 (stage 1: image, stage 2: video) on prepared data",
                       description="Train EchoMimic V1 on a folder made by `genhuman data prepare`, with Hugging "
                                   "Face accelerate (run it under `accelerate launch` for several GPUs). Stage 1 "
                                   "trains the reference net, the denoiser's spatial layers and the face locator "
                                   "on frame pairs; stage 2 trains the motion modules and the audio attention "
                                   "on clips. Every checkpoint holds the config, the accelerate state (for "
                                   "--resume), GenHuman's safetensors layout (genhuman/) and the official "
                                   "file layout (official/); both run in `genhuman animate --engine echomimic "
                                   "--weights DIR`. See docs/training.md.")
    p.add_argument("stage", choices=STAGES, help="stage1 (image) or stage2 (video)")
    p.add_argument("--config", type=Path, help="JSON or YAML config (keys of genhuman.training.config.TrainConfig)")
    p.add_argument("--data", type=Path, required=True, help="prepared data folder (genhuman data prepare)")
    p.add_argument("--out", type=Path, required=True, help="output folder (checkpoints/, logs/)")
    p.add_argument("--init", help="weights folder to start from (official EchoMimic layout or converted); "
                                  "overrides the config's init")
    p.add_argument("--resume", nargs="?", const="latest", default=None,
                   help="continue from the latest checkpoint in --out (or from the given checkpoint folder)")
    p.add_argument("--steps", type=int_range(1, 10**9), help="optimiser steps (overrides the config)")
    p.add_argument("--learning-rate", type=float, help="AdamW learning rate (default 1e-5)")
    p.add_argument("--lora-rank", type=int_range(0, 1024), help="train LoRA adapters of this rank (0: full)")
    p.add_argument("--mixed-precision", choices=("no", "fp16", "bf16"), help="accelerate mixed precision")
    p.add_argument("--gradient-checkpointing", action="store_true", default=None,
                   help="recompute activations in the backward pass (less memory)")
    p.add_argument("--seed", type=int, help="seed of batches, noise and dropouts")
    p.set_defaults(func=run)


def overrides(args: argparse.Namespace, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def run(args: argparse.Namespace) -> int:
    from genhuman.training.config import TrainConfig, read_config_file
    from genhuman.training.dataset import kept_clip_ids

    data = read_config_file(args.config)
    data.update(stage=args.stage, **overrides(args, ("init", "steps", "learning_rate", "lora_rank", "mixed_precision",
                                                      "gradient_checkpointing", "seed")))
    config = TrainConfig.from_dict(data, what=str(args.config or "the options"))
    kept_clip_ids(args.data)  # a missing or empty data folder is refused before anything loads
    from genhuman.training.runner import load_components, train

    load_components(config.init)  # and a missing weights folder
    result = train(config, args.data, args.out, resume=args.resume)
    loss = f", last loss {result.losses[-1]:.4g}" if result.losses else ""
    print(f"trained {config.stage} to step {result.steps} in {result.seconds:.1f} s{loss}; weights in "
          f"{result.checkpoint}/genhuman and {result.checkpoint}/official")
    return 0
