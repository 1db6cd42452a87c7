#!/usr/bin/env bash
# Full-size EchoMimicV3-Flash on one GPU: bf16, 768x768, 81 frames (21 latent frames, 48384 tokens), 8 steps with
# audio CFG (16 transformer calls). Prints seconds per sample, frames/s and peak VRAM of GenHuman's transformer
# + sampler (umT5/CLIP are not resident: their embeddings are cached per avatar; VAE decode not included).
# Seeded random weights at the released shapes: speed and memory do not depend on the values.
# Target (issue 15): >= 2x the official Flash frames/s at equal output, peak under 12 GB.
# Official side (optional, needs its own venv on the machine, e.g. carried): OFFICIAL_PY=... OFFICIAL_REPO=...
#   runs benchmarks/bench_echomimic_v3.py's official mode at the tiny/reduced geometries for the equal-output check.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" benchmarks/bench_echomimic_v3.py --geometry full --device cuda --dtype bfloat16 --repeats "${REPEATS:-2}"
if [[ -n "${OFFICIAL_PY:-}" && -n "${OFFICIAL_REPO:-}" ]]; then
  "$PY" benchmarks/bench_echomimic_v3.py --official-repo "$OFFICIAL_REPO" --official-python "$OFFICIAL_PY" \
    --geometry tiny,reduced --repeats 1
fi
