"""``genhuman upscale VIDEO OUT [-s 2|4|8] --weights DIR``: Hallo2's temporal face restoration.

Frames stream in and out: windows of 16 frames overlapping by 4 (as the official
``scripts/video_sr.py``; every frame is kept, the official drops the last one). Each frame's face
(MediaPipe landmarks, ``genhuman.face``) is cut as a square crop at the network's size (512),
restored by :class:`~genhuman.models.face_sr.TemporalFaceSR` a window at a time and pasted,
feathered, into the frame upscaled with OpenCV bicubic. The input's audio is copied.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

import numpy as np

from genhuman.paths import check_output

WINDOW, OVERLAP = 16, 4
FACE_SCALE = 1.6  # crop side / landmark box side: the forehead-to-chin mesh plus hair and chin margin

Box = tuple[int, int, int, int]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("upscale", help="restore and upscale the face in a video (Hallo2's temporal face SR)",
                       description="Upscale a talking-face video: the face is restored by Hallo2's temporal "
                                   "face network (hallo2/net_g.pth) in 16-frame windows, the rest of the "
                                   "frame is upscaled bicubic; the audio is copied.")
    p.add_argument("video", type=Path, help="input video (one face)")
    p.add_argument("output", type=Path, help="output .mp4")
    p.add_argument("-s", "--scale", type=int, choices=(2, 4, 8), default=2, help="upscale factor (default 2)")
    p.add_argument("--weights", type=Path, required=True, help="folder with hallo2/net_g.pth")
    p.add_argument("--background", choices=("auto", "bicubic", "realesrgan"), default="auto",
                   help="how the frame around the face is upscaled: Real-ESRGAN x2 (then bicubic to the scale) "
                        "when WEIGHTS/realesrgan/RealESRGAN_x2plus.pth exists (auto) or asked for, else bicubic")
    p.add_argument("-w", "--fidelity", type=float, default=0.5,
                   help="0: codebook faces (cleanest), 1: closest to the input (default 0.5, as the official)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.set_defaults(func=run)


def window_spans(frames: Iterable[object], window: int = WINDOW, overlap: int = OVERLAP) -> Iterator[tuple[list, int]]:
    """Yield ``(window_items, first_new)``: windows starting 0, 12, 24, ...; ``items[first_new:]``
    are the ones no earlier window emitted. The last window may be short; every item is emitted once."""
    buffer: list = []
    emitted = 0
    for item in frames:
        buffer.append(item)
        if len(buffer) == window:
            yield buffer, emitted
            buffer, emitted = buffer[-overlap:], overlap
    if len(buffer) > emitted:
        yield buffer, emitted


def fill_boxes(boxes: list[Optional[Box]]) -> list[Optional[Box]]:
    """Frames where the face was lost take the nearest frame's box in the window."""
    found = [i for i, box in enumerate(boxes) if box is not None]
    if not found:
        return boxes
    return [boxes[min(found, key=lambda j: abs(j - i))] for i in range(len(boxes))]


def upscale_video(video: Path, output: Path, model, scale: int, fidelity: float, device,
                  track: Callable[[np.ndarray], Optional[Box]],
                  background: Optional[Callable[[np.ndarray, int], np.ndarray]] = None) -> int:
    """Stream ``video`` through the restorer into ``output``; returns the number of frames written."""
    from genhuman.media import VideoWriter, iter_video_frames, open_audio, read_video_info

    info = read_video_info(video)
    audio = open_audio(video) if info.has_audio else None
    try:
        with VideoWriter(output, fps=info.fps, audio=audio) as writer:
            tracked = ((frame, track(frame)) for frame in iter_video_frames(video))
            for items, first_new in window_spans(tracked):
                frames = [frame for frame, _ in items]
                boxes = fill_boxes([box for _, box in items])
                restored = _restore_window(frames, boxes, model, fidelity, device) if boxes[0] else None
                for k in range(first_new, len(frames)):
                    face = None if restored is None else restored[k]
                    writer.write(_compose(frames[k], scale, boxes[k], face, background))
            return writer.frames
    finally:
        if audio is not None:
            audio.close()


def _restore_window(frames: list[np.ndarray], boxes: list, model, fidelity: float, device) -> np.ndarray:
    """The window's face crops (N, S, S, 3) uint8 through the network, as the official: [-1, 1] in, clamped out."""
    import torch

    from genhuman.face import crop_with_transform

    size = model.config.image_size
    crops = np.stack([crop_with_transform(frame, box, size)[0] for frame, box in zip(frames, boxes)])
    faces = torch.from_numpy(crops).to(device).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
    with torch.no_grad():
        out = model(faces[None], w=fidelity)[0]
    return out.clamp(-1, 1).add(1).mul(127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def bicubic(frame: np.ndarray, scale: int) -> np.ndarray:
    import cv2

    height, width = frame.shape[:2]
    return cv2.resize(frame, (width * scale, height * scale), interpolation=cv2.INTER_CUBIC)


def realesrgan_background(net, device) -> Callable[[np.ndarray, int], np.ndarray]:
    """Real-ESRGAN's own scale (x2) first, then bicubic up to ``scale`` (the official Hallo2 upsamples
    the background with RealESRGAN x2)."""
    import torch

    own = net.config.scale

    def upscale(frame: np.ndarray, scale: int) -> np.ndarray:
        pad = net.config.unshuffle  # the network needs sides divisible by its pixel-unshuffle
        height, width = frame.shape[:2]
        padded = np.pad(frame, ((0, -height % pad), (0, -width % pad), (0, 0)), mode="edge")
        x = torch.from_numpy(padded).to(device).permute(2, 0, 1)[None].float().div(255.0)
        with torch.no_grad():
            y = net(x)[0].clamp(0, 1).mul(255.0).round().byte().permute(1, 2, 0).cpu().numpy()
        y = np.ascontiguousarray(y[:height * own, :width * own])
        return y if scale == own else _resize_to(y, width * scale, height * scale)

    return upscale


def _resize_to(image: np.ndarray, width: int, height: int) -> np.ndarray:
    import cv2

    return cv2.resize(image, (width, height), interpolation=cv2.INTER_CUBIC)


def _compose(frame: np.ndarray, scale: int, box: Optional[Box], face: Optional[np.ndarray],
             upscale: Optional[Callable[[np.ndarray, int], np.ndarray]] = None) -> np.ndarray:
    """The frame upscaled (bicubic, or ``upscale``), with the restored face (a crop of ``box``) pasted back."""
    from genhuman.face import paste_back
    from genhuman.face.crop import CropTransform

    height, width = frame.shape[:2]
    background = (upscale or bicubic)(frame, scale)
    if face is None or box is None:
        return background
    # crop = M @ original = M @ (upscaled / scale): the linear part shrinks by the scale
    matrix = _crop_matrix(box, face.shape[0]) / np.array([[scale, scale, 1.0], [scale, scale, 1.0]])
    return paste_back(background, face, CropTransform(matrix, face.shape[0], (width * scale, height * scale)))


def _crop_matrix(box: Box, size: int) -> np.ndarray:
    """The image -> crop map of ``crop_with_transform(image, box, size)``."""
    s = size / (box[2] - box[0])
    return np.array([[s, 0.0, -box[0] * s], [0.0, s, -box[1] * s]], np.float64)


def landmark_tracker() -> tuple[Callable[[np.ndarray], Optional[Box]], Callable[[], None]]:
    """``track(frame) -> square face box`` from MediaPipe landmarks, and a close function."""
    from genhuman.face import FaceTracker, face_box_square

    tracker = FaceTracker()

    def track(frame: np.ndarray) -> Optional[Box]:
        face = tracker.track(frame)
        return None if face is None else face_box_square(face, FACE_SCALE)

    return track, tracker.close


def run(args: argparse.Namespace) -> int:
    from genhuman.checkpoints.face_sr import face_sr_file, load_face_sr
    from genhuman.engines.diffusion import resolve_device
    from genhuman.errors import InputError

    if args.output.suffix.lower() != ".mp4":
        raise InputError(f"output must be an .mp4 file, got {str(args.output)!r}")
    if not 0.0 <= args.fidelity <= 1.0:
        raise InputError(f"--fidelity must be between 0 and 1, got {args.fidelity}")
    check_output(args.output, {"input video": args.video})
    device = resolve_device(args.device)
    model = load_face_sr(face_sr_file(args.weights)).to(device)
    background = None
    if args.background != "bicubic":
        from genhuman.checkpoints.realesrgan import REALESRGAN_FILE, load_realesrgan, realesrgan_file

        found = realesrgan_file(args.weights)
        if found is None and args.background == "realesrgan":
            raise InputError(f"--background realesrgan needs {REALESRGAN_FILE} in {str(args.weights)!r}")
        if found is not None:
            background = realesrgan_background(load_realesrgan(found).to(device), device)
    track, close = landmark_tracker()
    try:
        frames = upscale_video(args.video, args.output, model, args.scale, args.fidelity, device, track, background)
    finally:
        close()
    print(f"wrote {frames} frames at x{args.scale} to {args.output}")
    return 0
