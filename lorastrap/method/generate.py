"""Generating candidate images of a character with its LoRA, registered with provenance.

One pipeline serves the whole batch (views × seeds). Files are written atomically; the image rows
(origin `generated`, provenance JSON) are registered in one transaction afterwards, and if that
fails the files written by this call are removed again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lorastrap.dataset.captions import caption_for
from lorastrap.dataset.sources import carried_seed_tags, seed_images
from lorastrap.image_store import store_image
from lorastrap.kernel.errors import UserError
from lorastrap.kernel.journal import FileJournal
from lorastrap.method.view_plan import PlannedImage
from lorastrap.queries import get_character, get_lora, newest_lora
from lorastrap.tags import identity_tags, join_tags, parse_tags, tags_of
from lorastrap.workspace import Workspace, unit_of_work

if TYPE_CHECKING:
    from lorastrap.models.start_image import StartImage

DEFAULT_STEPS = 20
DEFAULT_CFG = 6.0


def _start_images(seeds: Sequence[tuple[Path, str]], strength: float | None) -> list[StartImage]:
    """The seed images as starts (decoded upright, 8-bit); none without a strength."""
    if not strength:
        return []
    from lorastrap.kernel.imageio import decode_image
    from lorastrap.models.start_image import StartImage

    return [StartImage(decode_image(path).image, strength, sha) for path, sha in seeds]


def _file_stem(view: str, seed: int) -> str:
    return f"{re.sub(r'[^a-z0-9]+', '-', view.lower()).strip('-') or 'view'}-{seed}"


@unit_of_work
def generate_candidates(
    ws: Workspace, slug: str, views: Sequence[str] | None = None, per_view: int = 4, seed: int = 0,
    lora_id: int | None = None, out_dir: Path | None = None, extra_prompt: str = "",
    negative: str | None = None, *, plan: Sequence[PlannedImage] | None = None,
    round_no: int | None = None, steps: int = DEFAULT_STEPS, cfg: float = DEFAULT_CFG,
    weight: float = 1.0, sampler: str = "ddim", progress: bool = True, prompt_policy: str | None = None,
    start_strength: float | None = None,
) -> list[Path]:
    """Generate `per_view` images per view (or the given `plan`) with the character's LoRA
    (`lora_id`, default its newest ready one; none yet → the base model) into `out_dir`
    (default candidates/r<round>/), and register each as a `generated` image.

    `prompt_policy` "style" spells the identity tags out, "character" leaves them to the trigger
    (default: how the workspace prompts a LoRA of that kind, `dataset.captions.prompt_policy`).
    `start_strength`: start each image from one of the character's seed images (its colour
    layout, models/start_image.py) noised to this strength, instead of from pure noise."""
    from lorastrap.models.base import resolve_base_model
    from lorastrap.models.generation import Generator, GenRequest, save_generated

    with ws.session() as s:
        c = get_character(s, slug)
        lora = get_lora(s, lora_id) if lora_id is not None else newest_lora(s, c)
        carried = carried_seed_tags(s, c, [*(views or ()), *ws.config.bootstrap.views, *(p.view for p in plan or ())])
        info = dict(slug=c.slug, id=c.id, trigger=c.trigger, identity=identity_tags(c),
                    negative_tags=tags_of(c, "negative"), base=c.base_model or ws.config.workspace.base_model,
                    round=c.round if round_no is None else round_no,
                    seeds=[(ws.blobs.path(i.blob_path), i.sha256) for i in seed_images(s, c)] if start_strength else [],
                    lora=(lora.id, lora.name, lora.kind, ws.abs(lora.file_path)) if lora else None)
    if start_strength and not info["seeds"]:
        raise UserError(f"{info['slug']} has no seed images to start from; generate without a start strength")
    if plan is None:
        chosen = list(views) if views else list(ws.config.bootstrap.views)
        if per_view < 1 or not chosen:
            raise UserError("nothing to generate: give at least one view and --per-view ≥ 1")
        plan = [PlannedImage(v, seed + i) for v in chosen for i in range(per_view)]
    from lorastrap.dataset.captions import prompt_policy as policy_of

    policy = prompt_policy or policy_of(ws.config.bootstrap, info["lora"][2] if info["lora"] else "style")
    if policy not in ("style", "character"):
        raise UserError(f"unknown prompt policy {policy!r}; choose style or character")
    neg = negative if negative is not None else join_tags(
        parse_tags([ws.config.bootstrap.negative_prompt, *info["negative_tags"]]))
    extra = parse_tags([*carried, *(parse_tags(extra_prompt) if extra_prompt else [])])
    starts = _start_images(info["seeds"], start_strength)
    requests = [GenRequest(prompt=caption_for(policy, info["trigger"], info["identity"], [p.view, *extra]),
                           negative_prompt=neg, seed=p.seed, steps=steps, cfg=cfg, view=p.view,
                           extra={"character": info["slug"], "round": info["round"], "variable_tags": extra,
                                  "lora_id": info["lora"][0] if info["lora"] else None},
                           start=starts[p.seed % len(starts)] if starts else None)
                for p in plan]
    out_dir = Path(out_dir) if out_dir else ws.candidates_dir(info["slug"], info["round"])

    with Generator(resolve_base_model(info["base"], ws.root), scheduler=sampler) as gen:
        if info["lora"]:
            gen.add_lora(info["lora"][3], info["lora"][1])
            gen.set_weights({info["lora"][1]: weight})
        images = gen.generate(requests, progress=progress)

    paths: list[Path] = []
    with FileJournal() as journal, ws.session() as s:
        for planned, img in zip(plan, images):
            path = journal.will_create(out_dir / f"{_file_stem(planned.view, planned.seed)}.png")
            save_generated(img, path)
            store_image(s, ws.blobs, path.read_bytes(), origin="generated", character_id=info["id"],
                        journal=journal, file_name=path.name, provenance=img.provenance)
            paths.append(path)
    return paths
