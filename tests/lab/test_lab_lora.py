"""End to end on the lab model: a short character LoRA trained on front-view seed images of a
held-out character makes the character appear from a view it never saw."""

from __future__ import annotations

import pytest

from lorastrap.lab import held_out_characters, seed_images
from lorastrap.lab.arms import trigger_prompt
from lorastrap.lab.loras import LabGenerator, LoraRecipe, seed_lora
from lorastrap.lab.scoring import score


@pytest.fixture
def one_thread():
    """The lab model is small: one thread is as fast as two, and on a busy 2-core machine two
    threads per process oversubscribe the cores (several times slower)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
def test_seed_lora_carries_a_new_character_to_unseen_views(tmp_path, one_thread):
    character = held_out_characters()[0]  # blonde-fox-tail-blue
    lora = seed_lora(character, seed_images(character, 4), "flat color", tmp_path,
                     LoraRecipe(steps=60, learning_rate=2e-3, seed=1))
    gen = LabGenerator(device="cpu", steps=10)
    gen.add_lora(lora, "char")
    unseen = ["from side", "from behind"]
    prompts = [trigger_prompt(character, v, "flat color") for v in unseen for _ in range(4)]
    truths = [{**character.attrs(), "view": v} for v in unseen for _ in range(4)]
    seeds = list(range(len(prompts)))
    baseline = score(gen.images(prompts, seeds, {}), truths)
    with_lora = score(gen.images(prompts, seeds, {"char": 1.0}), truths)
    assert baseline["identity"] <= 0.25, baseline  # the trigger means nothing to the base model
    assert with_lora["identity"] >= baseline["identity"] + 0.5, (baseline, with_lora)  # measured 1.0
    assert with_lora["all"] >= baseline["all"] + 0.25, (baseline, with_lora)
