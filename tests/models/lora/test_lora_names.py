"""The fixed naming tables against hand-written names, one block of each kind.

The expected names are written out by hand from the consumers' code (see docs/formats-lora.md):
SDXL UNet keys as sd-scripts names the modules of library/sdxl_original_unet.py
(`input_blocks.N` holds [ResnetBlock2D, Transformer2DModel] or [Downsample2D `op`],
`output_blocks.N` [ResnetBlock2D, Transformer2DModel, Upsample2D `conv`], `middle_block` =
[resnet, transformer, resnet]), the same numbering ComfyUI's `unet_to_diffusers` (comfy/utils.py)
maps; SD 1.x keys as sd-scripts writes them (diffusers-shaped UNet) and as A1111's
`convert_diffusers_name_to_compvis` reads them; text encoders as `lora_te(1|2)_text_model_…`.
"""

from __future__ import annotations

import pytest

from lorastrap.models.lora.names import (
    STANDARD_BLOCKS,
    UnetBlocks,
    canonical_te_path,
    diffusers_to_sgm,
    kohya_stem,
    parse_kohya_stem,
    sgm_to_diffusers,
    split_flat,
)

XL, SD = STANDARD_BLOCKS["sdxl"], STANDARD_BLOCKS["sd15"]

SDXL_NAMES = [  # (component, diffusers / CLIP path, kohya key stem)
    ("unet", "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_k",
     "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_k"),
    ("unet", "down_blocks.2.attentions.1.transformer_blocks.9.attn2.to_out.0",
     "lora_unet_input_blocks_8_1_transformer_blocks_9_attn2_to_out_0"),
    ("unet", "down_blocks.1.attentions.1.proj_in", "lora_unet_input_blocks_5_1_proj_in"),
    ("unet", "mid_block.attentions.0.transformer_blocks.3.ff.net.0.proj",
     "lora_unet_middle_block_1_transformer_blocks_3_ff_net_0_proj"),
    ("unet", "up_blocks.0.attentions.2.proj_out", "lora_unet_output_blocks_2_1_proj_out"),
    ("unet", "up_blocks.1.attentions.0.transformer_blocks.1.ff.net.2", "lora_unet_output_blocks_3_1_transformer_blocks_1_ff_net_2"),
    ("unet", "down_blocks.0.resnets.1.conv1", "lora_unet_input_blocks_2_0_in_layers_2"),
    ("unet", "down_blocks.1.resnets.0.conv_shortcut", "lora_unet_input_blocks_4_0_skip_connection"),
    ("unet", "mid_block.resnets.1.time_emb_proj", "lora_unet_middle_block_2_emb_layers_1"),
    ("unet", "up_blocks.2.resnets.2.conv2", "lora_unet_output_blocks_8_0_out_layers_3"),
    ("unet", "down_blocks.1.downsamplers.0.conv", "lora_unet_input_blocks_6_0_op"),
    ("unet", "up_blocks.1.upsamplers.0.conv", "lora_unet_output_blocks_5_2_conv"),
    ("unet", "conv_in", "lora_unet_input_blocks_0_0"),
    ("unet", "time_embedding.linear_2", "lora_unet_time_embed_2"),
    ("unet", "add_embedding.linear_1", "lora_unet_label_emb_0_0"),
    ("te1", "text_model.encoder.layers.0.self_attn.q_proj", "lora_te1_text_model_encoder_layers_0_self_attn_q_proj"),
    ("te2", "text_model.encoder.layers.31.mlp.fc2", "lora_te2_text_model_encoder_layers_31_mlp_fc2"),
]
SD15_NAMES = [
    ("unet", "down_blocks.0.attentions.1.transformer_blocks.0.attn1.to_q",
     "lora_unet_down_blocks_0_attentions_1_transformer_blocks_0_attn1_to_q"),
    ("unet", "mid_block.attentions.0.proj_in", "lora_unet_mid_block_attentions_0_proj_in"),
    ("unet", "up_blocks.3.attentions.2.transformer_blocks.0.attn2.to_out.0",
     "lora_unet_up_blocks_3_attentions_2_transformer_blocks_0_attn2_to_out_0"),
    ("unet", "up_blocks.1.resnets.2.time_emb_proj", "lora_unet_up_blocks_1_resnets_2_time_emb_proj"),
    ("te1", "text_model.encoder.layers.11.self_attn.out_proj", "lora_te_text_model_encoder_layers_11_self_attn_out_proj"),
    ("te1", "text_model.encoder.layers.3.mlp.fc1", "lora_te_text_model_encoder_layers_3_mlp_fc1"),
]


@pytest.mark.parametrize(("component", "path", "stem"), SDXL_NAMES)
def test_sdxl_names_are_what_sd_scripts_writes(component: str, path: str, stem: str) -> None:
    assert kohya_stem(component, path, "sdxl", XL) == stem
    assert parse_kohya_stem(stem, XL) == (component, path)


@pytest.mark.parametrize(("component", "path", "stem"), SD15_NAMES)
def test_sd15_names_are_what_sd_scripts_writes(component: str, path: str, stem: str) -> None:
    assert kohya_stem(component, path, "sd15", SD) == stem
    assert parse_kohya_stem(stem, SD) == (component, path)


def test_sd15_files_in_original_names_read_too() -> None:
    """Some SD 1.x LoRAs carry compvis names (A1111 maps them directly); the upsampler of a block
    without attention sits at slot 1 (`output_blocks.2.1.conv`), with attention at slot 2."""
    assert parse_kohya_stem("lora_unet_input_blocks_1_1_proj_in", SD) == ("unet", "down_blocks.0.attentions.0.proj_in")
    assert parse_kohya_stem("lora_unet_output_blocks_2_1_conv", SD) == ("unet", "up_blocks.0.upsamplers.0.conv")
    assert parse_kohya_stem("lora_unet_output_blocks_5_2_conv", SD) == ("unet", "up_blocks.1.upsamplers.0.conv")
    assert diffusers_to_sgm("up_blocks.0.upsamplers.0.conv", SD) == "output_blocks.2.1.conv"


def test_text_encoder_names_never_depend_on_the_module_tree() -> None:
    """transformers ≥ 5's CLIPTextModel has no `text_model` level: its live name maps to the same key."""
    live = "encoder.layers.0.self_attn.v_proj"
    assert canonical_te_path(live) == canonical_te_path("text_model." + live) == "text_model." + live
    assert kohya_stem("te1", canonical_te_path(live), "sd15", SD) == "lora_te_text_model_encoder_layers_0_self_attn_v_proj"
    assert canonical_te_path("text_model.embeddings.token_embedding") is None  # no consumer maps it
    assert parse_kohya_stem("lora_te_text_model_encoder_layers_0_self_attn_bogus", SD) is None


def test_tiny_layout_round_trips_every_module_kind() -> None:
    """One layer per block (the tiny models): the numbering follows the layout, not SDXL's constants."""
    tiny = UnetBlocks.from_config({"layers_per_block": 1, "down_block_types": ["CrossAttnDownBlock2D"] * 2,
                                   "up_block_types": ["CrossAttnUpBlock2D"] * 2})
    expected = {
        "down_blocks.0.attentions.0.proj_in": "input_blocks.1.1.proj_in",
        "down_blocks.0.downsamplers.0.conv": "input_blocks.2.0.op",
        "down_blocks.1.resnets.0.norm1": "input_blocks.3.0.in_layers.0",
        "up_blocks.0.attentions.1.transformer_blocks.0.attn1.to_q": "output_blocks.1.1.transformer_blocks.0.attn1.to_q",
        "up_blocks.0.upsamplers.0.conv": "output_blocks.1.2.conv",
        "up_blocks.1.resnets.1.conv2": "output_blocks.3.0.out_layers.3",
        "mid_block.resnets.0.norm2": "middle_block.0.out_layers.0",
    }
    for path, sgm in expected.items():
        assert diffusers_to_sgm(path, tiny) == sgm
        assert sgm_to_diffusers(sgm, tiny) == path


def test_flat_names_split_with_the_fixed_vocabulary() -> None:
    assert split_flat("down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_out_0") == \
        "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0"
    assert split_flat("time_embedding_linear_1") == "time_embedding.linear_1"
    assert split_flat("output_blocks_2_0_skip_connection") == "output_blocks.2.0.skip_connection"
