"""Seed tags: what the seed images show that is not the character (their view, their style).

Without them the character round's trigger absorbs the seed's view ("the character is seen from
the front") and candidates for other views are drawn in whatever style the base model likes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from lorastrap.characters import add_character
from lorastrap.dataset.kohya import export_dataset
from lorastrap.dataset.sources import carried_seed_tags
from lorastrap.kernel.errors import UserError
from lorastrap.method.curation import preview_captions
from lorastrap.method.generate import generate_candidates
from lorastrap.method.step import character_status
from lorastrap.queries import get_character
from lorastrap.tags import parse_tags
from lorastrap.workspace import CONFIG_NAME, load_workspace

VIEWS = ["from front", "from side", "from behind"]


def _workspace(ws, model: Path):  # type: ignore[no-untyped-def]
    cfg = ws.root / CONFIG_NAME
    text = cfg.read_text().replace('base_model = "tiny"', f'base_model = "{model}"')
    text = text.replace("thresholds = [4, 16, 40]", "thresholds = [4, 6]")
    text += '\n[training]\nresolution = 64\n'
    cfg.write_text(text.replace(
        'views = ["front", "from side", "from behind", "from above", "from below",\n'
        '         "three-quarter view", "full body", "upper body", "portrait"]',
        "views = " + json.dumps(VIEWS)))
    return load_workspace(ws.root)


def test_seed_tags_stay_in_both_policies_and_count_as_the_seed_view(workspace, tiny_model_dir, seed_images) -> None:  # type: ignore[no-untyped-def]
    ws = _workspace(workspace, tiny_model_dir)
    added = add_character(ws, "Mika", seed_images, "1girl, solo, cat ears",
                          seed_tags="From_Side, flat color")
    out = ws.root / "v1"
    export_dataset(ws, added.slug, "v1", out)
    captions = [parse_tags(p.read_text()) for p in out.rglob("*.txt")]
    assert len(captions) == len(seed_images)
    assert all(c[:1] == [added.trigger] and {"from side", "flat color", "cat ears"} <= set(c) for c in captions)

    # the character policy prunes "cat ears" but keeps what the seed shows
    rows = preview_captions(ws, added.slug, kind="character")
    for row in rows:
        tags = parse_tags(row["caption"])
        assert "cat ears" not in tags and {"from side", "flat color", "1girl"} <= set(tags)

    # the seeds count for the view their tags name, not for the first configured view
    coverage = character_status(ws, added.slug)[0].view_coverage
    assert coverage["from side"] == len(seed_images) and coverage["from front"] == 0

    with ws.open_registry() as reg, reg.session(write=False) as s:
        assert carried_seed_tags(s, get_character(s, added.slug), VIEWS) == ["flat color"]


def test_candidates_are_prompted_and_captioned_with_the_seed_style(workspace, tiny_model_dir, seed_images) -> None:  # type: ignore[no-untyped-def]
    ws = _workspace(workspace, tiny_model_dir)
    added = add_character(ws, "Mika", seed_images, "1girl, cat ears", seed_tags="from front, pixel art")
    paths = generate_candidates(ws, added.slug, views=["from behind"], per_view=1, steps=1, progress=False)
    prov = json.loads(Image.open(paths[0]).text["lorastrap"])
    prompt = parse_tags(prov["prompt"])
    assert "pixel art" in prompt and "from behind" in prompt and "from front" not in prompt
    assert prov["variable_tags"] == ["pixel art"]

    # kept into curated/, its caption carries the style beside its own view
    target = ws.curated_dir(added.slug) / paths[0].name
    target.write_bytes(paths[0].read_bytes())
    rows = {r["image"]: parse_tags(r["caption"]) for r in preview_captions(ws, added.slug)}
    caption = next(tags for name, tags in rows.items() if paths[0].stem in name)
    assert {"from behind", "pixel art", "cat ears"} <= set(caption)


def test_a_tag_cannot_be_both_identity_and_seed(workspace, seed_images, snapshot) -> None:  # type: ignore[no-untyped-def]
    before = snapshot(workspace.root)
    with pytest.raises(UserError, match="both an identity tag and a seed tag"):
        add_character(workspace, "Mika", seed_images, "1girl, cat ears", seed_tags="cat ears, from front")
    assert snapshot(workspace.root) == before
