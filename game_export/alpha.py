"""Alpha clean-up after background removal: threshold, specks, and edge de-fringe.

De-fringe matters most on anime art: an anti-aliased edge pixel is a mix of the figure colour F
and the old background B, P = a*F + (1-a)*B. Keeping P with alpha a draws a halo of B around the
sprite on any other background. We estimate F from the opaque interior and B from the removed
background next to the edge, recover a and F, and store F (colour "unmixing").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from game_export.components import remove_small

_NEIGHBOURS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]


@dataclass(frozen=True)
class AlphaCleanup:
    """Clean-up settings. threshold: alpha below it becomes 0 (haze); specks: 8-connected pieces
    smaller than min_island pixels or island_fraction of the largest piece are removed."""

    threshold: int = 16
    min_island: int = 16
    island_fraction: float = 0.01
    defringe: bool = True
    bleed: int = 3


def _shifted_views(shape: tuple[int, ...], dy: int, dx: int) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """(source, destination) slices that move an array by (dy, dx) without wrap-around."""
    h, w = shape[:2]
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    return (ys, xs), (yd, xd)


def dilate(mask: np.ndarray, steps: int = 1) -> np.ndarray:
    out = np.asarray(mask, dtype=bool)
    for _ in range(steps):
        grown = out.copy()
        for dy, dx in _NEIGHBOURS:
            src, dst = _shifted_views(out.shape, dy, dx)
            grown[dst] |= out[src]
        out = grown
    return out


def bleed(rgb: np.ndarray, known: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Spread colours of `known` pixels outward `steps` rings (mean of known 8-neighbours).

    Returns (colours, filled); pixels still unknown after `steps` rings keep their colour.
    Only the ring being filled is computed (gathered by index), so the cost follows the
    sprite's outline, not its area.
    """
    colours = np.pad(rgb.astype(np.float32), ((1, 1), (1, 1), (0, 0)))
    filled = np.pad(np.asarray(known, dtype=bool), 1)
    inside = np.pad(np.ones(np.shape(known), dtype=bool), 1)
    for _ in range(steps):
        ys, xs = np.nonzero(dilate(filled, 1) & ~filled & inside)
        if ys.size == 0:
            break
        total = np.zeros((ys.size, colours.shape[2]), dtype=np.float32)
        count = np.zeros(ys.size, dtype=np.float32)
        for dy, dx in _NEIGHBOURS:
            weight = filled[ys + dy, xs + dx].astype(np.float32)
            total += colours[ys + dy, xs + dx] * weight[:, None]
            count += weight
        colours[ys, xs] = total / count[:, None]
        filled[ys, xs] = True
    return colours[1:-1, 1:-1], filled[1:-1, 1:-1]


def region_of_interest(mask: np.ndarray, margin: int) -> tuple[slice, slice] | None:
    """The bounding box of `mask` grown by `margin` pixels (clipped), or None when empty.

    Edge work only happens near the sprite; cropping to it first makes clean-up cost follow
    the character's size instead of the frame's.
    """
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    h, w = mask.shape
    return (slice(max(0, rows[0] - margin), min(h, rows[-1] + 1 + margin)),
            slice(max(0, cols[0] - margin), min(w, cols[-1] + 1 + margin)))


def edge_band(foreground: np.ndarray, width: int = 1) -> np.ndarray:
    """Foreground pixels within `width` pixels of the background."""
    return foreground & dilate(~foreground, width)


def soft_alpha(rgb: np.ndarray, foreground: np.ndarray, background_rgb: np.ndarray,
               width: int = 1) -> np.ndarray:
    """Alpha from a hard mask, softened on the edge band by projecting P-B onto F-B."""
    alpha = foreground.astype(np.float32)
    roi = region_of_interest(foreground, width + 2)
    if roi is None:
        return alpha
    fg, sub_rgb, sub_bg = foreground[roi], rgb[roi], background_rgb[roi]
    band = edge_band(fg, width)
    if not band.any():
        return alpha
    fg_est, _ = bleed(sub_rgb, fg & ~band, width + 1)
    p = sub_rgb[band].astype(np.float32)
    f = fg_est[band]
    b = sub_bg[band].astype(np.float32)
    fb = f - b
    denom = (fb * fb).sum(axis=1)
    # Where figure and background colours are close the projection is noise: keep it opaque.
    a = np.where(denom > 400.0, ((p - b) * fb).sum(axis=1) / np.maximum(denom, 1e-6), 1.0)
    sub_alpha = alpha[roi]
    sub_alpha[band] = np.clip(a, 0.0, 1.0)
    return alpha


def unmix(rgb: np.ndarray, alpha: np.ndarray, background_rgb: np.ndarray) -> np.ndarray:
    """Recover the figure colour F = (P - (1-a)B) / a on semi-transparent pixels."""
    out = rgb.astype(np.float32, copy=True)
    partial = (alpha > 0.05) & (alpha < 0.98)
    if partial.any():
        a = alpha[partial][:, None]
        out[partial] = (out[partial] - (1.0 - a) * background_rgb[partial]) / a
    return np.clip(out, 0.0, 255.0)


def cleanup(rgb: np.ndarray, alpha: np.ndarray, settings: AlphaCleanup,
            background_known: bool) -> np.ndarray:
    """Return a clean RGBA uint8 array from an RGB array and an alpha in [0, 1].

    With `background_known` (the RGB under removed pixels is the old background) edge colours are
    unmixed; in every case transparent pixels near the sprite get the edge colour ("alpha
    bleeding"), so engines that filter bilinearly do not pull in black or the old background.
    """
    a8 = np.clip(np.rint(alpha * 255.0), 0, 255).astype(np.uint8)
    a8[a8 < settings.threshold] = 0
    visible = a8 > 0
    if visible.any() and (settings.min_island > 0 or settings.island_fraction > 0):
        kept = remove_small(visible, settings.min_island, settings.island_fraction)
        a8[~kept] = 0
    rgba = np.zeros(rgb.shape[:2] + (4,), dtype=np.uint8)
    roi = region_of_interest(a8 > 0, settings.bleed + 2)
    if roi is None:
        return rgba
    sub_a = a8[roi]
    colours = rgb[roi].astype(np.float32)
    if settings.defringe:
        if background_known:
            bg_est, _ = bleed(colours, sub_a == 0, settings.bleed)
            colours = unmix(colours, sub_a.astype(np.float32) / 255.0, bg_est)
        opaque = sub_a >= 250
        if not opaque.any():
            opaque = sub_a > 0
        edge_colours, filled = bleed(colours, opaque, settings.bleed)
        fringe = (sub_a == 0) & filled
        colours[fringe] = edge_colours[fringe]
    sub = rgba[roi]
    sub[..., :3] = np.clip(np.rint(colours), 0, 255).astype(np.uint8)
    sub[..., 3] = sub_a
    # Transparent pixels beyond the bleed ring carry no colour (smaller PNGs).
    sub[~dilate(sub_a > 0, settings.bleed), :3] = 0
    return rgba
