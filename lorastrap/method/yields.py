"""What each round's candidates gave, as far as the product can know it without a judge of truth:
per round and view, how many candidates were generated, how many the assist passed (when it
judged them) and how many the person kept. `status` shows it; a view where few candidates are
kept is where the round is weak."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lorastrap.images import curated_files, is_image_name, is_partial_name
from lorastrap.kernel.pngmeta import png_view
from lorastrap.workspace import CONTACT_SHEET_NAME, Workspace

VERDICTS_NAME = "assist.json"  # a round folder's verdicts of the assist's judge (method/judge.py)


@dataclass
class ViewYield:
    generated: int = 0
    kept: int = 0
    passed: int | None = None  # None: the assist did not judge this round

    def as_dict(self) -> dict[str, int | None]:
        return {"generated": self.generated, "kept": self.kept, "passed": self.passed}


def round_candidates(folder: Path) -> list[Path]:
    """The candidate images of one round folder (not the contact sheet, not set-aside rejects)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_name(p)
                  and not is_partial_name(p.name) and p.name != CONTACT_SHEET_NAME)


def round_numbers(ws: Workspace, slug: str) -> list[int]:
    base = ws.candidates_dir(slug)
    if not base.is_dir():
        return []
    return sorted(int(p.name[1:]) for p in base.iterdir() if p.is_dir() and p.name[1:].isdigit()
                  and p.name.startswith("r"))


def read_verdicts(folder: Path) -> dict[str, dict]:
    """{file name: {"passed": bool, "score": float, "failed": [...]}} written by the assist."""
    try:
        return json.loads((folder / VERDICTS_NAME).read_text(encoding="utf-8")).get("candidates", {})
    except (OSError, ValueError):
        return {}


def write_verdicts(folder: Path, verdicts: dict[str, dict]) -> None:
    """Replace the round folder's verdicts file (atomically)."""
    from lorastrap.kernel.atomic import atomic_write_text

    atomic_write_text(folder / VERDICTS_NAME, json.dumps({"candidates": verdicts}, indent=1))


def candidate_yield(ws: Workspace, slug: str) -> dict[int, dict[str, ViewYield]]:
    """Per round, per view: generated, passed by the assist, kept in curated/ (by file name; a
    candidate kept and then edited keeps its name). Rejected candidates still count as generated."""
    kept_names = {p.name for p in curated_files(ws.curated_dir(slug))[0]}
    out: dict[int, dict[str, ViewYield]] = {}
    for round_no in round_numbers(ws, slug):
        folder = ws.candidates_dir(slug, round_no)
        verdicts = read_verdicts(folder)
        paths = round_candidates(folder) + round_candidates(folder / ".rejected")
        views: dict[str, ViewYield] = {}
        for path in paths:
            row = views.setdefault(png_view(path) or "front", ViewYield())
            row.generated += 1
            row.kept += path.name in kept_names
            verdict = verdicts.get(path.name)
            if verdict is not None:
                row.passed = (row.passed or 0) + bool(verdict.get("passed"))
        out[round_no] = views
    return out
