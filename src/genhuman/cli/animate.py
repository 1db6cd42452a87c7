"""``genhuman animate IMAGE AUDIO -o OUT.mp4``: the main job."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from genhuman.cli.common import float_range, int_range
from genhuman.errors import InputError

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    from genhuman.engines import engine_names

    p = sub.add_parser("animate", help="animate a portrait with speech into an MP4",
                       description="Animate a portrait (or half-body photo) with speech into a "
                                   "lip-synced MP4 (H.264 + AAC).")
    p.add_argument("image", type=Path, help="portrait image (JPEG/PNG/WebP/BMP)")
    p.add_argument("audio", type=Path, help="speech (wav/flac/mp3/m4a/ogg, or a video's audio track)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output .mp4 path")
    p.add_argument("--engine", default="lite", choices=engine_names(), help="engine (default: lite)")
    p.add_argument("--text", help="transcript of the speech (better lip sync with the lite engine)")
    p.add_argument("--text-file", type=Path, help="read the transcript from a file")
    p.add_argument("--fps", type=int_range(1, 120), default=25, help="frames per second (default 25)")
    p.add_argument("--seed", type=int_range(0, 2**31 - 1), default=None,
                   help="random seed (default: 0 for lite, the official seed for the diffusion engines)")
    p.add_argument("--max-size", type=int_range(16, 8192), default=None,
                   help="cap the longer side of the output, in pixels")
    p.add_argument("--face-index", type=int_range(0, 63), default=0,
                   help="which face to animate: 0 = largest (default), 1 = next largest, ...")
    g = p.add_argument_group("diffusion engines")
    g.add_argument("--weights", type=Path, help="weights folder (converted or official layout)")
    g.add_argument("--steps", type=int_range(1, 1000), default=None, help="denoising steps")
    g.add_argument("--cfg", type=float_range(0.0, 50.0), default=None, help="guidance scale")
    g.add_argument("--accelerated", action="store_true", help="accelerated weights: 6 steps, no CFG")
    g.add_argument("--pose", type=Path, help="pose folder ({i}.npy) or driving video")
    g.add_argument("--paste-back", action="store_true", help="paste the face crop back into the portrait")
    g.add_argument("--width", type=int_range(64, 4096), default=None, help="output width (V2)")
    g.add_argument("--height", type=int_range(64, 4096), default=None, help="output height (V2)")
    g.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: best available)")
    g.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], default=None)
    g.add_argument("--compile", action="store_true", help="torch.compile the denoiser")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from genhuman.engines import load_engine
    from genhuman.engines.base import AnimateRequest, EngineOptions

    if args.output.suffix.lower() != ".mp4":
        raise InputError(f"output must be an .mp4 file, got {str(args.output)!r}")
    text = args.text
    if args.text_file is not None:
        try:
            text = args.text_file.read_text(encoding="utf-8-sig").strip()
        except OSError as exc:
            raise InputError(f"cannot read transcript {str(args.text_file)!r}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise InputError(f"transcript {str(args.text_file)!r} is not UTF-8 text") from None
    options = EngineOptions(weights=args.weights, device=args.device, dtype=args.dtype,
                            accelerated=args.accelerated, compile=args.compile)
    request = AnimateRequest(text=text, fps=args.fps, seed=args.seed, max_size=args.max_size,
                             face_index=args.face_index, steps=args.steps, cfg=args.cfg,
                             pose=args.pose, paste_back=args.paste_back,
                             width=args.width, height=args.height)
    started = time.perf_counter()
    engine = load_engine(args.engine, options)
    # The bar is drawn on a terminal only, and erased if the job fails, so that a failure
    # leaves exactly one line on stderr (the error) and piped output stays clean.
    bar = None
    if not args.no_progress and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=1000, desc=f"animate ({args.engine})", leave=True,
                   bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining} {postfix}")

    def progress(fraction: float, message: str) -> None:
        if bar is not None:
            bar.n = int(fraction * 1000)
            bar.set_postfix_str(message, refresh=False)
            bar.refresh()

    try:
        result = engine.animate(args.image, args.audio, args.output, request, progress=progress)
    except BaseException:
        if bar is not None:
            bar.leave = False
            bar.close()
        raise
    if bar is not None:
        bar.close()
    elapsed = time.perf_counter() - started
    print(f"wrote {result.output} ({result.frames} frames, {result.width}x{result.height}, "
          f"{result.seconds:.2f} s at {result.fps:g} fps) in {elapsed:.1f} s")
    return 0
