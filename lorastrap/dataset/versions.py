"""Dataset versions: immutable, linear per character, stored as interval rows (O(changed) writes);
`lorastrap dataset list|diff` on a workspace."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from lorastrap.kernel.errors import NotFound
from lorastrap.queries import get_character
from lorastrap.workspace import Workspace
from registry.models import Character, DatasetItem, DatasetVersion, Image

MANIFEST_MOD = 1 << 256


@dataclass(frozen=True)
class ItemSpec:
    image_id: int
    caption: str
    repeats: int = 1


@dataclass(frozen=True)
class VersionItem:
    image: Image
    caption: str
    repeats: int


def item_digest(image_sha: str, caption: str, repeats: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{image_sha}\0{caption}\0{repeats}".encode()).digest(), "big")


def _manifest_hex(value: int) -> str:
    return f"{value % MANIFEST_MOD:064x}"


def latest_version(s: Session, character: Character, kind: str | None = None) -> DatasetVersion | None:
    q = select(DatasetVersion).where(DatasetVersion.character_id == character.id)
    if kind:
        q = q.where(DatasetVersion.kind == kind)
    return s.scalars(q.order_by(DatasetVersion.number.desc()).limit(1)).first()


def get_version(s: Session, character: Character, number: int | str) -> DatasetVersion:
    n = int(str(number).lstrip("vV")) if str(number).lstrip("vV").isdigit() else None
    version = None
    if n is not None:
        version = s.scalars(
            select(DatasetVersion).where(
                DatasetVersion.character_id == character.id, DatasetVersion.number == n
            )
        ).first()
    if version is None:
        raise NotFound(
            f"{character.slug} has no dataset version {number!r}; see `lorastrap dataset list {character.slug}`"
        )
    return version


def _live_clause(number: int):  # type: ignore[no-untyped-def]
    return (DatasetItem.added_in <= number) & or_(
        DatasetItem.removed_in.is_(None), DatasetItem.removed_in > number
    )


def version_items(s: Session, version: DatasetVersion) -> list[VersionItem]:
    rows = s.execute(
        select(DatasetItem, Image)
        .join(Image, Image.id == DatasetItem.image_id)
        .where(DatasetItem.character_id == version.character_id, _live_clause(version.number))
        .order_by(DatasetItem.id)
    ).all()
    return [VersionItem(image=img, caption=it.caption, repeats=it.repeats) for it, img in rows]


def _new_version(
    s: Session, character: Character, parent: DatasetVersion | None, kind: str, policy: str,
    manifest: int, count: int, note: str | None,
) -> DatasetVersion:
    version = DatasetVersion(
        character_id=character.id,
        number=(parent.number + 1) if parent else 1,
        kind=kind,
        parent_id=parent.id if parent else None,
        manifest_hash=_manifest_hex(manifest),
        caption_policy=policy,
        item_count=count,
        note=note,
    )
    s.add(version)
    s.flush()
    return version


def apply_changes(
    s: Session, character: Character, *, add: Sequence[ItemSpec] = (), remove: Iterable[int] = (),
    kind: str | None = None, policy: str | None = None, note: str | None = None,
) -> DatasetVersion | None:
    """A new version = the latest one with `remove` (image ids) dropped and `add` added/replaced.

    Touches only the rows of changed images. Returns None when the content would not change.
    """
    parent = latest_version(s, character)
    number = (parent.number + 1) if parent else 1
    manifest = int(parent.manifest_hash, 16) if parent else 0
    count = parent.item_count if parent else 0
    touched = {spec.image_id for spec in add} | set(remove)
    live = {
        it.image_id: it
        for it in s.scalars(
            select(DatasetItem).where(
                DatasetItem.character_id == character.id,
                DatasetItem.removed_in.is_(None),
                DatasetItem.image_id.in_(touched),
            )
        )
    } if touched else {}
    shas = dict(s.execute(select(Image.id, Image.sha256).where(Image.id.in_(touched))).all()) if touched else {}
    wanted = {spec.image_id: spec for spec in add}
    closing: list[DatasetItem] = []
    opening: list[ItemSpec] = []
    for image_id in touched:
        old, new = live.get(image_id), wanted.get(image_id)
        if old is not None and new is not None and (old.caption, old.repeats) == (new.caption, new.repeats):
            continue
        if old is not None:
            closing.append(old)
            manifest -= item_digest(shas[image_id], old.caption, old.repeats)
            count -= 1
        if new is not None:
            opening.append(new)
            manifest += item_digest(shas[image_id], new.caption, new.repeats)
            count += 1
    kind = kind or (parent.kind if parent else "style")
    policy = policy or (parent.caption_policy if parent else kind)
    if parent and not closing and not opening and parent.kind == kind:
        return None
    version = _new_version(s, character, parent, kind, policy, manifest, count, note)
    for old in closing:
        old.removed_in = number
    s.add_all(
        DatasetItem(character_id=character.id, image_id=spec.image_id, caption=spec.caption,
                    repeats=spec.repeats, added_in=number)
        for spec in opening
    )
    s.flush()
    return version


def create_version(
    s: Session, character: Character, items: Sequence[ItemSpec], *, kind: str, policy: str,
    note: str | None = None,
) -> tuple[DatasetVersion, bool]:
    """Make the dataset exactly `items`. Returns (version, created); unchanged content → latest."""
    live_ids = set(
        s.scalars(
            select(DatasetItem.image_id).where(
                DatasetItem.character_id == character.id, DatasetItem.removed_in.is_(None)
            )
        )
    )
    wanted = {spec.image_id for spec in items}
    version = apply_changes(
        s, character, add=items, remove=live_ids - wanted, kind=kind, policy=policy, note=note
    )
    if version is None:
        latest = latest_version(s, character)
        assert latest is not None
        return latest, False
    return version, True


def list_versions(s: Session, character: Character) -> list[DatasetVersion]:
    return list(
        s.scalars(
            select(DatasetVersion)
            .where(DatasetVersion.character_id == character.id)
            .order_by(DatasetVersion.number)
        )
    )


@dataclass
class VersionDiff:
    added: list[VersionItem]
    removed: list[VersionItem]
    recaptioned: list[tuple[VersionItem, VersionItem]]


def diff_versions(s: Session, a: DatasetVersion, b: DatasetVersion) -> VersionDiff:
    old = {it.image.id: it for it in version_items(s, a)}
    new = {it.image.id: it for it in version_items(s, b)}
    return VersionDiff(
        added=[new[i] for i in new.keys() - old.keys()],
        removed=[old[i] for i in old.keys() - new.keys()],
        recaptioned=[
            (old[i], new[i])
            for i in old.keys() & new.keys()
            if (old[i].caption, old[i].repeats) != (new[i].caption, new[i].repeats)
        ],
    )


def count_live_items(s: Session, character: Character) -> int:
    return s.scalar(
        select(func.count()).select_from(DatasetItem).where(
            DatasetItem.character_id == character.id, DatasetItem.removed_in.is_(None)
        )
    ) or 0


def list_datasets(ws: Workspace, name: str) -> list[dict[str, Any]]:
    with ws.session(write=False) as s:
        c = get_character(s, name)
        return [
            {"version": f"v{v.number}", "kind": v.kind, "policy": v.caption_policy, "items": v.item_count,
             "parent": f"v{v.number - 1}" if v.parent_id else None, "manifest": v.manifest_hash[:12],
             "note": v.note, "created_at": v.created_at.isoformat(timespec="seconds")}
            for v in list_versions(s, c)
        ]


def diff_datasets(ws: Workspace, name: str, a: str, b: str) -> dict[str, Any]:
    with ws.session(write=False) as s:
        c = get_character(s, name)
        d = diff_versions(s, get_version(s, c, a), get_version(s, c, b))

        def label(it) -> str:  # type: ignore[no-untyped-def]
            return it.image.file_name or it.image.sha256[:12]

        return {
            "added": [{"image": label(i), "caption": i.caption} for i in d.added],
            "removed": [{"image": label(i), "caption": i.caption} for i in d.removed],
            "recaptioned": [{"image": label(o), "before": o.caption, "after": n.caption}
                            for o, n in d.recaptioned],
        }
