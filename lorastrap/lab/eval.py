"""The fidelity benchmark (`lorastrap lab eval`): does a character hold from views it was never
shown, and does it survive a style LoRA?

For each held-out character, seed images are drawn from the front only. Every *arm* (a way of
asking for the character) generates the same seeds for each view, and the reader scores them:
(a) the base model with the attributes spelled out, (b) a character LoRA trained directly on the
seed images, (c) each LoRA a bootstrap hook returns (rounds of the method, final character LoRA).
The style-survival part lives in `eval_style.py`.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Sequence

from lorastrap.lab.arms import Arm, FidelityConfig, tags_prompt, trigger_prompt, trigger_tags_prompt
from lorastrap.lab.loras import LabGenerator, seed_lora, trigger_for
from lorastrap.lab.scoring import score
from lorastrap.lab.world import HELD_OUT, Character

# (character, front-view seed image paths, trigger, work dir) → [(arm name, LoRA path), ...]
BootstrapHook = Callable[[Character, Sequence[Path], str, Path], Sequence[tuple[str, Path]]]


def measure_arm(gen: LabGenerator, arm: Arm, c: Character, cfg: FidelityConfig, index: int,
                extra_weights: dict | None = None, style: str | None = None) -> dict[str, dict]:
    """Scores per view of one arm for one character (the same seeds for every arm)."""
    weights = dict(extra_weights or {})
    if arm.lora is not None:
        gen.add_lora(arm.lora, arm.name)
        weights[arm.name] = 1.0
    style = style or cfg.style
    prompts, seeds, truths = [], [], []
    for v in cfg.views:
        for s in range(cfg.seeds):
            prompts.append(arm.prompt(c, v, style))
            seeds.append(100_000 * index + s)
            truths.append({**c.attrs(), "view": v})
    images = gen.images(prompts, seeds, weights)
    out = {}
    for v in cfg.views:
        sel = [i for i, t in enumerate(truths) if t["view"] == v]
        out[v] = score([images[i] for i in sel], [truths[i] for i in sel])
    out["_images"] = images  # type: ignore[assignment]  # kept for sheets, dropped from JSON
    return out


def _mean(rows: list[dict[str, dict]], view: str, key: str) -> float:
    vals = [r[view][key] for r in rows]
    return round(sum(vals) / len(vals), 3) if vals else float("nan")


def _spread(rows: list[dict[str, dict]], view: str, key: str) -> float:
    """Standard deviation over characters: how much the answer depends on who the character is."""
    vals = [r[view][key] for r in rows]
    return statistics.stdev(vals) if len(vals) > 1 else 0.0


def fidelity_table(per_arm: dict[str, list[dict]], views: Sequence[str], spread: bool = True) -> str:
    """Markdown: one row per arm, per view 'all ± sd (identity)' accuracy over characters."""
    head = "| arm | " + " | ".join(views) + " |\n|---|" + "---|" * len(views) + "\n"
    rows = []
    for name, results in per_arm.items():
        cells = [f"{_mean(results, v, 'all'):.2f}" + (f" ± {_spread(results, v, 'all'):.2f}" if spread else "")
                 + f" ({_mean(results, v, 'identity'):.2f})" for v in views]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return head + "\n".join(rows) + "\n"


def _summary(cfg: FidelityConfig, chars: Sequence[Character], per_arm: dict[str, list[dict]],
             gen: LabGenerator, t0: float, yields: dict[str, list[dict]] | None = None,
             method: dict | None = None) -> tuple[dict, str]:
    from lorastrap.lab.eval_yield import yield_table

    results = {"config": asdict(cfg) | {"recipe": asdict(cfg.recipe)},
               "characters": [c.slug for c in chars],
               "views": list(cfg.views),
               "arms": per_arm,
               "machine": f"{platform.machine()}, device {gen.gen.device}",
               "seconds": round(time.perf_counter() - t0, 1)}
    tables = "## Character fidelity per view: all-attribute (identity) accuracy\n\n"
    tables += fidelity_table(per_arm, cfg.views)
    if method is not None:
        results["method"] = method
    if yields:
        results["yield"] = yields
        tables += "\n" + yield_table(yields)
    return results, tables


def _write(out_dir: Path, results: dict, tables: str) -> None:
    from lorastrap.kernel.atomic import atomic_write_text

    atomic_write_text(out_dir / "results.json", json.dumps(results, indent=1, default=str))
    atomic_write_text(out_dir / "tables.md", tables)


def run_fidelity(out_dir: Path, cfg: FidelityConfig | None = None, *,
                 bootstrap: BootstrapHook | None = None, style_survival: bool = True,
                 progress: bool = True) -> dict:
    """Run the benchmark, write results.json, tables.md and contact sheets into `out_dir`."""
    from lorastrap.lab import seed_images
    from lorastrap.lab.loras import contact_sheet

    cfg = cfg or FidelityConfig()
    out_dir = Path(out_dir)
    work = out_dir / "work"
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    gen = LabGenerator(cfg.device, cfg.sample_steps, cfg.guidance)
    indices = list(cfg.character_indices or range(cfg.characters))
    chars = [HELD_OUT[i] for i in indices]
    per_arm: dict[str, list[dict]] = {}
    yields: dict[str, list[dict]] = {}
    settings = getattr(bootstrap, "settings", None)
    method = asdict(settings) if settings is not None else None
    char_loras: dict[str, Path] = {}
    sheets = []
    results, tables = _summary(cfg, [], per_arm, gen, t0, yields, method)
    for done, (index, c) in enumerate(zip(indices, chars)):
        say = (lambda m: print(f"[lab eval] {c.slug}: {m}", flush=True)) if progress else (lambda m: None)
        seeds = seed_images(c, cfg.seed_images, cfg.style, seed=index)
        seed_dir = work / c.slug / "seed"
        seed_dir.mkdir(parents=True, exist_ok=True)
        seed_paths = []
        for i, img in enumerate(seeds):
            seed_paths.append(seed_dir / f"{i}.png")
            img.save(seed_paths[-1])
        say("training the seed LoRA (b)")
        lora_b = seed_lora(c, seeds, cfg.style, work / c.slug, cfg.recipe)
        arms = [arm for key, arm in (("a", Arm("(a) base, tags spelled out", None, tags_prompt)),
                                     ("a0", Arm("(a0) base, trigger only", None, trigger_prompt)),
                                     ("b", Arm("(b) seed LoRA, trigger", lora_b, trigger_prompt)),
                                     ("b+", Arm("(b+) seed LoRA, trigger + tags", lora_b, trigger_tags_prompt)))
                if key in cfg.reference_arms]
        char_loras[c.slug] = lora_b
        if bootstrap is not None:
            run = bootstrap(c, seed_paths, trigger_for(c), work / c.slug / "bootstrap")
            if getattr(run, "rounds", None):
                yields[c.slug] = run.rounds  # type: ignore[union-attr]
            for name, path in run:
                style_round = name.startswith("style")
                if not style_round:  # the final LoRA both ways: trigger alone, and with the tags
                    arms.append(Arm(f"(c) {name}, trigger", Path(path), trigger_prompt))
                arms.append(Arm(f"(c) {name}, trigger + tags", Path(path), trigger_tags_prompt))
                char_loras[c.slug] = Path(path)  # the last one is the final character LoRA
        for arm in arms:
            adapter = Arm(f"{c.slug}:{arm.name}", arm.lora, arm.prompt)
            result = measure_arm(gen, adapter, c, cfg, index)
            sheets.append(result.pop("_images")[:: cfg.seeds // 2 or 1])
            per_arm.setdefault(arm.name, []).append(result)
            say(f"{arm.name}: " + ", ".join(f"{v} {result[v]['all']:.2f}" for v in cfg.views))
        # written after every character, so a run cut short still leaves its numbers
        results, tables = _summary(cfg, chars[: done + 1], per_arm, gen, t0, yields, method)
        _write(out_dir, results, tables)
    contact_sheet([img for row in sheets for img in row], cols=len(cfg.views) * 2).save(out_dir / "arms.png")
    if style_survival and cfg.style_loras:
        from lorastrap.lab.eval_style import run_style_survival

        style = run_style_survival(gen, chars, char_loras, cfg, work, indices=indices, progress=progress)
        results["style_survival"] = style["results"]
        tables += "\n" + style["table"]
    results["seconds"] = round(time.perf_counter() - t0, 1)
    _write(out_dir, results, tables)
    return {"results": results, "tables": tables}
