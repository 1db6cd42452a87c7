"""``genhuman distill --teacher DIR --data DIR --out DIR --phases 4 --teacher-steps 40 --guidance 2.5``."""

from __future__ import annotations

import argparse
from pathlib import Path

from genhuman.cli.common import int_range
from genhuman.cli.train import overrides


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("distill", help="distil a many-step EchoMimic V1 teacher into a few-step student",
                       description="Phased step distillation (multistep-consistency form): the teacher's "
                                   "DDIM trajectory of --teacher-steps steps is cut into --phases segments; "
                                   "the student (started from the teacher) learns to land, in one step without "
                                   "CFG, where the teacher lands at each segment's end with CFG. The student is "
                                   "saved like the official 'acc' weights (denoising_unet_acc.pth, "
                                   "motion_module_acc.pth) and as a converted 'acc' folder; run it with "
                                   "`genhuman animate --engine echomimic --weights DIR --accelerated --steps "
                                   "PHASES`. See docs/training.md.")
    p.add_argument("--teacher", required=True, help="teacher weights folder (official EchoMimic layout or converted)")
    p.add_argument("--data", type=Path, required=True, help="prepared data folder (genhuman data prepare)")
    p.add_argument("--out", type=Path, required=True, help="output folder (checkpoints/, logs/)")
    p.add_argument("--config", type=Path, help="JSON or YAML config (keys of genhuman.training.config.DistillConfig)")
    p.add_argument("--phases", type=int_range(1, 1000), help="student steps = segments of the trajectory "
                                                              "(default 4; 6 as the released acc weights)")
    p.add_argument("--teacher-steps", type=int_range(1, 1000), help="teacher DDIM steps (default 40)")
    p.add_argument("--guidance", type=float, help="teacher CFG scale distilled into the student (default 2.5)")
    p.add_argument("--loss", choices=("l2", "pseudo_huber"), help="distance on the clean estimates (default l2)")
    p.add_argument("--target", choices=("teacher", "consistency"),
                   help="teacher: the teacher's remaining sub-steps (default); consistency: one teacher "
                        "sub-step, then the EMA target network")
    p.add_argument("--sample-at", choices=("segment", "start", "trajectory"),
                   help="segment: x_t at any sub-step of a segment (default, the MSC form); start: only at "
                        "segment starts, the student's own timesteps (small budgets); trajectory: the "
                        "segment starts on the teacher's own CFG trajectory from noise, all segments per step")
    p.add_argument("--steps", type=int_range(1, 10**9), help="optimiser steps")
    p.add_argument("--learning-rate", type=float, help="AdamW learning rate (default 1e-5)")
    p.add_argument("--lora-rank", type=int_range(0, 1024), help="distil into LoRA adapters of this rank")
    p.add_argument("--mixed-precision", choices=("no", "fp16", "bf16"), help="accelerate mixed precision")
    p.add_argument("--gradient-checkpointing", action="store_true", default=None, help="less memory, more compute")
    p.add_argument("--resume", nargs="?", const="latest", default=None,
                   help="continue from the latest checkpoint in --out (or the given checkpoint folder)")
    p.add_argument("--seed", type=int, help="seed of batches, noise and timesteps")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from genhuman.training.config import DistillConfig, read_config_file
    from genhuman.training.dataset import kept_clip_ids

    data = read_config_file(args.config)
    data.update(overrides(args, ("phases", "teacher_steps", "guidance", "loss", "target", "sample_at", "steps",
                                 "learning_rate", "lora_rank", "mixed_precision", "gradient_checkpointing",
                                 "seed")))
    config = DistillConfig.from_dict(data, what=str(args.config or "the options"))
    kept_clip_ids(args.data)
    from genhuman.training.distill import distill
    from genhuman.training.runner import load_components

    load_components(args.teacher, "--teacher")
    result = distill(config, args.teacher, args.data, args.out, resume=args.resume)
    print(f"distilled {config.teacher_steps} teacher steps into {config.phases} phases: step {result.steps} in "
          f"{result.seconds:.1f} s, last loss {result.losses[-1]:.4g}; student in {result.checkpoint}/genhuman "
          f"and {result.checkpoint}/official" if result.losses else f"nothing to do: already at step {result.steps}")
    return 0
