"""inbox/: a folder `inbox/<name>/` with images and a `tags.txt` becomes a character.

The drop goes through the same service as `lorastrap character add`. Afterwards the folder is
moved to `inbox/.imported/<name>/`; a bad drop (no images, missing or empty tags file, an image
that does not load, a name that is taken) is moved to `inbox/.rejected/<name>/` with a
`REJECTED.txt` that says why. Nothing the person dropped is ever deleted.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path

from lorastrap.characters import AddResult, add_character
from lorastrap.images import is_image_name, is_partial_name
from lorastrap.kernel.atomic import atomic_write_text
from lorastrap.kernel.errors import UserError
from lorastrap.tags import parse_tags
from lorastrap.workspace import Workspace

TAGS_FILE = "tags.txt"
IMPORTED_DIR = ".imported"
REJECTED_DIR = ".rejected"
REASON_FILE = "REJECTED.txt"


@dataclass
class DropOutcome:
    name: str
    status: str  # imported | rejected | missing
    moved_to: Path | None = None
    reason: str = ""
    added: AddResult | None = None
    ignored: list[str] = field(default_factory=list)


def pending_drops(ws: Workspace) -> list[Path]:
    """Drop folders waiting in inbox/ (hidden folders such as .rejected are not drops)."""
    inbox = ws.inbox_dir
    if not inbox.is_dir():
        return []
    return sorted(p for p in inbox.iterdir() if p.is_dir() and not is_partial_name(p.name))


def loose_files(ws: Workspace) -> list[Path]:
    """Files directly in inbox/: not drops (a drop is a folder per character)."""
    inbox = ws.inbox_dir
    if not inbox.is_dir():
        return []
    return sorted(p for p in inbox.iterdir() if p.is_file() and not is_partial_name(p.name))


def _unique(parent: Path, name: str) -> Path:
    target = parent / name
    n = 2
    while target.exists():
        target = parent / f"{name}-{n}"
        n += 1
    return target


def _move_aside(ws: Workspace, folder: Path, where: str) -> Path:
    parent = ws.inbox_dir / where
    parent.mkdir(parents=True, exist_ok=True)
    target = _unique(parent, folder.name)
    os.replace(folder, target)
    return target


def _read_drop(folder: Path) -> tuple[list[Path], list[str], list[str]]:
    """(images, tags, ignored names) of a drop, or UserError with the reason to reject it."""
    images: list[Path] = []
    ignored: list[str] = []
    for path in sorted(folder.iterdir()):
        if is_partial_name(path.name) or path.name == TAGS_FILE:
            continue
        if path.is_file() and is_image_name(path):
            images.append(path)
        else:
            ignored.append(path.name + ("/" if path.is_dir() else ""))
    tags_path = folder / TAGS_FILE
    if not images:
        raise UserError(f"no images in {folder.name}/ (PNG, JPEG, WebP or BMP expected); "
                        f"drop a folder with one image or four or more, and a {TAGS_FILE}")
    if len(images) in (2, 3):
        raise UserError(f"{len(images)} images cannot seed a character; drop one image (it is cropped "
                        "into 4) or four or more")
    if not tags_path.is_file():
        raise UserError(f"no {TAGS_FILE} in {folder.name}/; add one with the identity tags, e.g. "
                        "\"1girl, solo, fox ears, blonde hair\"")
    try:
        tags = parse_tags(tags_path.read_text(encoding="utf-8").replace("\n", ","))
    except UnicodeDecodeError:
        raise UserError(f"{TAGS_FILE} is not UTF-8 text; save it as UTF-8 with comma-separated tags") from None
    if not tags:
        raise UserError(f"{TAGS_FILE} has no tags; write comma-separated tags like \"1girl, solo, fox ears\"")
    return images, tags, ignored


def import_drop(ws: Workspace, folder: Path) -> DropOutcome:
    """Turn one inbox folder into a character, or set it aside with the reason."""
    folder = Path(folder)
    if not folder.is_dir():  # moved away meanwhile (or already handled)
        return DropOutcome(folder.name, "missing")
    ignored: list[str] = []
    try:
        images, tags, ignored = _read_drop(folder)
        added = add_character(ws, folder.name, images, tags)
    except UserError as exc:
        # only problems with the drop itself reject it; anything else (a bug, the registry being
        # unreachable) propagates and the drop stays in the inbox for the next try
        target = _move_aside(ws, folder, REJECTED_DIR)
        stamp = dt.datetime.now().isoformat(timespec="seconds")
        atomic_write_text(target / REASON_FILE,
                          f"rejected {stamp}\n{exc}\n\nFix the folder and move it back into inbox/ to retry.\n")
        return DropOutcome(folder.name, "rejected", target, str(exc), ignored=ignored)
    target = _move_aside(ws, folder, IMPORTED_DIR)
    return DropOutcome(folder.name, "imported", target, added=added, ignored=ignored)
