"""Connected components of a boolean mask, with numpy only (no scipy in game_export).

Works on horizontal runs: a row of a sprite has a handful of runs, so union-find over runs is a
few thousand Python steps where a per-pixel flood fill would be hundreds of thousands.
"""

from __future__ import annotations

import numpy as np


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row, start and (exclusive) end of every horizontal run of True pixels, row-major order."""
    h, w = mask.shape
    padded = np.zeros((h, w + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    delta = np.diff(padded, axis=1)
    rows, starts = np.nonzero(delta == 1)
    _, ends = np.nonzero(delta == -1)
    return rows, starts, ends


def _find(parent: list[int], i: int) -> int:
    root = i
    while parent[root] != root:
        root = parent[root]
    while parent[i] != root:  # path compression keeps later finds O(1)
        parent[i], i = root, parent[i]
    return root


def label(mask: np.ndarray, eight: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Label connected True regions (4- or 8-connected).

    Returns (labels, sizes): labels is int32 with 0 for False pixels and 1..n for components;
    sizes[k] is the pixel count of component k (sizes[0] is 0).
    """
    mask = np.asarray(mask, dtype=bool)
    h, w = mask.shape
    rows, starts, ends = _runs(mask)
    n = len(rows)
    if n == 0:
        return np.zeros((h, w), dtype=np.int32), np.zeros(1, dtype=np.int64)
    parent = list(range(n))
    reach = 1 if eight else 0
    row_first = np.searchsorted(rows, np.arange(h + 1))
    rows_l, starts_l, ends_l = rows.tolist(), starts.tolist(), ends.tolist()
    firsts = row_first.tolist()
    for y in range(1, h):
        a, a_end = firsts[y - 1], firsts[y]  # runs of the row above
        b, b_end = firsts[y], firsts[y + 1]
        while a < a_end and b < b_end:
            # Runs [s, e) touch when they overlap (4-conn) or meet at a corner (8-conn).
            if starts_l[a] < ends_l[b] + reach and starts_l[b] < ends_l[a] + reach:
                ra, rb = _find(parent, a), _find(parent, b)
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
            if ends_l[a] < ends_l[b]:
                a += 1
            else:
                b += 1
    roots = np.fromiter((_find(parent, i) for i in range(n)), dtype=np.int64, count=n)
    _, compact = np.unique(roots, return_inverse=True)
    run_label = (compact + 1).astype(np.int32)
    # Paint without a Python loop: every pixel's run index is a cumulative count of run starts.
    start_marks = np.zeros(h * w, dtype=np.int32)
    start_marks[rows * w + starts] = 1
    run_index = np.cumsum(start_marks) - 1
    flat = np.zeros(h * w, dtype=np.int32)
    on = mask.ravel()
    flat[on] = run_label[run_index[on]]
    labels = flat.reshape(h, w)
    sizes = np.bincount(flat, minlength=int(run_label.max()) + 1).astype(np.int64)
    sizes[0] = 0
    return labels, sizes


def border_connected(mask: np.ndarray) -> np.ndarray:
    """True pixels of `mask` 4-connected to the image border (a flood fill from every edge)."""
    labels, _ = label(mask, eight=False)
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    seeds = np.unique(edge[edge > 0])
    return np.isin(labels, seeds)


def remove_small(mask: np.ndarray, min_pixels: int, min_fraction: float = 0.0) -> np.ndarray:
    """Drop 8-connected components smaller than `min_pixels` or `min_fraction` of the largest."""
    labels, sizes = label(mask, eight=True)
    if len(sizes) <= 1:
        return np.asarray(mask, dtype=bool)
    limit = max(min_pixels, min_fraction * int(sizes.max()))
    keep = sizes >= limit
    keep[0] = False
    return keep[labels]
