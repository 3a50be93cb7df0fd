"""LoRAs for the fidelity benchmark, trained with the project's own trainer on lab drawings, and a
measuring helper that generates through the project's Generator (adapters switched in place)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from PIL import Image

from lorastrap.lab.world import STYLES, VIEWS, Character, caption, draw, training_characters


@dataclass
class LoraRecipe:
    """Hyperparameters of the benchmark's LoRAs (small and fast: the lab model is small)."""
    steps: int = 150
    rank: int = 8
    learning_rate: float = 1e-3
    batch_size: int = 4
    seed: int = 1


def trigger_for(character: Character) -> str:
    """A made-up trigger word per character (byte-level tokens: never seen in pretraining)."""
    return "lb" + "".join(part[0] for part in character.slug.split("-")) + "x"


def character_captions(trigger: str, view: str, style: str) -> str:
    """The character policy: trigger + what varies (view, style); identity tags pruned."""
    return f"{trigger}, 1girl, solo, {view}, {style}"


def train_lab_lora(images: Sequence[Image.Image], captions: Sequence[str], out: Path, work: Path,
                   recipe: LoraRecipe, *, preset: str = "character", progress: bool = False) -> Path:
    """Write the images (PNG) and train a kohya LoRA on the lab model; return its path."""
    from game_export.contact_sheet import write_contact_sheet
    from lorastrap.lab import lab_model_dir
    from lorastrap.training.config import TrainConfig
    from lorastrap.training.dataset import TrainItem
    from lorastrap.training.loop import train_lora

    data = work / "images"
    data.mkdir(parents=True, exist_ok=True)
    items = []
    for i, (img, text) in enumerate(zip(images, captions)):
        path = data / f"{i:03d}.png"
        img.save(path)
        items.append(TrainItem(path, text))
    cfg = TrainConfig.from_preset(
        preset, rank=recipe.rank, alpha=float(recipe.rank), learning_rate=recipe.learning_rate,
        max_train_steps=recipe.steps, batch_size=recipe.batch_size, lr_warmup_steps=10,
        seed=recipe.seed, caption_dropout=0.0, save_every_steps=0)
    train_lora(lab_model_dir(), items, cfg, out, work_dir=work / "run", cache_dir=work / "cache",
               progress=progress, sample_sheet=write_contact_sheet)
    return out


def seed_lora(character: Character, seeds: Sequence[Image.Image], style: str, work: Path,
              recipe: LoraRecipe) -> Path:
    """Arm (b): a character LoRA trained directly on the front-view seed images."""
    trig = trigger_for(character)
    caps = [character_captions(trig, "from front", style)] * len(seeds)
    return train_lab_lora(seeds, caps, work / f"{character.slug}-seed.safetensors",
                          work / f"{character.slug}-seed", recipe)


def style_lora(style: str, work: Path, recipe: LoraRecipe, n_images: int = 16, seed: int = 0) -> Path:
    """A style LoRA on `style` drawings of trained characters (captions: every tag + the style)."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}")
    rng = random.Random(seed)
    chars = training_characters()
    picks = [(rng.choice(chars), rng.choice(VIEWS)) for _ in range(n_images)]
    images = [draw(c, v, style, seed * 1000 + i) for i, (c, v) in enumerate(picks)]
    caps = [caption(c, v, style) for c, v in picks]
    slug = style.replace(" ", "-")
    return train_lab_lora(images, caps, work / f"style-{slug}.safetensors", work / f"style-{slug}",
                          recipe, preset="style")


class LabGenerator:
    """The project's Generator on the lab model, with batched seeded sampling for measuring."""

    def __init__(self, device: str | None = None, steps: int = 20, guidance: float = 4.0) -> None:
        from lorastrap.lab import lab_model_dir
        from lorastrap.models.generation import Generator

        self.gen = Generator(lab_model_dir(), device=device)
        self.steps, self.guidance = steps, guidance

    def add_lora(self, path: Path, name: str) -> None:
        if name not in self.gen.loras:
            self.gen.add_lora(path, name)

    def images(self, prompts: Sequence[str], seeds: Sequence[int],
               weights: Mapping[str, float | dict] | None = None) -> list[Image.Image]:
        from lorastrap.models.generation import generate_images

        self.gen.set_weights(dict(weights or {}))
        cuda = self.gen.device.type == "cuda"
        return generate_images(self.gen.pipe, prompts, seeds, steps=self.steps, cfg=self.guidance,
                               max_batch=256 if cuda else 16)


def contact_sheet(images: Sequence[Image.Image], cols: int = 10, scale: int = 2) -> Image.Image:
    """Images in a grid (row-major), each enlarged `scale`× without smoothing (no labels)."""
    from game_export.contact_sheet import SheetCell, make_contact_sheet

    return make_contact_sheet([SheetCell(im) for im in images], columns=cols,
                              cell_size=scale * max(images[0].size))
