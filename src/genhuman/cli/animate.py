"""``genhuman animate IMAGE AUDIO -o OUT.mp4``: the main job.

Its options come from the one request model (:mod:`genhuman.request`): names, types,
ranges, defaults and help are declared there once, for the CLI, the server and the engines.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from genhuman.paths import check_output
from genhuman.errors import InputError
from genhuman.request import AnimateRequest, EngineOptions, Option, option_default, request_options



def _argument_type(name: str, spec: Option):
    def parse(text: str) -> Any:
        try:
            return spec.parse(name, text)
        except InputError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def add_options(parser: argparse.ArgumentParser, cls: type, group=None) -> None:
    """One argument per option of ``cls`` offered on the command line."""
    target = group or parser
    for name, spec in request_options(cls):
        if not spec.cli:
            continue
        flag = "--" + name.replace("_", "-")
        help_text = spec.help + (f" ({spec.describe_range()})" if spec.describe_range() and not spec.choices else "")
        if spec.kind is bool:
            target.add_argument(flag, action="store_true", help=help_text)
        elif spec.choices:
            target.add_argument(flag, choices=spec.choices, default=option_default(cls, name), help=help_text)
        else:
            target.add_argument(flag, type=_argument_type(name, spec), default=None, help=help_text,
                                metavar=spec.metavar or name.upper())


def register(sub: argparse._SubParsersAction) -> None:
    from genhuman.engines import engine_names

    p = sub.add_parser("animate", help="animate a portrait with speech into an MP4",
                       description="Animate a portrait (or half-body photo) with speech into a "
                                   "lip-synced MP4 (H.264 + AAC).")
    p.add_argument("image", type=Path, help="portrait image (JPEG/PNG/WebP/BMP)")
    p.add_argument("audio", type=Path, help="speech (wav/flac/mp3/m4a/ogg, or a video's audio track)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output .mp4 path")
    p.add_argument("--engine", default="lite", choices=engine_names(), help="engine (default: lite)")
    p.add_argument("--text-file", type=Path, help="read the transcript from a file")
    add_options(p, AnimateRequest)
    add_options(p, EngineOptions, p.add_argument_group("diffusion engines (load time)"))
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def request_from_args(args: argparse.Namespace) -> tuple[AnimateRequest, EngineOptions]:
    values = {name: getattr(args, name) for name, spec in request_options(AnimateRequest) if spec.cli}
    # an option left off the command line keeps the model's default (None only where that is the default)
    values = {name: value for name, value in values.items()
              if value is not None or option_default(AnimateRequest, name) is None}
    if args.text_file is not None:
        try:
            values["text"] = args.text_file.read_text(encoding="utf-8-sig").strip()
        except OSError as exc:
            raise InputError(f"cannot read transcript {str(args.text_file)!r}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise InputError(f"transcript {str(args.text_file)!r} is not UTF-8 text") from None
    if values.get("face_index") is None:
        values["face_index"] = 0
    if values.get("paste_back") is None:
        values["paste_back"] = False
    options = {name: getattr(args, name) for name, spec in request_options(EngineOptions) if spec.cli}
    return AnimateRequest(**values), EngineOptions(**options)


def run(args: argparse.Namespace) -> int:
    from genhuman.engines import load_engine

    if args.output.suffix.lower() != ".mp4":
        raise InputError(f"output must be an .mp4 file, got {str(args.output)!r}")
    check_output(args.output, {"input image": args.image, "input audio": args.audio,
                               "transcript": args.text_file, "pose input": getattr(args, "pose", None)})
    request, options = request_from_args(args)
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
