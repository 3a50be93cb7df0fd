"""Writing a LoRA: kohya tensors under the names kohya sd-scripts writes, atomically, with hashes.

Every LoRA lorastrap writes (training, checkpoints, `clash fix`) goes through `kohya_tensors`:
`lora_unet_…` in diffusers names for SD 1.x/2.x and in original (sgm) names for SDXL,
`lora_te_text_model_encoder_layers_N_…` (SD) or `lora_te1_…`/`lora_te2_…` (SDXL), each with
`.lora_down.weight`, `.lora_up.weight` and the *real* `.alpha` (diffusers' own converter writes
alpha = rank, which reloads wrong whenever alpha ≠ rank).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save as save_to_bytes

from lorastrap.kernel.atomic import atomic_write_bytes
from lorastrap.models.hashing import addnet_hash, legacy_hash, sha256_bytes
from lorastrap.models.lora.core import LoraFile
from lorastrap.models.lora.names import STANDARD_BLOCKS, UnetBlocks, flat, key_path, kohya_stem

SUFFIXES = (".lora_down.weight", ".lora_up.weight", ".alpha")


def kohya_tensors(lora: LoraFile, arch: str | None = None, blocks: UnetBlocks | None = None, *,
                  dtype: torch.dtype = torch.float16) -> dict[str, torch.Tensor]:
    """{kohya key: tensor} in the names kohya sd-scripts writes for `arch` (default: the file's)."""
    arch = arch or lora.arch or "sd15"
    blocks = blocks or STANDARD_BLOCKS[arch]
    out: dict[str, torch.Tensor] = {}
    for key, module in sorted(lora.modules.items()):
        stem = kohya_stem(*key_path(key), arch, blocks)
        out[f"{stem}.lora_down.weight"] = module.down.to(dtype).contiguous()
        out[f"{stem}.lora_up.weight"] = module.up.to(dtype).contiguous()
        out[f"{stem}.alpha"] = torch.tensor(float(module.alpha), dtype=dtype)
    return out


def diffusers_state(lora: LoraFile) -> dict[str, torch.Tensor]:
    """The LoRA as diffusers' `load_lora_weights` maps it module by module: kohya keys with diffusers
    UNet names (its sgm translation assumes the layout of real SDXL) and `text_model` TE paths."""
    out: dict[str, torch.Tensor] = {}
    for key, module in sorted(lora.modules.items()):
        component, path = key_path(key)
        prefix = {"unet": "lora_unet_", "te2": "lora_te2_"}.get(component, "lora_te1_" if lora.arch == "sdxl" else "lora_te_")
        stem = prefix + flat(path)
        out[f"{stem}.lora_down.weight"] = module.down.contiguous()
        out[f"{stem}.lora_up.weight"] = module.up.contiguous()
        out[f"{stem}.alpha"] = torch.tensor(float(module.alpha))
    return out


@dataclass(frozen=True)
class SavedLora:
    path: Path
    sha256: str          # of the whole file
    model_hash: str      # sshs_model_hash (tensor data only; A1111 `Lora hashes` use [:12])
    legacy_hash: str     # sshs_legacy_hash


def write_lora_file(tensors: Mapping[str, torch.Tensor], path: Path, metadata: Mapping[str, str]) -> SavedLora:
    """Write tensors + metadata (with the sshs_* hashes filled in) to `path` atomically."""
    bare = save_to_bytes(dict(tensors))
    model_h, legacy_h = addnet_hash(bare), legacy_hash(bare)
    meta = {str(k): str(v) for k, v in metadata.items()}
    meta.update(sshs_model_hash=model_h, sshs_legacy_hash=legacy_h)
    data = save_to_bytes(dict(tensors), metadata=meta)
    atomic_write_bytes(path, data)
    return SavedLora(Path(path), sha256_bytes(data), model_h, legacy_h)


def save_lora(lora: LoraFile, path: Path, metadata: Mapping[str, str], *, arch: str | None = None,
              blocks: UnetBlocks | None = None, dtype: torch.dtype = torch.float16) -> SavedLora:
    """`kohya_tensors` + `write_lora_file`."""
    return write_lora_file(kohya_tensors(lora, arch, blocks, dtype=dtype), path, metadata)
