"""LoRA files in the kohya/A1111 format, written from and read into peft adapters.

Key names are `lora_unet_<module path with _>` (and `lora_te_` for the SD 1.x text encoder,
`lora_te1_`/`lora_te2_` for SDXL's two), each with `.lora_down.weight`, `.lora_up.weight` and a
scalar `.alpha`. We write the adapter's *real* alpha: diffusers' `convert_state_dict_to_kohya`
writes alpha = rank, which reloads wrong whenever alpha != rank.

Key names are never parsed back (module names contain underscores); instead the live model's
modules are mapped forward to key names, which also tells whether a file fits a model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save as save_to_bytes

from lorastrap.errors import UserError
from lorastrap.models.hashing import addnet_hash, legacy_hash, sha256_bytes
from lorastrap.models.safetensors_io import load_safetensors, safetensors_keys, safetensors_metadata
from registry.atomic import atomic_write_bytes

SUFFIXES = (".lora_down.weight", ".lora_up.weight", ".alpha")
# Cross-attention key width (= text hidden size) of each architecture, real and tiny.
_CROSS_DIM_ARCH = {768: "sd15", 1024: "sd15", 2048: "sdxl", 32: "sd15", 64: "sdxl"}


def te_prefixes(arch: str, count: int) -> list[str]:
    if arch == "sdxl" or count > 1:
        return [f"lora_te{i + 1}_" for i in range(count)]
    return ["lora_te_"] * count


def _is_peft_internal(name: str) -> bool:
    parts = name.split(".")
    return any(p in ("base_layer", "lora_A", "lora_B", "lora_dropout", "lora_embedding_A",
                     "lora_embedding_B", "lora_magnitude_vector") for p in parts)


def module_map(unet: torch.nn.Module, text_encoders: Sequence[torch.nn.Module] = (),
               arch: str = "sd15") -> dict[str, torch.nn.Module]:
    """kohya key prefix (without suffix) → the Linear/Conv module (or its peft wrapper) it targets."""
    result: dict[str, torch.nn.Module] = {}
    pairs = [("lora_unet_", unet)] + list(zip(te_prefixes(arch, len(text_encoders)), text_encoders))
    for prefix, model in pairs:
        for name, module in model.named_modules():
            if not name or _is_peft_internal(name):
                continue
            base = getattr(module, "base_layer", module)
            if isinstance(base, (torch.nn.Linear, torch.nn.Conv2d)):
                result[prefix + name.replace(".", "_")] = module
    return result


def adapter_state(unet: torch.nn.Module, text_encoders: Sequence[torch.nn.Module] = (),
                  arch: str = "sd15", adapter: str = "default",
                  dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """The adapter's weights as kohya tensors (down, up, real alpha)."""
    tensors: dict[str, torch.Tensor] = {}
    for key, module in module_map(unet, text_encoders, arch).items():
        lora_a = getattr(module, "lora_A", None)
        if lora_a is None or adapter not in lora_a:
            continue
        down = lora_a[adapter].weight.detach()
        up = module.lora_B[adapter].weight.detach()
        tensors[f"{key}.lora_down.weight"] = down.to("cpu", dtype).contiguous()
        tensors[f"{key}.lora_up.weight"] = up.to("cpu", dtype).contiguous()
        tensors[f"{key}.alpha"] = torch.tensor(float(module.lora_alpha[adapter]), dtype=dtype)
    if not tensors:
        raise ValueError(f"no LoRA adapter named {adapter!r} in the model")
    return tensors


@dataclass(frozen=True)
class SavedLora:
    path: Path
    sha256: str          # of the whole file
    model_hash: str      # sshs_model_hash (tensor data only; A1111 `Lora hashes` use [:12])
    legacy_hash: str     # sshs_legacy_hash


def write_kohya_file(tensors: Mapping[str, torch.Tensor], path: Path,
                     metadata: Mapping[str, str]) -> SavedLora:
    """Write tensors + metadata (with the sshs_* hashes filled in) to `path` atomically."""
    bare = save_to_bytes(dict(tensors))
    model_h, legacy_h = addnet_hash(bare), legacy_hash(bare)
    meta = {str(k): str(v) for k, v in metadata.items()}
    meta.update(sshs_model_hash=model_h, sshs_legacy_hash=legacy_h)
    data = save_to_bytes(dict(tensors), metadata=meta)
    atomic_write_bytes(path, data)
    return SavedLora(Path(path), sha256_bytes(data), model_h, legacy_h)


def save_kohya_lora(unet: torch.nn.Module, text_encoders: Sequence[torch.nn.Module], path: Path,
                    metadata: Mapping[str, str], *, arch: str = "sd15", adapter: str = "default",
                    dtype: torch.dtype = torch.float16) -> SavedLora:
    """Save the peft adapter `adapter` of `unet` (and trained text encoders) as a kohya LoRA."""
    tensors = adapter_state(unet, text_encoders, arch, adapter, dtype)
    return write_kohya_file(tensors, path, metadata)


def read_kohya_lora(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    tensors, meta = load_safetensors(Path(path))
    if not tensors or not all(k.startswith("lora_") and k.endswith(SUFFIXES) for k in tensors):
        raise UserError(f"{path} is not a kohya-format LoRA (keys like lora_unet_….lora_down.weight); "
                        "convert it with kohya's tools or pass another file")
    return tensors, meta


def lora_arch(path: Path) -> str:
    """'sd15' or 'sdxl', from the metadata when present, else from the keys and shapes."""
    meta = safetensors_metadata(Path(path))
    version = meta.get("ss_base_model_version", "") + meta.get("modelspec.architecture", "")
    if "xl" in version.lower():
        return "sdxl"
    if version:
        return "sd15"
    keys = safetensors_keys(Path(path))
    if any(k.startswith(("lora_te1_", "lora_te2_")) or "input_blocks" in k for k in keys):
        return "sdxl"
    tensors, _ = load_safetensors(Path(path))
    for key, value in tensors.items():
        if "attn2_to_k" in key and key.endswith("lora_down.weight"):
            return _CROSS_DIM_ARCH.get(value.shape[1], "sd15")
    return "sd15"


def _module_shape(module: torch.nn.Module) -> tuple[int, int]:
    base = getattr(module, "base_layer", module)
    if isinstance(base, torch.nn.Conv2d):
        return base.out_channels, base.in_channels
    return base.out_features, base.in_features


def mismatches(tensors: Mapping[str, torch.Tensor], modules: Mapping[str, torch.nn.Module]) -> list[str]:
    """Keys that name no module of the model, or whose shapes do not fit it."""
    bad = []
    for key, value in tensors.items():
        prefix = key.rsplit(".lora_", 1)[0].removesuffix(".alpha")
        module = modules.get(prefix)
        if module is None:
            bad.append(f"{key}: no such module")
            continue
        out_f, in_f = _module_shape(module)
        if key.endswith(".lora_down.weight") and value.shape[1] != in_f:
            bad.append(f"{key}: input width {value.shape[1]} != {in_f}")
        elif key.endswith(".lora_up.weight") and value.shape[0] != out_f:
            bad.append(f"{key}: output width {value.shape[0]} != {out_f}")
    return bad


def check_lora_fits(path: Path, unet, text_encoders: Sequence = (), arch: str = "sd15",
                    base_name: str = "the base model") -> dict[str, torch.Tensor]:
    """Read `path` and raise a UserError when it does not fit the model; return its tensors."""
    tensors, _ = read_kohya_lora(path)
    file_arch = lora_arch(path)
    bad = mismatches(tensors, module_map(unet, text_encoders, arch))
    if bad or file_arch != arch:
        raise UserError(f"{path} is a {file_arch} LoRA that does not fit {base_name} ({arch}; "
                        f"{len(bad)} of {len(tensors)} keys do not match, e.g. {bad[:1]}); "
                        "use a LoRA trained on this base model or change the base model")
    return tensors


@dataclass(frozen=True)
class LoraLayout:
    """Rank and alpha of each module of a kohya file, as peft LoraConfig arguments."""
    targets: dict[str, list[str]]       # "unet" / "te0" / "te1" → module names
    rank: int
    alpha: float
    rank_pattern: dict[str, dict[str, int]]
    alpha_pattern: dict[str, dict[str, float]]


def layout_of(tensors: Mapping[str, torch.Tensor], unet, text_encoders: Sequence,
              arch: str) -> LoraLayout:
    """Which modules of the model a kohya file targets, with their ranks and alphas."""
    targets: dict[str, list[str]] = {}
    ranks: dict[str, dict[str, int]] = {}
    alphas: dict[str, dict[str, float]] = {}
    pairs = [("unet", "lora_unet_", unet)] + [
        (f"te{i}", p, te) for i, (p, te) in enumerate(zip(te_prefixes(arch, len(text_encoders)), text_encoders))]
    for part, prefix, model in pairs:
        for name, module in model.named_modules():
            if not name or _is_peft_internal(name):
                continue
            key = prefix + name.replace(".", "_")
            down = tensors.get(f"{key}.lora_down.weight")
            if down is None:
                continue
            rank = int(down.shape[0])
            alpha = tensors.get(f"{key}.alpha")
            targets.setdefault(part, []).append(name)
            ranks.setdefault(part, {})[name] = rank
            alphas.setdefault(part, {})[name] = float(alpha) if alpha is not None else float(rank)
    all_ranks = [r for d in ranks.values() for r in d.values()]
    all_alphas = [a for d in alphas.values() for a in d.values()]
    if not all_ranks:
        raise UserError("the LoRA targets no module of this model; use one trained on this base model")
    rank = max(set(all_ranks), key=all_ranks.count)
    alpha = max(set(all_alphas), key=all_alphas.count)
    return LoraLayout(
        targets,
        rank,
        alpha,
        {p: {n: r for n, r in d.items() if r != rank} for p, d in ranks.items()},
        {p: {n: a for n, a in d.items() if a != alpha} for p, d in alphas.items()},
    )


@torch.no_grad()
def load_into_adapter(tensors: Mapping[str, torch.Tensor], unet, text_encoders: Sequence,
                      arch: str, adapter: str = "default") -> int:
    """Copy kohya tensors into an existing peft adapter of the same layout; return modules set."""
    count = 0
    for key, module in module_map(unet, text_encoders, arch).items():
        down = tensors.get(f"{key}.lora_down.weight")
        if down is None or not hasattr(module, "lora_A") or adapter not in module.lora_A:
            continue
        a, b = module.lora_A[adapter].weight, module.lora_B[adapter].weight
        a.copy_(down.to(a.device, a.dtype))
        b.copy_(tensors[f"{key}.lora_up.weight"].to(b.device, b.dtype))
        count += 1
    return count
