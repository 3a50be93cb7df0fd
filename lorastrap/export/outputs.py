"""What was made from a character besides LoRAs: style-clash reports and sprite exports (read-only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from lorastrap.queries import get_character
from lorastrap.workspace import Workspace
from registry.models import ClashRun, Export, Lora


def _existing(ws: Workspace, rel: str) -> str | None:
    return rel if ws.abs(rel).is_file() else None


def character_outputs(ws: Workspace, name: str, limit: int = 20) -> dict[str, list[dict[str, Any]]]:
    """Newest first: clash runs (ranking, report files) and sprite exports (engines, preview)."""
    with ws.session(write=False) as s:
        c = get_character(s, name)
        clash = []
        for run in s.scalars(select(ClashRun).where(ClashRun.character_id == c.id)
                             .order_by(ClashRun.id.desc()).limit(limit)):
            out = run.out_dir.rstrip("/")
            sheets_dir = ws.abs(out) / "sheets"
            clash.append({
                "id": run.id, "created_at": run.created_at.isoformat(timespec="seconds"), "out_dir": out,
                "lora": (s.get(Lora, run.character_lora_id).name if run.character_lora_id else None),
                "ranking": list((run.summary or {}).get("ranking") or []),
                "report_html": _existing(ws, f"{out}/report.html"),
                "report_json": _existing(ws, f"{out}/report.json"),
                "sheets": sorted(ws.rel(p) for p in sheets_dir.glob("*.png")) if sheets_dir.is_dir() else [],
            })
        exports = []
        for row in s.scalars(select(Export).where(Export.character_id == c.id)
                             .order_by(Export.id.desc()).limit(limit)):
            files = [str(f) for f in row.files or []]
            exports.append({
                "id": row.id, "created_at": row.created_at.isoformat(timespec="seconds"),
                "engines": row.engine.split(","), "out_dir": row.out_dir, "frames": row.frame_count,
                "files": files,
                "preview": next((f for f in files if Path(f).name.endswith("_preview.png")
                                 and ws.abs(f).is_file()), None),
            })
        return {"clash": clash, "exports": exports}
