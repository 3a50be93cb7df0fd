"""One optimizer step of a run: LR schedule, gradient accumulation, clipping, update.

Shared by `train_lora` and the throughput benchmark, so the benchmark times the real loop.
"""

from __future__ import annotations

import contextlib
import random

import torch

from lorastrap.training.config import TrainConfig
from lorastrap.training.objective import Objective
from lorastrap.training.schedule import BatchSchedule, lr_factor, step_seed
from lorastrap.training.setup import Models


def make_optimizer(models: Models, cfg: TrainConfig, device) -> torch.optim.Optimizer:
    """AdamW over the LoRA weights (UNet group, then text-encoder group); fused on CUDA."""
    groups = [{"params": [p for p in models.unet.parameters() if p.requires_grad], "lr": cfg.learning_rate}]
    te_params = [p for te in models.trained_text_encoders for p in te.parameters() if p.requires_grad]
    if te_params:
        groups.append({"params": te_params, "lr": cfg.te_lr})
    fused = cfg.fused_optimizer if cfg.fused_optimizer is not None else torch.device(device).type == "cuda"
    return torch.optim.AdamW(groups, betas=(cfg.adam_beta1, cfg.adam_beta2), eps=cfg.adam_epsilon,
                             weight_decay=cfg.weight_decay, fused=bool(fused) or None)


class NonFiniteTraining(Exception):
    """A step's loss or gradients were NaN/inf; raised before the optimizer applies them."""

    def __init__(self, step: int, reason: str) -> None:
        super().__init__(f"step {step}: {reason}")
        self.step, self.reason = step, reason


class StepRunner:
    def __init__(self, objective: Objective, optimizer, accelerator, schedule: BatchSchedule,
                 cfg: TrainConfig, sync_module: torch.nn.Module) -> None:
        self.objective, self.optimizer, self.accelerator = objective, optimizer, accelerator
        self.schedule, self.cfg, self.sync_module = schedule, cfg, sync_module
        self.params = [p for group in optimizer.param_groups for p in group["params"]]
        self.base_lrs = [cfg.learning_rate, cfg.te_lr][: len(optimizer.param_groups)]
        self.device = objective.device
        # one generator, re-seeded per micro-batch: creating a CUDA generator every step costs time
        self.generator = torch.Generator(device=self.device)

    def _check_finite(self, step: int, loss: torch.Tensor, norm) -> None:  # type: ignore[no-untyped-def]
        """Stop before a non-finite loss or gradient reaches the weights (one sync per step).

        Under fp16, accelerate's loss scaler skips steps whose gradients overflow on purpose:
        there only the loss counts."""
        finite = torch.isfinite(loss)
        check_norm = norm is not None and self.cfg.mixed_precision != "fp16"
        if check_norm:
            finite = finite & torch.isfinite(torch.as_tensor(norm, device=finite.device))
        if bool(finite):
            return
        if not torch.isfinite(loss):
            reason = f"the loss became {float(loss)}"
        else:
            reason = f"the gradient norm became {float(norm)}"
        raise NonFiniteTraining(step + 1, reason)

    def step(self, step: int) -> tuple[int, torch.Tensor]:
        """Run optimizer step `step` (0-based); returns (epoch, detached loss on the device)."""
        cfg, acc = self.cfg, self.accelerator
        factor = lr_factor(step, cfg.max_train_steps, cfg.lr_warmup_steps, cfg.lr_scheduler)
        for group, base_lr in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base_lr * factor
        accum, world, rank = cfg.gradient_accumulation_steps, acc.num_processes, acc.process_index
        total = torch.zeros((), device=self.device)
        epoch = 0
        for micro in range(accum):
            epoch, batch = self.schedule.batch((step * accum + micro) * world + rank)
            seed = step_seed(cfg.seed, step, micro, rank)
            gen = self.generator.manual_seed(seed)
            # DDP: only the last micro-batch all-reduces the accumulated gradients
            sync = contextlib.nullcontext() if micro == accum - 1 else acc.no_sync(self.sync_module)
            with sync, acc.autocast():
                loss = self.objective.loss(batch, gen, random.Random(seed)) / accum
            acc.backward(loss)
            total += loss.detach()
        # The total gradient norm comes with clipping (max_norm inf: measured, not clipped).
        norm = acc.clip_grad_norm_(self.params, cfg.max_grad_norm or float("inf"))
        self._check_finite(step, total, norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return epoch, total
