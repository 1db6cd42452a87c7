"""Face detection with MediaPipe's 478-point face mesh.

Strategy: the face mesh on the whole (downscaled) image finds normal portraits; MediaPipe's
face detectors then find faces the mesh's own detector misses (small faces, group photos)
and the mesh runs again on a square crop around each. The detectors see a square input, so
a wide (or tall) image is also scanned in overlapping squares along its long side, else
a row of faces is squeezed to specks. When that finds nothing, the detector scans
overlapping tiles of a larger copy (faces down to ~1/20 of the image side, as in half-body
or full-body photos).

Faces are returned largest first; ``face_index`` counts in that order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from genhuman.errors import InputError
from genhuman.face import _mediapipe
from genhuman.face.landmark_indices import NUM_LANDMARKS
from genhuman.media import load_image, resize_max
from genhuman.media.images import ImageInput

DETECT_MAX_SIZE = 1024  # the mesh runs on a copy this size at most; coordinates are scaled back
CROP_SIZE = 384  # side of the square crop a missed face is re-meshed in
CROP_CONTEXT = 2.0  # crop side / detector box side
MAX_FACES = 8
TILE_SIZE = 384  # the full-range detector sees faces down to ~1/10 of its input, so tiles
TILE_STRIDE = 256  # of 384 px find faces of ~40 px
TILE_SEARCH_MAX_SIZE = 2048
SAME_FACE_IOU = 0.3
WIDE_ASPECT = 1.5  # long side / short side above which the long side is scanned in squares


@dataclass
class Face:
    landmarks: np.ndarray  # (478, 2) float32 pixel coordinates (x, y)
    z: np.ndarray  # (478,) float32 depth, same pixel scale as x (smaller = nearer the camera)

    @property
    def box(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) bounding the landmarks."""
        x0, y0 = self.landmarks.min(axis=0)
        x1, y1 = self.landmarks.max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return (x1 - x0) * (y1 - y0)

    def scaled(self, factor: float, offset: tuple[float, float] = (0.0, 0.0)) -> "Face":
        points = self.landmarks * factor + np.asarray(offset, np.float32)
        return Face(points.astype(np.float32), (self.z * factor).astype(np.float32))


def faces_from_result(result, width: int, height: int) -> list[Face]:
    """MediaPipe's normalised face mesh output -> Faces in pixel coordinates."""
    faces = []
    for face in result.multi_face_landmarks or []:
        xyz = np.array([(p.x, p.y, p.z) for p in face.landmark], np.float32)
        if len(xyz) != NUM_LANDMARKS:
            continue
        points = xyz[:, :2] * np.array([width, height], np.float32)
        faces.append(Face(points, xyz[:, 2] * width))  # MediaPipe scales z like x
    return faces


def _iou(a: tuple, b: tuple) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _detect(image: np.ndarray, full_range: bool, offset: tuple[int, int] = (0, 0),
            scored: bool = False) -> list:
    """Detector boxes (x0, y0, x1, y1) in the coordinates of the image ``image`` was cut
    from at ``offset``; with ``scored``, (score, box) pairs."""
    height, width = image.shape[:2]
    with _mediapipe.borrow(f"detect-{full_range}", lambda: _mediapipe.face_detection(full_range)) as graph:
        detections = graph.process(np.ascontiguousarray(image)).detections or []
    boxes = []
    for det in detections:
        rel = det.location_data.relative_bounding_box
        x0, y0 = rel.xmin * width + offset[0], rel.ymin * height + offset[1]
        box = (x0, y0, x0 + rel.width * width, y0 + rel.height * height)
        boxes.append((float(det.score[0]) if det.score else 0.0, box) if scored else box)
    return boxes


def _merge(boxes: list[tuple]) -> list[tuple]:
    merged: list[tuple] = []
    for box in boxes:
        if all(_iou(box, other) < SAME_FACE_IOU for other in merged):
            merged.append(box)
    return merged


def _square_starts(length: int, side: int) -> list[int]:
    """Starts of squares of ``side`` covering ``length`` with half a square's overlap."""
    stride = max(1, side // 2)
    starts = list(range(0, max(1, length - side + 1), stride))
    if starts[-1] + side < length:
        starts.append(length - side)  # the last square ends at the edge
    return starts


def _strip_boxes(image: np.ndarray) -> list[tuple]:
    """Both detectors on overlapping squares along a wide (or tall) image's long side, best
    score first, so a face cut at a square's edge yields to the square that holds it whole."""
    height, width = image.shape[:2]
    side = min(height, width)
    scored = []
    for start in _square_starts(max(height, width), side):
        x, y = (start, 0) if width > height else (0, start)
        square = image[y:y + side, x:x + side]
        scored += _detect(square, True, (x, y), scored=True) + _detect(square, False, (x, y), scored=True)
    return [box for _, box in sorted(scored, key=lambda pair: -pair[0])]


def _tiled_boxes(image: np.ndarray) -> list[tuple]:
    height, width = image.shape[:2]
    starts_y = range(0, max(1, height - TILE_SIZE + TILE_STRIDE), TILE_STRIDE)
    starts_x = range(0, max(1, width - TILE_SIZE + TILE_STRIDE), TILE_STRIDE)
    boxes = []
    for y in starts_y:
        for x in starts_x:
            boxes += _detect(image[y:y + TILE_SIZE, x:x + TILE_SIZE], True, (x, y))
    return _merge(boxes)


def _faces_in_boxes(image: np.ndarray, boxes: list[tuple], faces: list[Face]) -> list[Face]:
    """Mesh each detector box that no face in ``faces`` covers yet; returns the new faces."""
    found: list[Face] = []
    for box in boxes:
        if len(faces) + len(found) >= MAX_FACES:
            break
        known = faces + found
        if all(_iou(box, face.box) < SAME_FACE_IOU for face in known):
            face = _mesh_in_crop(image, box)
            if face is not None and all(_iou(face.box, other.box) < SAME_FACE_IOU for other in known):
                found.append(face)
    return found


def _mesh_in_crop(image: np.ndarray, box: tuple) -> Optional[Face]:
    side = max(box[2] - box[0], box[3] - box[1]) * CROP_CONTEXT
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    x0, y0 = cx - side / 2, cy - side / 2
    scale = CROP_SIZE / side
    to_crop = np.array([[scale, 0, -x0 * scale], [0, scale, -y0 * scale]], np.float32)
    crop = cv2.warpAffine(image, to_crop, (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_AREA if scale < 1 else
                          cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    with _mediapipe.borrow("mesh-crop", lambda: _mediapipe.face_mesh(static=True, max_faces=1)) as graph:
        result = graph.process(crop)
    found = faces_from_result(result, CROP_SIZE, CROP_SIZE)
    return found[0].scaled(1 / scale, (x0, y0)) if found else None


def detect_faces(image: ImageInput) -> list[Face]:
    """All faces, largest first, with landmarks in the input image's pixel coordinates."""
    image = load_image(image)
    small = resize_max(image, DETECT_MAX_SIZE)
    factor = image.shape[1] / small.shape[1]
    height, width = small.shape[:2]
    with _mediapipe.borrow("mesh-image", lambda: _mediapipe.face_mesh(static=True, max_faces=MAX_FACES)) as mesh:
        result = mesh.process(small)
    faces = faces_from_result(result, width, height)
    boxes = _detect(small, True) + _detect(small, False)
    if max(width, height) > WIDE_ASPECT * min(width, height):
        boxes += _strip_boxes(small)  # after the whole-image boxes: those keep precedence
    faces += _faces_in_boxes(small, _merge(boxes), faces)
    faces = [face.scaled(factor) for face in faces] if factor != 1 else faces
    if not faces and max(image.shape[:2]) > TILE_SIZE:
        large = resize_max(image, TILE_SEARCH_MAX_SIZE)
        factor = image.shape[1] / large.shape[1]
        faces = [face.scaled(factor) for face in _faces_in_boxes(large, _tiled_boxes(large), [])]
    return sorted(faces, key=lambda face: face.area, reverse=True)


def face_landmarks(image: ImageInput, face_index: int = 0, name: Optional[str] = None) -> Face:
    """The ``face_index``-th largest face, or an InputError saying why there is none
    (naming ``name``, else the file, else "the image")."""
    if name is None:
        name = "the image" if isinstance(image, np.ndarray) else repr(str(image))
    faces = detect_faces(image)
    if not faces:
        raise InputError(f"no face found in {name}")
    if not 0 <= face_index < len(faces):
        found = f"{len(faces)} face" + ("s" if len(faces) != 1 else "")
        raise InputError(f"face index {face_index} requested but only {found} found in {name}")
    return faces[face_index]
