"""LoRA key names as the consumers read them: fixed tables, not the installed libraries' module trees.

A module is known by a *canonical key* `<component>.<flat path>`: component `unet`, `te1` or `te2`;
the path is the diffusers UNet path (`down_blocks.1.attentions.0.…`) or the CLIP path with its
`text_model.` root (`text_model.encoder.layers.0.self_attn.q_proj`), with `.` written as `_`.

Conventions, checked against the consumers' code (docs/formats-lora.md lists the files):
- kohya sd-scripts (networks/lora.py) names a module `lora_unet_…` / `lora_te_…` / `lora_te1_…` /
  `lora_te2_…` + its path in the model kohya trains, dots as underscores. For SD 1.x/2.x that UNet
  is diffusers-shaped; for SDXL it is the original (sgm) UNet (library/sdxl_original_unet.py:
  `input_blocks.4.1.transformer_blocks.0.attn1.to_k`), and the text encoders are transformers'
  CLIP models, whose paths start at `text_model.`.
- ComfyUI (comfy/lora.py, comfy/utils.py `unet_to_diffusers`) and A1111 (extensions-builtin/Lora
  `convert_diffusers_name_to_compvis`) map exactly these forms; a text-encoder key without
  `text_model` is dropped by all three.

The translation between diffusers and sgm UNet paths depends only on the UNet's block layout (layers
per block, which blocks have attention), `UnetBlocks`, never on `named_modules()`. Flat names are
split back into paths with a fixed vocabulary of multi-word module names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

COMPONENTS = ("unet", "te1", "te2")

# Module names that contain underscores; anything else between underscores is one path part.
_VOCAB = frozenset({
    "down_blocks", "up_blocks", "mid_block", "transformer_blocks", "to_q", "to_k", "to_v", "to_out",
    "proj_in", "proj_out", "conv_in", "conv_out", "conv_norm_out", "conv_shortcut", "time_emb_proj",
    "time_embedding", "add_embedding", "linear_1", "linear_2", "text_model", "self_attn", "q_proj",
    "k_proj", "v_proj", "out_proj", "layer_norm1", "layer_norm2", "final_layer_norm", "input_blocks",
    "output_blocks", "middle_block", "in_layers", "out_layers", "emb_layers", "skip_connection",
    "time_embed", "label_emb", "text_projection", "token_embedding", "position_embedding",
})

_ATTN = (r"(proj_in|proj_out|norm|transformer_blocks\.\d+\.(attn[12]\.(to_q|to_k|to_v|to_out\.0)"
         r"|ff\.net\.0\.proj|ff\.net\.2|norm[123]))")
_RESNET = r"(conv1|conv2|time_emb_proj|conv_shortcut|norm1|norm2)"
_RESNET_SGM = r"(in_layers\.[02]|out_layers\.[03]|emb_layers\.1|skip_connection)"
UNET_PATH = re.compile(
    r"conv_in|conv_out|conv_norm_out|time_embedding\.linear_[12]|add_embedding\.linear_[12]"
    rf"|(down_blocks\.\d+|up_blocks\.\d+|mid_block)\.resnets\.\d+\.{_RESNET}"
    rf"|(down_blocks\.\d+|up_blocks\.\d+|mid_block)\.attentions\.\d+\.{_ATTN}"
    r"|down_blocks\.\d+\.downsamplers\.0\.conv|up_blocks\.\d+\.upsamplers\.0\.conv")
SGM_PATH = re.compile(
    rf"input_blocks\.0\.0|time_embed\.[02]|label_emb\.0\.[02]|out\.[02]|input_blocks\.\d+\.0\.op"
    rf"|(input_blocks|output_blocks)\.\d+\.0\.{_RESNET_SGM}|(input_blocks|output_blocks)\.\d+\.1\.{_ATTN}"
    rf"|output_blocks\.\d+\.[12]\.conv|middle_block\.[02]\.{_RESNET_SGM}|middle_block\.1\.{_ATTN}")
TE_PATH = re.compile(r"text_model\.encoder\.layers\.\d+\.(self_attn\.(q_proj|k_proj|v_proj|out_proj)|mlp\.fc[12])")

RESNET_TO_SGM = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
                 "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
_RESNET_FROM_SGM = {v: k for k, v in RESNET_TO_SGM.items()}
TOP_TO_SGM = {"conv_in": "input_blocks.0.0", "time_embedding.linear_1": "time_embed.0",
              "time_embedding.linear_2": "time_embed.2", "add_embedding.linear_1": "label_emb.0.0",
              "add_embedding.linear_2": "label_emb.0.2", "conv_norm_out": "out.0", "conv_out": "out.2"}
_TOP_FROM_SGM = {v: k for k, v in TOP_TO_SGM.items()}


@dataclass(frozen=True)
class UnetBlocks:
    """What the diffusers ↔ sgm translation needs to know of a UNet: its block layout."""

    layers_per_block: int
    down_attention: tuple[bool, ...]  # per diffusers down block: has cross-attention layers
    up_attention: tuple[bool, ...]

    @classmethod
    def from_config(cls, config: Mapping) -> "UnetBlocks":
        per_block = config.get("layers_per_block", 2)
        per_block = per_block if isinstance(per_block, int) else per_block[0]
        return cls(int(per_block), tuple("CrossAttn" in t for t in config["down_block_types"]),
                   tuple("CrossAttn" in t for t in config["up_block_types"]))


# The layouts of the real architectures (SD 1.x and 2.x share one).
STANDARD_BLOCKS = {
    "sd15": UnetBlocks(2, (True, True, True, False), (False, True, True, True)),
    "sd2": UnetBlocks(2, (True, True, True, False), (False, True, True, True)),
    "sdxl": UnetBlocks(2, (False, True, True), (True, True, False)),
}


def split_flat(flat: str) -> str:
    """`down_blocks_0_attentions_0_proj_in` → `down_blocks.0.attentions.0.proj_in` (fixed vocabulary)."""
    parts, out, i = flat.split("_"), [], 0
    while i < len(parts):
        for n in (3, 2):
            if "_".join(parts[i:i + n]) in _VOCAB and i + n <= len(parts):
                out.append("_".join(parts[i:i + n]))
                i += n
                break
        else:
            out.append(parts[i])
            i += 1
    return ".".join(out)


def flat(path: str) -> str:
    return path.replace(".", "_")


def canonical_key(component: str, path: str) -> str:
    return f"{component}.{flat(path)}"


def key_path(key: str) -> tuple[str, str]:
    """A canonical key → (component, dotted path)."""
    component, _, rest = key.partition(".")
    return component, split_flat(rest)


def canonical_te_path(path: str) -> str | None:
    """A CLIP module path with or without its `text_model.` root (transformers ≥ 5 drops it from
    CLIPTextModel) → the canonical path, or None for what no consumer maps."""
    path = path if path.startswith("text_model.") else f"text_model.{path}"
    return path if TE_PATH.fullmatch(path) else None


def sgm_to_diffusers(path: str, blocks: UnetBlocks) -> str | None:
    """An original (ldm/sgm) UNet module path → the diffusers one, or None."""
    if path in _TOP_FROM_SGM:
        return _TOP_FROM_SGM[path]
    if not SGM_PATH.fullmatch(path):
        return None
    match = re.fullmatch(r"middle_block\.(\d)\.(.+)", path)
    if match:
        n, rest = int(match[1]), match[2]
        return f"mid_block.attentions.0.{rest}" if n == 1 else f"mid_block.resnets.{n // 2}.{_RESNET_FROM_SGM[rest]}"
    match = re.fullmatch(r"(input_blocks|output_blocks)\.(\d+)\.(\d+)\.(.+)", path)
    if not match:
        return None
    where, n, sub, rest = match[1], int(match[2]), int(match[3]), match[4]
    group = blocks.layers_per_block + 1
    if where == "input_blocks":
        level, layer = divmod(n - 1, group)
        if layer == blocks.layers_per_block:
            return f"down_blocks.{level}.downsamplers.0.conv" if (sub, rest) == (0, "op") else None
        if sub == 0:
            return f"down_blocks.{level}.resnets.{layer}.{_RESNET_FROM_SGM[rest]}"
        return f"down_blocks.{level}.attentions.{layer}.{rest}"
    level, layer = divmod(n, group)
    if level >= len(blocks.up_attention):
        return None
    if sub == 0:
        return f"up_blocks.{level}.resnets.{layer}.{_RESNET_FROM_SGM[rest]}"
    upsampler = sub == 2 or (rest == "conv" and not blocks.up_attention[level])
    if upsampler:
        return f"up_blocks.{level}.upsamplers.0.conv" if rest == "conv" and layer == blocks.layers_per_block else None
    return f"up_blocks.{level}.attentions.{layer}.{rest}"


def diffusers_to_sgm(path: str, blocks: UnetBlocks) -> str:
    """A diffusers UNet module path → the original (ldm/sgm) one (the inverse of sgm_to_diffusers)."""
    if path in TOP_TO_SGM:
        return TOP_TO_SGM[path]
    group = blocks.layers_per_block + 1
    match = re.fullmatch(r"(down_blocks|up_blocks)\.(\d+)\.(resnets|attentions|downsamplers|upsamplers)\.(\d+)\.(.+)", path)
    if match:
        kind, level, what, layer, rest = match[1], int(match[2]), match[3], int(match[4]), match[5]
        if kind == "down_blocks":
            if what == "downsamplers":
                return f"input_blocks.{(level + 1) * group}.0.op"
            n = 1 + level * group + layer
        else:
            if what == "upsamplers":
                slot = 2 if blocks.up_attention[level] else 1
                return f"output_blocks.{level * group + blocks.layers_per_block}.{slot}.conv"
            n = level * group + layer
        prefix = "input_blocks" if kind == "down_blocks" else "output_blocks"
        if what == "resnets":
            return f"{prefix}.{n}.0.{RESNET_TO_SGM[rest]}"
        return f"{prefix}.{n}.1.{rest}"
    match = re.fullmatch(r"mid_block\.(resnets|attentions)\.(\d+)\.(.+)", path)
    if match:
        if match[1] == "attentions":
            return f"middle_block.1.{match[3]}"
        return f"middle_block.{2 * int(match[2])}.{RESNET_TO_SGM[match[3]]}"
    raise ValueError(f"{path} is not a diffusers UNet module path")


def unet_path(path: str, blocks: UnetBlocks) -> str | None:
    """A UNet module path in either naming → the diffusers path, or None."""
    if UNET_PATH.fullmatch(path):
        return path
    return sgm_to_diffusers(path, blocks)


KOHYA_PREFIXES = (("lora_unet_", "unet"), ("lora_te1_", "te1"), ("lora_te2_", "te2"), ("lora_te_", "te1"))


def parse_kohya_stem(stem: str, blocks: UnetBlocks) -> tuple[str, str] | None:
    """`lora_unet_input_blocks_4_1_…` / `lora_te_text_model_…` → (component, canonical path)."""
    for prefix, component in KOHYA_PREFIXES:
        if stem.startswith(prefix):
            path = split_flat(stem[len(prefix):])
            found = unet_path(path, blocks) if component == "unet" else canonical_te_path(path)
            return (component, found) if found else None
    return None


def kohya_stem(component: str, path: str, arch: str | None, blocks: UnetBlocks) -> str:
    """The key stem kohya sd-scripts writes for a module (canonical path): SDXL UNet modules in sgm
    names, SD 1.x/2.x in diffusers names; `lora_te_` for the one SD encoder, `lora_te1_`/`lora_te2_`
    for SDXL's two."""
    if component == "unet":
        return "lora_unet_" + flat(diffusers_to_sgm(path, blocks) if arch == "sdxl" else path)
    if component == "te2":
        return "lora_te2_" + flat(path)
    return ("lora_te1_" if arch == "sdxl" else "lora_te_") + flat(path)
