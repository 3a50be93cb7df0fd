"""Typed workspace settings read from `lorastrap.toml` (every key optional, defaults below)."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lorastrap.kernel.errors import UserError
from lorastrap.kernel.fieldtypes import checked_value

DEFAULT_VIEWS = (
    "front",
    "from side",
    "from behind",
    "from above",
    "from below",
    "three-quarter view",
    "full body",
    "upper body",
    "portrait",
)

DEFAULT_BASE_MODEL = "tiny"
CANDIDATE_PROMPTS = ("tags", "trigger")
ASSISTS = ("judge", "similarity")
CANDIDATE_STARTS = ("seed", "noise")
CHARACTER_CAPTIONS = ("pruned", "dropout")


@dataclass
class WorkspaceSettings:
    database_url: str = ""  # empty: .lorastrap/registry.sqlite3 in the workspace
    base_model: str = DEFAULT_BASE_MODEL


@dataclass
class ImageSettings:
    min_side: int = 64
    max_pixels: int = 64_000_000


@dataclass
class BootstrapSettings:
    thresholds: list[int] = field(default_factory=lambda: [4, 16, 40])
    candidates_per_round: int = 24
    views: list[str] = field(default_factory=lambda: list(DEFAULT_VIEWS))
    seed_repeats: int = 2
    negative_prompt: str = "lowres, bad anatomy, blurry, watermark, text"
    near_duplicate_threshold: float = 0.985
    # LoRA weight when generating a round's candidates: a style-round LoRA trained on few views
    # at full weight pulls views back to the seed's pose (lab: blonde-fox-tail-blue's round-1
    # candidates "from above" 0/23 and "from side" 2/19 right at 1.0; 5/6 from the side at 0.5);
    # 1.0 gave slightly more right colours on five other characters (0.65 vs 0.60, docs/fidelity.md).
    candidate_weight: float = 0.6
    # how candidates are prompted: "tags" = trigger + identity tags + view (the style rounds'
    # captions); "trigger" = trigger + view, the LoRA carries the identity
    candidate_prompt: str = "tags"
    candidate_cfg: float = 6.0
    # where a round's candidates start: "seed" = a seed image blurred to its colour layout, noised
    # to candidate_strength (img2img; the view and pose are still drawn anew), "noise" = pure noise.
    # The seed's colours raised the right round-1 candidates from 0.60 to 0.72 on five lab
    # characters (docs/fidelity.md, "Starting from the seed's colours")
    candidate_start: str = "seed"
    candidate_strength: float = 0.9
    # adaptive rounds: while a view has fewer candidates that pass the assist's check than the
    # round needs from it, generate more for that view only, up to this many per round in all
    adaptive: bool = True
    max_candidates_per_round: int = 48
    # how the curation assist ranks candidates: "judge" (the diffusion model asks each candidate
    # whether its prompt fits it best) or "similarity" (likeness to the seed set, an embedder)
    assist: str = "judge"
    # the character round's captions: "pruned" (identity tags left out: the trigger must carry the
    # identity) or "dropout" (identity tags kept, each left out of a caption variant with
    # probability identity_dropout: the trigger learns the identity, the tags still work)
    character_captions: str = "pruned"
    identity_dropout: float = 0.5
    # how the character LoRA is prompted (generate, sprite frames, the check): "trigger" = the
    # trigger alone (its captions were pruned), "tags" = trigger + identity tags (better for some lab
    # characters, worse for others: docs/fidelity.md)
    character_prompt: str = "trigger"
    # after the character round, the assist's judge checks this many images per view of the last
    # style round and of the character LoRA and `status` says which it prefers (0: off). Off by
    # default: in the lab its preference matched the reader's in 6 of 12 runs (docs/method.md)
    check_images_per_view: int = 0

    def __post_init__(self) -> None:
        self.check()

    def check(self, source: str = "lorastrap.toml") -> None:
        problems = []
        if self.candidate_prompt not in CANDIDATE_PROMPTS:
            problems.append(f"candidate_prompt must be one of {', '.join(CANDIDATE_PROMPTS)}")
        if self.assist not in ASSISTS:
            problems.append(f"assist must be one of {', '.join(ASSISTS)}")
        if self.character_captions not in CHARACTER_CAPTIONS:
            problems.append(f"character_captions must be one of {', '.join(CHARACTER_CAPTIONS)}")
        if self.character_prompt not in CANDIDATE_PROMPTS:
            problems.append(f"character_prompt must be one of {', '.join(CANDIDATE_PROMPTS)}")
        if not 0.0 <= float(self.identity_dropout) < 1.0:
            problems.append("identity_dropout must be in [0, 1)")
        if not 0 <= int(self.check_images_per_view) <= 64:
            problems.append("check_images_per_view must be in 0..64")
        if not 0.0 < float(self.candidate_weight) <= 2.0:
            problems.append("candidate_weight must be in (0, 2]")
        if not 0.0 < float(self.candidate_cfg) <= 30.0:
            problems.append("candidate_cfg must be in (0, 30]")
        if self.candidate_start not in CANDIDATE_STARTS:
            problems.append(f"candidate_start must be one of {', '.join(CANDIDATE_STARTS)}")
        if not 0.5 <= float(self.candidate_strength) < 1.0:
            problems.append("candidate_strength must be in [0.5, 1)")
        if int(self.max_candidates_per_round) < int(self.candidates_per_round):
            problems.append("max_candidates_per_round must be at least candidates_per_round")
        if problems:
            raise UserError(f"{source}: [bootstrap] " + "; ".join(problems))

    @property
    def style_rounds(self) -> int:
        return max(1, len(self.thresholds) - 1)


@dataclass
class WatchSettings:
    debounce_s: float = 3.0  # a folder must be quiet this long before it is read
    stable_checks: int = 2  # then every file's size+mtime must match this many times in a row
    stable_interval_s: float = 0.25  # spacing of those checks
    write_timeout_s: float = 60.0  # a file written to but never closed counts as finished after this
    heartbeat_s: float = 10.0
    stale_after_s: float = 60.0  # a running job without heartbeat this long is re-queued (crash)
    max_attempts: int = 3
    poll_s: float = 2.0  # how often a worker looks for jobs queued by other processes
    rescan_s: float = 30.0  # how often the watcher re-lists characters (those added on other machines)
    train_on_import: bool = True  # an inbox drop that becomes a character also queues its first training


@dataclass
class Config:
    workspace: WorkspaceSettings = field(default_factory=WorkspaceSettings)
    images: ImageSettings = field(default_factory=ImageSettings)
    bootstrap: BootstrapSettings = field(default_factory=BootstrapSettings)
    watch: WatchSettings = field(default_factory=WatchSettings)
    training: dict[str, Any] = field(default_factory=dict)  # TrainConfig overrides, per preset

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "lorastrap.toml") -> Config:
        cfg = cls()
        for section in ("workspace", "images", "bootstrap", "watch"):
            values = data.get(section, {})
            target = getattr(cfg, section)
            known = {f.name for f in dataclasses.fields(target)}
            for key, value in values.items():
                if key not in known:
                    raise UserError(
                        f"{source}: unknown setting [{section}] {key}; known: {', '.join(sorted(known))}"
                    )
                setattr(target, key, checked_value(type(target), key, value, f"{source}: [{section}]"))
        cfg.bootstrap.check(source)
        cfg.training = dict(data.get("training", {}))
        unknown = set(data) - {"workspace", "images", "bootstrap", "watch", "training"}
        if unknown:
            raise UserError(f"{source}: unknown section(s) {', '.join(sorted(unknown))}")
        return cfg

    @classmethod
    def load(cls, path: Path) -> Config:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise UserError(f"{path}: not valid TOML ({exc}); fix the file") from None
        return cls.from_dict(data, str(path))


DEFAULT_TOML = """\
# lorastrap workspace settings. Every key is optional; these are the defaults.

[workspace]
# SQLAlchemy URL of the registry; empty = .lorastrap/registry.sqlite3 (SQLite, WAL).
# A team can share one PostgreSQL registry: "postgresql+psycopg2://user@host/lorastrap"
database_url = ""
# Base model: a diffusers folder, a hub id, a single-file .safetensors checkpoint,
# "tiny" / "tiny:sdxl" (random-initialised SD-architecture models, for tests) or
# "lab" (the small model pretrained on the procedural character world, shipped with lorastrap).
base_model = {base_model}

[images]
min_side = 64
max_pixels = 64000000

[bootstrap]
# Curated images needed before each step: style round 1, style round 2, ..., character LoRA.
thresholds = [4, 16, 40]
candidates_per_round = 24
views = ["front", "from side", "from behind", "from above", "from below",
         "three-quarter view", "full body", "upper body", "portrait"]
seed_repeats = 2
# LoRA weight for generating candidates (lower: views follow the prompt; higher: closer to the seed)
candidate_weight = 0.6
# Adaptive rounds: views short of candidates that pass the assist's check get more, up to a cap.
adaptive = true
max_candidates_per_round = 48
# The assist: "judge" (the diffusion model checks each candidate's attributes) or "similarity".
assist = "judge"
# How the character LoRA is prompted: "trigger" (alone) or "tags" (trigger + identity tags).
character_prompt = "trigger"
# Images per view with which the assist checks the final LoRAs (0: off; a weak signal, see docs/method.md).
check_images_per_view = 0

[watch]
debounce_s = 3.0
"""
