"""Frame layout: trim, one scale for the whole character, a shared baseline and pivot.

Every frame is trimmed to its alpha bounding box, scaled by ONE factor (so the character keeps its
size from frame to frame), and placed in a common cell: centred horizontally, feet on the cell's
bottom edge (the baseline). The pivot is a point of that cell given as fractions, y down.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from game_export.errors import ExportError

BOTTOM_CENTRE = (0.5, 1.0)


@dataclass(frozen=True)
class Trimmed:
    image: Image.Image  # RGBA cropped to the alpha bounding box
    box: tuple[int, int, int, int]  # that box in the source frame (left, top, right, bottom)
    source_size: tuple[int, int]


@dataclass(frozen=True)
class Cell:
    width: int
    height: int
    pivot: tuple[float, float]  # fractions of the cell, y down: (0.5, 1.0) = bottom centre

    @property
    def pivot_px(self) -> tuple[float, float]:
        return self.pivot[0] * self.width, self.pivot[1] * self.height


@dataclass(frozen=True)
class LaidOut:
    """A scaled trimmed frame and where its top-left sits inside the common cell."""

    image: Image.Image
    offset: tuple[int, int]


def validate_pivot(pivot: Sequence[float]) -> tuple[float, float]:
    if len(pivot) != 2 or not all(0.0 <= float(v) <= 1.0 for v in pivot):
        raise ExportError(f"pivot {tuple(pivot)} must be two fractions in [0, 1] (x, y down), "
                          "e.g. 0.5,1 for bottom centre")
    return float(pivot[0]), float(pivot[1])


def trim(rgba: Image.Image, label: str) -> Trimmed:
    """Crop to the alpha bounding box; an empty frame is an error (nothing would be exported)."""
    box = rgba.getchannel("A").getbbox()
    if box is None:
        raise ExportError(f"frame {label} is fully transparent after background removal; "
                          "use a lower flood tolerance (--remover flood:16) or --remover none")
    return Trimmed(rgba.crop(box), box, rgba.size)


def frame_factors(frames: Sequence[Trimmed], target_height: int | None) -> list[float]:
    """Scale factor per frame: one character scale, normalised for differing source sizes.

    Frames rendered at another resolution (e.g. 768 px among 512 px) are first brought to the
    most common source height, so the character is not bigger in them; then one factor maps the
    tallest frame to `target_height` (or keeps the size when it is None).
    """
    reference = Counter(f.source_size[1] for f in frames).most_common(1)[0][0]
    normalise = [reference / f.source_size[1] for f in frames]
    if target_height is None:
        scale = 1.0
    else:
        if target_height < 1:
            raise ExportError(f"--size {target_height} must be a positive height in pixels")
        tallest = max((f.box[3] - f.box[1]) * n for f, n in zip(frames, normalise))
        scale = target_height / tallest
    return [scale * n for n in normalise]


def planned_cell(frames: Sequence[Trimmed], target_height: int | None) -> tuple[int, int]:
    """The common cell's size `lay_out` will make, computed without resizing anything."""
    factors = frame_factors(frames, target_height)
    sizes = [(max(1, round(f.image.width * k)), max(1, round(f.image.height * k))) for f, k in zip(frames, factors)]
    return max(w for w, _ in sizes), max(h for _, h in sizes)


def _resized(trimmed: Trimmed, factor: float, pixel_art: bool) -> Image.Image:
    w, h = trimmed.image.size
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    if size == (w, h):
        return trimmed.image
    resample = Image.Resampling.NEAREST if pixel_art else Image.Resampling.LANCZOS
    return trimmed.image.resize(size, resample)


def harden_alpha(image: Image.Image, cut: int = 128) -> Image.Image:
    """Binary alpha, as pixel art has no half-transparent edge pixels."""
    out = image.copy()
    out.putalpha(image.getchannel("A").point(lambda a: 255 if a >= cut else 0))
    return out


def reduce_palette(images: Sequence[Image.Image], colours: int) -> list[Image.Image]:
    """Map every frame onto ONE shared palette of `colours` colours (no dithering)."""
    if not 2 <= colours <= 256:
        raise ExportError(f"--palette {colours} must be between 2 and 256 colours")
    arrays = [np.asarray(im.convert("RGBA")) for im in images]
    opaque = np.concatenate([a[a[..., 3] > 0][:, :3] for a in arrays])
    if len(opaque) == 0:
        return list(images)
    side = int(np.ceil(np.sqrt(len(opaque))))
    mosaic = np.zeros((side * side, 3), dtype=np.uint8)
    mosaic[: len(opaque)] = opaque
    mosaic[len(opaque):] = opaque[0]  # padding repeats a real colour, adds no new one
    palette = Image.fromarray(mosaic.reshape(side, side, 3)).quantize(
        colours, method=Image.Quantize.MEDIANCUT)
    out = []
    for im, arr in zip(images, arrays):
        mapped = Image.fromarray(arr[..., :3]).quantize(palette=palette, dither=Image.Dither.NONE)
        rgba = mapped.convert("RGBA")
        rgba.putalpha(Image.fromarray(arr[..., 3]))
        out.append(rgba)
    return out


def lay_out(frames: Sequence[Trimmed], target_height: int | None, pivot: Sequence[float],
            pixel_art: bool = False, palette: int | None = None) -> tuple[Cell, list[LaidOut]]:
    """Scale every frame with the shared factor and place it in the common cell."""
    pivot = validate_pivot(pivot)
    factors = frame_factors(frames, target_height)
    images = [_resized(f, k, pixel_art) for f, k in zip(frames, factors)]
    if pixel_art:
        images = [harden_alpha(im) for im in images]
        if palette:
            images = reduce_palette(images, palette)
    # Re-trim: resampling can leave a transparent border row, which would lift the feet.
    images = [im.crop(im.getchannel("A").getbbox() or (0, 0, im.width, im.height)) for im in images]
    width = max(im.width for im in images)
    height = max(im.height for im in images)
    cell = Cell(width, height, pivot)
    laid = [LaidOut(im, ((width - im.width) // 2, height - im.height)) for im in images]
    return cell, laid
