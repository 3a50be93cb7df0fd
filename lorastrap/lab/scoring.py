"""Accuracy of images against the attributes they were asked for, as read by the reader."""

from __future__ import annotations

from typing import Mapping, Sequence

from PIL import Image

from lorastrap.lab.reader import read
from lorastrap.lab.world import DRESS, EARS, HAIR, IDENTITY_ATTRS, TAIL, VIEWS

SCORED = (*IDENTITY_ATTRS, "view")  # "all-attribute" = the character and the asked-for view
CHANCE = {"hair": 1 / len(HAIR), "ears": 1 / len(EARS), "tail": 1 / len(TAIL),
          "dress": 1 / (len(DRESS) - 1), "view": 1 / len(VIEWS)}


def score(images: Sequence[Image.Image], truths: Sequence[Mapping[str, str]]) -> dict:
    """Per-attribute accuracy, identity accuracy (all four identity attributes right) and
    all-attribute accuracy (identity and view right), over the attributes each truth names."""
    if len(images) != len(truths):
        raise ValueError("need one truth per image")
    hits = {a: 0 for a in SCORED}
    counts = {a: 0 for a in SCORED}
    identity = everything = 0
    for image, truth in zip(images, truths):
        got = read(image).attrs
        ok = {a: got[a] == truth[a] for a in SCORED if a in truth}
        for a, good in ok.items():
            hits[a] += good
            counts[a] += 1
        identity += all(ok.get(a, True) for a in IDENTITY_ATTRS)
        everything += all(ok.values())
    n = max(1, len(images))
    return {
        "n": len(images),
        "per_attr": {a: round(hits[a] / counts[a], 4) for a in SCORED if counts[a]},
        "identity": round(identity / n, 4),
        "all": round(everything / n, 4),
    }


def format_score(s: dict) -> str:
    per = " ".join(f"{a}={v:.2f}" for a, v in s["per_attr"].items())
    return f"all={s['all']:.3f} identity={s['identity']:.3f} ({per}; n={s['n']})"
