"""The pretraining set, drawn in memory: uint8 pixels, tag lists and token-id pieces.

Drawing is CPU-bound pillow/numpy work, so it is spread over worker processes; sample `i` depends
only on (seed, i), so the set is identical whatever the number of workers.
"""

from __future__ import annotations

import os
import random
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from lorastrap.lab.world import LEADING_TAGS, TRAIN_STYLES, VIEWS, Sample, training_characters


def sample_at(seed: int, i: int, styles: tuple[str, ...] = TRAIN_STYLES) -> Sample:
    """Sample `i` of the stream `seed`: a trained character, any view, one of `styles`."""
    rng = random.Random(seed * 1_000_003 + i)
    chars = training_characters()
    return Sample(rng.choice(chars), rng.choice(VIEWS), rng.choice(styles), seed * 10**7 + i)


def _draw_range(args: tuple[int, int, int, tuple[str, ...]]) -> np.ndarray:
    seed, start, stop, styles = args
    return np.stack([np.asarray(sample_at(seed, i, styles).image()) for i in range(start, stop)])


@dataclass
class DrawnSet:
    pixels: np.ndarray  # (n, SIZE, SIZE, 3) uint8
    samples: list[Sample]

    def __len__(self) -> int:
        return len(self.samples)


def draw_set(n: int, seed: int, *, styles: tuple[str, ...] = TRAIN_STYLES,
             workers: int | None = None) -> DrawnSet:
    """Draw `n` samples of the stream `seed` (in parallel when `workers` > 1)."""
    workers = workers or min(16, os.cpu_count() or 1)
    chunk = max(64, n // (workers * 4) + 1)
    jobs = [(seed, a, min(n, a + chunk), styles) for a in range(0, n, chunk)]
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(workers) as pool:
            parts = list(pool.map(_draw_range, jobs))
    else:
        parts = [_draw_range(j) for j in jobs]
    return DrawnSet(np.concatenate(parts), [sample_at(seed, i, styles) for i in range(n)])


class CaptionTokens:
    """Builds token ids for captions from per-tag pieces (fast, no text tokenization per step).

    Training augments captions the way SD fine-tuners do: tag order shuffled after the leading
    tags, a tag sometimes dropped, and some captions empty (for classifier-free guidance)."""

    def __init__(self, tokenizer, max_len: int) -> None:
        self.tok = tokenizer
        self.max_len = max_len
        self.comma = tokenizer(",", add_special_tokens=False).input_ids
        self.bos, self.eos, self.pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
        self._cache: dict[str, list[int]] = {}

    def piece(self, tag: str) -> list[int]:
        if tag not in self._cache:
            self._cache[tag] = self.tok(tag, add_special_tokens=False).input_ids
        return self._cache[tag]

    def ids(self, tags: list[str]) -> list[int]:
        out = [self.bos]
        for i, tag in enumerate(tags):
            if i:
                out += self.comma
            out += self.piece(tag)
        out = out[: self.max_len - 1] + [self.eos]
        return out + [self.pad] * (self.max_len - len(out))

    def augmented(self, sample: Sample, rng: random.Random, p_empty: float = 0.1,
                  p_drop: float = 0.05) -> list[int]:
        if rng.random() < p_empty:
            return self.ids([])
        rest = [*sample.character.tags(), sample.view, sample.style]
        rest = [t for t in rest if rng.random() >= p_drop]
        rng.shuffle(rest)
        return self.ids([*LEADING_TAGS, *rest])

    def plain(self, text: str) -> list[int]:
        return self.ids([t.strip() for t in text.split(",") if t.strip()]) if text.strip() else self.ids([])


__all__ = ["CaptionTokens", "DrawnSet", "draw_set", "sample_at"]
