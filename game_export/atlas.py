"""Rendering packed frames into page images, with edge extrusion against texture bleeding."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from game_export.layout import LaidOut
from game_export.packing import Packing, Slot


def extrude(page: np.ndarray, slot: Slot, pixels: int) -> None:
    """Repeat the region's outermost pixels `pixels` times outward (in place).

    Bilinear filtering at a region's edge samples one texel beyond it; with the edge repeated
    there, it samples the sprite itself instead of a neighbour or empty space.
    """
    if pixels <= 0:
        return
    x0, y0, x1, y1 = slot.x, slot.y, slot.x + slot.w, slot.y + slot.h
    page[y0 - pixels:y0, x0:x1] = page[y0:y0 + 1, x0:x1]
    page[y1:y1 + pixels, x0:x1] = page[y1 - 1:y1, x0:x1]
    page[y0 - pixels:y1 + pixels, x0 - pixels:x0] = page[y0 - pixels:y1 + pixels, x0:x0 + 1]
    page[y0 - pixels:y1 + pixels, x1:x1 + pixels] = page[y0 - pixels:y1 + pixels, x1 - 1:x1]


def render_pages(packing: Packing, laid: Sequence[LaidOut], extrusion: int) -> list[Image.Image]:
    """Page images: a grid slot holds the whole cell (frame at its offset), a tight slot the
    trimmed frame alone."""
    canvases = [np.zeros((h, w, 4), dtype=np.uint8) for w, h in packing.pages]
    for frame, slot in zip(laid, packing.slots):
        dx, dy = frame.offset if packing.kind == "grid" else (0, 0)
        array = np.asarray(frame.image.convert("RGBA"))
        x, y = slot.x + dx, slot.y + dy
        canvases[slot.page][y:y + array.shape[0], x:x + array.shape[1]] = array
        extrude(canvases[slot.page], slot, extrusion)
    return [Image.fromarray(c, "RGBA") for c in canvases]
