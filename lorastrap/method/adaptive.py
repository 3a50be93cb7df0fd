"""Adaptive rounds: keep generating candidates for the views that are short of good ones.

A round needs `need` more images to reach its threshold, spread over the views like the round's
candidates (`view_plan.allocate`). After the planned candidates are generated and checked, a view
with fewer passing candidates than its share gets another batch — only that view — until every
view has its share or the round has generated `max_candidates_per_round` in all. Which candidates
pass is decided by a check: the curation assist's (`method/judge.assist_check`) in the
product; the fidelity benchmark may pass its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lorastrap.method.view_plan import PlannedImage, allocate, round_seed

# candidate files → whether each passes
Check = Callable[[Sequence[Path]], Sequence[bool]]
# planned images → the files generated for them
Generate = Callable[[Sequence[PlannedImage]], list[Path]]


@dataclass
class AdaptiveResult:
    paths: list[Path]
    passed: dict[str, int]
    wanted: dict[str, int]
    batches: int = 1
    capped: bool = False
    verdicts: dict[str, bool] = field(default_factory=dict)  # file name → passed

    @property
    def short(self) -> dict[str, int]:
        return {v: n - self.passed.get(v, 0) for v, n in self.wanted.items() if self.passed.get(v, 0) < n}


def extra_batch(slug: str, round_no: int, short: Mapping[str, int], start: int, room: int,
                per_missing: int = 2) -> list[PlannedImage]:
    """`per_missing` new candidates per missing one, for the short views only, seeds continuing
    the round's sequence (so a re-run reproduces them), at most `room` in all."""
    plan: list[PlannedImage] = []
    for view, missing in short.items():
        for _ in range(per_missing * missing):
            if len(plan) >= room:
                return plan
            plan.append(PlannedImage(view, round_seed(slug, round_no, start + len(plan))))
    return plan


def run_adaptive(slug: str, round_no: int, plan: Sequence[PlannedImage], need: int,
                 views: Sequence[str], coverage: Mapping[str, int], cap: int,
                 generate: Generate, check: Check) -> AdaptiveResult:
    """Generate `plan`, then extra batches for short views until each has its share of `need`
    passing candidates or `cap` candidates were generated in all."""
    views_of: dict[Path, str] = {}
    paths: list[Path] = []
    wanted = {v: n for v, n in allocate(need, list(views), coverage).items() if n}
    result = AdaptiveResult(paths, {v: 0 for v in views}, wanted, batches=0)
    batch = list(plan)[:cap]
    start = len(plan)
    while batch:
        new = generate(batch)
        for planned, path in zip(batch, new):
            views_of[path] = planned.view
        for path, ok in zip(new, check(new)):
            result.verdicts[path.name] = bool(ok)
            result.passed[views_of[path]] = result.passed.get(views_of[path], 0) + bool(ok)
        paths.extend(new)
        result.batches += 1
        room = cap - len(paths)
        if not result.short:
            break
        if room <= 0:
            result.capped = True
            break
        batch = extra_batch(slug, round_no, result.short, start, room)
        start += len(batch)
    return result
