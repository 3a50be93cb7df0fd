"""A character's tag set: identity tags (what it always has), variable and negative tags."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from lorastrap.dataset.captions import parse_tags
from lorastrap.kernel.errors import UserError
from registry.models import Character, CharacterTag, Tag

ROLES = ("identity", "variable", "negative")


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


def check_tag_roles(s: Session, character: Character, tags: Sequence[str], role: str) -> None:
    """A tag has one meaning: not two roles, not the trigger, and an identity tag is not a seed tag
    (what the seed images show — their view, their style — stays in every caption)."""
    from lorastrap.method.curation import source_items

    wanted = parse_tags(tags)
    check_trigger_not_a_tag(character.trigger, wanted)
    for other in ROLES:
        if other != role and (both := [t for t in wanted if t in tags_of(character, other)]):
            raise UserError(f"{', '.join(both)} is already {'an' if other[0] in 'aeiou' else 'a'} {other} tag of "
                            f"{character.slug}; remove it "
                            f"there first (`lorastrap tags remove {character.slug} \"{both[0]}\" --role {other}`)")
    if role == "identity":
        seed = {t for _, shown in source_items(s, character) for t in shown}
        if both := [t for t in wanted if t in seed]:
            raise UserError(f"{', '.join(both)} is a seed tag of {character.slug} (what the seed images show, "
                            "kept in every caption), not who the character is; it cannot be an identity tag")


def edit_tags(ws, name: str, op: str, tags: Sequence[str] = (), role: str = "identity") -> list[str]:  # type: ignore[no-untyped-def]
    """`tags show|add|remove|set` on a workspace; returns the tags of that role afterwards."""
    from lorastrap.characters import get_character

    with ws.open_registry() as reg, reg.session() as s:
        character = get_character(s, name)
        if op == "show":
            return tags_of(character, role)
        if op != "remove" and not parse_tags(tags):
            raise UserError("no tags given; pass them comma-separated, e.g. \"green eyes, long hair\"")
        if op in ("add", "set"):
            check_tag_roles(s, character, tags, role)
        fn = {"add": add_tags, "remove": remove_tags, "set": set_tags}[op]
        return fn(s, character, tags, role)
