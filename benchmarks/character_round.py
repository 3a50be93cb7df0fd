"""The character round, paired: variants trained on the same data from the same style round.

Takes the bootstrap workspaces `lorastrap lab eval --bootstrap [--curator careful]` leaves in
OUT/work/<slug>/bootstrap (each holds a character dataset version and the style rounds), retrains
only the character round per variant and measures each with the fidelity benchmark's arms: the
trigger alone, and trigger + identity tags.

A variant is NAME[:key=value...] with keys `caps` (prune | keep | drop<p> | warm<steps>: identity
tags pruned; kept; kept and dropped with probability p (four caption copies per image); kept for
the first steps, then pruned), `steps` (300), `lr` (1e-3), `init` (style: from the last style
round | fresh), `seed` (1). Variant names must not contain dots.

    python benchmarks/character_round.py --out DIR --workspaces RUN/work/<slug>/bootstrap,... \\
        --variants "prune;keep:caps=keep;drop50:caps=drop0.5;warm100:caps=warm100" [--seeds 8]

Results accumulate in DIR/results.json; docs/fidelity.md, "The character round".
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab_results import Results  # noqa: E402

from lorastrap.dataset.captions import CLASS_TAGS  # noqa: E402
from lorastrap.dataset.versions import latest_version, version_items  # noqa: E402
from lorastrap.lab import lab_model_dir  # noqa: E402
from lorastrap.lab.arms import Arm, FidelityConfig, trigger_prompt, trigger_tags_prompt  # noqa: E402
from lorastrap.lab.eval import measure_arm  # noqa: E402
from lorastrap.lab.loras import LabGenerator  # noqa: E402
from lorastrap.lab.world import HELD_OUT  # noqa: E402
from lorastrap.models.threads import use_small_model_threads  # noqa: E402
from lorastrap.queries import get_character, ready_loras  # noqa: E402
from lorastrap.tags import identity_tags, parse_tags  # noqa: E402
from lorastrap.training.config import TrainConfig  # noqa: E402
from lorastrap.training.loop import TrainItem, train_lora  # noqa: E402
from lorastrap.workspace import load_workspace  # noqa: E402

FORMS = {"trigger": trigger_prompt, "trigger + tags": trigger_tags_prompt}


def character_data(root: Path, slug: str):  # type: ignore[no-untyped-def]
    """(trigger, identity tags, [(image, caption, repeats)], last style round's file)."""
    ws = load_workspace(root)
    with ws.session(write=False) as s:
        c = get_character(s, slug)
        version = latest_version(s, c)
        if version is None or version.kind != "character":
            raise SystemExit(f"{root}: the method has not reached the character round")
        items = [(ws.blobs.path(it.image.blob_path), it.caption, it.repeats) for it in version_items(s, version)]
        style = [r for r in ready_loras(s, c, ("style",))]
        return c.trigger, identity_tags(c), items, ws.abs(style[-1].file_path)


def with_tags(caption: str, trigger: str, identity: list[str]) -> str:
    """A pruned caption with the identity tags put back after the trigger and class tags."""
    tags = parse_tags(caption)
    head = [t for t in tags if t == trigger or t in CLASS_TAGS]
    return ", ".join(head + [t for t in identity if t not in CLASS_TAGS] + [t for t in tags if t not in head])


def train(items, steps: int, lr: float, init: Path | None, out: Path, work: Path, cache: Path, seed: int) -> float:  # type: ignore[no-untyped-def]
    cfg = TrainConfig.from_preset("character", rank=8, alpha=8.0, learning_rate=lr, max_train_steps=steps,
                                  batch_size=4, lr_warmup_steps=10, seed=seed, save_every_steps=0, resolution=64)
    result = train_lora(lab_model_dir(), [TrainItem(p, c, n) for p, c, n in items], cfg, out, init_from=init,
                        work_dir=work, cache_dir=cache, progress=False)
    return result.final_loss


def variant_items(caps: str, items, trigger: str, identity: list[str]):  # type: ignore[no-untyped-def]
    pruned = set(identity) - CLASS_TAGS
    if caps == "keep":
        return [(p, with_tags(c, trigger, identity), n) for p, c, n in items]
    if caps.startswith("drop"):
        rate, rng, out = float(caps[4:]), random.Random(0), []
        for p, c, n in items:
            full = parse_tags(with_tags(c, trigger, identity))
            out += [(p, ", ".join(t for t in full if t not in pruned or rng.random() >= rate), n) for _ in range(4)]
        return out
    return items


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--workspaces", required=True, help="comma-separated bootstrap workspaces")
    ap.add_argument("--variants", default="prune")
    ap.add_argument("--seeds", type=int, default=8)
    args = ap.parse_args()
    use_small_model_threads()
    out, results = args.out, Results(args.out)
    gen = LabGenerator(None, 20, 4.0)
    cfg = FidelityConfig(seeds=args.seeds)
    for root in (Path(p) for p in args.workspaces.split(",")):
        slug = root.parent.name
        character = next(h for h in HELD_OUT if h.slug == slug)
        trigger, identity, items, style_round = character_data(root, slug)
        for spec in (v for v in args.variants.split(";") if v):
            name, *pairs = spec.split(":")
            o = {"caps": "prune", "steps": "300", "lr": "1e-3", "init": "style", "seed": "1",
                 **dict(p.split("=") for p in pairs)}
            key = f"{slug} {name}"
            if key in results:
                continue
            t0, steps, lr, seed = time.time(), int(o["steps"]), float(o["lr"]), int(o["seed"])
            init = style_round if o["init"] == "style" else None
            lora = out / "loras" / f"{slug}-{name}.safetensors"
            work, cache = out / "work" / slug / name, out / "cache"
            if o["caps"].startswith("warm"):
                warm = int(o["caps"][4:])
                mid = out / "loras" / f"{slug}-{name}-warm.safetensors"
                train(variant_items("keep", items, trigger, identity), warm, lr, init, mid, work / "warm", cache, seed)
                loss = train(items, steps - warm, lr, mid, lora, work, cache, seed)
            else:
                loss = train(variant_items(o["caps"], items, trigger, identity), steps, lr, init, lora, work, cache, seed)
            row: dict = {"train_s": round(time.time() - t0, 1), "final_loss": loss}
            for form, prompt in FORMS.items():
                m = measure_arm(gen, Arm(f"{slug}:{name}:{len(row)}", lora, prompt), character, cfg,
                                HELD_OUT.index(character))
                m.pop("_images")
                row[form] = {v: m[v]["all"] for v in cfg.views}
            results.add(key, row)
            print(key, json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
