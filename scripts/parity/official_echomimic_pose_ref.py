"""Reference run, official side: EchoMimic V1 LANDMARK-POSE at 512x512 (our own script, in the
style of the shared harnesses official_echomimic_ref.py / _acc_ref.py, which cover the audio
model only).

It builds the OFFICIAL classes of antgroup/echomimic at the tiny seeded config of
official_echomimic_ref.py, except that the FaceLocator takes 3 channels (as
infer_audio2vid_pose.py builds it). It then follows infer_audio2vid_pose.py: landmark pose
files ``{i}.pkl`` rendered by the official ``FaceMeshVisualizer(draw_iris=False,
draw_mouse=False).draw_landmarks((W, H), kpts)``, stacked into the face-locator tensor, and
the official ``AudioPose2VideoPipeline`` at 512x512. The stubs are the harnesses': whisper
features stand in as fixed per-frame chunks, there is no MTCNN face crop (the reference is
already the 512 crop), and the VAE is tiny and random. The official code is imported at run
time from the worktree given on the command line; nothing of it is copied.

Saves, in OUT_DIR: the weights in the official pose layout (denoising_unet_pose.pth,
motion_module_pose.pth, reference_unet_pose.pth, face_locator_pose.pth, sd-vae-ft-mse/), the
inputs (ref.png, audio_chunks.pt, pose/{i}.pkl), face_mask_tensor.pt (the official
rendering, divided by 255), official_trace.pt (each scheduler step's model output and
latents), official_video.pt, tiny_config.json and run.json.

Usage: python official_echomimic_pose_ref.py OFFICIAL_ECHOMIMIC_WORKTREE OUT_DIR [--frames L] [--steps S]
Env: the V1 venv of the harnesses (torch==2.13.0 diffusers==0.24.0 "huggingface_hub<0.26"
transformers==4.44.2 omegaconf einops pillow "numpy<2" accelerate), plus mediapipe==0.10.21
(--no-deps), opencv-python-headless, protobuf<5, absl-py, attrs, flatbuffers and matplotlib
for the official FaceMeshVisualizer.
"""
import argparse
import json
import pickle
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

parser = argparse.ArgumentParser()
parser.add_argument("repo", type=Path)
parser.add_argument("out", type=Path)
parser.add_argument("--frames", type=int, default=4)
parser.add_argument("--steps", type=int, default=2)
parser.add_argument("--size", type=int, default=320)  # 512 is too slow for a test: see tests/parity/README.md
args = parser.parse_args()
repo, out = args.repo.resolve(), args.out.resolve()
out.mkdir(parents=True, exist_ok=True)
sys.path.insert(0, str(repo))
torch.set_num_threads(2)

from omegaconf import OmegaConf  # noqa: E402
from diffusers import AutoencoderKL, DDIMScheduler  # noqa: E402
from src.models.unet_2d_condition import UNet2DConditionModel  # noqa: E402
from src.models.unet_3d_echo import EchoUNet3DConditionModel  # noqa: E402
from src.models.face_locator import FaceLocator  # noqa: E402
from src.pipelines.pipeline_echo_mimic_pose import AudioPose2VideoPipeline  # noqa: E402
from src.utils.draw_utils import FaceMeshVisualizer  # noqa: E402
import src.models.mutual_self_attention as _msa  # noqa: E402

_f = _msa.ReferenceAttentionControl.register_reference_hooks  # the official code hard-codes CUDA here
_f.__defaults__ = tuple(torch.device("cpu") if isinstance(d, torch.device) else d for d in _f.__defaults__)
AudioPose2VideoPipeline._execution_device = property(lambda self: torch.device("cpu"))

# ---------------------------------------------------------------- networks: official_echomimic_ref.py's
torch.manual_seed(0)
base = dict(act_fn="silu", attention_head_dim=8, block_out_channels=[32, 64, 64, 64], center_input_sample=False,
            cross_attention_dim=32, down_block_types=["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
            downsample_padding=1, flip_sin_to_cos=True, freq_shift=0, in_channels=4, layers_per_block=1,
            mid_block_scale_factor=1, norm_eps=1e-5, norm_num_groups=32, out_channels=4, sample_size=8,
            up_block_types=["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3)
ref = UNet2DConditionModel.from_config(dict(base, _class_name="UNet2DConditionModel"))
infer = OmegaConf.to_container(OmegaConf.load(repo / "configs/inference/inference_v2.yaml"))  # animation_pose.yaml's
ukw = infer["unet_additional_kwargs"]
ukw["motion_module_kwargs"]["num_attention_heads"] = 8
den_cfg = dict(base, _class_name="EchoUNet3DConditionModel",
               down_block_types=["CrossAttnDownBlock3D"] * 3 + ["DownBlock3D"],
               up_block_types=["UpBlock3D"] + ["CrossAttnUpBlock3D"] * 3, mid_block_type="UNetMidBlock3DCrossAttn")
den = EchoUNet3DConditionModel.from_config(den_cfg, **ukw)
# infer_audio2vid_pose.py: FaceLocator(320, conditioning_channels=3, ...); 32 = the tiny UNet's first block
floc = FaceLocator(32, conditioning_channels=3, block_out_channels=(16, 32, 96, 256))
vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 4,
                    up_block_types=["UpDecoderBlock2D"] * 4, block_out_channels=[32, 32, 32, 32],
                    layers_per_block=1, latent_channels=4, norm_num_groups=32, sample_size=64)
g = torch.Generator().manual_seed(1)
for m in (ref, den, floc, vae):
    for p in m.parameters():
        with torch.no_grad():
            p.copy_(torch.randn(p.shape, generator=g) * 0.05)
for m in (ref, den, floc, vae):
    m.eval()

sched_kw = dict(infer["noise_scheduler_kwargs"])
sched = DDIMScheduler(**sched_kw)
_trace = []
_step = sched.step


def _traced_step(model_output, timestep, sample, **kw):
    r = _step(model_output, timestep, sample, **kw)
    _trace.append({"t": int(timestep), "model_output": model_output.clone(), "latents": r.prev_sample.clone()})
    return r


sched.step = _traced_step

# official pose layout (configs/prompts/animation_pose.yaml)
sd = den.state_dict()
torch.save({k: v for k, v in sd.items() if "motion_modules" not in k}, out / "denoising_unet_pose.pth")
torch.save({k: v for k, v in sd.items() if "motion_modules" in k}, out / "motion_module_pose.pth")
torch.save(ref.state_dict(), out / "reference_unet_pose.pth")
torch.save(floc.state_dict(), out / "face_locator_pose.pth")
vae.save_pretrained(out / "sd-vae-ft-mse")
json.dump({"unet_2d_base": base, "unet_additional_kwargs": ukw, "face_locator": {"conditioning_embedding_channels": 32,
           "conditioning_channels": 3, "block_out_channels": [16, 32, 96, 256]}, "scheduler": sched_kw},
          open(out / "tiny_config.json", "w"), indent=1)

# ---------------------------------------------------------------- inputs
H = W = args.size
L, steps, cfg, fps, seed = args.frames, args.steps, 2.5, 24, 420  # infer_audio2vid_pose.py: cfg 2.5, seed 420
rng = np.random.default_rng(2)
Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(out / "ref.png")
chunks = torch.from_numpy(rng.standard_normal((L + 2, 50, 384)).astype(np.float32))
torch.save(chunks, out / "audio_chunks.pt")


def contour_paths(edges):
    """A MediaPipe contour as paths of indices in drawing order (an eye is one closed loop,
    a brow two rows): walk the edges from an end, again until every index is placed."""
    adj = {}
    for a, b in edges:
        adj.setdefault(a, []).append(b)
        adj.setdefault(b, []).append(a)
    placed, paths = set(), []
    while len(placed) < len(adj):
        left = sorted(k for k in adj if k not in placed)
        start = next((k for k in left if sum(n not in placed for n in adj[k]) <= 1), left[0])
        path = [start]
        placed.add(start)
        while nxt := [n for n in adj[path[-1]] if n not in placed]:
            path.append(nxt[0])
            placed.add(nxt[0])
        paths.append(path)
    return paths


from mediapipe.python.solutions import face_mesh_connections as fmc  # noqa: E402

# A face in the 512 crop: eyes as ellipses, brows as arcs, pupils, nose tip; every other
# point (never drawn) scattered over the face. Pixel coordinates on a 1/64 grid, so that
# they are exact in float32 as well (GenHuman reads landmarks as float32).
scale = W / 512.0
eye_parts = {"FACEMESH_LEFT_EYE": (318, 236), "FACEMESH_RIGHT_EYE": (194, 236)}
brow_parts = {"FACEMESH_LEFT_EYEBROW": (318, 200), "FACEMESH_RIGHT_EYEBROW": (194, 200)}
base_points = np.stack([rng.uniform(150, 360, 478), rng.uniform(150, 400, 478)], 1)
(out / "pose").mkdir(exist_ok=True)
for i in range(L):
    pts = base_points + rng.normal(0, 1.5, base_points.shape)
    shift = np.array([4.0 * np.sin(i), 3.0 * np.cos(0.7 * i)])
    openness = 0.35 + 0.25 * abs(np.cos(0.9 * i))  # a blink
    for name, (cx, cy) in eye_parts.items():
        (order,) = contour_paths(getattr(fmc, name))
        for k, idx in enumerate(order):
            a = 2 * np.pi * k / len(order)
            pts[idx] = (cx + 34 * np.cos(a), cy + 34 * openness * np.sin(a))
    for name, (cx, cy) in brow_parts.items():
        for row, order in enumerate(contour_paths(getattr(fmc, name))):
            for k, idx in enumerate(order):
                u = k / (len(order) - 1) - 0.5 if len(order) > 1 else 0.0
                pts[idx] = (cx + 80 * u, cy - 12 * np.cos(np.pi * u) + 7 * row)
    pts[468] = (194 + 3 * np.sin(i), 236)  # right pupil
    pts[473] = (318 + 3 * np.sin(i), 236)  # left pupil
    pts[4] = (256, 310)  # nose tip
    pts = np.round((pts + shift) * scale * 64) / 64
    with open(out / "pose" / f"{i}.pkl", "wb") as fh:
        pickle.dump(pts.astype(np.float64), fh)

# infer_audio2vid_pose.py's face-locator input, verbatim in behaviour (device cuda -> cpu, fp32)
visualizer = FaceMeshVisualizer(draw_iris=False, draw_mouse=False)
pose_dir = out / "pose"
pose_list = []
for index in range(len(list(pose_dir.iterdir()))):
    with open(pose_dir / f"{index}.pkl", "rb") as f:
        tgt_kpts = pickle.load(f)
    tgt_musk = visualizer.draw_landmarks((W, H), tgt_kpts)
    tgt_musk_pil = Image.fromarray(np.array(tgt_musk).astype(np.uint8)).convert("RGB")
    pose_list.append(torch.Tensor(np.array(tgt_musk_pil)).permute(2, 0, 1) / 255.0)
face_mask_tensor = torch.stack(pose_list, dim=1).unsqueeze(0)
torch.save(face_mask_tensor, out / "face_mask_tensor.pt")


class StubGuider(torch.nn.Module):
    """Stands in for the whisper feature extractor: returns the fixed per-frame chunks."""
    def audio2feat(self, path):
        return None

    def feature2chunks(self, feature_array, fps):
        return chunks.numpy()


pipe = AudioPose2VideoPipeline(vae=vae, reference_unet=ref, denoising_unet=den, audio_guider=StubGuider(),
                               face_locator=floc, scheduler=sched)
ref_image_pil = Image.open(out / "ref.png").convert("RGB")
generator = torch.manual_seed(seed)
with torch.no_grad():
    video = pipe(ref_image_pil, "unused.wav", face_mask_tensor, W, H, L, steps, cfg, generator=generator,
                 audio_sample_rate=16000, context_frames=12, fps=fps, context_overlap=3).videos
torch.save(video, out / "official_video.pt")
torch.save(_trace, out / "official_trace.pt")
json.dump({"pipeline": "pose", "H": H, "W": W, "L": L, "steps": steps, "cfg": cfg, "fps": fps, "seed": seed,
           "context_frames": 12, "context_overlap": 3, "video_shape": list(video.shape),
           "timesteps": [d["t"] for d in _trace]}, open(out / "run.json", "w"), indent=1)
print("official pose video", tuple(video.shape), float(video.mean()), float(video.std()),
      "lit control px", int((face_mask_tensor > 0).any(1).sum()))
