"""Does a LoRA fit a base model? Names AND shapes, against the base model's own weight files.

The base model's module shapes are read from safetensors *headers* (no weights are loaded, so a
6 GB SDXL checkpoint is checked in milliseconds): a diffusers folder's unet/ and text_encoder*/
files, or a single-file checkpoint in its original layout (checkpoint_layout.py). Every entry
point (`style add`, `train --init-from`, `generate --lora`, `clash`, `clash fix`) calls
`check_fits`, so what one accepts the others can run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lorastrap.kernel.errors import UserError
from lorastrap.models.base import BaseModelRef
from lorastrap.models.checkpoint_layout import TEXT_ENCODERS, UNET_PREFIX, openclip_module_shapes
from lorastrap.models.lora.arch import ARCH_LABELS
from lorastrap.models.lora.core import LoraFile, LoraFormatError
from lorastrap.models.lora.names import (
    UNET_PATH,
    UnetBlocks,
    canonical_key,
    canonical_te_path,
    key_path,
    kohya_stem,
    sgm_to_diffusers,
)
from lorastrap.models.safetensors_io import safetensors_shapes

_CACHE: dict[tuple[str, str], "BaseModules"] = {}


@dataclass(frozen=True)
class BaseModules:
    """What a LoRA must fit: the base model's architecture, UNet layout and module weight shapes."""

    name: str
    arch: str
    blocks: UnetBlocks
    shapes: dict[str, tuple[int, ...]]  # canonical key → weight shape ([out, in] or [out, in, kh, kw])


def _unet_config(folder: Path) -> dict:
    path = folder / "unet" / "config.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path} is missing or not valid JSON; the base model's config is incomplete") from exc


def _weights(folder: Path) -> list[Path]:
    files = sorted(folder.glob("*.safetensors"))
    plain = [f for f in files if len(f.name.split(".")) == 2]  # prefer the default variant's files
    return plain or files


def _diffusers_shapes(folder: Path, arch: str) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    parts = [("unet", "unet"), ("te1", "text_encoder")] + ([("te2", "text_encoder_2")] if arch == "sdxl" else [])
    for component, sub in parts:
        for file in _weights(folder / sub):
            for key, shape in safetensors_shapes(file).items():
                if not key.endswith(".weight"):
                    continue
                module = key[: -len(".weight")]
                path = (module if UNET_PATH.fullmatch(module) else None) if component == "unet" else canonical_te_path(module)
                if path:
                    shapes[canonical_key(component, path)] = shape
    return shapes


def _single_file_shapes(path: Path, arch: str, blocks: UnetBlocks) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    encoders = TEXT_ENCODERS[arch].items()
    for key, shape in safetensors_shapes(path).items():
        if key.startswith(UNET_PREFIX) and key.endswith(".weight"):
            found = sgm_to_diffusers(key[len(UNET_PREFIX):-len(".weight")], blocks)
            if found:
                shapes[canonical_key("unet", found)] = shape
            continue
        for component, (prefix, kind) in encoders:
            if not key.startswith(prefix):
                continue
            rest = key[len(prefix):]
            if kind == "openclip":
                for module, mshape in openclip_module_shapes(rest, shape).items():
                    shapes[canonical_key(component, module)] = mshape
            elif rest.endswith(".weight") and (module := canonical_te_path(rest[: -len(".weight")])):
                shapes[canonical_key(component, module)] = shape
    return shapes


def base_modules(ref: BaseModelRef) -> BaseModules:
    """The module table of a resolved base model (cached per file and hash)."""
    cache_key = (str(ref.local_path), ref.sha256)
    if cache_key in _CACHE:
        return _CACHE[cache_key]
    if ref.local_path is None:
        raise UserError(f"base model {ref.path_or_id} has no local files to check a LoRA against")
    if ref.kind == "single_file":
        blocks = UnetBlocks.from_config(_unet_config(Path(ref.config_dir)))
        shapes = _single_file_shapes(Path(ref.local_path), ref.arch, blocks)
    else:
        blocks = UnetBlocks.from_config(_unet_config(Path(ref.local_path)))
        shapes = _diffusers_shapes(Path(ref.local_path), ref.arch)
    if not shapes:
        raise UserError(f"found no UNet or text-encoder weights in {ref.local_path}; is it a Stable Diffusion model?")
    found = BaseModules(ref.name, ref.arch, blocks, shapes)
    _CACHE[cache_key] = found
    return found


def _misfit(key: str, down_shape: tuple[int, ...], up_shape: tuple[int, ...], weight: tuple[int, ...]) -> str | None:
    out_f, in_f = weight[0], 1
    for d in weight[1:]:
        in_f *= d
    lora_in = 1
    for d in down_shape[1:]:
        lora_in *= d
    if len(down_shape) == 4 and len(weight) == 4 and tuple(down_shape[2:]) != tuple(weight[2:]):
        return f"kernel {tuple(down_shape[2:])} != {tuple(weight[2:])}"
    if lora_in != in_f:
        return f"input width {lora_in} != {in_f}"
    if up_shape[0] != out_f:
        return f"output width {up_shape[0]} != {out_f}"
    return None


def misfits(lora: LoraFile, base: BaseModules) -> list[str]:
    """Why modules of `lora` do not fit `base` (empty: every module fits)."""
    bad = [f"{key}: names no UNet or text-encoder module" for key in lora.unknown]
    for key, module in sorted(lora.modules.items()):
        stem = kohya_stem(*key_path(key), base.arch, base.blocks)
        weight = base.shapes.get(key)
        if weight is None:
            bad.append(f"{stem}: no such module in the base model")
        elif reason := _misfit(key, tuple(module.down.shape), tuple(module.up.shape), weight):
            bad.append(f"{stem}: {reason}")
    return bad


def check_fits(lora: LoraFile, base: BaseModules, what: str | None = None) -> None:
    """Raise a one-line `LoraFormatError` when `lora` cannot apply to `base`."""
    what = what or lora.name
    if lora.arch and lora.arch != base.arch:
        raise LoraFormatError(f"{what} is an {ARCH_LABELS[lora.arch]} LoRA but the base model {base.name} is "
                              f"{ARCH_LABELS[base.arch]}; use a LoRA trained for {ARCH_LABELS[base.arch]} "
                              "or another base model")
    bad = misfits(lora, base)
    if bad:
        total = len(lora.modules) + len(lora.unknown)
        raise LoraFormatError(f"{what} does not fit the base model {base.name} ({ARCH_LABELS.get(base.arch, base.arch)}): "
                              f"{len(bad)} of {total} modules, e.g. {bad[0]}; use a LoRA trained on this base model")
