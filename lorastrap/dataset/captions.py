"""Danbooru-style tags and the caption policies of the method.

Style rounds caption trigger + identity tags + what varies, so the style binds to the trigger.
The character round prunes the identity tags, so the identity binds to the trigger.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

POLICIES = ("style", "character")
_TAG_SEPARATORS = re.compile(r"[,\r\n\v\f\x85\u2028\u2029]")

# Class tags say what kind of subject it is, not who: kept in character captions (the kohya
# "class token" practice), so the prompt stays in the base model's distribution.
CLASS_TAGS = frozenset({"1girl", "1boy", "1other", "2girls", "2boys", "solo", "girl", "boy"})


def normalise_tag(tag: str) -> str:
    """Lowercase, underscores to spaces, whitespace folded (`Fox_Ears ` → `fox ears`)."""
    return " ".join(tag.replace("_", " ").strip().lower().split())


def _pieces(text: str) -> list[str]:
    # A line break separates tags like a comma: "fox ears\nblue eyes" typed into a shell (or a
    # caption file of one tag per line) is two tags, not the one tag "fox ears blue eyes".
    return _TAG_SEPARATORS.split(text)


def parse_tags(text: str | Iterable[str]) -> list[str]:
    """Comma- or line-separated (or listed) tags, normalised, deduplicated, in their first order."""
    raw = _pieces(text) if isinstance(text, str) else [p for t in text for p in _pieces(t)]
    seen: dict[str, None] = {}
    for piece in raw:
        tag = normalise_tag(piece)
        if tag:
            seen.setdefault(tag, None)
    return list(seen)


def join_tags(tags: Iterable[str]) -> str:
    return ", ".join(tags)


def caption_for(
    policy: str, trigger: str, identity: Sequence[str], variable: Sequence[str] = ()
) -> str:
    """The caption a policy gives one image. The trigger always comes first."""
    if policy == "style":
        tags = [trigger, *identity, *variable]
    elif policy == "character":
        pruned = set(identity) - CLASS_TAGS
        tags = [trigger, *(t for t in identity if t in CLASS_TAGS), *(t for t in variable if t not in pruned)]
    else:
        raise ValueError(f"unknown caption policy {policy!r}")
    return join_tags(parse_tags(tags))


def sidecar_path(image_path: Path) -> Path:
    return Path(image_path).with_suffix(".txt")


def read_sidecar(image_path: Path) -> str | None:
    """A caption the person wrote beside an image (`img.png` + `img.txt`) wins over the policy."""
    path = sidecar_path(image_path)
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8", errors="replace").strip()
    return join_tags(parse_tags(text)) if text else None


def tag_frequency(captions: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for caption in captions:
        for tag in parse_tags(caption):
            counts[tag] = counts.get(tag, 0) + 1
    return counts
