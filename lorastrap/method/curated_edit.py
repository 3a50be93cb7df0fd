"""Changing curated/ by hand, as a file manager would: import an image, write a caption sidecar.

Imports pass the same checks as `character add` seeds (decoded in full, size limits, bomb
guard) before anything is written; captions are written exactly where `lorastrap captions` and
the dataset read them (`curated/<image stem>.txt`), normalised the way they are read.
"""

from __future__ import annotations

import re
from pathlib import Path

from lorastrap.dataset.captions import sidecar_path
from lorastrap.images import curated_files, load_image
from lorastrap.kernel.atomic import atomic_write_bytes, atomic_write_text
from lorastrap.kernel.errors import Conflict, NotFound, UserError
from lorastrap.method.candidates import plain_name
from lorastrap.tags import join_tags, parse_tags
from lorastrap.workspace import Workspace

MAX_CAPTION = 2000


def safe_stem(name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(name).stem).strip("-.") or "imported"
    return stem[:80]


def import_image(ws: Workspace, slug: str, source: Path, name: str) -> Path:
    """Check `source` like a seed image, then write it into curated/ as `<name stem>.png`
    (re-encoded to PNG when it was another format). Never overwrites."""
    if not ws.character_dir(slug).is_dir():
        raise NotFound(f"no folder for character {slug!r}; see `lorastrap character list`")
    limits = ws.config.images
    loaded = load_image(source, min_side=limits.min_side, max_pixels=limits.max_pixels)
    target = ws.curated_dir(slug) / f"{safe_stem(name)}.png"
    if target.exists():
        raise Conflict(f"{target.name} is already in curated/; rename the file to keep both")
    atomic_write_bytes(target, loaded.data)
    return target


def write_caption(ws: Workspace, slug: str, name: str, caption: str) -> str | None:
    """Write `curated/<stem>.txt` for a curated image; an empty caption removes the sidecar, so
    the caption policy applies again. Returns the caption as it will be read."""
    image = ws.curated_dir(slug) / plain_name(name)
    if image not in curated_files(ws.curated_dir(slug))[0]:
        raise NotFound(f"{name} is not an image in {ws.curated_dir(slug)}")
    if len(caption) > MAX_CAPTION:
        raise UserError(f"caption is {len(caption)} characters; at most {MAX_CAPTION}")
    text = join_tags(parse_tags(caption))
    sidecar = sidecar_path(image)
    if not text:
        sidecar.unlink(missing_ok=True)
        return None
    atomic_write_text(sidecar, text + "\n")
    return text
