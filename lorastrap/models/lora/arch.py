"""Which base-model architecture a LoRA is for — the one place lorastrap decides it.

Order: the file's own metadata (`modelspec.architecture`, sd-scripts' `ss_base_model_version` /
`ss_v2`), then the text encoders present (SDXL has two), then tensor widths (cross-attention and
text-encoder width: 768 SD 1.x, 1024 SD 2.x, 2048 SDXL; 32/80 are lorastrap's tiny SD1.5/SDXL), then
the block layout. None when nothing tells.
"""

from __future__ import annotations

from lorastrap.models.lora.core import LoraFile

ARCHS = ("sd15", "sd2", "sdxl")
ARCH_LABELS = {"sd15": "SD1.5", "sd2": "SD2.x", "sdxl": "SDXL"}
# What sd-scripts and the Stability model spec write for each architecture.
BASE_MODEL_VERSION = {"sd15": "sd_v1", "sd2": "sd_v2", "sdxl": "sdxl_base_v1-0"}
MODELSPEC_ARCH = {"sd15": "stable-diffusion-v1/lora", "sd2": "stable-diffusion-v2-512/lora",
                  "sdxl": "stable-diffusion-xl-v1-base/lora"}
_CROSS_WIDTH = {768: "sd15", 1024: "sd2", 2048: "sdxl", 32: "sd15", 80: "sdxl"}
_TE_WIDTH = {768: "sd15", 1024: "sd2", 32: "sd15"}


def arch_from_metadata(metadata: dict[str, str]) -> str | None:
    spec = metadata.get("modelspec.architecture", "")
    for prefix, arch in (("stable-diffusion-xl", "sdxl"), ("stable-diffusion-v1", "sd15"), ("stable-diffusion-v2", "sd2")):
        if spec.startswith(prefix):
            return arch
    version = metadata.get("ss_base_model_version", "")
    if version.startswith("sdxl"):
        return "sdxl"
    if version.startswith("sd_v2") or metadata.get("ss_v2") == "True":
        return "sd2"
    if version.startswith("sd_v1"):
        return "sd15"
    return None


def detect_arch(lora: LoraFile) -> str | None:
    """sd15 / sd2 / sdxl from metadata, then keys, then tensor shapes; None when nothing tells."""
    found = arch_from_metadata(lora.metadata)
    if found:
        return found
    keys = lora.modules.keys()
    if any(k.startswith("te2.") for k in keys):
        return "sdxl"
    for key, module in lora.modules.items():
        if key.startswith("unet.") and key.endswith(("attn2_to_k", "attn2_to_v")) and module.in_features in _CROSS_WIDTH:
            return _CROSS_WIDTH[module.in_features]
    for key, module in lora.modules.items():
        if key.startswith("te1.") and key.endswith("self_attn_q_proj") and module.in_features in _TE_WIDTH:
            return _TE_WIDTH[module.in_features]
    # SD 1.x/2.x have attention in the first down block and none in up block 0; SDXL the reverse.
    if any(k.startswith(("unet.down_blocks_0_attentions", "unet.up_blocks_3_attentions")) for k in keys):
        return "sd15"
    if any(k.startswith("unet.up_blocks_0_attentions") for k in keys):
        return "sdxl"
    return None


def carried_metadata(lora: LoraFile) -> dict[str, str]:
    """The file's ss_*/modelspec.*/lorastrap.* keys, with the architecture stated when the file did not."""
    meta = {k: v for k, v in lora.metadata.items() if k.startswith(("ss_", "modelspec.", "lorastrap."))}
    if lora.arch:
        meta.setdefault("modelspec.architecture", MODELSPEC_ARCH[lora.arch])
    return meta
