import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image
from mediapipe.python.solutions import face_mesh_connections as connections

from genhuman.errors import InputError
from genhuman.face import (FaceTracker, crop_with_transform, detect_faces, face_box_square, face_landmarks,
                           landmark_indices as idx, paste_back)
from genhuman.media import load_image


@pytest.fixture(scope="module")
def portrait(portrait_path):
    return load_image(portrait_path)


def inside(point, box):
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def test_astronaut_has_one_face(portrait):
    faces = detect_faces(portrait)
    assert len(faces) == 1
    face = faces[0]
    assert face.landmarks.shape == (478, 2) and face.landmarks.dtype == np.float32
    assert face.z.shape == (478,)
    box = face.box
    assert 150 < box[0] < box[2] < 300 and 50 < box[1] < box[3] < 200  # the face in the photo
    for i in idx.LIPS_INNER + idx.LIPS_OUTER:
        assert inside(face.landmarks[i], box)
    eyes_y = face.landmarks[[idx.RIGHT_IRIS_CENTER, idx.LEFT_IRIS_CENTER], 1].max()
    assert eyes_y < face.landmarks[idx.UPPER_LIP_OUTER, 1] < face.landmarks[idx.CHIN, 1]
    # subject's right eye is on the image's left
    assert face.landmarks[idx.RIGHT_IRIS_CENTER, 0] < face.landmarks[idx.LEFT_IRIS_CENTER, 0]
    assert face.landmarks[idx.MOUTH_CORNER_RIGHT, 0] < face.landmarks[idx.MOUTH_CORNER_LEFT, 0]


def test_path_input_and_large_image_coordinates_scale_back(portrait, portrait_path):
    reference = detect_faces(portrait)[0].landmarks
    np.testing.assert_allclose(detect_faces(portrait_path)[0].landmarks, reference, atol=1e-3)
    big = np.kron(portrait, np.ones((3, 3, 1), np.uint8))  # 1536 px: detected on a 1024 px copy
    np.testing.assert_allclose(detect_faces(big)[0].landmarks / 3, reference, atol=4)


def test_blank_image_has_no_face(tmp_path):
    with pytest.raises(InputError, match="no face found in blank.png"):
        face_landmarks(np.full((256, 256, 3), 200, np.uint8), name="blank.png")
    with pytest.raises(InputError, match="no face found in the image"):
        face_landmarks(np.full((256, 256, 3), 200, np.uint8))
    Image.new("RGB", (128, 96), (90, 120, 200)).save(tmp_path / "sky.jpg")
    with pytest.raises(InputError, match=r"no face found in '.*sky.jpg'"):
        face_landmarks(tmp_path / "sky.jpg")


def test_two_faces_side_by_side(portrait):
    pair = np.concatenate([portrait, portrait[:, ::-1]], axis=1)
    faces = detect_faces(pair)
    assert len(faces) == 2
    centers = sorted(face.landmarks[:, 0].mean() for face in faces)
    assert centers[0] < 512 < centers[1]
    second = face_landmarks(pair, face_index=1)
    assert second.landmarks[:, 0].mean() == pytest.approx(faces[1].landmarks[:, 0].mean())
    with pytest.raises(InputError, match="face index 3 requested but only 2 faces found"):
        face_landmarks(pair, face_index=3)


def test_index_groups_match_mediapipe_topology():
    def members(edges):
        return {i for edge in edges for i in edge}

    assert set(idx.LIPS_INNER) | set(idx.LIPS_OUTER) == members(connections.FACEMESH_LIPS)
    assert set(idx.RIGHT_EYE) == members(connections.FACEMESH_RIGHT_EYE)
    assert set(idx.LEFT_EYE) == members(connections.FACEMESH_LEFT_EYE)
    assert set(idx.RIGHT_EYEBROW) == members(connections.FACEMESH_RIGHT_EYEBROW)
    assert set(idx.LEFT_EYEBROW) == members(connections.FACEMESH_LEFT_EYEBROW)
    assert set(idx.FACE_OVAL) == members(connections.FACEMESH_FACE_OVAL)
    assert set(idx.JAW) <= set(idx.FACE_OVAL)
    assert set(idx.NOSE) == members(connections.FACEMESH_NOSE)
    for contour in (idx.LIPS_INNER, idx.LIPS_OUTER, idx.RIGHT_EYE, idx.LEFT_EYE, idx.FACE_OVAL):
        assert len(set(contour)) == len(contour)


def test_tracker_follows_frames(portrait):
    reference = detect_faces(portrait)[0].landmarks
    with FaceTracker() as tracker:
        for shift in (0, 4, 8):
            frame = np.roll(portrait, shift, axis=1)
            face = tracker.track(frame)
            assert face is not None
            assert np.median(face.landmarks[:, 0] - reference[:, 0]) == pytest.approx(shift, abs=1.5)
        assert tracker.track(np.full_like(portrait, 90)) is None


def test_crop_and_paste_back_round_trip(portrait):
    face = detect_faces(portrait)[0]
    box = face_box_square(face, 1.5)
    assert box[2] - box[0] == box[3] - box[1]
    crop, transform = crop_with_transform(portrait, box)
    np.testing.assert_array_equal(crop, portrait[box[1]:box[3], box[0]:box[2]])
    np.testing.assert_array_equal(paste_back(portrait, crop, transform), portrait)
    resized, transform = crop_with_transform(portrait, box, size=256)
    points = transform.to_crop(face.landmarks)
    np.testing.assert_allclose(transform.to_image(points), face.landmarks, atol=1e-3)
    assert points.min() > 0 and points.max() < 256
    edited = np.zeros_like(resized)
    pasted = paste_back(portrait, edited, transform, feather=0.1)
    centre = face.landmarks[idx.NOSE_TIP].astype(int)
    assert pasted[centre[1], centre[0]].max() == 0  # the centre takes the crop
    assert (pasted[:box[1] - 1] == portrait[:box[1] - 1]).all()  # outside stays the portrait


def test_stderr_clean_and_quiet_stderr_nests(portrait_path):
    """MediaPipe's start-up lines are hidden; nested silencing restores fd 2 afterwards."""
    code = ("import os\n"
            "from genhuman.face import detect_faces\n"
            "from genhuman.face._mediapipe import quiet_stderr\n"
            f"assert len(detect_faces({str(portrait_path)!r})) == 1\n"
            "with quiet_stderr():\n"
            "    with quiet_stderr():\n"
            "        os.write(2, b'hidden')\n"
            "    os.write(2, b'hidden too')\n"
            "os.write(2, b'shown')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr == b"shown"


def test_small_face_in_large_photo_found_by_tiles(portrait):
    """A face ~35 px wide in a 1024 px photo (half-body framing) is below the mesh's own detector."""
    canvas = np.full((1024, 1024, 3), 120, np.uint8)
    canvas[300:492, 500:692] = cv2.resize(portrait, (192, 192), interpolation=cv2.INTER_AREA)
    faces = detect_faces(canvas)
    assert len(faces) == 1
    expected = np.array(detect_faces(portrait)[0].box) * 192 / 512 + [500, 300, 500, 300]
    np.testing.assert_allclose(faces[0].box, expected, atol=6)


@pytest.mark.parametrize("side", [400, 200])
def test_row_of_five_faces_in_a_wide_strip(portrait, side):
    """A group-photo strip (five heads side by side, 5:1) is squeezed to specks in the
    detectors' square input; scanning it in squares finds all five, each where it is."""
    head = cv2.resize(portrait[0:400, 50:450], (side, side), interpolation=cv2.INTER_AREA)
    strip = np.concatenate([head] * 5, axis=1)
    faces = detect_faces(strip)
    assert len(faces) == 5
    alone = np.array(detect_faces(head)[0].box)
    width = alone[2] - alone[0]
    boxes = sorted((face.box for face in faces), key=lambda box: box[0])
    for k, box in enumerate(boxes):
        np.testing.assert_allclose(box, alone + [k * side, 0, k * side, 0], atol=0.08 * width)
