"""The clash report on the lab model, where identity is measurable (the lab's attribute reader).

A held-out lab character gets a character LoRA (4 front seeds) and a `pixel art` style LoRA
(16 drawings, a style held out of pretraining); then `run_clash` with the lab reader as its metrics (`ReaderMetrics`)
and `fix_style`. Prints, per grid row, identity retention and style gain, the advice and its
verification on held-out seeds, and the compat LoRA's before/after. About 5 minutes on 2 CPU cores.

    python benchmarks/clash_lab.py [--steps 150] [--seeds 2] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lorastrap.characters import add_character  # noqa: E402
from lorastrap.clash.compat import fix_style  # noqa: E402
from lorastrap.clash.options import ClashOptions  # noqa: E402
from lorastrap.clash.run import run_clash  # noqa: E402
from lorastrap.clash.styles import add_style  # noqa: E402
from lorastrap.lab import held_out_characters, seed_images  # noqa: E402
from lorastrap.lab.loras import LoraRecipe, seed_lora, style_lora, trigger_for  # noqa: E402
from lorastrap.lab.scoring import ReaderMetrics  # noqa: E402
from lorastrap.models.hashing import sha256_file  # noqa: E402
from lorastrap.queries import get_character  # noqa: E402
from lorastrap.workspace import init_workspace  # noqa: E402
from registry.models import Lora  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=150, help="LoRA training steps")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--out", type=Path, help="keep the workspace here (default: a temp folder)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    root = args.out or Path(tempfile.mkdtemp(prefix="clash-lab-"))
    if (root / "ws").exists():
        shutil.rmtree(root / "ws")  # a fresh registry each run; the trained LoRAs are kept
    ws, _ = init_workspace(root / "ws", base_model="lab")
    character = held_out_characters()[0]
    work = root / "loras"
    recipe = LoraRecipe(steps=args.steps)
    seeds = seed_images(character)
    char_path = work / f"{character.slug}-seed.safetensors"  # kept between runs with --out
    if not char_path.is_file():
        char_path = seed_lora(character, seeds, "flat color", work, recipe)
    style_path = work / "style-pixel-art.safetensors"
    if not style_path.is_file():
        style_path = style_lora("pixel art", work, recipe)
    for i, image in enumerate(seeds):
        image.save(root / f"seed{i}.png")
    add_character(ws, "kitsune", [root / f"seed{i}.png" for i in range(len(seeds))],
                  ["1girl", "solo", *character.tags()], trigger=trigger_for(character))
    with ws.open_registry() as reg, reg.session() as s:
        c = get_character(s, "kitsune")
        s.add(Lora(character_id=c.id, name=char_path.stem, kind="character", file_path=str(char_path),
                   sha256=sha256_file(char_path), arch="sd15"))
    add_style(ws, style_path, "pixelart", trigger="pixel art")
    opts = ClashOptions(styles=["pixelart"], weights=(0.5, 1.0), seeds=args.seeds,
                        views=["from front", "from side", "from behind"], steps=20, cfg=4.0,
                        metrics=ReaderMetrics(), extra_prompt="1girl, solo")
    outcome = run_clash(ws, "kitsune", replace(opts, out=root / "report"))
    report = json.loads(outcome.json.read_text())
    style = report["styles"][0]
    print(f"character {character.slug}, style pixel art; identity: {report['metric']['identity_metric']}; "
          f"style: {report['metric']['style_metric']}; threshold {report['threshold']}")
    print(f"{'row':38s} {'identity':>8s} {'retention':>9s} {'style gain':>10s}")
    for row in style["rows"]:
        sc = row["scores"]
        print(f"{row['label']:38s} {sc['identity']:8.2f} {sc['retention']:9.2f} {sc['style_gain']:10.2f}")
    advice = style["advice"]
    print(f"weight space: flagged {style['weightspace']['flagged_blocks']}, projection energy "
          f"{style['weightspace']['overall_projection_energy']:.3f}")
    print(f"advice: {advice['a1111']}  passed={advice['passed']}  verified={advice['verified']}")
    fixed = fix_style(ws, "kitsune", "pixelart", root / "kitsune-pixelart-compat.safetensors",
                      report_out=root / "fix-report", options=opts)
    print(f"fix: energy {fixed.energy_before:.3f} -> {fixed.energy_after:.3f}, kept {fixed.kept_energy:.1%}")
    for row in fixed.before_after:
        print(f"  style {row['style_weight']:g}: retention {row['retention_before']:.2f} -> {row['retention_after']:.2f}, "
              f"style gain {row['style_gain_before']:.2f} -> {row['style_gain_after']:.2f}")
    print(f"reports: {outcome.html}  {fixed.report_html}")


if __name__ == "__main__":
    main()
