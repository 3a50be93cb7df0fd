"""Style survival: identity accuracy of a character LoRA under a style LoRA at several weights,
before and after the clash fix, compared at equal *measured* style strength (the reader's style
score), since a fix that simply weakens the style would otherwise look like a win."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from lorastrap.lab.lora_runs import LabGenerator, style_lora
from lorastrap.lab.reader import style_score
from lorastrap.lab.scoring import score
from lorastrap.lab.world import Character

if TYPE_CHECKING:
    from lorastrap.lab.eval import FidelityConfig

# (style LoRA, character LoRA, output path) → the fixed style LoRA
StyleFix = Callable[[Path, Path, Path], Path]


def projection_fix(style: Path, character: Path, out: Path) -> Path:
    """The clash report's fix: project the style off the character's subspace (clash/fix.py)."""
    from safetensors.torch import save_file

    from lorastrap.clash.fix import compat_lora, compat_metadata, kohya_tensors
    from lorastrap.clash.lora_file import read_lora

    s, c = read_lora(style), read_lora(character)
    result = compat_lora(s, c)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(kohya_tensors(result.lora), str(out),
              metadata=compat_metadata(s, result, style.stem, character.stem))
    return out


def _interp(curve: list[tuple[float, float]], x: float) -> float:
    """Identity at style strength `x` on a (strength, identity) curve, linear in between."""
    pts = sorted(curve)
    if x <= pts[0][0]:
        return pts[0][1]
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if x <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return pts[-1][1]


def _cell(gen: LabGenerator, c: Character, index: int, cfg: "FidelityConfig", style: str,
          weights: dict) -> dict:
    from lorastrap.lab.eval import trigger_prompt

    prompts, seeds, truths = [], [], []
    for v in cfg.views:
        for s in range(cfg.seeds):
            prompts.append(trigger_prompt(c, v, style))
            seeds.append(100_000 * index + s)
            truths.append(c.attrs())
    images = gen.images(prompts, seeds, weights)
    return {"identity": score(images, truths)["identity"],
            "style": round(sum(style_score(im, style) for im in images) / len(images), 3)}


def run_style_survival(gen: LabGenerator, chars: Sequence[Character], char_loras: dict[str, Path],
                       cfg: "FidelityConfig", work: Path, *, fix: StyleFix = projection_fix,
                       progress: bool = True) -> dict:
    results: dict[str, dict] = {}
    lines = ["## Style survival: identity accuracy / measured style strength",
             "", "| style | weight | before fix | after fix |", "|---|---|---|---|"]
    matched = []
    for style in cfg.style_loras:
        if progress:
            print(f"[lab eval] training the {style} style LoRA", flush=True)
        s_path = style_lora(style, work / "styles", cfg.recipe)
        gen.add_lora(s_path, f"style:{style}")
        per_w: dict[float, dict[str, list[dict]]] = {w: {"before": [], "after": []} for w in cfg.style_weights}
        for index, c in enumerate(chars):
            char_name = f"char:{c.slug}"
            gen.add_lora(char_loras[c.slug], char_name)
            fixed = fix(s_path, char_loras[c.slug], work / "styles" / f"{style}-fixed-{c.slug}.safetensors")
            gen.add_lora(fixed, f"fixed:{style}:{c.slug}")
            for w in cfg.style_weights:
                for when, name in (("before", f"style:{style}"), ("after", f"fixed:{style}:{c.slug}")):
                    cell = _cell(gen, c, index, cfg, style, {char_name: 1.0, name: w})
                    per_w[w][when].append(cell)
        mean = lambda cells, k: sum(x[k] for x in cells) / len(cells)  # noqa: E731
        rows = {}
        for w in cfg.style_weights:
            b, a = per_w[w]["before"], per_w[w]["after"]
            rows[str(w)] = {"before": {"identity": mean(b, "identity"), "style": mean(b, "style")},
                            "after": {"identity": mean(a, "identity"), "style": mean(a, "style")}}
            lines.append(f"| {style} | {w} | {mean(b, 'identity'):.2f} / {mean(b, 'style'):.2f} | "
                         f"{mean(a, 'identity'):.2f} / {mean(a, 'style'):.2f} |")
        curves = {k: [(r[k]["style"], r[k]["identity"]) for r in rows.values()] for k in ("before", "after")}
        level = min(max(s for s, _ in curves["before"]), max(s for s, _ in curves["after"]))
        at = {k: round(_interp(v, level), 3) for k, v in curves.items()}
        matched.append(f"| {style} | {level:.2f} | {at['before']:.2f} | {at['after']:.2f} |")
        results[style] = {"by_weight": rows, "matched_style_strength": level, "identity_at_matched": at}
    lines += ["", "Identity at equal measured style strength (the highest strength both reach):", "",
              "| style | style strength | identity before | identity after |", "|---|---|---|---|",
              *matched]
    return {"results": results, "table": "\n".join(lines) + "\n"}
