"""`lab eval --jobs N` merges per-process results into the numbers of one run."""

from __future__ import annotations

import pytest

from lorastrap.lab.eval import fidelity_table
from lorastrap.lab.eval_parallel import merge_results
from lorastrap.lab.eval_style import style_summary

VIEWS = ["from front", "from side"]


def _arm(front: float, side: float) -> dict:
    return {"from front": {"all": front, "identity": front}, "from side": {"all": side, "identity": side}}


def _curves(identity_before: float, identity_words: float) -> dict:
    return {"before": {"0.0": {"identity": identity_before, "style": 0.1},
                       "1.0": {"identity": identity_before - 0.2, "style": 0.5}},
            "no style words": {"0.0": {"identity": identity_words, "style": 0.1},
                               "1.0": {"identity": identity_words - 0.1, "style": 0.6}}}


def _part(chars: list[str], arms: dict[str, list[dict]], curves: dict) -> dict:
    return {"views": VIEWS, "characters": chars, "arms": arms, "seconds": 10.0 * len(chars),
            "config": {}, "style_survival": {"pixel art": {"by_weight": curves}}}


def test_merge_concatenates_arms_and_weights_style_curves_by_characters() -> None:
    one = _part(["a", "b"], {"(b)": [_arm(1.0, 0.5), _arm(0.5, 0.5)]}, _curves(0.8, 0.9))
    two = _part(["c"], {"(b)": [_arm(0.0, 0.2)]}, _curves(0.2, 0.6))
    merged, tables = merge_results([one, two])
    assert merged["characters"] == ["a", "b", "c"] and len(merged["arms"]["(b)"]) == 3
    assert merged["seconds"] == 20.0 and merged["parts"] == 2
    before = merged["style_survival"]["pixel art"]["by_weight"]["before"]
    assert before["0.0"]["identity"] == pytest.approx((0.8 * 2 + 0.2) / 3, abs=1e-4)
    # the merged table is the one a single run over a, b, c would print
    assert fidelity_table(merged["arms"], VIEWS) in tables
    assert "| (b) | 0.50 ± 0.50 (0.50) | 0.40 ± 0.17 (0.40) |" in tables


def test_equal_strength_comparison_uses_the_baseline_at_weight_one() -> None:
    summary = style_summary({"pixel art": _curves(0.8, 0.9)})
    at = summary["results"]["pixel art"]["identity_at_matched"]["no style words"]
    # baseline reaches style 0.5 at weight 1 with identity 0.6; the variant at strength 0.5
    # (between 0.1 → 0.9 and 0.6 → 0.8) has identity 0.82
    assert summary["results"]["pixel art"]["matched_style_strength"] == 0.5
    assert at["before"] == pytest.approx(0.6) and at["after"] == pytest.approx(0.82, abs=1e-3)
    weak = {"before": _curves(0.8, 0.9)["before"],
            "weak fix": {"0.0": {"identity": 0.9, "style": 0.1}, "1.0": {"identity": 0.9, "style": 0.3}}}
    result = style_summary({"pixel art": weak})["results"]["pixel art"]["identity_at_matched"]["weak fix"]
    assert result["after"] is None and result["gain"] is None  # never reaches the style: no win
