"""Constructed LoRAs with known geometry, for the weight-space tests and the benchmark.

`module_shapes(unet_config)` lists what kohya's default LoRA network targets in a UNet (the linear
and 1×1 layers inside every Transformer2DModel) without allocating weights (meta device), plus the
CLIP text-encoder layers; `random_lora` fills them with random factors.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from lorastrap.models.lora import LoraFile, LoraModule, detect_arch

SD15_UNET_CONFIG = {
    "sample_size": 64, "in_channels": 4, "out_channels": 4, "layers_per_block": 2,
    "block_out_channels": [320, 640, 1280, 1280], "cross_attention_dim": 768, "attention_head_dim": 8,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
}
_TE_LAYERS = {"self_attn_q_proj": (1, 1), "self_attn_k_proj": (1, 1), "self_attn_v_proj": (1, 1),
              "self_attn_out_proj": (1, 1), "mlp_fc1": (4, 1), "mlp_fc2": (1, 4)}


def unet_lora_shapes(unet: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    """{canonical key: (out, in) or (out, in, kh, kw) for convs} of the attention-block layers."""
    shapes: dict[str, tuple[int, ...]] = {}
    for name, module in unet.named_modules():
        if "attentions" not in name or not isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
            continue
        shapes["unet." + name.replace(".", "_")] = tuple(int(d) for d in module.weight.shape)
    return shapes


def module_shapes(unet_config: Mapping = SD15_UNET_CONFIG, te_width: int = 768,
                  te_layers: int = 12) -> dict[str, tuple[int, ...]]:
    """The layers a kohya LoRA trains for a UNet config (no weights allocated), plus the text encoder."""
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):
        unet = UNet2DConditionModel(**dict(unet_config))
    shapes = unet_lora_shapes(unet)
    for layer in range(te_layers):
        for suffix, (out_mult, in_mult) in _TE_LAYERS.items():
            shapes[f"te1.text_model_encoder_layers_{layer}_{suffix}"] = (te_width * out_mult, te_width * in_mult)
    return shapes


def lora_from_modules(modules: Mapping[str, tuple[torch.Tensor, torch.Tensor, float]],
                      metadata: dict[str, str] | None = None) -> LoraFile:
    """A LoraFile from {canonical key: (down, up, alpha)}."""
    parsed = {k: LoraModule(k, d.float(), u.float(), float(a)) for k, (d, u, a) in modules.items()}
    lora = LoraFile(parsed, None, "kohya", dict(metadata or {}))
    lora.arch = detect_arch(lora)
    return lora


def random_lora(shapes: Mapping[str, tuple[int, ...]], rank: int, seed: int = 0,
                alpha: float | None = None, metadata: dict[str, str] | None = None) -> LoraFile:
    """Gaussian factors scaled like a trained LoRA (small up, unit-ish down)."""
    generator = torch.Generator().manual_seed(seed)
    modules = {}
    for key, (out_f, in_f, *kernel) in shapes.items():
        fan_in = in_f * (kernel[0] * kernel[1] if kernel else 1)
        down = torch.randn(rank, in_f, *kernel, generator=generator) / fan_in ** 0.5
        up = torch.randn(out_f, rank, *([1, 1] if kernel else []), generator=generator) * 0.01
        modules[key] = (down, up, float(alpha if alpha is not None else rank))
    return lora_from_modules(modules, metadata)
