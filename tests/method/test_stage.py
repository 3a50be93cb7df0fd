"""The stage machine on its own: thresholds, the next step, readiness and the caption policy of
the next dataset version, for each stage and round (real registry, no model)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import small_method
from PIL import Image

from lorastrap.characters import add_character
from lorastrap.method.stage import compute_status, next_threshold, style_rounds, training_kind
from lorastrap.queries import get_character
from lorastrap.workspace import load_workspace

IDENTITY = "1girl, solo, fox ears, blonde hair"


@pytest.fixture
def kit(workspace, seed_image: Path):  # type: ignore[no-untyped-def]
    """Thresholds 4 → 6 → 8 (two style rounds, then the character); one seed → 4 crops."""
    small_method(workspace.root)
    ws = load_workspace(workspace.root)
    slug = add_character(ws, "Kitsune", [seed_image], IDENTITY).slug
    return ws, slug


def _at(ws, slug: str, stage: str, round_no: int, curated: int = 0):  # type: ignore[no-untyped-def]
    """The status with the character at `stage`/`round_no` and `curated` images in curated/."""
    folder = ws.curated_dir(slug)
    for i in range(curated):
        Image.new("RGB", (64, 64), (i * 20 % 255, 80, 120)).save(folder / f"kept-{i}.png")
    with ws.session() as s:
        character = get_character(s, slug)
        character.stage, character.round = stage, round_no
        s.flush()
        return compute_status(ws, s, character), training_kind(ws, s, character), next_threshold(ws, character)


def test_thresholds_by_round(kit) -> None:  # type: ignore[no-untyped-def]
    ws, slug = kit
    assert style_rounds(ws) == 2  # one style round per threshold but the last
    thresholds = [_at(ws, slug, "seeded", r)[2] for r in range(5)]
    assert thresholds == [4, 6, 8, 8, 8]  # past the last round the last threshold holds


def test_seeded_with_enough_seed_images_trains_style_round_1(kit) -> None:  # type: ignore[no-untyped-def]
    ws, slug = kit
    status, kind, _ = _at(ws, slug, "seeded", 0)
    assert (status.seed_count, status.curated_count, status.threshold) == (4, 0, 4)
    assert status.ready and status.next_step == "train style round 1" and kind == "style"
    assert status.next_command == f"lorastrap bootstrap {slug}"


def test_candidates_below_the_threshold_are_not_ready_and_say_how_many_are_missing(kit) -> None:  # type: ignore[no-untyped-def]
    ws, slug = kit
    status, _, _ = _at(ws, slug, "candidates", 1, curated=1)
    assert (status.total, status.threshold, status.ready) == (5, 6, False)
    assert status.reason.startswith("5 of 6 images (seed 4 + curated 1)")
    assert "--auto-curate 1" in status.next_command and "lorastrap curate" in status.next_command
    status, kind, _ = _at(ws, slug, "candidates", 1, curated=2)  # one more: exactly the threshold
    assert status.ready and status.next_step == "train style round 2" and kind == "style"


def test_after_the_style_rounds_the_character_round_needs_the_last_threshold(kit) -> None:  # type: ignore[no-untyped-def]
    ws, slug = kit
    status, kind, _ = _at(ws, slug, "candidates", 2, curated=2)
    assert status.next_step == "train the character LoRA" and status.threshold == 8
    assert not status.ready and kind == "style"  # 6 of 8: a retrain stays a style version
    status, kind, _ = _at(ws, slug, "candidates", 2, curated=4)
    assert status.ready and kind == "character"  # identity tags pruned from now on


def test_generating_and_finished_stages(kit) -> None:  # type: ignore[no-untyped-def]
    ws, slug = kit
    status, _, _ = _at(ws, slug, "style_trained", 1)
    assert status.ready and status.next_step == "generate candidates for round 1" and status.threshold is None
    status, _, _ = _at(ws, slug, "character_trained", 2)
    assert status.next_step == "done: character LoRA trained"
    assert status.next_command.startswith(f"lorastrap export sprites {slug}")
