"""The model-free reader: its accuracy on true drawings is the ceiling of every lab measurement."""

from __future__ import annotations

import random

from PIL import Image

from lorastrap.lab.reader import read, reader_identity_score, style_score
from lorastrap.lab.scoring import score
from lorastrap.lab.world import HELD_OUT, STYLES, TRAIN_STYLES, VIEWS, Character, all_characters, draw

FLOOR_ALL = 0.9  # all-attribute accuracy (hair, ears, tail, dress, view) on true drawings


def _drawings(n: int, styles, seed: int):
    rng = random.Random(seed)
    chars = all_characters()
    picks = [(rng.choice(chars), rng.choice(VIEWS), rng.choice(styles)) for _ in range(n)]
    images = [draw(c, v, s, seed=i) for i, (c, v, s) in enumerate(picks)]
    return images, [{**c.attrs(), "view": v, "style": s} for c, v, s in picks]


def test_reader_accuracy_on_true_drawings_is_above_the_floor():
    images, truths = _drawings(250, STYLES, seed=11)
    result = score(images, truths)
    assert result["all"] >= FLOOR_ALL, result
    assert min(result["per_attr"].values()) >= 0.9, result
    trained_images, trained_truths = _drawings(150, TRAIN_STYLES, seed=12)
    assert score(trained_images, trained_truths)["all"] >= 0.95
    styles_right = sum(read(im).attrs["style"] == t["style"] for im, t in zip(images, truths))
    assert styles_right / len(images) >= 0.95


def test_identity_score_counts_matching_attributes():
    c = HELD_OUT[0]
    img = draw(c, "from side", "thick outlines", seed=2)
    assert reader_identity_score(img, c) == 1.0
    assert reader_identity_score(img, c.tags()) == 1.0
    assert reader_identity_score(img, ", ".join(["1girl", "solo", *c.tags()])) == 1.0
    other = Character("red hair", c.ears, c.tail, c.dress)
    assert reader_identity_score(img, other) == 0.75
    assert reader_identity_score(img, {"hair": c.hair}) == 1.0


def test_style_scores_separate_styles():
    c = HELD_OUT[3]
    flat = draw(c, "from front", "flat color", seed=1)
    assert style_score(draw(c, "from front", "pixel art", seed=1), "pixel art") > style_score(flat, "pixel art") + 0.5
    assert style_score(draw(c, "from front", "thick outlines", seed=1), "thick outlines") > 0.5
    assert style_score(flat, "thick outlines") < 0.3


def test_blank_image_is_unreadable_not_an_error():
    reading = read(Image.new("RGB", (64, 64), "white"))
    assert set(reading.attrs.values()) == {"unreadable"}
    assert reader_identity_score(Image.new("RGB", (128, 128), "white"), HELD_OUT[0]) == 0.0
