"""Sample images during training: fixed prompts and seeds, one labelled grid PNG per save.

The grid is drawn by the `SampleSheet` the caller hands in (the application passes
`game_export.contact_sheet.write_contact_sheet`): training imports no output layer."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch
from PIL import Image

from lorastrap.models.generation import GenContext, GeneratedImage, GenRequest, run_requests, save_generated
from lorastrap.training.config import TrainConfig

GRID_COLUMNS = 4
# (image, label) pairs, the grid's file, its title, columns → the file written
SampleSheet = Callable[[Sequence[tuple[Image.Image, str]], Path, str, int], Path]


def sample_requests(prompts: Sequence[str], cfg: TrainConfig, resolution: int) -> list[GenRequest]:
    return [GenRequest(prompt=p, seed=cfg.sample_seed + i, steps=cfg.sample_steps, cfg=cfg.sample_cfg,
                       width=resolution, height=resolution, extra={"purpose": "training sample"})
            for i, p in enumerate(prompts)]


@contextlib.contextmanager
def on_device(modules: Sequence[torch.nn.Module], device) -> Iterator[None]:
    """Bring offloaded modules to the device for the duration, then back where they were."""
    homes = [next(m.parameters()).device for m in modules]
    for m in modules:
        m.to(device)
    try:
        yield
    finally:
        for m, home in zip(modules, homes):
            m.to(home)


def _label(prompt: str, trigger: str | None) -> str:
    tags = [t.strip() for t in prompt.split(",") if t.strip()]
    rest = [t for t in tags if t != trigger]
    return ", ".join(rest[-2:]) if rest else prompt


def render_samples(pipe, prompts: Sequence[str], cfg: TrainConfig, ctx: GenContext, resolution: int,
                   out_dir: Path, step: int, title: str,
                   sheet: SampleSheet | None = None) -> tuple[Path | None, list[GeneratedImage]]:
    """Generate the sample prompts with the model as it is now; save the images, and their grid
    when a `sheet` writer is given."""
    requests = sample_requests(prompts, cfg, resolution)
    images = run_requests(pipe, requests, ctx)
    step_dir = Path(out_dir) / f"step-{step:06d}"
    for i, img in enumerate(images):
        img.provenance["training_step"] = step
        save_generated(img, step_dir / f"{i:02d}.png")
    if sheet is None:
        return None, images
    cells = [(img.image, _label(req.prompt, cfg.trigger)) for img, req in zip(images, requests)]
    grid = sheet(cells, Path(out_dir) / f"step-{step:06d}.png", f"{title} — step {step}", GRID_COLUMNS)
    return grid, images
