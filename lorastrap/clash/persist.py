"""Writing a clash run: cell PNGs + report files in a staged folder, then the registry rows
(clash_runs, clash_cells, images) in ONE transaction. A failure leaves neither half files nor rows."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

from game_export.clash_report import ReportFiles, write_clash_report
from lorastrap.clash.grid import GridCell
from lorastrap.image_store import store_image
from lorastrap.kernel.atomic import atomic_write_bytes, staged_dir
from lorastrap.kernel.journal import FileJournal
from lorastrap.kernel.pngmeta import png_bytes
from lorastrap.workspace import Workspace
from registry.models import ClashCell, ClashRun


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def assign_image_paths(cells: Sequence[GridCell], prefix: str = "cells") -> dict[str, GridCell]:
    """Give each distinct generated image one path (relative to the report folder) in
    `cell.extra["image"]`; returns {path: first cell} for writing."""
    by_image: dict[int, str] = {}
    files: dict[str, GridCell] = {}
    for cell in cells:
        key = id(cell.generated)
        if key not in by_image:
            v = cell.variant
            row = "-".join(p for p in (_slug(v.kind), f"c{v.character_weight:g}", f"s{v.style_weight:g}",
                                       _slug(v.adapter) if v.adapter else "") if p)
            rel = f"{prefix}/{_slug(cell.style)}/{row}/{_slug(cell.view)}-seed{cell.seed}.png"
            by_image[key] = rel
            files[rel] = cell
        cell.extra["image"] = by_image[key]
    return files


def _variant_label(cell: GridCell) -> str:
    return cell.variant.kind[:64]


def persist_run(ws: Workspace, out_dir: Path, report: dict, cells: Sequence[GridCell], *,
                character_id: int, character_lora_id: int, style_lora_ids: Mapping[str, int | None],
                params: dict, summary: dict) -> tuple[int, ReportFiles]:
    """Write the run's files into `out_dir` (staged) and record it; returns (clash run id, files).

    `cells` must carry `extra["image"]` paths from `assign_image_paths`, which `report` references.
    `style_lora_ids` maps a style section / adapter name to its LoRA id.
    """
    out_dir = Path(out_dir)
    with FileJournal() as journal, ws.session() as s:
        journal.will_create(out_dir)
        with staged_dir(out_dir) as stage:
            for rel, cell in assign_image_paths(cells).items():
                atomic_write_bytes(stage / rel, png_bytes(cell.generated.image, cell.generated.parameters,
                                                          cell.generated.provenance))
            staged = write_clash_report(report, stage)
        files = ReportFiles(out_dir / staged.html.name, out_dir / staged.json.name,
                            {k: out_dir / v.relative_to(stage) for k, v in staged.sheets.items()})
        run = ClashRun(character_id=character_id, character_lora_id=character_lora_id, out_dir=ws.rel(out_dir),
                       params=params, summary=summary)
        s.add(run)
        s.flush()
        stored: dict[str, int] = {}
        for cell in cells:
            rel = cell.extra["image"]
            if rel not in stored:
                data = (out_dir / rel).read_bytes()
                image = store_image(s, ws.blobs, data, origin="generated", character_id=character_id,
                                    journal=journal, file_name=Path(rel).name, provenance=cell.generated.provenance)
                stored[rel] = image.id
            adapter = cell.variant.adapter
            style_id = style_lora_ids.get(adapter) if adapter else style_lora_ids.get(cell.style)
            metrics = asdict(cell.scores) if cell.scores is not None else {}
            metrics.update(row=cell.variant.key, style_name=cell.style, blocks=cell.variant.block_weights or None,
                           label=cell.variant.title(), phase=cell.extra.get("phase", "grid"))
            s.add(ClashCell(run_id=run.id, style_lora_id=style_id, variant=_variant_label(cell),
                            character_weight=cell.variant.character_weight, style_weight=cell.variant.style_weight,
                            view=cell.view[:64], seed=cell.seed, image_id=stored[rel],
                            image_path=ws.rel(out_dir / rel), metrics=metrics))
        s.flush()
        return run.id, files
