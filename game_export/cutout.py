"""Frames in, cut-out trimmed sprites out: load, remove the background, clean alpha, trim.

Frames stream through one at a time and only the trimmed sprite is kept, so memory follows the
size of the character, not of the source images.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from game_export.alpha import AlphaCleanup, cleanup
from game_export.background import NoRemover, Remover
from game_export.directions import OTHER_SIDE, SIDE, assign_directions, direction_sort_key
from game_export.errors import ExportError
from game_export.frames import FrameSpec, assign_names, safe_name
from game_export.layout import Trimmed, trim
from lorastrap.kernel.imageio import DecodeError, decode_image


@dataclass(frozen=True)
class Cutout:
    spec: FrameSpec
    trimmed: Trimmed
    group: str = ""  # the animation this frame ends up in (with a direction suffix)
    direction: str | None = None
    mirrored: bool = False
    name: str = ""


MAX_FRAME_PIXELS = 64_000_000  # as lorastrap's [images] max_pixels: the bomb guard of every intake


def load_frame(path, notes: list[str] | None = None) -> Image.Image:
    """The frame upright, 8-bit sRGB (lorastrap.kernel.imageio); an animation gives its first frame."""
    try:
        decoded = decode_image(Path(path), max_pixels=MAX_FRAME_PIXELS, animated="first")
    except (DecodeError, OSError) as exc:
        raise ExportError(f"cannot read frame {path}: {exc}; replace or remove that file") from exc
    if notes is not None:
        notes.extend(f"{Path(path).name}: {note}" for note in decoded.notes)
    return decoded.image


def already_cut_out(image: Image.Image) -> bool:
    """True when the frame has transparency on its border (a sprite that is already cut out)."""
    if "A" not in image.getbands() and "transparency" not in image.info:
        return False
    alpha = np.asarray(image.convert("RGBA").getchannel("A"))
    border = np.concatenate([alpha[0], alpha[-1], alpha[:, 0], alpha[:, -1]])
    return bool((border < 255).any())


def cut_out(spec: FrameSpec, remover: Remover, settings: AlphaCleanup,
            notes: list[str] | None = None) -> tuple[Trimmed, bool]:
    """The trimmed RGBA sprite of one frame, and whether its own alpha was kept."""
    image = load_frame(spec.path, notes)
    keep_alpha = already_cut_out(image)
    active = NoRemover() if keep_alpha else remover
    rgba_in = image.convert("RGBA")
    alpha = active.matte(rgba_in if keep_alpha else rgba_in.convert("RGB"))
    rgb = np.asarray(rgba_in)[..., :3]
    rgba = cleanup(rgb, alpha, settings, background_known=active.background_known)
    return trim(Image.fromarray(rgba, "RGBA"), str(spec.path)), keep_alpha


def cut_out_all(frames: Sequence[FrameSpec], remover: Remover, settings: AlphaCleanup,
                progress: Callable[[int, int], None] | None = None) -> tuple[list[Cutout], list[str]]:
    cutouts, kept, notes = [], 0, []
    for done, spec in enumerate(frames, start=1):
        trimmed, keep_alpha = cut_out(spec, remover, settings, notes)
        kept += keep_alpha
        cutouts.append(Cutout(spec, trimmed))
        if progress:
            progress(done, len(frames))
    warnings = [f"{kept} frame(s) were already transparent; their own alpha was kept"] if kept else []
    return cutouts, warnings + notes


def _mirrored(cutout: Cutout) -> Cutout:
    t = cutout.trimmed
    left, top, right, bottom = t.box
    width = t.source_size[0]
    box = (width - right, top, width - left, bottom)
    return replace(cutout, trimmed=Trimmed(ImageOps.mirror(t.image), box, t.source_size),
                   direction=OTHER_SIDE, mirrored=True)


def group_frames(cutouts: list[Cutout], directions: bool, mirror_side: bool) -> tuple[list[Cutout], list[str]]:
    """Assign animations (and direction rows), mirror sides on request, order and name frames.

    Animations keep the order in which they first appear; direction rows follow
    down, up, side, other_side; frames keep their order within a row.
    """
    warnings: list[str] = []
    if directions:
        dirs, warnings = assign_directions([c.spec.view for c in cutouts])
        cutouts = [replace(c, direction=d) for c, d in zip(cutouts, dirs)]
        if mirror_side:
            cutouts, more = _add_mirrors(cutouts)
            warnings += more
    first_seen: dict[str, int] = {}
    for c in cutouts:
        first_seen.setdefault(c.spec.animation, len(first_seen))

    def group_of(c: Cutout) -> str:
        base = safe_name(c.spec.animation)
        return f"{base}_{c.direction}" if directions else base

    ordered = sorted(enumerate(cutouts), key=lambda ic: (
        first_seen[ic[1].spec.animation], direction_sort_key(ic[1].direction or ""), ic[0]))
    cutouts = [replace(c, group=group_of(c)) for _, c in ordered]
    names = assign_names([c.spec for c in cutouts], [c.group for c in cutouts])
    return [replace(c, name=n) for c, n in zip(cutouts, names)], warnings


def _add_mirrors(cutouts: list[Cutout]) -> tuple[list[Cutout], list[str]]:
    out, warnings = list(cutouts), []
    for animation in dict.fromkeys(c.spec.animation for c in cutouts):
        members = [c for c in cutouts if c.spec.animation == animation]
        sides = [c for c in members if c.direction == SIDE]
        if sides and not any(c.direction == OTHER_SIDE for c in members):
            out += [_mirrored(c) for c in sides]
            warnings.append(f"{len(sides)} '{animation}' frame(s) for other_side are mirrored side "
                            "views: check asymmetric details (weapon hand, hair parting, emblems)")
    return out, warnings
