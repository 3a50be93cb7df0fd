"""From scored grid rows to advice, a ranking of styles, and the report document (JSON-able).

Advice for a style = the measured row (plain weight, community preset, or weight-space cut) with
the most style (style_gain) among those whose identity retention stays ≥ threshold. It is written
as an A1111 prompt (LBW syntax) and as a diffusers `set_adapters` dict, then re-generated on
held-out seeds (`verify`) so every piece of advice is backed by images made with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

from lorastrap.clash.blocks import diffusers_block_weights, lbw_layout, lbw_string
from lorastrap.clash.grid import CHARACTER_ONLY, GRID, STYLE_ONLY, GridCell, GridSpec, Section, Variant, a1111_prompt
from lorastrap.clash.metrics import RowScores
from lorastrap.clash.weightspace import WeightSpaceReport

SCHEMA = "lorastrap.clash/1"
BASELINES = (CHARACTER_ONLY, STYLE_ONLY)
STYLE_SHOWS_MIN = 0.05  # below this style gain at every measured weight the style is not visible


@dataclass
class Advice:
    style: str
    variant: Variant
    scores: RowScores
    passed: bool
    reason: str
    block_weights: dict[str, float]
    a1111: str
    diffusers: dict
    verified: dict | None = field(default=None)

    def to_dict(self) -> dict:
        return {
            "style": self.style, "source": self.variant.kind, "label": self.variant.title(),
            "character_weight": self.variant.character_weight, "style_weight": self.variant.style_weight,
            "block_weights": self.block_weights, "a1111": self.a1111, "diffusers_set_adapters": self.diffusers,
            "style_trigger_in_prompt": self.variant.style_trigger,
            "retention": self.scores.retention, "style_gain": self.scores.style_gain,
            "passed": self.passed, "reason": self.reason, "verified": self.verified,
        }


def _rows(section: Section, scores: Mapping[tuple[str, str], RowScores]) -> list[tuple[Variant, RowScores]]:
    return [(v, scores[(section.style, v.key)]) for v in section.variants if v.kind not in BASELINES]


def max_safe_weight(section: Section, scores: Mapping[tuple[str, str], RowScores], threshold: float) -> float | None:
    """The highest plain style weight (all blocks) whose retention stays ≥ threshold; None if none."""
    safe = [v.style_weight for v, s in _rows(section, scores) if v.kind == GRID and s.retention >= threshold]
    return max(safe) if safe else None


def mean_clash(section: Section, scores: Mapping[tuple[str, str], RowScores]) -> float:
    plain = [s.clash for v, s in _rows(section, scores) if v.kind == GRID]
    return sum(plain) / len(plain) if plain else 0.0


def visibility_note(section: Section, scores: Mapping[tuple[str, str], RowScores],
                    likely_trigger: str = "", style_ref: str = "PATH") -> str | None:
    """None when the style shows; else why not and what to do (the likely trigger words).

    Style gain measures a row between the character-only row (0) and the style-only row (1), and is
    ~0 everywhere when those two rows look alike (the span is floored at MIN_SPAN). So the style
    shows when some plain style weight reaches STYLE_SHOWS_MIN; a LoRA whose style is bound to words
    the prompt lacks does not, and "the most style measured" would be advice drawn from noise."""
    gains = [s.style_gain for v, s in _rows(section, scores) if v.kind == GRID]
    if max(gains, default=0.0) >= STYLE_SHOWS_MIN:
        return None
    seen = (f"the style does not show: with it the character's images stay as without it (largest style gain "
            f"{max(gains, default=0.0):.2f} < {STYLE_SHOWS_MIN}), so no advice is given")
    words = section.trigger.strip()
    if likely_trigger and likely_trigger != words:
        where = "even with its trigger words " + repr(words) if words else "without trigger words in the prompt"
        return (f"{seen}; it was prompted {where}, but its training captions all contain {likely_trigger!r}: "
                f"`lorastrap style add {style_ref} --name {section.style} --trigger {likely_trigger!r} --replace`")
    if words:
        return f"{seen}, even with its trigger words {words!r}; check the LoRA or raise --weights"
    return (f"{seen}; the file names no trigger words: find them where the LoRA came from and "
            f"`lorastrap style add {style_ref} --name {section.style} --trigger WORDS --replace`")


def choose(section: Section, scores: Mapping[tuple[str, str], RowScores], threshold: float) -> tuple[Variant, RowScores, bool, str]:
    rows = _rows(section, scores)
    if not rows:
        raise ValueError(f"style {section.style} has no rows to advise from")
    passing = [(v, s) for v, s in rows if s.retention >= threshold]
    if passing:
        # Most style first; then the stronger weight; then the simpler (plain) setting.
        variant, best = max(passing, key=lambda r: (round(r[1].style_gain, 4), r[0].style_weight, r[0].kind == GRID))
        return variant, best, True, (f"keeps identity (retention {best.retention:.2f} ≥ {threshold:.2f}) with the most "
                                     f"style measured (style gain {best.style_gain:.2f})")
    variant, best = max(rows, key=lambda r: r[1].retention)
    return variant, best, False, (f"no measured setting keeps retention ≥ {threshold:.2f}; best was {best.retention:.2f}. "
                                  f"Try `lorastrap clash fix` or lower style weights")


def make_advice(section: Section, scores: Mapping[tuple[str, str], RowScores], threshold: float,
                spec: GridSpec, character_name: str) -> Advice:
    variant, row, passed, reason = choose(section, scores, threshold)
    blocks = {b: float(variant.block_weights.get(b, 1.0)) for b in lbw_layout(spec.arch)}
    style_name = variant.adapter or section.adapter
    a1111 = (f"<lora:{spec.a1111_name(character_name)}:{variant.character_weight:g}> "
             + lbw_string(spec.a1111_name(style_name), variant.style_weight, blocks, spec.arch))
    diffusers = {character_name: variant.character_weight,
                 style_name: diffusers_block_weights(variant.style_weight, variant.block_weights, spec.arch, spec.layout)}
    if not variant.style_trigger:
        reason += f"; leave the style's trigger words ({section.trigger!r}) out of the prompt"
    return Advice(section.style, variant, row, passed, reason, blocks, a1111, diffusers)


def advice_variant(advice: Advice) -> Variant:
    """The advised setting as a row of its own (for the verification run)."""
    v = advice.variant
    return Variant("advice", v.character_weight, v.style_weight, v.blocks, v.adapter, f"advice: {v.title()}",
                   v.style_trigger)


def verification(advice: Advice, verify_scores: Mapping[tuple[str, str], RowScores], seeds: Sequence[int],
                 threshold: float) -> dict:
    row = verify_scores[(advice.style, advice_variant(advice).key)]
    return {"seeds": list(seeds), "retention": row.retention, "style_gain": row.style_gain,
            "identity": row.identity, "passed": row.retention >= threshold}


def _cell_dict(cell: GridCell) -> dict:
    data = {"style": cell.style, "row": cell.variant.key, "view": cell.view, "seed": cell.seed,
            "prompt": cell.prompt, "image": cell.extra.get("image")}
    if cell.scores is not None:
        data.update({k: v for k, v in asdict(cell.scores).items()})
    return data


def _row_dict(variant: Variant, section: Section, scores: RowScores, spec: GridSpec, character_name: str) -> dict:
    blocks = variant.block_weights
    return {
        "key": variant.key, "kind": variant.kind, "label": variant.title(),
        "character_weight": variant.character_weight, "style_weight": variant.style_weight,
        "adapter": variant.adapter or section.adapter,
        "block_weights": {b: float(blocks.get(b, 1.0)) for b in lbw_layout(spec.arch)} if blocks else None,
        "a1111_prompt": a1111_prompt(variant, section, spec, character_name, spec.views[0]),
        "scores": asdict(scores),
    }


def _verified(advice: Mapping | None) -> bool | None:
    check = (advice or {}).get("verified")
    return None if not check else bool(check["passed"])


def build_report(header: Mapping, sections: Sequence[Section], cells: Sequence[GridCell],
                 scores: Mapping[tuple[str, str], RowScores], spec: GridSpec, character_name: str,
                 threshold: float, weightspace: Mapping[str, WeightSpaceReport],
                 advice: Mapping[str, Advice], verify_sections: Sequence[Section] = (),
                 verify_cells: Sequence[GridCell] = (),
                 verify_scores: Mapping[tuple[str, str], RowScores] | None = None,
                 notes: Mapping[str, str | None] | None = None) -> dict:
    """The whole report as plain data: what report.json holds and the HTML renders."""
    styles = []
    verify_by_style = {s.style: s for s in verify_sections}
    for section in sections:
        ws = weightspace.get(section.style)
        check = verify_by_style.get(section.style)
        styles.append({
            "name": section.style, "adapter": section.adapter, "trigger": section.trigger,
            "max_safe_weight": max_safe_weight(section, scores, threshold),
            "mean_clash": mean_clash(section, scores),
            "rows": [_row_dict(v, section, scores[(section.style, v.key)], spec, character_name) for v in section.variants],
            "cells": [_cell_dict(c) for c in cells if c.style == section.style],
            "verify_rows": [_row_dict(v, check, verify_scores[(check.style, v.key)], spec, character_name)
                            for v in check.variants] if check and verify_scores else [],
            "verify_cells": [_cell_dict(c) for c in verify_cells if c.style == section.style],
            "weightspace": ws.to_dict() if ws else None,
            "advice": advice[section.style].to_dict() if section.style in advice else None,
            "style_shows": not (notes or {}).get(section.style),
            "style_note": (notes or {}).get(section.style),
        })
    ranking = sorted(styles, key=lambda s: -s["mean_clash"])
    return {
        "schema": SCHEMA, **header,
        "threshold": threshold, "views": list(spec.views), "seeds": list(spec.seeds), "arch": spec.arch,
        "lbw_blocks": list(lbw_layout(spec.arch)),
        "ranking": [{"rank": i + 1, "style": s["name"], "mean_clash": s["mean_clash"],
                     "max_safe_weight": s["max_safe_weight"],
                     "advice": s["advice"]["a1111"] if s["advice"] else None,
                     "style_shows": s["style_shows"],
                     "verified": _verified(s["advice"])}
                    for i, s in enumerate(ranking)],
        "styles": styles,
    }
