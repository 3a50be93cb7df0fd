"""Batched, seeded generation from a lab pipeline (DDIM + classifier-free guidance).

Each image's starting noise comes from its own seed on the CPU, so an image is the same whatever
the batch it is in and whatever the device. Works on any StableDiffusionPipeline, with or without
LoRA adapters loaded into it.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Sequence

import numpy as np
import torch
from PIL import Image


def _encode(pipe, prompts: Sequence[str], device: torch.device) -> torch.Tensor:
    tok = pipe.tokenizer(list(prompts), padding="max_length", max_length=pipe.tokenizer.model_max_length,
                         truncation=True, return_tensors="pt")
    return pipe.text_encoder(tok.input_ids.to(device))[0]


@torch.no_grad()
def generate(pipe, prompts: Sequence[str], seeds: Sequence[int], *, steps: int = 25,
             guidance: float = 4.0, negative: str = "", batch: int = 64,
             autocast: bool = False) -> list[Image.Image]:
    """One image per (prompt, seed)."""
    from diffusers import DDIMScheduler

    if len(prompts) != len(seeds):
        raise ValueError("need one seed per prompt")
    device = pipe.unet.device
    dtype = pipe.unet.dtype
    sched = DDIMScheduler.from_config(pipe.scheduler.config)
    size = pipe.unet.config.sample_size
    scaling = pipe.vae.config.scaling_factor
    out: list[Image.Image] = []
    ctx = torch.autocast("cuda", dtype=torch.bfloat16) if autocast and device.type == "cuda" else nullcontext()
    for a in range(0, len(prompts), batch):
        chunk, chunk_seeds = list(prompts[a:a + batch]), list(seeds[a:a + batch])
        n = len(chunk)
        with ctx:
            cond = _encode(pipe, chunk, device)
            uncond = _encode(pipe, [negative] * n, device)
            emb = torch.cat([uncond, cond]).to(dtype)
            noise = torch.cat([torch.randn(1, 4, size, size, generator=torch.Generator().manual_seed(int(s)))
                               for s in chunk_seeds]).to(device, dtype)
            sched.set_timesteps(steps)
            x = noise * sched.init_noise_sigma
            for t in sched.timesteps:
                eps = pipe.unet(torch.cat([x, x]), t, emb).sample
                e_u, e_c = eps.chunk(2)
                x = sched.step(e_u + guidance * (e_c - e_u), t, x).prev_sample
            img = pipe.vae.decode((x / scaling).to(pipe.vae.dtype)).sample
        arr = ((img.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        arr = arr.permute(0, 2, 3, 1).cpu().numpy()
        out.extend(Image.fromarray(np.ascontiguousarray(x_)) for x_ in arr)
    return out



def contact_sheet(images: Sequence[Image.Image], cols: int = 10, scale: int = 2) -> Image.Image:
    """Images in a grid (row-major), each enlarged `scale`× without smoothing."""
    w, h = images[0].size
    rows = (len(images) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * w, rows * h), "white")
    for i, img in enumerate(images):
        sheet.paste(img.convert("RGB"), ((i % cols) * w, (i // cols) * h))
    return sheet.resize((sheet.width * scale, sheet.height * scale), Image.NEAREST)
