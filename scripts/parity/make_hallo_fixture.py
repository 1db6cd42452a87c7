"""Build the Hallo parity fixture (tests/parity/data/hallo/) from runs of the OFFICIAL code.

  python scripts/parity/make_hallo_fixture.py all --official /tmp/official_hallo \\
      --python /tmp/venv-hallo/bin/python --harness /work/shared/tools/parity/official_hallo_ref.py \\
      --work /tmp/hallo_parity

``run`` (official venv, launched from here) runs the shared harness ``official_hallo_ref.py``:
- twice unmodified ("plain", "plain_repeat"), to check it is deterministic (byte-identical files);
- under ``variant`` wrappers that patch the official classes from outside, never the files:
  "asis" only records the initial noise of each clip and the official parameter order (its
  files must equal "plain"'s); "bank32" turns off the official fp16 cast of the reference bank;
  "fp64" runs the same weights and inputs in float64 with a float64 bank (the official code's
  own rounding floor is |bank32 - fp64|);
- and ``scheduler``: the official DDIM timesteps of Hallo's inference config at 40 steps.
``convert`` (project venv) writes the fixture and checks that tests/parity/hallo_fixture.py
regenerates net.pth, the VAE, the inputs and the noise bit for bit.
Nothing official is imported when this file is imported.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import runpy
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = ROOT / "tests" / "parity" / "data" / "hallo"
OFFICIAL_COMMIT = "8fd7c572a3d43c2a9c1a5473219ce4fc1b6e3ed2"
SCHEDULER_STEPS = 40
VARIANTS = ("asis", "bank32", "fp64")


# --------------------------------------------------------------- official side (official venv)
def _stub_xformers() -> None:
    """The official motion module imports xformers unconditionally (as the harness does)."""
    import importlib.machinery
    import types

    xf = types.ModuleType("xformers")
    ops = types.ModuleType("xformers.ops")
    xf.__spec__ = importlib.machinery.ModuleSpec("xformers", None)
    ops.__spec__ = importlib.machinery.ModuleSpec("xformers.ops", None)
    setattr(xf, "ops", ops)
    sys.modules.setdefault("xformers", xf)
    sys.modules.setdefault("xformers.ops", ops)


def _variant_main(variant: str, repo: Path, harness: Path, out: Path) -> None:
    """Run the harness under ``variant``'s patches; also save the noise and the parameter order."""
    import torch

    sys.path.insert(0, str(repo))
    _stub_xformers()
    import hallo.models.mutual_self_attention as msa
    from hallo.animate.face_animate import FaceAnimatePipeline
    from hallo.models.audio_proj import AudioProjModel

    bank_dtype = {"asis": torch.float16, "bank32": torch.float32, "fp64": torch.float64}[variant]
    msa.ReferenceAttentionControl.update.__defaults__ = (bank_dtype,)
    noise: list[torch.Tensor] = []
    prepare_latents = FaceAnimatePipeline.prepare_latents

    def recording_prepare_latents(self, *args, **kwargs):
        if variant == "fp64":  # draw the float32 noise of the other runs, then widen it
            args = tuple(torch.float32 if a is torch.float64 else a for a in args)
        latents = prepare_latents(self, *args, **kwargs)
        noise.append(latents.clone())
        return latents.double() if variant == "fp64" else latents

    FaceAnimatePipeline.prepare_latents = recording_prepare_latents
    if variant == "fp64":
        call, project = FaceAnimatePipeline.__call__, AudioProjModel.forward

        def call64(self, *args, **kwargs):
            for m in (self.vae, self.reference_unet, self.denoising_unet, self.face_locator, self.image_proj):
                m.double()
            return call(self, *args, **kwargs)

        def project64(self, audio_embeds):
            self.double()
            return project(self, audio_embeds.double())

        FaceAnimatePipeline.__call__ = call64
        AudioProjModel.forward = project64
    sys.argv = [str(harness), str(repo), str(out)]
    scope = runpy.run_path(str(harness), run_name="__main__")
    torch.save(noise, out / "noise.pt")
    _write_param_order(scope["net"], scope["vae"], out / "param_order.json")


def _write_param_order(net, vae, path: Path):
    """state_dict order with shapes and kinds, as in tests/parity/data/params/*.txt."""
    path.write_text(json.dumps({"net": _param_entries(net), "vae": _param_entries(vae)}))


def _param_entries(module):
    """[key, shape, kind] in state_dict order; kind: n (a norm weight), m (2 or more
    dimensions), v (another parameter), pe (the motion module's buffer, never drawn)."""
    from torch import nn

    norms = {f"{prefix}.weight" for prefix, m in module.named_modules() if isinstance(m, (nn.LayerNorm, nn.GroupNorm))}
    buffers = {k for k, _ in module.named_buffers()}
    entries = list(module.state_dict().items())
    # the harness draws in parameters() order: it must be state_dict order less the buffers
    assert [k for k, _ in entries if k not in buffers] == [k for k, _ in module.named_parameters()]
    assert all(k.endswith(".pe") for k, _ in entries if k in buffers), "unexpected buffer"
    kinds = ["pe" if k in buffers else "n" if k in norms else "m" if v.dim() >= 2 else "v" for k, v in entries]
    return [[k, list(v.shape), kind] for (k, v), kind in zip(entries, kinds)]


def _scheduler_main(repo: Path, out: Path) -> None:
    """The official inference scheduler at 40 steps (config as in the harness / spec 1.6)."""
    import diffusers
    from diffusers import DDIMScheduler
    from omegaconf import OmegaConf

    kwargs = OmegaConf.to_container(OmegaConf.load(repo / "configs/inference/default.yaml").noise_scheduler_kwargs)
    kwargs.update(rescale_betas_zero_snr=True, timestep_spacing="trailing", prediction_type="v_prediction")
    sched = DDIMScheduler(**kwargs)
    out.write_text(json.dumps(_scheduler_record(sched, kwargs, diffusers.__version__), indent=1))
    np.save(out.with_suffix(".steps.npy"), _step_outputs(sched))


def _step_outputs(sched):
    """prev_sample of each of the 40 steps from one fixed (model_output, sample), v-prediction, eta 0."""
    import torch

    g = torch.Generator().manual_seed(0)
    model_output, sample = torch.randn((2, 1, 4, 2, 8, 8), generator=g)
    sched.set_timesteps(SCHEDULER_STEPS)
    return np.stack([sched.step(model_output, t, sample, return_dict=False)[0].numpy() for t in sched.timesteps])


def _scheduler_record(sched, kwargs, version):
    sched.set_timesteps(SCHEDULER_STEPS)
    ts = [int(t) for t in sched.timesteps]
    step = sched.config.num_train_timesteps // SCHEDULER_STEPS
    prev = [t - step for t in ts]
    ac = sched.alphas_cumprod
    all_ac = ac.numpy().astype(np.float32)
    return {"diffusers": version, "config": kwargs, "num_inference_steps": SCHEDULER_STEPS,
            "timesteps": ts, "prev_timesteps": prev,
            "alphas_cumprod": [float(ac[t]) for t in ts],
            "alphas_cumprod_prev": [float(ac[p]) if p >= 0 else float(sched.final_alpha_cumprod) for p in prev],
            "final_alpha_cumprod": float(sched.final_alpha_cumprod), "init_noise_sigma": float(sched.init_noise_sigma),
            "all_alphas_cumprod_sha256": hashlib.sha256(all_ac.tobytes()).hexdigest()}


# ------------------------------------------------------------------------------- run (driver)
def _files_sha(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def run(official: Path, python: Path, harness: Path, work: Path) -> None:
    work.mkdir(parents=True, exist_ok=True)
    env_cmd = [str(python), "-c", "import torch, diffusers, transformers, numpy; print(torch.__version__, "
               "diffusers.__version__, transformers.__version__, numpy.__version__)"]
    versions = subprocess.run(env_cmd, check=True, capture_output=True, text=True).stdout.split()
    timings = {}
    jobs = [(name, [str(python), str(harness), str(official), str(work / name)]) for name in ("plain", "plain_repeat")]
    jobs += [(v, [str(python), __file__, "variant", v, str(official), str(harness), str(work / v)]) for v in VARIANTS]
    for name, cmd in jobs:
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        timings[name] = round(time.perf_counter() - start, 1)
        print(f"{name}: {timings[name]} s", flush=True)
    subprocess.run([str(python), __file__, "scheduler", str(official), str(work / "scheduler_official.json")],
                   check=True)
    plain, repeat, asis = (_files_sha(work / n) for n in ("plain", "plain_repeat", "asis"))
    if plain != repeat:
        changed = [k for k in plain if plain[k] != repeat.get(k)]
        raise SystemExit(f"the official harness is not deterministic: {changed} differ between two runs")
    differ = [k for k in plain if asis.get(k) != plain[k]]
    if differ:
        raise SystemExit(f"the recording wrapper changed the harness output: {differ}")
    meta = {"official_commit": OFFICIAL_COMMIT, "versions": dict(zip(("torch", "diffusers", "transformers", "numpy"),
                                                                   versions)),
            "seconds": timings, "harness_files_sha256": plain}
    (work / "meta.json").write_text(json.dumps(meta, indent=1))
    print("deterministic: two plain runs byte-identical;", len(plain), "files")


# ---------------------------------------------------------------------------- convert (project)
def _trace_arrays(trace: list[dict], clip_steps: int) -> dict:
    return {"timesteps": np.array([e["t"] for e in trace], dtype=np.int64),
            "clip": np.array([i // clip_steps for i in range(len(trace))], dtype=np.int64),
            "model_output": np.stack([e["model_output"][0].float().numpy() for e in trace]),
            "latents": np.stack([e["latents"][0].float().numpy() for e in trace])}


def _differences(a: list[dict], b: list[dict]) -> dict[str, list[float]]:
    """Per step max |a - b| of the latents and of the model output."""
    return {key: [float((x[key].double() - y[key].double()).abs().max()) for x, y in zip(a, b)]
            for key in ("latents", "model_output")}


def convert(work: Path, data: Path) -> None:
    import torch

    sys.path.insert(0, str(ROOT))
    from tests.parity import hallo_fixture as fx
    from tests.parity.official_weights import array_sha256, read_params, tensors_sha256

    meta = json.loads((work / "meta.json").read_text())
    asis = work / "asis"
    data.mkdir(parents=True, exist_ok=True)
    (data / "runs").mkdir(exist_ok=True)
    order = json.loads((asis / "param_order.json").read_text())
    lines = ["# official hallo Net (reference_unet, denoising_unet, face_locator, imageproj, audioproj; harness "
             "config): state_dict order, key shape kind (n norm weight, m >=2-d, v other, pe buffer)"]
    lines += [f"{k} {','.join(map(str, s)) or '-'} {kind}" for k, s, kind in order["net"]]
    (data / "net_params.txt").write_text("\n".join(lines) + "\n")
    shared_vae = [(k, list(s), kind) for k, s, kind in read_params(data.parent / fx.VAE_PARAMS)]
    if shared_vae != [tuple(e) for e in order["vae"]]:
        raise SystemExit(f"the official VAE's parameters differ from {fx.VAE_PARAMS}: write a Hallo list instead")
    official_net = torch.load(asis / "net.pth", map_location="cpu", weights_only=True)
    from safetensors.torch import load_file

    official_vae = load_file(str(asis / "sd-vae-ft-mse" / "diffusion_pytorch_model.safetensors"))
    vae_order = [k for k, _, _ in order["vae"]]
    spec = {
        "init": "one torch.Generator().manual_seed(1) for net then vae, in state_dict order (buffers skipped); "
                "each parameter torch.randn(shape, generator=g) * scale",
        "seed": 1,
        "modules": [{"name": "net", "params": "net_params.txt", "scale": 0.05, "file": "net.pth",
                     "sha256": tensors_sha256(official_net)},
                    {"name": "vae", "params": "../" + fx.VAE_PARAMS, "scale": 0.3, "file": "sd-vae-ft-mse",
                     "sha256": tensors_sha256({k: official_vae[k] for k in vae_order}),
                     "config": json.loads((asis / "sd-vae-ft-mse" / "config.json").read_text())}],
        "file_sha256": {k: v for k, v in meta["harness_files_sha256"].items() if k in
                        ("net.pth", "sd-vae-ft-mse/diffusion_pytorch_model.safetensors", "sd-vae-ft-mse/config.json")},
    }
    (data / "weights.json").write_text(json.dumps(spec, indent=1) + "\n")
    (data / "tiny_config.json").write_text((asis / "tiny_config.json").read_text())

    inputs = torch.load(asis / "inputs.pt", map_location="cpu", weights_only=True)
    masks = {f"{kind}_mask_{i}": m.numpy()
             for kind in ("full", "face", "lip") for i, m in enumerate(inputs[f"{kind}_mask"])}
    np.savez_compressed(data / "inputs.npz", face_region=inputs["face_region"].numpy(), **masks)
    noise = torch.load(asis / "noise.pt", map_location="cpu", weights_only=True)
    harness_run = json.loads((asis / "run.json").read_text())
    traces = {v: torch.load(work / v / "official_trace.pt", map_location="cpu", weights_only=False) for v in VARIANTS}
    video = torch.load(asis / "official_video.pt", map_location="cpu", weights_only=True)
    clip_steps = harness_run["steps"]
    for v in ("asis", "bank32"):
        (data / "runs" / v).mkdir(exist_ok=True)
        np.savez_compressed(data / "runs" / v / "trace.npz", **_trace_arrays(traces[v], clip_steps))
    run_json = dict(harness_run, official_commit=meta["official_commit"], official_versions=meta["versions"],
                    harness="shared/tools/parity/official_hallo_ref.py", trace_steps=len(traces["asis"]),
                    input_sha256={k: array_sha256(t.numpy()) for k, t in inputs.items() if torch.is_tensor(t)},
                    noise_sha256=[array_sha256(n.numpy()) for n in noise],
                    video_sha256=array_sha256(video.numpy()), video_mean=float(video.double().mean()),
                    video_std=float(video.double().std()),
                    video_frame_mean=video[0].double().mean(dim=(2, 3)).T.tolist(),
                    fp64_floor=_differences(traces["bank32"], traces["fp64"]),
                    asis_minus_bank32=_differences(traces["asis"], traces["bank32"]),
                    asis_minus_fp64=_differences(traces["asis"], traces["fp64"]))
    (data / "run.json").write_text(json.dumps(run_json, indent=1) + "\n")
    _write_scheduler(work, data)
    _check_regeneration(fx, asis, official_net, official_vae, inputs, noise)


def _write_scheduler(work: Path, data: Path) -> None:
    """The official record, plus whether the project's diffusers gives the same schedule and steps."""
    import diffusers
    from diffusers import DDIMScheduler

    official = json.loads((work / "scheduler_official.json").read_text())
    ours = _scheduler_record(DDIMScheduler(**official["config"]), official["config"], diffusers.__version__)
    compared = ("timesteps", "alphas_cumprod", "alphas_cumprod_prev", "final_alpha_cumprod", "init_noise_sigma",
                "all_alphas_cumprod_sha256")
    same = {k: ours[k] == official[k] for k in compared}
    official_steps = np.load(work / "scheduler_official.steps.npy").astype(np.float64)
    step_diff = float(np.abs(_step_outputs(DDIMScheduler(**official["config"])) - official_steps).max())
    same["step_outputs"] = step_diff == 0.0
    official["project_diffusers"] = {"version": diffusers.__version__, "identical": same,
                                     "step_outputs_max_abs_diff": step_diff}
    (data / "scheduler_40.json").write_text(json.dumps(official, indent=1) + "\n")
    print(f"scheduler: official diffusers {official['diffusers']} vs project {diffusers.__version__}: {same}")


def _check_regeneration(fx, asis, official_net, official_vae, inputs, noise):
    import tempfile

    import torch

    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = fx.regenerate(Path(tmp) / "hallo")
        net = torch.load(folder / "net.pth", map_location="cpu", weights_only=True)
        problems += _compare_states("net.pth", net, official_net, ordered=True)
        from safetensors.torch import load_file

        vae = load_file(str(folder / "sd-vae-ft-mse" / "diffusion_pytorch_model.safetensors"))
        problems += _compare_states("vae", vae, official_vae, ordered=False)
        for rel, digest in _files_sha(folder).items():
            official_file = asis / rel
            same = official_file.exists() and hashlib.sha256(official_file.read_bytes()).hexdigest() == digest
            # net.pth's bytes differ: torch.save pickles state_dict()'s per-module _metadata too
            print(f"file {rel}: {'byte-identical to' if same else 'tensors equal, bytes differ from'} the harness's")
    ours = fx.inputs()
    for k, t in inputs.items():
        theirs = t if isinstance(t, list) else [t]
        mine = ours[k] if isinstance(ours[k], list) else [ours[k]]
        if len(mine) != len(theirs) or not all(torch.equal(a, b) and a.dtype == b.dtype for a, b in zip(mine, theirs)):
            problems.append(f"input {k} differs")
    regenerated_noise = fx.initial_noise()
    if len(regenerated_noise) != len(noise) or not all(torch.equal(a, b) for a, b in zip(regenerated_noise, noise)):
        problems.append("initial noise differs")
    if problems:
        raise SystemExit("regeneration is not bit-identical: " + "; ".join(problems))
    print(f"regenerated == harness, bit for bit: net.pth {len(official_net)} tensors, vae {len(official_vae)} tensors, "
          f"{len(inputs)} inputs, {len(noise)} noise draws")


def _compare_states(name: str, mine: dict, theirs: dict, ordered: bool) -> list[str]:
    import torch

    if (list(mine) if ordered else sorted(mine)) != (list(theirs) if ordered else sorted(theirs)):
        return [f"{name}: keys differ ({len(mine)} vs {len(theirs)})"]
    bad = [k for k in theirs if mine[k].dtype != theirs[k].dtype or not torch.equal(mine[k], theirs[k])]
    return [f"{name}: {len(bad)} tensors differ, first {bad[0]}"] if bad else []


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("run", "all"):
        s = sub.add_parser(name)
        s.add_argument("--official", type=Path, required=True, help="official hallo worktree")
        s.add_argument("--python", type=Path, required=True, help="python of the official venv")
        s.add_argument("--harness", type=Path, required=True, help="shared official_hallo_ref.py")
        s.add_argument("--work", type=Path, required=True)
        s.add_argument("--data", type=Path, default=DEFAULT_DATA)
    s = sub.add_parser("convert")
    s.add_argument("--work", type=Path, required=True)
    s.add_argument("--data", type=Path, default=DEFAULT_DATA)
    s = sub.add_parser("variant", help="(official venv) one patched harness run")
    s.add_argument("variant", choices=VARIANTS)
    s.add_argument("official", type=Path)
    s.add_argument("harness", type=Path)
    s.add_argument("out", type=Path)
    s = sub.add_parser("scheduler", help="(official venv) the official scheduler at 40 steps")
    s.add_argument("official", type=Path)
    s.add_argument("out", type=Path)
    a = p.parse_args(argv)
    if a.cmd == "variant":
        _variant_main(a.variant, a.official, a.harness, a.out)
    elif a.cmd == "scheduler":
        _scheduler_main(a.official, a.out)
    else:
        if a.cmd in ("run", "all"):
            run(a.official, a.python, a.harness, a.work)
        if a.cmd in ("convert", "all"):
            convert(a.work, a.data)


if __name__ == "__main__":
    main()
