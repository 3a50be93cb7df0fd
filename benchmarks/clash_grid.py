"""Clash-grid cost per cell against plain generation, on the built-in tiny model (CPU).

Both runs make the same images (same prompts, seeds, steps) with ONE loaded pipeline and two LoRA
adapters. "plain" sets the weights once and generates row after row; "grid" goes through
`run_grid`, which switches adapter weights with `set_adapters` before every row (plain weights
and LBW per-block dicts alternate, as in a real clash grid). The overhead is what switching costs
per cell: the median `set_weights` time per row ÷ cells per row ÷ the generation time per cell
(target < 5 %); the end-to-end ratio of the two runs is printed beside it as a cross-check. For
scale, it also times reloading both LoRA files per row (what a grid without switching would pay).

    python benchmarks/clash_grid.py [--rows 6] [--views 3] [--seeds 2] [--steps 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lorastrap.clash.blocks import layout_from_unet_config, presets_for  # noqa: E402
from lorastrap.clash.grid import GRID, GridSpec, Section, Variant, run_grid, variant_with_blocks  # noqa: E402
from lorastrap.clash.synthetic import lora_from_modules, random_lora, unet_lora_shapes  # noqa: E402
from lorastrap.models.generation import Generator, GenRequest  # noqa: E402
from lorastrap.models.lora import save_lora  # noqa: E402
from lorastrap.models.tiny import ensure_tiny_model  # noqa: E402

TARGET = 0.05
VIEWS = ("front", "from side", "from behind", "from above", "from below")


def _loras(gen: Generator, tmp: Path) -> list[Path]:
    shapes = unet_lora_shapes(gen.pipe.unet)
    meta = {"ss_base_model_version": "sd_v1", "modelspec.architecture": "stable-diffusion-v1/lora"}
    paths = []
    for seed, name in enumerate(("character", "style")):
        lora = random_lora(shapes, rank=4, seed=seed)
        lora = lora_from_modules({k: (m.down, m.up * 50, m.alpha) for k, m in lora.modules.items()})  # visible effect
        path = tmp / f"{name}.safetensors"
        save_lora(lora, path, meta)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=6)
    parser.add_argument("--views", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2, help="passes over the rows")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        gen = Generator(ensure_tiny_model(tmp / "tiny", "sd15"))
        char_path, style_path = _loras(gen, tmp)
        gen.add_lora(char_path, "character")
        gen.add_lora(style_path, "style")
        presets = presets_for("sd15")
        variants = [variant_with_blocks(f"preset:{presets[i % len(presets)].name}", 1.0, 0.3 + 0.1 * i,
                                        presets[i % len(presets)].block_weights()) if i % 2 else
                    Variant(GRID, 1.0, 0.3 + 0.1 * i) for i in range(args.rows)]
        spec = GridSpec("character", "kitsune", VIEWS[: args.views], list(range(1, args.seeds + 1)), "sd15",
                        layout_from_unet_config(gen.pipe.unet.config), steps=args.steps)
        section = Section("style", "style", "", variants)
        per_row = args.views * args.seeds
        requests = [GenRequest(spec.prompt(v, ""), seed=s, steps=args.steps, view=v) for v in spec.views for s in spec.seeds]

        rows_plain, rows_grid = [], []
        weights = {"character": 1.0, "style": 0.6}

        def plain_row() -> float:  # weights already set: generation only
            start = time.perf_counter()
            gen.generate(requests)
            return time.perf_counter() - start

        def grid_row(variant: Variant) -> float:  # what run_grid does per row: switch, then generate
            start = time.perf_counter()
            run_grid(gen, [Section("style", "style", "", [variant])], spec, show_progress=False)
            return time.perf_counter() - start

        grid_row(variants[0]), plain_row()  # warm-up
        for i in range(args.rounds):  # pairs of rows back to back, so machine load hits both alike
            for variant in variants:
                rows_grid.append(grid_row(variant))
                gen.set_weights(weights)
                rows_plain.append(plain_row())
            print(f"round {i + 1}: plain {min(rows_plain) * 1000 / per_row:.1f} ms/cell, "
                  f"grid {min(rows_grid) * 1000 / per_row:.1f} ms/cell (best so far)", flush=True)
        switch = []
        for i in range(20):
            start = time.perf_counter()
            gen.set_weights({"character": 1.0, "style": 0.3 + 0.01 * i})
            switch.append(time.perf_counter() - start)
        reload = []
        for _ in range(3):
            start = time.perf_counter()
            gen.pipe.unload_lora_weights()
            gen.loras.clear()
            gen.weights = {}
            gen.add_lora(char_path, "character")
            gen.add_lora(style_path, "style")
            reload.append(time.perf_counter() - start)
        gen.close()

    # Switching is measured directly (robust); the end-to-end ratio is a cross-check that a busy,
    # shared CPU makes noisy (min and median over the row pairs are both printed).
    p, g = min(rows_plain) / per_row, min(rows_grid) / per_row
    pm, gm = statistics.median(rows_plain) / per_row, statistics.median(rows_grid) / per_row
    switch_s = statistics.median(switch)
    overhead = switch_s / per_row / p
    print(f"tiny SD1.5 model, 64 px, {args.steps} steps, {per_row} cells per row ({args.views} views x {args.seeds} "
          f"seeds), {len(rows_plain)} row pairs; torch threads {torch.get_num_threads()}")
    print(f"plain generation        {p * 1000:8.1f} ms/cell (median {pm * 1000:.1f})")
    print(f"clash grid              {g * 1000:8.1f} ms/cell (median {gm * 1000:.1f})   end to end "
          f"{g / p - 1:+.1%} (min) / {gm / pm - 1:+.1%} (median)")
    print(f"set_adapters switch     {switch_s * 1000:8.1f} ms/row   overhead per cell {overhead:.1%}  "
          f"target < {TARGET:.0%}: {'PASS' if overhead < TARGET else 'FAIL'}")
    print(f"reload both LoRAs       {statistics.median(reload) * 1000:8.1f} ms/row   "
          f"({statistics.median(reload) / statistics.median(switch):.0f}x a switch)")


if __name__ == "__main__":
    main()
