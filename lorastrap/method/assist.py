"""Curation assist: rank a round's candidates by likeness to the seed + curated set, flag near
duplicates, and (only with --auto-curate N) keep the best ones, spread over the views.

The ranking uses a pluggable embedder (lorastrap.models.embedding); without local CLIP weights that is
the model-free colour/structure fallback, which is weak: it is an assist, not a judge.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from lorastrap.images import curated_files, is_image_name, is_partial_name
from lorastrap.kernel.pngmeta import png_view
from lorastrap.models.embedding import ImageEmbedder, cosine_similarity, default_embedder
from lorastrap.workspace import CONTACT_SHEET_NAME, Workspace

TOP_K = 3


@dataclass
class RankedCandidate:
    path: Path
    view: str
    score: float
    near_duplicate_of: str | None = None


def candidate_view(path: Path) -> str:
    """The view a candidate was generated for, from its `lorastrap` PNG chunk."""
    return png_view(path) or "front"


def _load(paths: Sequence[Path]) -> list[Image.Image]:
    images = []
    for p in paths:
        with Image.open(p) as im:
            images.append(im.convert("RGB"))
    return images


def reference_paths(ws: Workspace, slug: str) -> list[Path]:
    seed = sorted(p for p in ws.seed_dir(slug).rglob("*") if p.is_file() and is_image_name(p))
    return seed + curated_files(ws.curated_dir(slug))[0]


def rank_candidates(
    ws: Workspace, slug: str, round_no: int, embedder: ImageEmbedder | None = None,
    duplicate_threshold: float | None = None,
) -> list[RankedCandidate]:
    """Candidates of round `round_no`, best first; near duplicates point to the better twin."""
    folder = ws.candidates_dir(slug, round_no)
    paths = sorted(p for p in folder.glob("*") if p.is_file() and is_image_name(p)
                   and not is_partial_name(p.name) and p.name != CONTACT_SHEET_NAME)
    if not paths:
        return []
    embedder = embedder or default_embedder()
    threshold = duplicate_threshold or ws.config.bootstrap.near_duplicate_threshold
    cand = embedder.embed(_load(paths))
    ref = embedder.embed(_load(reference_paths(ws, slug)))
    sims = cosine_similarity(cand, ref)
    k = min(TOP_K, sims.shape[1])
    scores = np.sort(sims, axis=1)[:, -k:].mean(axis=1)
    order = np.argsort(-scores, kind="stable")
    ranked: list[RankedCandidate] = []
    pair = cosine_similarity(cand, cand)
    for idx in order:
        twin = next((r for r in ranked if pair[idx, paths.index(r.path)] >= threshold), None)
        ranked.append(RankedCandidate(paths[idx], candidate_view(paths[idx]), float(scores[idx]),
                                      twin.path.name if twin else None))
    return ranked


def pick_spread(ranked: Sequence[RankedCandidate], n: int, coverage: Mapping[str, int]) -> list[RankedCandidate]:
    """Up to n non-duplicate candidates, taking turns over views from the least covered one."""
    pools: dict[str, list[RankedCandidate]] = {}
    for r in ranked:
        if r.near_duplicate_of is None:
            pools.setdefault(r.view, []).append(r)
    views = sorted(pools, key=lambda v: (coverage.get(v, 0), v))
    picked: list[RankedCandidate] = []
    while len(picked) < n and any(pools.values()):
        for view in views:
            if pools[view] and len(picked) < n:
                picked.append(pools[view].pop(0))
    return picked


def auto_curate(ws: Workspace, slug: str, round_no: int, n: int, coverage: Mapping[str, int],
                embedder: ImageEmbedder | None = None) -> list[Path]:
    """Copy the n picked candidates into curated/ (never overwriting what the person put there)."""
    picked = pick_spread(rank_candidates(ws, slug, round_no, embedder), n, coverage)
    curated = ws.curated_dir(slug)
    curated.mkdir(parents=True, exist_ok=True)
    kept = []
    for r in picked:
        target = curated / r.path.name
        if not target.exists():
            shutil.copy2(r.path, target)
            kept.append(target)
    return kept
