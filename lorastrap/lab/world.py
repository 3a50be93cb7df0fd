"""The lab's procedural world: small characters whose attributes are known and are also tags.

Every image is drawn from a *label map* (background, skin, hair, dress, eye) at twice the output
size and then coloured by an art style, so the truth behind each pixel is known. The geometry is
deliberately simple and fixed per view: a model-free reader (`reader.py`) can recover the
attributes, which makes "does the character hold from behind?" a measurable question.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw

SIZE = 64  # the lab's resolution
_SS = 2  # label maps are drawn supersampled, then box-filtered

HAIR = ("blonde hair", "red hair", "green hair", "blue hair", "purple hair")
DRESS = ("yellow dress", "red dress", "green dress", "blue dress", "purple dress")
EARS = ("fox ears", "cat ears", "no ears")
TAIL = ("tail", "no tail")
VIEWS = ("from front", "from side", "from behind", "from above", "from below")
TRAIN_STYLES = ("flat color", "thick outlines", "pastel colors")
HELD_OUT_STYLES = ("pixel art", "cel shading")  # never in pretraining: for style-LoRA tests
STYLES = TRAIN_STYLES + HELD_OUT_STYLES
LEADING_TAGS = ("1girl", "solo")
IDENTITY_ATTRS = ("hair", "ears", "tail", "dress")
ATTRS = IDENTITY_ATTRS + ("view", "style")
NO_TAG = ("no ears", "no tail")  # attribute values that are the absence of a tag

# One hue family per colour word; hair and dress share families but never the same one.
HUE_RGB = {
    "yellow": (245, 210, 50),
    "red": (220, 40, 60),
    "green": (60, 180, 75),
    "blue": (50, 100, 220),
    "purple": (150, 60, 200),
}
HAIR_HUE = {"blonde hair": "yellow", "red hair": "red", "green hair": "green",
            "blue hair": "blue", "purple hair": "purple"}
DRESS_HUE = {d: d.split()[0] for d in DRESS}
SKIN_RGB = (255, 219, 190)
INK_RGB = (35, 30, 45)
BG, SKIN, HAIR_L, DRESS_L, EYE = 0, 1, 2, 3, 4  # label ids


@dataclass(frozen=True)
class Character:
    hair: str
    ears: str
    tail: str
    dress: str

    def __post_init__(self) -> None:
        for value, allowed in ((self.hair, HAIR), (self.ears, EARS), (self.tail, TAIL),
                               (self.dress, DRESS)):
            if value not in allowed:
                raise ValueError(f"unknown attribute value {value!r}; expected one of {allowed}")
        if HAIR_HUE[self.hair] == DRESS_HUE[self.dress]:
            raise ValueError("hair and dress share a colour: such characters are not in the world")

    @property
    def slug(self) -> str:
        ears = self.ears.split()[0]
        return f"{self.hair.split()[0]}-{ears}-{self.tail.replace(' ', '')}-{self.dress.split()[0]}"

    def attrs(self) -> dict[str, str]:
        return {"hair": self.hair, "ears": self.ears, "tail": self.tail, "dress": self.dress}

    def tags(self) -> list[str]:
        """Identity tags, Danbooru form (absent ears/tail have no tag)."""
        return [v for v in (self.hair, self.ears, self.tail, self.dress) if v not in NO_TAG]


def all_characters() -> list[Character]:
    return [Character(h, e, t, d) for h in HAIR for e in EARS for t in TAIL for d in DRESS
            if HAIR_HUE[h] != DRESS_HUE[d]]


# The lab's "new characters": never drawn during pretraining, although every single attribute
# value is (chosen so each hair, dress, ears and tail value stays common in pretraining).
HELD_OUT = (
    Character("blonde hair", "fox ears", "tail", "blue dress"),
    Character("red hair", "cat ears", "no tail", "green dress"),
    Character("green hair", "no ears", "tail", "purple dress"),
    Character("blue hair", "fox ears", "no tail", "red dress"),
    Character("purple hair", "cat ears", "tail", "yellow dress"),
    Character("blonde hair", "no ears", "no tail", "purple dress"),
    Character("red hair", "fox ears", "tail", "yellow dress"),
    Character("blue hair", "cat ears", "tail", "green dress"),
    Character("green hair", "fox ears", "no tail", "blue dress"),
    Character("purple hair", "no ears", "tail", "red dress"),
)


def training_characters() -> list[Character]:
    held = set(HELD_OUT)
    return [c for c in all_characters() if c not in held]


def caption(character: Character, view: str, style: str | None) -> str:
    """Danbooru caption: leading tags, identity, view, style."""
    tags = [*LEADING_TAGS, *character.tags(), view]
    if style:
        tags.append(style)
    return ", ".join(tags)


def parse_attrs(tags: Sequence[str] | str) -> dict[str, str]:
    """Attributes named by a tag list (or caption); absent ears/tail read as 'no ears'/'no tail'."""
    if isinstance(tags, str):
        tags = [t.strip() for t in tags.split(",")]
    found = {"ears": "no ears", "tail": "no tail"}
    for attr, values in (("hair", HAIR), ("ears", EARS), ("tail", TAIL), ("dress", DRESS),
                         ("view", VIEWS), ("style", STYLES)):
        for tag in tags:
            if tag in values:
                found[attr] = tag
    return found


# ---------------------------------------------------------------- geometry (64-px units)
@dataclass(frozen=True)
class _Pose:
    head: tuple[float, float, float]  # cx, cy, r
    face: tuple[float, float, float, float] | None  # cx, cy, rx, ry (offsets in units of r)
    eyes: tuple[tuple[float, float], ...]  # offsets in units of r
    dress: tuple[float, float, float, float]  # top y, bottom y, top width, bottom width
    legs: tuple[tuple[float, float, float, float], ...]  # x0, y0, x1, y1 (x relative to cx)
    tail: tuple[float, float, float, float, float]  # dx, cy, rx, ry, angle (degrees)
    tail_behind: bool


_POSES = {
    "from front": _Pose((32, 21, 9.5), (0, 0.22, 0.75, 0.62), ((-0.35, 0.12), (0.35, 0.12)),
                        (29, 50, 14, 28), ((-6, 50, -2, 60), (2, 50, 6, 60)),
                        (12, 40, 5.5, 10, -35), True),
    "from side": _Pose((32, 21, 9.5), (0.45, 0.18, 0.6, 0.6), ((0.68, 0.05),),
                       (29, 50, 12, 20), ((-2, 50, 3, 60),), (-14, 41, 4.5, 10, 70), False),
    "from behind": _Pose((32, 21, 9.5), None, (), (29, 50, 14, 28),
                         ((-6, 50, -2, 60), (2, 50, 6, 60)), (3, 45, 5, 9.5, 20), False),
    "from above": _Pose((32, 26, 13), (0, 0.55, 0.6, 0.38), ((-0.25, 0.55), (0.25, 0.55)),
                        (37, 55, 12, 18), ((-5, 55, -2, 59), (2, 55, 5, 59)),
                        (13, 50, 5, 8.5, -45), False),
    "from below": _Pose((32, 14, 6.5), (0, 0.25, 0.75, 0.6), ((-0.35, 0.15), (0.35, 0.15)),
                        (20, 47, 16, 36), ((-8, 47, -2, 62), (2, 47, 8, 62)),
                        (21, 36, 5.5, 9.5, -25), False),
}
_EAR_SHAPE = {"fox ears": (0.5, 0.95, 0.18), "cat ears": (0.8, 0.42, 0.0)}  # base w, height, tilt


def _ellipse_poly(cx: float, cy: float, rx: float, ry: float, angle: float) -> list[tuple]:
    a = math.radians(angle)
    pts = []
    for i in range(24):
        t = 2 * math.pi * i / 24
        x, y = rx * math.cos(t), ry * math.sin(t)
        pts.append((cx + x * math.cos(a) - y * math.sin(a), cy + x * math.sin(a) + y * math.cos(a)))
    return pts


def label_map(character: Character, view: str, rng: random.Random) -> np.ndarray:
    """Label ids at SIZE*_SS px, with a little jitter (shift, scale, mirror)."""
    if view not in _POSES:
        raise ValueError(f"unknown view {view!r}; expected one of {VIEWS}")
    p = _POSES[view]
    n = SIZE * _SS
    s = rng.uniform(0.96, 1.04)
    ox, oy = rng.uniform(-3, 3), rng.uniform(-1, 1)

    def tr(x: float, y: float) -> tuple[float, float]:  # 64-unit coords around the centre
        return ((32 + (x - 32) * s + ox) * _SS, (34 + (y - 34) * s + oy) * _SS)

    img = Image.new("L", (n, n), BG)
    d = ImageDraw.Draw(img)
    poly = lambda pts, lab: d.polygon([tr(x, y) for x, y in pts], fill=lab)  # noqa: E731
    cx, cy, r = p.head
    tdx, tcy, trx, try_, tang = p.tail
    tail = _ellipse_poly(cx + tdx, tcy, trx, try_, tang)
    has_tail = character.tail == "tail"
    if has_tail and p.tail_behind:
        poly(tail, HAIR_L)
    for x0, y0, x1, y1 in p.legs:
        poly([(cx + x0, y0), (cx + x1, y0), (cx + x1, y1), (cx + x0, y1)], SKIN)
    ty, by, tw, bw = p.dress
    poly([(cx - tw / 2, ty), (cx + tw / 2, ty), (cx + bw / 2, by), (cx - bw / 2, by)], DRESS_L)
    if has_tail and not p.tail_behind:
        poly(tail, HAIR_L)
    if character.ears in _EAR_SHAPE:
        bw_, h, tilt = _EAR_SHAPE[character.ears]
        for side in (-1, 1):
            ex = cx + side * 0.55 * r
            base_y = cy - 0.62 * r
            poly([(ex - bw_ * r / 2, base_y), (ex + bw_ * r / 2, base_y),
                  (ex + side * tilt * r, cy - r - h * r)], HAIR_L)
    poly(_ellipse_poly(cx, cy, r, r, 0), HAIR_L)
    if p.face is not None:
        fx, fy, frx, fry = p.face
        poly(_ellipse_poly(cx + fx * r, cy + fy * r, frx * r, fry * r, 0), SKIN)
        er = max(0.12 * r, 0.9)
        for ex, ey in p.eyes:
            poly(_ellipse_poly(cx + ex * r, cy + ey * r, er * 0.8, er, 0), EYE)
    labels = np.asarray(img)
    if rng.random() < 0.5:
        labels = labels[:, ::-1]
    return np.ascontiguousarray(labels)


# ---------------------------------------------------------------- styles
def _palette(character: Character, rng: random.Random) -> np.ndarray:
    jitter = lambda rgb: [min(255, max(0, c + rng.randint(-6, 6))) for c in rgb]  # noqa: E731
    pal = np.zeros((5, 3), np.float32)
    pal[BG] = (255, 255, 255)
    pal[SKIN] = jitter(SKIN_RGB)
    pal[HAIR_L] = jitter(HUE_RGB[HAIR_HUE[character.hair]])
    pal[DRESS_L] = jitter(HUE_RGB[DRESS_HUE[character.dress]])
    pal[EYE] = INK_RGB
    return pal


def _edges(labels: np.ndarray, width: int) -> np.ndarray:
    """Foreground pixels within `width` px of a label change."""
    edge = np.zeros(labels.shape, bool)
    for dy, dx in ((0, 1), (1, 0), (0, -1), (-1, 0)):
        edge |= labels != np.roll(labels, (dy, dx), axis=(0, 1))
    for _ in range(width - 1):
        grown = edge.copy()
        for dy, dx in ((0, 1), (1, 0), (0, -1), (-1, 0)):
            grown |= np.roll(edge, (dy, dx), axis=(0, 1))
        edge = grown
    return edge & (labels != BG)


def render(labels: np.ndarray, character: Character, style: str, rng: random.Random) -> Image.Image:
    """Colour a label map in an art style and reduce it to SIZE px."""
    pal = _palette(character, rng)
    if style == "pixel art":
        small = labels[_SS * 2 // 2::_SS * 2, _SS * 2 // 2::_SS * 2]  # one label per 2x2 block
        rgb = pal[small].repeat(2, 0).repeat(2, 1)
        return Image.fromarray(rgb.astype(np.uint8))
    if style == "pastel colors":
        pal[1:4] = pal[1:4] * 0.5 + 255 * 0.5
        pal[SKIN] = np.asarray(SKIN_RGB) * 0.6 + 255 * 0.4
        pal[EYE] = (110, 100, 130)
    rgb = pal[labels]
    if style == "thick outlines":  # eyes count as face here, or a face becomes one ink blot
        rgb[_edges(np.where(labels == EYE, SKIN, labels), 2)] = INK_RGB
    elif style == "cel shading":
        k = 3 * _SS  # shadow band along the lower-right edge of every shape (light from top-left)
        shifted = np.roll(labels, (-k // 2, -k), axis=(0, 1))
        shade = (labels != shifted) & (labels != BG) & (labels != EYE)
        rgb[shade] *= 0.62
    elif style not in ("flat color", "pastel colors"):
        raise ValueError(f"unknown style {style!r}; expected one of {STYLES}")
    n = labels.shape[0] // _SS
    rgb = rgb.reshape(n, _SS, n, _SS, 3).mean(axis=(1, 3))
    return Image.fromarray(np.clip(rgb + 0.5, 0, 255).astype(np.uint8))


def draw(character: Character, view: str = "from front", style: str = "flat color",
         seed: int = 0) -> Image.Image:
    """One deterministic drawing (same arguments → same pixels)."""
    rng = random.Random(f"{character.slug}|{view}|{style}|{seed}")
    return render(label_map(character, view, rng), character, style, rng)


@dataclass(frozen=True)
class Sample:
    character: Character
    view: str
    style: str
    seed: int

    def image(self) -> Image.Image:
        return draw(self.character, self.view, self.style, self.seed)

    def caption(self) -> str:
        return caption(self.character, self.view, self.style)

    def attrs(self) -> dict[str, str]:
        return {**self.character.attrs(), "view": self.view, "style": self.style}


def attrs_of(expected: Character | Mapping[str, str] | Sequence[str] | str) -> dict[str, str]:
    """Normalise what a caller knows about a character into an attribute dict."""
    if isinstance(expected, Character):
        return expected.attrs()
    if isinstance(expected, Mapping):
        return dict(expected)
    return parse_attrs(expected)


def character_from_slug(slug: str) -> Character:
    """Parse `Character.slug` back, e.g. 'blonde-fox-tail-blue' or 'red-no-notail-green'."""
    from lorastrap.kernel.errors import UserError

    parts = slug.strip().lower().split("-")
    hair = {h.split()[0]: h for h in HAIR}
    dress = {d.split()[0]: d for d in DRESS}
    ears = {e.split()[0]: e for e in EARS}
    tail = {"tail": "tail", "notail": "no tail"}
    try:
        if len(parts) != 4:
            raise KeyError(slug)
        return Character(hair[parts[0]], ears[parts[1]], tail[parts[2]], dress[parts[3]])
    except (KeyError, ValueError):
        raise UserError(f"{slug!r} is not a lab character; write hair-ears-tail-dress, e.g. "
                        "blonde-fox-tail-blue or red-no-notail-green") from None


def write_drawings(slug: str, views: Sequence[str], style: str, count: int, out: "Path") -> list["Path"]:
    """Draw `count` images per view as PNG + Danbooru caption .txt (kohya sidecar) into `out`."""
    from pathlib import Path

    from lorastrap.kernel.atomic import atomic_path, atomic_write_text
    from lorastrap.kernel.errors import UserError

    character = character_from_slug(slug)
    for name, value, allowed in [("view", v, VIEWS) for v in views] + [("style", style, STYLES)]:
        if value not in allowed:
            raise UserError(f"unknown {name} {value!r}; choose from {', '.join(allowed)}")
    out = Path(out)
    paths = []
    for view in views:
        for i in range(count):
            stem = out / f"{character.slug}_{view.replace(' ', '-')}_{i:02d}"
            with atomic_path(stem.with_suffix(".png")) as tmp:
                draw(character, view, style, i).save(tmp, format="PNG")
            atomic_write_text(stem.with_suffix(".txt"), caption(character, view, style) + "\n")
            paths.append(stem.with_suffix(".png"))
    return paths
