"""Which clash fix keeps a character under a style LoRA? Variants side by side on the lab model.

Each held-out lab character gets a character LoRA (arm (b): 4 front seeds, `flat color`); each
held-out style (`pixel art`, `cel shading`) a style LoRA. Every variant applies the style next to the
character at the given weights; the reader scores identity accuracy and style strength on the same
seeds. Variants (see docs/clash.md "The compat LoRA"):

  original   the style LoRA as trained
  column     compat LoRA, projected off the character's column (output) subspace (the default fix)
  row        compat LoRA, projected off the character's row (input) subspace
  both       compat LoRA, projected off both (two-sided)
  outall     the original style with the LBW preset OUTALL (style only in BASE + output blocks)
  both+outall  the two-sided compat LoRA with OUTALL

Since a fix that weakens the style would look like a win at equal *weight*, each variant is
compared with the original at equal *measured* style strength (the highest strength both reach,
linear in between; weight 0 — the character alone, style only in the prompt — anchors both curves).

GPU scale (the defaults): python benchmarks/clash_fix_variants.py --device cuda --out fix-variants.json
CPU smoke:  OMP_NUM_THREADS=1 LORASTRAP_THREADS=1 python benchmarks/clash_fix_variants.py \\
            --characters 2 --seeds 3 --weights 0.5 1.0 --styles "pixel art" --sample-steps 12 \\
            --lora-steps 100 --work /tmp/cfv --out /tmp/cfv/result.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lorastrap.clash.blocks import presets_for  # noqa: E402
from lorastrap.lab import HELD_OUT, seed_images  # noqa: E402
from lorastrap.lab.arms import FidelityConfig  # noqa: E402
from lorastrap.lab.eval_style import StyleVariant, at_equal_style, curve, projection_fix, style_cell, variant_cells  # noqa: E402
from lorastrap.lab.loras import LabGenerator, LoraRecipe, seed_lora, style_lora  # noqa: E402

OUTALL = next(p for p in presets_for("sd15") if p.name == "OUTALL").block_weights()
VARIANTS = {
    "original": StyleVariant("original"),
    "column": StyleVariant("column", projection_fix),
    "row": StyleVariant("row", partial(projection_fix, sides="row")),
    "both": StyleVariant("both", partial(projection_fix, sides="both")),
    "outall": StyleVariant("outall", None, OUTALL),
    "both+outall": StyleVariant("both+outall", partial(projection_fix, sides="both"), OUTALL),
    "no-trigger": StyleVariant("no-trigger", prompt=""),
    "flat-prompt": StyleVariant("flat-prompt", prompt="flat color"),
    "no-trigger+column": StyleVariant("no-trigger+column", projection_fix, prompt=""),
    "no-trigger+both": StyleVariant("no-trigger+both", partial(projection_fix, sides="both"), prompt=""),
    "no-trigger+outall": StyleVariant("no-trigger+outall", None, OUTALL, prompt=""),
}


def _cached(path: Path, train) -> Path:
    """Trained LoRAs are kept in --work, so a rerun with other variants trains nothing."""
    return path if path.is_file() else train()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default=None, help="cuda, cpu, … (default: the Generator's choice)")
    ap.add_argument("--characters", type=int, default=4, help="held-out lab characters")
    ap.add_argument("--seeds", type=int, default=8, help="seeds per view")
    ap.add_argument("--views", nargs="+", default=["from front", "from side", "from behind"])
    ap.add_argument("--weights", type=float, nargs="+", default=[0.5, 0.75, 1.0], help="style weights")
    ap.add_argument("--styles", nargs="+", default=["pixel art", "cel shading"])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--ref-weight", type=float, default=1.0,
                    help="also compare at the style strength the original reaches at this weight")
    ap.add_argument("--sample-steps", type=int, default=20)
    ap.add_argument("--lora-steps", type=int, default=150)
    ap.add_argument("--work", type=Path, help="keep the trained LoRAs here (default: a temp folder)")
    ap.add_argument("--out", type=Path, default=Path("clash_fix_variants.json"), help="JSON results")
    args = ap.parse_args()
    if args.device in (None, "cpu"):
        import torch

        torch.set_num_threads(int(os.environ.get("LORASTRAP_THREADS", "1")))

    t0 = time.perf_counter()
    recipe = LoraRecipe(steps=args.lora_steps)
    cfg = FidelityConfig(characters=args.characters, seeds=args.seeds, views=tuple(args.views),
                         sample_steps=args.sample_steps, recipe=recipe, style_loras=tuple(args.styles),
                         style_weights=tuple(args.weights), device=args.device)
    work = (args.work or Path(tempfile.mkdtemp(prefix="fix-variants-"))) / f"steps{recipe.steps}-r{recipe.rank}"
    gen = LabGenerator(cfg.device, cfg.sample_steps, cfg.guidance)
    chars = list(HELD_OUT[: cfg.characters])
    char_loras = {
        c.slug: _cached(work / f"{c.slug}-seed.safetensors",
                        partial(seed_lora, c, seed_images(c, cfg.seed_images, cfg.style, seed=i), cfg.style, work, recipe))
        for i, c in enumerate(chars)}
    reference = []  # the character LoRA without any style: the identity there is to keep
    for i, c in enumerate(chars):
        gen.add_lora(char_loras[c.slug], f"char:{c.slug}")
        reference.append(style_cell(gen, c, i, cfg, cfg.style, {f"char:{c.slug}": 1.0}))
    no_style = round(sum(r["identity"] for r in reference) / len(reference), 3)
    variants = [VARIANTS[v] for v in dict.fromkeys(["original", *args.variants])]
    weights = [0.0, *args.weights]
    results: dict = {}
    for style in cfg.style_loras:
        slug = style.replace(" ", "-")
        s_path = _cached(work / "styles" / f"style-{slug}.safetensors", partial(style_lora, style, work / "styles", recipe))
        cells = variant_cells(gen, chars, char_loras, cfg, style, s_path, variants, work / "fixed", weights, progress=True)
        curves = {v.name: curve(cells[v.name]) for v in variants}
        ref = curves["original"].get(str(args.ref_weight), {}).get("style")
        keys = ("style_strength", "identity_original", "identity_variant")
        results[style] = {name: {
            "by_weight": c,
            "at_equal_style": dict(zip(keys, at_equal_style(curves["original"], c))),
            "at_ref_weight_style": dict(zip(keys, at_equal_style(curves["original"], c, ref))) if ref else None,
        } for name, c in curves.items()}
    print(table(results, args.weights, no_style, args.ref_weight))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"config": asdict(cfg) | {"recipe": asdict(recipe)}, "characters": [c.slug for c in chars],
               "identity_without_style": no_style, "results": results, "device": str(gen.gen.device),
               "seconds": round(time.perf_counter() - t0, 1)}
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=1, default=str))
    tmp.replace(args.out)
    print(f"\n{payload['seconds']} s on {payload['device']}; wrote {args.out}")


def _delta(eq: dict | None) -> list[str]:
    """'strength', 'identity original→variant', 'Δ' ('–' where the variant never reaches it)."""
    if not eq or eq["identity_variant"] is None:
        return [f"{eq['style_strength']:.2f}" if eq else "–", "not reached", "–"]
    return [f"{eq['style_strength']:.2f}", f"{eq['identity_original']:.2f}→{eq['identity_variant']:.2f}",
            f"{eq['identity_variant'] - eq['identity_original']:+.2f}"]


def table(results: dict, weights: list[float], no_style: float, ref_weight: float) -> str:
    """One row per (style, variant): identity/style per weight, then identity at equal style
    strength — at the original's strength at `ref_weight`, and at the highest strength both reach."""
    head = ["style", "variant", *(f"w={w:g} id/sty" for w in [0.0, *weights]),
            f"sty@w{ref_weight:g}", "id orig→var", "Δid", "sty max", "id orig→var", "Δid"]
    rows = [head]
    for style, by_variant in results.items():
        for name, r in by_variant.items():
            cells = [f"{r['by_weight'][str(float(w))]['identity']:.2f}/{r['by_weight'][str(float(w))]['style']:.2f}"
                     for w in [0.0, *weights]]
            rows.append([style, name, *cells, *_delta(r["at_ref_weight_style"]), *_delta(r["at_equal_style"])])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(wd) for cell, wd in zip(r, widths)) for r in rows]
    return (f"identity without the style LoRA (prompted '{FidelityConfig.style}'): {no_style:.2f}\n"
            + "\n".join(lines[:1] + ["-" * len(lines[0])] + lines[1:]))


if __name__ == "__main__":
    main()
