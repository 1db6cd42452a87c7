"""The ``hallo`` and ``hallo2`` engines: Hallo / Hallo2 on the official weights, through
:class:`genhuman.pipelines.HalloPipeline`, streaming clip by clip into the MP4.

Weights: the official ``pretrained_models/`` folder (or a clone holding it, or a converted
folder), read by :func:`genhuman.checkpoints.load_hallo`: ``hallo/net.pth`` (``hallo2/net.pth``
for hallo2: the same network), the VAE, wav2vec2, and insightface's antelopev2 detector and
ArcFace files, run with onnxruntime (:class:`genhuman.face.arcface.FaceEmbedder`).

What is fixed by the model, and said so when asked otherwise: 25 fps (its audio features are
25 per second) and square frames whose side is a multiple of 64 (the audio modules' 1x1
convolutions run on a square token grid; 512 by default, as the official). A portrait that is
not square is cut to a square around the face (:func:`~genhuman.pipelines.hallo_conditions.square_portrait`)
and every generated frame pasted back into it; a square one is used whole (the official).

The avatar: the square picture, its MediaPipe landmarks (the official masks and face-locator
input are made from them), the raw ArcFace embedding and, when it was cut, the portrait and
the cut. The reference latents are not stored: Hallo re-encodes the reference with the two
motion frames every clip (official), so nothing of them is reusable across clips.

Generation, per request: the audio is gathered into a temporary file (flat memory),
vocal-separated when the folder has ``audio_separator/Kim_Vocal_2.onnx`` and the
``audio-separator`` package is installed (one log line says when it is skipped), turned into
wav2vec2 features 60 s segment by segment (:func:`~genhuman.audio_features.wav2vec.segment_features`)
and 5-frame windows clip by clip; the pipeline's generator denoises, decodes and hands out one
16-frame clip at a time, and :func:`~genhuman.engines.output.write_video` writes each clip's
frames before the next clip starts. The video is trimmed to the audio length. Peak memory is one
segment of features plus one clip, whatever the length of the audio.

hallo2 = hallo + Hallo2's patch drop (rate 0.25 of the motion frames' pixels, the face box
kept) + the official 60 s cuts with the wav2vec2 context reset at each (``--context-seconds``
keeps that much context across them). Hallo's official code encodes the whole audio at once;
GenHuman does the same up to 60 s, and past that cuts it like Hallo2 with 10 s of context
(a whole hour at once would need memory quadratic in its length).
"""

from __future__ import annotations

import logging
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import torch

from genhuman.engines.avatar import Avatar, weights_fingerprint
from genhuman.engines.base import AudioChunks, Frame, ImageInput
from genhuman.engines.diffusion import DiffusionEngine, Loaded, check_speech
from genhuman.errors import InputError
from genhuman.face.arcface import FaceEmbedder
from genhuman.media import SAMPLE_RATE, AudioClip, Samples
from genhuman.pipelines.hallo import CLIP_LENGTH, GUIDANCE_SCALE, OFFICIAL_SEED, HalloPipeline, HalloPortrait
from genhuman.pipelines.hallo_conditions import (FACE_EXPAND, MOTION_DROP_RATE, SquarePortrait, check_generation_size,
                                                 hallo_conditions, square_portrait)
from genhuman.progress import CancelFn, ProgressFn, check_cancel
from genhuman.request import AnimateRequest, warn_unused
from genhuman.sampling.scheduler import HALLO_INFERENCE_STEPS

log = logging.getLogger(__name__)

FPS = 25  # fixed by the model: wav2vec2 features at 25 Hz, one per frame
DEFAULT_SIZE = 512  # configs/inference/default.yaml
SEGMENT_SECONDS = 60.0  # Hallo2's cut_audio
LONG_AUDIO_CONTEXT = 10.0  # hallo past one segment: context kept across the cuts (see the module notes)
TUNING = frozenset({"decode_batch", "max_frames", "face_expand"})


@dataclass
class HalloLoaded(Loaded):
    """The pipeline (``variant`` is the :class:`~genhuman.checkpoints.layout.HalloFamily`,
    ``audio_encoder`` wav2vec2), the face embedder and the optional vocal separator."""

    face: Optional[FaceEmbedder] = None
    vocal_separator: Optional[Path] = None

    @property
    def pipeline_hallo(self) -> HalloPipeline:
        assert isinstance(self.pipeline, HalloPipeline)
        return self.pipeline


class HalloEngine(DiffusionEngine):
    name = "hallo"
    family = "hallo"
    weights_description = "the official Hallo pretrained_models/ folder or a converted one"
    patch_drop: Optional[float] = None  # Hallo2: MOTION_DROP_RATE
    tuning = TUNING

    # ------------------------------------------------------------------ weights
    def load(self, request: AnimateRequest) -> HalloLoaded:
        """The networks, loaded on the first request and kept."""
        if self._loaded is not None:
            loaded = self._loaded[1]
            assert isinstance(loaded, HalloLoaded)
            return loaded
        from genhuman.checkpoints import load_hallo

        assert self.weights is not None
        components = load_hallo(self.weights, self.family, dtype=self.dtype)
        pipeline = HalloPipeline(components.vae, components.net, device=self.device, dtype=self.dtype,
                                 compile=self.options.compile)
        wav2vec = components.wav2vec.to(self.device).eval().requires_grad_(False)
        providers = (("CUDAExecutionProvider",) if self.device.type == "cuda" else ()) + ("CPUExecutionProvider",)
        loaded = HalloLoaded(components.family, pipeline, wav2vec, weights_fingerprint(components.net),
                             face=FaceEmbedder(components.face_detector, components.face_recognizer, providers),
                             vocal_separator=components.vocal_separator)
        log.info("loaded %s (%s layout) on %s/%s", components.family.name, components.layout, self.device, self.dtype)
        self._loaded = (None, loaded)
        return loaded

    # ------------------------------------------------------------------ validation
    def validate(self, request: AnimateRequest) -> AnimateRequest:
        """The request with Hallo's official defaults (25 fps, seed 42, 40 steps, CFG 3.5, 512x512);
        InputError for what the model cannot do."""
        warn_unused(request, self.name)
        unknown = sorted(set(request.extra) - self.tuning)
        if unknown:
            raise InputError(f"unknown {self.name} options: {', '.join(unknown)}")
        if request.fps is not None and request.fps != FPS:
            raise InputError(f"Hallo generates {FPS} fps video: the frame rate is fixed by the model (its audio "
                             f"features are {FPS} per second); got --fps {request.fps}")
        if request.width and request.height and request.width != request.height:
            raise InputError(f"Hallo generates square frames (its audio attention needs a square grid); got "
                             f"--width {request.width} and --height {request.height}")
        size = request.width or request.height or DEFAULT_SIZE
        check_generation_size(size)
        self.load(request)  # a bad weights folder fails here, before any audio is read
        return request.replace(
            fps=FPS, seed=OFFICIAL_SEED if request.seed is None else request.seed,
            steps=request.steps or HALLO_INFERENCE_STEPS,
            cfg=GUIDANCE_SCALE if request.cfg is None else request.cfg,
            width=size, height=size, resolved_by=self.name)

    # ------------------------------------------------------------------ avatars
    def prepare_avatar(self, image: ImageInput, face_index: int = 0, max_size: Optional[int] = None,
                       request: Optional[AnimateRequest] = None) -> Avatar:
        """The square picture Hallo sees (the portrait, or a square cut around its face), its
        landmarks, the ArcFace embedding and, when cut, what the frames are pasted back into."""
        from genhuman.face import face_landmarks
        from genhuman.media import load_image, resize_max

        validated = self.validate(request or AnimateRequest(face_index=face_index, max_size=max_size))
        loaded = self.load(validated)
        portrait = resize_max(load_image(image), max_size if max_size is not None else validated.max_size)
        face = face_landmarks(portrait, face_index, name="the portrait")
        square = square_portrait(portrait, face.landmarks)
        if square.transform is not None:
            log.info("Hallo generates square frames: the %dx%d portrait is cut to a %d px square around the face "
                     "and each frame pasted back", portrait.shape[1], portrait.shape[0], square.image.shape[0])
        assert loaded.face is not None
        embedding, _ = loaded.face.embed(square.image)  # zeros when SCRFD finds no face (official), logged
        arrays: dict[str, np.ndarray] = {"image": square.image, "landmarks": square.landmarks,
                                         "face_embedding": embedding}
        if square.transform is not None:
            arrays.update(portrait=portrait, crop_matrix=square.transform.matrix)
        size = int(validated.width or DEFAULT_SIZE)
        meta = {"width": size, "height": size, "cropped": square.transform is not None,
                "face_expand": float(validated.extra.get("face_expand", FACE_EXPAND))}
        avatar = Avatar(self.name, loaded.weights_id, arrays, meta)
        avatar.cache["portrait"] = self._portrait(avatar, loaded)
        return avatar

    def _portrait(self, avatar: Avatar, loaded: HalloLoaded) -> HalloPortrait:
        """The pipeline's per-avatar tensors (masks, face-locator features, image tokens)."""
        portrait = avatar.cache.get("portrait")
        if portrait is None:
            conditions = hallo_conditions(avatar.arrays["image"], avatar.arrays["landmarks"],
                                          int(avatar.meta["width"]), float(avatar.meta["face_expand"]))
            embedding = torch.from_numpy(np.asarray(avatar.arrays["face_embedding"], np.float32))
            portrait = avatar.cache["portrait"] = loaded.pipeline_hallo.portrait_from_conditions(conditions, embedding)
        return portrait

    def _paste(self, avatar: Avatar):
        """frame -> output frame: the frame pasted into the portrait when it was cut, else itself."""
        if not avatar.meta.get("cropped"):
            return lambda frame: frame
        from genhuman.face.crop import CropTransform

        portrait = avatar.arrays["portrait"]
        transform = CropTransform(np.asarray(avatar.arrays["crop_matrix"], np.float64), avatar.arrays["image"].shape[0],
                                  (portrait.shape[1], portrait.shape[0]))
        square = SquarePortrait(avatar.arrays["image"], avatar.arrays["landmarks"], transform)
        return lambda frame: square.paste(portrait, frame)

    # ------------------------------------------------------------------ generation
    def context_seconds(self, request: AnimateRequest, num_samples: int) -> Optional[float]:
        """wav2vec2 context across the 60 s cuts (None: the official reset)."""
        if request.context_seconds is not None or num_samples <= SEGMENT_SECONDS * SAMPLE_RATE:
            return request.context_seconds
        log.info("the audio is longer than %.0f s: wav2vec2 runs on %.0f s segments with %.0f s of context "
                 "(the official Hallo encodes it all at once)", SEGMENT_SECONDS, SEGMENT_SECONDS, LONG_AUDIO_CONTEXT)
        return LONG_AUDIO_CONTEXT

    def stream(self, avatar: Avatar, audio_chunks: AudioChunks, request: AnimateRequest,
               progress: Optional[ProgressFn] = None, should_cancel: Optional[CancelFn] = None,
               ) -> Iterator[Frame]:
        """All audio is read (into a temporary file), then clip after clip is generated; each
        clip's frames come out as soon as it is decoded, before the next clip starts."""
        from genhuman.audio_features.wav2vec import clip_windows, long_audio_length, segment_features

        validated = self.validate(request)
        loaded = self.load(validated)
        avatar.check(self.name, loaded.weights_id)
        if avatar.meta.get("width") != validated.width:
            raise InputError(f"this avatar was prepared for {avatar.meta.get('width')} px frames, not "
                             f"{validated.width}; prepare it again at that size")
        portrait, paste = self._portrait(avatar, loaded), self._paste(avatar)
        with _gathered(audio_chunks, should_cancel) as clip, self._vocals(clip, loaded) as wave:
            context = self.context_seconds(validated, len(wave))
            num_frames = long_audio_length(len(wave), SEGMENT_SECONDS, context)
            max_frames = validated.extra.get("max_frames")
            if max_frames:
                num_frames = min(num_frames, int(max_frames))
            segments = segment_features(loaded.audio_encoder, wave, CLIP_LENGTH, SEGMENT_SECONDS, context)
            clips = loaded.pipeline_hallo.clips(
                portrait, clip_windows(segments, CLIP_LENGTH), num_frames=num_frames, steps=validated.steps,
                guidance_scale=validated.cfg,
                motion_scale=(validated.pose_weight, validated.face_weight, validated.lip_weight),
                seed=validated.seed, patch_drop=self.patch_drop, bank_dtype=torch.float16,
                decode_batch=int(validated.extra.get("decode_batch", 8)), progress=progress,
                should_cancel=should_cancel)
            for generated in clips:
                for offset, frame in enumerate(generated.frames):
                    yield Frame(generated.start + offset, paste(frame), float(FPS))

    @contextmanager
    def _vocals(self, clip: AudioClip, loaded: HalloLoaded) -> Iterator[Samples]:
        """The speech wav2vec2 hears: the separated vocals when the folder and the package allow
        it (the official always separates), else the audio itself. The video keeps the original."""
        from genhuman.audio_features.vocals import separate_vocals, skip_reason
        from genhuman.media import open_audio, save_wav

        reason = skip_reason(loaded.vocal_separator)
        if reason is not None:
            log.info("vocal separation skipped: %s; the audio is used as it is", reason)
            yield clip
            return
        with tempfile.TemporaryDirectory(prefix="genhuman-vocals-") as work:
            source = Path(work) / "speech.wav"
            save_wav(source, clip.to_array())  # the separator reads a file, as the official's
            with open_audio(separate_vocals(source, loaded.vocal_separator, work)) as vocals:
                yield vocals


class Hallo2Engine(HalloEngine):
    """Hallo2's long-duration mode: the same network, patch drop on the motion frames, 60 s cuts."""

    name = "hallo2"
    family = "hallo2"
    weights_description = "the official Hallo2 pretrained_models/ folder or a converted one"
    patch_drop = MOTION_DROP_RATE

    def context_seconds(self, request: AnimateRequest, num_samples: int) -> Optional[float]:
        return request.context_seconds  # None: the official reset at every cut


@contextmanager
def _gathered(chunks: AudioChunks, should_cancel: Optional[CancelFn]) -> Iterator[AudioClip]:
    """The chunks in one AudioClip (a temporary file: memory stays flat), checked for speech."""
    clip = AudioClip(SAMPLE_RATE)
    try:
        for chunk in chunks:
            check_cancel(should_cancel)
            clip.append(np.asarray(chunk, np.float32))
        check_speech(clip)
        yield clip
    finally:
        clip.close()


__all__ = ["FPS", "Hallo2Engine", "HalloEngine", "HalloLoaded"]
