"""``curate(INPUT, OUT_DIR)``: plan every input, analyze and export every pending segment
(in this process, or as Ray Data ``map_batches`` stages), then decide near-duplicates over
the whole run and write the manifest and the report. Both paths call the same functions
(genhuman.curate.work) and write the same rows, so they give the same manifest.

Ray: by default it starts inside this process (``ray.init()`` on the local machine, a
small object store, no dashboard, logs in a temporary folder) and shuts down at the end;
``ray_address`` ("auto", "ray://host:port") joins an existing cluster instead.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from genhuman.curate import manifest, resume
from genhuman.curate.config import CurateConfig
from genhuman.curate.decode import resolve_inputs
from genhuman.curate.dedup import find_duplicates
from genhuman.curate.work import analyze_and_export, analyze_segment, export_segment, plan_input, syncnet_segment

log = logging.getLogger(__name__)

MANIFEST = "manifest.parquet"
INPUTS = "inputs.parquet"


@dataclass
class RunResult:
    out_dir: Path
    rows: list[dict[str, Any]]
    inputs: list[dict[str, Any]]
    processed: int  # segments analyzed in this run (not taken from a previous one)
    skipped_inputs: int  # inputs already done before this run
    seconds: float
    workers: int
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def kept(self) -> int:
        return sum(1 for row in self.rows if row["kept"])


def curate(source: str, out_dir: str | Path, config: Optional[CurateConfig] = None, use_ray: bool = True,
           ray_address: Optional[str] = None, workers: Optional[int] = None, report: bool = True,
           progress: bool = True) -> RunResult:
    config = config or CurateConfig()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    uris = resolve_inputs(source)
    removed = resume.clean_partials(out_dir)
    if removed:
        log.info("removed %d partial files of an interrupted run", removed)
    plans, skipped = [], 0
    todo: list[dict[str, Any]] = []
    for order, uri in enumerate(_progress(uris, "planning", progress)):
        plan = plan_input(uri, order, out_dir, config)
        plans.append(plan)
        if plan["error"]:
            log.warning("input %s skipped: %s", uri, plan["error"])
            continue
        done = resume.finished_rows(out_dir, plan["input_id"])
        pending = [seg for seg in plan["segments"] if seg["segment_id"] not in done]
        if not pending:
            skipped += 1
        todo.extend(pending)
    timings = {"plan_s": time.perf_counter() - started}
    log.info("%d inputs, %d segments to analyze (%d inputs already done)", len(uris), len(todo), skipped)
    if todo:
        if use_ray:
            n_workers = _run_ray(todo, out_dir, config, ray_address, workers, progress)
        else:
            n_workers = 1
            for seg in _progress(todo, "segments", progress):
                analyze_and_export(seg, config, out_dir)
    else:
        n_workers = 0
    timings["analyze_s"] = time.perf_counter() - started - timings["plan_s"]
    rows, inputs = finalize(plans, out_dir, config)
    if report:
        from genhuman.curate.report import write_report

        write_report(out_dir, rows, inputs, config)
    seconds = time.perf_counter() - started
    return RunResult(out_dir, rows, inputs, len(todo), skipped, seconds, n_workers, timings)


def _progress(items: list, what: str, enabled: bool):
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=what, unit="", leave=False)


# -- finalize ---------------------------------------------------------------------------
def finalize(plans: list[dict[str, Any]], out_dir: Path, config: CurateConfig
             ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows of every input in input order, near-duplicates decided, clips of duplicates
    removed, done markers set; manifest and input table written."""
    rows: list[dict[str, Any]] = []
    inputs = []
    for plan in plans:
        found = resume.finished_rows(out_dir, plan["input_id"])
        own = [found[seg["segment_id"]] for seg in plan["segments"] if seg["segment_id"] in found]
        complete = len(own) == len(plan["segments"])
        status = "error" if plan["error"] else ("done" if complete else "incomplete")
        if complete:
            resume.write_json(resume.state_dir(out_dir, plan["input_id"]) / "done.json",
                              {"status": status, "reason": plan["error"], "segments": len(own)})
        rows.extend(own)
        inputs.append({"input_uri": plan["input_uri"], "input_id": plan["input_id"],
                       "input_order": plan["input_order"], "status": status, "reason": plan["error"],
                       "segments": len(plan["segments"]), "duration_s": float(plan.get("src_duration") or 0.0)})
    rows.sort(key=lambda r: (r["input_order"], r["start_frame"]))
    candidates = [bool(r["kept"]) or (r.get("rejected_by") == "dedup") for r in rows]
    duplicates = find_duplicates([r.get("phash", "") for r in rows], candidates, config.dedup)
    for row, match in zip(rows, duplicates):
        _apply_dedup(row, rows[match]["segment_id"] if match >= 0 else "", out_dir)
    kept_by_input: dict[str, int] = {}
    for row in rows:
        kept_by_input[row["input_id"]] = kept_by_input.get(row["input_id"], 0) + int(row["kept"])
    for entry in inputs:
        entry["kept"] = kept_by_input.get(entry["input_id"], 0)
    manifest.write(rows, out_dir / MANIFEST)
    manifest.write(inputs, out_dir / INPUTS, manifest.INPUT_SCHEMA)
    return rows, inputs


def _apply_dedup(row: dict[str, Any], duplicate_of: str, out_dir: Path) -> None:
    from genhuman.curate.work import _decide

    reasons = [r for r in row.get("reasons", "").split(" | ") if r and not r.startswith("dedup:")]
    row["duplicate_of"] = duplicate_of
    row["pass_dedup"] = not duplicate_of
    if duplicate_of:
        reasons.append(f"dedup: near-duplicate of {duplicate_of}")
    row["reasons"] = " | ".join(reasons)
    _decide(row)
    if not row["kept"] and row.get("clip"):
        (out_dir / row["clip"]).unlink(missing_ok=True)
        row["clip"] = ""


# -- Ray Data ---------------------------------------------------------------------------
def init_ray(address: Optional[str], config: CurateConfig, workers: Optional[int]):
    """Join ``address`` or start Ray inside this process; returns whether we started it."""
    import os

    import ray

    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    else:
        # address="local": a new Ray inside this process, even when a `ray start` cluster runs here
        ray.init(address="local", num_cpus=workers or os.cpu_count() or 1,
                 object_store_memory=config.ray.object_store_mb << 20, include_dashboard=False,
                 _temp_dir=tempfile.mkdtemp(prefix="genhuman-ray-"), log_to_driver=False,
                 logging_level=logging.WARNING)
    return True


def _analyze_batch(batch, config: dict, out_dir: str):
    """Ray Data stage: segments in, scored rows out (the segment description rides along)."""
    import pandas as pd

    cfg, folder = CurateConfig.from_dict(config), Path(out_dir)
    return pd.DataFrame([{"seg": text, "row": _dumps(analyze_segment(_loads(text), cfg, folder))}
                         for text in batch["seg"]])


def _syncnet_batch(batch, config: dict, out_dir: str):
    import pandas as pd
    import torch

    cfg = CurateConfig.from_dict(config)
    device = "cuda" if torch.cuda.is_available() and cfg.ray.syncnet_gpus > 0 else "cpu"
    return pd.DataFrame([{"seg": seg, "row": _dumps(syncnet_segment(_loads(row), _loads(seg), cfg, device))}
                         for seg, row in zip(batch["seg"], batch["row"])])


def _export_batch(batch, config: dict, out_dir: str):
    import pandas as pd

    cfg, folder = CurateConfig.from_dict(config), Path(out_dir)
    rows = [export_segment(_loads(row), _loads(seg), cfg, folder) for seg, row in zip(batch["seg"], batch["row"])]
    return pd.DataFrame([{"segment_id": r["segment_id"], "kept": bool(r["kept"])} for r in rows])


def _plain(value: dict) -> dict:
    """pandas/numpy scalars -> Python (a Ray batch comes back as a DataFrame)."""
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in value.items()}


def _dumps(value: dict) -> str:
    import json

    return json.dumps(resume._jsonable(_plain(value)))


def _loads(text: str) -> dict:
    import json

    return json.loads(text)


def _run_ray(todo: list[dict[str, Any]], out_dir: Path, config: CurateConfig, address: Optional[str],
             workers: Optional[int], progress: bool) -> int:
    import ray

    started = init_ray(address, config, workers)
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = progress
        context.execution_options.verbose_progress = False
        cpus = int(ray.cluster_resources().get("CPU", 1))
        concurrency = config.ray.concurrency or workers or max(1, int(cpus // max(config.ray.analyze_cpus, 1e-3)))
        stage_args = {"config": config.to_dict(), "out_dir": str(out_dir.resolve())}
        kwargs: dict[str, Any] = {"fn_kwargs": stage_args, "batch_size": config.ray.batch_size,
                                  "batch_format": "pandas"}
        pool = ray.data.TaskPoolStrategy(size=concurrency)
        # one JSON string per segment: rows of mixed, partly missing fields stay exact through Arrow
        items = [{"seg": _dumps(seg)} for seg in todo]
        ds: Any = ray.data.from_items(items, override_num_blocks=min(len(items), 4 * concurrency))
        # Stateless tasks, not actors: Ray reuses its worker processes, so each imports
        # MediaPipe once, and adjacent stages with the same resources fuse into one operator.
        ds = ds.map_batches(_analyze_batch, num_cpus=config.ray.analyze_cpus, compute=pool, **kwargs)
        if config.lipsync.syncnet_weights:
            gpus = config.ray.syncnet_gpus
            ds = ds.map_batches(_syncnet_batch, num_cpus=0 if gpus else 1, num_gpus=gpus or None,
                                compute=ray.data.TaskPoolStrategy(size=1 if not gpus else concurrency), **kwargs)
        ds = ds.map_batches(_export_batch, num_cpus=config.ray.export_cpus, compute=pool, **kwargs)
        finished = 0
        for batch in ds.iter_batches(batch_size=16, batch_format="pandas"):  # streaming: rows are on disk
            finished += len(batch)
        log.info("Ray: %d segments with %d workers per stage", finished, concurrency)
        return concurrency
    finally:
        if started:
            ray.shutdown()


def remove_outputs(out_dir: Path) -> None:
    """Everything a run writes (for tests and ``--fresh``)."""
    for name in ("clips", "thumbs", resume.STATE, "report"):
        shutil.rmtree(out_dir / name, ignore_errors=True)
    for name in (MANIFEST, INPUTS):
        (out_dir / name).unlink(missing_ok=True)
