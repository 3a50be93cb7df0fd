"""`lorastrap dataset list|diff|export` on a workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lorastrap.characters import get_character
from lorastrap.dataset.versions import diff_versions, get_version, list_versions, version_items
from lorastrap.dataset.kohya import DATASET_CONFIG, export_kohya
from lorastrap.tags import identity_tags
from lorastrap.workspace import Workspace


def list_datasets(ws: Workspace, name: str) -> list[dict[str, Any]]:
    with ws.open_registry() as reg, reg.session(write=False) as s:
        c = get_character(s, name)
        return [
            {"version": f"v{v.number}", "kind": v.kind, "policy": v.caption_policy, "items": v.item_count,
             "parent": f"v{v.number - 1}" if v.parent_id else None, "manifest": v.manifest_hash[:12],
             "note": v.note, "created_at": v.created_at.isoformat(timespec="seconds")}
            for v in list_versions(s, c)
        ]


def diff_datasets(ws: Workspace, name: str, a: str, b: str) -> dict[str, Any]:
    with ws.open_registry() as reg, reg.session(write=False) as s:
        c = get_character(s, name)
        d = diff_versions(s, get_version(s, c, a), get_version(s, c, b))

        def label(it) -> str:  # type: ignore[no-untyped-def]
            return it.image.file_name or it.image.sha256[:12]

        return {
            "added": [{"image": label(i), "caption": i.caption} for i in d.added],
            "removed": [{"image": label(i), "caption": i.caption} for i in d.removed],
            "recaptioned": [{"image": label(o), "before": o.caption, "after": n.caption}
                            for o, n in d.recaptioned],
        }


def export_dataset(ws: Workspace, name: str, version: str | None, out: Path | None,
                   resolution: int = 512) -> dict[str, Any]:
    with ws.open_registry() as reg, reg.session() as s:
        c = get_character(s, name)
        v = get_version(s, c, version) if version else list_versions(s, c)[-1]
        out = ws.check_output_folder(Path(out) if out else ws.datasets_dir(c.slug) / f"v{v.number}",
                                     marker=DATASET_CONFIG)
        folders = export_kohya(version_items(s, v), ws.blobs, out, trigger=c.trigger,
                               identity_tags=identity_tags(c), resolution=resolution)
        return {"version": f"v{v.number}", "out": str(out), "folders": [f.name for f in folders],
                "items": v.item_count, "config": str(out / DATASET_CONFIG)}
