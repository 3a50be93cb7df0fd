"""Training config, presets and TOML; buckets; caption handling (pure, no model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lorastrap.kernel.errors import UserError
from lorastrap.training.buckets import bucket_step_for, fit_to_bucket, make_buckets, nearest_bucket
from lorastrap.training.captions import caption_variants, tag_frequency
from lorastrap.training.config import TrainConfig
from lorastrap.training.schedule import BatchSchedule, lr_factor


def test_presets_toml_and_overrides(tmp_path: Path) -> None:
    character = TrainConfig.from_preset("character")
    assert character.flip is False and character.alpha == 16.0
    toml = tmp_path / "train.toml"
    toml.write_text('[train]\npreset = "character"\nrank = 8\nlearning_rate = 2e-4\n'
                    'target_modules = ["to_q", "to_v"]\n')
    cfg = TrainConfig.from_toml(toml, max_train_steps=50)
    assert (cfg.preset, cfg.rank, cfg.learning_rate, cfg.max_train_steps) == ("character", 8, 2e-4, 50)
    assert cfg.target_modules == ("to_q", "to_v") and cfg.caption_dropout == 0.1
    assert TrainConfig(**cfg.to_dict()) == cfg
    toml.write_text("rnak = 8\n")
    with pytest.raises(UserError, match="rnak"):
        TrainConfig.from_toml(toml)
    toml.write_text("rank = [\n")
    with pytest.raises(UserError, match="not valid TOML"):
        TrainConfig.from_toml(toml)
    with pytest.raises(UserError, match="mixed_precision"):
        TrainConfig(mixed_precision="fp8")
    with pytest.raises(UserError, match="preset"):
        TrainConfig.from_preset("anime")


def test_buckets_cover_aspect_ratios() -> None:
    from PIL import Image

    assert bucket_step_for(64, 2) == 16 and bucket_step_for(512, 4) == 64 and bucket_step_for(1024, 3) == 64
    buckets = make_buckets(512, 64)
    assert (512, 512) in buckets and (384, 640) in buckets and (640, 384) in buckets
    assert all(w * h <= 512 * 512 and w % 64 == 0 and h % 64 == 0 for w, h in buckets)
    assert nearest_bucket((1000, 600), buckets)[0] > nearest_bucket((1000, 600), buckets)[1]
    assert nearest_bucket((100, 100), buckets) == (512, 512)
    fitted, (top, left) = fit_to_bucket(Image.new("RGB", (300, 100)), (96, 48))
    assert fitted.size == (96, 48) and top == 0 and left > 0


def test_trigger_first_shuffle_and_tag_frequency() -> None:
    variants = caption_variants("1girl, eiei, fox ears, smile, solo", trigger="eiei", keep_tokens=1,
                                shuffle=True, count=6, seed=1)
    assert variants[0] == "eiei, 1girl, fox ears, smile, solo"
    assert all(v.startswith("eiei, ") for v in variants) and len(set(variants)) > 1
    assert sorted(variants[3].split(", ")) == sorted(variants[0].split(", "))
    assert caption_variants("a, b", trigger=None, keep_tokens=1, shuffle=False, count=6, seed=1) == ["a, b"]
    freq = tag_frequency([("10_x", "x, smile"), ("10_x", "x, solo, smile")])
    assert freq == {"10_x": {"smile": 2, "solo": 1, "x": 2}}


def test_tag_dropout_leaves_out_only_the_droppable_tags() -> None:
    caption = "eiei, 1girl, red hair, green dress, from side"
    variants = caption_variants(caption, trigger="eiei", keep_tokens=1, shuffle=True, count=200, seed=3,
                                tag_dropout=0.5, droppable=("red hair", "green dress"))
    assert variants[0] == caption  # the written caption stays one of the variants
    kept = [set(v.split(", ")) for v in variants[1:]]
    assert all({"eiei", "1girl", "from side"} <= k and all(v.startswith("eiei, ") for v in variants) for k in kept)
    share = sum("red hair" in k for k in kept) / len(kept)
    assert 0.35 < share < 0.65 and any("green dress" not in k for k in kept)
    assert variants == caption_variants(caption, trigger="eiei", keep_tokens=1, shuffle=True, count=200, seed=3,
                                        tag_dropout=0.5, droppable=("red hair", "green dress"))
    # without shuffling, dropout alone still makes variants
    plain = caption_variants("a, b, c", trigger=None, keep_tokens=1, shuffle=False, count=20, seed=1,
                             tag_dropout=0.5, droppable=("c",))
    assert {"a, b", "a, b, c"} == set(plain)


def test_data_order_is_deterministic_and_bucket_homogeneous() -> None:
    import torch

    from lorastrap.training.dataset import Sample

    latents = [(torch.zeros(1), torch.zeros(1))]
    samples = [Sample((64, 64), latents, torch.zeros(6), [0], 2), Sample((64, 64), latents, torch.zeros(6), [0]),
               Sample((48, 80), latents, torch.zeros(6), [0], 3)]
    a, b = BatchSchedule(samples, 2, seed=5), BatchSchedule(samples, 2, seed=5)
    assert a.batches_per_epoch == 4
    order = [a.batch(i) for i in range(12)]
    assert order == [b.batch(i) for i in range(12)]
    for _, batch in order:
        assert len({samples[i].bucket for i in batch}) == 1
    assert sorted(i for _, batch in order[:4] for i in batch) == [0, 0, 1, 2, 2, 2]
    assert lr_factor(0, 100, 10, "cosine") == pytest.approx(0.1)
    assert lr_factor(10, 100, 10, "cosine") == pytest.approx(1.0)
    assert lr_factor(99, 100, 10, "cosine") < 0.01 and lr_factor(99, 100, 0, "constant") == 1.0
