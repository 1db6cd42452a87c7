"""CPU demonstration of training and phased step distillation (issue "Training and phased step
distillation", item 4). Everything is made here, offline, in about ten minutes on 2 CPU cores:

1. data: talking-head clips of the example portrait speaking Piper sentences, rendered by the
   lite engine and prepared at 64x64 (``genhuman.data.synthetic`` + ``genhuman data prepare``
   when that package is present, else an equivalent stand-in below: the engine's own face crop
   and mask, whisper windows of the teacher's whisper);
2. a small VAE fitted to the frames (the tiny random VAE cannot reconstruct anything);
3. a small EchoMimic-geometry teacher trained (stage 1, then stage 2) with ``genhuman.training``;
4. a 4-phase student distilled from it with ``genhuman.training.distill``;
5. on held-out clips (unseen sentences): the teacher's 40-step CFG output against the ground
   truth, and every 4-step variant against the teacher's 40-step output (PSNR), the UNet
   evaluations per frame, the wall time of each phase, and the loss curves (PNG).

    python benchmarks/bench_distill.py --work /tmp/distill_demo --plot docs/img/distill_losses.png
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genhuman.data.synthetic import SENTENCES as _ALL_SENTENCES

SENTENCES = list(_ALL_SENTENCES[:12])  # the synthetic set's first 12 sentences, one per clip
HELD_OUT = 2  # the last clips: their sentences are never trained on
SIZE, FPS = 64, 25
EVAL_FRAMES = 12  # one context window: every step is exactly one UNet call per window


@dataclass
class RunSummary:
    """What the tables need of a training run; kept in teacher.json so a rerun can reuse the teacher."""

    checkpoint: str
    steps: int
    final_loss: float  # mean of the last 20 logged losses

    @classmethod
    def of(cls, result) -> "RunSummary":
        return cls(str(result.checkpoint), result.steps, float(np.mean(result.losses[-20:])) if result.losses else 0.0)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------- 1. data


def make_data(work: Path, init: Path) -> Path:
    """The prepared folder: the data package's generator and `genhuman data prepare` when
    present, else the stand-in."""
    prepared = work / "prepared"
    if (prepared / "manifest.jsonl").is_file():
        return prepared
    try:
        import genhuman.data.synthetic  # noqa: F401
        have_data = True
    except ImportError:
        have_data = False
    if have_data:
        videos = work / "videos"
        subprocess.run([sys.executable, "-m", "genhuman.data.synthetic", str(videos), "--clips",
                        str(len(SENTENCES)), "--size", str(SIZE)], check=True)
        subprocess.run([sys.executable, "-m", "genhuman", "data", "prepare", str(videos), str(prepared),
                        "--family", "echomimic", "--size", str(SIZE), "--audio-model", str(init)], check=True)
    else:
        standin(prepared, init)
    return prepared


def standin(prepared: Path, init: Path) -> None:
    """Lite-engine renders of the portrait, cropped and masked as the echomimic engine crops and
    masks, with whisper windows from the teacher's whisper: the prepared layout."""
    from safetensors.torch import save_file

    from genhuman.audio_features.whisper import frame_tokens, whisper_features
    from genhuman.checkpoints import load_echomimic
    from genhuman.engines import get_engine_class
    from genhuman.engines.echomimic import CROP_DILATION, MASK_DILATION
    from genhuman.face import face_landmarks
    from genhuman.media import load_audio, load_image, save_wav
    from genhuman.media.video_reader import iter_video_frames
    from genhuman.media.video_writer import VideoWriter
    from genhuman.pipelines.face_crop import FaceCrop
    from genhuman.request import AnimateRequest
    from genhuman.speech.tts import synthesize_to_file

    portrait = load_image(Path(__file__).resolve().parents[1] / "examples" / "astronaut.png")
    face = face_landmarks(portrait, 0, name="the portrait")
    crop = FaceCrop.official(face.box, portrait.shape[1], portrait.shape[0], CROP_DILATION, MASK_DILATION)
    mask = (crop.mask(SIZE) > 0.5).astype(np.uint8)
    whisper = load_echomimic(init).audio_encoder
    engine = get_engine_class("lite")()
    rows = []
    tmp = prepared / "_render"
    tmp.mkdir(parents=True, exist_ok=True)
    for i, text in enumerate(SENTENCES):
        clip_id = f"clip{i:03d}"
        d = prepared / "clips" / clip_id
        d.mkdir(parents=True, exist_ok=True)
        wav = synthesize_to_file(text, tmp / f"{clip_id}.wav")
        wave = load_audio(wav)
        engine.animate(portrait, wav, tmp / f"{clip_id}.mp4", AnimateRequest(fps=FPS))
        frames = np.stack([crop.crop(f, SIZE) for f in iter_video_frames(tmp / f"{clip_id}.mp4")])
        tokens = frame_tokens(whisper_features(whisper, wave), FPS, len(frames))
        with VideoWriter(d / "video.mp4", FPS, crf=15) as w:
            for f in frames:
                w.write(f)
        save_wav(d / "audio.wav", wave)
        masks = np.repeat(mask[None], len(frames), 0)
        np.savez_compressed(d / "masks.npz", face=masks, lip=masks, union=masks,
                            boxes=np.tile(np.asarray(crop.mask_box), (len(frames), 1)))
        save_file({"features": tokens.contiguous()}, str(d / "audio_features.safetensors"))
        (d / "meta.json").write_text(json.dumps({"fps": FPS, "size": SIZE, "num_frames": len(frames)}))
        rows.append({"clip_id": clip_id, "source": text, "family": "echomimic", "status": "kept", "reason": None,
                     "duration_s": len(wave) / 16000, "num_frames": len(frames),
                     "num_feature_frames": len(tokens), "size": SIZE, "fps": FPS, "checks": {}})
    shutil.rmtree(tmp)
    (prepared / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def split(prepared: Path) -> tuple[list[str], list[str]]:
    from genhuman.training.dataset import kept_clip_ids

    ids = kept_clip_ids(prepared)
    return ids[:-HELD_OUT], ids[-HELD_OUT:]


# ---------------------------------------------------------------- 2. VAE


def fit_vae(prepared: Path, ids: list[str], steps: int, seed: int = 0):
    """A 4-level AutoencoderKL (64x64 -> 8x8x4, the SD ratio the face locator's stride 8 needs) fitted to the training frames: MSE + tiny KL."""
    from diffusers import AutoencoderKL

    from genhuman.training.dataset import CLIPS_DIR, read_clip_arrays

    torch.manual_seed(seed)
    frames = np.concatenate([read_clip_arrays(prepared / CLIPS_DIR / c)[0] for c in ids])
    pixels = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16, 32, 32),
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        layers_per_block=1, norm_num_groups=8, sample_size=SIZE)
    opt = torch.optim.AdamW(vae.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(seed)
    for step in range(steps):
        x = pixels[torch.randint(len(pixels), (8,), generator=g)]
        post = vae.encode(x).latent_dist
        loss = (vae.decode(post.sample(g)).sample - x).pow(2).mean() + 1e-6 * post.kl().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0:
            log(f"vae step {step}: loss {loss.item():.4f}")
    vae.eval()
    with torch.no_grad():
        std = float(vae.encode(pixels[:256]).latent_dist.mean.std())
        rec = vae.decode(vae.encode(pixels[:64]).latent_dist.mean).sample
    vae.register_to_config(scaling_factor=1.0 / std)
    return vae, psnr(to_uint8(rec), frames[:64])


def to_uint8(x: torch.Tensor) -> np.ndarray:
    return ((x / 2 + 0.5).clamp(0, 1) * 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-10)))


# ---------------------------------------------------------------- 5. evaluation


def generate(weights: Path, variant: str, clip_dir: Path, steps: int, cfg: float) -> tuple[np.ndarray, float]:
    """The clip's first EVAL_FRAMES frames from its first frame, its audio and its mask, through
    the inference pipeline; returns (frames, UNet evaluations per frame)."""
    from genhuman.checkpoints import load_echomimic
    from genhuman.pipelines import EchoMimicPipeline
    from genhuman.sampling import WindowSchedule
    from genhuman.training.dataset import read_clip_arrays

    frames, mask, tokens = read_clip_arrays(clip_dir)
    pipe = EchoMimicPipeline.from_components(load_echomimic(weights, variant))
    rows = [0]
    hook = pipe.denoising_unet.register_forward_hook(
        lambda _m, args, _o: rows.__setitem__(0, rows[0] + args[0].shape[0] * args[0].shape[2]))
    out = pipe(pipe.encode_reference(frames[0]), tokens[:EVAL_FRAMES], pipe.mask_control(mask), steps=steps,
               guidance_scale=cfg, context=WindowSchedule(EVAL_FRAMES, 3, 2), seed=420)
    hook.remove()
    return out.frames, rows[0] / EVAL_FRAMES


def evaluate(teacher: Path, student: Path, prepared: Path, held_out: list[str], phases: int) -> dict:
    from genhuman.training.dataset import CLIPS_DIR, read_clip_arrays

    table: dict[str, dict[str, float]] = {}
    names = {"teacher 40 steps, CFG 2.5": (teacher, "audio", 40, 2.5),
             f"student {phases} steps, no CFG": (student, "acc", phases, 1.0),
             f"teacher {phases} steps, CFG 2.5": (teacher, "audio", phases, 2.5),
             f"teacher {phases} steps, no CFG": (teacher, "audio", phases, 1.0)}
    outputs: dict[str, list[np.ndarray]] = {k: [] for k in names}
    truth, seconds, evals = [], {}, {}
    for clip in held_out:
        truth.append(read_clip_arrays(prepared / CLIPS_DIR / clip)[0][:EVAL_FRAMES])
        for name, (weights, variant, steps, cfg) in names.items():
            begin = time.perf_counter()
            frames, evals[name] = generate(weights, variant, prepared / CLIPS_DIR / clip, steps, cfg)
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - begin
            outputs[name].append(frames)
    ref = list(outputs)[0]
    gt = np.concatenate(truth)
    copy_ref = np.concatenate([np.repeat(t[:1], len(t), 0) for t in truth])
    for name, frames in outputs.items():
        out = np.concatenate(frames)
        table[name] = {"psnr_vs_teacher40": psnr(out, np.concatenate(outputs[ref])) if name != ref else float("inf"),
                       "psnr_vs_ground_truth": psnr(out, gt), "unet_evals_per_frame": evals[name],
                       "seconds_per_clip": seconds[name] / len(held_out)}
    table["(the reference frame repeated)"] = {"psnr_vs_ground_truth": psnr(copy_ref, gt)}
    return table


def plot_losses(runs: dict[str, Path], path: Path) -> None:
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(runs), figsize=(3.2 * len(runs), 2.4), dpi=80)
    for ax, (name, folder) in zip(np.atleast_1d(axes), runs.items()):
        with (folder / "logs" / "train.csv").open() as f:
            rows = list(csv.DictReader(f))
        steps = np.array([int(r["step"]) for r in rows])
        loss = np.array([float(r["loss"]) for r in rows])
        k = max(1, len(loss) // 25)
        smooth = np.convolve(loss, np.ones(k) / k, mode="valid")
        ax.plot(steps, loss, color="0.8", lw=0.8)
        ax.plot(steps[k - 1:], smooth, color="C0", lw=1.5)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.set_yscale("log")
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


# ---------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/genhuman_distill_demo"))
    parser.add_argument("--plot", type=Path, default=None, help="loss curves PNG (e.g. docs/img/distill_losses.png)")
    parser.add_argument("--vae-steps", type=int, default=300)
    parser.add_argument("--stage1-steps", type=int, default=500)
    parser.add_argument("--stage2-steps", type=int, default=500)
    parser.add_argument("--distill-steps", type=int, default=200)
    parser.add_argument("--phases", type=int, default=4)
    parser.add_argument("--teacher-steps", type=int, default=40)
    parser.add_argument("--distill-lr", type=float, default=3e-4)
    parser.add_argument("--resume-distill", action="store_true",
                        help="continue the student already in --work up to --distill-steps (else a new one)")
    parser.add_argument("--sample-at", choices=("segment", "start", "trajectory"), default="trajectory",
                        help="where x_t is drawn in a segment (DistillConfig.sample_at)")
    args = parser.parse_args()

    from genhuman.checkpoints.tiny import save_tiny_official_checkpoint
    from genhuman.checkpoints.layout import VAE_DIR
    from genhuman.training.config import DistillConfig, TrainConfig
    from genhuman.training.dataset import PreparedDataset
    from genhuman.training.distill import distill
    from genhuman.training.runner import train

    import diffusers
    import accelerate
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), diffusers {diffusers.__version__}, "
          f"accelerate {accelerate.__version__}, python {platform.python_version()}")
    torch.set_flush_denormal(True)  # tiny gradients late in training must not fall onto the slow path
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}

    def timed(name: str, fn):
        begin = time.perf_counter()
        out = fn()
        times[name] = time.perf_counter() - begin
        log(f"{name}: {times[name]:.1f} s")
        return out

    init = work / "init"
    if not init.is_dir():
        save_tiny_official_checkpoint(init)  # tiny EchoMimic geometry; its whisper makes the features
    prepared = timed("data", lambda: make_data(work, init))
    train_ids, held_out = split(prepared)
    marker = init / "vae_fitted.json"  # a rerun in the same --work reuses the data and the fitted VAE
    if marker.is_file():
        from genhuman.checkpoints.vae import load_vae

        vae, vae_psnr = load_vae(init / VAE_DIR), float(json.loads(marker.read_text())["psnr"])
    else:
        vae, vae_psnr = timed("vae", lambda: fit_vae(prepared, train_ids, args.vae_steps))
        shutil.rmtree(init / VAE_DIR)
        vae.save_pretrained(init / VAE_DIR)
        marker.write_text(json.dumps({"psnr": vae_psnr, "seconds": times["vae"], "steps": args.vae_steps}))
    log(f"VAE reconstruction PSNR {vae_psnr:.2f} dB")
    dataset = PreparedDataset(prepared, vae, clip_ids=train_ids)

    common = dict(batch_size=4, learning_rate=3e-4, weight_decay=0.0, log_every=5, ema_decay=0.0)
    teacher_marker = work / "teacher.json"  # a rerun in the same --work reuses the trained teacher
    if teacher_marker.is_file():
        saved = json.loads(teacher_marker.read_text())
        times.update(saved["times"])
        finals = {name: RunSummary(**r) for name, r in saved["runs"].items()}
    else:
        one = TrainConfig(stage="stage1", init=str(init), steps=args.stage1_steps, uncond_ref_ratio=0.05,
                          uncond_all_ratio=0.1, sample_margin=1000, **common)
        r1 = timed("teacher stage 1", lambda: train(one, prepared, work / "stage1", dataset=dataset))
        two = TrainConfig(stage="stage2", init=str(r1.checkpoint / "official"), steps=args.stage2_steps, frames=8,
                          uncond_ref_ratio=0.05, uncond_audio_ratio=0.05, uncond_all_ratio=0.1, **common)
        r2 = timed("teacher stage 2", lambda: train(two, prepared, work / "stage2", dataset=dataset))
        finals = {"teacher stage 1": RunSummary.of(r1), "teacher stage 2": RunSummary.of(r2)}
        teacher_marker.write_text(json.dumps({"times": {k: times[k] for k in ("teacher stage 1", "teacher stage 2")},
                                              "runs": {k: vars(v) for k, v in finals.items()}}))
    teacher = Path(finals["teacher stage 2"].checkpoint) / "official"
    dc = DistillConfig(phases=args.phases, teacher_steps=args.teacher_steps, guidance=2.5, steps=args.distill_steps,
                       batch_size=2, frames=8, learning_rate=args.distill_lr, log_every=5, ema_decay=0.9,
                       sample_at=args.sample_at)
    if (work / "distill").exists() and not args.resume_distill:
        shutil.rmtree(work / "distill")  # a new student from this teacher
    resume = "latest" if args.resume_distill else None
    r3 = timed("distill", lambda: distill(dc, str(teacher), prepared, work / "distill", dataset=dataset,
                                          resume=resume))
    finals["distill"] = RunSummary.of(r3)
    student = r3.checkpoint / "official"
    table = timed("evaluation", lambda: evaluate(teacher, student, prepared, held_out, args.phases))
    if args.plot:
        plot_losses({"teacher stage 1": work / "stage1", "teacher stage 2": work / "stage2",
                     f"distill ({args.phases} phases)": work / "distill"}, args.plot)
    print(f"\nheld-out clips: {', '.join(held_out)} ({EVAL_FRAMES} frames each), {len(train_ids)} training clips, "
          f"{sum(c.frames for c in dataset.clips)} training frames, {SIZE}x{SIZE}; VAE reconstruction "
          f"{vae_psnr:.2f} dB")
    print("| variant | PSNR vs teacher 40-step CFG (dB) | PSNR vs ground truth (dB) | UNet evals / frame | s / clip |")
    print("|---|---|---|---|---|")
    for name, row in table.items():
        cells = [f"{row[k]:.2f}" if k in row else "" for k in ("psnr_vs_teacher40", "psnr_vs_ground_truth")]
        evals = f"{row['unet_evals_per_frame']:g}" if "unet_evals_per_frame" in row else ""
        secs = f"{row['seconds_per_clip']:.2f}" if "seconds_per_clip" in row else ""
        print(f"| {name} | {cells[0].replace('inf', '(itself)')} | {cells[1]} | {evals} | {secs} |")
    print("\n| phase | wall time (s) | steps | final loss (mean of last 20) |")
    print("|---|---|---|---|")
    for name, seconds in times.items():
        r = finals.get(name)
        extra = f"{r.steps} | {r.final_loss:.4f}" if r is not None else " | "
        print(f"| {name} | {seconds:.1f} | {extra} |")
    (work / "results.json").write_text(json.dumps({"table": table, "times": times, "vae_psnr": vae_psnr},
                                                  indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
