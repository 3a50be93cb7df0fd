"""The fidelity benchmark's settings and its arms: which LoRA, prompted how.

Shared by the benchmark (eval.py), its style-survival part (eval_style.py) and the demo's table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from lorastrap.lab.loras import LoraRecipe, trigger_for
from lorastrap.lab.world import Character, caption


@dataclass
class FidelityConfig:
    characters: int = 4
    seeds: int = 8
    views: tuple[str, ...] = ("from front", "from side", "from behind")
    style: str = "flat color"
    seed_images: int = 4
    sample_steps: int = 20
    guidance: float = 4.0
    recipe: LoraRecipe = field(default_factory=LoraRecipe)
    style_loras: tuple[str, ...] = ("pixel art", "cel shading")
    style_weights: tuple[float, ...] = (0.5, 0.75, 1.0)
    character_indices: tuple[int, ...] | None = None  # which held-out characters (default: the first `characters`)
    reference_arms: tuple[str, ...] = ("a", "a0", "b", "b+")  # which of (a), (a0), (b), (b+) to measure
    device: str | None = None


@dataclass
class Arm:
    name: str
    lora: Path | None  # None: the base model
    prompt: Callable[[Character, str, str], str]  # (character, view, style) → prompt


def tags_prompt(c: Character, view: str, style: str) -> str:
    return caption(c, view, style)


def trigger_prompt(c: Character, view: str, style: str) -> str:
    return f"1girl, solo, {trigger_for(c)}, {view}, {style}"


def trigger_tags_prompt(c: Character, view: str, style: str) -> str:
    """How the method prompts a style round's LoRA: its captions carry trigger + identity tags."""
    return f"{trigger_for(c)}, {tags_prompt(c, view, style)}"
