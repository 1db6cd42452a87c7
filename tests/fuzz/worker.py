"""Fuzz worker: loads each file named on stdin with GenHuman's own loader, one JSON line per file.

Run as a subprocess by ``harness.py`` so that a segfault or a hang ends this process, not
the test run: the parent sees which file was in progress and restarts after it. Each file
gets a SIGALRM deadline (a hang in Python code is reported as "hung"); a hang inside C
code is caught by the parent's own deadline.

Usage: ``python worker.py KIND CANARY SECONDS`` with one path per line on stdin;
KIND is "pose_v2", "pose_v1", "weights" (.pth/.bin/.safetensors) or "whisper" (.pt). Outcomes: loaded, refused (InputError),
error (any other exception: a defect), hung, ran_code (the canary file appeared).
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import time
from pathlib import Path


class _Deadline(Exception):
    pass


def _alarm(signum, frame):
    raise _Deadline()


def _load_pose_v2(path: Path) -> None:
    from genhuman.pose.format import load_pose_dir
    from genhuman.pose.render import control_frame, render_debug, scale_draw_params

    pose = load_pose_dir(path.parent)  # the CLI's path: V2 --pose and `pose render`
    render_debug(pose, 0, 48, 64)
    control_frame(pose, 0, 48, 64, scale_draw_params(pose.draw_params, 48, 64))


def _landmarks_module():
    """``genhuman/pipelines/landmarks.py`` itself, loaded without its package's ``__init__``
    (which imports diffusers: 6 s a worker start, and nothing the V1 pose reader uses)."""
    import importlib.util

    import genhuman

    name = "_fuzzed_landmarks"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(genhuman.__file__).parent / "pipelines" / "landmarks.py")
        assert spec is not None and spec.loader is not None
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


def _load_pose_v1(path: Path) -> None:
    points = _landmarks_module().load_landmark_folder(path.parent)  # V1 --pose
    assert points.dtype.kind == "f"


def _load_whisper(path: Path) -> None:
    from genhuman.audio_features.whisper import build_whisper_encoder, convert_openai_whisper

    config, state = convert_openai_whisper(path)  # what convert and the V1/V2 engines do
    build_whisper_encoder(config, state, path.name)


def _load_weights(path: Path) -> None:
    import torch

    from genhuman.checkpoints.weights import read_state_dict

    for tensor in read_state_dict(path).values():  # touch every byte: mapped data must be readable
        torch.as_tensor(tensor).double().sum().item()


LOADERS = {"pose_v2": _load_pose_v2, "pose_v1": _load_pose_v1, "weights": _load_weights, "whisper": _load_whisper}
# Imported before the first file, so no file's deadline is spent (or cut short) importing.
PRELOAD = {"pose_v2": ("genhuman.pose.format", "genhuman.pose.render"),
           "pose_v1": ("genhuman.face.landmark_indices", "cv2"),
           "weights": ("torch", "genhuman.checkpoints.weights"),
           "whisper": ("torch", "genhuman.checkpoints.weights", "genhuman.audio_features.whisper")}


def main() -> int:
    kind, canary, seconds = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3])
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from genhuman.errors import InputError

    load = LOADERS[kind]
    for module in PRELOAD[kind]:
        importlib.import_module(module)
    if kind == "pose_v1":
        _landmarks_module()
    signal.signal(signal.SIGALRM, _alarm)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        path = Path(line.rstrip("\n"))
        print(json.dumps({"start": str(path)}), flush=True)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        began = time.monotonic()
        try:
            load(path)
            outcome, detail = "loaded", ""
        except InputError as exc:
            outcome, detail = "refused", str(exc)
            if "\n" in detail or not detail:
                outcome = "error"  # a refusal must be one line
        except _Deadline:
            outcome, detail = "hung", ""
        except BaseException as exc:  # noqa: BLE001 - anything else is what the fuzz test looks for
            outcome, detail = "error", f"{type(exc).__name__}: {str(exc)[:200]}"
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if canary.exists():
            outcome = "ran_code"
        print(json.dumps({"path": str(path), "outcome": outcome, "detail": detail,
                          "seconds": round(time.monotonic() - began, 4)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
