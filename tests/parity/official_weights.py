"""Regenerate the official-layout weight folders of the parity fixtures, bit for bit.

The harnesses (``official_echomimic*_ref.py``) fill the OFFICIAL networks with seeded random
weights. Those weights depend only on the seed, the official parameter order and shapes, and
the init rule, so the fixtures do not ship the 25-100 MB of ``.pth`` files. They ship instead:

- ``params/<module>.txt``: the official ``state_dict`` of one network, in order, one entry
  per line, ``key shape kind``. ``shape`` is comma-separated. ``kind`` is ``n`` (a LayerNorm
  or GroupNorm weight), ``m`` (a parameter of 2 or more dimensions), ``v`` (any other
  parameter), or a buffer: ``pe`` (the motion module's sinusoidal table) or ``sinusoids``
  (whisper's encoder position table).
- ``<case>/weights.json``: the init rule, the module order and seeds, which file each
  network is saved to, the configs written next to them, and a SHA-256 of each network's
  tensors, checked after regeneration.

The init rules, as the harnesses write them:
- ``scaled_normal`` (V1 harnesses): one ``torch.Generator().manual_seed(seed)`` for all the
  networks in turn; every parameter ``p.copy_(torch.randn(p.shape, generator=g) * 0.05)``.
- ``fan_in`` (V2 harness): one generator per network (its own ``seed`` in weights.json). Norm weights get
  ``1 + 0.1 * randn``, tensors of 2 or more dimensions ``randn / fan_in ** 0.5`` (fan_in =
  ``p[0].numel()``), and everything else ``0.05 * randn``.

The parameter draws follow ``module.parameters()`` order, which is the order of the
parameters in ``state_dict()``. Buffers are computed the way the official code computes
them. Only torch (and safetensors for the VAE folder) is needed; no official code.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import torch

DATA = Path(__file__).resolve().parent / "data"


class RegenerationError(AssertionError):
    pass


def read_params(path: Path) -> list[tuple[str, tuple[int, ...], str]]:
    entries = []
    for line in Path(path).read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, shape, kind = line.split()
        entries.append((key, tuple(int(s) for s in shape.split(",")) if shape != "-" else (), kind))
    return entries


def _pe(shape: tuple[int, ...]) -> torch.Tensor:
    """The official motion_module.PositionalEncoding buffer, shape (1, max_len, d_model)."""
    _, max_len, d_model = shape
    position = torch.arange(max_len).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
    pe = torch.zeros(1, max_len, d_model)
    pe[0, :, 0::2] = torch.sin(position * div_term)
    pe[0, :, 1::2] = torch.cos(position * div_term)
    return pe


def _sinusoids(shape: tuple[int, ...]) -> torch.Tensor:
    """The official whisper model.sinusoids(length, channels) buffer."""
    length, channels = shape
    log_timescale_increment = np.log(10000) / (channels // 2 - 1)
    inv_timescales = torch.exp(-log_timescale_increment * torch.arange(channels // 2))
    scaled_time = torch.arange(length)[:, np.newaxis] * inv_timescales[np.newaxis, :]
    return torch.cat([torch.sin(scaled_time), torch.cos(scaled_time)], dim=1)


BUFFERS = {"pe": _pe, "sinusoids": _sinusoids}


def _draw(shape: tuple[int, ...], kind: str, rule: str, g: torch.Generator, scale: float = 0.05) -> torch.Tensor:
    if rule == "scaled_normal":
        return torch.randn(shape, generator=g) * scale
    if rule == "fan_in":
        if kind == "n":
            return 1 + 0.1 * torch.randn(shape, generator=g)
        if kind == "m":
            fan_in = math.prod(shape[1:])
            return torch.randn(shape, generator=g) / fan_in ** 0.5
        return 0.05 * torch.randn(shape, generator=g)
    raise ValueError(f"unknown init rule {rule!r}")


def tensors_sha256(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over every (key, dtype, shape, bytes), in order."""
    h = hashlib.sha256()
    for key, value in state.items():
        t = value.detach().contiguous().cpu()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def module_states(spec: dict, data: Path = DATA, family: str = "") -> dict[str, dict[str, torch.Tensor]]:
    """Every network's official state dict, regenerated (and checked against the recorded SHA-256).
    A module with a ``scale`` draws ``randn * scale`` from the one shared generator (Hallo's rule)."""
    states: dict[str, dict[str, torch.Tensor]] = {}
    shared = None
    if spec["init"] == "scaled_normal" or all("scale" in m for m in spec["modules"]):
        shared = torch.Generator().manual_seed(spec["seed"])
    for module in spec["modules"]:
        rule = "scaled_normal" if "scale" in module else module.get("init", spec["init"])  # or its own rule and seed
        g = torch.Generator().manual_seed(module["seed"]) if "seed" in module else shared
        state = {}
        for key, shape, kind in read_params(data / module["params"]):
            if kind in BUFFERS:
                state[key] = BUFFERS[kind](shape)
            else:
                state[key] = _draw(shape, kind, rule, g, module.get("scale", 0.05))
        digest = tensors_sha256(state)
        if digest != module["sha256"]:
            raise RegenerationError(
                f"regenerated {family + ' ' if family else ''}{module['name']} differs from the official harness output (sha256 {digest[:12]} "
                f"!= {module['sha256'][:12]}): has torch's CPU randn changed? Rebuild the fixtures "
                f"(tests/parity/README.md)")
        states[module["name"]] = state
    return states


def regenerate(case: str | Path, out: str | Path, data: Path = DATA) -> Path:
    """Write the official-layout weights folder of fixture ``case`` (e.g. "v1") into ``out``."""
    case_dir = data / case if not Path(case).is_absolute() else Path(case)
    spec = json.loads((case_dir / "weights.json").read_text())
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    states = module_states(spec, data)
    for item in spec["files"]:
        state = states[item["module"]]
        path = out / item["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        select = item.get("select", "all")
        if select == "motion":
            state = {k: v for k, v in state.items() if "motion_modules" in k}
        elif select == "not_motion":
            state = {k: v for k, v in state.items() if "motion_modules" not in k}
        fmt = item.get("format", "pth")
        if fmt == "pth":
            torch.save(state, path)
        elif fmt == "whisper":  # the OpenAI checkpoint format: {"dims", "model_state_dict"}
            torch.save({"dims": item["dims"], "model_state_dict": state}, path)
        elif fmt == "diffusers":  # a diffusers model folder: config.json + safetensors
            from safetensors.torch import save_file

            path.mkdir(parents=True, exist_ok=True)
            (path / "config.json").write_text(json.dumps(item["config"], indent=2, sort_keys=True) + "\n")
            save_file({k: v.contiguous() for k, v in state.items()}, str(path / "diffusion_pytorch_model.safetensors"),
                      metadata={"format": "pt"})
        else:
            raise ValueError(f"unknown file format {fmt!r}")
    if "tiny_config" in spec:  # the harness's record of the tiny config (GenHuman does not read it)
        (out / "tiny_config.json").write_text(json.dumps(spec["tiny_config"], indent=1))
    for rel, content in spec.get("json_files", {}).items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content, indent=1))
    return out


def official_state_files(folder: Path) -> dict[str, dict[str, torch.Tensor]]:
    """Every weight file of an official-layout folder (``*.pth``, ``audio_processor/*.pt``,
    ``*.safetensors``), read back (for the bit-identity check)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    found = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        if path.suffix == ".pth" or (path.suffix == ".pt" and rel.startswith("audio_processor/")):
            state = torch.load(path, map_location="cpu", weights_only=True)
            found[rel] = state["model_state_dict"] if "model_state_dict" in state else state
        elif path.suffix == ".safetensors":
            found[rel] = load_file(str(path))
    return found


def compare_folders(regenerated: Path, official: Path) -> list[str]:
    """Problems found comparing two official-layout folders tensor by tensor (torch.equal); [] if identical."""
    mine, theirs = official_state_files(regenerated), official_state_files(official)
    problems = [f"{rel}: missing from the regenerated folder" for rel in theirs if rel not in mine]
    for rel, state in mine.items():
        if rel not in theirs:
            continue
        other = theirs[rel]
        if list(state) != list(other):
            problems.append(f"{rel}: keys differ ({len(state)} vs {len(other)})")
            continue
        bad = [k for k in state if state[k].dtype != other[k].dtype or not torch.equal(state[k], other[k])]
        if bad:
            problems.append(f"{rel}: {len(bad)} tensors differ, first {bad[0]}")
    return problems


# ---------------------------------------------------------------------------- inputs
# The harnesses draw their inputs from ``np.random.default_rng(2)``; these replay the draws.
# run.json records each input's SHA-256, and the tests check it.

def array_sha256(a: np.ndarray) -> str:
    a = np.ascontiguousarray(a)
    return hashlib.sha256(f"{a.dtype}|{a.shape}|".encode() + a.tobytes()).hexdigest()


def v1_inputs(height: int, width: int, frames: int) -> dict[str, np.ndarray]:
    """official_echomimic_ref.py / _acc_ref.py / our pose script: reference image, then the audio chunks."""
    rng = np.random.default_rng(2)
    image = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    chunks = rng.standard_normal((frames + 2, 50, 384)).astype(np.float32)
    return {"image": image, "audio_chunks": chunks}


def v2_inputs(height: int, width: int, chunk_rows: list[list[int]]) -> dict[str, np.ndarray]:
    """official_echomimic_v2_ref.py: reference image, 1 s of waveform (never used), whisper
    features (50, 5, 384); the official ``feature2chunks`` output is a gather of feature rows
    (``chunk_rows``, recorded by the converter), reshaped to (chunks, 50, 384)."""
    rng = np.random.default_rng(2)
    image = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    rng.standard_normal(16000)  # the waveform
    features = rng.standard_normal((50, 5, 384)).astype(np.float32)
    chunks = features[np.asarray(chunk_rows)].reshape(len(chunk_rows), -1, features.shape[-1])
    return {"image": image, "features": features, "audio_chunks": chunks}
