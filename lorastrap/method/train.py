"""Training a character's LoRA from the registry: dataset version in, registered LoRA out.

Reads the dataset version in one short transaction, trains outside any transaction (minutes to
hours), then — after the file is atomically in place — registers the `loras` row with its lineage
(dataset version, parent LoRA) in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from lorastrap.dataset.captions import CLASS_TAGS, caption_for, caption_policy, prompt_policy
from lorastrap.dataset.kohya import class_token
from lorastrap.dataset.versions import get_version, latest_version, version_items
from lorastrap.kernel.errors import PreconditionFailed, UserError
from lorastrap.queries import get_character, get_lora
from lorastrap.tags import identity_tags
from lorastrap.workspace import Workspace, unit_of_work
from registry.models import BaseModel, Lora

KINDS = ("style", "character")
SAMPLE_VIEWS = 4


@dataclass
class TrainedLora:
    id: int
    name: str
    kind: str
    path: Path
    sha256: str
    short_hash: str
    dataset_version: int
    parent_lora_id: int | None
    round: int | None
    steps: int
    final_loss: float
    sample_grid: Path | None
    log_path: Path


def training_config(ws: Workspace, kind: str, config_file: Path | None = None,
                    overrides: Mapping[str, Any] = {}):  # type: ignore[no-untyped-def]
    """Preset `kind` < workspace [training] (shared keys, then [training.<kind>]) < file < overrides."""
    from lorastrap.training.config import PRESETS, TrainConfig

    section = dict(ws.config.training)
    shared = {k: v for k, v in section.items() if k not in PRESETS}
    cfg = TrainConfig.from_preset(kind).with_overrides(shared).with_overrides(section.get(kind, {}))
    if config_file is not None:
        cfg = cfg.with_overrides(TrainConfig.from_toml(Path(config_file), preset=kind).to_dict())
    return cfg.with_overrides(dict(overrides))


def _unique_path(folder: Path, stem: str, version: int) -> Path:
    """DESIGN's `<slug>-style-r2.safetensors`; a retrain on a newer dataset never overwrites a file
    a registry row points to: it gets `-v<dataset>` (and a counter if even that exists)."""
    for candidate in [stem, f"{stem}-v{version}", *(f"{stem}-v{version}-{i}" for i in range(2, 1000))]:
        path = folder / f"{candidate}.safetensors"
        if not path.exists():
            return path
    raise UserError(f"too many LoRA files named {stem}* in {folder}; remove old ones")


def check_output_name(stem: str) -> None:
    """`output_name` (kohya's name for the file stem) must be a plain file name."""
    if not stem.strip() or stem != stem.strip() or any(c in stem for c in '/\\:*?"<>|') or stem.startswith("."):
        raise UserError(f"output_name {stem!r} is not usable as a file name; use letters, digits, - and _")


@unit_of_work
def train_character_lora(
    ws: Workspace, slug: str, kind: str, dataset_version: int | str | None = None,
    overrides: Mapping[str, Any] = {}, config_file: Path | None = None, resume: bool = False,
    init_from: Path | None = None, *, parent_lora_id: int | None = None, round_no: int | None = None,
    progress: bool = True, on_step: Callable[[int, float], None] | None = None, base_model: str | None = None,
) -> TrainedLora:
    """Train the `kind` LoRA of `slug` on a dataset version (default: the latest of that kind,
    else the latest) and register it. `init_from` starts from an existing LoRA's weights;
    `parent_lora_id` records lineage (the LoRA whose images went into this dataset). `base_model`
    trains on another base model than the character's and makes it the character's from then on
    (its next rounds, candidates and clash reports use the same model)."""
    from game_export.contact_sheet import write_contact_sheet
    from lorastrap.characters import checked_base_model
    from lorastrap.models.base import resolve_base_model
    from lorastrap.training.loop import TrainItem, train_lora

    if kind not in KINDS:
        raise UserError(f"unknown LoRA kind {kind!r}; choose style or character")
    new_base = checked_base_model(ws, base_model) if base_model else None
    with ws.session() as s:
        c = get_character(s, slug)
        version = (get_version(s, c, dataset_version) if dataset_version is not None
                   else latest_version(s, c, kind) or latest_version(s, c))
        if version is None:
            raise PreconditionFailed(f"{c.slug} has no dataset version yet; add images with "
                                     f"`lorastrap character add` or `lorastrap curate {c.slug}`")
        identity = identity_tags(c)
        folder = f"{{}}_{c.trigger} {class_token(identity)}"
        items = [TrainItem(ws.blobs.path(it.image.blob_path), it.caption, it.repeats, it.image.sha256,
                           subset=folder.format(it.repeats)) for it in version_items(s, version)]
        parent = get_lora(s, parent_lora_id) if parent_lora_id is not None else None
        parent_info = (parent.id, parent.sha256, ws.abs(parent.file_path)) if parent else None
        facts = dict(slug=c.slug, trigger=c.trigger, version_id=version.id, version_no=version.number,
                     manifest=version.manifest_hash, base=new_base or c.base_model or ws.config.workspace.base_model,
                     round=round_no if round_no is not None else (c.round if kind == "style" else None))
    ref = resolve_base_model(facts["base"], ws.root)
    settings = ws.config.bootstrap
    dropout = {}
    if kind == "character" and caption_policy(settings, kind) == "style":  # identity tags kept: drop them
        dropout = {"tag_dropout": settings.identity_dropout, "caption_variants": 16,
                   "tag_dropout_tags": [t for t in identity if t not in CLASS_TAGS]}
    cfg = training_config(ws, kind, config_file, {"trigger": facts["trigger"], **dropout, **overrides})
    stem = cfg.output_name or (f"{facts['slug']}-{kind}" + (f"-r{facts['round']}" if kind == "style" and facts["round"] else ""))
    check_output_name(stem)
    out_path = _unique_path(ws.loras_dir(facts["slug"]), stem, facts["version_no"])
    cfg = cfg.with_overrides({"output_name": out_path.stem})
    views = list(ws.config.bootstrap.views)[:SAMPLE_VIEWS]
    prompts = [caption_for(prompt_policy(settings, kind), facts["trigger"], identity, [v]) for v in views]
    metadata = {"lorastrap.character": facts["slug"], "lorastrap.kind": kind,
                "lorastrap.dataset_version": str(facts["version_no"]),
                "lorastrap.dataset_manifest_hash": facts["manifest"],
                "lorastrap.parent_lora_sha256": parent_info[1] if parent_info else "",
                "lorastrap.round": "" if facts["round"] is None else str(facts["round"])}
    work_dir = ws.runs_dir / f"{stem}-v{facts['version_no']}"
    result = train_lora(ref, items, cfg, out_path, metadata=metadata,
                        init_from=Path(init_from) if init_from else None, resume=resume,
                        work_dir=work_dir, cache_dir=ws.cache_dir, sample_prompts=prompts,
                        progress=progress, on_step=on_step, search_root=ws.root, sample_sheet=write_contact_sheet)
    if not result.main_process:  # another rank of a multi-GPU run: the main process registers
        return TrainedLora(-1, out_path.stem, kind, out_path, "", "", facts["version_no"], None,
                           facts["round"], result.steps, result.final_loss, None, result.log_path)

    with ws.session() as s:
        if s.scalars(select(BaseModel).where(BaseModel.sha256 == ref.sha256)).first() is None:
            s.add(BaseModel(spec=ref.path_or_id, kind=ref.kind, arch=ref.arch, sha256=ref.sha256))
        character = get_character(s, facts["slug"])
        if new_base:
            character.base_model = new_base
        row = Lora(
            character_id=character.id, name=out_path.stem, kind=kind,
            round=facts["round"], file_path=ws.rel(out_path), sha256=result.sha256,
            short_hash=result.model_hash[:12], arch=result.arch, base_model=ref.path_or_id,
            base_model_sha256=ref.sha256, dataset_version_id=facts["version_id"],
            parent_lora_id=parent_info[0] if parent_info else None,
            hyperparams=result.effective_config, status="ready",
            metrics={"final_loss": result.final_loss, "steps": result.steps,
                     "sample_grid": ws.rel(result.sample_grid) if result.sample_grid else None,
                     "log": ws.rel(result.log_path), "cache": result.cache_stats},
        )
        s.add(row)
        s.flush()
        lora_id = row.id
    return TrainedLora(lora_id, out_path.stem, kind, out_path, result.sha256, result.model_hash[:12],
                       facts["version_no"], parent_info[0] if parent_info else None, facts["round"],
                       result.steps, result.final_loss, result.sample_grid, result.log_path)
