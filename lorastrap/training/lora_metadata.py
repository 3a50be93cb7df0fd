"""The metadata block of a LoRA file: kohya `ss_*`, Stability `modelspec.*`, and `lorastrap.*`.

Values are strings (safetensors metadata is str → str); JSON where kohya uses JSON.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from PIL import Image

import lorastrap
from lorastrap.models.lora.arch import BASE_MODEL_VERSION, MODELSPEC_ARCH
from lorastrap.training.captions import dataset_dirs, tag_frequency

MODELSPEC_IMPL = {"sd15": "diffusers", "sd2": "diffusers", "sdxl": "https://github.com/Stability-AI/generative-models"}
THUMBNAIL_SIZE = 256


def thumbnail_data_uri(image: Image.Image, size: int = THUMBNAIL_SIZE) -> str:
    thumb = image.convert("RGB")
    thumb.thumbnail((size, size))
    buffer = io.BytesIO()
    thumb.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


@dataclass
class RunFacts:
    """What the metadata describes: filled in by the training loop."""
    arch: str
    base_name: str
    base_hash: str
    resolution: tuple[int, int]
    rank: int
    alpha: float
    steps: int
    epoch: int
    started_at: float
    finished_at: float
    prediction_type: str
    output_name: str
    trigger: str | None
    images: Sequence[tuple[str, str, int]]  # (kohya folder name, caption, repeats)
    batches_per_epoch: int = 0  # micro-batches per epoch and process (sd-scripts: len(dataloader))
    processes: int = 1
    session_id: str = ""
    base_legacy_hash: str | None = None  # A1111's old 8-digit model hash; single-file bases only


def _num_epochs(facts: RunFacts, config: Mapping) -> int:
    """Epochs the run plans, as sd-scripts counts them: ceil(steps / optimizer steps per epoch)."""
    accum = int(config.get("gradient_accumulation_steps") or 1)
    per_epoch = math.ceil(max(facts.batches_per_epoch, 1) / (accum * max(facts.processes, 1)))
    return math.ceil(int(config.get("max_train_steps") or facts.steps) / max(per_epoch, 1))


def build_metadata(facts: RunFacts, config: Mapping, extra: Mapping[str, str] = {},
                   thumbnail: Image.Image | None = None) -> dict[str, str]:
    te_trained = bool(config.get("train_text_encoder"))
    unet_lr = float(config.get("learning_rate"))
    # sd-scripts reads a missing/None text-encoder rate as "the UNet rate": write the real one
    te_lr = config.get("text_encoder_lr")
    te_lr = (float(te_lr) if te_lr is not None else unet_lr / 2) if te_trained else 0.0
    ss = {
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(facts.rank),
        "ss_network_alpha": f"{facts.alpha:g}",
        "ss_network_args": json.dumps({"target_modules": list(config.get("target_modules", []))}),
        "ss_base_model_version": BASE_MODEL_VERSION[facts.arch],
        "ss_v2": str(facts.arch == "sd2"),
        "ss_sd_model_name": facts.base_name,
        "ss_new_sd_model_hash": facts.base_hash,
        **({"ss_sd_model_hash": facts.base_legacy_hash} if facts.base_legacy_hash else {}),
        "ss_output_name": facts.output_name,
        "ss_resolution": f"({facts.resolution[0]}, {facts.resolution[1]})",
        "ss_steps": str(facts.steps),
        "ss_max_train_steps": str(config.get("max_train_steps")),
        "ss_epoch": str(facts.epoch),
        "ss_learning_rate": f"{unet_lr:g}",
        "ss_unet_lr": f"{unet_lr:g}",
        "ss_text_encoder_lr": f"{te_lr:g}",
        "ss_network_train_unet_only": str(not te_trained),
        "ss_lr_scheduler": str(config.get("lr_scheduler")),
        "ss_lr_warmup_steps": str(config.get("lr_warmup_steps")),
        "ss_optimizer": "torch.optim.AdamW",
        "ss_mixed_precision": str(config.get("mixed_precision")),
        "ss_batch_size_per_device": str(config.get("batch_size")),
        "ss_total_batch_size": str(int(config.get("batch_size") or 1) * int(config.get("gradient_accumulation_steps") or 1)
                                   * max(facts.processes, 1)),
        "ss_num_batches_per_epoch": str(facts.batches_per_epoch),
        "ss_num_epochs": str(_num_epochs(facts, config)),
        "ss_max_grad_norm": str(config.get("max_grad_norm")),
        "ss_cache_latents": str(bool(config.get("cache_latents"))),
        # SD 1.x/2.x are conditioned on the last CLIP layer (clip skip 1); SDXL on the penultimate
        # by design, for which sd-scripts writes None
        "ss_clip_skip": "None" if facts.arch == "sdxl" else "1",
        "ss_session_id": facts.session_id,
        "ss_gradient_accumulation_steps": str(config.get("gradient_accumulation_steps")),
        "ss_gradient_checkpointing": str(config.get("gradient_checkpointing")),
        "ss_min_snr_gamma": str(config.get("min_snr_gamma")),
        "ss_noise_offset": str(config.get("noise_offset")),
        "ss_seed": str(config.get("seed")),
        "ss_shuffle_caption": str(config.get("shuffle_tags")),
        "ss_keep_tokens": str(config.get("keep_tokens")),
        "ss_caption_dropout_rate": str(config.get("caption_dropout")),
        "ss_caption_tag_dropout_rate": str(config.get("tag_dropout", 0.0)),
        "ss_flip_aug": str(config.get("flip")),
        "ss_enable_bucket": str(config.get("enable_buckets")),
        "ss_num_train_images": str(sum(r for _, _, r in facts.images)),
        "ss_tag_frequency": json.dumps(tag_frequency((p, c) for p, c, _ in facts.images)),
        "ss_dataset_dirs": json.dumps(dataset_dirs([(p, r) for p, _, r in facts.images])),
        "ss_training_started_at": f"{facts.started_at:.3f}",
        "ss_training_finished_at": f"{facts.finished_at:.3f}",
        "ss_training_comment": f"trained with lorastrap {lorastrap.__version__}",
    }
    date = dt.datetime.fromtimestamp(facts.finished_at, dt.timezone.utc).isoformat(timespec="seconds")
    spec = {
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": MODELSPEC_ARCH[facts.arch],
        "modelspec.implementation": MODELSPEC_IMPL[facts.arch],
        "modelspec.title": facts.output_name,
        "modelspec.resolution": f"{facts.resolution[0]}x{facts.resolution[1]}",
        "modelspec.date": date,
        "modelspec.prediction_type": "v" if facts.prediction_type == "v_prediction" else "epsilon",
    }
    if facts.trigger:
        spec["modelspec.trigger_phrase"] = facts.trigger
    if thumbnail is not None:
        spec["modelspec.thumbnail"] = thumbnail_data_uri(thumbnail)
    own = {"lorastrap.version": lorastrap.__version__, "lorastrap.config": json.dumps(dict(config), sort_keys=True)}
    own.update({k if k.startswith(("lorastrap.", "ss_", "modelspec.")) else f"lorastrap.{k}": str(v)
                for k, v in extra.items()})
    return {**ss, **spec, **own}
