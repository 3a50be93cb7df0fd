"""Writing a pipeline as a single-file checkpoint in the original (ldm/sgm) layout, plus the local
diffusers config folder that lets diffusers' single-file loader read it offline.

Used for the tiny models (`lorastrap model tiny --single-file`): the same kind of file as a
checkpoint downloaded for A1111/ComfyUI, so the single-file path (resolve → from_single_file with a
local config → train, generate, clash) runs for real in the tests.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save as save_to_bytes

from lorastrap.kernel.atomic import atomic_write_bytes, replaced_dir
from lorastrap.models.checkpoint_layout import (
    TEXT_ENCODERS,
    UNET_PREFIX,
    VAE_PREFIX,
    clip_param,
    clip_to_openclip,
    vae_to_ldm,
)
from lorastrap.models.lora.names import UnetBlocks, diffusers_to_sgm

_VAE_ATTENTION_WEIGHTS = (".mid.attn_1.q.weight", ".mid.attn_1.k.weight", ".mid.attn_1.v.weight",
                          ".mid.attn_1.proj_out.weight")


def checkpoint_state(pipe, arch: str) -> dict[str, torch.Tensor]:  # type: ignore[no-untyped-def]
    """Every weight of the pipeline under its single-file checkpoint name."""
    out: dict[str, torch.Tensor] = {}
    blocks = UnetBlocks.from_config(pipe.unet.config)
    for key, value in pipe.unet.state_dict().items():
        module, _, kind = key.rpartition(".")
        out[f"{UNET_PREFIX}{diffusers_to_sgm(module, blocks)}.{kind}"] = value
    up_blocks = len(pipe.vae.config.up_block_types)
    for key, value in pipe.vae.state_dict().items():
        name = vae_to_ldm(key, up_blocks)
        if name.endswith(_VAE_ATTENTION_WEIGHTS) and value.dim() == 2:
            value = value[:, :, None, None]  # ldm's VAE attention projections are 1×1 convolutions
        out[VAE_PREFIX + name] = value
    encoders = [pipe.text_encoder, getattr(pipe, "text_encoder_2", None)]
    for (prefix, kind), encoder in zip(TEXT_ENCODERS[arch].values(), encoders):
        state = encoder.state_dict()
        names = ({clip_param(k): v for k, v in state.items()} if kind == "clip" else clip_to_openclip(state))
        out.update({prefix + k: v for k, v in names.items()})
    return {k: v.detach().contiguous() for k, v in out.items()}


def write_single_file(pipe, arch: str, path: Path, config_dir: Path | None = None) -> Path:  # type: ignore[no-untyped-def]
    """Write `path` (.safetensors checkpoint) and its config folder (default: `path` without suffix,
    where `resolve_base_model` looks for it): model_index.json, component configs, tokenizers."""
    path = Path(path)
    config_dir = Path(config_dir) if config_dir else path.with_suffix("")
    with replaced_dir(config_dir) as stage:
        pipe.save_pretrained(str(stage), safe_serialization=True)
        for weights in stage.rglob("*.safetensors"):
            weights.unlink()  # configs only: the weights live in the single file
    atomic_write_bytes(path, save_to_bytes(checkpoint_state(pipe, arch), metadata={"format": "pt"}))
    return path


def build_tiny_single_file(path: Path, arch: str = "sd15", seed: int = 0) -> Path:
    """The built-in tiny model (same weights as `build_tiny_model`) as a single-file checkpoint."""
    import tempfile

    from lorastrap.models.tiny import build_pipeline

    with tempfile.TemporaryDirectory(prefix="lorastrap-tok-") as tok:
        pipe = build_pipeline(arch, seed, tokenizer_dir=Path(tok))
        return write_single_file(pipe, arch, path)
