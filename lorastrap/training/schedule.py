"""Deterministic data order and learning-rate schedule.

Everything random in a step is derived from (seed, step, micro-batch), never from a running RNG,
so a resumed run sees exactly the batches, noise and timesteps of an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Sequence

from lorastrap.training.dataset import Sample


class BatchSchedule:
    """Epochs of bucket-homogeneous batches (kohya-style): each epoch shuffles the items (with
    repeats) inside each bucket, cuts them into batches, then shuffles the batch order."""

    def __init__(self, samples: Sequence[Sample], batch_size: int, seed: int) -> None:
        self.batch_size = batch_size
        self.seed = seed
        self.by_bucket: dict[tuple[int, int], list[int]] = {}
        for i, s in enumerate(samples):
            self.by_bucket.setdefault(s.bucket, []).extend([i] * s.repeats)
        self.batches_per_epoch = sum(math.ceil(len(v) / batch_size) for v in self.by_bucket.values())
        self._epoch_cache: dict[int, list[list[int]]] = {}

    def epoch(self, epoch: int) -> list[list[int]]:
        if epoch not in self._epoch_cache:
            rng = random.Random(f"{self.seed}:epoch:{epoch}")
            batches = []
            for bucket in sorted(self.by_bucket):
                members = self.by_bucket[bucket][:]
                rng.shuffle(members)
                batches += [members[i:i + self.batch_size] for i in range(0, len(members), self.batch_size)]
            rng.shuffle(batches)
            self._epoch_cache = {epoch: batches}  # keep one epoch: memory stays flat
        return self._epoch_cache[epoch]

    def batch(self, index: int) -> tuple[int, list[int]]:
        """(epoch, sample indices) of the `index`-th micro-batch of the run."""
        epoch, pos = divmod(index, self.batches_per_epoch)
        return epoch, self.epoch(epoch)[pos]


def lr_factor(step: int, total: int, warmup: int, kind: str) -> float:
    """Linear warm-up, then constant or cosine decay to zero at `total`."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    if kind == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def step_seed(seed: int, step: int, micro: int, process: int = 0) -> int:
    digest = hashlib.sha256(f"{seed}:{step}:{micro}:{process}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1
