"""Loading the base model for training and attaching (or restoring) the LoRA adapters."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from lorastrap.models.base import BaseModelRef, load_pipeline
from lorastrap.models.lora.adapters import adapter_layout, check_adapter_names, load_into_adapter, te_components
from lorastrap.models.lora.core import LoraFile
from lorastrap.models.lora.names import UnetBlocks
from lorastrap.models.lora.read import read_lora
from lorastrap.models.lora.validate import base_modules, check_fits
from lorastrap.training.config import TrainConfig
from lorastrap.training.encode import TextStack

ADAPTER = "lorastrap"


@dataclass
class Models:
    pipe: object
    arch: str
    unet: torch.nn.Module
    vae: torch.nn.Module
    text: TextStack
    noise_scheduler: object
    prediction_type: str
    rank: int
    alpha: float
    trained_text_encoders: list[torch.nn.Module]  # empty when only the UNet is trained
    weight_dtype: torch.dtype
    latent_scale: float = 0.18215
    latent_shift: float = 0.0

    @property
    def blocks(self) -> UnetBlocks:
        """The UNet layout its LoRA key names are written in (SDXL: original block numbers)."""
        return UnetBlocks.from_config(self.unet.config)

    @property
    def unet_levels(self) -> int:
        return len(self.unet.config.block_out_channels)

    def text_encoders_for_keys(self) -> list[torch.nn.Module]:
        """Text encoders in kohya key order (te / te1, te2), only when some are trained."""
        return list(self.text.encoders) if self.trained_text_encoders else []


def lora_config(rank: int, alpha: float, targets, dropout: float, rank_pattern=None, alpha_pattern=None):
    from peft import LoraConfig

    return LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(targets),
                      init_lora_weights=True, rank_pattern=rank_pattern or {},
                      alpha_pattern=alpha_pattern or {})


def place_trainable(modules, device, weight_dtype: torch.dtype) -> None:  # type: ignore[no-untyped-def]
    """Frozen weights in `weight_dtype` on the device; trainable (LoRA) weights stay fp32, so
    small updates are not rounded away under bf16/fp16 autocast."""
    for module in modules:
        module.to(device, weight_dtype)
        for param in module.parameters():
            if param.requires_grad:
                param.data = param.data.float()


def read_checked_lora(ref: BaseModelRef, path: Path, what: str) -> LoraFile:
    """Read a LoRA file and refuse it (one line) unless it fits the base model `ref`."""
    base = base_modules(ref)
    lora = read_lora(path, base.blocks)
    check_fits(lora, base, f"{what} {Path(path).name}")
    return lora


def setup_models(ref: BaseModelRef, cfg: TrainConfig, init_from: Path | LoraFile | None, device,
                 weight_dtype: torch.dtype) -> Models:
    """Load the base model, freeze it, attach LoRA adapters (from `init_from` when given)."""
    from diffusers import DDPMScheduler
    from peft import inject_adapter_in_model

    pipe = load_pipeline(ref)
    arch = ref.arch
    text = TextStack.from_pipeline(pipe, arch)
    for module in [pipe.unet, pipe.vae, *text.encoders]:
        module.requires_grad_(False)

    rank, alpha = cfg.rank, cfg.alpha
    unet_targets, te_targets = list(cfg.target_modules), [list(cfg.text_encoder_targets)] * len(text.encoders)
    patterns: dict = {}
    train_te = cfg.train_text_encoder
    init = init_from if init_from is None or isinstance(init_from, LoraFile) else \
        read_checked_lora(ref, Path(init_from), "--init-from")
    if init is not None:
        layout = adapter_layout(init, pipe.unet, text.encoders)
        rank, alpha = layout.rank, layout.alpha
        unet_targets = layout.targets.get("unet", [])
        file_te = [layout.targets.get(c, []) for c in te_components(len(text.encoders))]
        if any(file_te):
            train_te, te_targets = True, file_te
        patterns = {"rank": layout.rank_pattern, "alpha": layout.alpha_pattern}

    torch.manual_seed(cfg.seed)  # the adapters' random init is part of the run's determinism
    pipe.unet.add_adapter(lora_config(rank, alpha, unet_targets, cfg.lora_dropout,
                                       patterns.get("rank", {}).get("unet"),
                                       patterns.get("alpha", {}).get("unet")), adapter_name=ADAPTER)
    trained_te = []
    if train_te:
        for component, encoder, targets in zip(te_components(len(text.encoders)), text.encoders, te_targets):
            if targets:
                config = lora_config(rank, alpha, targets, cfg.lora_dropout,
                                      patterns.get("rank", {}).get(component),
                                      patterns.get("alpha", {}).get(component))
                inject_adapter_in_model(config, encoder, adapter_name=ADAPTER)
            trained_te.append(encoder)
    check_adapter_names(pipe.unet, trained_te, ADAPTER)  # a module without a kohya name fails now, not at save
    if init is not None:
        load_into_adapter(init, pipe.unet, text.encoders if trained_te else [], ADAPTER)

    place_trainable([pipe.unet, *text.encoders], device, weight_dtype)
    pipe.vae.to(device, torch.float32)  # encoded once; fp16 SD VAEs overflow

    prediction = cfg.prediction_type or pipe.scheduler.config.get("prediction_type", "epsilon")
    noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config, prediction_type=prediction)
    return Models(pipe, arch, pipe.unet, pipe.vae, text, noise_scheduler, prediction, rank, alpha,
                  trained_te, weight_dtype, float(pipe.vae.config.scaling_factor),
                  float(getattr(pipe.vae.config, "shift_factor", None) or 0.0))
