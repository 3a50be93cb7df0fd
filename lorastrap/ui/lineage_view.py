"""The lineage as a picture: seed → style rounds → character LoRA, laid out as an SVG tree
(server-side, so it reads with JavaScript off)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

BOX_W, BOX_H, COL_W, ROW_H, PAD = 190, 58, 240, 78, 12


@dataclass
class Node:
    key: str
    title: str
    lines: list[str]
    x: int
    y: int
    kind: str
    lora_id: int | None = None


@dataclass
class Picture:
    width: int
    height: int
    nodes: list[Node] = field(default_factory=list)
    edges: list[tuple[int, int, int, int]] = field(default_factory=list)  # x1, y1, x2, y2


def _label(node: dict[str, Any]) -> str:
    if node["kind"] == "style" and node.get("round"):
        return f"style r{node['round']}"
    return str(node["kind"])


def lineage_picture(tree: dict[str, Any]) -> Picture:
    """Columns by depth (seed first), one row per leaf; edges from parent's right to child's left."""
    rows = [0]
    pic = Picture(0, 0)
    seed = tree["seed"]

    def place(node: dict[str, Any], depth: int) -> tuple[int, int]:
        children = [place(c, depth + 1) for c in node["children"]]
        y = (children[0][1] + children[-1][1]) // 2 if children else rows[0] * ROW_H + PAD
        if not children:
            rows[0] += 1
        x = depth * COL_W + PAD
        lines = [f"dataset {node['dataset'] or '-'} · {node['images'] if node['images'] is not None else '?'} images"]
        if node.get("steps"):
            loss = node.get("final_loss")
            lines.append(f"{node['steps']} steps" + (f" · loss {loss:.4f}" if isinstance(loss, float) else ""))
        mark = "  ★ check" if node.get("recommended") else "  ☆ suggested" if node.get("suggested") else ""
        pic.nodes.append(Node(f"lora-{node['id']}", f"{_label(node)}  #{node['id']}{mark}", lines, x, y,
                              node["kind"], node["id"]))
        for cx, cy in children:
            pic.edges.append((x + BOX_W, y + BOX_H // 2, cx, cy + BOX_H // 2))
        return x, y

    tops = [place(root, 1) for root in tree["loras"]]
    seed_y = (tops[0][1] + tops[-1][1]) // 2 if tops else PAD
    pic.nodes.insert(0, Node("seed", "seed", [f"{seed['images']} images · dataset {seed['dataset'] or '-'}"],
                             PAD, seed_y, "seed"))
    for x, y in tops:
        pic.edges.append((PAD + BOX_W, seed_y + BOX_H // 2, x, y + BOX_H // 2))
    depth = max((n.x for n in pic.nodes), default=PAD)
    pic.width = depth + BOX_W + PAD
    pic.height = max(rows[0], 1) * ROW_H + PAD
    return pic


def flat_loras(tree: dict[str, Any]) -> list[dict[str, Any]]:
    """Every LoRA node of the tree, oldest first."""
    out: list[dict[str, Any]] = []

    def walk(node: dict[str, Any]) -> None:
        out.append(node)
        for child in node["children"]:
            walk(child)

    for root in tree["loras"]:
        walk(root)
    return sorted(out, key=lambda n: n["id"])
