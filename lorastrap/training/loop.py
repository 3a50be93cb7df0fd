"""`train_lora`: the whole training run, from items to a kohya-format LoRA file.

Determinism is the backbone: data order, noise, timesteps, caption choice and dropout are all
derived from (seed, step, micro-batch), and the checkpoint holds adapter + optimizer state, so a
resumed run reproduces an uninterrupted one exactly.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from lorastrap.kernel.errors import UserError
from lorastrap.kernel.progress import progress_bar
from lorastrap.models.base import BaseModelRef, as_ref
from lorastrap.models.device import oom_as_user_error
from lorastrap.models.generation import GenContext, native_size, set_sampler
from lorastrap.models.hashing import legacy_hash, sha256_file
from lorastrap.models.lora.adapters import from_adapter, load_into_adapter
from lorastrap.models.lora.read import parse_lora_tensors
from lorastrap.models.lora.write import kohya_tensors, save_lora
from lorastrap.training.buckets import bucket_step_for
from lorastrap.training.checkpoint import CHECKPOINT_NAME, Progress, load_checkpoint, save_checkpoint
from lorastrap.training.config import TrainConfig
from lorastrap.training.dataset import TrainItem, prepare_data
from lorastrap.training.lora_metadata import RunFacts, build_metadata
from lorastrap.training.objective import Objective
from lorastrap.training.runtime import RunLog, StopSignals, make_accelerator, weight_dtype_for
from lorastrap.training.samples import SampleSheet, on_device, render_samples
from lorastrap.training.schedule import BatchSchedule
from lorastrap.training.setup import ADAPTER, Models, read_checked_lora, setup_models
from lorastrap.training.steps import NonFiniteTraining, StepRunner, make_optimizer

__all__ = ["TrainItem", "TrainResult", "TrainingDiverged", "TrainingInterrupted", "train_lora"]
_LOG_EVERY = 10
# Fields that change what is written, not what is learned: they may differ on resume.
_NOT_FINGERPRINTED = {"save_every_steps", "sample_every_steps", "sample_steps", "sample_cfg",
                      "sample_seed", "save_precision", "output_name", "max_train_steps"}
_SAVE_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


class TrainingInterrupted(UserError):
    """Ctrl-C / SIGTERM: the message says where the checkpoint is and how to resume."""


class TrainingDiverged(UserError):
    """The loss or the gradients became NaN/inf: the run stopped, nothing was written."""


@dataclass
class TrainResult:
    path: Path
    sha256: str
    model_hash: str          # sshs_model_hash
    legacy_hash: str
    steps: int
    final_loss: float
    loss_history: list[float]
    sample_grid: Path | None
    effective_config: dict
    log_path: Path
    arch: str
    rank: int
    alpha: float
    cache_stats: dict[str, int] = field(default_factory=dict)
    main_process: bool = True  # False on the other ranks of `accelerate launch`: nothing written


def _fingerprint(cfg: TrainConfig, shas: Sequence[str], items: Sequence[TrainItem], ref: BaseModelRef,
                 init_sha: str | None) -> str:
    learned = {k: v for k, v in cfg.to_dict().items() if k not in _NOT_FINGERPRINTED}
    payload = {"cfg": learned, "base": ref.sha256, "init": init_sha,
               "items": [[s, it.caption, it.repeats] for s, it in zip(shas, items)]}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _prepare_items(items: Sequence[TrainItem]) -> tuple[list[TrainItem], list[str]]:
    items = [TrainItem(Path(i.image_path), i.caption, i.repeats, i.image_sha256, i.subset) for i in items]
    if not items:
        raise UserError("the dataset is empty: add images (with .txt captions) to the dataset "
                        "folder or curate some, then train again")
    for item in items:
        if not item.image_path.is_file():
            raise UserError(f"training image {item.image_path} does not exist; re-export the dataset")
    shas = [i.image_sha256 or sha256_file(i.image_path) for i in items]
    for item, sha in zip(items, shas):
        item.image_sha256 = sha
    return items, shas


def train_lora(base: BaseModelRef | Path | str, items: Sequence[TrainItem], cfg: TrainConfig,
               out_path: Path, *, metadata: Mapping[str, str] = {}, init_from: Path | None = None,
               resume: bool = False, work_dir: Path, cache_dir: Path, sample_prompts: Sequence[str] = (),
               progress: bool = True, on_step: Callable[[int, float], None] | None = None,
               search_root: Path | None = None, sample_sheet: SampleSheet | None = None) -> TrainResult:
    """Train a LoRA on `items` and write it to `out_path` (atomically, kohya format).

    `work_dir` receives the checkpoint, the log (train.log), the samples and config.json of this
    run; `cache_dir` the shared latent/text caches. `metadata` adds `lorastrap.*` keys (character,
    dataset version hash, parent LoRA hash). `on_step(step, loss)` is called after every step.
    `sample_sheet` draws each save's sample grid (e.g. game_export's `write_contact_sheet`); without
    one the samples are written as single images and `sample_grid` is None.
    """
    ref = as_ref(base, search_root)
    items, shas = _prepare_items(items)
    # checked before anything is written: a LoRA that does not fit is refused with the workspace untouched
    if init_from is not None and not Path(init_from).is_file():
        raise UserError(f"--init-from {init_from}: no such LoRA file; give a .safetensors LoRA")
    init = read_checked_lora(ref, Path(init_from), "--init-from") if init_from else None
    work_dir, cache_dir, out_path = Path(work_dir), Path(cache_dir), Path(out_path)
    accelerator = make_accelerator(cfg.mixed_precision)
    main = accelerator.is_main_process
    device = accelerator.device
    init_sha = sha256_file(Path(init_from)) if init_from else None

    # Everything that can refuse the inputs (base model, init LoRA, images) runs before the run
    # folder is made: a refused run leaves nothing behind.
    wdtype = weight_dtype_for(cfg.mixed_precision)
    models = setup_models(ref, cfg, init, device, wdtype)
    resolution = cfg.resolution or native_size(models.pipe)
    data = prepare_data(items, cfg, resolution=resolution,
                        bucket_step=bucket_step_for(resolution, models.unet_levels, cfg.bucket_step,
                                                    int(models.pipe.vae_scale_factor)),
                        vae=models.vae, text=models.text, model_hash=ref.sha256, cache_dir=cache_dir,
                        device=device, progress=progress and main)
    work_dir.mkdir(parents=True, exist_ok=True)
    log = RunLog(work_dir / "train.log", enabled=main)
    log.write(f"start: base={ref.path_or_id} ({ref.arch}, {ref.short_hash}) images={len(items)} "
              f"init_from={init_from} resume={resume}")
    log.write(f"cache: {data.cache_stats}")
    # Frozen parts that are fully cached leave the accelerator: memory for bigger batches.
    models.vae.to("cpu")
    if not models.trained_text_encoders:
        models.text.to("cpu")
    objective = Objective(models, data, cfg, device)

    effective = {**cfg.to_dict(), "resolution": resolution, "prediction_type": models.prediction_type,
                 "rank": models.rank, "alpha": models.alpha,
                 "train_text_encoder": bool(models.trained_text_encoders),
                 "base_model": {"spec": ref.path_or_id, "kind": ref.kind, "arch": ref.arch, "sha256": ref.sha256},
                 "init_from": {"path": str(init_from), "sha256": init_sha} if init_from else None}
    if main:
        from lorastrap.kernel.atomic import atomic_write_text
        atomic_write_text(work_dir / "config.json", json.dumps(effective, indent=2, default=str))

    if cfg.gradient_checkpointing:
        models.unet.enable_gradient_checkpointing()
        for te in models.trained_text_encoders:
            te.gradient_checkpointing_enable()
    if cfg.channels_last:
        models.unet.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(models, cfg, device)
    trained = [models.unet, *models.trained_text_encoders]
    prepared = accelerator.prepare(*trained, optimizer)
    objective.unet, optimizer = prepared[0], prepared[-1]
    if cfg.compile_unet:
        objective.unet = torch.compile(objective.unet)

    fingerprint = _fingerprint(cfg, shas, items, ref, init_sha)
    ckpt_path = work_dir / CHECKPOINT_NAME
    state = Progress(started_at=time.time(), fingerprint=fingerprint)
    key_te = models.text_encoders_for_keys()
    if resume and ckpt_path.is_file():
        adapter, opt_state, state = load_checkpoint(ckpt_path)
        if state.fingerprint != fingerprint:
            raise UserError(f"{ckpt_path} was made with other data or settings; train without "
                            "--resume to start over (or restore the old settings)")
        load_into_adapter(parse_lora_tensors(adapter, blocks=models.blocks), models.unet, key_te, ADAPTER)
        optimizer.load_state_dict(opt_state)
        log.write(f"resumed at step {state.step}")
    elif resume:
        log.write("resume requested but no checkpoint found: starting from step 0")

    def checkpoint() -> None:
        if main:
            lora = from_adapter(models.unet, key_te, models.arch, ADAPTER)
            save_checkpoint(ckpt_path, kohya_tensors(lora, models.arch, models.blocks, dtype=torch.float32),
                            optimizer.state_dict(), state)
            log.write(f"checkpoint at step {state.step}")

    prompts = list(sample_prompts) or [items[0].caption]
    title = cfg.output_name or out_path.stem
    ctx = GenContext(ref.name, ref.sha256, set_sampler(models.pipe, "ddim"))

    def samples(step: int):
        frozen = [models.vae, *([] if models.trained_text_encoders else models.text.encoders)]
        for module in trained:
            module.eval()
        try:
            with on_device(frozen, device), accelerator.autocast():
                return render_samples(models.pipe, prompts, cfg, ctx, resolution, work_dir / "samples",
                                      step, title, sample_sheet)
        finally:
            for module in trained:
                module.train()

    schedule = BatchSchedule(data.samples, cfg.batch_size, cfg.seed)
    runner = StepRunner(objective, optimizer, accelerator, schedule, cfg, prepared[0])
    pending: list[torch.Tensor] = []
    for module in trained:
        module.train()
    mid_step = False
    bar = progress_bar(cfg.max_train_steps, title, "step", initial=state.step, enabled=progress and main)

    def flush_losses() -> None:
        if pending:
            state.loss_history.extend(torch.stack(pending).float().cpu().tolist())
            pending.clear()

    try:
        with StopSignals() as stop, oom_as_user_error(
                f"training at batch size {cfg.batch_size} and {resolution} px",
                "lower batch_size or resolution, or set gradient_checkpointing = true"):
            for step in range(state.step, cfg.max_train_steps):
                mid_step = True
                epoch, total = runner.step(step)
                state.step, state.epoch = step + 1, epoch + 1
                pending.append(total)
                mid_step = False
                bar.update(1)
                if on_step is not None:
                    flush_losses()
                if state.step % _LOG_EVERY == 0 or state.step == cfg.max_train_steps:
                    flush_losses()
                    bar.set_postfix(loss=f"{state.loss_history[-1]:.4f}", refresh=False)
                    log.write(f"step {state.step} epoch {state.epoch} loss {state.loss_history[-1]:.5f} "
                              f"lr {optimizer.param_groups[0]['lr']:.3g}")
                if cfg.save_every_steps and state.step % cfg.save_every_steps == 0 and state.step < cfg.max_train_steps:
                    flush_losses()
                    checkpoint()
                if main and cfg.sample_every_steps and state.step % cfg.sample_every_steps == 0 \
                        and state.step < cfg.max_train_steps:
                    samples(state.step)
                if on_step is not None:
                    on_step(state.step, state.loss_history[-1])
                if stop.requested:
                    raise KeyboardInterrupt
    except NonFiniteTraining as exc:
        bar.close()
        flush_losses()
        kept = f"the last checkpoint ({ckpt_path}) is kept" if ckpt_path.is_file() else "no checkpoint was saved yet"
        log.write(f"stopped: {exc}")
        raise TrainingDiverged(
            f"training stopped at step {exc.step}/{cfg.max_train_steps}: {exc.reason}; no LoRA was written or "
            f"registered and {kept}. Lower the learning rate (now {cfg.learning_rate:g}), check the LoRA "
            "it starts from (--init-from), or train without fp16") from None
    except KeyboardInterrupt:
        bar.close()
        flush_losses()
        if mid_step or state.step == 0:
            raise TrainingInterrupted(f"training interrupted mid-step; the last checkpoint in "
                                      f"{work_dir} is kept; run again with --resume") from None
        checkpoint()
        log.write(f"interrupted at step {state.step}")
        raise TrainingInterrupted(f"training interrupted at step {state.step}/{cfg.max_train_steps}; "
                                  f"checkpoint saved in {ckpt_path}; run again with --resume") from None
    bar.close()
    flush_losses()
    accelerator.wait_for_everyone()
    run = RunShape(schedule.batches_per_epoch, accelerator.num_processes)
    return _finish(models, cfg, ref, items, state, effective, metadata, out_path, work_dir, log,
                   data.cache_stats, resolution, samples if main else None, ckpt_path, main, run)


@dataclass(frozen=True)
class RunShape:
    batches_per_epoch: int
    processes: int


def _finish(models: Models, cfg: TrainConfig, ref: BaseModelRef, items: Sequence[TrainItem],
            state: Progress, effective: dict, metadata: Mapping[str, str], out_path: Path,
            work_dir: Path, log: RunLog, cache_stats: dict, resolution: int, samples, ckpt_path: Path,
            main: bool, run: RunShape) -> TrainResult:
    grid, thumbnail = None, None
    if samples is not None:
        grid, images = samples(state.step)
        thumbnail = images[0].image if images else None
    facts = RunFacts(
        arch=models.arch, base_name=ref.name, base_hash=ref.sha256, resolution=(resolution, resolution),
        rank=models.rank, alpha=models.alpha, steps=state.step, epoch=state.epoch,
        started_at=state.started_at, finished_at=time.time(), prediction_type=models.prediction_type,
        output_name=cfg.output_name or out_path.stem, trigger=cfg.trigger,
        images=[(it.subset_name, it.caption, it.repeats) for it in items],
        batches_per_epoch=run.batches_per_epoch, processes=run.processes,
        # stable across --resume: the run's fingerprint and start time are in the checkpoint
        session_id=str(int(hashlib.sha256(f"{state.fingerprint}:{state.started_at}".encode()).hexdigest()[:8], 16)),
        base_legacy_hash=legacy_hash(ref.local_path) if ref.kind == "single_file" and ref.local_path else None)
    meta = build_metadata(facts, effective, metadata, thumbnail)
    saved = None
    if main:
        lora = from_adapter(models.unet, models.text_encoders_for_keys(), models.arch, ADAPTER)
        saved = save_lora(lora, out_path, meta, arch=models.arch, blocks=models.blocks,
                          dtype=_SAVE_DTYPES[cfg.save_precision])
        ckpt_path.unlink(missing_ok=True)  # the run is complete; the LoRA file supersedes it
        log.write(f"saved {out_path} sha256={saved.sha256} final_loss="
                  f"{state.loss_history[-1] if state.loss_history else float('nan'):.5f}")
    return TrainResult(
        path=out_path, sha256=saved.sha256 if saved else "", model_hash=saved.model_hash if saved else "",
        legacy_hash=saved.legacy_hash if saved else "", steps=state.step,
        final_loss=state.loss_history[-1] if state.loss_history else float("nan"),
        loss_history=list(state.loss_history), sample_grid=grid, effective_config=effective,
        log_path=log.path, arch=models.arch, rank=models.rank, alpha=models.alpha, cache_stats=cache_stats,
        main_process=main)
