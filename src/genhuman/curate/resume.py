"""Run state under OUT_DIR/.curate/: what makes a run idempotent and resumable.

Per input (its id): ``plan.json`` (probe + segments, written once), ``rows/<segment>.json``
(one per finished segment: scored, and its clip written when kept) and ``done.json`` once
every planned segment has a row (or the input failed: then it holds the reason). A second
run skips done inputs and, inside an unfinished one, segments that have a row; a killed run
therefore loses only the segments that were in flight. Every file is written to a
temporary name and renamed, so a kill never leaves half a JSON file.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from pathlib import Path
from typing import Any, Optional

STATE = ".curate"


def state_dir(out_dir: Path, input_id: str) -> Path:
    return out_dir / STATE / input_id


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(json.dumps(_jsonable(data), sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path) -> Optional[Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _jsonable(value: Any) -> Any:
    """NaN -> None (JSON has no NaN); numpy scalars -> Python."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def row_path(out_dir: Path, input_id: str, segment_id: str) -> Path:
    return state_dir(out_dir, input_id) / "rows" / f"{segment_id}.json"


def finished_rows(out_dir: Path, input_id: str) -> dict[str, dict]:
    folder = state_dir(out_dir, input_id) / "rows"
    rows = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        row = read_json(path)
        if row is not None:
            rows[path.stem] = row
    return rows


def clean_partials(out_dir: Path) -> int:
    """Temporary files a killed run left behind (clips and state)."""
    count = 0
    for pattern in ("clips/.*.partial.mp4", f"{STATE}/*/rows/.*.tmp", f"{STATE}/*/.*.tmp"):
        for path in out_dir.glob(pattern):
            path.unlink(missing_ok=True)
            count += 1
    return count
