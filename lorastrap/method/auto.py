"""Run the method to its end without a person: every round's curation is done by the assist
(`--auto-curate`) or by a curator the caller hands in (the fidelity benchmark's simulated careful
person). The demo and the lab's arm (c) use it; a user curates by hand instead."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from lorastrap.method.adaptive import Check
from lorastrap.method.step import StepResult, bootstrap_step, character_status
from lorastrap.workspace import Workspace

# (workspace, slug, round, how many to keep, view coverage) → kept files
Curate = Callable[[Workspace, str, int, int, Mapping[str, int]], list[Path]]


def run_method(ws: Workspace, slug: str, *, curate: Curate | None = None, needs: dict[int, int] | None = None,
               check: Check | None = None, on_result: Callable[[StepResult], None] | None = None,
               progress: bool = True) -> list[StepResult]:
    """Bootstrap until the character LoRA is trained, curating exactly what each step needs.
    `needs` receives each round's shortfall; `check` replaces the assist's check of adaptive
    rounds; `on_result` sees every step as it finishes."""
    results: list[StepResult] = []
    for _ in range(2 * len(ws.config.bootstrap.thresholds) + 2):
        status = character_status(ws, slug)[0]
        if status.stage == "character_trained":
            break
        need = max(0, (status.threshold or 0) - status.total) if status.stage == "candidates" else 0
        if needs is not None and status.stage == "candidates":
            needs[status.round] = need
        if need and curate is not None:
            curate(ws, slug, status.round, need, status.view_coverage)
            need = 0
        step = bootstrap_step(ws, slug, auto_curate=need or None, progress=progress, check=check)
        results.append(step)
        if on_result is not None:
            on_result(step)
    return results
