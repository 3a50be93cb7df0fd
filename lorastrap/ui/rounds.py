"""A round's candidates as the curation page shows them: grouped by view, in the assist's order,
with near-duplicate marks and each one's state (open, kept, rejected).

The assist's ranking (`method/assist.rank_candidates`, its public function) embeds every
candidate, so it is computed once per round and kept in `.lorastrap/cache/assist/`. It is reused
while the round's files are a subset of the ranked ones (rejecting moves a file aside), so the
order does not jump while a person curates; a new file in the round ranks the round again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lorastrap.images import curated_files, is_image_name, is_partial_name
from lorastrap.kernel.atomic import atomic_write_text
from lorastrap.workspace import Workspace

SHEET_NAME = "contact-sheet.png"


@dataclass
class Candidate:
    name: str
    view: str
    rank: int | None  # 1 = the assist's best; None: set aside before the round was ranked
    score: float | None
    duplicate_of: str | None
    state: str  # open | kept | rejected
    rel: str  # workspace path of the file where it is now


def round_numbers(ws: Workspace, slug: str) -> list[int]:
    base = ws.candidates_dir(slug)
    numbers = [int(p.name[1:]) for p in base.glob("r*") if p.is_dir() and p.name[1:].isdigit()] \
        if base.is_dir() else []
    return sorted(numbers)


def _images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_name(p)
                  and not is_partial_name(p.name) and p.name != SHEET_NAME)


def _signature(paths: list[Path]) -> dict[str, list[int]]:
    out = {}
    for p in paths:
        st = p.stat()
        out[p.name] = [st.st_size, st.st_mtime_ns]
    return out


def ranked_round(ws: Workspace, slug: str, round_no: int) -> dict[str, dict]:
    """{name: {rank, view, score, duplicate_of}} for the round, from the cache or ranked now."""
    from lorastrap.method.assist import rank_candidates

    folder = ws.candidates_dir(slug, round_no)
    present = _signature(_images(folder))
    cache = ws.cache_dir / "assist" / f"{slug}-r{round_no}.json"
    if cache.is_file():
        try:
            data = json.loads(cache.read_text(encoding="utf-8"))
            files, entries = data["files"], data["entries"]
            if all(files.get(name) == sig for name, sig in present.items()):
                return entries
        except (ValueError, KeyError, TypeError):
            pass  # a damaged cache is ranked again
    ranked = rank_candidates(ws, slug, round_no)
    entries = {r.path.name: {"rank": i + 1, "view": r.view, "score": round(float(r.score), 5),
                             "duplicate_of": r.near_duplicate_of} for i, r in enumerate(ranked)}
    atomic_write_text(cache, json.dumps({"files": present, "entries": entries}))
    return entries


def round_candidates(ws: Workspace, slug: str, round_no: int) -> list[Candidate]:
    """Every candidate of the round, open and rejected, best first (unranked ones last)."""
    from lorastrap.kernel.pngmeta import png_view

    folder = ws.candidates_dir(slug, round_no)
    entries = ranked_round(ws, slug, round_no) if _images(folder) else {}
    kept = {p.name for p in curated_files(ws.curated_dir(slug))[0]}
    out: list[Candidate] = []
    for path, rejected in [*((p, False) for p in _images(folder)), *((p, True) for p in _images(folder / ".rejected"))]:
        e = entries.get(path.name) or {}
        state = "rejected" if rejected else ("kept" if path.name in kept else "open")
        out.append(Candidate(path.name, e.get("view") or png_view(path) or "front", e.get("rank"),
                             e.get("score"), e.get("duplicate_of"), state, ws.rel(path)))
    out.sort(key=lambda c: (c.rank is None, c.rank or 0, c.name))
    return out


def group_by_view(candidates: list[Candidate], views: list[str]) -> list[tuple[str, list[Candidate]]]:
    """(view, candidates in assist order), views in the workspace's order, then any others."""
    groups: dict[str, list[Candidate]] = {}
    for c in candidates:
        groups.setdefault(c.view, []).append(c)
    order = [v for v in views if v in groups] + sorted(set(groups) - set(views))
    return [(v, groups[v]) for v in order]
