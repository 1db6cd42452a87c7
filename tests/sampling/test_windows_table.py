"""Context windows checked against hand-written expectations for the official schedule:
12-frame windows every 9 frames (overlap 3), closed loop (indices mod L), the whole list
shifted by step * shift at each denoising step (shift 2: V1 audio; 3: V1 pose and V2)."""

import pytest

from genhuman.sampling import WindowSchedule


def _r(start: int, stop: int) -> list[int]:
    return list(range(start, stop))


@pytest.mark.parametrize("length, step, shift, expected", [
    (1, 0, 2, [[0]]),
    (1, 6, 3, [[0]]),
    (5, 0, 2, [[0, 1, 2, 3, 4]]),
    (5, 3, 2, [[1, 2, 3, 4, 0]]),  # offset 6 = 1 mod 5
    (5, 4, 3, [[2, 3, 4, 0, 1]]),  # offset 12 = 2 mod 5
    (12, 0, 3, [_r(0, 12)]),
    (12, 1, 2, [_r(2, 12) + [0, 1]]),
    (13, 0, 2, [_r(0, 12), _r(9, 13) + _r(0, 8)]),
    (13, 2, 3, [_r(6, 13) + _r(0, 5), _r(2, 13) + [0]]),
    (21, 1, 3, [_r(3, 15), _r(12, 21) + [0, 1, 2], _r(0, 12)]),
    (24, 0, 2, [_r(0, 12), _r(9, 21), _r(18, 24) + _r(0, 6)]),
    (24, 5, 2, [_r(10, 22), _r(19, 24) + _r(0, 7), _r(4, 16)]),
])
def test_windows_hand_written(length, step, shift, expected):
    assert WindowSchedule(12, 3, shift).windows(length, step) == expected


@pytest.mark.parametrize("length, step, shift, count, first, last", [
    (48, 5, 3, 6, _r(15, 27), _r(12, 24)),  # last start 45: 45 + 15 = 60 = 12 mod 48
    (100, 6, 3, 12, _r(18, 30), _r(17, 29)),  # last start 99: 99 + 18 = 117 = 17 mod 100
    (100, 6, 2, 12, _r(12, 24), _r(11, 23)),
    (241, 6, 2, 27, _r(12, 24), _r(5, 17)),  # starts 0, 9, .., 234; 234 + 12 = 246 = 5 mod 241
    (241, 0, 3, 27, _r(0, 12), _r(234, 241) + _r(0, 5)),
])
def test_windows_long_clips(length, step, shift, count, first, last):
    windows = WindowSchedule(12, 3, shift).windows(length, step)
    assert len(windows) == count
    assert windows[0] == first and windows[-1] == last
    assert all(len(w) == 12 and len(set(w)) == 12 for w in windows)
