"""Curation assist: rank a round's candidates, flag near duplicates, and (only with
--auto-curate N) keep the best ones, spread over the views.

Two rankings (`[bootstrap] assist`):
- `judge` (default): the diffusion model itself asks each candidate whether its prompt explains it
  better than the prompt with one identity attribute or the view changed (lorastrap.method.judge);
  needs no weights beyond the base model and style round 1's LoRA. On the lab's round candidates it
  ranks right ones above wrong ones with AUC 0.88-0.90 against the lab's reader (docs/fidelity.md).
- `similarity`: likeness to the seed + curated set with a pluggable embedder (lorastrap.models.embedding);
  without local CLIP weights the model-free colour/structure fallback, which is weak (AUC 0.61 on
  the same candidates) and prefers the seed's pose.
Near duplicates are flagged with the embedder in both cases.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from lorastrap.config import ASSISTS
from lorastrap.images import curated_files, is_image_name
from lorastrap.kernel.errors import UserError
from lorastrap.kernel.pngmeta import png_view
from lorastrap.method.yields import round_candidates
from lorastrap.models.embedding import ImageEmbedder, cosine_similarity, default_embedder
from lorastrap.workspace import Workspace

TOP_K = 3


@dataclass
class RankedCandidate:
    path: Path
    view: str
    score: float
    near_duplicate_of: str | None = None
    passed: bool | None = None  # the judge's verdict (None: ranked by similarity)
    failed: tuple[str, ...] = ()  # what the judge found wrong: identity tags, "view"


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
    duplicate_threshold: float | None = None, assist: str | None = None,
) -> list[RankedCandidate]:
    """Candidates of round `round_no`, best first; near duplicates point to the better twin.
    `assist` is "judge" or "similarity" (default: the workspace's `[bootstrap] assist`)."""
    assist = assist or ws.config.bootstrap.assist
    if assist not in ASSISTS:
        raise UserError(f"unknown assist {assist!r}; choose one of {', '.join(ASSISTS)}")
    paths = round_candidates(ws.candidates_dir(slug, round_no))
    if not paths:
        return []
    embedder = embedder or default_embedder()
    threshold = duplicate_threshold or ws.config.bootstrap.near_duplicate_threshold
    cand = embedder.embed(_load(paths))
    verdicts = {}
    if assist == "judge":
        from lorastrap.method.judge import judge_round, referee_lora

        verdicts = judge_round(ws, slug, round_no, paths, referee_lora(ws, slug, round_no))
        scores = np.array([verdicts[p.name].score for p in paths])
    else:
        sims = cosine_similarity(cand, embedder.embed(_load(reference_paths(ws, slug))))
        k = min(TOP_K, sims.shape[1])
        scores = np.sort(sims, axis=1)[:, -k:].mean(axis=1)
    order = np.argsort(-scores, kind="stable")
    ranked: list[RankedCandidate] = []
    pair = cosine_similarity(cand, cand)
    for idx in order:
        twin = next((r for r in ranked if pair[idx, paths.index(r.path)] >= threshold), None)
        verdict = verdicts.get(paths[idx].name)
        ranked.append(RankedCandidate(paths[idx], candidate_view(paths[idx]), float(scores[idx]),
                                      twin.path.name if twin else None,
                                      verdict.passed if verdict else None,
                                      tuple(verdict.failed) if verdict else ()))
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
    kept = {p.name for p in curated_files(ws.curated_dir(slug))[0]}
    ranked = [r for r in rank_candidates(ws, slug, round_no, embedder) if r.path.name not in kept]
    # candidates the judge passed come first, spread over views; the rest only to fill up
    passing = [r for r in ranked if r.passed is not False]
    picked = pick_spread(passing, n, coverage)
    picked += pick_spread([r for r in ranked if r.passed is False], n - len(picked), coverage)
    return keep_files(ws, slug, [r.path for r in picked])


def keep_files(ws: Workspace, slug: str, paths: Sequence[Path]) -> list[Path]:
    """Copy candidates into curated/ under their own names; a file already there is left alone."""
    curated = ws.curated_dir(slug)
    curated.mkdir(parents=True, exist_ok=True)
    kept = []
    for path in paths:
        target = curated / path.name
        if not target.exists():
            shutil.copy2(path, target)
            kept.append(target)
    return kept
