from genhuman.speech.g2p import ipa_to_arpabet, word_to_arpabet


def test_ipa_longest_match_and_marks_dropped():
    assert ipa_to_arpabet("mˈuːn") == ["M", "UW", "N"]
    assert ipa_to_arpabet("tʃˈaɪld") == ["CH", "AY", "L", "D"]
    assert ipa_to_arpabet("ðə") == ["DH", "AH"]


def test_unknown_words_get_a_pronunciation():
    phones = word_to_arpabet("zorblatt")
    assert phones[0] == "Z" and phones[-4:] == ["B", "L", "AE", "T"]
    assert word_to_arpabet("42")[:3] == ["F", "AO", "R"]  # "forty two"
