"""Image metrics of a clash grid: identity retention, style strength, clash.

Per cell (same view and seed across rows, so cells compare one to one):
- identity: the pluggable `IdentityMetric`'s score of the cell against the character-only cell.
  The default is embedding cosine (CLIP when configured, else the weak colour/structure
  fallback); the lab reader (attributes read from the image) plugs in through `MetricSource`.
- identity_set: mean cosine of the cell to the curated images of the character (when given).
- style: cosine of the cell to the style-only cell.
Per row (means over views × seeds):
- retention = 1 − (identity drop) / (drop of the style-only row), clipped to [0, 1]: 1 = the
  character as without the style, 0 = as lost as with no character LoRA (the divisor is at least
  MIN_SPAN, so when the style barely changes the image no clash is invented from noise);
- style_gain, the same scale for style similarity (0 = character only, 1 = style only);
- clash = identity of character-only − identity (the identity drop against the baseline).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

from lorastrap.models.embedding import ImageEmbedder, cosine_similarity, paired_similarity


@runtime_checkable
class IdentityMetric(Protocol):
    """Scores how much each image still shows the character; higher is more."""

    name: str
    weak: bool

    def score(self, images: Sequence[Image.Image], references: Sequence[Image.Image]) -> np.ndarray:
        """One score per image; `references[i]` is the character-only image of the same view/seed."""
        ...


class CachedEmbedder:
    """Embeds each image object once (a grid compares every cell with several others)."""

    def __init__(self, embedder: ImageEmbedder):
        self.embedder = embedder
        self.name, self.weak = embedder.name, embedder.weak
        self._cache: dict[int, tuple[Image.Image, np.ndarray]] = {}

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        missing = [im for im in images if id(im) not in self._cache]
        if missing:
            for im, row in zip(missing, self.embedder.embed(missing)):
                self._cache[id(im)] = (im, row)  # holding the image keeps its id unique
        return np.stack([self._cache[id(im)][1] for im in images]) if images else np.zeros((0, 0))


class EmbeddingIdentity:
    """Identity = cosine of image embeddings to the character-only reference."""

    def __init__(self, embedder: ImageEmbedder):
        self.embedder = embedder if isinstance(embedder, CachedEmbedder) else CachedEmbedder(embedder)
        self.name = f"embedding cosine: {embedder.name}"
        self.weak = embedder.weak

    def score(self, images: Sequence[Image.Image], references: Sequence[Image.Image]) -> np.ndarray:
        return paired_similarity(self.embedder.embed(images), self.embedder.embed(references))


@runtime_checkable
class StyleMetric(Protocol):
    """Scores how strongly each image shows the style; higher is more."""

    name: str

    def score(self, images: Sequence[Image.Image], style_refs: Sequence[Image.Image]) -> np.ndarray:
        """One score per image; `style_refs[i]` is the style-only image of the same view/seed."""
        ...


class EmbeddingStyle:
    """Style = cosine of image embeddings to the style-only cell. Note that the style-only cell
    also shows whatever character the base model draws without the character LoRA, so this mixes
    content into "style"; the lab reader below measures the style alone."""

    def __init__(self, embedder: CachedEmbedder):
        self.embedder = embedder
        self.name = f"embedding cosine to the style-only cell: {embedder.name}"

    def score(self, images: Sequence[Image.Image], style_refs: Sequence[Image.Image]) -> np.ndarray:
        return paired_similarity(self.embedder.embed(images), self.embedder.embed(style_refs))


class EmbeddingMetrics:
    """The default metric source: embedding cosine for identity, and for style."""

    def identity(self, embedder: CachedEmbedder, identity_tags: Sequence[str]) -> IdentityMetric:
        return EmbeddingIdentity(embedder)

    def style(self, trigger: str) -> StyleMetric | None:
        return None


@runtime_checkable
class MetricSource(Protocol):
    """What a clash run measures with: the identity metric for the character's identity tags, and
    a style metric for a style's trigger words (None: the embedding's style cosine).

    The interface where the clash report and the fidelity lab meet: the lab's attribute reader
    (`lorastrap.lab.scoring.ReaderMetrics`) implements it, and the caller chooses it (the CLI's
    `--identity lab-reader`); clash imports nothing of the lab."""

    def identity(self, embedder: CachedEmbedder, identity_tags: Sequence[str]) -> IdentityMetric: ...

    def style(self, trigger: str) -> StyleMetric | None: ...


@dataclass
class CellScores:
    identity: float
    style: float
    identity_set: float | None = None


@dataclass
class RowScores:
    identity: float
    style: float
    identity_set: float | None
    retention: float
    style_gain: float
    clash: float


def score_cells(images: Sequence[Image.Image], character_refs: Sequence[Image.Image],
                style_refs: Sequence[Image.Image], identity: IdentityMetric, embedder: CachedEmbedder,
                curated: Sequence[Image.Image] = (), style: StyleMetric | None = None) -> list[CellScores]:
    """Scores for cells aligned index by index with their character-only and style-only cells."""
    ids = identity.score(images, character_refs)
    styles = (style or EmbeddingStyle(embedder)).score(images, style_refs)
    sets: Sequence[float | None] = [None] * len(images)
    if curated:
        sets = cosine_similarity(embedder.embed(images), embedder.embed(curated)).mean(axis=1).tolist()
    return [CellScores(float(i), float(s), None if c is None else float(c)) for i, s, c in zip(ids, styles, sets)]


MIN_SPAN = 0.02  # baselines closer than this (in metric units) cannot tell a loss from noise


def _retention(value: float, floor: float, base: float) -> float:
    """1 − the identity drop as a share of the drop to the style-only floor, in [0, 1].

    When the two baselines are nearly equal the style does not measurably remove the character, so
    the drop is divided by at least MIN_SPAN instead of a tiny span that would blow noise up.
    """
    return float(1.0 - np.clip((base - value) / max(base - floor, MIN_SPAN), 0.0, 1.0))


def _gain(value: float, zero: float, top: float) -> float:
    """How far from the character-only look toward the style-only look, in [0, 1]."""
    return float(np.clip((value - zero) / max(top - zero, MIN_SPAN), 0.0, 1.0))


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def row_scores(cells: Sequence[CellScores], character_row: Sequence[CellScores],
               style_row: Sequence[CellScores]) -> RowScores:
    """Aggregate a row's cells against the two baseline rows of the same style section."""
    identity = float(np.mean([c.identity for c in cells]))
    style = float(np.mean([c.style for c in cells]))
    base_id = float(np.mean([c.identity for c in character_row]))
    floor_id = float(np.mean([c.identity for c in style_row]))
    base_style = float(np.mean([c.style for c in character_row]))
    top_style = float(np.mean([c.style for c in style_row]))
    return RowScores(
        identity=identity, style=style, identity_set=_mean([c.identity_set for c in cells]),
        retention=_retention(identity, floor_id, base_id),
        style_gain=_gain(style, base_style, top_style),
        clash=base_id - identity,
    )


def metric_labels(identity: IdentityMetric, styles: Sequence[StyleMetric] = ()) -> Mapping[str, str]:
    """How the report names the metrics, with the weak warning where it applies."""
    note = ("WEAK: model-free colour/structure similarity, not a face/identity model; configure local "
            "CLIP weights ($LORASTRAP_CLIP_MODEL) for a stronger signal") if identity.weak else ""
    style = "; ".join(dict.fromkeys(m.name for m in styles)) or "embedding cosine to the style-only cell"
    return {"identity_metric": identity.name, "style_metric": style, "weak": str(identity.weak).lower(), "note": note}


def score_grid(cells: Sequence, identity: IdentityMetric, embedder: CachedEmbedder,
               curated: Sequence[Image.Image] = (),
               style_metrics: Mapping[str, StyleMetric] | None = None) -> dict[tuple[str, str], RowScores]:
    """Score every `grid.GridCell` in place and return row scores keyed by (style, variant key).

    Each cell is compared with the character-only and style-only cells of its own style section
    at the same view and seed. `style_metrics` maps a section's style to its style metric
    (default: embedding cosine to the style-only cell).
    """
    from lorastrap.clash.grid import CHARACTER_ONLY, STYLE_ONLY

    refs: dict[tuple[str, str, str, int], Image.Image] = {}
    for cell in cells:
        if cell.variant.kind in (CHARACTER_ONLY, STYLE_ONLY):
            refs[(cell.style, cell.variant.kind, cell.view, cell.seed)] = cell.generated.image
    missing = {(c.style, k) for c in cells for k in (CHARACTER_ONLY, STYLE_ONLY)
               if (c.style, k, c.view, c.seed) not in refs}
    if missing:
        raise ValueError(f"grid lacks baseline rows: {sorted(missing)}")
    scores: list[CellScores] = [None] * len(cells)  # type: ignore[list-item]
    for style_name in dict.fromkeys(c.style for c in cells):
        index = [i for i, c in enumerate(cells) if c.style == style_name]
        group = [cells[i] for i in index]
        found = score_cells(
            [c.generated.image for c in group],
            [refs[(c.style, CHARACTER_ONLY, c.view, c.seed)] for c in group],
            [refs[(c.style, STYLE_ONLY, c.view, c.seed)] for c in group],
            identity, embedder, curated, (style_metrics or {}).get(style_name),
        )
        for i, score in zip(index, found):
            scores[i] = score
    rows: dict[tuple[str, str], list[CellScores]] = {}
    baselines: dict[tuple[str, str], str] = {}
    for cell, score in zip(cells, scores):
        cell.scores = score
        rows.setdefault((cell.style, cell.variant.key), []).append(score)
        if cell.variant.kind in (CHARACTER_ONLY, STYLE_ONLY):
            baselines[(cell.style, cell.variant.kind)] = cell.variant.key
    return {
        (style, key): row_scores(row, rows[(style, baselines[(style, CHARACTER_ONLY)])],
                                 rows[(style, baselines[(style, STYLE_ONLY)])])
        for (style, key), row in rows.items()
    }
