"""Registry look-ups several packages need, each written once: a character by name, a LoRA by id,
a character's ready LoRAs (the newest one, or all in training order) and all its LoRAs."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from lorastrap.kernel.errors import NotFound
from lorastrap.naming import slugify
from registry.models import Character, Lora

# The kinds of LoRA the method trains for a character (external and compat LoRAs are styles).
METHOD_KINDS = ("style", "character")


def get_character(s: Session, name_or_slug: str) -> Character:
    slug = slugify(name_or_slug)
    character = s.scalars(select(Character).where(Character.slug == slug)).first()
    if character is None:
        raise NotFound(f"no character {name_or_slug!r}; see `lorastrap character list`")
    return character


def get_lora(s: Session, lora_id: int) -> Lora:
    row = s.get(Lora, lora_id)
    if row is None:
        raise NotFound(f"no LoRA #{lora_id}; see `lorastrap lineage <character>`")
    return row


def _ready(character: Character, kinds: Sequence[str]):  # type: ignore[no-untyped-def]
    return select(Lora).where(Lora.character_id == character.id, Lora.status == "ready",
                              Lora.kind.in_(tuple(kinds)))


def newest_lora(s: Session, character: Character, kinds: Sequence[str] = METHOD_KINDS) -> Lora | None:
    """The character's newest ready LoRA of one of `kinds` (None before the first is trained)."""
    return s.scalars(_ready(character, kinds).order_by(Lora.id.desc())).first()


def ready_loras(s: Session, character: Character, kinds: Sequence[str] = METHOD_KINDS) -> list[Lora]:
    """The character's ready LoRAs of `kinds`, in training order."""
    return list(s.scalars(_ready(character, kinds).order_by(Lora.id)))


def character_loras(s: Session, character: Character) -> list[Lora]:
    """Every LoRA row of the character, whatever its kind or status, in training order."""
    return list(s.scalars(select(Lora).where(Lora.character_id == character.id).order_by(Lora.id)))
