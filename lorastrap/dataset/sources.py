"""Where a dataset version's items come from: the seed set (dataset v1's images, with the tags
that vary in each) and an image row's view (from its provenance).

The seed set stays in every version: the source is never replaced by generated images.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from lorastrap.dataset.versions import get_version, version_items
from lorastrap.kernel.errors import UserError
from lorastrap.tags import identity_tags, parse_tags
from registry.models import Character, Image


def view_tags(image: Image) -> list[str]:
    """What varies in a curated image, as tags: the view it was generated for (+ extra tags)."""
    prov = image.provenance or {}
    tags = list(prov.get("variable_tags") or [])
    if prov.get("view") and prov["view"] not in tags and prov["view"] != "front":
        tags.insert(0, prov["view"])
    return tags


def view_of(image: Image) -> str:
    prov = image.provenance or {}
    return prov.get("view") or "front"


def source_items(s: Session, character: Character) -> list[tuple[Image, list[str]]]:
    """The seed set (dataset v1's images) with the tags that vary in each (framing of a crop).

    These stay in every version: the source is never replaced by generated images.
    """
    fixed = {character.trigger, *identity_tags(character)}
    try:
        first = get_version(s, character, 1)
    except UserError:
        return []
    return [(it.image, [t for t in parse_tags(it.caption) if t not in fixed])
            for it in version_items(s, first)]


def carried_seed_tags(s: Session, character: Character, views: Sequence[str]) -> list[str]:
    """The tags every seed item shares besides its view (the art style, say): candidates are
    prompted and captioned with them, so new views come in the seed's style."""
    items = source_items(s, character)
    if not items:
        return []
    shared = set(items[0][1]).intersection(*(set(tags) for _, tags in items[1:]))
    return [t for t in items[0][1] if t in shared and t not in views]


def seed_images(s: Session, character: Character) -> list[Image]:
    return [img for img, _ in source_items(s, character)]
