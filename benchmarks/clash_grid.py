"""Clash-grid cost per cell against plain generation, on the built-in tiny model (CPU).

Both runs make the same images (same prompts, seeds, steps) with ONE loaded pipeline and two LoRA
adapters. "plain" sets the weights once and generates row after row; "grid" goes through
`run_grid`, which switches adapter weights with `set_adapters` before every row (plain weights
and LBW per-block dicts alternate, as in a real clash grid). The overhead is what switching costs
per cell; the target is < 5 %. For scale, it also times reloading both LoRA files per row (what a
grid without adapter switching would pay).

    python benchmarks/clash_grid.py [--rows 6] [--views 3] [--seeds 2] [--steps 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lorastrap.clash.blocks import layout_from_unet_config, presets_for  # noqa: E402
from lorastrap.clash.fix import kohya_tensors  # noqa: E402
from lorastrap.clash.grid import GRID, GridSpec, Section, Variant, run_grid, variant_with_blocks  # noqa: E402
from lorastrap.clash.synthetic import lora_from_modules, random_lora, unet_lora_shapes  # noqa: E402
from lorastrap.generation import Generator, GenRequest  # noqa: E402
from lorastrap.models.tiny import ensure_tiny_model  # noqa: E402
from lorastrap.training.kohya_format import write_kohya_file  # noqa: E402

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
        write_kohya_file(kohya_tensors(lora), path, meta)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=6)
    parser.add_argument("--views", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

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
        cells = args.rows * args.views * args.seeds
        requests = [GenRequest(spec.prompt(v, ""), seed=s, steps=args.steps, view=v) for v in spec.views for s in spec.seeds]

        def plain() -> float:
            gen.set_weights({"character": 1.0, "style": 0.6})
            start = time.perf_counter()
            for _ in range(args.rows):
                gen.generate(requests)
            return (time.perf_counter() - start) / cells

        def grid() -> float:
            start = time.perf_counter()
            run_grid(gen, [section], spec, show_progress=False)
            return (time.perf_counter() - start) / cells

        plain(), grid()  # warm-up
        plain_t, grid_t = [], []
        for i in range(args.rounds):  # interleaved, so machine load hits both alike
            plain_t.append(plain())
            grid_t.append(grid())
            print(f"round {i + 1}: plain {plain_t[-1] * 1000:.1f} ms/cell, grid {grid_t[-1] * 1000:.1f} ms/cell", flush=True)
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

    p, g = statistics.median(plain_t), statistics.median(grid_t)
    overhead = g / p - 1
    print(f"tiny SD1.5 model, 64 px, {args.steps} steps; {args.rows} rows x {args.views} views x {args.seeds} seeds "
          f"= {cells} cells; median of {args.rounds} interleaved rounds")
    print(f"plain generation        {p * 1000:8.1f} ms/cell")
    print(f"clash grid (switching)  {g * 1000:8.1f} ms/cell   overhead {overhead:+.1%}  target < {TARGET:.0%}: "
          f"{'PASS' if overhead < TARGET else 'FAIL'}")
    share = statistics.median(switch) / (args.views * args.seeds) / p
    print(f"set_adapters switch     {statistics.median(switch) * 1000:8.1f} ms/row   = {share:.1%} of a cell's "
          f"generation time with {args.views * args.seeds} cells per row")
    print(f"reload both LoRAs       {statistics.median(reload) * 1000:8.1f} ms/row   "
          f"({statistics.median(reload) / statistics.median(switch):.0f}x a switch)")


if __name__ == "__main__":
    main()
