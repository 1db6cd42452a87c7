"""Pronunciations for words missing from the CMU dictionary.

Uses the espeak-ng phonemizer that ships inside piper-tts (no extra download) and maps
its IPA output onto ARPAbet so pocketsphinx can align the word.
"""

from __future__ import annotations

import functools
import logging
import threading
import unicodedata

logger = logging.getLogger(__name__)

# Longest matches first: diphthongs and affricates are two IPA symbols.
_IPA_TO_ARPABET = {
    "aʊ": "AW", "aɪ": "AY", "eɪ": "EY", "oʊ": "OW", "ɔɪ": "OY", "tʃ": "CH", "dʒ": "JH",
    "ɑ": "AA", "ɒ": "AA", "æ": "AE", "a": "AE", "ʌ": "AH", "ə": "AH", "ɐ": "AH",
    "ɔ": "AO", "ɛ": "EH", "e": "EH", "ɜ": "ER", "ɚ": "ER", "ɪ": "IH", "ᵻ": "IH",
    "i": "IY", "o": "OW", "ʊ": "UH", "u": "UW",
    "b": "B", "d": "D", "ð": "DH", "f": "F", "ɡ": "G", "g": "G", "h": "HH", "k": "K",
    "l": "L", "ɫ": "L", "m": "M", "n": "N", "ŋ": "NG", "p": "P", "ɹ": "R", "r": "R",
    "s": "S", "ʃ": "SH", "t": "T", "ɾ": "T", "ʔ": "T", "θ": "TH", "v": "V", "w": "W",
    "j": "Y", "z": "Z", "ʒ": "ZH", "x": "K", "ç": "HH",
}
_MAX_KEY = max(len(k) for k in _IPA_TO_ARPABET)

_own_lock = threading.Lock()


def _espeak_lock():
    """espeak-ng keeps process-wide state: every caller must hold one lock, and piper's TTS
    already holds its own around each phonemize, so g2p takes that same lock."""
    try:
        from piper import voice

        return getattr(voice, "_ESPEAK_PHONEMIZER_LOCK", _own_lock)
    except ImportError:
        return _own_lock


@functools.lru_cache(maxsize=1)
def _phonemizer():
    from piper.phonemize_espeak import EspeakPhonemizer

    return EspeakPhonemizer()


def ipa_to_arpabet(ipa: str) -> list[str]:
    """Greedy longest-match transcription; stress, length and unknown marks are dropped."""
    text = unicodedata.normalize("NFD", ipa)
    phones: list[str] = []
    i = 0
    while i < len(text):
        for size in range(_MAX_KEY, 0, -1):
            phone = _IPA_TO_ARPABET.get(text[i : i + size])
            if phone:
                phones.append(phone)
                i += size
                break
        else:
            i += 1
    return phones


def word_to_arpabet(word: str) -> list[str]:
    """ARPAbet phones for any English word (including numbers); [] if espeak gives none."""
    with _espeak_lock():  # a few ms per word
        sentences = _phonemizer().phonemize("en-us", word)
    ipa = "".join("".join(s) for s in sentences)
    phones = ipa_to_arpabet(ipa)
    logger.debug("g2p %r -> %s", word, phones)
    return phones
