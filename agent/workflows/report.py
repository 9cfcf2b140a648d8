"""``physrefine report``: one self-contained HTML file about a finished run.

Everything is inlined (images as base64 PNG/JPEG, CSS in the page, no script, no external asset), so the file
can be mailed or attached as is. All text that came from a model or a user (prompts, critiques, descriptions)
goes through jinja2 autoescaping; the template is ``agent/templates/report.html.j2`` rendered with
``StrictUndefined``.

Per view: a frame strip (prefix | each loop's attempt | ground truth) with the official motion masks
(:func:`physics_iq.metrics.motion_masks`) overlaid in green under each row, then each loop's prompt, critique
and Physics-IQ per seed. For the run: overall scores per selection, the category breakdown, score per loop
(overall and per view) and per-view scores by selection.
"""

from __future__ import annotations

import base64
import io
import logging
import time
from pathlib import Path
from typing import Any

import cv2
import jinja2
import numpy as np

from agent.workflows.compare import loop_curve
from agent.workflows.rundata import VARIANT_LABELS, VARIANTS, AttemptData, RunData, ViewData, critic_rank
from physics_iq.errors import DatasetError, VideoReadError
from physics_iq.layout import DatasetLayout
from physics_iq.metrics import motion_masks
from physics_iq.scoring import aggregate
from physics_iq.video import iter_frames

logger = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
#: Columns of a frame strip (times spread evenly over the clip).
STRIP_COLUMNS = 6
#: Width of one strip cell in pixels (frames are downscaled to it before masks are computed: display only).
CELL_WIDTH = 160
# Saturated green over the darkened frame: stands out against the red and blue balls most scenes use.
_MASK_RGB = np.array([40, 255, 90], dtype=np.float32)


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _jpeg(image: np.ndarray) -> str:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return "data:image/jpeg;base64," + base64.b64encode(data.tobytes()).decode("ascii")


def _shrink(frame: np.ndarray) -> np.ndarray:
    height, width = frame.shape[:2]
    size = (CELL_WIDTH, max(2, round(height * CELL_WIDTH / width)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def _small(frames: np.ndarray) -> np.ndarray:
    return np.stack([_shrink(f) for f in frames])


def read_small(path: Path) -> np.ndarray:
    """A clip decoded frame by frame and shrunk to the strip's cell width on the fly (a 1080p clip is never
    held at full size: 5 s at 30 fps would be ~0.9 GB)."""
    return np.stack([_shrink(f) for f in iter_frames(path)])


def _columns(n: int) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(STRIP_COLUMNS, n)).round().astype(int))


def strip_rows(frames: np.ndarray, label: str, with_masks: bool = True) -> list[tuple[str, np.ndarray]]:
    """Sampled frames of a clip as one row, and (optionally) the same frames with motion masks in green."""
    small = _small(frames)
    picks = _columns(len(small))
    rows = [(label, np.concatenate(list(small[picks]), axis=1))]
    if with_masks:
        masks = motion_masks(small)
        tinted = small[picks].astype(np.float32)
        m = masks[picks][..., None]
        tinted = np.where(m, 0.35 * tinted + 0.65 * _MASK_RGB, 0.6 * tinted).astype(np.uint8)
        rows.append((f"{label}: motion", np.concatenate(list(tinted), axis=1)))
    return rows


def _best_of_loop(view: ViewData, loop: int) -> AttemptData | None:
    candidates = [a for a in view.attempts if a.loop == loop]
    return max(candidates, key=critic_rank) if candidates else None


def view_strip(run: RunData, view: ViewData, layout: DatasetLayout | None) -> list[dict[str, str]]:
    """Strip rows for a view: prefix, each loop's best-critic attempt (+ masks), ground truth (+ masks)."""
    rows: list[tuple[str, np.ndarray]] = []
    fps = int(run.config["fps"])
    row = None
    prefix: np.ndarray | None = None
    if layout is not None:
        try:
            row = layout.row(view.take1_id)
        except (KeyError, DatasetError):
            row = None
    try:
        if row is not None:
            if run.config.get("mode", "v2v") == "v2v":
                prefix = read_small(layout.conditioning_video(row, fps))  # type: ignore[union-attr]
            else:
                image = cv2.imread(str(layout.switch_frame(row)), cv2.IMREAD_COLOR)  # type: ignore[union-attr]
                prefix = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)[None] if image is not None else None
            if prefix is not None:
                rows += strip_rows(prefix[-max(STRIP_COLUMNS, 1) :], "prefix (end)", with_masks=False)
        for loop in range(1, view.loops + 1):
            attempt = _best_of_loop(view, loop)
            if attempt is not None and attempt.path.is_file():
                rows += strip_rows(read_small(attempt.path), f"loop {loop} (seed {attempt.seed})")
        if row is not None:
            rows += strip_rows(read_small(layout.testing_video(row, fps)), "ground truth (take 1)")  # type: ignore[union-attr]
    except VideoReadError as exc:
        logger.warning("report: %s", exc)
    return [{"label": label, "src": _jpeg(image)} for label, image in rows]


def _curves_plot(run: RunData) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [v.name for v in run.views]
    max_loop = max(v.loops for v in run.views)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for view in run.views:
        per_loop = [
            float(np.mean([a.physics_iq for a in view.attempts if a.loop == k and a.physics_iq is not None]))
            for k in range(1, view.loops + 1)
        ]
        ax.plot(range(1, view.loops + 1), per_loop, marker=".", alpha=0.5, lw=1, label=view.name[:28])
    overall = loop_curve(run, names, max_loop)
    ax.plot(
        [i + 1 for i, y in enumerate(overall) if y is not None],
        [y for y in overall if y is not None],
        color="black",
        lw=2.5,
        marker="o",
        label="overall (official aggregation)",
    )
    ax.set_xlabel("loop")
    ax.set_ylabel("Physics-IQ score")
    ax.set_title("Score per loop (views: mean over seeds)")
    ax.set_xticks(range(1, max_loop + 1))
    ax.grid(alpha=0.3)
    if len(run.views) <= 12:
        ax.legend(fontsize=6, loc="best")
    fig.tight_layout()
    src = _png(fig)
    plt.close(fig)
    return src


def _variants_plot(run: RunData) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 0.28 * len(run.views) + 1.6))
    height = 0.8 / len(VARIANTS)
    for k, variant in enumerate(VARIANTS):
        scores = [
            aggregate(v.view_results(v.select(variant))).physics_iq_score if v.select(variant) else 0.0
            for v in run.views
        ]
        ax.barh(np.arange(len(run.views)) + k * height, scores, height=height, label=VARIANT_LABELS[variant])
    ax.set_yticks(np.arange(len(run.views)) + 0.4 - height / 2)
    ax.set_yticklabels([v.name for v in run.views], fontsize=7)
    ax.set_xlabel("Physics-IQ score")
    ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
    fig.tight_layout()
    src = _png(fig)
    plt.close(fig)
    return src


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{float(value):.2f}"


def report_context(run: RunData) -> dict[str, Any]:
    """Everything the template shows, as plain strings and lists (no markup: the template escapes)."""
    layout: DatasetLayout | None
    try:
        layout = run.layout()
    except (DatasetError, OSError) as exc:
        logger.warning("report: dataset unreadable (%s); no prefix or ground-truth strips", exc)
        layout = None
    scored = run.scored
    overall = [
        {"label": VARIANT_LABELS.get(k, k), "score": _fmt(v)}
        for k, v in run.summary.get("overall", {}).items()
        if k != "physical_variance"
    ]
    categories = []
    if scored:
        groups: dict[str, list[ViewData]] = {}
        for view in run.views:
            groups.setdefault(view.category, []).append(view)
        for category, members in sorted(groups.items()):
            cells = []
            for variant in VARIANTS:
                results = [r for v in members for r in v.view_results(v.select(variant))]
                cells.append(_fmt(aggregate(results).physics_iq_score) if results else "-")
            categories.append({"name": category, "views": len(members), "cells": cells})
    views = []
    for view in run.views:
        loops = []
        for loop in range(1, view.loops + 1):
            attempts = [a for a in view.attempts if a.loop == loop]
            critiques = []
            for attempt in attempts:
                c = attempt.critique()
                critiques.append(
                    {
                        "seed": attempt.seed,
                        "physics_iq": _fmt(attempt.physics_iq),
                        "verdict": str(c.get("verdict", "no critique")),
                        "critic_score": _fmt(c.get("score")),
                        "observations": str(c.get("observations", "")),
                        "expected": str(c.get("expected_physics", "")),
                        "violations": [
                            f"{v.get('law', '')} ({v.get('severity', '')}): {v.get('object', '')}: {v.get('detail', '')}"
                            for v in c.get("violations", [])
                            if isinstance(v, dict)
                        ],
                        "honest": attempt.key == view.honest_key,
                    }
                )
            loops.append({"index": loop, "prompt": view.prompt(loop), "critiques": critiques})
        entry = view.entry
        views.append(
            {
                "name": view.name,
                "category": view.category,
                "stop_reason": view.stop_reason,
                "loops_used": view.loops,
                "scores": [(VARIANT_LABELS[k], _fmt(entry.get(k))) for k in VARIANTS]
                + [("static baseline", _fmt(entry.get("static")))],
                "strip": view_strip(run, view, layout),
                "loops": loops,
            }
        )
    notes = []
    if not run.summary.get("generator_is_neural", True):
        notes.append("generator: offline physics-prior stand-in (not a neural model)")
    if not run.summary.get("critic_is_neural", True):
        notes.append("critic: offline motion-grounded rules (not a neural model)")
    notes.append("oracle selections pick with the ground truth: an upper bound, not an honest result")
    return {
        "title": f"physrefine report: {run.root.name}",
        "run_dir": str(run.root),
        "created": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "config": [(k, str(v)) for k, v in sorted(run.config.items())],
        "prompt_set": run.provenance.get("prompt_set", {}).get("name", ""),
        "git_commit": str(run.provenance.get("git_commit", "")),
        "notes": notes,
        "overall": overall,
        "variant_labels": [VARIANT_LABELS[k] for k in VARIANTS],
        "categories": categories,
        "curves": _curves_plot(run) if scored else "",
        "variants_plot": _variants_plot(run) if scored else "",
        "views": views,
    }


def render_report(run: RunData) -> str:
    """The report as one HTML string (autoescaped, strict undefined)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("report.html.j2").render(**report_context(run))


def write_report(run: RunData, out: str | Path) -> Path:
    """Write the report atomically (temporary name, then rename). Refuses to replace an existing file.

    Raises:
        FileExistsError: ``out`` exists.
    """
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out}: exists; refusing to overwrite it (choose another --out)")
    html = render_report(run)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.part")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(out)
    return out


__all__ = ["render_report", "report_context", "strip_rows", "view_strip", "write_report"]
