"""Curation: what the person keeps in `curated/` becomes the next dataset version.

Kept candidates are recognised by content hash; a candidate edited by hand before it was kept is
recognised by its file name (origin `edited`, parent link); anything else is `imported`. Seed images
stay in every version (training on generated images alone amplifies their artefacts).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from lorastrap.dataset.captions import caption_for, caption_policy, read_sidecar
from lorastrap.dataset.sources import source_items, view_tags
from lorastrap.dataset.versions import ItemSpec, create_version
from lorastrap.image_store import find_image, store_image
from lorastrap.images import IMAGE_SUFFIXES, curated_files, is_image_name, is_partial_name, load_image
from lorastrap.kernel.atomic import atomic_path
from lorastrap.kernel.errors import UserError
from lorastrap.kernel.journal import FileJournal
from lorastrap.method.stage import training_kind
from lorastrap.queries import get_character
from lorastrap.tags import identity_tags
from lorastrap.workspace import Workspace
from registry.models import Character, Image


@dataclass
class SyncResult:
    version: int | None
    created: bool
    kind: str
    total: int
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    edited: list[str] = field(default_factory=list)
    imported: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def _candidate_by_name(s: Session, character: Character, name: str) -> Image | None:
    stem = Path(name).stem
    for row in s.scalars(select(Image).where(Image.character_id == character.id,
                                             Image.origin == "generated")):
        if row.file_name and Path(row.file_name).stem == stem:
            return row
    return None


def register_curated(
    s: Session, ws: Workspace, character: Character, path: Path, journal: FileJournal
) -> tuple[Image, str]:
    """The image row for a curated file and how it got there: kept | edited | imported."""
    limits = ws.config.images
    loaded = load_image(path, min_side=limits.min_side, max_pixels=limits.max_pixels)
    from registry.blobs import sha256_bytes

    existing = find_image(s, sha256_bytes(loaded.data))
    if existing is not None:
        return existing, "kept"
    parent = _candidate_by_name(s, character, path.name)
    if parent is not None:
        prov = dict(parent.provenance or {}, edited_from=parent.sha256)
        row = store_image(s, ws.blobs, loaded.data, origin="edited", character_id=character.id,
                          journal=journal, parent_id=parent.id, file_name=path.name, provenance=prov)
        return row, "edited"
    row = store_image(s, ws.blobs, loaded.data, origin="imported", character_id=character.id,
                      journal=journal, file_name=path.name, provenance={"imported_from": path.name})
    return row, "imported"


def build_items(
    s: Session, ws: Workspace, character: Character, kind: str, journal: FileJournal
) -> tuple[list[ItemSpec], dict[str, list[str]]]:
    """Seed items + curated items, captioned by `kind`'s policy (a sidecar .txt wins)."""
    identity = identity_tags(character)
    repeats = ws.config.bootstrap.seed_repeats
    policy = caption_policy(ws.config.bootstrap, kind)
    items: dict[int, ItemSpec] = {}
    for img, variable in source_items(s, character):
        items[img.id] = ItemSpec(img.id, caption_for(policy, character.trigger, identity, variable), repeats)
    report: dict[str, list[str]] = {"edited": [], "imported": [], "ignored": []}
    images, ignored = curated_files(ws.curated_dir(character.slug))
    report["ignored"] = [p.name for p in ignored]
    for path in images:
        row, how = register_curated(s, ws, character, path, journal)
        if how in report:
            report[how].append(path.name)
        if row.id in items:
            continue
        caption = read_sidecar(path) or caption_for(policy, character.trigger, identity, view_tags(row))
        if not caption.startswith(character.trigger):
            caption = f"{character.trigger}, {caption}"
        items[row.id] = ItemSpec(row.id, caption, 1)
    return list(items.values()), report


def sync_curated(ws: Workspace, slug: str, kind: str | None = None) -> SyncResult:
    """Snapshot curated/ into a dataset version; unchanged content makes no new version."""
    from lorastrap.dataset.versions import diff_versions, get_version

    with FileJournal() as journal, ws.session() as s:
        character = get_character(s, slug)
        kind = kind or training_kind(ws, s, character)
        items, report = build_items(s, ws, character, kind, journal)
        version, created = create_version(s, character, items, kind=kind, policy=kind, note="curated")
        result = SyncResult(version=version.number if created else None, created=created, kind=kind,
                            total=version.item_count, edited=report["edited"],
                            imported=report["imported"], ignored=report["ignored"])
        if created and version.number > 1:
            d = diff_versions(s, get_version(s, character, version.number - 1), version)
            result.added = [i.image.file_name or i.image.sha256[:12] for i in d.added]
            result.removed = [i.image.file_name or i.image.sha256[:12] for i in d.removed]
        return result


def curate(ws: Workspace, slug: str, keep: Sequence[Path] = (), reject: Sequence[Path] = (), *,
           sync: bool = True) -> SyncResult | None:
    """`lorastrap curate --keep/--reject`: copy kept candidates into curated/, set rejects aside.

    Everything is checked before anything is written: each kept file must decode within the
    image limits, and a file of the same name already in curated/ must be the same image. If
    registering the new dataset version fails, the copies and moves are undone.

    With `sync=False` (the web UI's one click per image) nothing is snapshotted: the next
    `bootstrap` step, or the watcher once the folder settles, makes the dataset version."""
    curated = ws.curated_dir(slug)
    if not ws.character_dir(slug).is_dir():
        raise UserError(f"no folder for character {slug!r}; see `lorastrap character list`")
    copies = _planned_copies(ws, slug, [_resolve_candidate(ws, slug, p) for p in keep])
    moves = [(src, src.parent / ".rejected" / src.name) for src in map(lambda p: _resolve_candidate(ws, slug, p), reject)]
    candidates = ws.candidates_dir(slug).resolve()
    for src, aside in moves:
        if not src.resolve().is_relative_to(candidates):
            raise UserError(f"--reject {src}: only candidates (in {candidates}) are set aside; "
                            "delete other files yourself")
        if aside.exists():
            raise UserError(f"{aside} exists already; remove it, then reject {src.name} again")
    moved: list[tuple[Path, Path]] = []
    with FileJournal() as journal:  # on an error it removes the copies and new folders ...
        try:
            journal.mkdir(curated)
            for src, target in copies:
                with atomic_path(journal.will_create(target)) as tmp:
                    shutil.copy2(src, tmp)
            for src, aside in moves:
                journal.mkdir(aside.parent)
                shutil.move(str(src), aside)
                moved.append((src, aside))
            return sync_curated(ws, slug) if sync else None
        except BaseException:
            for src, aside in reversed(moved):  # ... after the rejects are back in place
                if aside.exists() and not src.exists():
                    shutil.move(str(aside), src)
            raise


def _planned_copies(ws: Workspace, slug: str, sources: Sequence[Path]) -> list[tuple[Path, Path]]:
    """(source, target in curated/) for each kept file that is not there yet, all validated."""
    curated = ws.curated_dir(slug)
    limits = ws.config.images
    planned: dict[str, Path] = {}
    for src in sources:
        target = curated / src.name
        if src.resolve() == target.resolve():
            continue  # keeping a file that is in curated/ already
        if not is_image_name(src) or is_partial_name(src.name):
            raise UserError(f"{src}: not an image file name ({', '.join(sorted(IMAGE_SUFFIXES))}); "
                            "rename or convert it first")
        load_image(src, min_side=limits.min_side, max_pixels=limits.max_pixels)  # decodes, or says why not
        if src.name in planned and planned[src.name].read_bytes() != src.read_bytes():
            raise UserError(f"two different files named {src.name} are kept ({planned[src.name]} and {src}); "
                            "keep one per call, or rename one of them")
        if target.exists():
            if target.read_bytes() == src.read_bytes():
                continue  # already kept
            raise UserError(f"{target} already holds a different image named {src.name}; to keep both, "
                            f"copy {src} into {curated} under another name (e.g. {src.stem}-2{src.suffix})")
        planned[src.name] = src
    return [(src, curated / name) for name, src in planned.items()]


def _resolve_candidate(ws: Workspace, slug: str, path: Path) -> Path:
    path = Path(path)
    if path.is_file():
        return path
    matches = sorted(ws.candidates_dir(slug).glob(f"r*/{path.name}"))
    if not matches:
        raise UserError(f"{path}: no such candidate; see the files in {ws.candidates_dir(slug)}")
    return matches[-1]


class _PreviewDone(Exception):
    def __init__(self, rows: list[dict[str, str]]) -> None:
        self.rows = rows


def preview_captions(ws: Workspace, slug: str, kind: str | None = None) -> list[dict[str, str]]:
    """The captions the next dataset version would get, without writing anything."""

    try:
        with FileJournal() as journal, ws.session() as s:
            character = get_character(s, slug)
            kind = kind or training_kind(ws, s, character)
            items, _ = build_items(s, ws, character, kind, journal)
            images = {i.id: i for i in s.scalars(select(Image).where(Image.id.in_([it.image_id for it in items])))}
            raise _PreviewDone([
                {"image": images[it.image_id].file_name or images[it.image_id].sha256[:12],
                 "origin": images[it.image_id].origin, "repeats": str(it.repeats), "caption": it.caption}
                for it in items
            ])
    except _PreviewDone as done:  # the transaction and any blob writes were rolled back
        return done.rows
