"""Checks on a job request before it is queued: option values, the media, the text.

The per-job options are the ones declared in :mod:`genhuman.request` with ``server=True``
(:class:`~genhuman.request.AnimateRequest` fields) plus the server-offered load-time
options of :class:`~genhuman.request.EngineOptions` (``accelerated``). Their form fields,
their OpenAPI schema and their parsing all come from those specs, so the API accepts the
same values and gives the same one-line messages as the CLI and the Python API.

Everything here raises :class:`~genhuman.errors.InputError` with one sentence that the
API returns as JSON; messages never show server paths.
"""

from __future__ import annotations

import unicodedata
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from pydantic import BaseModel, Field, create_model

from genhuman.errors import InputError
from genhuman.request import AnimateRequest, EngineOptions, Option, request_options

# Fields the server declares itself (text has a second meaning here: what to speak).
OWN_FIELDS = {"text"}
REQUEST_FIELDS: list[tuple[str, Option]] = [(n, s) for n, s in request_options(AnimateRequest)
                                            if s.server and n not in OWN_FIELDS]
ENGINE_FIELDS: list[tuple[str, Option]] = [(n, s) for n, s in request_options(EngineOptions) if s.server]
FORM_FIELDS: list[tuple[str, Option]] = REQUEST_FIELDS + ENGINE_FIELDS
_REQUEST_NAMES = {f.name for f in fields(AnimateRequest)}
_DEFAULTS = {f.name: f.default for cls in (AnimateRequest, EngineOptions) for f in fields(cls)
             if "option" in f.metadata}


def field_schema(name: str, spec: Option) -> dict[str, Any]:
    """The OpenAPI schema of one option: its real type, range or choices, and help."""
    types = {int: "integer", float: "number", bool: "boolean", str: "string", Path: "string"}
    schema: dict[str, Any] = {"type": types.get(spec.kind, "string"), "title": name.replace("_", " ").capitalize()}
    if spec.low is not None:
        schema["minimum"] = spec.kind(spec.low)
    if spec.high is not None:
        schema["maximum"] = spec.kind(spec.high)
    if spec.choices:
        schema["enum"] = list(spec.choices)
    if _DEFAULTS.get(name) is not None:  # None: the engine's default, said in the help
        schema["default"] = _DEFAULTS[name]
    description = spec.help
    if spec.engines is not None:
        description += f" [{', '.join(sorted(spec.engines))}]"
    schema["description"] = description
    return schema


def schema_writer(name: str, spec: Option) -> Callable[[dict[str, Any]], None]:
    """A pydantic ``json_schema_extra`` that replaces the form field's schema (declared as
    an optional string so that the server, not pydantic, parses and words the errors)."""
    wanted = field_schema(name, spec)

    def write(schema: dict[str, Any]) -> None:
        schema.clear()
        schema.update(wanted)

    return write


def parse_options(raw: Mapping[str, Optional[str]], text: Optional[str] = None) -> tuple[AnimateRequest, bool]:
    """Form strings -> (the checked request, accelerated). Empty or absent fields are the
    defaults; a bad value raises the same one-line InputError as the CLI."""
    request = AnimateRequest.from_strings({**{n: raw.get(n) for n, _ in REQUEST_FIELDS}, "text": text})
    engine_values = {}
    for name, spec in ENGINE_FIELDS:
        value = raw.get(name)
        if value is not None and str(value).strip():
            engine_values[name] = spec.parse(name, str(value))
    return request, bool(engine_values.get("accelerated", False))


def job_form(default_engine: str) -> type[BaseModel]:
    """The multipart form of ``POST /v1/jobs`` as a pydantic model: the files, text and
    engine, then one field per server-offered option spec (genhuman.request). The option
    fields carry their real type, range, choices and help in the schema, but arrive as
    strings that :func:`parse_options` parses, so a bad value gets the CLI's sentence."""
    from fastapi import UploadFile

    defined: dict[str, Any] = {
        "image": (Optional[UploadFile], Field(None, description="portrait (PNG/JPEG/WebP/BMP)")),
        "audio": (Optional[UploadFile], Field(None, description="speech (wav/flac/mp3/m4a/ogg/webm)")),
        "text": (Optional[str], Field(None, description="text to speak (bundled Piper voice) when no audio is "
                                                       "sent; with audio, the transcript of the speech (lite: "
                                                       "forced alignment for better lip sync)")),
        "engine": (str, Field(default_engine, description="engine name (see GET /v1/engines)")),
    }
    for name, spec in FORM_FIELDS:
        defined[name] = (Optional[str], Field(None, description=spec.help,
                                              json_schema_extra=schema_writer(name, spec)))
    return create_model("JobForm", **defined)


def stored_options(request: AnimateRequest, accelerated: bool) -> dict[str, Any]:
    """What the job row keeps: the explicitly set options (JSON values); text has its column."""
    options = {k: (str(v) if isinstance(v, Path) else v) for k, v in request.explicit().items() if k != "text"}
    if accelerated:
        options["accelerated"] = True
    return options


def request_from_job(options: Mapping[str, Any], text: Optional[str]) -> tuple[AnimateRequest, bool]:
    """A job row's options -> (request, accelerated); InputError for a value that no longer
    passes (a row written by an older server)."""
    values = {k: v for k, v in options.items() if k in _REQUEST_NAMES and k not in ("text", "extra")}
    return AnimateRequest(text=text, **values), bool(options.get("accelerated", False))


def hide_path(exc: InputError, path: Path, what: str) -> InputError:
    # media messages name the file as "image '/x/y.png'" or "'/x/y.png'"
    message = str(exc)
    for named in (f"image {str(path)!r}", f"audio {str(path)!r}", repr(str(path)), str(path)):
        message = message.replace(named, what)
    return InputError(message)


def check_audio(path: Path, max_seconds: float) -> float:
    """Decode the uploaded speech; refuse silence. Returns its duration in seconds."""
    from genhuman.media import SAMPLE_RATE, is_silent, load_audio

    try:
        wave = load_audio(path, max_seconds=max_seconds)
    except InputError as exc:
        raise hide_path(exc, path, "the uploaded audio") from None
    if is_silent(wave):
        raise InputError("the uploaded audio is silent; record or upload speech")
    return len(wave) / SAMPLE_RATE


def check_text(text: Optional[str], max_chars: int) -> Optional[str]:
    if text is None:
        return None
    text = " ".join(text.split())
    if not text:
        return None
    if len(text) > max_chars:
        raise InputError(f"text is too long ({len(text)} characters); the limit is {max_chars}")
    if any(unicodedata.category(c) == "Cc" for c in text):  # NUL etc. break TTS and alignment
        raise InputError("text contains control characters")
    return text


def speak_to_file(text: str, path: Path) -> float:
    """Speak ``text`` with the bundled Piper voice into a WAV file; returns seconds."""
    from genhuman.media import SAMPLE_RATE, is_silent, load_audio
    from genhuman.speech import synthesize_to_file

    synthesize_to_file(text, path)
    wave = load_audio(path)
    if is_silent(wave):
        raise InputError("the text produced no speech; write words the voice can read")
    return len(wave) / SAMPLE_RATE
