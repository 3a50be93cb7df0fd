"""Where a character stands in the method, and what comes next (read-only).

Stages: seeded → style_trained (round N) → candidates (round N) → … → character_trained.
Thresholds [t1, …, tk] (lorastrap.toml): style round i needs t_i images (seed + curated); after
k-1 style rounds the character LoRA needs t_k.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from lorastrap.dataset.captions import caption_for
from lorastrap.dataset.sources import seed_images, view_of
from lorastrap.dataset.versions import latest_version, version_items
from lorastrap.images import curated_files
from lorastrap.method.check import recommendation
from lorastrap.method.yields import ViewYield, candidate_yield
from lorastrap.queries import character_loras
from lorastrap.tags import identity_tags, parse_tags
from lorastrap.workspace import Workspace
from registry.models import Character

STAGES = ("seeded", "style_trained", "candidates", "character_trained")


@dataclass
class StageStatus:
    slug: str
    stage: str
    round: int
    seed_count: int
    curated_count: int
    threshold: int | None
    next_step: str
    ready: bool
    reason: str
    next_command: str
    view_coverage: dict[str, int] = field(default_factory=dict)
    # per view over all rounds: candidates generated, passed by the assist's check (None: not
    # checked), kept in curated/ — what the product knows of each view's yield without a judge
    candidate_yield: dict[str, dict[str, int | None]] = field(default_factory=dict)
    dataset_version: int | None = None
    loras: list[dict[str, Any]] = field(default_factory=list)
    base_model: str = ""
    # which LoRA to use, by the assist's check after the character round (method/check.py)
    recommended: dict[str, Any] | None = None
    # without a check: the final LoRA that held the unseen views best in the lab (suggested_final)
    suggested: dict[str, Any] | None = None

    @property
    def total(self) -> int:
        return self.seed_count + self.curated_count

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["total"] = self.total
        return d


def style_rounds(ws: Workspace) -> int:
    return ws.config.bootstrap.style_rounds


def training_kind(ws: Workspace, s: Session, character: Character) -> str:
    """The caption policy of the next dataset version: style until the style rounds are done AND
    the character threshold is reached, then character (identity tags pruned)."""
    if character.round < style_rounds(ws):
        return "style"
    total = len(seed_images(s, character)) + len(curated_files(ws.curated_dir(character.slug))[0])
    return "character" if total >= ws.config.bootstrap.thresholds[-1] else "style"


def next_threshold(ws: Workspace, character: Character) -> int:
    thresholds = ws.config.bootstrap.thresholds
    return thresholds[min(character.round, len(thresholds) - 1)]


def view_coverage(s: Session, character: Character, views: list[str]) -> dict[str, int]:
    """Images per view in the latest dataset version (seed crops count as front)."""
    latest = latest_version(s, character)
    counts: Counter[str] = Counter()
    if latest is not None:
        for item in version_items(s, latest):
            # a view tag in the caption (a seed given --seed-tags "from side") names the view
            tags = set(parse_tags(item.caption))
            tagged = [v for v in views if v in tags]
            counts[tagged[0] if tagged else view_of(item.image)] += 1
    if "front" in counts and "front" not in views and views:
        counts[views[0]] += counts.pop("front")  # seeds count as the first (front-like) view
    return {v: counts.get(v, 0) for v in [*views, *sorted(set(counts) - set(views))]}


def yield_per_view(ws: Workspace, slug: str) -> dict[str, dict[str, int | None]]:
    """Candidates generated / passed by the assist / kept per view, summed over the rounds."""
    total: dict[str, ViewYield] = {}
    for views in candidate_yield(ws, slug).values():
        for view, row in views.items():
            t = total.setdefault(view, ViewYield())
            t.generated += row.generated
            t.kept += row.kept
            if row.passed is not None:
                t.passed = (t.passed or 0) + row.passed
    order = [v for v in ws.config.bootstrap.views if v in total] + sorted(set(total) - set(ws.config.bootstrap.views))
    return {v: total[v].as_dict() for v in order}


# Across the ten held-out lab characters (docs/fidelity.md, "All ten held-out characters") the
# last style round prompted with trigger + identity tags held the views the seed never showed
# better than the character LoRA: 0.89 against 0.74 (trigger alone) and 0.81 (trigger + tags) with
# careful curation, 0.83 against 0.72 and 0.76 with the assist curating.
SUGGESTED_WHY = ("in the lab it held the views the seed never showed better than the character LoRA "
                 "(0.89 vs 0.74 over ten characters; docs/fidelity.md)")


def suggested_final(character: Character, loras: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Once the character round is done: its last style round (of `loras`, rows as dicts in
    training order) and how to prompt it (trigger + identity tags, as it was captioned). Used where
    no check ran (status, lineage)."""
    style = [l for l in loras if l["kind"] == "style"][-1:]
    if character.stage != "character_trained" or not style:
        return None
    prompt = caption_for("style", character.trigger, identity_tags(character))
    return {**style[0], "prompt": prompt, "why": SUGGESTED_WHY}


def compute_status(ws: Workspace, s: Session, character: Character) -> StageStatus:
    slug = character.slug
    seeds = len(seed_images(s, character))
    curated = len(curated_files(ws.curated_dir(slug))[0])
    latest = latest_version(s, character)
    rows = character_loras(s, character)
    loras = [{"id": l.id, "kind": l.kind, "round": l.round, "name": l.name} for l in rows]
    status = StageStatus(
        slug=slug, stage=character.stage, round=character.round, seed_count=seeds,
        curated_count=curated, threshold=None, next_step="", ready=True, reason="",
        next_command=f"lorastrap bootstrap {slug}",
        view_coverage=view_coverage(s, character, list(ws.config.bootstrap.views)),
        candidate_yield=yield_per_view(ws, slug), dataset_version=latest.number if latest else None,
        loras=loras, base_model=character.base_model or ws.config.workspace.base_model,
    )
    status.recommended = recommendation([{**l, "metrics": r.metrics} for l, r in zip(loras, rows)])
    if status.recommended is None:
        status.suggested = suggested_final(character, loras)
    if character.stage == "character_trained":
        status.next_step = "done: character LoRA trained"
        status.next_command = f"lorastrap export sprites {slug} --engine godot4 --out exports/"
        return status
    if character.stage == "style_trained":
        status.next_step = f"generate candidates for round {character.round}"
        return status
    kind = "character" if character.round >= style_rounds(ws) else "style"
    status.threshold = next_threshold(ws, character)
    status.next_step = (
        f"train style round {character.round + 1}" if kind == "style" else "train the character LoRA"
    )
    if status.total < status.threshold:
        status.ready = False
        status.reason = (
            f"{status.total} of {status.threshold} images (seed {seeds} + curated {curated}); copy good "
            f"candidates from {ws.candidates_dir(slug, character.round)} into {ws.curated_dir(slug)}"
        )
        status.next_command = (
            f"lorastrap curate {slug} --keep FILE … (or lorastrap bootstrap {slug} --auto-curate "
            f"{status.threshold - status.total})"
        )
    return status
