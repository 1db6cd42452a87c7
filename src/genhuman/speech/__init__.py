"""Speech analysis for animation: phone timings (pocketsphinx), visemes with
coarticulation, voice activity (silero-vad), acoustic mouth cues, and Piper TTS.

    track = mouth_track(wave_16k, fps=25, text="optional transcript")
    track.opening[k], track.lip_press[k], track.visemes[k] ...
"""

from genhuman.speech.phonemes import Phone, align, recognize
from genhuman.speech.track import MODES, MouthTrack, mouth_track
from genhuman.speech.tts import synthesize, synthesize_to_file
from genhuman.speech.vad import frame_count, voice_activity
from genhuman.speech.visemes import ARPABET, CHANNELS, VISEME_SHAPES, MouthShape, phone_visemes

__all__ = [
    "ARPABET", "CHANNELS", "MODES", "MouthShape", "MouthTrack", "Phone", "VISEME_SHAPES",
    "align", "frame_count", "mouth_track", "phone_visemes", "recognize", "synthesize",
    "synthesize_to_file", "voice_activity",
]
