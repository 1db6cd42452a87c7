"""Hand motion when the user gives no pose: hands at rest, idle sway, beat gestures.

Speakers move their hands on stressed syllables; the loudness envelope's peaks are a good
proxy for those (pitch accents are loud). :func:`generate_pose` therefore:

1. builds a rest pose: the body (the reference's, if detected, else a canonical half-body
   framed like the official demo crops) with both hands resting low in front of it;
2. adds a slow, seeded sway to each hand (two sinusoids, a few thousandths of the frame);
3. finds loudness peaks at least ``min_beat_gap`` s apart and adds one small gesture per
   peak: a smooth lift (raised-cosine, 0.25 s up, 0.45 s down) of one hand or both, in a
   seeded direction, sized by the peak's loudness.

Everything is in crop-normalised coordinates and deterministic for a given seed.
"""

from __future__ import annotations

import numpy as np

from genhuman.errors import InputError
from genhuman.media import SAMPLE_RATE
from genhuman.pose.format import DEFAULT_FPS, FACE_POINTS, PoseSequence

# A neutral half-body in the aligned crop (neck centred, head in the upper third), close to
# the official demo frames. OpenPose-18 order.
CANONICAL_BODY = np.array([
    [0.50, 0.22], [0.50, 0.50], [0.30, 0.51], [0.20, 0.80], [0.37, 0.90], [0.70, 0.51],
    [0.80, 0.80], [0.63, 0.90], [0.37, 1.07], [0.37, 1.40], [0.37, 1.70], [0.63, 1.07],
    [0.63, 1.40], [0.63, 1.70], [0.46, 0.18], [0.54, 0.18], [0.41, 0.21], [0.59, 0.21],
])
CANONICAL_BODY_SCORE = np.array([1.0] * 9 + [0.1, 0.1] + [1.0] + [0.1, 0.1] + [1.0] * 4)
NOSE, NECK, R_SHOULDER, R_ELBOW, R_WRIST, L_SHOULDER, L_ELBOW, L_WRIST = range(8)
HAND_SCORE = 0.95  # typical DWPose confidence for a clearly visible hand
ATTACK_S, RELEASE_S = 0.25, 0.45


def hand_shape(length: float, pointing: float, mirror: bool) -> np.ndarray:
    """A relaxed, slightly curled 21-point hand (wrist first, then thumb to little finger),
    ``length`` wrist-to-middle-tip, pointing at angle ``pointing`` (radians, image axes)."""
    # (spread angle from the pointing direction, segment lengths as fractions of ``length``)
    fingers = [(-0.9, (0.22, 0.17, 0.14, 0.12)), (-0.25, (0.45, 0.2, 0.13, 0.1)),
               (0.0, (0.45, 0.22, 0.15, 0.11)), (0.22, (0.43, 0.2, 0.13, 0.1)),
               (0.45, (0.4, 0.15, 0.1, 0.09))]
    points = [np.zeros(2)]
    sign = -1.0 if mirror else 1.0
    for spread, segments in fingers:
        angle, p = pointing + sign * spread, np.zeros(2)
        for j, seg in enumerate(segments):
            if j:
                angle += sign * 0.18  # each joint curls a little towards the palm
            p = p + seg * length * np.array([np.cos(angle), np.sin(angle)])
            points.append(p)
    return np.stack(points)


def loudness_envelope(wave_16k: np.ndarray, n_frames: int, fps: float) -> np.ndarray:
    """RMS per video frame, normalised to [0, 1] (0 for silence)."""
    hop = SAMPLE_RATE / fps
    env = np.zeros(n_frames)
    for i in range(n_frames):
        chunk = wave_16k[int(i * hop):int((i + 1) * hop)]
        env[i] = float(np.sqrt(np.mean(chunk.astype(np.float64) ** 2))) if len(chunk) else 0.0
    kernel = np.array([0.25, 0.5, 0.25])
    env = np.convolve(env, kernel, mode="same")
    peak = env.max()
    return env / peak if peak > 1e-6 else env


def beat_frames(envelope: np.ndarray, fps: float, min_gap_s: float = 0.5) -> list[int]:
    """Local loudness maxima above the voiced frames' median, greedily at least ``min_gap_s`` apart."""
    voiced = envelope > 0.1
    if not voiced.any():
        return []
    floor = float(np.median(envelope[voiced]))
    candidates = [i for i in range(1, len(envelope) - 1)
                  if envelope[i] >= envelope[i - 1] and envelope[i] > envelope[i + 1] and envelope[i] > floor]
    chosen: list[int] = []
    gap = int(round(min_gap_s * fps))
    for i in sorted(candidates, key=lambda k: -envelope[k]):
        if all(abs(i - c) >= gap for c in chosen):
            chosen.append(i)
    return sorted(chosen)


def _bump(n_frames: int, centre: int, fps: float) -> np.ndarray:
    t = (np.arange(n_frames) - centre) / fps
    up = (t >= -ATTACK_S) & (t <= 0)
    down = (t > 0) & (t <= RELEASE_S)
    out = np.zeros(n_frames)
    out[up] = 0.5 - 0.5 * np.cos(np.pi * (t[up] + ATTACK_S) / ATTACK_S)
    out[down] = 0.5 + 0.5 * np.cos(np.pi * t[down] / RELEASE_S)
    return out


def generate_pose(n_frames: int, fps: float = DEFAULT_FPS, wave_16k: np.ndarray | None = None,
                  seed: int = 0, rest: PoseSequence | None = None, gesture_scale: float = 1.0,
                  min_beat_gap: float = 0.5,
                  draw_params: tuple[int, int, int, int, int, int] = (768, 768, 0, 768, 0, 768)) -> PoseSequence:
    """``n_frames`` of natural hand motion; beat gestures follow ``wave_16k`` when given."""
    if n_frames < 1:
        raise InputError("the pose track must have at least one frame")
    rng = np.random.default_rng(seed)
    body = rest.body[0].copy() if rest is not None else CANONICAL_BODY.copy()
    body_score = rest.body_score[0].copy() if rest is not None else CANONICAL_BODY_SCORE.copy()
    if rest is not None:
        draw_params = rest.draw_params
    shoulder = float(np.linalg.norm(body[R_SHOULDER] - body[L_SHOULDER])) or 0.4
    neck = body[NECK]
    # slot 0 = the person's left hand (image right), slot 1 = right hand (image left)
    rest_wrists = [neck + shoulder * np.array([0.36, 0.95]), neck + shoulder * np.array([-0.36, 0.98])]
    pointing = [np.pi * 0.95, np.pi * 0.05]  # fingers towards the body's centre line
    hand_len = 0.47 * shoulder

    offsets = np.zeros((n_frames, 2, 2))
    t = np.arange(n_frames) / fps
    for h in range(2):
        for axis in range(2):
            for _ in range(2):
                freq, phase = rng.uniform(0.12, 0.4), rng.uniform(0, 2 * np.pi)
                offsets[:, h, axis] += 0.012 * shoulder * np.sin(2 * np.pi * freq * t + phase)
    if wave_16k is not None:
        env = loudness_envelope(np.asarray(wave_16k, dtype=np.float32), n_frames, fps)
        for beat in beat_frames(env, fps, min_beat_gap):
            which = ((0,), (1,), (0, 1))[rng.choice(3, p=[0.4, 0.4, 0.2])]
            size = gesture_scale * shoulder * (0.12 + 0.2 * env[beat])
            bump = _bump(n_frames, beat, fps)
            for h in which:
                direction = np.array([rng.uniform(-0.4, 0.4) * (1 if h == 0 else -1), -1.0])
                offsets[:, h] += bump[:, None] * size * direction / np.linalg.norm(direction)

    hands = np.zeros((n_frames, 2, 21, 2))
    bodies = np.repeat(body[None], n_frames, axis=0)
    for h, (wrist, angle, slot_shoulder, slot_elbow, slot_wrist) in enumerate(
            [(rest_wrists[0], pointing[0], L_SHOULDER, L_ELBOW, L_WRIST),
             (rest_wrists[1], pointing[1], R_SHOULDER, R_ELBOW, R_WRIST)]):
        wrists = wrist + offsets[:, h]
        lift = -offsets[:, h, 1] / shoulder  # a raised hand turns its fingers up a little
        for i in range(n_frames):
            tilt = angle + (-1 if h == 0 else 1) * 0.8 * lift[i]
            hands[i, h] = wrists[i] + hand_shape(hand_len, tilt, mirror=h == 1)
        bodies[:, slot_wrist] = wrists
        # the elbow sits below the shoulder-wrist midpoint, bent outwards
        outward = np.array([1.0 if h == 0 else -1.0, 0.0]) * 0.25 * shoulder
        bodies[:, slot_elbow] = (body[slot_shoulder] + wrists) / 2 + outward
    face_centre = body[NOSE]
    angles = np.linspace(0, 2 * np.pi, FACE_POINTS, endpoint=False)
    face = face_centre + 0.3 * shoulder * np.stack([0.8 * np.cos(angles), np.sin(angles)], axis=1)
    if rest is not None:
        face = rest.face[0]
    return PoseSequence(
        body=bodies, body_score=np.repeat(body_score[None], n_frames, axis=0),
        hands=hands, hands_score=np.full((n_frames, 2, 21), HAND_SCORE),
        face=np.repeat(face[None], n_frames, axis=0),
        face_score=np.repeat((rest.face_score[0] if rest is not None else np.ones(FACE_POINTS))[None],
                             n_frames, axis=0),
        fps=fps, draw_params=draw_params, extra={"generated": True, "seed": seed})
