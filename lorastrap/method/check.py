"""Which of a character's LoRAs to use: after the character round, the assist's judge looks at a
few images per view from the last style round and from the character LoRA (each prompted as the
workspace prompts it) and recommends the one whose images pass its check more often.

The judge is not ground truth. It is the check the assist applies to candidates, run with round
1's LoRA — trained on the seed images alone, so it favours neither final LoRA. In the lab it
ordered the two final LoRAs of a character like the lab's reader did, though its pass rates are
far from the reader's (docs/fidelity.md). `status` and `lineage` show the result; nothing is
deleted or hidden.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lorastrap.workspace import Workspace

CHECK_ROUND = 9000  # seeds of the check images: round_seed(slug, CHECK_ROUND, i), apart from candidates'


@dataclass
class LoraCheck:
    lora_id: int
    name: str
    kind: str
    round: int | None
    prompt: str  # the prompt of the first view, as an example of how this LoRA is prompted
    passed: dict[str, float]  # per view: share of its images the judge passed
    mean: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _candidates(ws: Workspace, slug: str) -> list[tuple[int, str, str, int | None, Path]]:
    """The last style round and the character LoRA (id, name, kind, round, file)."""
    from lorastrap.queries import get_character, ready_loras

    with ws.session(write=False) as s:
        rows = ready_loras(s, get_character(s, slug))
        picked = [r for r in rows if r.kind == "style"][-1:] + [r for r in rows if r.kind == "character"][-1:]
        return [(r.id, r.name, r.kind, r.round, ws.abs(r.file_path)) for r in picked]


def check_loras(ws: Workspace, slug: str, per_view: int | None = None) -> list[LoraCheck]:
    """Judge `per_view` images per configured view of each LoRA; store the result in the LoRA's
    metrics (`check`) and return it. Same seeds for every LoRA."""
    from lorastrap.dataset.captions import caption_for, prompt_policy
    from lorastrap.method.judge import JUDGE_WEIGHT, asked_of, round_lora
    from lorastrap.method.view_plan import round_seed
    from lorastrap.models.base import resolve_base_model
    from lorastrap.models.generation import Generator, GenRequest
    from lorastrap.models.judge import DiffusionJudge
    from lorastrap.queries import get_lora

    settings = ws.config.bootstrap
    n = settings.check_images_per_view if per_view is None else per_view
    asked = asked_of(ws, slug)
    views, trigger, identity, carried = asked.views, asked.trigger, asked.identity, asked.carried
    loras = _candidates(ws, slug)
    referee = round_lora(ws, slug, 1)
    if n < 1 or not loras:
        return []
    results: list[LoraCheck] = []
    with Generator(resolve_base_model(asked.base_model, ws.root)) as gen:
        for lora_id, name, kind, round_no, path in loras:
            gen.add_lora(path, f"check{lora_id}")
        if referee is not None:
            gen.add_lora(referee, "referee")
        judge = DiffusionJudge(gen.pipe)
        for lora_id, name, kind, round_no, path in loras:
            policy = prompt_policy(settings, kind)
            gen.set_weights({f"check{lora_id}": 1.0})
            requests = [GenRequest(caption_for(policy, trigger, identity, [v, *carried]), settings.negative_prompt,
                                   round_seed(slug, CHECK_ROUND, i), cfg=settings.candidate_cfg, view=v)
                        for v in views for i in range(n)]
            images = [g.image for g in gen.generate(requests)]
            # round 1's LoRA (seed images only) judges, at the weight candidates are judged with
            gen.set_weights({"referee": JUDGE_WEIGHT} if referee is not None else {})
            verdicts = judge.judge(images, [asked.questions(r.view or "") for r in requests])
            passed = {v: sum(x.passed for r, x in zip(requests, verdicts) if r.view == v) / n for v in views}
            results.append(LoraCheck(lora_id, name, kind, round_no, requests[0].prompt, passed,
                                     sum(passed.values()) / len(passed)))
    with ws.session() as s:
        for r in results:
            row = get_lora(s, r.lora_id)
            row.metrics = {**(row.metrics or {}), "check": {"passed": r.passed, "mean": r.mean, "prompt": r.prompt,
                                                             "images_per_view": n}}
    return results


def recommendation(loras: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The checked LoRA whose images passed most often (the character LoRA on a tie), from
    registry rows as dicts with `metrics`."""
    checked = [l for l in loras if (l.get("metrics") or {}).get("check")]
    if not checked:
        return None
    best = max(checked, key=lambda l: (l["metrics"]["check"]["mean"], l["kind"] == "character", l["id"]))
    others = [l for l in checked if l is not best]
    return {"id": best["id"], "name": best["name"], "kind": best["kind"], "round": best.get("round"),
            "prompt": best["metrics"]["check"]["prompt"], "passed": best["metrics"]["check"]["mean"],
            "others": {o["name"]: o["metrics"]["check"]["mean"] for o in others}}
