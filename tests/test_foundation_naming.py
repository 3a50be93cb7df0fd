"""Names → slugs, trigger words, and Danbooru tag normalisation."""

from __future__ import annotations

import pytest

from lorastrap.dataset.captions import caption_for
from lorastrap.kernel.errors import UserError
from lorastrap.naming import make_trigger, slugify, validate_trigger
from lorastrap.tags import normalise_tag, parse_tags


@pytest.mark.parametrize(("name", "slug"), [
    ("Kitsune", "kitsune"),
    ("  Fox Girl 2 ", "fox-girl-2"),
    ("Éire Ødegård", "eire-degard"),
    ("狐娘 Mika", "mika"),
    ("snake_case-name", "snake_case-name"),
])
def test_slugify(name: str, slug: str) -> None:
    assert slugify(name) == slug


def test_pure_unicode_names_get_a_stable_hashed_slug() -> None:
    assert slugify("狐娘") == slugify("狐娘") != slugify("猫娘")
    assert slugify("狐娘").startswith("c-") and len(slugify("狐娘")) == 10


@pytest.mark.parametrize(("name", "message"), [
    ("", "empty"), ("   ", "empty"), ("a/b", "path separator"), ("..\\x", "path separator"),
    ("..", "path separator"), ("nul\0x", "path separator"), ("CON", "reserved"), ("inbox", "reserved"),
])
def test_bad_names_are_rejected(name: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        slugify(name)


def test_triggers_are_generated_unique_and_validated() -> None:
    first = make_trigger("kitsune", set())
    validate_trigger(first)
    assert first != "kitsune" and first.startswith("ktsn")
    second = make_trigger("kitsune", {first})
    assert second != first and validate_trigger(second) == second
    taken: set[str] = set()
    for _ in range(120):  # past the 90 two-digit suffixes, still unique and valid
        taken.add(validate_trigger(make_trigger("kitsune", taken)))
    assert len(taken) == 120
    assert validate_trigger(" Kitsu21Girl ") == "kitsu21girl"
    for bad in ("ab", "two words", "x" * 41, "dash-ed"):
        with pytest.raises(UserError):
            validate_trigger(bad)


def test_tags_normalised_deduplicated_in_order() -> None:
    assert normalise_tag("  Fox_Ears ") == "fox ears"
    assert parse_tags("1girl, Solo, fox_ears,  fox ears , , Blonde   Hair,solo") == [
        "1girl", "solo", "fox ears", "blonde hair"]
    assert parse_tags(["a, b", "B", "c"]) == ["a", "b", "c"]
    assert parse_tags(" , _ ") == []


def test_caption_policies() -> None:
    identity = ["1girl", "fox ears"]
    assert caption_for("style", "kit21", identity, ["from side"]) == "kit21, 1girl, fox ears, from side"
    assert caption_for("character", "kit21", identity, ["fox ears", "from side", "smile"]) == (
        "kit21, 1girl, from side, smile")  # class tags stay
