"""ARPAbet phones -> Rhubarb-like visemes -> target mouth shapes.

Viseme letters follow Rhubarb Lip Sync's convention so animators recognise them:
A closed (M B P), B slightly open (most consonants, EE), C open (EH AE), D wide open (AA),
E rounded (AO ER), F puckered (UW OW W), G teeth on lip (F V), H tongue (L), X rest.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass

import numpy as np

SILENCE = "SIL"

# The 39 phones of the CMU dictionary (stress digits stripped).
ARPABET = (
    "AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH "
    "UH UW V W Y Z ZH"
).split()


@dataclass(frozen=True)
class MouthShape:
    """Target pose of the lips; every value is relative to the neutral face."""

    opening: float  # jaw/lip aperture, 0 closed .. 1 widest
    width: float  # -1 puckered .. 0 neutral .. 1 spread
    roundness: float  # 0 flat .. 1 fully rounded lips
    lip_press: float  # 0 relaxed .. 1 lips pressed together
    teeth: float  # 0 hidden .. 1 clearly visible
    tongue: float  # 0 hidden .. 1 tongue tip visible behind the teeth


# Order of the per-frame channels everywhere in this package.
CHANNELS = ("opening", "width", "roundness", "lip_press", "teeth", "tongue")

REST_LIP_PRESS = 0.15

VISEME_SHAPES: dict[str, MouthShape] = {
    "X": MouthShape(0.0, 0.0, 0.0, REST_LIP_PRESS, 0.0, 0.0),
    "A": MouthShape(0.0, 0.0, 0.0, 1.0, 0.0, 0.0),
    "B": MouthShape(0.22, 0.35, 0.0, 0.0, 0.8, 0.0),
    "C": MouthShape(0.55, 0.3, 0.1, 0.0, 0.5, 0.0),
    "D": MouthShape(0.95, 0.1, 0.1, 0.0, 0.3, 0.0),
    "E": MouthShape(0.5, -0.4, 0.6, 0.0, 0.2, 0.0),
    "F": MouthShape(0.2, -0.9, 1.0, 0.0, 0.0, 0.0),
    "G": MouthShape(0.1, 0.1, 0.0, 0.3, 1.0, 0.0),
    "H": MouthShape(0.35, 0.1, 0.0, 0.0, 0.5, 1.0),
}

# How strongly a viseme holds its target against its neighbours (coarticulation
# dominance): lip closures and labiodentals must be reached, while most lingual
# consonants let the lips take the shape of the surrounding vowels.
VISEME_DOMINANCE: dict[str, float] = {
    "X": 2.0, "A": 5.0, "B": 0.5, "C": 1.0, "D": 1.0, "E": 1.0, "F": 1.5, "G": 2.5, "H": 0.6,
}

# Diphthongs glide between two visemes; the first part takes 60% of the phone.
_PHONE_VISEMES: dict[str, tuple[str, ...]] = {
    "M": ("A",), "B": ("A",), "P": ("A",),
    "F": ("G",), "V": ("G",),
    "L": ("H",),
    "AA": ("D",),
    "AE": ("C",), "AH": ("C",), "EH": ("C",),
    "AO": ("E",), "ER": ("E",), "R": ("E",),
    "UW": ("F",), "UH": ("F",), "OW": ("E", "F"), "W": ("F",),
    "AW": ("D", "F"), "AY": ("D", "B"), "EY": ("C", "B"), "OY": ("E", "B"),
    "IY": ("B",), "IH": ("B",), "Y": ("B",), "HH": ("B",),
    "CH": ("B",), "JH": ("B",), "SH": ("B",), "ZH": ("B",),
    "D": ("B",), "T": ("B",), "N": ("B",), "NG": ("B",), "K": ("B",), "G": ("B",),
    "S": ("B",), "Z": ("B",), "TH": ("B",), "DH": ("B",),
}
FIRST_PART_SHARE = 0.6

# HH is breath before a vowel: the lips are already in the vowel's shape.
_PHONE_DOMINANCE_OVERRIDE = {"HH": 0.15}

BILABIALS = frozenset({"M", "B", "P"})


def base_phone(phone: str) -> str:
    """Strip stress digits and pronunciation-variant suffixes: 'AH0' -> 'AH'."""
    return phone.rstrip("012").upper()


def phone_visemes(phone: str) -> tuple[str, ...]:
    """Viseme letters for one phone; silence, noise and unknown phones rest (X)."""
    return _PHONE_VISEMES.get(base_phone(phone), ("X",))


def phone_dominance(phone: str) -> float:
    p = base_phone(phone)
    return _PHONE_DOMINANCE_OVERRIDE.get(p, VISEME_DOMINANCE[phone_visemes(p)[0]])


_TARGETS = {v: np.asarray(astuple(shape), dtype=np.float32) for v, shape in VISEME_SHAPES.items()}
# Opening matters most when naming a frame's viseme; teeth/tongue are only hints.
_LABEL_WEIGHTS = np.asarray([3.0, 1.0, 1.0, 1.0, 0.5, 0.5], dtype=np.float32)


def viseme_target(viseme: str) -> np.ndarray:
    """The viseme's shape as a float32 vector in :data:`CHANNELS` order (do not modify)."""
    return _TARGETS[viseme]


def nearest_visemes(frames: np.ndarray) -> list[str]:
    """Nearest viseme letter for each row of an (n, len(CHANNELS)) array."""
    names = list(_TARGETS)
    targets = np.stack([_TARGETS[v] for v in names])
    dist = (((frames[:, None, :] - targets[None, :, :]) ** 2) * _LABEL_WEIGHTS).sum(axis=2)
    return [names[i] for i in np.argmin(dist, axis=1)]
