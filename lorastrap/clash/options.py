"""The options of the clash grid, declared once (torch-free, so `lorastrap clash --help` stays fast)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lorastrap.clash.metrics import MetricSource
from lorastrap.kernel.options import option


@dataclass
class ClashOptions:
    """The clash grid's options — `clash NAME` and `clash fix NAME` share them: the one declaration
    of their command-line options (lorastrap.cli.options), the library call, and the settings a
    clash run records. `styles`, `out` and `metrics` are given by each command (not options)."""

    styles: Sequence[str]
    weights: Sequence[float] = option((0.3, 0.6, 1.0), "--weights", listing="floats", show_default=True,
                                      help="Style weights to test.")
    character_weights: Sequence[float] = option((1.0,), "--character-weights", listing="floats", show_default=True,
                                                help="Character weights to test.")
    seeds: int = option(2, "--seeds", ints=(1, 64), show_default=True, help="Seeds per view (same in every row).")
    seed: int = option(1, "--seed", type="SEED", show_default=True, help="First seed.")
    views: Sequence[str] | None = option(None, "--views", type="TEXT", listing="names",
                                         help='Comma-separated views (default "front,from side,from behind").')
    max_cells: int = option(400, "--max-cells", ints=(1, 100_000), show_default=True, help="Refuse bigger grids.")
    threshold: float = option(0.8, "--threshold", type="FRACTION", show_default=True, help="Identity retention to keep.")
    presets: bool = option(True, "--no-presets", invert=True, help="Skip the community block-weight presets.")
    verify_seeds: int = option(1, "--verify-seeds", ints=(0, 64), show_default=True, help="Held-out seeds to verify advice.")
    steps: int = option(20, "--steps", type="SAMPLING_STEPS", show_default=True)
    cfg: float = option(6.0, "--cfg", type="CFG", show_default=True)
    clip_model: str | Path | None = option(None, "--clip-model", path={}, envvar="LORASTRAP_CLIP_MODEL", help=(
        "Local CLIP folder for the identity metric (else a weak model-free fallback)."))
    extra_prompt: str = option("", "--prompt-extra", type="TEXT", help='Tags appended to every prompt, e.g. "1girl, solo".')
    identity: str = option("embedding", "--identity", choices=("embedding", "lab-reader"), show_default=True,
                           help="Identity metric: image embeddings, or the lab world's attribute reader.")
    lora_id: int | None = option(None, "--lora", type="ID", help="Character LoRA id (default: its latest character LoRA).")
    out: Path | None = None
    show_progress: bool = True
    # What measures `identity`: None is the embedding metrics; the caller supplies any other (the
    # CLI maps lab-reader to the lab's reader: lorastrap.lab.scoring.ReaderMetrics).
    metrics: MetricSource | None = None
