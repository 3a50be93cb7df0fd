"""The curation assist's judge on a workspace: each candidate of a round is asked, with the
workspace's base model and a referee LoRA (style round 1's: `referee_lora`), whether its prompt
explains it better than the same prompt with one identity attribute or the view changed
(lorastrap.models.judge).

Verdicts are kept beside the round's images (`candidates/rN/assist.json`, by file name and content
hash), so ranking, adaptive rounds and `status` judge each candidate once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lorastrap.models.judge import DEFAULT_TIMESTEPS, DiffusionJudge, Verdict, build_questions
from lorastrap.workspace import Workspace

# The referee LoRA judges at this weight, whatever weight drew the candidates: measured on the
# lab's candidates, AUC 0.90 at 0.6 against 0.84 at 1.0 (docs/fidelity.md).
JUDGE_WEIGHT = 0.6


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


@dataclass
class Asked:
    """What the judge asks of a character's images: its trigger and identity, the seed tags carried
    into every prompt, its base model and the workspace's views."""

    trigger: str
    identity: list[str]
    carried: list[str]
    base_model: str
    views: list[str]

    def questions(self, view: str):  # type: ignore[no-untyped-def]
        """The judge's questions for an image drawn for `view` (prompted the style rounds' way)."""
        from lorastrap.dataset.captions import CLASS_TAGS, caption_for
        from lorastrap.tags import parse_tags

        tags = parse_tags(caption_for("style", self.trigger, self.identity, [view, *self.carried]))
        return build_questions(tags, [t for t in self.identity if t not in CLASS_TAGS], view, self.views)


def asked_of(ws: Workspace, slug: str) -> Asked:
    from lorastrap.dataset.sources import carried_seed_tags
    from lorastrap.queries import get_character
    from lorastrap.tags import identity_tags

    views = list(ws.config.bootstrap.views)
    with ws.session(write=False) as s:
        c = get_character(s, slug)
        return Asked(c.trigger, identity_tags(c), carried_seed_tags(s, c, views),
                     c.base_model or ws.config.workspace.base_model, views)


def judge_round(ws: Workspace, slug: str, round_no: int, paths: Sequence[Path],
                lora_path: Path | None = None) -> dict[str, Verdict]:
    """Verdicts for `paths` (candidates of round `round_no`), from the cache where the file is
    unchanged; new ones are computed with the base model + `lora_path` at JUDGE_WEIGHT."""
    from PIL import Image

    from lorastrap.kernel.pngmeta import png_view
    from lorastrap.method.yields import read_verdicts, write_verdicts
    from lorastrap.models.base import resolve_base_model
    from lorastrap.models.generation import Generator

    folder = ws.candidates_dir(slug, round_no)
    cache = read_verdicts(folder)
    out: dict[str, Verdict] = {}
    todo: list[tuple[Path, str]] = []
    judge_name = Path(lora_path).name if lora_path else ""
    for p in paths:
        digest = _digest(p)
        entry = cache.get(p.name) or {}
        if entry.get("sha") == digest and entry.get("judge") == judge_name and "margins" in entry:
            out[p.name] = Verdict(dict(entry["margins"]))
        else:
            todo.append((p, digest))
    if todo:
        asked = asked_of(ws, slug)
        questions = [asked.questions(png_view(p) or "front") for p, _ in todo]
        images = []
        for p, _ in todo:
            with Image.open(p) as im:
                images.append(im.convert("RGB"))
        with Generator(resolve_base_model(asked.base_model, ws.root)) as gen:
            if lora_path is not None:
                gen.add_lora(Path(lora_path), "referee")
                gen.set_weights({"referee": JUDGE_WEIGHT})
            verdicts = DiffusionJudge(gen.pipe, DEFAULT_TIMESTEPS).judge(images, questions)
        for (p, digest), v in zip(todo, verdicts):
            out[p.name] = v
            cache[p.name] = {"sha": digest, "judge": judge_name, "passed": v.passed, "score": round(v.score, 5),
                             "margins": {k: round(m, 5) for k, m in v.margins.items()}, "failed": v.failed}
        write_verdicts(folder, cache)
    return out


def round_lora(ws: Workspace, slug: str, round_no: int) -> Path | None:
    """The style LoRA that generated round `round_no`'s candidates (its newest file)."""
    from lorastrap.queries import get_character, ready_loras

    with ws.session(write=False) as s:
        rows = [r for r in ready_loras(s, get_character(s, slug), ("style",)) if r.round == round_no]
        return ws.abs(rows[-1].file_path) if rows else None


def referee_lora(ws: Workspace, slug: str, round_no: int) -> Path | None:
    """The LoRA that judges round `round_no`'s candidates: style round 1's, trained on the seed
    images alone — the images the person vouched for — not the round's own LoRA, which learnt
    whatever earlier rounds kept. Measured on the lab's round-2 candidates (docs/fidelity.md): where
    round 1 kept swapped colours, the assist picked 8 of 18 right with round 1's LoRA as referee
    against 4 of 18 with round 2's; where every kept image was right, 10 of 18 both ways."""
    return round_lora(ws, slug, 1) or round_lora(ws, slug, round_no)


def assist_check(ws: Workspace, slug: str, round_no: int, lora_path: Path | None):  # type: ignore[no-untyped-def]
    """The adaptive rounds' check: a candidate passes when the judge finds every asked attribute."""

    def check(paths: Sequence[Path]) -> list[bool]:
        verdicts = judge_round(ws, slug, round_no, paths, lora_path)
        return [verdicts[p.name].passed for p in paths]

    return check
