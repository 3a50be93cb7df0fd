"""Training hyperparameters: one dataclass, two presets, TOML files, and the stored effective config.

Precedence: preset < TOML file < explicit overrides (CLI flags). The effective config is written
into the LoRA (`lorastrap.config` metadata) and the run's work dir.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lorastrap.kernel.errors import UserError
from lorastrap.kernel.fieldtypes import checked_value

UNET_ATTENTION = ("to_q", "to_k", "to_v", "to_out.0")
TEXT_ATTENTION = ("q_proj", "k_proj", "v_proj", "out_proj")
MIXED_PRECISION = ("no", "fp16", "bf16")
SAVE_PRECISION = ("fp16", "bf16", "fp32")
LR_SCHEDULERS = ("cosine", "constant")


@dataclass
class TrainConfig:
    preset: str = "style"
    # network
    rank: int = 16
    alpha: float = 8.0
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] = UNET_ATTENTION
    train_text_encoder: bool = False
    text_encoder_targets: tuple[str, ...] = TEXT_ATTENTION
    # optimisation
    learning_rate: float = 1e-4
    text_encoder_lr: float | None = None  # None: half the UNet rate
    weight_decay: float = 1e-2
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    lr_scheduler: str = "cosine"
    lr_warmup_steps: int = 0
    max_train_steps: int = 400
    batch_size: int = 1
    gradient_accumulation_steps: int = 1
    gradient_checkpointing: bool = False
    mixed_precision: str = "no"
    max_grad_norm: float = 1.0
    # objective
    min_snr_gamma: float | None = 5.0
    noise_offset: float = 0.0
    prediction_type: str | None = None  # None: whatever the base model's scheduler says
    seed: int = 42
    # data
    resolution: int | None = None  # None: the base model's native size (tiny 64, SD1 512, SDXL 1024)
    enable_buckets: bool = True
    bucket_step: int | None = None
    flip: bool = False
    trigger: str | None = None
    keep_tokens: int = 1
    shuffle_tags: bool = True
    caption_dropout: float = 0.05
    caption_variants: int = 8  # shuffled captions pre-encoded per image when the TE is frozen
    tag_dropout: float = 0.0  # each droppable tag is left out of a caption variant this often
    tag_dropout_tags: tuple[str, ...] = ()  # the droppable tags (empty: every tag but the kept ones)
    # caching and speed
    cache_latents: bool = True
    cache_text: bool = True
    channels_last: bool = False
    fused_optimizer: bool | None = None  # None: on CUDA only
    compile_unet: bool = False
    # outputs
    save_every_steps: int = 100
    sample_every_steps: int = 0  # 0: only a final grid
    sample_steps: int = 20
    sample_cfg: float = 6.0
    sample_seed: int = 1234
    save_precision: str = "fp16"
    output_name: str | None = None

    def __post_init__(self) -> None:
        self.target_modules = tuple(self.target_modules)
        self.text_encoder_targets = tuple(self.text_encoder_targets)
        self.tag_dropout_tags = tuple(self.tag_dropout_tags)
        floats = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                  if isinstance(getattr(self, f.name), float)}
        checks = [
            *((math.isfinite(v), f"{k} must be a finite number") for k, v in floats.items()),
            (1 <= self.rank <= 1024, "rank must be 1 to 1024"),
            (self.alpha > 0, "alpha must be positive"),
            (0 < self.learning_rate <= 1, "learning_rate must be in (0, 1]"),
            (self.text_encoder_lr is None or 0 < self.text_encoder_lr <= 1, "text_encoder_lr must be in (0, 1]"),
            (0 <= self.lora_dropout < 1, "lora_dropout must be in [0, 1)"),
            (self.weight_decay >= 0, "weight_decay must be 0 or more"),
            (0 <= self.adam_beta1 < 1 and 0 <= self.adam_beta2 < 1, "adam_beta1 and adam_beta2 must be in [0, 1)"),
            (self.adam_epsilon > 0, "adam_epsilon must be positive"),
            (self.max_grad_norm >= 0, "max_grad_norm must be 0 (off) or more"),
            (self.min_snr_gamma is None or self.min_snr_gamma > 0, "min_snr_gamma must be positive (or unset)"),
            (self.noise_offset >= 0, "noise_offset must be 0 or more"),
            (self.lr_warmup_steps >= 0, "lr_warmup_steps must be 0 or more"),
            (1 <= self.max_train_steps <= 10_000_000, "max_train_steps must be 1 to 10,000,000"),
            (1 <= self.batch_size <= 4096, "batch_size must be 1 to 4096"),
            (self.keep_tokens >= 0, "keep_tokens must be 0 or more"),
            (self.save_every_steps >= 0 and self.sample_every_steps >= 0,
             "save_every_steps and sample_every_steps must be 0 (off) or more"),
            (1 <= self.sample_steps <= 1000, "sample_steps must be 1 to 1000"),
            (0 <= self.sample_seed < 2**32, "sample_seed must be 0 to 2^32-1"),
            (0 <= self.seed < 2**32, "seed must be 0 to 2^32-1"),
            (self.bucket_step is None or (self.bucket_step >= 8 and self.bucket_step % 8 == 0),
             "bucket_step must be a multiple of 8"),
            (self.gradient_accumulation_steps >= 1, "gradient_accumulation_steps must be at least 1"),
            (self.mixed_precision in MIXED_PRECISION, f"mixed_precision must be one of {MIXED_PRECISION}"),
            (self.save_precision in SAVE_PRECISION, f"save_precision must be one of {SAVE_PRECISION}"),
            (self.lr_scheduler in LR_SCHEDULERS, f"lr_scheduler must be one of {LR_SCHEDULERS}"),
            (0.0 <= self.caption_dropout < 1.0, "caption_dropout must be in [0, 1)"),
            (self.caption_variants >= 1, "caption_variants must be at least 1"),
            (0.0 <= self.tag_dropout < 1.0, "tag_dropout must be in [0, 1)"),
            (self.prediction_type in (None, "epsilon", "v_prediction"),
             "prediction_type must be epsilon or v_prediction"),
            (self.resolution is None or (8 <= self.resolution <= 8192 and self.resolution % 8 == 0),
             "resolution must be a multiple of 8 from 8 to 8192"),
        ]
        for ok, message in checks:
            if not ok:
                raise UserError(f"invalid training config: {message}")

    @property
    def te_lr(self) -> float:
        return self.text_encoder_lr if self.text_encoder_lr is not None else self.learning_rate / 2

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["target_modules"] = list(self.target_modules)
        out["text_encoder_targets"] = list(self.text_encoder_targets)
        out["tag_dropout_tags"] = list(self.tag_dropout_tags)
        return out

    def with_overrides(self, overrides: Mapping[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise UserError(f"unknown training option(s) {', '.join(unknown)}; valid options are "
                            "listed in docs/training.md")
        merged = self.to_dict()
        merged.update({k: checked_value(TrainConfig, k, v, "training option") for k, v in overrides.items()})
        return TrainConfig(**merged)

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "TrainConfig":
        try:
            base = PRESETS[name]
        except KeyError:
            raise UserError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
        return cls(preset=name, **base).with_overrides(overrides)

    @classmethod
    def from_toml(cls, path: Path, preset: str | None = None, **overrides: Any) -> "TrainConfig":
        """Read a TOML file: keys at top level or under [train]; `preset = "…"` picks the base."""
        import tomllib  # lazily: the GPU benchmark imports this module on bare Pythons
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"config file {path} not found; check the path") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"{path} is not valid TOML ({exc}); fix the file") from exc
        table = dict(data.get("train", data))
        name = preset or table.pop("preset", "style")
        table.pop("preset", None)
        return cls.from_preset(name).with_overrides(table).with_overrides(overrides)


# Style: the trigger should soak up what the tags do not explain, so captions carry every tag and
# are shuffled. Character: identity must bind to the trigger from few images; a higher alpha/rank
# ratio learns faster. Flips stay off in both: in the bootstrap method even the "style" round is
# trained on the character, and a flip mirrors asymmetric outfits and hair partings. Both train the
# UNet only by default: training the text encoder too (half the rate) made the lab's character
# LoRAs hold their character less often, 8 held-out characters on a GPU (docs/fidelity.md).
PRESETS: dict[str, dict[str, Any]] = {
    "style": dict(rank=16, alpha=8.0, learning_rate=1e-4, max_train_steps=400, lr_warmup_steps=20,
                  shuffle_tags=True, keep_tokens=1, caption_dropout=0.05, flip=False,
                  min_snr_gamma=5.0),
    "character": dict(rank=16, alpha=16.0, learning_rate=1e-4, max_train_steps=800,
                      lr_warmup_steps=40, shuffle_tags=True, keep_tokens=1, caption_dropout=0.1,
                      flip=False, min_snr_gamma=5.0),
}
