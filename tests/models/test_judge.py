"""The assist's judge: a diffusion classifier on the lab model prefers the asked attributes."""

from __future__ import annotations

import pytest

from lorastrap.models.judge import DiffusionJudge, build_questions, colour_of

VIEWS = ["from front", "from side", "from behind", "full body", "portrait"]


def test_questions_swap_colours_drop_other_tags_and_ask_views_of_their_kind() -> None:
    identity = ["red hair", "cat ears", "green dress"]
    tags = ["trig", "1girl", "solo", *identity, "from side", "flat color"]
    asked, questions = build_questions(tags, identity, "from side", VIEWS)
    assert asked == ", ".join(tags)
    by_name = {q.name: q for q in questions}
    hair = by_name["red hair"].alternatives
    assert "trig, 1girl, solo, green hair, cat ears, green dress, from side, flat color" in hair
    # both colours swapped at once: the binding failure of small text encoders (and of SD 1.5)
    assert "trig, 1girl, solo, green hair, cat ears, red dress, from side, flat color" in hair
    assert by_name["cat ears"].alternatives == ("trig, 1girl, solo, red hair, green dress, from side, flat color",)
    views = by_name["view"].alternatives
    assert len(views) == 2 and all("from side" not in a for a in views)
    assert not any("portrait" in a for a in views)  # framing is not a direction
    assert colour_of("blonde hair") == ("blonde", "hair") and colour_of("fox ears") is None
    # a palette adds colours; blonde is the hair word for yellow
    _, qs = build_questions(["yellow dress", "blue hair"], ["yellow dress", "blue hair"], None, VIEWS,
                            palette=["purple"])
    dress = {q.name: q for q in qs}["yellow dress"].alternatives
    assert "purple dress, blue hair" in dress and "blue dress, blonde hair" in dress


@pytest.fixture(scope="module")
def lab_pipe():  # type: ignore[no-untyped-def]
    from lorastrap.demo import lab_model_available

    if not lab_model_available():
        pytest.skip("the lab model is not installed")
    from lorastrap.models.generation import Generator
    from lorastrap.lab import lab_model_dir
    from lorastrap.models.threads import use_small_model_threads

    use_small_model_threads()
    return Generator(lab_model_dir()).pipe


def test_a_drawing_with_the_asked_attributes_outranks_one_with_a_swapped_colour(lab_pipe) -> None:  # type: ignore[no-untyped-def]
    from lorastrap.lab.world import HAIR, HELD_OUT, LEADING_TAGS, Character, draw

    judge = DiffusionJudge(lab_pipe)
    for c in HELD_OUT[1:3]:  # red-cat-notail-green, green-no-tail-purple
        other = next(h for h in HAIR if h != c.hair and h.split()[0] not in c.dress)
        wrong_hair = Character(other, c.ears, c.tail, c.dress)
        tags = [*LEADING_TAGS, *c.tags(), "from side", "flat color"]
        palette = [h.split()[0] for h in HAIR]  # the lab's hair colours as alternatives
        question = build_questions(tags, c.tags(), "from side", VIEWS[:3], palette)
        right, wrong, behind = judge.judge([draw(c, "from side", "flat color", 3),
                                            draw(wrong_hair, "from side", "flat color", 3),
                                            draw(c, "from behind", "flat color", 3)], [question] * 3)
        assert right.score > wrong.score, (c.slug, right.margins, wrong.margins)
        assert c.hair in wrong.failed and wrong.margins[c.hair] < right.margins[c.hair]
        assert behind.margins["view"] < 0 < right.margins["view"]  # the view is judged the same way
        assert not behind.passed
