"""Media I/O: images, audio and MP4 video in and out, with clear errors for bad input."""

from genhuman.media.audio import SAMPLE_RATE, is_silent, load_audio, open_audio, probe_audio, save_wav
from genhuman.media.audio_clip import AudioClip, Samples
from genhuman.media.images import load_image, probe_image, resize_max, save_image
from genhuman.media.video_reader import VideoInfo, iter_video_frames, read_video_info
from genhuman.media.video_writer import VideoWriter

__all__ = [
    "SAMPLE_RATE", "AudioClip", "Samples", "VideoInfo", "VideoWriter", "is_silent", "iter_video_frames",
    "load_audio", "load_image", "open_audio", "probe_audio", "probe_image", "read_video_info", "resize_max",
    "save_image", "save_wav",
]
