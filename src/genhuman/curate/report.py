"""The run's report: ``report/index.html`` with PNG plots (matplotlib, Agg): ``scores.png``,
a histogram panel per score with its threshold(s) (all segments grey, kept green);
``stages.png``, passed/rejected counts per stage; thumbnails of kept and rejected segments
with their reasons."""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

from genhuman.curate.config import CurateConfig
from genhuman.curate.verdict import STAGE_ORDER


def thresholds(config: CurateConfig) -> dict[str, list[float]]:
    """Score column -> the threshold lines drawn on its histogram."""
    c = config
    return {
        "luma_mean": [c.luminance.min_mean, c.luminance.max_mean],
        "blur_frame_laplacian": [c.blur.min_frame_laplacian], "blur_face_laplacian": [c.blur.min_face_laplacian],
        "motion_mean_flow": [c.motion.min_mean_flow, c.motion.max_mean_flow],
        "motion_frozen_share": [c.motion.max_frozen_share],
        "face_share": [c.face.min_face_share], "face_area_ratio": [c.face.min_area_ratio],
        "face_second_ratio": [c.face.max_second_face_ratio],
        "face_yaw_deg": [-c.face.max_abs_yaw_deg, c.face.max_abs_yaw_deg],
        "face_pitch_deg": [-c.face.max_abs_pitch_deg, c.face.max_abs_pitch_deg],
        "face_max_jump": [c.face.max_center_jump], "speech_share": [c.speech.min_voice_share],
        "lipsync_best_correlation": [c.lipsync.min_correlation],
        "lipsync_best_lag": [-c.lipsync.max_abs_offset, c.lipsync.max_abs_offset],
        "syncnet_confidence": [c.lipsync.min_syncnet_confidence],
        "bitrate_kbps": [c.technical.min_bitrate_kbps],
    }


def _finite(value: Any) -> bool:
    return value is not None and math.isfinite(float(value))


def stage_counts(rows: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    """Stage -> (passed, failed) over all segments (each stage judged on its own)."""
    return {stage: (sum(1 for r in rows if r.get(f"pass_{stage}", True)),
                    sum(1 for r in rows if not r.get(f"pass_{stage}", True))) for stage in STAGE_ORDER}


def write_report(out_dir: Path, rows: list[dict[str, Any]], inputs: list[dict[str, Any]],
                 config: CurateConfig) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = out_dir / "report"
    folder.mkdir(parents=True, exist_ok=True)
    panels = []
    for column, lines in thresholds(config).items():
        values = [float(r[column]) for r in rows if _finite(r.get(column))]
        if values:
            kept = [float(r[column]) for r in rows if r["kept"] and _finite(r.get(column))]
            panels.append((column, lines, values, kept))
    plots = []
    if panels:  # one figure of panels: one savefig, not one per score (seconds each on a busy machine)
        cols = 4
        fig, axes = plt.subplots(-(-len(panels) // cols), cols, figsize=(4 * cols, 2.6 * -(-len(panels) // cols)),
                                 dpi=70, squeeze=False)
        for ax, (column, lines, values, kept) in zip(axes.flat, panels):
            ax.hist(values, bins=30, color="#bbbbbb", label="all")
            if kept:
                ax.hist(kept, bins=30, color="#2a7", alpha=0.8, label="kept")
            for line in lines:
                ax.axvline(line, color="#c22", linestyle="--", linewidth=1)
            ax.set_title(column, fontsize=9)
            ax.legend(fontsize=7)
        for ax in list(axes.flat)[len(panels):]:
            ax.axis("off")
        fig.tight_layout()
        fig.savefig(folder / "scores.png")
        plt.close(fig)
        plots.append("scores.png")
    counts = stage_counts(rows)
    fig, ax = plt.subplots(figsize=(6, 2.8), dpi=80)
    stages = list(counts)
    ax.bar(stages, [counts[s][0] for s in stages], color="#2a7", label="passed")
    ax.bar(stages, [counts[s][1] for s in stages], bottom=[counts[s][0] for s in stages], color="#c44",
           label="rejected")
    ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    ax.legend(fontsize=7)
    ax.set_title("segments per stage", fontsize=9)
    fig.tight_layout()
    fig.savefig(folder / "stages.png")
    plt.close(fig)
    (folder / "index.html").write_text(_html(rows, inputs, counts, plots, config), encoding="utf-8")
    return folder / "index.html"


def _thumbs(rows: list[dict[str, Any]], limit: int) -> str:
    cells = []
    for row in rows[:limit]:
        caption = html.escape(row["segment_id"] + (" kept" if row["kept"] else f" - {row['reasons']}"))
        src = html.escape("../" + row["thumbnail"]) if row.get("thumbnail") else ""
        cells.append(f'<figure><img src="{src}" width="128"><figcaption>{caption}</figcaption></figure>')
    return "".join(cells) or "<p>none</p>"


def _html(rows, inputs, counts, plots, config) -> str:
    kept = [r for r in rows if r["kept"]]
    rejected = [r for r in rows if not r["kept"]]
    by_reason: dict[str, int] = {}
    for r in rejected:
        by_reason[r["rejected_by"]] = by_reason.get(r["rejected_by"], 0) + 1
    table = "".join(f"<tr><td>{s}</td><td>{p}</td><td>{f}</td><td>{by_reason.get(s, 0)}</td></tr>"
                    for s, (p, f) in counts.items())
    bad = "".join(f"<tr><td>{html.escape(i['input_uri'])}</td><td>{html.escape(i['status'])}</td>"
                  f"<td>{html.escape(i['reason'])}</td><td>{i['segments']}</td><td>{i['kept']}</td></tr>"
                  for i in inputs)
    images = "".join(f'<img src="{p}">' for p in plots)
    images += "<p>Panels: " + ", ".join(html.escape(c) for c in thresholds(config)) + ".</p>"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>genhuman data curate</title>
<style>body{{font-family:sans-serif;margin:1em}} table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;
padding:2px 6px}} figure{{display:inline-block;width:140px;margin:4px;font-size:10px;vertical-align:top}}</style>
</head><body><h1>Curation report</h1>
<p>{len(rows)} segments from {len(inputs)} inputs: <b>{len(kept)} kept</b>, {len(rejected)} rejected.</p>
<h2>Stages</h2><table><tr><th>stage</th><th>passed</th><th>failed</th><th>first failure of a rejected
segment</th></tr>{table}</table><img src="stages.png">
<h2>Inputs</h2><table><tr><th>input</th><th>status</th><th>reason</th><th>segments</th><th>kept</th></tr>{bad}</table>
<h2>Scores</h2><p>Grey: all segments; green: kept; red dashed: thresholds.</p>{images}
<h2>Kept examples</h2>{_thumbs(kept, config.output.thumbnails)}
<h2>Rejected examples</h2>{_thumbs(rejected, config.output.thumbnails)}
</body></html>"""
