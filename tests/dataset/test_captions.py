"""The caption policies: style rounds keep the identity tags, the character round prunes them (but
not the class tags), the trigger always leads, sidecar captions win and are read normalised."""

from __future__ import annotations

from pathlib import Path

import pytest

from lorastrap.dataset.captions import CLASS_TAGS, POLICIES, caption_for, read_sidecar, sidecar_path
from lorastrap.dataset.kohya import class_token

IDENTITY = ["1girl", "solo", "fox ears", "blonde hair"]


def test_style_policy_captions_trigger_identity_and_what_varies() -> None:
    assert caption_for("style", "kit21", IDENTITY, ["from behind", "flat color"]) == (
        "kit21, 1girl, solo, fox ears, blonde hair, from behind, flat color")


def test_character_policy_prunes_identity_but_keeps_class_tags_and_what_varies() -> None:
    caption = caption_for("character", "kit21", IDENTITY, ["from behind", "fox ears", "smile"])
    assert caption == "kit21, 1girl, solo, from behind, smile"  # fox ears is identity: pruned even as "variable"
    assert {"1girl", "solo"} <= CLASS_TAGS and "fox ears" not in CLASS_TAGS


@pytest.mark.parametrize("policy", POLICIES)
def test_the_trigger_leads_and_tags_are_normalised_and_unique(policy: str) -> None:
    caption = caption_for(policy, "kit21", ["1girl", "Fox_Ears"], ["from_side", "from side", "kit21"])
    tags = caption.split(", ")
    assert tags[0] == "kit21" and len(tags) == len(set(tags)) and "from side" in tags
    assert all(t == t.lower() and "_" not in t for t in tags[1:])


def test_an_unknown_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown caption policy"):
        caption_for("pose", "kit21", IDENTITY)


def test_a_sidecar_caption_wins_and_is_read_normalised(tmp_path: Path) -> None:
    image = tmp_path / "kept.png"
    assert sidecar_path(image) == tmp_path / "kept.txt" and read_sidecar(image) is None
    sidecar_path(image).write_text("Kit21,  Fox_Ears\nsmile, smile\n", encoding="utf-8")
    assert read_sidecar(image) == "kit21, fox ears, smile"
    sidecar_path(image).write_text("   \n", encoding="utf-8")
    assert read_sidecar(image) is None  # an empty file is no caption


def test_the_kohya_class_token_comes_from_the_class_tags() -> None:
    assert class_token(IDENTITY) == "1girl"
    assert class_token(["solo", "fox ears"]) == "character"  # "solo" is no class word
