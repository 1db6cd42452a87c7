import numpy as np
import pytest

from genhuman.errors import InputError
from genhuman.pipelines.face_crop import FaceCrop, dilate
from genhuman.pipelines.landmarks import load_landmark_folder, render_landmarks


def test_official_crop_hand_computed():
    # face box 100x80 at (200, 150); crop dilation 0.5 -> (150, 110, 350, 270), 200x160;
    # centred square of side 160 -> x from 150 + 20 = 170
    crop = FaceCrop.official((200, 150, 300, 230), width=640, height=480)
    assert crop.box == (170, 110, 330, 270)
    assert crop.mask_box == dilate((200, 150, 300, 230), 0.1) == (190, 142, 310, 238)


def test_official_crop_rounds_the_box_and_truncates_the_pads():
    # box rounds to (101, 50, 201, 170): 100 wide, 120 high; crop pads int(60) rows, int(50)
    # cols -> (51, -10, 251, 230), clipped (51, 0, 251, 230); side 200 at
    # (51+251)//2 - 100 = 51, (0+230)//2 - 100 = 15. Mask pads int(12) rows, int(10) cols.
    crop = FaceCrop.official((100.6, 50.4, 201.4, 170.5), width=640, height=480)
    assert crop.box == (51, 15, 251, 215)
    assert crop.mask_box == (91, 38, 211, 182)


def test_official_square_uses_centre_minus_half_side():
    # 10x9 image, box (3, 3, 7, 6) dilated by 1.0 -> (-1, 0, 11, 9), clipped (0, 0, 10, 9);
    # side 9: x0 = (0 + 10)//2 - 9//2 = 1 (not (10 - 9)//2 = 0), y0 = 9//2 - 4 = 0
    assert FaceCrop.official((3, 3, 7, 6), 10, 9, crop_dilation=1.0).box == (1, 0, 10, 9)


def test_crop_is_clipped_to_the_image():
    crop = FaceCrop.official((0, 0, 100, 200), width=150, height=300)
    x0, y0, x1, y1 = crop.box
    assert x0 >= 0 and y0 >= 0 and x1 <= 150 and y1 <= 300 and x1 - x0 == y1 - y0 == 150


def test_mask_is_the_official_bilinear_resized_uint8_mask():
    # crop (170, 110, 330, 270), mask box (190, 142, 310, 238): crop columns 20..139 and rows
    # 32..127 are 255. Upscaled x2 bilinearly, destination column c samples (c + 0.5)/2 - 0.5:
    # c=39 -> 19.25 -> 0.25 x 255 = 64, c=40 -> 19.75 -> 191, c=279 -> 139.25 -> 191, c=280 -> 64.
    crop = FaceCrop.official((200, 150, 300, 230), width=640, height=480)
    mask = crop.mask(320)
    assert mask.shape == (320, 320) and mask.dtype == np.float32
    np.testing.assert_array_equal(np.rint(mask[200, 37:43] * 255), [0, 0, 64, 191, 255, 255])
    np.testing.assert_array_equal(np.rint(mask[200, 277:283] * 255), [255, 255, 191, 64, 0, 0])
    np.testing.assert_array_equal(np.rint(mask[61:67, 200] * 255), [0, 0, 64, 191, 255, 255])
    np.testing.assert_array_equal(np.rint(mask[253:259, 200] * 255), [255, 255, 191, 64, 0, 0])
    assert mask.max() == 1.0 and mask.min() == 0.0


def test_reference_crop_is_resized_bilinearly():
    # official cv2.resize default: a 2-px ramp 0 -> 100 upscaled to 4 px samples
    # -0.25 (edge), 0.25, 0.75, 1.25 (edge) -> 0, 25, 75, 100
    image = np.zeros((2, 2, 3), np.uint8)
    image[:, 1] = 100
    crop = FaceCrop(box=(0, 0, 2, 2), mask_box=(0, 0, 1, 1))
    np.testing.assert_array_equal(crop.crop(image, 4)[0, :, 0], [0, 25, 75, 100])


def test_paste_back_blends_only_inside_the_crop():
    portrait = np.full((480, 640, 3), 50, np.uint8)
    crop = FaceCrop.official((200, 150, 300, 230), width=640, height=480)
    weights = crop.paste_weights()
    assert weights.shape == (160, 160, 1) and weights.max() == pytest.approx(1.0) and weights[0, 0, 0] == 0
    out = crop.paste(portrait, np.full((64, 64, 3), 250, np.uint8), weights)
    assert (out[:110] == 50).all() and (out[:, :170] == 50).all()
    assert (out[190, 250] == 250).all()  # crop centre: fully generated
    assert crop.to_crop_pixels(np.array([[170.0, 110.0], [330.0, 270.0]]), 320).tolist() == [[0, 0], [320, 320]]


def test_render_landmarks_matches_the_official_drawing_hand_computed():
    points = np.full((478, 2), -10.0, np.float32)  # off the canvas: not drawn (official rule)
    points[263], points[249] = (300, 100), (340, 100)  # one edge of MediaPipe's left-eye contour
    points[4] = (100, 200)  # nose tip: a 6x6 square
    points[468] = (400, 400)  # right pupil
    points[[13, 14, 61, 291]] = [(250, 450), (250, 460), (230, 455), (270, 455)]  # mouth: never drawn
    image = render_landmarks(points, 512)
    assert image.shape == (512, 512, 3) and image.dtype == np.float32
    pixels = np.rint(image * 255).astype(int)
    np.testing.assert_array_equal(pixels[100, 300:341], [[180, 200, 10]] * 41)  # 2 px line, official colour
    assert pixels[97, 320].sum() == 0 and pixels[103, 320].sum() == 0
    np.testing.assert_array_equal(pixels[197:203, 97:103].reshape(-1, 3), [[200, 200, 200]] * 36)
    assert pixels[196:204, 96:104].astype(bool).any(-1).sum() == 36  # exactly the 6x6 square
    np.testing.assert_array_equal(pixels[397:403, 397:403].reshape(-1, 3), [[10, 200, 250]] * 36)
    assert pixels[440:470].sum() == 0  # no mouth
    lit = pixels.astype(bool).any(-1).sum()
    assert lit == 36 + 36 + int(pixels[98:103, 299:342].astype(bool).any(-1).sum())  # nothing else drawn


def test_render_landmarks_resizes_the_512_canvas():
    points = np.full((478, 2), -10.0, np.float32)
    points[4] = (50, 50)  # in a 128 crop: the square lands at 200 on the 512 canvas
    image = render_landmarks(points, 128)
    assert image.shape == (128, 128, 3)
    assert image[49:51, 49:51].min() > 0.5 and image[:40].max() == 0


def test_landmark_folder(tmp_path):
    with pytest.raises(InputError, match="no numbered .pkl or .npy"):
        load_landmark_folder(tmp_path)
    for i in (1, 0, 10, 2):
        np.save(tmp_path / f"{i}.npy", np.full((478, 3), i, np.float64))
    frames = load_landmark_folder(tmp_path)
    assert frames.shape == (4, 478, 2) and frames[:, 0, 0].tolist() == [0, 1, 2, 10]
    np.save(tmp_path / "3.npy", np.zeros((68, 2)))
    with pytest.raises(InputError, match="3.npy"):
        load_landmark_folder(tmp_path)


def test_official_pkl_landmark_folder_is_read_without_running_code(tmp_path):
    import pickle

    for i in range(3):  # what the official tools write: a pickled (478, 3) float64 array
        with open(tmp_path / f"{i}.pkl", "wb") as fh:
            pickle.dump(np.full((478, 3), i + 0.5), fh)
    frames = load_landmark_folder(tmp_path)
    assert frames.shape == (3, 478, 2) and frames[:, 5, 1].tolist() == [0.5, 1.5, 2.5]

    class Exploit:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(tmp_path / "3.pkl", "wb") as fh:
        pickle.dump(Exploit(), fh)
    with pytest.raises(InputError, match="3.pkl: refusing to load builtins.print"):
        load_landmark_folder(tmp_path)


def test_render_landmarks_squares_near_the_edges_follow_the_official_slice():
    """Official ``image[y-3:y+3, x-3:x+3] = colour``: a negative start gives an empty slice
    (no square within 3 px of the top or left edge); at the bottom/right the slice is cut."""
    def lit_at(x, y):
        points = np.full((478, 2), -10.0, np.float32)
        points[4] = (x, y)  # nose tip only (pupils off the canvas)
        return np.rint(render_landmarks(points, 512) * 255).astype(int).astype(bool).any(-1)

    assert lit_at(100, 2).sum() == 0 and lit_at(1, 100).sum() == 0 and lit_at(0, 0).sum() == 0
    assert lit_at(100, 3)[0:6, 97:103].all() and lit_at(100, 3).sum() == 36  # start 0: a whole square
    assert lit_at(3, 100).sum() == 36
    bottom = lit_at(100, 510.5)  # rows 507..512 cut to 507..511
    assert bottom.sum() == 5 * 6 and bottom[507:512, 97:103].all()
    right = lit_at(511.9, 100)
    assert right.sum() == 6 * 4 and right[97:103, 508:512].all()

    # the reference slicing, as the official draw_points does it, on an empty canvas
    for x, y in [(2.5, 40.0), (40.0, 0.5), (300.0, 300.0), (509.0, 511.0)]:
        expected = np.zeros((512, 512, 3), np.uint8)
        expected[int(y) - 3:int(y) + 3, int(x) - 3:int(x) + 3] = (200, 200, 200)
        np.testing.assert_array_equal(lit_at(x, y), expected.any(-1))
