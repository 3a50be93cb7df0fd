"""Reading a LoRA file: every key variant that circulates, into one canonical `LoraFile`.

Accepted (plain LoRA only — down/up/alpha; LoHa/LoKr/OFT are refused with a clear message):
- kohya / A1111 / ComfyUI: `lora_unet_…`, `lora_te_…`, `lora_te1_…`, `lora_te2_…` with
  `.lora_down.weight` / `.lora_up.weight` / `.alpha`; UNet paths in diffusers or original (sgm)
  names; text-encoder paths with or without `text_model` (lorastrap before 0.2 wrote them without);
- diffusers / peft: `unet.…`, `text_encoder.…`, `text_encoder_2.…` (or bare UNet paths) with
  `.lora_A.weight` / `.lora_B.weight`, `.lora.down.weight`, `.lora_linear_layer.down.weight`, or
  the old attention-processor form `….processor.to_q_lora.down.weight`; alpha from diffusers'
  `lora_adapter_metadata` when present, else alpha = rank as diffusers assumes;
- ComfyUI-saved: `diffusion_model.<sgm path>` and `text_encoders.clip_l|clip_g.transformer.…`.

Reading refuses what no consumer can use: non-float weights, NaN/Inf values, down/up pairs that do
not fit each other. Names that fit no UNet/text-encoder module are kept in `LoraFile.unknown`; the
validator (validate.py) refuses them against a base model. Never unpickles: safetensors only.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from lorastrap.kernel.errors import UserError
from lorastrap.models.lora.arch import detect_arch
from lorastrap.models.lora.core import LoraFile, LoraFormatError, LoraModule
from lorastrap.models.lora.names import (
    STANDARD_BLOCKS,
    UnetBlocks,
    canonical_key,
    canonical_te_path,
    parse_kohya_stem,
    unet_path,
)
from lorastrap.models.safetensors_io import load_safetensors

_LYCORIS_MARKERS = ("hada_w1", "lokr_w1", "oft_blocks", ".b1.weight", "lora_mid")
_DOWN = (".lora_down.weight", ".lora_A.weight", ".lora.down.weight", ".lora_linear_layer.down.weight", "_lora.down.weight")
_UP = (".lora_up.weight", ".lora_B.weight", ".lora.up.weight", ".lora_linear_layer.up.weight", "_lora.up.weight")
_PEFT_PREFIXES = (("unet.", "unet"), ("text_encoder_2.", "te2"), ("text_encoder.", "te1"),
                  ("diffusion_model.", "unet"), ("text_encoders.clip_l.transformer.", "te1"),
                  ("text_encoders.clip_g.transformer.", "te2"))
_UNET_ROOTS = ("down_blocks", "mid_block", "up_blocks", "conv_in", "conv_out", "time_embedding", "add_embedding")
_PROCESSOR = {"to_q_lora": "to_q", "to_k_lora": "to_k", "to_v_lora": "to_v", "to_out_lora": "to_out.0"}


def read_lora(path: str | Path, blocks: UnetBlocks | None = None) -> LoraFile:
    """Parse a LoRA file. `blocks` is the UNet layout sgm names are read with (default: the real
    SD/SDXL layout of the detected architecture; pass the base model's for other UNets)."""
    path = Path(path)
    if not path.is_file():
        raise LoraFormatError(f"{path}: no such file; give the path of a .safetensors LoRA")
    if path.suffix.lower() != ".safetensors":
        raise LoraFormatError(
            f"{path.name}: only .safetensors LoRAs are read (pickled .ckpt/.pt files are never loaded); "
            "convert it to safetensors first")
    try:
        tensors, metadata = load_safetensors(path)
    except UserError as exc:
        raise LoraFormatError(str(exc)) from exc
    lora = parse_lora_tensors(tensors, metadata, name=path.name, blocks=blocks)
    lora.path = path
    return lora


def _strip(key: str, suffixes: tuple[str, ...]) -> str | None:
    for suffix in suffixes:
        if key.endswith(suffix):
            return key[: -len(suffix)]
    return None


def _peft_path(stem: str, blocks: UnetBlocks) -> tuple[str, str] | None:
    """A diffusers/peft/ComfyUI dotted stem → (component, canonical path)."""
    stem = stem.removeprefix("base_model.model.")
    component, rest = "unet", stem
    for prefix, comp in _PEFT_PREFIXES:
        if stem.startswith(prefix):
            component, rest = comp, stem[len(prefix):]
            break
    else:
        if not stem.startswith(_UNET_ROOTS):
            return None
    rest = rest.replace(".processor.", ".")
    head, _, last = rest.rpartition(".")
    if last in _PROCESSOR:
        rest = f"{head}.{_PROCESSOR[last]}"
    found = unet_path(rest, blocks) if component == "unet" else canonical_te_path(rest)
    return (component, found) if found else None


def _check_values(name: str, key: str, tensor: torch.Tensor) -> None:
    if not tensor.is_floating_point():
        raise LoraFormatError(f"{name}: tensor {key} is {str(tensor.dtype).removeprefix('torch.')}, not a float "
                              "type; this is not a LoRA weight file (re-export it as fp16/bf16/fp32)")
    if not bool(torch.isfinite(tensor).all()):
        raise LoraFormatError(f"{name}: tensor {key} holds NaN or infinite values; the file is damaged or "
                              "was saved from a diverged training run — use another file")


def _diffusers_alphas(metadata: dict[str, str]) -> dict[str, dict]:
    """Per-component peft settings from diffusers' `lora_adapter_metadata` (alpha is lost without it)."""
    try:
        packed = json.loads(metadata.get("lora_adapter_metadata") or "{}")
    except json.JSONDecodeError:
        return {}
    out: dict[str, dict] = {}
    for key, value in packed.items() if isinstance(packed, dict) else ():
        prefix, _, name = key.partition(".")
        component = {"unet": "unet", "text_encoder": "te1", "text_encoder_2": "te2"}.get(prefix)
        if component:
            out.setdefault(component, {})[name] = value
    return out


def _peft_alpha(settings: dict, dotted: str, rank: int) -> float:
    for pattern, value in (settings.get("alpha_pattern") or {}).items():
        if dotted.endswith(pattern) or re.fullmatch(pattern, dotted):
            return float(value)
    return float(settings.get("lora_alpha", rank))


def _guess_blocks(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> UnetBlocks:
    """The standard layout sgm names are most likely relative to (SDXL when anything says so)."""
    text = metadata.get("ss_base_model_version", "") + metadata.get("modelspec.architecture", "")
    xl = "xl" in text.lower() or any(k.startswith(("lora_te2_", "text_encoder_2.")) for k in tensors)
    return STANDARD_BLOCKS["sdxl" if xl else "sd15"]


def parse_lora_tensors(tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None,
                       name: str = "LoRA", blocks: UnetBlocks | None = None) -> LoraFile:
    """Normalise an in-memory LoRA state dict (any variant above)."""
    metadata = dict(metadata or {})
    if any(marker in key for key in tensors for marker in _LYCORIS_MARKERS):
        raise LoraFormatError(f"{name}: LyCORIS (LoHa/LoKr/OFT) weights are not plain LoRA; use a LoRA "
                              "(lora_down/lora_up) file or convert it with LyCORIS' extract tools")
    blocks = blocks or _guess_blocks(tensors, metadata)
    kohya = any(key.startswith(("lora_unet_", "lora_te")) for key in tensors)
    pairs: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    stems: dict[tuple[str, str], str] = {}
    warnings: list[str] = []
    unknown: list[str] = []
    sgm = False
    for key, tensor in tensors.items():
        if key.endswith(".dora_scale"):
            warnings.append(f"{key}: DoRA magnitude ignored; only the low-rank direction is used")
            continue
        role, stem = "alpha", key[: -len(".alpha")] if key.endswith(".alpha") else None
        if stem is None:
            role, stem = "down", _strip(key, _DOWN)
        if stem is None:
            role, stem = "up", _strip(key, _UP)
        if stem is None:
            unknown.append(key)
            continue
        if role == "alpha" and not tensor.is_floating_point() and tensor.dtype != torch.bool:
            tensor = tensor.float()  # some converters store alpha as an integer scalar
        _check_values(name, key, tensor)
        split = parse_kohya_stem(stem, blocks) if kohya else _peft_path(stem, blocks)
        if split is None:
            unknown.append(key)
            continue
        sgm = sgm or any(s in stem for s in ("input_blocks", "middle_block", "output_blocks"))
        pairs.setdefault(split, {})[role] = tensor
        stems[split] = stem
    if not pairs and any(_strip(k, _DOWN) for k in unknown):
        raise LoraFormatError(f"{name}: none of its LoRA modules names a UNet or text-encoder module lorastrap "
                              f"knows (e.g. {next(k for k in unknown if _strip(k, _DOWN))}); is it made for "
                              "another kind of model?")
    if not pairs:
        raise LoraFormatError(
            f"{name}: no LoRA weights found (expected kohya `lora_unet_…lora_down.weight` or diffusers "
            "`unet.…lora_A.weight` keys); is this a full checkpoint rather than a LoRA?")
    peft = {} if kohya else _diffusers_alphas(metadata)
    modules: dict[str, LoraModule] = {}
    for (component, path), parts in sorted(pairs.items()):
        if "down" not in parts or "up" not in parts:
            raise LoraFormatError(f"{name}: module {stems[(component, path)]} has no "
                                  f"{'up' if 'down' in parts else 'down'} weight; the file is incomplete")
        modules[canonical_key(component, path)] = _module(name, component, path, parts, peft, stems)
    lora = LoraFile(modules, None, "kohya" if kohya else "diffusers", metadata, warnings=warnings,
                    source_keys=tuple(sorted(tensors)), unknown=unknown, unet_names="sgm" if sgm else "diffusers")
    lora.arch = detect_arch(lora)
    return lora


def _module(name: str, component: str, path: str, parts: dict[str, torch.Tensor], peft: dict,
            stems: dict) -> LoraModule:
    down, up = parts["down"].detach().to(torch.float32), parts["up"].detach().to(torch.float32)
    if down.dim() not in (2, 4) or up.dim() != down.dim() or (up.dim() == 4 and tuple(up.shape[2:]) != (1, 1)):
        raise LoraFormatError(f"{name}: module {path} has down {tuple(down.shape)} / up {tuple(up.shape)}, "
                              "which is no LoRA pair; the file is damaged")
    rank = int(down.shape[0])
    if int(up.shape[1]) != rank:
        raise LoraFormatError(f"{name}: module {path} has down rank {rank} but up rank {up.shape[1]}; the file is damaged")
    if "alpha" in parts:
        alpha = float(parts["alpha"].float().reshape(-1)[0]) if parts["alpha"].numel() else 0.0
        alpha = alpha or float(rank)  # kohya reads alpha 0 as "no scaling", i.e. alpha = rank
    elif peft:
        alpha = _peft_alpha(peft.get(component, {}), stems[(component, path)].split(".", 1)[-1], rank)
    else:
        alpha = float(rank)  # what diffusers assumes for a file with no alpha at all
    return LoraModule(canonical_key(component, path), down, up, alpha)
