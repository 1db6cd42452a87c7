"""Typed training configs: JSON or YAML files, unknown keys refused, saved next to every checkpoint."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, TypeVar

from genhuman.errors import InputError

C = TypeVar("C", bound="_Config")

STAGES = ("stage1", "stage2")
MIXED_PRECISION = ("no", "fp16", "bf16")
LOSSES = ("l2", "pseudo_huber")
DISTILL_TARGETS = ("teacher", "consistency")
DISTILL_SAMPLING = ("segment", "start", "trajectory")
CONFIG_FILE = "training_config.json"


class _Config:
    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any], what: str = "the config") -> C:
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - names)
        if unknown:
            raise InputError(f"{what}: unknown keys {', '.join(unknown)} (known: {', '.join(sorted(names))})")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        try:
            config = cls(**values)
        except TypeError as exc:
            raise InputError(f"{what}: {exc}") from None
        config.check()  # type: ignore[attr-defined]
        return config

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}  # type: ignore[call-overload]

    def save(self, directory: Path) -> Path:
        path = Path(directory) / CONFIG_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"kind": type(self).__name__, **self.to_dict()}, indent=2) + "\n")
        return path

    def replace(self: C, **changes: Any) -> C:
        new = dataclasses.replace(self, **changes)  # type: ignore[type-var]
        new.check()  # type: ignore[attr-defined]
        return new


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise InputError(f"{name} must be positive, got {value}")


def _ratio(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise InputError(f"{name} must be in [0, 1], got {value}")


@dataclass
class TrainConfig(_Config):
    """Stage-1 (image) or stage-2 (video) training of EchoMimic V1.

    ``init``: the weights folder training starts from (official layout or converted); it also
    supplies the frozen VAE and whisper. Dropout names follow the official Hallo configs (spec
    hallo.md §1.7); ``uncond_all_ratio`` drops every condition at once, the CFG unconditional input.
    """

    stage: str = "stage1"
    init: Optional[str] = None
    seed: int = 0
    steps: int = 100
    batch_size: int = 2
    frames: int = 8  # stage 2 clip length (stage 1: one frame)
    learning_rate: float = 1e-5
    weight_decay: float = 1e-2
    adam_8bit: bool = False  # used only when bitsandbytes imports
    max_grad_norm: float = 1.0
    mixed_precision: str = "no"
    gradient_checkpointing: bool = False
    ema_decay: float = 0.0  # 0: no EMA
    lora_rank: int = 0  # > 0: train LoRA adapters on the trainable modules' attention projections
    lora_alpha: int = 0  # 0: = rank
    uncond_ref_ratio: float = 0.1
    uncond_audio_ratio: float = 0.05
    uncond_all_ratio: float = 0.05
    noise_offset: float = 0.0
    snr_gamma: float = 0.0  # > 0: min-SNR weighting (+1 for v-prediction)
    sample_margin: int = 30  # stage 1: reference and target frames at most this far apart
    save_every: int = 0  # 0: only at the end
    log_every: int = 10
    train_reference_net: bool = True  # stage 1 only
    train_condition_encoder: bool = True  # stage 1 only

    def check(self) -> None:
        if self.stage not in STAGES:
            raise InputError(f"stage must be one of {', '.join(STAGES)}, got {self.stage!r}")
        if self.mixed_precision not in MIXED_PRECISION:
            raise InputError(f"mixed_precision must be one of {', '.join(MIXED_PRECISION)}")
        for name in ("steps", "batch_size", "frames", "learning_rate", "log_every"):
            _positive(name, getattr(self, name))
        for name in ("uncond_ref_ratio", "uncond_audio_ratio", "uncond_all_ratio", "ema_decay"):
            _ratio(name, getattr(self, name))
        if self.lora_rank < 0 or self.save_every < 0 or self.sample_margin < 0:
            raise InputError("lora_rank, save_every and sample_margin must not be negative")


@dataclass
class DistillConfig(_Config):
    """Phased multistep-consistency distillation of a teacher into a ``phases``-step student.

    The teacher's ``teacher_steps``-step DDIM trajectory (the inference scheduler, trailing
    spacing) is cut into ``phases`` equal segments. ``target``: ``teacher`` runs the teacher's
    remaining sub-steps with CFG to the segment end; ``consistency`` runs one teacher sub-step
    and then the EMA target network to the segment end (cheaper, the MSC form with a target net).
    ``sample_at``: ``segment`` draws x_t at any sub-step of a segment (the MSC form); ``start``
    only at segment starts, the student's own timesteps: all training where inference samples,
    for small budgets; ``trajectory``: the segment starts ON the teacher's own CFG trajectory from
    pure noise (the states the student meets at inference), one full trajectory per step and
    every segment of it trained at once.
    """

    phases: int = 4
    teacher_steps: int = 40
    guidance: float = 2.5
    seed: int = 0
    steps: int = 100
    batch_size: int = 2
    frames: int = 8
    learning_rate: float = 1e-5
    weight_decay: float = 0.0
    adam_8bit: bool = False
    max_grad_norm: float = 1.0
    mixed_precision: str = "no"
    gradient_checkpointing: bool = False
    loss: str = "l2"
    huber_c: float = 0.03
    target: str = "teacher"
    sample_at: str = "segment"
    ema_decay: float = 0.95  # the target network (consistency) and the saved student
    lora_rank: int = 0
    lora_alpha: int = 0
    save_every: int = 0
    log_every: int = 10

    def check(self) -> None:
        for name in ("phases", "teacher_steps", "steps", "batch_size", "frames", "learning_rate", "log_every",
                     "huber_c"):
            _positive(name, getattr(self, name))
        if self.teacher_steps % self.phases:
            raise InputError(f"--phases {self.phases} does not divide --teacher-steps {self.teacher_steps}")
        if self.loss not in LOSSES:
            raise InputError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.target not in DISTILL_TARGETS:
            raise InputError(f"target must be one of {', '.join(DISTILL_TARGETS)}, got {self.target!r}")
        if self.sample_at not in DISTILL_SAMPLING:
            raise InputError(f"sample_at must be one of {', '.join(DISTILL_SAMPLING)}, got {self.sample_at!r}")
        if self.mixed_precision not in MIXED_PRECISION:
            raise InputError(f"mixed_precision must be one of {', '.join(MIXED_PRECISION)}")
        _ratio("ema_decay", self.ema_decay)
        if self.guidance < 1.0:
            raise InputError(f"guidance must be at least 1, got {self.guidance}")


def read_config_file(path: Optional[Path]) -> dict[str, Any]:
    """A JSON or YAML mapping (``None``: empty). A missing or unreadable file is one InputError line."""
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise InputError(f"config file not found: {str(path)!r}")
    text = path.read_text()
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # noqa: BLE001 - any parse error is the user's file
        raise InputError(f"{path.name} is not valid {'YAML' if path.suffix in ('.yaml', '.yml') else 'JSON'}: "
                         f"{str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path.name} must hold a mapping of config keys")
    data.pop("kind", None)  # a saved config reads back
    return data
