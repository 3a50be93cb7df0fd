"""Accuracy of images against the attributes they were asked for, as read by the reader; and the
reader as the clash report's identity and style metrics (`--identity lab-reader`)."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from PIL import Image

from lorastrap.kernel.errors import UserError
from lorastrap.lab.reader import read, reader_identity_score, style_score
from lorastrap.lab.world import DRESS, EARS, HAIR, IDENTITY_ATTRS, STYLES, TAIL, VIEWS, attrs_of

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


class ReaderIdentity:
    """Lab mode: the fraction of identity attributes the lab's attribute reader finds (absolute)."""

    weak = False

    def __init__(self, expected_attrs: object):
        if not any(k in attrs_of(expected_attrs) for k in IDENTITY_ATTRS):  # fail before generating
            raise ValueError("the expected attributes name no hair, ears, tail or dress")
        self._score = reader_identity_score
        self.expected = expected_attrs
        self.name = "lab attribute reader"

    def score(self, images: Sequence[Image.Image], references: Sequence[Image.Image]) -> np.ndarray:
        return np.array([self._score(im, self.expected) for im in images], dtype=np.float32)


class ReaderStyle:
    """Lab mode: the lab reader's score for one of the lab world's styles (absolute, 0–1)."""

    def __init__(self, style: str):
        if style not in STYLES:
            raise ValueError(f"{style!r} is not a lab style ({', '.join(STYLES)})")
        self.style, self._score = style, style_score
        self.name = f"lab style reader ({style})"

    def score(self, images: Sequence[Image.Image], style_refs: Sequence[Image.Image]) -> np.ndarray:
        return np.array([self._score(im, self.style) for im in images], dtype=np.float32)


class ReaderMetrics:
    """The clash report's metrics in lab mode (a `lorastrap.clash.metrics.MetricSource`): identity
    read by the lab's reader, and a lab style's strength by its style reader."""

    def identity(self, embedder: object, identity_tags: Sequence[str]) -> ReaderIdentity:
        try:
            return ReaderIdentity(list(identity_tags))
        except ValueError as exc:  # the tags name no lab attribute
            raise UserError(f"--identity lab-reader needs lab identity tags (hair, ears, tail, dress): {exc}") from exc

    def style(self, trigger: str) -> ReaderStyle | None:
        return ReaderStyle(trigger) if trigger in STYLES else None
