"""Build the official-parity fixtures of tests/parity/data/ from runs of the OFFICIAL code.

  python scripts/parity/make_fixtures.py all \\
      --echomimic /tmp/official_echomimic --echomimic-v2 /tmp/official_echomimic_v2 \\
      --v1-python /tmp/venv_v1/bin/python --v2-python /tmp/venv_v2/bin/python \\
      --harnesses /work/shared/tools/parity --work /tmp/parity_out

``run`` runs the harnesses and our pose script (official side, one venv per repository; see
tests/parity/README.md) into --work. ``convert`` turns their output into compact fixtures.
``all`` does both. The converter does four things:
- it lists the official parameter names, shapes and init kinds, in order, by building the
  official networks in the official venv (the internal ``_params`` step, the only one that
  imports official code, at run time);
- it writes weights.json, regenerates every weight folder with tests/parity/official_weights.py
  and checks it against the harness output tensor by tensor (torch.equal), failing otherwise;
- it stores each run's per-step trace (timesteps, latents, model outputs, float32) as trace.npz,
  the run settings and, for V2, the official fp32-vs-fp64 floor per step;
- it keeps the inputs that cannot be regenerated (pose folders, the official control renderings
  as uint8) and records SHA-256 sums of the ones the tests regenerate from seeds.
Nothing official is imported when this file is imported; run it with the project's venv.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "tests" / "parity" / "data"


# ------------------------------------------------------------------------------------------ _params
def _params_main(family: str, repo: Path, harness_out: Path, out: Path) -> None:
    """In the official venv: write params/<module>.txt for one harness output folder."""
    import torch

    sys.path.insert(0, str(repo))
    from diffusers import AutoencoderKL

    cfg = json.loads((harness_out / "tiny_config.json").read_text())
    base, ukw = cfg["unet_2d_base"], cfg["unet_additional_kwargs"]
    den_cfg = dict(base, down_block_types=["CrossAttnDownBlock3D"] * 3 + ["DownBlock3D"],
                   up_block_types=["UpBlock3D"] + ["CrossAttnUpBlock3D"] * 3, mid_block_type="UNetMidBlock3DCrossAttn")
    from src.models.unet_2d_condition import UNet2DConditionModel

    vae_dir = harness_out / ("weights" if family == "v2" else "") / "sd-vae-ft-mse"
    nets = {"reference_unet": UNet2DConditionModel.from_config(dict(base, _class_name="UNet2DConditionModel")),
            "vae": AutoencoderKL.from_config(json.loads((vae_dir / "config.json").read_text()))}
    if family == "v2":
        from src.models.pose_encoder import PoseEncoder
        from src.models.unet_3d_emo import EMOUNet3DConditionModel
        from src.models.whisper.whisper.model import ModelDimensions, Whisper

        nets["denoising_unet"] = EMOUNet3DConditionModel.from_config(
            dict(den_cfg, _class_name="EMOUNet3DConditionModel"), **ukw)
        pe = cfg["pose_encoder"]
        nets["pose_encoder"] = PoseEncoder(pe["conditioning_embedding_channels"],
                                           conditioning_channels=pe["conditioning_channels"],
                                           block_out_channels=tuple(pe["block_out_channels"]))
        nets["whisper"] = Whisper(ModelDimensions(**cfg["whisper_dims"]))
    else:
        from src.models.face_locator import FaceLocator
        from src.models.unet_3d_echo import EchoUNet3DConditionModel

        nets["denoising_unet"] = EchoUNet3DConditionModel.from_config(
            dict(den_cfg, _class_name="EchoUNet3DConditionModel"), **ukw)
        fl = cfg["face_locator"]
        nets["face_locator"] = FaceLocator(fl["conditioning_embedding_channels"],
                                           conditioning_channels=fl["conditioning_channels"],
                                           block_out_channels=tuple(fl["block_out_channels"]))
    out.mkdir(parents=True, exist_ok=True)
    for name, net in nets.items():
        kinds = {}
        for _, module in net.named_modules():
            for pname, p in module.named_parameters(recurse=False):
                norm = isinstance(module, (torch.nn.LayerNorm, torch.nn.GroupNorm)) and pname == "weight"
                kinds[id(p)] = "n" if norm else ("m" if p.dim() >= 2 else "v")
        params = dict(net.named_parameters())
        assert len({id(p) for p in params.values()}) == len(params), "shared parameters are not supported"
        lines = [f"# official {type(net).__module__}.{type(net).__name__} ({family} harness config): state_dict "
                 "order, key shape kind (n norm weight, m >=2-d, v other, pe/sinusoids buffers)"]
        for key, value in net.state_dict(keep_vars=True).items():
            if key in params:
                kind = kinds[id(params[key])]
            elif key.endswith("pos_encoder.pe"):
                kind = "pe"
            elif key == "encoder.positional_embedding":
                kind = "sinusoids"
            else:
                raise SystemExit(f"{name}: unknown buffer {key}")
            shape = ",".join(str(s) for s in value.shape) or "-"
            lines.append(f"{key} {shape} {kind}")
        (out / f"{name}.txt").write_text("\n".join(lines) + "\n")
        print(f"{family} {name}: {len(lines) - 1} entries")


# ------------------------------------------------------------------------------------------ run
def run_harnesses(a: argparse.Namespace) -> None:
    work = Path(a.work)
    h = Path(a.harnesses)
    jobs = [
        (a.v1_python, h / "official_echomimic_ref.py", a.echomimic, work / "v1", []),
        (a.v1_python, h / "official_echomimic_acc_ref.py", a.echomimic, work / "v1_acc", []),
        (a.v1_python, ROOT / "scripts/parity/official_echomimic_pose_ref.py", a.echomimic, work / "v1_pose", []),
        (a.v2_python, h / "official_echomimic_v2_ref.py", a.echomimic_v2, work / "v2", []),
    ]
    for python, script, repo, out, extra in jobs:
        print("running", script.name, "->", out, flush=True)
        subprocess.run([python, str(script), str(repo), str(out), *extra], check=True,
                       stdout=subprocess.DEVNULL if a.quiet else None)


# ------------------------------------------------------------------------------------------ convert
def _sha_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _official_module_state(files: list[Path], order: list[str]):
    import torch

    merged = {}
    for f in files:
        merged.update(torch.load(f, map_location="cpu", weights_only=True))
    assert sorted(merged) == sorted(order), (files, len(merged), len(order))
    return {k: merged[k] for k in order}


def _trace_npz(trace_pt: Path, dest: Path) -> dict:
    import numpy as np
    import torch

    trace = torch.load(trace_pt, map_location="cpu", weights_only=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    np.savez(dest, timesteps=np.array([d["t"] for d in trace], np.int64),
             latents=torch.stack([d["latents"][0] for d in trace]).float().numpy(),
             model_output=torch.stack([d["model_output"][0] for d in trace]).float().numpy())
    return {"timesteps": [d["t"] for d in trace]}


def _floor(trace32: Path, trace64: Path) -> dict:
    import torch

    a = torch.load(trace32, map_location="cpu", weights_only=True)
    b = torch.load(trace64, map_location="cpu", weights_only=True)
    return {key: [float((x[key].double() - y[key]).abs().max()) for x, y in zip(a, b)]
            for key in ("latents", "model_output")}


def _control_npz(tensor_pt: Path, dest: Path) -> None:
    """The official control tensor (1, 3, L, H, W) = uint8 / 255, kept as uint8 (L, H, W, 3)."""
    import numpy as np
    import torch

    t = torch.load(tensor_pt, map_location="cpu", weights_only=True)[0]
    u8 = torch.round(t * 255).to(torch.uint8)
    assert torch.equal(u8.float() / 255.0, t), "control tensor is not uint8 / 255"
    np.savez_compressed(dest, control=u8.permute(1, 2, 3, 0).numpy())


def _module_entry(name: str, params_file: str, official, **extra) -> dict:
    from tests.parity.official_weights import tensors_sha256

    return {"name": name, "params": params_file, **extra, "sha256": tensors_sha256(official)}


def convert(a: argparse.Namespace) -> None:
    import numpy as np
    import torch
    from PIL import Image

    sys.path.insert(0, str(ROOT))
    from tests.parity import official_weights as ow

    work, out = Path(a.work), Path(a.out)
    params = out / "params"
    tmp = Path(tempfile.mkdtemp(prefix="parity_params_"))
    for family, python, repo, folder in (("v1", a.v1_python, a.echomimic, "v1"),
                                         ("v1_pose", a.v1_python, a.echomimic, "v1_pose"),
                                         ("v2", a.v2_python, a.echomimic_v2, "v2")):
        subprocess.run([python, __file__, "_params", "v2" if family == "v2" else "v1", str(repo), str(work / folder),
                        str(tmp / family)], check=True)
    # one file per distinct parameter list (V1 and V2 share the reference UNet, the VAE, ...)
    params.mkdir(parents=True, exist_ok=True)
    names: dict[tuple[str, str], str] = {}
    by_content: dict[str, str] = {}
    for family in ("v1", "v1_pose", "v2"):
        for f in sorted((tmp / family).glob("*.txt")):
            body = "".join(f.read_text().splitlines(keepends=True)[1:])
            if body not in by_content:
                stem = "face_locator_pose" if (family, f.stem) == ("v1_pose", "face_locator") else f.stem
                if f"params/{stem}.txt" in by_content.values():  # same network, other parameters
                    stem = f"{stem}_{family}"
                by_content[body] = f"params/{stem}.txt"
                (out / by_content[body]).write_text(f.read_text())
            names[(family, f.stem)] = by_content[body]
    order = {key: [e[0] for e in ow.read_params(out / rel)] for key, rel in names.items()}

    def unet_config(base):
        return dict(base, _class_name="UNet2DConditionModel")

    def write_case(case: str, spec: dict, official_dirs: list[Path]) -> None:
        case_dir = out / case
        case_dir.mkdir(parents=True, exist_ok=True)
        (case_dir / "weights.json").write_text(json.dumps(spec, indent=1) + "\n")
        regen = Path(tempfile.mkdtemp(prefix=f"parity_{case}_"))
        ow.regenerate(case, regen, data=out)
        for official in official_dirs:
            problems = ow.compare_folders(regen, official)
            if problems:
                raise SystemExit(f"{case}: regeneration differs from {official}:\n  " + "\n  ".join(problems))
            n = sum(len(s) for rel, s in ow.official_state_files(official).items())
            print(f"{case}: regenerated weights equal {official} ({n} tensors, torch.equal)")
        shutil.rmtree(regen)

    # ---------------------------------------------------------------- V1 audio + acc
    v1, v1a, v2w = work / "v1", work / "v1_acc", work / "v2" / "weights"
    whisper_state = torch.load(v2w / "audio_processor/tiny.pt", map_location="cpu", weights_only=True)
    whisper = _module_entry("whisper", names[("v2", "whisper")], whisper_state["model_state_dict"], init="fan_in",
                            seed=6, note="not in the V1 harness output: GenHuman's loader needs a whisper file; this "
                                         "is the V2 harness's tiny official whisper (audio tokens are fed directly, "
                                         "so its weights never matter)")
    cfg = json.loads((v1 / "tiny_config.json").read_text())
    vae_cfg = json.loads((v1 / "sd-vae-ft-mse/config.json").read_text())
    from safetensors.torch import load_file

    def vae_state(d):
        return {k: v for k, v in load_file(str(d / "sd-vae-ft-mse/diffusion_pytorch_model.safetensors")).items()}

    def v1_spec(folder: Path, family: str, suffixes: list[str], floc_file: str, ref_file: str) -> dict:
        den_order = order[(family, "denoising_unet")]
        s0 = suffixes[0]
        den = _official_module_state([folder / f"denoising_unet{s0}.pth", folder / f"motion_module{s0}.pth"], den_order)
        vae = vae_state(folder)
        return {
            "init": "scaled_normal", "seed": 1,
            "source": "official_echomimic_ref.py / _acc_ref.py (shared harnesses), or scripts/parity/"
                      "official_echomimic_pose_ref.py: ref, den, face locator, vae from one generator",
            "modules": [
                _module_entry("reference_unet", names[(family, "reference_unet")],
                              _official_module_state([folder / ref_file], order[(family, "reference_unet")])),
                _module_entry("denoising_unet", names[(family, "denoising_unet")], den),
                _module_entry("face_locator", names[(family, "face_locator")],
                              _official_module_state([folder / floc_file], order[(family, "face_locator")])),
                _module_entry("vae", names[(family, "vae")], {k: vae[k] for k in order[(family, "vae")]}),
                whisper,
            ],
            "files": [f for s in suffixes for f in (
                {"module": "denoising_unet", "path": f"denoising_unet{s}.pth", "select": "not_motion"},
                {"module": "denoising_unet", "path": f"motion_module{s}.pth", "select": "motion"})] + [
                {"module": "reference_unet", "path": ref_file},
                {"module": "face_locator", "path": floc_file},
                {"module": "vae", "path": "sd-vae-ft-mse", "format": "diffusers",
                 "config": json.loads((folder / "sd-vae-ft-mse/config.json").read_text())},
                {"module": "whisper", "path": "audio_processor/whisper_tiny.pt", "format": "whisper",
                 "dims": whisper_state["dims"]},
            ],
            "json_files": {"sd-image-variations-diffusers/unet/config.json": unet_config(cfg["unet_2d_base"])},
            "tiny_config": json.loads((folder / "tiny_config.json").read_text()),
        }

    assert vae_cfg == json.loads((v1a / "sd-vae-ft-mse/config.json").read_text())
    write_case("v1", v1_spec(v1, "v1", ["", "_acc"], "face_locator.pth", "reference_unet.pth"), [v1, v1a])
    for run_name, folder in (("audio", v1), ("acc", v1a)):
        run = json.loads((folder / "run.json").read_text())
        H, W, L = run["H"], run["W"], run["L"]
        inputs = ow.v1_inputs(H, W, L)
        assert np.array_equal(np.array(Image.open(folder / "ref.png")), inputs["image"])
        chunks = torch.load(folder / "audio_chunks.pt", weights_only=True).numpy()
        assert np.array_equal(chunks, inputs["audio_chunks"])
        mask = torch.load(folder / "face_mask.pt", weights_only=True)[0, 0, 0].numpy()
        rect = [16, 48, 20, 44]
        expected = np.zeros((H, W), np.float32)
        expected[rect[0]:rect[1], rect[2]:rect[3]] = 1
        assert np.array_equal(mask, expected)
        meta = _trace_npz(folder / "official_trace.pt", out / "v1" / "runs" / run_name / "trace.npz")
        run.update(meta, variant=run_name, mask_rect_rows_cols=rect, clamp_noise=1.5, window_shift=2,
                   inputs_sha256={"image": ow.array_sha256(inputs["image"]),
                                  "audio_chunks": ow.array_sha256(inputs["audio_chunks"])},
                   official_video_mean_std=[float(x) for x in _video_stats(folder / "official_video.pt")])
        (out / "v1" / "runs" / run_name / "run.json").write_text(json.dumps(run, indent=1) + "\n")

    # ---------------------------------------------------------------- V1 landmark pose
    vp = work / "v1_pose"
    write_case("v1_pose", v1_spec(vp, "v1_pose", ["_pose"], "face_locator_pose.pth", "reference_unet_pose.pth"), [vp])
    run = json.loads((vp / "run.json").read_text())
    H, W, L = run["H"], run["W"], run["L"]
    inputs = ow.v1_inputs(H, W, L)
    assert np.array_equal(np.array(Image.open(vp / "ref.png")), inputs["image"])
    assert np.array_equal(torch.load(vp / "audio_chunks.pt", weights_only=True).numpy(), inputs["audio_chunks"])
    dest = out / "v1_pose" / "inputs" / "pose"
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(vp / "pose", dest)
    _control_npz(vp / "face_mask_tensor.pt", out / "v1_pose" / "inputs" / "control.npz")
    meta = _trace_npz(vp / "official_trace.pt", out / "v1_pose" / "runs" / "pose" / "trace.npz")
    run.update(meta, variant="pose", clamp_noise=None, window_shift=3,
               inputs_sha256={"image": ow.array_sha256(inputs["image"]),
                              "audio_chunks": ow.array_sha256(inputs["audio_chunks"])},
               official_video_mean_std=[float(x) for x in _video_stats(vp / "official_video.pt")])
    (out / "v1_pose" / "runs" / "pose" / "run.json").write_text(json.dumps(run, indent=1) + "\n")

    # ---------------------------------------------------------------- V2 + V2 acc
    v2 = work / "v2"
    cfg2 = json.loads((v2 / "tiny_config.json").read_text())
    den_order = order[("v2", "denoising_unet")]
    spec = {
        "init": "fan_in",
        "source": "official_echomimic_v2_ref.py (shared harness): randomize(model, seed) per network",
        "modules": [
            _module_entry("reference_unet", names[("v2", "reference_unet")],
                          _official_module_state([v2w / "reference_unet.pth"], order[("v2", "reference_unet")]),
                          seed=1),
            _module_entry("denoising_unet", names[("v2", "denoising_unet")],
                          _official_module_state([v2w / "denoising_unet.pth", v2w / "motion_module.pth"], den_order),
                          seed=2),
            _module_entry("denoising_unet_acc", names[("v2", "denoising_unet")],
                          _official_module_state([v2w / "denoising_unet_acc.pth", v2w / "motion_module_acc.pth"],
                                                 den_order), seed=3),
            _module_entry("pose_encoder", names[("v2", "pose_encoder")],
                          _official_module_state([v2w / "pose_encoder.pth"], order[("v2", "pose_encoder")]), seed=4),
            _module_entry("vae", names[("v2", "vae")], {k: vae_state(v2w)[k] for k in order[("v2", "vae")]}, seed=5),
            dict(whisper, note="official_echomimic_v2_ref.py's tiny official whisper"),
        ],
        "files": [
            {"module": "denoising_unet", "path": "denoising_unet.pth", "select": "not_motion"},
            {"module": "denoising_unet", "path": "motion_module.pth", "select": "motion"},
            {"module": "denoising_unet_acc", "path": "denoising_unet_acc.pth", "select": "not_motion"},
            {"module": "denoising_unet_acc", "path": "motion_module_acc.pth", "select": "motion"},
            {"module": "reference_unet", "path": "reference_unet.pth"},
            {"module": "pose_encoder", "path": "pose_encoder.pth"},
            {"module": "vae", "path": "sd-vae-ft-mse", "format": "diffusers",
             "config": json.loads((v2w / "sd-vae-ft-mse/config.json").read_text())},
            {"module": "whisper", "path": "audio_processor/tiny.pt", "format": "whisper",
             "dims": whisper_state["dims"]},
        ],
        "json_files": {"sd-image-variations-diffusers/unet/config.json":
                       json.loads((v2w / "sd-image-variations-diffusers/unet/config.json").read_text())},
        "tiny_config": cfg2,
    }
    write_case("v2", spec, [v2w])
    features = np.load(v2 / "inputs/whisper_features.npy")
    chunks = np.load(v2 / "inputs/whisper_chunks.npy")
    rows = []
    for chunk in chunks:
        parts = chunk.reshape(-1, *features.shape[1:])
        rows.append([int(next(k for k in range(len(features)) if np.array_equal(features[k], p))) for p in parts])
    first = json.loads((v2 / "runs/v2_bank32/run.json").read_text())
    inputs = ow.v2_inputs(first["H"], first["W"], rows)
    assert np.array_equal(inputs["features"], features) and np.array_equal(inputs["audio_chunks"], chunks)
    assert np.array_equal(np.array(Image.open(v2 / "inputs/ref.png")), inputs["image"])
    dest = out / "v2" / "inputs" / "pose"
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(v2 / "inputs/pose", dest)
    _control_npz(v2 / "inputs/poses_tensor.pt", out / "v2" / "inputs" / "control.npz")
    for run_name, variant in (("v2_bank32", "v2"), ("v2_acc_bank32", "v2_acc")):
        rdir = v2 / "runs" / run_name
        run = json.loads((rdir / "run.json").read_text())
        internals = torch.load(rdir / "official_internals.pt", map_location="cpu", weights_only=True)
        meta = _trace_npz(rdir / "official_trace.pt", out / "v2" / "runs" / variant / "trace.npz")
        asis_run = v2 / "runs" / run_name.replace("bank32", "asis")
        asis = _floor(rdir / "official_trace.pt", asis_run / "official_trace.pt")
        run.update(meta, variant=variant, harness_run=run_name, clamp_noise=1.5, window_shift=3,
                   fp64_floor=_floor(rdir / "official_trace.pt", rdir / "official_trace_fp64.pt"),
                   asis_minus_bank32=asis, chunk_rows=rows,
                   initial_latents_sha256=ow.array_sha256(internals["initial_latents"].numpy()),
                   inputs_sha256={"image": ow.array_sha256(inputs["image"]),
                                  "features": ow.array_sha256(inputs["features"])},
                   official_video_mean_std=[float(x) for x in _video_stats(rdir / "official_video.pt")])
        (out / "v2" / "runs" / variant / "run.json").write_text(json.dumps(run, indent=1) + "\n")
    shutil.rmtree(tmp)
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"fixtures in {out}: {total / 1e6:.2f} MB")


def _video_stats(path: Path):
    import torch

    v = torch.load(path, map_location="cpu", weights_only=True).double()
    return float(v.mean()), float(v.std())


def main(argv=None) -> None:
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] == "_params":
        _, family, repo, harness_out, out = argv
        return _params_main(family, Path(repo), Path(harness_out), Path(out))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["run", "convert", "all"])
    p.add_argument("--echomimic", required=True, help="worktree of antgroup/echomimic")
    p.add_argument("--echomimic-v2", required=True, help="worktree of antgroup/echomimic_v2")
    p.add_argument("--v1-python", required=True, help="python of the venv for antgroup/echomimic")
    p.add_argument("--v2-python", required=True, help="python of the venv for antgroup/echomimic_v2")
    p.add_argument("--harnesses", default="/work/shared/tools/parity", help="folder of official_echomimic*_ref.py")
    p.add_argument("--work", default="/tmp/parity_out", help="where the official runs write")
    p.add_argument("--out", default=str(DEFAULT_OUT))
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    if a.command in ("run", "all"):
        run_harnesses(a)
    if a.command in ("convert", "all"):
        convert(a)


if __name__ == "__main__":
    main()
