"""Registering image bytes: blob store + `images` row, deduplicated by content hash."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image as PILImage
from sqlalchemy import select
from sqlalchemy.orm import Session

from lorastrap.kernel.journal import FileJournal
from registry.blobs import BlobStore, sha256_bytes
from registry.models import Image

ORIGINS = ("seed", "crop", "generated", "edited", "imported")


def find_image(s: Session, sha: str) -> Image | None:
    return s.scalars(select(Image).where(Image.sha256 == sha)).first()


def store_image(
    s: Session, blobs: BlobStore, data: bytes, *, origin: str, character_id: int | None,
    journal: FileJournal | None = None, parent_id: int | None = None, file_name: str | None = None,
    provenance: dict[str, Any] | None = None, ext: str = ".png",
) -> Image:
    """The row for these bytes: an existing one (same sha256) or a new blob + row."""
    if origin not in ORIGINS:
        raise ValueError(f"unknown image origin {origin!r}")
    existing = find_image(s, sha256_bytes(data))
    if existing is not None:
        return existing
    with PILImage.open(io.BytesIO(data)) as im:
        width, height = im.size
    sha, rel = blobs.put_bytes(data, ext, journal)
    row = Image(
        sha256=sha, character_id=character_id, width=width, height=height, size_bytes=len(data),
        blob_path=rel, origin=origin, parent_id=parent_id, file_name=file_name,
        provenance=provenance or {},
    )
    s.add(row)
    s.flush()
    return row
