"""Read a LoRA safetensors file in kohya OR diffusers/peft key format into one normalised map.

Every module becomes `LoraModule(key, down, up, alpha)` under a canonical key
`<component>.<flat diffusers name>` (component `unet`, `te1` or `te2`), so a kohya file and a
diffusers file of the same network compare module by module. sd-scripts writes SDXL UNet keys in
the original (compvis) layout (`input_blocks_4_1_…`); those are mapped to the diffusers names.

Only plain LoRA (down/up/alpha) is read; LoHa/LoKr and other LyCORIS algorithms are rejected with
a clear message. Never unpickles: safetensors only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from lorastrap.errors import UserError
from lorastrap.models.safetensors_io import load_safetensors

ARCHS = ("sd15", "sd2", "sdxl")
_KOHYA_PREFIXES = (("lora_unet_", "unet"), ("lora_te1_", "te1"), ("lora_te2_", "te2"), ("lora_te_", "te1"))
_DIFFUSERS_PREFIXES = (("unet.", "unet"), ("text_encoder_2.", "te2"), ("text_encoder.", "te1"))
_UNET_ROOTS = ("down_blocks", "mid_block", "up_blocks", "conv_in", "conv_out", "time_embedding")
_LYCORIS_MARKERS = ("hada_w1", "lokr_w1", "oft_blocks", ".b1.weight", "lora_mid")
_DOWN_SUFFIXES = (".lora_down.weight", ".lora_A.weight", ".lora.down.weight", ".lora_linear_layer.down.weight")
_UP_SUFFIXES = (".lora_up.weight", ".lora_B.weight", ".lora.up.weight", ".lora_linear_layer.up.weight")
_RESNET_SUFFIXES = {
    "in_layers_2": "conv1", "out_layers_3": "conv2", "emb_layers_1": "time_emb_proj",
    "skip_connection": "conv_shortcut", "in_layers_0": "norm1", "out_layers_0": "norm2",
}


@dataclass(frozen=True)
class LoraModule:
    """One LoRA pair: ΔW = (alpha / rank) · up @ down (conv kernels flattened to matrices)."""

    key: str
    down: torch.Tensor  # [rank, in] or [rank, in, kh, kw]
    up: torch.Tensor  # [out, rank] or [out, rank, 1, 1]
    alpha: float

    @property
    def rank(self) -> int:
        return int(self.down.shape[0])

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    @property
    def out_features(self) -> int:
        return int(self.up.shape[0])

    @property
    def in_features(self) -> int:
        return int(self.down[0].numel())

    def down_matrix(self) -> torch.Tensor:
        return self.down.reshape(self.rank, -1).to(torch.float64)

    def up_matrix(self) -> torch.Tensor:
        return self.up.reshape(self.out_features, -1).to(torch.float64)

    def delta(self) -> torch.Tensor:
        """The dense ΔW as a float64 [out, in·kh·kw] matrix (only for small modules and tests)."""
        return self.scale * self.up_matrix() @ self.down_matrix()


@dataclass
class LoraFile:
    """A parsed LoRA: canonical modules plus what was learnt about the file on the way."""

    modules: dict[str, LoraModule]
    arch: str | None  # one of ARCHS, or None when nothing in the file tells
    key_format: str  # "kohya" | "diffusers"
    metadata: dict[str, str] = field(default_factory=dict)
    path: Path | None = None
    warnings: list[str] = field(default_factory=list)
    source_keys: tuple[str, ...] = ()  # the tensor names as stored in the file
    source_stems: dict[str, str] = field(default_factory=dict)  # canonical key → the file's kohya stem

    def kohya_key(self, key: str, native: bool = True) -> str:
        """The kohya key stem (`lora_unet_…`) of a canonical module key.

        native: the name the source kohya file used (SDXL sd-scripts files keep their original-layout
        `input_blocks_…` names); else the diffusers-style name that diffusers' loader and lorastrap's
        generator map module by module (A1111 reads both).
        """
        if native and key in self.source_stems:
            return self.source_stems[key]
        component, flat = key.split(".", 1)
        if component == "unet":
            return f"lora_unet_{flat}"
        if component == "te2":
            return f"lora_te2_{flat}"
        return f"lora_te1_{flat}" if self.arch == "sdxl" else f"lora_te_{flat}"

    def shape_signature(self) -> dict[str, tuple[int, int]]:
        return {k: (m.out_features, m.in_features) for k, m in self.modules.items()}


class LoraFormatError(UserError):
    """The file is not a LoRA lorastrap can read (format, key layout or architecture)."""


def _compvis_to_diffusers(flat: str) -> str:
    """Map an original-layout UNet name (`input_blocks_4_1_…`) to the diffusers one (`down_blocks_1_attentions_0_…`)."""
    match = re.match(r"input_blocks_(\d+)_(\d+)_(.+)", flat)
    if match:
        n, m, rest = int(match[1]), int(match[2]), match[3]
        if n == 0:
            return f"conv_in_{rest}" if m == 0 else flat
        block, layer = divmod(n - 1, 3)
        if layer == 2:  # the third entry of each level is the downsampler
            return f"down_blocks_{block}_downsamplers_0_{'conv' if rest.startswith('op') else rest}"
        if m == 0:
            return f"down_blocks_{block}_resnets_{layer}_{_RESNET_SUFFIXES.get(rest, rest)}"
        return f"down_blocks_{block}_attentions_{layer}_{rest}"
    match = re.match(r"middle_block_(\d+)_(.+)", flat)
    if match:
        m, rest = int(match[1]), match[2]
        if m == 1:
            return f"mid_block_attentions_0_{rest}"
        return f"mid_block_resnets_{m // 2}_{_RESNET_SUFFIXES.get(rest, rest)}"
    match = re.match(r"output_blocks_(\d+)_(\d+)_(.+)", flat)
    if match:
        n, m, rest = int(match[1]), int(match[2]), match[3]
        block, layer = divmod(n, 3)
        if m == 0:
            return f"up_blocks_{block}_resnets_{layer}_{_RESNET_SUFFIXES.get(rest, rest)}"
        if rest.startswith("conv"):  # the upsampler sits at index 1 or 2 and only has `conv`
            return f"up_blocks_{block}_upsamplers_0_{rest}"
        return f"up_blocks_{block}_attentions_{layer}_{rest}"
    return flat


def _split_kohya(stem: str) -> tuple[str, str] | None:
    for prefix, component in _KOHYA_PREFIXES:
        if stem.startswith(prefix):
            flat = stem[len(prefix):]
            return component, _compvis_to_diffusers(flat) if component == "unet" else flat
    return None


def _split_diffusers(stem: str) -> tuple[str, str] | None:
    stem = stem.removeprefix("base_model.model.")
    for prefix, component in _DIFFUSERS_PREFIXES:
        if stem.startswith(prefix):
            return component, stem[len(prefix):].replace(".", "_")
    if stem.startswith(_UNET_ROOTS):  # bare peft state dict of a UNet
        return "unet", stem.replace(".", "_")
    return None


def _strip(key: str, suffixes: tuple[str, ...]) -> str | None:
    for suffix in suffixes:
        if key.endswith(suffix):
            return key[: -len(suffix)]
    return None


def _diffusers_alphas(metadata: dict[str, str]) -> dict[str, dict]:
    """Per-component peft settings from diffusers' `lora_adapter_metadata` (alpha is lost without it)."""
    raw = metadata.get("lora_adapter_metadata")
    if not raw:
        return {}
    try:
        packed = json.loads(raw)
    except json.JSONDecodeError:
        return {}
    out: dict[str, dict] = {}
    for key, value in packed.items():
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


def read_lora(path: str | Path) -> LoraFile:
    """Parse a LoRA file; raises `LoraFormatError` (one line + what to do) for anything unreadable."""
    path = Path(path)
    if not path.is_file():
        raise LoraFormatError(f"{path}: no such file; give the path of a .safetensors LoRA")
    if path.suffix.lower() != ".safetensors":
        raise LoraFormatError(
            f"{path.name}: only .safetensors LoRAs are read (pickled .ckpt/.pt files are never loaded); "
            "convert it to safetensors first"
        )
    try:
        tensors, metadata = load_safetensors(path)
    except UserError as exc:
        raise LoraFormatError(str(exc)) from exc
    lora = parse_lora_tensors(tensors, metadata, name=path.name)
    lora.path = path
    return lora


def parse_lora_tensors(tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None, name: str = "LoRA") -> LoraFile:
    """Normalise an in-memory LoRA state dict (kohya or diffusers/peft keys)."""
    metadata = dict(metadata or {})
    if any(marker in key for key in tensors for marker in _LYCORIS_MARKERS):
        raise LoraFormatError(
            f"{name}: LyCORIS (LoHa/LoKr/OFT) weights are not plain LoRA; use a LoRA (lora_down/lora_up) file "
            "or convert it with LyCORIS' extract tools"
        )
    kohya = any(key.startswith(("lora_unet_", "lora_te")) for key in tensors)
    pairs: dict[tuple[str, str], dict[str, object]] = {}
    stems: dict[tuple[str, str], str] = {}
    warnings: list[str] = []
    for key, tensor in tensors.items():
        if key.endswith(".dora_scale"):
            warnings.append(f"{key}: DoRA magnitude ignored; the analysis uses the low-rank direction only")
            continue
        role, stem = "alpha", key[: -len(".alpha")] if key.endswith(".alpha") else None
        if stem is None:
            role, stem = "down", _strip(key, _DOWN_SUFFIXES)
        if stem is None:
            role, stem = "up", _strip(key, _UP_SUFFIXES)
        if stem is None:
            continue
        split = _split_kohya(stem) if kohya else _split_diffusers(stem)
        if split is None:
            warnings.append(f"{key}: not a UNet or text-encoder module; skipped")
            continue
        pairs.setdefault(split, {})[role] = tensor
        stems[split] = stem
    if not pairs:
        raise LoraFormatError(
            f"{name}: no LoRA weights found (expected kohya `lora_unet_…lora_down.weight` or diffusers "
            "`unet.…lora_A.weight` keys); is this a full checkpoint rather than a LoRA?"
        )
    peft = _diffusers_alphas(metadata) if not kohya else {}
    modules: dict[str, LoraModule] = {}
    for (component, flat), parts in sorted(pairs.items()):
        if "down" not in parts or "up" not in parts:
            raise LoraFormatError(f"{name}: module {flat} has no {'up' if 'down' in parts else 'down'} weight; the file is incomplete")
        down = parts["down"].detach().to(torch.float32)
        up = parts["up"].detach().to(torch.float32)
        rank = int(down.shape[0])
        if int(up.shape[1]) != rank:
            raise LoraFormatError(f"{name}: module {flat} has down rank {rank} but up rank {up.shape[1]}; the file is damaged")
        if "alpha" in parts:
            alpha = float(torch.as_tensor(parts["alpha"]).float().item())
        elif peft:
            dotted = stems[(component, flat)].split(".", 1)[-1]
            alpha = _peft_alpha(peft.get(component, {}), dotted, rank)
        else:
            alpha = float(rank)  # what diffusers assumes for a file with no alpha at all
        key = f"{component}.{flat}"
        modules[key] = LoraModule(key, down, up, alpha)
    lora = LoraFile(modules, None, "kohya" if kohya else "diffusers", metadata, warnings=warnings,
                    source_keys=tuple(sorted(tensors)),
                    source_stems={f"{c}.{f}": stem for (c, f), stem in stems.items()} if kohya else {})
    lora.arch = detect_arch(lora)
    return lora


# Cross-attention width → architecture; 32/64 are lorastrap's tiny SD1.5/SDXL test models.
_CONTEXT_DIM_ARCH = {768: "sd15", 1024: "sd2", 2048: "sdxl", 32: "sd15", 64: "sdxl"}


def detect_arch(lora: LoraFile) -> str | None:
    """sd15 / sd2 / sdxl from metadata, then keys, then tensor shapes; None when nothing tells."""
    spec = lora.metadata.get("modelspec.architecture", "")
    if spec.startswith("stable-diffusion-xl"):
        return "sdxl"
    if spec.startswith("stable-diffusion-v1"):
        return "sd15"
    if spec.startswith("stable-diffusion-v2"):
        return "sd2"
    version = lora.metadata.get("ss_base_model_version", "")
    if version.startswith("sdxl"):
        return "sdxl"
    if version.startswith("sd_v1"):
        return "sd15"
    if version.startswith("sd_v2") or lora.metadata.get("ss_v2") == "True":
        return "sd2"
    keys = lora.modules.keys()
    if any(k.startswith("te2.") for k in keys):
        return "sdxl"
    for key, module in lora.modules.items():
        if key.startswith("unet.") and key.endswith("attn2_to_k") and module.in_features in _CONTEXT_DIM_ARCH:
            return _CONTEXT_DIM_ARCH[module.in_features]
    # SD1.x/2.x have attention in the first down block; SDXL has none there but in up block 0.
    if any(k.startswith(("unet.down_blocks_0_attentions", "unet.up_blocks_3_attentions")) for k in keys):
        return "sd15"
    if any(k.startswith("unet.up_blocks_0_attentions") for k in keys):
        return "sdxl"
    return None


ARCH_LABELS = {"sd15": "SD1.5", "sd2": "SD2.x", "sdxl": "SDXL"}
MODELSPEC_ARCH = {"sd15": "stable-diffusion-v1/lora", "sd2": "stable-diffusion-v2-512/lora",
                  "sdxl": "stable-diffusion-xl-v1-base/lora"}


def kohya_metadata(lora: LoraFile) -> dict[str, str]:
    """The file's ss_*/modelspec.* keys, with the architecture stated when the file did not say it."""
    meta = {k: v for k, v in lora.metadata.items() if k.startswith(("ss_", "modelspec.", "lorastrap."))}
    if lora.arch:
        meta.setdefault("modelspec.architecture", MODELSPEC_ARCH[lora.arch])
    return meta


def check_compatible(style: LoraFile, character: LoraFile, style_name: str = "style", base_arch: str | None = None) -> None:
    """Raise `LoraFormatError` when the style LoRA cannot apply to the character's base model."""
    target = base_arch or character.arch
    if style.arch and target and style.arch != target:
        raise LoraFormatError(
            f"{style_name} is an {ARCH_LABELS[style.arch]} LoRA but the character's base model is "
            f"{ARCH_LABELS[target]}; use a style LoRA trained for {ARCH_LABELS[target]}"
        )
    theirs = character.shape_signature()
    for key, shape in style.shape_signature().items():
        if key in theirs and theirs[key] != shape:
            raise LoraFormatError(
                f"{style_name}: module {key} is {shape[0]}x{shape[1]} but the character's is "
                f"{theirs[key][0]}x{theirs[key][1]}; the two LoRAs were trained on different base models"
            )
