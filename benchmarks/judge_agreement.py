"""How well the curation assist ranks real round candidates, against the lab's reader.

Reads every candidate of the bootstrap workspaces a `lorastrap lab eval --bootstrap` run leaves in
RUN/work/<slug>/bootstrap/characters/<slug>/candidates/r*/; the reader says which are right
(identity and the asked view). Scores each with the assist's judge (`lorastrap.models.judge`: the
round's LoRA at 0.6, or the base model alone with `--base`) and with the similarity ranking (the
model-free embedder, top-3 cosine to the four seed images), and prints each score's AUC (the chance
that a right candidate outranks a wrong one) and the judge's pass precision/recall.

    python benchmarks/judge_agreement.py RUN/work [RUN2/work ...] [--timesteps 850,900,950,990] [--noises 2] [--base]

docs/fidelity.md, "The assist's judge".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lorastrap.kernel.pngmeta import read_provenance  # noqa: E402
from lorastrap.lab.loras import trigger_for  # noqa: E402
from lorastrap.lab.reader import read  # noqa: E402
from lorastrap.lab.world import HELD_OUT, VIEWS  # noqa: E402
from lorastrap.models.embedding import ColorStructureEmbedder, cosine_similarity  # noqa: E402
from lorastrap.models.judge import DEFAULT_TIMESTEPS, DiffusionJudge, build_questions  # noqa: E402
from lorastrap.models.threads import use_small_model_threads  # noqa: E402
from lorastrap.workspace import CONTACT_SHEET_NAME  # noqa: E402


def auc(scores: list[float], labels: list[bool]) -> float:
    s, lab = np.asarray(scores), np.asarray(labels, bool)
    pos, neg = s[lab], s[~lab]
    if not len(pos) or not len(neg):
        return float("nan")
    return float((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())


def candidates(roots: list[Path]) -> list[dict]:
    slugs = {c.slug: c for c in HELD_OUT}
    items = []
    for root in roots:
        for chardir in sorted(root.glob("*/bootstrap/characters/*")):
            c = slugs[chardir.name]
            seeds = sorted((chardir.parents[2] / "seed").glob("*.png"))
            for path in sorted(chardir.glob("candidates/r*/*.png")):
                if path.name == CONTACT_SHEET_NAME:
                    continue
                prov = read_provenance(path) or {}
                view = prov.get("view") or "from front"
                got = read(Image.open(path).convert("RGB")).attrs
                right = all(got[a] == v for a, v in {**c.attrs(), "view": view}.items())
                lora = (prov.get("lora") or [{}])[0].get("path")
                items.append({"c": c, "path": path, "view": view, "right": right, "lora": lora, "seeds": seeds})
    return items


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("roots", nargs="+", type=Path)
    ap.add_argument("--timesteps", default=",".join(str(t) for t in DEFAULT_TIMESTEPS))
    ap.add_argument("--noises", type=int, default=2)
    ap.add_argument("--base", action="store_true", help="judge with the base model alone")
    ap.add_argument("--pass-margin", type=float, default=0.002)
    args = ap.parse_args()
    use_small_model_threads()
    from lorastrap.lab import lab_model_dir
    from lorastrap.models.generation import Generator

    items = candidates(args.roots)
    right = [it["right"] for it in items]
    print(f"{len(items)} candidates, {sum(right)} right by the reader")
    emb = ColorStructureEmbedder()
    similarity = []
    for it in items:
        ref = emb.embed([Image.open(p).convert("RGB") for p in it["seeds"]])
        sims = cosine_similarity(emb.embed([Image.open(it["path"]).convert("RGB")]), ref)[0]
        similarity.append(float(np.sort(sims)[-3:].mean()))
    print(f"similarity (model-free embedder): AUC {auc(similarity, right):.3f}")
    gen = Generator(lab_model_dir())
    judge = DiffusionJudge(gen.pipe, [int(t) for t in args.timesteps.split(",")], args.noises)
    margins = []
    for it in items:
        c = it["c"]
        tags = ["1girl", "solo", *c.tags(), it["view"], "flat color"]
        if args.base or not it["lora"]:
            gen.set_weights({})
        else:
            name = f"r{abs(hash(it['lora']))}"
            if name not in gen.loras:
                gen.add_lora(Path(it["lora"]), name)
            gen.set_weights({name: 0.6})
            tags = [trigger_for(c), *tags]
        verdict = judge.judge([Image.open(it["path"]).convert("RGB")],
                              [build_questions(tags, c.tags(), it["view"], list(VIEWS))])[0]
        margins.append(verdict.score)
    passed = np.array(margins) > args.pass_margin
    r = np.array(right)
    print(f"judge ({'base model' if args.base else 'round LoRA at 0.6'}, t {args.timesteps}, {args.noises} noises): "
          f"AUC {auc(margins, right):.3f}; passing: {passed.mean():.2f} of all, precision "
          f"{r[passed].mean() if passed.any() else float('nan'):.2f}, recall {passed[r].mean() if r.any() else float('nan'):.2f}")


if __name__ == "__main__":
    main()
