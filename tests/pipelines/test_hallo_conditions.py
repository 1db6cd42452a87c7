"""Hallo's conditioning inputs (masks, reference pixels, face region), the square-portrait
crop, the Hallo DDIM scheduler and Hallo2's motion-frame patch drop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler
from PIL import Image

from genhuman.errors import InputError
from genhuman.face import face_landmarks
from genhuman.media import load_image
from genhuman.pipelines import hallo_conditions as hc
from genhuman.sampling.scheduler import HALLO_TRAINING_BETA_SCHEDULE, hallo_scheduler

# hallo/utils/util.py silhouette_ids and lip_ids (mesh indices: data, not code)
OFFICIAL_SILHOUETTE = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
                       152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
OFFICIAL_LIPS = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 146, 91, 181, 84, 17, 314, 405, 321, 375)
LEVEL_SIDES = (64, 32, 16, 8)


@pytest.fixture(scope="module")
def portrait(portrait_path) -> np.ndarray:
    return load_image(portrait_path)


@pytest.fixture(scope="module")
def landmarks(portrait) -> np.ndarray:
    return face_landmarks(portrait).landmarks


@pytest.fixture(scope="module")
def conditions(portrait, landmarks) -> hc.HalloConditions:
    return hc.hallo_conditions(portrait, landmarks)


def interpolate_uint8(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Independent resize: torch's antialiased bilinear, rounded half up after each axis as PIL does."""
    x = torch.tensor(array, dtype=torch.float64)[None, None]
    for size in ((x.shape[2], width), (height, width)):
        x = torch.floor(F.interpolate(x, size=size, mode="bilinear", antialias=True) + 0.5).clamp(0, 255)
    return x[0, 0].to(torch.uint8).numpy()


def box_landmarks(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """478 points whose silhouette and lip points both span the box (corners included)."""
    points = np.full((478, 2), ((x0 + x1) / 2, (y0 + y1) / 2), np.float32)
    for ids in (hc.SILHOUETTE, hc.LIP_BOX_POINTS):
        points[ids[0]], points[ids[1]] = (x0, y0), (x1, y1)
    return points


# ---------------------------------------------------------------------------------- ids
def test_landmark_ids_are_the_official_ones():
    assert hc.SILHOUETTE == OFFICIAL_SILHOUETTE
    assert len(hc.LIP_BOX_POINTS) == 20 and set(hc.LIP_BOX_POINTS) == set(OFFICIAL_LIPS)


# ---------------------------------------------------------------------------------- masks
def test_shapes_and_ranges_at_every_level(conditions):
    for masks in (conditions.full_masks, conditions.face_masks, conditions.lip_masks):
        assert [tuple(m.shape) for m in masks] == [(1, side * side) for side in LEVEL_SIDES]
        for mask in masks:
            assert mask.dtype == torch.float32 and 0 <= mask.min() and mask.max() <= 1
            assert torch.equal(mask * 255, torch.round(mask * 255))  # ToTensor of uint8 images
    assert conditions.pixels.shape == (3, 512, 512)
    assert -1 <= conditions.pixels.min() < 0 < conditions.pixels.max() <= 1


def test_face_region_is_the_hard_box_on_every_channel_and_frame(conditions):
    x0, y0, x1, y1 = conditions.masks.face_box
    region = conditions.face_region
    assert region.shape == (3, 512, 512) and set(region.unique().tolist()) == {0.0, 1.0}  # 512 in: no resize
    assert region[:, y0:y1, x0:x1].min() == 1 and region.sum() == 3 * (x1 - x0) * (y1 - y0)
    clip = conditions.face_locator_input(16)
    assert clip.shape == (1, 3, 16, 512, 512)
    assert all(torch.equal(clip[0, :, f], region) for f in (0, 15))


def test_boxes_face_inside_image_lip_inside_face(conditions, landmarks):
    face, lip = conditions.masks.face_box, conditions.masks.lip_box
    assert 0 <= face[0] < face[2] <= 512 and 0 <= face[1] < face[3] <= 512
    assert face[0] <= lip[0] < lip[2] <= face[2] and face[1] <= lip[1] < lip[3] <= face[3]
    for box, ids, ratio in ((face, hc.SILHOUETTE, 1.2), (lip, hc.LIP_BOX_POINTS, 2.0)):
        points = landmarks[list(ids)]
        extent = points.max(axis=0) - points.min(axis=0)
        centre = (points.max(axis=0) + points.min(axis=0)) / 2
        size = np.array([box[2] - box[0], box[3] - box[1]])
        assert np.all(np.abs(size - ratio * extent) <= 3)  # rounded, then floored halves
        assert np.all(np.abs((np.array(box[:2]) + np.array(box[2:])) / 2 - centre) <= 1.5)
    assert (conditions.masks.face > 0).sum() == (face[2] - face[0]) * (face[3] - face[1])


def test_full_mask_is_one_minus_face_blur(conditions):
    masks = conditions.masks
    gap = (255 - masks.face_blur.astype(int)) - masks.background
    assert set(np.unique(gap)) == {0, 1}  # the official float round trip truncates, here and there
    assert np.array_equal(masks.background, ((1.0 - masks.face_blur / 255.0) * 255).astype(np.uint8))
    full = conditions.full_masks[0].reshape(64, 64)
    assert torch.allclose(full, 1 - torch.tensor(masks.face_blur / 255.0, dtype=torch.float32), atol=1 / 255 + 1e-6)


def test_blurred_masks_are_min_max_normalised(conditions):
    masks = conditions.masks
    for blurred in (masks.face_blur, masks.lip):
        assert blurred.shape == (64, 64) and blurred.dtype == np.uint8
        assert blurred.min() == 0 and blurred.max() == 255
    assert np.all(masks.face_only == np.clip(masks.face_blur.astype(int) - masks.lip, 0, 255))
    assert not np.any((masks.lip > 0) & (masks.face_blur == 0))  # the lip lies inside the face


def test_soft_masks_sum_to_one_where_lip_is_under_face(conditions):
    masks = conditions.masks
    total = masks.background.astype(int) + masks.face_only + masks.lip
    under = masks.lip <= masks.face_blur
    assert under.mean() > 0.9 and set(np.unique(total[under])) == {254, 255}
    overshoot = masks.lip.astype(int) - masks.face_blur
    assert np.array_equal(total[~under] - overshoot[~under], (masks.background + masks.face_blur)[~under])
    # each level is the 64x64 sum resized, up to the three masks' roundings (at most 1 each)
    for level, side in enumerate(LEVEL_SIDES):
        summed = sum(m[level] for m in (conditions.full_masks, conditions.face_masks, conditions.lip_masks))
        expected = F.interpolate(torch.tensor(total, dtype=torch.float64)[None, None], size=(side, side),
                                 mode="bilinear", antialias=True).reshape(1, -1)
        assert torch.all((summed.double() * 255 - expected).abs() <= 3 + 1e-3)


def test_expand_region_keeps_size_and_shifts_inside_at_the_edges():
    # near the left: x span 2..42 grows to 48 wide around 22 -> (-2, 46) -> shifted to (0, 48)
    assert hc.expand_region((2, 100, 42, 200), 300, 300, 1.2) == (0, 90, 48, 210)
    # bottom-right corner: both axes shifted back, width and height kept
    assert hc.expand_region((260, 150, 298, 198), 300, 200, 1.2) == (256, 144, 300, 200)
    # odd sums floor the centre and the half side
    assert hc.expand_region((3, 3, 8, 8), 100, 100, 1.5) == (2, 2, 8, 8)
    masks = hc.hallo_masks(box_landmarks(2, 100, 42, 200), 300, 200)
    assert masks.face_box == (0, 90 - 10, 48, 200)  # and 210 > 200: shifted up by 10
    assert masks.face[80:, :48].min() == 255 and masks.face[:80].max() == masks.face[:, 48:].max() == 0


def test_a_box_wider_than_the_image_covers_it_all():
    # official: the start goes negative after both shifts and the slice wraps to a stripe
    masks = hc.hallo_masks(box_landmarks(2, 3, 98, 107), 100, 110)
    assert masks.face_box[0] < 0 and masks.face_box[1] < 0
    assert masks.face.min() == 255


# ---------------------------------------------------------------------------------- resize
def test_resize_is_pils_bilinear_and_matches_antialiased_interpolate():
    rng = np.random.default_rng(0)
    grid = rng.integers(0, 256, (64, 64), np.uint8)
    for side in (32, 16, 8):  # the mask levels: exact
        assert np.array_equal(hc.pil_resize(grid, side, side), interpolate_uint8(grid, side, side))
    odd = rng.integers(0, 256, (100, 77), np.uint8)  # other factors: PIL's fixed point breaks ties
    ours = hc.pil_resize(odd, 40, 31)
    assert ours.shape == (40, 31)  # (height, width), as torchvision's Resize((h, w))
    assert np.abs(ours.astype(int) - interpolate_uint8(odd, 40, 31)).max() <= 1
    assert np.array_equal(ours, np.asarray(Image.fromarray(odd).resize((31, 40), Image.Resampling.BILINEAR)))
    assert hc.pil_resize(grid, 64, 64) is grid


def test_other_generation_sizes(portrait, landmarks):
    small = hc.hallo_conditions(portrait, landmarks, size=256)
    assert [m.shape[1] for m in small.lip_masks] == [32 * 32, 16 * 16, 8 * 8, 4 * 4]
    assert small.pixels.shape == small.face_region.shape == (3, 256, 256)
    assert 0 < small.face_region.sum() / 3 < 256 * 256
    with pytest.raises(InputError, match="multiple of 64"):
        hc.hallo_conditions(portrait, landmarks, size=500)


# ---------------------------------------------------------------------------------- square input
def test_a_square_portrait_is_used_whole(portrait, landmarks):
    square = hc.square_portrait(portrait, landmarks)
    assert not square.cropped and square.image is portrait
    frame = np.zeros((512, 512, 3), np.uint8)
    assert square.paste(portrait, frame) is frame


def test_a_tall_portrait_is_cut_to_a_square_around_the_face_and_pasted_back(portrait, landmarks):
    tall = np.concatenate([portrait, portrait[::-1]], axis=0)[:800]  # 800 x 512, face in the top half
    square = hc.square_portrait(tall, landmarks)
    x0, y0, x1, y1 = hc.face_square_box(landmarks, 512, 800)
    side = x1 - x0
    assert square.cropped and y1 - y0 == side and square.image.shape == (side, side, 3)
    assert np.array_equal(square.image, tall[y0:y1, x0:x1])  # cut at its own resolution
    face = landmarks[list(hc.SILHOUETTE)]
    assert side == round(np.ptp(face, axis=0).max() / hc.FACE_FRACTION)
    assert np.allclose(square.landmarks, landmarks - [x0, y0], atol=1e-4)
    back = square.paste(tall, hc.pil_resize(square.image, 512, 512))
    outside = np.ones(tall.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(back[outside], tall[outside])
    assert np.abs(back.astype(int) - tall).mean() < 2  # the resized round trip, feathered in
    dark = square.paste(tall, np.zeros((512, 512, 3), np.uint8))
    centre = ((y0 + y1) // 2, (x0 + x1) // 2)
    assert dark[centre].max() == 0 and np.array_equal(dark[outside], tall[outside])


def test_face_square_box_stays_inside_the_image():
    points = box_landmarks(0, 0, 90, 120)
    assert hc.face_square_box(points, 400, 150) == (0, 0, 150, 150)  # capped at the short side
    assert hc.face_square_box(box_landmarks(380, 10, 400, 40), 400, 300) == (350, 0, 400, 50)


# ---------------------------------------------------------------------------------- scheduler
def test_hallo_scheduler_is_trailing_zero_snr_v_prediction():
    scheduler = hallo_scheduler()
    config = scheduler.config
    assert (config.beta_start, config.beta_end, config.beta_schedule) == (0.00085, 0.012, "linear")
    assert (config.prediction_type, config.timestep_spacing, config.steps_offset) == ("v_prediction", "trailing", 1)
    assert config.rescale_betas_zero_snr and not config.clip_sample
    scheduler.set_timesteps(40)
    assert scheduler.timesteps.tolist() == list(range(999, 0, -25))
    assert scheduler.alphas_cumprod[999] == 0
    # independent: linear betas, then sqrt(alpha_bar) shifted to 0 at the end and rescaled
    root = torch.cumprod(1 - torch.linspace(0.00085, 0.012, 1000, dtype=torch.float64), 0).sqrt()
    root = (root - root[-1]) * root[0] / (root[0] - root[-1])
    assert torch.allclose(scheduler.alphas_cumprod.double(), root**2, atol=1e-6)


def test_hallo_scheduler_is_the_official_construction():
    # configs/inference/default.yaml noise_scheduler_kwargs, updated for enable_zero_snr
    official = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="linear", clip_sample=False,
                             steps_offset=1, prediction_type="v_prediction", rescale_betas_zero_snr=True,
                             timestep_spacing="trailing")
    ours = hallo_scheduler()
    assert {k: v for k, v in official.config.items() if not k.startswith("_")} == \
        {k: v for k, v in ours.config.items() if not k.startswith("_")}
    assert torch.equal(official.alphas_cumprod, ours.alphas_cumprod)


def test_hallo_scheduler_step_predicts_v():
    scheduler = hallo_scheduler()
    scheduler.set_timesteps(40)
    sample, v = torch.randn(2, 1, 4, 4, 4, generator=torch.Generator().manual_seed(0))
    out = scheduler.step(v, 999, sample)
    assert torch.allclose(out.pred_original_sample, -v)  # alpha_bar = 0: x0 = -v, noise = sample
    a = scheduler.alphas_cumprod[974]
    assert torch.allclose(out.prev_sample, a.sqrt() * -v + (1 - a).sqrt() * sample, atol=1e-6)


def test_training_beta_schedule_differs_from_inference():
    trained = hallo_scheduler(beta_schedule=HALLO_TRAINING_BETA_SCHEDULE)
    assert trained.config.beta_schedule == "scaled_linear" and trained.alphas_cumprod[999] == 0
    assert (trained.alphas_cumprod - hallo_scheduler().alphas_cumprod).abs().max() > 0.01


# ---------------------------------------------------------------------------------- patch drop
def face_square(size: int = 512) -> torch.Tensor:
    region = torch.zeros(3, size, size)
    region[:, 100:300, 150:350] = 1
    return region


def test_patch_drop_rate_and_face_kept():
    region = face_square()
    keep = hc.patch_drop_keep(region, torch.Generator().manual_seed(3))
    assert keep.shape == (512, 512) and keep.dtype == torch.bool
    assert keep[100:300, 150:350].all()
    outside = ~region[0].bool()
    assert abs((~keep[outside]).float().mean().item() - 0.25) < 0.005
    assert abs((~hc.patch_drop_keep(region, torch.Generator().manual_seed(3), rate=0.5)[outside]).float().mean()
               - 0.5) < 0.005


def test_patch_drop_is_seeded_and_draws_the_official_stream():
    region = face_square()
    first = hc.patch_drop_keep(region, torch.Generator().manual_seed(42))
    assert torch.equal(first, hc.patch_drop_keep(region, torch.Generator().manual_seed(42)))
    assert not torch.equal(first, hc.patch_drop_keep(region, torch.Generator().manual_seed(43)))
    # the official draws torch.rand(h, w) from torch.manual_seed(42)'s generator, then the latents
    generator = torch.Generator().manual_seed(42)
    official = torch.Generator().manual_seed(42)
    expected = (torch.rand(512, 512, generator=official) > 0.25) | region[0].bool()
    assert torch.equal(hc.patch_drop_keep(region, generator), expected)
    assert torch.equal(torch.randn(4, generator=generator), torch.randn(4, generator=official))


def test_drop_patches_zeroes_the_same_pixels_in_every_motion_frame_and_channel():
    region = face_square(64)
    motion = torch.rand(1, 2, 3, 64, 64) * 2 - 1
    dropped = hc.drop_patches(motion, region, torch.Generator().manual_seed(0))
    keep = hc.patch_drop_keep(region, torch.Generator().manual_seed(0))
    assert dropped.shape == motion.shape
    assert torch.equal(dropped[..., keep], motion[..., keep]) and dropped[..., ~keep].abs().max() == 0
    assert (~keep).any()
