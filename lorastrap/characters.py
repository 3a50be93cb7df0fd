"""Characters: `character add|list|show|rm` and `tags show|add|remove|set` as library functions."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lorastrap.dataset.captions import caption_for
from lorastrap.dataset.kohya import export_kohya
from lorastrap.dataset.sources import source_items
from lorastrap.dataset.versions import ItemSpec, create_version, latest_version, list_versions
from lorastrap.image_store import store_image
from lorastrap.images import CROP_MODES, CROP_VIEW_TAGS, load_image, seed_crops
from lorastrap.kernel.atomic import atomic_write_bytes
from lorastrap.kernel.errors import Conflict, UserError
from lorastrap.kernel.journal import FileJournal
from lorastrap.kernel.pngmeta import png_bytes
from lorastrap.naming import make_trigger, slugify, validate_display_name, validate_trigger
from lorastrap.queries import character_loras, get_character
from lorastrap.tags import (
    ROLES,
    add_tags,
    check_trigger_not_a_tag,
    identity_tags,
    parse_tags,
    remove_tags,
    set_tags,
    tags_of,
)
from lorastrap.workspace import Workspace
from registry.models import Character, DatasetVersion, Image, Lora


@dataclass
class AddResult:
    slug: str
    trigger: str
    seed_images: list[str]
    dataset_version: int
    dataset_items: int
    dataset_dir: Path
    next_command: str
    crops: list[str] = field(default_factory=list)
    base_model: str = ""
    notes: list[str] = field(default_factory=list)  # what decoding the seed images changed


def checked_base_model(ws: Workspace, spec: str) -> str:
    """Resolve a `--base-model` value now (a one-line error when it does not exist or is no SD
    model) and return it as the registry stores it: paths relative to the workspace when inside it."""
    from lorastrap.models.base import resolve_base_model

    ref = resolve_base_model(spec, ws.root)
    return ws.rel(Path(ref.path_or_id)) if Path(ref.path_or_id).is_absolute() else ref.path_or_id


def add_character(
    ws: Workspace, name: str, images: Sequence[Path], tags: str | Sequence[str], *,
    trigger: str | None = None, crop: str | None = None, seed_tags: str | Sequence[str] = (),
    base_model: str | None = None,
) -> AddResult:
    """Register a character from seed image(s): 1 image → 4 crops; 4+ images → used as they are.

    `tags` say who the character is (pruned from the character round's captions); `seed_tags` say
    what the seed images show that is not the character — their view and art style, e.g.
    "from front, flat color". They stay in every caption, so the trigger does not absorb the seed's
    view, and candidates are prompted with the seed's style. `base_model` (default: the workspace's)
    is the model this character's LoRAs are trained on; SD1.5 and SDXL characters can share a workspace.
    """
    slug = slugify(name)
    name = validate_display_name(name)
    tag_list = parse_tags(tags)
    if not tag_list:
        raise UserError("no tags given; pass --tags \"1girl, solo, fox ears, ...\" (the identity tags)")
    shown = parse_tags(seed_tags)
    if both := [t for t in shown if t in tag_list]:
        raise UserError(f"{', '.join(both)} cannot be both an identity tag and a seed tag; "
                        "--tags is who the character is, --seed-tags what the seed images show")
    if not images:
        raise UserError("no seed image given; pass --image seed.png (one image, or four or more)")
    crop = crop or ("zoom" if len(images) == 1 else "none")
    if crop not in CROP_MODES:
        raise UserError(f"unknown --crop {crop!r}; use one of {', '.join(CROP_MODES)}")
    if crop != "none" and len(images) != 1:
        raise UserError(f"--crop {crop} splits ONE image; with {len(images)} images use --crop none")
    if crop == "none" and len(images) < 4:
        raise UserError(f"{len(images)} image(s) cannot seed a character; give 4 or more, or one image with --crop zoom|quad")
    base = checked_base_model(ws, base_model) if base_model else ws.config.workspace.base_model
    limits = ws.config.images
    loaded = [load_image(p, min_side=limits.min_side, max_pixels=limits.max_pixels) for p in images]
    if len({l.data for l in loaded}) != len(loaded):
        raise UserError("the same image was given twice; give distinct seed images")

    with FileJournal() as journal, ws.session() as s:
        if s.scalars(select(Character.id).where(Character.slug == slug)).first():
            raise Conflict(f"a character {slug!r} already exists; choose another name or `lorastrap character rm {slug}`")
        if ws.character_dir(slug).exists():
            raise Conflict(f"the folder {ws.character_dir(slug)} already exists; remove it or choose another name")
        taken = set(s.scalars(select(Character.trigger)))
        if trigger:
            trigger = validate_trigger(trigger)
            if trigger in taken:
                raise Conflict(f"trigger {trigger!r} is used by another character; choose another --trigger")
            check_trigger_not_a_tag(trigger, [*tag_list, *shown])
        else:
            trigger = make_trigger(slug, taken | {t.replace(" ", "_") for t in [*tag_list, *shown]})
        character = Character(slug=slug, display_name=name, trigger=trigger,
                              base_model=base, stage="seeded", round=0)
        s.add(character)
        s.flush()
        set_tags(s, character, tag_list, role="identity")

        journal.mkdir(ws.character_dir(slug))
        for sub in (ws.seed_dir(slug), ws.curated_dir(slug), ws.candidates_dir(slug), ws.loras_dir(slug)):
            sub.mkdir(parents=True, exist_ok=True)
        items: list[tuple[Image, list[str]]] = []
        seed_names: list[str] = []
        crop_names: list[str] = []
        for l in loaded:
            name_png = f"{l.path.stem}.png"
            if name_png in seed_names:  # a/img.png and b/img.png must not overwrite each other
                name_png = f"{l.path.stem}-{len(seed_names) + 1}.png"
            atomic_write_bytes(ws.seed_dir(slug) / name_png, l.data)
            seed_names.append(name_png)
            seed_row = store_image(s, ws.blobs, l.data, origin="seed", character_id=character.id,
                                   journal=journal, file_name=name_png)
            if crop == "none":
                items.append((seed_row, shown))
                continue
            for crop_name, piece in seed_crops(l.image, crop):
                data = png_bytes(piece)
                file_name = f"{l.path.stem}-{crop_name}.png"
                atomic_write_bytes(ws.seed_dir(slug) / "crops" / file_name, data)
                crop_names.append(file_name)
                view = [*(CROP_VIEW_TAGS.get(crop_name, []) if crop == "zoom" else []), *shown]
                if piece.size == l.image.size:
                    # The full frame is the seed itself: one image row whatever the file's bytes.
                    items.append((seed_row, view))
                    continue
                row = store_image(s, ws.blobs, data, origin="crop", character_id=character.id,
                                  journal=journal, parent_id=seed_row.id, file_name=file_name,
                                  provenance={"crop": crop, "piece": crop_name, "parent": seed_row.sha256})
                items.append((row, view))
        repeats = ws.config.bootstrap.seed_repeats
        specs = [ItemSpec(img.id, caption_for("style", trigger, tag_list, view), repeats) for img, view in items]
        version, _ = create_version(s, character, specs, kind="style", policy="style", note="seed")
        out = ws.datasets_dir(slug) / f"v{version.number}"
        from lorastrap.dataset.versions import version_items

        export_kohya(version_items(s, version), ws.blobs, out, trigger=trigger, identity_tags=tag_list)
        return AddResult(
            slug=slug, trigger=trigger, seed_images=seed_names, crops=crop_names,
            dataset_version=version.number, dataset_items=version.item_count, dataset_dir=out,
            next_command=f"lorastrap bootstrap {slug}", base_model=base,
            notes=[n for l in loaded for n in l.notes],
        )


LIST_COLUMNS = ("slug", "name", "trigger", "stage", "round", "dataset_version", "loras")


def list_characters(ws: Workspace) -> list[dict[str, Any]]:
    """One summary row per character, in one statement of plain columns.

    No ORM objects: building 10,000 `Character` entities (JSON and datetime columns) cost ~5x what
    this statement costs (benchmarks/registry_scale.py, docs/benchmarks.md "Registry").
    """
    latest = (select(func.max(DatasetVersion.number))
              .where(DatasetVersion.character_id == Character.id).scalar_subquery())
    loras = select(func.count(Lora.id)).where(Lora.character_id == Character.id).scalar_subquery()
    query = select(Character.slug, Character.display_name, Character.trigger, Character.stage,
                   Character.round, latest, loras).order_by(Character.slug)
    with ws.session(write=False) as s:
        return [dict(zip(LIST_COLUMNS, row)) for row in s.connection().execute(query).all()]


def show_character(ws: Workspace, name: str) -> dict[str, Any]:
    with ws.session(write=False) as s:
        c = get_character(s, name)
        latest = latest_version(s, c)
        return {
            "slug": c.slug, "name": c.display_name, "trigger": c.trigger, "stage": c.stage,
            "round": c.round, "base_model": c.base_model or ws.config.workspace.base_model,
            "identity_tags": identity_tags(c),
            "tags": [{"tag": t.tag.text, "role": t.role} for t in c.tags],
            "created_at": c.created_at.isoformat(timespec="seconds"),
            "folder": str(ws.character_dir(c.slug)),
            "dataset_versions": [
                {"version": v.number, "kind": v.kind, "items": v.item_count,
                 "manifest": v.manifest_hash[:12], "created_at": v.created_at.isoformat(timespec="seconds")}
                for v in list_versions(s, c)
            ],
            "latest_dataset_version": latest.number if latest else None,
            "loras": [
                {"id": l.id, "name": l.name, "kind": l.kind, "round": l.round, "file": l.file_path,
                 "sha256": l.sha256[:12], "parent": l.parent_lora_id, "status": l.status}
                for l in character_loras(s, c)
            ],
        }


def remove_character(ws: Workspace, name: str, *, purge_files: bool = False) -> dict[str, Any]:
    """Delete a character's registry rows. Its folder is kept unless `purge_files` (curated work)."""
    with ws.session() as s:
        c = get_character(s, name)
        slug = c.slug
        s.delete(c)
    folder = ws.character_dir(slug)
    if purge_files and folder.exists():
        shutil.rmtree(folder)
    return {"slug": slug, "folder": str(folder), "folder_kept": folder.exists()}


def check_tag_roles(s: Session, character: Character, tags: Sequence[str], role: str) -> None:
    """A tag has one meaning: not two roles, not the trigger, and an identity tag is not a seed tag
    (what the seed images show — their view, their style — stays in every caption)."""
    wanted = parse_tags(tags)
    check_trigger_not_a_tag(character.trigger, wanted)
    for other in ROLES:
        if other != role and (both := [t for t in wanted if t in tags_of(character, other)]):
            raise UserError(f"{', '.join(both)} is already {'an' if other[0] in 'aeiou' else 'a'} {other} tag of "
                            f"{character.slug}; remove it "
                            f"there first (`lorastrap tags remove {character.slug} \"{both[0]}\" --role {other}`)")
    if role == "identity":
        seed = {t for _, shown in source_items(s, character) for t in shown}
        if both := [t for t in wanted if t in seed]:
            raise UserError(f"{', '.join(both)} is a seed tag of {character.slug} (what the seed images show, "
                            "kept in every caption), not who the character is; it cannot be an identity tag")


def edit_tags(ws, name: str, op: str, tags: Sequence[str] = (), role: str = "identity") -> list[str]:  # type: ignore[no-untyped-def]
    """`tags show|add|remove|set` on a workspace; returns the tags of that role afterwards."""
    with ws.session() as s:
        character = get_character(s, name)
        if op == "show":
            return tags_of(character, role)
        if op != "remove" and not parse_tags(tags):
            raise UserError("no tags given; pass them comma-separated, e.g. \"green eyes, long hair\"")
        if op in ("add", "set"):
            check_tag_roles(s, character, tags, role)
        fn = {"add": add_tags, "remove": remove_tags, "set": set_tags}[op]
        return fn(s, character, tags, role)
