"""Synthetic character frames with a known figure mask, for tests, benchmarks and demos.

A simple figure (head, body, legs) on a flat background, drawn 4x larger and downsampled so its
edges are anti-aliased like real renders. The exact coverage mask comes with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from game_export.frames import FrameSpec
from lorastrap.kernel.pngmeta import write_png

_SUPERSAMPLE = 4


@dataclass(frozen=True)
class Figure:
    x: int  # left of the figure's bounding box, pixels
    y: int  # top
    height: int
    colour: tuple[int, int, int] = (200, 60, 60)
    stride: float = 0.0  # leg spread in [-1, 1], makes walk-cycle frames differ


def figure_boxes(f: Figure) -> list[tuple[str, tuple[float, float, float, float]]]:
    """Shapes of the figure in frame pixels: head ellipse, body and two legs rectangles."""
    h = f.height
    w = 0.4 * h
    cx = f.x + w / 2
    spread = 0.08 * h * f.stride
    return [
        ("ellipse", (cx - 0.14 * h, f.y, cx + 0.14 * h, f.y + 0.28 * h)),
        ("rect", (f.x, f.y + 0.28 * h, f.x + w, f.y + 0.65 * h)),
        ("rect", (cx - 0.15 * h - spread, f.y + 0.65 * h, cx - 0.03 * h - spread, f.y + h)),
        ("rect", (cx + 0.03 * h + spread, f.y + 0.65 * h, cx + 0.15 * h + spread, f.y + h)),
    ]


def _draw(draw: ImageDraw.ImageDraw, f: Figure, scale: int, fill, accent) -> None:
    for kind, (x0, y0, x1, y1) in figure_boxes(f):
        box = (x0 * scale, y0 * scale, x1 * scale - 1, y1 * scale - 1)
        if kind == "ellipse":
            draw.ellipse(box, fill=fill)
        else:
            draw.rectangle(box, fill=accent if accent is not None else fill)


def draw_frame(size: tuple[int, int], figure: Figure, background=(245, 245, 245),
               speck: tuple[int, int] | None = None) -> tuple[Image.Image, np.ndarray]:
    """An RGB frame and the boolean mask of the figure (coverage >= 50 %)."""
    big = (size[0] * _SUPERSAMPLE, size[1] * _SUPERSAMPLE)
    image = Image.new("RGB", big, background)
    mask = Image.new("L", big, 0)
    body = tuple(max(0, c - 120) for c in figure.colour)
    _draw(ImageDraw.Draw(image), figure, _SUPERSAMPLE, figure.colour, body)
    _draw(ImageDraw.Draw(mask), figure, _SUPERSAMPLE, 255, 255)
    image = image.resize(size, Image.Resampling.BOX)
    coverage = np.asarray(mask.resize(size, Image.Resampling.BOX))
    if speck is not None:  # a lone dark dot: the kind of speck clean-up must remove
        image.putpixel(speck, (20, 20, 20))
    return image, coverage >= 128


def save_frame(image: Image.Image, path: Path, view: str | None = None) -> Path:
    """Save as PNG, with the lorastrap provenance chunk carrying `view` when given."""
    return write_png(path, image, provenance=None if view is None else {"view": view})


def animation_frames(folder: Path, counts: dict[str, int], size: tuple[int, int] = (96, 128),
                     x: int = 20, y: int = 10, height: int = 100) -> list[FrameSpec]:
    """Saved frames `<anim>_<i>.png` for each animation; the figure moves 3 px right and gets
    4 px shorter per frame, so no two frames of an animation are alike."""
    specs = []
    for anim, count in counts.items():
        for i in range(count):
            image, _ = draw_frame(size, Figure(x=x + 3 * i, y=y, height=height - 4 * i))
            specs.append(FrameSpec(save_frame(image, folder / f"{anim}_{i}.png"), anim))
    return specs
