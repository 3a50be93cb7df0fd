"""What each page shows, gathered from the library functions the CLI uses (no HTTP here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lorastrap.workspace import Workspace

ORIGIN_WORDS = {"generated": "kept", "seed": "seed", "crop": "seed", "edited": "edited", "imported": "imported"}
LORA_META_KEYS = ("ss_output_name", "ss_network_module", "ss_network_dim", "ss_network_alpha",
                  "ss_base_model_version", "ss_resolution", "ss_max_train_steps", "ss_learning_rate",
                  "modelspec.architecture", "modelspec.trigger_phrase", "lorastrap.dataset_version",
                  "lorastrap.round")


def _newest_grid(tree: dict[str, Any]) -> str | None:
    from lorastrap.ui.lineage_view import flat_loras

    grids = [n["sample_grid"] for n in flat_loras(tree) if n.get("sample_grid")]
    return grids[-1] if grids else None


def characters_page(ws: Workspace) -> list[dict[str, Any]]:
    """One card per character: stage, counts, coverage, the next step in words, newest samples."""
    from lorastrap.characters import list_characters
    from lorastrap.method.lineage import lineage_tree
    from lorastrap.method.step import character_status

    names = {row["slug"]: row for row in list_characters(ws)}
    cards = []
    for st in character_status(ws):
        cards.append({**st.as_dict(), "name": names[st.slug]["name"], "trigger": names[st.slug]["trigger"],
                      "sample_grid": _newest_grid(lineage_tree(ws, st.slug))})
    return cards


def _seed_files(ws: Workspace, slug: str) -> list[str]:
    folder = ws.seed_dir(slug)
    from lorastrap.images import is_image_name

    return [ws.rel(p) for p in sorted(folder.rglob("*")) if p.is_file() and is_image_name(p)]


def seed_tags(ws: Workspace, slug: str) -> list[str]:
    from lorastrap.dataset.sources import carried_seed_tags
    from lorastrap.queries import get_character

    with ws.session(write=False) as s:
        return carried_seed_tags(s, get_character(s, slug), list(ws.config.bootstrap.views))


def coverage(ws: Workspace, slug: str) -> dict[str, Any]:
    """The live coverage bar: images per view of the next version against the next threshold."""
    from lorastrap.method.coverage import live_view_coverage
    from lorastrap.method.step import character_status

    st = character_status(ws, slug)[0]
    views = live_view_coverage(ws, slug)
    threshold = st.threshold or max(st.total, 1)
    scale = max(threshold, st.total, 1)
    return {"views": views, "total": st.total, "threshold": threshold, "seed": st.seed_count,
            "need": max(0, threshold - st.total), "mark": round(100 * threshold / scale, 2),
            "curated": st.curated_count, "ready": st.ready, "reason": st.reason,
            "next_step": st.next_step, "stage": st.stage, "round": st.round,
            "segments": [{"view": v, "count": n, "percent": round(100 * n / scale, 2)}
                         for v, n in views.items() if n]}


def overview_page(ws: Workspace, slug: str) -> dict[str, Any]:
    from lorastrap.characters import show_character
    from lorastrap.method.lineage import lineage_tree
    from lorastrap.method.step import character_status
    from lorastrap.tags import ROLES
    from lorastrap.ui.lineage_view import lineage_picture
    from lorastrap.ui.progress import active_job, job_view

    info = show_character(ws, slug)
    tree = lineage_tree(ws, slug)
    job = active_job(ws, slug)
    by_role = {role: [t["tag"] for t in info["tags"] if t["role"] == role] for role in ROLES}
    return {"character": info, "status": character_status(ws, slug)[0], "tags": by_role,
            "seed_tags": seed_tags(ws, slug), "seeds": _seed_files(ws, slug),
            "coverage": coverage(ws, slug), "lineage": tree, "tree_pic": lineage_picture(tree),
            "job": job_view(ws, job) if job else None}


def curate_page(ws: Workspace, slug: str, round_no: int | None) -> dict[str, Any]:
    from lorastrap.kernel.errors import NotFound
    from lorastrap.method.step import character_status
    from lorastrap.ui.rounds import group_by_view, round_candidates, round_numbers

    st = character_status(ws, slug)[0]
    rounds = round_numbers(ws, slug)
    chosen = round_no if round_no is not None else (st.round if st.round in rounds else (rounds[-1] if rounds else None))
    if chosen is not None and chosen not in rounds:
        raise NotFound(f"{slug} has no candidates of round {chosen}; rounds: {', '.join(map(str, rounds)) or 'none'}")
    candidates = round_candidates(ws, slug, chosen) if chosen is not None else []
    sheet = ws.candidates_dir(slug, chosen) / "contact-sheet.png" if chosen is not None else None
    return {"status": st, "rounds": rounds, "round": chosen,
            "groups": group_by_view(candidates, list(ws.config.bootstrap.views)),
            "counts": {s: sum(c.state == s for c in candidates) for s in ("open", "kept", "rejected")},
            "coverage": coverage(ws, slug),
            "contact_sheet": ws.rel(sheet) if sheet and sheet.is_file() else None}


def _caption_file(ws: Workspace, slug: str, origin: str, name: str) -> Path | None:
    if origin == "seed":
        path = ws.seed_dir(slug) / name
    elif origin == "crop":
        path = ws.seed_dir(slug) / "crops" / name
    else:
        path = ws.curated_dir(slug) / name
    return path if path.is_file() else None


def captions_page(ws: Workspace, slug: str) -> dict[str, Any]:
    """The next version's items with their captions (the `captions` command's preview)."""
    from lorastrap.dataset.captions import sidecar_path
    from lorastrap.method.curation import preview_captions
    from lorastrap.method.stage import training_kind
    from lorastrap.queries import get_character

    with ws.session(write=False) as s:
        kind = training_kind(ws, s, get_character(s, slug))
    rows = []
    for row in preview_captions(ws, slug, kind):
        path = _caption_file(ws, slug, row["origin"], row["image"])
        editable = row["origin"] not in ("seed", "crop") and path is not None
        rows.append({**row, "origin_word": ORIGIN_WORDS.get(row["origin"], row["origin"]),
                     "rel": ws.rel(path) if path else None, "editable": editable,
                     "has_sidecar": bool(editable and path and sidecar_path(path).is_file())})
    return {"kind": kind, "rows": rows}


def outputs_page(ws: Workspace, slug: str) -> dict[str, Any]:
    """LoRAs (metadata, sample grid, download), clash reports, sprite exports."""
    from lorastrap.export.outputs import character_outputs
    from lorastrap.method.lineage import lineage_tree
    from lorastrap.models.safetensors_io import safetensors_metadata
    from lorastrap.ui.lineage_view import flat_loras

    loras = []
    for node in reversed(flat_loras(lineage_tree(ws, slug))):
        path = ws.abs(node["file"])
        try:
            meta = safetensors_metadata(path) if path.is_file() else {}
        except Exception:  # a damaged file is shown without metadata, never breaks the page
            meta = {}
        loras.append({**node, "exists": path.is_file(), "size_kb": path.stat().st_size // 1024 if path.is_file() else None,
                      "metadata": {k: meta[k] for k in LORA_META_KEYS if k in meta}})
    return {"loras": loras, **character_outputs(ws, slug)}


def lora_download(ws: Workspace, lora_id: int) -> tuple[Path, str]:
    """A LoRA file by its registry id (wherever it is stored) and its download name."""
    from lorastrap.kernel.errors import NotFound
    from lorastrap.queries import get_lora

    with ws.session(write=False) as s:
        path = ws.abs(get_lora(s, lora_id).file_path)
    if not path.is_file():
        raise NotFound(f"LoRA #{lora_id}: its file {path} is missing")
    return path, path.name
