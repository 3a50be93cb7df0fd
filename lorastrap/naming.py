"""Character names → slugs and trigger words."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Container

from lorastrap.kernel.errors import UserError

RESERVED = frozenset(
    {"con", "prn", "aux", "nul", "com1", "lpt1", "inbox", "all", "new", "list", "show", "help", "none"}
)
_SLUG_BAD = re.compile(r"[^a-z0-9_-]+")
_TRIGGER_OK = re.compile(r"^[a-z0-9_]{3,40}$")
NAME_MAX = 200  # characters.display_name is String(200)


def slugify(name: str) -> str:
    """A folder-safe slug. Unicode names are fine (transliterated, else hashed)."""
    if not name or not name.strip():
        raise UserError("the character name is empty; give a name like `kitsune`")
    if any(sep in name for sep in ("/", "\\", "\0")) or name.strip() in (".", ".."):
        raise UserError(f"character name {name!r} contains a path separator; use a plain name")
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    slug = _SLUG_BAD.sub("-", ascii_name.strip()).strip("-_")[:48]
    if not slug:
        slug = "c-" + hashlib.sha256(name.encode()).hexdigest()[:8]
    if slug in RESERVED:
        raise UserError(f"character name {name!r} is reserved; choose another name")
    return slug


def control_character(text: str) -> str | None:
    """The first line break or other control/format character in `text`, or None."""
    return next((ch for ch in text if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")), None)


def validate_display_name(name: str) -> str:
    """The name as shown in tables: one line, at most NAME_MAX characters (the column's size)."""
    name = name.strip()
    bad = control_character(name)
    if bad is not None:
        raise UserError(f"character name {name!r} contains the control character {bad!r}; use one line of text")
    if len(name) > NAME_MAX:
        raise UserError(f"character name is {len(name)} characters long; use at most {NAME_MAX}")
    return name


def validate_trigger(trigger: str) -> str:
    trigger = trigger.strip().lower()
    if not _TRIGGER_OK.match(trigger):
        raise UserError(
            f"trigger {trigger!r} must be 3-40 characters of a-z, 0-9 or _ (one token-like word)"
        )
    return trigger


def make_trigger(slug: str, taken: Container[str]) -> str:
    """A rare-token trigger from the name: consonant skeleton + digits (`kitsune` → `ktsn53`).

    Rare letter/digit mixes do not collide with words the text encoder already knows.
    """
    letters = re.sub(r"[^a-z]", "", slug) or "chr"
    skeleton = letters[0] + re.sub(r"[aeiou]", "", letters[1:])
    skeleton = (skeleton if len(skeleton) >= 3 else letters)[:6]
    if len(skeleton) < 3:
        skeleton = (skeleton + "xq")[:3]
    n = int(hashlib.sha256(slug.encode()).hexdigest(), 16) % 90 + 10
    for bump in range(1000):
        trigger = f"{skeleton}{(n + bump) % 90 + 10}" if bump < 90 else f"{skeleton}{n}x{bump}"
        if trigger not in taken:
            return trigger
    raise UserError(f"could not find a free trigger word for {slug!r}; pass --trigger")
