"""LoRAs trained with the text encoder carry exactly the keys kohya sd-scripts writes, and the
consumer that runs here — diffusers' `load_lora_weights`, given the FILE — applies every module,
both halves (the text-encoder output changes), SDXL's original-layout names included."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import TINY_ATTENTION_BLOCKS
from safetensors.torch import load_file

from lorastrap.models.base import load_pipeline, resolve_base_model
from lorastrap.models.generation import Generator, adapter_module_count
from lorastrap.models.lora import UnetBlocks, read_lora
from lorastrap.models.lora.names import kohya_stem
from lorastrap.training.loop import train_lora

PROJ = ("to_q", "to_k", "to_v", "to_out.0")
TE = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj")
HAND_WRITTEN = {  # one key of each kind, typed out from sd-scripts' naming (see tests/test_lora_names.py)
    "sd15": ["lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q",
             "lora_unet_mid_block_attentions_0_transformer_blocks_0_attn2_to_k",
             "lora_unet_up_blocks_1_attentions_1_transformer_blocks_0_attn2_to_out_0",
             "lora_te_text_model_encoder_layers_1_self_attn_v_proj"],
    "sdxl": ["lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_q",
             "lora_unet_middle_block_1_transformer_blocks_0_attn2_to_k",
             "lora_unet_output_blocks_3_1_transformer_blocks_0_attn2_to_out_0",
             "lora_te1_text_model_encoder_layers_0_self_attn_out_proj",
             "lora_te2_text_model_encoder_layers_1_self_attn_q_proj"],
}


@pytest.fixture(scope="module")
def trained_with_te(tiny_model_dir: Path, tiny_sdxl_dir: Path, tmp_path_factory: pytest.TempPathFactory,
                    train_kit) -> dict[str, tuple[Path, Path]]:
    root = tmp_path_factory.mktemp("te-loras")
    items = train_kit.make_items(root / "data")
    out = {}
    for arch, model in (("sd15", tiny_model_dir), ("sdxl", tiny_sdxl_dir)):
        cfg = train_kit.config(max_train_steps=2, train_text_encoder=True, learning_rate=5e-2)
        result = train_lora(model, items, cfg, root / f"{arch}.safetensors", work_dir=root / f"w-{arch}",
                            cache_dir=root / "cache", sample_prompts=train_kit.prompts[:1], progress=False)
        out[arch] = (model, result.path)
    return out


def _expected_keys(arch: str, model: Path) -> set[str]:
    """The modules trained (attention projections + text-encoder attention), named by the tables."""
    import json

    blocks = UnetBlocks.from_config(json.loads((model / "unet" / "config.json").read_text()))
    stems = {kohya_stem("unet", f"{b}.transformer_blocks.0.{a}.{p}", arch, blocks)
             for b in TINY_ATTENTION_BLOCKS for a in ("attn1", "attn2") for p in PROJ}
    for component in (["te1", "te2"] if arch == "sdxl" else ["te1"]):
        stems |= {kohya_stem(component, f"text_model.encoder.layers.{i}.{m}", arch, blocks) for i in range(2) for m in TE}
    return {f"{s}{suffix}" for s in stems for suffix in (".lora_down.weight", ".lora_up.weight", ".alpha")}


@pytest.mark.parametrize("arch", ["sd15", "sdxl"])
def test_trained_file_has_exactly_sd_scripts_keys(trained_with_te, arch: str) -> None:
    model, path = trained_with_te[arch]
    keys = set(load_file(str(path)))
    assert keys == _expected_keys(arch, model)
    for stem in HAND_WRITTEN[arch]:
        assert f"{stem}.lora_down.weight" in keys, stem
    assert not any("encoder_layers" in k and "text_model" not in k for k in keys)  # never the bare form


@pytest.mark.parametrize("arch", ["sd15", "sdxl"])
def test_diffusers_loads_both_halves_from_the_file(trained_with_te, arch: str) -> None:
    model, path = trained_with_te[arch]
    pipe = load_pipeline(resolve_base_model(model))
    encoders = [pipe.text_encoder] + ([pipe.text_encoder_2] if arch == "sdxl" else [])
    ids = pipe.tokenizer(["tnygrl, from side"], padding="max_length", max_length=pipe.tokenizer.model_max_length,
                         return_tensors="pt").input_ids
    with torch.no_grad():
        before = [te(ids)[0] for te in encoders]
    pipe.load_lora_weights(str(path), adapter_name="file")  # diffusers' own key conversion, no help from us
    lora = read_lora(path, UnetBlocks.from_config(pipe.unet.config))
    assert adapter_module_count(pipe, "file") == len(lora.modules) == len(_expected_keys(arch, model)) // 3
    with torch.no_grad():
        after = [te(ids)[0] for te in encoders]
    for b, a in zip(before, after):
        assert (a - b).abs().max() > 1e-3  # every text encoder changed


def test_sdxl_original_names_mean_the_same_modules_to_diffusers(trained_with_te) -> None:
    """diffusers maps the sgm names itself (from the UNet config); lorastrap's own reading gives the
    same UNet output, so both agree on which module `input_blocks_N_…` is."""
    model, path = trained_with_te["sdxl"]
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    cond = torch.randn(1, 77, 80, generator=torch.Generator().manual_seed(1))
    added = {"text_embeds": torch.randn(1, 48, generator=torch.Generator().manual_seed(2)),
             "time_ids": torch.tensor([[64.0, 64, 0, 0, 64, 64]])}
    outputs = []
    for how in ("diffusers", "lorastrap", "none"):
        with Generator(model) as gen:
            if how == "diffusers":
                gen.pipe.load_lora_weights(str(path), adapter_name="x")
            elif how == "lorastrap":
                gen.add_lora(path, "x")
            with torch.no_grad():
                outputs.append(gen.pipe.unet(x, torch.tensor([500]), cond, added_cond_kwargs=added).sample)
    assert any(k.startswith("lora_unet_input_blocks_") for k in load_file(str(path)))
    assert torch.allclose(outputs[0], outputs[1], atol=1e-6)
    assert (outputs[1] - outputs[2]).abs().max() > 1e-4  # the LoRA changes the UNet: the agreement means something
