"""The short fidelity table `lorastrap demo` prints: how often the demo's character comes out right
from each view, read by the lab's reader *after* the method ran (the reader never curates)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from lorastrap.queries import get_character, ready_loras
from lorastrap.workspace import Workspace

TABLE_VIEWS = ("from front", "from side", "from behind")


def method_loras(ws: Workspace, slug: str) -> list[tuple[str, Path]]:
    """(name, path) of the character's style rounds, then its character LoRA, in training order."""
    with ws.session(write=False) as s:
        c = get_character(s, slug)
        return [(f"style r{r.round}" if r.kind == "style" else "character", ws.abs(r.file_path))
                for r in ready_loras(s, c)]


REFERENCE_ROW = "lab-only reference: base model, tags spelled out"
SEED_ROW = "(b) seed LoRA, trigger only"


def demo_fidelity(ws: Workspace, slug: str, trigger: str, seeds_per_view: int, sample_steps: int,
                  views: Sequence[str] = TABLE_VIEWS, seed_images: Sequence[Path] = (),
                  seed_lora_steps: int = 150, character=None) -> tuple[dict[str, dict], str]:  # type: ignore[no-untyped-def]
    """All-attribute (identity) accuracy per view of: the base model with the tags spelled out (a
    lab-only reference: a lab character is fully described by four tags, a real one is not); (b) a
    LoRA trained directly on the seed images (what the method must beat); each style round prompted
    as the method prompts it; the final LoRA prompted with its trigger, and with trigger + tags."""
    from PIL import Image

    from lorastrap.lab.arms import Arm, FidelityConfig, tags_prompt, trigger_prompt
    from lorastrap.lab.eval import fidelity_table, measure_arm
    from lorastrap.lab.loras import LabGenerator, LoraRecipe, seed_lora
    from lorastrap.lab.world import HELD_OUT

    character = character or HELD_OUT[0]  # the demo's seed character (lorastrap.demo.draw_seed)
    arms = [Arm(REFERENCE_ROW, None, tags_prompt)]
    if seed_images:
        images = [Image.open(p).convert("RGB") for p in seed_images]
        lora_b = seed_lora(character, images, "flat color", ws.root / "lab-reference",
                           LoraRecipe(steps=seed_lora_steps))
        arms.append(Arm(SEED_ROW, lora_b, trigger_prompt))
    for name, path in method_loras(ws, slug):
        if name == "character":
            arms.append(Arm("character LoRA, trigger only", path, lambda c, v, s: f"1girl, solo, {trigger}, {v}, {s}"))
            arms.append(Arm("character LoRA, trigger + tags", path, lambda c, v, s: f"{trigger}, {tags_prompt(c, v, s)}"))
        else:
            arms.append(Arm(f"{name}, trigger + tags", path, lambda c, v, s: f"{trigger}, {tags_prompt(c, v, s)}"))
    cfg = FidelityConfig(seeds=seeds_per_view, views=tuple(views), sample_steps=sample_steps)
    gen = LabGenerator(None, sample_steps, cfg.guidance)
    per_arm: dict[str, list[dict]] = {}
    for arm in arms:
        result = measure_arm(gen, arm, character, cfg, HELD_OUT.index(character))
        result.pop("_images")
        per_arm[arm.name] = [result]
    return {k: v[0] for k, v in per_arm.items()}, fidelity_table(per_arm, views, spread=False)
