"""U-Net blocks as the A1111 LoRA Block Weight (LBW) extension names them, and the two ways to write
per-block weights: an LBW prompt string and a diffusers `set_adapters` dict.

LBW layouts (hako-mikan/sd-webui-lora-block-weight, BLOCKID17 / BLOCKID12):
  SD1.5/2.x LoRA, 17 values: BASE IN01 IN02 IN04 IN05 IN07 IN08 M00 OUT03 … OUT11
  SDXL LoRA, 12 values:      BASE IN04 IN05 IN07 IN08 M00 OUT00 … OUT05
BASE is the text encoder(s). The IN/OUT numbers are the original U-Net's `input_blocks.N` /
`output_blocks.N`; diffusers' `down_blocks.i.attentions.j` is IN(3i+j+1) and
`up_blocks.i.attentions.j` is OUT(3i+j) in both SD1.5 and SDXL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

LBW_BLOCKS: dict[str, tuple[str, ...]] = {
    "sd15": ("BASE", "IN01", "IN02", "IN04", "IN05", "IN07", "IN08", "M00",
             "OUT03", "OUT04", "OUT05", "OUT06", "OUT07", "OUT08", "OUT09", "OUT10", "OUT11"),
    "sdxl": ("BASE", "IN04", "IN05", "IN07", "IN08", "M00", "OUT00", "OUT01", "OUT02", "OUT03", "OUT04", "OUT05"),
}
LBW_BLOCKS["sd2"] = LBW_BLOCKS["sd15"]


def lbw_layout(arch: str | None) -> tuple[str, ...]:
    return LBW_BLOCKS.get(arch or "sd15", LBW_BLOCKS["sd15"])


def block_of(key: str) -> str | None:
    """The 26-block id (BASE, IN00–IN11, M00, OUT00–OUT11) of a canonical module key; None if outside."""
    component, _, flat = key.partition(".")
    if component in ("te1", "te2"):
        return "BASE"
    if flat.startswith("conv_in"):
        return "IN00"
    match = re.match(r"down_blocks_(\d+)_(attentions|resnets)_(\d+)_", flat)
    if match:
        return f"IN{3 * int(match[1]) + int(match[3]) + 1:02d}"
    match = re.match(r"down_blocks_(\d+)_downsamplers_", flat)
    if match:
        return f"IN{3 * int(match[1]) + 3:02d}"
    if flat.startswith("mid_block_"):
        return "M00"
    match = re.match(r"up_blocks_(\d+)_(attentions|resnets)_(\d+)_", flat)
    if match:
        return f"OUT{3 * int(match[1]) + int(match[3]):02d}"
    match = re.match(r"up_blocks_(\d+)_upsamplers_", flat)
    if match:
        return f"OUT{3 * int(match[1]) + 2:02d}"
    return None


def _fmt(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


def lbw_values(block_weights: Mapping[str, float], arch: str | None) -> list[float]:
    """Block multipliers in the extension's order; blocks not given are 1.0 (untouched)."""
    return [float(block_weights.get(block, 1.0)) for block in lbw_layout(arch)]


def lbw_string(name: str, weight: float, block_weights: Mapping[str, float], arch: str | None) -> str:
    """`<lora:name:weight:lbw=v1,…,vN>` — what A1111/Forge with the LBW extension read."""
    values = ",".join(_fmt(v) for v in lbw_values(block_weights, arch))
    return f"<lora:{name}:{_fmt(weight)}:lbw={values}>"


def parse_lbw(values: str, arch: str | None) -> dict[str, float]:
    """The inverse of `lbw_values`: `"1,0,0,…"` → {block: weight}; checks the count for the arch."""
    layout = lbw_layout(arch)
    parts = [p.strip() for p in values.split(",") if p.strip()]
    if len(parts) != len(layout):
        raise ValueError(f"an LBW string for {arch} has {len(layout)} values, got {len(parts)}")
    return {block: float(p) for block, p in zip(layout, parts)}


@dataclass(frozen=True)
class UnetLayout:
    """Which diffusers blocks have attention layers and how many (set_adapters needs exact counts)."""

    down: Mapping[int, int]
    up: Mapping[int, int]
    has_mid: bool = True
    text_encoders: tuple[str, ...] = ("text_encoder",)


STANDARD_LAYOUTS = {
    "sd15": UnetLayout(down={0: 2, 1: 2, 2: 2}, up={1: 3, 2: 3, 3: 3}),
    "sd2": UnetLayout(down={0: 2, 1: 2, 2: 2}, up={1: 3, 2: 3, 3: 3}),
    "sdxl": UnetLayout(down={1: 2, 2: 2}, up={0: 3, 1: 3}, text_encoders=("text_encoder", "text_encoder_2")),
}


def layout_from_unet_config(config: Mapping, text_encoders: tuple[str, ...] = ("text_encoder",)) -> UnetLayout:
    """The layout of any UNet2DConditionModel (the tiny test models included) from its config."""
    per_block = config.get("layers_per_block", 2)
    per_block = per_block if isinstance(per_block, int) else per_block[0]
    down = {i: per_block for i, kind in enumerate(config["down_block_types"]) if "CrossAttn" in kind}
    up = {i: per_block + 1 for i, kind in enumerate(config["up_block_types"]) if "CrossAttn" in kind}
    has_mid = "CrossAttn" in str(config.get("mid_block_type") or "UNetMidBlock2DCrossAttn")
    return UnetLayout(down=down, up=up, has_mid=has_mid, text_encoders=text_encoders)


def diffusers_block_weights(weight: float, block_weights: Mapping[str, float], arch: str | None,
                            layout: UnetLayout | None = None) -> dict:
    """The per-block adapter weight for diffusers `set_adapters` (blocks not given stay at `weight`).

    Shape: {"text_encoder": w, "unet": {"down": {"block_i": [w, …]}, "mid": w, "up": {…}}}. Every
    attention block of the layout gets an explicit list, because diffusers fills missing ones with 1.0.
    """
    layout = layout or STANDARD_LAYOUTS.get(arch or "sd15", STANDARD_LAYOUTS["sd15"])
    scaled = lambda block: round(weight * float(block_weights.get(block, 1.0)), 6)  # noqa: E731
    unet: dict = {
        "down": {f"block_{i}": [scaled(f"IN{3 * i + j + 1:02d}") for j in range(n)] for i, n in sorted(layout.down.items())},
        "up": {f"block_{i}": [scaled(f"OUT{3 * i + j:02d}") for j in range(n)] for i, n in sorted(layout.up.items())},
    }
    if layout.has_mid:
        unet["mid"] = scaled("M00")
    result: dict = {name: scaled("BASE") for name in layout.text_encoders}
    result["unet"] = unet
    return result


@dataclass(frozen=True)
class Preset:
    """A community block-weight preset for the STYLE LoRA, measured in the grid like any other candidate."""

    name: str
    arch: str
    values: tuple[float, ...]
    source: str

    def block_weights(self) -> dict[str, float]:
        return dict(zip(lbw_layout(self.arch), self.values))


_LBW_SRC = "LBW extension default presets (hako-mikan/sd-webui-lora-block-weight)"
_XL_SRC = "civitai article 2322 (LBW on SDXL: deep blocks IN07 IN08 OUT0-2, shallow IN04 IN05 OUT3-5)"
_BLORA_SRC = "B-LoRA, Frenkel et al. ECCV 2024 (arXiv:2403.14572): SDXL up_blocks.0.attentions.1 carries style"

PRESETS: dict[str, tuple[Preset, ...]] = {
    "sd15": (
        Preset("OUTS", "sd15", (1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1), _LBW_SRC),
        Preset("OUTALL", "sd15", (1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1), _LBW_SRC),
        Preset("OUTD", "sd15", (1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0), _LBW_SRC),
    ),
    "sdxl": (
        Preset("XL_OUT0_1", "sdxl", (1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0), _XL_SRC),
        Preset("XL_OUT01_BLORA", "sdxl", (0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0), _BLORA_SRC),
        Preset("XL_OUTS", "sdxl", (1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1), _XL_SRC),
    ),
}
PRESETS["sd2"] = PRESETS["sd15"]


def presets_for(arch: str | None) -> tuple[Preset, ...]:
    return PRESETS.get(arch or "sd15", PRESETS["sd15"])


def cut_blocks(blocks: list[str] | tuple[str, ...], arch: str | None) -> dict[str, float]:
    """Per-block weights that switch the given blocks off and leave every other block at 1."""
    return {block: (0.0 if block in blocks else 1.0) for block in lbw_layout(arch)}
