"""Text and image encoding shared by caching, the training step and sampling.

SD 1.x conditions on the text encoder's last hidden state. SDXL concatenates the penultimate
hidden states of both encoders and adds the second encoder's pooled embedding plus six size/crop
numbers ("time ids"), exactly as `StableDiffusionXLPipeline.encode_prompt` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image


@dataclass
class TextStack:
    arch: str
    tokenizers: list
    encoders: list

    @classmethod
    def from_pipeline(cls, pipe, arch: str) -> "TextStack":
        if arch == "sdxl":
            return cls(arch, [pipe.tokenizer, pipe.tokenizer_2], [pipe.text_encoder, pipe.text_encoder_2])
        return cls(arch, [pipe.tokenizer], [pipe.text_encoder])

    def to(self, device) -> "TextStack":
        for enc in self.encoders:
            enc.to(device)
        return self


def encode_text(stack: TextStack, captions: Sequence[str], device) -> dict[str, torch.Tensor]:
    """{"hidden": [B, 77, D]} and for SDXL also {"pooled": [B, D2]}."""
    hidden_parts, pooled = [], None
    for tokenizer, encoder in zip(stack.tokenizers, stack.encoders):
        ids = tokenizer(list(captions), padding="max_length", max_length=tokenizer.model_max_length,
                        truncation=True, return_tensors="pt").input_ids.to(device)
        if stack.arch == "sdxl":
            out = encoder(ids, output_hidden_states=True)
            hidden_parts.append(out.hidden_states[-2])
            pooled = out[0]  # the projected text embedding of the last encoder
        else:
            hidden_parts.append(encoder(ids)[0])
    result = {"hidden": torch.cat(hidden_parts, dim=-1)}
    if pooled is not None:
        result["pooled"] = pooled
    return result


def image_to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB PIL image → [3, H, W] float in [-1, 1]."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


@torch.no_grad()
def encode_images(vae, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior mean and std of the VAE for a [B, 3, H, W] batch (unscaled)."""
    dist = vae.encode(pixels.to(vae.device, vae.dtype)).latent_dist
    return dist.mean.float(), dist.std.float()


def time_ids(original_hw: tuple[int, int], crop_yx: tuple[int, int], target_hw: tuple[int, int]) -> torch.Tensor:
    return torch.tensor([*original_hw, *crop_yx, *target_hw], dtype=torch.float32)
