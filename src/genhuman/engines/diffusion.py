"""What the diffusion engines share: weights, device and dtype, validation, prepared avatars,
both schedules of ``stream`` and ``animate``. Family engines (EchoMimic, EchoMimic V2, ...)
subclass :class:`DiffusionEngine` and supply the family parts: which weights variant a
request needs, the reference framing, and the control.

``stream`` has two schedules (``request.schedule``):
- ``official`` (default): all audio is read, then the official whole-video schedule runs
  (exact parity with the official code); frames come out as they are decoded.
- ``streaming``: audio tokens are computed as audio arrives and the video is generated
  window by window (:meth:`genhuman.pipelines.core.ReferenceVideoPipeline.stream`); memory
  is per window, and the first frames come out after the first window.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Union

import numpy as np
import torch

from genhuman.engines.avatar import Avatar, weights_fingerprint
from genhuman.engines.base import AnimateResult, AudioChunks, AudioInput, Frame, ImageInput
from genhuman.engines.output import audio_chunks, check_output, write_video
from genhuman.media import Samples
from genhuman.errors import InputError, MissingWeightsError
from genhuman.models.attention import ReferenceKV
from genhuman.pipelines.core import Reference, ReferenceVideoPipeline
from genhuman.progress import CancelFn, ProgressFn, Stage, check_cancel, report
from genhuman.request import AnimateRequest, EngineOptions, warn_unused
from genhuman.sampling import WindowSchedule

log = logging.getLogger(__name__)

OFFICIAL_FPS = 24  # every official EchoMimic script passes 24 (the pipeline default 25 is unused)
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
TUNING = {"window_batch", "decode_batch", "max_frames"}  # request.extra knobs every diffusion engine takes


def resolve_device(name: str | None) -> torch.device:
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(f"unknown device {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device cuda requested but no CUDA GPU is available")
    return device


@dataclass(frozen=True)
class Settings:
    """A validated request with every default resolved: what the family hooks read."""

    fps: int
    seed: int
    steps: int
    cfg: float
    width: int
    height: int
    face_index: int
    max_size: Optional[int]
    pose: Optional[Path]
    paste_back: bool
    schedule: str
    extra: Mapping[str, Any]

    @classmethod
    def of(cls, request: AnimateRequest) -> "Settings":
        values = {f: getattr(request, f) for f in cls.__dataclass_fields__}
        unresolved = [f for f in ("fps", "seed", "steps", "cfg", "width", "height") if values[f] is None]
        if unresolved:
            raise ValueError(f"request not validated: {unresolved} unset")
        return cls(**values)


@dataclass
class Loaded:
    """One weights variant, ready: the pipeline, the audio encoder and what they are."""

    variant: Any  # genhuman.checkpoints.layout.Variant
    pipeline: ReferenceVideoPipeline
    audio_encoder: Any
    weights_id: str


class DiffusionEngine:
    """Checks the weights folder and resolves device/dtype (fp16 on GPU, fp32 on CPU)."""

    name = "diffusion"
    family = "diffusion"
    weights_description = "the official weights folder or a converted one"
    pipeline_class: type[ReferenceVideoPipeline] = ReferenceVideoPipeline
    other_family_hint = ""
    tuning: frozenset[str] = frozenset(TUNING)

    def __init__(self, options: Optional[EngineOptions] = None, *, loaded: Optional[Loaded] = None):
        options = options or EngineOptions()
        self.options = options
        self._loaded: Optional[tuple[Optional[str], Loaded]] = None
        if loaded is not None:  # networks given in-process (tests, notebooks): no weights folder
            self.weights = None
            self.device, self.dtype = loaded.pipeline.device, loaded.pipeline.dtype
            self._fixed: Optional[Loaded] = loaded
            return
        self._fixed = None
        if options.weights is None:
            raise MissingWeightsError(
                f"the {self.name} engine needs weights: pass --weights DIR ({self.weights_description}); "
                f"get them with `genhuman download {self.name}`")
        self.weights = Path(options.weights)
        if not self.weights.is_dir():
            raise MissingWeightsError(
                f"weights folder {str(self.weights)!r} does not exist; get the weights with "
                f"`genhuman download {self.name} --dir {self.weights}`")
        self.device = resolve_device(options.device)
        self.dtype = DTYPES[options.dtype] if options.dtype else (
            torch.float16 if self.device.type == "cuda" else torch.float32)
        from genhuman.checkpoints import is_converted

        self._converted = is_converted(self.weights)

    @classmethod
    def from_components(cls, components, variant, options: Optional[EngineOptions] = None,
                        device: Union[str, torch.device] = "cpu", dtype: torch.dtype = torch.float32):
        """An engine over networks built in-process (``components`` has vae, reference_unet,
        denoising_unet, condition_encoder, audio_encoder); ``variant`` says what they are."""
        pipeline = cls.pipeline_class(components.vae, components.reference_unet, components.denoising_unet,
                                      components.condition_encoder, device=device, dtype=dtype)
        audio = components.audio_encoder.to(pipeline.device).eval().requires_grad_(False)
        fingerprint = weights_fingerprint(components.reference_unet, components.denoising_unet,
                                          components.condition_encoder)
        return cls(options, loaded=Loaded(variant, pipeline, audio, fingerprint))

    # ------------------------------------------------------------------ weights
    def variant_for(self, request: AnimateRequest) -> Optional[str]:
        """The official-layout variant a request needs (None: a converted folder's own)."""
        raise NotImplementedError

    def load(self, request: AnimateRequest) -> Loaded:
        """The networks for ``request``, loaded once and kept (one variant at a time)."""
        if self._fixed is not None:
            return self._fixed
        variant = self.variant_for(request)
        if self._loaded is not None and self._loaded[0] == variant:
            return self._loaded[1]
        from genhuman.checkpoints import load_echomimic

        self._loaded = None  # free the previous variant before loading the next
        started = time.perf_counter()
        components = load_echomimic(self.weights, variant, dtype=self.dtype)
        if components.variant.family != self.family:
            raise InputError(f"{str(self.weights)!r} holds {components.variant.family} weights; "
                             f"{self.other_family_hint}")
        pipeline = self.pipeline_class.from_components(components, device=self.device, dtype=self.dtype,
                                                       compile=self.options.compile)
        audio = components.audio_encoder.to(self.device).eval().requires_grad_(False)
        loaded = Loaded(components.variant, pipeline, audio,
                        weights_fingerprint(components.reference_unet, components.denoising_unet,
                                            components.condition_encoder))
        log.info("loaded %s %s (%s layout) on %s/%s in %.1f s", self.family, components.variant.name,
                 components.layout, self.device, self.dtype, time.perf_counter() - started)
        self._loaded = (variant, loaded)
        return loaded

    # ------------------------------------------------------------------ validation
    def default_size(self) -> tuple[int, int]:
        raise NotImplementedError

    def official_seed(self, variant) -> int:
        raise NotImplementedError

    def check_variant(self, request: AnimateRequest, variant) -> None:
        """Family rules about which weights serve which request (InputError)."""

    def validate(self, request: AnimateRequest) -> AnimateRequest:
        """The request with this engine's official defaults filled in: fps 24, the official
        seed, 30 steps / cfg 2.5 (6 / 1.0 with accelerated weights) and the default size.
        Refuses sizes the loaded model cannot generate."""
        warn_unused(request, self.name)
        unknown = sorted(set(request.extra) - self.tuning)
        if unknown:
            raise InputError(f"unknown {self.name} options: {', '.join(unknown)}")
        loaded = self.load(request)
        variant = loaded.variant
        self.check_variant(request, variant)
        width, height = request.width, request.height
        default_w, default_h = self.default_size()
        width = width or (height if default_w == default_h else None) or default_w
        height = height or (width if default_w == default_h else None) or default_h
        multiple = loaded.pipeline.size_multiple
        if width % multiple or height % multiple:
            raise InputError(f"width and height must be multiples of {multiple} for these weights, "
                             f"got {width}x{height}")
        return request.replace(
            fps=request.fps or OFFICIAL_FPS,
            seed=self.official_seed(variant) if request.seed is None else request.seed,
            steps=request.steps or (6 if variant.accelerated else 30),
            cfg=request.cfg if request.cfg is not None else (1.0 if variant.accelerated else 2.5),
            width=width, height=height, resolved_by=self.name)

    # ------------------------------------------------------------------ avatars
    def prepare_avatar(self, image: ImageInput, face_index: int = 0, max_size: Optional[int] = None,
                       request: Optional[AnimateRequest] = None) -> Avatar:
        """The portrait framed for this family at the request's size, its VAE latent and the
        reference net's projected keys/values: everything that depends only on the portrait."""
        from genhuman.media import load_image, resize_max

        validated = self.validate(request or AnimateRequest(face_index=face_index, max_size=max_size))
        loaded = self.load(validated)
        settings = Settings.of(validated)
        portrait = resize_max(load_image(image), max_size if max_size is not None else settings.max_size)
        framed, arrays, meta = self.frame_reference(portrait, settings, face_index)
        reference = loaded.pipeline.encode_reference(framed)
        arrays["reference_latent"] = reference.latent.cpu().numpy()
        meta.update(width=settings.width, height=settings.height, variant=loaded.variant.name)
        avatar = Avatar(self.name, loaded.weights_id, arrays, meta)
        avatar.cache["reference"] = reference
        # The projected K/V (tens of MB at full size, on the GPU) leave the device only if saved.
        avatar.cache["export"] = lambda: {name: t.float().cpu().numpy() for block, (k, v) in reference.kv.blocks.items()
                                          for name, t in ((f"kv.{block}.k", k), (f"kv.{block}.v", v))}
        return avatar

    def frame_reference(self, portrait: np.ndarray, request: Settings, face_index: int,
                        ) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, Any]]:
        """(reference image at the generation size, avatar arrays, avatar metadata)."""
        raise NotImplementedError

    def reference(self, avatar: Avatar, loaded: Loaded) -> Reference:
        if "reference" not in avatar.cache:
            blocks = {}
            for key in avatar.arrays:
                if key.startswith("kv.") and key.endswith(".k"):
                    block = key[3:-2]
                    blocks[block] = tuple(torch.from_numpy(avatar.arrays[f"kv.{block}.{p}"]).to(
                        loaded.pipeline.device, loaded.pipeline.dtype) for p in "kv")
            latent = torch.from_numpy(avatar.arrays["reference_latent"]).to(loaded.pipeline.device)
            avatar.cache["reference"] = Reference(latent, ReferenceKV(blocks))
        return avatar.cache["reference"]

    def _checked_avatar(self, avatar: Avatar, request: Settings, loaded: Loaded) -> None:
        avatar.check(self.name, loaded.weights_id)
        size = (avatar.meta.get("width"), avatar.meta.get("height"))
        if size != (request.width, request.height):
            raise InputError(f"this avatar was prepared for {size[0]}x{size[1]}, not "
                             f"{request.width}x{request.height}; prepare it again at that size")

    # ------------------------------------------------------------------ generation
    def control(self, avatar: Avatar, request: Settings, loaded: Loaded, num_frames: Optional[int],
                wave: Optional[np.ndarray], progress: Optional[ProgressFn], should_cancel: Optional[CancelFn]):
        """The family's control for ``num_frames`` frames (None: unknown yet, streaming)."""
        raise NotImplementedError

    def finish_frame(self, avatar: Avatar, request: Settings, frame: np.ndarray) -> np.ndarray:
        """Post-processing of a decoded frame (V1: paste-back)."""
        return frame

    def window_schedule(self, variant) -> WindowSchedule:
        return WindowSchedule(12, 3, 3)

    def stream(self, avatar: Avatar, audio_chunks: AudioChunks, request: AnimateRequest,
               progress: Optional[ProgressFn] = None, should_cancel: Optional[CancelFn] = None,
               ) -> Iterator[Frame]:
        validated = self.validate(request)
        loaded = self.load(validated)
        settings = Settings.of(validated)
        self._checked_avatar(avatar, settings, loaded)
        if settings.schedule == "streaming":
            yield from self._stream_windows(avatar, audio_chunks, settings, loaded, should_cancel)
        else:
            yield from self._stream_official(avatar, audio_chunks, settings, loaded, progress, should_cancel)

    def _stream_official(self, avatar: Avatar, chunks: AudioChunks, request: Settings, loaded: Loaded,
                         progress: Optional[ProgressFn], should_cancel: Optional[CancelFn]) -> Iterator[Frame]:
        from genhuman.audio_features.whisper import frame_tokens, official_frame_count, whisper_features

        parts = [np.asarray(c, dtype=np.float32).ravel() for c in chunks]
        wave = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        check_speech(wave)
        features = whisper_features(loaded.audio_encoder, wave)
        num_frames, written = self.frame_counts(official_frame_count(features.shape[0], request.fps), wave, request)
        max_frames = request.extra.get("max_frames")
        if max_frames:
            num_frames, written = min(num_frames, max_frames), min(written, max_frames)
        tokens = frame_tokens(features, request.fps, num_frames)
        report(progress, 0.04, "audio encoded")
        check_cancel(should_cancel)
        control = self.control(avatar, request, loaded, num_frames, wave, Stage(progress, 0.04, 0.1), should_cancel)
        out = loaded.pipeline(
            self.reference(avatar, loaded), tokens, control, num_frames=num_frames, steps=request.steps,
            guidance_scale=request.cfg, context=self.window_schedule(loaded.variant), seed=request.seed,
            clamp_noise=self.clamp_noise(loaded.variant), window_batch=request.extra.get("window_batch", 2),
            output_type="latent", progress=Stage(progress, 0.1, 0.92), should_cancel=should_cancel)
        decode = loaded.pipeline.decode(out.latents[:, :, :written], request.extra.get("decode_batch", 8))
        for i, frame in enumerate(decode):
            yield Frame(i, self.finish_frame(avatar, request, frame), float(request.fps))
        del out

    def _stream_windows(self, avatar: Avatar, chunks: AudioChunks, request: Settings, loaded: Loaded,
                        should_cancel: Optional[CancelFn]) -> Iterator[Frame]:
        from genhuman.audio_features.streaming import WhisperTokenStream

        schedule = self.window_schedule(loaded.variant)
        stride = schedule.size - schedule.overlap
        tokens = WhisperTokenStream(loaded.audio_encoder, request.fps, group=stride).tokens(_speech_checked(chunks))
        control = self.control(avatar, request, loaded, None, None, None, should_cancel)
        frames = loaded.pipeline.stream(
            self.reference(avatar, loaded), tokens, control, steps=request.steps, guidance_scale=request.cfg,
            window=schedule.size, overlap=schedule.overlap, seed=request.seed,
            clamp_noise=self.clamp_noise(loaded.variant), decode_batch=request.extra.get("decode_batch", 8),
            should_cancel=should_cancel)
        max_frames = request.extra.get("max_frames")
        for i, frame in enumerate(frames):
            if max_frames and i >= max_frames:
                break
            yield Frame(i, self.finish_frame(avatar, request, frame), float(request.fps))

    def frame_counts(self, official: int, wave: np.ndarray, request: Settings) -> tuple[int, int]:
        """(frames generated, frames written) in the official schedule."""
        raise NotImplementedError

    def clamp_noise(self, variant) -> Optional[float]:
        return 1.5

    # ------------------------------------------------------------------ animate
    def animate(self, image: Union[ImageInput, Avatar], audio: AudioInput, output: Union[str, Path],
                request: AnimateRequest, progress: Optional[ProgressFn] = None,
                should_cancel: Optional[CancelFn] = None) -> AnimateResult:
        """prepare_avatar + stream + write: the one path. Audio from a file is decoded once into
        an AudioClip (a temporary file) that the chunks and the mux read piece by piece."""
        from genhuman.engines.output import close_samples
        from genhuman.media import open_audio

        started = time.perf_counter()
        output = check_output(output, image, audio)
        request = self.validate(request)
        wave = np.asarray(audio, np.float32) if isinstance(audio, np.ndarray) else open_audio(audio)
        try:
            return self._animate(image, wave, output, request, progress, should_cancel, started)
        finally:
            close_samples(wave)

    def _animate(self, image: Union[ImageInput, Avatar], wave: Samples, output: Path, request: AnimateRequest,
                 progress: Optional[ProgressFn], should_cancel: Optional[CancelFn], started: float) -> AnimateResult:
        from genhuman.media import SAMPLE_RATE

        fps = Settings.of(request).fps
        check_speech(wave)
        timings: dict[str, float] = {"load": time.perf_counter() - started}
        report(progress, 0.02, "weights ready")
        avatar = image if isinstance(image, Avatar) else self.prepare_avatar(
            image, request.face_index, request.max_size, request=request)
        timings["avatar"] = time.perf_counter() - started - timings["load"]
        expected = max(1, round(len(wave) / SAMPLE_RATE * fps))
        streaming = request.schedule == "streaming"  # progress: frames written, else the denoising steps
        frames = self.stream(avatar, audio_chunks(wave), request, None if streaming else Stage(progress, 0.02, 0.92),
                             should_cancel)
        return write_video(frames, output, fps, wave, expected,
                           Stage(progress, 0.02 if streaming else 0.92, 1.0), should_cancel, timings, started)


def check_speech(wave: Samples) -> None:
    from genhuman.media import SAMPLE_RATE, is_silent

    if len(wave) < SAMPLE_RATE // 10:
        raise InputError(f"the audio is empty or too short ({len(wave) / SAMPLE_RATE:.2f} s); need at least 0.1 s")
    if is_silent(wave):
        raise InputError("audio is silent: no speech found")


def _speech_checked(chunks: AudioChunks):
    """Pass chunks through; refuse a stream that ends without any speech."""
    from genhuman.media import SAMPLE_RATE

    peak, total = 0.0, 0
    for chunk in chunks:
        chunk = np.asarray(chunk, dtype=np.float32).ravel()
        total += len(chunk)
        if len(chunk):
            peak = max(peak, float(np.abs(chunk).max()))
        yield chunk
    if total < SAMPLE_RATE // 10:
        raise InputError(f"the audio is empty or too short ({total / SAMPLE_RATE:.2f} s); need at least 0.1 s")
    if peak < 1e-4:
        raise InputError("audio is silent: no speech found")
