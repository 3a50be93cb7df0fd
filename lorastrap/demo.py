"""`lorastrap demo`: the whole method end to end, offline, on the embedded default model.

A seed character from the procedural lab world (front views only: the views it lacks must come
from the bootstrap) → style rounds with auto-curation by the assist (never by the lab's reader) →
character LoRA → sprite sheets for Godot/Unity/JSON → a fidelity table read by the lab's reader.
"""

from __future__ import annotations

import shlex
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lorastrap.characters import add_character
from lorastrap.method.step import bootstrap_step, character_status
from lorastrap.workspace import CONFIG_NAME, Workspace, init_workspace, load_workspace

DEMO_NAME = "Kitsune"
# what the seed drawings show besides the character: kept in captions, so the trigger learns the
# character and not "seen from the front"; the style is carried into candidate prompts
SEED_TAGS = "from front, flat color"


@dataclass(frozen=True)
class DemoSize:
    thresholds: tuple[int, ...]
    candidates: int
    style_steps: int
    character_steps: int
    sample_steps: int
    table_seeds: int  # images per view and LoRA in the closing fidelity table


SIZES = {
    "full": DemoSize((4, 10, 16), 12, 120, 300, 20, 4),
    "small": DemoSize((4, 5, 6), 4, 8, 8, 4, 1),
}


@dataclass
class DemoReport:
    workspace: Path
    slug: str = ""
    steps: list[str] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    fidelity: list[dict[str, Any]] = field(default_factory=list)


def lab_model_available() -> bool:
    from lorastrap.kernel.errors import UserError
    from lorastrap.models.base import _lab_model_dir

    try:
        _lab_model_dir()
    except UserError:
        return False
    return True


def _write_settings(ws: Workspace, size: DemoSize, views: list[str]) -> Workspace:
    text = (ws.root / CONFIG_NAME).read_text(encoding="utf-8")
    text = text.replace("thresholds = [4, 16, 40]", f"thresholds = {list(size.thresholds)}")
    text = text.replace("candidates_per_round = 24", f"candidates_per_round = {size.candidates}")
    text += (
        "\n# demo settings: the lab world's views, short training runs at the lab's 64 px\n"
        f"[training]\nresolution = 64\nsample_steps = {size.sample_steps}\n"
        # the lab's LoRA recipe (lorastrap.lab.loras.LoraRecipe): a small model learns fast
        "rank = 8\nalpha = 8.0\nlearning_rate = 1e-3\nbatch_size = 4\n"
        f"[training.style]\nmax_train_steps = {size.style_steps}\n"
        f"[training.character]\nmax_train_steps = {size.character_steps}\n"
    )
    text = text.replace('views = ["front", "from side", "from behind", "from above", "from below",\n'
                        '         "three-quarter view", "full body", "upper body", "portrait"]',
                        "views = " + "[" + ", ".join(f'"{v}"' for v in views) + "]")
    (ws.root / CONFIG_NAME).write_text(text, encoding="utf-8")
    return load_workspace(ws.root)


def draw_seed(folder: Path, count: int = 4) -> tuple[list[Path], list[str]]:
    """Front views of a held-out lab character (never seen in pretraining): files + identity tags."""
    from lorastrap.lab.world import HELD_OUT, LEADING_TAGS, draw

    character = HELD_OUT[0]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"seed-{i + 1}.png"
        draw(character, "from front", "flat color", seed=i).save(path)
        paths.append(path)
    return paths, [*LEADING_TAGS, *character.tags()]


def run_demo(directory: Path | None = None, size: str = "full", base_model: str | None = None,
             echo: Callable[[str], None] = print) -> DemoReport:
    from lorastrap.lab.world import VIEWS
    from lorastrap.models.threads import use_small_model_threads

    use_small_model_threads()
    spec = SIZES[size]
    base = base_model or ("lab" if lab_model_available() else "tiny")
    root = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="lorastrap-demo-"))
    ws, _ = init_workspace(root, base_model=base)
    ws = _write_settings(ws, spec, list(VIEWS))
    report = DemoReport(workspace=ws.root)
    echo(f"workspace: {ws.root} (base model: {base})")

    seeds, tags = draw_seed(ws.root / "seed-drawings")
    added = add_character(ws, DEMO_NAME, seeds, tags, crop="none", seed_tags=SEED_TAGS)
    report.slug = added.slug
    echo(f"seeded {added.slug} (trigger {added.trigger}) from {len(seeds)} front views: {', '.join(tags)}")

    run_method(ws, added.slug, report, echo)

    _export(ws, added.slug, report, echo)
    if base == "lab":
        from lorastrap.lab.demo_table import demo_fidelity

        echo("")
        echo(f"fidelity (the lab's reader, {spec.table_seeds} image(s) per cell): "
             "all attributes right (identity right)")
        scores, table = demo_fidelity(ws, added.slug, added.trigger, spec.table_seeds, spec.sample_steps)
        report.fidelity = [{"arm": arm, **{v: s[v] for v in s}} for arm, s in scores.items()]
        echo(table.rstrip())
    echo("")
    echo("outputs:")
    for label, path in report.outputs.items():
        echo(f"  {label}: {path}")
    echo(f"next: cd {ws.root} && lorastrap status {added.slug}")
    echo(f"see it: lorastrap -w {shlex.quote(str(ws.root))} ui --open   "
         f"(the characters, every round's candidates and the lineage, on http://127.0.0.1:7860/c/{added.slug})")
    return report


def run_method(ws: Workspace, slug: str, report: DemoReport, echo: Callable[[str], None] = print) -> None:
    """Bootstrap until the character LoRA is trained, auto-curating exactly what each step needs
    (the curation assist decides; the lab's reader never does)."""
    for _ in range(2 * len(ws.config.bootstrap.thresholds) + 2):
        status = character_status(ws, slug)[0]
        if status.stage == "character_trained":
            return
        need = max(0, (status.threshold or 0) - status.total) if status.stage == "candidates" else 0
        step = bootstrap_step(ws, slug, auto_curate=need or None, progress=True)
        report.steps.append(step.step)
        for line in step.messages:
            echo(f"  {line}")
        if step.contact_sheet:
            report.outputs[f"candidates {step.contact_sheet.parent.name}"] = str(step.contact_sheet)
        if step.sample_grid:
            report.outputs[f"training samples, LoRA #{step.lora_id}"] = str(step.sample_grid)


def lab_bootstrap_arm(character, seed_paths: list[Path], trigger: str, work_dir: Path) -> list[tuple[str, Path]]:  # type: ignore[no-untyped-def]
    """The fidelity benchmark's arm (c): the whole method on a held-out lab character, with the
    demo's settings; returns each round's LoRA and the final character LoRA."""
    from lorastrap.lab.world import LEADING_TAGS, VIEWS

    ws, _ = init_workspace(work_dir, base_model="lab")
    ws = _write_settings(ws, SIZES["full"], list(VIEWS))
    added = add_character(ws, character.slug, seed_paths, [*LEADING_TAGS, *character.tags()],
                          trigger=trigger, crop="none", seed_tags=SEED_TAGS)
    run_method(ws, added.slug, DemoReport(workspace=ws.root), echo=lambda _line: None)
    from lorastrap.lab.demo_table import method_loras

    return method_loras(ws, added.slug)


def _export(ws: Workspace, slug: str, report: DemoReport, echo: Callable[[str], None]) -> None:
    """Frames of every view from the character LoRA, exported as direction rows."""
    from lorastrap.export.sprites import SpriteOptions, export_character_sprites
    from lorastrap.method.generate import generate_candidates

    frames = ws.exports_dir(slug) / "frames"
    generate_candidates(ws, slug, views=list(ws.config.bootstrap.views), per_view=2, seed=7, out_dir=frames)
    out = ws.exports_dir(slug) / "sprites"
    summary = export_character_sprites(
        ws, slug, SpriteOptions(engines=("godot4", "unity", "json"), out=out, source=str(frames),
                                remover="flood", directions=True, progress=False))
    report.outputs["sprite sheets (Godot 4, Unity, JSON)"] = str(summary.out_dir)
    if summary.preview:
        report.outputs["sprite preview"] = str(summary.preview)
    echo(f"exported {summary.frames} frames for {', '.join(summary.engines)} → {summary.out_dir}")
