"""Hallo's face embedding (SCRFD + ArcFace through onnxruntime) on hand-encoded tiny ONNX files.

The stock tiny detector (checkpoints/tiny_onnx.py) fires on every bright 32-pixel cell of the
640x640 detector input with a 64-pixel box around the cell's top-left corner; the colour
detector built here scores red only and grows its box with green, so size and score disagree.
"""

import logging
from pathlib import Path

import cv2
import numpy as np
import onnxruntime
import pytest

from genhuman.checkpoints import tiny_onnx
from genhuman.checkpoints.layout import FACE_DETECTOR, FACE_RECOGNIZER
from genhuman.errors import InputError, MissingWeightsError
from genhuman.face import FaceEmbedder
from genhuman.face import arcface

KEYPOINTS = np.array(tiny_onnx.KEYPOINTS, np.float32).reshape(5, 2)


RECOGNIZER_SEED = 3
INSIGHTFACE_FIXTURE = Path(__file__).parent / "data" / "insightface_tiny.npz"
# (detector, scene seed, height, width) of the scenes in INSIGHTFACE_FIXTURE.
INSIGHTFACE_CASES = (("tiny", 0, 640, 640), ("tiny", 1, 720, 405), ("tiny", 2, 333, 517),
                     ("tiny", 3, 1080, 1920), ("colour", 4, 640, 640), ("colour", 5, 405, 720))


@pytest.fixture(scope="module")
def pack(tmp_path_factory):
    root = tmp_path_factory.mktemp("weights")
    tiny_onnx.save_tiny_face_analysis(root, FACE_DETECTOR, FACE_RECOGNIZER, seed=RECOGNIZER_SEED)
    return root / FACE_DETECTOR, root / FACE_RECOGNIZER


def scene(seed, height, width):
    """Dim noise with three bright squares of random size and colour: faces to the tiny detectors."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 150, (height, width, 3), dtype=np.uint8)
    for _ in range(3):
        size = int(rng.integers(20, min(height, width) // 2))
        y, x = rng.integers(0, height - size), rng.integers(0, width - size)
        image[y:y + size, x:x + size] = rng.integers(180, 256, 3)
        image[y:y + size, x:x + size, 0] = 255  # red: the colour detector fires too
    return image


@pytest.fixture(scope="module")
def embedder(pack):
    return FaceEmbedder(*pack)


def _cell_image(height, width, cells, value=255):
    image = np.zeros((height, width, 3), np.uint8)
    for row, col in cells:
        image[row * 32:(row + 1) * 32, col * 32:(col + 1) * 32] = value
    return image


def _umeyama_svd(source, target):
    """Independent similarity estimate: Umeyama (1991) with an SVD of the cross-covariance."""
    src, dst = np.asarray(source, np.float64), np.asarray(target, np.float64)
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.array([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt))])
    rotation = u @ np.diag(d) @ vt
    scale = (s * d).sum() / src_c.var(0).sum()
    return np.hstack([scale * rotation, (dst_mean - scale * rotation @ src_mean)[:, None]])


def _similarity(scale, angle, shift):
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    return np.array([[c, -s, shift[0]], [s, c, shift[1]]])


def _apply(matrix, points):
    return points @ matrix[:, :2].T + matrix[:, 2]


# ---------------------------------------------------------------- decoding, NMS, letterbox


def test_anchor_centers_are_cell_corners_repeated_per_anchor():
    centers = arcface.anchor_centers(2, 3, 8, 2)
    expected = [[0, 0], [0, 0], [8, 0], [8, 0], [16, 0], [16, 0], [0, 8], [0, 8], [8, 8], [8, 8], [16, 8], [16, 8]]
    np.testing.assert_array_equal(centers, expected)
    assert centers.dtype == np.float32


def test_distance_decoding_by_hand():
    points = np.array([[16.0, 8.0], [0.0, 32.0]], np.float32)
    boxes = arcface.distance_to_box(points, np.array([[2, 3, 4, 5], [1, 1, 1, 1]], np.float32))
    np.testing.assert_array_equal(boxes, [[14, 5, 20, 13], [-1, 31, 1, 33]])
    offsets = np.array([[1, 2, -1, -2, 0, 0, 3, 4, 5, 6]] * 2, np.float32)
    keypoints = arcface.distance_to_keypoints(points, offsets)
    np.testing.assert_array_equal(keypoints[0], [[17, 10], [15, 6], [16, 8], [19, 12], [21, 14]])
    np.testing.assert_array_equal(keypoints[1], [[1, 34], [-1, 30], [0, 32], [3, 36], [5, 38]])


def test_nms_by_hand():
    # +1 areas: box 0 is 10x10 = 100; box 1 (10x5) overlaps it by 50 -> IoU 0.5, dropped;
    # box 2 (10x10, shifted 5) overlaps it by 50 -> IoU 50/150 = 0.33, kept.
    boxes = np.array([[0, 0, 9, 4], [5, 0, 14, 9], [0, 0, 9, 9]], np.float32)
    scores = np.array([0.8, 0.7, 0.9], np.float32)
    assert arcface.nms(boxes, scores, 0.4) == [2, 1]
    assert arcface.nms(boxes, scores, 0.5) == [2, 0, 1]  # IoU 0.5 is not above 0.5
    assert arcface.nms(boxes, scores, 0.3) == [2]


def test_letterbox_keeps_aspect_and_pads_bottom_right():
    wide = np.full((320, 480, 3), 200, np.uint8)
    canvas, scale = arcface.letterbox(wide, (640, 640))
    assert canvas.shape == (640, 640, 3) and scale == 426 / 320  # int(640 * 320 / 480) = 426 rows
    assert (canvas[:426] == 200).all() and (canvas[426:] == 0).all()
    tall = np.full((480, 320, 3), 200, np.uint8)
    canvas, scale = arcface.letterbox(tall, (640, 640))
    assert scale == 640 / 480 and (canvas[:, :426] == 200).all() and (canvas[:, 426:] == 0).all()
    with pytest.raises(InputError, match="too narrow"):
        arcface.letterbox(np.zeros((2000, 1, 3), np.uint8), (640, 640))


def test_largest_face_takes_the_first_of_equals():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 20, 5], [5, 5, 25, 25], [0, 0, 20, 20]], np.float32)
    assert arcface.largest_face(boxes) == 2
    assert arcface.largest_face(boxes[:2]) == 0  # 100 == 100


# ---------------------------------------------------------------- alignment


def test_similarity_recovers_a_known_transform_exactly():
    truth = _similarity(1.7, 0.3, (40.0, -12.0))
    inverse = cv2.invertAffineTransform(truth)
    keypoints = _apply(inverse, arcface.ARCFACE_TEMPLATE.astype(np.float64))
    matrix = arcface.similarity_transform(keypoints, arcface.ARCFACE_TEMPLATE)
    np.testing.assert_allclose(matrix, truth, rtol=0, atol=1e-9)
    np.testing.assert_allclose(_apply(matrix, keypoints), arcface.ARCFACE_TEMPLATE, rtol=0, atol=1e-5)


def test_similarity_is_the_least_squares_umeyama_solution():
    rng = np.random.default_rng(0)
    for _ in range(5):
        source = rng.uniform(0, 300, (5, 2))
        target = _apply(_similarity(rng.uniform(0.2, 3), rng.uniform(-3, 3), rng.uniform(-50, 50, 2)), source)
        target += rng.normal(0, 4, target.shape)  # not an exact similarity: the fit matters
        np.testing.assert_allclose(arcface.similarity_transform(source, target), _umeyama_svd(source, target),
                                   rtol=0, atol=1e-9)
    with pytest.raises(InputError, match="coincide"):
        arcface.similarity_transform(np.ones((5, 2)), arcface.ARCFACE_TEMPLATE)


def test_align_face_warps_with_the_recovered_transform():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (300, 260, 3), dtype=np.uint8)
    truth = _similarity(0.45, -0.2, (-20.0, 30.0))
    keypoints = _apply(cv2.invertAffineTransform(truth), arcface.ARCFACE_TEMPLATE.astype(np.float64))
    crop = arcface.align_face(image, keypoints)
    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
    expected = cv2.warpAffine(image, truth, (112, 112), borderValue=0.0)
    np.testing.assert_array_equal(crop, expected)
    # float32 keypoints (as SCRFD gives them) move the matrix in the 7th digit: a few pixels of this
    # noise image land on the other side of warpAffine's 1/32-pixel interpolation steps.
    rounded = arcface.align_face(image, keypoints.astype(np.float32)).astype(int) - expected
    assert 0 < np.count_nonzero(rounded) < 0.002 * rounded.size and np.abs(rounded).max() <= 8


def test_templates_for_other_crop_sizes():
    np.testing.assert_allclose(arcface.arcface_template(224), arcface.ARCFACE_TEMPLATE * 2)
    np.testing.assert_allclose(arcface.arcface_template(128), arcface.ARCFACE_TEMPLATE + [8.0, 0.0])
    with pytest.raises(InputError, match="112 or 128"):
        arcface.arcface_template(100)


# ---------------------------------------------------------------- detection end to end


def test_one_bright_cell_is_one_face_at_its_anchor(embedder):
    faces = embedder.detector.detect(_cell_image(640, 640, [(5, 7)]))
    assert len(faces) == 1  # the cell's two identical anchors are one face after NMS
    np.testing.assert_array_equal(faces.boxes[0], [192, 128, 256, 192])  # corner (224, 160) +- 32
    np.testing.assert_allclose(faces.keypoints[0], [224, 160] + KEYPOINTS * 32, rtol=0, atol=1e-5)
    assert faces.scores[0] > 0.999


def test_boxes_come_back_to_image_pixels_of_a_non_square_image(embedder):
    # 320x480 -> 426x640 in the detector (scale 1.33125); this patch covers detector cell (5, 7).
    image = np.zeros((320, 480, 3), np.uint8)
    image[120:144, 168:192] = 255
    faces = embedder.detector.detect(image)
    assert len(faces) == 1
    scale = 426 / 320
    np.testing.assert_allclose(faces.boxes[0], np.array([192, 128, 256, 192]) / scale, rtol=1e-6)
    np.testing.assert_allclose(faces.keypoints[0], ([224, 160] + KEYPOINTS * 32) / scale, rtol=1e-5)


def test_no_face_gives_zeros_and_the_whole_image(embedder, caplog):
    with caplog.at_level(logging.WARNING, logger="genhuman.face.arcface"):
        face = embedder.analyse(np.zeros((300, 200, 3), np.uint8))
        embedding, box = embedder.embed(np.zeros((300, 200, 3), np.uint8))
    assert not face.found and face.keypoints is None
    np.testing.assert_array_equal(face.embedding, np.zeros(512))
    np.testing.assert_array_equal(box, [0, 0, 200, 300])
    assert embedding.dtype == np.float32 and embedding.shape == (512,) and not embedding.any()
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and "no face" in messages[0] and "\n" not in messages[0]


def test_embedding_is_the_recognizer_on_the_aligned_rgb_crop(embedder, pack):
    rng = np.random.default_rng(2)
    image = rng.integers(0, 120, (640, 640, 3), dtype=np.uint8)  # dark noise: no cell fires
    image[160:192, 224:256] = 255
    image[100:260, 150:330, 0] = rng.integers(0, 256, (160, 180), dtype=np.uint8)  # texture in red only
    image[160:192, 224:256] = 255
    embedding, box = embedder.embed(image)
    assert embedding.shape == (512,) and embedding.dtype == np.float32
    np.testing.assert_array_equal(box, [192, 128, 256, 192])
    # Independently: Umeyama onto the template, the warp, (x - 127.5) / 127.5 in RGB, the network.
    keypoints = np.array([224, 160], np.float32) + KEYPOINTS * 32  # float32, as the detector gives them
    crop = cv2.warpAffine(image, _umeyama_svd(keypoints, arcface.ARCFACE_TEMPLATE), (112, 112), borderValue=0.0)
    blob = ((crop.astype(np.float32) - 127.5) / 127.5).transpose(2, 0, 1)[None]
    session = onnxruntime.InferenceSession(str(pack[1]), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"input.1": blob})[0][0]
    np.testing.assert_allclose(embedding, expected, rtol=1e-5, atol=1e-5)
    swapped = session.run(None, {"input.1": blob[:, ::-1].copy()})[0][0]
    assert np.abs(swapped - expected).max() > 0.1  # the channel order is visible to the test
    assert abs(np.linalg.norm(embedding) - 1.0) > 0.1  # raw, not normalised


def test_embedding_is_deterministic(embedder, pack):
    image = _cell_image(480, 640, [(3, 4)])
    image[40:200, 60:260, 1] = np.arange(200, dtype=np.uint8)[None, :]
    first = embedder.embed(image)
    again = embedder.embed(image.copy())
    other = FaceEmbedder(*pack, providers=("CUDAExecutionProvider", "CPUExecutionProvider")).embed(image)
    for a, b in ((first, again), (first, other)):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    assert first[0].any()


# ---------------------------------------------------------------- the largest face, the channel order


def colour_detector() -> bytes:
    """SCRFD-shaped: stride 32 scores ``sigmoid(20 * mean(R) - 10)``, box half-side
    ``32 * (1 + 0.5 * mean(G))`` (normalised means); strides 8 and 16 never fire."""
    nodes, weights, outputs = [], {}, {}
    for kind, width in (("score", 1), ("bbox", 4), ("kps", 10)):
        for stride in tiny_onnx.STRIDES:
            name = f"{kind}_{stride}"
            weight = np.zeros((2 * width, 3, stride, stride), np.float32)
            if kind == "score":
                live = stride == 32
                weight[:, 0] = 20.0 / (stride * stride) if live else 0.0
                bias = np.full(2, -10.0 if live else -30.0, np.float32)
            elif kind == "bbox":
                weight[:, 1] = 0.5 / (stride * stride)
                bias = np.ones(8, np.float32)
            else:
                bias = np.tile(np.array(tiny_onnx.KEYPOINTS, np.float32), 2)
            weights.update({f"{name}.weight": weight, f"{name}.bias": bias,
                            f"{name}.shape": np.array([-1, width], np.int64)})
            conv = f"{name}.conv"
            nodes.append(tiny_onnx._node("Conv", ["input.1", f"{name}.weight", f"{name}.bias"], [conv],
                                         kernel_shape=(stride, stride), strides=(stride, stride)))
            if kind == "score":
                nodes.append(tiny_onnx._node("Sigmoid", [conv], [f"{name}.sigmoid"]))
                conv = f"{name}.sigmoid"
            nodes.append(tiny_onnx._node("Transpose", [conv], [f"{name}.nhwc"], perm=(0, 2, 3, 1)))
            nodes.append(tiny_onnx._node("Reshape", [f"{name}.nhwc", f"{name}.shape"], [name]))
            outputs[name] = ("anchors", width)
    return tiny_onnx._model("scrfd_colour", nodes, weights, {"input.1": (1, 3, "height", "width")}, outputs)


@pytest.fixture(scope="module")
def colour_embedder(pack, tmp_path_factory):
    path = tmp_path_factory.mktemp("colour") / "scrfd_colour.onnx"
    path.write_bytes(colour_detector())
    return FaceEmbedder(path, pack[1])


def test_the_largest_face_wins_over_the_higher_score(colour_embedder):
    image = np.zeros((640, 640, 3), np.uint8)
    image[64:96, 64:96] = (255, 0, 0)  # cell (2, 2): score ~1, half-side 32 * (1 - 0.5) = 16
    image[320:352, 384:416] = (230, 255, 0)  # cell (10, 12): score sigmoid(~6), half-side ~48
    faces = colour_embedder.detector.detect(image)
    assert len(faces) == 2 and faces.scores[0] > faces.scores[1]
    assert faces.scores[1] == pytest.approx(1 / (1 + np.exp(10 - 20 * (230 - 127.5) / 128)), rel=1e-6)
    small, large = 32 * (1 + 0.5 * (-127.5 / 128)), 32 * (1 + 0.5 * (127.5 / 128))
    np.testing.assert_allclose(faces.boxes[0], [64 - small, 64 - small, 64 + small, 64 + small], rtol=1e-5)
    np.testing.assert_allclose(faces.boxes[1], [384 - large, 320 - large, 384 + large, 320 + large], rtol=1e-5)
    face = colour_embedder.analyse(image)
    assert face.found and face.score == pytest.approx(float(faces.scores[1]))
    np.testing.assert_array_equal(face.box, faces.boxes[1])
    np.testing.assert_allclose(face.keypoints, [384, 320] + KEYPOINTS * 32, atol=1e-4)


def test_the_detector_sees_rgb(colour_embedder):
    red, blue = np.zeros((640, 640, 3), np.uint8), np.zeros((640, 640, 3), np.uint8)
    red[64:96, 64:96, 0] = 255
    blue[64:96, 64:96, 2] = 255
    assert len(colour_embedder.detector.detect(red)) == 1
    assert len(colour_embedder.detector.detect(blue)) == 0


@pytest.mark.parametrize("kind, seed, height, width", INSIGHTFACE_CASES)
def test_matches_insightface(pack, colour_embedder, embedder, kind, seed, height, width):
    """Against insightface 0.7.3's SCRFD and ArcFaceONNX run once in Hallo's flow (BGR image in,
    ``detect(max_num=0)``, ``norm_crop`` with skimage 0.24, the largest face; versions in the
    fixture): the chosen face's box and its embedding (which differs by skimage's float32 Umeyama
    only), and the best score. The full list of kept boxes is not compared: these scenes give many
    candidates with EQUAL scores, and insightface orders them with numpy's unstable ``argsort``,
    whose tie order differs between CPUs (numpy's AVX-512 sort on some): for ``colour-4`` the
    fixture keeps 53 boxes and GenHuman's stable order 64, with the same chosen face. GenHuman
    sorts stably, the same on every CPU (``test_nms_breaks_ties_by_index``)."""
    fixture = np.load(INSIGHTFACE_FIXTURE)
    ours = embedder if kind == "tiny" else colour_embedder
    image = scene(seed, height, width)
    faces = ours.detector.detect(image)
    official = fixture[f"{kind}_{seed}_det"]
    assert len(faces) > 1 and len(official) > 1
    assert float(faces.scores[0]) == pytest.approx(float(official[:, 4].max()), rel=1e-6)
    embedding, box = ours.embed(image)
    np.testing.assert_allclose(box, fixture[f"{kind}_{seed}_box"], rtol=0, atol=1e-3)
    expected = fixture[f"{kind}_{seed}_embedding"]
    assert np.abs(embedding - expected).max() < 2e-4 * np.abs(expected).max()


def test_nms_breaks_ties_by_index():
    """Equal scores: the earlier candidate is kept, on every CPU (a stable sort, not numpy's default)."""
    from genhuman.face.arcface import nms

    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [51, 51, 61, 61]], np.float32)
    scores = np.array([0.8, 0.8, 0.9, 0.9], np.float32)
    assert nms(boxes, scores, 0.4) == [2, 0]
    assert nms(boxes[::-1].copy(), scores[::-1].copy(), 0.4) == [0, 2]


# ---------------------------------------------------------------- bad files, bad images


def test_corrupt_and_mismatched_files_are_one_line(pack, tmp_path):
    detector, recognizer = pack
    corrupt = tmp_path / "scrfd_10g_bnkps.onnx"
    corrupt.write_bytes(b"this is not an onnx model")
    with pytest.raises(InputError, match="face detector .SCRFD. '.*scrfd_10g_bnkps.onnx' is not a readable ONNX") as e:
        FaceEmbedder(corrupt, recognizer)
    assert "\n" not in str(e.value)
    with pytest.raises(InputError, match=r"face detector .SCRFD. '.*glintr100.onnx' has 1 outputs; SCRFD") as e:
        FaceEmbedder(recognizer, recognizer)
    assert "\n" not in str(e.value)
    with pytest.raises(InputError, match=r"face recognizer .ArcFace. '.*scrfd_10g_bnkps.onnx' .*expected one"):
        FaceEmbedder(detector, detector)
    with pytest.raises(MissingWeightsError, match="face recognizer .ArcFace. not found"):
        FaceEmbedder(detector, tmp_path / "absent.onnx")


def test_detector_with_the_wrong_outputs(tmp_path, pack):
    """Six outputs: an SCRFD without keypoints, which cannot be aligned."""
    nodes = [tiny_onnx._node("Identity", ["input.1"], [f"out{i}"]) for i in range(6)]
    path = tmp_path / "scrfd_nokps.onnx"
    path.write_bytes(tiny_onnx._model("nokps", nodes, {}, {"input.1": (1, 3, "h", "w")},
                                      {f"out{i}": (1, 3, "h", "w") for i in range(6)}))
    with pytest.raises(InputError, match="has 6 outputs; SCRFD with keypoints has 9"):
        FaceEmbedder(path, pack[1])


@pytest.mark.parametrize("image", [np.zeros((64, 64, 3), np.float32), np.zeros((64, 64), np.uint8),
                                   np.zeros((64, 64, 4), np.uint8), "portrait.png"])
def test_images_must_be_uint8_rgb(embedder, image):
    with pytest.raises(InputError, match=r"\(H, W, 3\) uint8 RGB"):
        embedder.embed(image)
