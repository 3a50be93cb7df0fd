"""Frame selection: which images become which animation frames, in which order.

Sources are a folder (one animation), or one glob per animation (`NAME=GLOB`). Order is natural
sort (`walk_2` before `walk_10`), which is what people mean when they number files.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from game_export.errors import ExportError
from lorastrap.kernel.pngmeta import png_view

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
_NAME_SAFE = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class FrameSpec:
    """One source image and where it goes: animation name, optional view tag, optional name."""

    path: Path
    animation: str = "idle"
    view: str | None = None
    name: str | None = None


def natural_key(text: str) -> tuple:
    """Sort key that orders embedded numbers numerically: frame2 < frame10."""
    parts = re.split(r"(\d+)", text.lower())
    return tuple((0, int(p), p) if p.isdigit() else (1, 0, p) for p in parts)


def natural_sorted(paths: Iterable[Path]) -> list[Path]:
    return sorted(paths, key=lambda p: natural_key(p.as_posix()))


def safe_name(text: str) -> str:
    """A name usable in file names, Godot animation names and Unity sprite names."""
    cleaned = _NAME_SAFE.sub("_", text.strip()).strip("_")
    return cleaned or "frame"


def is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def images_in(folder: Path, exclude: Collection[Path] = ()) -> list[Path]:
    """Image files directly inside `folder` (but not those in `exclude`, resolved), naturally sorted."""
    if not folder.is_dir():
        raise ExportError(f"frame folder {folder} does not exist; pass an existing folder with --from")
    return natural_sorted(p for p in folder.iterdir() if is_image(p) and p.resolve() not in exclude)


def glob_images(pattern: str, base: Path | None = None, exclude: Collection[Path] = ()) -> list[Path]:
    """Images matching `pattern` (relative patterns resolve against `base`), naturally sorted."""
    full = pattern if Path(pattern).is_absolute() or base is None else str(base / pattern)
    return natural_sorted(p for p in map(Path, glob.glob(full, recursive=True))
                          if is_image(p) and p.resolve() not in exclude)


def parse_animation_option(option: str) -> tuple[str, str]:
    """Split a `NAME=GLOB` command-line value."""
    name, sep, pattern = option.partition("=")
    if not sep or not name.strip() or not pattern.strip():
        raise ExportError(f"--animation {option!r} must look like NAME=GLOB, e.g. walk='frames/walk_*.png'")
    return name.strip(), pattern.strip()


def frames_from_globs(animations: Mapping[str, str] | Sequence[tuple[str, str]],
                      base: Path | None = None, read_views: bool = True,
                      exclude: Collection[Path] = ()) -> list[FrameSpec]:
    """One animation per glob; a glob that matches no image is an error (a typo, not 0 frames).
    `exclude`: resolved paths that are never frames (e.g. a round's contact sheet)."""
    items = animations.items() if isinstance(animations, Mapping) else animations
    frames: list[FrameSpec] = []
    for name, pattern in items:
        paths = glob_images(pattern, base, exclude)
        if not paths:
            raise ExportError(f"--animation {name}={pattern} matches no image; check the pattern "
                              "(quote it so the shell does not expand it)")
        frames.extend(_specs(paths, safe_name(name), read_views))
    return frames


def frames_from_folder(folder: Path, animation: str = "idle", read_views: bool = True,
                       exclude: Collection[Path] = ()) -> list[FrameSpec]:
    """Every image of `folder` (but those in `exclude`) as one animation."""
    paths = images_in(folder, exclude)
    if not paths:
        raise ExportError(f"no images in {folder}; curate some images first or pass --from DIR")
    return _specs(paths, safe_name(animation), read_views)


def _specs(paths: Sequence[Path], animation: str, read_views: bool) -> list[FrameSpec]:
    return [FrameSpec(path=p, animation=animation, view=png_view(p) if read_views else None)
            for p in paths]


def assign_names(frames: Sequence[FrameSpec], groups: Sequence[str]) -> list[str]:
    """Unique frame names `<group>_<index>` (index within the group, two digits at least)."""
    counters: dict[str, int] = {}
    names: list[str] = []
    used: set[str] = set()
    for spec, group in zip(frames, groups):
        if spec.name:
            name = safe_name(spec.name)
        else:
            index = counters.get(group, 0)
            counters[group] = index + 1
            name = f"{group}_{index:02d}"
        base, n = name, 1
        while name in used:
            name = f"{base}_{n}"
            n += 1
        used.add(name)
        names.append(name)
    return names
