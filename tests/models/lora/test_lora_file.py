"""Reading LoRA files: kohya, A1111/ComfyUI and diffusers/peft key variants, SDXL original-layout
names, old lorastrap files, bad values; validation of names and shapes against a base model."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from lorastrap.clash.projection import compat_lora, compat_metadata
from lorastrap.clash.synthetic import random_lora
from lorastrap.clash.weightspace import analyse
from lorastrap.models.lora import STANDARD_BLOCKS, LoraFormatError, diffusers_state, kohya_tensors, read_lora, save_lora
from lorastrap.models.lora.validate import BaseModules, check_fits

SHAPES = {
    "unet.down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q": (32, 32),
    "unet.down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k": (32, 24),
    "unet.up_blocks_1_attentions_1_proj_out": (64, 64),
    "te1.text_model_encoder_layers_0_self_attn_q_proj": (24, 24),
}


def _kohya_file(tmp_path, name="style.safetensors", seed=0, rank=4, alpha=2.0, metadata=None):
    lora = random_lora(SHAPES, rank=rank, seed=seed, alpha=alpha)
    path = tmp_path / name
    save_file(kohya_tensors(lora, dtype=torch.float32), str(path), metadata=metadata or {"ss_network_module": "networks.lora"})
    return path, lora


def test_kohya_file_round_trips(tmp_path):
    path, original = _kohya_file(tmp_path)
    lora = read_lora(path)
    assert lora.key_format == "kohya" and set(lora.modules) == set(SHAPES)
    for key, module in original.modules.items():
        assert torch.allclose(lora.modules[key].delta(), module.delta())
        assert lora.modules[key].alpha == 2.0
    assert lora.arch == "sd15"  # attention in down block 0 is an SD1.x layout
    assert "lora_te_text_model_encoder_layers_0_self_attn_q_proj.alpha" in kohya_tensors(lora)


def test_text_encoder_keys_with_and_without_text_model_read_the_same(tmp_path):
    """lorastrap ≤ 0.1 wrote `lora_te_encoder_layers_…` (transformers 5 has no `text_model` level);
    such files still load, and are written back in the standard form every consumer maps."""
    path, original = _kohya_file(tmp_path)
    tensors = {k.replace("lora_te_text_model_", "lora_te_"): v for k, v in kohya_tensors(original, dtype=torch.float32).items()}
    assert any(k.startswith("lora_te_encoder_layers_0_") for k in tensors)
    save_file(tensors, str(tmp_path / "old.safetensors"))
    old = read_lora(tmp_path / "old.safetensors")
    assert set(old.modules) == set(original.modules) and not old.unknown
    assert set(kohya_tensors(old)) == set(kohya_tensors(original))
    peft = {f"text_encoder.encoder.layers.0.self_attn.q_proj.lora_{ab}.weight": t for ab, t in
            (("A", original.modules["te1.text_model_encoder_layers_0_self_attn_q_proj"].down),
             ("B", original.modules["te1.text_model_encoder_layers_0_self_attn_q_proj"].up))}
    save_file(peft, str(tmp_path / "peft.safetensors"))
    assert set(read_lora(tmp_path / "peft.safetensors").modules) == {"te1.text_model_encoder_layers_0_self_attn_q_proj"}


def test_diffusers_peft_keys_read_the_same_modules(tmp_path):
    kohya_path, original = _kohya_file(tmp_path)
    dotted = {
        "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q",
        "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k",
        "unet.up_blocks.1.attentions.1.proj_out",
        "text_encoder.text_model.encoder.layers.0.self_attn.q_proj",
    }
    tensors = {}
    for name in dotted:
        key = name.replace("text_encoder.", "te1.", 1).replace(".", "_").replace("_", ".", 1)
        tensors[f"{name}.lora_A.weight"] = original.modules[key].down
        tensors[f"{name}.lora_B.weight"] = original.modules[key].up
    meta = {"lora_adapter_metadata": json.dumps({"unet.lora_alpha": 2.0, "unet.r": 4,
                                                 "text_encoder.lora_alpha": 2.0, "text_encoder.r": 4})}
    path = tmp_path / "diffusers.safetensors"
    save_file(tensors, str(path), metadata=meta)
    lora = read_lora(path)
    assert lora.key_format == "diffusers"
    assert set(lora.modules) == set(original.modules)
    for key, module in original.modules.items():
        assert torch.allclose(lora.modules[key].delta(), module.delta())
    # Without the adapter metadata diffusers assumes alpha = rank; so do we.
    save_file(tensors, str(path))
    assert read_lora(path).modules[next(iter(SHAPES))].alpha == 4.0


def test_sdxl_compvis_keys_map_to_diffusers_names(tmp_path):
    down, up = torch.randn(4, 2048), torch.randn(640, 4)
    tensors = {
        "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_down.weight": down,
        "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_up.weight": up,
        "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.alpha": torch.tensor(4.0),
        "lora_unet_output_blocks_1_1_proj_in.lora_down.weight": torch.randn(4, 1280),
        "lora_unet_output_blocks_1_1_proj_in.lora_up.weight": torch.randn(1280, 4),
        "lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_down.weight": torch.randn(4, 1280),
        "lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_up.weight": torch.randn(5120, 4),
    }
    path = tmp_path / "xl.safetensors"
    save_file(tensors, str(path))
    lora = read_lora(path)
    assert set(lora.modules) == {
        "unet.down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k",
        "unet.up_blocks_0_attentions_1_proj_in",
        "te2.text_model_encoder_layers_0_mlp_fc1",
    }
    assert lora.arch == "sdxl" and lora.unet_names == "sgm"
    # lorastrap ≤ 0.1 wrote SDXL files in diffusers UNet names and a bare first text encoder: they read
    # to the same modules
    old = {k.replace("lora_te2_", "lora_te1_").replace("text_model_", "", 1) if "te2" in k else k: v
           for k, v in diffusers_state(lora).items()}
    assert any(k.startswith("lora_unet_down_blocks_1_attentions_0") for k in old)
    save_file(old, str(tmp_path / "old-xl.safetensors"), metadata={"ss_base_model_version": "sdxl_base_v1-0"})
    again = read_lora(tmp_path / "old-xl.safetensors")
    assert set(again.modules) == {k.replace("te2.", "te1.") for k in lora.modules} and not again.unknown
    # Written back (a compat file, a checkpoint) in the names sd-scripts writes for SDXL: the same keys.
    result = compat_lora(lora, lora)
    assert set(kohya_tensors(result.lora)) == set(tensors) | {"lora_unet_output_blocks_1_1_proj_in.alpha",
                                                             "lora_te2_text_model_encoder_layers_0_mlp_fc1.alpha"}


SD15_BASE = BaseModules("tiny-test", "sd15", STANDARD_BLOCKS["sd15"],
                        {k: (o, i) for k, (o, i) in SHAPES.items()})


def test_validation_names_shapes_and_architecture(tmp_path):
    path, _ = _kohya_file(tmp_path)
    check_fits(read_lora(path), SD15_BASE)  # fits: no error
    xl_path, _ = _kohya_file(tmp_path, "xl.safetensors", metadata={"ss_base_model_version": "sdxl_base_v1-0"})
    with pytest.raises(LoraFormatError, match=r"xl.safetensors is an SDXL LoRA but the base model tiny-test is SD1.5"):
        check_fits(read_lora(xl_path), SD15_BASE)
    wide = tmp_path / "wide.safetensors"
    save_lora(random_lora({next(iter(SHAPES)): (32, 48)}, 4), wide, {})
    with pytest.raises(LoraFormatError, match=r"1 of 1 modules, e.g. lora_unet_down_blocks_0_attentions_0_"
                                              r"transformer_blocks_0_attn1_to_q: input width 48 != 32"):
        check_fits(read_lora(wide), SD15_BASE)
    extra = tmp_path / "extra.safetensors"
    save_lora(random_lora({"unet.mid_block_attentions_0_proj_in": (32, 32)}, 4), extra, {})
    with pytest.raises(LoraFormatError, match="lora_unet_mid_block_attentions_0_proj_in: no such module in the base model"):
        check_fits(read_lora(extra), SD15_BASE)
    odd = tmp_path / "odd.safetensors"
    save_file({**load_file(str(path)), "lora_unet_foo_bar.lora_down.weight": torch.zeros(2, 2),
               "lora_unet_foo_bar.lora_up.weight": torch.zeros(2, 2)}, str(odd))
    assert len(read_lora(odd).unknown) == 2  # kept for the validator, which names them
    with pytest.raises(LoraFormatError, match="names no UNet or text-encoder module"):
        check_fits(read_lora(odd), SD15_BASE)


@pytest.mark.parametrize(("value", "message"), [
    (float("nan"), "holds NaN or infinite values"), (float("inf"), "holds NaN or infinite values"),
])
def test_non_finite_weights_are_refused(tmp_path, value, message):
    path, _ = _kohya_file(tmp_path)
    tensors = load_file(str(path))
    key = next(k for k in tensors if k.endswith("lora_up.weight"))
    tensors[key][0, 0] = value
    save_file(tensors, str(path))
    with pytest.raises(LoraFormatError, match=message):
        read_lora(path)


def test_non_float_weights_are_refused(tmp_path):
    path, _ = _kohya_file(tmp_path)
    tensors = load_file(str(path))
    key = next(k for k in tensors if k.endswith("lora_down.weight"))
    tensors[key] = tensors[key].to(torch.int8)
    save_file(tensors, str(path))
    with pytest.raises(LoraFormatError, match="is int8, not a float type"):
        read_lora(path)


@pytest.mark.parametrize(("name", "content", "message"), [
    ("style.ckpt", b"PK\x03\x04", "only .safetensors LoRAs are read"),
    ("broken.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00{", "not a valid safetensors"),
])
def test_unreadable_files_are_user_errors(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(LoraFormatError, match=message):
        read_lora(path)


def test_non_lora_files_are_rejected(tmp_path):
    path = tmp_path / "loha.safetensors"
    save_file({"lora_unet_x.hada_w1_a": torch.zeros(2, 2)}, str(path))
    with pytest.raises(LoraFormatError, match="LyCORIS"):
        read_lora(path)
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(2, 2)}, str(path))
    with pytest.raises(LoraFormatError, match="no LoRA weights found"):
        read_lora(path)
    with pytest.raises(LoraFormatError, match="no such file"):
        read_lora(tmp_path / "missing.safetensors")


def test_compat_file_written_in_kohya_format_reads_back(tmp_path):
    style_path, _ = _kohya_file(tmp_path, seed=1)
    char_path, _ = _kohya_file(tmp_path, "char.safetensors", seed=2)
    style, char = read_lora(style_path), read_lora(char_path)
    result = compat_lora(style, char)
    meta = compat_metadata(style, result, "watercolor", "kitsune")
    out = tmp_path / "compat.safetensors"
    save_lora(result.lora, out, meta)
    again = read_lora(out)
    assert again.key_format == "kohya" and set(again.modules) == set(style.modules)
    assert analyse(again, char).overall_projection_energy < 1e-5  # fp16 rounding only
    assert again.metadata["lorastrap.compat_method"] == "subspace-projection"
    assert again.metadata["ss_network_dim"] == "4" and again.metadata["ss_network_alpha"] == "4"


def test_sd2_is_one_architecture_everywhere(tmp_path):
    """An SD 2.x LoRA is `sd2` whether the metadata or the 1024-wide cross-attention says so, and an
    SD 2.x base model (a diffusers folder or an OpenCLIP single file) is `sd2` too, so they match."""
    from lorastrap.models.base import resolve_base_model

    wide = {"unet.down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k": (320, 1024)}
    path = tmp_path / "sd2.safetensors"
    save_lora(random_lora(wide, 4), path, {})
    assert read_lora(path).arch == "sd2"
    save_lora(random_lora(SHAPES, 4), path, {"ss_v2": "True"})
    assert read_lora(path).arch == "sd2"
    folder = tmp_path / "sd2-model"
    (folder / "unet").mkdir(parents=True)
    (folder / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    (folder / "unet" / "config.json").write_text('{"cross_attention_dim": 1024}')
    assert resolve_base_model(folder).arch == "sd2"
    single = tmp_path / "sd2-file.safetensors"
    save_file({"cond_stage_model.model.token_embedding.weight": torch.zeros(2, 2),
               "model.diffusion_model.input_blocks.0.0.weight": torch.zeros(2, 2)}, str(single))
    (tmp_path / "sd2-file").mkdir()
    (tmp_path / "sd2-file" / "model_index.json").write_text("{}")
    assert resolve_base_model(single).arch == "sd2"
