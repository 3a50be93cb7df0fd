"""Caption handling at training time: trigger first, optional shuffle of the other tags, dropout.

With a frozen text encoder the text embeddings are cached, so shuffling cannot happen per step.
Instead each caption gets a fixed number of shuffled variants (drawn from the seed), all encoded
once; each step picks one of them. Caption dropout uses the cached empty caption.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Collection, Iterable, Sequence


def split_tags(caption: str) -> list[str]:
    return [t.strip() for t in caption.split(",") if t.strip()]


def with_trigger(caption: str, trigger: str | None) -> list[str]:
    """The caption's tags with `trigger` moved (or added) to the front."""
    tags = split_tags(caption)
    if trigger:
        tags = [trigger] + [t for t in tags if t != trigger]
    return tags


def caption_variants(caption: str, *, trigger: str | None, keep_tokens: int, shuffle: bool,
                     count: int, seed: int, tag_dropout: float = 0.0,
                     droppable: Collection[str] = ()) -> list[str]:
    """`count` captions: the first `keep_tokens` tags stay in place, the rest are shuffled, and
    with `tag_dropout` each tag in `droppable` (all of the rest when empty) is left out of a variant
    with that probability (kohya's caption_tag_dropout_rate, limited to chosen tags).

    The first variant is always the caption in its written order, every tag in it.
    """
    tags = with_trigger(caption, trigger)
    head, tail = tags[:keep_tokens], tags[keep_tokens:]
    variants = [", ".join(tags)]
    drop = set(droppable or tail) if tag_dropout > 0 else set()
    if (shuffle and len(tail) > 1) or drop & set(tail):
        rng = random.Random(f"{seed}:{caption}")
        for _ in range(count - 1):
            shuffled = tail[:]
            if shuffle:
                rng.shuffle(shuffled)
            kept = [t for t in shuffled if t not in drop or rng.random() >= tag_dropout]
            variants.append(", ".join(head + kept))
    return variants


def tag_frequency(captions: Iterable[tuple[str, str]]) -> dict[str, dict[str, int]]:
    """kohya's ss_tag_frequency from (dataset folder, caption) pairs: per folder, how many
    captions carry each tag."""
    result: dict[str, Counter] = {}
    for folder, caption in captions:
        result.setdefault(folder, Counter()).update(set(split_tags(caption)))
    return {d: dict(sorted(c.items())) for d, c in result.items()}


def dataset_dirs(items: Sequence[tuple[str, int]]) -> dict[str, dict[str, int]]:
    """kohya's ss_dataset_dirs from (dataset folder, repeats) pairs: repeats and image count."""
    result: dict[str, dict[str, int]] = {}
    for folder, repeats in items:
        entry = result.setdefault(folder, {"n_repeats": repeats, "img_count": 0})
        entry["img_count"] += 1
    return result
