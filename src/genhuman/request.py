"""The one request model: every option's type, range, default and help, in one place.

:class:`AnimateRequest` (per video) and :class:`EngineOptions` (per engine, chosen at load)
are dataclasses whose fields carry an :class:`Option` spec. The CLI builds its arguments
from the specs (``genhuman.cli.animate``), the server parses its form fields and writes its
OpenAPI schema from them (``genhuman.server.validation``), and each engine's ``validate()``
starts from a request that already passed these generic checks. Constructing a request
with an impossible value raises :class:`~genhuman.errors.InputError`, from any entry point.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional

from genhuman.errors import InputError

log = logging.getLogger(__name__)

MAX_TEXT_CHARS = 20_000
MAX_PROMPT_CHARS = 2_000  # umT5 reads 512 tokens at most
EXPRESSIONS = ("keep", "neutral")  # the lite renderer's (genhuman.engines.lite.render)


@dataclass(frozen=True)
class Option:
    """What the CLI, the server and the engines know about one option."""

    kind: type  # int, float, str, bool or Path
    help: str
    low: Optional[float] = None
    high: Optional[float] = None
    choices: Optional[tuple[str, ...]] = None
    engines: Optional[frozenset[str]] = None  # engines that use it; None = all
    cli: bool = True  # offered on the command line
    server: bool = True  # offered as an HTTP form field
    metavar: Optional[str] = None

    def describe_range(self) -> str:
        if self.choices:
            return "one of: " + ", ".join(self.choices)
        if self.low is not None and self.high is not None:
            return f"between {self.kind(self.low)} and {self.kind(self.high)}"
        return ""

    def check(self, name: str, value: Any) -> Any:
        """``value`` as ``kind`` within the range; raises one-line InputError. None passes."""
        if value is None:
            return None
        label = name.replace("_", " ")
        if self.kind is bool:
            if not isinstance(value, bool):
                raise InputError(f"{label} must be true or false, got {value!r}")
            return value
        if self.kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                else:
                    raise InputError(f"{label} must be an integer, got {value!r}")
        elif self.kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InputError(f"{label} must be a finite number, got {value!r}")
            value = float(value)
        elif self.kind is Path:
            if not isinstance(value, (str, Path)):
                raise InputError(f"{label} must be a path, got {value!r}")
            value = Path(value)
        elif self.kind is str:
            if not isinstance(value, str):
                raise InputError(f"{label} must be text, got {type(value).__name__}")
        if self.choices is not None and value not in self.choices:
            raise InputError(f"{label} must be {self.describe_range()}, got {value!r}")
        if self.low is not None and self.high is not None and not self.low <= value <= self.high:
            raise InputError(f"{label} must be {self.describe_range()}, got {value}")
        return value

    def parse(self, name: str, text: str) -> Any:
        """A command-line or form string -> the typed, checked value."""
        text = text.strip()
        label = name.replace("_", " ")
        if self.kind is bool:
            lowered = text.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise InputError(f"{label} must be true or false, got {text[:40]!r}")
        if self.kind in (int, float):
            try:
                value: Any = self.kind(text)
            except ValueError:
                noun = "an integer" if self.kind is int else "a number"
                raise InputError(f"{label} must be {noun}, got {text[:40]!r}") from None
            return self.check(name, value)
        return self.check(name, self.kind(text))


def option(default: Any, kind: type, help: str, **spec: Any) -> Any:
    return field(default=default, metadata={"option": Option(kind, help, **spec)})


DIFFUSION = frozenset({"echomimic", "echomimic_v2"})
HALLO = frozenset({"hallo", "hallo2"})
ECHOMIMIC_V3 = frozenset({"echomimic_v3", "echomimic_v3_flash"})
V3_PREVIEW = frozenset({"echomimic_v3"})
GENERATIVE = DIFFUSION | HALLO | ECHOMIMIC_V3  # every engine with a weights folder and a denoising loop
SCHEDULES = ("official", "streaming")
LITE = frozenset({"lite"})


@dataclass(frozen=True)
class AnimateRequest:
    """Per-video options. ``None`` means the engine's default (official values for the
    diffusion engines). Engines warn about options they do not use when set."""

    text: Optional[str] = option(None, str, "transcript of the speech (lite: forced alignment for better lip sync)",
                                 engines=frozenset({"lite"}), metavar="TEXT")
    fps: Optional[int] = option(None, int, "frames per second (default: 25 for lite, the official 24 for "
                                "EchoMimic; Hallo: 25, fixed by the model)", low=1, high=60)
    seed: Optional[int] = option(None, int, "random seed (default: 0 for lite, the official seed for the "
                                 "diffusion engines)", low=0, high=2**31 - 1)
    max_size: Optional[int] = option(None, int, "cap the longer side of the portrait, in pixels", low=64, high=4096)
    face_index: int = option(0, int, "which face to animate: 0 = largest, 1 = next largest, ...", low=0, high=63)
    steps: Optional[int] = option(None, int, "denoising steps (default: 30, or 6 with accelerated weights; "
                                  "Hallo: 40)", low=1, high=200, engines=GENERATIVE)
    cfg: Optional[float] = option(None, float, "guidance scale (default: 2.5, or 1.0 with accelerated weights; "
                                  "Hallo: 3.5)", low=0.0, high=50.0, engines=GENERATIVE)
    pose: Optional[Path] = option(None, Path, "pose folder ({i}.npy / .pkl) or driving video",
                                  engines=DIFFUSION, server=False, metavar="PATH")
    paste_back: bool = option(False, bool, "paste the generated face crop back into the portrait",
                              engines=frozenset({"echomimic"}))
    width: Optional[int] = option(None, int, "generation width in pixels (a multiple the model needs; Hallo: "
                                  "square, a multiple of 64, default 512)", low=32, high=4096, engines=GENERATIVE)
    height: Optional[int] = option(None, int, "generation height in pixels (a multiple the model needs)",
                                   low=32, high=4096, engines=GENERATIVE)
    schedule: str = option("official", str, "official: whole-video windows, exactly the official numbers; "
                           "streaming: window after window as audio arrives, flat memory",
                           choices=SCHEDULES, engines=DIFFUSION)
    head_motion: float = option(1.0, float, "head motion amplitude: 0 = still head, 1 = natural, 2 = twice as much",
                                low=0.0, high=2.0, engines=LITE, metavar="X")
    blink_rate: Optional[float] = option(None, float, "blinks per minute, 0 = none (default: the natural rate, "
                                         "about 14 a minute)", low=0.0, high=60.0, engines=LITE, metavar="N")
    mouth_scale: float = option(1.0, float, "scale of the mouth opening: 0.5 = half as wide open, 1.5 = half as "
                                "much again", low=0.5, high=1.5, engines=LITE, metavar="X")
    expression: str = option("keep", str, "the photo's expression at rest: keep (a smile stays a smile, its teeth "
                             "stay) or neutral (parted lips are closed)", choices=EXPRESSIONS, engines=LITE)
    pose_weight: float = option(1.0, float, "Hallo: weight of the audio's pull on the head and background "
                                "(the full-frame audio attention)", low=0.0, high=4.0, engines=HALLO, metavar="X")
    face_weight: float = option(1.0, float, "Hallo: weight of the audio's pull on the face (expression)",
                                low=0.0, high=4.0, engines=HALLO, metavar="X")
    lip_weight: float = option(1.0, float, "Hallo: weight of the audio's pull on the lips", low=0.0, high=4.0,
                               engines=HALLO, metavar="X")
    context_seconds: Optional[float] = option(
        None, float, "Hallo2 (and Hallo past 60 s): seconds of wav2vec2 context kept across the 60 s audio cuts "
        "(default: none for hallo2, the official reset at every cut; 10 for hallo)", low=0.0, high=120.0,
        engines=HALLO, metavar="S")
    prompt: Optional[str] = option(None, str, "EchoMimicV3: the text prompt, encoded once per avatar (default: the "
                                   "official 'A person is speaking.')", engines=ECHOMIMIC_V3, metavar="TEXT")
    negative_prompt: Optional[str] = option(None, str, "EchoMimicV3: the negative prompt (default: the official "
                                            "'Gesture is bad. Bad hands.')", engines=ECHOMIMIC_V3, metavar="TEXT")
    text_cfg: Optional[float] = option(None, float, "EchoMimicV3 preview: text guidance scale, decayed as the "
                                       "official schedule does (default 4.0; --cfg is the audio scale)",
                                       low=1.0, high=20.0, engines=V3_PREVIEW, metavar="X")
    extra: Mapping[str, Any] = field(default_factory=dict)  # engine tuning knobs (Python API only)
    # The engine whose validate() produced this request: validating it again (animate ->
    # prepare_avatar -> stream) neither repeats the warnings nor changes anything.
    resolved_by: Optional[str] = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        for f, spec in request_options(type(self)):
            object.__setattr__(self, f, spec.check(f, getattr(self, f)))
        if self.text is not None:
            text = " ".join(self.text.split())
            if len(text) > MAX_TEXT_CHARS:
                raise InputError(f"text is too long ({len(text)} characters); the limit is {MAX_TEXT_CHARS}")
            object.__setattr__(self, "text", text or None)
        for name in ("prompt", "negative_prompt"):
            value = getattr(self, name)
            if value is not None and len(value) > MAX_PROMPT_CHARS:
                raise InputError(f"{name.replace('_', ' ')} is too long ({len(value)} characters); the limit is "
                                 f"{MAX_PROMPT_CHARS}")

    def explicit(self) -> dict[str, Any]:
        """Options set to something other than their default."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if "option" in f.metadata and getattr(self, f.name) != f.default}

    def replace(self, **changes: Any) -> "AnimateRequest":
        from dataclasses import replace

        return replace(self, **changes)

    @classmethod
    def from_strings(cls, raw: Mapping[str, Optional[str]], *, server: bool = True) -> "AnimateRequest":
        """Form fields (strings; empty = default) -> a checked request. Unknown names are ignored."""
        values: dict[str, Any] = {}
        for name, spec in request_options(cls):
            if server and not spec.server:
                continue
            text = raw.get(name)
            if text is None or not str(text).strip():
                continue
            values[name] = spec.parse(name, str(text))
        return cls(**values)


def warn_unused(request: AnimateRequest, engine: str) -> list[str]:
    """Log a warning for each explicitly set option ``engine`` does not use; returns their names."""
    unused: list[str] = []
    if request.resolved_by == engine:
        return unused
    for name in request.explicit():
        spec = _spec(type(request), name)
        if spec.engines is not None and engine not in spec.engines:
            unused.append(name)
    if unused:
        flags = ", ".join("--" + n.replace("_", "-") for n in unused)
        log.warning("the %s engine does not use %s; ignored", engine, flags)
    return unused


@dataclass(frozen=True)
class EngineOptions:
    """Load-time options: chosen once when the engine is built."""

    weights: Optional[Path] = option(None, Path, "weights folder (converted or official layout)",
                                     engines=GENERATIVE, server=False, metavar="DIR")
    device: Optional[str] = option(None, str, "cpu, cuda, cuda:1, ... (default: best available)",
                                   engines=GENERATIVE, server=False)
    dtype: Optional[str] = option(None, str, "weights dtype (default: float16 on GPU, float32 on CPU)",
                                  choices=("float32", "float16", "bfloat16"), engines=GENERATIVE, server=False)
    accelerated: bool = option(False, bool, "accelerated weights: 6 steps, no CFG", engines=DIFFUSION)
    compile: bool = option(False, bool, "torch.compile the denoiser", engines=GENERATIVE, server=False)
    offload: bool = option(False, bool, "EchoMimicV3: keep only the model at work on the GPU (transformer, VAE, "
                           "wav2vec2 in turn; the others wait in CPU memory): less VRAM, a little slower",
                           engines=ECHOMIMIC_V3, server=False)
    vae_tiling: bool = option(False, bool, "EchoMimicV3: encode and decode the VAE in overlapping tiles: less VRAM "
                              "at large sizes", engines=ECHOMIMIC_V3, server=False)

    def __post_init__(self) -> None:
        for f, spec in request_options(type(self)):
            object.__setattr__(self, f, spec.check(f, getattr(self, f)))


def request_options(cls: type) -> Iterator[tuple[str, Option]]:
    """(field name, spec) for every declared option of ``cls``, in declaration order."""
    for f in fields(cls):
        spec = f.metadata.get("option")
        if spec is not None:
            yield f.name, spec


def option_default(cls: type, name: str) -> Any:
    return next(f.default for f in fields(cls) if f.name == name)


def _spec(cls: type, name: str) -> Option:
    return next(spec for f, spec in request_options(cls) if f == name)
