"""The built-in tiny model, the offline tokenizer, and base-model resolution/loading errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lorastrap.kernel.errors import UserError
from lorastrap.models.base import load_pipeline, resolve_base_model
from lorastrap.models.hashing import HASH_CACHE_NAME, model_hash
from lorastrap.models.tiny import build_tiny_model
from lorastrap.models.tokenizer import build_merges, build_vocab, write_offline_clip_tokenizer


def test_offline_tokenizer_makes_each_word_one_token(tmp_path: Path) -> None:
    words = ["fox ears", "fox", "foxy", "ab", "bc", "abc", "blonde hair", "café"]
    tok = write_offline_clip_tokenizer(tmp_path / "tok", words, model_max_length=32)
    for word in ["fox", "foxy", "ab", "bc", "abc", "blonde", "ears", "café"]:
        assert len(tok.tokenize(word)) == 1, (word, tok.tokenize(word))
    assert tok.tokenize("fox ears, blonde hair") == ["fox</w>", "ears</w>", ",</w>", "blonde</w>", "hair</w>"]
    # unknown text still tokenizes, byte by byte
    assert "".join(tok.tokenize("zq")) == "zq</w>"
    assert tok.model_max_length == 32
    assert len(tok("fox", padding="max_length", max_length=32).input_ids) == 32
    vocab = build_vocab(build_merges(words))
    assert all(a + b in vocab for a, b in build_merges(words))
    assert (tmp_path / "tok" / "merges.txt").read_text().startswith("#version")


def test_tiny_build_is_deterministic_and_loads(tiny_model_dir: Path, tmp_path: Path) -> None:
    again = build_tiny_model(tmp_path / "again", "sd15", seed=0)
    other = build_tiny_model(tmp_path / "other", "sd15", seed=1)
    assert model_hash(again) == model_hash(tiny_model_dir)
    assert model_hash(other) != model_hash(tiny_model_dir)
    size = sum(p.stat().st_size for p in tiny_model_dir.rglob("*") if p.is_file())
    assert size < 10 * 2**20
    pipe = load_pipeline(resolve_base_model(tiny_model_dir))
    assert type(pipe).__name__ == "StableDiffusionPipeline"
    assert pipe.unet.config.cross_attention_dim == 32
    assert pipe.vae_scale_factor == 8 and pipe.unet.config.sample_size * 8 == 64


def test_tiny_sdxl_generates(tiny_sdxl_dir: Path) -> None:
    from lorastrap.models.generation import Generator, GenRequest

    ref = resolve_base_model(tiny_sdxl_dir)
    assert ref.arch == "sdxl" and ref.kind == "diffusers"
    with Generator(ref) as gen:
        assert type(gen.pipe).__name__ == "StableDiffusionXLPipeline"
        (img,) = gen.generate([GenRequest("1girl, solo", seed=3, steps=2)])
    assert img.image.size == (64, 64)


def test_model_hash_is_cached_beside_the_model(tiny_model_dir: Path) -> None:
    first = model_hash(tiny_model_dir)
    cache = json.loads((tiny_model_dir / HASH_CACHE_NAME).read_text())
    assert cache["sha256"] == first and "unet/diffusion_pytorch_model.safetensors" in cache["files"]
    assert model_hash(tiny_model_dir) == first


def test_builtin_tiny_spec_builds_on_first_use(tmp_path: Path) -> None:
    ref = resolve_base_model("tiny", search_root=tmp_path)
    assert ref.arch == "sd15" and (tmp_path / ".lorastrap" / "models" / "tiny-sd15-0" / "model_index.json").is_file()
    assert resolve_base_model("tiny", search_root=tmp_path).sha256 == ref.sha256


def test_missing_and_broken_base_models_are_user_errors(tiny_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        resolve_base_model(tmp_path / "nope")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model_index.json").write_text("{not json")
    with pytest.raises(UserError, match="model_index.json"):
        resolve_base_model(broken)
    # a folder whose UNet weights are truncated
    import shutil

    damaged = tmp_path / "damaged"
    shutil.copytree(tiny_model_dir, damaged)
    weights = damaged / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(UserError, match=str(damaged)):
        load_pipeline(resolve_base_model(damaged))


def test_single_file_checkpoint_needs_valid_safetensors_and_config(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    ckpt = tmp_path / "model.safetensors"
    save_file({"model.diffusion_model.x": torch.zeros(2)}, str(ckpt))
    with pytest.raises(UserError, match="config folder"):
        resolve_base_model(ckpt)
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(ckpt.read_bytes()[:-4])
    with pytest.raises(UserError, match="truncated"):
        resolve_base_model(truncated)
    pickle = tmp_path / "model.ckpt"
    pickle.write_bytes(b"\x80\x04")
    with pytest.raises(UserError, match="pickles are never loaded"):
        resolve_base_model(pickle)
