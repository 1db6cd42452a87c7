"""``genhuman download echomimic|echomimic_v2|hallo|hallo2 [--dir DIR]``: official weights from the Hugging Face hub."""

from __future__ import annotations

import argparse
from pathlib import Path

ECHOMIMIC_FAMILIES = ["echomimic", "echomimic_v2"]
HALLO_FAMILIES = ["hallo", "hallo2"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("download", help="download official model weights",
                       description="Download official weights from the Hugging Face hub (BadToBest/EchoMimic, "
                                   "BadToBest/EchoMimicV2, plus the VAE and whisper tiny where the repo lacks "
                                   "them; fudan-generative-ai/hallo, fudan-generative-ai/hallo2: the files "
                                   "GenHuman runs).")
    p.add_argument("family", choices=ECHOMIMIC_FAMILIES + HALLO_FAMILIES + ["echomimic_v3"], help="model family")
    p.add_argument("--dir", type=Path, default=None, help="target folder (default: ./weights/FAMILY)")
    p.add_argument("--variant", default=None,
                   help="only this variant's files (echomimic: audio, acc, pose, pose_acc; echomimic_v2: v2, v2_acc)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from genhuman.checkpoints.download import download_echomimic, download_hallo

    directory = args.dir or Path("weights") / args.family
    if args.family == "echomimic_v3":  # --variant preview (default) or flash
        from genhuman.checkpoints.download import download_echomimic_v3

        out = download_echomimic_v3(directory, args.variant)
        print(f"downloaded {args.family} to {out}; use it with --weights {out}")
        return 0
    fetch = download_hallo if args.family in HALLO_FAMILIES else download_echomimic
    out = fetch(args.family, directory, args.variant)
    print(f"downloaded {args.family} to {out}; use it with --weights {out}")
    return 0
