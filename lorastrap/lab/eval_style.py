"""Style survival: identity accuracy of a character LoRA under a style LoRA at several weights,
before and after the clash fix, compared at equal *measured* style strength (the reader's style
score), since a fix that simply weakens the style would otherwise look like a win."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from lorastrap.lab.arms import FidelityConfig, trigger_prompt
from lorastrap.lab.loras import LabGenerator, style_lora
from lorastrap.lab.reader import style_score
from lorastrap.lab.scoring import score
from lorastrap.lab.world import Character

# (style LoRA, character LoRA, output path) → the fixed style LoRA
StyleFix = Callable[[Path, Path, Path], Path]


def projection_fix(style: Path, character: Path, out: Path, *, sides: str = "column",
                   energy: float = 1.0) -> Path:
    """The clash report's fix: project the style off the character's subspace (clash/projection.py);
    `functools.partial(projection_fix, sides="both")` is the two-sided variant."""
    from lorastrap.clash.projection import compat_lora, compat_metadata
    from lorastrap.models.lora import read_lora, save_lora

    s, c = read_lora(style), read_lora(character)
    result = compat_lora(s, c, energy=energy, sides=sides)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_lora(result.lora, out, compat_metadata(s, result, style.stem, character.stem))
    return out


@dataclass(frozen=True)
class StyleVariant:
    """One way of applying the style LoRA next to the character LoRA."""

    name: str
    fix: StyleFix | None = None  # None: the style LoRA as trained
    blocks: Mapping[str, float] | None = None  # LBW block multipliers for the style adapter (None: all 1)
    prompt: str | None = None  # the style words in the prompt; None: the style's own, "": none


def style_weight(gen: LabGenerator, weight: float, blocks: Mapping[str, float] | None) -> float | dict:
    """The style adapter's weight for `set_adapters`: a float, or the per-block diffusers dict."""
    if blocks is None:
        return weight
    from lorastrap.clash.blocks import diffusers_block_weights, layout_from_unet_config

    layout = layout_from_unet_config(gen.gen.pipe.unet.config)
    return diffusers_block_weights(weight, blocks, "sd15", layout)


def _interp(curve: list[tuple[float, float]], x: float) -> float:
    """Identity at style strength `x` on a (strength, identity) curve, linear in between."""
    pts = sorted(curve)
    if x <= pts[0][0]:
        return pts[0][1]
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if x <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return pts[-1][1]


def style_cell(gen: LabGenerator, c: Character, index: int, cfg: FidelityConfig, style: str,
               weights: dict, prompt_style: str | None = None) -> dict:
    """Identity accuracy and mean `style` strength of one character over the views × seeds;
    `prompt_style` replaces the style words of the prompt ("" leaves them out)."""
    words = style if prompt_style is None else prompt_style
    prompts, seeds, truths = [], [], []
    for v in cfg.views:
        for s in range(cfg.seeds):
            prompts.append(trigger_prompt(c, v, words).rstrip(", "))
            seeds.append(100_000 * index + s)
            truths.append(c.attrs())
    images = gen.images(prompts, seeds, weights)
    return {"identity": score(images, truths)["identity"],
            "style": round(sum(style_score(im, style) for im in images) / len(images), 3)}


def variant_cells(gen: LabGenerator, chars: Sequence[Character], char_loras: dict[str, Path],
                  cfg: FidelityConfig, style: str, style_path: Path, variants: Sequence[StyleVariant],
                  work: Path, weights: Sequence[float] | None = None, progress: bool = False,
                  indices: Sequence[int] | None = None) -> dict[str, dict[float, list[dict]]]:
    """{variant: {style weight: [cell per character]}}; the same seeds for every variant and weight.
    Weight 0 (character LoRA alone, style only in the prompt) is computed once per prompt and shared."""
    from lorastrap.kernel.progress import progress_bar

    gen.add_lora(style_path, f"style:{style}")
    out: dict[str, dict[float, list[dict]]] = {v.name: {} for v in variants}
    shared: dict[str | None, list[dict]] = {}  # weight-0 cells per prompt
    bar = progress_bar(len(chars) * len(variants), style, "variant", enabled=progress)
    for done, c in enumerate(chars):
        index = indices[done] if indices is not None else done  # seeds follow the character's global index
        char_name = f"char:{c.slug}"
        gen.add_lora(char_loras[c.slug], char_name)
        for v in variants:
            name = f"style:{style}"
            if v.fix is not None:
                name = f"{v.name}:{style}:{c.slug}"
                fixed = v.fix(style_path, char_loras[c.slug],
                              work / f"{style.replace(' ', '-')}-{v.name}-{c.slug}.safetensors")
                gen.add_lora(fixed, name)
            for w in weights if weights is not None else cfg.style_weights:
                if w == 0:
                    if len(shared.setdefault(v.prompt, [])) <= done:
                        shared[v.prompt].append(style_cell(gen, c, index, cfg, style, {char_name: 1.0}, v.prompt))
                    cell = shared[v.prompt][done]
                else:
                    cell = style_cell(gen, c, index, cfg, style, {char_name: 1.0, name: style_weight(gen, w, v.blocks)},
                                      v.prompt)
                out[v.name].setdefault(w, []).append(cell)
            bar.update()
    bar.close()
    return out


def curve(cells: Mapping[float, list[dict]]) -> dict[str, dict[str, float]]:
    """{str(weight): {"identity", "style"}} means over characters."""
    mean = lambda rows, k: round(sum(x[k] for x in rows) / len(rows), 4)  # noqa: E731
    return {str(w): {"identity": mean(rows, "identity"), "style": mean(rows, "style")}
            for w, rows in sorted(cells.items())}


def at_equal_style(before: Mapping[str, dict], after: Mapping[str, dict],
                   level: float | None = None) -> tuple[float, float, float | None]:
    """(strength, identity before, identity after) at style strength `level` (default: the highest
    both curves reach), interpolated linearly in strength: a fix that only weakens the style gains
    nothing here. Identity after is None when the `after` curve never reaches `level`."""
    curves = [[(r["style"], r["identity"]) for r in c.values()] for c in (before, after)]
    top = min(max(x for x, _ in c) for c in curves)
    level = top if level is None else level
    reached = max(x for x, _ in curves[1]) >= level - 1e-3  # rounding of the means
    return level, round(_interp(curves[0], level), 3), round(_interp(curves[1], level), 3) if reached else None


def survival_variants(fix: StyleFix = projection_fix, blocks: Mapping[str, float] | None = None) -> list[StyleVariant]:
    """What the clash report can advise, each measured against the style as trained ("before"):
    the compat LoRA (`fix`), the prompt without the style's trigger words, and both."""
    return [StyleVariant("before"), StyleVariant("fixed", fix, blocks),
            StyleVariant("no style words", prompt=""), StyleVariant("no style words + fixed", fix, blocks, prompt="")]


def run_style_survival(gen: LabGenerator, chars: Sequence[Character], char_loras: dict[str, Path],
                       cfg: FidelityConfig, work: Path, *, fix: StyleFix = projection_fix,
                       blocks: Mapping[str, float] | None = None,
                       variants: Sequence[StyleVariant] | None = None, indices: Sequence[int] | None = None,
                       progress: bool = True) -> dict:
    """Identity / style strength per style, weight and variant (the first variant is the baseline),
    and identity at equal measured style strength against that baseline."""
    variants = list(variants or survival_variants(fix, blocks))
    curves: dict[str, dict[str, dict]] = {}
    for style in cfg.style_loras:
        if progress:
            print(f"[lab eval] training the {style} style LoRA", flush=True)
        s_path = style_lora(style, work / "styles", cfg.recipe)
        cells = variant_cells(gen, chars, char_loras, cfg, style, s_path, variants, work / "styles",
                              indices=indices)
        curves[style] = {v.name: curve(cells[v.name]) for v in variants}
    return style_summary(curves)


def style_summary(curves: Mapping[str, Mapping[str, dict]]) -> dict:
    """Tables and results from {style: {variant: curve}} (the first variant is the baseline)."""
    results: dict[str, dict] = {}
    names = list(next(iter(curves.values()), {}))
    lines = ["## Style survival: identity accuracy / measured style strength", "",
             "| style | weight | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    matched = []
    for style, by_variant in curves.items():
        base = by_variant[names[0]]
        for w in base:
            lines.append(f"| {style} | {w} | " + " | ".join(
                f"{by_variant[n][w]['identity']:.2f} / {by_variant[n][w]['style']:.2f}" for n in names) + " |")
        # the level the baseline reaches at weight 1 (its top weight if 1 is not measured)
        level = base.get("1.0", list(base.values())[-1])["style"]
        at = {}
        for n in names[1:]:
            _, before, after = at_equal_style(base, by_variant[n], level)
            at[n] = {"before": before, "after": after, "gain": None if after is None else round(after - before, 3)}
            shown = "not reached" if after is None else f"{after:.2f} ({after - before:+.2f})"
            matched.append(f"| {style} | {n} | {level:.2f} | {before:.2f} | {shown} |")
        results[style] = {"by_weight": dict(by_variant), "matched_style_strength": level, "identity_at_matched": at}
    lines += ["", "Identity at equal measured style strength (what the style reaches at weight 1 as trained):", "",
              "| style | variant | style strength | identity before | identity with the variant (gain) |",
              "|---|---|---|---|---|", *matched]
    return {"results": results, "table": "\n".join(lines) + "\n"}
