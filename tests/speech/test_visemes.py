from dataclasses import astuple

import numpy as np
import pytest

from genhuman.speech.visemes import (
    ARPABET, CHANNELS, VISEME_DOMINANCE, VISEME_SHAPES, base_phone, nearest_visemes, phone_dominance,
    phone_visemes, viseme_target,
)

# Independent table of the expected viseme for every CMU phone (first part of diphthongs).
EXPECTED = {
    "AA": "D", "AE": "C", "AH": "C", "AO": "E", "AW": "D", "AY": "D", "B": "A", "CH": "B",
    "D": "B", "DH": "B", "EH": "C", "ER": "E", "EY": "C", "F": "G", "G": "B", "HH": "B",
    "IH": "B", "IY": "B", "JH": "B", "K": "B", "L": "H", "M": "A", "N": "B", "NG": "B",
    "OW": "E", "OY": "E", "P": "A", "R": "E", "S": "B", "SH": "B", "T": "B", "TH": "B",
    "UH": "F", "UW": "F", "V": "G", "W": "F", "Y": "B", "Z": "B", "ZH": "B",
}


def test_arpabet_is_the_39_cmu_phones():
    assert len(ARPABET) == 39 and set(ARPABET) == set(EXPECTED)


@pytest.mark.parametrize("phone", sorted(EXPECTED))
def test_every_phone_maps_to_its_viseme(phone):
    assert phone_visemes(phone)[0] == EXPECTED[phone]
    assert all(v in VISEME_SHAPES for v in phone_visemes(phone))


def test_diphthongs_glide_to_a_second_viseme():
    assert phone_visemes("AW") == ("D", "F")
    assert phone_visemes("AY") == ("D", "B")
    assert phone_visemes("OW") == ("E", "F")


def test_stress_and_silence_and_noise():
    assert base_phone("AH0") == "AH" and phone_visemes("ah1") == ("C",)
    for filler in ("SIL", "+SPN+", "+NSN+", "XYZ"):
        assert phone_visemes(filler) == ("X",)


def test_shapes_are_in_range_and_closed_visemes_are_closed():
    for name, shape in VISEME_SHAPES.items():
        opening, width, roundness, lip_press, teeth, tongue = astuple(shape)
        assert 0 <= opening <= 1 and -1 <= width <= 1 and 0 <= roundness <= 1
        assert 0 <= lip_press <= 1 and 0 <= teeth <= 1 and 0 <= tongue <= 1, name
    assert VISEME_SHAPES["A"].opening == 0 and VISEME_SHAPES["A"].lip_press == 1
    assert VISEME_SHAPES["X"].opening == 0
    assert VISEME_SHAPES["D"].opening == max(s.opening for s in VISEME_SHAPES.values())
    assert VISEME_SHAPES["F"].width < 0 < VISEME_SHAPES["B"].width  # pucker vs spread
    assert set(VISEME_DOMINANCE) == set(VISEME_SHAPES)


def test_bilabials_dominate_their_neighbours():
    assert phone_dominance("M") > max(phone_dominance(p) for p in ("AA", "IY", "UW", "S"))


def test_nearest_visemes_recovers_each_target():
    names = list(VISEME_SHAPES)
    frames = np.stack([viseme_target(n) for n in names])
    assert frames.shape == (len(names), len(CHANNELS))
    assert nearest_visemes(frames) == names
