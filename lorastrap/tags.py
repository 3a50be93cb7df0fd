"""Danbooru-style tags: their text form (parse, normalise, join), and a character's tag set —
identity tags (what it always has), variable and negative tags."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from lorastrap.kernel.errors import UserError
from registry.models import Character, CharacterTag, Tag

ROLES = ("identity", "variable", "negative")
_TAG_SEPARATORS = re.compile(r"[,\r\n\v\f\x85\u2028\u2029]")


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


def _tag_row(s: Session, text: str) -> Tag:
    tag = s.scalars(select(Tag).where(Tag.text == text)).first()
    if tag is None:
        tag = Tag(text=text)
        s.add(tag)
        s.flush()
    return tag


def tags_of(character: Character, role: str) -> list[str]:
    return [ct.tag.text for ct in sorted(character.tags, key=lambda t: t.position) if ct.role == role]


def identity_tags(character: Character) -> list[str]:
    return tags_of(character, "identity")


def set_tags(s: Session, character: Character, tags: Sequence[str], role: str = "identity") -> list[str]:
    """Replace the tags of one role, keeping the given order."""
    if role not in ROLES:
        raise UserError(f"unknown tag role {role!r}; use one of {', '.join(ROLES)}")
    wanted = parse_tags(tags)
    for ct in [ct for ct in character.tags if ct.role == role]:
        character.tags.remove(ct)
    s.flush()
    for position, text in enumerate(wanted):
        character.tags.append(CharacterTag(tag=_tag_row(s, text), role=role, position=position))
    s.flush()
    return wanted


def add_tags(s: Session, character: Character, tags: Sequence[str], role: str = "identity") -> list[str]:
    current = tags_of(character, role)
    return set_tags(s, character, current + [t for t in parse_tags(tags) if t not in current], role)


def remove_tags(s: Session, character: Character, tags: Sequence[str], role: str = "identity") -> list[str]:
    current = tags_of(character, role)
    drop = set(parse_tags(tags))
    missing = drop - set(current)
    if missing:
        raise UserError(
            f"{character.slug} has no {role} tag(s) {', '.join(sorted(missing))}; see `lorastrap tags show {character.slug}`"
        )
    return set_tags(s, character, [t for t in current if t not in drop], role)


def check_trigger_not_a_tag(trigger: str, tags: Sequence[str]) -> None:
    """A trigger equal to a tag would be listed once in every caption: the tag would vanish."""
    if trigger in tags or trigger.replace("_", " ") in tags:
        raise UserError(f"trigger {trigger!r} is also one of the tags, so captions would list it once and "
                        "the tag would vanish; choose another --trigger (a rare word like the default)")
