"""The ``echomimic_v3`` (preview) and ``echomimic_v3_flash`` engines: media in, MP4 out, through
:class:`genhuman.pipelines.echomimic_v3.EchoMimicV3Pipeline`.

Weights: the official README folder (``Wan2.1-Fun-V1.1-1.3B-InP/``, ``transformer/``, and the wav2vec2 folder:
``wav2vec2-base-960h/`` for preview, ``chinese-wav2vec2-base/`` for Flash); see
:mod:`genhuman.checkpoints.echomimic_v3`. The transformer, the VAE and wav2vec2 stay loaded. umT5 and CLIP are
loaded only while an avatar is prepared: the avatar keeps the text and image embeddings, so they are freed after.

The avatar holds the portrait at the generation size, the umT5 prompt/negative embeddings, the CLIP penultimate
tokens and, for preview, the face-box mask on the 1/16 token grid (from GenHuman's MediaPipe detector, no
TensorFlow). Flash has no face mask, so it needs no face.

Long audio is generated window by window as the audio arrives (at most ``window_frames`` frames per window,
Flash 81, preview 113): each later window takes the last ``overlap`` frames of the previous one as known frames
(the InP mask) and they are crossfaded; memory is one window's, and the first frames are written before the
second window starts. Audio features are computed per window from that window's samples.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional, Union

import numpy as np
import torch
import torch.nn.functional as F

from genhuman.engines.avatar import Avatar, weights_fingerprint
from genhuman.engines.base import AnimateResult, AudioChunks, AudioInput, Frame, ImageInput
from genhuman.engines.diffusion import DTYPES, DiffusionEngine, check_speech, resolve_device
from genhuman.engines.offload import ModelOffload
from genhuman.engines.output import audio_chunks, check_output, close_samples, write_video
from genhuman.errors import InputError, MissingWeightsError
from genhuman.media import SAMPLE_RATE
from genhuman.progress import CancelFn, ProgressFn, check_cancel, report
from genhuman.request import AnimateRequest, EngineOptions, warn_unused

log = logging.getLogger(__name__)

FPS = 25
OFFICIAL_SEED = 43  # the official infer scripts' seed
FLASH_LUFS = -23.0  # the official Flash audio loudness
MAX_AREA = 768 * 768  # official: area <= 768^2, aspect kept, multiples of 16
SIZE_MULTIPLE = 16
PROMPT = "A person is speaking."
NEGATIVE = "Gesture is bad. Bad hands."
TUNING = frozenset({"window_frames", "overlap", "max_frames", "teacache", "teacache_per_step"})
AUDIO_DIR = {False: "wav2vec2-base-960h", True: "chinese-wav2vec2-base"}
TOKENIZER_DIR = "google/umt5-xxl"


@dataclass
class V3Loaded:
    pipeline: Any  # EchoMimicV3Pipeline
    vae: Any  # diffusers AutoencoderKLWan
    wav2vec: Any  # transformers Wav2Vec2Model
    weights_id: str


def default_size(width: int, height: int, max_area: int = MAX_AREA) -> tuple[int, int]:
    """The portrait's aspect at area <= ``max_area``, both sides multiples of 16."""
    scale = min(1.0, math.sqrt(max_area / float(width * height)))
    return (max(SIZE_MULTIPLE, int(width * scale) // SIZE_MULTIPLE * SIZE_MULTIPLE),
            max(SIZE_MULTIPLE, int(height * scale) // SIZE_MULTIPLE * SIZE_MULTIPLE))


def video_frames(count: int) -> int:
    """The smallest 4k+1 frame count covering ``count`` frames (the Wan VAE's temporal grid)."""
    return 4 * max(0, math.ceil((count - 1) / 4)) + 1


def face_token_mask(box: tuple[float, float, float, float], width: int, height: int) -> np.ndarray:
    """[1, (H/16)*(W/16)] float32: 1 on the transformer tokens (16 px cells) the face box touches."""
    cols, rows = width // SIZE_MULTIPLE, height // SIZE_MULTIPLE
    x0, y0, x1, y1 = box
    mask = np.zeros((rows, cols), np.float32)
    cell = float(SIZE_MULTIPLE)
    c0, c1 = min(max(math.floor(x0 / cell), 0), cols - 1), min(max(math.ceil(x1 / cell), 1), cols)
    r0, r1 = min(max(math.floor(y0 / cell), 0), rows - 1), min(max(math.ceil(y1 / cell), 1), rows)
    mask[r0:r1, c0:c1] = 1.0
    return mask.reshape(1, -1)


def condition_latents(vae: Any, known: torch.Tensor, num_frames: int) -> torch.Tensor:
    """The Fun-InP condition [1, 20, L, h, w] for ``num_frames`` (4k+1) frames whose first ``len(known)`` are
    given (``known`` [K, 3, H, W] in [-1, 1]): 4 mask channels (1 on known frames, frame 0 repeated 4x and
    folded per latent frame) + the VAE latents of the masked video (unknown frames zero), normalised."""
    from genhuman.checkpoints.echomimic_v3 import WAN_LATENTS_MEAN, WAN_LATENTS_STD

    k, _, height, width = known.shape
    param = next(vae.parameters())
    video = torch.zeros(1, 3, num_frames, height, width, dtype=param.dtype, device=param.device)
    video[0, :, :k] = known.permute(1, 0, 2, 3).to(param)
    with torch.no_grad():
        latents = vae.encode(video).latent_dist.mode()
    mean = torch.tensor(WAN_LATENTS_MEAN, dtype=latents.dtype, device=latents.device).view(1, -1, 1, 1, 1)
    std = torch.tensor(WAN_LATENTS_STD, dtype=latents.dtype, device=latents.device).view(1, -1, 1, 1, 1)
    latents = (latents - mean) / std
    lf, h, w = latents.shape[2:]
    keep = torch.zeros(num_frames, dtype=latents.dtype, device=latents.device)
    keep[:k] = 1.0
    keep = torch.cat([keep[:1].repeat(3), keep])  # frame 0 four times: 4 * L frames
    mask = keep.view(lf, 4).t()[None, :, :, None, None].expand(1, 4, lf, h, w)
    return torch.cat([mask, latents], dim=1)


class EchoMimicV3Engine(DiffusionEngine):
    """A DiffusionEngine for what holds it to its rules (a weights folder, as the server checks), with its own
    loading, validation and streaming: the SD-family hooks of the base class are not used."""

    name = "echomimic_v3"
    family = "echomimic_v3"
    weights_description = "the official EchoMimicV3 folder"
    flash = False
    needs_face = True  # preview masks the audio attention to the face box; Flash takes the whole picture

    def __init__(self, options: Optional[EngineOptions] = None):  # not the base's: no SD-family layout here
        from genhuman.checkpoints.echomimic_v3 import official_folder

        self.options = options or EngineOptions()
        if self.options.weights is None:
            raise MissingWeightsError(
                f"the {self.name} engine needs weights: pass --weights DIR (the official EchoMimicV3 folder); "
                "get them with `genhuman download echomimic_v3`")
        self.folder = official_folder(self.options.weights)  # an incomplete folder fails here, in one line
        self.audio_dir = self.folder.root / AUDIO_DIR[self.flash]
        if not (self.audio_dir / "config.json").is_file():
            raise MissingWeightsError(f"incomplete EchoMimicV3 weights folder {self.folder.root.name}: missing "
                                      f"{AUDIO_DIR[self.flash]}/ (wav2vec2)")
        self.device = resolve_device(self.options.device)
        self.dtype = DTYPES[self.options.dtype] if self.options.dtype else (
            torch.bfloat16 if self.device.type == "cuda" else torch.float32)
        if self.options.offload and self.device.type == "cpu":
            log.warning("--offload moves models between the GPU and CPU memory; on %s it does nothing", self.device)
        self.offload = ModelOffload(self.device, self.options.offload and self.device.type != "cpu")
        self.weights = self.folder.root
        self._loaded = None
        self._fixed = None
        self._v3: Optional[V3Loaded] = None

    # ------------------------------------------------------------------ weights
    def load(self, request: Optional[AnimateRequest] = None) -> V3Loaded:  # type: ignore[override]
        """The transformer, VAE and wav2vec2, loaded on first use and kept (``request`` is not needed)."""
        if self._v3 is not None:
            return self._v3
        from genhuman.audio_features.wav2vec import load_wav2vec
        from genhuman.checkpoints.echomimic_v3 import VAE_FILE, load_transformer, wan_vae_from_official
        from genhuman.pipelines.echomimic_v3 import EchoMimicV3Pipeline

        started = time.perf_counter()
        home = self.offload.load_device
        transformer = load_transformer(self.folder.root, self.flash, self.dtype).to(home)
        vae = wan_vae_from_official(self._pth(VAE_FILE), self.dtype).to(home)
        if self.options.vae_tiling:
            vae.enable_tiling()  # diffusers' tiled encode/decode: memory bounded by the tile, not the frame
        wav2vec = load_wav2vec(self.audio_dir, home)
        self._v3 = V3Loaded(EchoMimicV3Pipeline(transformer), vae, wav2vec, weights_fingerprint(transformer))
        log.info("loaded EchoMimicV3 %s on %s/%s%s in %.1f s", "Flash" if self.flash else "preview", self.device,
                 self.dtype, " (model offload)" if self.offload.enabled else "", time.perf_counter() - started)
        return self._v3

    def _pth(self, name: str) -> dict[str, torch.Tensor]:
        path = self.folder.base / name
        if not path.is_file():
            raise MissingWeightsError(f"incomplete EchoMimicV3 weights folder {self.folder.root.name}: missing "
                                      f"{path.parent.name}/{name}")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a damaged or foreign file
            raise InputError(f"{path.parent.name}/{name} cannot be read ({type(exc).__name__})") from None
        if not isinstance(state, dict):
            raise InputError(f"{path.parent.name}/{name} is not a state dict")
        return state

    # ------------------------------------------------------------------ validation
    def validate(self, request: AnimateRequest) -> AnimateRequest:
        warn_unused(request, self.name)
        unknown = sorted(set(request.extra) - TUNING)
        if unknown:
            raise InputError(f"unknown {self.name} options: {', '.join(unknown)}")
        for side in ("width", "height"):
            value = getattr(request, side)
            if value is not None and value % SIZE_MULTIPLE:
                raise InputError(f"{side} must be a multiple of {SIZE_MULTIPLE} for EchoMimicV3, got {value}")
        return request.replace(
            fps=request.fps or FPS, seed=OFFICIAL_SEED if request.seed is None else request.seed,
            steps=request.steps or (8 if self.flash else 25),
            cfg=request.cfg if request.cfg is not None else (3.0 if self.flash else 2.9), resolved_by=self.name)

    # ------------------------------------------------------------------ avatars
    def prepare_avatar(self, image: ImageInput, face_index: int = 0, max_size: Optional[int] = None,
                       request: Optional[AnimateRequest] = None) -> Avatar:
        """The portrait at the generation size, its text and CLIP embeddings and (preview) the face mask."""
        from genhuman.media import load_image, resize_max

        request = self.validate(request or AnimateRequest(face_index=face_index, max_size=max_size))
        loaded = self.load()
        portrait = resize_max(load_image(image), max_size if max_size is not None else request.max_size)
        height0, width0 = portrait.shape[:2]
        dw, dh = default_size(width0, height0)
        width, height = request.width or dw, request.height or dh
        arrays: dict[str, np.ndarray] = {}
        if not self.flash:  # the face box, before the slow encoders: an image without a face fails fast
            from genhuman.face import face_landmarks

            x0, y0, x1, y1 = face_landmarks(portrait, face_index, name="the portrait").box
            sx, sy = width / width0, height / height0
            arrays["face_mask"] = face_token_mask((x0 * sx, y0 * sy, x1 * sx, y1 * sy), width, height)
        framed = _resize(portrait, width, height)
        arrays["portrait"] = framed
        prompt = PROMPT if request.prompt is None else request.prompt
        negative = NEGATIVE if request.negative_prompt is None else request.negative_prompt
        arrays["prompt_embeds"], arrays["negative_embeds"] = self._text_embeddings(prompt, negative)
        arrays["clip_embeds"] = self._clip_embeddings(framed)
        return Avatar(self.name, loaded.weights_id, arrays, {"width": width, "height": height})

    def _text_embeddings(self, prompt: str, negative: str) -> tuple[np.ndarray, np.ndarray]:
        """umT5 embeddings trimmed to each prompt's length and zero-padded to 512; umT5 is freed after."""
        from transformers import AutoTokenizer

        from genhuman.checkpoints.echomimic_v3 import UMT5_FILE, umt5_from_official

        tokenizer_dir = self.folder.base / TOKENIZER_DIR
        if not tokenizer_dir.is_dir():
            raise MissingWeightsError(f"incomplete EchoMimicV3 weights folder {self.folder.root.name}: missing "
                                      f"{self.folder.base.name}/{TOKENIZER_DIR}/ (the umT5 tokenizer)")
        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir), local_files_only=True)
        encoder = umt5_from_official(self._pth(UMT5_FILE), self.dtype).to(self.offload.load_device)
        out = []
        with torch.no_grad(), self.offload.use(encoder):
            for text in (prompt, negative):
                tokens = tokenizer(text, padding="max_length", max_length=512, truncation=True, return_tensors="pt")
                ids, mask = tokens.input_ids.to(self.device), tokens.attention_mask.to(self.device)
                hidden = encoder(input_ids=ids, attention_mask=mask).last_hidden_state[0, : int(mask.sum())]
                padded = torch.zeros(1, 512, hidden.shape[-1])
                padded[0, : hidden.shape[0]] = hidden.float().cpu()
                out.append(padded.numpy())
        self.offload.release(encoder)
        del encoder
        return out[0], out[1]

    def _clip_embeddings(self, portrait: np.ndarray) -> np.ndarray:
        """CLIP's penultimate tokens of the portrait (the official ``use_31_block``); CLIP is freed after."""
        import json

        from genhuman.checkpoints.echomimic_v3 import CLIP_FILE, CLIP_MEAN, CLIP_STD, build_clip_vision

        state = self._pth(CLIP_FILE)
        config = json.loads((self.folder.base / "config.json").read_text())
        width = int(state["visual.patch_embedding.weight"].shape[0]) if "visual.patch_embedding.weight" in state else 0
        # ViT-H/14 heads are 80 wide; a folder with another CLIP says so in the base config
        heads = config.get("clip_num_heads") or (width // 80 if width and width % 80 == 0 else None)
        model = build_clip_vision(state, num_heads=heads, dtype=self.dtype).to(self.offload.load_device)
        size = model.config.image_size
        x = torch.from_numpy(portrait).permute(2, 0, 1).float().div(255)[None] * 2 - 1
        x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False) * 0.5 + 0.5
        x = (x - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(CLIP_STD).view(1, 3, 1, 1)
        with torch.no_grad(), self.offload.use(model):
            tokens = model(pixel_values=x.to(self.device, self.dtype), output_hidden_states=True).hidden_states[-2]
        self.offload.release(model)
        del model
        return tokens.float().cpu().numpy()

    # ------------------------------------------------------------------ generation
    def stream(self, avatar: Avatar, audio_chunks: AudioChunks, request: AnimateRequest,
               progress: Optional[ProgressFn] = None, should_cancel: Optional[CancelFn] = None,
               ) -> Iterator[Frame]:
        """Frames window by window while audio arrives: a window starts once its audio is in."""
        request = self.validate(request)
        loaded = self.load()
        avatar.check(self.name, loaded.weights_id)
        size = (avatar.meta.get("width"), avatar.meta.get("height"))
        if (request.width or size[0], request.height or size[1]) != size:
            raise InputError(f"this avatar was prepared for {size[0]}x{size[1]}; prepare it again at that size")
        fps = int(request.fps or FPS)
        window = int(request.extra.get("window_frames", 81 if self.flash else 113))
        overlap = int(request.extra.get("overlap", 8))
        if window < 5 or (window - 1) % 4 or not 0 < overlap < window - 4:
            raise InputError(f"window_frames must be 4k+1 (>= 5) and overlap between 1 and window_frames - 5, "
                             f"got {window} and {overlap}")
        max_frames = request.extra.get("max_frames")
        per_frame = SAMPLE_RATE / fps
        buffer = np.zeros(0, np.float32)
        offset = 0  # samples dropped from the front of buffer
        start = 0  # first frame of the next window
        tail: Optional[torch.Tensor] = None  # last `overlap` frames of the previous window, [-1, 1]
        index = 0
        ended = False
        chunks = iter(audio_chunks)
        while True:
            need = int(math.ceil((start + window) * per_frame)) - offset
            while not ended and len(buffer) < need:
                try:
                    buffer = np.concatenate([buffer, np.asarray(next(chunks), np.float32).ravel()])
                except StopIteration:
                    ended = True
            total = offset + len(buffer)
            if ended:
                if total < SAMPLE_RATE // 10 and start == 0:
                    raise InputError(f"the audio is empty or too short ({total / SAMPLE_RATE:.2f} s); "
                                     "need at least 0.1 s")
            wanted = round(total / per_frame)
            if max_frames:
                wanted = min(wanted, int(max_frames))
            count = min(window, wanted - start) if ended else window
            if tail is not None and count <= overlap:  # the audio ends inside the held-back frames
                for frame in tail[:max(0, count)]:
                    yield Frame(index, _to_uint8(frame), float(fps))
                    index += 1
                break
            if count <= 0:
                break
            check_cancel(should_cancel)
            lo = int(round(start * per_frame)) - offset
            hi = lo + int(round(count * per_frame))
            wave = buffer[max(0, lo):hi]
            if start == 0 and np.abs(wave).max(initial=0.0) < 1e-4 and ended:
                raise InputError("audio is silent: no speech found")
            frames = self._window(avatar, loaded, request, wave, count, tail, start)
            last = ended and start + count >= wanted
            keep = count if last else count - overlap
            if tail is not None:  # crossfade the held-back frames with what this window made of them
                ramp = torch.linspace(0, 1, overlap + 2)[1:-1].view(-1, 1, 1, 1)
                frames[:overlap] = tail * (1 - ramp) + frames[:overlap] * ramp
            for frame in frames[:keep]:
                yield Frame(index, _to_uint8(frame), float(fps))
                index += 1
            report(progress, 0.0 if not wanted else min(1.0, index / wanted), f"frame {index}")
            if last:
                break
            tail = frames[keep:count].clone()
            start += keep
            drop = int(round(start * per_frame)) - offset
            buffer, offset = buffer[drop:], offset + drop

    def _window(self, avatar: Avatar, loaded: V3Loaded, request: AnimateRequest, wave: np.ndarray, count: int,
                tail: Optional[torch.Tensor], start: int) -> torch.Tensor:
        """``count`` frames [count, 3, H, W] in [-1, 1] for one window of audio."""
        from genhuman.pipelines.echomimic_v3 import V3Conditions

        frames = video_frames(count)
        portrait = torch.from_numpy(avatar.arrays["portrait"]).permute(2, 0, 1).float().div(127.5).sub(1)[None]
        known = portrait if tail is None else tail
        prompt, negative, clip = (torch.from_numpy(avatar.arrays[k]).to(self.device, self.dtype)
                                  for k in ("prompt_embeds", "negative_embeds", "clip_embeds"))
        with self.offload.use(loaded.vae):
            cond = V3Conditions(prompt, negative, clip, condition_latents(loaded.vae, known, frames))
        _, _, lf, h, w = cond.condition.shape
        generator = torch.Generator().manual_seed(int(request.seed or 0) + start)
        noise = torch.randn((1, 16, lf, h, w), generator=generator).to(self.device, self.dtype)
        audio = self._audio(loaded, wave, frames)
        pipeline = loaded.pipeline
        with self.offload.use(pipeline.transformer):
            latents = self._sample(avatar, pipeline, request, cond, audio, noise)
        return self._decode(loaded, latents)[:count]

    def _sample(self, avatar: Avatar, pipeline: Any, request: AnimateRequest, cond: Any, audio: torch.Tensor,
                noise: torch.Tensor) -> torch.Tensor:
        from genhuman.pipelines.echomimic_v3 import FlashOptions, PreviewOptions

        if self.flash:
            flash = FlashOptions(steps=int(request.steps or 8), audio_scale=float(request.cfg or 0.0),
                                 teacache=bool(request.extra.get("teacache", False)),
                                 teacache_per_step=bool(request.extra.get("teacache_per_step", False)))
            latents = pipeline.sample_flash(cond, audio, noise, flash)
        else:
            mask = torch.from_numpy(avatar.arrays["face_mask"]).to(self.device, self.dtype)
            options = PreviewOptions(steps=int(request.steps or 25), audio_scale=float(request.cfg or 0.0),
                                     text_scale=PreviewOptions.text_scale if request.text_cfg is None
                                     else request.text_cfg)
            latents = pipeline.sample_preview(cond, audio, noise, mask, options)
        return latents

    def _audio(self, loaded: V3Loaded, wave: np.ndarray, frames: int) -> torch.Tensor:
        """Preview: wav2vec2 ``last_hidden_state`` at 2 tokens a frame [1, 2F, 768]; Flash: every layer at one
        step a frame, windows of +-2 frames (clamped) [1, F, 5, layers, 768]."""
        if self.flash:
            wave = loudness_normalised(wave)
        with self.offload.use(loaded.wav2vec):
            return self._features(loaded, wave, frames)

    def _features(self, loaded: V3Loaded, wave: np.ndarray, frames: int) -> torch.Tensor:
        from genhuman.audio_features.wav2vec import _receptive_field, encode, normalize

        values = torch.from_numpy(normalize(wave)) if len(wave) else torch.zeros(0)
        values = F.pad(values, (0, max(0, _receptive_field(loaded.wav2vec.config) - len(values))))
        if self.flash:
            feats = encode(loaded.wav2vec, values, frames)  # [F, layers, hidden]
            idx = torch.clamp(torch.arange(frames)[:, None] + (torch.arange(5) - 2)[None], 0, frames - 1)
            return feats[idx][None].to(self.device, self.dtype)
        feats = encode(loaded.wav2vec, values, 2 * frames)[:, -1]
        return feats[None].to(self.device, self.dtype)

    def _decode(self, loaded: V3Loaded, latents: torch.Tensor) -> torch.Tensor:
        from genhuman.checkpoints.echomimic_v3 import WAN_LATENTS_MEAN, WAN_LATENTS_STD

        mean = torch.tensor(WAN_LATENTS_MEAN, dtype=latents.dtype, device=latents.device).view(1, -1, 1, 1, 1)
        std = torch.tensor(WAN_LATENTS_STD, dtype=latents.dtype, device=latents.device).view(1, -1, 1, 1, 1)
        with torch.no_grad(), self.offload.use(loaded.vae):
            video = loaded.vae.decode(latents * std + mean).sample.clamp(-1, 1)
        return video[0].permute(1, 0, 2, 3).float().cpu()

    # ------------------------------------------------------------------ animate
    def animate(self, image: Union[ImageInput, Avatar], audio: AudioInput, output: Union[str, Path],
                request: AnimateRequest, progress: Optional[ProgressFn] = None,
                should_cancel: Optional[CancelFn] = None) -> AnimateResult:
        from genhuman.media import open_audio

        started = time.perf_counter()
        output = check_output(output, image, audio)
        request = self.validate(request)
        wave = np.asarray(audio, np.float32) if isinstance(audio, np.ndarray) else open_audio(audio)
        try:
            check_speech(wave)
            self.load()
            timings: dict[str, float] = {"load": time.perf_counter() - started}
            report(progress, 0.02, "weights ready")
            avatar = image if isinstance(image, Avatar) else self.prepare_avatar(
                image, request.face_index, request.max_size, request=request)
            timings["avatar"] = time.perf_counter() - started - timings["load"]
            fps = int(request.fps or FPS)
            expected = max(1, round(len(wave) / SAMPLE_RATE * fps))
            frames = self.stream(avatar, audio_chunks(wave), request, None, should_cancel)
            return write_video(frames, output, fps, wave, expected, progress, should_cancel, timings, started)
        finally:
            close_samples(wave)


class EchoMimicV3FlashEngine(EchoMimicV3Engine):
    name = "echomimic_v3_flash"
    flash = True
    needs_face = False


def loudness_normalised(wave: np.ndarray, target: float = FLASH_LUFS) -> np.ndarray:
    """The official Flash input: ``wave`` at ``target`` LUFS (ITU-R BS.1770, pyloudnorm). Streamed, it is applied
    per window (the official code measures the whole clip); shorter than one 400 ms gating block, or silent, or
    without pyloudnorm installed, the wave is used as it is."""
    try:
        import pyloudnorm
    except ImportError:
        log.warning("pyloudnorm is not installed: the Flash audio is not loudness-normalised to %s LUFS", target)
        return wave
    if len(wave) < int(0.4 * SAMPLE_RATE) + 1:
        return wave
    loudness = pyloudnorm.Meter(SAMPLE_RATE).integrated_loudness(wave.astype(np.float64))
    if not np.isfinite(loudness):
        return wave
    return np.asarray(pyloudnorm.normalize.loudness(wave.astype(np.float64), loudness, target), np.float32)


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    if image.shape[1] == width and image.shape[0] == height:
        return image
    x = torch.from_numpy(image).permute(2, 0, 1).float()[None]
    x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
    return x[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def _to_uint8(frame: torch.Tensor) -> np.ndarray:
    return ((frame.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
