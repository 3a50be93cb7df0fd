"""`lorastrap lab eval --jobs N`: the fidelity benchmark split over N processes by character.

The lab model is small, so one process leaves a GPU (and a many-core CPU) mostly idle: per-step
overheads dominate. Each process runs `run_fidelity` on its share of the characters with the same
seeds it would use in a serial run (seeds follow a character's global index), writing into
`out/part-<k>/`; the parts are then merged into one results.json and tables.md.
"""

from __future__ import annotations

import json
import multiprocessing
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from lorastrap.lab.arms import FidelityConfig
from lorastrap.lab.eval import BootstrapHook, _write, fidelity_table, run_fidelity


def _run_part(args: tuple[Path, FidelityConfig, BootstrapHook | None, bool, bool]) -> Path:
    out, cfg, hook, style_survival, progress = args
    from lorastrap.models.threads import use_small_model_threads

    use_small_model_threads()
    run_fidelity(out, cfg, bootstrap=hook, style_survival=style_survival, progress=progress)
    return out / "results.json"


def merge_results(parts: Sequence[dict]) -> tuple[dict, str]:
    """One result from per-part results: arms concatenated in character order, style curves
    averaged weighted by each part's number of characters."""
    from lorastrap.lab.eval_style import style_summary

    first = parts[0]
    views = first["views"]
    merged = {**first, "characters": [c for p in parts for c in p["characters"]],
              "arms": {}, "seconds": max(p["seconds"] for p in parts), "parts": len(parts)}
    for p in parts:
        for arm, rows in p["arms"].items():
            merged["arms"].setdefault(arm, []).extend(rows)
    tables = "## Character fidelity per view: all-attribute (identity) accuracy\n\n"
    tables += fidelity_table(merged["arms"], views)
    yields = {slug: rows for p in parts for slug, rows in p.get("yield", {}).items()}
    if yields:
        from lorastrap.lab.eval_yield import yield_table

        merged["yield"] = yields
        tables += "\n" + yield_table(yields)
    styled = [p for p in parts if p.get("style_survival")]
    if styled:
        total = sum(len(p["characters"]) for p in styled)
        curves: dict[str, dict[str, dict]] = {}
        for style in styled[0]["style_survival"]:
            for variant, curve in styled[0]["style_survival"][style]["by_weight"].items():
                curves.setdefault(style, {})[variant] = {
                    w: {k: round(sum(p["style_survival"][style]["by_weight"][variant][w][k] * len(p["characters"])
                                     for p in styled) / total, 4) for k in ("identity", "style")}
                    for w in curve}
        summary = style_summary(curves)
        merged["style_survival"] = summary["results"]
        tables += "\n" + summary["table"]
    return merged, tables


def run_fidelity_parallel(out_dir: Path, cfg: FidelityConfig, jobs: int, *, bootstrap: BootstrapHook | None = None,
                          style_survival: bool = True, progress: bool = True) -> dict:
    """Run the benchmark in `jobs` processes (spawned: safe with CUDA) and merge their results."""
    out_dir = Path(out_dir)
    indices = list(cfg.character_indices or range(cfg.characters))
    groups = [tuple(indices[k::jobs]) for k in range(min(jobs, len(indices)))]
    tasks = [(out_dir / f"part-{k}", replace(cfg, character_indices=g), bootstrap, style_survival, progress)
             for k, g in enumerate(groups)]
    with multiprocessing.get_context("spawn").Pool(len(tasks)) as pool:
        paths = pool.map(_run_part, tasks)
    merged, tables = merge_results([json.loads(Path(p).read_text()) for p in paths])
    _write(out_dir, merged, tables)
    return {"results": merged, "tables": tables}
