"""Dataset versions: interval rows, O(changed) writes, manifest hashes, diff, kohya export."""

from __future__ import annotations

import io
import json
import tomllib
from pathlib import Path

import pytest
from PIL import Image as PILImage
from sqlalchemy import func, select

from lorastrap.dataset.kohya import export_dataset
from lorastrap.dataset.versions import (
    MANIFEST_MOD,
    ItemSpec,
    apply_changes,
    create_version,
    diff_versions,
    get_version,
    item_digest,
    list_versions,
    version_items,
)
from lorastrap.image_store import store_image
from lorastrap.kernel.errors import NotFound
from lorastrap.tags import set_tags
from registry.models import Character, DatasetItem


def _png(i: int) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (8, 8), (i % 256, (i * 7) % 256, (i * 13) % 256)).save(buf, "PNG")
    return buf.getvalue()


def _character(s, ws, slug: str = "kit", n_images: int = 4) -> tuple[Character, list[int]]:  # type: ignore[no-untyped-def]
    c = Character(slug=slug, display_name=slug.title(), trigger=f"{slug}21x", stage="seeded", round=0)
    s.add(c)
    s.flush()
    set_tags(s, c, ["1girl", "fox ears"])
    ids = [store_image(s, ws.blobs, _png(i), origin="generated", character_id=c.id,
                       file_name=f"img{i}.png").id for i in range(n_images)]
    return c, ids


def _live(s, version) -> dict[int, tuple[str, int]]:  # type: ignore[no-untyped-def]
    return {it.image.id: (it.caption, it.repeats) for it in version_items(s, version)}


def _row_count(s, c: Character) -> int:  # type: ignore[no-untyped-def]
    return s.scalar(select(func.count()).select_from(DatasetItem).where(DatasetItem.character_id == c.id))


def _manifest_from_scratch(s, version) -> str:  # type: ignore[no-untyped-def]
    total = sum(item_digest(it.image.sha256, it.caption, it.repeats) for it in version_items(s, version))
    return f"{total % MANIFEST_MOD:064x}"


def test_each_version_sees_exactly_its_items(workspace) -> None:
    with workspace.open_registry() as reg, reg.session() as s:
        c, (a, b, cc, d) = _character(s, workspace)
        v1, created = create_version(s, c, [ItemSpec(a, "t, a", 2), ItemSpec(b, "t, b", 2), ItemSpec(cc, "t, c", 2)],
                                     kind="style", policy="style")
        assert created and v1.number == 1 and _row_count(s, c) == 3
        v2 = apply_changes(s, c, add=[ItemSpec(cc, "t, c, smile", 2), ItemSpec(d, "t, d", 1)], remove=[b])
        v3 = apply_changes(s, c, add=[ItemSpec(b, "t, b", 2)])
        v4 = apply_changes(s, c, add=[ItemSpec(a, "t, a", 2)], remove=[d], kind="character", policy="character")
        assert [v.number for v in (v2, v3, v4)] == [2, 3, 4]
        assert (v2.parent_id, v3.parent_id, v4.parent_id) == (v1.id, v2.id, v3.id)

        assert _live(s, v1) == {a: ("t, a", 2), b: ("t, b", 2), cc: ("t, c", 2)}
        assert _live(s, v2) == {a: ("t, a", 2), cc: ("t, c, smile", 2), d: ("t, d", 1)}
        assert _live(s, v3) == {a: ("t, a", 2), cc: ("t, c, smile", 2), d: ("t, d", 1), b: ("t, b", 2)}
        assert _live(s, v4) == {a: ("t, a", 2), cc: ("t, c, smile", 2), b: ("t, b", 2)}
        assert [v.item_count for v in (v1, v2, v3, v4)] == [3, 3, 4, 3]
        assert (v4.kind, v4.caption_policy, v3.kind) == ("character", "character", "style")
        # interval rows: b's first row closed at 2, a new one opened at 3; c recaptioned at 2
        rows = s.execute(select(DatasetItem.image_id, DatasetItem.caption, DatasetItem.added_in,
                                DatasetItem.removed_in).where(DatasetItem.character_id == c.id)
                         .order_by(DatasetItem.id)).all()
        assert rows == [(a, "t, a", 1, None), (b, "t, b", 1, 2), (cc, "t, c", 1, 2),
                        (cc, "t, c, smile", 2, None), (d, "t, d", 2, 4), (b, "t, b", 3, None)]
        for v in (v1, v2, v3, v4):  # the incrementally kept manifest equals a full recomputation
            assert v.manifest_hash == _manifest_from_scratch(s, v)
        assert v1.manifest_hash != v2.manifest_hash


def test_a_version_writes_rows_for_changed_items_only(workspace) -> None:
    with workspace.open_registry() as reg, reg.session() as s:
        c, ids = _character(s, workspace, n_images=203)
        create_version(s, c, [ItemSpec(i, f"t, {i}", 1) for i in ids[:200]], kind="style", policy="style")
        assert _row_count(s, c) == 200
        v2 = apply_changes(s, c, add=[ItemSpec(ids[0], "t, recaptioned", 1), ItemSpec(ids[200], "t, new", 1)],
                           remove=[ids[1]])
        assert _row_count(s, c) == 202  # 2 rows opened, 2 closed in place, 198 untouched
        closed = s.scalar(select(func.count()).select_from(DatasetItem)
                          .where(DatasetItem.character_id == c.id, DatasetItem.removed_in == 2))
        assert closed == 2 and v2.item_count == 200
        assert v2.manifest_hash == _manifest_from_scratch(s, v2)


def test_unchanged_content_makes_no_new_version(workspace) -> None:
    with workspace.open_registry() as reg, reg.session() as s:
        c, (a, b, *_rest) = _character(s, workspace)
        specs = [ItemSpec(a, "t, a", 2), ItemSpec(b, "t, b", 2)]
        v1, _ = create_version(s, c, specs, kind="style", policy="style")
        again, created = create_version(s, c, list(reversed(specs)), kind="style", policy="style")
        assert (again.id, created) == (v1.id, False)
        assert apply_changes(s, c, add=specs) is None
        assert apply_changes(s, c, remove=[9999]) is None  # removing what is not there changes nothing
        assert len(list_versions(s, c)) == 1 and _row_count(s, c) == 2
        v2, created = create_version(s, c, [ItemSpec(a, "t, a", 3), ItemSpec(b, "t, b", 2)],
                                     kind="style", policy="style")
        assert created and v2.number == 2  # repeats are content too


def test_manifest_depends_on_content_not_history(workspace) -> None:
    with workspace.open_registry() as reg, reg.session() as s:
        c, (a, b, cc, _d) = _character(s, workspace)
        create_version(s, c, [ItemSpec(a, "x", 1)], kind="style", policy="style")
        apply_changes(s, c, add=[ItemSpec(b, "y", 1), ItemSpec(cc, "z", 1)])
        long_way = apply_changes(s, c, add=[ItemSpec(a, "x2", 1)])
        c2 = Character(slug="other", display_name="Other", trigger="other21x", stage="seeded", round=0)
        s.add(c2)
        s.flush()
        short_way, _ = create_version(s, c2, [ItemSpec(cc, "z", 1), ItemSpec(a, "x2", 1), ItemSpec(b, "y", 1)],
                                      kind="style", policy="style")
        assert long_way.manifest_hash == short_way.manifest_hash


def test_diff_between_versions(workspace, cli_run) -> None:
    with workspace.open_registry() as reg, reg.session() as s:
        c, (a, b, cc, d) = _character(s, workspace)
        v1, _ = create_version(s, c, [ItemSpec(a, "t, a"), ItemSpec(b, "t, b"), ItemSpec(cc, "t, c")],
                               kind="style", policy="style")
        v2 = apply_changes(s, c, add=[ItemSpec(cc, "t, c, smile"), ItemSpec(d, "t, d")], remove=[b])
        dv = diff_versions(s, v1, v2)
        assert [it.image.id for it in dv.added] == [d] and [it.image.id for it in dv.removed] == [b]
        assert [(o.caption, n.caption) for o, n in dv.recaptioned] == [("t, c", "t, c, smile")]
        assert get_version(s, c, "V2").id == v2.id
        with pytest.raises(NotFound, match="no dataset version 'v9'"):
            get_version(s, c, "v9")
    r = cli_run("dataset", "diff", "kit", "v1", "v2", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out) == {
        "added": [{"image": "img3.png", "caption": "t, d"}],
        "removed": [{"image": "img1.png", "caption": "t, b"}],
        "recaptioned": [{"image": "img2.png", "before": "t, c", "after": "t, c, smile"}],
    }
    text = cli_run("dataset", "diff", "kit", "v1", "v2").out
    assert "+ img3.png: t, d" in text and "1 added, 1 removed, 1 recaptioned" in text
    bad = cli_run("dataset", "diff", "kit", "v1", "v9")
    assert bad.code == 2 and "no dataset version 'v9'" in bad.err
    listed = json.loads(cli_run("dataset", "list", "kit", "--json").out)
    assert [(v["version"], v["items"], v["parent"]) for v in listed] == [("v1", 3, None), ("v2", 3, "v1")]


def test_export_writes_kohya_folders_and_a_parseable_config(workspace, cli_run, tmp_path: Path) -> None:
    with workspace.open_registry() as reg, reg.session() as s:
        c, (a, b, cc, _d) = _character(s, workspace)
        create_version(s, c, [ItemSpec(a, "kit21x, 1girl, front", 3), ItemSpec(b, "kit21x, 1girl, from side", 3),
                              ItemSpec(cc, "kit21x, 1girl, from behind", 1)], kind="style", policy="style")
        apply_changes(s, c, remove=[b])
        blobs = {i: workspace.blobs.path(im.image.blob_path).read_bytes()
                 for i, im in ((it.image.id, it) for it in version_items(s, get_version(s, c, 1)))}
    out = tmp_path / "export"
    r = cli_run("dataset", "export", "kit", "v1", "--out", str(out), "--resolution", "768")
    assert r.code == 0, r.err
    config = tomllib.loads((out / "dataset_config.toml").read_text(encoding="utf-8"))
    (ds,) = config["datasets"]
    assert ds["resolution"] == 768 and config["general"]["keep_tokens"] == 1
    subsets = {Path(sub["image_dir"]).name: sub for sub in ds["subsets"]}
    assert set(subsets) == {"3_kit21x 1girl", "1_kit21x 1girl"}
    assert [subsets[n]["num_repeats"] for n in ("3_kit21x 1girl", "1_kit21x 1girl")] == [3, 1]
    assert all(sub["class_tokens"] == "kit21x" for sub in subsets.values())
    for name, sub in subsets.items():
        assert Path(sub["image_dir"]) == (out / name).resolve() and Path(sub["image_dir"]).is_dir()
    three = out / "3_kit21x 1girl"
    captions = {p.read_text(encoding="utf-8") for p in three.glob("*.txt")}
    assert captions == {"kit21x, 1girl, front\n", "kit21x, 1girl, from side\n"}
    assert {p.read_bytes() for p in three.glob("*.png")} == {blobs[a], blobs[b]}
    assert [p.read_text() for p in (out / "1_kit21x 1girl").glob("*.txt")] == ["kit21x, 1girl, from behind\n"]

    r = cli_run("dataset", "export", "kit", "--out", str(out))  # latest (v2) replaces the folder
    assert r.code == 0 and r.out.startswith("v2: 2 items")
    assert sorted(p.name for p in out.iterdir()) == ["1_kit21x 1girl", "3_kit21x 1girl", "dataset_config.toml"]
    assert {p.read_text() for p in (out / "3_kit21x 1girl").glob("*.txt")} == {"kit21x, 1girl, front\n"}
    default = export_dataset(workspace, "kit", "v1", None)
    assert Path(default["out"]) == workspace.root / "characters" / "kit" / "datasets" / "v1"
    assert default["items"] == 3
