"""Calibrate the clash report's model-free identity fallback against the lab's reader.

On the lab world the truth is known: for a reference drawing of character A and a cell drawn of
character B (same view, any style), the reader says how many of A's identity attributes (hair,
ears, tail, dress) the cell shows. This prints how the fallback's cosine (`ColorStructureEmbedder`,
what `lorastrap clash` uses without CLIP weights) follows that number: Spearman's rho per style and
the mean cosine per count of shared attributes. Drawings only, no model: about a minute on a CPU.

    python benchmarks/identity_calibration.py [--pairs 300] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lorastrap.lab.reader import reader_identity_score  # noqa: E402
from lorastrap.lab.world import STYLES, VIEWS, all_characters, draw  # noqa: E402
from lorastrap.models.embedding import ColorStructureEmbedder, paired_similarity  # noqa: E402


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    rank = lambda v: np.argsort(np.argsort(v, kind="stable"), kind="stable").astype(float)  # noqa: E731
    return float(np.corrcoef(rank(x), rank(y))[0, 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=300, help="pairs per style")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    chars = all_characters()
    embedder = ColorStructureEmbedder()
    print("| cell style | rho(cosine, attributes shared) | mean cosine by attributes shared (0 / 1 / 2 / 3 / 4) |")
    print("|---|---|---|")
    for style in STYLES:
        refs, cells, shared = [], [], []
        for i in range(args.pairs):
            a, b, view = rng.choice(chars), rng.choice(chars), rng.choice(VIEWS)
            refs.append(draw(a, view, "flat color", seed=2 * i))
            cells.append(draw(b, view, style, seed=2 * i + 1))
            shared.append(round(4 * reader_identity_score(cells[-1], a)))
        cos = paired_similarity(embedder.embed(refs), embedder.embed(cells))
        shared_arr = np.array(shared)
        means = [f"{cos[shared_arr == k].mean():.3f}" if (shared_arr == k).any() else "–" for k in range(5)]
        print(f"| {style} | {spearman(cos, shared_arr):.2f} | {' / '.join(means)} |", flush=True)


if __name__ == "__main__":
    main()
