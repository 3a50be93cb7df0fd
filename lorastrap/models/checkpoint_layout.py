"""The original (ldm/sgm) key layout of single-file Stable Diffusion checkpoints, as fixed tables.

A `.safetensors` checkpoint people download (A1111/ComfyUI/Civitai) holds every component under
one prefix: the UNet under `model.diffusion_model.` in original names (`input_blocks.4.1.…`, see
lora/names.py), the VAE under `first_stage_model.` (`encoder.down.0.block.1.…`), the text
encoders as transformers' CLIP (`cond_stage_model.transformer.text_model.…`; SDXL's first:
`conditioner.embedders.0.transformer.…`) or as OpenCLIP (SD 2.x `cond_stage_model.model.…`, SDXL's
second `conditioner.embedders.1.model.…`: `transformer.resblocks.N.attn.in_proj_weight` holding
q, k and v stacked). diffusers' single-file loader (loaders/single_file_utils.py) reads exactly
these; lorastrap reads module shapes from them and writes its tiny models in them.
"""

from __future__ import annotations

import re

import torch

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
# component → (prefix, "clip" | "openclip") per architecture
TEXT_ENCODERS = {
    "sd15": {"te1": ("cond_stage_model.transformer.", "clip")},
    "sd2": {"te1": ("cond_stage_model.model.", "openclip")},
    "sdxl": {"te1": ("conditioner.embedders.0.transformer.", "clip"),
             "te2": ("conditioner.embedders.1.model.", "openclip")},
}
_OPENCLIP_TOP = {"embeddings.token_embedding.weight": "token_embedding.weight",
                 "embeddings.position_embedding.weight": "positional_embedding",
                 "final_layer_norm.weight": "ln_final.weight", "final_layer_norm.bias": "ln_final.bias"}
_OPENCLIP_LAYER = {"layer_norm1": "ln_1", "layer_norm2": "ln_2", "self_attn.out_proj": "attn.out_proj",
                   "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj"}
_QKV = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")


def clip_param(key: str) -> str:
    """A transformers CLIP parameter name with its `text_model.` root (transformers ≥ 5 drops it
    from CLIPTextModel's state dict; checkpoints always have it)."""
    return key if key.startswith(("text_model.", "text_projection")) else f"text_model.{key}"


def clip_to_openclip(state: dict) -> dict:
    """A transformers CLIP text state dict → OpenCLIP names (q/k/v stacked into in_proj)."""
    out, qkv = {}, {}
    for key, value in state.items():
        key = clip_param(key).removeprefix("text_model.")
        if key in _OPENCLIP_TOP:
            out[_OPENCLIP_TOP[key]] = value
        elif key == "text_projection.weight":
            out["text_projection"] = value.T.contiguous()  # OpenCLIP multiplies x @ P
        else:
            match = re.fullmatch(r"encoder\.layers\.(\d+)\.(.+)\.(weight|bias)", key)
            if not match:
                raise ValueError(f"no OpenCLIP name for text-encoder parameter {key}")
            layer, module, kind = match[1], match[2], match[3]
            if module in _QKV:
                qkv.setdefault((layer, kind), {})[module] = value
            else:
                out[f"transformer.resblocks.{layer}.{_OPENCLIP_LAYER[module]}.{kind}"] = value
    for (layer, kind), parts in qkv.items():
        out[f"transformer.resblocks.{layer}.attn.in_proj_{kind}"] = torch.cat([parts[m] for m in _QKV])
    return out


def openclip_module_shapes(key: str, shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """An OpenCLIP weight (name without prefix) → {canonical CLIP module path: weight shape}."""
    match = re.fullmatch(r"transformer\.resblocks\.(\d+)\.(attn\.in_proj|attn\.out_proj|mlp\.c_fc|mlp\.c_proj)_?\.?weight", key)
    if not match:
        return {}
    root, part = f"text_model.encoder.layers.{match[1]}", match[2]
    if part == "attn.in_proj":
        third = (shape[0] // 3, *shape[1:])
        return {f"{root}.{m}": third for m in _QKV}
    name = {"attn.out_proj": "self_attn.out_proj", "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2"}[part]
    return {f"{root}.{name}": shape}


_VAE_TOP = {"conv_norm_out": "norm_out"}
_VAE_ATTN = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def vae_to_ldm(key: str, num_blocks: int) -> str:
    """A diffusers AutoencoderKL parameter name → the ldm one (decoder blocks are numbered backwards)."""
    module, _, kind = key.rpartition(".")
    parts = module.split(".")
    if parts[0] in ("quant_conv", "post_quant_conv"):
        return key
    side, rest = parts[0], ".".join(parts[1:])
    rest = _VAE_TOP.get(rest, rest)
    match = re.fullmatch(r"(down|up)_blocks\.(\d+)\.(resnets|downsamplers|upsamplers)\.(\d+)\.(.+)", rest)
    if match:
        where, block, what, index, leaf = match[1], int(match[2]), match[3], match[4], match[5]
        block = block if where == "down" else num_blocks - 1 - block
        leaf = leaf.replace("conv_shortcut", "nin_shortcut")
        if what == "resnets":
            rest = f"{where}.{block}.block.{index}.{leaf}"
        else:
            rest = f"{where}.{block}.{'downsample' if where == 'down' else 'upsample'}.{leaf}"
    match = re.fullmatch(r"mid_block\.(resnets|attentions)\.(\d+)\.(.+)", rest)
    if match:
        leaf = match[3].replace("conv_shortcut", "nin_shortcut")
        rest = (f"mid.block_{int(match[2]) + 1}.{leaf}" if match[1] == "resnets"
                else f"mid.attn_1.{_VAE_ATTN[leaf]}")
    return f"{side}.{rest}.{kind}"
