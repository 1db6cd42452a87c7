"""``genhuman convert echomimic|echomimic_v2|hallo|hallo2 SRC DST``: official .pth weights -> safetensors folders."""

from __future__ import annotations

import argparse
from pathlib import Path

from genhuman.paths import check_output
from genhuman.errors import InputError

FAMILY_VARIANTS = {"echomimic": ("audio", "acc", "pose", "pose_acc"), "echomimic_v2": ("v2", "v2_acc")}
HALLO_FAMILIES = ("hallo", "hallo2")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="convert official weights to safetensors folders",
                       description="Convert an official EchoMimic weights folder (the .pth files, "
                                   "sd-vae-ft-mse/, audio_processor/*.pt) into one safetensors folder "
                                   "per variant, or an official Hallo/Hallo2 pretrained_models/ folder "
                                   "(net.pth, sd-vae-ft-mse/, wav2vec/, face_analysis/) into one "
                                   "safetensors folder, which loads faster and safely.")
    p.add_argument("family", choices=[*FAMILY_VARIANTS, *HALLO_FAMILIES], help="model family")
    p.add_argument("source", type=Path, help="official weights folder (or a clone holding pretrained_weights/ "
                                             "or pretrained_models/)")
    p.add_argument("destination", type=Path, help="new folder to write")
    p.add_argument("--variant", help="echomimic: audio (default), acc, pose, pose_acc; echomimic_v2: v2 (default), "
                                     "v2_acc")
    p.add_argument("--fp16", action="store_true", help="store the UNets and condition encoder (Hallo: the net) "
                                                       "in float16")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.family in HALLO_FAMILIES:
        return _run_hallo(args)
    variants = FAMILY_VARIANTS[args.family]
    variant = args.variant or variants[0]
    if variant not in variants:
        raise InputError(f"variant {variant!r} is not one of {args.family}'s: {', '.join(variants)}")
    check_output(args.destination, {"source folder": args.source})

    import torch  # after the checks: it takes seconds to import

    from genhuman.checkpoints import convert_echomimic

    out = convert_echomimic(args.source, args.destination, variant, torch.float16 if args.fp16 else None)
    print(f"converted {args.family} ({variant}) to {out}")
    return 0


def _run_hallo(args: argparse.Namespace) -> int:
    if args.variant is not None:
        raise InputError(f"{args.family} has no variants (--variant {args.variant})")
    check_output(args.destination, {"source folder": args.source})

    import torch

    from genhuman.checkpoints.hallo_convert import convert_hallo

    out = convert_hallo(args.source, args.destination, args.family, torch.float16 if args.fp16 else None)
    print(f"converted {args.family} to {out}")
    return 0
