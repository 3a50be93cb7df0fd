"""The lab world: deterministic drawings, held-out characters, Danbooru captions, tokenization."""

from __future__ import annotations

import numpy as np
import pytest

from lorastrap.kernel.errors import UserError
from lorastrap.lab import seed_images
from lorastrap.lab.dataset import CaptionTokens, draw_set
from lorastrap.lab.world import (
    DRESS,
    EARS,
    HAIR,
    HELD_OUT,
    STYLES,
    TAIL,
    TRAIN_STYLES,
    VIEWS,
    Character,
    all_characters,
    caption,
    character_from_slug,
    draw,
    parse_attrs,
    training_characters,
    write_drawings,
)


def test_drawing_is_deterministic_and_seed_dependent():
    c = HELD_OUT[0]
    for view in VIEWS:
        for style in STYLES:
            a = np.asarray(draw(c, view, style, seed=3))
            assert a.shape == (64, 64, 3)
            assert np.array_equal(a, np.asarray(draw(c, view, style, seed=3)))
    assert not np.array_equal(np.asarray(draw(c, seed=1)), np.asarray(draw(c, seed=2)))


def test_dataset_is_the_same_whatever_the_number_of_workers():
    one = draw_set(40, seed=5, workers=1)
    two = draw_set(40, seed=5, workers=2)
    assert np.array_equal(one.pixels, two.pixels)
    assert [s.caption() for s in one.samples] == [s.caption() for s in two.samples]
    assert all(s.style in TRAIN_STYLES and s.character not in HELD_OUT for s in one.samples)


def test_held_out_characters_are_new_combinations_of_known_values():
    trained = training_characters()
    assert len(trained) + len(HELD_OUT) == len(all_characters()) == 120
    assert not set(HELD_OUT) & set(trained)
    for attr, values in (("hair", HAIR), ("ears", EARS), ("tail", TAIL), ("dress", DRESS)):
        seen = {getattr(c, attr) for c in trained}
        assert seen == set(values), attr


def test_captions_are_danbooru_tags_and_parse_back():
    c = Character("red hair", "no ears", "tail", "green dress")
    text = caption(c, "from behind", "pastel colors")
    assert text == "1girl, solo, red hair, tail, green dress, from behind, pastel colors"
    assert parse_attrs(text) == {**c.attrs(), "view": "from behind", "style": "pastel colors"}
    with pytest.raises(ValueError):
        Character("red hair", "no ears", "tail", "red dress")  # hair and dress never share a colour


def test_slugs_round_trip_and_bad_slugs_are_user_errors():
    for c in all_characters():
        assert character_from_slug(c.slug) == c
    with pytest.raises(UserError):
        character_from_slug("pink-fox-tail-blue")


def test_seed_images_are_front_views(tmp_path):
    from lorastrap.lab.reader import read

    images = seed_images(HELD_OUT[1], n=3)
    assert len({im.tobytes() for im in images}) == 3
    assert all(read(im).attrs["view"] == "from front" for im in images)
    paths = write_drawings(HELD_OUT[1].slug, ["from side"], "flat color", 2, tmp_path)
    assert [p.name for p in paths] == [f"{HELD_OUT[1].slug}_from-side_00.png", f"{HELD_OUT[1].slug}_from-side_01.png"]
    assert paths[0].with_suffix(".txt").read_text().strip() == caption(HELD_OUT[1], "from side", "flat color")


def test_caption_tokens_match_the_tokenizer(tmp_path):
    from lorastrap.lab.model_config import LAB_WORDS, MAX_TOKENS, build_tokenizer

    tok = build_tokenizer(tmp_path)
    for word in LAB_WORDS:  # every tag word is one token
        assert len(tok(word, add_special_tokens=False).input_ids) == (2 if word == "1girl" else 1), word
    pieces = CaptionTokens(tok, MAX_TOKENS)
    for s in draw_set(12, seed=1, workers=1).samples:
        expected = tok(s.caption(), padding="max_length", max_length=MAX_TOKENS, truncation=True).input_ids
        assert pieces.plain(s.caption()) == expected
