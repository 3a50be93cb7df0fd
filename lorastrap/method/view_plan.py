"""Spreading a round's candidates over views, favouring the views the dataset lacks.

The point of the method is a character that holds from behind, above and below, so a view with
few curated images gets more candidates: weight 1/(1+count), then largest-remainder rounding.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class PlannedImage:
    view: str
    seed: int


def allocate(total: int, views: Sequence[str], coverage: Mapping[str, int]) -> dict[str, int]:
    """How many candidates each view gets; every view gets one before any gets two."""
    if total <= 0 or not views:
        return {v: 0 for v in views}
    weights = {v: 1.0 / (1 + coverage.get(v, 0)) for v in views}
    counts = {v: 0 for v in views}
    remaining = total
    if total >= len(views):
        counts = {v: 1 for v in views}
        remaining -= len(views)
    else:  # fewer candidates than views: the least covered views first
        for v in sorted(views, key=lambda v: (-weights[v], views.index(v)))[:total]:
            counts[v] = 1
        return counts
    norm = sum(weights.values())
    shares = {v: remaining * w / norm for v, w in weights.items()}
    for v in views:
        counts[v] += int(shares[v])
    left = total - sum(counts.values())
    for v in sorted(views, key=lambda v: (-(shares[v] - int(shares[v])), views.index(v)))[:left]:
        counts[v] += 1
    return counts


def round_seed(slug: str, round_no: int, index: int) -> int:
    """Deterministic per character/round/index, so re-running a round reproduces its images."""
    digest = hashlib.sha256(f"{slug}:{round_no}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 2_000_000_000


def plan_round(slug: str, round_no: int, total: int, views: Sequence[str],
               coverage: Mapping[str, int]) -> list[PlannedImage]:
    counts = allocate(total, views, coverage)
    plan: list[PlannedImage] = []
    for view in views:
        for _ in range(counts[view]):
            plan.append(PlannedImage(view, round_seed(slug, round_no, len(plan))))
    return plan
