"""The training objective for one micro-batch: DDPM noise (or velocity) prediction with optional
min-SNR weighting, on cached latents and caption embeddings.

Everything a step reads is on the device before the first step, and batches are gathered with
Python-int indexing + stack: no host→device copy (and so no hidden synchronisation) per step.
"""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F

from lorastrap.training.config import TrainConfig
from lorastrap.training.dataset import PreparedData
from lorastrap.training.encode import encode_text
from lorastrap.training.setup import Models


class Objective:
    def __init__(self, models: Models, data: PreparedData, cfg: TrainConfig, device) -> None:
        self.m, self.data, self.cfg, self.device = models, data, cfg, torch.device(device)
        self.unet = models.unet  # the loop swaps in the accelerate-wrapped (DDP/compiled) module
        alphas = models.noise_scheduler.alphas_cumprod.to(self.device, torch.float32)
        self.sqrt_a = alphas.sqrt()
        self.sqrt_1m = (1.0 - alphas).sqrt()
        self.snr = alphas / (1.0 - alphas)
        self.num_timesteps = len(alphas)
        dtype = models.weight_dtype
        self.latents = [[(m.to(self.device), s.to(self.device)) for m, s in smp.latents] for smp in data.samples]
        self.time_ids = [smp.time_ids.to(self.device, dtype) for smp in data.samples]
        self.text = ({k: v.to(self.device, dtype) for k, v in data.text.items()}
                     if data.text is not None else None)

    def _captions(self, indices: list[int], rng: random.Random) -> list[int]:
        chosen = []
        for i in indices:
            if self.cfg.caption_dropout and rng.random() < self.cfg.caption_dropout:
                chosen.append(0)
            else:
                chosen.append(rng.choice(self.data.samples[i].captions))
        return chosen

    def _condition(self, captions: list[int]) -> dict[str, torch.Tensor]:
        if self.text is not None:
            return {k: torch.stack([v[c] for c in captions]) for k, v in self.text.items()}
        return encode_text(self.m.text, [self.data.captions[c] for c in captions], self.device)

    def loss(self, indices: list[int], gen: torch.Generator, rng: random.Random) -> torch.Tensor:
        flips = [rng.randrange(len(self.latents[i])) for i in indices]
        mean = torch.stack([self.latents[i][f][0] for i, f in zip(indices, flips)])
        std = torch.stack([self.latents[i][f][1] for i, f in zip(indices, flips)])
        cond = self._condition(self._captions(indices, rng))
        batch = mean.shape[0]
        kw = dict(generator=gen, device=self.device)
        latents = (mean + std * torch.randn(mean.shape, **kw) - self.m.latent_shift) * self.m.latent_scale
        noise = torch.randn(latents.shape, **kw)
        if self.cfg.noise_offset:
            noise = noise + self.cfg.noise_offset * torch.randn((batch, latents.shape[1], 1, 1), **kw)
        t = torch.randint(0, self.num_timesteps, (batch,), **kw)
        a, s = self.sqrt_a[t].view(-1, 1, 1, 1), self.sqrt_1m[t].view(-1, 1, 1, 1)
        noisy = a * latents + s * noise
        target = noise if self.m.prediction_type == "epsilon" else a * noise - s * latents
        extra = {}
        if self.m.arch == "sdxl":
            extra["added_cond_kwargs"] = {"text_embeds": cond["pooled"],
                                          "time_ids": torch.stack([self.time_ids[i] for i in indices])}
        dtype = self.m.weight_dtype
        if self.cfg.channels_last:
            noisy = noisy.contiguous(memory_format=torch.channels_last)
        pred = self.unet(noisy.to(dtype), t, cond["hidden"].to(dtype), **extra).sample
        loss = F.mse_loss(pred.float(), target, reduction="none").mean(dim=(1, 2, 3))
        if self.cfg.min_snr_gamma:
            snr = self.snr[t]
            clipped = snr.clamp(max=self.cfg.min_snr_gamma)
            loss = loss * (clipped / snr if self.m.prediction_type == "epsilon" else clipped / (snr + 1))
        return loss.mean()
