"""A model-free attribute reader for images of the lab world (for evaluation only, never curation).

It knows the world's rules — hue families, where heads and dresses sit, how views and styles look —
and measures them with plain numpy: pixels are split into skin, ink (dark) and five hue families,
the hair hue is the one that dominates the top of the figure, the dress hue the other dominant
one; ears, tail and view come from the head's outline and the face's size and offset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from PIL import Image

from lorastrap.lab.world import DRESS_HUE, HAIR_HUE, HUE_RGB, IDENTITY_ATTRS, SIZE, STYLES, Character, attrs_of

_FAMILIES = tuple(HUE_RGB)
_HAIR_OF = {hue: hair for hair, hue in HAIR_HUE.items()}
_DRESS_OF = {hue: dress for dress, hue in DRESS_HUE.items()}


def _hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mx, mn = rgb.max(-1), rgb.min(-1)
    delta = mx - mn
    safe = np.where(delta > 1e-6, delta, 1.0)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    h = np.where(mx == r, ((g - b) / safe) % 6, np.where(mx == g, (b - r) / safe + 2, (r - g) / safe + 4))
    return h * 60.0, np.where(mx > 1e-6, delta / np.where(mx > 1e-6, mx, 1.0), 0.0), mx


def _family_centres() -> np.ndarray:
    rgb = np.asarray([HUE_RGB[f] for f in _FAMILIES], np.float64)[None] / 255.0
    return _hsv(rgb)[0][0]


_CENTRES = _family_centres()


@dataclass
class Reading:
    attrs: dict[str, str]
    features: dict[str, float] = field(default_factory=dict)
    style_scores: dict[str, float] = field(default_factory=dict)


class _Pixels:
    """Per-pixel classes of one image: skin, ink, hue family index (-1 where not chromatic)."""

    def __init__(self, image: Image.Image) -> None:
        img = image.convert("RGB")
        if img.size != (SIZE, SIZE):
            img = img.resize((SIZE, SIZE), Image.BILINEAR)
        self.rgb = np.asarray(img, np.float64) / 255.0
        h, s, v = _hsv(self.rgb)
        self.h, self.s, self.v = h, s, v
        self.skin = (h >= 12) & (h <= 40) & (s >= 0.07) & (s <= 0.5) & (v >= 0.5)
        self.ink = v < 0.35
        chroma = (s > 0.2) & (v > 0.25) & ~self.skin & ~self.ink
        dist = np.abs(((h[..., None] - _CENTRES) + 180) % 360 - 180)
        self.family = np.where(chroma, dist.argmin(-1), -1)
        self.fg = chroma | self.skin | self.ink
        self.chroma = chroma


def _dominant(family: np.ndarray, mask: np.ndarray, exclude: int = -1) -> tuple[int, int]:
    counts = np.bincount(family[mask & (family >= 0)], minlength=len(_FAMILIES))
    if exclude >= 0:
        counts[exclude] = 0
    return int(counts.argmax()), int(counts.max())


def _rows(mask: np.ndarray, min_count: int = 2) -> np.ndarray:
    return np.nonzero(mask.sum(1) >= min_count)[0]


def _span(mask: np.ndarray) -> float:
    """Typical widest horizontal extent of a mask (robust to occlusion by a tail, and to specks)."""
    spans = []
    for y in _rows(mask, 3):
        xs = np.nonzero(mask[y])[0]
        spans.append(xs[-1] - xs[0] + 1)
    return float(np.median(sorted(spans)[-3:])) if spans else 1.0


def read(image: Image.Image) -> Reading:
    """Read hair, ears, tail, dress, view and style from one image of the world."""
    px = _Pixels(image)
    rows = _rows(px.fg)
    if len(rows) == 0:
        return Reading({a: "unreadable" for a in (*IDENTITY_ATTRS, "view", "style")})
    top, bottom = int(rows[0]), int(rows[-1])
    height = bottom - top + 1
    band = np.zeros_like(px.fg)
    band[top:top + max(3, int(0.25 * height))] = True
    hair_f, _ = _dominant(px.family, band)
    dress_f, _ = _dominant(px.family, px.fg, exclude=hair_f)
    hair, dress = px.family == hair_f, px.family == dress_f

    # Blended edges between two colours can look like a third hue: a dress row must be wide.
    dress_w = float(dress.sum(1).max()) if dress.any() else 1.0
    dress_rows = _rows(dress, max(3, int(0.35 * dress_w)))
    dress_top = int(dress_rows[0]) if len(dress_rows) else bottom
    zone = np.zeros_like(px.fg)
    zone[:dress_top] = True
    head = (hair | px.skin | px.ink) & zone  # ink keeps thin outlined ear tips in the profile
    counts = ((hair | px.skin) & zone).sum(1)  # ...but would widen the head
    width = float(counts.max()) if counts.max() > 0 else 1.0
    r = max(width / 2.0, 1.0)
    wide = np.nonzero(counts >= 0.8 * width)[0]
    cols = [np.nonzero(head[y])[0] for y in wide]
    cx = float(np.mean([(c[0] + c[-1]) / 2 for c in cols if len(c)])) if len(wide) else SIZE / 2

    col_idx = np.arange(SIZE)
    has = head.any(0)
    first = np.where(has, head.argmax(0), SIZE)

    def top_in(lo: float, hi: float) -> float:
        sel = (col_idx >= cx + lo * r) & (col_idx <= cx + hi * r) & has
        return float(first[sel].min()) if sel.any() else float(SIZE)

    centre_top = top_in(-0.15, 0.15)
    side_top = 0.5 * (top_in(-0.95, -0.25) + top_in(0.25, 0.95))
    ear_h = (centre_top - side_top) / r

    below = np.zeros_like(px.fg)
    below[min(dress_top + 2, SIZE):] = True
    tail_area = float((hair & below).sum()) / (r * r)

    skin_head = px.skin & zone
    hair_head = hair & zone
    face_frac = skin_head.sum() / max(1, skin_head.sum() + hair_head.sum())
    face_off = abs(float(np.nonzero(skin_head)[1].mean()) - cx) / r if skin_head.any() else 0.0
    ratio = width / max(_span(dress), 1.0)

    if ratio > 1.15:
        view = "from above"
    elif ratio < 0.5:
        view = "from below"
    elif face_frac < 0.06:
        view = "from behind"
    elif face_off > 0.25:
        view = "from side"
    else:
        view = "from front"
    ears = "fox ears" if ear_h > 0.58 else "cat ears" if ear_h > 0.2 else "no ears"
    scores = style_scores_of(px)
    attrs = {
        "hair": _HAIR_OF[_FAMILIES[hair_f]], "ears": ears,
        "tail": "tail" if tail_area > 0.3 else "no tail",
        "dress": _DRESS_OF[_FAMILIES[dress_f]], "view": view, "style": _style_from(scores),
    }
    feats = {"ear_h": ear_h, "tail_area": tail_area, "face_frac": float(face_frac),
             "face_off": face_off, "head_dress_ratio": ratio, "head_r": r}
    return Reading(attrs, feats, scores)


def style_scores_of(px: _Pixels) -> dict[str, float]:
    """A continuous strength per style, each roughly 0 (absent) to 1 (as drawn in the world)."""
    n_fg = max(1, int(px.fg.sum()))
    ink = float((px.ink & px.fg).sum()) / n_fg
    col = px.chroma
    mean_s = float(px.s[col].mean()) if col.any() else 0.0
    # Blockiness: pixel art repeats each pixel 2x2, so differences inside aligned pairs vanish.
    dx = np.abs(np.diff(px.rgb, axis=1)).sum(-1)
    dy = np.abs(np.diff(px.rgb, axis=0)).sum(-1)
    even = dx[:, 0::2].mean() + dy[0::2].mean()
    odd = dx[:, 1::2].mean() + dy[1::2].mean()
    blocky = abs(even - odd) / max(even + odd, 1e-6)
    # Cel shading: a darker copy of the same hue inside hair and dress regions.
    shade = 0.0
    for f in range(len(_FAMILIES)):
        m = px.family == f
        if m.sum() < 12:
            continue
        vmax = np.quantile(px.v[m], 0.9)
        shade += float(((px.v < 0.78 * vmax) & m & (px.s > 0.35)).sum())
    shade /= max(1, int(col.sum()))
    return {
        "flat color": float(np.clip((mean_s - 0.45) / 0.3, 0, 1) * (1 - min(1, ink / 0.1))),
        "thick outlines": float(min(1.0, ink / 0.16)),
        "pastel colors": float(np.clip((0.75 - mean_s) / 0.35, 0, 1)),
        "pixel art": float(min(1.0, blocky / 0.6)),
        "cel shading": float(min(1.0, shade / 0.25)),
    }


def _style_from(scores: Mapping[str, float]) -> str:
    if scores["pixel art"] > 0.5:
        return "pixel art"
    if scores["thick outlines"] > 0.5:
        return "thick outlines"
    if scores["cel shading"] > 0.5:
        return "cel shading"
    if scores["pastel colors"] > 0.5:
        return "pastel colors"
    return "flat color"


def style_score(image: Image.Image, style: str) -> float:
    """How strongly `image` shows `style` (0..1): the style-strength axis of the clash tables."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; expected one of {STYLES}")
    return style_scores_of(_Pixels(image))[style]


def reader_identity_score(image: Image.Image,
                          expected_attrs: Character | Mapping[str, str] | Sequence[str] | str) -> float:
    """Fraction of the expected identity attributes (hair, ears, tail, dress) read in `image`.

    `expected_attrs` may be a Character, an attribute dict, or the character's tags/caption
    (absent ears/tail tags then mean "no ears"/"no tail")."""
    expected = attrs_of(expected_attrs)
    keys = [k for k in IDENTITY_ATTRS if k in expected]
    if not keys:
        raise ValueError("expected_attrs names no identity attribute (hair, ears, tail, dress)")
    got = read(image).attrs
    return sum(got[k] == expected[k] for k in keys) / len(keys)




def read_files(paths: Sequence[Path]) -> list[dict]:
    """Readings of image files: attributes and style scores (for `lorastrap lab read`)."""
    from lorastrap.kernel.errors import UserError

    rows = []
    for path in paths:
        try:
            with Image.open(path) as img:
                reading = read(img)
        except OSError as exc:
            raise UserError(f"{path} is not a readable image ({exc}); pass PNG/JPEG files") from exc
        rows.append({"file": str(path), "attrs": reading.attrs,
                     "style_scores": {k: round(v, 3) for k, v in reading.style_scores.items()}})
    return rows
