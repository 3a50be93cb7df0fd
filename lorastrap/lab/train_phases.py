"""The two pretraining phases of the lab model: the VAE, then the UNet with the text encoder.

Both run through one step loop that fixes its step count from a time budget after a short
calibration (or takes it given), follows warmup + cosine learning rates, checkpoints on a timer
and shows a progress bar. Randomness is derived from (seed, step), so a resumed run draws the same
batches as an uninterrupted one.
"""

from __future__ import annotations

import math
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from lorastrap.kernel.progress import progress_bar

_CAL_FROM, _CAL_TO = 5, 20  # steps timed to size a budgeted phase


@dataclass
class Runtime:
    device: torch.device
    seed: int
    progress: bool = True

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def autocast(self):
        return torch.autocast("cuda", dtype=torch.bfloat16) if self.cuda else nullcontext()

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def generator(self, step: int, stream: int, device: torch.device | None = None) -> torch.Generator:
        g = torch.Generator(device=device or self.device)
        return g.manual_seed((self.seed * 1_000_003 + stream * 1_000_000_007 + step) % (2**63))


def make_optimizer(params, lr: float, device: torch.device) -> torch.optim.AdamW:
    return torch.optim.AdamW(list(params), lr=lr, betas=(0.9, 0.99), weight_decay=0.01,
                             fused=device.type == "cuda")


def lr_factor(step: int, total: int | None, warmup: int = 200) -> float:
    if total is None:
        return min(1.0, (step + 1) / warmup)
    warmup = max(1, min(warmup, total // 10))
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


@dataclass
class PhaseResult:
    steps: int
    seconds: float
    samples_per_s: float
    final_loss: float
    losses: list[float] = field(default_factory=list)


def run_steps(name: str, rt: Runtime, step_fn: Callable[[int], torch.Tensor], opt: torch.optim.Optimizer,
              base_lr: float, batch: int, *, start: int = 0, total: int | None = None,
              budget_s: float | None = None, on_total: Callable[[int], None] | None = None,
              checkpoint: Callable[[int, int], None] | None = None, checkpoint_every_s: float = 120.0,
              log_every: int = 50) -> PhaseResult:
    """Run `step_fn(step)` until `total` steps (sized from `budget_s` when `total` is None)."""
    if total is None and budget_s is None:
        raise ValueError(f"{name}: give a step count or a time budget")
    t0 = last_ckpt = time.perf_counter()
    t_cal = None
    bar = progress_bar(total, name, "step", initial=start, enabled=rt.progress)
    running, losses, step = [], [], start
    while total is None or step < total:
        for group in opt.param_groups:
            group["lr"] = base_lr * lr_factor(step, total)
        running.append(step_fn(step))
        step += 1
        if total is None and step - start == _CAL_FROM:
            rt.sync()
            t_cal = time.perf_counter()
        elif total is None and step - start == _CAL_TO:
            rt.sync()
            now = time.perf_counter()
            per_step = (now - t_cal) / (_CAL_TO - _CAL_FROM)
            total = max(step, step + int((budget_s - (now - t0)) / per_step))
            if on_total:
                on_total(total)
            bar.total = total
        if step % log_every == 0 or step == total:
            mean = float(torch.stack(running).float().mean())
            losses.append(round(mean, 5))
            running = []
            bar.set_postfix(loss=f"{mean:.4f}", lr=f"{opt.param_groups[0]['lr']:.2e}")
        bar.update(1)
        if checkpoint and time.perf_counter() - last_ckpt > checkpoint_every_s and step != total:
            checkpoint(step, total or 0)
            last_ckpt = time.perf_counter()
    rt.sync()
    bar.close()
    if running:
        losses.append(round(float(torch.stack(running).float().mean()), 5))
    seconds = time.perf_counter() - t0
    done = step - start
    return PhaseResult(step, seconds, done * batch / max(seconds, 1e-9),
                       losses[-1] if losses else float("nan"), losses)


def to_unit(pixels_u8: torch.Tensor) -> torch.Tensor:
    """(n, H, W, 3) uint8 → (n, 3, H, W) float in [-1, 1], channels-last memory."""
    x = pixels_u8.permute(0, 3, 1, 2).float() / 127.5 - 1.0
    return x.contiguous(memory_format=torch.channels_last)


def vae_step_fn(vae, opt, pixels: torch.Tensor, rt: Runtime, batch: int,
                kl_weight: float = 1e-6) -> Callable[[int], torch.Tensor]:
    """One VAE step: reconstruction (MSE + L1 + edge L1, edges keep ears and outlines) + tiny KL."""
    n = pixels.shape[0]

    def step(i: int) -> torch.Tensor:
        g = rt.generator(i, 1)
        idx = torch.randint(n, (batch,), device=rt.device, generator=g)
        x = to_unit(pixels[idx])
        with rt.autocast():
            post = vae.encode(x).latent_dist
            rec = vae.decode(post.sample(generator=g)).sample.float()
        dx = lambda t: t[..., :, 1:] - t[..., :, :-1]  # noqa: E731
        dy = lambda t: t[..., 1:, :] - t[..., :-1, :]  # noqa: E731
        loss = (F.mse_loss(rec, x) + 0.5 * F.l1_loss(rec, x)
                + 0.5 * (F.l1_loss(dx(rec), dx(x)) + F.l1_loss(dy(rec), dy(x)))
                + kl_weight * post.kl().mean())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.detach()

    return step


@torch.no_grad()
def encode_all(vae, pixels: torch.Tensor, rt: Runtime, batch: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior mean and std of every image (float32, on the device)."""
    means, stds = [], []
    for a in range(0, pixels.shape[0], batch):
        with rt.autocast():
            post = vae.encode(to_unit(pixels[a:a + batch])).latent_dist
        means.append(post.mean.float())
        stds.append(post.std.float())
    return torch.cat(means), torch.cat(stds)


def alphas_cumprod(num: int = 1000, start: float = 0.00085, end: float = 0.012) -> torch.Tensor:
    """SD's "scaled_linear" schedule (the same numbers diffusers' schedulers compute)."""
    betas = torch.linspace(start**0.5, end**0.5, num, dtype=torch.float64) ** 2
    return torch.cumprod(1 - betas, 0).float()


class EMA:
    """Exponential moving average of parameters (what gets saved: smoother samples)."""

    def __init__(self, modules: list[torch.nn.Module], decay: float = 0.999) -> None:
        self.params = [p for m in modules for p in m.parameters()]
        self.shadow = [p.detach().clone().float() for p in self.params]
        self.decay = decay

    @torch.no_grad()
    def update(self, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        torch._foreach_lerp_(self.shadow, [p.detach().float() for p in self.params], 1 - d)

    def state(self) -> dict[str, torch.Tensor]:
        return {f"ema.{i}": t for i, t in enumerate(self.shadow)}

    def load(self, tensors: dict[str, torch.Tensor]) -> None:
        for i, t in enumerate(self.shadow):
            t.copy_(tensors[f"ema.{i}"])

    @torch.no_grad()
    def copy_to(self, modules: list[torch.nn.Module]) -> None:
        for p, s in zip([p for m in modules for p in m.parameters()], self.shadow):
            p.copy_(s.to(p.dtype))


def denoiser_step_fn(unet, text_encoder, opt, ema: EMA, latents: tuple[torch.Tensor, torch.Tensor],
                     scaling: float, captions: Callable[[np.ndarray, random.Random], torch.Tensor],
                     rt: Runtime, batch: int, snr_gamma: float = 5.0) -> Callable[[int], torch.Tensor]:
    """One UNet + text-encoder step: epsilon objective, min-SNR-γ weighting, EMA update."""
    mean, std = latents
    n = mean.shape[0]
    ac = alphas_cumprod().to(rt.device)
    params = [p for m in (unet, text_encoder) for p in m.parameters()]

    def step(i: int) -> torch.Tensor:
        g_cpu = rt.generator(i, 2, torch.device("cpu"))
        idx = torch.randint(n, (batch,), generator=g_cpu)
        ids = captions(idx.numpy(), random.Random(rt.seed * 1_000_003 + i)).to(rt.device, non_blocking=True)
        idx = idx.to(rt.device, non_blocking=True)
        g = rt.generator(i, 3)
        z = (mean[idx] + std[idx] * torch.randn(mean[idx].shape, device=rt.device, generator=g)) * scaling
        noise = torch.randn(z.shape, device=rt.device, generator=g)
        t = torch.randint(0, ac.numel(), (batch,), device=rt.device, generator=g)
        a = ac[t].view(-1, 1, 1, 1)
        noisy = (a.sqrt() * z + (1 - a).sqrt() * noise).contiguous(memory_format=torch.channels_last)
        with rt.autocast():
            cond = text_encoder(ids)[0]
            pred = unet(noisy, t, cond).sample.float()
        snr = ac[t] / (1 - ac[t])
        weight = torch.clamp(snr, max=snr_gamma) / snr
        loss = (F.mse_loss(pred, noise, reduction="none").mean((1, 2, 3)) * weight).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        ema.update(i)
        return loss.detach()

    return step
