"""Round-1 yield by candidate-generation choice, on held-out lab characters.

Per character, a round-1 LoRA is trained on its four front seed drawings (120 steps, the lab's
recipe) with one caption policy — `style` (trigger + identity tags + seed tags, what the method's
round 1 trains on), `char` (identity tags pruned) or `drop` (identity tags dropped with p 0.5, four
caption variants per image) — then candidates for the five views are generated (product settings:
20 DDIM steps, the workspace's negative prompt) and the lab's reader counts the right ones
(identity and view). A configuration is POLICY/FORM/WEIGHT/CFG[/START] with FORM `tags` (trigger +
tags + view) or `view` (trigger + view only) and START `noise` (default) or `seedS`: each candidate
starts from one of the four seeds' colour layout noised to strength S (the product's
`candidate_start = "seed"`, models/start_image.py; `seedSbN`: blurred with radius 1/N of the side
instead of 1/16).

    python benchmarks/candidate_yield.py --out DIR --characters 1,2,9,3,4 \\
        --configs "style/tags/0.6/6;style/tags/0.6/6/seed0.9;char/view/1.0/6" [--per-view 6]

Results accumulate in DIR/results.json (a rerun skips what is there); docs/fidelity.md, "Yield".
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab_results import Results  # noqa: E402

from lorastrap.config import BootstrapSettings  # noqa: E402
from lorastrap.lab import seed_images  # noqa: E402
from lorastrap.lab.loras import LabGenerator, LoraRecipe, train_lab_lora, trigger_for  # noqa: E402
from lorastrap.lab.scoring import score  # noqa: E402
from lorastrap.lab.world import HELD_OUT, VIEWS, Character  # noqa: E402
from lorastrap.models.generation import GenContext, GenRequest, run_requests  # noqa: E402
from lorastrap.models.start_image import StartImage  # noqa: E402
from lorastrap.models.threads import use_small_model_threads  # noqa: E402

POLICIES = ("style", "char", "drop")


def round_one_lora(c: Character, index: int, policy: str, out: Path) -> Path:
    path = out / "loras" / f"{c.slug}-{policy}.safetensors"
    if path.exists():
        return path
    trig, seeds = trigger_for(c), seed_images(c, 4, "flat color", seed=index) * 2  # seed repeats 2
    tags = ["1girl", "solo", *c.tags()]
    if policy == "drop":
        rng = random.Random(0)
        images, caps = [], []
        for im in seeds:
            for _ in range(4):
                kept = [t for t in c.tags() if rng.random() >= 0.5]
                images.append(im)
                caps.append(", ".join([trig, "1girl", "solo", *kept, "from front", "flat color"]))
    else:
        images = seeds
        caps = [", ".join([trig, *(tags if policy == "style" else tags[:2]), "from front", "flat color"])] * len(seeds)
    preset = "character" if policy == "char" else "style"
    return train_lab_lora(images, caps, path, out / "work" / f"{c.slug}-{policy}", LoraRecipe(steps=120), preset=preset)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--characters", default="1,2,9,3,4", help="held-out character indices")
    ap.add_argument("--configs", default="style/tags/0.6/6;style/tags/1.0/6")
    ap.add_argument("--per-view", type=int, default=6)
    args = ap.parse_args()
    use_small_model_threads()
    out, results = args.out, Results(args.out)
    negative = BootstrapSettings().negative_prompt
    gen = LabGenerator(None, 20, 6.0)
    for index in (int(i) for i in args.characters.split(",")):
        c = HELD_OUT[index]
        trig, tags = trigger_for(c), ", ".join(["1girl", "solo", *c.tags()])
        for spec in (x for x in args.configs.split(";") if x):
            policy, form, weight, cfg, *rest = spec.split("/")
            start = rest[0] if rest else "noise"
            if policy not in POLICIES or form not in ("tags", "view") or not (start == "noise" or start.startswith("seed")):
                raise SystemExit(f"bad config {spec!r}: POLICY/FORM/WEIGHT/CFG[/START], POLICY in {POLICIES}, "
                                 "FORM tags|view, START noise|seedS")
            key = f"{c.slug} {spec}"
            if key in results:
                continue
            name = f"{c.slug}-{policy}"
            gen.add_lora(round_one_lora(c, index, policy, out), name)
            gen.gen.set_weights({name: float(weight)})
            prompts, seeds, truths = [], [], []
            for v in VIEWS:
                for s in range(args.per_view):
                    prompts.append(f"{trig}, {tags}, {v}, flat color" if form == "tags" else f"{trig}, 1girl, solo, {v}, flat color")
                    seeds.append(1000 * index + 7 * s + 1)
                    truths.append({**c.attrs(), "view": v})
            t0 = time.time()
            drawn = seed_images(c, 4, "flat color", seed=index)
            strength, _, blur = start[4:].partition("b")  # seed0.9 or seed0.9b32 (radius 1/32 of the side)
            starts = [StartImage(im, float(strength), blur=1 / float(blur or 16)) for im in drawn] if start != "noise" else []
            requests = [GenRequest(p, negative, seed=sd, steps=20, cfg=float(cfg),
                                   start=starts[i % args.per_view % len(starts)] if starts else None)
                        for i, (p, sd) in enumerate(zip(prompts, seeds))]
            images = [g.image for g in run_requests(gen.gen.pipe, requests, GenContext("", "", "DDIM"), max_batch=16)]
            per_view = {v: score([im for im, t in zip(images, truths) if t["view"] == v],
                                 [t for t in truths if t["view"] == v])["all"] for v in VIEWS}
            results.add(key, {**per_view, "mean": sum(per_view.values()) / len(VIEWS)})
            print(key, f"{results[key]['mean']:.2f}", " ".join(f"{per_view[v]:.2f}" for v in VIEWS),
                  f"{time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
