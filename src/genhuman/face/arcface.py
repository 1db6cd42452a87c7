"""Hallo's face embedding: insightface's antelopev2 pack run with onnxruntime (spec hallo.md §1.1).

Hallo calls ``FaceAnalysis(name="", root=face_analysis).prepare(det_size=(640, 640))`` and takes the
raw 512-d ``face["embedding"]`` of the largest face (no face: zeros and the whole image as the box).
This module reproduces insightface 0.7.3's behaviour for the two files that matter, with our own code:

Detection (SCRFD, ``scrfd_10g_bnkps.onnx``)
  1. Letterbox: the image is resized (``cv2.resize``, bilinear) keeping its aspect to fit det_size,
     with the width ``int(640 * h / w)`` or height rounding as insightface does, and pasted at the
     top-left of a black det_size canvas; ``scale = new_height / height``.
  2. Blob: RGB, ``(x - 127.5) / 128`` (insightface feeds BGR and swaps R and B in the blob).
  3. Per stride (8, 16, 32; two anchors per cell): anchor centres are the cells' top-left corners
     ``(x * stride, y * stride)``; box outputs are distances to the four sides and keypoint outputs
     offsets from the centre, both in stride units. Scores >= 0.5 are kept.
  4. All candidates sorted by score, greedy NMS at IoU 0.4 (areas with insightface's ``+1``), boxes
     and keypoints divided by ``scale``. ``max_num=0``: every face is kept.
Recognition (ArcFace, ``glintr100.onnx``)
  5. The largest box by area wins (ties: the higher score, as Python's stable sort keeps it).
  6. ``norm_crop``: the least-squares similarity (rotation, uniform scale, translation) taking the
     five keypoints onto the ArcFace template, then ``cv2.warpAffine`` (bilinear, black border) to
     112x112. We solve the similarity in closed form (the 2-D Umeyama solution) in float64;
     skimage's Umeyama computes in the keypoints' float32, so the matrices can differ in the 7th
     digit, which moves a few crop pixels across one of ``warpAffine``'s 1/32-pixel steps.
  7. Blob: RGB, ``(x - 127.5) / 127.5`` (glintr100's values in insightface); the output, flattened,
     not L2-normalised, is the embedding.

Both blobs go through ``cv2.dnn.blobFromImage`` as insightface's do, so the float32 rounding of
the normalisation is the same.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from genhuman.errors import InputError, MissingWeightsError

log = logging.getLogger(__name__)

DET_SIZE = (640, 640)  # (width, height), Hallo's det_size
DET_THRESHOLD = 0.5
NMS_THRESHOLD = 0.4
DET_MEAN, DET_STD = 127.5, 128.0
REC_MEAN, REC_STD = 127.5, 127.5
EMBEDDING_SIZE = 512
# SCRFD variants with keypoints, by output count: (strides, anchors per cell). Hallo's is the 9-output one.
SCRFD_LAYOUTS = {9: ((8, 16, 32), 2), 15: ((8, 16, 32, 64, 128), 1)}
# ArcFace's five-point template in a 112x112 crop: eye centres, nose tip, mouth corners (x, y).
ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]], np.float32)
DEFAULT_PROVIDERS = ("CPUExecutionProvider",)


@dataclass(frozen=True)
class Detections:
    """SCRFD's faces in image pixels, highest score first (after NMS)."""

    boxes: np.ndarray  # (N, 4) float32 x1, y1, x2, y2
    scores: np.ndarray  # (N,) float32
    keypoints: np.ndarray  # (N, 5, 2) float32 (x, y): eyes, nose, mouth corners

    def __len__(self) -> int:
        return len(self.scores)


@dataclass(frozen=True)
class FaceEmbedding:
    embedding: np.ndarray  # (512,) float32, raw (not normalised); zeros when no face was found
    box: np.ndarray  # (4,) float32 x1, y1, x2, y2; the whole image when no face was found
    found: bool
    score: float = 0.0
    keypoints: np.ndarray | None = None  # (5, 2) float32


# ---------------------------------------------------------------- SCRFD decoding (pure numpy)


def anchor_centers(height: int, width: int, stride: int, anchors: int) -> np.ndarray:
    """(height * width * anchors, 2) float32 (x, y): each cell's top-left corner, row by row,
    repeated ``anchors`` times in a row (the order of SCRFD's flattened outputs)."""
    ys, xs = np.mgrid[:height, :width]
    centers = np.stack([xs, ys], axis=-1).reshape(-1, 2).astype(np.float32) * stride
    return np.repeat(centers, anchors, axis=0)


def distance_to_box(points: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """Boxes (N, 4) x1, y1, x2, y2 from distances (left, top, right, bottom) to the points."""
    return np.concatenate([points - distances[:, :2], points + distances[:, 2:4]], axis=1)


def distance_to_keypoints(points: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Keypoints (N, K, 2) from (x, y) offsets (N, 2K) to the points."""
    return points[:, None, :] + offsets.reshape(len(offsets), -1, 2)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float = NMS_THRESHOLD) -> list[int]:
    """Greedy non-maximum suppression: indices kept, best first. A box is dropped when its
    overlap (IoU, with areas counted ``+1`` in pixels as insightface does) with a kept one
    exceeds ``threshold``."""
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(-scores, kind="stable")  # equal scores by index: the same on every CPU
    keep: list[int] = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        width = np.maximum(0.0, np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]) + 1)
        height = np.maximum(0.0, np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]) + 1)
        overlap = width * height
        iou = overlap / (areas[best] + areas[rest] - overlap)
        order = rest[iou <= threshold]
    return keep


def letterbox(image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float]:
    """The image resized to fit ``size`` (width, height) keeping its aspect, at the top-left of
    a black canvas of that size, and the scale from image to canvas pixels."""
    height, width = image.shape[:2]
    image_ratio, canvas_ratio = height / width, size[1] / size[0]
    if image_ratio > canvas_ratio:
        new_height = size[1]
        new_width = int(new_height / image_ratio)
    else:
        new_width = size[0]
        new_height = int(new_width * image_ratio)
    if new_width < 1 or new_height < 1:
        raise InputError(f"the image ({width}x{height}) is too narrow to look for a face in")
    canvas = np.zeros((size[1], size[0], 3), np.uint8)
    canvas[:new_height, :new_width] = cv2.resize(image, (new_width, new_height))
    return canvas, new_height / height


def largest_face(boxes: np.ndarray) -> int:
    """Index of the box with the largest area; the first of equals (Hallo's stable sort)."""
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return int(np.argmax(areas))


# ---------------------------------------------------------------- alignment


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(2, 3) float64: the rotation + uniform scale + translation taking ``source`` points onto
    ``target`` points with the least squared error. In complex numbers ``t ~ a * s + b``: with
    both sets centred, ``a = sum(conj(s) t) / sum(|s|^2)`` (the 2-D case of Umeyama's method)."""
    src = np.asarray(source, np.float64)
    dst = np.asarray(target, np.float64)
    src_c = (src[:, 0] - src[:, 0].mean()) + 1j * (src[:, 1] - src[:, 1].mean())
    dst_c = (dst[:, 0] - dst[:, 0].mean()) + 1j * (dst[:, 1] - dst[:, 1].mean())
    spread = float(np.sum(np.abs(src_c) ** 2))
    if spread == 0.0:
        raise InputError("the face's five keypoints coincide; cannot align it")
    a = np.sum(np.conj(src_c) * dst_c) / spread
    b = complex(*dst.mean(axis=0)) - a * complex(*src.mean(axis=0))
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]])


def arcface_template(size: int) -> np.ndarray:
    """The template for a ``size`` crop: scaled from 112, or from 128 with an 8-pixel x shift
    (insightface's two crop families)."""
    if size % 112 == 0:
        return ARCFACE_TEMPLATE * (size / 112)
    if size % 128 == 0:
        ratio = size / 128
        return ARCFACE_TEMPLATE * ratio + np.array([8.0 * ratio, 0.0], np.float32)
    raise InputError(f"ArcFace crops are 112 or 128 pixels (or multiples); this network wants {size}")


def align_face(image: np.ndarray, keypoints: np.ndarray, size: int = 112) -> np.ndarray:
    """insightface's ``norm_crop``: the face warped so its keypoints sit on the template."""
    matrix = similarity_transform(keypoints, arcface_template(size))
    return cv2.warpAffine(image, matrix, (size, size), borderValue=0.0)


# ---------------------------------------------------------------- onnxruntime sessions


def _session(path: Path, what: str, providers: Sequence[str]) -> Any:
    import onnxruntime

    if not path.is_file():
        raise MissingWeightsError(f"{what} not found: {str(path)!r}")
    available = set(onnxruntime.get_available_providers())
    chosen = [p for p in providers if p in available] or list(DEFAULT_PROVIDERS)
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # as insightface: no graph-optimisation chatter
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=chosen)
    except Exception as exc:  # onnxruntime raises its own exception types for a bad file
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{what} {str(path)!r} is not a readable ONNX model ({reason[:200]})") from None


def _static(dim: Any) -> int | None:
    return dim if isinstance(dim, int) else None


def _bad(what: str, path: Path, why: str) -> InputError:
    return InputError(f"{what} {str(path)!r} {why}")


class ScrfdDetector:
    """SCRFD face detector with five keypoints (insightface ``model_zoo.SCRFD``)."""

    what = "face detector (SCRFD)"

    def __init__(self, path: str | Path, providers: Sequence[str] = DEFAULT_PROVIDERS,
                 det_size: tuple[int, int] = DET_SIZE, threshold: float = DET_THRESHOLD,
                 nms_threshold: float = NMS_THRESHOLD):
        self.path = Path(path)
        self.session = _session(self.path, self.what, providers)
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4 or _static(inputs[0].shape[1]) not in (3, None):
            raise _bad(self.what, self.path, "does not take one (1, 3, H, W) image")
        if len(outputs) not in SCRFD_LAYOUTS:
            raise _bad(self.what, self.path, f"has {len(outputs)} outputs; SCRFD with keypoints has 9 "
                                             "(strides 8, 16, 32) or 15")
        self.strides, self.anchors = SCRFD_LAYOUTS[len(outputs)]
        levels = len(self.strides)
        for index, output in enumerate(outputs):
            width = (1, 4, 10)[index // levels]
            if _static(output.shape[-1]) not in (width, None) or len(output.shape) not in (2, 3):
                raise _bad(self.what, self.path, f"output {output.name!r} has shape {output.shape}; "
                                                 f"expected (anchors, {width})")
        self.batched = len(outputs[0].shape) == 3
        self.input_name = inputs[0].name
        self.output_names = [o.name for o in outputs]
        fixed_height, fixed_width = (_static(d) for d in inputs[0].shape[2:4])
        # A network exported at a fixed size ignores det_size, as in insightface.
        self.input_size: tuple[int, int] = ((fixed_width, fixed_height) if fixed_width and fixed_height
                                            else (int(det_size[0]), int(det_size[1])))
        self.threshold, self.nms_threshold = threshold, nms_threshold

    def detect(self, image: np.ndarray) -> Detections:
        canvas, scale = letterbox(image, self.input_size)
        blob = cv2.dnn.blobFromImage(canvas, 1.0 / DET_STD, canvas.shape[1::-1], (DET_MEAN,) * 3, swapRB=False)
        outputs = self.session.run(self.output_names, {self.input_name: blob})
        if self.batched:
            outputs = [o[0] for o in outputs]
        levels = len(self.strides)
        scores, boxes, keypoints = [], [], []
        for level, stride in enumerate(self.strides):
            score = outputs[level].reshape(-1)
            centers = anchor_centers(blob.shape[2] // stride, blob.shape[3] // stride, stride, self.anchors)
            if len(score) != len(centers):
                raise _bad(self.what, self.path, f"gives {len(score)} scores at stride {stride} for a "
                                                 f"{blob.shape[3]}x{blob.shape[2]} input; expected {len(centers)}")
            keep = np.flatnonzero(score >= self.threshold)
            scores.append(score[keep])
            boxes.append(distance_to_box(centers, outputs[level + levels] * stride)[keep])
            keypoints.append(distance_to_keypoints(centers, outputs[level + 2 * levels] * stride)[keep])
        score_all = np.concatenate(scores).astype(np.float32)
        order = np.argsort(-score_all, kind="stable")
        box_all = (np.concatenate(boxes) / scale).astype(np.float32)[order]
        keypoint_all = (np.concatenate(keypoints) / scale).astype(np.float32)[order]
        score_all = score_all[order]
        kept = nms(box_all, score_all, self.nms_threshold)
        return Detections(box_all[kept].reshape(-1, 4), score_all[kept], keypoint_all[kept].reshape(-1, 5, 2))


class ArcFaceRecognizer:
    """ArcFace embedding network (insightface ``model_zoo.ArcFaceONNX``) on aligned crops."""

    what = "face recognizer (ArcFace)"

    def __init__(self, path: str | Path, providers: Sequence[str] = DEFAULT_PROVIDERS):
        self.path = Path(path)
        self.session = _session(self.path, self.what, providers)
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        shape = inputs[0].shape if len(inputs) == 1 else []
        if len(shape) != 4 or _static(shape[2]) is None or shape[2] != shape[3]:
            raise _bad(self.what, self.path, f"takes {[i.shape for i in inputs]}; expected one (N, 3, S, S) image")
        if len(outputs) != 1 or _static(outputs[0].shape[-1]) not in (EMBEDDING_SIZE, None):
            raise _bad(self.what, self.path, f"gives {[o.shape for o in outputs]}; expected one "
                                             f"(N, {EMBEDDING_SIZE}) embedding")
        self.size = int(shape[2])
        arcface_template(self.size)  # refuses a crop size insightface has no template for
        self.input_name, self.output_name = inputs[0].name, outputs[0].name

    def embed(self, image: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
        crop = align_face(image, keypoints, self.size)
        blob = cv2.dnn.blobFromImage(crop, 1.0 / REC_STD, (self.size, self.size), (REC_MEAN,) * 3, swapRB=False)
        embedding = np.asarray(self.session.run([self.output_name], {self.input_name: blob})[0]).reshape(-1)
        if embedding.shape != (EMBEDDING_SIZE,):
            raise _bad(self.what, self.path, f"gave {embedding.size} values; Hallo needs {EMBEDDING_SIZE}")
        return embedding.astype(np.float32)


class FaceEmbedder:
    """Hallo's identity embedding of a portrait: SCRFD finds the faces, the largest one is aligned
    and glintr100's ArcFace gives its raw 512-d embedding (see the module docstring).

    ``detector_path`` / ``recognizer_path``: ``face_analysis/models/scrfd_10g_bnkps.onnx`` and
    ``glintr100.onnx`` (``HalloComponents.face_detector`` / ``.face_recognizer``). ``providers``:
    onnxruntime execution providers in order of preference; unavailable ones are skipped, and the
    CPU is used when none is left. A missing file raises MissingWeightsError, a corrupt one or one
    with another interface an InputError, each one line naming the file.

    ``embed(image)`` takes an (H, W, 3) uint8 RGB image at its own size (Hallo runs the detector
    on the source image before resizing it to 512) and returns ``(embedding, box)``: (512,) float32
    and (4,) float32 x1, y1, x2, y2 in image pixels. Without a face it returns zeros and the whole
    image as the box, as Hallo does, and logs a warning; :meth:`analyse` says so in ``found``.
    """

    def __init__(self, detector_path: str | Path, recognizer_path: str | Path,
                 providers: Sequence[str] = DEFAULT_PROVIDERS, det_size: tuple[int, int] = DET_SIZE):
        self.detector = ScrfdDetector(detector_path, providers, det_size)
        self.recognizer = ArcFaceRecognizer(recognizer_path, providers)

    def analyse(self, image: np.ndarray) -> FaceEmbedding:
        image = _check_image(image)
        faces = self.detector.detect(image)
        if not len(faces):
            height, width = image.shape[:2]
            log.warning("SCRFD found no face; Hallo's identity embedding is zeros and the face box the whole image")
            return FaceEmbedding(np.zeros(EMBEDDING_SIZE, np.float32), np.array([0, 0, width, height], np.float32),
                                 found=False)
        best = largest_face(faces.boxes)
        embedding = self.recognizer.embed(image, faces.keypoints[best])
        return FaceEmbedding(embedding, faces.boxes[best], True, float(faces.scores[best]), faces.keypoints[best])

    def embed(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        face = self.analyse(image)
        return face.embedding, face.box


def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        kind = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise InputError(f"the face embedding needs an (H, W, 3) uint8 RGB image, not {kind}")
    return np.ascontiguousarray(image)
