"""The caption policies of the method, and caption sidecar files.

Style rounds caption trigger + identity tags + what varies, so the style binds to the trigger.
The character round prunes the identity tags, so the identity binds to the trigger.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lorastrap.config import BootstrapSettings
from lorastrap.tags import join_tags, parse_tags

POLICIES = ("style", "character")

# Class tags say what kind of subject it is, not who: kept in character captions (the kohya
# "class token" practice), so the prompt stays in the base model's distribution.
CLASS_TAGS = frozenset({"1girl", "1boy", "1other", "2girls", "2boys", "solo", "girl", "boy"})


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


def caption_policy(settings: BootstrapSettings, kind: str) -> str:
    """The caption policy of a dataset kind: a character round with `character_captions =
    "dropout"` keeps the identity tags (they are dropped at training time instead)."""
    if kind == "character" and settings.character_captions == "dropout":
        return "style"
    return kind


def prompt_policy(settings: BootstrapSettings, kind: str) -> str:
    """How a LoRA of `kind` is prompted: style rounds with trigger + identity tags, as they were
    captioned; the character LoRA by `character_prompt` ("tags": trigger + identity tags,
    "trigger": the trigger alone)."""
    if kind == "character" and settings.character_prompt == "trigger":
        return caption_policy(settings, kind)
    return "style"


def sidecar_path(image_path: Path) -> Path:
    return Path(image_path).with_suffix(".txt")


def read_sidecar(image_path: Path) -> str | None:
    """A caption the person wrote beside an image (`img.png` + `img.txt`) wins over the policy."""
    path = sidecar_path(image_path)
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8", errors="replace").strip()
    return join_tags(parse_tags(text)) if text else None
