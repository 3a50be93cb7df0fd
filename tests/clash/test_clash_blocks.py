"""LBW block names, strings and the diffusers per-block dict."""

from __future__ import annotations

import re

import pytest

from lorastrap.clash.blocks import (
    LBW_BLOCKS,
    block_of,
    cut_blocks,
    diffusers_block_weights,
    layout_from_unet_config,
    lbw_string,
    parse_lbw,
    presets_for,
)

SD15_ORDER = ["BASE", "IN01", "IN02", "IN04", "IN05", "IN07", "IN08", "M00", "OUT03", "OUT04", "OUT05",
              "OUT06", "OUT07", "OUT08", "OUT09", "OUT10", "OUT11"]
SDXL_ORDER = ["BASE", "IN04", "IN05", "IN07", "IN08", "M00", "OUT00", "OUT01", "OUT02", "OUT03", "OUT04", "OUT05"]


def _values(lbw: str) -> list[str]:
    match = re.fullmatch(r"<lora:([^:]+):([\d.]+):lbw=([\d.,]+)>", lbw)
    assert match, lbw
    return match[3].split(",")


def test_layouts_are_the_extensions_order():
    assert list(LBW_BLOCKS["sd15"]) == SD15_ORDER and len(SD15_ORDER) == 17
    assert list(LBW_BLOCKS["sdxl"]) == SDXL_ORDER and len(SDXL_ORDER) == 12


@pytest.mark.parametrize(("arch", "order"), [("sd15", SD15_ORDER), ("sdxl", SDXL_ORDER)])
def test_lbw_string_has_one_value_per_block_in_order(arch, order):
    weights = {block: round(0.05 * i, 2) for i, block in enumerate(order)}
    text = lbw_string("watercolor", 0.6, weights, arch)
    values = _values(text)
    assert len(values) == len(order)
    assert [float(v) for v in values] == [weights[b] for b in order]
    assert text.startswith("<lora:watercolor:0.6:lbw=")
    assert parse_lbw(",".join(values), arch) == weights
    with pytest.raises(ValueError, match=f"has {len(order)} values"):
        parse_lbw("1,1,1", arch)


@pytest.mark.parametrize(("key", "block"), [
    ("te1.text_model_encoder_layers_3_mlp_fc1", "BASE"),
    ("te2.text_model_encoder_layers_3_mlp_fc1", "BASE"),
    ("unet.down_blocks_0_attentions_0_proj_in", "IN01"),
    ("unet.down_blocks_0_attentions_1_transformer_blocks_0_attn1_to_q", "IN02"),
    ("unet.down_blocks_2_attentions_1_proj_out", "IN08"),
    ("unet.mid_block_attentions_0_proj_in", "M00"),
    ("unet.up_blocks_0_attentions_1_transformer_blocks_0_attn2_to_v", "OUT01"),
    ("unet.up_blocks_1_attentions_0_proj_in", "OUT03"),
    ("unet.up_blocks_3_attentions_2_proj_out", "OUT11"),
    ("unet.down_blocks_1_downsamplers_0_conv", "IN06"),
])
def test_block_of_module_keys(key, block):
    assert block_of(key) == block


def test_diffusers_dict_for_standard_and_tiny_layouts():
    weights = cut_blocks(["IN01", "IN02", "M00"], "sd15")
    result = diffusers_block_weights(0.5, weights, "sd15")
    assert result["text_encoder"] == 0.5
    assert result["unet"]["down"] == {"block_0": [0.0, 0.0], "block_1": [0.5, 0.5], "block_2": [0.5, 0.5]}
    assert result["unet"]["mid"] == 0.0
    assert result["unet"]["up"]["block_3"] == [0.5, 0.5, 0.5]
    xl = diffusers_block_weights(1.0, dict(zip(SDXL_ORDER, presets_for("sdxl")[0].values)), "sdxl")
    assert xl["unet"]["up"]["block_0"] == [1.0, 1.0, 0.0] and xl["unet"]["down"]["block_1"] == [0.0, 0.0]
    assert set(xl) == {"text_encoder", "text_encoder_2", "unet"}
    tiny = layout_from_unet_config({
        "layers_per_block": 1, "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"]})
    small = diffusers_block_weights(1.0, {"OUT04": 0.25}, "sd15", tiny)
    assert small["unet"]["down"] == {"block_0": [1.0]}
    assert small["unet"]["up"] == {"block_1": [1.0, 0.25]}


def test_presets_fit_their_layout():
    for arch, order in (("sd15", SD15_ORDER), ("sdxl", SDXL_ORDER)):
        presets = presets_for(arch)
        assert presets
        for preset in presets:
            assert len(preset.values) == len(order) and preset.source
    outs = dict(zip(SD15_ORDER, presets_for("sd15")[0].values))
    assert presets_for("sd15")[0].name == "OUTS"
    assert [b for b, v in outs.items() if v] == ["BASE", "OUT07", "OUT08", "OUT09", "OUT10", "OUT11"]
