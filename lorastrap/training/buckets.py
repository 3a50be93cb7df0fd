"""Aspect-ratio buckets (kohya-like): each image trains at the bucket closest to its aspect ratio,
with about the same pixel area as resolution², instead of being centre-cropped to a square."""

from __future__ import annotations

import math
from collections.abc import Sequence

from PIL import Image


def bucket_step_for(resolution: int, unet_levels: int, requested: int | None = None,
                    vae_factor: int = 8) -> int:
    """Side-length granularity: a multiple of vae_factor × 2^(UNet downsamplings) so latents
    divide evenly. Real models use kohya's 64 px; small resolutions (tiny, lab) resolution / 4.
    """
    unit = vae_factor * 2 ** max(0, unet_levels - 1)
    step = requested or (64 if resolution >= 512 else max(unit, resolution // 4))
    return max(unit, math.ceil(step / unit) * unit)


def make_buckets(resolution: int, step: int, min_side: int | None = None,
                 max_side: int | None = None) -> list[tuple[int, int]]:
    """(width, height) buckets with area ≤ resolution², sides in [min_side, max_side], sorted."""
    min_side = min_side or max(step, resolution // 2)
    max_side = max_side or resolution * 2
    area = resolution * resolution
    buckets = {(resolution, resolution)}
    width = min_side
    while width <= max_side:
        height = min(max_side, (area // width) // step * step)
        if height >= min_side:
            buckets.add((width, height))
            buckets.add((height, width))
        width += step
    return sorted(buckets)


def nearest_bucket(size: tuple[int, int], buckets: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """The bucket whose aspect ratio is closest (in log space) to the image's; ties → larger area."""
    w, h = size
    ratio = math.log(w / h)
    return min(buckets, key=lambda b: (abs(math.log(b[0] / b[1]) - ratio), -b[0] * b[1]))


def fit_to_bucket(image: Image.Image, bucket: tuple[int, int]) -> tuple[Image.Image, tuple[int, int]]:
    """Resize so the image covers the bucket, then centre-crop the excess.

    Returns the bucket-sized image and the crop's top-left (y, x) in resized pixels, which SDXL
    conditions on.
    """
    bw, bh = bucket
    w, h = image.size
    scale = max(bw / w, bh / h)
    rw, rh = max(bw, round(w * scale)), max(bh, round(h * scale))
    resized = image.resize((rw, rh), Image.Resampling.LANCZOS) if (rw, rh) != (w, h) else image
    left, top = (rw - bw) // 2, (rh - bh) // 2
    return resized.crop((left, top, left + bw, top + bh)), (top, left)
