"""LoRA lineage: which dataset version trained each LoRA and which LoRA's images went into it."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from lorastrap.dataset.sources import seed_images
from lorastrap.method.check import recommendation
from lorastrap.method.stage import suggested_final
from lorastrap.queries import character_loras, get_character
from lorastrap.workspace import Workspace
from registry.models import DatasetVersion

FORMATS = ("text", "json", "dot")


def lineage_tree(ws: Workspace, name: str) -> dict[str, Any]:
    """{character, seed, loras: [nested {id, name, kind, round, dataset, images, sample_grid,
    final_loss, steps, rank, alpha, …, children}]}."""
    with ws.session(write=False) as s:
        c = get_character(s, name)
        versions = {v.id: v for v in s.scalars(select(DatasetVersion).where(DatasetVersion.character_id == c.id))}
        loras = character_loras(s, c)
        nodes: dict[int, dict[str, Any]] = {}
        for l in loras:
            v = versions.get(l.dataset_version_id or -1)
            nodes[l.id] = {
                "id": l.id, "name": l.name, "kind": l.kind, "round": l.round,
                "file": l.file_path, "sha256": l.sha256[:12], "status": l.status,
                "dataset": f"v{v.number}" if v else None, "images": v.item_count if v else None,
                "sample_grid": (l.metrics or {}).get("sample_grid"),
                "final_loss": (l.metrics or {}).get("final_loss"), "steps": (l.metrics or {}).get("steps"),
                "rank": (l.hyperparams or {}).get("rank"), "alpha": (l.hyperparams or {}).get("alpha"),
                "learning_rate": (l.hyperparams or {}).get("learning_rate"),
                "base_model": l.base_model, "created_at": l.created_at.isoformat(timespec="seconds"),
                "check": ((l.metrics or {}).get("check") or {}).get("mean"), "recommended": False,
                "suggested": False,
                "children": [],
            }
        best = recommendation([{"id": l.id, "name": l.name, "kind": l.kind, "round": l.round,
                                "metrics": l.metrics} for l in loras])
        if best:
            nodes[best["id"]]["recommended"] = True
        elif pick := suggested_final(c, [{"id": l.id, "kind": l.kind} for l in loras]):  # no check ran
            nodes[pick["id"]]["suggested"] = True
        roots: list[dict[str, Any]] = []
        for l in loras:
            parent = nodes.get(l.parent_lora_id or -1)
            (parent["children"] if parent else roots).append(nodes[l.id])
        first = min(versions.values(), key=lambda v: v.number, default=None)
        return {
            "character": c.slug, "trigger": c.trigger, "stage": c.stage,
            "seed": {"images": len(seed_images(s, c)), "dataset": f"v{first.number}" if first else None},
            "loras": roots,
        }


def _text_lines(node: dict[str, Any], prefix: str, last: bool) -> list[str]:
    label = f"{node['kind']}" + (f" r{node['round']}" if node["kind"] == "style" and node["round"] else "")
    line = (f"{prefix}{'└─ ' if last else '├─ '}{label}  #{node['id']} {node['name']}  "
            f"dataset {node['dataset'] or '-'} ({node['images'] if node['images'] is not None else '?'} images)"
            + ("" if node["status"] == "ready" else f"  [{node['status']}]")
            + (f"  check {node['check']:.2f}" if node.get("check") is not None else "")
            + ("  ★ the check prefers it" if node.get("recommended") else "")
            + ("  ☆ suggested final LoRA (trigger + identity tags)" if node.get("suggested") else ""))
    lines = [line]
    child_prefix = prefix + ("   " if last else "│  ")
    for i, child in enumerate(node["children"]):
        lines += _text_lines(child, child_prefix, i == len(node["children"]) - 1)
    return lines


def render_lineage(tree: dict[str, Any], fmt: str = "text") -> str:
    if fmt == "json":
        return json.dumps(tree, indent=2)
    if fmt == "dot":
        out = ["digraph lineage {", "  rankdir=LR;", '  seed [shape=box, label="seed\\n'
               f'{tree["seed"]["images"]} images"];']

        def walk(node: dict[str, Any], parent: str) -> None:
            nid = f"lora{node['id']}"
            mark = ("\\n★ the check prefers it" if node.get("recommended") else
                    "\\n☆ suggested final LoRA" if node.get("suggested") else "")
            out.append(f'  {nid} [label="{node["kind"]} #{node["id"]}\\n{node["dataset"]} · {node["images"]} images{mark}"];')
            out.append(f"  {parent} -> {nid};")
            for child in node["children"]:
                walk(child, nid)

        for root in tree["loras"]:
            walk(root, "seed")
        out.append("}")
        return "\n".join(out)
    lines = [f"{tree['character']} (trigger {tree['trigger']}, stage {tree['stage']})",
             f"seed: {tree['seed']['images']} images (dataset {tree['seed']['dataset']})"]
    for i, root in enumerate(tree["loras"]):
        lines += _text_lines(root, "", i == len(tree["loras"]) - 1)
    return "\n".join(lines)
