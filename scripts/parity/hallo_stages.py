"""Hallo stage by stage against the OFFICIAL code, run once from local snapshots (never committed).

  .venv/bin/python scripts/parity/hallo_stages.py all --official /tmp/official_hallo \\
      --hallo2 /tmp/official_hallo2 --python /tmp/venv-hallo/bin/python --work /tmp/hallo_stages

``all`` runs the three halves in turn (each can be run on its own):
- ``landmarks`` (project venv): GenHuman's face mesh on examples/astronaut.png -> landmarks.npy.
  The official landmarker needs a MediaPipe task file that is not available, so both sides use
  these landmarks.
- ``official`` (official venv, hallo @8fd7c57 and hallo2 on sys.path) -> official.npz:
  a seeded tiny random Wav2Vec2 saved as a Hugging Face folder, then the official
  ``AudioProcessor.preprocess(speech.wav, 16)`` (no vocal separation: the wav is fed directly,
  ``audio_separator_model_name=None``) and ``scripts/inference.py``'s ``process_audio_emb``; the
  official ``ImageProcessor.preprocess`` on the portrait (``get_landmark`` replaced by the
  landmarks above, insightface stubbed: no face embedding); the DDIM scheduler exactly as
  ``scripts/inference.py`` builds it from ``configs/inference/default.yaml`` (40 timesteps, 3 steps
  on a fixed sample); Hallo2 ``inference_long.py``'s patch-drop mask after ``torch.manual_seed(42)``
  and the first clip's latents drawn next by the official ``prepare_latents``.
- ``compare`` (project venv): the same with GenHuman's code, fed the official inputs where a
  stage is isolated, and a table: stage, shape, max |diff|, max |official|, bit-identical.

Stubs on the official side (modules the measured code imports but never calls here): av,
mediapipe, moviepy, insightface, audio_separator, xformers, and torchvision's fake-kernel
registrations (the CPU torch has no torchvision ops; the transforms themselves are torchvision's).
Nothing official is imported when this file is imported.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
import tempfile
import types
from pathlib import Path
from typing import Any, Optional

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SPEECH = ROOT / "examples" / "speech.wav"
PORTRAIT = ROOT / "examples" / "astronaut.png"
OFFICIAL_COMMIT = "8fd7c572a3d43c2a9c1a5473219ce4fc1b6e3ed2"
SAMPLE_RATE, FPS, CLIP_LENGTH = 16000, 25, 16
IMAGE_SIZE = 512
WAV2VEC_SEED, SCHEDULER_SEED, PATCH_SEED = 0, 7, 42
SCHEDULER_STEPS_CHECKED = 3
LATENT_SHAPE = (1, 4, 2, 8, 8)  # the fixed sample the scheduler steps
# A wav2vec2-base in miniature: the same CNN (kernels, strides: 50 Hz) and norms, narrow and shallow.
TINY_WAV2VEC = dict(hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64,
                    conv_dim=(32,) * 7, conv_stride=(5, 2, 2, 2, 2, 2, 2), conv_kernel=(10, 3, 3, 3, 3, 2, 2),
                    num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, feat_extract_norm="group",
                    do_stable_layer_norm=False, vocab_size=32)
MASK_FILES = {  # get_mask's PNGs -> name in the npz
    "face_mask": "hard_face", "lip_mask": "hard_lip", "face_mask_blur": "face_blur",
    "sep_background": "sep_background", "sep_face": "sep_face", "sep_lip": "sep_lip"}


# --------------------------------------------------------------- official side (official venv)
def _stub(name: str, **attributes: Any) -> None:
    """A placeholder module for an import the measured code never calls (only if not installed)."""
    import importlib.util

    if importlib.util.find_spec(name.split(".")[0]) is not None:
        return
    _put_module(name, attributes)


def _put_module(name: str, attributes: dict[str, Any]) -> None:
    import importlib.machinery

    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    module.__dict__.update(attributes)
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:
        if parent not in sys.modules:
            _put_module(parent, {})
        setattr(sys.modules[parent], child, module)


class _NoFaces:
    """insightface's FaceAnalysis finding nothing: the official then uses a zero embedding."""

    def __init__(self, *args, **kwargs):
        self.models: dict = {}

    def prepare(self, *args, **kwargs):
        return None

    def get(self, *args, **kwargs):
        return []


def _install_stubs() -> None:
    # torchvision registers fake kernels for its C++ ops, absent with this CPU torch; the
    # transforms need none of them (torchvision itself is then imported for real)
    sys.modules["torchvision._meta_registrations"] = types.ModuleType("torchvision._meta_registrations")
    _stub("av")
    _stub("mediapipe")
    _stub("moviepy.editor", AudioFileClip=None, VideoClip=None, VideoFileClip=None, concatenate_videoclips=None)
    _stub("insightface.app", FaceAnalysis=_NoFaces)
    _stub("audio_separator.separator", Separator=None)
    _stub("xformers.ops")


def _official_function(path: Path, name: str):
    """One top-level function of an official script, without running the script's imports."""
    tree = ast.parse(path.read_text())
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    namespace: dict[str, Any] = {}
    import torch

    namespace["torch"] = torch
    exec(compile(ast.Module([node], []), str(path), "exec"), namespace)  # noqa: S102
    return namespace[name]


def _tiny_wav2vec(folder: Path) -> None:
    """A seeded random Wav2Vec2 in the official class, saved as a local HF folder with the
    wav2vec2-base-960h feature-extractor settings."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor

    from hallo.models.wav2vec import Wav2VecModel

    torch.manual_seed(WAV2VEC_SEED)
    Wav2VecModel(Wav2Vec2Config(**TINY_WAV2VEC)).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=SAMPLE_RATE, padding_value=0.0, do_normalize=True,
                             return_attention_mask=False).save_pretrained(folder)


def _official_audio(repo: Path, work: Path) -> dict[str, np.ndarray]:
    import librosa

    from hallo.datasets.audio_processor import AudioProcessor

    folder = work / "wav2vec_tiny"
    _tiny_wav2vec(folder)
    seen: dict[str, np.ndarray] = {}
    real_load = librosa.load

    def load(*args, **kwargs):
        samples, rate = real_load(*args, **kwargs)
        seen["samples_16k"] = np.asarray(samples)
        return samples, rate

    librosa.load = load
    try:
        with AudioProcessor(SAMPLE_RATE, FPS, str(folder), False, device="cpu") as processor:
            extractor = processor.wav2vec_feature_extractor

            def extract(*args, **kwargs):
                result = extractor(*args, **kwargs)
                seen["normalized"] = np.squeeze(np.asarray(result.input_values))
                return result

            processor.wav2vec_feature_extractor = extract
            features, audio_length = processor.preprocess(str(SPEECH), clip_length=CLIP_LENGTH)
    finally:
        librosa.load = real_load
    windows = _official_function(repo / "scripts" / "inference.py", "process_audio_emb")(features)
    return {**{f"audio/{k}": v for k, v in seen.items()}, "audio/features": features.numpy(),
            "audio/audio_length": np.array(audio_length), "audio/windows": windows.numpy()}


def _official_masks(work: Path) -> dict[str, np.ndarray]:
    import cv2
    from PIL import Image

    import hallo.utils.util as util
    from hallo.datasets.image_processor import ImageProcessor

    width, height = Image.open(PORTRAIT).size
    landmarks = np.load(work / "landmarks.npy").astype(np.float64)
    util.get_landmark = lambda _file: (landmarks, height, width)  # the task file is unavailable
    cache = work / "mask_cache"
    cache.mkdir(exist_ok=True)
    processor = ImageProcessor((IMAGE_SIZE, IMAGE_SIZE), "unused")
    pixels, face_region, _emb, full, face, lip = processor.preprocess(str(PORTRAIT), str(cache), 1.2)
    out = {"masks/pixels": pixels.numpy(), "masks/face_region": face_region.numpy()}
    for kind, levels in (("full", full), ("face", face), ("lip", lip)):
        for level, mask in enumerate(levels):
            out[f"masks/{kind}_{level}"] = mask.numpy()
    for png, key in MASK_FILES.items():
        out[f"masks/{key}"] = cv2.imread(str(cache / f"{PORTRAIT.stem}_{png}.png"), cv2.IMREAD_GRAYSCALE)
    return out


def _official_scheduler(repo: Path, config_name: str) -> Any:
    """``scripts/inference.py``'s val_noise_scheduler from that inference config."""
    from diffusers import DDIMScheduler
    from omegaconf import OmegaConf

    config = OmegaConf.load(repo / "configs" / "inference" / config_name)
    kwargs = OmegaConf.to_container(config.noise_scheduler_kwargs)
    if config.enable_zero_snr:
        kwargs.update(rescale_betas_zero_snr=True, timestep_spacing="trailing", prediction_type="v_prediction")
    scheduler = DDIMScheduler(**kwargs)
    scheduler.set_timesteps(config.inference_steps, device="cpu")
    return scheduler


def _official_steps(repo: Path, hallo2: Path) -> dict[str, np.ndarray]:
    import torch

    scheduler = _official_scheduler(repo, "default.yaml")
    scheduler2 = _official_scheduler(hallo2, "long.yaml")
    same = dict(scheduler.config) == dict(scheduler2.config) and torch.equal(scheduler.timesteps, scheduler2.timesteps)
    generator = torch.Generator().manual_seed(SCHEDULER_SEED)
    sample = torch.randn(LATENT_SHAPE, generator=generator)
    outputs = torch.randn((SCHEDULER_STEPS_CHECKED, *LATENT_SHAPE), generator=generator)
    out = {"scheduler/sample": sample.numpy(), "scheduler/model_outputs": outputs.numpy(),
           "scheduler/timesteps": scheduler.timesteps.numpy(),
           "scheduler/alphas_cumprod": scheduler.alphas_cumprod.numpy(),
           "scheduler/init_noise_sigma": np.array(float(scheduler.init_noise_sigma)),
           "scheduler/hallo2_same": np.array(same)}
    latents = sample
    for i, t in enumerate(scheduler.timesteps[:SCHEDULER_STEPS_CHECKED]):
        # the official pipeline's call: extra_step_kwargs are eta=0.0 and the generator
        step = scheduler.step(outputs[i], t, latents, eta=0.0, generator=torch.manual_seed(0))
        latents = step.prev_sample
        out[f"scheduler/prev_{i}"] = latents.numpy()
        out[f"scheduler/x0_{i}"] = step.pred_original_sample.numpy()
    return out


def _official_patch_drop(hallo2: Path, pixels: np.ndarray, face_region: np.ndarray) -> dict[str, np.ndarray]:
    """Hallo2 ``scripts/inference_long.py`` (first clip): ``generator = torch.manual_seed(42)``, the
    reference repeated as the motion frames, ``torch.rand(h, w) > mask_rate`` OR the face region,
    then the pipeline's ``prepare_latents`` from the same generator."""
    import torch
    from omegaconf import OmegaConf

    from hallo.animate.face_animate import FaceAnimatePipeline

    config = OmegaConf.load(hallo2 / "configs" / "inference" / "long.yaml")
    source, region = torch.from_numpy(pixels), torch.from_numpy(face_region)
    generator = torch.manual_seed(PATCH_SEED)
    motion_frames = source.repeat(config.data.n_motion_frames, 1, 1, 1)
    reference = torch.cat([source[None], motion_frames])[None]
    motion = reference[:, 1:]
    b, f, c, h, w = motion.shape
    keep = (torch.rand(h, w) > config.mask_rate)[None, None, None].expand(b, f, c, h, w)
    keep = keep | region.repeat(f, 1, 1, 1)[None].bool()
    dropped = motion * keep
    pipe = types.SimpleNamespace(vae_scale_factor=8, scheduler=_official_scheduler(hallo2, "long.yaml"))
    latents = FaceAnimatePipeline.prepare_latents(pipe, 1, 4, w, h, CLIP_LENGTH, torch.float32, torch.device("cpu"),
                                                  generator)
    return {"patch/keep": keep.numpy(), "patch/dropped": dropped.numpy(), "patch/noise": latents.numpy(),
            "patch/mask_rate": np.array(float(config.mask_rate))}


def official_main(repo: Path, hallo2: Path, work: Path) -> None:
    sys.path.insert(0, str(repo))  # the Hallo package; Hallo2's scripts and configs are read as files
    _install_stubs()
    import torch

    torch.set_num_threads(1)
    out = _official_audio(repo, work)
    out.update(_official_masks(work))
    out.update(_official_steps(repo, hallo2))
    out.update(_official_patch_drop(hallo2, out["masks/pixels"], out["masks/face_region"]))
    np.savez(work / "official.npz", **out)
    print(f"wrote {work / 'official.npz'} ({len(out)} arrays)")


# --------------------------------------------------------------- GenHuman side (project venv)
def landmarks_main(work: Path) -> None:
    from genhuman.face import face_landmarks
    from genhuman.media import load_image

    face = face_landmarks(load_image(PORTRAIT), name="the portrait")
    work.mkdir(parents=True, exist_ok=True)
    np.save(work / "landmarks.npy", face.landmarks)
    print(f"wrote {work / 'landmarks.npy'} {face.landmarks.shape}")


class _Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str, str]] = []

    def add(self, stage: str, official: Any, ours: Any, exact: bool = True) -> None:
        """One row; ``exact``: the stage is meant to be bit-identical (else the column says n/a)."""
        a, b = np.asarray(official), np.asarray(ours)
        shape = str(tuple(a.shape)) if a.shape == b.shape else f"{tuple(a.shape)} vs {tuple(b.shape)}"
        common = tuple(slice(0, min(x, y)) for x, y in zip(a.shape, b.shape))
        fa, fb = a[common].astype(np.float64), b[common].astype(np.float64)
        diff = float(np.abs(fa - fb).max()) if fa.size else 0.0
        identical = a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()
        same = ("yes" if identical else "no") if exact else "n/a"
        self.rows.append((stage, shape, _num(diff), _num(float(np.abs(fa).max()) if fa.size else 0.0), same))

    def markdown(self) -> str:
        head = ("stage", "shape", "max abs diff", "max abs official", "bit-identical")
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines)


def _num(value: float) -> str:
    return "0" if value == 0 else f"{value:.3g}"


def _compare_audio(table: _Table, ref: dict[str, np.ndarray], work: Path) -> None:
    import torch

    from genhuman.audio_features.wav2vec import frame_windows, load_wav2vec, normalize, wav2vec_features
    from genhuman.media.audio import load_audio

    ours_16k = load_audio(SPEECH)
    official_16k = ref["audio/samples_16k"]
    table.add("audio: 16 kHz samples (official librosa soxr_hq, GenHuman PyAV/FFmpeg)", official_16k, ours_16k,
              exact=False)
    table.add("audio: normalised input_values (same samples)", ref["audio/normalized"], normalize(official_16k))
    model = load_wav2vec(work / "wav2vec_tiny")
    features, length = wav2vec_features(model, official_16k, clip_length=CLIP_LENGTH)
    table.add("audio: frame count audio_length", ref["audio/audio_length"], np.array(length))
    table.add(f"audio: wav2vec features, all layers (same samples; {model.config._attn_implementation} attention)",
              ref["audio/features"], features.numpy())
    eager = load_wav2vec(work / "wav2vec_tiny")
    eager.set_attn_implementation("eager")  # what transformers 4.39 (official) picks for wav2vec2
    table.add("audio: wav2vec features, all layers (same samples; eager attention)", ref["audio/features"],
              wav2vec_features(eager, official_16k, clip_length=CLIP_LENGTH)[0].numpy())
    official_features = torch.from_numpy(ref["audio/features"])
    table.add("audio: 5-frame windows of the official features", ref["audio/windows"],
              frame_windows(official_features).numpy())
    table.add("audio: 5-frame windows of GenHuman's features (same samples)", ref["audio/windows"],
              frame_windows(features).numpy())
    end_to_end, _ = wav2vec_features(model, ours_16k, clip_length=CLIP_LENGTH)
    table.add("audio: windows end to end (each side's own 16 kHz decode)", ref["audio/windows"],
              frame_windows(end_to_end).numpy(), exact=False)


def _compare_masks(table: _Table, ref: dict[str, np.ndarray], work: Path):
    from genhuman.media import load_image
    from genhuman.pipelines.hallo_conditions import box_mask, hallo_conditions

    image = load_image(PORTRAIT)
    conditions = hallo_conditions(image, np.load(work / "landmarks.npy"), IMAGE_SIZE)
    masks = conditions.masks
    height, width = image.shape[:2]
    pngs = {"hard_face": masks.face, "hard_lip": box_mask(masks.lip_box, height, width),
            "face_blur": masks.face_blur, "sep_background": masks.background, "sep_face": masks.face_only,
            "sep_lip": masks.lip}
    for key, ours in pngs.items():
        table.add(f"masks: {key} (get_mask PNG)", ref[f"masks/{key}"], ours)
    table.add("masks: reference pixels (Resize, ToTensor, Normalize)", ref["masks/pixels"], conditions.pixels.numpy())
    table.add("masks: face region (face locator input)", ref["masks/face_region"], conditions.face_region.numpy())
    for kind, levels in (("full", conditions.full_masks), ("face", conditions.face_masks),
                         ("lip", conditions.lip_masks)):
        for level, mask in enumerate(levels):
            side = IMAGE_SIZE // (8 << level)
            table.add(f"masks: {kind} mask {side}x{side}", ref[f"masks/{kind}_{level}"], mask.numpy())
    return conditions


def _compare_scheduler(table: _Table, ref: dict[str, np.ndarray]) -> None:
    import torch

    from genhuman.sampling.scheduler import HALLO_INFERENCE_STEPS, hallo_scheduler

    scheduler = hallo_scheduler()
    scheduler.set_timesteps(HALLO_INFERENCE_STEPS, device="cpu")
    table.add(f"scheduler: {HALLO_INFERENCE_STEPS} timesteps", ref["scheduler/timesteps"], scheduler.timesteps.numpy())
    table.add("scheduler: alphas_cumprod", ref["scheduler/alphas_cumprod"], scheduler.alphas_cumprod.numpy())
    table.add("scheduler: init_noise_sigma", ref["scheduler/init_noise_sigma"],
              np.array(float(scheduler.init_noise_sigma)))
    table.add("scheduler: Hallo2 long.yaml builds the same scheduler", ref["scheduler/hallo2_same"], np.array(True))
    latents = torch.from_numpy(ref["scheduler/sample"])
    outputs = torch.from_numpy(ref["scheduler/model_outputs"])
    for i, t in enumerate(scheduler.timesteps[:SCHEDULER_STEPS_CHECKED]):
        step = scheduler.step(outputs[i], t, latents, eta=0.0)
        latents = step.prev_sample
        table.add(f"scheduler: step {i + 1} (t={int(t)}) prev_sample", ref[f"scheduler/prev_{i}"], latents.numpy())
        table.add(f"scheduler: step {i + 1} pred_original_sample", ref[f"scheduler/x0_{i}"],
                  step.pred_original_sample.numpy())


def _compare_patch_drop(table: _Table, ref: dict[str, np.ndarray], conditions) -> None:
    import torch

    from genhuman.pipelines.hallo_conditions import MOTION_DROP_RATE, drop_patches, patch_drop_keep

    table.add("patch drop: mask_rate", ref["patch/mask_rate"], np.array(MOTION_DROP_RATE))
    keep_ref = ref["patch/keep"]
    frames = keep_ref.shape[1]
    generator = torch.Generator().manual_seed(PATCH_SEED)
    keep = patch_drop_keep(conditions.face_region, generator)
    noise = torch.randn((1, 4, CLIP_LENGTH, IMAGE_SIZE // 8, IMAGE_SIZE // 8), generator=generator,
                        device=generator.device)  # the pipeline's next draw (_denoise_clip)
    table.add("patch drop: keep mask, seed 42 (official 5-D, ours (H, W) broadcast)", keep_ref,
              np.broadcast_to(keep.numpy(), keep_ref.shape))
    motion = conditions.pixels[None].repeat(frames, 1, 1, 1)
    dropped = drop_patches(motion, conditions.face_region, torch.Generator().manual_seed(PATCH_SEED))
    table.add("patch drop: motion frames after the drop", ref["patch/dropped"], dropped[None].numpy())
    table.add("patch drop: first clip's latents drawn next", ref["patch/noise"], noise.numpy())


def compare_main(work: Path, markdown: Optional[Path]) -> None:
    import torch

    torch.set_num_threads(1)
    with np.load(work / "official.npz") as data:
        ref = {key: data[key] for key in data.files}
    table = _Table()
    _compare_audio(table, ref, work)
    conditions = _compare_masks(table, ref, work)
    _compare_scheduler(table, ref)
    _compare_patch_drop(table, ref, conditions)
    text = table.markdown()
    print(text)
    if markdown is not None:
        markdown.write_text(text + "\n")


# --------------------------------------------------------------- driver
def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("all", "landmarks", "official", "compare"))
    parser.add_argument("--official", type=Path, help="official hallo worktree (@8fd7c57)")
    parser.add_argument("--hallo2", type=Path, help="official hallo2 worktree")
    parser.add_argument("--python", default=None, help="the official venv's python (for 'all')")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a new temp folder)")
    parser.add_argument("--markdown", type=Path, default=None, help="also write the table here")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="hallo_stages_"))
    work.mkdir(parents=True, exist_ok=True)
    if args.command in ("official", "all") and (args.official is None or args.hallo2 is None):
        parser.error("--official and --hallo2 are needed")
    if args.command == "landmarks":
        landmarks_main(work)
    elif args.command == "official":
        official_main(args.official.resolve(), args.hallo2.resolve(), work)
    elif args.command == "compare":
        compare_main(work, args.markdown)
    else:
        if args.python is None:
            parser.error("'all' needs --python (the official venv's interpreter)")
        landmarks_main(work)
        subprocess.run([args.python, __file__, "official", "--official", str(args.official),
                        "--hallo2", str(args.hallo2), "--work", str(work)], check=True)
        compare_main(work, args.markdown)


if __name__ == "__main__":
    main()
