"""`lorastrap bootstrap`: run the next step of the method for one character.

Long work (training, generation) runs outside registry transactions; each stage change is its
own short transaction, so an interrupted step resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from lorastrap.dataset.versions import get_version, latest_version
from lorastrap.kernel.errors import PreconditionFailed
from lorastrap.method.adaptive import Check
from lorastrap.method.curation import sync_curated
from lorastrap.method.stage import StageStatus, compute_status
from lorastrap.method.view_plan import plan_round
from lorastrap.queries import get_character, newest_lora
from lorastrap.workspace import CONTACT_SHEET_NAME, Workspace, unit_of_work
from registry.models import Character


@dataclass
class StepResult:
    slug: str
    step: str
    messages: list[str] = field(default_factory=list)
    lora_id: int | None = None
    trained: Any = None  # method.train.TrainedLora of a training step
    candidates: list[Path] = field(default_factory=list)
    contact_sheet: Path | None = None
    sample_grid: Path | None = None
    next_command: str = ""


def character_status(ws: Workspace, name: str | None = None) -> list[StageStatus]:
    with ws.session(write=False) as s:
        if name:
            return [compute_status(ws, s, get_character(s, name))]
        return [compute_status(ws, s, c) for c in s.scalars(select(Character).order_by(Character.slug))]


def _set_stage(ws: Workspace, slug: str, stage: str, round_no: int | None = None) -> None:
    with ws.session() as s:
        c = get_character(s, slug)
        c.stage = stage
        if round_no is not None:
            c.round = round_no


def _last_lora(ws: Workspace, slug: str, kind: str = "style") -> tuple[int, Path] | None:
    with ws.session() as s:
        lora = newest_lora(s, get_character(s, slug), (kind,))
        return (lora.id, ws.abs(lora.file_path)) if lora else None


@unit_of_work
def generate_round(ws: Workspace, slug: str, round_no: int, result: StepResult, progress: bool = True,
                   check: Check | None = None) -> None:
    """Candidates for round N with that round's style LoRA, spread over the views the data lacks.

    With `[bootstrap] adaptive = true` (or a `check` given), views short of candidates that pass
    the check get more, up to `max_candidates_per_round` (method/adaptive.py)."""
    from game_export.contact_sheet import SheetCell, make_contact_sheet, save_contact_sheet
    from lorastrap.method.adaptive import run_adaptive
    from lorastrap.method.generate import generate_candidates

    settings = ws.config.bootstrap
    with ws.session() as s:
        status = compute_status(ws, s, get_character(s, slug))
    lora = _last_lora(ws, slug)
    views = list(settings.views)
    plan = plan_round(slug, round_no, settings.candidates_per_round, views, status.view_coverage)
    out_dir = ws.candidates_dir(slug, round_no)

    def generate(batch):  # type: ignore[no-untyped-def]
        return generate_candidates(
            ws, slug, plan=batch, lora_id=lora[0] if lora else None, out_dir=out_dir, round_no=round_no,
            weight=settings.candidate_weight, cfg=settings.candidate_cfg, progress=progress,
            prompt_policy="character" if settings.candidate_prompt == "trigger" else "style",
            start_strength=settings.candidate_strength if settings.candidate_start == "seed" else None)

    need = _round_need(ws, status, round_no)
    if (settings.adaptive or check is not None) and need > 0:
        if check is None:
            from lorastrap.method.judge import assist_check, referee_lora

            check = assist_check(ws, slug, round_no, referee_lora(ws, slug, round_no))
        adaptive = run_adaptive(slug, round_no, plan, need, views, status.view_coverage,
                                settings.max_candidates_per_round, generate, check)
        paths = adaptive.paths
        record_checks(out_dir, adaptive.verdicts)
        result.messages.append(
            f"adaptive round: {len(paths)} candidates in {adaptive.batches} batch(es); passing the check per "
            "view: " + ", ".join(f"{v} {adaptive.passed.get(v, 0)}/{n}" for v, n in adaptive.wanted.items())
            + (" (cap reached)" if adaptive.capped else ""))
    else:
        paths = generate(plan)
    from PIL import Image

    cells = []
    for p in paths:
        with Image.open(p) as im:
            cells.append(SheetCell(im.convert("RGB"), p.stem))
    sheet = make_contact_sheet(cells, columns=min(8, max(1, len(cells))),
                               title=f"{slug} · round {round_no} candidates")
    result.contact_sheet = save_contact_sheet(sheet, out_dir / CONTACT_SHEET_NAME)
    result.candidates = paths
    _set_stage(ws, slug, "candidates", round_no)
    result.messages.append(f"generated {len(paths)} candidates in {out_dir} (contact sheet: {result.contact_sheet})")


def _round_need(ws: Workspace, status: StageStatus, round_no: int) -> int:
    """Images the round's curation must add to reach the next threshold."""
    thresholds = ws.config.bootstrap.thresholds
    return max(0, thresholds[min(round_no, len(thresholds) - 1)] - status.total)


def record_checks(folder: Path, verdicts: dict[str, bool]) -> None:
    """The assist's pass/fail per candidate, beside the round's images (`status` counts them)."""
    from lorastrap.method.yields import read_verdicts, write_verdicts

    merged = read_verdicts(folder)
    for name, ok in verdicts.items():
        merged[name] = {**merged.get(name, {}), "passed": ok}
    write_verdicts(folder, merged)


def check_messages(ws: Workspace, slug: str) -> list[str]:
    """Run the check of the final LoRAs (method/check.py) and say which one to use."""
    from lorastrap.method.check import check_loras

    checks = check_loras(ws, slug)
    if not checks:
        return []
    lines = [f"checked {c.name}: the assist's judge passed {c.mean:.2f} of its images ("
             + ", ".join(f"{v} {p:.2f}" for v, p in c.passed.items()) + ")" for c in checks]
    best = max(checks, key=lambda c: (c.mean, c.kind == "character"))
    lines.append(f"the check prefers {best.name} (LoRA #{best.lora_id}), prompted like \"{best.prompt}\" "
                 "(a weak signal: look at the sample grids too)")
    return lines


@unit_of_work
def bootstrap_step(ws: Workspace, name: str, *, auto_curate: int | None = None,
                   progress: bool = True, on_step: Callable[[int, float], None] | None = None,
                   check: Check | None = None) -> StepResult:
    """Run the next step; refuses with the reason when its precondition is not met.
    `on_step(step, loss)` is called after every training step (a job's progress); `check`
    replaces the assist's check of adaptive rounds (method/adaptive.py)."""
    with ws.session() as s:
        c = get_character(s, name)
        slug, stage, round_no = c.slug, c.stage, c.round
    result = StepResult(slug=slug, step="noop")
    if stage == "character_trained":
        result.messages.append(f"{slug} is finished: the character LoRA is trained (nothing to do)")
    elif stage == "style_trained":
        result.step = "generate"
        generate_round(ws, slug, round_no, result, progress, check)
    else:
        _train_next(ws, slug, round_no, stage, auto_curate, progress, result, on_step, check)
    with ws.session() as s:
        result.next_command = compute_status(ws, s, get_character(s, slug)).next_command
    return result


def _train_next(ws: Workspace, slug: str, round_no: int, stage: str, auto_curate: int | None,
                progress: bool, result: StepResult,
                on_step: Callable[[int, float], None] | None = None, check: Check | None = None) -> None:
    if auto_curate and stage == "candidates":
        from lorastrap.method.assist import auto_curate as keep_best

        with ws.session() as s:
            coverage = compute_status(ws, s, get_character(s, slug)).view_coverage
        kept = keep_best(ws, slug, round_no, auto_curate, coverage)
        result.messages.append(f"auto-curated {len(kept)} candidate(s) from round {round_no} into curated/")
    sync = sync_curated(ws, slug)
    if sync.created:
        result.messages.append(f"dataset v{sync.version}: {sync.total} items ({sync.kind} captions)")
    with ws.session() as s:
        status = compute_status(ws, s, get_character(s, slug))
    if not status.ready:
        raise PreconditionFailed(f"cannot {status.next_step} yet: {status.reason}")
    train_version(ws, slug, None, progress=progress, on_step=on_step, result=result, check=check)


@unit_of_work
def train_version(ws: Workspace, slug: str, version_no: int | None = None, *, progress: bool = True,
                  on_step: Callable[[int, float], None] | None = None, generate: bool = True,
                  result: StepResult | None = None, check: Check | None = None) -> StepResult:
    """Train on a dataset version (default the latest) with the method's lineage and stages.

    A style version that meets the next threshold starts the next round (its LoRA continues from
    the previous round's weights, then candidates are generated); one below it — e.g. the watcher
    retraining on a few more curated images — refreshes the current round's LoRA. A character
    version trains the character LoRA and finishes the method.
    """
    from lorastrap.method.train import train_character_lora

    result = result or StepResult(slug=slug, step="noop")
    with ws.session() as s:
        c = get_character(s, slug)
        status = compute_status(ws, s, c)
        version = get_version(s, c, version_no) if version_no else latest_version(s, c)
        if version is None:
            raise PreconditionFailed(f"{slug} has no dataset version; add seed images first")
        kind, version_no, stage, round_no = version.kind, version.number, c.stage, c.round
    advance = kind == "character" or (status.ready and stage in ("seeded", "candidates"))
    new_round = round_no + 1 if (kind == "style" and advance) else max(round_no, 1)
    parent = _last_lora(ws, slug)
    lora = train_character_lora(
        ws, slug, kind, dataset_version=version_no, resume=True,
        # The character round also starts from the last style round: its weights already draw
        # the character; with identity tags pruned, training moves that identity onto the trigger.
        # (Measured in the lab against training it from zero: no better on unseen views, and less
        # steady from character to character — docs/fidelity.md.)
        init_from=parent[1] if parent else None,
        parent_lora_id=parent[0] if parent else None, round_no=new_round, progress=progress,
        on_step=on_step,
    )
    result.lora_id, result.sample_grid, result.step = lora.id, lora.sample_grid, f"train-{kind}"
    result.trained = lora
    result.messages.append(f"trained {kind} LoRA #{lora.id} on dataset v{version_no}: {lora.path}")
    if kind == "character":
        _set_stage(ws, slug, "character_trained")
        if ws.config.bootstrap.check_images_per_view:
            result.messages += check_messages(ws, slug)
    elif advance:
        _set_stage(ws, slug, "style_trained", new_round)
        if generate:
            generate_round(ws, slug, new_round, result, progress, check)
    return result
