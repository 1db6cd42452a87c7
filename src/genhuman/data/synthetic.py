"""A small offline talking-head video set: the example portraits speaking varied Piper sentences,
rendered by the lite engine and written as MP4 (H.264 + AAC) at ``size`` x ``size``, 25 fps.

Each portrait is first cut to the EchoMimic face crop of its face (so the video is face-centred
and ``genhuman data prepare`` keeps nearly all of it), in a few variants (mirrored, zoomed) so
the clips do not all share one picture; the lite engine animates the cut (at most 128 px, with
the sentence as its transcript), and every frame is downscaled to ``size``. A dozen 2-4 s clips
take about half a minute of CPU.

    python -m genhuman.data.synthetic OUT_DIR --clips 12 --size 64
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from genhuman.errors import InputError

log = logging.getLogger(__name__)

SENTENCES = (
    "Hello there, it is a lovely day to learn something new.",
    "The quick brown fox jumps over the lazy dog.",
    "Please remember to bring your notes to the meeting.",
    "We measured every frame and every sample twice.",
    "Open the window, the room is getting warm.",
    "My favourite colour is a deep shade of blue.",
    "Numbers like seven, eight and nine are easy to say.",
    "She sells sea shells by the sea shore.",
    "Good morning, how did you sleep last night?",
    "The train leaves at half past four from platform two.",
    "Thank you for listening, see you again soon.",
    "A small model can still learn the shape of a smile.",
    "Maybe we should walk along the river after lunch.",
    "Bright orange kites were flying over the hill.",
    "Could you read that last line out loud once more?",
    "Every morning the baker opens his shop at six.",
)
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
PORTRAIT_SUFFIXES = (".png", ".jpg", ".jpeg")
FPS = 25
MIN_SIZE, MAX_SIZE = 64, 512
RENDER_SIZE = 128  # the lite engine renders the face square at most this big, then it is downscaled


def example_portraits(folder: Path = EXAMPLES) -> list[np.ndarray]:
    """The example portraits, each as itself, mirrored and zoomed in (three pictures per portrait)."""
    from genhuman.media import load_image

    images = [load_image(p) for p in sorted(folder.iterdir()) if p.suffix.lower() in PORTRAIT_SUFFIXES]
    if not images:
        raise InputError(f"no portraits in {str(folder)!r}")
    out = []
    for image in images:
        h, w = image.shape[:2]
        zoom = image[h // 16:h - h // 16, w // 16:w - w // 16]
        out += [image, np.ascontiguousarray(image[:, ::-1]), np.ascontiguousarray(zoom)]
    return out


def face_square(portrait: np.ndarray) -> np.ndarray:
    """The portrait cut to EchoMimic's face crop (the square its inference would take)."""
    from genhuman.engines.echomimic import CROP_DILATION, MASK_DILATION
    from genhuman.face import face_landmarks
    from genhuman.pipelines.face_crop import FaceCrop

    face = face_landmarks(portrait, 0, name="the portrait")
    crop = FaceCrop.official(face.box, portrait.shape[1], portrait.shape[0], CROP_DILATION, MASK_DILATION)
    return crop.crop(portrait, min(crop.side, RENDER_SIZE))


def make_synthetic_set(out_dir: Path, clips: int = 12, size: int = 64,
                       portraits: Optional[Sequence[np.ndarray]] = None,
                       sentences: Sequence[str] = SENTENCES, progress: bool = True) -> list[Path]:
    """Write ``clips`` talking-head MP4s into ``out_dir`` (clip000.mp4, ...); returns their paths."""
    import cv2
    from tqdm import tqdm

    from genhuman.engines import get_engine_class
    from genhuman.engines.base import EngineOptions
    from genhuman.media import load_audio
    from genhuman.media.video_reader import iter_video_frames
    from genhuman.media.video_writer import VideoWriter
    from genhuman.request import AnimateRequest
    from genhuman.speech.tts import synthesize_to_file

    if clips < 1:
        raise InputError(f"--clips must be at least 1, got {clips}")
    if not MIN_SIZE <= size <= MAX_SIZE:  # below 64 px the face detector finds no face to prepare
        raise InputError(f"--size must be between {MIN_SIZE} and {MAX_SIZE}, got {size}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    squares = [face_square(p) for p in (portraits if portraits is not None else example_portraits())]
    engine = get_engine_class("lite")(EngineOptions())
    avatars = [engine.prepare_avatar(square) for square in squares]
    paths = []
    with tempfile.TemporaryDirectory(prefix="genhuman-synthetic-") as tmp:
        for i in tqdm(range(clips), desc="synthetic clips", unit="clip", disable=not progress):
            sentence = sentences[i % len(sentences)]
            speech = synthesize_to_file(sentence, Path(tmp) / f"{i}.wav")
            rendered = Path(tmp) / f"{i}.mp4"
            engine.animate(avatars[i % len(avatars)], speech, rendered, AnimateRequest(fps=FPS, text=sentence))
            path = out_dir / f"clip{i:03d}.mp4"
            with VideoWriter(path, FPS, audio=load_audio(speech), crf=15) as writer:
                for frame in iter_video_frames(rendered):
                    writer.write(cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA))
            paths.append(path)
    return paths


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genhuman.data.synthetic", description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="folder for the MP4 files")
    parser.add_argument("--clips", type=int, default=12, help="number of clips (default 12)")
    parser.add_argument("--size", type=int, default=64, help="frame side in pixels (default 64)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    start = time.perf_counter()
    try:
        paths = make_synthetic_set(args.out_dir, args.clips, args.size)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{len(paths)} clips of {args.size}x{args.size} in {args.out_dir} ({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
