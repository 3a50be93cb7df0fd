"""The method's adopted settings as small units: how each LoRA is captioned and prompted, which
final LoRA `status` recommends, and the bounds of the new [bootstrap] settings."""

from __future__ import annotations

import pytest

from lorastrap.config import BootstrapSettings, Config
from lorastrap.dataset.captions import caption_for, caption_policy, prompt_policy
from lorastrap.kernel.errors import UserError
from lorastrap.method.check import recommendation

IDENTITY = ["1girl", "solo", "red hair", "green dress"]


def test_captions_stay_pruned_and_the_character_lora_is_prompted_as_chosen() -> None:
    default = BootstrapSettings()
    assert caption_policy(default, "character") == "character" and caption_policy(default, "style") == "style"
    prompt = caption_for(prompt_policy(default, "character"), "trig", IDENTITY, ["from behind"])
    assert prompt == "trig, 1girl, solo, from behind"  # the trigger alone, like its captions
    tags = BootstrapSettings(character_prompt="tags")
    assert caption_for(prompt_policy(tags, "character"), "trig", IDENTITY, ["from behind"]) == \
        "trig, 1girl, solo, red hair, green dress, from behind"
    alone = BootstrapSettings(character_prompt="trigger")
    dropout = BootstrapSettings(character_captions="dropout", character_prompt="trigger")
    # identity tags stay in the captions (training drops them); the prompt follows the captions
    assert caption_policy(dropout, "character") == "style" == prompt_policy(dropout, "character")
    assert prompt_policy(alone, "style") == "style"


def test_the_check_recommends_the_lora_whose_images_passed_most_a_tie_goes_to_the_character() -> None:
    def lora(i: int, kind: str, mean: float | None) -> dict:
        metrics = {"check": {"mean": mean, "prompt": f"p{i}"}} if mean is not None else {"final_loss": 0.1}
        return {"id": i, "name": f"l{i}", "kind": kind, "round": 2 if kind == "style" else None, "metrics": metrics}

    assert recommendation([lora(1, "style", None), lora(2, "character", None)]) is None
    best = recommendation([lora(1, "style", None), lora(2, "style", 0.8), lora(3, "character", 0.6)])
    assert best["id"] == 2 and best["kind"] == "style" and best["others"] == {"l3": 0.6} and best["prompt"] == "p2"
    assert recommendation([lora(2, "style", 0.6), lora(3, "character", 0.6)])["id"] == 3


@pytest.mark.parametrize("key, value, words", [
    ("candidate_prompt", "words", "candidate_prompt"), ("assist", "clip", "assist"),
    ("character_captions", "none", "character_captions"), ("character_prompt", "x", "character_prompt"),
    ("identity_dropout", 1.0, "identity_dropout"), ("check_images_per_view", 65, "check_images_per_view"),
    ("candidate_weight", 0.0, "candidate_weight"), ("candidate_cfg", 31.0, "candidate_cfg"),
    ("max_candidates_per_round", 3, "max_candidates_per_round"), ("adaptive", "yes", "adaptive"),
    ("candidate_start", "image", "candidate_start"), ("candidate_strength", 1.0, "candidate_strength"),
    ("candidate_strength", 0.2, "candidate_strength"),
])
def test_bad_bootstrap_settings_are_refused_naming_the_key(key: str, value, words: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UserError) as err:
        Config.from_dict({"bootstrap": {key: value}}, "lorastrap.toml")
    assert words in str(err.value) and "\n" not in str(err.value)
