"""SDXL-architecture training with both text encoders: te1/te2 keys, and the loaded file works."""

from __future__ import annotations

from pathlib import Path

import pytest
from safetensors.torch import load_file

from lorastrap.kernel.errors import UserError
from lorastrap.models.generation import Generator, GenRequest
from lorastrap.models.lora import read_lora
from lorastrap.models.safetensors_io import safetensors_metadata
from lorastrap.training.loop import train_lora


def test_sdxl_lora_with_text_encoders(tiny_sdxl_dir: Path, tiny_model_dir: Path, tmp_path: Path,
                                     train_kit) -> None:
    items = train_kit.make_items(tmp_path / "data")
    cfg = train_kit.config(max_train_steps=2, train_text_encoder=True)
    result = train_lora(tiny_sdxl_dir, items, cfg, tmp_path / "xl.safetensors", work_dir=tmp_path / "w",
                        cache_dir=tmp_path / "c", sample_prompts=train_kit.prompts[:1], progress=False)
    keys = load_file(str(result.path)).keys()
    prefixes = {k.split("_", 2)[1] for k in keys}
    assert prefixes == {"unet", "te1", "te2"}
    assert any(k.startswith("lora_te2_text_model_encoder_layers_1_self_attn_q_proj") for k in keys)
    meta = safetensors_metadata(result.path)
    assert meta["ss_base_model_version"] == "sdxl_base_v1-0" and meta["ss_network_train_unet_only"] == "False"
    assert read_lora(result.path).arch == "sdxl"
    assert result.cache_stats.get("text_misses") is None  # a trained text encoder is never cached
    with Generator(tiny_sdxl_dir) as gen:
        gen.add_lora(result.path, "xl")
        (img,) = gen.generate([GenRequest(train_kit.prompts[0], seed=1, steps=2)])
    assert img.image.size == (64, 64)
    with Generator(tiny_model_dir) as gen, pytest.raises(UserError, match="is an SDXL LoRA but the base model"):
        gen.add_lora(result.path, "xl")
